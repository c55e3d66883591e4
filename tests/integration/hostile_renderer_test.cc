// A renderer is untrusted: each way of breaking the protocol gets that renderer killed with
// status bad-message, and the broker and every other renderer go on.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct HostileCase {
  const char* mode;
  const char* detail;  // a fragment of the broker's stated reason
};

void PrintTo(const HostileCase& c, std::ostream* os) { *os << c.mode; }

class HostileRendererTest : public ::testing::TestWithParam<HostileCase> {};

// Each hostile renderer runs in a broker of its own (--renderer-path); afterwards the same
// broker must still serve commands and a fresh, well-behaved renderer.
TEST_P(HostileRendererTest, BrokerKillsHostileRendererWithBadMessage) {
  const HostileCase& c = GetParam();
  BrokerProcess b({"--renderers", "1", "--no-restart", "--renderer-path",
                   BinPath("sbx-evil-renderer"), "--page", "evil://" + std::string(c.mode)});
  auto exited = b.WaitForEvent("exited", 1, 15s);
  ASSERT_TRUE(exited) << c.mode;
  EXPECT_EQ(exited->value("status", ""), "bad-message") << exited->dump();
  EXPECT_EQ(exited->value("signal", ""), "SIGKILL");
  EXPECT_NE(exited->value("detail", "").find(c.detail), std::string::npos) << exited->dump();
  // The broker is alive and serves a fresh, good renderer.
  json spawned = b.Ctl("spawn evil://good");
  ASSERT_EQ(spawned.value("ok", false), true) << spawned.dump();
  EXPECT_TRUE(b.WaitForEvent("ready", spawned.value("id", 0), 10s));
  json stats = b.Ctl("stats");
  EXPECT_GE(stats.value("bad_messages", 0), 1) << stats.dump();
}

// The same breakage next to a good renderer in one broker: only the hostile one may die, and the
// good one must keep being served the whole time.
TEST_P(HostileRendererTest, GoodRendererGoesOnWhileTheHostileOneIsKilled) {
  const HostileCase& c = GetParam();
  BrokerProcess b({"--renderers", "1", "--no-restart", "--renderer-path",
                   BinPath("sbx-evil-renderer"), "--page", "evil://good"});
  auto good = b.WaitForEvent("ready", 1, 10s);
  ASSERT_TRUE(good) << json(b.history()).dump();
  int good_pid = good->value("pid", 0);
  json spawned = b.Ctl("spawn evil://" + std::string(c.mode));
  ASSERT_EQ(spawned.value("ok", false), true) << spawned.dump();
  int hostile_id = spawned.value("id", 0);
  ASSERT_NE(hostile_id, 1);
  auto exited = b.WaitForEvent("exited", hostile_id, 15s);
  ASSERT_TRUE(exited) << c.mode << " " << json(b.history()).dump();
  EXPECT_EQ(exited->value("status", ""), "bad-message") << exited->dump();
  EXPECT_NE(exited->value("detail", "").find(c.detail), std::string::npos) << exited->dump();

  json ping = b.Ctl("ping 1");
  EXPECT_TRUE(ping.contains("rtt_us")) << ping.dump();
  json list = b.Ctl("list");
  ASSERT_TRUE(list.contains("renderers")) << list.dump();
  bool listed = false;
  for (const auto& r : list["renderers"]) {
    if (r.value("id", 0) != 1) continue;
    listed = true;
    EXPECT_EQ(r.value("state", ""), "running") << r.dump();
    EXPECT_EQ(r.value("pid", 0), good_pid) << "the good renderer was replaced";
  }
  EXPECT_TRUE(listed) << list.dump();
  // The closed event of the hostile one comes after anything the broker said before it, so once
  // it is read the history holds every event about the good renderer up to now.
  ASSERT_EQ(b.Ctl("close " + std::to_string(hostile_id)).value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("closed", hostile_id, 10s));
  for (const auto& e : b.history()) {
    if (e.value("id", 0) != 1) continue;
    std::string event = e.value("event", "");
    EXPECT_TRUE(event == "spawned" || event == "ready") << "good renderer: " << e.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, HostileRendererTest,
                         ::testing::Values(HostileCase{"flood", "flood"},
                                           HostileCase{"oversize", "oversize"},
                                           HostileCase{"bad-frame-index", "index"},
                                           HostileCase{"backwards-frame", "backwards"},
                                           HostileCase{"bad-heartbeat", "heartbeat"},
                                           HostileCase{"bad-sequence", "sequence"},
                                           HostileCase{"unsolicited-pong", "pong"},
                                           HostileCase{"close-pipe", "closed its control pipe"},
                                           HostileCase{"close-command-pipe", "reads commands"},
                                           HostileCase{"half-header", "part of a message"},
                                           HostileCase{"half-payload", "part of a message"},
                                           HostileCase{"heartbeat-clock", "timestamp"},
                                           HostileCase{"heartbeat-cpu", "CPU time"},
                                           HostileCase{"heartbeat-render", "frame took"}),
                         [](const auto& info) {
                           std::string name = info.param.mode;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

// A pong for a ping the broker gave up on is late, not hostile: the ping fails, the renderer
// stays. The drill report the evil renderer sends right after its late pong tells us the broker
// has read that pong.
TEST(HostileRendererTest, ALatePongIsNotAViolation) {
  BrokerProcess b({"--renderers", "1", "--no-restart", "--renderer-path",
                   BinPath("sbx-evil-renderer"), "--page", "evil://late-pong"});
  auto ready = b.WaitForEvent("ready", 1, 10s);
  ASSERT_TRUE(ready) << json(b.history()).dump();
  json missed = b.Ctl("ping 1");
  EXPECT_NE(missed.value("error", "").find("no pong"), std::string::npos) << missed.dump();
  ASSERT_TRUE(b.WaitForEvent("drill-report", 1, 10s)) << json(b.history()).dump();
  json ping = b.Ctl("ping 1");
  EXPECT_TRUE(ping.contains("rtt_us")) << ping.dump();
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 1u) << list.dump();
  EXPECT_EQ(list["renderers"][0].value("pid", 0), ready->value("pid", -1)) << list.dump();
  for (const auto& e : b.history()) EXPECT_NE(e.value("event", ""), "exited") << e.dump();
}

// Each token is answered once: the first pong completes the ping, the second is a violation.
TEST(HostileRendererTest, ASecondPongForOnePingIsABadMessage) {
  BrokerProcess b({"--renderers", "1", "--no-restart", "--renderer-path",
                   BinPath("sbx-evil-renderer"), "--page", "evil://double-pong"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s)) << json(b.history()).dump();
  json ping = b.Ctl("ping 1");
  EXPECT_TRUE(ping.contains("rtt_us")) << ping.dump();
  auto exited = b.WaitForEvent("exited", 1, 10s);
  ASSERT_TRUE(exited) << json(b.history()).dump();
  EXPECT_EQ(exited->value("status", ""), "bad-message") << exited->dump();
  EXPECT_NE(exited->value("detail", "").find("pong"), std::string::npos) << exited->dump();
}

TEST(HostileRendererTest, ShrinkingTheFrameMemfdIsRefusedByTheSeals) {
  // The evil renderer exits with code 4 if ftruncate succeeds or fails with anything but EPERM;
  // reaching `ready` means the seals held and the broker mapped the frames safely.
  BrokerProcess b({"--renderers", "1", "--no-restart", "--renderer-path",
                   BinPath("sbx-evil-renderer"), "--page", "evil://shrink"});
  auto e = b.WaitFor(
      [](const json& j) {
        std::string ev = j.value("event", "");
        return (ev == "ready" || ev == "exited") && j.value("id", 0) == 1;
      },
      10s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value("event", ""), "ready") << e->dump();
  json ping = b.Ctl("ping 1");
  EXPECT_TRUE(ping.contains("rtt_us")) << ping.dump();
}

TEST(HostileRendererTest, AMinimalRendererWrittenFromTheProtocolWorks) {
  BrokerProcess b({"--renderers", "2", "--renderer-path", BinPath("sbx-evil-renderer"), "--page",
                   "evil://good"});
  ASSERT_TRUE(b.WaitForEvent("ready", -1, 10s)) << json(b.history()).dump();
  ASSERT_TRUE(b.WaitForEvent("ready", -1, 10s)) << json(b.history()).dump();
  json ping = b.Ctl("ping 2");
  EXPECT_TRUE(ping.contains("rtt_us")) << ping.dump();
}

}  // namespace
}  // namespace sbx::testing
