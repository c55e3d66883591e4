// The seccomp policy from inside: each rule of the table, exercised in a child process that
// installed the policy (a death test forks; the test process itself is never sandboxed).
#include "sandbox/policy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <mqueue.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <ostream>
#include <string>
#include <thread>

#include "ipc/frame_buffer.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"

namespace sbx::sandbox {
namespace {

// In the child: puts a pipe at fds 3/4 and a queue writer at fd 6 (the renderer's numbers),
// then installs the policy. Exits 100 if the setup itself fails, so that cannot pass for a
// verdict.
void BecomeRenderer() {
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
  if (!InstallSeccompPolicy(::getpid())) ::_exit(100);
}

std::string Name(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '-') c = '_';
  }
  return out;
}

class DeniedSyscallTest : public ::testing::TestWithParam<SyscallRule> {};
}  // namespace

// Names the rule in test output instead of dumping its bytes.
void PrintTo(const SyscallRule& rule, std::ostream* os) { *os << rule.name; }

namespace {

// Arguments are all zero: seccomp decides before the kernel looks at them.
TEST_P(DeniedSyscallTest, HasItsDocumentedOutcome) {
  const SyscallRule& rule = GetParam();
  int nr = seccomp_syscall_resolve_name(std::string(rule.name).c_str());
  if (nr == __NR_SCMP_ERROR) GTEST_SKIP() << rule.name << " does not exist on this architecture";
  if (rule.outcome == Outcome::kKill) {
    EXPECT_EXIT(
        {
          BecomeRenderer();
          ::syscall(nr, 0, 0, 0, 0, 0, 0);
          ::_exit(1);
        },
        ::testing::KilledBySignal(SIGSYS), "")
        << rule.name;
  } else {
    EXPECT_EXIT(
        {
          BecomeRenderer();
          long r = ::syscall(nr, 0, 0, 0, 0, 0, 0);
          ::_exit(r == -1 && errno == rule.err ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "")
        << rule.name << " should fail with errno " << rule.err;
  }
}

std::vector<SyscallRule> DeniedRules() {
  std::vector<SyscallRule> out;
  for (const auto& r : PolicyTable()) {
    if (r.outcome != Outcome::kAllow) out.push_back(r);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Policy, DeniedSyscallTest, ::testing::ValuesIn(DeniedRules()),
                         [](const auto& info) { return Name(info.param.name); });

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
  // Lowering its own limit (the oom drill).
  rlimit lim;
  lim.rlim_cur = lim.rlim_max = rlim_t{1} << 40;
  if (::setrlimit(RLIMIT_AS, &lim) != 0) ::_exit(8);
  // A signal to itself.
  if (::kill(::getpid(), 0) != 0) ::_exit(9);
  ::_exit(0);
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
