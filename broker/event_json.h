// JSON and text forms of what the broker reports: events (sbx-broker --json, one object per
// line), renderer snapshots (the control socket's `list`) and stats.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "broker/broker.h"

namespace sbx {

nlohmann::json ExitToJson(const ExitInfo& exit);
nlohmann::json EventToJson(const BrokerEvent& e);
nlohmann::json SnapshotToJson(const RendererSnapshot& s);
nlohmann::json StatsToJson(const BrokerStats& s);
// One line for a person reading a terminal.
std::string EventToText(const BrokerEvent& e);
// Serialises without ever throwing: invalid UTF-8 from a client or renderer is replaced.
std::string DumpJson(const nlohmann::json& j);

}  // namespace sbx
