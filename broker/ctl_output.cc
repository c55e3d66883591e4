#include "broker/ctl_output.h"

#include <cstdio>
#include <string_view>
#include <vector>

#include "broker/event_json.h"

namespace sbx {

using nlohmann::json;

namespace {

// A cell never carries a terminal escape: anything but printable ASCII shows as '?'.
std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= ' ' && c <= '~') ? c : '?';
  if (s.size() > max && max > 3) out.replace(out.size() - 3, 3, "...");
  return out;
}

std::string Text(const json& j, const char* key, size_t max = 40) {
  if (!j.is_object() || !j.contains(key)) return "-";
  const json& v = j[key];
  if (v.is_string()) return Printable(v.get<std::string>(), max);
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return Printable(DumpJson(v), max);
}

int64_t Integer(const json& j, const char* key, int64_t fallback) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return fallback;
  return j[key].get<int64_t>();
}

// 850 ms, 12.3 s, 5m03s, 2h05m: precise while short, readable when long.
std::string Duration(int64_t ms) {
  if (ms < 0) return "-";
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  }
  return buf;
}

// "crashed SIGSEGV", "exited code 0", "-" before the first exit.
std::string LastExit(const json& row) {
  if (!row.contains("last_exit") || !row["last_exit"].is_object() ||
      !row["last_exit"].contains("status")) {
    return "-";
  }
  const json& e = row["last_exit"];
  std::string out = Text(e, "status");
  if (e.contains("signal")) out += " " + Text(e, "signal");
  if (e.contains("code")) out += " code " + Text(e, "code");
  return out;
}

std::string HeartbeatColumn(const json& row) {
  std::string via = Text(row, "heartbeat");
  int64_t age = Integer(row, "heartbeat_age_ms", -1);
  return age < 0 ? via : via + " " + Duration(age) + " ago";
}

std::string Sandbox(const json& row) {
  if (!row.contains("sandbox") || !row["sandbox"].is_object()) return "-";
  const json& s = row["sandbox"];
  std::string out = Text(s, "level");
  if (s.contains("adequate") && s["adequate"].is_boolean()) {
    out += s["adequate"].get<bool>() ? " (ok)" : " (NOT adequate)";
  } else if (s.contains("verdict")) {
    out += " (" + Text(s, "verdict") + ")";
  }
  return out;
}

}  // namespace

std::string FormatRendererTable(const json& reply) {
  static constexpr const char* kHeader[] = {"ID",  "PID",      "STATE",     "PAGE",      "UPTIME",
                                            "FPS", "RESTARTS", "HEARTBEAT", "LAST EXIT", "SANDBOX"};
  constexpr size_t kColumns = std::size(kHeader);
  std::vector<std::vector<std::string>> rows;
  rows.emplace_back(std::begin(kHeader), std::end(kHeader));
  if (reply.contains("renderers") && reply["renderers"].is_array()) {
    for (const json& r : reply["renderers"]) {
      rows.push_back({Text(r, "id"), Text(r, "pid"), Text(r, "state"), Text(r, "page", 32),
                      Duration(Integer(r, "uptime_ms", -1)), Text(r, "fps"), Text(r, "restarts"),
                      HeartbeatColumn(r), LastExit(r), Sandbox(r)});
    }
  }
  std::vector<size_t> width(kColumns, 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < kColumns; ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < kColumns; ++c) {
      line += row[c];
      if (c + 1 < kColumns) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string FormatHelp(const json& reply) {
  std::string out =
      "usage: sbx-ctl [--json] [--control PATH] COMMAND [ARGS...]\n"
      "Sends COMMAND to a running sbx-broker or sbx window. Commands:\n";
  if (reply.contains("commands") && reply["commands"].is_array()) {
    for (const json& c : reply["commands"]) {
      if (c.is_string()) out += "  " + Printable(c.get<std::string>(), 200) + "\n";
    }
  }
  out +=
      "IDs are the renderer ids of `sbx-ctl list`. On a terminal, `list` prints a table and other\n"
      "replies are indented; with --json, or when the output is not a terminal, every reply is\n"
      "the broker's JSON line as it was sent.\n";
  return out;
}

std::string FormatReply(const json& reply) {
  return reply.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string FormatTraceLine(const nlohmann::json& line) {
  if (!line.is_object()) return line.dump() + "\n";
  if (line.contains("dropped")) {
    return "(" + line["dropped"].dump() + " lines dropped: this terminal read too slowly)\n";
  }
  if (!line.contains("mechanism")) return line.dump() + "\n";
  auto text = [&](const char* key) {
    auto it = line.find(key);
    return it != line.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto num = [&](const char* key) {
    auto it = line.find(key);
    return it != line.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  char head[128];
  std::snprintf(head, sizeof head, "[%9.3f] %d %-8s %s %-12s #%-6.0f %5.0f B  ",
                num("t_ms") / 1000.0, static_cast<int>(num("id")), text("mechanism").c_str(),
                text("dir") == "to-renderer" ? "->" : "<-", text("type").c_str(), num("seq"),
                num("size"));
  return head + text("summary") + "\n";
}

namespace {

std::string ProcessLine(const json& p) {
  std::string role = Text(p, "role", 20);
  if (p.contains("id")) role += " " + Text(p, "id");
  std::string inside = "-";
  if (p.contains("nspid") && p["nspid"].is_array() && !p["nspid"].empty() &&
      p["nspid"].back().is_number_integer()) {
    inside = std::to_string(p["nspid"].back().get<int64_t>());
  }
  std::string threads;
  for (const auto& t : p.value("threads", json::array())) {
    threads += (threads.empty() ? "" : ", ") + Text(t, "name", 20);
  }
  const json uid = p.value("uid", json::object());
  const json sc = p.value("seccomp", json::object());
  char line[512];
  std::snprintf(line, sizeof line,
                "%-18s pid %-8s (%s inside)  %s%s  threads %s: %s  uid %s/%s  seccomp %s x%s  "
                "fds %s\n",
                role.c_str(), Text(p, "pid").c_str(), inside.c_str(), Text(p, "state", 2).c_str(),
                p.value("gone", false) ? " (gone)" : "", Text(p, "thread_count").c_str(),
                threads.c_str(), Text(uid, "outside").c_str(), Text(uid, "inside").c_str(),
                Text(sc, "mode").c_str(), Text(sc, "filters").c_str(), Text(p, "fd_count").c_str());
  return line;
}

void AppendProcess(const json& p, int depth, std::string& out) {
  if (!p.is_object() || depth > 8) return;
  std::string indent(static_cast<size_t>(depth) * 2, ' ');
  out += indent + ProcessLine(p);
  for (const auto& f : p.value("fds", json::array())) {
    std::string seals;
    for (const auto& s : f.value("seals", json::array())) {
      seals += (seals.empty() ? "  sealed: " : ", ") +
               Printable(s.is_string() ? s.get<std::string>() : "?", 16);
    }
    out += indent + "    fd " + Text(f, "fd") + "  " + Text(f, "label", 60) + "  (" +
           Text(f, "target", 60) + ")" + seals + "\n";
  }
  for (const auto& c : p.value("children", json::array())) AppendProcess(c, depth + 1, out);
}

}  // namespace

std::string FormatProcessTree(const nlohmann::json& reply) {
  std::string out;
  if (reply.is_object() && reply.contains("process")) AppendProcess(reply["process"], 0, out);
  return out;
}

}  // namespace sbx
