#include "broker/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "sandbox/policy.h"

extern char** environ;

namespace sbx {

namespace {

constexpr int kJoinerTimeoutMs = 5000;

// clone3 with CLONE_PIDFD (plus `flags`): the parent holds a pidfd from the first instant.
long Clone3(uint64_t flags, int* pidfd, const LaunchOrigin& origin = {}) {
  if (origin.parent_pidfd >= 0) flags |= CLONE_PARENT;
  clone_args args{};
  args.flags = CLONE_PIDFD | flags;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  // With CLONE_PARENT the kernel takes the exit signal from the caller (clone3 refuses one):
  // SIGCHLD, which the broker gave the zygote.
  args.exit_signal = (flags & CLONE_PARENT) != 0 ? 0 : SIGCHLD;
  return ::syscall(SYS_clone3, &args, sizeof args);
}

// Where this process's argv and environment strings live (fields 48-51 of /proc/self/stat),
// found before clone: a child that runs no program overwrites them, so that ps shows what it is
// and not a copy of the broker's command line. Empty if unknown.
struct TitleArea {
  char* start = nullptr;
  size_t size = 0;
};

TitleArea ReadTitleArea() {
  auto stat = ReadSmallFile("/proc/self/stat");
  if (!stat) return {};
  std::string_view s(*stat);
  size_t paren = s.rfind(')');
  if (paren == std::string_view::npos) return {};
  s.remove_prefix(paren + 2);  // now at field 3
  uint64_t f[4] = {};          // arg_start, arg_end, env_start, env_end
  for (int field = 3, got = 0; field <= 51 && !s.empty(); ++field) {
    size_t end = std::min(s.find(' '), s.size());
    if (field >= 48) std::from_chars(s.data(), s.data() + end, f[got++]);
    s.remove_prefix(std::min(end + 1, s.size()));
  }
  if (f[1] <= f[0]) return {};
  // The environment usually follows the arguments; the kernel reads on into it when the last
  // argument byte is not a NUL, which is how a longer title still shows whole.
  uint64_t end = f[2] == f[1] && f[3] > f[2] ? f[3] : f[1];
  return {reinterpret_cast<char*>(f[0]), static_cast<size_t>(end - f[0])};
}

// Read once: the area never moves, and the zygote reads it before it leaves /proc behind.
TitleArea FindTitleArea() {
  static const TitleArea area = ReadTitleArea();
  return area;
}

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

// DANGER: this and everything below it up to exec run in a child of clone3: async-signal-safe
// calls only, no allocation, no locks.
// The kernel's struct for rt_sigaction, which differs from glibc's struct sigaction.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

// Raw syscalls: glibc's wrappers refuse the two signals it reserves for itself (32 and 33), and
// a parent that ignored those would otherwise hand the ignore on to the program.
void ResetSignals(int sync_fd) {
  uint64_t none = 0;
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none) != 0) {
    ChildFail(sync_fd, LaunchStep::kSignals);
  }
  KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  }
}

// Whether the process behind `pidfd` has exited. Async-signal-safe: one poll.
bool Exited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

// Names this process in argv (what ps shows) and comm (what pstree and top show, 15 bytes).
// The area is our own copy of the broker's argv and environment, which we never read again.
void SetTitle(const TitleArea& area, const char* title, const char* comm) {
  ::prctl(PR_SET_NAME, comm);
  if (area.start == nullptr) return;
  size_t n = std::min(std::strlen(title), area.size - 1);
  std::memset(area.start, 0, area.size);
  std::memcpy(area.start, title, n);
}

// Every capability goes, in the only order that works: the bounding set and the securebits need
// CAP_SETPCAP, which the last step clears. With an empty bounding set and SECBIT_NOROOT an exec
// as uid 0 grants nothing back.
void DropCapabilities(int sync_fd) {
  for (int cap = 0; cap < 64; ++cap) {
    // EINVAL: a capability this kernel does not know; past the last one there is nothing left.
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      ChildFail(sync_fd, LaunchStep::kCapabilities);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    ChildFail(sync_fd, LaunchStep::kCapabilities);
  }
  unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                       SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                       SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) {
    ChildFail(sync_fd, LaunchStep::kCapabilities);
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, none) != 0) ChildFail(sync_fd, LaunchStep::kCapabilities);
}

// The layers of `c` (launcher.h, Confinement), then the exec. Every fd is in place.
[[noreturn]] void ConfineAndExec(const Confinement& c, int exe, char* const* argv, int sync_fd) {
  // Where the filter's one exec expects it; before the open-file limit, which it is above.
  if (exe != sandbox::kLauncherExecFd &&
      ::dup3(exe, sandbox::kLauncherExecFd, O_CLOEXEC) != sandbox::kLauncherExecFd) {
    ChildFail(sync_fd, LaunchStep::kFds);
  }
  if (::chdir(c.root.c_str()) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0) {
    ChildFail(sync_fd, LaunchStep::kRoot);
  }
  DropCapabilities(sync_fd);
  for (auto [resource, value] : c.limits) {
    rlimit limit{value, value};
    if (::setrlimit(static_cast<__rlimit_resource_t>(resource), &limit) != 0) {
      ChildFail(sync_fd, LaunchStep::kLimits);
    }
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(sync_fd, LaunchStep::kNoNewPrivs);
  sock_fprog prog{static_cast<unsigned short>(c.filter.size()),
                  const_cast<sock_filter*>(c.filter.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    ChildFail(sync_fd, LaunchStep::kFilter);
  }
  static constexpr char kEmpty[] = "";
  ::syscall(SYS_execveat, sandbox::kLauncherExecFd, kEmpty, argv, environ, AT_EMPTY_PATH);
  ChildFail(sync_fd, LaunchStep::kExec);
}

// An fd the launch made itself (the namespace's queue), to hand over beside spec.fds.
struct ExtraFd {
  int from = -1;
  int to = -1;
};

// `parent_pidfd` (namespaced launches) names the broker; otherwise `parent` is its pid, and the
// program starts a process group of its own.
[[noreturn]] void ExecProgram(const LaunchSpec& spec, char* const* argv, pid_t parent,
                              int parent_pidfd, int sync_fd, int max_target, ExtraFd extra = {}) {
  for (int fd : spec.cgroup_procs) {
    if (::write(fd, "0", 1) != 1) ChildFail(sync_fd, LaunchStep::kCgroup);
  }
  if (spec.nice && ::setpriority(PRIO_PROCESS, 0, *spec.nice) != 0) {
    ChildFail(sync_fd, LaunchStep::kPriority);
  }
  ResetSignals(sync_fd);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(sync_fd, LaunchStep::kParentDeath);
  // The parent may have died before PDEATHSIG was armed; then nobody would ever kill us. Across
  // a pid namespace getppid() reads 0 before and after a reparent, so there only the parent's
  // pidfd can tell.
  bool orphaned = parent_pidfd >= 0 ? Exited(parent_pidfd) : ::getppid() != parent;
  if (orphaned) ChildFail(sync_fd, LaunchStep::kParentDeath);
  if (parent_pidfd < 0 && ::setpgid(0, 0) < 0) ChildFail(sync_fd, LaunchStep::kProcessGroup);

  // Move every source above the highest target first, so no dup2 clobbers a later source; the
  // sync pipe and the program's descriptor also above the exec descriptor's fixed number.
  constexpr size_t kMaxFds = 16;
  std::pair<int, int> fds[kMaxFds + 1];
  int moved[kMaxFds + 1];
  size_t n = spec.fds.size();
  if (n > kMaxFds) {
    errno = E2BIG;
    ChildFail(sync_fd, LaunchStep::kFds);
  }
  for (size_t i = 0; i < n; ++i) fds[i] = spec.fds[i];
  if (extra.from >= 0) fds[n++] = {extra.from, extra.to};
  for (size_t i = 0; i < n; ++i) {
    moved[i] = ::fcntl(fds[i].first, F_DUPFD_CLOEXEC, max_target + 1);
    if (moved[i] < 0) ChildFail(sync_fd, LaunchStep::kFds);
  }
  const int above = std::max(max_target, sandbox::kLauncherExecFd) + 1;
  if (sync_fd < above) {
    int s = ::fcntl(sync_fd, F_DUPFD_CLOEXEC, above);
    if (s < 0) ChildFail(sync_fd, LaunchStep::kFds);
    sync_fd = s;
  }
  int exe = -1;
  if (spec.confine) {
    exe = ::fcntl(spec.confine->exec_fd, F_DUPFD_CLOEXEC, above);
    if (exe < 0) ChildFail(sync_fd, LaunchStep::kFds);
  }
  for (int fd = 3; fd <= max_target; ++fd) {
    bool is_target = false;
    for (size_t i = 0; i < n; ++i) is_target |= fds[i].second == fd;
    if (!is_target) ::close(fd);
  }
  for (size_t i = 0; i < n; ++i) {
    // dup2 clears close-on-exec on the target, which is how exactly these fds survive exec.
    if (::dup2(moved[i], fds[i].second) < 0) ChildFail(sync_fd, LaunchStep::kFds);
  }
  // Everything above the targets (our temporaries, the sync pipe, anything the parent leaked)
  // closes at exec; marking rather than closing keeps the sync pipe usable until then.
  if (::syscall(SYS_close_range, max_target + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = max_target + 1; fd < 4096; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }

  if (spec.confine) ConfineAndExec(*spec.confine, exe, argv, sync_fd);
  if (spec.search_path) {
    ::execvp(argv[0], argv);
  } else {
    ::execve(argv[0], argv, environ);
  }
  ChildFail(sync_fd, LaunchStep::kExec);
}

// pid 1 of the new pid namespace. It stays this small on purpose: it holds no fd, has no child
// of its own (the program is its sibling, a direct child of the broker), and only reaps what
// the kernel would reparent to it. Being pid 1 is its whole job: the program, as pid 2, keeps
// the ordinary meaning of every signal, which pid 1 would ignore without a handler.
[[noreturn]] void InitMain(int sync_fd, int broker_pidfd, const TitleArea& title) {
  ResetSignals(sync_fd);
  SetTitle(title, "sbx: renderer init", "sbx: init");
  // Our death (when the broker dies) takes the whole pid namespace with it; a broker that died
  // before the signal was armed is caught by its pidfd.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(sync_fd, LaunchStep::kParentDeath);
  if (Exited(broker_pidfd)) ChildFail(sync_fd, LaunchStep::kParentDeath);
  static constexpr char kHost[] = "sbx-renderer";
  (void)::sethostname(kHost, sizeof kHost - 1);
  // SIGCHLD stays pending while blocked, so the wait below cannot miss an orphan's death.
  uint64_t chld = uint64_t{1} << (SIGCHLD - 1);
  if (::syscall(SYS_rt_sigprocmask, SIG_BLOCK, &chld, nullptr, sizeof chld) != 0) {
    ChildFail(sync_fd, LaunchStep::kSignals);
  }
  ::syscall(SYS_close_range, 0, ~0U, 0);  // includes the sync pipe
  for (;;) {
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    if (::waitid(P_ALL, 0, &si, WEXITED) == 0 || errno == EINTR) continue;
    // No child (the usual case): sleep until an orphan is reparented to us and dies.
    (void)::syscall(SYS_rt_sigtimedwait, &chld, nullptr, nullptr, sizeof chld);
  }
}

// Becomes uid/gid 0 of the user namespace just joined or created. Joining or mapping does not
// change our own credentials: until we switch, we keep the parent's (unmapped) ids, and an exec
// would start the program with no capabilities in its namespace. Supplementary groups inherited
// from a root parent go too; an unprivileged parent had to deny setgroups and keeps the user's
// own groups.
//
// Raw syscalls, not glibc's wrappers: those broadcast the change to every thread glibc believes
// the process has, and in a clone3 child of a multi-threaded parent they wait forever for
// threads that were never copied. A credential change also clears PR_SET_PDEATHSIG, so callers
// set it afterwards.
void BecomeNamespaceRoot(int sync_fd) {
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0) ChildFail(sync_fd, LaunchStep::kUserMap);
  if (::syscall(SYS_setgroups, 0, nullptr) != 0 && errno != EPERM) {
    ChildFail(sync_fd, LaunchStep::kUserMap);
  }
  if (::syscall(SYS_setresuid, 0, 0, 0) != 0) ChildFail(sync_fd, LaunchStep::kUserMap);
}

// The queue of LaunchSpec::queue, made in the IPC namespace we are in: its two ends, or -1 and
// errno in `err`. The namespace is new and ours alone, so a fixed name cannot clash; O_EXCL
// still guarantees the queue is the one just made. Raw syscalls (the kernel takes the name
// without glibc's leading slash).
struct QueueEnds {
  int reader = -1;
  int writer = -1;
  int err = 0;
};

QueueEnds MakeNamespaceQueue(const NamespaceQueue& q) {
  static constexpr char kName[] = "sbx-heartbeat";
  mq_attr attr{};
  attr.mq_maxmsg = q.max_msg;
  attr.mq_msgsize = q.msg_size;
  QueueEnds e;
  e.reader = static_cast<int>(::syscall(
      SYS_mq_open, kName, O_RDONLY | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr));
  if (e.reader < 0) {
    e.err = errno;
    return e;
  }
  e.writer = static_cast<int>(
      ::syscall(SYS_mq_open, kName, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0, nullptr));
  if (e.writer < 0) e.err = errno;
  (void)::syscall(SYS_mq_unlink, kName);
  if (e.writer < 0) {
    ::close(e.reader);
    e.reader = -1;
  }
  return e;
}

// The queue report: the errno of its creation (0: made) and, when made, the read end.
void SendQueueReport(int report_fd, const QueueEnds& q) {
  int32_t err = q.err;
  iovec iov{&err, sizeof err};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (q.reader >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &q.reader, sizeof(int));
  }
  while (::sendmsg(report_fd, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// The first child of a namespaced launch: joins the holder's namespaces, makes new pid, ipc and
// uts namespaces, starts the init (pid 1), makes the heartbeat queue if asked, then starts the
// program (pid 2), both as siblings (CLONE_PARENT: the broker is their parent, waits for them
// and gets the program's exit status straight from the kernel), tells the parent both pids and
// hands it the queue, and exits.
[[noreturn]] void JoinerMain(const LaunchSpec& spec, char* const* argv, char* const* fallback_argv,
                             int sync_fd, int report_fd, int broker_pidfd, int max_target,
                             const TitleArea& title) {
  // Before the clones: the init and the program inherit the process group, and leave the
  // terminal's foreground group, so Ctrl+C reaches the broker alone.
  if (::setpgid(0, 0) < 0) ChildFail(sync_fd, LaunchStep::kProcessGroup);
  // A zygote is already root inside them (LaunchOrigin::in_namespaces).
  if (spec.namespaces->holder_pidfd >= 0) {
    if (::setns(spec.namespaces->holder_pidfd, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0) {
      ChildFail(sync_fd, LaunchStep::kJoinNamespaces);
    }
    BecomeNamespaceRoot(sync_fd);
  }
  if (::unshare(CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
    ChildFail(sync_fd, LaunchStep::kNewNamespaces);
  }
  // The first process of a new pid namespace is its init; the order of these two clones is what
  // makes the program pid 2.
  // Each pid is reported as soon as it exists, so a broker that gives up on us in between still
  // knows which child to kill and reap. A report that cannot be made (the zygote that launches us
  // died: SIGPIPE is ignored, so the write fails) ends us: nobody would own what we made next.
  auto report = [report_fd, sync_fd](long pid) {
    int32_t v = static_cast<int32_t>(pid < 0 ? -1 : pid);
    ssize_t n;
    do {
      n = ::write(report_fd, &v, sizeof v);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof v)) ChildFail(sync_fd, LaunchStep::kInit);
  };
  long init = ::syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
  if (init < 0) ChildFail(sync_fd, LaunchStep::kInit);
  if (init == 0) {
    ::close(report_fd);
    InitMain(sync_fd, broker_pidfd, title);
  }
  report(init);
  // After the init's clone, so the init never holds it; before the program's, which inherits it.
  QueueEnds queue;
  ExtraFd extra;
  if (spec.queue) {
    queue = MakeNamespaceQueue(*spec.queue);
    if (queue.writer >= 0) {
      extra = {queue.writer, spec.queue->target_fd};
    } else {
      argv = fallback_argv;
    }
  }
  long program = ::syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
  int clone_errno = errno;
  if (program == 0) {
    ::close(report_fd);
    ExecProgram(spec, argv, /*parent=*/0, broker_pidfd, sync_fd, max_target, extra);
  }
  report(program);
  if (spec.queue && program > 0) SendQueueReport(report_fd, queue);
  errno = clone_errno;
  if (program < 0) ChildFail(sync_fd, LaunchStep::kInit);
  ::_exit(0);
}

// The namespace holder: becomes root of its new user namespace, makes its mounts private and
// mounts the empty root, then reports success by closing the sync pipe and sleeps for good.
[[noreturn]] void HolderMain(int sync_fd, int go_fd, const char* empty_root, pid_t parent,
                             const TitleArea& title) {
  SetTitle(title, "sbx: namespace holder", "sbx: ns holder");
  if (::setpgid(0, 0) < 0) ChildFail(sync_fd, LaunchStep::kProcessGroup);
  char go = 0;
  ssize_t got;
  do {
    got = ::read(go_fd, &go, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) {
    errno = ECANCELED;  // the parent could not map our ids, or died
    ChildFail(sync_fd, LaunchStep::kUserMap);
  }
  ResetSignals(sync_fd);
  BecomeNamespaceRoot(sync_fd);
  // After the credential change, which would clear it; then check the parent is still there.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(sync_fd, LaunchStep::kParentDeath);
  if (::getppid() != parent) ChildFail(sync_fd, LaunchStep::kParentDeath);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    ChildFail(sync_fd, LaunchStep::kMount);
  }
  if (::mount("sbx-empty", empty_root, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=4k,nr_inodes=2,mode=0555") != 0) {
    ChildFail(sync_fd, LaunchStep::kMount);
  }
  ::syscall(SYS_close_range, 0, ~0U, 0);  // includes the sync pipe: EOF means ready
  for (;;) ::pause();
}

Result<void> WriteProcFile(pid_t pid, const char* name, const std::string& content) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return SysError("open " + path);
  auto w = WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(content.data()), content.size()});
  if (!w) return SysError("write " + path);
  return {};
}

Result<void> WriteIdMaps(pid_t pid, uid_t uid, gid_t gid) {
  if (auto r = WriteProcFile(pid, "uid_map", "0 " + std::to_string(uid) + " 1\n"); !r) return r;
  // An unprivileged writer may map gids only after giving up setgroups(2) for the namespace;
  // root keeps it, so the init can drop root's supplementary groups.
  if (::geteuid() != 0) {
    if (auto r = WriteProcFile(pid, "setgroups", "deny"); !r) return r;
  }
  return WriteProcFile(pid, "gid_map", "0 " + std::to_string(gid) + " 1\n");
}

Result<void> ReadSyncReport(int fd) {
  SyncReport report{};
  auto got = ReadFull(fd, {reinterpret_cast<uint8_t*>(&report), sizeof report});
  if (!got) return std::unexpected(got.error());
  if (*got == 0) return {};  // EOF: the exec (or the holder's setup) happened
  if (*got != sizeof report) return MakeError(Errc::kState, "launch failed: short sync report");
  return std::unexpected(Error{
      Errc::kState, report.err,
      std::string("launch failed at ") + LaunchStepName(static_cast<LaunchStep>(report.step))});
}

// Reads the joiner's report: the init's pid, then the program's, each sent as soon as it exists.
// A deadline, so that a joiner stuck for any reason costs one failed launch, not the broker.
// Returns how many pids arrived.
int ReadJoinerReport(int fd, int32_t (&pids)[2]) {
  size_t got = 0;
  const int64_t deadline = MonotonicNs() + int64_t{kJoinerTimeoutMs} * 1'000'000;
  auto* bytes = reinterpret_cast<uint8_t*>(pids);
  while (got < sizeof pids) {
    int64_t left_ms = (deadline - MonotonicNs()) / 1'000'000;
    if (left_ms <= 0) break;
    auto ready = WaitReadable(fd, static_cast<int>(left_ms));
    if (!ready || !*ready) break;
    auto n = ReadSome(fd, std::span(bytes + got, sizeof pids - got));
    if (!n || *n == 0) break;
    got += *n;
  }
  return static_cast<int>(got / sizeof pids[0]);
}

// The launch's report channel: a socket pair, so the queue's read end can ride it (SCM_RIGHTS).
Result<PipePair> MakeReportChannel() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return SysError("socketpair");
  return PipePair{UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// The joiner's last word after both pids (SendQueueReport): the errno of the queue's creation
// and, when it was made, its read end, which is owned before anything else is checked.
Result<void> ReadQueueReport(int fd, LaunchedChild& child) {
  auto ready = WaitReadable(fd, kJoinerTimeoutMs);
  if (!ready) return std::unexpected(ready.error());
  if (!*ready) return MakeError(Errc::kTimeout, "the namespace joiner did not hand the queue over");
  int32_t err = -1;
  iovec iov{&err, sizeof err};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = HandleEintr([&] { return ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC); });
  if (n < 0) return SysError("recvmsg(queue report)");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int))) {
      continue;
    }
    int got = -1;
    std::memcpy(&got, CMSG_DATA(c), sizeof got);
    child.queue = UniqueFd(got);
  }
  if (n != sizeof err || (msg.msg_flags & MSG_CTRUNC) != 0 || err < 0 ||
      (err == 0) != child.queue.valid()) {
    return MakeError(Errc::kState, "the namespace joiner's queue report is malformed");
  }
  child.queue_errno = err;
  return {};
}

// The sync pipe's report, or `fallback` when the recipe failed without one (a joiner killed, or
// stuck past the deadline).
Error LaunchError(int sync_fd, std::string fallback) {
  if (auto r = ReadSyncReport(sync_fd); !r) return r.error();
  return Error{Errc::kState, 0, std::move(fallback)};
}

Result<LaunchedChild> LaunchInNamespaces(const LaunchSpec& spec, const LaunchOrigin& origin,
                                         char* const* argv, char* const* fallback_argv,
                                         int max_target) {
  auto sync = MakePipe(false);
  if (!sync) return std::unexpected(sync.error());
  auto report = MakeReportChannel();
  if (!report) return std::unexpected(report.error());
  // Inherited down to the init and the program: how they tell, after arming PDEATHSIG, that
  // their parent died before they could (pidfds are close-on-exec).
  UniqueFd self;
  if (origin.parent_pidfd < 0) {
    auto fd = PidfdOpen(::getpid());
    if (!fd) return std::unexpected(fd.error());
    self = std::move(*fd);
  }
  const int parent_pidfd = origin.parent_pidfd >= 0 ? origin.parent_pidfd : self.get();
  TitleArea title = FindTitleArea();

  int joiner_fd = -1;
  long pid = Clone3(0, &joiner_fd, origin);
  if (pid < 0) return SysError("clone3");
  if (pid == 0) {
    ::close(report->read.get());
    JoinerMain(spec, argv, fallback_argv, sync->write.get(), report->write.get(), parent_pidfd,
               max_target, title);
  }
  // From here every process is owned as soon as it is known; on any failure the destructors kill
  // and reap them, the program before the init.
  LaunchedChild child;
  child.joiner = ChildProcess(static_cast<pid_t>(pid), UniqueFd(joiner_fd));
  if (origin.on_child) origin.on_child(LaunchRole::kJoiner, child.joiner.pid(), joiner_fd);
  sync->write.reset();
  report->write.reset();
  self.reset();

  int32_t pids[2] = {0, 0};  // the init's and the program's
  int reported = ReadJoinerReport(report->read.get(), pids);
  if (reported < 2 || pids[0] <= 0 || pids[1] <= 0) {
    // The joiner failed or stalled. Whatever it started is ours to end: SIGKILL to the init takes
    // its pid namespace with it. (A program cloned in the instant before the joiner died, and not
    // yet reported, would stay an unreaped zombie, and the init's KillAndReap would give up at
    // its deadline; only a SIGKILL from outside gets there.)
    (void)child.joiner.KillAndReap(MonotonicNs() + ChildProcess::kReapBoundNs);
    if (reported >= 1 && pids[0] > 0) {
      if (origin.on_child) {
        auto fd = PidfdOpen(pids[0]);
        origin.on_child(LaunchRole::kInit, pids[0], fd ? fd->get() : -1);
      }
      ChildProcess::KillAndReapPid(pids[0]);
    }
    // Its sync report says where it failed, if it did.
    return std::unexpected(LaunchError(sync->read.get(), "the namespace joiner did not report"));
  }
  // Both are our children (CLONE_PARENT; from a zygote, our parent's) and unreaped, so their pids
  // cannot have been reused.
  // The program is owned (or, out of fds, reaped) first: the init cannot finish exiting while
  // the program is unreaped.
  auto program = ChildProcess::Adopt(pids[1]);
  auto init = ChildProcess::Adopt(pids[0]);
  if (origin.on_child) {
    origin.on_child(LaunchRole::kInit, pids[0], init ? init->pidfd() : -1);
    origin.on_child(LaunchRole::kProgram, pids[1], program ? program->pidfd() : -1);
  }
  if (!program) ChildProcess::KillAndReapPid(pids[1]);
  if (!init) {
    if (program) (void)program->KillAndReap(MonotonicNs() + ChildProcess::kReapBoundNs);
    ChildProcess::KillAndReapPid(pids[0]);
    return std::unexpected(init.error());
  }
  child.init = std::move(*init);
  if (!program) return std::unexpected(program.error());
  child.process = std::move(*program);
  if (spec.queue) {
    if (auto q = ReadQueueReport(report->read.get(), child); !q) {
      return std::unexpected(LaunchError(sync->read.get(), q.error().ToString()));
    }
  }
  // The recipe failed in the init or the program, or EOF: the exec happened.
  if (auto r = ReadSyncReport(sync->read.get()); !r) return std::unexpected(r.error());
  return child;
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
    case LaunchStep::kUserMap:
      return "user namespace ids";
    case LaunchStep::kJoinNamespaces:
      return "join the sandbox namespaces";
    case LaunchStep::kNewNamespaces:
      return "new pid/ipc/uts namespaces";
    case LaunchStep::kInit:
      return "namespace init";
    case LaunchStep::kMount:
      return "mount the empty root";
    case LaunchStep::kProcessGroup:
      return "own process group";
    case LaunchStep::kCgroup:
      return "join the renderer's cgroup";
    case LaunchStep::kRoot:
      return "enter the empty root";
    case LaunchStep::kCapabilities:
      return "drop capabilities";
    case LaunchStep::kLimits:
      return "rlimits";
    case LaunchStep::kNoNewPrivs:
      return "no_new_privs";
    case LaunchStep::kFilter:
      return "seccomp filter";
    case LaunchStep::kPriority:
      return "nice value";
  }
  return "unknown step";
}

void PrimeLauncher() { (void)FindTitleArea(); }

Result<LaunchedChild> Launch(const LaunchSpec& given, const LaunchOrigin& origin) {
  if (given.argv.empty()) return MakeError(Errc::kInvalidArgument, "empty argv");
  if (given.namespaces && given.namespaces->holder_pidfd < 0 && !origin.in_namespaces) {
    return MakeError(Errc::kInvalidArgument, "namespaces need the holder's pidfd");
  }
  if (given.confine && (!given.namespaces || given.confine->exec_fd < 0 ||
                        given.confine->filter.empty() || given.confine->root.empty())) {
    return MakeError(Errc::kInvalidArgument,
                     "confinement needs namespaces, a program and a filter");
  }
  // The stdio fds join the fd map, which already moves every source out of the way of every
  // target before its dup2s, and dup2 is what clears close-on-exec on exactly these.
  LaunchSpec spec = given;
  for (int target = 0; target < 3; ++target) {
    if (given.stdio[target] >= 0) spec.fds.emplace_back(given.stdio[target], target);
  }
  if (given.queue &&
      (!given.namespaces || given.queue->target_fd < 3 || given.queue->fallback_argv.empty())) {
    return MakeError(Errc::kInvalidArgument,
                     "a queue in the namespace needs namespaces, a target fd and a fallback argv");
  }
  auto c_argv = [](const std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (const auto& a : strings) out.push_back(const_cast<char*>(a.c_str()));
    out.push_back(nullptr);
    return out;
  };
  std::vector<char*> argv = c_argv(spec.argv);
  // Prepared here: the joiner that may switch to it must not allocate.
  std::vector<char*> fallback_argv = c_argv(spec.queue ? spec.queue->fallback_argv : spec.argv);
  int max_target = 2;
  for (auto [from, to] : spec.fds) max_target = std::max(max_target, to);
  if (spec.queue) max_target = std::max(max_target, spec.queue->target_fd);
  if (spec.namespaces) {
    return LaunchInNamespaces(spec, origin, argv.data(), fallback_argv.data(), max_target);
  }

  auto sync = MakePipe(/*nonblocking=*/false);
  if (!sync) return std::unexpected(sync.error());

  int pidfd = -1;
  pid_t parent = origin.parent_pidfd >= 0 ? ::getppid() : ::getpid();
  long pid = Clone3(0, &pidfd, origin);
  if (pid < 0) return SysError("clone3");
  if (pid == 0) ExecProgram(spec, argv.data(), parent, -1, sync->write.get(), max_target);

  LaunchedChild child;
  child.process = ChildProcess(static_cast<pid_t>(pid), UniqueFd(pidfd));
  if (origin.on_child) origin.on_child(LaunchRole::kProgram, child.process.pid(), pidfd);
  sync->write.reset();
  // On a failure the recipe has exited (127) or is about to; the destructor reaps it.
  if (auto r = ReadSyncReport(sync->read.get()); !r) return std::unexpected(r.error());
  return child;
}

}  // namespace sbx

namespace sbx {

Result<NamespaceHolder> NamespaceHolder::Create(uid_t outside_uid, gid_t outside_gid,
                                                const std::string& empty_root) {
  auto sync = MakePipe(false);
  if (!sync) return std::unexpected(sync.error());
  auto go = MakePipe(false);
  if (!go) return std::unexpected(go.error());
  std::string root = empty_root;  // its c_str() must not allocate in the child
  TitleArea title = FindTitleArea();
  pid_t parent = ::getpid();
  int pidfd = -1;
  long pid = Clone3(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS, &pidfd);
  if (pid < 0) return SysError("clone3(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWNS)");
  if (pid == 0) {
    ::close(go->write.get());
    HolderMain(sync->write.get(), go->read.get(), root.c_str(), parent, title);
  }
  NamespaceHolder holder(ChildProcess(static_cast<pid_t>(pid), UniqueFd(pidfd)), empty_root);
  sync->write.reset();
  go->read.reset();
  if (auto r = WriteIdMaps(holder.pid(), outside_uid, outside_gid); !r) {
    return std::unexpected(r.error());  // the destructor kills and reaps it
  }
  static constexpr uint8_t kGo[1] = {'g'};
  if (auto w = WriteAll(go->write.get(), kGo); !w) return std::unexpected(w.error());
  if (auto r = ReadSyncReport(sync->read.get()); !r) return std::unexpected(r.error());
  return holder;
}

}  // namespace sbx
