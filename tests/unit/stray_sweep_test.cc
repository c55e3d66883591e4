// The stray sweep (ReapStrayChildren) against real children: one shaped like a stray (in another
// process group that it does not lead) is left alone while a ChildProcess owns it, and killed
// and reaped once nobody does. And what the sweep leaves alone, a launch's init and program that
// nobody announced, handed over by AdoptUnannouncedLaunches.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "broker/child_process.h"
#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

TEST(StraySweepTest, AChildSomeoneOwnsIsNeverTakenForAStray) {
  test::Child leader = test::ForkChild([] { ::pause(); });
  test::Child member = test::ForkChild([] { ::pause(); });
  ASSERT_TRUE(leader.pidfd.valid());
  ASSERT_TRUE(member.pidfd.valid());
  // The member joins the leader's new group: the shape the sweep takes for a stray.
  ASSERT_EQ(::setpgid(leader.pid, leader.pid), 0);
  ASSERT_EQ(::setpgid(member.pid, leader.pid), 0);
  ChildProcess owned_leader(leader.pid, std::move(leader.pidfd));
  ChildProcess owned_member(member.pid, std::move(member.pidfd));

  EXPECT_EQ(ReapStrayChildren(), 0);
  EXPECT_FALSE(owned_member.TryWait().has_value()) << "the sweep killed a child it owns";
  EXPECT_FALSE(owned_leader.TryWait().has_value());

  // Given up by its owner, the same child is a stray: seen by one sweep, killed by the next
  // (which finds the same process still one), then reaped by a later sweep.
  UniqueFd member_fd = owned_member.Release();
  EXPECT_EQ(ReapStrayChildren(), 1);
  EXPECT_EQ(WaitReadable(member_fd.get(), 0).value_or(true), false) << "killed at first sight";
  EXPECT_EQ(ReapStrayChildren(), 1);
  auto killed = WaitReadable(member_fd.get(), test::kDeadlineMs);
  ASSERT_TRUE(killed && *killed) << "the sweep did not kill the stray";
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (test::StillUnreaped(member.pid) && MonotonicNs() < deadline) {
    (void)ReapStrayChildren();
  }
  EXPECT_FALSE(test::StillUnreaped(member.pid));
  EXPECT_FALSE(owned_leader.TryWait().has_value()) << "the sweep killed the group's leader";
}

// A zygote's joiner starts in the zygote's process group and leads a group of its own a moment
// later; until then, and until the broker owns it, it has a stray's shape. A sweep in that
// moment must not kill it: only a child that a second sweep still finds a stray is killed.
TEST(StraySweepTest, AChildThatLooksLikeAStrayForAMomentIsNotKilled) {
  UniqueFd go_read, go_write;
  {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    go_read = UniqueFd(p[0]);
    go_write = UniqueFd(p[1]);
  }
  test::Child leader = test::ForkChild([] { ::pause(); });
  const int go = go_read.get();
  test::Child joiner = test::ForkChild([go] {
    char c;
    if (::read(go, &c, 1) != 1) ::_exit(3);
    if (::setpgid(0, 0) != 0) ::_exit(4);  // as a joiner does first
    ::pause();
  });
  ASSERT_TRUE(leader.pidfd.valid());
  ASSERT_TRUE(joiner.pidfd.valid());
  ChildProcess owned_leader(leader.pid, std::move(leader.pidfd));
  // In another process's group, which it does not lead: a stray's shape.
  ASSERT_EQ(::setpgid(leader.pid, leader.pid), 0);
  ASSERT_EQ(::setpgid(joiner.pid, leader.pid), 0);
  EXPECT_EQ(ReapStrayChildren(), 1);
  // It leads a group of its own before the next sweep, as a joiner does.
  ASSERT_EQ(::write(go_write.get(), "g", 1), 1);
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (::getpgid(joiner.pid) != joiner.pid && MonotonicNs() < deadline) {
  }  // polled: nothing to wait on
  ASSERT_EQ(::getpgid(joiner.pid), joiner.pid);
  EXPECT_EQ(ReapStrayChildren(), 0);
  EXPECT_EQ(WaitReadable(joiner.pidfd.get(), 0).value_or(true), false) << "the sweep killed it";
}

// The last pid of "NSpid:" in /proc/PID/status: the pid in its own namespace, or -1.
long PidInItsNamespace(pid_t pid) {
  auto status = ReadSmallFile("/proc/" + std::to_string(pid) + "/status");
  if (!status) return -1;
  size_t at = status->find("\nNSpid:");
  if (at == std::string::npos) return -1;
  std::string line = status->substr(at + 7, status->find('\n', at + 1) - at - 7);
  return std::stol(line.substr(line.find_last_of(" \t") + 1));
}

// A launch's shape, as a joiner makes it: a leader of its own process group, and our own
// children through CLONE_PARENT at pid 1 and 2 of a new pid namespace, in that group. The joiner
// exits 2 when it cannot make the namespace.
test::Child MakeLaunchShape() {
  return test::ForkChild([] {
    if (::setpgid(0, 0) != 0) ::_exit(3);
    if (::unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0) ::_exit(2);
    for (int i = 0; i < 2; ++i) {
      long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
      if (pid < 0) ::_exit(3);
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // its parent is the test
        for (;;) ::pause();
      }
    }
  });
}

// Unannounced, as when the zygote that made it dies before it says so; beside it another launch
// of the same shape whose joiner is not named, as another broker's zygote's would be.
TEST(StraySweepTest, AnUnannouncedLaunchOfANamedJoinerIsAdoptedProgramFirst) {
  test::Child ours = MakeLaunchShape();
  test::Child other = MakeLaunchShape();
  // Whatever a failed assertion leaves of either launch goes with the test, programs first.
  struct Cleanup {
    pid_t joiners[2];
    ~Cleanup() {
      for (ChildProcess& c : AdoptUnannouncedLaunches(joiners)) c = {};
    }
  } cleanup{{ours.pid, other.pid}};
  ASSERT_TRUE(ours.pidfd.valid());
  ASSERT_TRUE(other.pidfd.valid());
  for (test::Child* joiner : {&ours, &other}) {
    auto joined = test::WaitForExit(joiner->pidfd.get());
    ASSERT_TRUE(joined);
    if (joined->si_status == 2) GTEST_SKIP() << "no user and pid namespace for an ordinary user";
    ASSERT_EQ(joined->si_status, 0) << "the joiner could not make its children";
    joiner->pidfd.reset();
  }

  // The sweep must leave them all: the same shape is a launch about to be announced.
  EXPECT_EQ(ReapStrayChildren(), 0);
  const pid_t joiners[] = {ours.pid};
  std::vector<ChildProcess> adopted = AdoptUnannouncedLaunches(joiners);
  ASSERT_EQ(adopted.size(), 2u);
  EXPECT_EQ(PidInItsNamespace(adopted[0].pid()), 2) << "the program comes first";
  EXPECT_EQ(PidInItsNamespace(adopted[1].pid()), 1);
  const pid_t program = adopted[0].pid();
  const pid_t init = adopted[1].pid();
  // Owned now, so not handed over twice; and nothing for no joiner.
  EXPECT_TRUE(AdoptUnannouncedLaunches(joiners).empty());
  EXPECT_TRUE(AdoptUnannouncedLaunches({}).empty());
  // Reaped in that order, neither waits on the other.
  for (ChildProcess& c : adopted) EXPECT_TRUE(c.KillAndReap(test::DeadlineIn(test::kDeadlineMs)));
  EXPECT_FALSE(test::StillUnreaped(program));
  EXPECT_FALSE(test::StillUnreaped(init));

  // The other launch is still there, untouched, and goes when its own joiner is named.
  const pid_t theirs[] = {other.pid};
  std::vector<ChildProcess> left = AdoptUnannouncedLaunches(theirs);
  ASSERT_EQ(left.size(), 2u) << "another launch was taken for ours";
  for (ChildProcess& c : left) EXPECT_TRUE(c.KillAndReap(test::DeadlineIn(test::kDeadlineMs)));
}

}  // namespace
}  // namespace sbx
