// One owner per child process (Chromium's base::Process with EnsureProcessGetsReaped): its pid
// and a pidfd, so no signal ever reaches a reused pid. Every kill and every reap of a child the
// broker starts goes through this file; nothing else calls waitid or pidfd_send_signal (the
// child code between clone and exec aside).
//
// Never blocks without a bound: TryReap does not wait at all, KillAndReap waits at most until
// its deadline, and the destructor kills and waits at most kReapBound.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "broker/exit_status.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

class ChildProcess {
 public:
  // What the destructor waits for a SIGKILLed child: one exits in microseconds, unless the
  // machine is very busy or it tears down a large copy of our address space.
  static constexpr int64_t kReapBoundNs = 2'000'000'000;

  ChildProcess() = default;
  // `pidfd` refers to `pid`, an unreaped child of this process.
  ChildProcess(pid_t pid, UniqueFd pidfd);
  // For a child known only by pid. Safe only while it is our unreaped child (its pid cannot
  // have been reused); fails with the errno of pidfd_open.
  static Result<ChildProcess> Adopt(pid_t pid);
  // For a child that could not be adopted (out of fds): SIGKILL and reap it by pid, waiting at
  // most kReapBoundNs. Only for our own unreaped children; `pid` <= 0 does nothing.
  static void KillAndReapPid(pid_t pid);
  // The moved-from object holds no pidfd, so it neither kills nor forgets the child.
  ChildProcess(ChildProcess&& other) noexcept = default;
  // Kills and reaps the child this one held, as the destructor does.
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // SIGKILL and reap, waiting at most kReapBoundNs

  // True until it has been reaped.
  bool valid() const { return pidfd_.valid(); }
  // True once TryWait has seen it exit (it may still await its reap).
  bool exited() const { return exited_; }
  pid_t pid() const { return pid_; }
  // Readable once the child has exited: watch it in the event loop, then TryReap.
  int pidfd() const { return pidfd_.get(); }

  // Gives the pidfd up without killing: the caller reaps the child from now on.
  UniqueFd Release();

  // pidfd_send_signal. A child that has exited but is not yet reaped is not an error.
  Result<void> Signal(int sig);
  // Reaps the child if it has exited and returns how it ended (ClassifyExit with `reason`); an
  // empty optional while it runs. Never blocks. A child somebody else reaped counts as killed.
  std::optional<ExitInfo> TryReap(KillReason reason = KillReason::kNone);
  // As TryReap, but leaves an exited child unreaped (WNOWAIT) until TryReap, KillAndReap or the
  // destructor: reaping frees the child's /proc entries, which costs tens of microseconds once
  // anything has read them, so whoever reports an exit can report first and reap after.
  std::optional<ExitInfo> TryWait(KillReason reason = KillReason::kNone);
  // SIGKILL, then waits for the exit until deadline_ns (CLOCK_MONOTONIC) and reaps it. While it
  // waits it also reaps strays (ReapStrayChildren): a namespace's init cannot finish exiting
  // while a process of its namespace is unreaped. kTimeout if the deadline passed; the child is
  // then still ours.
  Result<ExitInfo> KillAndReap(int64_t deadline_ns);

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool exited_ = false;
};

// A launched program may create processes of its own with CLONE_PARENT (any --renderer-path
// program, or a renderer's code before its seccomp filter), which makes them children of the
// broker that no ChildProcess owns. They would stay zombies, and a pid namespace's init cannot
// finish exiting until every process in it is reaped. This finds such strays among our
// children and returns how many it saw; one that the sweep before found a stray too (the same
// process, by its start time) it SIGKILLs, or reaps if dead. One look is not enough: a zygote's
// joiner starts in the zygote's process group and has a stray's shape until its own setpgid a
// moment later, and until the broker has read the zygote's announcement of it.
//
// A stray is a child the launcher did not start: in a pid namespace below ours, anything but
// pid 1 or 2 of it (a renderer's init and the renderer); in ours, a child in another process
// group that does not lead it (every launched child leads a group of its own: the holder, a
// joiner, an unsandboxed renderer). Children in our own group (a test's, Qt's) are never
// touched. An unsandboxed program could move a child of its making into our group (setpgid;
// the renderer's seccomp policy has no such call) and so escape the sweep: it then stays a
// zombie until the broker exits, and costs nothing else.
//
// A child some ChildProcess owns is never a stray and costs the sweep no /proc read: at 500
// renderers the broker has a thousand children, and reading each one's status once a second
// held its event loop for 10-20 ms.
int ReapStrayChildren();

// What the sweep above leaves alone because it may be a launch about to be announced: children
// no ChildProcess owns at pid 1 or 2 of a pid namespace exactly one below ours (an init and its
// program), here only those in the process group of one of `joiners` (a joiner leads the group
// its launch's processes are made in). Once the zygote that made those joiners is dead, every
// announcement it sent has been read and the joiners are killed, nobody will announce them:
// this returns them owned, every program before every init (the order they can be reaped in);
// one whose pidfd cannot be had is killed and reaped at once.
std::vector<ChildProcess> AdoptUnannouncedLaunches(std::span<const pid_t> joiners);

}  // namespace sbx
