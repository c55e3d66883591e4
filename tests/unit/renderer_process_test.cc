// One renderer process on its own: the range checks its heartbeat figures pass, and a real,
// unsandboxed sbx-renderer run with no slot at all (as a spare would be), reporting to a delegate
// that records what it is told.
#include "broker/renderer_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <memory>

#include "tests/unit/renderer_env.h"

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

// What a process tells its owner; destroys the process at its exit, as a slot does.
struct Recorder : RendererProcess::Delegate {
  void OnFirstFrame(int64_t since_spawn_ns) override { first_frame_ns = since_spawn_ns; }
  void OnFrame(uint64_t) override { ++frames; }
  void OnHeartbeat(const protocol::Heartbeat&, int64_t) override { ++heartbeats; }
  void OnDrillReport(const std::string&) override {}
  void OnLog(BrokerEvent) override {}
  void OnExit(ExitInfo info) override {
    exit = std::move(info);
    process.reset();
  }
  // This environment launches before Launch returns, so nothing is ever still launching.
  void OnLaunched(Result<void>) override { ADD_FAILURE() << "a synchronous launch was reported"; }

  std::unique_ptr<RendererProcess> process;
  int64_t first_frame_ns = -1;
  int frames = 0;
  int heartbeats = 0;
  std::optional<ExitInfo> exit;
};

std::unique_ptr<RendererProcess> LaunchFor(test::TestEnv& env, Recorder& to) {
  auto p = RendererProcess::Launch(env, 3, "sbx://plasma", to);
  EXPECT_TRUE(p) << p.error().ToString();
  return p ? std::move(*p) : nullptr;
}

TEST(RendererProcessTest, ReportsFramesAndHeartbeatsToItsDelegate) {
  test::TestEnv env;
  Recorder r;
  r.process = LaunchFor(env, r);
  ASSERT_NE(r.process, nullptr);
  ASSERT_TRUE(env.RunUntil([&] { return r.frames >= 2 && r.heartbeats >= 1; }));
  EXPECT_GE(r.first_frame_ns, 0);
  EXPECT_TRUE(r.process->has_frame());
  EXPECT_GT(r.process->figures().pid, 0);
  EXPECT_GE(r.process->figures().frames, 2u);
  EXPECT_NE(r.process->figures().last_heartbeat_ns, 0);
  EXPECT_NE(r.process->frames(), nullptr);
  EXPECT_EQ(env.stats.spawns, 1u);
  EXPECT_EQ(env.stats.heartbeats, static_cast<uint64_t>(r.heartbeats));
}

TEST(RendererProcessTest, ABrokerKillIsReportedWithItsReasonAndNote) {
  test::TestEnv env;
  Recorder r;
  r.process = LaunchFor(env, r);
  ASSERT_NE(r.process, nullptr);
  ASSERT_TRUE(env.RunUntil([&] { return r.frames >= 1; }));
  r.process->Kill(KillReason::kHung, "killed by the test");
  EXPECT_TRUE(r.process->being_killed());
  ASSERT_TRUE(env.RunUntil([&] { return r.exit.has_value(); }));
  EXPECT_EQ(r.exit->status, ExitStatus::kHung);
  EXPECT_EQ(r.exit->detail, "killed by the test");
  EXPECT_EQ(r.process, nullptr);  // destroyed inside its own exit report, as a slot does
}

TEST(RendererProcessTest, AHandedOverProcessReportsToItsNewOwner) {
  test::TestEnv env;
  Recorder first;
  Recorder second;
  second.process = LaunchFor(env, first);
  ASSERT_NE(second.process, nullptr);
  second.process->SetDelegate(second);
  ASSERT_TRUE(env.RunUntil([&] { return second.frames >= 1; }));
  EXPECT_EQ(first.frames + first.heartbeats, 0);
}

TEST(RendererProcessTest, DestroyingARunningProcessKillsAndReapsIt) {
  test::TestEnv env;
  Recorder r;
  r.process = LaunchFor(env, r);
  ASSERT_NE(r.process, nullptr);
  pid_t pid = r.process->figures().pid;
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, 0), 0);
  r.process.reset();
  // Reaped, not a zombie: the pid names no process (nothing else here forks to reuse it).
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(r.exit);  // a process destroyed by its owner reports nothing
}

TEST(RendererProcessTest, ALaunchThatFailsLeavesNoProcess) {
  test::TestEnv env;
  env.settings.renderer_path = "/nonexistent/sbx-renderer";
  Recorder r;
  auto p = RendererProcess::Launch(env, 3, "sbx://plasma", r);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().ToString().find("exec"), std::string::npos) << p.error().ToString();
  EXPECT_EQ(env.stats.spawns, 0u);
  EXPECT_EQ(env.loop().NextTimerIn(), -1);
}

}  // namespace
}  // namespace sbx
