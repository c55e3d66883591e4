#include "ipc/posix.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>

namespace sbx {

Result<PipePair> MakePipe(bool nonblocking) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) != 0) return SysError("pipe2");
  return PipePair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<size_t> ReadSome(int fd, std::span<uint8_t> buf) {
  ssize_t n = HandleEintr([&] { return ::read(fd, buf.data(), buf.size()); });
  if (n < 0) return SysError("read");
  return static_cast<size_t>(n);
}

Result<size_t> WriteSome(int fd, std::span<const uint8_t> data) {
  ssize_t n = HandleEintr([&] { return ::write(fd, data.data(), data.size()); });
  if (n < 0) {
    if (errno == EPIPE) return std::unexpected(Error{Errc::kPeerClosed, EPIPE, "write"});
    return SysError("write");
  }
  return static_cast<size_t>(n);
}

Result<void> WriteAll(int fd, std::span<const uint8_t> data) {
  while (!data.empty()) {
    auto n = WriteSome(fd, data);
    if (!n) {
      if (n.error().sys_errno != EAGAIN) return std::unexpected(n.error());
      pollfd p{fd, POLLOUT, 0};
      if (HandleEintr([&] { return ::poll(&p, 1, -1); }) < 0) return SysError("poll");
      continue;
    }
    data = data.subspan(*n);
  }
  return {};
}

Result<size_t> ReadFull(int fd, std::span<uint8_t> buf) {
  size_t got = 0;
  while (got < buf.size()) {
    auto n = ReadSome(fd, buf.subspan(got));
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
    got += *n;
  }
  return got;
}

Result<std::string> SelfExePath() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return SysError("readlink(/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return SysError("open " + path);
  std::string out;
  std::array<uint8_t, 4096> buf;
  while (out.size() < max_bytes) {
    auto n = ReadSome(fd.get(), std::span(buf).first(std::min(buf.size(), max_bytes - out.size())));
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  return out;
}

Result<void> SetNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return SysError("fcntl(F_GETFL)");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) return SysError("fcntl(F_SETFL)");
  return {};
}

int64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Result<bool> WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int r = HandleEintr([&] { return ::poll(&p, 1, timeout_ms); });
  if (r < 0) return SysError("poll");
  return r > 0;
}

Result<void> RandomBytes(std::span<uint8_t> buf) {
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = HandleEintr([&] { return ::getrandom(buf.data() + got, buf.size() - got, 0); });
    if (n < 0) return SysError("getrandom");
    got += static_cast<size_t>(n);
  }
  return {};
}

Result<UniqueFd> BlockSignalsToFd(std::initializer_list<int> sigs) {
  sigset_t mask;
  if (::sigemptyset(&mask) != 0) return SysError("sigemptyset");
  for (int sig : sigs) {
    if (::sigaddset(&mask, sig) != 0) return SysError(std::string("sigaddset ") + SignalName(sig));
  }
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return SysError("sigprocmask");
  int fd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return SysError("signalfd");
  return UniqueFd(fd);
}

Result<void> IgnoreSignal(int sig) {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  if (::sigemptyset(&sa.sa_mask) != 0 || ::sigaction(sig, &sa, nullptr) != 0) {
    return SysError(std::string("sigaction(") + SignalName(sig) + ")");
  }
  return {};
}

Result<UniqueFd> PidfdOpen(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return SysError("pidfd_open");
  return UniqueFd(static_cast<int>(fd));
}

Result<void> PidfdSendSignal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0) {
    return SysError("pidfd_send_signal");
  }
  return {};
}

namespace {
struct SignalEntry {
  int sig;
  const char* name;
};
constexpr std::array kSignals{
    SignalEntry{SIGHUP, "SIGHUP"},       SignalEntry{SIGINT, "SIGINT"},
    SignalEntry{SIGQUIT, "SIGQUIT"},     SignalEntry{SIGILL, "SIGILL"},
    SignalEntry{SIGTRAP, "SIGTRAP"},     SignalEntry{SIGABRT, "SIGABRT"},
    SignalEntry{SIGBUS, "SIGBUS"},       SignalEntry{SIGFPE, "SIGFPE"},
    SignalEntry{SIGKILL, "SIGKILL"},     SignalEntry{SIGUSR1, "SIGUSR1"},
    SignalEntry{SIGSEGV, "SIGSEGV"},     SignalEntry{SIGUSR2, "SIGUSR2"},
    SignalEntry{SIGPIPE, "SIGPIPE"},     SignalEntry{SIGALRM, "SIGALRM"},
    SignalEntry{SIGTERM, "SIGTERM"},     SignalEntry{SIGCHLD, "SIGCHLD"},
    SignalEntry{SIGCONT, "SIGCONT"},     SignalEntry{SIGSTOP, "SIGSTOP"},
    SignalEntry{SIGTSTP, "SIGTSTP"},     SignalEntry{SIGTTIN, "SIGTTIN"},
    SignalEntry{SIGTTOU, "SIGTTOU"},     SignalEntry{SIGXCPU, "SIGXCPU"},
    SignalEntry{SIGXFSZ, "SIGXFSZ"},     SignalEntry{SIGSYS, "SIGSYS"},
    SignalEntry{SIGSTKFLT, "SIGSTKFLT"}, SignalEntry{SIGURG, "SIGURG"},
    SignalEntry{SIGVTALRM, "SIGVTALRM"}, SignalEntry{SIGPROF, "SIGPROF"},
    SignalEntry{SIGWINCH, "SIGWINCH"},   SignalEntry{SIGIO, "SIGIO"},
    SignalEntry{SIGPOLL, "SIGPOLL"},  // the same number as SIGIO: accepted, never printed
    SignalEntry{SIGPWR, "SIGPWR"},
};
}  // namespace

const char* SignalName(int sig) {
  for (const auto& e : kSignals) {
    if (e.sig == sig) return e.name;
  }
  // Real-time and unknown signals: "SIG42", from a table built once (static storage, so the
  // pointer stays valid, as for the named ones).
  static const auto kNumbered = [] {
    std::array<std::array<char, 12>, 65> names{};
    for (size_t i = 0; i < names.size(); ++i) {
      std::snprintf(names[i].data(), names[i].size(), "SIG%zu", i);
    }
    return names;
  }();
  if (sig >= 0 && static_cast<size_t>(sig) < kNumbered.size()) return kNumbered[sig].data();
  return "SIG?";
}

int SignalFromName(const std::string& name) {
  if (name.empty()) return -1;
  if (std::isdigit(static_cast<unsigned char>(name[0]))) {
    int v = 0;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
    if (ec != std::errc() || p != name.data() + name.size() || v < 1 || v >= NSIG) return -1;
    return v;
  }
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!upper.starts_with("SIG")) upper = "SIG" + upper;
  for (const auto& e : kSignals) {
    if (upper == e.name) return e.sig;
  }
  return -1;
}

}  // namespace sbx
