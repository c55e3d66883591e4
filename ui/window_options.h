// The window's command line: every sbx-broker option plus a few that only a window has, all
// read by sbx::ParseCommandLine (the window's own as ExtraOptions), so scripts drive both the
// same way. Qt-free, so main() can
// check it before a QApplication exists.
#pragma once

#include <string>
#include <vector>

#include "broker/cli.h"
#include "ipc/error.h"

namespace sbx::ui {

struct WindowOptions {
  CommandLine cl;
  std::vector<std::string> spawn;  // --spawn URL (repeatable): more renderers at start;
                                   // without --renderers or --spawn the window opens one
  bool stats = false;              // --stats: the event-loop latency overlay
  std::string screenshot;          // --screenshot PATH: save the window, then close it
  int screenshot_after_ms = 3000;
  // --screenshot-of NAME: save only that pane (`ipc`, `task-manager`), brought to the front.
  std::string screenshot_of;
  double measure_latency_s = 0;  // --measure-latency S: print p50/p99 lateness, then close
  int width = 0;                 // --size WxH
  int height = 0;
};

// args[0] is the program name; Qt's own arguments must already be removed (pass
// QCoreApplication::arguments()).
Result<WindowOptions> ParseWindowCommandLine(const std::vector<std::string>& args);
std::string WindowHelp();

// Whether Qt has a platform to open a window on: DISPLAY, WAYLAND_DISPLAY, QT_QPA_PLATFORM or
// a -platform argument. Without one Qt would abort; main() prints NoDisplayMessage() instead.
bool HasDisplay(int argc, const char* const* argv);
std::string NoDisplayMessage();

}  // namespace sbx::ui
