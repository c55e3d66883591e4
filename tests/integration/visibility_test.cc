// Visibility and the watchdog, end to end against a real sbx-broker: a hidden renderer draws no
// frames and is never called unresponsive at its slow heartbeat rate, visible again it draws at
// once, and under CPU load a starved renderer is told from a hung one.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "broker/proc_stats.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kEventTimeout = 10s;
// Shorter than the hidden heartbeat interval (1 s): a watchdog that judged a hidden renderer by
// the visible rate would call it unresponsive between two of its beats.
constexpr int kHangTimeoutMs = 400;

// The frame count a heartbeat trace line carries ("1200 frames, 30 fps, render 310 us").
uint64_t FramesOf(const json& line) { return std::stoull(line.value("summary", std::string("0"))); }

json Row(BrokerProcess& b, int id) {
  json list = b.Ctl("list");
  for (const auto& r : list["renderers"]) {
    if (r.value("id", 0) == id) return r;
  }
  return json::object();
}

// The unresponsive events of renderer `id` up to now. The broker's events are read as a test
// waits for them, so first it makes one more happen and waits for that: a change of the
// renderer's visibility, back and forth, which also ends where it started.
std::vector<json> UnresponsiveEvents(BrokerProcess& b, int id) {
  std::string now = Row(b, id).value("visibility", "visible");
  for (std::string v : {std::string(now == "visible" ? "hidden" : "visible"), now}) {
    std::string line = "visibility " + std::to_string(id) + " " + v;
    if (b.Ctl(line).value("ok", false)) (void)b.WaitForEvent("visibility", id, kEventTimeout);
  }
  std::vector<json> out;
  for (const auto& e : b.history()) {
    if (e.value("event", "") == "unresponsive" && e.value("id", 0) == id) out.push_back(e);
  }
  return out;
}

// Trace lines of one mechanism of one renderer, read as they come, with a deadline each.
class Trace {
 public:
  Trace(const BrokerProcess& b, int id, const std::string& mechanism) : c_(b.control_path()) {
    std::string line = "trace " + std::to_string(id) + (mechanism.empty() ? "" : " " + mechanism);
    ok_ = c_.connected() && c_.SendRaw(line + "\n");
    auto reply = ok_ ? c_.ReadReply(kEventTimeout) : std::nullopt;
    ok_ = reply && reply->value("ok", false);
  }
  bool ok() const { return ok_; }
  std::optional<json> Next(std::chrono::milliseconds timeout = kEventTimeout) {
    for (;;) {
      auto line = c_.ReadReply(timeout);
      if (!line || !line->contains("dropped")) return line;
    }
  }

 private:
  ControlConnection c_;
  bool ok_ = false;
};

TEST(VisibilityTest, AHiddenRendererDrawsNoFramesAndIsNeverUnresponsive) {
  BrokerProcess b({"--renderers", "1", "--hang-timeout", std::to_string(kHangTimeoutMs)});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout)) << json(b.history()).dump();
  EXPECT_EQ(Row(b, 1).value("visibility", ""), "visible");
  Trace beats(b, 1, "mq");
  ASSERT_TRUE(beats.ok());
  ASSERT_EQ(b.Ctl("visibility 1 hidden").value("ok", false), true);
  auto event = b.WaitForEvent("visibility", 1, kEventTimeout);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->value("visibility", ""), "hidden");
  EXPECT_EQ(Row(b, 1).value("visibility", ""), "hidden");
  // Skip what was in flight when it was told; then three slow heartbeats, each beyond the
  // hang timeout after the one before, carry one frame count.
  std::optional<json> beat;
  for (int i = 0; i < 3; ++i) beat = beats.Next();
  ASSERT_TRUE(beat);
  uint64_t frames = FramesOf(*beat);
  uint64_t listed = Row(b, 1).value("frames", uint64_t{0});
  for (int i = 0; i < 3; ++i) {
    beat = beats.Next();
    ASSERT_TRUE(beat);
    EXPECT_EQ(FramesOf(*beat), frames) << beat->dump();
  }
  EXPECT_EQ(Row(b, 1).value("frames", uint64_t{0}), listed);
  EXPECT_EQ(Row(b, 1).value("state", ""), "running");
  EXPECT_TRUE(UnresponsiveEvents(b, 1).empty()) << json(b.history()).dump();
}

TEST(VisibilityTest, VisibleAgainItDrawsAtOnce) {
  BrokerProcess b(
      {"--renderers", "1", "--hidden", "--hang-timeout", std::to_string(kHangTimeoutMs)});
  // Started hidden, it draws its first frame only: ready, then still.
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout)) << json(b.history()).dump();
  EXPECT_EQ(Row(b, 1).value("visibility", ""), "hidden");
  Trace all(b, 1, "");
  ASSERT_TRUE(all.ok());
  // Just after one of its slow heartbeats, so the next is a whole hidden interval away.
  std::optional<json> beat;
  do {
    beat = all.Next();
    ASSERT_TRUE(beat);
  } while (beat->value("mechanism", "") != "mq");
  ASSERT_EQ(b.Ctl("visibility 1 visible").value("ok", false), true);
  std::optional<json> frame;
  do {
    frame = all.Next();
    ASSERT_TRUE(frame) << "no frame after it was made visible";
  } while (frame->value("mechanism", "") != "shm");
  // Both times are the broker's: the frame came before the slow timer's next tick, so the
  // change woke the renderer rather than waiting for that tick.
  EXPECT_LT(frame->value("t_ms", 0.0) - beat->value("t_ms", 0.0),
            protocol::kHiddenHeartbeatIntervalMs)
      << beat->dump() << " " << frame->dump();
  ASSERT_TRUE(b.WaitForEvent("visibility", 1, kEventTimeout));
  EXPECT_EQ(Row(b, 1).value("visibility", ""), "visible");
  EXPECT_TRUE(UnresponsiveEvents(b, 1).empty()) << json(b.history()).dump();
}

TEST(VisibilityTest, AHiddenRendererThatHangsIsStillCaught) {
  BrokerProcess b(
      {"--renderers", "1", "--hidden", "--hang-timeout", std::to_string(kHangTimeoutMs)});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  ASSERT_EQ(b.Ctl("hang 1").value("ok", false), true);
  auto e = b.WaitForEvent("unresponsive", 1, 20s);
  ASSERT_TRUE(e) << json(b.history()).dump();
}

TEST(VisibilityTest, BadVisibilityCommandsGetErrors) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("spawned", 1, kEventTimeout));
  for (const char* line : {"visibility", "visibility 1", "visibility x hidden",
                           "visibility 1 occluded", "visibility 1 hidden now"}) {
    json reply = b.Ctl(line);
    EXPECT_TRUE(reply.contains("error")) << line << ": " << reply.dump();
  }
  EXPECT_TRUE(b.Ctl("visibility 99 hidden").contains("error"));
  EXPECT_EQ(b.Ctl("visibility 1 visible").value("ok", false), true);  // no change, no event
  EXPECT_FALSE(b.WaitForEvent("visibility", 1, 200ms));
}

// ---------------------------------------------------------------------------------------------
// Starved, not hung.

// Every thread of pid on `cpu` alone.
bool PinThreads(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  auto tids = ThreadIds(pid);
  if (!tids) return false;
  for (pid_t tid : *tids) {
    if (::sched_setaffinity(tid, sizeof set, &set) != 0) return false;
  }
  return true;
}

// A process that spins on `cpu` in the real-time class until it is killed (the destructor). It
// takes that CPU from every ordinary process, whatever their cgroups and nice values, for all but
// the share the kernel keeps back for them (sched_rt_runtime_us: 5% by default), so a renderer
// pinned there is runnable and waiting most of the time.
class Hog {
 public:
  explicit Hog(int cpu) {
    pid_ = ::fork();
    if (pid_ != 0) return;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) ::_exit(3);
    sched_param fifo{1};
    if (::sched_setscheduler(0, SCHED_FIFO, &fifo) != 0) ::_exit(4);
    for (;;) asm volatile("" ::: "memory");
  }
  ~Hog() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

TEST(VisibilityTest, UnderLoadAStarvedRendererIsNotUnresponsiveButAHungOneIs) {
  if (::geteuid() != 0) GTEST_SKIP() << "a hog that starves a renderer needs SCHED_FIFO";
  auto rt_runtime = ReadSmallFile("/proc/sys/kernel/sched_rt_runtime_us");
  if (!rt_runtime || rt_runtime->starts_with("-1")) {
    GTEST_SKIP() << "real-time throttling is off: a real-time hog would never let go of its CPU";
  }
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs a CPU for the hung renderer";
  BrokerProcess b({"--renderers", "2", "--hang-timeout", std::to_string(kHangTimeoutMs)});
  auto ready1 = b.WaitForEvent("ready", 1, kEventTimeout);
  auto ready2 = b.WaitForEvent("ready", 2, kEventTimeout);
  ASSERT_TRUE(ready1 && ready2) << json(b.history()).dump();
  Trace beats(b, 1, "mq");
  ASSERT_TRUE(beats.ok());
  // Renderer 1 shares CPU 0 with a real-time process: runnable, hardly scheduled.
  ASSERT_TRUE(PinThreads(ready1->value("pid", 0), 0));
  ASSERT_TRUE(PinThreads(ready2->value("pid", 0), 1));
  Hog hog(0);
  ASSERT_TRUE(hog.started());
  // Renderer 2 has CPU 1 and spins there without heartbeats: hung, and called so.
  ASSERT_EQ(b.Ctl("hang 2").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("unresponsive", 2, kEventTimeout)) << json(b.history()).dump();
  // Renderer 1 goes silent for longer than the hang timeout (it was starved: the setup works)
  // and then beats again, never called unresponsive meanwhile.
  int64_t last_ms = -1;
  int64_t longest_gap_ms = 0;
  for (int i = 0; i < 40 && longest_gap_ms <= kHangTimeoutMs; ++i) {
    auto beat = beats.Next(20s);
    ASSERT_TRUE(beat) << "renderer 1 never beat again; events: " << json(b.history()).dump();
    auto t = static_cast<int64_t>(beat->value("t_ms", 0.0));
    if (last_ms >= 0) longest_gap_ms = std::max(longest_gap_ms, t - last_ms);
    last_ms = t;
  }
  EXPECT_GT(longest_gap_ms, kHangTimeoutMs) << "the hog did not starve renderer 1";
  EXPECT_TRUE(UnresponsiveEvents(b, 1).empty()) << json(b.history()).dump();
}

}  // namespace
}  // namespace sbx::testing
