#include "ui/window_options.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include "ipc/codec.h"

namespace sbx::ui {

namespace {

bool ParseSize(std::string_view v, WindowOptions& w) {
  auto x = v.find('x');
  if (x == std::string_view::npos) return false;
  auto width = ParseIntOption(v.substr(0, x), 320, 10000);
  auto height = ParseIntOption(v.substr(x + 1), 240, 10000);
  if (!width || !height) return false;
  w.width = *width;
  w.height = *height;
  return true;
}

bool ParseSeconds(std::string_view v, double* out) {
  double s = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
  if (ec != std::errc() || p != v.data() + v.size() || !(s > 0) || s > 3600) return false;
  *out = s;
  return true;
}

}  // namespace

// The broker's parser reads every option; the window only adds its own to its table.
Result<WindowOptions> ParseWindowCommandLine(const std::vector<std::string>& args) {
  WindowOptions w;
  const ExtraOption window_options[] = {
      {"--spawn", true,
       [&](std::string_view v) {
         if (!IsValidUrl(v)) return false;
         w.spawn.emplace_back(v);
         return true;
       }},
      {"--stats", false,
       [&](std::string_view) {
         w.stats = true;
         return true;
       }},
      {"--screenshot", true,
       [&](std::string_view v) {
         w.screenshot = std::string(v);
         return !v.empty();
       }},
      {"--screenshot-of", true,
       [&](std::string_view v) {
         w.screenshot_of = std::string(v);
         return v == "ipc" || v == "task-manager";
       }},
      {"--screenshot-after-ms", true,
       [&](std::string_view v) {
         auto ms = ParseIntOption(v, 0, 600'000);
         if (ms) w.screenshot_after_ms = *ms;
         return ms.has_value();
       }},
      {"--measure-latency", true,
       [&](std::string_view v) { return ParseSeconds(v, &w.measure_latency_s); }},
      {"--size", true, [&](std::string_view v) { return ParseSize(v, w); }},
  };
  std::vector<const char*> argv;
  for (const auto& s : args) argv.push_back(s.c_str());
  auto cl = ParseCommandLine(static_cast<int>(argv.size()), argv.data(), window_options);
  if (!cl) return std::unexpected(cl.error());
  w.cl = std::move(*cl);
  if (!w.cl.renderers_given && w.spawn.empty()) w.cl.broker.renderers = 1;
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
         "  --screenshot-of PANE       save only that pane: ipc or task-manager\n"
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
