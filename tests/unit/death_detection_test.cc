// How a renderer's death is named: the reaped status, completed with the broker's own reason
// for a kill it made, or with a wrapper's caveat; and a failed launch as an exit. Plus one real
// child, reaped through its pidfd, as the event loop's watch does it.
#include "broker/death_detection.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

ExitInfo Reaped(ExitStatus status, std::string detail = "") {
  ExitInfo info;
  info.status = status;
  info.signal = SIGKILL;
  info.detail = std::move(detail);
  return info;
}

TEST(DeathDetectionTest, TheBrokersReasonNamesItsOwnKill) {
  EXPECT_EQ(ExplainExit(Reaped(ExitStatus::kBadMessage), "frame number went backwards", {}).detail,
            "frame number went backwards");
  EXPECT_EQ(ExplainExit(Reaped(ExitStatus::kHung), "killed by the hang watchdog", {}).detail,
            "killed by the hang watchdog");
}

TEST(DeathDetectionTest, TheBrokersReasonDoesNotExplainAnotherDeath) {
  // Crashed before the broker's SIGKILL landed: the crash is the story, not the kill.
  ExitInfo crashed = ExplainExit(Reaped(ExitStatus::kCrashed), "message flood", {});
  EXPECT_EQ(crashed.status, ExitStatus::kCrashed);
  EXPECT_EQ(crashed.detail, "");
  EXPECT_EQ(ExplainExit(Reaped(ExitStatus::kKilled, "x"), "channel setup failed", {}).detail, "x");
}

TEST(DeathDetectionTest, AWrapperIsNamedWhenNothingElseIsKnown) {
  std::vector<std::string> prefix{"/usr/bin/valgrind", "-q"};
  std::string note = ExplainExit(Reaped(ExitStatus::kKilled), "", prefix).detail;
  EXPECT_NE(note.find("valgrind"), std::string::npos) << note;
  EXPECT_EQ(ExplainExit(Reaped(ExitStatus::kHung), "killed by the hang watchdog", prefix).detail,
            "killed by the hang watchdog");
}

TEST(DeathDetectionTest, AFailedLaunchIsAnExit) {
  ExitInfo info = LaunchFailedExit(Error{Errc::kState, ENOENT, "launch failed at exec"});
  EXPECT_EQ(info.status, ExitStatus::kLaunchFailed);
  EXPECT_EQ(info.code, protocol::kExitLaunchFailed);
  EXPECT_NE(info.detail.find("launch failed at exec"), std::string::npos) << info.detail;
}

TEST(DeathDetectionTest, ReapsARealChildOnlyOnceItIsDead) {
  test::Child c = test::ForkChild([] { ::pause(); });
  ASSERT_TRUE(c.pidfd.valid());
  ChildProcess child(c.pid, std::move(c.pidfd));  // which kills and reaps it if the test fails
  EXPECT_FALSE(DetectDeath(child, KillReason::kNone, "", {}).has_value());
  ASSERT_TRUE(child.Signal(SIGKILL));
  ASSERT_TRUE(*WaitReadable(child.pidfd(), test::kDeadlineMs));
  auto death = DetectDeath(child, KillReason::kBadMessage, "sent garbage", {});
  ASSERT_TRUE(death);
  EXPECT_EQ(death->status, ExitStatus::kBadMessage);
  EXPECT_EQ(death->detail, "sent garbage");
  // Seen, not reaped: the reap comes after the exit has been reported.
  EXPECT_TRUE(child.exited());
  EXPECT_TRUE(test::StillUnreaped(c.pid));
  auto reaped = child.TryReap();
  ASSERT_TRUE(reaped);
  EXPECT_EQ(reaped->signal, SIGKILL);
  EXPECT_FALSE(child.valid());
  EXPECT_FALSE(test::StillUnreaped(c.pid));
}

TEST(DeathDetectionTest, AnExitSeenButNotReapedIsReapedByItsOwner) {
  test::Child c = test::ForkChild([] { ::pause(); });
  ASSERT_TRUE(c.pidfd.valid());
  {
    ChildProcess child(c.pid, std::move(c.pidfd));
    ASSERT_TRUE(child.Signal(SIGKILL));
    ASSERT_TRUE(*WaitReadable(child.pidfd(), test::kDeadlineMs));
    ASSERT_TRUE(DetectDeath(child, KillReason::kNone, "", {}));
    // Seen twice, as a level-triggered watch could: the same exit, still unreaped.
    auto again = child.TryWait();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->signal, SIGKILL);
    EXPECT_TRUE(test::StillUnreaped(c.pid));
  }
  EXPECT_FALSE(test::StillUnreaped(c.pid));
}

}  // namespace
}  // namespace sbx
