#include "broker/sandbox_report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <sstream>
#include <string_view>

#include "ipc/posix.h"

namespace sbx {

namespace {

// The value after "Key:\t" in /proc/PID/status.
std::string_view StatusField(std::string_view status, std::string_view key) {
  size_t at = 0;
  while ((at = status.find(key, at)) != std::string_view::npos) {
    if ((at == 0 || status[at - 1] == '\n') && status.substr(at + key.size(), 1) == ":") {
      std::string_view rest = status.substr(at + key.size() + 1);
      while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
      return rest.substr(0, rest.find('\n'));
    }
    at += key.size();
  }
  return {};
}

ino_t NamespaceInode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

Result<SandboxReport> InspectSandbox(pid_t pid, sandbox::Level level, const std::string& note) {
  if (pid <= 0) return MakeError(Errc::kState, "renderer has no live process");
  std::string proc = "/proc/" + std::to_string(pid);
  auto status = ReadSmallFile(proc + "/status");
  if (!status) return std::unexpected(status.error());
  SandboxReport r;
  r.level = level;
  r.note = note;
  auto number = [](std::string_view v, int base) -> uint64_t {
    uint64_t out = 0;
    std::from_chars(v.data(), v.data() + v.size(), out, base);
    return out;
  };
  if (auto v = StatusField(*status, "Seccomp"); !v.empty()) r.seccomp_mode = int(number(v, 10));
  if (auto v = StatusField(*status, "NoNewPrivs"); !v.empty()) r.no_new_privs = int(number(v, 10));
  if (auto v = StatusField(*status, "CapEff"); !v.empty()) r.cap_eff = number(v, 16);

  for (const char* ns : {"user", "pid", "net", "ipc", "mnt", "uts"}) {
    ino_t theirs = NamespaceInode(proc + "/ns/" + ns);
    ino_t ours = NamespaceInode(std::string("/proc/self/ns/") + ns);
    r.namespaces.push_back({ns, theirs != 0 && ours != 0 && theirs != ours});
  }

  if (auto limits = ReadSmallFile(proc + "/limits")) {
    for (const auto& want : sandbox::Limits()) {
      auto at = limits->find(want.name);
      if (at == std::string::npos) continue;
      std::istringstream row(limits->substr(at + want.name.size(), 80));
      SandboxReport::Rlimit l{std::string(want.name), "", ""};
      row >> l.soft >> l.hard;
      r.rlimits.push_back(l);
      auto expected =
          want.value == RLIM_INFINITY ? std::string("unlimited") : std::to_string(want.value);
      if (level != sandbox::Level::kOff && l.soft != expected) {
        r.problems.push_back(std::string(want.name) + " is " + l.soft + ", want " + expected);
      }
    }
  }

  if (level == sandbox::Level::kOff) {
    r.verdict = "not sandboxed (--no-sandbox)";
    r.problems.push_back("--no-sandbox: every layer is off");
    return r;
  }
  if (r.seccomp_mode != 2) r.problems.push_back("no seccomp-bpf filter");
  if (r.no_new_privs != 1) r.problems.push_back("no_new_privs not set");
  if (r.cap_eff != 0) r.problems.push_back("holds capabilities");
  if (level == sandbox::Level::kFull) {
    for (const auto& ns : r.namespaces) {
      if (!ns.isolated) r.problems.push_back(ns.name + " namespace shared with the broker");
    }
  } else {
    r.problems.push_back("no namespaces: " + (note.empty() ? std::string("unavailable") : note));
  }
  r.adequate = r.problems.empty();
  r.verdict = r.adequate ? "adequately sandboxed" : "partially sandboxed";
  return r;
}

nlohmann::json SandboxReportToJson(const SandboxReport& r) {
  nlohmann::json ns = nlohmann::json::object();
  for (const auto& n : r.namespaces) ns[n.name] = n.isolated ? "new" : "shared";
  nlohmann::json limits = nlohmann::json::object();
  for (const auto& l : r.rlimits) limits[l.name] = {{"soft", l.soft}, {"hard", l.hard}};
  char cap[24];
  std::snprintf(cap, sizeof cap, "%016llx", static_cast<unsigned long long>(r.cap_eff));
  nlohmann::json j = {{"level", std::string(sandbox::LevelName(r.level))},
                      {"seccomp", r.seccomp_mode},
                      {"no_new_privs", r.no_new_privs},
                      {"cap_eff", cap},
                      {"namespaces", ns},
                      {"rlimits", limits},
                      {"adequate", r.adequate},
                      {"verdict", r.verdict},
                      {"problems", r.problems}};
  if (!r.note.empty()) j["note"] = r.note;
  return j;
}

}  // namespace sbx
