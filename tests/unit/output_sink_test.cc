// The broker's stdout: a reader that stops reading costs dropped (and counted) events, never a
// blocked event loop, and never a change to the file description the broker inherited.
#include "broker/output_sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>

#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using namespace std::chrono_literals;

constexpr size_t kCapacity = 64 * 1024;

std::string ReadAvailable(int fd) {
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Writes numbered lines until the sink refuses one, on a thread of its own: if the sink ever
// blocked, the test sees the deadline pass instead of hanging (and then unblocks it by reading).
struct Filler {
  int written = 0;
  int refused = 0;
  bool Run(OutputSink& sink, int unblock_fd) {
    auto done = std::async(std::launch::async, [&] {
      for (int i = 0; refused < 100; ++i) {
        if (sink.WriteLine("line " + std::to_string(i) + " " + std::string(100, '.'))) {
          ++written;
        } else {
          ++refused;
        }
      }
    });
    if (done.wait_for(10s) == std::future_status::ready) return true;
    while (done.wait_for(10ms) != std::future_status::ready) (void)ReadAvailable(unblock_fd);
    return false;
  }
};

struct SinkOverPipe {
  SinkOverPipe() {
    // Both ends blocking, as a shell hands them over.
    if (auto p = MakePipe(false)) out = std::move(*p);
    if (auto p = MakePipe(true)) report = std::move(*p);
    if (auto l = EventLoop::Create()) loop.emplace(std::move(*l));
    if (!loop || !out.write || !report.write) return;
    if (auto s =
            OutputSink::Create(*loop, out.write.get(), "sbx-test", report.write.get(), kCapacity)) {
      sink = std::move(*s);
    }
  }
  PipePair out;
  PipePair report;
  std::optional<EventLoop> loop;
  std::unique_ptr<OutputSink> sink;
};

TEST(OutputSinkTest, AReaderThatDoesNotReadCostsDroppedLinesNeverABlock) {
  SinkOverPipe t;
  ASSERT_TRUE(t.sink);
  EXPECT_EQ(t.sink->mode(), OutputSink::Mode::kNonBlocking);
  Filler f;
  ASSERT_TRUE(f.Run(*t.sink, t.out.read.get())) << "the sink blocked on a full pipe";
  EXPECT_GT(f.written, 0);
  EXPECT_EQ(t.sink->dropped(), 100u);
  EXPECT_LE(t.sink->queued(), kCapacity);
  // The description the sink was given stays blocking: it is shared with whoever else holds it.
  EXPECT_EQ(::fcntl(t.out.write.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(ReadAvailable(t.report.read.get()).find("not keeping up"), std::string::npos);
}

TEST(OutputSinkTest, OnceTheReaderReadsEveryKeptLineArrivesWholeAndInOrder) {
  SinkOverPipe t;
  ASSERT_TRUE(t.sink);
  Filler f;
  ASSERT_TRUE(f.Run(*t.sink, t.out.read.get()));
  ASSERT_TRUE(SetNonBlocking(t.out.read.get(), true));
  std::string got;
  int64_t deadline = MonotonicNs() + 10'000'000'000;
  while (t.sink->queued() > 0 && MonotonicNs() < deadline) {
    got += ReadAvailable(t.out.read.get());
    ASSERT_TRUE(t.loop->Dispatch(100));
  }
  got += ReadAvailable(t.out.read.get());
  ASSERT_EQ(t.sink->queued(), 0u);
  // Whole lines only, numbered 0.. without a gap: a line is dropped whole, and only lines that
  // came after the buffer filled are.
  int expect = 0;
  for (size_t at = 0; at < got.size();) {
    size_t nl = got.find('\n', at);
    ASSERT_NE(nl, std::string::npos) << "a partial line at the end";
    EXPECT_EQ(got.substr(at, nl - at),
              "line " + std::to_string(expect) + " " + std::string(100, '.'));
    ++expect;
    at = nl + 1;
  }
  EXPECT_EQ(expect, f.written);
  std::string report = ReadAvailable(t.report.read.get());
  EXPECT_NE(report.find("caught up; 100 events were dropped"), std::string::npos) << report;
}

TEST(OutputSinkTest, ASocketIsWrittenWithoutBlockingToo) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd ours(sv[0]), reader(sv[1]);
  auto report = MakePipe(true);
  ASSERT_TRUE(report);
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop);
  auto sink = OutputSink::Create(*loop, ours.get(), "sbx-test", report->write.get(), kCapacity);
  ASSERT_TRUE(sink);
  EXPECT_EQ((*sink)->mode(), OutputSink::Mode::kSocket);
  Filler f;
  ASSERT_TRUE(f.Run(**sink, reader.get())) << "the sink blocked on a full socket";
  EXPECT_EQ((*sink)->dropped(), 100u);
  EXPECT_EQ(::fcntl(ours.get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(OutputSinkTest, ARegularFileIsWrittenDirectly) {
  test::ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.path() + "/out";
  UniqueFd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(file);
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop);
  auto sink = OutputSink::Create(*loop, file.get(), "sbx-test");
  ASSERT_TRUE(sink);
  EXPECT_EQ((*sink)->mode(), OutputSink::Mode::kDirect);
  EXPECT_TRUE((*sink)->WriteLine("one"));
  EXPECT_TRUE((*sink)->WriteLine("two"));
  EXPECT_EQ(ReadSmallFile(path).value_or(""), "one\ntwo\n");
}

TEST(OutputSinkTest, AReaderThatLeftStopsThePrintingNotTheBroker) {
  // As the broker does (Broker::Create): a write to a pipe nobody reads is an error, not death.
  ASSERT_TRUE(IgnoreSignal(SIGPIPE));
  SinkOverPipe t;
  ASSERT_TRUE(t.sink);
  t.out.read.reset();
  EXPECT_FALSE(t.sink->WriteLine("nobody reads this"));
  EXPECT_FALSE(t.sink->WriteLine("nor this"));
  EXPECT_EQ(t.sink->dropped(), 2u);
  EXPECT_NE(ReadAvailable(t.report.read.get()).find("cannot write"), std::string::npos);
}

}  // namespace
}  // namespace sbx
