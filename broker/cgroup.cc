#include "broker/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>

#include "ipc/posix.h"

namespace sbx {

namespace {

constexpr int kCpuPeriodUs = 100'000;
// Below the broker's (and every other process's) default of 100 (v2) or 1024 (v1): under
// contention the broker's loop gets four times a renderer's share.
constexpr int kRendererCpuWeight = 25;
constexpr int kRendererCpuShares = 256;
// Hidden: an eighth of a visible renderer's share. Above the minimum (1 and 2), so a hidden
// renderer still gets its slow heartbeats out when every CPU is busy.
constexpr int kHiddenCpuWeight = 3;
constexpr int kHiddenCpuShares = 32;
constexpr std::string_view kV1Controllers[] = {"memory", "pids", "cpu"};

std::atomic<uint64_t> next_cgroup{1};

Result<void> WriteFile(const std::string& path, std::string_view content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return SysError("open " + path);
  auto w = WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(content.data()), content.size()});
  if (!w) return SysError("write " + path);
  return {};
}

// A limit file the kernel may lack (swap accounting off): absent is fine, refused is not.
Result<void> WriteOptional(const std::string& path, std::string_view content) {
  if (::access(path.c_str(), F_OK) != 0) return {};
  return WriteFile(path, content);
}

// The number after `key` in the text of a "key value" file (memory.events, cpu.stat,
// memory.oom_control), or the whole text's number when key is empty; -1 if absent.
int64_t ParseNumber(std::string_view s, std::string_view key) {
  if (!key.empty()) {
    size_t at = 0;
    for (;;) {
      at = s.find(key, at);
      if (at == std::string_view::npos) return -1;
      bool line_start = at == 0 || s[at - 1] == '\n';
      if (line_start && at + key.size() < s.size() && s[at + key.size()] == ' ') break;
      at += key.size();
    }
    s.remove_prefix(at + key.size() + 1);
  }
  int64_t v = -1;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

int64_t ReadNumber(const std::string& path, std::string_view key = {}) {
  auto text = ReadSmallFile(path);
  if (!text) return -1;
  return ParseNumber(*text, key);
}

// Where the memory controller counts OOM kills.
std::string OomFile(CgroupMode mode, const std::string& memory_dir) {
  return memory_dir + (mode == CgroupMode::kV2 ? "/memory.events" : "/memory.oom_control");
}

bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// SIGKILLs every process left in a cgroup directory (children a renderer forked, which outlive
// it), so that the directory can go.
void KillMembers(const std::string& dir) {
  if (WriteFile(dir + "/cgroup.kill", "1")) return;  // v2, Linux 5.14 and later
  auto procs = ReadSmallFile(dir + "/cgroup.procs", 1 << 20);
  if (!procs) return;
  std::istringstream in(*procs);
  for (pid_t pid; in >> pid;) (void)::kill(pid, SIGKILL);
}

// rmdir, and if processes still hold the directory, kill them and try again for a short,
// bounded while: a killed process leaves its cgroup as it exits, before anyone reaps it.
bool RemoveDir(const std::string& dir) {
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
  if (errno != EBUSY) return false;
  KillMembers(dir);
  for (int i = 0; i < 50; ++i) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    timespec ms{0, 1'000'000};
    ::nanosleep(&ms, nullptr);
  }
  return false;
}

std::vector<std::string> Subdirs(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  return out;
}

// One line of /proc/self/mountinfo that mounts a cgroup hierarchy.
struct CgroupMount {
  std::string root;   // the hierarchy path mounted
  std::string point;  // where
  std::string type;   // cgroup or cgroup2
  std::string options;
};

std::vector<CgroupMount> CgroupMounts() {
  std::vector<CgroupMount> out;
  auto text = ReadSmallFile("/proc/self/mountinfo", 1 << 20);
  if (!text) return out;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point, opts, word;
    f >> id >> parent >> dev >> root >> point >> opts;
    while (f >> word && word != "-") {
    }
    CgroupMount m{root, point, "", ""};
    std::string source;
    f >> m.type >> source >> m.options;
    if (m.type == "cgroup" || m.type == "cgroup2") out.push_back(std::move(m));
  }
  return out;
}

bool HasWord(std::string_view list, std::string_view word, char sep) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = std::min(list.find(sep, start), list.size());
    if (list.substr(start, end - start) == word) return true;
    start = end + 1;
  }
  return false;
}

// The broker's own cgroup path in the hierarchy whose /proc/self/cgroup controller field holds
// `controller` (empty `controller`: the unified hierarchy, "0::").
std::optional<std::string> OwnCgroup(std::string_view controller) {
  auto text = ReadSmallFile("/proc/self/cgroup");
  if (!text) return std::nullopt;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string_view ctrls = std::string_view(line).substr(a + 1, b - a - 1);
    bool match = controller.empty() ? line.starts_with("0::") : HasWord(ctrls, controller, ',');
    if (match) return line.substr(b + 1);
  }
  return std::nullopt;
}

// Where `own` (a hierarchy path) is seen through mount `m`, if it is inside what m mounts.
std::optional<std::string> Through(const CgroupMount& m, const std::string& own) {
  if (m.root == "/") return own == "/" ? m.point : m.point + own;
  if (own != m.root && !own.starts_with(m.root + "/")) return std::nullopt;
  return m.point + own.substr(m.root.size());
}

std::string BrokerDirName() { return "sbx-" + std::to_string(::getpid()); }

bool MakeDir(const std::string& dir, std::string& why) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return true;
  why = "cannot create " + dir + ": " + std::strerror(errno);
  return false;
}

// The broker's own cgroup v2 directory as mounted, or why there is none.
std::optional<std::string> OwnV2Dir(std::string& why) {
  std::optional<CgroupMount> unified;
  for (auto& m : CgroupMounts()) {
    if (m.type == "cgroup2") unified = m;
  }
  auto own = OwnCgroup("");
  if (!unified || !own) {
    why = "no cgroup v2 hierarchy";
    return std::nullopt;
  }
  auto dir = Through(*unified, *own);
  if (!dir) why = "cgroup v2: the broker's cgroup is outside the mounted hierarchy";
  return dir;
}

// The first of memory, pids and cpu that the v2 cgroup `dir` does not offer; empty if none.
std::string MissingController(const std::string& dir) {
  auto offered = ReadSmallFile(dir + "/cgroup.controllers");
  for (auto c : kV1Controllers) {
    std::istringstream words(offered ? *offered : std::string());
    bool has = false;
    for (std::string w; words >> w;) has |= w == c;
    if (!has) return std::string(c);
  }
  return "";
}

// cgroup v2: the controllers must be enabled in every cgroup above a renderer's, and a cgroup
// that hands controllers down must hold no process itself, so a broker whose own cgroup holds
// it first moves itself into a leaf of its own directory (sbx-PID/broker), as container
// runtimes do in a delegated scope.
std::optional<CgroupSupport> DetectV2(std::string& why) {
  auto dir = OwnV2Dir(why);
  if (!dir) return std::nullopt;
  if (auto missing = MissingController(*dir); !missing.empty()) {
    why = "cgroup v2: " + *dir + " offers no " + missing + " controller";
    return std::nullopt;
  }
  std::string mine = *dir + "/" + BrokerDirName();
  if (!MakeDir(mine, why)) return std::nullopt;
  constexpr std::string_view kEnable = "+memory +pids +cpu";
  if (!WriteFile(*dir + "/cgroup.subtree_control", kEnable)) {
    std::string leaf = mine + "/broker";
    if (!MakeDir(leaf, why)) return std::nullopt;
    if (auto r = WriteFile(leaf + "/cgroup.procs", std::to_string(::getpid())); !r) {
      why = "cgroup v2: " + r.error().ToString();
      return std::nullopt;
    }
    if (auto r = WriteFile(*dir + "/cgroup.subtree_control", kEnable); !r) {
      why = "cgroup v2: other processes share the broker's cgroup (" + r.error().ToString() + ")";
      return std::nullopt;
    }
  }
  if (auto r = WriteFile(mine + "/cgroup.subtree_control", kEnable); !r) {
    why = "cgroup v2: " + r.error().ToString();
    return std::nullopt;
  }
  return CgroupSupport{CgroupMode::kV2, "cgroup v2 under " + mine, {mine}};
}

// cgroup v1: memory, pids and cpu each mounted (cpu possibly with cpuacct), the broker's
// directory made in each under the broker's own cgroup there.
std::optional<CgroupSupport> DetectV1(std::string& why) {
  auto mounts = CgroupMounts();
  CgroupSupport s{CgroupMode::kV1, "", {}};
  for (auto c : kV1Controllers) {
    const CgroupMount* mount = nullptr;
    for (auto& m : mounts) {
      if (m.type == "cgroup" && HasWord(m.options, c, ',')) mount = &m;
    }
    auto own = OwnCgroup(c);
    if (!mount || !own) {
      why = "no cgroup v1 " + std::string(c) + " hierarchy";
      return std::nullopt;
    }
    auto dir = Through(*mount, *own);
    if (!dir) {
      why = "cgroup v1: the broker's " + std::string(c) + " cgroup is not mounted";
      return std::nullopt;
    }
    std::string mine = *dir + "/" + BrokerDirName();
    if (!MakeDir(mine, why)) return std::nullopt;
    s.broker_dirs.push_back(mine);
  }
  s.reason = "cgroup v1 under " + s.broker_dirs.front() + " (and pids, cpu)";
  return s;
}

Result<void> WriteLimitsV2(const std::string& dir, const CgroupLimits& l) {
  int quota = l.cpu_percent * kCpuPeriodUs / 100;
  for (auto [file, value] :
       {std::pair<const char*, std::string>{"memory.max", std::to_string(l.memory_bytes)},
        {"pids.max", std::to_string(l.pids)},
        {"cpu.max", std::to_string(quota) + " " + std::to_string(kCpuPeriodUs)},
        {"cpu.weight", std::to_string(kRendererCpuWeight)}}) {
    if (auto r = WriteFile(dir + "/" + file, value); !r) return r;
  }
  return WriteOptional(dir + "/memory.swap.max", "0");
}

Result<void> WriteLimitsV1(const std::vector<std::string>& dirs, const CgroupLimits& l) {
  const std::string& mem = dirs[0];
  std::string bytes = std::to_string(l.memory_bytes);
  if (auto r = WriteFile(mem + "/memory.limit_in_bytes", bytes); !r) return r;
  // memory+swap equal to memory: no swap on top (only where swap accounting is on).
  if (auto r = WriteOptional(mem + "/memory.memsw.limit_in_bytes", bytes); !r) return r;
  if (auto r = WriteFile(dirs[1] + "/pids.max", std::to_string(l.pids)); !r) return r;
  const std::string& cpu = dirs[2];
  if (auto r = WriteFile(cpu + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs)); !r) return r;
  int quota = l.cpu_percent * kCpuPeriodUs / 100;
  if (auto r = WriteFile(cpu + "/cpu.cfs_quota_us", std::to_string(quota)); !r) return r;
  return WriteFile(cpu + "/cpu.shares", std::to_string(kRendererCpuShares));
}

}  // namespace

const char* CgroupModeName(CgroupMode m) {
  switch (m) {
    case CgroupMode::kNone:
      return "none";
    case CgroupMode::kV1:
      return "v1";
    case CgroupMode::kV2:
      return "v2";
  }
  return "unknown";
}

CgroupSupport DetectCgroups() {
  std::string why_v2, why_v1;
  if (auto s = DetectV2(why_v2)) return *s;
  if (auto s = DetectV1(why_v1)) return *s;
  return {CgroupMode::kNone,
          "no cgroup: memory bounded per process only (" + why_v2 + "; " + why_v1 + ")",
          {}};
}

V2Prospect ProbeOwnCgroupV2() {
  V2Prospect p;
  std::string why;
  auto dir = OwnV2Dir(why);
  if (!dir) return p;
  p.dir = *dir;
  p.controllers = MissingController(p.dir).empty();
  auto procs = ReadSmallFile(p.dir + "/cgroup.procs");
  std::string self = std::to_string(::getpid()) + "\n";
  p.usable = procs && *procs == self && ::access(p.dir.c_str(), W_OK) == 0 &&
             ::access((p.dir + "/cgroup.subtree_control").c_str(), W_OK) == 0;
  return p;
}

int SweepStaleCgroups(const CgroupSupport& support) {
  int removed = 0;
  for (const auto& mine : support.broker_dirs) {
    std::string parent = mine.substr(0, mine.rfind('/'));
    for (const auto& name : Subdirs(parent)) {
      if (!name.starts_with("sbx-")) continue;
      pid_t pid = 0;
      auto [p, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), pid);
      if (ec != std::errc() || p != name.data() + name.size() || pid <= 0) continue;
      if (pid == ::getpid() || ProcessExists(pid)) continue;
      std::string dir = parent + "/" + name;
      for (const auto& sub : Subdirs(dir)) (void)RemoveDir(dir + "/" + sub);
      if (RemoveDir(dir)) ++removed;
    }
  }
  return removed;
}

void RemoveBrokerCgroups(const CgroupSupport& support) {
  // On v2 the broker itself may sit in sbx-PID/broker; that directory goes with the process.
  if (support.mode != CgroupMode::kV1) return;
  for (const auto& dir : support.broker_dirs) (void)::rmdir(dir.c_str());
}

Result<RendererCgroup> RendererCgroup::Create(const CgroupSupport& support,
                                              const CgroupLimits& limits) {
  if (support.mode == CgroupMode::kNone) return MakeError(Errc::kState, support.reason);
  RendererCgroup cg;
  cg.mode_ = support.mode;
  cg.limits_ = limits;
  std::string name = "r-" + std::to_string(next_cgroup++);
  for (const auto& base : support.broker_dirs) {
    std::string dir = base + "/" + name;
    // v1: another broker of this process may have just removed the emptied per-broker directory.
    bool made = ::mkdir(dir.c_str(), 0755) == 0 ||
                (errno == ENOENT && support.mode == CgroupMode::kV1 &&
                 ::mkdir(base.c_str(), 0755) == 0 && ::mkdir(dir.c_str(), 0755) == 0);
    if (!made) return SysError("mkdir " + dir);
    cg.dirs_.push_back(dir);  // from here the destructor removes it
  }
  cg.path_ = cg.dirs_.front();
  auto limited = cg.mode_ == CgroupMode::kV2 ? WriteLimitsV2(cg.path_, limits)
                                             : WriteLimitsV1(cg.dirs_, limits);
  if (!limited) return std::unexpected(limited.error());
  for (const auto& dir : cg.dirs_) {
    std::string procs = dir + "/cgroup.procs";
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return SysError("open " + procs);
    cg.procs_.push_back(std::move(fd));
  }
  // Kept open for the exit path, where a pread of it costs a fraction of an open.
  std::string oom = OomFile(cg.mode_, cg.dirs_.front());
  cg.oom_file_ = UniqueFd(::open(oom.c_str(), O_RDONLY | O_CLOEXEC));
  if (!cg.oom_file_) return SysError("open " + oom);
  return cg;
}

RendererCgroup::RendererCgroup(RendererCgroup&& o) noexcept { *this = std::move(o); }

RendererCgroup& RendererCgroup::operator=(RendererCgroup&& o) noexcept {
  if (this != &o) {
    Remove();
    mode_ = o.mode_;
    limits_ = o.limits_;
    path_ = std::move(o.path_);
    dirs_ = std::move(o.dirs_);
    procs_ = std::move(o.procs_);
    oom_file_ = std::move(o.oom_file_);
    o.dirs_.clear();
    o.procs_.clear();
  }
  return *this;
}

RendererCgroup::~RendererCgroup() { Remove(); }

std::vector<int> RendererCgroup::procs_fds() const {
  std::vector<int> out;
  for (const auto& fd : procs_) out.push_back(fd.get());
  return out;
}

CgroupUsageFiles RendererCgroup::UsageFiles() const {
  if (dirs_.empty()) return {};
  return {mode_, path_, dirs_};
}

CgroupUsage CgroupUsageFiles::Read() const {
  CgroupUsage u;
  if (mode == CgroupMode::kV2) {
    u.memory_bytes = ReadNumber(path + "/memory.current");
    u.pids = ReadNumber(path + "/pids.current");
    u.throttled_us = ReadNumber(path + "/cpu.stat", "throttled_usec");
    u.oom_kills = ReadNumber(path + "/memory.events", "oom_kill");
    return u;
  }
  if (dirs.size() < 3) return u;
  u.memory_bytes = ReadNumber(dirs[0] + "/memory.usage_in_bytes");
  u.pids = ReadNumber(dirs[1] + "/pids.current");
  int64_t throttled_ns = ReadNumber(dirs[2] + "/cpu.stat", "throttled_time");
  u.throttled_us = throttled_ns < 0 ? -1 : throttled_ns / 1000;
  u.oom_kills = ReadNumber(dirs[0] + "/memory.oom_control", "oom_kill");
  return u;
}

int64_t RendererCgroup::OomKills() const {
  if (!oom_file_) return -1;
  std::array<char, 1024> buf;
  ssize_t n = HandleEintr([&] { return ::pread(oom_file_.get(), buf.data(), buf.size(), 0); });
  if (n <= 0) return -1;
  return ParseNumber(std::string_view(buf.data(), static_cast<size_t>(n)), "oom_kill");
}

Result<void> RendererCgroup::SetHidden(bool hidden) {
  if (dirs_.empty()) return MakeError(Errc::kState, "no cgroup");
  if (mode_ == CgroupMode::kV2) {
    int weight = hidden ? kHiddenCpuWeight : kRendererCpuWeight;
    return WriteFile(path_ + "/cpu.weight", std::to_string(weight));
  }
  int shares = hidden ? kHiddenCpuShares : kRendererCpuShares;
  return WriteFile(dirs_[2] + "/cpu.shares", std::to_string(shares));
}

void RendererCgroup::Remove() {
  procs_.clear();
  oom_file_.reset();
  for (const auto& dir : dirs_) {
    if (!RemoveDir(dir)) {
      std::fprintf(stderr, "sbx: cannot remove cgroup %s: %s\n", dir.c_str(), std::strerror(errno));
    }
  }
  dirs_.clear();
}

}  // namespace sbx
