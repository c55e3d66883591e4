#include "broker/cmd_prefix.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace sbx {

namespace {

// Wrappers that cannot work on a sandboxed renderer, and why, in a user's words. Both were tried:
// each fails on every launch, so without this check the renderer restarts until it is failed.
struct Refusal {
  std::string_view program;
  std::string_view why;
};
constexpr Refusal kRefusals[] = {
    {"gdb",
     "gdb cannot debug a sandboxed renderer: the renderer makes itself non-dumpable, so gdb can "
     "neither read its memory nor set a breakpoint. To debug one, run it unconfined: "
     "--no-sandbox --renderer-cmd-prefix 'gdb --args'"},
    {"gdbserver",
     "gdbserver cannot debug a sandboxed renderer: the renderer makes itself non-dumpable, so "
     "its memory cannot be read. To debug one, run it unconfined: "
     "--no-sandbox --renderer-cmd-prefix 'gdbserver :PORT'"},
    {"valgrind",
     "valgrind runs inside the renderer process, so the renderer's own limits stop it (it may "
     "not change its open-file limit, and the system-call filter refuses calls valgrind makes). "
     "To run a renderer under valgrind, run it unconfined: "
     "--no-sandbox --renderer-cmd-prefix 'valgrind -q'"},
};

std::string_view BaseName(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The first executable `name` in PATH (execvp's default when PATH is unset), as execvp would
// find it; empty if there is none.
std::string FindOnPath(std::string_view name, std::string_view path) {
  while (true) {
    auto colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    // An empty entry means the current directory, as for execvp.
    std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/";
    candidate += name;
    if (IsExecutableFile(candidate)) return candidate;
    if (colon == std::string_view::npos) return "";
    path.remove_prefix(colon + 1);
  }
}

}  // namespace

Result<std::vector<std::string>> CheckCmdPrefix(std::vector<std::string> prefix, bool sandboxed) {
  if (prefix.empty()) return prefix;
  std::string& program = prefix[0];
  if (program.find('/') != std::string::npos) {
    if (!IsExecutableFile(program)) {
      return MakeError(Errc::kNotFound,
                       "--renderer-cmd-prefix: " + program + " is not an executable file");
    }
  } else {
    const char* env = std::getenv("PATH");
    std::string_view path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
    std::string found = FindOnPath(program, path);
    if (found.empty()) {
      return MakeError(Errc::kNotFound,
                       "--renderer-cmd-prefix: " + program + ": command not found on PATH");
    }
    program = std::move(found);
  }
  if (sandboxed && ::geteuid() == 0) {
    // Mapping a sandboxed renderer to root would hand it root's files before it confines
    // itself, so a root broker maps it to a uid of its own; its wrapper runs as that same uid.
    std::fprintf(
        stderr,
        "sbx: WARNING: --renderer-cmd-prefix: run as root, a sandboxed renderer and its\n"
        "sbx: WARNING: wrapper run as a uid of their own (60900-60999, docs/SANDBOX.md), so\n"
        "sbx: WARNING: files the wrapper writes (strace -o FILE) belong to that uid and need a\n"
        "sbx: WARNING: directory it may write to; run the broker as your own user to have\n"
        "sbx: WARNING: them written as you\n");
  }
  if (sandboxed) {
    for (const auto& r : kRefusals) {
      if (BaseName(program) == r.program) {
        return MakeError(Errc::kInvalidArgument, "--renderer-cmd-prefix: " + std::string(r.why));
      }
    }
  }
  return prefix;
}

std::string WrapperExitNote(const std::vector<std::string>& prefix) {
  if (prefix.empty()) return "";
  return "seen through --renderer-cmd-prefix " + std::string(BaseName(prefix[0])) +
         ": the status may be the wrapper's, not the renderer's";
}

}  // namespace sbx
