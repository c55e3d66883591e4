// Control clients are untrusted too: one that floods commands without reading the replies, a
// crowd of idle connections or an endless line must neither stall the broker nor lock the
// other clients out.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Writes as much of `bytes` as the socket takes without blocking; how much that was.
size_t SendWithoutBlocking(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  return sent;
}

// Far more replies than the socket buffers and the broker's per-client bound (1 MiB) hold. The
// broker answers them as the client reads: a client that does not read only stops being served,
// while every other client is.
TEST(ControlClientTest, AClientThatDoesNotReadItsRepliesStallsNobodyAndLosesNone) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s));
  ControlConnection flood(b.control_path());
  ASSERT_TRUE(flood.connected());
  constexpr size_t kCommands = 20000;  // ~150 bytes of reply each: 3 MB
  std::string lines;
  for (size_t i = 0; i < kCommands; ++i) lines += "stats\n";
  size_t sent = SendWithoutBlocking(flood.fd(), lines);
  ASSERT_GT(sent, 0u);

  // Each round trip is several turns of the broker's loop, each of which also serves the flood
  // as far as it is served at all: enough turns to have read all of it, had it been read on.
  for (int i = 0; i < 40; ++i) {
    json stats = b.Ctl("stats");
    ASSERT_TRUE(stats.contains("renderers")) << stats.dump();
  }
  json ping = b.Ctl("ping 1");
  EXPECT_TRUE(ping.contains("rtt_us")) << ping.dump();

  // Now it reads, and sends the rest as the broker makes room: every command is answered.
  size_t answered = 0;
  while (answered < kCommands) {
    if (sent < lines.size()) sent += SendWithoutBlocking(flood.fd(), lines.substr(sent));
    auto reply = flood.ReadReply(10s);
    ASSERT_TRUE(reply) << "reply " << answered << " of " << kCommands << " never came";
    ASSERT_TRUE(reply->contains("spawns")) << reply->dump();
    ++answered;
  }
}

TEST(ControlClientTest, IdleConnectionsCannotLockOtherClientsOut) {
  BrokerProcess b({});
  ASSERT_TRUE(b.Ctl("stats").contains("renderers"));
  std::vector<std::unique_ptr<ControlConnection>> idle;
  for (int i = 0; i < 80; ++i) {
    idle.push_back(std::make_unique<ControlConnection>(b.control_path()));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  json stats = b.Ctl("stats");
  EXPECT_TRUE(stats.contains("renderers")) << stats.dump();
  // The first to arrive was idle longest, so it made room, and was told why.
  auto told = idle.front()->ReadReply(10s);
  ASSERT_TRUE(told);
  EXPECT_NE(told->value("error", "").find("idle longest"), std::string::npos) << told->dump();
}

TEST(ControlClientTest, AnEndlessLineIsRefusedBeforeItEndsAndTheConnectionGoesOn) {
  BrokerProcess b({});
  ControlConnection c(b.control_path());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.SendRaw(std::string(64 * 1024, 'A')));
  auto refused = c.ReadReply(10s);  // no newline sent yet
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->value("error", "").find("too long"), std::string::npos) << refused->dump();
  ASSERT_TRUE(c.SendRaw(std::string(1024 * 1024, 'B') + "\nstats\n"));
  auto stats = c.ReadReply(10s);
  ASSERT_TRUE(stats);
  EXPECT_TRUE(stats->contains("renderers")) << stats->dump();
}

}  // namespace
}  // namespace sbx::testing
