// The broker's worker thread: work runs off the loop's thread while the loop goes on, and each
// completion comes back on the loop's thread, in order. A worker destroyed with work in flight
// waits for it, and no completion runs after it is gone.
#include "broker/worker.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <future>
#include <vector>

#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

template <typename Pred>
bool DispatchUntil(EventLoop& loop, Pred done) {
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (!done() && MonotonicNs() < deadline) {
    if (!loop.Dispatch(test::RemainingMs(deadline))) return false;
  }
  return done();
}

TEST(WorkerTest, WorkRunsOffTheLoopWhichGoesOnAndCompletionsComeBackOnIt) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop);
  auto worker = Worker::Start(*loop);
  ASSERT_TRUE(worker) << worker.error().ToString();
  const pthread_t loop_thread = ::pthread_self();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> work_on_loop_thread{false};
  std::vector<int> done_order;
  bool done_off_loop_thread = false;
  for (int i = 0; i < 3; ++i) {
    (*worker)->Post(
        [&, i, released] {
          if (::pthread_equal(::pthread_self(), loop_thread)) work_on_loop_thread = true;
          if (i == 0) released.wait();  // held until the loop has shown it runs meanwhile
        },
        [&, i] {
          if (!::pthread_equal(::pthread_self(), loop_thread)) done_off_loop_thread = true;
          done_order.push_back(i);
        });
  }
  // With the first piece of work held, the loop still runs its timers.
  bool fired = false;
  loop->AddTimer(0, [&] { fired = true; });
  ASSERT_TRUE(DispatchUntil(*loop, [&] { return fired; }));
  EXPECT_TRUE(done_order.empty());
  release.set_value();
  ASSERT_TRUE(DispatchUntil(*loop, [&] { return done_order.size() == 3; }));
  EXPECT_EQ(done_order, (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(work_on_loop_thread);
  EXPECT_FALSE(done_off_loop_thread);
}

TEST(WorkerTest, AWorkerDestroyedWithWorkInFlightWaitsForItAndRunsNoCompletion) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop);
  auto worker = Worker::Start(*loop);
  ASSERT_TRUE(worker);
  std::promise<void> started;
  std::atomic<bool> finished{false};
  bool completed = false;
  (*worker)->Post(
      [&] {
        started.set_value();
        // Long enough that the destructor below begins while this runs.
        const int64_t until = MonotonicNs() + 50'000'000;
        while (MonotonicNs() < until) {
        }
        finished = true;
      },
      [&] { completed = true; });
  (*worker)->Post([] {}, [&] { completed = true; });
  started.get_future().wait();
  worker->reset();
  EXPECT_TRUE(finished) << "the destructor returned before the work in progress ended";
  // The completions went with the worker: the loop has nothing of them to run.
  ASSERT_TRUE(loop->Dispatch(0));
  EXPECT_FALSE(completed);
}

}  // namespace
}  // namespace sbx
