// Shared by the window tier: a real broker with real renderers behind a real MainWindow on Qt's
// offscreen platform, waits with deadlines (QCoreApplication::processEvents, never a bare
// sleep), and a recorder of the broker's events as the window's bridge re-emits them.
#pragma once

#include <sys/types.h>

#include <QObject>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"

namespace sbx::ui {
class BrokerBridge;
class MainWindow;
}  // namespace sbx::ui

namespace sbx::ui::testing {

using namespace std::chrono_literals;

std::string BinPath(const std::string& name);

// kill(2) for a renderer's pid, refusing pid <= 1: kill(0, SIGSTOP) would stop the whole
// process group, ctest included, when a renderer has no process at that moment.
bool SignalPid(pid_t pid, int sig);

// Runs Qt's event loop (and with it the broker's) until done() or the deadline.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s);

// Options for a test broker: this build's renderer, a short hang timeout.
BrokerOptions TestOptions();

class EventRecorder : public QObject {
 public:
  explicit EventRecorder(BrokerBridge* bridge);
  const std::vector<BrokerEvent>& events() const { return events_; }
  size_t size() const { return events_.size(); }
  // The first event at index >= from that matches, waiting up to timeout for it.
  std::optional<BrokerEvent> WaitFor(const std::function<bool(const BrokerEvent&)>& match,
                                     std::chrono::milliseconds timeout = 10s, size_t from = 0);
  std::optional<BrokerEvent> WaitFor(EventType type, int id,
                                     std::chrono::milliseconds timeout = 10s, size_t from = 0);
  bool Has(EventType type, int id, size_t from = 0) const;

 private:
  std::vector<BrokerEvent> events_;
};

// Broker + bridge + window, torn down in the right order (window, bridge, broker).
struct WindowEnv {
  explicit WindowEnv(BrokerOptions options = TestOptions(), bool show = true);
  ~WindowEnv();
  // Spawns a renderer and waits until its view has painted a frame.
  int SpawnDrawing(const std::string& url = "sbx://plasma");

  std::unique_ptr<Broker> broker;
  std::unique_ptr<BrokerBridge> bridge;
  std::unique_ptr<EventRecorder> recorder;
  std::unique_ptr<MainWindow> window;
};

}  // namespace sbx::ui::testing
