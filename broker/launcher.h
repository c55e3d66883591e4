// Starts a child with a fixed recipe (Chromium's launch_posix.cc, nsjail's sync pipe), by
// clone3(CLONE_PIDFD) so the parent holds a pidfd from the first instant and never needs a pid
// that could be reused.
//
// Between clone and exec the child runs only async-signal-safe code: no malloc, no locks, no
// logging that allocates. Everything it needs (argv, envp, the fd table) is prepared before clone.
#pragma once

#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/child_process.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

// A process that holds the namespaces renderers share (user, net, mount), created once: a
// network namespace costs ~1.3 ms to create and more to tear down, and a mount namespace copies
// the whole mount table, so making them per renderer would triple spawn time. The holder also
// mounts the empty, read-only tmpfs every renderer later chroots into. It runs no program; it
// sleeps until it is killed (or its parent dies: PR_SET_PDEATHSIG).
class NamespaceHolder {
 public:
  // uid/gid 0 inside the user namespace map to outside_uid/outside_gid; empty_root is an
  // existing directory that, in the new mount namespace only, becomes the empty root.
  static Result<NamespaceHolder> Create(uid_t outside_uid, gid_t outside_gid,
                                        const std::string& empty_root);
  // Destroying it SIGKILLs and reaps the process (ChildProcess).

  pid_t pid() const { return process_.pid(); }
  int pidfd() const { return process_.pidfd(); }
  const std::string& empty_root() const { return empty_root_; }

 private:
  NamespaceHolder(ChildProcess process, std::string empty_root)
      : process_(std::move(process)), empty_root_(std::move(empty_root)) {}
  ChildProcess process_;
  std::string empty_root_;
};

// How to launch into namespaces. The child joins the holder's user, net and mount namespaces,
// takes new pid, ipc and uts namespaces of its own, and starts two siblings there, both direct
// children of the launcher (CLONE_PARENT): a tiny init (pid 1, which ignores every signal it has
// no handler for, and only reaps orphans) and the program (pid 2). The program is therefore an
// ordinary process that `kill -SEGV` acts on, and its exit status comes straight from waitid,
// with no hop through the init. Chrome's namespace sandbox keeps such an init for the same
// reason.
//
// Every launch (and the holder) starts a session of its own, as bubblewrap's --new-session: the
// terminal's Ctrl+C reaches the broker alone, which then closes its renderers in order, and no
// renderer has the terminal as its controlling tty (no TIOCSTI into the user's shell).
struct NamespaceSpec {
  int holder_pidfd = -1;  // -1 only with LaunchOrigin::in_namespaces
};

// The layers the launcher's child applies to the program itself, after the new session and the
// fds and before exec, in this order; a step that fails is a launch failure (exit 127):
//   the empty root (chroot), every capability dropped (bounding set, ambient, securebits, then
//   effective, permitted and inheritable), the rlimits, no_new_privs, the launcher's seccomp
//   filter, and the exec of `exec_fd` as sandbox::kLauncherExecFd (execveat, AT_EMPTY_PATH).
// So a program that never confines itself is held all the same (docs/SANDBOX.md).
struct Confinement {
  int exec_fd = -1;  // the program, opened by the broker outside the sandbox's mount namespace
  std::string root;  // the directory to chroot into; it must not be needed to load the program
  std::vector<std::pair<int, rlim_t>> limits;  // (resource, soft = hard)
  std::vector<sock_filter> filter;             // sandbox::LauncherFilterProgram()
};

// Namespaced launches only: a POSIX message queue made by the launcher inside the program's new
// IPC namespace, so that /proc/sys/fs/mqueue/queues_max (a count per IPC namespace) counts it
// alone there instead of every renderer's in the broker's namespace. Its write end is the
// program's `target_fd`; its read end comes back to the parent (LaunchedChild::queue) over the
// launch's report socket (SCM_RIGHTS). Made with O_EXCL and unlinked at once, as
// CreateQueuePair does. When it cannot be made, the program runs with `fallback_argv` instead
// (the same arguments but for how it sends heartbeats) and no `target_fd`.
struct NamespaceQueue {
  int target_fd = -1;
  long max_msg = 0;
  long msg_size = 0;
  std::vector<std::string> fallback_argv;
};

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] is the program
  bool search_path = false;       // execvp (for a --renderer-cmd-prefix like "gdb") vs execv
  // (fd in the parent, fd number in the child). Every other fd above 2 is closed at exec.
  std::vector<std::pair<int, int>> fds;
  // The child's fds 0, 1 and 2 (fds in the parent); -1 leaves that one the parent's. A renderer
  // gets /dev/null and its log pipe twice, so it shares no terminal, pipe or file with the
  // broker: nothing to read the user's keys from, and no file description whose flags, offset
  // or lease it could change under the broker.
  std::array<int, 3> stdio = {-1, -1, -1};
  std::optional<NamespaceSpec> namespaces;
  // cgroup.procs files (fds in the parent, open for writing), one per hierarchy: the program
  // writes "0" (itself) to each as its first step, so it is inside its cgroup before it execs,
  // and alone there (a namespace's init and joiner stay outside; RendererCgroup).
  std::vector<int> cgroup_procs;
  // The program's nice value, set right after it joins its cgroup, while it is one thread: every
  // thread it starts later inherits it (nice is per thread on Linux). Raising it needs no
  // privilege; none: the parent's.
  std::optional<int> nice;
  // Namespaced launches only: applied before exec; argv[0] is then only the program's name.
  std::optional<Confinement> confine;
  std::optional<NamespaceQueue> queue;
};

// Every process a launch made, each owned. Declared so that destruction ends the program first:
// a namespace's init cannot finish exiting while a process of its namespace is unreaped.
struct LaunchedChild {
  // Namespaced launches only: the short-lived child that set up the namespaces. It has exited or
  // is exiting (tearing down its copy of our address space); the caller reaps it when it can.
  ChildProcess joiner;
  // Namespaced launches only: the namespace's init, also our direct child. SIGKILL it once the
  // program is gone (that ends the namespace) and reap it.
  ChildProcess init;
  // The program: its pid as this process sees it, signalled and reaped through its pidfd.
  ChildProcess process;
  // With LaunchSpec::queue: the queue's read end (O_RDONLY|O_NONBLOCK, close-on-exec), or, if
  // it could not be made and the program runs on its fallback_argv, why not (an errno).
  UniqueFd queue;
  int queue_errno = 0;
};

// The step of the child recipe that failed, reported over the sync pipe.
enum class LaunchStep : int {
  kSignals = 1,
  kParentDeath,
  kFds,
  kExec,
  kUserMap,
  kJoinNamespaces,
  kNewNamespaces,
  kInit,
  kMount,
  kProcessGroup,
  kCgroup,
  kRoot,
  kCapabilities,
  kLimits,
  kNoNewPrivs,
  kFilter,
  kPriority,
};
const char* LaunchStepName(LaunchStep step);

// The processes of one launch, in the order they come to exist.
enum class LaunchRole : int { kJoiner = 0, kInit = 1, kProgram = 2 };

// Where a launch is made from. The default is the broker itself, which becomes the parent of
// every process the launch makes. The zygote (zygote.h) launches for the broker instead: its
// clones are CLONE_PARENT, so each process it makes is the broker's child, reaped and signalled
// by the broker through the pidfds the zygote hands back, exactly as if the broker had made it.
struct LaunchOrigin {
  // -1: the caller is the parent. Otherwise a pidfd of the caller's parent, which will be the
  // parent of every process made (their parent-death signal watches it).
  int parent_pidfd = -1;
  // The caller already lives in the namespaces the holder keeps (as root of its user
  // namespace): the joiner does not join them, and NamespaceSpec::holder_pidfd is unused.
  bool in_namespaces = false;
  // Called as soon as each process of the launch exists, with its pid and a pidfd (-1 if none
  // could be opened; the fd stays the caller's): so that the parent owns it whatever happens to
  // the launch, or to the launcher, afterwards. Only the parent can reap it.
  std::function<void(LaunchRole, pid_t, int)> on_child;
};

// Reads, once, what later launches take from /proc (where this process's title lives): for a
// launcher about to enter the empty root, where there is no /proc. Launch calls it itself.
void PrimeLauncher();

// Returns once the program has exec'd. If any step of the recipe fails, every process it made is
// reaped and the error says which step and errno (Errc::kState for a recipe failure, kSystem for
// a failure in the parent such as EAGAIN from clone3). From a LaunchOrigin with a parent, the
// processes are killed here but reaped by that parent, which on_child told of each.
Result<LaunchedChild> Launch(const LaunchSpec& spec, const LaunchOrigin& origin = {});

}  // namespace sbx
