// A forked child the bench must reap, and the allocation-free transfer loops its body uses.
// Shared by the baselines and the lecture's table.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

#include "ipc/error.h"
#include "ipc/posix.h"

namespace sbx::bench {

// A forked child this process must reap. Until Wait() succeeds, destruction kills and reaps it,
// so an early error return leaves neither a zombie nor an orphan behind.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(ChildProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess() {
    if (pid_ <= 0) return;
    // Signalling by pid is safe here: the pid of an unreaped child cannot be reused. Best effort:
    // a child that already exited makes kill fail, and waitpid reaps it all the same.
    (void)::kill(pid_, SIGKILL);
    int status = 0;
    (void)HandleEintr([&] { return ::waitpid(pid_, &status, 0); });
  }

  pid_t pid() const { return pid_; }

  // Reaps the child and returns its wait status.
  Result<int> Wait() {
    int status = 0;
    if (HandleEintr([&] { return ::waitpid(pid_, &status, 0); }) < 0) return SysError("waitpid");
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

// Forks a child that runs `body` and then exits 0. The body runs after fork, so it keeps to
// async-signal-safe calls: no allocation, no stdio (the guide's rule, even though this process
// is single-threaded when it forks).
template <typename F>
Result<ChildProcess> Fork(F&& body) {
  pid_t pid = ::fork();
  if (pid < 0) return SysError("fork");
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  return ChildProcess(pid);
}

inline Result<void> ExpectExitCode(ChildProcess& child, int code, const char* what) {
  auto status = child.Wait();
  if (!status) return std::unexpected(status.error());
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != code) {
    return MakeError(Errc::kState, std::string(what) + " ended with wait status " +
                                       std::to_string(*status) + ", expected exit code " +
                                       std::to_string(code));
  }
  return {};
}

// Transfer loops for the forked children: like ReadFull/WriteAll, but they never allocate.
inline bool RawReadExact(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

inline bool RawWriteExact(int fd, const void* buf, size_t n) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace sbx::bench
