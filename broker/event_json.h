// JSON and text forms of what the broker reports: events (sbx-broker --json, one object per
// line), renderer snapshots (the control socket's `list`) and stats.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "broker/broker.h"
#include "broker/output_sink.h"

namespace sbx {

nlohmann::json ExitToJson(const ExitInfo& exit);
nlohmann::json EventToJson(const BrokerEvent& e);
nlohmann::json SnapshotToJson(const RendererSnapshot& s);
nlohmann::json StatsToJson(const BrokerStats& s);
// One line for a person reading a terminal.
std::string EventToText(const BrokerEvent& e);
// Serialises without ever throwing: invalid UTF-8 from a client or renderer is replaced.
std::string DumpJson(const nlohmann::json& j);

// Prints each event as one line into a sink (the broker's stdout): EventToJson's form
// (`sbx-broker --json`, `sbx --json`) or EventToText's. The sink never blocks: with a reader that
// does not keep up, events are dropped and counted there.
class EventPrinter : public BrokerObserver {
 public:
  enum class Format { kJson, kText };
  EventPrinter(OutputSink& sink, Format format) : sink_(sink), format_(format) {}
  void OnBrokerEvent(const BrokerEvent& e) override;

 private:
  OutputSink& sink_;
  Format format_;
};

}  // namespace sbx
