// broker/proc_stats: what the hang watchdog reads of a renderer's threads from outside
// (SchedSample), checked against real processes: one that spins, one that waits for a CPU another
// process holds, one that is stopped.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "broker/proc_stats.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using test::Child;
using test::DeadlineIn;
using test::ForkChild;
using test::kDeadlineMs;

constexpr uint64_t kMs = 1'000'000;

[[noreturn]] void Spin() {
  for (;;) {
    // Spins without a system call, as the hang drill does.
    asm volatile("" ::: "memory");
  }
}

// Samples `pid` until `done` holds for a sample, within the deadline; the last sample read.
std::optional<SchedSample> SampleUntil(pid_t pid,
                                       const std::function<bool(const SchedSample&)>& done) {
  int64_t deadline = DeadlineIn(kDeadlineMs);
  std::optional<SchedSample> last;
  while (MonotonicNs() < deadline) {
    auto s = ReadSchedSample(pid);
    if (!s) return std::nullopt;
    last = *s;
    if (done(*s)) return last;
    // The kernel tells no one when a thread has run or waited: look again after a yield.
    std::this_thread::yield();
  }
  return last;
}

TEST(SchedSampleTest, ParsesSchedstatAndTheStateLetter) {
  auto times = ParseSchedstat("123456 7890 12\n");
  ASSERT_TRUE(times);
  EXPECT_EQ(times->first, 123456u);
  EXPECT_EQ(times->second, 7890u);
  EXPECT_FALSE(ParseSchedstat("123456"));
  EXPECT_FALSE(ParseSchedstat("x 1 2"));
  EXPECT_EQ(ParseStatState("42 (a) b) T 1 42"), 'T');
  EXPECT_EQ(ParseStatState("42 (sbx-renderer) R 1"), 'R');
  EXPECT_FALSE(ParseStatState("42 (a"));
  EXPECT_FALSE(ParseStatState("42 (a) RS 1"));
}

TEST(SchedSampleTest, ListsEveryThread) {
  std::atomic<bool> stop{false};
  std::atomic<pid_t> tid{0};
  std::thread t([&] {
    tid = ::gettid();
    while (!stop) std::this_thread::yield();
  });
  while (tid == 0) std::this_thread::yield();
  auto tids = ThreadIds(::getpid());
  stop = true;
  t.join();
  ASSERT_TRUE(tids) << tids.error().ToString();
  EXPECT_NE(std::find(tids->begin(), tids->end(), ::gettid()), tids->end());
  EXPECT_NE(std::find(tids->begin(), tids->end(), tid.load()), tids->end());
  EXPECT_FALSE(ThreadIds(0));
}

TEST(SchedSampleTest, ASpinningProcessRuns) {
  Child c = ForkChild([] { Spin(); });
  ASSERT_GT(c.pid, 0);
  auto first = ReadSchedSample(c.pid);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_FALSE(first->stopped);
  EXPECT_TRUE(first->runnable);
  auto later =
      SampleUntil(c.pid, [&](const SchedSample& s) { return s.run_ns > first->run_ns + 50 * kMs; });
  ASSERT_TRUE(later);
  EXPECT_GT(later->run_ns, first->run_ns + 50 * kMs);
}

TEST(SchedSampleTest, AProcessKeptOffItsCpuWaitsRunnable) {
  // Both pinned to one CPU: the hog at the default nice, the victim at the lowest priority, so
  // the victim is runnable nearly all the time and scheduled little.
  cpu_set_t one;
  CPU_ZERO(&one);
  ASSERT_EQ(::sched_getaffinity(0, sizeof one, &one), 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &one)) ++cpu;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  auto pinned = [one](int nice) {
    if (::sched_setaffinity(0, sizeof one, &one) != 0) ::_exit(3);
    if (nice != 0 && ::setpriority(PRIO_PROCESS, 0, nice) != 0) ::_exit(4);
    Spin();
  };
  Child hog = ForkChild([&] { pinned(0); });
  Child victim = ForkChild([&] { pinned(19); });
  ASSERT_GT(hog.pid, 0);
  ASSERT_GT(victim.pid, 0);
  auto first = ReadSchedSample(victim.pid);
  ASSERT_TRUE(first) << first.error().ToString();
  auto later = SampleUntil(
      victim.pid, [&](const SchedSample& s) { return s.wait_ns > first->wait_ns + 200 * kMs; });
  ASSERT_TRUE(later);
  uint64_t waited = later->wait_ns - first->wait_ns;
  uint64_t ran = later->run_ns - first->run_ns;
  EXPECT_GT(waited, 200 * kMs);
  EXPECT_GT(waited, ran) << "ran " << ran / kMs << " ms, waited " << waited / kMs << " ms";
  EXPECT_TRUE(later->runnable);
}

TEST(SchedSampleTest, AStoppedProcessIsStopped) {
  Child c = ForkChild([] { Spin(); });
  ASSERT_GT(c.pid, 0);
  ASSERT_EQ(::kill(c.pid, SIGSTOP), 0);
  auto s = SampleUntil(c.pid, [](const SchedSample& s) { return s.stopped; });
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->stopped);
  EXPECT_FALSE(s->runnable);
  ASSERT_EQ(::kill(c.pid, SIGCONT), 0);
  auto resumed = SampleUntil(c.pid, [](const SchedSample& s) { return !s.stopped; });
  ASSERT_TRUE(resumed);
  EXPECT_FALSE(resumed->stopped);
}

TEST(SchedSampleTest, ASleepingProcessIsNotRunnable) {
  Child c = ForkChild([] {
    for (;;) ::pause();
  });
  ASSERT_GT(c.pid, 0);
  auto s = SampleUntil(c.pid, [](const SchedSample& s) { return !s.runnable; });
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->runnable);
  EXPECT_FALSE(s->stopped);
}

TEST(SchedSampleTest, NoProcessNoSample) {
  EXPECT_FALSE(ReadSchedSample(0));
  EXPECT_FALSE(ReadSchedSample(-1));
}

}  // namespace
}  // namespace sbx
