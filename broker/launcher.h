// Starts a child with a fixed recipe (Chromium's launch_posix.cc, nsjail's sync pipe), by
// clone3(CLONE_PIDFD) so the parent holds a pidfd from the first instant and never needs a pid
// that could be reused.
//
// Between clone and exec the child runs only async-signal-safe code: no malloc, no locks, no
// logging that allocates. Everything it needs (argv, envp, the fd table) is prepared before clone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

// New namespaces for the child. The child is then a tiny init (pid 1 of the new pid namespace,
// which ignores every signal it has no handler for) that forks the real program as pid 2, reaps
// it and reports its exit status to the parent over a pipe, as Chrome's zygote reports to the
// browser. The program itself is therefore an ordinary process that `kill -SEGV` acts on.
struct NamespaceSpec {
  uint64_t clone_flags = 0;  // CLONE_NEWUSER | CLONE_NEWPID | ...
  // With CLONE_NEWUSER: uid/gid 0 inside maps to these ids outside.
  uid_t outside_uid = 0;
  gid_t outside_gid = 0;
};

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] is the program
  bool search_path = false;       // execvp (for a --renderer-cmd-prefix like "gdb") vs execv
  // (fd in the parent, fd number in the child). Every other fd above 2 is closed at exec.
  std::vector<std::pair<int, int>> fds;
  std::optional<NamespaceSpec> namespaces;
};

// What the init of a namespaced launch writes on its status pipe.
struct InitRecord {
  enum Kind : int32_t { kStarted = 1, kExited = 2 };
  int32_t kind;
  int32_t cld_code;  // kExited: waitid's si_code
  int32_t status;    // kExited: waitid's si_status; kStarted: the program's pid inside
  int32_t reserved;
};

struct LaunchedChild {
  // The program: its pid as this process sees it, and a pidfd to signal it with. For a
  // namespaced launch the pidfd may be invalid if the program died before it could be opened;
  // its status still arrives on status_fd.
  pid_t pid = -1;
  UniqueFd pidfd;
  // Namespaced launches only: the init (our direct child, to reap) and the read end of its
  // status pipe (non-blocking; one kExited InitRecord arrives when the program ends).
  pid_t init_pid = -1;
  UniqueFd init_pidfd;
  UniqueFd status_fd;
};

// The step of the child recipe that failed, reported over the sync pipe.
enum class LaunchStep : int { kSignals = 1, kParentDeath, kFds, kExec, kUserMap, kInit };
const char* LaunchStepName(LaunchStep step);

// Returns once the program has exec'd. If any step of the recipe fails, every process it made is
// reaped and the error says which step and errno (Errc::kState for a recipe failure, kSystem for
// a failure in the parent such as EAGAIN from clone3).
Result<LaunchedChild> Launch(const LaunchSpec& spec);

// Whether an unprivileged user namespace (with pid, net, ipc, uts and mount namespaces) can be
// created here; the error says why not (a sysctl, AppArmor, seccomp of a container).
Result<void> ProbeNamespaces(const NamespaceSpec& ns);

}  // namespace sbx
