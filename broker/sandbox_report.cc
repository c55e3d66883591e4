#include "broker/sandbox_report.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <sstream>
#include <string_view>

#include "broker/proc_stats.h"
#include "ipc/posix.h"

namespace sbx {

namespace {

ino_t NamespaceInode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The root as the kernel holds it for the process: an empty, read-only tmpfs.
bool RootIsEmpty(const std::string& proc) {
  struct statfs fs;
  std::string root = proc + "/root";
  if (::statfs(root.c_str(), &fs) != 0) return false;
  if (fs.f_type != TMPFS_MAGIC || (fs.f_flags & ST_RDONLY) == 0) return false;
  std::error_code ec;
  return std::filesystem::is_empty(root, ec) && !ec;
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// fd 0 is the broker's /dev/null, fds 1 and 2 one pipe, which is none of the broker's own.
bool StdioIsClean(const std::string& proc) {
  struct stat fd[3], null, ours[3];
  for (int i = 0; i < 3; ++i) {
    if (::stat((proc + "/fd/" + std::to_string(i)).c_str(), &fd[i]) != 0) return false;
  }
  if (::stat("/dev/null", &null) != 0 || !SameFile(fd[0], null)) return false;
  if (!S_ISFIFO(fd[1].st_mode) || !SameFile(fd[1], fd[2])) return false;
  for (int i = 0; i < 3; ++i) {
    if (::fstat(i, &ours[i]) == 0 && SameFile(ours[i], fd[1])) return false;
  }
  return true;
}

}  // namespace

namespace {

uint64_t Number(std::string_view v, int base) {
  uint64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out, base);
  return out;
}

// What a sandboxed renderer cannot undo once its own filter is on: its seccomp mode, filters,
// no_new_privs and capabilities, its root, its uid map, its namespaces and its limits.
Result<SandboxReport> ReadLayers(const std::string& proc) {
  auto status = ReadSmallFile(proc + "/status");
  if (!status) return std::unexpected(status.error());
  SandboxReport r;
  if (auto v = ProcStatusField(*status, "Seccomp"); !v.empty()) r.seccomp_mode = int(Number(v, 10));
  if (auto v = ProcStatusField(*status, "NoNewPrivs"); !v.empty())
    r.no_new_privs = int(Number(v, 10));
  if (auto v = ProcStatusField(*status, "Seccomp_filters"); !v.empty()) {
    r.seccomp_filters = int(Number(v, 10));
  }
  const std::pair<const char*, uint64_t*> caps[] = {{"CapEff", &r.cap_eff},
                                                    {"CapPrm", &r.cap_prm},
                                                    {"CapInh", &r.cap_inh},
                                                    {"CapAmb", &r.cap_amb},
                                                    {"CapBnd", &r.cap_bnd}};
  for (auto [key, field] : caps) {
    if (auto v = ProcStatusField(*status, key); !v.empty()) *field = Number(v, 16);
  }
  r.root_empty = RootIsEmpty(proc);
  if (auto map = ReadSmallFile(proc + "/uid_map")) {
    std::istringstream in(*map);
    std::string inside, outside, count;
    in >> inside >> outside >> count;
    r.uid_map = inside + " " + outside + " " + count;
  }
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
    }
  }
  return r;
}

// Judges the layers read against what `level` promises: the problems and the verdict.
void Judge(SandboxReport& r, sandbox::Level level, bool launcher_filter) {
  // Layers only the renderer applies itself (its own filter, the process limit); missing, they
  // leave a renderer held by the launcher's layers alone.
  std::vector<std::string> own_missing;
  for (const auto& want : sandbox::Limits()) {
    auto l = std::find_if(r.rlimits.begin(), r.rlimits.end(),
                          [&](const SandboxReport::Rlimit& x) { return x.name == want.name; });
    if (l == r.rlimits.end()) continue;
    auto expected =
        want.value == RLIM_INFINITY ? std::string("unlimited") : std::to_string(want.value);
    if (level != sandbox::Level::kOff && l->hard != expected) {
      auto& list = launcher_filter && !want.before_exec ? own_missing : r.problems;
      list.push_back(std::string(want.name) + " is " + l->hard + ", want " + expected);
    }
  }

  if (level == sandbox::Level::kOff) {
    r.verdict = "not sandboxed (--no-sandbox)";
    r.problems.push_back("--no-sandbox: every layer is off");
    return;
  }
  if (r.seccomp_mode != 2) r.problems.push_back("no seccomp-bpf filter");
  if (r.no_new_privs != 1) r.problems.push_back("no_new_privs not set");
  if ((r.cap_eff | r.cap_prm | r.cap_inh | r.cap_amb) != 0) {
    r.problems.push_back("holds capabilities");
  }
  if (r.cap_bnd != 0) r.problems.push_back("capability bounding set not empty");
  if (!r.stdio_clean) r.problems.push_back("stdio is not /dev/null and its own log pipe");
  if (level == sandbox::Level::kFull) {
    for (const auto& ns : r.namespaces) {
      if (!ns.isolated) r.problems.push_back(ns.name + " namespace shared with the broker");
    }
    if (!r.root_empty) r.problems.push_back("its root is not the empty read-only directory");
  } else {
    r.problems.push_back("no namespaces: " +
                         (r.note.empty() ? std::string("unavailable") : r.note));
  }
  if (launcher_filter && r.seccomp_filters < 2)
    own_missing.push_back("no seccomp filter of its own");
  r.adequate = r.problems.empty() && own_missing.empty();
  if (r.adequate) {
    r.verdict = "adequately sandboxed";
  } else if (r.problems.empty()) {
    r.verdict = "contained by the launcher's filter only";
    r.problems = std::move(own_missing);
  } else {
    r.verdict = "partially sandboxed";
    r.problems.insert(r.problems.end(), own_missing.begin(), own_missing.end());
  }
}

// The read layers, with the live parts (stdio) read now and the judgement made again.
SandboxReport Complete(SandboxReport layers, const std::string& proc, sandbox::Level level,
                       const std::string& note, bool launcher_filter) {
  layers.level = level;
  layers.note = note;
  layers.stdio_clean = StdioIsClean(proc);
  Judge(layers, level, launcher_filter);
  return layers;
}

// A renderer's own filter is on: from now on it cannot leave its namespaces, change its root or
// uid map, regain a capability or raise a limit, so the layers read now stay true.
bool LayersAreFinal(const SandboxReport& r, sandbox::Level level, bool launcher_filter) {
  if (level == sandbox::Level::kOff) return false;
  if (r.seccomp_mode != 2 || r.no_new_privs != 1) return false;
  return !launcher_filter || r.seccomp_filters >= 2;
}

}  // namespace

Result<SandboxReport> InspectSandbox(pid_t pid, sandbox::Level level, const std::string& note,
                                     bool launcher_filter) {
  if (pid <= 0) return MakeError(Errc::kState, "renderer has no live process");
  std::string proc = "/proc/" + std::to_string(pid);
  auto layers = ReadLayers(proc);
  if (!layers) return std::unexpected(layers.error());
  return Complete(std::move(*layers), proc, level, note, launcher_filter);
}

std::optional<uint64_t> ProcessStartTicks(pid_t pid) {
  auto stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  auto field = ProcStatField(*stat, 22);
  if (!field || field->empty()) return std::nullopt;
  uint64_t ticks = 0;
  auto [p, ec] = std::from_chars(field->data(), field->data() + field->size(), ticks);
  if (ec != std::errc() || p != field->data() + field->size()) return std::nullopt;
  return ticks;
}

Result<SandboxReport> SandboxInspector::Inspect(pid_t pid, sandbox::Level level,
                                                const std::string& note, bool launcher_filter) {
  if (pid <= 0) return MakeError(Errc::kState, "renderer has no live process");
  std::string proc = "/proc/" + std::to_string(pid);
  // The pid and the start time name one process: a pid the kernel gave again is another one.
  auto start = ProcessStartTicks(pid);
  if (!start) return InspectSandbox(pid, level, note, launcher_filter);
  const int64_t now = MonotonicNs();
  std::optional<SandboxReport> kept;
  {
    std::lock_guard lock(mutex_);
    auto hit = cache_.find(pid);
    if (hit != cache_.end() && hit->second.start_ticks == *start) {
      hit->second.used_ns = now;
      kept = hit->second.layers;
    }
  }
  if (kept) return Complete(std::move(*kept), proc, level, note, launcher_filter);
  auto layers = ReadLayers(proc);
  if (!layers) return std::unexpected(layers.error());
  if (LayersAreFinal(*layers, level, launcher_filter)) {
    std::lock_guard lock(mutex_);
    if (!cache_.contains(pid) && cache_.size() >= kMaxCached) Evict(now);
    cache_[pid] = Entry{*start, *layers, now};
  }
  return Complete(std::move(*layers), proc, level, note, launcher_filter);
}

void SandboxInspector::Evict(int64_t now_ns) {
  // Processes long gone (their pids not inspected for a minute) go first; if that frees too
  // little, everything: the next reads fill the cache again.
  constexpr int64_t kStaleNs = 60'000'000'000;
  std::erase_if(cache_, [&](const auto& e) { return now_ns - e.second.used_ns > kStaleNs; });
  if (cache_.size() >= kMaxCached) cache_.clear();
}

nlohmann::json SandboxReportToJson(const SandboxReport& r) {
  nlohmann::json ns = nlohmann::json::object();
  for (const auto& n : r.namespaces) ns[n.name] = n.isolated ? "new" : "shared";
  nlohmann::json limits = nlohmann::json::object();
  for (const auto& l : r.rlimits) limits[l.name] = {{"soft", l.soft}, {"hard", l.hard}};
  auto hex = [](uint64_t v) {
    char cap[24];
    std::snprintf(cap, sizeof cap, "%016llx", static_cast<unsigned long long>(v));
    return std::string(cap);
  };
  nlohmann::json j = {{"level", std::string(sandbox::LevelName(r.level))},
                      {"seccomp", r.seccomp_mode},
                      {"seccomp_filters", r.seccomp_filters},
                      {"no_new_privs", r.no_new_privs},
                      {"cap_eff", hex(r.cap_eff)},
                      {"cap_prm", hex(r.cap_prm)},
                      {"cap_inh", hex(r.cap_inh)},
                      {"cap_amb", hex(r.cap_amb)},
                      {"cap_bnd", hex(r.cap_bnd)},
                      {"root_empty", r.root_empty},
                      {"stdio_clean", r.stdio_clean},
                      {"uid_map", r.uid_map},
                      {"namespaces", ns},
                      {"rlimits", limits},
                      {"adequate", r.adequate},
                      {"verdict", r.verdict},
                      {"problems", r.problems}};
  if (!r.note.empty()) j["note"] = r.note;
  return j;
}

}  // namespace sbx
