#include "broker/hang_watchdog.h"

#include <algorithm>

namespace sbx {

namespace {
constexpr int64_t kNsPerMs = 1'000'000;
}  // namespace

int64_t SilenceLimitMs(protocol::Visibility visibility, int64_t hang_timeout_ms) {
  if (visibility == protocol::Visibility::kVisible) return hang_timeout_ms;
  return std::max(hang_timeout_ms, kHiddenBeatsMissed * protocol::kHiddenHeartbeatIntervalMs);
}

HangVerdict CheckForHang(RendererState state, const SignsOfLife& life, int64_t hang_timeout_ms,
                         bool kill_hung, int64_t now_ns) {
  HangVerdict v;
  if (NextState(state, Happening::kHeartbeatsMissed)) {
    // The start allowance ends with the first heartbeat or the first frame, whichever is first:
    // a renderer stopped right after its first frame must still be caught in time.
    int64_t limit_ms = SilenceLimitMs(life.visibility, hang_timeout_ms);
    int64_t since = std::max(life.last_heartbeat_ns, life.first_frame_ns);
    if (since == 0) {
      since = life.spawn_ns;
      limit_ms = std::max(limit_ms, kMinStartTimeoutMs);
    } else {
      // Told of a change, it gets a whole limit at its new rate from then on.
      since = std::max(since, life.visibility_changed_ns);
    }
    v.limit_ms = limit_ms;
    int64_t silent_ns = now_ns - since;
    v.suspect = silent_ns > (limit_ms - WatchdogPeriodMs(hang_timeout_ms)) * kNsPerMs;
    if (silent_ns > limit_ms * kNsPerMs) {
      v.unresponsive = true;
      v.silent_ms = silent_ns / kNsPerMs;
      state = RendererState::kUnresponsive;
    }
  }
  v.kill = state == RendererState::kUnresponsive && kill_hung;
  return v;
}

int64_t WatchdogPeriodMs(int64_t hang_timeout_ms) {
  return std::clamp<int64_t>(hang_timeout_ms / 4, 10, 250);
}

int64_t MaxStarvedMs(int64_t limit_ms) { return std::max<int64_t>(4 * limit_ms, 10'000); }

Silence JudgeSilence(const SchedSample* before, const SchedSample& now, int64_t silent_ms,
                     int64_t limit_ms) {
  if (now.stopped) return Silence::kHung;
  if (silent_ms > MaxStarvedMs(limit_ms)) return Silence::kHung;
  if (before == nullptr) return Silence::kNotYetKnown;
  // Threads come and go; a counter that went down is a thread that ended, not time given back.
  uint64_t ran = now.run_ns > before->run_ns ? now.run_ns - before->run_ns : 0;
  uint64_t waited = now.wait_ns > before->wait_ns ? now.wait_ns - before->wait_ns : 0;
  if (ran >= kEnoughCpuNs) return Silence::kHung;
  // A wait still going on is not in wait_ns yet: a thread runnable now has been waiting too.
  if (waited > ran || now.runnable) return Silence::kStarved;
  return Silence::kHung;
}

}  // namespace sbx
