#include "broker/cli.h"

#include <charconv>
#include <optional>
#include <sstream>
#include <string_view>

#include "broker/tcp_listener.h"
#include "ipc/codec.h"

namespace sbx {

namespace {

std::optional<int> ParseInt(std::string_view s, int min, int max) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return v;
}

}  // namespace

const char* CommandLineHelp() {
  return "  --renderers N              renderers to start with (default 0 for sbx-broker)\n"
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
         "  --heartbeat-pipe           heartbeats over the control pipe, not a message queue:\n"
         "                             the fallback used when no queue can be created\n"
         "  --fps N                    frames per second (1-240, default 30)\n"
         "  --renderer-path PATH       another renderer binary speaking docs/PROTOCOL.md\n"
         "  --renderer-cmd-prefix CMD  run renderers under a wrapper, e.g. 'valgrind -q'\n"
         "  --help                     this text\n";
}

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

Result<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
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
      if (inline_value)
        return MakeError(Errc::kInvalidArgument, std::string(name) + " takes no value");
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
    } else if (name == "--heartbeat-pipe") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.force_queue_fallback = true;
    } else if (name == "--no-restart") {
      if (auto f = flag(); !f) return std::unexpected(f.error());
      cl.broker.restart = false;
    } else if (name == "--renderers") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseInt(*v, 0, 1000);
      if (!n) return bad(*v);
      cl.broker.renderers = *n;
    } else if (name == "--hang-timeout") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseInt(*v, 10, 3'600'000);
      if (!n) return bad(*v);
      cl.broker.hang_timeout_ms = *n;
    } else if (name == "--fps") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto n = ParseInt(*v, protocol::kMinFps, protocol::kMaxFps);
      if (!n) return bad(*v);
      cl.broker.fps = static_cast<uint32_t>(*n);
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
      return MakeError(Errc::kInvalidArgument, "unknown option: " + std::string(arg));
    }
  }
  return cl;
}

}  // namespace sbx
