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

// ---------------------------------------------------------------------------------------------
// Visibility: a hidden renderer beats once a second and is judged by that rate.

constexpr auto kHidden = protocol::Visibility::kHidden;
constexpr auto kVisible = protocol::Visibility::kVisible;

TEST(HangWatchdogTest, AHiddenRendererIsAllowedThreeOfItsSlowBeats) {
  EXPECT_EQ(SilenceLimitMs(kVisible, kTimeoutMs), kTimeoutMs);
  EXPECT_EQ(SilenceLimitMs(kHidden, kTimeoutMs),
            kHiddenBeatsMissed * protocol::kHiddenHeartbeatIntervalMs);
  EXPECT_EQ(SilenceLimitMs(kHidden, 300), 3'000);      // a short timeout does not shorten it
  EXPECT_EQ(SilenceLimitMs(kHidden, 60'000), 60'000);  // a long one is kept
}

TEST(HangWatchdogTest, AHiddenRendererBetweenItsSlowBeatsIsNotHung) {
  SignsOfLife life{kSpawn, kSpawn + 50 * kMs, kSpawn + 5'000 * kMs, kHidden, kSpawn + 100 * kMs};
  // Longer than the visible timeout, well within the hidden limit.
  int64_t now = life.last_heartbeat_ns + (kTimeoutMs + 500) * kMs;
  EXPECT_FALSE(Check(RendererState::kRunning, life, now).unresponsive);
  HangVerdict late = Check(RendererState::kRunning, life,
                           life.last_heartbeat_ns + SilenceLimitMs(kHidden, kTimeoutMs) * kMs + 1);
  EXPECT_TRUE(late.unresponsive);
  EXPECT_EQ(late.limit_ms, SilenceLimitMs(kHidden, kTimeoutMs));
}

TEST(HangWatchdogTest, AChangeOfVisibilityRestartsTheClock) {
  // Hidden until just now, last heard 2.5 s ago at the slow rate: made visible, it gets a whole
  // visible timeout to speed up from the moment it was told.
  int64_t told = kSpawn + 10'000 * kMs;
  SignsOfLife shown{kSpawn, kSpawn + 50 * kMs, told - 2'500 * kMs, kVisible, told};
  EXPECT_FALSE(Check(RendererState::kRunning, shown, told + kTimeoutMs * kMs).unresponsive);
  EXPECT_TRUE(Check(RendererState::kRunning, shown, told + kTimeoutMs * kMs + 1).unresponsive);
  // Just hidden after a fast beat: judged at the slow rate from the change.
  SignsOfLife hidden{kSpawn, kSpawn + 50 * kMs, told - 50 * kMs, kHidden, told};
  EXPECT_FALSE(Check(RendererState::kRunning, hidden, told + 2'900 * kMs).unresponsive);
}

TEST(HangWatchdogTest, AChangeDoesNotShortenTheStartAllowance) {
  SignsOfLife life{kSpawn, 0, 0, kVisible, kSpawn + 10 * kMs};
  EXPECT_FALSE(
      Check(RendererState::kStarting, life, kSpawn + kMinStartTimeoutMs * kMs).unresponsive);
}

TEST(HangWatchdogTest, ARendererNearItsLimitIsSuspectOneLookEarly) {
  SignsOfLife life{kSpawn, kSpawn + 50 * kMs, kSpawn + 5'000 * kMs};
  int64_t period = WatchdogPeriodMs(kTimeoutMs);
  EXPECT_FALSE(
      Check(RendererState::kRunning, life, life.last_heartbeat_ns + (kTimeoutMs - period) * kMs)
          .suspect);
  HangVerdict v = Check(RendererState::kRunning, life,
                        life.last_heartbeat_ns + (kTimeoutMs - period) * kMs + 1);
  EXPECT_TRUE(v.suspect);
  EXPECT_FALSE(v.unresponsive);
}

// ---------------------------------------------------------------------------------------------
// Starved or hung: what the renderer's threads did during its silence.

constexpr int64_t kLimitMs = 2'000;

SchedSample Sample(uint64_t run_ms, uint64_t wait_ms, bool stopped = false, bool runnable = false) {
  return {run_ms * kMs, wait_ms * kMs, runnable, stopped};
}

TEST(HangWatchdogTest, RunnableButHardlyScheduledIsStarved) {
  SchedSample before = Sample(100, 1'000);
  EXPECT_EQ(JudgeSilence(&before, Sample(105, 1'240), kLimitMs + 1, kLimitMs), Silence::kStarved);
}

TEST(HangWatchdogTest, RunnableNowIsStarvedBeforeItsWaitIsCounted) {
  // Kept off its CPU since before the first sample: the kernel has not added that wait yet.
  SchedSample before = Sample(100, 1'000, false, true);
  EXPECT_EQ(JudgeSilence(&before, Sample(100, 1'000, false, true), kLimitMs + 1, kLimitMs),
            Silence::kStarved);
}

TEST(HangWatchdogTest, CpuWithoutAHeartbeatIsAHangHoweverLongItWaited) {
  // The hang drill under load: it spins whenever it gets a CPU, and waits for one the rest.
  SchedSample before = Sample(100, 1'000);
  EXPECT_EQ(JudgeSilence(&before, Sample(130, 2'000, false, true), kLimitMs + 1, kLimitMs),
            Silence::kHung);
}

TEST(HangWatchdogTest, NeitherRunningNorWaitingIsAHang) {
  // Blocked (a deadlock, a full pipe it blocks on): not runnable, so not starved.
  SchedSample before = Sample(100, 1'000);
  EXPECT_EQ(JudgeSilence(&before, Sample(100, 1'000), kLimitMs + 1, kLimitMs), Silence::kHung);
}

TEST(HangWatchdogTest, AStoppedRendererIsHungAtOnce) {
  // No earlier sample needed: SIGSTOP is not starvation.
  EXPECT_EQ(JudgeSilence(nullptr, Sample(0, 0, true), kLimitMs + 1, kLimitMs), Silence::kHung);
  SchedSample before = Sample(100, 1'000);
  EXPECT_EQ(JudgeSilence(&before, Sample(100, 1'500, true, true), kLimitMs + 1, kLimitMs),
            Silence::kHung);
}

TEST(HangWatchdogTest, WithoutAnEarlierSampleTheVerdictWaitsOneLook) {
  EXPECT_EQ(JudgeSilence(nullptr, Sample(100, 1'000), kLimitMs + 1, kLimitMs),
            Silence::kNotYetKnown);
}

TEST(HangWatchdogTest, StarvedForTooLongEndsUnresponsive) {
  SchedSample before = Sample(100, 1'000);
  SchedSample starved = Sample(101, 9'000, false, true);
  EXPECT_EQ(JudgeSilence(&before, starved, MaxStarvedMs(kLimitMs), kLimitMs), Silence::kStarved);
  EXPECT_EQ(JudgeSilence(&before, starved, MaxStarvedMs(kLimitMs) + 1, kLimitMs), Silence::kHung);
  EXPECT_EQ(MaxStarvedMs(kLimitMs), 10'000);
  EXPECT_EQ(MaxStarvedMs(5'000), 20'000);
}

TEST(HangWatchdogTest, AThreadThatEndedGivesNoTimeBack) {
  // Counters summed over live threads drop when one ends; that is neither running nor waiting.
  SchedSample before = Sample(500, 3'000);
  EXPECT_EQ(JudgeSilence(&before, Sample(200, 1'000), kLimitMs + 1, kLimitMs), Silence::kHung);
}

}  // namespace
}  // namespace sbx
