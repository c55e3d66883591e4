#include "ui/latency_probe.h"

#include <utility>

#include "broker/sample_summary.h"

namespace sbx::ui {

LatencySummary Summarize(std::vector<int64_t> v) {
  SampleSummary all = SummarizeSamples(std::move(v));
  return LatencySummary{all.samples, all.median_ns / 1e6, all.p99_ns / 1e6, all.max_ns / 1e6};
}

LatencyProbe::LatencyProbe(int interval_ms, bool keep_all, QObject* parent)
    : QObject(parent), interval_ms_(interval_ms), keep_all_(keep_all) {
  // Single-shot and re-armed in the slot, so each sample measures one wait from scratch rather
  // than a drifting schedule.
  timer_.setSingleShot(true);
  timer_.setTimerType(Qt::PreciseTimer);
  connect(&timer_, &QTimer::timeout, this, &LatencyProbe::Fire);
}

void LatencyProbe::Start() {
  window_.clear();
  all_.clear();
  clock_.start();
  due_ns_ = clock_.nsecsElapsed() + int64_t{interval_ms_} * 1'000'000;
  timer_.start(interval_ms_);
}

void LatencyProbe::Stop() { timer_.stop(); }

void LatencyProbe::Fire() {
  int64_t now = clock_.nsecsElapsed();
  int64_t late = std::max<int64_t>(0, now - due_ns_);
  window_.push_back(late);
  if (keep_all_) all_.push_back(late);
  due_ns_ = now + int64_t{interval_ms_} * 1'000'000;
  timer_.start(interval_ms_);
}

LatencySummary LatencyProbe::TakeWindow() {
  LatencySummary s = Summarize(window_);
  window_.clear();
  return s;
}

LatencySummary LatencyProbe::Total() const { return Summarize(all_); }

}  // namespace sbx::ui
