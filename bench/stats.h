// Sample summaries for sbx-bench: every figure is a list of nanosecond durations reduced to a
// median and a 99th percentile in microseconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "broker/sample_summary.h"

namespace sbx::bench {

struct Summary {
  double median_us = 0;
  double p99_us = 0;
  size_t samples = 0;
};

// In microseconds, as every figure is printed.
inline Summary Summarize(std::vector<int64_t> ns) {
  SampleSummary all = SummarizeSamples(std::move(ns));
  return Summary{all.median_ns / 1000.0, all.p99_ns / 1000.0, all.samples};
}

// Keeps the compiler from proving a buffer dead and deleting the copy we are timing.
inline void ClobberMemory(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

}  // namespace sbx::bench
