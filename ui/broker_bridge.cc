#include "ui/broker_bridge.h"

namespace sbx::ui {

BrokerBridge::BrokerBridge(Broker& broker, QObject* parent)
    : QObject(parent), broker_(broker), notifier_(broker.loop().fd(), QSocketNotifier::Read) {
  broker_.AddObserver(this);
  connect(&notifier_, &QSocketNotifier::activated, this, &BrokerBridge::DispatchNow);
}

BrokerBridge::~BrokerBridge() { broker_.RemoveObserver(this); }

void BrokerBridge::DispatchNow() {
  // Disabled while dispatching: a slot that spins a nested event loop must not re-enter
  // Dispatch, which is not reentrant. The fd is level-triggered, so nothing is lost.
  notifier_.setEnabled(false);
  ++dispatches_;
  auto r = broker_.loop().Dispatch(0);
  notifier_.setEnabled(true);
  if (!r) emit loopFailed(QString::fromStdString(r.error().ToString()));
  CheckFinished();
}

void BrokerBridge::Shutdown() {
  broker_.Shutdown();
  CheckFinished();  // with no renderers there is nothing to wait for
}

void BrokerBridge::CheckFinished() {
  if (finished_reported_ || !broker_.finished()) return;
  finished_reported_ = true;
  emit shutdownFinished();
}

void BrokerBridge::OnBrokerEvent(const BrokerEvent& event) { emit brokerEvent(event); }

void BrokerBridge::OnFrame(int id, uint64_t frame_number) {
  emit frameReady(id, static_cast<quint64>(frame_number));
}

void BrokerBridge::OnHeartbeat(int id, const protocol::Heartbeat& /*hb*/, int64_t latency_ns) {
  emit heartbeat(id, static_cast<qint64>(latency_ns));
}

}  // namespace sbx::ui
