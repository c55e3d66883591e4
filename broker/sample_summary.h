// One summary of a set of durations for every place that reports latencies (sbx-bench's figures,
// the window's event-loop probe), so a median or a p99 means the same wherever it is printed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sbx {

struct SampleSummary {
  size_t samples = 0;
  double median_ns = 0;  // the mean of the two middle samples when their number is even
  double p99_ns = 0;     // nearest rank: with fewer than 100 samples, the largest
  double max_ns = 0;
};

// Takes the samples by value because it sorts them.
inline SampleSummary SummarizeSamples(std::vector<int64_t> ns) {
  SampleSummary s;
  s.samples = ns.size();
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  size_t n = ns.size();
  s.median_ns = n % 2 == 1
                    ? static_cast<double>(ns[n / 2])
                    : (static_cast<double>(ns[n / 2 - 1]) + static_cast<double>(ns[n / 2])) / 2;
  size_t rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(n)));
  s.p99_ns = static_cast<double>(ns[std::clamp<size_t>(rank, 1, n) - 1]);
  s.max_ns = static_cast<double>(ns.back());
  return s;
}

}  // namespace sbx
