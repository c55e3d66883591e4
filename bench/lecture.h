// sbx-bench --lecture: the table an operating-systems lecture on IPC opens with (threads
// against processes on creation, overhead, context switching and virtual memory) and the
// lecture's IPC approaches side by side, each cell measured in this run on this machine.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench/figures.h"

namespace sbx::bench {

// One measured number with its unit, or a fact observed in this run ("seen", "not seen").
struct LectureCell {
  std::string label;
  std::optional<double> value;
  std::string unit;
  std::string text;  // a fact, when there is no value
};

struct LectureRow {
  std::string section;  // creation, overhead, context switching, virtual memory, ipc
  std::string name;
  std::vector<LectureCell> cells;
  std::string says;  // one plain sentence: what the row shows
};

// Measures the table row by row; `print` gets each row as soon as it is measured. Returns
// false if any row could not be measured (its error went to stderr).
bool MeasureLecture(const BenchConfig& config, void (*print)(const LectureRow&, bool json),
                    bool json);

// Prints one row as text (or one JSON object per line).
void PrintLectureRow(const LectureRow& row, bool json);

// The whole of `sbx-bench --lecture`: a header, every row, an exit code.
int RunLecture(const BenchConfig& config, bool json);

}  // namespace sbx::bench
