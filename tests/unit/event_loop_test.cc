// The broker's one epoll loop: fd watches, timers in deadline order, cancellation, and handlers
// that change the watch set while a batch is being dispatched.
#include "broker/event_loop.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

constexpr int64_t kMs = 1'000'000;

EventLoop MakeLoop() {
  auto loop = EventLoop::Create();
  EXPECT_TRUE(loop.has_value()) << loop.error().ToString();
  return std::move(*loop);
}

void WriteByte(int fd) {
  const uint8_t b = 1;
  ASSERT_EQ(::write(fd, &b, 1), 1);
}

// Dispatches until done() holds or the deadline passes; returns done().
template <typename Pred>
bool DispatchUntil(EventLoop& loop, Pred done) {
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (!done() && MonotonicNs() < deadline) {
    auto r = loop.Dispatch(test::RemainingMs(deadline));
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    if (!r) return false;
  }
  return done();
}

TEST(EventLoopTest, AWatchedFdFiresWhenItBecomesReadable) {
  EventLoop loop = MakeLoop();
  auto pipe = MakePipe(true);
  ASSERT_TRUE(pipe.has_value());
  uint32_t seen = 0;
  int calls = 0;
  auto token = loop.Watch(pipe->read.get(), EPOLLIN, [&](uint32_t events) {
    seen = events;
    ++calls;
    uint8_t b;
    (void)::read(pipe->read.get(), &b, 1);  // level-triggered: drain it
  });
  ASSERT_TRUE(token.has_value()) << token.error().ToString();

  ASSERT_TRUE(loop.Dispatch(0).has_value());
  EXPECT_EQ(calls, 0) << "fired with nothing to read";

  WriteByte(pipe->write.get());
  ASSERT_TRUE(DispatchUntil(loop, [&] { return calls > 0; }));
  EXPECT_TRUE(seen & EPOLLIN);
  EXPECT_EQ(calls, 1);
}

TEST(EventLoopTest, WatchingAnInvalidFdIsAnError) {
  EventLoop loop = MakeLoop();
  auto token = loop.Watch(-1, EPOLLIN, [](uint32_t) {});
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().sys_errno, EBADF);
}

TEST(EventLoopTest, ModifyChangesTheEventsOfAWatch) {
  EventLoop loop = MakeLoop();
  auto pipe = MakePipe(true);
  ASSERT_TRUE(pipe.has_value());
  int calls = 0;
  // A pipe's write end with room is always writable, but nobody asked for EPOLLOUT yet.
  auto token = loop.Watch(pipe->write.get(), 0, [&](uint32_t) { ++calls; });
  ASSERT_TRUE(token.has_value());
  ASSERT_TRUE(loop.Dispatch(0).has_value());
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(loop.Modify(*token, EPOLLOUT).has_value());
  ASSERT_TRUE(DispatchUntil(loop, [&] { return calls > 0; }));

  auto missing = loop.Modify(*token + 1000, EPOLLIN);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

TEST(EventLoopTest, AnUnwatchedFdNoLongerFires) {
  EventLoop loop = MakeLoop();
  auto pipe = MakePipe(true);
  ASSERT_TRUE(pipe.has_value());
  int calls = 0;
  auto token = loop.Watch(pipe->read.get(), EPOLLIN, [&](uint32_t) { ++calls; });
  ASSERT_TRUE(token.has_value());
  loop.Unwatch(*token);
  loop.Unwatch(*token);  // twice is harmless
  WriteByte(pipe->write.get());
  ASSERT_TRUE(loop.Dispatch(0).has_value());
  EXPECT_EQ(calls, 0);
}

TEST(EventLoopTest, AHandlerThatUnwatchesAnotherTokenInTheSameBatchStopsItsHandler) {
  EventLoop loop = MakeLoop();
  auto a = MakePipe(true);
  auto b = MakePipe(true);
  ASSERT_TRUE(a.has_value() && b.has_value());
  // Both are readable before the one Dispatch below, so epoll reports them in one batch; each
  // handler unwatches the other, so whichever runs first must be the only one that runs.
  WriteByte(a->write.get());
  WriteByte(b->write.get());
  std::vector<std::string> ran;
  EventLoop::Token ta = 0, tb = 0;
  auto wa = loop.Watch(a->read.get(), EPOLLIN, [&](uint32_t) {
    ran.push_back("a");
    loop.Unwatch(tb);
  });
  auto wb = loop.Watch(b->read.get(), EPOLLIN, [&](uint32_t) {
    ran.push_back("b");
    loop.Unwatch(ta);
  });
  ASSERT_TRUE(wa.has_value() && wb.has_value());
  ta = *wa;
  tb = *wb;

  ASSERT_TRUE(loop.Dispatch(test::kDeadlineMs).has_value());
  EXPECT_EQ(ran.size(), 1u);
}

TEST(EventLoopTest, AHandlerMayUnwatchItselfWhileRunning) {
  EventLoop loop = MakeLoop();
  auto pipe = MakePipe(true);
  ASSERT_TRUE(pipe.has_value());
  WriteByte(pipe->write.get());
  EventLoop::Token self = 0;
  std::string note = "still alive";
  std::string seen;
  auto token = loop.Watch(pipe->read.get(), EPOLLIN, [&, note](uint32_t) {
    loop.Unwatch(self);
    seen = note;  // the handler's own captures must outlive its Unwatch
  });
  ASSERT_TRUE(token.has_value());
  self = *token;
  ASSERT_TRUE(DispatchUntil(loop, [&] { return !seen.empty(); }));
  EXPECT_EQ(seen, note);
  ASSERT_TRUE(loop.Dispatch(0).has_value());  // no second call into a dead handler
}

TEST(EventLoopTest, DueTimersFireInDeadlineOrder) {
  EventLoop loop = MakeLoop();
  const int64_t now = MonotonicNs();
  std::vector<int> order;
  loop.AddTimer(now - 1 * kMs, [&] { order.push_back(3); });
  loop.AddTimer(now - 3 * kMs, [&] { order.push_back(1); });
  loop.AddTimer(0, [&] { order.push_back(0); });
  loop.AddTimer(now - 2 * kMs, [&] { order.push_back(2); });
  ASSERT_TRUE(DispatchUntil(loop, [&] { return order.size() == 4; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(EventLoopTest, FutureTimersFireInDeadlineOrderNotInsertionOrder) {
  EventLoop loop = MakeLoop();
  const int64_t now = MonotonicNs();
  std::vector<int> order;
  loop.AddTimer(now + 30 * kMs, [&] { order.push_back(30); });
  loop.AddTimer(now + 10 * kMs, [&] { order.push_back(10); });
  loop.AddTimer(now + 20 * kMs, [&] { order.push_back(20); });
  ASSERT_TRUE(DispatchUntil(loop, [&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
}

TEST(EventLoopTest, ATimerMakesTheEpollFdReadableWhenItIsDue) {
  // A Qt front watches loop.fd() and calls Dispatch(0) when it is readable: the timerfd must be
  // armed for that to work, not merely checked after some other wakeup.
  EventLoop loop = MakeLoop();
  bool fired = false;
  loop.AddTimer(MonotonicNs() + 20 * kMs, [&] { fired = true; });
  pollfd p{loop.fd(), POLLIN, 0};
  ASSERT_EQ(HandleEintr([&] { return ::poll(&p, 1, test::kDeadlineMs); }), 1)
      << "the epoll fd never became readable";
  ASSERT_TRUE(DispatchUntil(loop, [&] { return fired; }));
}

TEST(EventLoopTest, ACancelledTimerNeverFires) {
  EventLoop loop = MakeLoop();
  const int64_t now = MonotonicNs();
  std::vector<int> fired;
  auto cancelled = loop.AddTimer(now - 2 * kMs, [&] { fired.push_back(1); });
  loop.AddTimer(now - 1 * kMs, [&] { fired.push_back(2); });
  loop.CancelTimer(cancelled);
  loop.CancelTimer(cancelled);  // twice is harmless
  loop.CancelTimer(123456);     // so is a token that never existed
  ASSERT_TRUE(DispatchUntil(loop, [&] { return !fired.empty(); }));
  ASSERT_TRUE(loop.Dispatch(0).has_value());
  EXPECT_EQ(fired, (std::vector<int>{2}));
}

TEST(EventLoopTest, ATimerCancelledByAnEarlierTimerInTheSameRunNeverFires) {
  EventLoop loop = MakeLoop();
  const int64_t now = MonotonicNs();
  std::vector<int> fired;
  EventLoop::Token second = 0;
  loop.AddTimer(now - 2 * kMs, [&] {
    fired.push_back(1);
    loop.CancelTimer(second);
  });
  second = loop.AddTimer(now - 1 * kMs, [&] { fired.push_back(2); });
  loop.AddTimer(now - 1 * kMs + 1, [&] { fired.push_back(3); });
  ASSERT_TRUE(DispatchUntil(loop, [&] { return fired.size() >= 2; }));
  ASSERT_TRUE(loop.Dispatch(0).has_value());
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
}

TEST(EventLoopTest, CancellingTheEarliestTimerStillFiresTheLaterOne) {
  EventLoop loop = MakeLoop();
  const int64_t now = MonotonicNs();
  bool late = false;
  auto early = loop.AddTimer(now + 5 * kMs, [] {});
  loop.AddTimer(now + 25 * kMs, [&] { late = true; });
  loop.CancelTimer(early);
  EXPECT_TRUE(DispatchUntil(loop, [&] { return late; }));
}

TEST(EventLoopTest, ATimerAddedByATimerHandlerFires) {
  EventLoop loop = MakeLoop();
  int stage = 0;
  loop.AddTimer(0, [&] {
    stage = 1;
    loop.AddTimer(MonotonicNs() + 5 * kMs, [&] { stage = 2; });
  });
  EXPECT_TRUE(DispatchUntil(loop, [&] { return stage == 2; }));
}

TEST(EventLoopTest, NextTimerInReportsTheEarliestDeadline) {
  EventLoop loop = MakeLoop();
  EXPECT_EQ(loop.NextTimerIn(), -1);
  auto far = loop.AddTimer(MonotonicNs() + 60'000 * kMs, [] {});
  int64_t in = loop.NextTimerIn();
  EXPECT_GT(in, 0);
  EXPECT_LE(in, 60'000 * kMs);
  loop.AddTimer(0, [] {});
  EXPECT_EQ(loop.NextTimerIn(), 0);
  ASSERT_TRUE(loop.Dispatch(0).has_value());
  EXPECT_GT(loop.NextTimerIn(), 0);
  loop.CancelTimer(far);
  EXPECT_EQ(loop.NextTimerIn(), -1);
}

}  // namespace
}  // namespace sbx
