#include "broker/launcher.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ipc/posix.h"
#include "ipc/protocol.h"

extern char** environ;

namespace sbx {

namespace {

struct SyncReport {
  int step;
  int err;
};

[[noreturn]] void ChildFail(int sync_fd, LaunchStep step) {
  SyncReport r{static_cast<int>(step), errno};
  // Best effort: if the parent is gone there is nobody to tell.
  (void)!::write(sync_fd, &r, sizeof r);
  ::_exit(protocol::kExitLaunchFailed);
}

// Runs in the child. DANGER: async-signal-safe calls only, no allocation.
[[noreturn]] void ChildMain(const LaunchSpec& spec, char* const* argv, pid_t parent, int sync_fd,
                            int max_target) {
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) ChildFail(sync_fd, LaunchStep::kSignals);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for the few reserved numbers
  }

  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(sync_fd, LaunchStep::kParentDeath);
  // The parent may have died before PDEATHSIG was armed; then nobody would ever kill us.
  if (::getppid() != parent) ChildFail(sync_fd, LaunchStep::kParentDeath);

  // Move every source above the highest target first, so no dup2 clobbers a later source.
  int moved[16];
  size_t n = spec.fds.size();
  if (n > 16) {
    errno = E2BIG;
    ChildFail(sync_fd, LaunchStep::kFds);
  }
  for (size_t i = 0; i < n; ++i) {
    moved[i] = ::fcntl(spec.fds[i].first, F_DUPFD_CLOEXEC, max_target + 1);
    if (moved[i] < 0) ChildFail(sync_fd, LaunchStep::kFds);
  }
  if (sync_fd <= max_target) {
    int s = ::fcntl(sync_fd, F_DUPFD_CLOEXEC, max_target + 1);
    if (s < 0) ChildFail(sync_fd, LaunchStep::kFds);
    sync_fd = s;
  }
  for (int fd = 3; fd <= max_target; ++fd) {
    bool is_target = false;
    for (size_t i = 0; i < n; ++i) is_target |= spec.fds[i].second == fd;
    if (!is_target) ::close(fd);
  }
  for (size_t i = 0; i < n; ++i) {
    // dup2 clears close-on-exec on the target, which is how exactly these fds survive exec.
    if (::dup2(moved[i], spec.fds[i].second) < 0) ChildFail(sync_fd, LaunchStep::kFds);
  }
  // Everything above the targets (our temporaries, the sync pipe, anything the parent leaked)
  // closes at exec; marking rather than closing keeps the sync pipe usable until then.
  if (::syscall(SYS_close_range, max_target + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = max_target + 1; fd < 4096; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }

  if (spec.search_path) {
    ::execvp(argv[0], argv);
  } else {
    ::execve(argv[0], argv, environ);
  }
  ChildFail(sync_fd, LaunchStep::kExec);
}

}  // namespace

const char* LaunchStepName(LaunchStep step) {
  switch (step) {
    case LaunchStep::kSignals:
      return "reset signals";
    case LaunchStep::kParentDeath:
      return "parent-death signal";
    case LaunchStep::kFds:
      return "remap fds";
    case LaunchStep::kExec:
      return "exec";
  }
  return "unknown step";
}

Result<LaunchedChild> Launch(const LaunchSpec& spec) {
  if (spec.argv.empty()) return MakeError(Errc::kInvalidArgument, "empty argv");
  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int max_target = 2;
  for (auto [from, to] : spec.fds) max_target = std::max(max_target, to);

  auto sync = MakePipe(/*nonblocking=*/false);
  if (!sync) return std::unexpected(sync.error());

  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  pid_t parent = ::getpid();
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return SysError("clone3");
  if (pid == 0) ChildMain(spec, argv.data(), parent, sync->write.get(), max_target);

  LaunchedChild child{static_cast<pid_t>(pid), UniqueFd(pidfd)};
  sync->write.reset();
  SyncReport report{};
  auto got = ReadFull(sync->read.get(), {reinterpret_cast<uint8_t*>(&report), sizeof report});
  if (got && *got == 0) return child;  // EOF: the exec closed the sync pipe

  // The recipe failed (or we could not tell): reap the child so it leaves no zombie.
  siginfo_t si{};
  (void)HandleEintr([&] { return ::waitid(P_PIDFD, child.pidfd.get(), &si, WEXITED); });
  if (!got) return std::unexpected(got.error());
  if (*got != sizeof report) return MakeError(Errc::kState, "launch failed: short sync report");
  Error e{Errc::kState, report.err,
          std::string("launch failed at ") + LaunchStepName(static_cast<LaunchStep>(report.step))};
  return std::unexpected(e);
}

}  // namespace sbx
