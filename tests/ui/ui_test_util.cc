#include "tests/ui/ui_test_util.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QTest>

#include "ui/broker_bridge.h"
#include "ui/main_window.h"
#include "ui/renderer_grid.h"
#include "ui/renderer_view.h"

namespace sbx::ui::testing {

std::string BinPath(const std::string& name) { return std::string(SBX_BIN_DIR) + "/" + name; }

bool SignalPid(pid_t pid, int sig) {
  if (pid <= 1) {
    ADD_FAILURE() << "no process to signal (pid " << pid << ")";
    return false;
  }
  return ::kill(pid, sig) == 0;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  QDeadlineTimer deadline(timeout);
  while (!done()) {
    if (deadline.hasExpired()) return false;
    // Processes events (the broker's epoll fd among them) for up to 5 ms, like QTRY_VERIFY.
    QTest::qWait(5);
  }
  return true;
}

BrokerOptions TestOptions() {
  BrokerOptions o;
  o.renderer_path = BinPath("sbx-renderer");
  o.hang_timeout_ms = 500;
  return o;
}

EventRecorder::EventRecorder(BrokerBridge* bridge) {
  connect(bridge, &BrokerBridge::brokerEvent, this,
          [this](const BrokerEvent& e) { events_.push_back(e); });
}

std::optional<BrokerEvent> EventRecorder::WaitFor(
    const std::function<bool(const BrokerEvent&)>& match, std::chrono::milliseconds timeout,
    size_t from) {
  std::optional<BrokerEvent> found;
  WaitUntil(
      [&] {
        for (size_t i = from; i < events_.size(); ++i) {
          if (match(events_[i])) {
            found = events_[i];
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

std::optional<BrokerEvent> EventRecorder::WaitFor(EventType type, int id,
                                                  std::chrono::milliseconds timeout, size_t from) {
  return WaitFor([&](const BrokerEvent& e) { return e.type == type && e.id == id; }, timeout, from);
}

bool EventRecorder::Has(EventType type, int id, size_t from) const {
  for (size_t i = from; i < events_.size(); ++i) {
    if (events_[i].type == type && events_[i].id == id) return true;
  }
  return false;
}

WindowEnv::WindowEnv(BrokerOptions options, bool show) {
  auto b = Broker::Create(std::move(options));
  if (!b) {
    ADD_FAILURE() << "Broker::Create: " << b.error().ToString();
    return;
  }
  broker = std::move(*b);
  bridge = std::make_unique<BrokerBridge>(*broker);
  recorder = std::make_unique<EventRecorder>(bridge.get());
  window = std::make_unique<MainWindow>(bridge.get(), MainWindowOptions{});
  if (show) window->show();
}

WindowEnv::~WindowEnv() {
  window.reset();
  recorder.reset();
  bridge.reset();
  broker.reset();  // kills and reaps what is left
}

int WindowEnv::SpawnDrawing(const std::string& url) {
  auto id = broker->Spawn(url);
  if (!id) {
    ADD_FAILURE() << "Spawn: " << id.error().ToString();
    return 0;
  }
  bool drawing = WaitUntil([&] {
    RendererView* v = window->grid()->View(*id);
    return v != nullptr && v->mode() == RendererView::Mode::kLive &&
           v->frame_widget()->frames_painted() > 0;
  });
  EXPECT_TRUE(drawing) << "renderer " << *id << " never drew";
  return *id;
}

}  // namespace sbx::ui::testing
