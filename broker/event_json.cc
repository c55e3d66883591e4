#include "broker/event_json.h"

#include <cstdio>

#include "ipc/posix.h"

namespace sbx {

using nlohmann::json;

json ExitToJson(const ExitInfo& exit) {
  json j = {{"status", std::string(ExitStatusName(exit.status))}};
  if (exit.signal != 0) j["signal"] = SignalName(exit.signal);
  if (exit.code >= 0) j["code"] = exit.code;
  if (!exit.detail.empty()) j["detail"] = exit.detail;
  return j;
}

json EventToJson(const BrokerEvent& e) {
  json j = {{"event", std::string(EventTypeName(e.type))}, {"t_ms", e.t_ms}, {"id", e.id}};
  if (e.pid > 0) j["pid"] = e.pid;
  if (!e.page.empty()) j["page"] = e.page;
  if (e.exit) {
    j["status"] = std::string(ExitStatusName(e.exit->status));
    if (e.exit->signal != 0) j["signal"] = SignalName(e.exit->signal);
    if (e.exit->code >= 0) j["code"] = e.exit->code;
  }
  if (e.delay_ms >= 0) j["delay_ms"] = e.delay_ms;
  if (e.first_frame_ms >= 0) j["first_frame_ms"] = e.first_frame_ms;
  if (e.type == EventType::kSpawned) j["heartbeat"] = e.heartbeat_fallback ? "pipe" : "mq";
  if (e.type == EventType::kVisibility) {
    j["visibility"] = std::string(protocol::VisibilityName(e.visibility));
  }
  if (e.type == EventType::kLog) {
    if (e.dropped_lines == 0 && e.dropped_bytes == 0) {
      j["line"] = e.line;
    } else {
      j["dropped_lines"] = e.dropped_lines;
      j["dropped_bytes"] = e.dropped_bytes;
    }
    if (e.truncated) j["truncated"] = true;
  }
  if (!e.detail.empty()) j["detail"] = e.detail;
  return j;
}

json SnapshotToJson(const RendererSnapshot& s) {
  json j = {{"id", s.id},
            {"pid", s.pid},
            {"state", std::string(RendererStateName(s.state))},
            {"page", s.page},
            {"visibility", std::string(protocol::VisibilityName(s.visibility))},
            {"restarts", s.restarts},
            {"uptime_ms", s.uptime_ms},
            {"frames", s.frames},
            {"fps", s.fps},
            {"heartbeat", s.heartbeat_fallback ? "pipe" : "mq"},
            {"heartbeat_age_ms", s.heartbeat_age_ms},
            {"cpu_ms", static_cast<double>(s.cpu_ns) / 1e6},
            {"render_us", s.render_us},
            {"messages_in", s.messages_in}};
  j["last_exit"] =
      s.last_exit.status == ExitStatus::kNone ? json::object() : ExitToJson(s.last_exit);
  // Empty when the renderer has no cgroup (docs/SANDBOX.md); -1 where the hierarchy has no file.
  j["cgroup"] = json::object();
  if (!s.cgroup_path.empty()) {
    j["cgroup"] = {{"path", s.cgroup_path},
                   {"memory_limit", s.memory_limit},
                   {"memory_current", s.cgroup_usage.memory_bytes},
                   {"pids_current", s.cgroup_usage.pids},
                   {"throttled_us", s.cgroup_usage.throttled_us}};
  }
  return j;
}

json StatsToJson(const BrokerStats& s) {
  return {{"renderers", s.renderers},
          {"running", s.running},
          {"spawns", s.spawns},
          {"restarts", s.restarts},
          {"exits", s.exits},
          {"bad_messages", s.bad_messages},
          {"messages_in", s.messages_in},
          {"heartbeats", s.heartbeats},
          {"uptime_ms", s.uptime_ms},
          {"spare",
           {{"enabled", s.spare_enabled},
            {"pid", s.spare_pid},
            {"state", !s.spare_enabled    ? "off"
                      : s.spare_launching ? "launching"
                      : s.spare_pid == 0  ? "none"
                      : s.spare_ready     ? "ready"
                                          : "starting"},
            {"cgroup", s.spare_cgroup},
            {"started", s.spares_started},
            {"taken", s.spares_taken},
            {"lost", s.spares_lost}}},
          {"zygote",
           {{"pid", s.zygote_pid},
            {"launches", s.zygote_launches},
            {"in_flight", s.zygote_in_flight},
            {"note", s.zygote_note}}}};
}

std::string EventToText(const BrokerEvent& e) {
  char head[96];
  std::snprintf(head, sizeof head, "[%8.3f] renderer %d", static_cast<double>(e.t_ms) / 1000.0,
                e.id);
  std::string out = head;
  if (e.pid > 0) out += " (pid " + std::to_string(e.pid) + ")";
  out += ": ";
  out += EventTypeName(e.type);
  if (e.exit) {
    out += " ";
    out += ExitStatusName(e.exit->status);
    if (e.exit->signal != 0) out += std::string(" by ") + SignalName(e.exit->signal);
    if (e.exit->code >= 0) out += " code " + std::to_string(e.exit->code);
  }
  if (e.type == EventType::kSpawned) out += " " + e.page;
  if (e.type == EventType::kVisibility)
    out += std::string(": ") + protocol::VisibilityName(e.visibility).data();
  if (e.delay_ms >= 0) out += " in " + std::to_string(e.delay_ms) + " ms";
  if (e.first_frame_ms >= 0) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " first frame after %.2f ms", e.first_frame_ms);
    out += buf;
  }
  if (e.type == EventType::kLog && e.dropped_lines == 0 && e.dropped_bytes == 0) {
    out += ": " + e.line;
    if (e.truncated) out += " [cut at 1 KiB]";
  }
  if (!e.detail.empty()) out += " (" + e.detail + ")";
  return out;
}

std::string DumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void EventPrinter::OnBrokerEvent(const BrokerEvent& e) {
  (void)sink_.WriteLine(format_ == Format::kJson ? DumpJson(EventToJson(e)) : EventToText(e));
}

}  // namespace sbx
