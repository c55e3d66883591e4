// Runs the broker core's EventLoop inside Qt's and turns BrokerObserver calls into Qt signals,
// so widgets stay plain Qt and never touch the core's fds.
//
// The core's loop is one epoll set that also holds its timerfd, so the epoll fd turns readable
// for fd events and due timers alike: one QSocketNotifier on loop().fd() is enough and no QTimer
// is needed (tests/ui/bridge_test.cc checks that a core timer fires this way).
//
// Threading: everything runs on the GUI thread, which created the Broker and must outlive its
// renderers (PR_SET_PDEATHSIG fires when the creating *thread* exits). Signals are emitted from
// inside EventLoop::Dispatch: slots may call Broker methods but must not open modal dialogs (the
// notifier is disabled while dispatching, so a nested event loop would stall the broker).
#pragma once

#include <QObject>
#include <QSocketNotifier>
#include <QString>
#include <cstdint>
#include <optional>

#include "broker/broker.h"

namespace sbx::ui {

class BrokerBridge : public QObject, public BrokerObserver {
  Q_OBJECT

 public:
  explicit BrokerBridge(Broker& broker, QObject* parent = nullptr);
  ~BrokerBridge() override;

  Broker& broker() const { return broker_; }
  // A renderer's snapshot as the GUI thread takes it: without reading its cgroup's usage files,
  // which the model's sampler thread reads (at 500 tiles, 2000 file reads a second).
  std::optional<RendererSnapshot> Snapshot(int id) const {
    return broker_.Get(id, /*read_cgroup_usage=*/false);
  }

  // Runs what the core has ready, without waiting. The notifier calls it.
  void DispatchNow();
  // SIGTERM to every renderer, SIGKILL after the grace; shutdownFinished() once all are reaped.
  void Shutdown();
  uint64_t dispatches() const { return dispatches_; }

 signals:
  void brokerEvent(const sbx::BrokerEvent& event);
  void frameReady(int id, quint64 frame_number);
  void heartbeat(int id, qint64 latency_ns);
  void shutdownFinished();
  void loopFailed(const QString& what);

 private:
  void OnBrokerEvent(const BrokerEvent& event) override;
  void OnFrame(int id, uint64_t frame_number) override;
  void OnHeartbeat(int id, const protocol::Heartbeat& hb, int64_t latency_ns) override;
  void CheckFinished();

  Broker& broker_;
  QSocketNotifier notifier_;
  bool finished_reported_ = false;
  uint64_t dispatches_ = 0;
};

}  // namespace sbx::ui
