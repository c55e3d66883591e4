// The measurements sbx-bench can take. Each returns the summary of its samples plus a short note
// on the conditions that shape the number; none of them judges the number against a target.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/stats.h"
#include "ipc/error.h"
#include "ipc/protocol.h"
#include "ipc/unique_fd.h"

namespace sbx::bench {

struct BenchConfig {
  bool quick = false;         // fewer samples: a smoke test of a few seconds
  std::string renderer_path;  // absolute path of sbx-renderer
  bool sandbox = true;        // false: renderers without the broker's sandbox (--no-sandbox)
  bool inspector = true;      // false: no IPC counters or ring (--no-inspector)
  bool cgroups = true;        // false: no cgroup per renderer (--no-cgroup)
  bool renderers_below_broker = true;  // false: renderers at the broker's nice (control_rtt_path)
  bool spare = true;                   // false: no spare renderer (the *_no_spare figures)
  bool zygote = true;                  // false: the broker forks each launch (spawn_no_zygote)
  // The `scale` figures (--scale N, --scale-visible K, --scale-seconds S).
  int scale_renderers = 500;
  int scale_visible = 16;
  int scale_seconds = 30;
  // Renderers of the all-visible run, every one at 30 fps (at most scale_renderers).
  int scale_all_visible = 64;
};

struct Measurement {
  Measurement() = default;
  Measurement(Summary s, std::string n, std::vector<std::string> w = {})
      : summary(std::move(s)), note(std::move(n)), warnings(std::move(w)) {}

  Summary summary;
  std::string note;  // conditions a reader needs to interpret the figure; may be empty
  // Conditions that make the figure unrepresentative; printed on stderr, after the table.
  std::vector<std::string> warnings;
};

// Picks the sample count for the run mode.
inline int Count(const BenchConfig& config, int full, int quick) {
  return config.quick ? quick : full;
}

// Counts how often the two ends of a round trip ran on the same CPU. With two CPUs a ping-pong is
// bimodal: on one CPU a wakeup needs no inter-processor interrupt and no idle exit, and the
// scheduler picks the mode, so a ratio between two round trips is only meaningful next to it.
class Placement {
 public:
  void Record(int cpu_a, int cpu_b) {
    if (cpu_a < 0 || cpu_b < 0) return;  // unknown
    ++total_;
    if (cpu_a == cpu_b) ++same_;
  }
  std::string Describe() const {
    if (total_ == 0) return "CPU placement unknown";
    char buf[64];
    std::snprintf(buf, sizeof buf, "both ends on one CPU in %d%% of round trips",
                  static_cast<int>(100.0 * same_ / total_ + 0.5));
    return buf;
  }

 private:
  int same_ = 0;
  int total_ = 0;
};

// Runs `once` (returning one duration in ns, or an error) warmup + count times and keeps the
// last `count` durations. Warm-up iterations fault in pages, caches and lazily bound symbols.
template <typename F>
Result<std::vector<int64_t>> CollectSamples(int warmup, int count, F&& once) {
  std::vector<int64_t> samples;
  samples.reserve(static_cast<size_t>(count));
  for (int i = 0; i < warmup + count; ++i) {
    Result<int64_t> ns = once();
    if (!ns) return std::unexpected(ns.error());
    if (i >= warmup) samples.push_back(*ns);
  }
  return samples;
}

// The raw pipe ping-pong under control_rtt (baselines.cc): a forked child that echoes a message
// the size of a kPing over two blocking pipes; no poll, no codec.
class PipeEcho {
 public:
  static Result<PipeEcho> Start();
  PipeEcho(PipeEcho&&) noexcept;
  PipeEcho& operator=(PipeEcho&&) = delete;
  ~PipeEcho();  // kills and reaps the child unless Stop() did
  // One round trip, in ns.
  Result<int64_t> RoundTrip();
  // Closes the pipe and expects the child to exit 0.
  Result<void> Stop();
  const Placement& placement() const { return placement_; }

 private:
  struct Impl;
  explicit PipeEcho(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  Placement placement_;
};

// Raw-syscall baselines (baselines.cc), each between this process and a forked child.
// Half of a back-to-back mq ping-pong: neither end ever idles, so it is the queue's own cost.
Result<Measurement> MqRttHalf(const BenchConfig& config);
// The floor under heartbeat_latency, a bare heartbeat: a forked sender sleeps `gap_ns`, stamps
// and mq_sends; a forked receiver blocked in mq_receive records the one-way latency. It runs
// alongside the broker's heartbeats, so both wake the same idle CPU at the same time: on a VM
// that wakeup, not the queue, is most of the figure, and it drifts by 2x within minutes, so a
// floor taken apart from the figure would not be its floor. Half a hot round trip never sees it.
class MqOneway {
 public:
  static constexpr int kMaxSamples = 4096;
  static Result<MqOneway> Start(int64_t gap_ns);
  MqOneway(MqOneway&&) noexcept;
  MqOneway& operator=(MqOneway&&) = delete;
  ~MqOneway();  // kills and reaps both children unless Stop() did
  // Stops both children and returns the latencies, in ns.
  Result<std::vector<int64_t>> Stop();

 private:
  struct Impl;
  explicit MqOneway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

Result<Measurement> PidfdWakeup(const BenchConfig& config);
Result<Measurement> ForkExecTrue(const BenchConfig& config);
Result<Measurement> ForkExecRenderer(const BenchConfig& config);

// The shared frame buffer, in process (frame_figures.cc).
Result<Measurement> MemcpyFrame(const BenchConfig& config);
Result<Measurement> FramePublish(const BenchConfig& config);

// The real broker driving real renderers (broker_figures.cc).

// control_rtt and its baseline pipe_rtt, taken interleaved in alternating blocks on one pinned
// CPU, so both see the machine in the same state: on a shared VM the floor itself drifts by
// tens of percent within a minute, which separate runs would read as our code's cost.
// control_rtt is the broker as configured; a second broker with the IPC inspector off is pinged
// in the same alternation, and inspector_cost is control_rtt over it; a third times the control
// path alone (control_rtt_path).
struct RoundTripResult {
  Measurement pipe_rtt;
  Measurement control_rtt;
  Measurement control_rtt_no_inspector;
  // No inspector, no cgroup, the renderer at the broker's priority: the control path alone.
  Measurement control_rtt_path;
  Measurement inspector_cost;  // a ratio, not a duration
};
Result<RoundTripResult> RoundTrips(const BenchConfig& config);
// heartbeat_latency and its floor mq_oneway_idle, taken at the same time (see MqOneway); like
// the round trips, with a second broker whose inspector is off, served in alternate windows.
struct HeartbeatResult {
  Measurement mq_oneway_idle;
  Measurement heartbeat_latency;
  Measurement heartbeat_no_inspector;
  Measurement inspector_cost;  // a ratio, not a duration
};
Result<HeartbeatResult> Heartbeats(const BenchConfig& config);
Result<Measurement> SpawnToFirstFrame(const BenchConfig& config);
// The same with no cgroup per renderer, in the same run: the difference is what a cgroup costs.
Result<Measurement> SpawnNoCgroup(const BenchConfig& config);

// One run of kill cycles yields death_detection (SIGKILL to kExited) and recovery (SIGKILL to the
// replacement's kReady). A second, shorter pass splits death_detection in two with a pidfd of
// the bench's own: the kernel's part (SIGKILL until the pidfd is readable, which includes the
// renderer's exit teardown) and the broker's part (pidfd readable to the observer's kExited).
struct KillCycleResult {
  Measurement death_detection;
  Measurement recovery;
  Measurement renderer_exit;
  Measurement exit_handling;
};
Result<KillCycleResult> KillCycle(const BenchConfig& config);
// recovery again with no cgroup per renderer (a shorter pass of the same kill cycle).
Result<Measurement> RecoveryNoCgroup(const BenchConfig& config);
// spawn_to_first_frame and recovery again with no spare renderer: every launch starts a process.
Result<Measurement> SpawnNoSpare(const BenchConfig& config);
Result<Measurement> SpawnNoZygote(const BenchConfig& config);
Result<Measurement> RecoveryNoSpare(const BenchConfig& config);

// For the lecture's table (lecture.cc): a `kB` field of /proc/PID/status such as VmPTE.
std::optional<uint64_t> StatusKb(pid_t pid, const char* key);
// What one renderer costs in memory a few frames after its first, under config.sandbox.
struct RendererMemoryResult {
  uint64_t rss_kb = 0;
  std::optional<uint64_t> pss_kb;  // hidden when the renderer is not dumpable
  std::optional<uint64_t> page_tables_kb;
  std::string confinement;
};
Result<RendererMemoryResult> RendererMemory(const BenchConfig& config);

// One sbx-broker with config.scale_renderers renderers, config.scale_visible of them visible.
// Values that are not durations (MiB, percent, a count) sit in the summary's median and p99.
struct ScaleResult {
  Measurement spawn_each;     // us: until all ran, divided by their number
  Measurement ping_spawning;  // us: control-socket pings while they start
  Measurement ping_steady;    // us: control-socket pings once all run
  Measurement list;           // us: `list` once all run
  Measurement broker_cpu;     // percent of one CPU over the window
  Measurement broker_rss;     // MiB
  Measurement pss_each;       // MiB, the median renderer's
  Measurement unresponsive;   // count
  Measurement shutdown;       // ms: SIGTERM to exit
};
Result<ScaleResult> Scale(const BenchConfig& config);
// The floor under broker_rss: a broker with no renderer.
Result<Measurement> ScaleRssFloor(const BenchConfig& config);
// config.scale_all_visible renderers all at 30 fps: control-socket pings.
Result<Measurement> ScalePingVisible(const BenchConfig& config);
// The control socket's `ping` of a renderer while 16 others spin (a runaway script each), and
// of the same renderer in the same broker right before they were told to (scale_figures.cc).
struct PingLoadResult {
  Measurement idle;
  Measurement loaded;
};
Result<PingLoadResult> PingUnderLoad(const BenchConfig& config);
// A blocking POSIX queue (the broker's attributes by default) with a random name, unlinked at
// once so that no /dev/mqueue entry can outlive this process, however it ends.
Result<UniqueFd> OpenUnlinkedQueue(long max_msg = protocol::kQueueMaxMsg,
                                   long msg_size = protocol::kQueueMsgSize);
// fork + execve + waitpid of args[0] (which must exit with expected_code), timed.
Result<Measurement> ForkExec(const BenchConfig& config, std::vector<std::string> args,
                             int expected_code, std::string note);

}  // namespace sbx::bench
