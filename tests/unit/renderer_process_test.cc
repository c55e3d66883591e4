// The range checks a renderer's heartbeat figures pass before the broker uses them.
#include "broker/renderer_process.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace sbx {
namespace {

constexpr int64_t kSpawn = 1'000'000'000;         // the broker's clock at launch
constexpr int64_t kNow = kSpawn + 2'000'000'000;  // two seconds later
constexpr unsigned kCpus = 2;

protocol::Heartbeat Plausible() {
  protocol::Heartbeat hb{};
  hb.magic = protocol::kHeartbeatMagic;
  hb.frames = 60;
  hb.mono_ns = kNow - 1'000'000;
  hb.cpu_ns = 300'000'000;
  hb.render_us = 2'000;
  hb.fps = 30;
  return hb;
}

TEST(ImpossibleHeartbeatTest, AcceptsWhatARealRendererSends) {
  EXPECT_EQ(ImpossibleHeartbeat(Plausible(), {}, kSpawn, kNow, kCpus), std::nullopt);
  // Every thread busy for its whole life, sent at the very instants that bracket it.
  protocol::Heartbeat busy = Plausible();
  busy.mono_ns = kNow;
  busy.cpu_ns = static_cast<uint64_t>(kNow - kSpawn) * kCpus;
  EXPECT_EQ(ImpossibleHeartbeat(busy, {}, kSpawn, kNow, kCpus), std::nullopt);
  protocol::Heartbeat first = Plausible();
  first.mono_ns = kSpawn;
  first.frames = first.cpu_ns = first.render_us = 0;
  EXPECT_EQ(ImpossibleHeartbeat(first, {}, kSpawn, kNow, kCpus), std::nullopt);
}

// The values that overflowed the broker's latency arithmetic (UBSan, under fuzzing) and that
// showed in `list` as facts (cpu_ms 18446744073709).
TEST(ImpossibleHeartbeatTest, RejectsTheValuesFoundByFuzzing) {
  for (int64_t mono : {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                       int64_t{0}, int64_t{-1}, kSpawn - 1, kNow + 1}) {
    protocol::Heartbeat hb = Plausible();
    hb.mono_ns = mono;
    auto why = ImpossibleHeartbeat(hb, {}, kSpawn, kNow, kCpus);
    ASSERT_TRUE(why) << mono;
    EXPECT_NE(why->find("timestamp"), std::string::npos) << *why;
  }
  protocol::Heartbeat cpu = Plausible();
  cpu.cpu_ns = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(ImpossibleHeartbeat(cpu, {}, kSpawn, kNow, kCpus));
  protocol::Heartbeat render = Plausible();
  render.render_us = std::numeric_limits<uint32_t>::max();
  EXPECT_TRUE(ImpossibleHeartbeat(render, {}, kSpawn, kNow, kCpus));
  protocol::Heartbeat frames = Plausible();
  frames.frames = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(ImpossibleHeartbeat(frames, {}, kSpawn, kNow, kCpus));
}

TEST(ImpossibleHeartbeatTest, RejectsMoreCpuThanEveryCpuForItsWholeLife) {
  protocol::Heartbeat hb = Plausible();
  hb.mono_ns = kNow;
  hb.cpu_ns = static_cast<uint64_t>(kNow - kSpawn) * kCpus + kCpus;
  EXPECT_TRUE(ImpossibleHeartbeat(hb, {}, kSpawn, kNow, kCpus));
}

TEST(ImpossibleHeartbeatTest, RejectsFiguresThatGoBackwards) {
  protocol::Heartbeat last = Plausible();
  for (auto change : {+[](protocol::Heartbeat& h) { h.mono_ns -= 1; },
                      +[](protocol::Heartbeat& h) { h.frames -= 1; },
                      +[](protocol::Heartbeat& h) { h.cpu_ns -= 1; }}) {
    protocol::Heartbeat hb = last;
    change(hb);
    EXPECT_TRUE(ImpossibleHeartbeat(hb, last, kSpawn, kNow, kCpus));
  }
  EXPECT_EQ(ImpossibleHeartbeat(last, last, kSpawn, kNow, kCpus), std::nullopt);
}

TEST(MaxFramesAfterTest, AllowsTheFloodLimitsBurstAndRateAndNoMore) {
  EXPECT_GE(MaxFramesAfter(0), 4u * protocol::kMaxFps);
  EXPECT_GE(MaxFramesAfter(10'000'000'000), 10u * 2u * protocol::kMaxFps);
  EXPECT_LT(MaxFramesAfter(10'000'000'000), 100'000u);
  EXPECT_EQ(MaxFramesAfter(-5), MaxFramesAfter(0));
}

}  // namespace
}  // namespace sbx
