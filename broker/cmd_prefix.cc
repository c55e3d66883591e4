#include "broker/cmd_prefix.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
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
     "--no-sandbox --renderer-cmd-prefix 'gdb -q -batch -ex run -ex bt --args'"},
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

// A gdb given no command to run (-batch, -ex, -x): it reads its commands from its stdin, which for
// a renderer is /dev/null, so it quits before it starts the renderer, at every restart.
constexpr std::string_view kInteractiveGdb =
    "gdb reads its commands from its standard input, which for a renderer is /dev/null, so it "
    "would quit before starting the renderer, at every restart. Give it the commands: "
    "--renderer-cmd-prefix 'gdb -q -batch -ex run -ex bt --args' (the backtrace of a crash shows "
    "in the event log), or 'gdbserver :PORT' and attach with gdb -ex 'target remote :PORT'";

bool GdbHasCommands(const std::vector<std::string>& prefix) {
  for (size_t i = 1; i < prefix.size(); ++i) {
    std::string_view arg = prefix[i];
    if (arg == "--args" || arg == "-args") break;  // the program's own arguments follow
    if (!arg.starts_with('-')) continue;
    arg.remove_prefix(arg.starts_with("--") ? 2 : 1);
    arg = arg.substr(0, arg.find('='));
    for (std::string_view option : {"batch", "ex", "eval-command", "x", "command"}) {
      if (arg == option) return true;
    }
  }
  return false;
}

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

// A uid or gid as sudo writes it: decimal digits only, no sign, blank or overflow.
std::optional<unsigned> ParseId(const char* text) {
  if (text == nullptr) return std::nullopt;
  const char* end = text + std::strlen(text);
  unsigned v = 0;
  auto [at, ec] = std::from_chars(text, end, v);
  if (text == end || ec != std::errc() || at != end) return std::nullopt;
  if (v == static_cast<unsigned>(static_cast<uid_t>(-1))) return std::nullopt;  // "no id"
  return v;
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
  if (!sandboxed && BaseName(program) == "gdb" && !GdbHasCommands(prefix)) {
    return MakeError(Errc::kInvalidArgument,
                     "--renderer-cmd-prefix: " + std::string(kInteractiveGdb));
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

std::optional<InvokingUser> ParseSudoUser(const char* sudo_uid, const char* sudo_gid) {
  auto uid = ParseId(sudo_uid);
  if (!uid || *uid == 0) return std::nullopt;
  const passwd* pw = ::getpwuid(*uid);
  if (pw == nullptr) return std::nullopt;
  InvokingUser user{*uid, pw->pw_gid, pw->pw_name};
  if (auto gid = ParseId(sudo_gid); gid && *gid != 0 && ::getgrgid(*gid) != nullptr) {
    user.gid = *gid;
  }
  if (user.gid == 0) return std::nullopt;  // root's group would give the renderer its files
  return user;
}

std::string WrapperOwnerNote(const std::optional<InvokingUser>& user, uid_t own_uid) {
  if (user) {
    std::string uid = std::to_string(user->uid);
    return "sbx: --renderer-cmd-prefix: started through sudo by " + user->name +
           ", so renderers and their wrapper run as " + user->name + " (uid " + uid + ", gid " +
           std::to_string(user->gid) + "): the wrapper's files are " + user->name + "'s, and " +
           user->name + "'s processes can signal and trace these renderers\n";
  }
  std::string uid = std::to_string(own_uid);
  std::string note = "sbx: WARNING: --renderer-cmd-prefix: as root, renderers and their wrapper\n";
  note += "sbx: WARNING: run as a uid of their own, " + uid + " (docs/SANDBOX.md), so files\n";
  note += "sbx: WARNING: the wrapper writes (strace -o FILE) belong to uid " + uid + "\n";
  note += "sbx: WARNING: and need a directory it may write to; start the broker with sudo\n";
  note += "sbx: WARNING: from your own account, or as your own user, to have them written\n";
  note += "sbx: WARNING: as you\n";
  return note;
}

std::string WrapperExitNote(const std::vector<std::string>& prefix) {
  if (prefix.empty()) return "";
  return "seen through --renderer-cmd-prefix " + std::string(BaseName(prefix[0])) +
         ": the status may be the wrapper's, not the renderer's";
}

}  // namespace sbx
