// A renderer's output as log events: lines split and capped, the rate limited, every drop
// counted, and nothing in a line can pose as an event or break a JSON reader or a terminal.
#include "broker/renderer_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/event_json.h"
#include "ipc/posix.h"

namespace sbx {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<std::string> Lines(const std::vector<LogRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.line);
  return out;
}

TEST(LineLimiterTest, SplitsLinesAcrossReadsAndDropsACarriageReturn) {
  LineLimiter limiter(0);
  std::vector<LogRecord> out;
  limiter.Feed(Bytes("hel"), 0, out);
  EXPECT_TRUE(out.empty());
  limiter.Feed(Bytes("lo\r\nwor"), 0, out);
  limiter.Feed(Bytes("ld\n\n"), 0, out);
  EXPECT_EQ(Lines(out), (std::vector<std::string>{"hello", "world", ""}));
  EXPECT_FALSE(limiter.has_drops());
}

TEST(LineLimiterTest, FinishFlushesTheLastLineWithoutANewline) {
  LineLimiter limiter(0);
  std::vector<LogRecord> out;
  limiter.Feed(Bytes("done\npartial"), 0, out);
  limiter.Finish(0, out);
  EXPECT_EQ(Lines(out), (std::vector<std::string>{"done", "partial"}));
}

TEST(LineLimiterTest, AnOverLongLineIsCutAndItsRestDroppedUpToItsNewline) {
  LineLimiter limiter(0);
  std::vector<LogRecord> out;
  std::string huge(1 << 20, 'x');
  // In pieces, as reads deliver it.
  for (size_t at = 0; at < huge.size(); at += 4096) {
    limiter.Feed(Bytes(std::string_view(huge).substr(at, 4096)), 0, out);
  }
  limiter.Feed(Bytes("\nnext\n"), 0, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].line, std::string(LineLimiter::kMaxLine, 'x'));
  EXPECT_TRUE(out[0].truncated);
  EXPECT_EQ(out[1].line, "next");
  EXPECT_FALSE(out[1].truncated);
  LogRecord note = limiter.TakeDrops();
  EXPECT_EQ(note.dropped_bytes, huge.size() - LineLimiter::kMaxLine);
  EXPECT_EQ(note.dropped_lines, 0u);
  EXPECT_FALSE(limiter.has_drops()) << "taken";
}

TEST(LineLimiterTest, BytesPastTheRateAreDroppedAndCountedThenTheBucketRefills) {
  LineLimiter limiter(0);
  std::vector<LogRecord> out;
  const std::string line(1023, 'y');  // 1 KiB with its newline
  for (int i = 0; i < 200; ++i) limiter.Feed(Bytes(line + "\n"), 0, out);
  EXPECT_EQ(out.size(), 64u) << "one second of burst: 64 KiB";
  LogRecord note = limiter.TakeDrops();
  EXPECT_EQ(note.dropped_lines, 136u);
  EXPECT_EQ(note.dropped_bytes, 136u * 1023);
  out.clear();
  limiter.Feed(Bytes(line + "\n"), kSecond / 2, out);
  EXPECT_EQ(out.size(), 1u) << "half a second refills half the bucket";
  EXPECT_EQ(limiter.total_dropped_lines(), 136u);
}

TEST(LineLimiterTest, ManyShortLinesAreLimitedByTheLineRate) {
  LineLimiter limiter(0);
  std::vector<LogRecord> out;
  std::string flood;
  for (int i = 0; i < 1000; ++i) flood += "a\n";
  limiter.Feed(Bytes(flood), 0, out);
  EXPECT_EQ(out.size(), static_cast<size_t>(LineLimiter::kLinesPerSecond));
  EXPECT_EQ(limiter.TakeDrops().dropped_lines, 1000u - out.size());
}

TEST(SanitizeLogLineTest, ControlCharactersAndBrokenUtf8BecomeVisibleAndValid) {
  EXPECT_EQ(SanitizeLogLine("plain text\twith a tab"), "plain text\twith a tab");
  EXPECT_EQ(SanitizeLogLine("\x1b[2J\x07\x7f"), "\\x1b[2J\\x07\\x7f");
  EXPECT_EQ(SanitizeLogLine("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate.
  EXPECT_EQ(SanitizeLogLine("a\x80z"), "a\xef\xbf\xbdz");
  EXPECT_EQ(SanitizeLogLine("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(SanitizeLogLine("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(SanitizeLogLine("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  // C1 CSI, a right-to-left override, a line separator.
  EXPECT_EQ(SanitizeLogLine("\xc2\x9b"
                            "2J"),
            "\\u009b2J");
  EXPECT_EQ(SanitizeLogLine("x\xe2\x80\xaey"), "x\\u202ey");
  EXPECT_EQ(SanitizeLogLine("x\xe2\x80\xa8y"), "x\\u2028y");
}

TEST(SanitizeLogLineTest, AnyBytesDumpAsStrictJson) {
  std::string every;
  for (int b = 0; b < 256; ++b) every += static_cast<char>(b);
  BrokerEvent e = ToLogEvent({SanitizeLogLine(every), false});
  // The strict handler throws on invalid UTF-8: the line needs no replacing.
  EXPECT_NO_THROW((void)EventToJson(e).dump());
}

TEST(LogEventTest, ForgedJsonStaysInsideTheLineField) {
  BrokerEvent e = ToLogEvent({SanitizeLogLine(R"({"event":"exited","id":2,"status":"crashed"})")});
  e.id = 1;
  std::string dumped = DumpJson(EventToJson(e));
  EXPECT_EQ(dumped.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(dumped);
  EXPECT_EQ(j["event"], "log");
  EXPECT_EQ(j["id"], 1);
  EXPECT_EQ(j["line"], R"({"event":"exited","id":2,"status":"crashed"})");
  EXPECT_FALSE(j.contains("status"));
}

TEST(LogEventTest, ANoteCarriesItsCountsAndNoLine) {
  LogRecord note;
  note.dropped_lines = 3;
  note.dropped_bytes = 5000;
  auto j = EventToJson(ToLogEvent(note));
  EXPECT_EQ(j["dropped_lines"], 3);
  EXPECT_EQ(j["dropped_bytes"], 5000);
  EXPECT_FALSE(j.contains("line"));
  EXPECT_NE(j.value("detail", "").find("1024 bytes a line"), std::string::npos) << j.dump();
}

// The real thing: a pipe, the event loop, EOF.
struct LogOverPipe {
  LogOverPipe() {
    if (auto l = EventLoop::Create()) loop.emplace(std::move(*l));
    if (!loop) return;
    auto p = RendererLog::Create(*loop, [this](BrokerEvent e) { events.push_back(std::move(e)); });
    if (!p) return;
    log = std::move(p->log);
    writer = std::move(p->child_end);
  }
  void Write(std::string_view s) { ASSERT_TRUE(WriteAll(writer.get(), Bytes(s))); }
  bool DispatchUntil(size_t n) {
    int64_t deadline = MonotonicNs() + 10 * kSecond;
    while (events.size() < n && MonotonicNs() < deadline) {
      if (!loop->Dispatch(100)) return false;
    }
    return events.size() >= n;
  }
  std::optional<EventLoop> loop;
  std::unique_ptr<RendererLog> log;
  UniqueFd writer;
  std::vector<BrokerEvent> events;
};

TEST(RendererLogTest, LinesArriveAsLogEventsAndEofFlushesTheLastOne) {
  LogOverPipe t;
  ASSERT_TRUE(t.log);
  t.Write("first\nsecond\nno newline");
  ASSERT_TRUE(t.DispatchUntil(2));
  t.writer.reset();  // every writer gone
  ASSERT_TRUE(t.DispatchUntil(3));
  EXPECT_EQ(t.events[0].type, EventType::kLog);
  EXPECT_EQ(t.events[0].line, "first");
  EXPECT_EQ(t.events[1].line, "second");
  EXPECT_EQ(t.events[2].line, "no newline");
  // At EOF the watch is gone: the loop has nothing left to wake for.
  ASSERT_TRUE(t.loop->Dispatch(0));
  EXPECT_EQ(t.events.size(), 3u);
}

TEST(RendererLogTest, OneWakeupReadsAtMostItsBudget) {
  LogOverPipe t;
  ASSERT_TRUE(t.log);
  ASSERT_GE(::fcntl(t.writer.get(), F_SETPIPE_SZ, 1 << 20), 1 << 20);
  const std::string chunk(4096, 'z');
  for (size_t i = 0; i < (512u << 10) / chunk.size(); ++i) t.Write(chunk);
  ASSERT_TRUE(t.loop->Dispatch(1000));
  int left = 0;
  ASSERT_EQ(::ioctl(t.writer.get(), FIONREAD, &left), 0);
  EXPECT_EQ(static_cast<size_t>(left), (512u << 10) - RendererLog::kReadBudget);
}

TEST(RendererLogTest, AWakeupThatDroppedForRatePausesTheReading) {
  LogOverPipe t;
  ASSERT_TRUE(t.log);
  std::string flood;
  for (int i = 0; i < 600; ++i) flood += "line " + std::to_string(i) + "\n";
  t.Write(flood);
  ASSERT_TRUE(t.DispatchUntil(1));
  const int64_t read_at = MonotonicNs();
  ASSERT_TRUE(t.log->limiter().total_dropped_lines() > 0) << "the flood was dropped in part";
  t.Write("after the flood\n");
  ASSERT_TRUE(t.loop->Dispatch(0));
  int left = 0;
  ASSERT_EQ(::ioctl(t.writer.get(), FIONREAD, &left), 0);
  // Only meaningful while the pause lasts; a test thread descheduled for longer proves nothing.
  if (MonotonicNs() - read_at < RendererLog::kPauseNs) {
    EXPECT_EQ(left, 16) << "read again at once: no pause";
  }
  // And the reading resumes by itself.
  int64_t deadline = MonotonicNs() + 10 * kSecond;
  while (left > 0 && MonotonicNs() < deadline) {
    ASSERT_TRUE(t.loop->Dispatch(100));
    ASSERT_EQ(::ioctl(t.writer.get(), FIONREAD, &left), 0);
  }
  EXPECT_EQ(left, 0);
}

TEST(RendererLogTest, FinishReadsWhatIsLeftThenTellsTheDrops) {
  LogOverPipe t;
  ASSERT_TRUE(t.log);
  std::string flood;
  for (int i = 0; i < 600; ++i) flood += "line " + std::to_string(i) + "\n";
  t.Write(flood);
  t.log->Finish();  // the renderer is gone: no loop turn needed
  ASSERT_FALSE(t.events.empty());
  const BrokerEvent& note = t.events.back();
  EXPECT_EQ(note.dropped_lines, 600u - static_cast<size_t>(LineLimiter::kLinesPerSecond));
  EXPECT_EQ(t.events.size(), static_cast<size_t>(LineLimiter::kLinesPerSecond) + 1);
  EXPECT_EQ(t.events.front().line, "line 0");
}

}  // namespace
}  // namespace sbx
