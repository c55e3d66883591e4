// A renderer's lifecycle as pure logic: what each thing that happens to a renderer does to its
// state. RendererHost decides when something happened and emits the events; this file decides
// where it leads, so every edge of the diagram in docs/ARCHITECTURE.md is testable without a
// process or a clock.
#pragma once

#include <optional>
#include <string_view>

namespace sbx {

enum class RendererState {
  kStarting,
  kRunning,
  kUnresponsive,
  kExited,
  kRestarting,
  kClosed,
  kFailed
};
std::string_view RendererStateName(RendererState s);

enum class Happening {
  kLaunch,             // a process is being started for the slot (first start, restart, reload)
  kFirstFrame,         // the process published its first complete frame
  kHeartbeatsMissed,   // the hang watchdog saw no heartbeat for --hang-timeout
  kHeartbeatsResumed,  // a heartbeat arrived after all
  kExit,               // the process is gone (any cause, launch failure included)
  kExitWhileClosing,   // the process is gone after someone asked to close the slot
  kRestartScheduled,   // the restart policy allowed a restart, now or after a delay
  kCrashLoop,          // the restart policy refused: too many exits within its window
  kClose,              // someone closed a slot that has no process
};
std::string_view HappeningName(Happening h);

// The state after `h` in state `s`, or nullopt when `h` cannot happen there (the caller then keeps
// `s` and emits nothing). `has_frame`: the process has published a frame, which decides whether a
// renderer that answers again is running or still starting.
std::optional<RendererState> NextState(RendererState s, Happening h, bool has_frame = false);

// Whether a process belongs to the slot in state `s`.
constexpr bool HasProcess(RendererState s) {
  return s == RendererState::kStarting || s == RendererState::kRunning ||
         s == RendererState::kUnresponsive;
}

}  // namespace sbx
