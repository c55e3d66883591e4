#include "broker/exit_status.h"

#include <signal.h>
#include <sys/wait.h>

#include "ipc/protocol.h"

namespace sbx {

std::string_view ExitStatusName(ExitStatus s) {
  switch (s) {
    case ExitStatus::kNone:
      return "none";
    case ExitStatus::kExited:
      return "exited";
    case ExitStatus::kAbnormal:
      return "abnormal";
    case ExitStatus::kKilled:
      return "killed";
    case ExitStatus::kCrashed:
      return "crashed";
    case ExitStatus::kSandboxViolation:
      return "sandbox-violation";
    case ExitStatus::kOom:
      return "oom";
    case ExitStatus::kLaunchFailed:
      return "launch-failed";
    case ExitStatus::kBadMessage:
      return "bad-message";
    case ExitStatus::kHung:
      return "hung";
  }
  return "unknown";
}

ExitInfo ClassifyExit(int cld_code, int status, KillReason reason) {
  ExitInfo info;
  if (cld_code == CLD_EXITED) {
    info.code = status;
    if (status == 0) {
      info.status = ExitStatus::kExited;
    } else if (status == protocol::kExitOom) {
      info.status = ExitStatus::kOom;
    } else if (status == protocol::kExitLaunchFailed) {
      // The child recipe, the renderer's own sandbox setup, or a wrapper that could not find
      // the program (a shell's "command not found") all end with 127.
      info.status = ExitStatus::kLaunchFailed;
    } else {
      info.status = ExitStatus::kAbnormal;
    }
    return info;
  }
  info.signal = status;
  switch (status) {
    case SIGSEGV:
    case SIGABRT:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGTRAP:
      info.status = ExitStatus::kCrashed;
      break;
    case SIGSYS:
      info.status = ExitStatus::kSandboxViolation;
      break;
    case SIGKILL:
      info.status = reason == KillReason::kBadMessage ? ExitStatus::kBadMessage
                    : reason == KillReason::kHung     ? ExitStatus::kHung
                                                      : ExitStatus::kKilled;
      break;
    default:
      info.status = ExitStatus::kKilled;
      break;
  }
  return info;
}

}  // namespace sbx
