#include "tests/integration/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "broker/broker.h"
#include "broker/launcher.h"
#include "broker/proc_stats.h"
#include "ipc/posix.h"

namespace sbx::testing {

bool RunUntil(Broker& b, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  int64_t deadline = MonotonicNs() + timeout.count() * 1'000'000;
  while (!done()) {
    int64_t left_ms = (deadline - MonotonicNs()) / 1'000'000;
    if (left_ms <= 0) return false;
    if (!b.loop().Dispatch(static_cast<int>(std::min<int64_t>(left_ms, 100)))) return false;
  }
  return true;
}

bool ReceiveLines(Broker& b, int fd, size_t lines, std::string& got,
                  std::chrono::milliseconds timeout) {
  bool closed = false;
  auto enough = [&] {
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    closed = n == 0;
    return closed || static_cast<size_t>(std::count(got.begin(), got.end(), '\n')) >= lines;
  };
  return RunUntil(b, enough, timeout) && !closed;
}

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}
}  // namespace

std::string BinPath(const std::string& name) { return std::string(SBX_BIN_DIR) + "/" + name; }

std::string UniqueName(const std::string& stem) {
  static std::atomic<int> counter{0};
  return stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

BrokerProcess::BrokerProcess(std::vector<std::string> args, BrokerStdio stdio) {
  control_ = "/tmp/" + UniqueName("sbx-test") + ".sock";
  auto pipe = MakePipe(false);
  if (!pipe) return;
  LaunchSpec spec;
  spec.argv = {BinPath("sbx-broker"), "--json", "--control", control_};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.fds = {{pipe->write.get(), 1}};
  spec.stdio = {stdio.stdin_fd, -1, stdio.stderr_fd};
  auto child = Launch(spec);
  if (!child) return;
  pid_ = child->process.pid();
  pidfd_ = child->process.Release();
  out_ = std::move(pipe->read);
  (void)SetNonBlocking(out_.get(), true);
}

BrokerProcess::~BrokerProcess() {
  if (pid_ > 0 && !reaped_) {
    (void)PidfdSendSignal(pidfd_.get(), SIGKILL);
    siginfo_t si{};
    (void)HandleEintr([&] { return ::waitid(P_PIDFD, pidfd_.get(), &si, WEXITED); });
  }
  ::unlink(control_.c_str());
}

bool BrokerProcess::ReadMore(Clock::time_point deadline) {
  pollfd p{out_.get(), POLLIN, 0};
  int r = HandleEintr([&] { return ::poll(&p, 1, RemainingMs(deadline)); });
  if (r <= 0) return false;
  char buf[8192];
  ssize_t n = HandleEintr([&] { return ::read(out_.get(), buf, sizeof buf); });
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = buffer_.find('\n')) != std::string::npos) {
    auto j = json::parse(buffer_.substr(0, nl), nullptr, false);
    buffer_.erase(0, nl + 1);
    if (!j.is_discarded()) {
      pending_.push_back(j);
      history_.push_back(j);
    }
  }
  return true;
}

std::optional<json> BrokerProcess::WaitFor(const std::function<bool(const json&)>& pred,
                                           std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (pred(*it)) {
        json j = *it;
        pending_.erase(it);
        return j;
      }
    }
    if (Clock::now() >= deadline || !out_.valid()) return std::nullopt;
    if (!ReadMore(deadline) && Clock::now() >= deadline) return std::nullopt;
  }
}

std::optional<json> BrokerProcess::WaitForEvent(const std::string& event, int id,
                                                std::chrono::milliseconds timeout) {
  return WaitFor(
      [&](const json& j) {
        return j.value("event", "") == event && (id < 0 || j.value("id", -1) == id);
      },
      timeout);
}

json BrokerProcess::Ctl(const std::string& line) {
  ControlConnection c(control_);
  if (!c.connected()) return {{"harness_error", "cannot connect"}};
  if (!c.SendRaw(line + "\n")) return {{"harness_error", "send failed"}};
  auto r = c.ReadReply(std::chrono::seconds(10));
  if (!r) return {{"harness_error", "no reply"}};
  return *r;
}

std::optional<siginfo_t> BrokerProcess::SignalAndWait(int sig, std::chrono::milliseconds timeout) {
  if (!Signal(sig)) return std::nullopt;
  return WaitExit(timeout);
}

bool BrokerProcess::Signal(int sig) {
  if (pid_ <= 0 || reaped_) return false;
  return PidfdSendSignal(pidfd_.get(), sig).has_value();
}

std::optional<siginfo_t> BrokerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0 || reaped_) return std::nullopt;
  auto ready = WaitReadable(pidfd_.get(), static_cast<int>(timeout.count()));
  if (!ready || !*ready) return std::nullopt;
  siginfo_t si{};
  if (HandleEintr([&] { return ::waitid(P_PIDFD, pidfd_.get(), &si, WEXITED); }) != 0) {
    return std::nullopt;
  }
  reaped_ = true;
  // Collect the events it printed before exiting.
  while (ReadMore(Clock::now() + std::chrono::milliseconds(100))) {
  }
  return si;
}

ControlConnection::ControlConnection(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return;
  // The broker may still be binding its socket right after start: retry briefly.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (Clock::now() >= deadline) return;
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 20);  // retry interval for a socket that does not exist yet
  }
  fd_ = std::move(fd);
}

bool ControlConnection::SendRaw(const std::string& bytes) {
  return ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(bytes.size());
}

std::optional<json> ControlConnection::ReadReply(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      auto j = json::parse(buffer_.substr(0, nl), nullptr, false);
      buffer_.erase(0, nl + 1);
      if (j.is_discarded()) return std::nullopt;
      return j;
    }
    auto ready = WaitReadable(fd_.get(), RemainingMs(deadline));
    if (!ready || !*ready) return std::nullopt;
    char buf[65536];
    ssize_t n = HandleEintr([&] { return ::recv(fd_.get(), buf, sizeof buf, 0); });
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::vector<std::string> RendererSideFds(pid_t pid) {
  std::vector<std::string> fds;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return fds;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    std::string link = dir + "/" + e->d_name;
    if (::readlink(link.c_str(), target, sizeof target - 1) <= 0) continue;
    if (std::string_view(target).starts_with("socket:")) continue;
    fds.emplace_back(target);
  }
  ::closedir(d);
  return fds;
}

std::vector<std::string> QueueEntries(pid_t broker_pid) {
  std::vector<std::string> out;
  std::string prefix = "sbx-" + std::to_string(broker_pid) + "-";
  DIR* d = ::opendir("/dev/mqueue");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::string_view(e->d_name).starts_with(prefix)) out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

std::vector<std::string> ShmEntries(std::string_view prefix) {
  std::vector<std::string> out;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::string_view(e->d_name).starts_with(prefix)) out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

bool ProcessAlive(pid_t pid) {
  // A zombie still "exists" for kill(0); look at its state instead.
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  const char* close_paren = std::strrchr(buf, ')');
  return close_paren != nullptr && close_paren[1] == ' ' && close_paren[2] != 'Z' &&
         close_paren[2] != 'X';
}

nlohmann::json StatsObject(BrokerProcess& b, const std::string& key) {
  nlohmann::json stats = b.Ctl("stats");
  return stats.contains(key) ? stats[key] : nlohmann::json::object();
}

int WaitForStatsPid(BrokerProcess& b, const std::string& key, int not_pid,
                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int pid = StatsObject(b, key).value("pid", 0);
    if (pid > 0 && pid != not_pid) return pid;
  }
  return 0;
}

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(tasks.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(tasks + "/" + e->d_name + "/children");
    for (pid_t child; in >> child;) out.push_back(child);
  }
  ::closedir(d);
  return out;
}

bool WaitProcessGone(pid_t pid, std::chrono::milliseconds timeout) {
  auto pidfd = PidfdOpen(pid);
  if (!pidfd) return !ProcessAlive(pid);
  auto ready = WaitReadable(pidfd->get(), static_cast<int>(timeout.count()));
  return ready && *ready;
}

namespace {

// Whether every thread listed in /proc/PID/task is in state T; false if there are none.
bool AllThreadsStopped(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return false;
  int threads = 0;
  for (const auto& task : tasks) {
    std::ifstream stat(task.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    // "TID (comm) STATE ...": comm may hold spaces and parentheses, so read after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) return false;
    if (line[close + 2] != 'T') return false;
    ++threads;
  }
  return threads > 0;
}

}  // namespace

std::optional<ProcessInfo::Rlimit> ProcLimit(pid_t pid, std::string_view name) {
  auto text = ReadSmallFile("/proc/" + std::to_string(pid) + "/limits");
  if (!text) return std::nullopt;
  for (auto& l : ParseLimits(*text)) {
    if (l.name == name) return std::move(l);
  }
  return std::nullopt;
}

std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      return v.substr(v.find_first_not_of(" \t"));
    }
  }
  return "";
}

bool WaitProcessStopped(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!AllThreadsStopped(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::vector<int> ThreadNices(pid_t pid) {
  std::vector<int> out;
  auto tids = ThreadIds(pid);
  if (!tids) return out;
  for (pid_t tid : *tids) {
    auto stat =
        ReadSmallFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
    if (!stat) continue;
    // Fields counted from the last ')': the command name may hold anything.
    std::istringstream rest(stat->substr(stat->rfind(')') + 2));
    std::string word;
    for (int field = 3; field <= 19 && rest >> word; ++field) {
      if (field == 19) out.push_back(std::stoi(word));
    }
  }
  return out;
}

}  // namespace sbx::testing
