// Thin checked wrappers over the syscalls ipc/ and broker/ use, in one place so EINTR, short
// transfers and close-on-exec are handled the same way everywhere.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

// Retries a call that failed with EINTR (Chromium's HANDLE_EINTR). Never wrap close() in it.
template <typename F>
auto HandleEintr(F&& f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r == -1 && errno == EINTR);
  return r;
}

struct PipePair {
  UniqueFd read;
  UniqueFd write;
};

// pipe2 with O_CLOEXEC, plus O_NONBLOCK when asked.
Result<PipePair> MakePipe(bool nonblocking);

// Reads up to buf.size() bytes. Returns 0 on EOF; an error with sys_errno EAGAIN when a
// non-blocking fd has nothing.
Result<size_t> ReadSome(int fd, std::span<uint8_t> buf);
// Writes up to data.size() bytes; may be short on a non-blocking fd.
Result<size_t> WriteSome(int fd, std::span<const uint8_t> data);
// Loops until everything is written (blocking fds only; on EAGAIN it polls for POLLOUT).
Result<void> WriteAll(int fd, std::span<const uint8_t> data);
// Loops until buf is full or EOF; returns how much was read.
Result<size_t> ReadFull(int fd, std::span<uint8_t> buf);

// The first max_bytes of a small file (a /proc entry, say), read through to EOF or the bound.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes = 64 * 1024);

// This program's own path (/proc/self/exe), for finding the binaries installed beside it.
Result<std::string> SelfExePath();

Result<void> SetNonBlocking(int fd, bool on);

// CLOCK_MONOTONIC in nanoseconds.
int64_t MonotonicNs();

// Waits for fd to become readable within timeout_ms (-1: forever). false on timeout.
Result<bool> WaitReadable(int fd, int timeout_ms);

// Fills buf from getrandom(2).
Result<void> RandomBytes(std::span<uint8_t> buf);

// pidfd syscalls, which glibc 2.36 has no wrappers for.
Result<UniqueFd> PidfdOpen(pid_t pid);
// Blocks `sigs` in the calling thread (and every thread it starts later) and returns a
// non-blocking, close-on-exec signalfd they arrive on instead: no handler ever runs.
Result<UniqueFd> BlockSignalsToFd(std::initializer_list<int> sigs);

// Sets sig to SIG_IGN for the whole process: for SIGPIPE, so that writing to a closed pipe or
// socket is an EPIPE error and not death.
Result<void> IgnoreSignal(int sig);
Result<void> PidfdSendSignal(int pidfd, int sig);

const char* SignalName(int sig);  // "SIGKILL"; "SIG42" for unnamed ones (static storage)
int SignalFromName(const std::string& name);  // accepts "KILL", "SIGKILL", "9"; -1 if unknown

}  // namespace sbx
