// Figures taken through the real broker core and real sbx-renderer processes. This thread runs
// the broker's loop itself (Dispatch until the awaited event), so every figure includes the
// event loop, the codec and the state machine exactly as sbx-broker runs them.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <climits>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/cpu_pin.h"
#include "bench/figures.h"
#include "broker/broker.h"
#include "broker/proc_stats.h"
#include "ipc/posix.h"

namespace sbx::bench {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
// Only a broken setup waits this long: a renderer starts in milliseconds.
constexpr int64_t kEventTimeoutNs = 5'000 * kNsPerMs;
// Matches the broker's default and the renderer's; noted in the figures it shapes.
constexpr uint32_t kFps = 30;

int CeilMs(int64_t ns) { return static_cast<int>((ns + kNsPerMs - 1) / kNsPerMs); }

struct RecordedEvent {
  int64_t at_ns;  // when the observer heard of it; BrokerEvent::t_ms has only ms resolution
  BrokerEvent event;
};

// Keeps every broker event, timestamped on arrival, and heartbeat latencies while asked to.
class Recorder : public BrokerObserver {
 public:
  void OnBrokerEvent(const BrokerEvent& event) override {
    int64_t now = MonotonicNs();
    events_.push_back({now, event});
  }
  void OnHeartbeat(int /*id*/, const protocol::Heartbeat& /*hb*/, int64_t latency_ns) override {
    if (collect_heartbeats_) heartbeat_ns_.push_back(latency_ns);
  }

  const std::vector<RecordedEvent>& events() const { return events_; }
  size_t size() const { return events_.size(); }
  void CollectHeartbeats(bool on) { collect_heartbeats_ = on; }
  std::vector<int64_t> TakeHeartbeats() { return std::exchange(heartbeat_ns_, {}); }
  bool AnyHeartbeatFallback() const {
    for (const auto& e : events_) {
      if (e.event.type == EventType::kSpawned && e.event.heartbeat_fallback) return true;
    }
    return false;
  }

 private:
  std::vector<RecordedEvent> events_;
  std::vector<int64_t> heartbeat_ns_;
  bool collect_heartbeats_ = false;
};

// Dispatches the broker's loop until `done` holds. The epoll timeout only bounds the wait: it
// does not delay a wakeup, so this measures the same path as Dispatch(-1).
template <typename Pred>
Result<void> PumpUntil(Broker& broker, Pred done, const char* what) {
  int64_t deadline = MonotonicNs() + kEventTimeoutNs;
  while (!done()) {
    int64_t left = deadline - MonotonicNs();
    if (left <= 0) return MakeError(Errc::kTimeout, std::string("timed out waiting for ") + what);
    if (auto r = broker.loop().Dispatch(CeilMs(left)); !r) return r;
  }
  return {};
}

// Runs the loop for a while without waiting for anything: renderers draw their first frames and
// start heartbeating, and the loop stays serviced as in a real broker.
Result<void> PumpFor(Broker& broker, int64_t ns) {
  int64_t deadline = MonotonicNs() + ns;
  for (int64_t left = ns; left > 0; left = deadline - MonotonicNs()) {
    if (auto r = broker.loop().Dispatch(CeilMs(left)); !r) return r;
  }
  return {};
}

// What a figure's launches were made of, spare or not.
std::string SpareNote(const BenchConfig& config) {
  if (!config.spare) return "; no spare renderer: each launch starts a process";
  return "; each launch takes the spare renderer, started and confined ahead of need (the bench "
         "waits for the next one to answer its ping before the next sample)";
}

// Until the broker's spare has answered its ping (exec'd, confined and waiting), as one started
// ahead of need is by the time a person asks for a tab; nothing without a spare.
Result<void> AwaitSpare(Broker& broker) {
  if (!broker.Stats().spare_enabled) return {};
  return PumpUntil(
      broker, [&] { return broker.Stats().spare_ready; }, "the spare renderer");
}

std::string DescribeExit(const BrokerEvent& e) {
  std::string s(EventTypeName(e.type));
  if (e.exit) s += std::string(" (") + std::string(ExitStatusName(e.exit->status)) + ")";
  if (!e.detail.empty()) s += ": " + e.detail;
  return s;
}

// Waits for renderer `id`'s first `type` event at index `from` or later of the record and
// returns its index. A renderer that ends while we wait for it to be ready is an error that
// carries the broker's reason, rather than a 5 s timeout.
Result<size_t> Await(Broker& broker, Recorder& recorder, EventType type, int id, size_t from) {
  std::optional<size_t> found;
  std::optional<size_t> setback;
  size_t scanned = from;
  auto done = [&] {
    const auto& events = recorder.events();
    for (; scanned < events.size() && !found && !setback; ++scanned) {
      const BrokerEvent& e = events[scanned].event;
      if (e.id != id) continue;
      if (e.type == type) {
        found = scanned;
      } else if (type == EventType::kReady &&
                 (e.type == EventType::kExited || e.type == EventType::kFailed ||
                  e.type == EventType::kClosed)) {
        setback = scanned;
      }
    }
    return found || setback;
  };
  auto what = std::string(EventTypeName(type)) + " of renderer " + std::to_string(id);
  if (auto r = PumpUntil(broker, done, what.c_str()); !r) return std::unexpected(r.error());
  if (setback) {
    return MakeError(Errc::kState, "renderer " + std::to_string(id) + " " +
                                       DescribeExit(recorder.events()[*setback].event) +
                                       " while the bench waited for it to be ready");
  }
  return *found;
}

// `recorder` must outlive the broker, which holds a pointer to it.
Result<std::unique_ptr<Broker>> MakeBroker(const BenchConfig& config, bool restart,
                                           Recorder& recorder) {
  BrokerOptions options;
  options.renderer_path = config.renderer_path;
  options.fps = kFps;
  options.restart = restart;
  options.sandbox = config.sandbox;
  options.inspector = config.inspector;
  options.cgroups = config.cgroups;
  options.renderers_below_broker = config.renderers_below_broker;
  options.spare = config.spare;
  options.zygote = config.zygote;
  // Every kill must restart at once, as a first crash does; the default policy would back off
  // from the second crash on and declare a crash loop after five within 30 s.
  options.restart_policy.max_crashes = INT_MAX;
  options.restart_policy.base_delay_ms = 0;
  options.restart_policy.max_delay_ms = 0;
  auto broker = Broker::Create(std::move(options));
  if (!broker) return std::unexpected(broker.error());
  (*broker)->AddObserver(&recorder);
  return broker;
}

Result<int> SpawnReady(Broker& broker, Recorder& recorder) {
  size_t from = recorder.size();
  auto id = broker.Spawn();
  if (!id) return std::unexpected(id.error());
  if (auto ready = Await(broker, recorder, EventType::kReady, *id, from); !ready) {
    return std::unexpected(ready.error());
  }
  return *id;
}

// The text of /proc/<pid>/<name>, or nullopt if the process is gone. Never on a timed path.
std::optional<std::string> ReadProc(pid_t pid, const char* name) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return std::nullopt;
  UniqueFd fd(raw);
  std::array<uint8_t, 4096> buf;
  auto n = ReadFull(fd.get(), buf);
  if (!n) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(buf.data()), *n);
}

// The CPU `pid` last ran on (field 39 of /proc/<pid>/stat), or -1.
int LastCpu(pid_t pid) {
  auto text = ReadProc(pid, "stat");
  if (!text) return -1;
  std::string_view stat(*text);
  // The command name (field 2) may hold spaces and parentheses; fields after its last ')' do not.
  size_t pos = stat.rfind(')');
  if (pos == std::string_view::npos) return -1;
  constexpr int kProcessorField = 39;
  for (int field = 2; field < kProcessorField; ++field) {
    pos = stat.find(' ', pos + 1);
    if (pos == std::string_view::npos) return -1;
  }
  int cpu = -1;
  auto parsed = std::from_chars(stat.data() + pos + 1, stat.data() + stat.size(), cpu);
  return parsed.ec == std::errc() ? cpu : -1;
}

// The value of a "Key:\tvalue" line of /proc/<pid>/status, or empty.
std::string StatusField(std::string_view status, std::string_view key) {
  size_t pos = status.find("\n" + std::string(key) + ":");
  if (pos == std::string_view::npos) return "";
  size_t begin = status.find_first_not_of(" \t", pos + key.size() + 2);
  size_t end = status.find('\n', begin);
  if (begin == std::string_view::npos) return "";
  return std::string(status.substr(begin, end == std::string_view::npos ? end : end - begin));
}

// How a live renderer is confined, as /proc shows it, so the figures say which launch path they
// measured whatever the broker's defaults are: its own pid namespace (NSpid has a second
// entry), its own user namespace, a seccomp filter.
std::string DescribeConfinement(pid_t pid) {
  auto status = ReadProc(pid, "status");
  if (!status) return "renderer confinement unknown";
  std::vector<std::string> layers;
  if (StatusField(*status, "NSpid").find_first_of(" \t") != std::string::npos) {
    layers.push_back("pid namespace");
  }
  char self_ns[64] = {};
  char child_ns[64] = {};
  std::string child_path = "/proc/" + std::to_string(pid) + "/ns/user";
  ssize_t a = ::readlink("/proc/self/ns/user", self_ns, sizeof self_ns - 1);
  ssize_t b = ::readlink(child_path.c_str(), child_ns, sizeof child_ns - 1);
  if (a > 0 && b > 0 && std::string_view(self_ns) != std::string_view(child_ns)) {
    layers.push_back("user namespace");
  }
  if (StatusField(*status, "Seccomp") == "2") layers.push_back("seccomp filter");
  if (layers.empty()) return "renderer unconfined";
  std::string s = "renderer in";
  for (size_t i = 0; i < layers.size(); ++i) s += (i == 0 ? " " : " + ") + layers[i];
  return s;
}

std::string DescribeConfinement(const Broker& broker, int id) {
  auto snap = broker.Get(id);
  if (!snap || snap->pid <= 0) return "renderer confinement unknown";
  std::string s = DescribeConfinement(snap->pid);
  if (!snap->cgroup_path.empty()) {
    s += std::string(" + a cgroup (") + CgroupModeName(broker.cgroups().mode) + ")";
  }
  return s;
}

std::string FormatMs(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  return buf;
}

// One broker of a pair the bench alternates between, the IPC inspector on in one and off in
// the other, so that both see the machine in the same state.
struct PairedBroker {
  Recorder recorder;  // declared first: it outlives the broker, which points at it
  std::unique_ptr<Broker> broker;
  std::vector<int> ids;
};

Result<std::unique_ptr<PairedBroker>> StartPaired(const BenchConfig& config, bool inspector,
                                                  int renderers) {
  auto p = std::make_unique<PairedBroker>();
  BenchConfig c = config;
  c.inspector = config.inspector && inspector;
  auto broker = MakeBroker(c, /*restart=*/false, p->recorder);
  if (!broker) return std::unexpected(broker.error());
  p->broker = std::move(*broker);
  for (int i = 0; i < renderers; ++i) {
    auto id = SpawnReady(*p->broker, p->recorder);
    if (!id) return std::unexpected(id.error());
    p->ids.push_back(*id);
  }
  return p;
}

// The round trips alternate between three brokers: as configured; the inspector off; and the
// control path alone, with neither the inspector nor what keeps a renderer below the broker (its
// cgroup's CPU share, its nice value), which on one CPU changes how the two take turns
// (docs/PERFORMANCE.md, "What control_rtt pays for").
constexpr int kSides = 3;
constexpr int kAlone = 2;

Result<std::unique_ptr<PairedBroker>> StartSide(const BenchConfig& config, int side,
                                                int renderers) {
  BenchConfig c = config;
  if (side == kAlone) {
    c.cgroups = false;
    c.renderers_below_broker = false;
  }
  return StartPaired(c, /*inspector=*/side == 0, renderers);
}

// One ping from the broker answered by its renderer, in ns, as the bench saw it.
Result<int64_t> PingRoundTrip(Broker& b, int id) {
  std::optional<Result<int64_t>> answer;
  int64_t t1 = 0;
  int64_t t0 = MonotonicNs();
  auto sent = b.Ping(id, [&](Result<int64_t> rtt) {
    t1 = MonotonicNs();
    answer = std::move(rtt);
  });
  if (!sent) return std::unexpected(sent.error());
  auto answered = [&] { return answer.has_value(); };
  if (auto r = PumpUntil(b, answered, "pong"); !r) return std::unexpected(r.error());
  if (!*answer) return std::unexpected(answer->error());
  return t1 - t0;
}

// What the inspector costs: the figure with it over the figure without, median over median and
// p99 over p99, taken in the same run.
Measurement InspectorCost(const BenchConfig& config, const Measurement& on, const Measurement& off,
                          std::string how) {
  Summary s;
  if (off.summary.median_us > 0) s.median_us = on.summary.median_us / off.summary.median_us;
  if (off.summary.p99_us > 0) s.p99_us = on.summary.p99_us / off.summary.p99_us;
  s.samples = std::min(on.summary.samples, off.summary.samples);
  std::string note =
      "the median with the IPC inspector on (every renderer's counters and ring, "
      "the default) over the median with it off, and p99 over p99; " +
      std::move(how);
  if (!config.inspector) note += "; this run has it off in both (--no-inspector)";
  return Measurement{s, std::move(note)};
}

}  // namespace

// Over 80 lines: set-up, the alternation and the notes of five figures, read top to bottom; what
// it shares with Heartbeats (StartPaired, StartSide, InspectorCost) is above.
Result<RoundTripResult> RoundTrips(const BenchConfig& config) {
  // Pinned, so the ratio compares code and not placement; the renderers and the echo child
  // inherit the pin through clone (and exec), and die with their broker at the end of this scope.
  auto pin = ScopedCpuPin::PinHere();
  if (!pin) return std::unexpected(pin.error());
  // Three brokers of one renderer each (kSides).
  std::array<std::unique_ptr<PairedBroker>, kSides> brokers;
  for (int side = 0; side < kSides; ++side) {
    auto p = StartSide(config, side, 1);
    if (!p) return std::unexpected(p.error());
    brokers[side] = std::move(*p);
    if (auto r = PumpFor(*brokers[side]->broker, 200 * kNsPerMs); !r) {
      return std::unexpected(r.error());
    }
  }
  std::array<pid_t, kSides> renderer_pid{};
  for (int side = 0; side < kSides; ++side) {
    auto running = brokers[side]->broker->Get(brokers[side]->ids[0]);
    if (!running || running->pid <= 0) {
      return MakeError(Errc::kState, "renderer has no live process");
    }
    renderer_pid[side] = running->pid;
  }
  auto echo = PipeEcho::Start();
  if (!echo) return std::unexpected(echo.error());

  std::array<Placement, kSides> placement;
  // Blocks short enough that all four see the same machine, long enough that each runs hot.
  constexpr int kBlock = 50;
  const int blocks = Count(config, 100, 10);
  std::vector<int64_t> raw;
  std::array<std::vector<int64_t>, kSides> ours;
  for (int i = -1; i < blocks; ++i) {  // block -1 warms every path up
    for (int j = 0; j < kBlock; ++j) {
      auto ns = echo->RoundTrip();
      if (!ns) return std::unexpected(ns.error());
      if (i >= 0) raw.push_back(*ns);
    }
    // Every order of the three in turn, so none always follows the pipe's pings or another's.
    static constexpr int kOrders[6][kSides] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1},
                                               {0, 2, 1}, {2, 1, 0}, {1, 0, 2}};
    for (int k = 0; k < kSides; ++k) {
      const int side = kOrders[(i + 1) % 6][k];
      PairedBroker& p = *brokers[side];
      for (int j = 0; j < kBlock; ++j) {
        auto ns = PingRoundTrip(*p.broker, p.ids[0]);
        if (!ns) return std::unexpected(ns.error());
        if (i >= 0) ours[side].push_back(*ns);
      }
      // Off the timed path: where the renderer last ran.
      placement[side].Record(::sched_getcpu(), LastCpu(renderer_pid[side]));
    }
  }
  if (auto r = echo->Stop(); !r) return std::unexpected(r.error());

  const std::string interleaved =
      "interleaved with pipe_rtt and with the other brokers' pings "
      "in blocks of " +
      std::to_string(kBlock);
  std::string pipe_note =
      "24-byte messages, blocking read/write, no poll; interleaved with "
      "control_rtt, control_rtt_no_inspector and control_rtt_path in blocks of " +
      std::to_string(kBlock) + "; pinned to one CPU: " + echo->placement().Describe();
  auto note = [&](int side) {
    Broker& b = *brokers[side]->broker;
    std::string n =
        "a ping from the broker answered by its renderer, 1 renderer drawing "
        "sbx://plasma at " +
        std::to_string(kFps) + " fps";
    if (auto snap = b.Get(brokers[side]->ids[0])) {
      n += " (" + std::to_string(snap->render_us) + " us per frame)";
    }
    n += side == 0   ? "; the IPC inspector as configured (on unless --no-inspector)"
         : side == 1 ? "; a second broker with the IPC inspector off, otherwise the same"
                     : "; a third broker with no IPC inspector, no cgroup and the renderer at the "
                       "broker's own nice value: the control path alone, without what running "
                       "renderers below the broker costs when the two share a CPU";
    return n + "; a ping that lands during a render of any broker's renderer waits for it; " +
           interleaved + "; pinned to one CPU: " + placement[side].Describe() + "; " +
           DescribeConfinement(renderer_pid[side]);
  };
  RoundTripResult out{Measurement{Summarize(std::move(raw)), std::move(pipe_note)},
                      Measurement{Summarize(std::move(ours[0])), note(0)},
                      Measurement{Summarize(std::move(ours[1])), note(1)},
                      Measurement{Summarize(std::move(ours[kAlone])), note(kAlone)},
                      {}};
  out.inspector_cost =
      InspectorCost(config, out.control_rtt, out.control_rtt_no_inspector,
                    "control_rtt over control_rtt_no_inspector, pinged in alternating blocks");
  return out;
}

// Over 80 lines for the same reason as RoundTrips.
Result<HeartbeatResult> Heartbeats(const BenchConfig& config) {
  // Pinned like its baseline: on one CPU a wakeup needs no inter-processor interrupt, and the
  // scheduler cannot pick a different mode for the figure and for the floor.
  auto pin = ScopedCpuPin::PinHere();
  if (!pin) return std::unexpected(pin.error());
  const int renderers = Count(config, 3, 2);
  // The two brokers (inspector on, off) take turns, one window at a time; the one not served
  // meanwhile keeps its renderers drawing and heartbeating, so both see the same load.
  const int pairs = Count(config, 8, 2);
  const int64_t window_ns = Count(config, 500, 250) * kNsPerMs;
  // A served broker first reads what queued up while it was not: those heartbeats waited for
  // the bench, not for the broker, and are not counted.
  constexpr int64_t kSettleNs = 40 * kNsPerMs;
  std::array<std::unique_ptr<PairedBroker>, 2> brokers;
  for (int side = 0; side < 2; ++side) {
    auto p = StartPaired(config, /*inspector=*/side == 0, renderers);
    if (!p) return std::unexpected(p.error());
    brokers[side] = std::move(*p);
  }
  const std::string confinement = DescribeConfinement(*brokers[0]->broker, brokers[0]->ids[0]);
  // Warm-up: the first heartbeat of each renderer races its startup and is not typical.
  for (auto& p : brokers) {
    if (auto r = PumpFor(*p->broker, 300 * kNsPerMs); !r) return std::unexpected(r.error());
  }
  // The bare receiver wakes as often as the served broker does (every frame and every heartbeat
  // of every renderer), so both sleep as long, and as deeply, between messages.
  const int64_t broker_wakeups_per_s = renderers * (kFps + 1000 / protocol::kHeartbeatIntervalMs);
  const int64_t gap_ns = 1'000'000'000 / broker_wakeups_per_s;
  auto floor = MqOneway::Start(gap_ns);
  if (!floor) return std::unexpected(floor.error());
  std::array<std::vector<int64_t>, 2> samples;
  for (int i = 0; i < pairs; ++i) {
    for (int k = 0; k < 2; ++k) {
      const int side = (i + k) & 1;
      PairedBroker& p = *brokers[side];
      if (auto r = PumpFor(*p.broker, kSettleNs); !r) return std::unexpected(r.error());
      p.recorder.CollectHeartbeats(true);
      if (auto r = PumpFor(*p.broker, window_ns); !r) return std::unexpected(r.error());
      p.recorder.CollectHeartbeats(false);
      auto taken = p.recorder.TakeHeartbeats();
      samples[side].insert(samples[side].end(), taken.begin(), taken.end());
    }
  }
  auto bare = floor->Stop();
  if (!bare) return std::unexpected(bare.error());
  if (bare->empty()) return MakeError(Errc::kState, "no bare mq message arrived");
  if (samples[0].empty() || samples[1].empty()) {
    return MakeError(Errc::kState, "no heartbeat arrived");
  }

  const std::string window_ms = std::to_string(window_ns / kNsPerMs);
  auto note = [&](int side) {
    return std::to_string(renderers) + " renderers at " + std::to_string(kFps) + " fps, " +
           std::to_string(pairs) + " windows of " + window_ms +
           " ms; from the renderer's timestamp right before it sends a heartbeat to the broker "
           "handling it; " +
           (side == 0 ? "the IPC inspector as configured (on unless --no-inspector)"
                      : "a second broker with the IPC inspector off, otherwise the same") +
           ", the two brokers served in alternate windows (what queued up while a broker was "
           "not served is not counted); brokers and renderers pinned to one CPU; " +
           confinement;
  };
  std::vector<std::string> warnings;
  std::array<std::string, 2> notes = {note(0), note(1)};
  if (brokers[0]->recorder.AnyHeartbeatFallback() || brokers[1]->recorder.AnyHeartbeatFallback()) {
    warnings.push_back(
        "no message queue could be made, so the heartbeats rode the control pipe and the figure "
        "is not the queue's");
    for (auto& n : notes) n += "; heartbeats on the control pipe, not a message queue";
  }
  std::string floor_note = "one 40-byte message-queue send, timestamped right before it, every " +
                           std::to_string(gap_ns / 1000) +
                           " us from a child of sbx-bench to another asleep in its receive, "
                           "during heartbeat_latency's windows and pinned to the same CPU";
  HeartbeatResult out{
      Measurement{Summarize(std::move(*bare)), std::move(floor_note)},
      Measurement{Summarize(std::move(samples[0])), std::move(notes[0]), warnings},
      Measurement{Summarize(std::move(samples[1])), std::move(notes[1]), std::move(warnings)},
      {}};
  out.inspector_cost =
      InspectorCost(config, out.heartbeat_latency, out.heartbeat_no_inspector,
                    "heartbeat_latency over heartbeat_no_inspector, in alternate windows");
  return out;
}

namespace {

struct Kill {
  int64_t killed_ns;
  int64_t pidfd_ns;  // only in the split pass
  int64_t exited_ns;
  int64_t ready_ns;
};

// Kills the renderer and waits for its replacement to be ready. With `split`, the bench first
// waits on a pidfd of its own, so the loop dispatches only once the exit is already visible.
Result<Kill> KillOnce(Broker& b, Recorder& recorder, int id, bool split) {
  auto snap = b.Get(id);
  if (!snap || snap->pid <= 0) return MakeError(Errc::kState, "renderer has no live process");
  UniqueFd own_pidfd;
  if (split) {
    auto pidfd = PidfdOpen(snap->pid);
    if (!pidfd) return std::unexpected(pidfd.error());
    own_pidfd = std::move(*pidfd);
  }
  Kill k{};
  size_t from = recorder.size();
  // The pid cannot be reused under us: only this thread's broker reaps it.
  k.killed_ns = MonotonicNs();
  if (::kill(snap->pid, SIGKILL) != 0) return SysError("kill");
  if (split) {
    auto readable = WaitReadable(own_pidfd.get(), static_cast<int>(kEventTimeoutNs / kNsPerMs));
    k.pidfd_ns = MonotonicNs();
    if (!readable) return std::unexpected(readable.error());
    if (!*readable) return MakeError(Errc::kTimeout, "renderer pidfd not readable after SIGKILL");
  }
  auto exited = Await(b, recorder, EventType::kExited, id, from);
  if (!exited) return std::unexpected(exited.error());
  const RecordedEvent exit_event = recorder.events()[*exited];
  k.exited_ns = exit_event.at_ns;
  const auto& info = exit_event.event.exit;
  if (!info || info->status != ExitStatus::kKilled || info->signal != SIGKILL) {
    return MakeError(Errc::kState, "SIGKILL was classified as " + DescribeExit(exit_event.event));
  }
  auto ready = Await(b, recorder, EventType::kReady, id, *exited + 1);
  if (!ready) return std::unexpected(ready.error());
  k.ready_ns = recorder.events()[*ready].at_ns;
  return k;
}

}  // namespace

Result<KillCycleResult> KillCycle(const BenchConfig& config) {
  Recorder recorder;
  auto broker = MakeBroker(config, /*restart=*/true, recorder);
  if (!broker) return std::unexpected(broker.error());
  Broker& b = **broker;
  auto id = SpawnReady(b, recorder);
  if (!id) return std::unexpected(id.error());
  if (auto r = PumpFor(b, 100 * kNsPerMs); !r) return std::unexpected(r.error());
  const std::string confinement = DescribeConfinement(b, *id);

  const int warmup = Count(config, 3, 2);
  const int count = Count(config, 150, 15);
  const int split_count = Count(config, 40, 8);
  std::vector<int64_t> death;
  std::vector<int64_t> recovery;
  std::vector<int64_t> renderer_exit;
  std::vector<int64_t> exit_handling;
  for (int i = 0; i < warmup + count + split_count; ++i) {
    bool split = i >= warmup + count;
    auto k = KillOnce(b, recorder, *id, split);
    if (!k) return std::unexpected(k.error());
    if (split) {
      renderer_exit.push_back(k->pidfd_ns - k->killed_ns);
      exit_handling.push_back(k->exited_ns - k->pidfd_ns);
    } else if (i >= warmup) {
      death.push_back(k->exited_ns - k->killed_ns);
      recovery.push_back(k->ready_ns - k->killed_ns);
    }
    // Vary the pause so kills land at different points of the renderer's 33 ms frame cycle.
    if (auto r = PumpFor(b, (20 + (i * 7) % 33) * kNsPerMs); !r) {
      return std::unexpected(r.error());
    }
    if (auto r = AwaitSpare(b); !r) return std::unexpected(r.error());
  }
  return KillCycleResult{
      Measurement{
          Summarize(std::move(death)),
          "from kill -9 of the renderer to the broker's event that it exited, renderer at " +
              std::to_string(kFps) + " fps, idle 20-52 ms before each kill; " + confinement +
              "; split into renderer_exit + exit_handling"},
      Measurement{Summarize(std::move(recovery)),
                  "from kill -9 of the renderer to its replacement's first frame; restarts set to "
                  "happen at once every time (by default only the first crash restarts at once)" +
                      SpareNote(config)},
      Measurement{Summarize(std::move(renderer_exit)),
                  "the floor under death_detection: the same kill -9 of the same real renderer, "
                  "timed until a process descriptor of the bench's own reports the exit (signal "
                  "delivery and the kernel tearing the renderer down, its frame buffers "
                  "included)"},
      Measurement{Summarize(std::move(exit_handling)),
                  "the rest of death_detection: from the kernel reporting the exit to the broker's "
                  "event (the broker wakes, reaps and classifies the exit, releases the "
                  "renderer's resources and tells its observers)"}};
}

Result<Measurement> SpawnToFirstFrame(const BenchConfig& config) {
  Recorder recorder;
  auto broker = MakeBroker(config, /*restart=*/false, recorder);
  if (!broker) return std::unexpected(broker.error());
  Broker& b = **broker;
  std::vector<int64_t> first_frame_ns;
  std::string confinement;

  auto once = [&]() -> Result<int64_t> {
    size_t from = recorder.size();
    int64_t t0 = MonotonicNs();
    auto id = b.Spawn();
    if (!id) return std::unexpected(id.error());
    auto ready = Await(b, recorder, EventType::kReady, *id, from);
    if (!ready) return std::unexpected(ready.error());
    const RecordedEvent ready_event = recorder.events()[*ready];
    first_frame_ns.push_back(static_cast<int64_t>(ready_event.event.first_frame_ms * 1e6));
    if (confinement.empty()) confinement = DescribeConfinement(b, *id);
    // Close it so only one renderer ever runs; it leaves at once when asked.
    if (auto r = b.Close(*id); !r) return std::unexpected(r.error());
    if (auto closed = Await(b, recorder, EventType::kClosed, *id, *ready + 1); !closed) {
      return std::unexpected(closed.error());
    }
    // Let the broker drop the closed host (a zero-delay timer) before the next spawn.
    if (auto r = PumpFor(b, 5 * kNsPerMs); !r) return std::unexpected(r.error());
    if (auto r = AwaitSpare(b); !r) return std::unexpected(r.error());
    return ready_event.at_ns - t0;
  };
  // The first spare is started once the first renderer is ready: the warm-up samples take it.
  const int warmup = Count(config, 3, 2);
  auto samples = CollectSamples(warmup, Count(config, 150, 15), once);
  if (!samples) return std::unexpected(samples.error());
  first_frame_ns.erase(first_frame_ns.begin(), first_frame_ns.begin() + warmup);
  double broker_median_ms = Summarize(std::move(first_frame_ns)).median_us / 1000.0;
  return Measurement{Summarize(std::move(*samples)),
                     "from asking the broker for a renderer to its first frame, one renderer at a "
                     "time, " +
                         confinement +
                         "; the broker's own figure for the same span, "
                         "in its ready events, median " +
                         FormatMs(broker_median_ms) + SpareNote(config)};
}

std::optional<uint64_t> StatusKb(pid_t pid, const char* key) {
  auto status = ReadProc(pid, "status");
  if (!status) return std::nullopt;
  std::string field = StatusField(*status, key);  // "48 kB"
  uint64_t kb = 0;
  auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), kb);
  if (ec != std::errc() || p == field.data()) return std::nullopt;
  return kb;
}

Result<RendererMemoryResult> RendererMemory(const BenchConfig& config) {
  Recorder recorder;
  auto broker = MakeBroker(config, /*restart=*/false, recorder);
  if (!broker) return std::unexpected(broker.error());
  auto id = SpawnReady(**broker, recorder);
  if (!id) return std::unexpected(id.error());
  // A few frames in, its buffers and stacks are touched as they will stay.
  if (auto r = PumpFor(**broker, 200 * kNsPerMs); !r) return std::unexpected(r.error());
  auto snap = (*broker)->Get(*id);
  if (!snap || snap->pid <= 0) return MakeError(Errc::kState, "the renderer has no live process");
  auto stats = ReadProcStats(snap->pid);
  if (!stats) return std::unexpected(stats.error());
  RendererMemoryResult out;
  out.rss_kb = stats->rss_bytes / 1024;
  if (stats->pss_bytes) out.pss_kb = *stats->pss_bytes / 1024;
  out.page_tables_kb = StatusKb(snap->pid, "VmPTE");
  out.confinement = DescribeConfinement(**broker, *id);
  if (auto r = (*broker)->Close(*id); !r) return std::unexpected(r.error());
  if (auto closed = Await(**broker, recorder, EventType::kClosed, *id, 0); !closed) {
    return std::unexpected(closed.error());
  }
  return out;
}

}  // namespace sbx::bench

namespace sbx::bench {
namespace {

// What the figure is once more, and what it says, with no cgroup per renderer.
std::string NoCgroupNote(const BenchConfig& config, std::string_view figure) {
  std::string note = std::string(figure) + " again with no cgroup per renderer (--no-cgroup)";
  if (!config.cgroups) return note + "; this run has none for either";
  return note +
         ": the difference is what putting each renderer in its cgroup costs (on cgroup v1 the "
         "write to cgroup.procs waits for an RCU grace period; v2 creates the renderer inside "
         "its cgroup)";
}

}  // namespace

Result<Measurement> SpawnNoCgroup(const BenchConfig& config) {
  BenchConfig without = config;
  without.cgroups = false;
  without.spare = false;  // a spare has paid for its cgroup before the spawn: nothing to see
  auto m = SpawnToFirstFrame(without);
  if (!m) return std::unexpected(m.error());
  m->note = NoCgroupNote(config, "spawn_to_first_frame") + "; " + m->note;
  return m;
}

Result<Measurement> RecoveryNoCgroup(const BenchConfig& config) {
  BenchConfig without = config;
  without.cgroups = false;
  without.spare = false;
  auto k = KillCycle(without);
  if (!k) return std::unexpected(k.error());
  k->recovery.note = NoCgroupNote(config, "recovery") + "; " + k->recovery.note;
  return std::move(k->recovery);
}

Result<Measurement> SpawnNoSpare(const BenchConfig& config) {
  BenchConfig without = config;
  without.spare = false;
  auto m = SpawnToFirstFrame(without);
  if (!m) return std::unexpected(m.error());
  m->note =
      "spawn_to_first_frame again with no spare renderer (--no-spare): the difference is "
      "the launch a spare has made ahead of need; " +
      m->note;
  return m;
}

Result<Measurement> SpawnNoZygote(const BenchConfig& config) {
  BenchConfig without = config;
  without.spare = false;
  without.zygote = false;
  auto m = SpawnToFirstFrame(without);
  if (!m) return std::unexpected(m.error());
  m->note =
      "spawn_no_spare again with the broker forking each launch itself (--no-zygote): against "
      "spawn_no_spare, what launching from the small zygote process saves; the bench's broker "
      "is small, the window is not (docs/ARCHITECTURE.md, \"The zygote\"); " +
      m->note;
  return m;
}

Result<Measurement> RecoveryNoSpare(const BenchConfig& config) {
  BenchConfig without = config;
  without.spare = false;
  auto k = KillCycle(without);
  if (!k) return std::unexpected(k.error());
  k->recovery.note = "recovery again with no spare renderer (--no-spare); " + k->recovery.note;
  return std::move(k->recovery);
}

}  // namespace sbx::bench
