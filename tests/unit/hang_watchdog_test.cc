// The hang watchdog's decision, over made-up times: when a renderer turns unresponsive and when
// it is killed as hung.
#include "broker/hang_watchdog.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace sbx {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSpawn = 1'000 * kMs;
constexpr int64_t kTimeoutMs = 2'000;

HangVerdict Check(RendererState state, SignsOfLife life, int64_t now, bool kill_hung = false) {
  return CheckForHang(state, life, kTimeoutMs, kill_hung, now);
}

TEST(HangWatchdogTest, ARendererThatKeepsSendingHeartbeatsIsNotHung) {
  SignsOfLife life{kSpawn, kSpawn + 50 * kMs, kSpawn + 5'000 * kMs};
  HangVerdict v = Check(RendererState::kRunning, life, life.last_heartbeat_ns + kTimeoutMs * kMs);
  EXPECT_FALSE(v.unresponsive);
  EXPECT_FALSE(v.kill);
}

TEST(HangWatchdogTest, SilenceLongerThanTheTimeoutIsUnresponsive) {
  SignsOfLife life{kSpawn, kSpawn + 50 * kMs, kSpawn + 5'000 * kMs};
  int64_t now = life.last_heartbeat_ns + kTimeoutMs * kMs + 1;
  for (RendererState state : {RendererState::kStarting, RendererState::kRunning}) {
    HangVerdict v = Check(state, life, now);
    EXPECT_TRUE(v.unresponsive) << RendererStateName(state);
    EXPECT_EQ(v.silent_ms, kTimeoutMs);
    EXPECT_FALSE(v.kill);  // not asked for
  }
}

TEST(HangWatchdogTest, ANewRendererGetsTheStartAllowance) {
  SignsOfLife life{kSpawn, 0, 0};
  EXPECT_FALSE(
      Check(RendererState::kStarting, life, kSpawn + kMinStartTimeoutMs * kMs).unresponsive);
  HangVerdict v = Check(RendererState::kStarting, life, kSpawn + kMinStartTimeoutMs * kMs + 1);
  EXPECT_TRUE(v.unresponsive);
  EXPECT_EQ(v.silent_ms, kMinStartTimeoutMs);
}

TEST(HangWatchdogTest, AFirstFrameEndsTheStartAllowance) {
  // Stopped right after its first frame, before any heartbeat: caught after the timeout, not ten
  // seconds.
  SignsOfLife life{kSpawn, kSpawn + 30 * kMs, 0};
  EXPECT_TRUE(Check(RendererState::kRunning, life, life.first_frame_ns + kTimeoutMs * kMs + 1)
                  .unresponsive);
}

TEST(HangWatchdogTest, ALongerTimeoutThanTheAllowanceWins) {
  SignsOfLife life{kSpawn, 0, 0};
  int64_t long_ms = 3 * kMinStartTimeoutMs;
  EXPECT_FALSE(CheckForHang(RendererState::kStarting, life, long_ms, false,
                            kSpawn + 2 * kMinStartTimeoutMs * kMs)
                   .unresponsive);
}

TEST(HangWatchdogTest, KillsOnlyWhenAskedAndOnlyWhenUnresponsive) {
  SignsOfLife life{kSpawn, kSpawn + 50 * kMs, kSpawn + 100 * kMs};
  int64_t late = life.last_heartbeat_ns + kTimeoutMs * kMs + 1;
  // Turns unresponsive and is killed at the same look.
  HangVerdict now_hung = Check(RendererState::kRunning, life, late, true);
  EXPECT_TRUE(now_hung.unresponsive);
  EXPECT_TRUE(now_hung.kill);
  // Already unresponsive (a heartbeat-less renderer, or --kill-hung turned on later): killed,
  // and not announced again.
  HangVerdict already = Check(RendererState::kUnresponsive, life, late, true);
  EXPECT_FALSE(already.unresponsive);
  EXPECT_TRUE(already.kill);
  EXPECT_FALSE(Check(RendererState::kUnresponsive, life, late, false).kill);
  // Fresh heartbeats: nothing to kill.
  EXPECT_FALSE(Check(RendererState::kRunning, life, life.last_heartbeat_ns, true).kill);
}

TEST(HangWatchdogTest, ASlotWithoutAProcessIsNeverHung) {
  SignsOfLife life{kSpawn, 0, 0};
  int64_t late = kSpawn + 100 * kMinStartTimeoutMs * kMs;
  for (RendererState state : {RendererState::kExited, RendererState::kRestarting,
                              RendererState::kFailed, RendererState::kClosed}) {
    HangVerdict v = Check(state, life, late, true);
    EXPECT_FALSE(v.unresponsive) << RendererStateName(state);
    EXPECT_FALSE(v.kill) << RendererStateName(state);
  }
}

TEST(HangWatchdogTest, LooksFourTimesPerTimeoutWithinBounds) {
  EXPECT_EQ(WatchdogPeriodMs(2'000), 250);
  EXPECT_EQ(WatchdogPeriodMs(400), 100);
  EXPECT_EQ(WatchdogPeriodMs(1), 10);
  EXPECT_EQ(WatchdogPeriodMs(60'000), 250);
}

}  // namespace
}  // namespace sbx
