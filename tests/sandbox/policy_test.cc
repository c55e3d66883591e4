// The seccomp policy from inside: each rule of the table, exercised in a child process that
// installed the policy (a death test forks; the test process itself is never sandboxed).
#include "sandbox/policy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <mqueue.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "broker/exit_status.h"
#include "ipc/frame_buffer.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "sandbox/prepared_policy.h"

namespace sbx::sandbox {
namespace {

// In the child: puts a pipe at fds 3/4 and a queue writer at fd 6 (the renderer's numbers),
// then installs the policy: compiled now for its pid, or, with `prepared`, the program prepared
// at build time for pid kRendererPidInside (what a renderer in its pid namespace loads). Exits
// 100 if the setup itself fails, so that cannot pass for a verdict.
void BecomeRenderer(bool prepared = false) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) ::_exit(100);
  auto queue = CreateQueuePair(protocol::kQueueMaxMsg, protocol::kQueueMsgSize);
  if (!queue) ::_exit(100);
  // Lift every source above the target numbers first, so no dup2 closes a source it needs.
  int read_end = ::fcntl(p[0], F_DUPFD_CLOEXEC, 32);
  int write_end = ::fcntl(p[1], F_DUPFD_CLOEXEC, 32);
  int writer = ::fcntl(queue->writer.get(), F_DUPFD_CLOEXEC, 32);
  int reader = ::fcntl(queue->reader.release(), F_DUPFD_CLOEXEC, 32);  // keeps sends landing
  if (read_end < 0 || write_end < 0 || writer < 0 || reader < 0) ::_exit(100);
  if (::dup2(read_end, protocol::kControlInFd) < 0 ||
      ::dup2(write_end, protocol::kControlOutFd) < 0 ||
      ::dup2(writer, protocol::kHeartbeatFd) < 0) {
    ::_exit(100);
  }
  if (prepared ? !LoadPolicyProgram(PreparedPolicyProgram()) : !InstallSeccompPolicy(::getpid())) {
    ::_exit(100);
  }
}

std::string Name(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '-') c = '_';
  }
  return out;
}

// One call to make in a child that installed the policy, and what must become of it.
struct Probe {
  std::string name;
  std::string syscall;
  std::array<uint64_t, 6> args;
  Verdict expected;
  bool prepared = false;  // under the program prepared at build time (BecomeRenderer)
};

// The probes once more, each under the prepared program.
std::vector<Probe> UnderThePreparedProgram(std::vector<Probe> probes) {
  for (Probe& p : probes) p.prepared = true;
  return probes;
}

// Names the probe in test output instead of dumping its bytes.
void PrintTo(const Probe& p, std::ostream* os) { *os << p.name; }

// Arguments for which every check of `c` holds (the others stay 0).
std::array<uint64_t, 6> Witness(const ArgCase& c) {
  std::array<uint64_t, 6> a{};
  for (size_t i = 0; i < c.count; ++i) {
    const ArgCheck& k = c.checks[i];
    if (k.value == kSelfPid) {
      // Not v + 1: a death test's child may well have the next pid. pid 1 is never the child.
      a[k.arg] = k.op == Cmp::kNe ? 1 : static_cast<uint64_t>(::getpid());
      continue;
    }
    a[k.arg] = k.op == Cmp::kNe || k.op == Cmp::kGt ? k.value + 1 : k.value;
  }
  return a;
}

// Arguments that no case of `rule` accepts, which the policy therefore kills, if a few values
// next to the ones its checks name find some.
std::optional<std::array<uint64_t, 6>> KilledArgs(const SyscallRule& rule) {
  for (const ArgCase& c : rule.cases) {
    for (size_t i = 0; i < c.count; ++i) {
      const ArgCheck& k = c.checks[i];
      uint64_t low_bit = k.op == Cmp::kMaskedEq ? k.mask & (~k.mask + 1) : 0;
      for (uint64_t v : {k.value + 1, k.value + 2, k.value | low_bit, k.value + 0x100}) {
        std::array<uint64_t, 6> a{};
        a[k.arg] = v;
        if (Judge(rule.name, a, ::getpid()).outcome == Outcome::kKill) return a;
      }
    }
  }
  return std::nullopt;
}

// Every denied row of the table: the whole row when it has no argument conditions, else each
// denied case, and arguments no case accepts.
std::vector<Probe> DeniedProbes() {
  std::vector<Probe> out;
  for (const auto& r : PolicyTable()) {
    std::string name(r.name);
    if (r.cases.empty()) {
      if (r.outcome != Outcome::kAllow) out.push_back({name, name, {}, {r.outcome, r.err}});
      continue;
    }
    int n = 0;
    for (const ArgCase& c : r.cases) {
      if (c.outcome == Outcome::kAllow) continue;
      out.push_back({name + "_case" + std::to_string(n++), name, Witness(c), {c.outcome, c.err}});
    }
    if (auto killed = KilledArgs(r)) {
      out.push_back({name + "_otherwise", name, *killed, {Outcome::kKill, 0}});
    }
  }
  return out;
}

[[noreturn]] void Call(int nr, const std::array<uint64_t, 6>& a, bool prepared) {
  BecomeRenderer(prepared);
  long r = ::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  ::_exit(r == -1 ? errno : 0);
}

// Checks the table's reading of the probe, then the kernel's.
void ExpectOutcome(const Probe& p) {
  int nr = seccomp_syscall_resolve_name(p.syscall.c_str());
  if (nr == __NR_SCMP_ERROR) GTEST_SKIP() << p.syscall << " does not exist on this architecture";
  Verdict judged = Judge(p.syscall, p.args, p.prepared ? kRendererPidInside : ::getpid());
  EXPECT_EQ(judged.outcome, p.expected.outcome) << p.name;
  EXPECT_EQ(judged.err, p.expected.err) << p.name;
  if (p.expected.outcome == Outcome::kKill) {
    EXPECT_EXIT(Call(nr, p.args, p.prepared), ::testing::KilledBySignal(SIGSYS), "") << p.name;
  } else {
    EXPECT_EXIT(Call(nr, p.args, p.prepared), ::testing::ExitedWithCode(p.expected.err), "")
        << p.name << " should fail with errno " << p.expected.err;
  }
}

class DeniedSyscallTest : public ::testing::TestWithParam<Probe> {};

// Arguments beyond the conditions are zero: seccomp decides before the kernel looks at them.
TEST_P(DeniedSyscallTest, HasItsDocumentedOutcome) { ExpectOutcome(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Policy, DeniedSyscallTest, ::testing::ValuesIn(DeniedProbes()),
                         [](const auto& info) { return Name(info.param.name); });
INSTANTIATE_TEST_SUITE_P(PreparedPolicy, DeniedSyscallTest,
                         ::testing::ValuesIn(UnderThePreparedProgram(DeniedProbes())),
                         [](const auto& info) { return Name(info.param.name); });

// What Chromium's baseline policy pins down by argument, each checked by name.
std::vector<Probe> PinnedProbes() {
  constexpr uint64_t kRwx = PROT_READ | PROT_WRITE | PROT_EXEC;
  constexpr uint64_t kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
  constexpr uint64_t kNoFd = ~uint64_t{0};
  constexpr uint64_t kBareThread = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
  const Verdict kill{Outcome::kKill, 0};
  return {
      {"fcntl_dupfd", "fcntl", {3, F_DUPFD}, kill},
      {"fcntl_dupfd_cloexec", "fcntl", {3, F_DUPFD_CLOEXEC}, kill},
      {"fcntl_setlease", "fcntl", {3, F_SETLEASE, F_WRLCK}, kill},
      {"fcntl_setpipe_sz", "fcntl", {3, F_SETPIPE_SZ, 1 << 20}, kill},
      {"fcntl_setfl_async", "fcntl", {3, F_SETFL, O_ASYNC}, kill},
      {"clone_new_user_namespace", "clone", {CLONE_NEWUSER | SIGCHLD}, kill},
      {"clone_vfork", "clone", {CLONE_VM | CLONE_VFORK | SIGCHLD}, kill},
      {"clone_thread_without_tls", "clone", {kBareThread}, kill},
      {"futex_cmp_requeue_pi", "futex", {0, FUTEX_CMP_REQUEUE_PI_PRIVATE}, kill},
      {"futex_lock_pi", "futex", {0, FUTEX_LOCK_PI}, kill},
      {"madvise_dontfork", "madvise", {0, 4096, MADV_DONTFORK}, kill},
      {"madvise_hwpoison", "madvise", {0, 4096, MADV_HWPOISON}, kill},
      {"mmap_write_exec", "mmap", {0, 4096, kRwx, kAnon, kNoFd}, kill},
      {"mmap_exec", "mmap", {0, 4096, PROT_READ | PROT_EXEC, kAnon, kNoFd}, kill},
      {"mprotect_exec", "mprotect", {0, 4096, PROT_READ | PROT_EXEC}, kill},
      {"ioctl_tiocsti", "ioctl", {0, TIOCSTI}, kill},
      {"ioctl_tcgets", "ioctl", {1, TCGETS}, {Outcome::kErrno, ENOTTY}},
      {"prctl_set_dumpable", "prctl", {PR_SET_DUMPABLE, 1}, kill},
      {"prctl_set_pdeathsig", "prctl", {PR_SET_PDEATHSIG, SIGKILL}, kill},
  };
}

class PinnedArgumentTest : public ::testing::TestWithParam<Probe> {};

TEST_P(PinnedArgumentTest, IsRefused) { ExpectOutcome(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Policy, PinnedArgumentTest, ::testing::ValuesIn(PinnedProbes()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(PreparedPolicy, PinnedArgumentTest,
                         ::testing::ValuesIn(UnderThePreparedProgram(PinnedProbes())),
                         [](const auto& info) { return info.param.name; });

// The program built into the renderer is the table as libseccomp compiles it now, instruction
// for instruction, and for the pid a renderer has in its own pid namespace only.
TEST(PreparedPolicyTest, IsWhatLibseccompCompilesFromTheTable) {
  std::span<const sock_filter> prepared = PreparedPolicyProgram();
  auto fresh = PolicyProgram(kRendererPidInside);
  ASSERT_TRUE(fresh) << fresh.error().ToString();
  ASSERT_EQ(prepared.size(), fresh->size());
  EXPECT_EQ(std::memcmp(prepared.data(), fresh->data(), prepared.size_bytes()), 0);
  auto other_pid = PolicyProgram(kRendererPidInside + 1);
  ASSERT_TRUE(other_pid) << other_pid.error().ToString();
  EXPECT_FALSE(other_pid->size() == prepared.size() &&
               std::memcmp(prepared.data(), other_pid->data(), prepared.size_bytes()) == 0)
      << "the pid a signal may go to is not in the program";
}

// Loaded as a renderer loads it, the prepared program reaches every thread (TSYNC) and lets a
// renderer's ordinary calls through.
[[noreturn]] void UseThePreparedProgramFromAThread() {
  std::atomic<int> step{0};
  std::thread t([&] {
    while (step.load() == 0) std::this_thread::yield();
    // getcwd is in no table: the whole process dies here if this thread has the filter.
    ::syscall(SYS_getcwd, nullptr, 0);
    step = 2;
  });
  BecomeRenderer(/*prepared=*/true);
  char out = 'x';
  char in = 0;
  if (::write(protocol::kControlOutFd, &out, 1) != 1) ::_exit(4);
  if (::read(protocol::kControlInFd, &in, 1) != 1 || in != 'x') ::_exit(5);
  step = 1;
  t.join();
  ::_exit(1);
}

TEST(PreparedPolicyTest, ReachesEveryThread) {
  EXPECT_EXIT(UseThePreparedProgramFromAThread(), ::testing::KilledBySignal(SIGSYS), "");
}

// A conditional rule's outcome column is its most permissive case, and each case's witness
// matches that case and no other: libseccomp merges overlapping rules for one syscall into
// whichever action it picks.
TEST(PolicyTest, ConditionalRulesAreConsistent) {
  for (const auto& r : PolicyTable()) {
    if (r.cases.empty()) {
      EXPECT_TRUE(r.args.empty()) << r.name << " documents conditions it does not have";
      continue;
    }
    EXPECT_FALSE(r.args.empty()) << r.name << " has conditions but documents none";
    Outcome most = Outcome::kKill;
    for (const ArgCase& c : r.cases) {
      ASSERT_GE(c.count, 1u) << r.name;
      ASSERT_LE(c.count, 2u) << r.name;
      for (size_t i = 0; i < c.count; ++i) EXPECT_LT(c.checks[i].arg, 6u) << r.name;
      if (static_cast<int>(c.outcome) < static_cast<int>(most)) most = c.outcome;
      auto w = Witness(c);
      int matching = 0;
      for (const ArgCase& other : r.cases) matching += Matches(other, w, ::getpid());
      EXPECT_EQ(matching, 1) << r.name << ": cases overlap";
    }
    EXPECT_EQ(r.outcome, most) << r.name;
  }
}

// An x86-64 renderer making a 32-bit system call (int $0x80) is of a foreign architecture to
// the filter: the whole process dies, not only the calling thread.
[[noreturn]] void ForeignArchitectureSyscallOnAThread() {
  BecomeRenderer();
  std::thread t([] {
    long r = 20;  // getpid on i386
    asm volatile("int $0x80" : "+a"(r) : : "memory");
  });
  t.join();
  ::_exit(1);  // only the thread died
}

TEST(PolicyTest, AForeignArchitectureSyscallKillsTheWholeProcess) {
  EXPECT_EXIT(ForeignArchitectureSyscallOnAThread(), ::testing::KilledBySignal(SIGSYS), "");
}

// ... and the broker classifies that death as a sandbox violation.
TEST(PolicyTest, AForeignArchitectureKillIsASandboxViolation) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ForeignArchitectureSyscallOnAThread();
  siginfo_t si{};
  ASSERT_EQ(HandleEintr([&] { return ::waitid(P_PID, child, &si, WEXITED); }), 0);
  ExitInfo info = ClassifyExit(si.si_code, si.si_status, KillReason::kNone);
  EXPECT_EQ(info.status, ExitStatus::kSandboxViolation) << info.detail;
  EXPECT_EQ(info.signal, SIGSYS);
}

// A syscall outside the table is killed too: the default is deny.
TEST(PolicyTest, AnUnlistedSyscallIsKilled) {
  EXPECT_EXIT(
      {
        BecomeRenderer();
        ::syscall(SYS_getcwd, nullptr, 0);
        ::_exit(1);
      },
      ::testing::KilledBySignal(SIGSYS), "");
}

// Each check exits 0 when the call behaved as documented; the exit code names the failing one.
[[noreturn]] void UseWhatARendererNeeds() {
  BecomeRenderer();
  timespec ts;
  if (::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) ::_exit(1);
  // Threads: glibc tries clone3 (ENOSYS by policy) and falls back to clone(CLONE_THREAD).
  std::atomic<int> ran{0};
  std::thread t([&] { ran = 1; });
  t.join();
  if (ran != 1) ::_exit(2);
  // futex: a wake with no waiter returns 0.
  int word = 0;
  if (::syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) != 0) ::_exit(3);
  // Its own pipe, fds 4 -> 3.
  char out = 'x';
  char in = 0;
  if (::write(protocol::kControlOutFd, &out, 1) != 1) ::_exit(4);
  if (::read(protocol::kControlInFd, &in, 1) != 1 || in != 'x') ::_exit(5);
  // Its own queue, fd 6.
  char msg[8] = {};
  if (::mq_send(protocol::kHeartbeatFd, msg, sizeof msg, 0) != 0) ::_exit(6);
  // Memory.
  void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || ::munmap(p, 1 << 20) != 0) ::_exit(7);
  // Setting its own limit (the oom drill lowers it). Set to what it is: a lower figure would
  // starve a sanitizer build, whose shadow memory alone reserves terabytes of address space.
  rlimit lim;
  if (::getrlimit(RLIMIT_AS, &lim) != 0 || ::setrlimit(RLIMIT_AS, &lim) != 0) ::_exit(8);
  // A signal to itself.
  if (::kill(::getpid(), 0) != 0) ::_exit(9);
  // The argument conditions let through what glibc and the renderer do.
  void* q = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) ::_exit(10);
  if (::mprotect(q, 4096, PROT_NONE) != 0) ::_exit(11);  // a guard page
  if (::madvise(q, 8192, MADV_DONTNEED) != 0) ::_exit(12);
  int fl = ::fcntl(protocol::kControlInFd, F_GETFL);
  if (fl < 0 || ::fcntl(protocol::kControlInFd, F_SETFL, fl | O_NONBLOCK) != 0) ::_exit(13);
  if (::fcntl(protocol::kControlInFd, F_GETFD) < 0) ::_exit(14);
  char name[16] = {};
  if (::prctl(PR_GET_NAME, name) != 0 || ::prctl(PR_SET_NAME, "policy-test") != 0) ::_exit(15);
  // A condition variable with a deadline: FUTEX_WAIT_BITSET on the realtime clock.
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, std::chrono::milliseconds(1));
  ::_exit(0);
}

// glibc's stdio asks whether stdout is a terminal (ioctl TCGETS) before its first write to a
// character device; the answer must be "no" (ENOTTY), not death. /dev/null is such a device.
[[noreturn]] void PrintToStdout() {
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0 || ::dup2(null_fd, 1) != 1) ::_exit(100);
  BecomeRenderer();
  std::printf("a renderer may print\n");
  ::_exit(std::fflush(stdout) == 0 && !::isatty(1) && errno == ENOTTY ? 0 : 1);
}

TEST(PolicyTest, StdioToACharacterDeviceStillWorks) {
  EXPECT_EXIT(PrintToStdout(), ::testing::ExitedWithCode(0), "");
}

TEST(PolicyTest, WhatARendererNeedsStillWorks) {
  EXPECT_EXIT(UseWhatARendererNeeds(), ::testing::ExitedWithCode(0), "");
}

[[noreturn]] void TryWhatArgumentConditionsDeny() {
  pid_t parent = ::getppid();  // getppid itself is not in the policy
  BecomeRenderer();
  char c = 0;
  auto eperm = [](long r) { return r == -1 && errno == EPERM; };
  if (!eperm(::write(protocol::kFrameFd, &c, 1))) ::_exit(1);         // not a write fd
  if (!eperm(::read(0, &c, 1))) ::_exit(2);                           // not its read fd
  if (!eperm(::kill(parent, 0))) ::_exit(3);                          // someone else
  if (!eperm(::mq_send(7, &c, 1, 0))) ::_exit(4);                     // not its queue
  if (!eperm(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0))) ::_exit(5);  // fork, by clone
  if (!eperm(::syscall(SYS_prlimit64, parent, RLIMIT_AS, nullptr, nullptr))) ::_exit(6);
  clone_args args{};
  if (!(::syscall(SYS_clone3, &args, sizeof args) == -1 && errno == ENOSYS)) ::_exit(7);
  ::_exit(0);
}

TEST(PolicyTest, ArgumentConditionsDenyWithEperm) {
  EXPECT_EXIT(TryWhatArgumentConditionsDeny(), ::testing::ExitedWithCode(0), "");
}

TEST(PolicyTest, ShrinkingTheSealedFrameMemfdFailsWithEperm) {
  auto frames = FrameReader::Create({64, 32});
  ASSERT_TRUE(frames);
  // Above the renderer's fd numbers, which BecomeRenderer overwrites.
  int fd = ::fcntl(frames->fd(), F_DUPFD_CLOEXEC, 32);
  ASSERT_GE(fd, 0);
  EXPECT_EXIT(
      {
        BecomeRenderer();
        // ftruncate is allowed by the policy; the seals are what refuse it.
        ::_exit(::ftruncate(fd, 0) == -1 && errno == EPERM ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace sbx::sandbox

namespace sbx::sandbox {
namespace {

// In the child: installs the launcher's filter alone, as the launcher does before exec.
void UnderTheLauncherFilter() {
  auto program = LauncherFilterProgram();
  if (!program) ::_exit(100);
  sock_fprog prog{static_cast<unsigned short>(program->size()), program->data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(100);
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) ::_exit(100);
}

std::array<uint64_t, 6> Args(uint64_t a0, uint64_t a4 = 0) { return {a0, 0, 0, 0, a4, 0}; }

TEST(LauncherFilterTest, TheTablesSayWhatItAllows) {
  // What only the start-up needs is allowed here, and refused by the renderer's own policy.
  EXPECT_EQ(JudgeAtLaunch("prctl", Args(PR_CAPBSET_DROP)).outcome, Outcome::kAllow);
  EXPECT_EQ(Judge("prctl", Args(PR_CAPBSET_DROP), ::getpid()).outcome, Outcome::kKill);
  EXPECT_EQ(JudgeAtLaunch("statfs", Args(0)).outcome, Outcome::kAllow);
  EXPECT_EQ(JudgeAtLaunch("execveat", Args(kLauncherExecFd, AT_EMPTY_PATH)).outcome,
            Outcome::kAllow);
  // The one exec only: another descriptor, or other flags, kills.
  EXPECT_EQ(JudgeAtLaunch("execveat", Args(3, AT_EMPTY_PATH)).outcome, Outcome::kKill);
  EXPECT_EQ(JudgeAtLaunch("execveat", Args(kLauncherExecFd, 0)).outcome, Outcome::kKill);
  EXPECT_EQ(JudgeAtLaunch("execve", Args(0)).outcome, Outcome::kKill);
  // The renderer's table holds for everything else, and anything in neither table is killed.
  EXPECT_EQ(JudgeAtLaunch("openat", Args(0)).outcome, Outcome::kErrno);
  EXPECT_EQ(JudgeAtLaunch("kill", Args(kRendererPidInside)).outcome, Outcome::kAllow);
  EXPECT_EQ(JudgeAtLaunch("kill", Args(static_cast<uint64_t>(-1))).outcome, Outcome::kErrno);
  EXPECT_EQ(JudgeAtLaunch("getcwd", Args(0)).outcome, Outcome::kKill);
  EXPECT_EQ(JudgeAtLaunch("mount", Args(0)).outcome, Outcome::kKill);
  for (const auto& rule : StartupTable()) EXPECT_FALSE(rule.why.empty()) << rule.name;
}

TEST(LauncherFilterTest, ItIsAnAllowlist) {
  EXPECT_EXIT(
      {
        UnderTheLauncherFilter();
        ::syscall(SYS_getcwd, nullptr, 0);
        ::_exit(1);
      },
      ::testing::KilledBySignal(SIGSYS), "");
}

// The start-up's calls pass, and what the renderer's table refuses with an errno is refused the
// same way: a renderer that never installs its own policy degrades as one that did.
[[noreturn]] void StartUpUnderTheLauncherFilter() {
  UnderTheLauncherFilter();
  struct statfs fs;
  if (::statfs("/", &fs) != 0) ::_exit(1);
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) ::_exit(2);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(3);
  if (::open("/etc/passwd", O_RDONLY | O_CLOEXEC) != -1 || errno != EPERM) ::_exit(4);
  if (::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) != -1 || errno != EPERM) ::_exit(5);
  std::thread([] {}).join();
  ::_exit(0);
}

TEST(LauncherFilterTest, TheRenderersStartUpStillWorks) {
  EXPECT_EXIT(StartUpUnderTheLauncherFilter(), ::testing::ExitedWithCode(0), "");
}

[[noreturn]] void ExecAnotherProgram() {
  UnderTheLauncherFilter();
  char* argv[] = {const_cast<char*>("true"), nullptr};
  ::syscall(SYS_execveat, AT_FDCWD, "/bin/true", argv, environ, 0);
  ::_exit(1);
}

TEST(LauncherFilterTest, AnotherExecIsKilled) {
  EXPECT_EXIT(ExecAnotherProgram(), ::testing::KilledBySignal(SIGSYS), "");
}

}  // namespace
}  // namespace sbx::sandbox
