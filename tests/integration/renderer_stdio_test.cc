// A renderer's stdio is its own: fd 0 is empty, fds 1 and 2 are a pipe the broker reads into
// bounded `log` events, and nothing it writes reaches the broker's stdout, where a script reads
// events. The broker's own stdout never blocks it, even with a reader that stops reading.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::vector<std::string> EvilBroker(const std::string& mode) {
  return {"--renderers",
          "1",
          "--no-restart",
          "--renderer-path",
          BinPath("sbx-evil-renderer"),
          "--page",
          "evil://" + mode};
}

std::optional<json> WaitForLog(BrokerProcess& b, int id, const std::string& line,
                               std::chrono::milliseconds timeout = 10s) {
  return b.WaitFor(
      [&](const json& e) {
        return e.value("event", "") == "log" && e.value("id", 0) == id &&
               e.value("line", "") == line;
      },
      timeout);
}

std::optional<json> WaitForDropNote(BrokerProcess& b, int id, std::chrono::milliseconds timeout) {
  return b.WaitFor(
      [&](const json& e) {
        return e.value("event", "") == "log" && e.value("id", 0) == id &&
               e.value("dropped_lines", 0) + e.value("dropped_bytes", 0) > 0;
      },
      timeout);
}

::testing::AssertionResult Pings(BrokerProcess& b, int id) {
  json reply = b.Ctl("ping " + std::to_string(id));
  if (reply.contains("rtt_us")) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "ping " << id << ": " << reply.dump();
}

std::string ReadAvailable(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// The open file flags of the broker's fd `fd`, from /proc.
int FdFlags(pid_t pid, int fd) {
  auto info = ReadSmallFile("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  if (!info) return -1;
  auto at = info->find("flags:");
  if (at == std::string::npos) return -1;
  return static_cast<int>(std::stol(info->substr(at + 6), nullptr, 8));
}

TEST(RendererStdioTest, StdinIsEmptyAndStdoutAndStderrArriveAsLogEventsOfTheirRenderer) {
  // The broker's own stdin holds what a person typed; no renderer may read it.
  auto in = MakePipe(false);
  ASSERT_TRUE(in);
  const std::string typed = "my password\n";
  ASSERT_TRUE(
      WriteAll(in->write.get(), {reinterpret_cast<const uint8_t*>(typed.data()), typed.size()}));
  BrokerProcess b(EvilBroker("stdio"), {.stdin_fd = in->read.get()});
  in->read.reset();
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s)) << json(b.history()).dump();
  json good = b.Ctl("spawn evil://good");
  ASSERT_EQ(good.value("id", 0), 2) << good.dump();
  ASSERT_TRUE(b.WaitForEvent("ready", 2, 10s));

  EXPECT_TRUE(WaitForLog(b, 1, "stdin: eof")) << json(b.history()).dump();
  EXPECT_TRUE(WaitForLog(b, 1, "hello on stdout"));
  EXPECT_TRUE(WaitForLog(b, 1, "hello on stderr"));
  // A forged event is one more line of renderer 1's, a string inside its log event.
  EXPECT_TRUE(WaitForLog(
      b, 1, R"({"event":"exited","t_ms":1,"id":2,"status":"crashed","signal":"SIGSEGV"})"));
  EXPECT_TRUE(WaitForLog(b, 1, "\\x1b[2J\xef\xbf\xbd\xef\xbf\xbd not text"));
  int left = -1;
  ASSERT_EQ(::ioctl(in->write.get(), FIONREAD, &left), 0);
  EXPECT_EQ(left, static_cast<int>(typed.size())) << "a renderer read the broker's stdin";

  // Its last words, with no newline, come before its end.
  ASSERT_EQ(b.Ctl("close 1").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("closed", 1, 10s));
  bool last_words = false;
  for (const auto& e : b.history()) {
    if (e.value("line", "") == "no newline at exit") last_words = true;
    if (e.value("event", "") == "closed") {
      EXPECT_TRUE(last_words) << "the last partial line must come before closed";
    }
  }
  EXPECT_TRUE(last_words);
  for (const auto& e : b.history()) {
    if (e.value("id", 0) != 2) continue;
    std::string event = e.value("event", "");
    EXPECT_TRUE(event == "spawned" || event == "ready") << "forged: " << e.dump();
  }
}

// Every kind of launch sets the same stdio: unsandboxed, and through a wrapper.
class RendererStdioLaunchTest : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(RendererStdioLaunchTest, StdinIsEmptyAndStderrIsALogEvent) {
  auto in = MakePipe(false);
  ASSERT_TRUE(in);
  ASSERT_TRUE(WriteAll(in->write.get(), {reinterpret_cast<const uint8_t*>("keys\n"), 5}));
  auto args = EvilBroker("stdio");
  args.insert(args.end(), GetParam().begin(), GetParam().end());
  BrokerProcess b(args, {.stdin_fd = in->read.get()});
  in->read.reset();
  EXPECT_TRUE(WaitForLog(b, 1, "stdin: eof")) << json(b.history()).dump();
  EXPECT_TRUE(WaitForLog(b, 1, "hello on stderr"));
}

INSTANTIATE_TEST_SUITE_P(Launches, RendererStdioLaunchTest,
                         ::testing::Values(std::vector<std::string>{"--no-sandbox"},
                                           std::vector<std::string>{"--renderer-cmd-prefix",
                                                                    "env"}));

TEST(RendererStdioTest, AFloodIsCutAndCountedWhileTheBrokerServesTheOthers) {
  BrokerProcess b(EvilBroker("good"));
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s));
  ASSERT_EQ(b.Ctl("spawn evil://log-flood").value("id", 0), 2);
  auto cut = b.WaitFor(
      [](const json& e) { return e.value("id", 0) == 2 && e.value("truncated", false); }, 10s);
  ASSERT_TRUE(cut) << "the 1 MiB line";
  EXPECT_EQ(cut->value("line", "").size(), 1024u);
  // A few seconds of flood: a note a second, and the good renderer is served all along.
  uint64_t dropped = 0;
  for (int second = 0; second < 3; ++second) {
    auto note = WaitForDropNote(b, 2, 10s);
    ASSERT_TRUE(note) << "no drop note";
    dropped += note->value("dropped_lines", uint64_t{0});
    EXPECT_TRUE(Pings(b, 1));
    EXPECT_TRUE(Pings(b, 2)) << "the flooding renderer is served too: it broke no protocol";
  }
  EXPECT_GT(dropped, 0u);
  for (const auto& e : b.history()) {
    EXPECT_FALSE(e.value("id", 0) == 1 && e.value("event", "") == "unresponsive") << e.dump();
  }
}

TEST(RendererStdioTest, ARendererThatFillsItsNonBlockingStdoutBlocksNobody) {
  BrokerProcess b(EvilBroker("good"));
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s));
  ASSERT_EQ(b.Ctl("spawn evil://stdout-nonblock").value("id", 0), 2);
  ASSERT_TRUE(b.WaitForEvent("ready", 2, 10s));
  ASSERT_TRUE(WaitForDropNote(b, 2, 10s)) << "its pipe is full and read";
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Pings(b, 1));
  // The broker's stdout is a description of its own: the renderer's fcntl did not reach it.
  int flags = FdFlags(b.pid(), 1);
  ASSERT_GE(flags, 0);
  EXPECT_EQ(flags & O_NONBLOCK, 0);
  ASSERT_EQ(b.Ctl("close 2").value("ok", false), true);
  EXPECT_TRUE(b.WaitForEvent("closed", 2, 10s));
}

// `sbx-broker --json | reader` with a reader that stops reading: the broker drops events (and
// says so), and the control socket is answered all along.
TEST(RendererStdioTest, AJsonReaderThatStopsReadingDoesNotStopTheControlSocket) {
  auto err = MakePipe(false);
  ASSERT_TRUE(err);
  ASSERT_TRUE(SetNonBlocking(err->read.get(), true));
  auto args = EvilBroker("log-flood");
  args[1] = "3";  // three renderers' logs at their limit fill the pipe and the buffer in seconds
  BrokerProcess b(args, {.stderr_fd = err->write.get()});
  err->write.reset();
  // Read until all three run; from then on nothing reads the broker's stdout.
  for (int id : {1, 2, 3}) ASSERT_TRUE(b.WaitForEvent("ready", id, 10s)) << id;
  std::string said;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (said.find("not keeping up") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    // A ping a fifth of a second while waiting for the broker to say it drops events (each ping
    // makes the hostile renderer draw once more; many more would be a frame flood).
    ASSERT_TRUE(Pings(b, 1)) << said;
    (void)WaitReadable(err->read.get(), 200);
    said += ReadAvailable(err->read.get());
  }
  ASSERT_NE(said.find("not keeping up"), std::string::npos) << said;
  for (int id : {1, 2, 3}) EXPECT_TRUE(Pings(b, id));
  EXPECT_TRUE(b.Ctl("list").contains("renderers"));
  // The floods end; the reader reads again and the broker says what it dropped.
  for (int id : {1, 2, 3}) EXPECT_EQ(b.Ctl("close " + std::to_string(id)).value("ok", false), true);
  deadline = std::chrono::steady_clock::now() + 30s;
  while (said.find("caught up") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    (void)b.WaitFor([](const json&) { return false; }, 100ms);
    said += ReadAvailable(err->read.get());
  }
  EXPECT_NE(said.find("events were dropped meanwhile"), std::string::npos) << said;
}

}  // namespace
}  // namespace sbx::testing
