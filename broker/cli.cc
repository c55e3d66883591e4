#include "broker/cli.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>
#include <string_view>

#include "broker/tcp_listener.h"
#include "ipc/codec.h"

namespace sbx {

namespace {

// One argument split in the "--opt=VALUE" form: name "--opt", inline value "VALUE". Anything
// else (including "--opt" followed by a separate VALUE) has no inline value.
struct OptionArg {
  std::string_view name;
  std::optional<std::string_view> inline_value;
};

OptionArg SplitOption(std::string_view arg) {
  if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  }
  return {arg, std::nullopt};
}

std::unexpected<Error> OptionNeedsValue(std::string_view name) {
  return MakeError(Errc::kInvalidArgument, std::string(name) + " needs a value");
}

std::unexpected<Error> BadOptionValue(std::string_view name, std::string_view value) {
  return MakeError(Errc::kInvalidArgument,
                   "bad value for " + std::string(name) + ": " + std::string(value));
}

std::unexpected<Error> TakesNoValue(std::string_view name) {
  return MakeError(Errc::kInvalidArgument, std::string(name) + " takes no value");
}

// A front end's own option, its value read as the shared ones' are. false: no such option.
Result<bool> ApplyExtraOption(std::span<const ExtraOption> extra, const OptionArg& arg,
                              const std::function<Result<std::string_view>()>& value) {
  auto it = std::find_if(extra.begin(), extra.end(),
                         [&](const ExtraOption& o) { return o.name == arg.name; });
  if (it == extra.end()) return false;
  std::string_view v;
  if (it->takes_value) {
    auto got = value();
    if (!got) return std::unexpected(got.error());
    v = *got;
  } else if (arg.inline_value) {
    return TakesNoValue(arg.name);
  }
  if (!it->apply(v)) return BadOptionValue(arg.name, v);
  return true;
}

}  // namespace

std::optional<int> ParseIntOption(std::string_view s, int min, int max) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return v;
}

const char* CommandLineHelp() {
  return "  --renderers N              renderers to start with (default 0 for sbx-broker); their\n"
         "                             slots exist at once and the loop launches them in turn\n"
         "  --max-renderers N          live renderers at most; past it spawn is refused (default:\n"
         "                             what the memory budget or the broker's cgroup allows at\n"
         "                             frame buffers + 4 MiB each, half of RLIMIT_NPROC at 4\n"
         "                             tasks each, and RLIMIT_NOFILE less 256 at 10 descriptors\n"
         "                             each, at most 1000)\n"
         "  --page URL                 page for new renderers (default sbx://plasma)\n"
         "  --control PATH             control socket (default $XDG_RUNTIME_DIR/sbx/control,\n"
         "                             else /tmp/sbx-UID/control)\n"
         "  --listen ADDRESS:PORT      also serve the control protocol over TCP, for telnet;\n"
         "                             loopback only (127.0.0.1:PORT, [::1]:PORT)\n"
         "  --json                     one JSON object per event on stdout\n"
         "  --hang-timeout MS          no heartbeat for MS ms means unresponsive (default 2000)\n"
         "  --kill-hung                kill unresponsive renderers (status hung) and restart\n"
         "  --no-restart               leave dead renderers dead\n"
         "  --no-sandbox               run renderers with no sandbox at all (warns loudly)\n"
         "  --no-cgroup                no cgroup per renderer: memory bounded per process only\n"
         "                             (to measure what a cgroup costs)\n"
         "  --no-spare                 no renderer started ahead of need (by default one spare\n"
         "                             waits, sandboxed, for the next spawn or restart; never\n"
         "                             with --renderer-path or --renderer-cmd-prefix)\n"
         "  --no-zygote                the broker forks each sandboxed renderer itself, not the\n"
         "                             zygote (a small process started once for that)\n"
         "  --no-inspector             no per-channel IPC counters or trace (to measure their "
         "cost)\n"
         "  --heartbeat-pipe           heartbeats over the control pipe, not a message queue:\n"
         "                             the fallback used when no queue can be created\n"
         "  --hidden                   start every renderer hidden: no frames, a heartbeat a\n"
         "                             second, a smaller CPU share (visibility ID visible)\n"
         "  --fps N                    frames per second (1-240, default 30)\n"
         "  --renderer-path PATH       another renderer binary speaking docs/PROTOCOL.md\n"
         "  --renderer-cmd-prefix CMD  run renderers under a wrapper, e.g. 'strace -f -o FILE'\n"
         "  --renderer-memory MIB      each renderer's cgroup memory limit, no swap on top\n"
         "                             (16-65536, default 256: below its 1 GiB address space)\n"
         "  --renderer-cpu PERCENT     each renderer's CPU bound, in percent of one CPU\n"
         "                             (1-6400, default 50)\n"
         "  --memory-budget MIB        renderers' memory limits summed may not exceed it; a\n"
         "                             spawn past it is refused (default half of RAM)\n"
         "  --help                     this text\n";
}

// One branch per shared option, each with the check its value needs: longer than most
// functions here, but read top to bottom it is the list --help prints.
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv,
                                     std::span<const ExtraOption> extra) {
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    auto [name, inline_value] = SplitOption(arg);
    auto value = [&]() -> Result<std::string_view> {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) return OptionNeedsValue(name);
      return std::string_view(argv[++i]);
    };
    auto bad = [&](std::string_view v) { return BadOptionValue(name, v); };
    auto flag = [&]() -> Result<void> {
      if (inline_value) return TakesNoValue(name);
      return {};
    };
    if (name == "--help" || name == "-h") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.help = true;
    } else if (name == "--json") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.json = true;
    } else if (name == "--kill-hung") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.kill_hung = true;
    } else if (name == "--no-sandbox") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.sandbox = false;
    } else if (name == "--no-cgroup") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.cgroups = false;
    } else if (name == "--no-zygote") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.zygote = false;
    } else if (name == "--no-spare") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.spare = false;
    } else if (name == "--no-inspector") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.inspector = false;
    } else if (name == "--heartbeat-pipe") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.force_queue_fallback = true;
    } else if (name == "--hidden") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.start_hidden = true;
    } else if (name == "--no-restart") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.restart = false;
    } else if (name == "--renderers") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseIntOption(*v, 0, kMaxRenderersOption);
      if (!n) return bad(*v);
      cl.broker.renderers = *n;
      cl.renderers_given = true;
    } else if (name == "--max-renderers") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseIntOption(*v, 1, kMaxRenderersOption);
      if (!n) return bad(*v);
      cl.broker.max_renderers = *n;
    } else if (name == "--hang-timeout") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseIntOption(*v, 10, 3'600'000);
      if (!n) return bad(*v);
      cl.broker.hang_timeout_ms = *n;
    } else if (name == "--fps") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseIntOption(*v, protocol::kMinFps, protocol::kMaxFps);
      if (!n) return bad(*v);
      cl.broker.fps = static_cast<uint32_t>(*n);
    } else if (name == "--renderer-memory" || name == "--memory-budget") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = name == "--renderer-memory" ? ParseIntOption(*v, 16, 65536)
                                           : ParseIntOption(*v, 16, 1 << 24);
      if (!n) return bad(*v);
      uint64_t bytes = static_cast<uint64_t>(*n) << 20;
      (name == "--renderer-memory" ? cl.broker.cgroup.memory_bytes : cl.broker.memory_budget) =
          bytes;
    } else if (name == "--renderer-cpu") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseIntOption(*v, 1, 6400);
      if (!n) return bad(*v);
      cl.broker.cgroup.cpu_percent = *n;
    } else if (name == "--page") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (!IsValidUrl(*v)) return bad(*v);
      cl.broker.page = std::string(*v);
    } else if (name == "--control") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (v->empty()) return bad(*v);
      cl.control_path = std::string(*v);
    } else if (name == "--listen") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (auto a = ParseListenAddress(*v); !a) return std::unexpected(a.error());
      cl.listen = std::string(*v);
    } else if (name == "--renderer-path") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (v->empty()) return bad(*v);
      cl.broker.renderer_path = std::string(*v);
    } else if (name == "--renderer-cmd-prefix") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      // Split on white space, as Chrome does for its --renderer-cmd-prefix.
      std::istringstream words{std::string(*v)};
      cl.broker.cmd_prefix.clear();
      for (std::string w; words >> w;) cl.broker.cmd_prefix.push_back(w);
    } else {
      auto known = ApplyExtraOption(extra, {name, inline_value}, value);
      if (!known) return std::unexpected(known.error());
      if (!*known) return MakeError(Errc::kInvalidArgument, "unknown option: " + std::string(arg));
    }
  }
  // Another renderer, or a wrapper around this one, may not know the spare form (--spare and the
  // assign message): a spare would be launched, fail and be replaced over and over.
  if (!cl.broker.renderer_path.empty() || !cl.broker.cmd_prefix.empty()) cl.broker.spare = false;
  return cl;
}

}  // namespace sbx
