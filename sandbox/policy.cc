#include "sandbox/policy.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>

#include <array>
#include <memory>
#include <string>

#include "ipc/protocol.h"

namespace sbx::sandbox {

namespace {

using protocol::kControlInFd;
using protocol::kControlOutFd;
using protocol::kHeartbeatFd;

// The table. Rules whose note names an argument condition are installed by hand in
// InstallSeccompPolicy; the rest go in as listed.
constexpr std::array kTable{
    // Memory, time, threads: what any running C++ program needs.
    SyscallRule{"brk", Outcome::kAllow, 0, "malloc"},
    SyscallRule{"mmap", Outcome::kAllow, 0, "malloc, the oom drill"},
    SyscallRule{"munmap", Outcome::kAllow, 0, "malloc"},
    SyscallRule{"mremap", Outcome::kAllow, 0, "realloc of large blocks"},
    SyscallRule{"mprotect", Outcome::kAllow, 0, "malloc, thread stacks"},
    SyscallRule{"madvise", Outcome::kAllow, 0, "malloc returning memory"},
    SyscallRule{"futex", Outcome::kAllow, 0, "locks, thread join"},
    SyscallRule{"clock_gettime", Outcome::kAllow, 0, "frame timing (the vDSO may skip it)"},
    SyscallRule{"clock_getres", Outcome::kAllow, 0, "timing"},
    SyscallRule{"gettimeofday", Outcome::kAllow, 0, "timing"},
    SyscallRule{"clock_nanosleep", Outcome::kAllow, 0, "sleeping"},
    SyscallRule{"nanosleep", Outcome::kAllow, 0, "sleeping"},
    SyscallRule{"sched_yield", Outcome::kAllow, 0, "spin locks"},
    SyscallRule{"getrandom", Outcome::kAllow, 0, "malloc hardening, std::random_device"},
    SyscallRule{"rt_sigreturn", Outcome::kAllow, 0, "returning from a signal handler"},
    SyscallRule{"rt_sigprocmask", Outcome::kAllow, 0, "abort(), thread creation"},
    SyscallRule{"rt_sigaction", Outcome::kAllow, 0, "abort() resets SIGABRT"},
    SyscallRule{"sigaltstack", Outcome::kAllow, 0, "sanitizer runtimes"},
    SyscallRule{"restart_syscall", Outcome::kAllow, 0, "after SIGSTOP/SIGCONT"},
    SyscallRule{"exit", Outcome::kAllow, 0, "thread exit"},
    SyscallRule{"exit_group", Outcome::kAllow, 0, "process exit"},
    SyscallRule{"getpid", Outcome::kAllow, 0, "abort(), raise()"},
    SyscallRule{"gettid", Outcome::kAllow, 0, "abort(), raise()"},
    SyscallRule{"set_robust_list", Outcome::kAllow, 0, "new threads"},
    SyscallRule{"rseq", Outcome::kAllow, 0, "new threads (glibc registers rseq)"},
    SyscallRule{"clone", Outcome::kAllow, 0,
                "only with CLONE_THREAD (threads); anything else (fork) fails with EPERM"},
    SyscallRule{"clone3", Outcome::kErrno, ENOSYS,
                "its flags live in memory seccomp cannot read; ENOSYS makes glibc fall back to "
                "clone, which the filter can check"},
    SyscallRule{"prlimit64", Outcome::kAllow, 0,
                "only on itself (pid 0): the oom drill lowers its own address-space limit"},
    SyscallRule{"getrlimit", Outcome::kAllow, 0, "the oom drill"},
    SyscallRule{"setrlimit", Outcome::kAllow, 0, "the oom drill (a limit can only be lowered)"},
    SyscallRule{"getrusage", Outcome::kAllow, 0, "telemetry"},
    SyscallRule{"sched_getaffinity", Outcome::kAllow, 0,
                "read-only; thread runtimes (and ASan's) size themselves by it"},
    // Its own descriptors.
    SyscallRule{"read", Outcome::kAllow, 0, "only fd 3 (control in); other fds fail with EPERM"},
    SyscallRule{"write", Outcome::kAllow, 0,
                "only fds 1, 2 (logs) and 4 (control out); other fds fail with EPERM"},
    SyscallRule{"writev", Outcome::kAllow, 0, "only fd 2: glibc's fatal-error messages"},
    SyscallRule{"poll", Outcome::kAllow, 0, "waiting on the control pipe"},
    SyscallRule{"ppoll", Outcome::kAllow, 0, "waiting on the control pipe"},
    SyscallRule{"mq_timedsend", Outcome::kAllow, 0,
                "only fd 6 (its heartbeat queue); other fds fail with EPERM"},
    SyscallRule{"fstat", Outcome::kAllow, 0, "stdio checks its streams"},
    SyscallRule{"newfstatat", Outcome::kAllow, 0, "stdio checks its streams (glibc 2.36)"},
    SyscallRule{"lseek", Outcome::kAllow, 0, "stdio"},
    SyscallRule{"fcntl", Outcome::kAllow, 0, "descriptor flags"},
    SyscallRule{"close", Outcome::kAllow, 0, "closing its own descriptors"},
    SyscallRule{"ftruncate", Outcome::kAllow, 0,
                "harmless: the frame memfd is sealed against resizing (EPERM from the seals)"},
    SyscallRule{"kill", Outcome::kAllow, 0, "only itself; any other pid fails with EPERM"},
    SyscallRule{"tgkill", Outcome::kAllow, 0, "only itself (raise, abort); others EPERM"},
    // Denied with an error: what a confused but harmless library might try.
    SyscallRule{"open", Outcome::kErrno, EPERM, "no files: the renderer gets everything as fds"},
    SyscallRule{"openat", Outcome::kErrno, EPERM, "no files"},
    SyscallRule{"openat2", Outcome::kErrno, EPERM, "no files"},
    SyscallRule{"creat", Outcome::kErrno, EPERM, "no files"},
    SyscallRule{"mkdir", Outcome::kErrno, EPERM, "no files"},
    SyscallRule{"unlink", Outcome::kErrno, EPERM, "no files"},
    SyscallRule{"rename", Outcome::kErrno, EPERM, "no files"},
    SyscallRule{"socket", Outcome::kErrno, EPERM, "no network, no broker control socket"},
    SyscallRule{"socketpair", Outcome::kErrno, EPERM, "no new channels"},
    SyscallRule{"connect", Outcome::kErrno, EPERM, "no network"},
    SyscallRule{"fork", Outcome::kErrno, EPERM, "no new processes"},
    SyscallRule{"vfork", Outcome::kErrno, EPERM, "no new processes"},
    SyscallRule{"mq_open", Outcome::kErrno, EPERM, "queues come from the broker only"},
    SyscallRule{"mq_unlink", Outcome::kErrno, EPERM, "queues come from the broker only"},
    SyscallRule{"mq_timedreceive", Outcome::kErrno, EPERM, "its queue is send-only"},
    SyscallRule{"getdents64", Outcome::kErrno, EPERM, "nothing to list"},
    // Killed: only an attacker calls these.
    SyscallRule{"execve", Outcome::kKill, 0, "running another program"},
    SyscallRule{"execveat", Outcome::kKill, 0, "running another program"},
    SyscallRule{"ptrace", Outcome::kKill, 0, "attaching to another process"},
    SyscallRule{"process_vm_readv", Outcome::kKill, 0, "reading another process"},
    SyscallRule{"process_vm_writev", Outcome::kKill, 0, "writing another process"},
    SyscallRule{"mount", Outcome::kKill, 0, "changing the file system view"},
    SyscallRule{"umount2", Outcome::kKill, 0, "changing the file system view"},
    SyscallRule{"pivot_root", Outcome::kKill, 0, "changing the file system view"},
    SyscallRule{"chroot", Outcome::kKill, 0, "changing the file system view"},
    SyscallRule{"unshare", Outcome::kKill, 0, "new namespaces (kernel attack surface)"},
    SyscallRule{"setns", Outcome::kKill, 0, "joining namespaces"},
    SyscallRule{"bpf", Outcome::kKill, 0, "kernel attack surface"},
    SyscallRule{"perf_event_open", Outcome::kKill, 0, "kernel attack surface"},
    SyscallRule{"keyctl", Outcome::kKill, 0, "kernel attack surface"},
    SyscallRule{"userfaultfd", Outcome::kKill, 0, "a classic exploit helper"},
};

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

Result<void> Check(int rc, std::string_view what) {
  if (rc == 0) return {};
  return std::unexpected(Error{Errc::kSystem, -rc, "seccomp: " + std::string(what)});
}

}  // namespace

std::span<const SyscallRule> PolicyTable() { return kTable; }

const SyscallRule* FindRule(std::string_view name) {
  for (const auto& r : kTable) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

Result<void> InstallSeccompPolicy(int self_pid) {
  std::unique_ptr<void, FilterDeleter> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) return MakeError(Errc::kSystem, "seccomp_init failed");
  void* f = ctx.get();
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  auto nr = [](std::string_view name) {
    return seccomp_syscall_resolve_name(std::string(name).c_str());
  };

  for (const auto& rule : kTable) {
    int sys = nr(rule.name);
    if (sys == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (rule.name == "read" || rule.name == "write" || rule.name == "writev" ||
        rule.name == "mq_timedsend" || rule.name == "clone" || rule.name == "prlimit64" ||
        rule.name == "kill" || rule.name == "tgkill") {
      continue;  // conditional: below
    }
    uint32_t action = rule.outcome == Outcome::kAllow   ? SCMP_ACT_ALLOW
                      : rule.outcome == Outcome::kErrno ? SCMP_ACT_ERRNO(rule.err)
                                                        : SCMP_ACT_KILL_PROCESS;
    if (action == SCMP_ACT_KILL_PROCESS) continue;  // the default already
    if (auto r = Check(seccomp_rule_add(f, action, sys, 0), rule.name); !r) return r;
  }

  using A = scmp_arg_cmp;
  auto fd_is = [](unsigned fd) { return A{0, SCMP_CMP_EQ, fd, 0}; };
  struct Conditional {
    const char* name;
    uint32_t action;
    A cmp;
  };
  const uint64_t self = static_cast<uint64_t>(self_pid);
  const Conditional conditional[] = {
      {"read", SCMP_ACT_ALLOW, fd_is(kControlInFd)},
      {"read", eperm, A{0, SCMP_CMP_NE, kControlInFd, 0}},
      {"write", SCMP_ACT_ALLOW, fd_is(1)},
      {"write", SCMP_ACT_ALLOW, fd_is(2)},
      {"write", SCMP_ACT_ALLOW, fd_is(kControlOutFd)},
      {"write", eperm, fd_is(0)},
      {"write", eperm, fd_is(kControlInFd)},
      {"write", eperm, A{0, SCMP_CMP_GT, kControlOutFd, 0}},
      {"writev", SCMP_ACT_ALLOW, fd_is(2)},
      {"writev", eperm, A{0, SCMP_CMP_NE, 2, 0}},
      {"mq_timedsend", SCMP_ACT_ALLOW, fd_is(kHeartbeatFd)},
      {"mq_timedsend", eperm, A{0, SCMP_CMP_NE, kHeartbeatFd, 0}},
      {"clone", SCMP_ACT_ALLOW, A{0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD}},
      {"clone", eperm, A{0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0}},
      {"prlimit64", SCMP_ACT_ALLOW, A{0, SCMP_CMP_EQ, 0, 0}},
      {"prlimit64", eperm, A{0, SCMP_CMP_NE, 0, 0}},
      {"kill", SCMP_ACT_ALLOW, A{0, SCMP_CMP_EQ, self, 0}},
      {"kill", eperm, A{0, SCMP_CMP_NE, self, 0}},
      {"tgkill", SCMP_ACT_ALLOW, A{0, SCMP_CMP_EQ, self, 0}},
      {"tgkill", eperm, A{0, SCMP_CMP_NE, self, 0}},
  };
  for (const auto& c : conditional) {
    int sys = nr(c.name);
    if (sys == __NR_SCMP_ERROR) continue;
    if (auto r = Check(seccomp_rule_add(f, c.action, sys, 1, c.cmp), c.name); !r) return r;
  }
  // Every thread gets the filter, or none does; libseccomp also sets PR_SET_NO_NEW_PRIVS.
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1), "TSYNC"); !r) return r;
  // Every syscall the renderer makes runs this filter. By default libseccomp emits one compare
  // per rule in a row; a binary tree over the syscall numbers takes a handful (control_rtt).
  if (auto r = Check(seccomp_attr_set(f, SCMP_FLTATR_CTL_OPTIMIZE, 2), "binary tree"); !r) {
    return r;
  }
  return Check(seccomp_load(f), "load");
}

}  // namespace sbx::sandbox
