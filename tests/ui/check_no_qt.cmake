# Fails if any of BINARIES (a ;-list) needs a Qt library, directly or through another library.
# The renderer is the sandboxed, untrusted side: Qt's size and attack surface must never reach
# it (GUIDE: "renderer/ ... Never links Qt"). Also run on the broker's headless programs.
foreach(bin IN LISTS BINARIES)
  if(NOT EXISTS "${bin}")
    message(FATAL_ERROR "no such binary: ${bin}")
  endif()
  file(GET_RUNTIME_DEPENDENCIES
    EXECUTABLES "${bin}"
    RESOLVED_DEPENDENCIES_VAR resolved
    UNRESOLVED_DEPENDENCIES_VAR unresolved)
  foreach(lib IN LISTS resolved unresolved)
    if(lib MATCHES "libQt")
      message(FATAL_ERROR "${bin} links ${lib}")
    endif()
  endforeach()
  # A static binary lists no libraries at all; look for Qt's own symbol names instead.
  file(STRINGS "${bin}" qt_strings REGEX "qt_version_tag|QCoreApplication|libQt6" LIMIT_COUNT 1)
  if(qt_strings)
    message(FATAL_ERROR "${bin} contains Qt code: ${qt_strings}")
  endif()
  list(LENGTH resolved n)
  message(STATUS "${bin}: ${n} shared libraries, none of them Qt")
endforeach()
