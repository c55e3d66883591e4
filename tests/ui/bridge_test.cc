// The broker core's EventLoop runs inside Qt's through one QSocketNotifier on its epoll fd.
#include <gtest/gtest.h>

#include "ipc/posix.h"
#include "tests/ui/ui_test_util.h"
#include "ui/broker_bridge.h"

namespace sbx::ui::testing {
namespace {

TEST(BridgeTest, CoreTimersFireThroughTheEpollFdAlone) {
  // The core's timerfd sits inside its epoll set, so a due timer makes the epoll fd readable:
  // Qt's loop needs no QTimer of its own to run the core's deadlines.
  auto broker = Broker::Create(TestOptions());
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  int64_t due = MonotonicNs() + 50'000'000;
  int64_t fired_at = 0;
  (*broker)->loop().AddTimer(due, [&] { fired_at = MonotonicNs(); });
  ASSERT_TRUE(WaitUntil([&] { return fired_at != 0; }, 5s));
  EXPECT_GE(fired_at, due);
  EXPECT_GT(bridge.dispatches(), 0u);
}

TEST(BridgeTest, EventsFramesAndHeartbeatsBecomeSignals) {
  auto broker = Broker::Create(TestOptions());
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  EventRecorder rec(&bridge);
  int frames = 0;
  int heartbeats = 0;
  QObject::connect(&bridge, &BrokerBridge::frameReady, [&](int, quint64) { ++frames; });
  QObject::connect(&bridge, &BrokerBridge::heartbeat, [&](int, qint64) { ++heartbeats; });
  auto id = (*broker)->Spawn("sbx://clock");
  ASSERT_TRUE(id);
  ASSERT_TRUE(rec.WaitFor(EventType::kReady, *id));
  ASSERT_TRUE(WaitUntil([&] { return frames >= 3 && heartbeats >= 2; }));
  EXPECT_EQ(rec.events().front().type, EventType::kSpawned);
}

TEST(BridgeTest, ShutdownReportsWhenEveryRendererIsReaped) {
  auto broker = Broker::Create(TestOptions());
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  EventRecorder rec(&bridge);
  bool finished = false;
  QObject::connect(&bridge, &BrokerBridge::shutdownFinished, [&] { finished = true; });
  auto a = (*broker)->Spawn();
  auto b = (*broker)->Spawn();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(rec.WaitFor(EventType::kReady, *a));
  ASSERT_TRUE(rec.WaitFor(EventType::kReady, *b));
  bridge.Shutdown();
  ASSERT_TRUE(WaitUntil([&] { return finished; }));
  EXPECT_TRUE((*broker)->finished());
  EXPECT_TRUE(rec.Has(EventType::kClosed, *a));
  EXPECT_TRUE(rec.Has(EventType::kClosed, *b));
}

TEST(BridgeTest, ShutdownWithNothingRunningFinishesAtOnce) {
  auto broker = Broker::Create(TestOptions());
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  bool finished = false;
  QObject::connect(&bridge, &BrokerBridge::shutdownFinished, [&] { finished = true; });
  bridge.Shutdown();
  EXPECT_TRUE(finished);
}

}  // namespace
}  // namespace sbx::ui::testing
