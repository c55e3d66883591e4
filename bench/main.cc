// sbx-bench: every performance figure of sbx, each next to the raw-syscall baseline under it,
// measured in one run on this machine. Targets are reported; only --check turns a missed one
// into a failing exit status. Exit status: 0, 1 when a figure could not be measured, 2 for bad
// usage, 3 when --check is given and a figure missed its target.
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/figures.h"
#include "bench/lecture.h"
#include "ipc/posix.h"

namespace sbx::bench {
namespace {

enum class Check {
  kNone,           // a baseline, or a figure reported without a target
  kRatioAtMost,    // median / baseline median <= limit
  kMedianBelowUs,  // median < limit, in the figure's unit (microseconds unless it says)
  kP99Below,       // p99 < limit, in the figure's unit
  kMedianAtMost,   // median <= limit, in the figure's unit
};

struct FigureDef {
  std::string_view name;
  // Null for the figures that come out of a shared run; the part pointer picks which.
  Result<Measurement> (*measure)(const BenchConfig&);
  Measurement KillCycleResult::*kill_cycle_part;
  Measurement RoundTripResult::*round_trip_part;
  Measurement HeartbeatResult::*heartbeat_part;
  std::string_view baseline;  // empty: none
  // A second floor measured under the figure's own conditions; its ratio goes in the notes.
  std::string_view context;
  std::string_view target;
  Check check;
  double limit;
  Measurement ScaleResult::*scale_part = nullptr;  // from the one shared scale run
  std::string_view unit = "us";
  // Measured only when asked (--scale N, or --only scale): a run of hundreds of renderers
  // takes a minute and the machine's every core.
  bool scale = false;
  Measurement PingLoadResult::*ping_load_part = nullptr;  // from the one shared run under load
};

constexpr std::string_view kBaseline = "baseline";
// Extra floors and splits that explain a figure; they have no target of their own.
constexpr std::string_view kContext = "context";

// Run order: each baseline right before the figures that compare against it, so both see the
// machine in the same state.
constexpr FigureDef kFigures[] = {
    {"pipe_rtt", nullptr, nullptr, &RoundTripResult::pipe_rtt, nullptr, "", "", kBaseline,
     Check::kNone, 0},
    {"control_rtt", nullptr, nullptr, &RoundTripResult::control_rtt, nullptr, "pipe_rtt", "",
     "ratio <= 1.5", Check::kRatioAtMost, 1.5},
    {"control_rtt_no_inspector", nullptr, nullptr, &RoundTripResult::control_rtt_no_inspector,
     nullptr, "pipe_rtt", "", kContext, Check::kNone, 0},
    {"control_rtt_path", nullptr, nullptr, &RoundTripResult::control_rtt_path, nullptr, "pipe_rtt",
     "", "ratio <= 1.5", Check::kRatioAtMost, 1.5},
    {"inspector_rtt_cost", nullptr, nullptr, &RoundTripResult::inspector_cost, nullptr, "", "",
     "median <= 1.10", Check::kMedianAtMost, 1.10, nullptr, "x"},
    {"mq_rtt_half", &MqRttHalf, nullptr, nullptr, nullptr, "", "", kContext, Check::kNone, 0},
    {"mq_oneway_idle", nullptr, nullptr, nullptr, &HeartbeatResult::mq_oneway_idle, "", "",
     kBaseline, Check::kNone, 0},
    {"heartbeat_latency", nullptr, nullptr, nullptr, &HeartbeatResult::heartbeat_latency,
     "mq_oneway_idle", "mq_rtt_half", "ratio <= 1.5", Check::kRatioAtMost, 1.5},
    {"heartbeat_no_inspector", nullptr, nullptr, nullptr, &HeartbeatResult::heartbeat_no_inspector,
     "mq_oneway_idle", "", kContext, Check::kNone, 0},
    {"inspector_heartbeat_cost", nullptr, nullptr, nullptr, &HeartbeatResult::inspector_cost, "",
     "", "median <= 1.10", Check::kMedianAtMost, 1.10, nullptr, "x"},
    {"pidfd_wakeup", &PidfdWakeup, nullptr, nullptr, nullptr, "", "", kContext, Check::kNone, 0},
    // The same kill and pidfd poll, on a real renderer: the floor death_detection stands on.
    {"renderer_exit", nullptr, &KillCycleResult::renderer_exit, nullptr, nullptr, "",
     "pidfd_wakeup", kBaseline, Check::kNone, 0},
    {"death_detection", nullptr, &KillCycleResult::death_detection, nullptr, nullptr,
     "renderer_exit", "pidfd_wakeup", "ratio <= 1.5", Check::kRatioAtMost, 1.5},
    {"exit_handling", nullptr, &KillCycleResult::exit_handling, nullptr, nullptr, "", "", kContext,
     Check::kNone, 0},
    {"recovery", nullptr, &KillCycleResult::recovery, nullptr, nullptr, "", "", "median < 2 ms",
     Check::kMedianBelowUs, 2'000},
    {"recovery_no_cgroup", &RecoveryNoCgroup, nullptr, nullptr, nullptr, "", "", kContext,
     Check::kNone, 0},
    {"recovery_no_spare", &RecoveryNoSpare, nullptr, nullptr, nullptr, "", "", kContext,
     Check::kNone, 0},
    {"fork_exec", &ForkExecTrue, nullptr, nullptr, nullptr, "", "", kBaseline, Check::kNone, 0},
    {"fork_exec_renderer", &ForkExecRenderer, nullptr, nullptr, nullptr, "", "", kBaseline,
     Check::kNone, 0},
    {"spawn_to_first_frame", &SpawnToFirstFrame, nullptr, nullptr, nullptr, "fork_exec",
     "fork_exec_renderer", "median < 1 ms", Check::kMedianBelowUs, 1'000},
    {"spawn_no_cgroup", &SpawnNoCgroup, nullptr, nullptr, nullptr, "fork_exec", "", kContext,
     Check::kNone, 0},
    {"spawn_no_spare", &SpawnNoSpare, nullptr, nullptr, nullptr, "fork_exec", "fork_exec_renderer",
     kContext, Check::kNone, 0},
    {"spawn_no_zygote", &SpawnNoZygote, nullptr, nullptr, nullptr, "fork_exec", "", kContext,
     Check::kNone, 0},
    {"ping_no_load", nullptr, nullptr, nullptr, nullptr, "", "", kBaseline, Check::kNone, 0,
     nullptr, "us", false, &PingLoadResult::idle},
    {"ping_under_load", nullptr, nullptr, nullptr, nullptr, "ping_no_load", "", "p99 < 10 ms",
     Check::kP99Below, 10'000, nullptr, "us", false, &PingLoadResult::loaded},
    {"memcpy_frame", &MemcpyFrame, nullptr, nullptr, nullptr, "", "", kBaseline, Check::kNone, 0},
    {"frame_publish", &FramePublish, nullptr, nullptr, nullptr, "memcpy_frame", "",
     "none (see its note)", Check::kNone, 0},
    // The scale run's floors are the baselines above (pipe_rtt, fork_exec_renderer) and this.
    {"scale_rss_floor", &ScaleRssFloor, nullptr, nullptr, nullptr, "", "", kBaseline, Check::kNone,
     0, nullptr, "MiB", true},
    {"scale_spawn_each", nullptr, nullptr, nullptr, nullptr, "fork_exec_renderer", "",
     "median < 10 ms", Check::kMedianBelowUs, 10'000, &ScaleResult::spawn_each, "us", true},
    {"scale_ping_spawning", nullptr, nullptr, nullptr, nullptr, "pipe_rtt", "", "p99 < 50 ms",
     Check::kP99Below, 50'000, &ScaleResult::ping_spawning, "us", true},
    {"scale_ping_steady", nullptr, nullptr, nullptr, nullptr, "pipe_rtt", "", "p99 < 10 ms",
     Check::kP99Below, 10'000, &ScaleResult::ping_steady, "us", true},
    {"scale_list", nullptr, nullptr, nullptr, nullptr, "", "", kContext, Check::kNone, 0,
     &ScaleResult::list, "us", true},
    {"scale_unresponsive", nullptr, nullptr, nullptr, nullptr, "", "", "= 0", Check::kMedianAtMost,
     0, &ScaleResult::unresponsive, "evts", true},
    {"scale_broker_cpu", nullptr, nullptr, nullptr, nullptr, "", "", "none (see its note)",
     Check::kNone, 0, &ScaleResult::broker_cpu, "%cpu", true},
    {"scale_broker_rss", nullptr, nullptr, nullptr, nullptr, "scale_rss_floor", "",
     "median < 64 MiB", Check::kMedianBelowUs, 64, &ScaleResult::broker_rss, "MiB", true},
    {"scale_pss_each", nullptr, nullptr, nullptr, nullptr, "", "", "median <= 2 MiB",
     Check::kMedianAtMost, 2, &ScaleResult::pss_each, "MiB", true},
    {"scale_shutdown", nullptr, nullptr, nullptr, nullptr, "", "", "median < 2000 ms",
     Check::kMedianBelowUs, 2000, &ScaleResult::shutdown, "ms", true},
    {"scale_ping_64_visible", &ScalePingVisible, nullptr, nullptr, nullptr, "pipe_rtt", "",
     "p99 < 10 ms", Check::kP99Below, 10'000, nullptr, "us", true},
};

// Where each target comes from, for the legend under the table.
struct TargetSource {
  std::string_view figure;
  std::string_view why;
};
constexpr TargetSource kTargetSources[] = {
    {"control_rtt", "a command may cost at most half again a bare pipe round trip"},
    {"control_rtt_path",
     "... and so may the control path alone, the renderer at the broker's priority"},
    {"heartbeat_latency",
     "a heartbeat may take at most half again a bare message-queue send to a sleeping receiver"},
    {"inspector_rtt_cost",
     "the IPC inspector, on by default, adds at most 10% to control_rtt (median over median)"},
    {"inspector_heartbeat_cost", "... and at most 10% to heartbeat_latency"},
    {"death_detection",
     "the broker may take at most half again the kernel's own time to kill the renderer and "
     "report its exit"},
    {"recovery", "a killed renderer is replaced by the spare and drawing again within 2 ms"},
    {"spawn_to_first_frame",
     "a new renderer, the spare taken, sandbox and all, draws its first frame within 1 ms"},
    {"ping_under_load", "16 renderers spinning leave the control socket answering in 10 ms"},
    {"scale_spawn_each", "500 renderers all running within 5 s of the broker's start"},
    {"scale_ping_spawning", "the control socket answers within 50 ms while hundreds start"},
    {"scale_ping_steady", "... and within 10 ms once they run"},
    {"scale_unresponsive", "no renderer is ever flagged unresponsive for want of CPU"},
    {"scale_broker_rss", "the broker of 500 renderers fits in 64 MiB"},
    {"scale_pss_each", "a renderer costs no more memory than one alone did (about 2 MiB)"},
    {"scale_shutdown", "500 renderers closed and reaped within 2 s of SIGTERM"},
    {"scale_ping_64_visible", "64 renderers at 30 fps leave the control socket answering in 10 ms"},
};

constexpr char kLegend[] =
    "\nhow to read it:\n"
    "  floor    the raw system calls a figure rests on, with none of sbx's code, timed in the\n"
    "           same run under the same conditions (same CPU, same moment), so that the ratio\n"
    "           compares like with like; a row whose target says \"floor\" is one\n"
    "  ratio    the figure's median divided by its floor's median: what sbx adds on top\n"
    "  context  a second floor, or one part of a figure, measured to explain it; judged against\n"
    "           nothing (the notes give a figure's median as a multiple of it)\n"
    "  target   what the median must meet; \"met\" says whether it did (--check exits 3 if not)\n"
    "targets, set by the project's requirements for sbx:\n";

const FigureDef* FindFigure(std::string_view name) {
  for (const auto& f : kFigures) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

struct Options {
  BenchConfig config;
  bool json = false;
  bool help = false;
  bool check = false;  // a missed target makes the exit status 3
  bool lecture = false;
  bool scale = false;  // the scale figures too (--scale, or --only scale)
  bool only_scale = false;
  std::vector<const FigureDef*> only;  // empty: every figure
};

constexpr char kUsage[] =
    "usage: sbx-bench [--json] [--quick] [--only NAME[,NAME...]] [--renderer-path PATH]\n"
    "                 [--no-sandbox] [--no-inspector] [--no-cgroup]\n"
    "  --json                one JSON object per line per figure\n"
    "  --quick               fewer samples: a smoke test of a few seconds\n"
    "  --only NAME[,NAME...] measure these figures (and, unprinted, the baselines they need)\n"
    "  --renderer-path PATH  sbx-renderer to launch (default: next to sbx-bench)\n"
    "  --no-sandbox          renderers without the sandbox, to measure what it costs\n"
    "  --no-inspector        no per-mechanism IPC counters or ring in any broker (every run\n"
    "                        measures control_rtt and heartbeat_latency without them too)\n"
    "  --no-cgroup           no cgroup per renderer, for every figure (the *_no_cgroup figures\n"
    "                        measure without one in every run)\n"
    "  --check               exit 3 when a figure misses its target (1 when one cannot be\n"
    "                        measured, which is checked always)\n"
    "  --lecture             threads vs processes and every IPC approach, as a lecture's table\n"
    "  --scale N             also the scale figures, with N renderers (default 500; they run\n"
    "                        only when asked: --scale, or --only scale for them alone)\n"
    "  --scale-visible K     of which K visible (default 16)\n"
    "  --scale-seconds S     the steady-state window (default 30)\n"
    "figures (scale: every scale_ figure):";

void PrintUsage(FILE* out) {
  std::fputs(kUsage, out);
  for (const auto& f : kFigures) {
    std::fprintf(out, " %.*s", static_cast<int>(f.name.size()), f.name.data());
  }
  std::fputc('\n', out);
}

// A numeric option `key` in [min, max]: nullopt when arg is not that option.
template <typename Value>
std::optional<Result<int>> ScaleNumber(std::string_view arg, std::string_view key, int min, int max,
                                       Value& value) {
  if (arg != key && !(arg.starts_with(key) && arg.size() > key.size() && arg[key.size()] == '=')) {
    return std::nullopt;
  }
  auto v = value(key);
  int n = 0;
  auto parsed = v ? std::from_chars(v->data(), v->data() + v->size(), n) : std::from_chars_result{};
  if (!v || parsed.ec != std::errc() || parsed.ptr != v->data() + v->size() || n < min || n > max) {
    return MakeError(Errc::kInvalidArgument, std::string(key) + " needs a number from " +
                                                 std::to_string(min) + " to " +
                                                 std::to_string(max));
  }
  return n;
}

// Accepts "--opt VALUE" and "--opt=VALUE".
Result<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    auto value = [&](std::string_view key) -> std::optional<std::string> {
      if (arg == key) {
        if (i + 1 >= argc) return std::nullopt;
        return std::string(argv[++i]);
      }
      if (arg.starts_with(key) && arg.size() > key.size() && arg[key.size()] == '=') {
        return std::string(arg.substr(key.size() + 1));
      }
      return std::nullopt;
    };
    if (arg == "--json") {
      o.json = true;
    } else if (arg == "--quick") {
      o.config.quick = true;
    } else if (arg == "--no-sandbox") {
      o.config.sandbox = false;
    } else if (arg == "--no-inspector") {
      o.config.inspector = false;
    } else if (arg == "--no-cgroup") {
      o.config.cgroups = false;
    } else if (arg == "--check") {
      o.check = true;
    } else if (arg == "--lecture") {
      o.lecture = true;
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--only" || arg.starts_with("--only=")) {
      auto v = value("--only");
      if (!v || v->empty()) return MakeError(Errc::kInvalidArgument, "--only needs a figure name");
      for (auto part : std::views::split(std::string_view(*v), ',')) {
        std::string_view name(part.begin(), part.end());
        if (name.empty()) {
          return MakeError(Errc::kInvalidArgument, "--only: an empty name in \"" + *v + "\"");
        }
        if (name == "scale") {
          o.only_scale = o.scale = true;
          continue;
        }
        const FigureDef* def = FindFigure(name);
        if (!def) return MakeError(Errc::kInvalidArgument, "unknown figure " + std::string(name));
        o.only.push_back(def);
        if (def->scale) o.scale = true;
      }
    } else if (auto n = ScaleNumber(arg, "--scale", 1, 10'000, value)) {
      if (!*n) return std::unexpected(n->error());
      o.config.scale_renderers = **n;
      o.scale = true;
    } else if (auto k = ScaleNumber(arg, "--scale-visible", 0, 10'000, value)) {
      if (!*k) return std::unexpected(k->error());
      o.config.scale_visible = **k;
    } else if (auto t = ScaleNumber(arg, "--scale-seconds", 1, 3600, value)) {
      if (!*t) return std::unexpected(t->error());
      o.config.scale_seconds = **t;
    } else if (arg == "--renderer-path" || arg.starts_with("--renderer-path=")) {
      auto v = value("--renderer-path");
      if (!v || v->empty()) {
        return MakeError(Errc::kInvalidArgument, "--renderer-path needs a path");
      }
      o.config.renderer_path = *v;
    } else {
      return MakeError(Errc::kInvalidArgument, "unknown argument " + std::string(arg));
    }
  }
  return o;
}

// The broker's own default, resolved here so the fork_exec_renderer baseline execs the very
// binary the broker launches.
Result<std::string> RendererNextToSelf() {
  auto self = SelfExePath();
  if (!self) return std::unexpected(self.error());
  return self->substr(0, self->rfind('/') + 1) + "sbx-renderer";
}

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }

// Prints the figures. JSON lines go out as each figure is measured; the table is held until the
// end, so that whatever the broker and its renderers print on stderr while being measured lands
// before it rather than among its rows. Warnings go to stderr, after the table.
class Report {
 public:
  explicit Report(bool json) : json_(json) {}

  void Header(const Options& o) {
    // Other work on the machine moves every figure; the load average says how much there was.
    double load[1] = {-1};
    if (::getloadavg(load, 1) != 1) load[0] = -1;
    long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && load[0] > static_cast<double>(cores)) {
      warnings_.push_back("the machine was busy when the run began (load average " +
                          Fixed(load[0], 2) + " on " + std::to_string(cores) +
                          " cores): every figure, floors included, is noisier than usual");
    }
    if (json_) return;
    Append("sbx-bench: %s run, %ld cores, load average %.2f, renderer %s%s\n",
           o.config.quick ? "quick" : "full", cores, load[0], o.config.renderer_path.c_str(),
           o.config.sandbox ? "" : " (--no-sandbox)");
    if (!o.config.inspector) Append("sbx-bench: the IPC inspector is off (--no-inspector)\n");
    if (!o.config.cgroups) Append("sbx-bench: no cgroup per renderer (--no-cgroup)\n");
    Append("%-24s %10s %10s %-4s %7s  %-18s %10s %7s  %-22s %s\n", "figure", "median", "p99",
           "unit", "samples", "floor", "floor med", "ratio", "target", "met");
  }

  // Returns whether the figure met its target; nullopt when it has none.
  std::optional<bool> Row(const FigureDef& def, const Measurement& m,
                          std::optional<double> baseline_median,
                          std::optional<double> context_median) {
    const Summary& s = m.summary;
    std::optional<double> ratio;
    if (baseline_median && *baseline_median > 0) ratio = s.median_us / *baseline_median;
    std::optional<bool> met;
    if (def.check == Check::kRatioAtMost && ratio) met = *ratio <= def.limit;
    if (def.check == Check::kMedianBelowUs) met = s.median_us < def.limit;
    if (def.check == Check::kP99Below) met = s.p99_us < def.limit;
    if (def.check == Check::kMedianAtMost) met = s.median_us <= def.limit;
    for (const auto& w : m.warnings) warnings_.push_back(std::string(def.name) + ": " + w);
    if (met && !*met) {
      warnings_.push_back(std::string(def.name) + " missed its target (" + std::string(def.target) +
                          "): median " + Fixed(s.median_us, 2) + " " + std::string(def.unit) +
                          ", p99 " + Fixed(s.p99_us, 2) + " " + std::string(def.unit) +
                          (ratio ? ", ratio " + Fixed(*ratio, 2) : std::string()));
    }
    if (json_) {
      PrintJson(def, m, baseline_median, ratio, context_median, met);
      return met;
    }
    std::string base = def.baseline.empty() ? "-" : std::string(def.baseline);
    std::string base_med = baseline_median ? Fixed(*baseline_median, 2) : "-";
    std::string ratio_s = ratio ? Fixed(*ratio, 2) : "-";
    std::string target = def.target == kBaseline ? "floor" : std::string(def.target);
    const char* met_s = !met ? "-" : *met ? "yes" : "NO";
    Append("%-24.*s %10.2f %10.2f %-4.*s %7zu  %-18s %10s %7s  %-22s %s\n",
           static_cast<int>(def.name.size()), def.name.data(), s.median_us, s.p99_us,
           static_cast<int>(def.unit.size()), def.unit.data(), s.samples, base.c_str(),
           base_med.c_str(), ratio_s.c_str(), target.c_str(), met_s);
    std::string note = m.note;
    if (context_median && *context_median > 0) {
      note += "; " + Fixed(s.median_us / *context_median, 2) + "x " + std::string(def.context);
    }
    if (!note.empty()) notes_.emplace_back(std::string(def.name), std::move(note));
    return met;
  }

  // The table, its legend and notes on stdout, then the warnings on stderr.
  void Footer(bool printed_any) {
    if (!json_ && printed_any) {
      Append("%s", kLegend);
      for (const auto& t : kTargetSources) {
        const FigureDef* def = FindFigure(t.figure);
        std::string target = def ? std::string(def->target) : "";
        Append("  %-24.*s %-15s %.*s\n", static_cast<int>(t.figure.size()), t.figure.data(),
               target.c_str(), static_cast<int>(t.why.size()), t.why.data());
      }
      if (!notes_.empty()) Append("\nnotes (what was timed, and under which conditions):\n");
      for (const auto& [name, note] : notes_) Append("  %-24s %s\n", name.c_str(), note.c_str());
    }
    std::fputs(table_.c_str(), stdout);
    std::fflush(stdout);
    for (const auto& w : warnings_) std::fprintf(stderr, "sbx-bench: warning: %s\n", w.c_str());
  }

 private:
  static std::string Fixed(double v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
  }

  [[gnu::format(printf, 2, 3)]] void Append(const char* format, ...) {
    char buf[1024];
    va_list args;
    va_start(args, format);
    int n = std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    if (n > 0) table_.append(buf, std::min(static_cast<size_t>(n), sizeof buf - 1));
  }

  void PrintJson(const FigureDef& def, const Measurement& m, std::optional<double> baseline_median,
                 std::optional<double> ratio, std::optional<double> context_median,
                 std::optional<bool> met) {
    const Summary& s = m.summary;
    nlohmann::ordered_json j;
    j["name"] = def.name;
    j["median"] = Round3(s.median_us);
    j["p99"] = Round3(s.p99_us);
    j["unit"] = def.unit;
    if (!def.baseline.empty()) {
      j["baseline"] = def.baseline;
      if (baseline_median) j["baseline_median"] = Round3(*baseline_median);
      if (ratio) j["ratio"] = Round3(*ratio);
    }
    if (context_median && *context_median > 0) {
      j["context"] = def.context;
      j["context_ratio"] = Round3(s.median_us / *context_median);
    }
    j["samples"] = s.samples;
    j["target"] = def.target;
    if (met) j["met"] = *met;
    if (!m.note.empty()) j["note"] = m.note;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }

  bool json_;
  std::string table_;
  std::vector<std::pair<std::string, std::string>> notes_;
  std::vector<std::string> warnings_;
};

class Runner {
 public:
  explicit Runner(BenchConfig config) : config_(std::move(config)) {}

  Result<Measurement> Measure(const FigureDef& def) {
    if (def.measure) return def.measure(config_);
    if (def.scale_part) {
      if (!scale_) scale_ = Scale(config_);
      if (!*scale_) return std::unexpected(scale_->error());
      return (**scale_).*def.scale_part;
    }
    if (def.ping_load_part) {
      if (!ping_load_) ping_load_ = PingUnderLoad(config_);
      if (!*ping_load_) return std::unexpected(ping_load_->error());
      return (**ping_load_).*def.ping_load_part;
    }
    if (def.heartbeat_part) {
      if (!heartbeats_) heartbeats_ = Heartbeats(config_);
      if (!*heartbeats_) return std::unexpected(heartbeats_->error());
      return (**heartbeats_).*def.heartbeat_part;
    }
    if (def.round_trip_part) {
      if (!round_trips_) round_trips_ = RoundTrips(config_);
      if (!*round_trips_) return std::unexpected(round_trips_->error());
      return (**round_trips_).*def.round_trip_part;
    }
    // Four figures come out of the same kills; run the cycle once for all of them.
    if (!kill_cycle_) kill_cycle_ = KillCycle(config_);
    if (!*kill_cycle_) return std::unexpected(kill_cycle_->error());
    return (**kill_cycle_).*def.kill_cycle_part;
  }

 private:
  BenchConfig config_;
  std::optional<Result<RoundTripResult>> round_trips_;
  std::optional<Result<HeartbeatResult>> heartbeats_;
  std::optional<Result<KillCycleResult>> kill_cycle_;
  std::optional<Result<ScaleResult>> scale_;
  std::optional<Result<PingLoadResult>> ping_load_;
};

int Main(int argc, char** argv) {
  auto options = ParseArgs(argc, argv);
  if (!options) {
    std::fprintf(stderr, "sbx-bench: %s\n", options.error().what.c_str());
    PrintUsage(stderr);
    return 2;
  }
  if (options->help) {
    PrintUsage(stdout);
    return 0;
  }
  if (options->config.renderer_path.empty()) {
    auto path = RendererNextToSelf();
    if (!path) {
      std::fprintf(stderr, "sbx-bench: %s\n", path.error().ToString().c_str());
      return 1;
    }
    options->config.renderer_path = std::move(*path);
  }
  if (::access(options->config.renderer_path.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "sbx-bench: renderer %s is not executable (--renderer-path)\n",
                 options->config.renderer_path.c_str());
    return 1;
  }

  if (options->lecture) return RunLecture(options->config, options->json);

  const auto& only = options->only;
  auto printed = [&](const FigureDef& def) {
    if (options->only_scale && def.scale) return true;
    if (options->only_scale || !only.empty()) {
      return std::find(only.begin(), only.end(), &def) != only.end();
    }
    return !def.scale || options->scale;
  };
  Report report(options->json);
  report.Header(*options);
  if (!options->json && ::isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "sbx-bench: measuring (%s%s); the table follows when all are done\n",
                 options->config.quick ? "a few seconds" : "about 40 s",
                 options->scale ? ", plus the scale run" : "");
  }
  Runner runner(options->config);
  std::map<std::string_view, double> medians;
  bool all_measured = true;
  bool all_met = true;
  bool printed_any = false;
  for (const auto& def : kFigures) {
    bool print = printed(def);
    bool needed = print || std::any_of(std::begin(kFigures), std::end(kFigures), [&](auto& f) {
                    return printed(f) && (f.baseline == def.name || f.context == def.name);
                  });
    if (!needed) continue;
    auto m = runner.Measure(def);
    if (!m) {
      std::fprintf(stderr, "sbx-bench: %.*s: %s\n", static_cast<int>(def.name.size()),
                   def.name.data(), m.error().ToString().c_str());
      all_measured = false;
      continue;
    }
    medians[def.name] = m->summary.median_us;
    if (!print) continue;
    auto median_of = [&](std::string_view name) -> std::optional<double> {
      auto it = medians.find(name);
      if (it == medians.end()) return std::nullopt;
      return it->second;
    };
    auto met = report.Row(def, *m, median_of(def.baseline), median_of(def.context));
    printed_any = true;
    if (met && !*met) all_met = false;
  }
  report.Footer(printed_any);
  if (!all_measured) return 1;
  return options->check && !all_met ? 3 : 0;
}

}  // namespace
}  // namespace sbx::bench

int main(int argc, char** argv) { return sbx::bench::Main(argc, argv); }
