// A RendererHostEnv for unit tests: a real EventLoop, settings a test changes as a person would,
// events recorded, and launches of the real sbx-renderer without a sandbox (as --no-sandbox runs
// it), so a renderer slot or process runs with no Broker.
#pragma once

#include <unistd.h>

#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/child_process.h"
#include "broker/event_loop.h"
#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx::test {

// sbx-renderer is built next to the test binaries.
inline std::string RendererNextToUs() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "sbx-renderer";
  std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + "sbx-renderer";
}

class TestEnv final : public RendererHostEnv {
 public:
  // value(): a loop that cannot be made throws, and GoogleTest reports it.
  TestEnv() : loop_(EventLoop::Create().value()) {
    settings.renderer_path = RendererNextToUs();
    // Fast restarts, so a crash loop is over in well under a second.
    settings.restart_policy = {3, 30'000, 1, 2};
    settings.term_grace_ms = 2000;
  }

  EventLoop& loop() override { return loop_; }
  const BrokerOptions& options() const override { return settings; }
  BrokerStats& counters() override { return stats; }
  void Emit(const BrokerEvent& e) override {
    events.push_back(e);
    if (on_emit) on_emit(e);
  }
  std::unique_ptr<RendererProcess> TakeSpare() override {
    ++spare_asks;
    return nullptr;
  }
  void NotifyFrame(int, uint64_t) override { ++frames; }
  void NotifyHeartbeat(int, const protocol::Heartbeat&, int64_t) override { ++heartbeats; }
  Result<LaunchSite> PrepareLaunch() override {
    return LaunchSite{settings.renderer_path, sandbox::Level::kOff, std::nullopt, ""};
  }
  void ReapLater(ChildProcess child) override {
    if (child.valid()) retired.push_back(std::move(child));
  }

  // Dispatches until `done` holds or the deadline passes; returns done().
  template <typename Pred>
  bool RunUntil(Pred done) {
    const int64_t deadline = DeadlineIn(kDeadlineMs);
    while (!done() && MonotonicNs() < deadline) {
      if (!loop_.Dispatch(RemainingMs(deadline))) return false;
    }
    return done();
  }
  bool RunUntilEvent(EventType type, size_t count = 1) {
    return RunUntil([&] { return Count(type) >= count; });
  }
  size_t Count(EventType type) const {
    size_t n = 0;
    for (const auto& e : events) n += e.type == type;
    return n;
  }
  const BrokerEvent* Last(EventType type) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->type == type) return &*it;
    }
    return nullptr;
  }
  std::vector<EventType> Types() const {
    std::vector<EventType> out;
    for (const auto& e : events) out.push_back(e.type);
    return out;
  }

  BrokerOptions settings;  // what options() returns, changed as a person would
  BrokerStats stats;
  std::vector<BrokerEvent> events;
  int frames = 0;
  int heartbeats = 0;
  std::vector<ChildProcess> retired;
  std::function<void(const BrokerEvent&)> on_emit;  // an observer, run as each event is emitted
  int spare_asks = 0;                               // TakeSpare calls (there is never a spare)

 private:
  EventLoop loop_;
};

}  // namespace sbx::test
