// Sample summaries for sbx-bench: every figure is a list of nanosecond durations reduced to a
// median and a 99th percentile in microseconds.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sbx::bench {

struct Summary {
  double median_us = 0;
  double p99_us = 0;
  size_t samples = 0;
};

// Takes the samples by value because it sorts them. The median averages the two middle samples;
// p99 is the nearest-rank percentile, so with few samples it is simply the largest.
inline Summary Summarize(std::vector<int64_t> ns) {
  Summary s;
  s.samples = ns.size();
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  size_t n = ns.size();
  double median_ns = n % 2 == 1 ? static_cast<double>(ns[n / 2])
                                : (static_cast<double>(ns[n / 2 - 1]) + ns[n / 2]) / 2.0;
  size_t rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(n)));
  size_t p99_index = std::clamp<size_t>(rank, 1, n) - 1;
  s.median_us = median_ns / 1000.0;
  s.p99_us = static_cast<double>(ns[p99_index]) / 1000.0;
  return s;
}

// Keeps the compiler from proving a buffer dead and deleting the copy we are timing.
inline void ClobberMemory(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

}  // namespace sbx::bench
