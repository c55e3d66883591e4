// When to restart a renderer that died: immediately the first time, then with a delay that
// doubles up to a cap; more than max_crashes within the window means a crash loop, and the
// renderer stays `failed` until someone reloads it. Pure logic over caller-supplied times.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

namespace sbx {

class RestartPolicy {
 public:
  struct Config {
    int max_crashes = 5;
    int64_t window_ms = 30'000;
    int64_t base_delay_ms = 100;
    int64_t max_delay_ms = 5'000;
  };

  RestartPolicy() = default;
  explicit RestartPolicy(Config config) : config_(config) {}

  // Records a crash at now_ms. Returns the delay before the restart, or nullopt for a crash loop.
  std::optional<int64_t> OnCrash(int64_t now_ms);
  int CrashesInWindow(int64_t now_ms);
  void Reset() { crashes_.clear(); }
  const Config& config() const { return config_; }

 private:
  void Expire(int64_t now_ms);
  Config config_;
  std::deque<int64_t> crashes_;
};

}  // namespace sbx
