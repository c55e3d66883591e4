#include "broker/process_inspector.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

#include "broker/proc_stats.h"
#include "ipc/posix.h"

namespace sbx {

using nlohmann::json;

namespace {

// status and limits are under 2 KiB; stat a few hundred bytes whatever the process calls itself.
constexpr size_t kMaxProcFile = 8192;

template <typename T>
T Number(std::string_view s, T fallback = 0) {
  T v = fallback;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// errno values that mean the process (or the thread, or the fd) is no longer there.
bool Vanished(int err) { return err == ENOENT || err == ESRCH; }

// One process's reads: each one asks the hook first and notes why it failed, telling a process
// that is gone (stop reading, mark it) from one the kernel will not show (note it, go on).
class Reader {
 public:
  Reader(const ProcessTarget& t, const InspectStepHook& hook, ProcessInfo& out)
      : dir_("/proc/" + std::to_string(t.pid)), hook_(hook), out_(out) {}

  const std::string& dir() const { return dir_; }
  bool gone() const { return out_.gone; }

  std::optional<std::string> File(std::string_view name) {
    if (!Step(name)) return std::nullopt;
    auto text = ReadSmallFile(dir_ + "/" + std::string(name), kMaxProcFile);
    if (text) return std::move(*text);
    Failed(name, text.error().sys_errno);
    return std::nullopt;
  }

  // False once the process is gone; otherwise lets the test hook act first.
  bool Step(std::string_view name) {
    if (out_.gone) return false;
    if (hook_) hook_(name);
    return true;
  }

  void Failed(std::string_view what, int err) {
    if (Vanished(err) || ::access(dir_.c_str(), F_OK) != 0) {
      out_.gone = true;
      return;
    }
    out_.unreadable.push_back(std::string(what) + ": " + std::strerror(err));
  }

 private:
  std::string dir_;
  const InspectStepHook& hook_;
  ProcessInfo& out_;
};

// The entries of a /proc directory that are numbers (tasks, fds), in order; nullopt with errno
// set if it cannot be opened.
std::optional<std::vector<long>> NumberedEntries(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return std::nullopt;
  std::vector<long> out;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    long n = -1;
    std::string_view name = e->d_name;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
    if (ec == std::errc() && p == name.data() + name.size()) out.push_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) {
    errno = err;
    return std::nullopt;
  }
  std::sort(out.begin(), out.end());
  return out;
}

void ReadStat(Reader& r, ProcessInfo& p) {
  auto stat = r.File("stat");
  if (!stat) return;
  size_t open = stat->find('('), close = stat->rfind(')');
  if (open != std::string::npos && close != std::string::npos && close > open) {
    p.name = PrintableName(std::string_view(*stat).substr(open + 1, close - open - 1));
  }
  if (auto s = ProcStatField(*stat, 3); s && !s->empty()) p.state = (*s)[0];
  if (auto v = ProcStatField(*stat, 4)) p.ppid = Number<pid_t>(*v);
  if (auto v = ProcStatField(*stat, 10)) p.minor_faults = Number<uint64_t>(*v);
  if (auto v = ProcStatField(*stat, 12)) p.major_faults = Number<uint64_t>(*v);
}

void ReadStatus(Reader& r, ProcessInfo& p) {
  auto status = r.File("status");
  if (!status) return;
  std::istringstream nspid{std::string(ProcStatusField(*status, "NSpid"))};
  for (pid_t n; nspid >> n && p.nspid.size() < 32;) p.nspid.push_back(n);
  std::string_view uid = ProcStatusField(*status, "Uid");
  if (!uid.empty()) p.uid_outside = Number<long>(uid.substr(0, uid.find_first_of(" \t")), -1);
  if (auto v = ProcStatusField(*status, "Seccomp"); !v.empty()) p.seccomp_mode = Number<int>(v);
  if (auto v = ProcStatusField(*status, "Seccomp_filters"); !v.empty()) {
    p.seccomp_filters = Number<int>(v);
  }
  p.voluntary_switches = Number<uint64_t>(ProcStatusField(*status, "voluntary_ctxt_switches"));
  p.involuntary_switches = Number<uint64_t>(ProcStatusField(*status, "nonvoluntary_ctxt_switches"));
}

void ReadThreads(Reader& r, ProcessInfo& p) {
  if (!r.Step("task")) return;
  auto tids = NumberedEntries(r.dir() + "/task");
  if (!tids) return r.Failed("task", errno);
  p.thread_count = tids->size();
  for (long tid : *tids) {
    if (p.threads.size() == ProcessInfo::kMaxThreads) break;
    // A thread that ends between the listing and its read is simply not shown.
    std::string task = "task/" + std::to_string(tid);
    if (!r.Step(task)) return;
    auto comm = ReadSmallFile(r.dir() + "/" + task + "/comm", 256);
    auto stat = ReadSmallFile(r.dir() + "/" + task + "/stat", kMaxProcFile);
    if (!comm || !stat) continue;
    ProcessInfo::Thread t{static_cast<pid_t>(tid), PrintableName(*comm), '?'};
    if (auto s = ProcStatField(*stat, 3); s && !s->empty()) t.state = (*s)[0];
    p.threads.push_back(std::move(t));
  }
}

void ReadUids(Reader& r, ProcessInfo& p) {
  auto map = r.File("uid_map");
  if (map && p.uid_outside >= 0) p.uid_inside = MapUidInside(*map, p.uid_outside);
}

void ReadNamespaces(Reader& r, ProcessInfo& p) {
  for (const char* ns : {"user", "pid", "net", "ipc", "mnt", "uts", "cgroup", "time"}) {
    std::string link = std::string("ns/") + ns;
    if (!r.Step(link)) return;
    struct stat theirs, ours;
    if (::stat((r.dir() + "/" + link).c_str(), &theirs) != 0) {
      // An older kernel has no time namespace; that is no reason to mention it.
      if (errno == ENOENT && std::string_view(ns) == "time" && ::access(r.dir().c_str(), F_OK) == 0)
        continue;
      r.Failed(link, errno);
      if (r.gone()) return;
      continue;
    }
    bool shared = ::stat(("/proc/self/" + link).c_str(), &ours) == 0 &&
                  ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino;
    p.namespaces.push_back({ns, static_cast<uint64_t>(theirs.st_ino), shared});
  }
}

std::vector<std::string> Seals(int fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  std::vector<std::string> out;
  if (seals < 0) return out;
  const std::pair<int, const char*> names[] = {{F_SEAL_SEAL, "seal"},
                                               {F_SEAL_SHRINK, "shrink"},
                                               {F_SEAL_GROW, "grow"},
                                               {F_SEAL_WRITE, "write"},
                                               {F_SEAL_FUTURE_WRITE, "future-write"}};
  for (auto [bit, name] : names) {
    if (seals & bit) out.emplace_back(name);
  }
  return out;
}

// The identity of what the broker's descriptor refers to, and a memfd's seals.
std::optional<InspectPlan::Object> Resolve(const KnownFd& k) {
  struct stat mine;
  if (k.broker_fd < 0 || ::fstat(k.broker_fd, &mine) != 0) return std::nullopt;
  InspectPlan::Object o{k.label, mine.st_dev, mine.st_ino, {}};
  if (S_ISREG(mine.st_mode)) o.seals = Seals(k.broker_fd);
  return o;
}

using Objects = std::vector<InspectPlan::Object>;

// Names one fd of the process by what the broker holds: the same file is the same object.
void LabelFd(const Objects& known, const struct stat& st, ProcessInfo::Fd& fd) {
  fd.label = "unknown";
  for (const InspectPlan::Object& o : known) {
    if (o.dev != st.st_dev || o.ino != st.st_ino) continue;
    fd.label = o.label;
    fd.seals = o.seals;
    return;
  }
}

void ReadFds(const ProcessTarget& t, const Objects& known, Reader& r, ProcessInfo& p) {
  if (!r.Step("fd")) return;
  auto fds = NumberedEntries(r.dir() + "/fd");
  if (!fds) return r.Failed("fd", errno);
  p.fd_count = fds->size();
  if (!t.list_fds) return;
  for (long n : *fds) {
    if (p.fds.size() == ProcessInfo::kMaxFds) break;
    std::string link = "fd/" + std::to_string(n);
    if (!r.Step(link)) return;
    std::string path = r.dir() + "/" + link;
    char target[256];
    ssize_t len = ::readlink(path.c_str(), target, sizeof target);
    struct stat st;
    // An fd closed between the listing and here is not shown; a process gone ends the list.
    if (len < 0 || ::stat(path.c_str(), &st) != 0) {
      if (::access(r.dir().c_str(), F_OK) != 0) return r.Failed(link, ESRCH);
      continue;
    }
    ProcessInfo::Fd fd;
    fd.fd = static_cast<int>(n);
    fd.target = PrintableName({target, static_cast<size_t>(len)}, 128);
    LabelFd(known, st, fd);
    p.fds.push_back(std::move(fd));
  }
}

void ReadLimits(Reader& r, ProcessInfo& p) {
  if (auto limits = r.File("limits")) p.rlimits = ParseLimits(*limits);
}

// A process that exited during the reads left parts of them empty (a zombie has no fds): say so
// rather than show them as its own.
void MarkIfEnded(Reader& r, ProcessInfo& p) {
  if (!r.Step("stat (again)")) return;
  auto stat = ReadSmallFile(r.dir() + "/stat", kMaxProcFile);
  if (!stat) {
    p.gone = true;
    return;
  }
  if (auto s = ProcStatField(*stat, 3); s && *s == "Z") {
    p.state = 'Z';
    p.gone = true;
  }
}

ProcessInfo ReadTarget(const ProcessTarget& target, const Objects& known,
                       const InspectStepHook& hook) {
  ProcessInfo p;
  p.role = target.role;
  p.id = target.id;
  p.pid = target.pid;
  if (target.pid <= 0) {
    p.gone = true;
    return p;
  }
  Reader r(target, hook, p);
  ReadStat(r, p);
  ReadStatus(r, p);
  ReadThreads(r, p);
  ReadUids(r, p);
  ReadNamespaces(r, p);
  ReadFds(target, known, r, p);
  ReadLimits(r, p);
  MarkIfEnded(r, p);
  return p;
}

}  // namespace

std::string_view ProcessRoleName(ProcessRole role) {
  switch (role) {
    case ProcessRole::kBroker:
      return "broker";
    case ProcessRole::kHolder:
      return "namespace-holder";
    case ProcessRole::kZygote:
      return "zygote";
    case ProcessRole::kInit:
      return "init";
    case ProcessRole::kRenderer:
      return "renderer";
  }
  return "?";
}

std::string PrintableName(std::string_view raw, size_t max) {
  if (!raw.empty() && raw.back() == '\n') raw.remove_suffix(1);
  std::string out(raw.substr(0, max));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

std::vector<ProcessInfo::Rlimit> ParseLimits(std::string_view text) {
  // "%-25s %-20s %-20s %-10s": the name has spaces, so it is the first 26 columns.
  constexpr size_t kNameWidth = 26;
  std::vector<ProcessInfo::Rlimit> out;
  size_t at = text.find('\n');  // the header
  while (at != std::string_view::npos && at + 1 < text.size() && out.size() < 32) {
    size_t end = text.find('\n', at + 1);
    std::string_view line = text.substr(at + 1, end == std::string_view::npos ? end : end - at - 1);
    at = end;
    if (line.size() <= kNameWidth) continue;
    std::istringstream rest{std::string(line.substr(kNameWidth))};
    ProcessInfo::Rlimit l{std::string(Trim(line.substr(0, kNameWidth))), "", ""};
    if (rest >> l.soft >> l.hard && !l.name.empty()) out.push_back(std::move(l));
  }
  return out;
}

long MapUidInside(std::string_view uid_map, long outside) {
  std::istringstream in{std::string(uid_map.substr(0, uid_map.find('\n')))};
  long inside = 0, lower = 0, count = 0;
  if (!(in >> inside >> lower >> count)) return -1;
  if (outside < lower || outside - lower >= count) return -1;
  return inside + (outside - lower);
}

bool ExitedSince(const UniqueFd& pidfd) {
  if (!pidfd.valid()) return false;
  auto ready = WaitReadable(pidfd.get(), 0);
  return ready && *ready;
}

ProcessInfo InspectProcess(const ProcessTarget& target, const InspectStepHook& hook) {
  return ReadPlan(PlanProcess(target, -1), hook);
}

InspectPlan PlanProcess(ProcessTarget target, int pidfd) {
  InspectPlan plan;
  for (const KnownFd& k : target.known) {
    if (auto o = Resolve(k)) plan.objects.push_back(std::move(*o));
  }
  target.known.clear();
  plan.target = std::move(target);
  if (pidfd >= 0) {
    plan.pidfd = UniqueFd(::fcntl(pidfd, F_DUPFD_CLOEXEC, 0));
    if (!plan.pidfd) plan.unguarded_errno = errno;
  }
  return plan;
}

ProcessInfo ReadPlan(const InspectPlan& plan, const InspectStepHook& hook) {
  ProcessInfo p;
  if (plan.unguarded_errno != 0) {
    // Without its pidfd nothing would tell this process from another that took its pid.
    p.role = plan.target.role;
    p.id = plan.target.id;
    p.pid = plan.target.pid;
    p.unreadable.push_back(std::string("pidfd copy: ") + std::strerror(plan.unguarded_errno));
  } else {
    p = ReadTarget(plan.target, plan.objects, hook);
  }
  if (ExitedSince(plan.pidfd)) {
    // Whatever was read may be another process's that took the pid: none of it is shown.
    ProcessInfo gone;
    gone.role = p.role;
    gone.id = p.id;
    gone.pid = p.pid;
    gone.gone = true;
    p = std::move(gone);
  }
  p.spare = plan.spare;
  for (const InspectPlan& child : plan.children) p.children.push_back(ReadPlan(child, hook));
  return p;
}

ProcessInfo InspectRenderer(const RendererEnds& e, const InspectStepHook& hook) {
  return ReadPlan(PlanRenderer(e), hook);
}

InspectPlan PlanRenderer(const RendererEnds& e) {
  ProcessTarget renderer{ProcessRole::kRenderer, e.pid, e.id, {}, true};
  renderer.known = {{e.dev_null, "/dev/null"},
                    {e.log, "log pipe: stdout and stderr, to the broker"},
                    {e.commands, "control pipe: commands from the broker"},
                    {e.messages, "control pipe: messages to the broker"},
                    {e.frames, "frames memfd"},
                    {e.queue, "heartbeat queue"}};
  InspectPlan r = PlanProcess(std::move(renderer), e.pidfd);
  if (e.init_pid <= 0) return r;
  InspectPlan init = PlanProcess({ProcessRole::kInit, e.init_pid, e.id, {}, true}, e.init_pidfd);
  init.children.push_back(std::move(r));
  return init;
}

json ProcessInfoToJson(const ProcessInfo& p) {
  json j = {{"role", std::string(ProcessRoleName(p.role))}, {"pid", p.pid}};
  if (p.id != 0) j["id"] = p.id;
  if (p.spare) j["spare"] = true;
  if (p.gone) j["gone"] = true;
  j["nspid"] = p.nspid;
  j["name"] = p.name;
  j["state"] = std::string(1, p.state);
  j["ppid"] = p.ppid;
  json threads = json::array();
  for (const auto& t : p.threads) {
    threads.push_back({{"tid", t.tid}, {"name", t.name}, {"state", std::string(1, t.state)}});
  }
  j["threads"] = threads;
  j["thread_count"] = p.thread_count;
  j["uid"] = {{"outside", p.uid_outside}, {"inside", p.uid_inside}};
  json ns = json::object();
  for (const auto& n : p.namespaces) {
    ns[n.name] = {{"inode", n.inode}, {"verdict", n.shared ? "shared" : "new"}};
  }
  j["namespaces"] = ns;
  json fds = json::array();
  for (const auto& f : p.fds) {
    json fd = {{"fd", f.fd}, {"target", f.target}, {"label", f.label}};
    if (!f.seals.empty()) fd["seals"] = f.seals;
    fds.push_back(std::move(fd));
  }
  j["fds"] = fds;
  j["fd_count"] = p.fd_count;
  j["seccomp"] = {{"mode", p.seccomp_mode}, {"filters", p.seccomp_filters}};
  json limits = json::object();
  for (const auto& l : p.rlimits) limits[l.name] = {{"soft", l.soft}, {"hard", l.hard}};
  j["rlimits"] = limits;
  j["context_switches"] = {{"voluntary", p.voluntary_switches},
                           {"involuntary", p.involuntary_switches}};
  j["page_faults"] = {{"minor", p.minor_faults}, {"major", p.major_faults}};
  if (!p.unreadable.empty()) j["unreadable"] = p.unreadable;
  json children = json::array();
  for (const auto& c : p.children) children.push_back(ProcessInfoToJson(c));
  j["children"] = children;
  return j;
}

}  // namespace sbx
