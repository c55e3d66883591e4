// A restart whose launch fails: the renderer binary vanished while an earlier process ran.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/test_util.h"

namespace sbx::testing {
namespace {

class EventRecorder : public BrokerObserver {
 public:
  void OnBrokerEvent(const BrokerEvent& e) override { events.push_back(e); }
  std::vector<BrokerEvent> events;
};

// Events of `type` recorded so far.
std::vector<BrokerEvent> OfType(const std::vector<BrokerEvent>& events, EventType type) {
  std::vector<BrokerEvent> out;
  for (const auto& e : events) {
    if (e.type == type) out.push_back(e);
  }
  return out;
}

TEST(LaunchFailureTest, ARestartThatCannotLaunchReportsNoPidOfTheOldProcess) {
  test::ScratchDir scratch("sbx-launch-failure");
  ASSERT_FALSE(scratch.path().empty());
  const std::filesystem::path renderer = std::filesystem::path(scratch.path()) / "sbx-renderer";
  std::error_code ec;
  std::filesystem::copy_file(BinPath("sbx-renderer"), renderer, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(::chmod(scratch.path().c_str(), 0755), 0);

  // Before the broker, so it outlives it: the broker's destructor may still report events.
  EventRecorder rec;
  BrokerOptions o;
  o.renderer_path = renderer.string();
  // A spare started before the binary goes would be taken by the restart, which then launches
  // nothing: this test is about a launch that fails.
  o.spare = false;
  auto created = Broker::Create(std::move(o));
  ASSERT_TRUE(created) << created.error().ToString();
  Broker& b = **created;
  b.AddObserver(&rec);
  auto id = b.Spawn();
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_TRUE(RunUntil(
      b, [&] { return !OfType(rec.events, EventType::kReady).empty(); }, std::chrono::seconds(10)));
  const pid_t old_pid = OfType(rec.events, EventType::kReady).front().pid;
  ASSERT_GT(old_pid, 0);

  // Gone from disk: the immediate restart cannot exec it.
  ASSERT_TRUE(scratch.Remove());
  ASSERT_EQ(::kill(old_pid, SIGKILL), 0);
  ASSERT_TRUE(RunUntil(
      b, [&] { return OfType(rec.events, EventType::kExited).size() >= 2; },
      std::chrono::seconds(10)));
  auto exits = OfType(rec.events, EventType::kExited);
  ASSERT_TRUE(exits[0].exit && exits[1].exit);
  EXPECT_EQ(ExitStatusName(exits[0].exit->status), "killed");
  EXPECT_EQ(exits[0].pid, old_pid);
  EXPECT_EQ(ExitStatusName(exits[1].exit->status), "launch-failed") << exits[1].detail;
  // No process was ever started for it, so it names none; least of all the one that died.
  EXPECT_EQ(exits[1].pid, 0) << "the failed launch reported pid " << exits[1].pid;
  auto snap = b.Get(*id);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->pid, 0);
  b.RemoveObserver(&rec);
}

}  // namespace
}  // namespace sbx::testing
