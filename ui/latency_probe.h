// Measures how late the GUI thread runs a timer: the gap between when a precise single-shot
// QTimer was due and when its slot ran is the event-loop latency every input event and paint
// also waits through. The window's --stats overlay and --measure-latency mode read it; no test
// asserts a figure (performance figures are measured, not timed in tests).
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QTimer>
#include <cstdint>
#include <vector>

namespace sbx::ui {

struct LatencySummary {
  size_t samples = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

LatencySummary Summarize(std::vector<int64_t> lateness_ns);

class LatencyProbe : public QObject {
  Q_OBJECT

 public:
  // keep_all: also keep every sample for Total() (the measurement mode); the overlay only needs
  // one window at a time and must not grow for the life of the window.
  LatencyProbe(int interval_ms, bool keep_all, QObject* parent = nullptr);
  void Start();
  void Stop();
  // Samples since the last call (the overlay's one-second window).
  LatencySummary TakeWindow();
  // Every sample since Start().
  LatencySummary Total() const;

 private:
  void Fire();

  int interval_ms_;
  bool keep_all_;
  QTimer timer_;
  QElapsedTimer clock_;
  int64_t due_ns_ = 0;
  std::vector<int64_t> window_;
  std::vector<int64_t> all_;
};

}  // namespace sbx::ui
