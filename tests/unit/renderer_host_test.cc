// A renderer slot on its own: a RendererHost over a small RendererHostEnv with a real EventLoop
// and real sbx-renderer processes (unsandboxed, as --no-sandbox runs them), no Broker. What is
// checked is the slot's part: a restart builds a new process, a crash loop ends in `failed`, a
// reload starts afresh, and the reasons a close or a kill gives name the exit.
#include "broker/renderer_host.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "broker/proc_stats.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/renderer_env.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using test::RendererNextToUs;
using test::TestEnv;
using testing::ThreadNices;

// Declared after the env it uses, so it goes first.
struct Slot {
  TestEnv env;
  RendererHost host{env, 7, "sbx://clock"};

  bool StartReady() {
    host.Start();
    return env.RunUntilEvent(EventType::kReady);
  }
  // How a SIGKILL for `reason` ended the process, or nullopt if no exit came.
  std::optional<ExitInfo> KillAndWait(KillReason reason) {
    size_t before = env.Count(EventType::kExited);
    if (!host.Signal(SIGKILL, reason)) return std::nullopt;
    if (!env.RunUntilEvent(EventType::kExited, before + 1)) return std::nullopt;
    return env.Last(EventType::kExited)->exit;
  }
  // How a close ended the process, or nullopt if the slot did not end closed with an exit.
  std::optional<ExitInfo> CloseAndWait(RendererHost::CloseHow how) {
    host.RequestClose(how);
    if (!env.RunUntilEvent(EventType::kClosed)) return std::nullopt;
    return env.Last(EventType::kClosed)->exit;
  }
};

TEST(RendererHostTest, StartsAProcessThatBecomesReady) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  EXPECT_EQ(s.host.state(), RendererState::kRunning);
  ASSERT_TRUE(s.host.alive());
  const BrokerEvent* spawned = s.env.Last(EventType::kSpawned);
  ASSERT_NE(spawned, nullptr);
  EXPECT_EQ(spawned->id, 7);
  EXPECT_GT(spawned->pid, 0);
  EXPECT_EQ(s.host.Snapshot(MonotonicNs()).pid, spawned->pid);
  EXPECT_NE(s.host.frames(), nullptr);
  EXPECT_EQ(s.env.stats.spawns, 1u);
}

TEST(RendererHostTest, ARestartBuildsANewProcess) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  pid_t first_pid = s.host.Snapshot(MonotonicNs()).pid;
  ASSERT_TRUE(s.KillAndWait(KillReason::kNone));
  ASSERT_TRUE(s.env.RunUntilEvent(EventType::kReady, 2));
  EXPECT_EQ(s.env.Types(), (std::vector<EventType>{EventType::kSpawned, EventType::kReady,
                                                   EventType::kExited, EventType::kRestarting,
                                                   EventType::kSpawned, EventType::kReady}));
  EXPECT_EQ(s.env.Last(EventType::kExited)->exit->status, ExitStatus::kKilled);
  EXPECT_EQ(s.env.Last(EventType::kExited)->pid, first_pid);
  ASSERT_NE(s.host.process(), nullptr);
  RendererSnapshot snap = s.host.Snapshot(MonotonicNs());
  EXPECT_NE(snap.pid, first_pid);
  EXPECT_EQ(snap.restarts, 1);
  EXPECT_EQ(snap.state, RendererState::kRunning);
  // Nothing of the old process is carried over: the new one counts only its own frames.
  EXPECT_LT(snap.frames, static_cast<uint64_t>(s.env.frames));
}

// An observer may close the slot as it hears of the exit (the window's close button, pressed
// then): the slot ends closed, and its restart neither asks for the spare nor starts anything.
TEST(RendererHostTest, ASlotClosedAsItsExitIsHeardIsNotRestarted) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  const int asks = s.env.spare_asks;
  s.env.on_emit = [&](const BrokerEvent& e) {
    if (e.type == EventType::kExited) s.host.RequestClose(RendererHost::CloseHow::kAsk);
  };
  ASSERT_TRUE(s.host.Signal(SIGKILL, KillReason::kNone));
  ASSERT_TRUE(s.env.RunUntilEvent(EventType::kClosed));
  EXPECT_EQ(s.env.Types(), (std::vector<EventType>{EventType::kSpawned, EventType::kReady,
                                                   EventType::kExited, EventType::kClosed}));
  EXPECT_EQ(s.env.spare_asks, asks);
  EXPECT_EQ(s.host.state(), RendererState::kClosed);
  EXPECT_EQ(s.host.process(), nullptr);
}

TEST(RendererHostTest, ACrashLoopEndsInFailedWithNoProcess) {
  Slot s;
  s.env.settings.renderer_path = "/nonexistent/sbx-renderer";
  s.host.Start();
  ASSERT_TRUE(s.env.RunUntilEvent(EventType::kFailed));
  // max_crashes 3: three exits restart, the fourth is the loop.
  EXPECT_EQ(s.env.Count(EventType::kExited), 4u);
  EXPECT_EQ(s.env.Count(EventType::kRestarting), 3u);
  EXPECT_EQ(s.env.Count(EventType::kSpawned), 0u);
  EXPECT_EQ(s.env.Last(EventType::kExited)->exit->status, ExitStatus::kLaunchFailed);
  EXPECT_EQ(s.host.state(), RendererState::kFailed);
  EXPECT_FALSE(s.host.alive());
  EXPECT_EQ(s.host.process(), nullptr);
  RendererSnapshot snap = s.host.Snapshot(MonotonicNs());
  EXPECT_EQ(snap.pid, 0);
  EXPECT_EQ(snap.restarts, 3);
  EXPECT_EQ(snap.last_exit.status, ExitStatus::kLaunchFailed);
  // Failed stays failed: no timer is left to start it again.
  EXPECT_EQ(s.env.loop().NextTimerIn(), -1);
}

TEST(RendererHostTest, AReloadOfAFailedSlotStartsAfreshAndIsNotARestart) {
  Slot s;
  s.env.settings.renderer_path = "/nonexistent/sbx-renderer";
  s.host.Start();
  ASSERT_TRUE(s.env.RunUntilEvent(EventType::kFailed));
  s.env.settings.renderer_path = RendererNextToUs();
  ASSERT_TRUE(s.host.Reload());
  ASSERT_TRUE(s.env.RunUntilEvent(EventType::kReady));
  EXPECT_EQ(s.host.state(), RendererState::kRunning);
  EXPECT_EQ(s.host.Snapshot(MonotonicNs()).restarts, 3);
}

TEST(RendererHostTest, WithoutRestartAnExitStaysExited) {
  Slot s;
  s.env.settings.restart = false;
  ASSERT_TRUE(s.StartReady());
  ASSERT_TRUE(s.KillAndWait(KillReason::kNone));
  EXPECT_EQ(s.host.state(), RendererState::kExited);
  EXPECT_EQ(s.host.process(), nullptr);
  EXPECT_EQ(s.host.frames(), nullptr);  // the sad tab shows no pixels
  EXPECT_EQ(s.env.Count(EventType::kRestarting), 0u);
  EXPECT_EQ(s.host.Send(protocol::MsgType::kPing).error().code, Errc::kState);
}

TEST(RendererHostTest, TheBrokersKillReasonNamesTheExit) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  for (auto [reason, status] : {std::pair{KillReason::kNone, ExitStatus::kKilled},
                                std::pair{KillReason::kHung, ExitStatus::kHung},
                                std::pair{KillReason::kBadMessage, ExitStatus::kBadMessage}}) {
    auto exit = s.KillAndWait(reason);
    ASSERT_TRUE(exit);
    EXPECT_EQ(exit->status, status) << ExitStatusName(exit->status);
    // The next process starts with no reason of its own: the last one's died with it.
    ASSERT_TRUE(s.env.RunUntil([&] { return s.host.state() == RendererState::kRunning; }));
  }
}

TEST(RendererHostTest, CloseAsksARunningRendererToLeave) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  auto exit = s.CloseAndWait(RendererHost::CloseHow::kAsk);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->status, ExitStatus::kExited);  // left by itself, exit code 0
  EXPECT_EQ(s.host.state(), RendererState::kClosed);
  EXPECT_EQ(s.env.Count(EventType::kRestarting), 0u);
}

TEST(RendererHostTest, TerminateSendsSigterm) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  auto exit = s.CloseAndWait(RendererHost::CloseHow::kTerminate);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->status, ExitStatus::kKilled);
  EXPECT_EQ(exit->signal, SIGTERM);
}

TEST(RendererHostTest, CloseOfASlotWithNoProcessIsImmediate) {
  Slot s;
  s.env.settings.restart = false;
  s.env.settings.renderer_path = "/nonexistent/sbx-renderer";
  s.host.Start();
  ASSERT_EQ(s.host.state(), RendererState::kExited);
  s.host.RequestClose(RendererHost::CloseHow::kAsk);
  EXPECT_EQ(s.host.state(), RendererState::kClosed);
  ASSERT_NE(s.env.Last(EventType::kClosed), nullptr);
  EXPECT_FALSE(s.env.Last(EventType::kClosed)->exit);
}

TEST(RendererHostTest, TheWatchdogKillsARendererThatStopsAsHung) {
  Slot s;
  s.env.settings.hang_timeout_ms = 200;
  s.env.settings.kill_hung = true;
  s.env.settings.restart = false;
  ASSERT_TRUE(s.StartReady());
  ASSERT_TRUE(s.host.Signal(SIGSTOP, KillReason::kNone));
  // What Broker::Tick does for every slot.
  std::function<void()> tick = [&] {
    s.host.CheckWatchdog(MonotonicNs());
    s.env.loop().AddTimer(MonotonicNs() + WatchdogPeriodMs(200) * 1'000'000, tick);
  };
  tick();
  ASSERT_TRUE(s.env.RunUntilEvent(EventType::kExited));
  EXPECT_EQ(s.env.Count(EventType::kUnresponsive), 1u);
  const BrokerEvent* exited = s.env.Last(EventType::kExited);
  EXPECT_EQ(exited->exit->status, ExitStatus::kHung);
  EXPECT_EQ(exited->detail, "killed by the hang watchdog");
}

TEST(RendererHostTest, PingsFailWhenTheProcessDies) {
  Slot s;
  s.env.settings.restart = false;
  ASSERT_TRUE(s.StartReady());
  ASSERT_TRUE(s.host.Signal(SIGSTOP, KillReason::kNone));  // so no pong can come first
  ASSERT_TRUE(
      sbx::testing::WaitProcessStopped(s.host.process()->figures().pid, std::chrono::seconds(10)));
  std::optional<Result<int64_t>> answer;
  ASSERT_TRUE(s.host.Ping([&](Result<int64_t> rtt) { answer = rtt; }));
  ASSERT_TRUE(s.host.Signal(SIGKILL, KillReason::kNone));
  ASSERT_TRUE(s.env.RunUntil([&] { return answer.has_value(); }));
  ASSERT_FALSE(*answer);
  EXPECT_EQ(answer->error().code, Errc::kState);
}

TEST(RendererHostTest, AHiddenSlotDrawsNoFramesUntilItIsVisibleAgain) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  s.host.SetVisibility(protocol::Visibility::kHidden);
  ASSERT_EQ(s.env.Count(EventType::kVisibility), 1u);
  EXPECT_EQ(s.env.Last(EventType::kVisibility)->visibility, protocol::Visibility::kHidden);
  // A heartbeat sent after the renderer read the change: from then on no frame.
  int beats = s.env.heartbeats;
  ASSERT_TRUE(s.env.RunUntil([&] { return s.env.heartbeats >= beats + 2; }));
  int frames = s.env.frames;
  ASSERT_TRUE(s.env.RunUntil([&] { return s.env.heartbeats >= beats + 4; }));
  EXPECT_EQ(s.env.frames, frames) << "a hidden renderer drew";
  EXPECT_EQ(s.host.Snapshot(MonotonicNs()).visibility, protocol::Visibility::kHidden);
  s.host.SetVisibility(protocol::Visibility::kVisible);
  ASSERT_TRUE(s.env.RunUntil([&] { return s.env.frames > frames; }));
  EXPECT_EQ(s.env.Count(EventType::kVisibility), 2u);
  // Told again what it already is: no message, no event.
  s.host.SetVisibility(protocol::Visibility::kVisible);
  EXPECT_EQ(s.env.Count(EventType::kVisibility), 2u);
}

TEST(RendererHostTest, TheVisibilitySurvivesARestart) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  s.host.SetVisibility(protocol::Visibility::kHidden);
  ASSERT_TRUE(s.KillAndWait(KillReason::kNone));
  // A renderer started hidden still draws its first frame, so it becomes ready.
  ASSERT_TRUE(s.env.RunUntilEvent(EventType::kReady, 2));
  auto cmdline =
      ReadSmallFile("/proc/" + std::to_string(s.host.Snapshot(MonotonicNs()).pid) + "/cmdline");
  ASSERT_TRUE(cmdline);
  EXPECT_NE(cmdline->find("--visibility=hidden"), std::string::npos);
  EXPECT_EQ(s.host.visibility(), protocol::Visibility::kHidden);
}

// No cgroup in this environment: the fallback is every thread's nice value.
TEST(RendererHostTest, WithoutACgroupAHiddenRendererRunsAtAHigherNiceValue) {
  Slot s;
  ASSERT_TRUE(s.StartReady());
  pid_t pid = s.host.Snapshot(MonotonicNs()).pid;
  // Set before exec, so the IO thread has it too.
  auto nices = ThreadNices(pid);
  ASSERT_EQ(nices.size(), 2u);
  EXPECT_EQ(nices, (std::vector<int>{5, 5}));
  if (::geteuid() != 0) GTEST_SKIP() << "lowering a nice value back needs CAP_SYS_NICE";
  s.host.SetVisibility(protocol::Visibility::kHidden);
  EXPECT_EQ(ThreadNices(pid), (std::vector<int>{15, 15}));
  s.host.SetVisibility(protocol::Visibility::kVisible);
  EXPECT_EQ(ThreadNices(pid), (std::vector<int>{5, 5}));
}

// What sbx-bench's control_rtt_path runs: renderers at the broker's own priority, hidden or not.
TEST(RendererHostTest, RenderersNotBelowTheBrokerKeepItsNiceValue) {
  Slot s;
  s.env.settings.renderers_below_broker = false;
  ASSERT_TRUE(s.StartReady());
  pid_t pid = s.host.Snapshot(MonotonicNs()).pid;
  const int ours = ThreadNices(::getpid()).front();
  EXPECT_EQ(ThreadNices(pid), (std::vector<int>{ours, ours}));
  // Without CAP_SYS_NICE a hidden renderer's nice value is left alone either way.
  if (::geteuid() != 0) GTEST_SKIP() << "renicing a hidden renderer needs CAP_SYS_NICE";
  s.host.SetVisibility(protocol::Visibility::kHidden);
  EXPECT_EQ(ThreadNices(pid), (std::vector<int>{ours, ours}));
}

}  // namespace
}  // namespace sbx
