// The IPC inspector against real renderers: the per-mechanism counters `list` carries match what
// a renderer that sends known counts sent, and `trace` streams decoded lines for each mechanism.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint64_t kFrames = 5;      // what evil://counted publishes
constexpr uint64_t kHeartbeats = 3;  // and the heartbeats it sends
constexpr uint64_t kPings = 2;
constexpr uint64_t kHeader = 16;
constexpr uint64_t kFrameBytes = 640 * 360 * 4;  // the default geometry

json IpcOf(BrokerProcess& b, int id) {
  json list = b.Ctl("list");
  for (const auto& r : list.value("renderers", json::array())) {
    if (r.value("id", 0) == id) return r.value("ipc", json::object());
  }
  return json::object();
}

uint64_t Messages(const json& ipc, const char* mechanism) {
  return ipc.value(mechanism, json::object()).value("messages", uint64_t{0});
}
uint64_t Bytes(const json& ipc, const char* mechanism) {
  return ipc.value(mechanism, json::object()).value("bytes", uint64_t{0});
}

class InspectorCountTest : public ::testing::TestWithParam<bool> {};

TEST_P(InspectorCountTest, CountersMatchWhatTheRendererSent) {
  const bool on_pipe = GetParam();
  std::vector<std::string> args = {"--renderers",     "1",
                                   "--hang-timeout",  "60000",
                                   "--renderer-path", BinPath("sbx-evil-renderer"),
                                   "--page",          "evil://counted"};
  if (on_pipe) args.push_back("--heartbeat-pipe");
  BrokerProcess b(args);
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s)) << json(b.history()).dump();
  for (uint64_t i = 0; i < kPings; ++i) {
    json ping = b.Ctl("ping 1");
    ASSERT_TRUE(ping.contains("rtt_us")) << ping.dump();
  }
  // The pongs are counted once the ping replies came; the queue is read on its own wakeup.
  const uint64_t pipe_in = kFrames + kPings + (on_pipe ? kHeartbeats : 0);
  const uint64_t queued = on_pipe ? 0 : kHeartbeats;
  json ipc;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    ipc = IpcOf(b, 1);
  } while ((Messages(ipc, "pipe-in") < pipe_in || Messages(ipc, "mq") < queued) &&
           std::chrono::steady_clock::now() < deadline);
  // hello (12 bytes of payload), then the pings (8 each).
  EXPECT_EQ(Messages(ipc, "pipe-out"), 1 + kPings) << ipc.dump();
  EXPECT_EQ(Bytes(ipc, "pipe-out"), kHeader + 12 + kPings * (kHeader + 8)) << ipc.dump();
  // frame-ready (12 bytes), pongs (8), heartbeats on the pipe (40).
  EXPECT_EQ(Messages(ipc, "pipe-in"), pipe_in) << ipc.dump();
  EXPECT_EQ(Bytes(ipc, "pipe-in"), kFrames * (kHeader + 12) + kPings * (kHeader + 8) +
                                       (on_pipe ? kHeartbeats * (kHeader + 40) : 0))
      << ipc.dump();
  EXPECT_EQ(Messages(ipc, "shm"), kFrames) << ipc.dump();
  EXPECT_EQ(Bytes(ipc, "shm"), kFrames * kFrameBytes) << ipc.dump();
  EXPECT_EQ(Messages(ipc, "mq"), queued) << ipc.dump();
  EXPECT_EQ(Bytes(ipc, "mq"), queued * 40) << ipc.dump();
  EXPECT_EQ(Messages(ipc, "signal"), 0u) << ipc.dump();
  EXPECT_EQ(Messages(ipc, "pidfd"), 0u) << ipc.dump();
  EXPECT_EQ(ipc.value("queue_depth", -2), on_pipe ? -1 : 0) << ipc.dump();
  EXPECT_EQ(ipc.value("pipe_in_waiting", -2), 0) << ipc.dump();
  // `stats` adds every renderer's channels up and counts its own socket.
  json stats = b.Ctl("stats");
  EXPECT_EQ(stats["ipc"]["shm"].value("messages", uint64_t{0}), kFrames) << stats.dump();
  EXPECT_GE(stats["ipc"]["control"].value("lines_in", uint64_t{0}), kPings + 1) << stats.dump();
}

INSTANTIATE_TEST_SUITE_P(Heartbeats, InspectorCountTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "OnThePipe" : "OnTheQueue"; });

// Reads trace lines until every mechanism in `want` was seen with a decoded line, or the deadline.
std::set<std::string> ReadTrace(ControlConnection& c, const std::set<std::string>& want,
                                std::chrono::milliseconds timeout, json* bad = nullptr) {
  std::set<std::string> seen;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (seen != want && std::chrono::steady_clock::now() < deadline) {
    auto line = c.ReadReply(std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()));
    if (!line) break;
    std::string m = line->value("mechanism", "");
    if (!want.contains(m)) {
      if (bad != nullptr && !m.empty()) *bad = *line;
      continue;
    }
    std::string type = line->value("type", "");
    std::string summary = line->value("summary", "");
    bool decoded = !type.empty() && line->value("id", 0) == 1;
    if (m == "pipe-in" && type == "frame-ready")
      decoded &= summary.find("frame ") == 0 || summary.find("buffer") == 0;
    if (m == "mq") decoded &= type == "heartbeat" && summary.find("frames") != std::string::npos;
    if (m == "signal") decoded &= type == "SIGCONT" || type == "SIGKILL";
    if (m == "pipe-out" && type == "set-fps") decoded &= summary == "20 fps";
    if (decoded) seen.insert(m);
  }
  return seen;
}

TEST(InspectorTraceTest, StreamsDecodedLinesForEachMechanism) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s)) << json(b.history()).dump();
  ControlConnection all(b.control_path());
  ControlConnection mq(b.control_path());
  ASSERT_TRUE(all.SendRaw("trace 1\n") && mq.SendRaw("trace 1 mq\n"));
  auto ok = all.ReadReply(5s);
  ASSERT_TRUE(ok && ok->value("ok", false)) << (ok ? ok->dump() : "no reply");
  ok = mq.ReadReply(5s);
  ASSERT_TRUE(ok && ok->value("ok", false)) << (ok ? ok->dump() : "no reply");
  EXPECT_EQ(b.Ctl("fps 1 20").value("ok", false), true);
  EXPECT_EQ(b.Ctl("kill 1 CONT").value("ok", false), true);
  auto seen = ReadTrace(all, {"pipe-out", "pipe-in", "shm", "mq", "signal"}, 5s);
  EXPECT_EQ(seen, (std::set<std::string>{"pipe-out", "pipe-in", "shm", "mq", "signal"}));
  // Its exit comes through the pidfd; the filtered client saw nothing but the queue.
  EXPECT_EQ(b.Ctl("kill 1 KILL").value("ok", false), true);
  EXPECT_EQ(ReadTrace(all, {"pidfd"}, 5s), std::set<std::string>{"pidfd"});
  json other;
  EXPECT_EQ(ReadTrace(mq, {"mq"}, 5s, &other), std::set<std::string>{"mq"});
  EXPECT_TRUE(other.is_null()) << other.dump();
}

TEST(InspectorTraceTest, RefusesWhatItCannotTrace) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s)) << json(b.history()).dump();
  EXPECT_NE(b.Ctl("trace 9").value("error", "").find("no renderer 9"), std::string::npos);
  EXPECT_NE(b.Ctl("trace 1 carrier-pigeon").value("error", "").find("unknown mechanism"),
            std::string::npos);
  EXPECT_NE(b.Ctl("trace 1 mq extra").value("error", "").find("usage"), std::string::npos);
}

// With the inspector off, `list` says so and nothing is counted.
TEST(InspectorTraceTest, OffCountsNothing) {
  BrokerProcess b({"--renderers", "1", "--no-inspector"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s)) << json(b.history()).dump();
  json ipc = IpcOf(b, 1);
  EXPECT_EQ(ipc.value("enabled", true), false) << ipc.dump();
  EXPECT_EQ(Messages(ipc, "pipe-in"), 0u) << ipc.dump();
}

}  // namespace
}  // namespace sbx::testing
