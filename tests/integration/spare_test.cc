// The spare renderer, end to end: one renderer started and sandboxed ahead of need, taken by
// the next spawn or restart and replaced in the background (docs/ARCHITECTURE.md, "The spare").
// Every event is read from a real broker's --json output; the spare itself is seen through
// `stats` and `inspect`, the places it shows before a slot takes it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kTimeout = 10s;

int PidOf(const json& event) { return event.value("pid", 0); }

json SpareOf(BrokerProcess& b) { return StatsObject(b, "spare"); }

// The pid of the spare waiting now, once it is not `not_pid`: 0 if none comes within kTimeout.
int WaitForSpare(BrokerProcess& b, int not_pid = 0) {
  return WaitForStatsPid(b, "spare", not_pid, kTimeout);
}

std::string CmdlineOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& c : text) c = c == '\0' ? ' ' : c;
  return text;
}

// Every event the broker printed for a slot, by name.
std::vector<std::string> EventsOf(const BrokerProcess& b, int id) {
  std::vector<std::string> out;
  for (const auto& e : b.history()) {
    if (e.value("id", 0) == id) out.push_back(e.value("event", ""));
  }
  return out;
}

TEST(SpareTest, ARestartTakesTheSpareAndAnotherReplacesIt) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("spawned", 1, kTimeout));
  auto ready = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(ready);
  int spare = WaitForSpare(b);
  ASSERT_GT(spare, 0) << SpareOf(b).dump();
  EXPECT_NE(spare, PidOf(*ready));
  EXPECT_NE(CmdlineOf(spare).find("--spare"), std::string::npos) << CmdlineOf(spare);
  ASSERT_EQ(::kill(PidOf(*ready), SIGKILL), 0);
  ASSERT_TRUE(b.WaitForEvent("exited", 1, kTimeout));
  auto spawned = b.WaitForEvent("spawned", 1, kTimeout);
  ASSERT_TRUE(spawned);
  EXPECT_EQ(PidOf(*spawned), spare) << "the restart launched a renderer of its own";
  auto again = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(again);
  EXPECT_EQ(PidOf(*again), spare);
  // Once assigned it is renderer 1 in every place a renderer shows: ps, list, sandbox.
  EXPECT_NE(CmdlineOf(spare).find("--id=1"), std::string::npos) << CmdlineOf(spare);
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 1u) << list.dump();
  EXPECT_EQ(list["renderers"][0]["pid"], spare);
  EXPECT_EQ(list["renderers"][0]["state"], "running");
  json sandbox = b.Ctl("sandbox 1");
  EXPECT_EQ(sandbox.value("verdict", ""), "adequately sandboxed") << sandbox.dump();
  int next = WaitForSpare(b, spare);
  EXPECT_GT(next, 0) << "the taken spare was not replaced";
  EXPECT_NE(next, spare);
  json s = SpareOf(b);
  EXPECT_GE(s.value("taken", 0), 1);
  EXPECT_GE(s.value("started", 0), 2);
}

TEST(SpareTest, ASpawnTakesTheSpare) {
  BrokerProcess b({"--renderers", "0"});
  int spare = WaitForSpare(b);
  ASSERT_GT(spare, 0) << SpareOf(b).dump();
  json reply = b.Ctl("spawn sbx://clock");
  int id = reply.value("id", 0);
  ASSERT_GT(id, 0) << reply.dump();
  auto ready = b.WaitForEvent("ready", id, kTimeout);
  ASSERT_TRUE(ready);
  EXPECT_EQ(PidOf(*ready), spare);
  EXPECT_EQ(ready->value("page", ""), "sbx://clock");
  EXPECT_NE(CmdlineOf(spare).find("--page=sbx://clock"), std::string::npos) << CmdlineOf(spare);
  EXPECT_GT(WaitForSpare(b, spare), 0);
}

// Taking the spare needs no launch, so it does not wait for the launch queue's turn of the loop:
// a `list` read in the same turn as the `spawn` already shows the spare's pid in the new slot.
// A restart takes it the same way, before the dead process is torn down.
TEST(SpareTest, ASpawnHasTheSpareBeforeTheNextCommandIsRead) {
  BrokerProcess b({"--renderers", "0"});
  int spare = WaitForSpare(b);
  ASSERT_GT(spare, 0) << SpareOf(b).dump();
  ControlConnection c(b.control_path());
  ASSERT_TRUE(c.SendRaw("spawn sbx://clock\nlist\n"));
  auto spawned = c.ReadReply(kTimeout);
  auto list = c.ReadReply(kTimeout);
  ASSERT_TRUE(spawned && list);
  int id = spawned->value("id", 0);
  ASSERT_GT(id, 0) << spawned->dump();
  ASSERT_EQ((*list)["renderers"].size(), 1u) << list->dump();
  EXPECT_EQ((*list)["renderers"][0].value("pid", 0), spare) << list->dump();
  auto event = b.WaitForEvent("spawned", id, kTimeout);
  ASSERT_TRUE(event);
  EXPECT_EQ(PidOf(*event), spare);
}

TEST(SpareTest, NoSpareMeansNone) {
  BrokerProcess b({"--renderers", "1", "--no-spare"});
  auto ready = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(ready);
  // The spare would be queued behind renderer 1, which is ready: a few more loop turns (each
  // round trip is one) are more than its launch waits.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.Ctl("stats").contains("spare"));
  json s = SpareOf(b);
  EXPECT_EQ(s.value("enabled", true), false) << s.dump();
  EXPECT_EQ(s.value("pid", -1), 0);
  EXPECT_EQ(s.value("started", -1), 0);
  ASSERT_EQ(::kill(PidOf(*ready), SIGKILL), 0);
  auto again = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(again);
  EXPECT_EQ(SpareOf(b).value("taken", -1), 0);
}

// The spare renderer in `inspect`'s tree: a child of the broker (under its init when sandboxed),
// marked spare, with no id; once a slot takes it, it is that slot's renderer and is not marked.
TEST(SpareTest, InspectShowsTheSpareWithNoIdUntilASlotTakesIt) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kTimeout));
  int spare = WaitForSpare(b);
  ASSERT_GT(spare, 0);
  json root = b.Ctl("inspect")["process"];
  json shown;
  int marked = 0;
  for (const auto& c : root["children"]) {
    if (!c.value("spare", false)) continue;
    ++marked;
    shown = c["role"] == "init" ? c["children"][0] : c;
    EXPECT_FALSE(c.contains("id")) << c.dump();
  }
  ASSERT_EQ(marked, 1) << root["children"].dump();
  EXPECT_EQ(shown.value("role", ""), "renderer");
  EXPECT_EQ(shown.value("pid", 0), spare);
  EXPECT_TRUE(shown.value("spare", false));
  EXPECT_FALSE(shown.contains("id"));

  json reply = b.Ctl("spawn");
  ASSERT_EQ(reply.value("id", 0), 2) << reply.dump();
  auto ready = b.WaitForEvent("ready", 2, kTimeout);
  ASSERT_TRUE(ready);
  ASSERT_EQ(PidOf(*ready), spare);
  json taken = b.Ctl("inspect 2")["process"];
  json renderer = taken["role"] == "init" ? taken["children"][0] : taken;
  EXPECT_EQ(renderer.value("pid", 0), spare);
  EXPECT_EQ(renderer.value("id", 0), 2);
  EXPECT_FALSE(renderer.contains("spare")) << renderer.dump();
}

TEST(SpareTest, ASpareKilledWhileWaitingIsReplacedAndNoSlotHearsOfIt) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kTimeout));
  int spare = WaitForSpare(b);
  ASSERT_GT(spare, 0);
  ASSERT_EQ(::kill(spare, SIGKILL), 0);
  int next = WaitForSpare(b, spare);
  ASSERT_GT(next, 0) << "a lost spare was not replaced";
  EXPECT_TRUE(WaitProcessGone(spare, kTimeout));
  EXPECT_GE(SpareOf(b).value("lost", 0), 1);
  EXPECT_EQ(EventsOf(b, 1), (std::vector<std::string>{"spawned", "ready"}));
  for (const auto& e : b.history()) EXPECT_NE(PidOf(e), spare) << e.dump();
}

TEST(SpareTest, ShutdownWithASpareLeavesNothing) {
  BrokerProcess b({"--renderers", "1"});
  auto ready = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(ready);
  int spare = WaitForSpare(b);
  ASSERT_GT(spare, 0);
  std::string cgroup = SpareOf(b).value("cgroup", "");
  pid_t broker_pid = b.pid();
  auto status = b.SignalAndWait(SIGTERM, kTimeout);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->si_code, CLD_EXITED);
  EXPECT_EQ(status->si_status, 0);
  EXPECT_TRUE(WaitProcessGone(spare, 5s)) << "the spare survived the broker";
  EXPECT_TRUE(WaitProcessGone(PidOf(*ready), 5s));
  EXPECT_TRUE(QueueEntries(broker_pid).empty());
  EXPECT_TRUE(ShmEntries("sbx").empty());
  // Where the broker has cgroups, the spare's went with it.
  if (!cgroup.empty()) {
    EXPECT_FALSE(std::filesystem::exists(cgroup)) << cgroup;
  }
}

// A spare is as hostile as any renderer: one that draws before it is assigned is killed
// `bad-message` and replaced, and the slot it was never given hears nothing of it. The evil
// renderer does exactly that when started as a spare; the core is run in-process to give it a
// spare, which the command line never does for a --renderer-path program.
TEST(SpareTest, ASpareThatSpeaksBeforeItsAssignmentIsKilledAndReplaced) {
  struct Recorder : BrokerObserver {
    void OnBrokerEvent(const BrokerEvent& e) override { events.push_back(e); }
    std::vector<BrokerEvent> events;
  } rec;
  BrokerOptions o;
  o.renderer_path = BinPath("sbx-evil-renderer");
  o.page = "evil://good";
  o.renderers = 1;
  o.spare = true;
  auto b = Broker::Create(std::move(o));
  ASSERT_TRUE(b) << b.error().ToString();
  (*b)->AddObserver(&rec);
  ASSERT_TRUE((*b)->Start());
  ASSERT_TRUE(RunUntil(
      **b,
      [&] {
        BrokerStats s = (*b)->Stats();
        return s.spares_lost >= 2 && s.running == 1;
      },
      kTimeout));
  BrokerStats s = (*b)->Stats();
  EXPECT_GE(s.bad_messages, 2u);
  EXPECT_GE(s.spares_started, 2u);
  EXPECT_EQ(s.spares_taken, 0u);
  for (const auto& e : rec.events) {
    EXPECT_EQ(e.id, 1);
    EXPECT_TRUE(e.type == EventType::kSpawned || e.type == EventType::kReady ||
                e.type == EventType::kLog)
        << EventTypeName(e.type);
  }
  (*b)->RemoveObserver(&rec);
}

}  // namespace
}  // namespace sbx::testing
