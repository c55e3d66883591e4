// Starts a child with a fixed recipe (Chromium's launch_posix.cc, nsjail's sync pipe), by
// clone3(CLONE_PIDFD) so the parent holds a pidfd from the first instant and never needs a pid
// that could be reused.
//
// Between clone and exec the child runs only async-signal-safe code: no malloc, no locks, no
// logging that allocates. Everything it needs (argv, envp, the fd table) is prepared before clone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] is the program
  bool search_path = false;       // execvp (for a --renderer-cmd-prefix like "gdb") vs execv
  // (fd in the parent, fd number in the child). Every other fd above 2 is closed at exec.
  std::vector<std::pair<int, int>> fds;
};

struct LaunchedChild {
  pid_t pid = -1;
  UniqueFd pidfd;
};

// The step of the child recipe that failed, reported over the sync pipe.
enum class LaunchStep : int { kSignals = 1, kParentDeath, kFds, kExec };
const char* LaunchStepName(LaunchStep step);

// Returns once the child has exec'd. If any step of the recipe fails, the child is reaped and
// the error says which step and errno (Errc::kState for a recipe failure, kSystem for a failure
// in the parent such as EAGAIN from clone3).
Result<LaunchedChild> Launch(const LaunchSpec& spec);

}  // namespace sbx
