// The `scale` figures: a real sbx-broker (a child of the bench, as a person runs it) with
// hundreds of renderers, driven and timed through its control socket the way sbx-ctl is, and
// measured from outside through /proc.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/figures.h"
#include "broker/launcher.h"
#include "broker/proc_stats.h"
#include "ipc/posix.h"

namespace sbx::bench {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerS = 1'000'000'000;
constexpr int kVisibleFps = 30;
// How long to wait for everything to run: far more than the target, so a slow machine is
// measured rather than given up on.
constexpr int64_t kAllRunningTimeoutNs = 120 * kNsPerS;
constexpr int64_t kReplyTimeoutMs = 10'000;
// Pings in steady state are spaced so that the client does not become the load it measures.
constexpr int64_t kSteadyPingGapNs = 20 * kNsPerMs;
// Renderers whose PSS is read (spread over the ids): enough for a median, few enough to be quick.
constexpr size_t kPssSample = 50;

void Pause(int64_t ns) {
  timespec t{static_cast<time_t>(ns / kNsPerS), static_cast<long>(ns % kNsPerS)};
  while (::nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

std::string BinNextToSelf(const std::string& renderer_path, const char* name) {
  return renderer_path.substr(0, renderer_path.rfind('/') + 1) + name;
}

// One connection to the broker's control socket: a line out, a line back.
class ControlClient {
 public:
  static Result<ControlClient> Connect(const std::string& path, int64_t deadline_ns) {
    for (;;) {
      UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd) return SysError("socket");
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        return ControlClient(std::move(fd));
      }
      if (errno != ENOENT && errno != ECONNREFUSED) return SysError("connect " + path);
      if (MonotonicNs() >= deadline_ns) return MakeError(Errc::kTimeout, "no socket at " + path);
      // The broker makes its socket within milliseconds of starting; nothing announces it.
      Pause(kNsPerMs);
    }
  }

  // The reply to `line`, and how long it took.
  Result<std::pair<std::string, int64_t>> Call(const std::string& line) {
    std::string out = line + "\n";
    int64_t t0 = MonotonicNs();
    auto w = WriteAll(fd_.get(), {reinterpret_cast<const uint8_t*>(out.data()), out.size()});
    if (!w) return std::unexpected(w.error());
    const int64_t deadline = t0 + kReplyTimeoutMs * kNsPerMs;
    size_t nl;
    while ((nl = buffer_.find('\n')) == std::string::npos) {
      int left = static_cast<int>((deadline - MonotonicNs()) / kNsPerMs);
      auto ready = WaitReadable(fd_.get(), std::max(left, 0));
      if (!ready) return std::unexpected(ready.error());
      if (!*ready) return MakeError(Errc::kTimeout, "no reply to `" + line + "` within 10 s");
      uint8_t buf[65536];
      auto n = ReadSome(fd_.get(), buf);
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return MakeError(Errc::kPeerClosed, "the broker closed the control socket");
      buffer_.append(reinterpret_cast<const char*>(buf), *n);
    }
    int64_t rtt = MonotonicNs() - t0;
    std::string reply = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return std::make_pair(std::move(reply), rtt);
  }

 private:
  explicit ControlClient(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string buffer_;
};

// sbx-broker as a child with --json events on a pipe, read as they come.
class BrokerChild {
 public:
  static Result<BrokerChild> Start(const BenchConfig& config, std::vector<std::string> args) {
    auto out = MakePipe(false);
    if (!out) return std::unexpected(out.error());
    std::array<uint8_t, 6> rnd;
    if (auto r = RandomBytes(rnd); !r) return std::unexpected(r.error());
    char name[64];
    std::snprintf(name, sizeof name, "/tmp/sbx-bench-%d-%02x%02x%02x%02x%02x%02x.sock", ::getpid(),
                  rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    LaunchSpec spec;
    spec.argv = {BinNextToSelf(config.renderer_path, "sbx-broker"),
                 "--json",
                 "--control",
                 name,
                 "--renderer-path",
                 config.renderer_path};
    if (!config.sandbox) spec.argv.push_back("--no-sandbox");
    if (!config.inspector) spec.argv.push_back("--no-inspector");
    if (!config.cgroups) spec.argv.push_back("--no-cgroup");
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.fds = {{out->write.get(), 1}};
    int64_t start = MonotonicNs();
    auto child = Launch(spec);
    if (!child) return std::unexpected(child.error());
    if (auto r = SetNonBlocking(out->read.get(), true); !r) return std::unexpected(r.error());
    auto ctl = ControlClient::Connect(name, start + 10 * kNsPerS);
    if (!ctl) return std::unexpected(ctl.error());
    return BrokerChild(std::move(child->process), std::move(out->read), std::move(*ctl), name,
                       start);
  }
  BrokerChild(BrokerChild&&) = default;
  ~BrokerChild() {
    if (!socket_.empty()) ::unlink(socket_.c_str());
  }

  ControlClient& ctl() { return ctl_; }
  pid_t pid() const { return process_.pid(); }
  int64_t start_ns() const { return start_ns_; }
  int ready() const { return ready_; }
  int unresponsive() const { return unresponsive_; }
  int64_t last_ready_ns() const { return last_ready_ns_; }

  // Waits up to timeout_ms for events, then reads them.
  void WaitEvents(int timeout_ms) {
    (void)WaitReadable(events_.get(), timeout_ms);
    DrainEvents();
  }

  // Reads whatever events wait, without blocking (the broker drops events nobody reads).
  void DrainEvents() {
    uint8_t buf[65536];
    for (;;) {
      auto n = ReadSome(events_.get(), buf);
      if (!n || *n == 0) return;
      pending_.append(reinterpret_cast<const char*>(buf), *n);
      size_t nl;
      while ((nl = pending_.find('\n')) != std::string::npos) {
        auto e = nlohmann::json::parse(pending_.substr(0, nl), nullptr, false);
        pending_.erase(0, nl + 1);
        if (e.is_discarded()) continue;
        std::string type = e.value("event", "");
        if (type == "ready") {
          ++ready_;
          last_ready_ns_ = MonotonicNs();
        }
        unresponsive_ += type == "unresponsive";
      }
    }
  }

  // SIGTERM, then the time until the broker has exited (every renderer closed and reaped).
  Result<int64_t> Shutdown() {
    int64_t t0 = MonotonicNs();
    if (auto r = process_.Signal(SIGTERM); !r) return std::unexpected(r.error());
    for (;;) {
      DrainEvents();  // its last events must not block it
      auto ready = WaitReadable(process_.pidfd(), 50);
      if (!ready) return std::unexpected(ready.error());
      if (*ready) break;
      if (MonotonicNs() - t0 > 30 * kNsPerS) return MakeError(Errc::kTimeout, "no exit in 30 s");
    }
    int64_t took = MonotonicNs() - t0;
    auto exit = process_.TryReap();
    if (!exit || exit->status != ExitStatus::kExited) {
      return MakeError(Errc::kState, "sbx-broker did not exit 0 after SIGTERM");
    }
    return took;
  }

 private:
  BrokerChild(ChildProcess process, UniqueFd events, ControlClient ctl, std::string socket,
              int64_t start)
      : process_(std::move(process)),
        events_(std::move(events)),
        ctl_(std::move(ctl)),
        socket_(std::move(socket)),
        start_ns_(start) {}

  ChildProcess process_;
  UniqueFd events_;
  ControlClient ctl_;
  std::string socket_;
  int64_t start_ns_;
  std::string pending_;
  int ready_ = 0;
  int unresponsive_ = 0;
  int64_t last_ready_ns_ = 0;
};

// Every renderer of a scale run starts hidden (--hidden: no frames, a heartbeat a second, a
// low CPU share), as background tabs are; the first K are then made visible, at 30 fps.
Result<void> MakeVisible(BrokerChild& b, int id) {
  const std::string line = "visibility " + std::to_string(id) + " visible";
  auto r = b.ctl().Call(line);
  if (!r) return std::unexpected(r.error());
  if (r->first.find("\"error\"") != std::string::npos) {
    return MakeError(Errc::kState, line + ": " + r->first);
  }
  return {};
}

// One `ping ID` through the control socket: the client's round trip, in ns.
Result<int64_t> PingOnce(BrokerChild& b, int id) {
  const std::string line = "ping " + std::to_string(id);
  auto r = b.ctl().Call(line);
  if (!r) return std::unexpected(r.error());
  if (r->first.find("\"error\"") != std::string::npos) {
    return MakeError(Errc::kState, line + ": " + r->first);
  }
  b.DrainEvents();
  return r->second;
}

// Pings renderer `id` every gap_ns until `until` says stop.
template <typename Until>
Result<std::vector<int64_t>> PingWhile(BrokerChild& b, int id, int64_t gap_ns, Until until) {
  std::vector<int64_t> rtts;
  while (!until()) {
    int64_t t0 = MonotonicNs();
    auto rtt = PingOnce(b, id);
    if (!rtt) return std::unexpected(rtt.error());
    rtts.push_back(*rtt);
    if (int64_t wait = t0 + gap_ns - MonotonicNs(); wait > 0) Pause(wait);
  }
  return rtts;
}

Result<void> WaitForReady(BrokerChild& b, int count) {
  while (b.ready() < count) {
    if (MonotonicNs() - b.start_ns() > kAllRunningTimeoutNs) {
      return MakeError(Errc::kTimeout, std::to_string(b.ready()) + " of " + std::to_string(count) +
                                           " renderers running after " +
                                           std::to_string(kAllRunningTimeoutNs / kNsPerS) + " s");
    }
    b.WaitEvents(100);
  }
  return {};
}

// The renderers' pids, from `list`.
Result<std::vector<pid_t>> RendererPids(BrokerChild& b) {
  auto r = b.ctl().Call("list");
  if (!r) return std::unexpected(r.error());
  auto list = nlohmann::json::parse(r->first, nullptr, false);
  if (list.is_discarded() || !list.contains("renderers")) {
    return MakeError(Errc::kState, "list: " + r->first.substr(0, 200));
  }
  std::vector<pid_t> pids;
  for (const auto& row : list["renderers"]) {
    if (row.value("pid", 0) > 0) pids.push_back(row.value("pid", 0));
  }
  return pids;
}

// `list` through the control socket, a few times: every renderer's row and sandbox report.
Result<std::vector<int64_t>> TimeList(BrokerChild& b) {
  constexpr int kLists = 5;
  std::vector<int64_t> rtts;
  for (int i = 0; i < kLists; ++i) {
    auto r = b.ctl().Call("list");
    if (!r) return std::unexpected(r.error());
    rtts.push_back(r->second);
    b.DrainEvents();
  }
  return rtts;
}

Measurement Value(double v, std::string note, std::vector<std::string> warnings = {}) {
  return Measurement{Summary{v, v, 1}, std::move(note), std::move(warnings)};
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double Mib(double bytes) { return bytes / (1 << 20); }

// The options every scale broker runs with: enough memory budget and slots for `n` renderers,
// and a cgroup limit per renderer small enough for the budget's arithmetic; with `hidden`,
// every renderer starts hidden.
std::vector<std::string> ScaleArgs(int n, bool hidden) {
  std::vector<std::string> args = {"--renderers",
                                   std::to_string(n),
                                   "--fps",
                                   std::to_string(kVisibleFps),
                                   "--max-renderers",
                                   std::to_string(std::max(n, 1)),
                                   "--renderer-memory",
                                   "64",
                                   "--memory-budget",
                                   std::to_string(std::max(n, 1) * 64)};
  if (hidden) args.push_back("--hidden");
  return args;
}

// The steady state of a running scale broker: pings, CPU and RSS over the window.
struct Steady {
  std::vector<int64_t> pings;
  double cpu_percent = 0;
  uint64_t rss_bytes = 0;
  int unresponsive = 0;
};

Result<Steady> MeasureSteady(BrokerChild& b, int ping_id, int64_t window_ns) {
  auto before = ReadProcStats(b.pid());
  if (!before) return std::unexpected(before.error());
  int unresponsive_before = b.unresponsive();
  int64_t t0 = MonotonicNs();
  auto pings =
      PingWhile(b, ping_id, kSteadyPingGapNs, [&] { return MonotonicNs() - t0 >= window_ns; });
  if (!pings) return std::unexpected(pings.error());
  auto after = ReadProcStats(b.pid());
  if (!after) return std::unexpected(after.error());
  double elapsed = static_cast<double>(MonotonicNs() - t0);
  Steady s;
  s.pings = std::move(*pings);
  s.cpu_percent = 100.0 * static_cast<double>(after->cpu_ns - before->cpu_ns) / elapsed;
  s.rss_bytes = after->rss_bytes;
  s.unresponsive = b.unresponsive() - unresponsive_before;
  return s;
}

}  // namespace

Result<Measurement> ScaleRssFloor(const BenchConfig& config) {
  auto b = BrokerChild::Start(config, ScaleArgs(0, /*hidden=*/true));
  if (!b) return std::unexpected(b.error());
  if (auto r = b->ctl().Call("stats"); !r) return std::unexpected(r.error());
  auto stats = ReadProcStats(b->pid());
  if (!stats) return std::unexpected(stats.error());
  if (auto s = b->Shutdown(); !s) return std::unexpected(s.error());
  return Value(Mib(static_cast<double>(stats->rss_bytes)),
               "the resident memory of an sbx-broker with no renderer, its control socket open");
}

// Over 80 lines: one broker's life in the order its figures are taken (while they start, steady
// state, list, memory, shutdown), then each figure's note; every phase reads what the one before
// left, so split up they would pass most of this state around.
Result<ScaleResult> Scale(const BenchConfig& config) {
  const int n = config.scale_renderers;
  const int visible = std::min(config.scale_visible, n);
  const int64_t window_ns = int64_t{config.scale_seconds} * kNsPerS;
  auto started = BrokerChild::Start(config, ScaleArgs(n, /*hidden=*/true));
  if (!started) return std::unexpected(started.error());
  BrokerChild& b = *started;
  if (auto r = WaitForReady(b, 1); !r) return std::unexpected(r.error());
  // While they start: ping renderer 1 back to back, and make the first K visible as they come.
  int made_visible = 0;
  std::vector<int64_t> spawning;
  while (b.ready() < n) {
    if (MonotonicNs() - b.start_ns() > kAllRunningTimeoutNs) {
      return MakeError(Errc::kTimeout, std::to_string(b.ready()) + " of " + std::to_string(n) +
                                           " renderers running after 120 s");
    }
    auto rtt = PingOnce(b, 1);
    if (!rtt) return std::unexpected(rtt.error());
    spawning.push_back(*rtt);
    while (made_visible < visible && made_visible < b.ready()) {
      if (auto r = MakeVisible(b, ++made_visible); !r) return std::unexpected(r.error());
    }
  }
  const int64_t all_running_ns = b.last_ready_ns() - b.start_ns();
  while (made_visible < visible) {
    if (auto r = MakeVisible(b, ++made_visible); !r) return std::unexpected(r.error());
  }
  int unresponsive_spawning = b.unresponsive();
  auto steady = MeasureSteady(b, 1, window_ns);
  if (!steady) return std::unexpected(steady.error());
  auto pids = RendererPids(b);
  if (!pids) return std::unexpected(pids.error());
  auto lists = TimeList(b);
  if (!lists) return std::unexpected(lists.error());
  std::vector<int64_t> pss;
  size_t step = std::max<size_t>(1, pids->size() / kPssSample);
  for (size_t i = 0; i < pids->size(); i += step) {
    auto s = ReadProcStats((*pids)[i]);
    if (s && s->pss_bytes) pss.push_back(static_cast<int64_t>(*s->pss_bytes));
  }
  auto shutdown = b.Shutdown();
  if (!shutdown) return std::unexpected(shutdown.error());

  std::string who = std::to_string(n) + " renderers, " + std::to_string(visible) +
                    " visible at 30 fps and the rest hidden";
  ScaleResult out;
  out.spawn_each =
      Value(static_cast<double>(all_running_ns) / 1000.0 / n,
            "all " + std::to_string(n) + " running " +
                Fixed(static_cast<double>(all_running_ns) / kNsPerS, 2) +
                " s after sbx-broker --renderers " + std::to_string(n) +
                " was started (broker start-up included), divided by " + std::to_string(n));
  out.ping_spawning = Measurement{Summarize(std::move(spawning)),
                                  "`ping 1` through the control socket, back to back, while " +
                                      std::to_string(n) + " renderers started"};
  out.ping_steady =
      Measurement{Summarize(std::move(steady->pings)),
                  "`ping 1` through the control socket every 20 ms for " +
                      std::to_string(config.scale_seconds) + " s once all ran; " + who};
  out.list = Measurement{Summarize(std::move(*lists)),
                         "`list` through the control socket, 5 times once all ran (each renderer's "
                         "row, counters and sandbox report); " +
                             who};
  out.broker_cpu = Value(steady->cpu_percent, "the broker's user + system time over the " +
                                                  std::to_string(config.scale_seconds) +
                                                  " s window, in percent of one CPU; " + who);
  out.broker_rss = Value(Mib(static_cast<double>(steady->rss_bytes)),
                         "the broker's resident memory at the end of "
                         "the window; " +
                             who);
  const size_t pss_count = pss.size();
  std::vector<std::string> pss_warnings;
  if (pss.empty()) pss_warnings.push_back("no renderer's smaps_rollup was readable");
  out.pss_each = Value(pss.empty() ? 0 : Mib(SummarizeSamples(std::move(pss)).median_ns),
                       "median PSS of " + std::to_string(pss_count) +
                           " renderers (smaps_rollup), the frame buffers they share with the "
                           "broker counted half; their namespace inits not included",
                       std::move(pss_warnings));
  out.unresponsive = Value(steady->unresponsive + unresponsive_spawning,
                           "`unresponsive` events while they started and over the " +
                               std::to_string(config.scale_seconds) + " s window; " + who);
  out.shutdown = Value(static_cast<double>(*shutdown) / kNsPerMs,
                       "SIGTERM to the broker's exit, every renderer closed and reaped");
  return out;
}

Result<Measurement> ScalePingVisible(const BenchConfig& config) {
  // Never more than the scale run itself: a quick run with --scale 20 stays quick.
  const int n = std::min(config.scale_all_visible, config.scale_renderers);
  auto started = BrokerChild::Start(config, ScaleArgs(n, /*hidden=*/false));
  if (!started) return std::unexpected(started.error());
  if (auto r = WaitForReady(*started, n); !r) return std::unexpected(r.error());
  auto steady = MeasureSteady(*started, 1, int64_t{std::min(config.scale_seconds, 10)} * kNsPerS);
  if (!steady) return std::unexpected(steady.error());
  if (auto s = started->Shutdown(); !s) return std::unexpected(s.error());
  return Measurement{Summarize(std::move(steady->pings)),
                     "`ping 1` through the control socket every 20 ms, " + std::to_string(n) +
                         " renderers all drawing at 30 fps; the broker at " +
                         Fixed(steady->cpu_percent, 0) + "% of one CPU"};
}

namespace {

// ping_under_load: renderers 1 to kSpinners are told to hang (their main thread spins, as a
// runaway script does) and the one after them is pinged.
constexpr int kSpinners = 16;
// Pings are spaced so that the client does not become the load it measures, and often enough
// for a p99 in a window of a second or two.
constexpr int64_t kLoadPingGapNs = 5 * kNsPerMs;

// The CPU time the given processes have used so far, summed (a process gone counts nothing).
uint64_t CpuNs(const std::vector<pid_t>& pids) {
  uint64_t sum = 0;
  for (pid_t pid : pids) {
    if (auto s = ReadProcStats(pid)) sum += s->cpu_ns;
  }
  return sum;
}

// What holds each renderer back, from the first row of `list`: its cgroup's CPU bound, or none.
Result<bool> RenderersHaveCgroups(BrokerChild& b) {
  auto r = b.ctl().Call("list");
  if (!r) return std::unexpected(r.error());
  auto list = nlohmann::json::parse(r->first, nullptr, false);
  if (list.is_discarded() || !list.contains("renderers") || list["renderers"].empty()) {
    return MakeError(Errc::kState, "list: " + r->first.substr(0, 200));
  }
  const auto& cgroup = list["renderers"][0]["cgroup"];
  return cgroup.is_object() && cgroup.contains("path");
}

}  // namespace

Result<PingLoadResult> PingUnderLoad(const BenchConfig& config) {
  const int64_t window_ns = Count(config, 1500, 300) * kNsPerMs;
  const int pinged = kSpinners + 1;
  auto started = BrokerChild::Start(config, ScaleArgs(pinged, /*hidden=*/false));
  if (!started) return std::unexpected(started.error());
  BrokerChild& b = *started;
  if (auto r = WaitForReady(b, pinged); !r) return std::unexpected(r.error());
  auto cgroups = RenderersHaveCgroups(b);
  if (!cgroups) return std::unexpected(cgroups.error());
  auto pids = RendererPids(b);
  if (!pids) return std::unexpected(pids.error());
  if (pids->size() != static_cast<size_t>(pinged)) {
    return MakeError(Errc::kState, std::to_string(pids->size()) + " renderers listed, not " +
                                       std::to_string(pinged));
  }
  pids->pop_back();  // the pinged one; `list` is in id order
  auto idle = PingWhile(b, pinged, kLoadPingGapNs, [t0 = MonotonicNs(), window_ns] {
    return MonotonicNs() - t0 >= window_ns;
  });
  if (!idle) return std::unexpected(idle.error());
  for (int id = 1; id <= kSpinners; ++id) {
    auto r = b.ctl().Call("hang " + std::to_string(id));
    if (!r) return std::unexpected(r.error());
    if (r->first.find("\"error\"") != std::string::npos) {
      return MakeError(Errc::kState, "hang " + std::to_string(id) + ": " + r->first);
    }
  }
  const uint64_t spin_before = CpuNs(*pids);
  const int64_t t0 = MonotonicNs();
  auto loaded = PingWhile(b, pinged, kLoadPingGapNs,
                          [t0, window_ns] { return MonotonicNs() - t0 >= window_ns; });
  if (!loaded) return std::unexpected(loaded.error());
  const double spin_cpus =
      static_cast<double>(CpuNs(*pids) - spin_before) / static_cast<double>(MonotonicNs() - t0);
  if (auto s = b.Shutdown(); !s) return std::unexpected(s.error());

  const std::string how = "`ping " + std::to_string(pinged) +
                          "` through the control socket every 5 ms for " +
                          Fixed(static_cast<double>(window_ns) / kNsPerS, 1) + " s, " +
                          std::to_string(pinged) + " renderers at 30 fps";
  const std::string bound =
      *cgroups ? "each spinner bound by its cgroup to 50% of a CPU"
               : "no cgroup per renderer, so nothing but the scheduler's fair share holds the "
                 "spinners back";
  PingLoadResult out;
  out.idle = Measurement{Summarize(std::move(*idle)), how +
                                                          ", none of them hung; the same "
                                                          "broker right before ping_under_load"};
  out.loaded = Measurement{
      Summarize(std::move(*loaded)),
      how + ", " + std::to_string(kSpinners) + " of them hung (`hang ID`: a thread spinning); " +
          bound + "; the spinners used " + Fixed(spin_cpus, 2) + " CPUs together meanwhile"};
  return out;
}

}  // namespace sbx::bench
