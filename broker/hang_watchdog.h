// The hang watchdog: a renderer that sends no heartbeat for --hang-timeout is `unresponsive`
// (the UI greys it, as Chrome's "page unresponsive" dialog), and with --kill-hung it is then
// SIGKILLed and its exit classified `hung`. A heartbeat that comes after all makes it responsive
// again.
//
// Broker::Tick runs the watchdog over every slot each WatchdogPeriodMs (RendererHost::
// CheckWatchdog acts on the verdict); this file holds the decision, pure over caller-supplied
// times, so it is testable without a process or a clock.
#pragma once

#include <cstdint>

#include "broker/renderer_state.h"

namespace sbx {

// A renderer that has sent no heartbeat and no frame yet gets at least this long to start (a
// wrapper such as valgrind is slow) before it counts as unresponsive.
inline constexpr int64_t kMinStartTimeoutMs = 10'000;

// What the watchdog knows of one process, CLOCK_MONOTONIC nanoseconds; 0 means "not yet".
struct SignsOfLife {
  int64_t spawn_ns = 0;
  int64_t first_frame_ns = 0;
  int64_t last_heartbeat_ns = 0;
};

struct HangVerdict {
  bool unresponsive = false;  // it turns unresponsive now
  int64_t silent_ms = 0;      // how long it has been silent, when it turns unresponsive
  bool kill = false;          // SIGKILL it as hung
};

// The verdict for a process whose slot is in `state` at now_ns. Only a starting or running
// renderer can turn unresponsive; one that is unresponsive (before or at this check) is killed
// when kill_hung. The caller skips a process that is closing or already being killed.
HangVerdict CheckForHang(RendererState state, const SignsOfLife& life, int64_t hang_timeout_ms,
                         bool kill_hung, int64_t now_ns);

// How often the watchdog looks: a quarter of the timeout, so a hang is seen within 1.25 times
// it, but no more often than every 10 ms and no less than every 250 ms.
int64_t WatchdogPeriodMs(int64_t hang_timeout_ms);

}  // namespace sbx
