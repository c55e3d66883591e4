// The hang watchdog: a renderer that sends no heartbeat for --hang-timeout is `unresponsive`
// (the UI greys it, as Chrome's "page unresponsive" dialog), and with --kill-hung it is then
// SIGKILLed and its exit classified `hung`. A heartbeat that comes after all makes it responsive
// again.
//
// A hidden renderer beats ten times less often (protocol::kHiddenHeartbeatIntervalMs), so it is
// judged by that rate (SilenceLimitMs), and a change of visibility restarts the clock: one just
// made visible has not yet had time to speed up, one just hidden may still send a fast beat.
//
// Silence alone does not tell a hung renderer from one the CPU never reached. Before the verdict
// the broker reads the renderer's threads from outside (proc_stats.h, SchedSample) once a look
// before the limit and again at it: a renderer that was runnable and waiting for a CPU is
// starved, not hung, and the verdict waits (JudgeSilence), for at most MaxStarvedMs.
//
// Broker::Tick runs the watchdog over every slot each WatchdogPeriodMs (RendererHost::
// CheckWatchdog acts on the verdict); this file holds the decisions, pure over caller-supplied
// times and figures, so they are testable without a process or a clock.
#pragma once

#include <cstdint>
#include <string_view>

#include "broker/proc_stats.h"
#include "broker/renderer_state.h"
#include "ipc/protocol.h"

namespace sbx {

// A renderer that has sent no heartbeat and no frame yet gets at least this long to start (a
// wrapper such as valgrind is slow) before it counts as unresponsive.
inline constexpr int64_t kMinStartTimeoutMs = 10'000;
// Hidden, a renderer may be silent for at least this many of its (slow) heartbeat intervals.
inline constexpr int64_t kHiddenBeatsMissed = 3;

// What the watchdog knows of one process, CLOCK_MONOTONIC nanoseconds; 0 means "not yet".
struct SignsOfLife {
  int64_t spawn_ns = 0;
  int64_t first_frame_ns = 0;
  int64_t last_heartbeat_ns = 0;
  protocol::Visibility visibility = protocol::Visibility::kVisible;
  int64_t visibility_changed_ns = 0;  // when it was last told its visibility changed
};

struct HangVerdict {
  bool unresponsive = false;  // it turns unresponsive now, unless JudgeSilence finds it starved
  int64_t silent_ms = 0;      // how long it has been silent, when it turns unresponsive
  int64_t limit_ms = 0;       // the silence it was allowed
  // Silent for more than its limit less one look: the caller samples its threads now, so the
  // next look can tell what they did meanwhile.
  bool suspect = false;
  bool kill = false;  // SIGKILL it as hung
};

// The longest silence allowed: --hang-timeout when visible; hidden, no less than
// kHiddenBeatsMissed of its slow heartbeat intervals.
int64_t SilenceLimitMs(protocol::Visibility visibility, int64_t hang_timeout_ms);

// The verdict for a process whose slot is in `state` at now_ns. Only a starting or running
// renderer can turn unresponsive; one that is unresponsive (before or at this check) is killed
// when kill_hung. The caller skips a process that is closing or already being killed.
HangVerdict CheckForHang(RendererState state, const SignsOfLife& life, int64_t hang_timeout_ms,
                         bool kill_hung, int64_t now_ns);

// How often the watchdog looks: a quarter of the timeout, so a hang is seen within 1.25 times
// it, but no more often than every 10 ms and no less than every 250 ms.
int64_t WatchdogPeriodMs(int64_t hang_timeout_ms);

// CPU time a renderer's threads may have had during its silence and still count as starved:
// far more than one turn of its loop (a frame and a heartbeat) takes.
inline constexpr uint64_t kEnoughCpuNs = 20'000'000;

// How long a starved renderer's verdict may wait: four times its limit, and at least 10 s.
// Past that it is unresponsive however it was scheduled: from outside, a renderer kept off
// the CPU for that long cannot be told from a hung one, and the person looking at it sees a page
// that does not answer.
int64_t MaxStarvedMs(int64_t limit_ms);

enum class Silence {
  kHung,         // unresponsive now
  kStarved,      // runnable but hardly scheduled: ask again at the next look
  kNotYetKnown,  // no earlier sample to compare with: ask again at the next look
};

// Why a renderer silent for silent_ms (past its limit_ms) is silent, from its threads sampled at
// `before` (null if never sampled during this silence) and at `now`:
// stopped (SIGSTOP, a tracer) -> hung; silent beyond MaxStarvedMs -> hung; no sample before ->
// not yet known; ran kEnoughCpuNs or more in between without a heartbeat -> hung; waited for a
// CPU longer than it ran, or runnable now -> starved; else (neither ran nor waited: blocked) ->
// hung.
Silence JudgeSilence(const SchedSample* before, const SchedSample& now, int64_t silent_ms,
                     int64_t limit_ms);

}  // namespace sbx
