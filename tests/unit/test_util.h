// Helpers shared by the unit tests: real child processes and deadlines, never sleeps.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ipc/posix.h"
#include "ipc/unique_fd.h"

namespace sbx::test {

// A directory of the test's own under $TMPDIR (else /tmp), removed with everything in it when the
// test ends, however it ends. path() is empty if none could be made.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& stem = "sbx-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && base[0] == '/' ? base : "/tmp") + "/" + stem + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() { (void)Remove(); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Early, for a test that needs it gone while it still runs.
  bool Remove() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    return !ec;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Generous: a loaded CI machine (or ASan) is slow, but a wait must still end.
inline constexpr int kDeadlineMs = 10'000;

// Milliseconds left until deadline_ns (CLOCK_MONOTONIC), never negative.
inline int RemainingMs(int64_t deadline_ns) {
  int64_t left = (deadline_ns - MonotonicNs()) / 1'000'000;
  return left < 0 ? 0 : static_cast<int>(left);
}

inline int64_t DeadlineIn(int ms) { return MonotonicNs() + int64_t{ms} * 1'000'000; }

// Waits until the process behind pidfd exits, then reaps it. On timeout the child is SIGKILLed and
// reaped too (so no test leaves a zombie or an orphan) and nullopt is returned.
inline std::optional<siginfo_t> WaitForExit(int pidfd, int timeout_ms = kDeadlineMs) {
  pollfd p{pidfd, POLLIN, 0};
  int ready = HandleEintr([&] { return ::poll(&p, 1, timeout_ms); });
  siginfo_t si{};
  if (ready != 1) {
    (void)PidfdSendSignal(pidfd, SIGKILL);
    (void)HandleEintr([&] { return ::waitid(P_PIDFD, pidfd, &si, WEXITED); });
    return std::nullopt;
  }
  if (HandleEintr([&] { return ::waitid(P_PIDFD, pidfd, &si, WEXITED); }) != 0) {
    return std::nullopt;
  }
  return si;
}

// Whether `pid` is a child of ours that waitid could still reap (WNOWAIT: it stays so).
inline bool StillUnreaped(pid_t pid) {
  siginfo_t si{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return si.si_pid == pid;
}

// A forked child. If a test ends early (a failed ASSERT), the destructor kills and reaps it, so
// no child outlives its test; once WaitForExit has reaped it, that is a harmless no-op.
struct Child {
  Child() = default;
  Child(Child&&) = default;
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (!pidfd.valid()) return;
    (void)PidfdSendSignal(pidfd.get(), SIGKILL);
    siginfo_t si{};
    (void)HandleEintr([&] { return ::waitid(P_PIDFD, pidfd.get(), &si, WEXITED); });
  }

  pid_t pid = -1;
  UniqueFd pidfd;
};

// Forks a child that runs `body` and then _exit(0)s; the child never returns into GoogleTest.
// The child dies with the test (PDEATHSIG) and never dumps core. A pidfd is taken right after
// fork: the child is ours and unreaped, so its pid cannot have been reused yet.
template <typename F>
Child ForkChild(F&& body) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(120);
    ::prctl(PR_SET_DUMPABLE, 0);
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    body();
    ::_exit(0);
  }
  Child c;
  c.pid = pid;
  if (pid > 0) {
    auto fd = PidfdOpen(pid);
    if (fd) c.pidfd = std::move(*fd);
  }
  return c;
}

// Reads until EOF or the deadline; returns nullopt on timeout or a read error.
inline std::optional<std::string> ReadAllWithin(int fd, int timeout_ms = kDeadlineMs) {
  int64_t deadline = DeadlineIn(timeout_ms);
  std::string out;
  uint8_t buf[4096];
  for (;;) {
    if (MonotonicNs() >= deadline) return std::nullopt;
    auto ready = WaitReadable(fd, RemainingMs(deadline));
    if (!ready || !*ready) return std::nullopt;
    auto n = ReadSome(fd, buf);
    if (!n) {
      if (n.error().sys_errno == EAGAIN) continue;
      return std::nullopt;
    }
    if (*n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf), *n);
  }
}

// Ignores SIGPIPE for one scope, so writing to a closed pipe is EPIPE rather than death.
class ScopedIgnoreSigpipe {
 public:
  ScopedIgnoreSigpipe() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, &saved_);
  }
  ~ScopedIgnoreSigpipe() { ::sigaction(SIGPIPE, &saved_, nullptr); }
  ScopedIgnoreSigpipe(const ScopedIgnoreSigpipe&) = delete;
  ScopedIgnoreSigpipe& operator=(const ScopedIgnoreSigpipe&) = delete;

 private:
  struct sigaction saved_ {};
};

// Splits text into lines, dropping empty ones.
inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (nl > start) lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace sbx::test
