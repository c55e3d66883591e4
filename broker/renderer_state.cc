#include "broker/renderer_state.h"

namespace sbx {

std::string_view RendererStateName(RendererState s) {
  switch (s) {
    case RendererState::kStarting:
      return "starting";
    case RendererState::kRunning:
      return "running";
    case RendererState::kUnresponsive:
      return "unresponsive";
    case RendererState::kExited:
      return "exited";
    case RendererState::kRestarting:
      return "restarting";
    case RendererState::kClosed:
      return "closed";
    case RendererState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view HappeningName(Happening h) {
  switch (h) {
    case Happening::kLaunch:
      return "launch";
    case Happening::kFirstFrame:
      return "first-frame";
    case Happening::kHeartbeatsMissed:
      return "heartbeats-missed";
    case Happening::kHeartbeatsResumed:
      return "heartbeats-resumed";
    case Happening::kExit:
      return "exit";
    case Happening::kExitWhileClosing:
      return "exit-while-closing";
    case Happening::kRestartScheduled:
      return "restart-scheduled";
    case Happening::kCrashLoop:
      return "crash-loop";
    case Happening::kClose:
      return "close";
  }
  return "unknown";
}

std::optional<RendererState> NextState(RendererState s, Happening h, bool has_frame) {
  using S = RendererState;
  switch (h) {
    case Happening::kLaunch:
      // A slot starts in kStarting before its first launch; a closed slot is never reused.
      if (s == S::kStarting || s == S::kExited || s == S::kRestarting || s == S::kFailed) {
        return S::kStarting;
      }
      return std::nullopt;
    case Happening::kFirstFrame:
      // An unresponsive renderer that draws stays unresponsive: only a heartbeat says it is back.
      if (s == S::kStarting) return S::kRunning;
      return std::nullopt;
    case Happening::kHeartbeatsMissed:
      if (s == S::kStarting || s == S::kRunning) return S::kUnresponsive;
      return std::nullopt;
    case Happening::kHeartbeatsResumed:
      if (s == S::kUnresponsive) return has_frame ? S::kRunning : S::kStarting;
      return std::nullopt;
    case Happening::kExit:
      if (HasProcess(s)) return S::kExited;
      return std::nullopt;
    case Happening::kExitWhileClosing:
      if (HasProcess(s)) return S::kClosed;
      return std::nullopt;
    case Happening::kRestartScheduled:
      if (s == S::kExited) return S::kRestarting;
      return std::nullopt;
    case Happening::kCrashLoop:
      if (s == S::kExited) return S::kFailed;
      return std::nullopt;
    case Happening::kClose:
      // From kStarting only while its launch still waits in the broker's queue: a slot with a
      // process closes through kExitWhileClosing.
      if (s == S::kStarting || s == S::kExited || s == S::kRestarting || s == S::kFailed) {
        return S::kClosed;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace sbx
