#include "broker/hang_watchdog.h"

#include <algorithm>

namespace sbx {

namespace {
constexpr int64_t kNsPerMs = 1'000'000;
}  // namespace

HangVerdict CheckForHang(RendererState state, const SignsOfLife& life, int64_t hang_timeout_ms,
                         bool kill_hung, int64_t now_ns) {
  HangVerdict v;
  if (NextState(state, Happening::kHeartbeatsMissed)) {
    // The start allowance ends with the first heartbeat or the first frame, whichever is first:
    // a renderer stopped right after its first frame must still be caught in time.
    int64_t limit_ms = hang_timeout_ms;
    int64_t since = std::max(life.last_heartbeat_ns, life.first_frame_ns);
    if (since == 0) {
      since = life.spawn_ns;
      limit_ms = std::max(limit_ms, kMinStartTimeoutMs);
    }
    if (now_ns - since > limit_ms * kNsPerMs) {
      v.unresponsive = true;
      v.silent_ms = (now_ns - since) / kNsPerMs;
      state = RendererState::kUnresponsive;
    }
  }
  v.kill = state == RendererState::kUnresponsive && kill_hung;
  return v;
}

int64_t WatchdogPeriodMs(int64_t hang_timeout_ms) {
  return std::clamp<int64_t>(hang_timeout_ms / 4, 10, 250);
}

}  // namespace sbx
