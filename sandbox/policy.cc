#include "sandbox/policy.h"

#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "ipc/protocol.h"
#include "ipc/unique_fd.h"

namespace sbx::sandbox {

namespace {

using protocol::kControlInFd;
using protocol::kControlOutFd;
using protocol::kHeartbeatFd;

constexpr ArgCheck Arg(unsigned arg, Cmp op, uint64_t value) { return {arg, op, value, 0}; }
// An argument the kernel reads as a 32-bit int: only its low half counts, as in the kernel.
constexpr ArgCheck Int(unsigned arg, uint64_t value) {
  return {arg, Cmp::kMaskedEq, value, 0xffffffffu};
}
constexpr ArgCheck Masked(unsigned arg, uint64_t mask, uint64_t value) {
  return {arg, Cmp::kMaskedEq, value, mask};
}
constexpr ArgCase Case(Outcome outcome, int err, ArgCheck check) {
  return {outcome, err, {check, {}}, 1};
}
constexpr ArgCase Allow(ArgCheck check) { return Case(Outcome::kAllow, 0, check); }
constexpr ArgCase Allow(ArgCheck a, ArgCheck b) { return {Outcome::kAllow, 0, {a, b}, 2}; }
constexpr ArgCase Deny(int err, ArgCheck check) { return Case(Outcome::kErrno, err, check); }

// The flags glibc's pthread_create passes to clone (and, through clone3's fallback, the same).
constexpr uint64_t kThreadFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                                  CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                                  CLONE_CHILD_CLEARTID;
// glibc's fork(): refused politely, as the fork syscall is.
constexpr uint64_t kForkFlags = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD;
// Status flags F_SETFL may set: not O_ASYNC (signals to an owner) nor O_DIRECT. 0100000 is
// O_LARGEFILE as the kernel reports it on x86-64 (userspace's O_LARGEFILE is 0 there).
constexpr uint64_t kSetflAllowed =
    O_ACCMODE | O_APPEND | O_NONBLOCK | O_SYNC | O_DSYNC | O_CLOEXEC | 0100000;
// A futex operation without its two modifier flags.
constexpr uint64_t kFutexOpMask =
    0xffffffffu & ~uint64_t{FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME};

constexpr ArgCase kReadCases[] = {
    Allow(Arg(0, Cmp::kEq, kControlInFd)),
    Deny(EPERM, Arg(0, Cmp::kNe, kControlInFd)),
};
constexpr ArgCase kWriteCases[] = {
    Allow(Arg(0, Cmp::kEq, 1)),
    Allow(Arg(0, Cmp::kEq, 2)),
    Allow(Arg(0, Cmp::kEq, kControlOutFd)),
    Deny(EPERM, Arg(0, Cmp::kEq, 0)),
    Deny(EPERM, Arg(0, Cmp::kEq, kControlInFd)),
    Deny(EPERM, Arg(0, Cmp::kGt, kControlOutFd)),
};
constexpr ArgCase kWritevCases[] = {
    Allow(Arg(0, Cmp::kEq, 2)),
    Deny(EPERM, Arg(0, Cmp::kNe, 2)),
};
constexpr ArgCase kMqSendCases[] = {
    Allow(Arg(0, Cmp::kEq, kHeartbeatFd)),
    Deny(EPERM, Arg(0, Cmp::kNe, kHeartbeatFd)),
};
constexpr ArgCase kCloneCases[] = {
    Allow(Int(0, kThreadFlags)),
    Deny(EPERM, Int(0, kForkFlags)),
    Deny(EPERM, Int(0, SIGCHLD)),
};
constexpr ArgCase kPrlimitCases[] = {
    Allow(Arg(0, Cmp::kEq, 0)),
    Deny(EPERM, Arg(0, Cmp::kNe, 0)),
};
constexpr ArgCase kSignalSelfCases[] = {
    Allow(Arg(0, Cmp::kEq, kSelfPid)),
    Deny(EPERM, Arg(0, Cmp::kNe, kSelfPid)),
};
constexpr ArgCase kFcntlCases[] = {
    Allow(Int(1, F_GETFD)),     Allow(Int(1, F_SETFD)),
    Allow(Int(1, F_GETFL)),     Allow(Int(1, F_SETFL), Masked(2, ~kSetflAllowed, 0)),
    Allow(Int(1, F_GET_SEALS)),
};
constexpr ArgCase kFutexCases[] = {
    Allow(Masked(1, kFutexOpMask, FUTEX_WAIT)),
    Allow(Masked(1, kFutexOpMask, FUTEX_WAKE)),
    Allow(Masked(1, kFutexOpMask, FUTEX_REQUEUE)),
    Allow(Masked(1, kFutexOpMask, FUTEX_CMP_REQUEUE)),
    Allow(Masked(1, kFutexOpMask, FUTEX_WAKE_OP)),
    Allow(Masked(1, kFutexOpMask, FUTEX_WAIT_BITSET)),
    Allow(Masked(1, kFutexOpMask, FUTEX_WAKE_BITSET)),
};
constexpr ArgCase kMadviseCases[] = {
    Allow(Arg(2, Cmp::kLe, MADV_DONTNEED)),  // NORMAL, RANDOM, SEQUENTIAL, WILLNEED, DONTNEED
    Allow(Int(2, MADV_FREE)),
#if defined(__SANITIZE_ADDRESS__)
    // The sanitizer runtime's allocator marks its shadow and metadata this way.
    Allow(Int(2, MADV_NOHUGEPAGE)),
    Allow(Int(2, MADV_DONTDUMP)),
#endif
};
// W^X: nothing executable is mapped after start-up, so no writable code either.
constexpr ArgCase kNoExecCases[] = {
    Allow(Masked(2, PROT_EXEC, 0)),
};
constexpr ArgCase kIoctlCases[] = {
    Deny(ENOTTY, Int(1, TCGETS)),
};
constexpr ArgCase kPrctlCases[] = {
    Allow(Int(0, PR_GET_NAME)),
    Allow(Int(0, PR_SET_NAME)),
};

constexpr Outcome kAllow = Outcome::kAllow;
constexpr Outcome kErrno = Outcome::kErrno;
constexpr Outcome kKill = Outcome::kKill;
constexpr std::span<const ArgCase> kAny;

constexpr SyscallRule kTable[] = {
    // Memory, time, threads: what any running C++ program needs.
    {"brk", kAllow, 0, kAny, "", "malloc"},
    {"mmap", kAllow, 0, kNoExecCases, "`prot` without PROT_EXEC; else kill",
     "malloc, the oom drill; W^X: no new code after start-up"},
    {"munmap", kAllow, 0, kAny, "", "malloc"},
    {"mremap", kAllow, 0, kAny, "", "realloc of large blocks (keeps the protection)"},
    {"mprotect", kAllow, 0, kNoExecCases, "`prot` without PROT_EXEC; else kill",
     "malloc, thread stack guards; W^X: injected data never becomes code"},
    {"madvise", kAllow, 0, kMadviseCases,
     "MADV_NORMAL, RANDOM, SEQUENTIAL, WILLNEED, DONTNEED, FREE (and NOHUGEPAGE, DONTDUMP in "
     "sanitizer builds); else kill",
     "malloc returning memory; not MADV_DONTFORK, MERGEABLE, HWPOISON and the rest"},
    {"futex", kAllow, 0, kFutexCases,
     "WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET, WAKE_BITSET (private or not, "
     "either clock); else kill",
     "locks, condition variables, thread join; the PI operations are a known kernel attack "
     "surface and glibc uses them only for priority-inheriting mutexes"},
    {"clock_gettime", kAllow, 0, kAny, "", "frame timing (the vDSO may skip it)"},
    {"clock_getres", kAllow, 0, kAny, "", "timing"},
    {"gettimeofday", kAllow, 0, kAny, "", "timing"},
    {"clock_nanosleep", kAllow, 0, kAny, "", "sleeping"},
    {"nanosleep", kAllow, 0, kAny, "", "sleeping"},
    {"sched_yield", kAllow, 0, kAny, "", "spin locks"},
    {"getrandom", kAllow, 0, kAny, "", "malloc hardening, std::random_device"},
    {"rt_sigreturn", kAllow, 0, kAny, "", "returning from a signal handler"},
    {"rt_sigprocmask", kAllow, 0, kAny, "", "abort(), thread creation"},
    {"rt_sigaction", kAllow, 0, kAny, "", "abort() resets SIGABRT"},
    {"sigaltstack", kAllow, 0, kAny, "", "sanitizer runtimes"},
    {"restart_syscall", kAllow, 0, kAny, "", "after SIGSTOP/SIGCONT"},
    {"exit", kAllow, 0, kAny, "", "thread exit"},
    {"exit_group", kAllow, 0, kAny, "", "process exit"},
    {"getpid", kAllow, 0, kAny, "", "abort(), raise()"},
    {"gettid", kAllow, 0, kAny, "", "abort(), raise()"},
    {"set_robust_list", kAllow, 0, kAny, "", "new threads"},
    {"rseq", kAllow, 0, kAny, "", "new threads (glibc registers rseq)"},
    {"clone", kAllow, 0, kCloneCases,
     "exactly glibc's thread flags; glibc's fork flags (or SIGCHLD alone): EPERM; else kill",
     "threads; never a new process, namespace or shared-nothing task"},
    {"clone3", kErrno, ENOSYS, kAny, "",
     "its flags live in memory seccomp cannot read; ENOSYS makes glibc fall back to clone, "
     "which the filter can check"},
    {"prlimit64", kAllow, 0, kPrlimitCases, "pid 0 (itself); any other pid: EPERM",
     "the oom drill lowers its own address-space limit"},
    {"getrlimit", kAllow, 0, kAny, "", "the oom drill"},
    {"setrlimit", kAllow, 0, kAny, "", "the oom drill (a limit can only be lowered)"},
    {"getrusage", kAllow, 0, kAny, "", "telemetry"},
    {"sched_getaffinity", kAllow, 0, kAny, "",
     "read-only; thread runtimes (and ASan's) size themselves by it"},
    {"prctl", kAllow, 0, kPrctlCases, "PR_GET_NAME, PR_SET_NAME; else kill",
     "a thread naming itself; the sandbox's own prctl calls all come before the filter"},
    // Its own descriptors.
    {"read", kAllow, 0, kReadCases, "fd 3 (control in); other fds: EPERM", "its control pipe"},
    {"write", kAllow, 0, kWriteCases, "fds 1, 2 (logs) and 4 (control out); other fds: EPERM",
     "logs, its control pipe"},
    {"writev", kAllow, 0, kWritevCases, "fd 2; other fds: EPERM", "glibc's fatal-error messages"},
    {"poll", kAllow, 0, kAny, "", "waiting on the control pipe"},
    {"ppoll", kAllow, 0, kAny, "", "waiting on the control pipe"},
    {"mq_timedsend", kAllow, 0, kMqSendCases, "fd 6 (its heartbeat queue); other fds: EPERM",
     "heartbeats"},
    {"fstat", kAllow, 0, kAny, "", "stdio checks its streams"},
    {"newfstatat", kAllow, 0, kAny, "", "stdio checks its streams (glibc 2.36)"},
    {"lseek", kAllow, 0, kAny, "", "stdio"},
    {"fcntl", kAllow, 0, kFcntlCases,
     "F_GETFD, F_SETFD, F_GETFL, F_GET_SEALS, F_SETFL without O_ASYNC or O_DIRECT; else kill",
     "descriptor flags; no F_DUPFD*, leases, locks, owners or F_SETPIPE_SZ"},
    {"ioctl", kErrno, ENOTTY, kIoctlCases, "TCGETS: ENOTTY; any other request: kill",
     "stdio asks whether stdout is a terminal (isatty) and must hear \"no\"; a terminal's "
     "other ioctls (TIOCSTI types into it) are an escape"},
    {"close", kAllow, 0, kAny, "", "closing its own descriptors"},
    {"ftruncate", kAllow, 0, kAny, "",
     "harmless: the frame memfd is sealed against resizing (EPERM from the seals)"},
    {"kill", kAllow, 0, kSignalSelfCases, "its own pid; any other pid: EPERM", "raise()"},
    {"tgkill", kAllow, 0, kSignalSelfCases, "its own pid; any other pid: EPERM",
     "raise(), abort()"},
    // Denied with an error: what a confused but harmless library might try.
    {"open", kErrno, EPERM, kAny, "", "no files: the renderer gets everything as fds"},
    {"openat", kErrno, EPERM, kAny, "", "no files"},
    {"openat2", kErrno, EPERM, kAny, "", "no files"},
    {"creat", kErrno, EPERM, kAny, "", "no files"},
    {"mkdir", kErrno, EPERM, kAny, "", "no files"},
    {"unlink", kErrno, EPERM, kAny, "", "no files"},
    {"rename", kErrno, EPERM, kAny, "", "no files"},
    {"socket", kErrno, EPERM, kAny, "", "no network, no broker control socket"},
    {"socketpair", kErrno, EPERM, kAny, "", "no new channels"},
    {"connect", kErrno, EPERM, kAny, "", "no network"},
    {"fork", kErrno, EPERM, kAny, "", "no new processes"},
    {"vfork", kErrno, EPERM, kAny, "", "no new processes"},
    {"mq_open", kErrno, EPERM, kAny, "", "queues come from the broker only"},
    {"mq_unlink", kErrno, EPERM, kAny, "", "queues come from the broker only"},
    {"mq_timedreceive", kErrno, EPERM, kAny, "", "its queue is send-only"},
    {"getdents64", kErrno, EPERM, kAny, "", "nothing to list"},
    // Killed: only an attacker calls these.
    {"execve", kKill, 0, kAny, "", "running another program"},
    {"execveat", kKill, 0, kAny, "", "running another program"},
    {"ptrace", kKill, 0, kAny, "", "attaching to another process"},
    {"process_vm_readv", kKill, 0, kAny, "", "reading another process"},
    {"process_vm_writev", kKill, 0, kAny, "", "writing another process"},
    {"mount", kKill, 0, kAny, "", "changing the file system view"},
    {"umount2", kKill, 0, kAny, "", "changing the file system view"},
    {"pivot_root", kKill, 0, kAny, "", "changing the file system view"},
    {"chroot", kKill, 0, kAny, "", "changing the file system view"},
    {"unshare", kKill, 0, kAny, "", "new namespaces (kernel attack surface)"},
    {"setns", kKill, 0, kAny, "", "joining namespaces"},
    {"bpf", kKill, 0, kAny, "", "kernel attack surface"},
    {"perf_event_open", kKill, 0, kAny, "", "kernel attack surface"},
    {"keyctl", kKill, 0, kAny, "", "kernel attack surface"},
    {"userfaultfd", kKill, 0, kAny, "", "a classic exploit helper"},
};

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

Result<void> Check(int rc, std::string_view what) {
  if (rc == 0) return {};
  return std::unexpected(Error{Errc::kSystem, -rc, "seccomp: " + std::string(what)});
}

uint32_t Action(Outcome outcome, int err) {
  return outcome == kAllow   ? SCMP_ACT_ALLOW
         : outcome == kErrno ? SCMP_ACT_ERRNO(static_cast<uint32_t>(err))
                             : SCMP_ACT_KILL_PROCESS;
}

uint64_t Value(uint64_t value, int self_pid) {
  return value == kSelfPid ? static_cast<uint64_t>(self_pid) : value;
}

scmp_arg_cmp ToLibseccomp(const ArgCheck& c, int self_pid) {
  uint64_t v = Value(c.value, self_pid);
  switch (c.op) {
    case Cmp::kEq:
      return {c.arg, SCMP_CMP_EQ, v, 0};
    case Cmp::kNe:
      return {c.arg, SCMP_CMP_NE, v, 0};
    case Cmp::kGt:
      return {c.arg, SCMP_CMP_GT, v, 0};
    case Cmp::kLe:
      return {c.arg, SCMP_CMP_LE, v, 0};
    case Cmp::kMaskedEq:
      return {c.arg, SCMP_CMP_MASKED_EQ, c.mask, v};
  }
  return {c.arg, SCMP_CMP_EQ, v, 0};
}

// One rule's calls into libseccomp. Kill needs none: it is the default action.
Result<void> AddRule(void* f, const SyscallRule& rule, int self_pid) {
  int sys = seccomp_syscall_resolve_name(std::string(rule.name).c_str());
  if (sys == __NR_SCMP_ERROR) return {};  // not on this architecture
  if (rule.cases.empty()) {
    if (rule.outcome == kKill) return {};
    return Check(seccomp_rule_add(f, Action(rule.outcome, rule.err), sys, 0), rule.name);
  }
  for (const ArgCase& c : rule.cases) {
    if (c.outcome == kKill) continue;
    scmp_arg_cmp cmps[2];
    for (size_t i = 0; i < c.count; ++i) cmps[i] = ToLibseccomp(c.checks[i], self_pid);
    int rc = seccomp_rule_add_array(f, Action(c.outcome, c.err), sys,
                                    static_cast<unsigned>(c.count), cmps);
    if (auto r = Check(rc, rule.name); !r) return r;
  }
  return {};
}

Verdict JudgeRule(const SyscallRule& rule, std::span<const uint64_t, 6> args, int self_pid) {
  if (rule.cases.empty()) return {rule.outcome, rule.err};
  for (const ArgCase& c : rule.cases) {
    if (Matches(c, args, self_pid)) return {c.outcome, c.err};
  }
  return {kKill, 0};
}

const SyscallRule* FindIn(std::span<const SyscallRule> table, std::string_view name) {
  for (const auto& r : table) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

// libseccomp 2.5 exports BPF only to a descriptor: a memfd, read back.
Result<std::vector<sock_filter>> ExportProgram(void* f) {
  UniqueFd memfd(static_cast<int>(::syscall(SYS_memfd_create, "sbx-filter", MFD_CLOEXEC)));
  if (!memfd) return SysError("memfd_create");
  int fd = memfd.get();
  if (auto r = Check(seccomp_export_bpf(f, fd), "export"); !r) return std::unexpected(r.error());
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) {
    return MakeError(Errc::kSystem, "seccomp: exported filter has a bad size");
  }
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  ssize_t got = ::pread(fd, program.data(), static_cast<size_t>(size), 0);
  if (got != size) return SysError("read exported filter");
  return program;
}

}  // namespace

std::span<const SyscallRule> PolicyTable() { return kTable; }

const SyscallRule* FindRule(std::string_view name) { return FindIn(kTable, name); }

bool Matches(const ArgCase& c, std::span<const uint64_t, 6> args, int self_pid) {
  for (size_t i = 0; i < c.count; ++i) {
    const ArgCheck& k = c.checks[i];
    uint64_t a = args[k.arg];
    uint64_t v = Value(k.value, self_pid);
    bool ok = k.op == Cmp::kEq   ? a == v
              : k.op == Cmp::kNe ? a != v
              : k.op == Cmp::kGt ? a > v
              : k.op == Cmp::kLe ? a <= v
                                 : (a & k.mask) == v;
    if (!ok) return false;
  }
  return true;
}

Verdict Judge(std::string_view name, std::span<const uint64_t, 6> args, int self_pid) {
  const SyscallRule* rule = FindRule(name);
  return rule == nullptr ? Verdict{kKill, 0} : JudgeRule(*rule, args, self_pid);
}

namespace {

using FilterContext = std::unique_ptr<void, FilterDeleter>;

// The renderer's policy as a libseccomp context, ready to load or export.
Result<FilterContext> BuildPolicy(int self_pid) {
  FilterContext ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) return MakeError(Errc::kSystem, "seccomp_init failed");
  void* f = ctx.get();
  for (const auto& rule : kTable) {
    if (auto r = AddRule(f, rule, self_pid); !r) return std::unexpected(r.error());
  }
  // A syscall of another architecture (int $0x80 from x86-64 code) would otherwise kill only
  // the calling thread, and the renderer would go on without it.
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
                     "bad-architecture action");
      !r) {
    return std::unexpected(r.error());
  }
  // Every thread gets the filter, or none does; libseccomp also sets PR_SET_NO_NEW_PRIVS.
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1), "TSYNC"); !r) {
    return std::unexpected(r.error());
  }
  // Every syscall the renderer makes runs this filter. By default libseccomp emits one compare
  // per rule in a row; a binary tree over the syscall numbers takes a handful (control_rtt).
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_CTL_OPTIMIZE, 2), "binary tree"); !r) {
    return std::unexpected(r.error());
  }
  return ctx;
}

}  // namespace

Result<void> InstallSeccompPolicy(int self_pid) {
  auto ctx = BuildPolicy(self_pid);
  if (!ctx) return std::unexpected(ctx.error());
  return Check(seccomp_load(ctx->get()), "load");
}

Result<std::vector<sock_filter>> PolicyProgram(int self_pid) {
  auto ctx = BuildPolicy(self_pid);
  if (!ctx) return std::unexpected(ctx.error());
  return ExportProgram(ctx->get());
}

Result<void> LoadPolicyProgram(std::span<const sock_filter> program) {
  if (program.empty() || program.size() > BPF_MAXINSNS) {
    return MakeError(Errc::kInvalidArgument, "seccomp: no program, or one too long to load");
  }
  if (::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return SysError("PR_SET_NO_NEW_PRIVS");
  }
  // The kernel copies the program in and never writes to it.
  sock_fprog prog{static_cast<unsigned short>(program.size()),
                  const_cast<sock_filter*>(program.data())};
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (rc < 0) return SysError("seccomp: load");
  // A positive return names a thread the filter could not reach; then no thread has it.
  if (rc > 0) return MakeError(Errc::kSystem, "seccomp: a thread could not take the filter");
  return {};
}

namespace {

constexpr ArgCase kLauncherExecCases[] = {
    Allow(Arg(0, Cmp::kEq, kLauncherExecFd), Int(4, AT_EMPTY_PATH)),
};
constexpr ArgCase kArchPrctlCases[] = {
    Allow(Int(0, ARCH_SET_FS)),
    Deny(EINVAL, Arg(0, Cmp::kNe, ARCH_SET_FS)),
};
constexpr ArgCase kStartupPrctlCases[] = {
    Allow(Int(0, PR_GET_NAME)),         Allow(Int(0, PR_SET_NAME)),
    Allow(Int(0, PR_CAPBSET_DROP)),     Allow(Int(0, PR_SET_DUMPABLE)),
    Allow(Int(0, PR_SET_NO_NEW_PRIVS)),
};

// What a renderer does between the launcher's exec and its own filter that PolicyTable() does
// not allow: static glibc's start-up, and the sandbox's own calls, each of which can only take
// something away. A rule here replaces the table's rule of the same name.
constexpr SyscallRule kStartupTable[] = {
    {"execveat", kAllow, 0, kLauncherExecCases, "fd 64 with AT_EMPTY_PATH; else kill",
     "the launcher's one exec of the renderer"},
    {"arch_prctl", kAllow, 0, kArchPrctlCases, "ARCH_SET_FS; else EINVAL",
     "static glibc sets up thread-local storage"},
    {"set_tid_address", kAllow, 0, kAny, "", "static glibc's start-up"},
    {"getuid", kAllow, 0, kAny, "", "static glibc checks whether it runs set-user-id"},
    {"geteuid", kAllow, 0, kAny, "", "static glibc checks whether it runs set-user-id"},
    {"getgid", kAllow, 0, kAny, "", "static glibc checks whether it runs set-group-id"},
    {"getegid", kAllow, 0, kAny, "", "static glibc checks whether it runs set-group-id"},
    {"readlink", kErrno, ENOENT, kAny, "", "static glibc asks for /proc/self/exe"},
    {"statfs", kAllow, 0, kAny, "", "the renderer checks its root is the empty tmpfs"},
    {"capset", kAllow, 0, kAny, "", "the renderer clears capabilities it no longer has"},
    {"prctl", kAllow, 0, kStartupPrctlCases,
     "PR_GET_NAME, PR_SET_NAME, PR_CAPBSET_DROP, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS; else kill",
     "the renderer's own sandbox calls, each of which only takes away"},
    {"seccomp", kAllow, 0, kAny, "", "the renderer's own filter, which can only narrow this one"},
};

}  // namespace

std::span<const SyscallRule> StartupTable() { return kStartupTable; }

Verdict JudgeAtLaunch(std::string_view name, std::span<const uint64_t, 6> args) {
  const SyscallRule* rule = FindIn(kStartupTable, name);
  if (rule == nullptr) rule = FindRule(name);
  if (rule == nullptr) return {kKill, 0};
  return JudgeRule(*rule, args, kRendererPidInside);
}

Result<std::vector<sock_filter>> LauncherFilterProgram() {
  std::unique_ptr<void, FilterDeleter> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) return MakeError(Errc::kSystem, "seccomp_init failed");
  void* f = ctx.get();
  for (const auto& rule : kTable) {
    if (FindIn(kStartupTable, rule.name) != nullptr) continue;
    if (auto r = AddRule(f, rule, kRendererPidInside); !r) return std::unexpected(r.error());
  }
  for (const auto& rule : kStartupTable) {
    if (auto r = AddRule(f, rule, kRendererPidInside); !r) return std::unexpected(r.error());
  }
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
                     "bad-architecture action");
      !r) {
    return std::unexpected(r.error());
  }
  // The launcher sets no_new_privs itself, as a checked step of its own.
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_CTL_NNP, 0), "no_new_privs"); !r) {
    return std::unexpected(r.error());
  }
  // Every syscall runs this filter as well as the renderer's own: the same binary tree.
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_CTL_OPTIMIZE, 2), "binary tree"); !r) {
    return std::unexpected(r.error());
  }
  return ExportProgram(f);
}

}  // namespace sbx::sandbox
