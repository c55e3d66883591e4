#include "ui/window_options.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include "ipc/codec.h"

namespace sbx::ui {

namespace {

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<WindowOptions> ParseWindowCommandLine(const std::vector<std::string>& args) {
  WindowOptions w;
  std::vector<std::string> rest;
  if (!args.empty()) rest.push_back(args[0]);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    auto [name, inline_value] = SplitOption(arg);
    auto value = [&]() -> Result<std::string_view> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) return OptionNeedsValue(name);
      return std::string_view(args[++i]);
    };
    auto bad = [&](std::string_view v) { return BadOptionValue(name, v); };
    if (name == "--spawn") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (!IsValidUrl(*v)) return bad(*v);
      w.spawn.emplace_back(*v);
    } else if (name == "--stats") {
      if (inline_value) return bad(*inline_value);
      w.stats = true;
    } else if (name == "--screenshot") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (v->empty()) return bad(*v);
      w.screenshot = std::string(*v);
    } else if (name == "--screenshot-after-ms") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (!ParseNumber(*v, &w.screenshot_after_ms) || w.screenshot_after_ms < 0 ||
          w.screenshot_after_ms > 600'000) {
        return bad(*v);
      }
    } else if (name == "--measure-latency") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (!ParseNumber(*v, &w.measure_latency_s) || !(w.measure_latency_s > 0) ||
          w.measure_latency_s > 3600) {
        return bad(*v);
      }
    } else if (name == "--size") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      auto x = v->find('x');
      if (x == std::string_view::npos || !ParseNumber(v->substr(0, x), &w.width) ||
          !ParseNumber(v->substr(x + 1), &w.height) || w.width < 320 || w.height < 240 ||
          w.width > 10000 || w.height > 10000) {
        return bad(*v);
      }
    } else {
      if (name == "--renderers") w.renderers_given = true;
      rest.emplace_back(arg);
    }
  }
  std::vector<const char*> argv;
  for (const auto& s : rest) argv.push_back(s.c_str());
  auto cl = ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  if (!cl) return std::unexpected(cl.error());
  w.cl = std::move(*cl);
  if (!w.renderers_given && w.spawn.empty()) w.cl.broker.renderers = 1;
  return w;
}

std::string WindowHelp() {
  return std::string("Options shared with sbx-broker:\n") + CommandLineHelp() +
         "Options of the window only:\n"
         "  --spawn URL                one more renderer on URL at start (repeatable); without\n"
         "                             --renderers or --spawn the window opens one renderer\n"
         "  --stats                    show the event-loop latency overlay\n"
         "  --size WxH                 window size (default 1500x950)\n"
         "  --screenshot PATH          save a PNG of the window, then close it\n"
         "  --screenshot-after-ms N    when to take it (default 3000), or at SIGUSR1 if sooner\n"
         "  --measure-latency S        measure the GUI thread's event-loop latency for S seconds\n"
         "                             once every renderer drew a frame, print p50/p99, close\n"
         "Qt's own options (-platform, -style, ...) are accepted too.\n";
}

bool HasDisplay(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a == "-platform" || a == "--platform" || a.starts_with("-platform=")) return true;
  }
  for (const char* name : {"QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && v[0] != '\0') return true;
  }
  return false;
}

std::string NoDisplayMessage() {
  return "sbx: no display to open a window on (DISPLAY, WAYLAND_DISPLAY and QT_QPA_PLATFORM are "
         "all unset).\n"
         "  Without a screen, run the headless broker instead:  sbx-broker --renderers 4\n"
         "  or run the window off screen:  QT_QPA_PLATFORM=offscreen sbx ...  (or under "
         "xvfb-run)\n";
}

}  // namespace sbx::ui
