#include "broker/child_process.h"

#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ipc/posix.h"

namespace sbx {

namespace {

// The pids every ChildProcess of this process holds, so the stray sweep can pass over them
// without reading their /proc entries. An owned pid is an unreaped child, so it cannot be reused
// while it is listed. A mutex: nothing ties a ChildProcess to one thread.
class OwnedPids {
 public:
  static OwnedPids& Get() {
    static OwnedPids owned;
    return owned;
  }
  void Add(pid_t pid) {
    std::lock_guard lock(mutex_);
    pids_.insert(pid);
  }
  void Remove(pid_t pid) {
    std::lock_guard lock(mutex_);
    pids_.erase(pid);
  }
  bool Has(pid_t pid) {
    std::lock_guard lock(mutex_);
    return pids_.contains(pid);
  }

 private:
  std::mutex mutex_;
  std::unordered_set<pid_t> pids_;
};

// How often KillAndReap looks for strays while it waits.
constexpr int kStraySweepMs = 20;

// __WALL: a child whose exit signal is not SIGCHLD (a CLONE_PARENT child inherits whatever its
// creator had) is invisible to waitid without it.
constexpr int kWaitFlags = WEXITED | __WALL;

Result<void> SendSignal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0) {
    if (errno == ESRCH) return {};  // exited, not yet reaped: its pidfd will say so
    return SysError("pidfd_send_signal");
  }
  return {};
}

// waitid(P_PIDFD, WNOHANG): the exit if there is one, nullopt while it runs. A child already
// reaped (ECHILD) is reported as killed: it is gone, and we never learned how.
std::optional<siginfo_t> WaitNoHang(int pidfd, int extra_flags = 0) {
  siginfo_t si{};
  int r = HandleEintr(
      [&] { return ::waitid(P_PIDFD, pidfd, &si, kWaitFlags | WNOHANG | extra_flags); });
  if (r != 0) {
    si.si_code = CLD_KILLED;
    si.si_status = SIGKILL;
    return si;
  }
  if (si.si_pid == 0) return std::nullopt;
  return si;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  return v;
}

// The pids in each namespace, outermost first ("NSpid:" of /proc/PID/status; zombies too).
std::vector<int64_t> NamespacePids(const std::string& pid) {
  std::vector<int64_t> out;
  auto status = ReadSmallFile("/proc/" + pid + "/status");
  if (!status) return out;
  std::string_view s(*status);
  size_t at = s.find("\nNSpid:");
  if (at == std::string_view::npos) return out;
  s = s.substr(at + 7);
  s = s.substr(0, s.find('\n'));
  while (!s.empty()) {
    size_t start = s.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    size_t end = std::min(s.find_first_of(" \t"), s.size());
    if (auto v = ParseInt(s.substr(0, end))) out.push_back(*v);
    s.remove_prefix(end);
  }
  return out;
}

// Fields 3 onwards of /proc/PID/stat (the command name, field 2, may hold spaces and
// parentheses; nothing after its last ')' can): [0] is the state, [2] the process group, [19]
// the start time. Empty if unreadable.
std::vector<std::string> StatFieldsFrom3(const std::string& pid) {
  std::vector<std::string> out;
  auto stat = ReadSmallFile("/proc/" + pid + "/stat");
  if (!stat) return out;
  size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return out;
  std::string_view s(*stat);
  s.remove_prefix(paren + 1);
  while (!s.empty()) {
    size_t start = s.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    size_t end = std::min(s.find_first_of(" \n"), s.size());
    out.emplace_back(s.substr(0, end));
    s.remove_prefix(end);
  }
  return out;
}

// Field `n` (counted from 1, n >= 3) of /proc/PID/stat as StatFieldsFrom3 gave them, or -1.
int64_t StatField(const std::vector<std::string>& fields, size_t n) {
  return fields.size() > n - 3 ? ParseInt(fields[n - 3]).value_or(-1) : -1;
}
constexpr size_t kStatGroup = 5;
// In clock ticks since boot: with the pid, it names one process, which a pid alone does not
// once that one is reaped.
constexpr size_t kStatStartTime = 22;

// The children the last sweep took for strays, each with its start time. A child made with
// CLONE_PARENT by a process we own (a zygote's joiner) starts in that process's group and is
// owned only once its announcement is read; until its own setpgid, a moment later, it looks like
// a stray. So a stray is killed only when a second sweep finds the same process still one.
class StraySuspects {
 public:
  static StraySuspects& Get() {
    static StraySuspects suspects;
    return suspects;
  }
  // Records this sweep's suspects and returns the last sweep's.
  std::unordered_map<pid_t, int64_t> Exchange(std::unordered_map<pid_t, int64_t> now) {
    std::lock_guard lock(mutex_);
    return std::exchange(seen_, std::move(now));
  }

 private:
  std::mutex mutex_;
  std::unordered_map<pid_t, int64_t> seen_;
};

// Every child of this process: each thread has its own list.
std::vector<std::string> OurChildren() {
  std::vector<std::string> out;
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) return out;
  while (dirent* e = ::readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    auto text = ReadSmallFile(std::string("/proc/self/task/") + e->d_name + "/children");
    if (!text) continue;
    std::string_view s(*text);
    while (!s.empty()) {
      size_t end = std::min(s.find(' '), s.size());
      if (end > 0) out.emplace_back(s.substr(0, end));
      s.remove_prefix(std::min(end + 1, s.size()));
    }
  }
  ::closedir(tasks);
  return out;
}

// `stat` is the child's StatFieldsFrom3.
bool IsStray(const std::string& pid, const std::vector<std::string>& stat, int64_t our_group,
             size_t our_depth) {
  auto ns = NamespacePids(pid);
  // Below our pid namespace: made inside a sandboxed launch, where only pid 1 and 2 are ours.
  if (ns.size() > our_depth) {
    return !(ns.size() == our_depth + 1 && (ns.back() == 1 || ns.back() == 2));
  }
  int64_t group = StatField(stat, kStatGroup);
  return group >= 0 && group != our_group && std::to_string(group) != pid;
}

}  // namespace

ChildProcess::ChildProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {
  if (pidfd_.valid()) OwnedPids::Get().Add(pid_);
}

UniqueFd ChildProcess::Release() {
  if (pidfd_.valid()) OwnedPids::Get().Remove(pid_);
  return std::move(pidfd_);
}

Result<ChildProcess> ChildProcess::Adopt(pid_t pid) {
  auto fd = PidfdOpen(pid);
  if (!fd) return std::unexpected(fd.error());
  return ChildProcess(pid, std::move(*fd));
}

void ChildProcess::KillAndReapPid(pid_t pid) {
  if (pid <= 0) return;
  if (auto child = Adopt(pid)) return;  // its destructor kills and reaps it
  // kill() is safe on an unreaped child of ours. With no pidfd to poll, look every millisecond.
  (void)::kill(pid, SIGKILL);
  const int64_t deadline = MonotonicNs() + kReapBoundNs;
  while (MonotonicNs() < deadline) {
    siginfo_t si{};
    int r = HandleEintr(
        [&] { return ::waitid(P_PID, static_cast<id_t>(pid), &si, kWaitFlags | WNOHANG); });
    if (r != 0 || si.si_pid != 0) return;
    (void)ReapStrayChildren();  // the count only matters to the broker
    timespec ms{0, 1'000'000};
    ::nanosleep(&ms, nullptr);
  }
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (valid() && !KillAndReap(MonotonicNs() + kReapBoundNs)) {
      OwnedPids::Get().Remove(pid_);  // left to the stray sweep
    }
    pid_ = other.pid_;
    exited_ = other.exited_;
    pidfd_ = std::move(other.pidfd_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (!valid()) return;
  if (auto r = KillAndReap(MonotonicNs() + kReapBoundNs); !r) {
    OwnedPids::Get().Remove(pid_);  // left to the stray sweep
    // Nothing more can be done without blocking; say so rather than hang.
    std::fprintf(stderr, "sbx: child %d did not exit within %lld ms of SIGKILL; leaving it\n",
                 static_cast<int>(pid_), static_cast<long long>(kReapBoundNs / 1'000'000));
  }
}

Result<void> ChildProcess::Signal(int sig) {
  if (!valid()) return MakeError(Errc::kState, "no child process");
  return SendSignal(pidfd_.get(), sig);
}

std::optional<ExitInfo> ChildProcess::TryReap(KillReason reason) {
  if (!valid()) return std::nullopt;
  auto si = WaitNoHang(pidfd_.get());
  if (!si) return std::nullopt;
  pidfd_.reset();
  OwnedPids::Get().Remove(pid_);
  return ClassifyExit(si->si_code, si->si_status, reason);
}

std::optional<ExitInfo> ChildProcess::TryWait(KillReason reason) {
  if (!valid()) return std::nullopt;
  auto si = WaitNoHang(pidfd_.get(), WNOWAIT);
  if (!si) return std::nullopt;
  exited_ = true;
  return ClassifyExit(si->si_code, si->si_status, reason);
}

Result<ExitInfo> ChildProcess::KillAndReap(int64_t deadline_ns) {
  if (!valid()) return MakeError(Errc::kState, "no child process");
  if (auto r = SendSignal(pidfd_.get(), SIGKILL); !r) return std::unexpected(r.error());
  for (;;) {
    if (auto exit = TryReap()) return *exit;
    int64_t left_ms = (deadline_ns - MonotonicNs()) / 1'000'000;
    if (left_ms <= 0) return MakeError(Errc::kTimeout, "child did not exit after SIGKILL");
    auto ready =
        WaitReadable(pidfd_.get(), static_cast<int>(std::min<int64_t>(left_ms, kStraySweepMs)));
    if (ready && !*ready) (void)ReapStrayChildren();  // the count only matters to the broker
  }
}

int ReapStrayChildren() {
  int64_t our_group = ::getpgrp();
  size_t our_depth = NamespacePids("self").size();
  std::unordered_map<pid_t, int64_t> suspects;
  for (const std::string& pid : OurChildren()) {
    auto number = ParseInt(pid);
    if (!number) continue;
    if (OwnedPids::Get().Has(static_cast<pid_t>(*number))) continue;
    auto stat = StatFieldsFrom3(pid);
    if (!IsStray(pid, stat, our_group, our_depth)) continue;
    suspects.emplace(static_cast<pid_t>(*number), StatField(stat, kStatStartTime));
  }
  const int seen = static_cast<int>(suspects.size());
  const auto last = StraySuspects::Get().Exchange(suspects);
  for (const auto& [pid, start] : suspects) {
    auto before = last.find(pid);
    if (before == last.end() || before->second != start || start < 0) continue;
    // Our unreaped child: its pid cannot have been reused between the listing and here.
    auto pidfd = PidfdOpen(pid);
    if (!pidfd) continue;
    (void)SendSignal(pidfd->get(), SIGKILL);  // best effort: the next sweep tries again
    (void)WaitNoHang(pidfd->get());           // reaps it if it is dead already
  }
  return seen;
}

std::vector<ChildProcess> AdoptUnannouncedLaunches(std::span<const pid_t> joiners) {
  std::vector<ChildProcess> out;
  if (joiners.empty()) return out;
  const size_t our_depth = NamespacePids("self").size();
  std::vector<std::pair<int64_t, pid_t>> found;  // pid in its namespace, pid in ours
  for (const std::string& pid : OurChildren()) {
    auto number = ParseInt(pid);
    if (!number || OwnedPids::Get().Has(static_cast<pid_t>(*number))) continue;
    auto ns = NamespacePids(pid);
    if (ns.size() != our_depth + 1 || (ns.back() != 1 && ns.back() != 2)) continue;
    // The joiner leads the group its init and program are made in: another launch (another
    // zygote's, in a process with several brokers) is in a group of its own joiner's.
    const int64_t group = StatField(StatFieldsFrom3(pid), kStatGroup);
    if (std::ranges::find(joiners, group) == joiners.end()) continue;
    found.emplace_back(ns.back(), static_cast<pid_t>(*number));
  }
  // Programs (pid 2) before inits (pid 1): an init cannot finish exiting while its program is
  // unreaped, so whoever reaps them in this order never waits on one that cannot end yet.
  std::ranges::stable_sort(found, std::greater{}, &decltype(found)::value_type::first);
  for (auto [ns_pid, pid] : found) {
    // Our unreaped child: its pid cannot have been reused between the listing and here.
    if (auto child = ChildProcess::Adopt(pid)) {
      out.push_back(std::move(*child));
    } else {
      ChildProcess::KillAndReapPid(pid);  // no pidfd to be had (out of fds): at once, bounded
    }
  }
  return out;
}

}  // namespace sbx
