// Renderers below the broker, hidden ones lower still, proved on the real scheduler settings: the
// nice value every thread of a renderer starts with, and its cgroup's CPU weight as its
// visibility changes (docs/SANDBOX.md, "Priorities").
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/cgroup.h"
#include "broker/proc_stats.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;

class Recorder : public BrokerObserver {
 public:
  void OnBrokerEvent(const BrokerEvent& e) override { events.push_back(e); }
  bool Ready(int id) const {
    for (const auto& e : events) {
      if (e.type == EventType::kReady && e.id == id) return true;
    }
    return false;
  }
  std::vector<BrokerEvent> events;
};

// The file that holds the renderer's CPU weight: its cgroup in the cpu hierarchy.
std::string CpuWeightFile(const Broker& b, const RendererSnapshot& s) {
  const CgroupSupport& c = b.cgroups();
  if (c.mode == CgroupMode::kV2) return s.cgroup_path + "/cpu.weight";
  // v1: the same r-N directory under the broker's directory of the cpu hierarchy.
  std::string leaf = s.cgroup_path.substr(s.cgroup_path.rfind('/'));
  return c.broker_dirs.at(2) + leaf + "/cpu.shares";
}

int64_t ReadInt(const std::string& path) {
  auto text = ReadSmallFile(path);
  return text ? std::stoll(*text) : -1;
}

struct Fixture {
  explicit Fixture(bool hidden) {
    BrokerOptions o;
    o.renderer_path = BinPath("sbx-renderer");
    o.restart = false;
    o.start_hidden = hidden;
    auto made = Broker::Create(std::move(o));
    if (!made) return;
    broker = std::move(*made);
    broker->AddObserver(&rec);
  }
  ~Fixture() {
    if (broker) broker->RemoveObserver(&rec);
  }
  // A new renderer's snapshot once it has drawn, or nullopt.
  std::optional<RendererSnapshot> SpawnReady() {
    if (!broker) return std::nullopt;
    auto id = broker->Spawn();
    if (!id || !RunUntil(
                   *broker, [&] { return rec.Ready(*id); }, 10s))
      return std::nullopt;
    return broker->Get(*id);
  }
  std::unique_ptr<Broker> broker;
  Recorder rec;
};

TEST(PriorityTest, EveryThreadOfARendererStartsBelowTheBroker) {
  Fixture f(false);
  auto snap = f.SpawnReady();
  ASSERT_TRUE(snap);
  // The main thread and the IO thread, which started after the nice value was set.
  EXPECT_EQ(ThreadNices(snap->pid), (std::vector<int>{5, 5}));
  EXPECT_EQ(::getpriority(PRIO_PROCESS, 0), 0) << "the broker itself stays where it was";
}

TEST(PriorityTest, AHiddenRendererGetsAnEighthOfTheCpuShare) {
  auto support = DetectCgroups();
  if (support.mode == CgroupMode::kNone) GTEST_SKIP() << "no cgroup here: " << support.reason;
  Fixture f(false);
  auto snap = f.SpawnReady();
  ASSERT_TRUE(snap);
  ASSERT_FALSE(snap->cgroup_path.empty());
  std::string file = CpuWeightFile(*f.broker, *snap);
  bool v2 = f.broker->cgroups().mode == CgroupMode::kV2;
  EXPECT_EQ(ReadInt(file), v2 ? 25 : 256);
  ASSERT_TRUE(f.broker->SetVisibility(snap->id, protocol::Visibility::kHidden));
  EXPECT_EQ(ReadInt(file), v2 ? 3 : 32);
  ASSERT_TRUE(f.broker->SetVisibility(snap->id, protocol::Visibility::kVisible));
  EXPECT_EQ(ReadInt(file), v2 ? 25 : 256);
  // With a cgroup to carry it, nice is not touched.
  EXPECT_EQ(ThreadNices(snap->pid), (std::vector<int>{5, 5}));
}

TEST(PriorityTest, ARendererStartedHiddenHasTheLowShareFromItsFirstInstruction) {
  auto support = DetectCgroups();
  if (support.mode == CgroupMode::kNone) GTEST_SKIP() << "no cgroup here: " << support.reason;
  Fixture f(true);
  auto snap = f.SpawnReady();
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->visibility, protocol::Visibility::kHidden);
  EXPECT_EQ(ReadInt(CpuWeightFile(*f.broker, *snap)),
            f.broker->cgroups().mode == CgroupMode::kV2 ? 3 : 32);
}

}  // namespace
}  // namespace sbx::testing
