// Restart back-off: immediate, then doubling up to a cap; a crash loop gives up until Reset.
#include "broker/restart_policy.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace sbx {
namespace {

std::vector<std::optional<int64_t>> CrashAt(RestartPolicy& policy,
                                            std::initializer_list<int64_t> times) {
  std::vector<std::optional<int64_t>> delays;
  for (int64_t t : times) delays.push_back(policy.OnCrash(t));
  return delays;
}

TEST(RestartPolicyTest, DefaultsAreFiveCrashesInThirtySecondsFrom100To5000Ms) {
  RestartPolicy::Config c;
  EXPECT_EQ(c.max_crashes, 5);
  EXPECT_EQ(c.window_ms, 30'000);
  EXPECT_EQ(c.base_delay_ms, 100);
  EXPECT_EQ(c.max_delay_ms, 5'000);
}

TEST(RestartPolicyTest, FirstRestartIsImmediateThenTheDelayDoubles) {
  RestartPolicy policy;
  auto delays = CrashAt(policy, {1000, 1001, 1002, 1003, 1004});
  EXPECT_EQ(delays, (std::vector<std::optional<int64_t>>{0, 100, 200, 400, 800}));
}

TEST(RestartPolicyTest, TheSixthCrashWithinTheWindowIsACrashLoop) {
  RestartPolicy policy;
  for (int64_t t = 0; t < 5; ++t) ASSERT_TRUE(policy.OnCrash(t * 5000).has_value()) << t;
  EXPECT_EQ(policy.OnCrash(29'999), std::nullopt);
  // It stays failed: more crashes inside the window do not revive it.
  EXPECT_EQ(policy.OnCrash(29'999), std::nullopt);
}

TEST(RestartPolicyTest, CrashesOlderThanTheWindowExpire) {
  RestartPolicy policy;
  CrashAt(policy, {0, 1, 2, 3, 4});
  EXPECT_EQ(policy.CrashesInWindow(29'999), 5);
  // At 30 000 ms the crash at 0 is exactly one window old and no longer counts.
  EXPECT_EQ(policy.CrashesInWindow(30'000), 4);
  EXPECT_EQ(policy.OnCrash(30'000), std::optional<int64_t>(800));
  // Long after, everything has expired and the next restart is immediate again.
  EXPECT_EQ(policy.OnCrash(100'000), std::optional<int64_t>(0));
  EXPECT_EQ(policy.CrashesInWindow(100'000), 1);
}

TEST(RestartPolicyTest, CrashesTenSecondsApartNeverFail) {
  // At most three crashes (now, -10 s, -20 s) are ever inside the 30 s window.
  RestartPolicy policy;
  for (int i = 0; i < 100; ++i) {
    const int64_t expected = i == 0 ? 0 : i == 1 ? 100 : 200;
    EXPECT_EQ(policy.OnCrash(int64_t{i} * 10'000), std::optional<int64_t>(expected)) << i;
  }
}

TEST(RestartPolicyTest, DelaysAreCappedAtMaxDelay) {
  RestartPolicy policy(
      {.max_crashes = 100, .window_ms = 1'000'000, .base_delay_ms = 100, .max_delay_ms = 1000});
  auto delays = CrashAt(policy, {0, 1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(delays, (std::vector<std::optional<int64_t>>{0, 100, 200, 400, 800, 1000, 1000, 1000}));
}

TEST(RestartPolicyTest, ACapBetweenPowersOfTwoIsHonouredExactly) {
  RestartPolicy policy(
      {.max_crashes = 100, .window_ms = 1'000'000, .base_delay_ms = 100, .max_delay_ms = 300});
  auto delays = CrashAt(policy, {0, 1, 2, 3, 4});
  EXPECT_EQ(delays, (std::vector<std::optional<int64_t>>{0, 100, 200, 300, 300}));
}

TEST(RestartPolicyTest, ResetForgetsTheCrashLoop) {
  RestartPolicy policy;
  CrashAt(policy, {0, 1, 2, 3, 4});
  ASSERT_EQ(policy.OnCrash(5), std::nullopt);
  policy.Reset();
  EXPECT_EQ(policy.CrashesInWindow(6), 0);
  EXPECT_EQ(policy.OnCrash(6), std::optional<int64_t>(0));
  EXPECT_EQ(policy.OnCrash(7), std::optional<int64_t>(100));
}

}  // namespace
}  // namespace sbx
