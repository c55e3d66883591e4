#include "broker/restart_policy.h"

#include <algorithm>

namespace sbx {

void RestartPolicy::Expire(int64_t now_ms) {
  while (!crashes_.empty() && now_ms - crashes_.front() >= config_.window_ms) crashes_.pop_front();
}

int RestartPolicy::CrashesInWindow(int64_t now_ms) {
  Expire(now_ms);
  return static_cast<int>(crashes_.size());
}

std::optional<int64_t> RestartPolicy::OnCrash(int64_t now_ms) {
  Expire(now_ms);
  crashes_.push_back(now_ms);
  int n = static_cast<int>(crashes_.size());
  if (n > config_.max_crashes) return std::nullopt;
  if (n == 1) return 0;
  int64_t delay = config_.base_delay_ms;
  for (int i = 2; i < n && delay < config_.max_delay_ms; ++i) {
    delay = delay > config_.max_delay_ms / 2 ? config_.max_delay_ms : delay * 2;  // no overflow
  }
  return std::min(delay, config_.max_delay_ms);
}

}  // namespace sbx
