// How a renderer ended, classified like Chromium's TerminationStatus.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sbx {

enum class ExitStatus {
  kNone,              // has not exited
  kExited,            // exit code 0
  kAbnormal,          // any other exit code
  kKilled,            // a terminating signal that is not a crash (SIGKILL, SIGTERM, SIGINT, ...)
  kCrashed,           // SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGTRAP
  kSandboxViolation,  // SIGSYS (a seccomp kill)
  kOom,               // exited with protocol::kExitOom, or killed at its cgroup memory limit
  kLaunchFailed,      // the child recipe or the renderer's sandbox setup failed (exit 127)
  kBadMessage,        // killed by the broker for a protocol violation
  kHung,              // killed by the broker's hang watchdog (or a person choosing "Kill")
};

// Why the broker itself signalled a renderer, if it did.
enum class KillReason { kNone, kBadMessage, kHung, kClose };

std::string_view ExitStatusName(ExitStatus s);

struct ExitInfo {
  ExitStatus status = ExitStatus::kNone;
  int signal = 0;  // the terminating signal, 0 if it exited
  int code = -1;   // the exit code, -1 if killed by a signal
  std::string detail;
};

// Classifies waitid's si_code (cld_code) and si_status (status). A broker kill only names the
// status when the process really died of that kill (SIGKILL): a renderer that crashed first is
// still `crashed`.
ExitInfo ClassifyExit(int cld_code, int status, KillReason reason);

}  // namespace sbx
