// What the kernel says a process costs, read from /proc/PID the way Chrome's task manager does:
// CPU time from `stat`, resident memory from `statm`, proportional set size from `smaps_rollup`.
// Display figures only: a pid can be reused between the caller's snapshot and the read, so
// nothing here may drive a decision about a process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/error.h"

namespace sbx {

struct ProcStats {
  uint64_t cpu_ns = 0;     // user + system time
  uint64_t rss_bytes = 0;  // resident set size
  // Only readable for a process we may ptrace-read: a sandboxed renderer that made itself
  // non-dumpable hides it, and the column then shows RSS alone.
  std::optional<uint64_t> pss_bytes;
};

Result<ProcStats> ReadProcStats(pid_t pid);

// How the scheduler treated a process's threads so far (/proc/PID/task/*/schedstat and stat),
// for the hang watchdog to tell a starved renderer from a hung one. Unlike the figures above this
// does drive a decision, so read it only for a child not yet reaped: its pid cannot be reused.
struct SchedSample {
  uint64_t run_ns = 0;  // time its live threads spent on a CPU
  // Time they spent runnable, waiting for one. The kernel adds a wait when it ends (the thread
  // gets its CPU), so a wait still going on shows only in `runnable`.
  uint64_t wait_ns = 0;
  bool runnable = false;  // a thread is running or waiting for a CPU now (state R)
  bool stopped = false;   // a thread is stopped (SIGSTOP) or stopped by a tracer
};

Result<SchedSample> ReadSchedSample(pid_t pid);

// The thread ids of a process (/proc/PID/task), at most `max` of them.
Result<std::vector<pid_t>> ThreadIds(pid_t pid, size_t max = 64);

// The parsers, exposed for tests. `stat` text: utime + stime in clock ticks; the command name
// may hold spaces and parentheses, so fields are counted from its last ')'.
std::optional<uint64_t> ParseStatCpuTicks(std::string_view stat);
std::optional<uint64_t> ParseStatmResidentPages(std::string_view statm);
std::optional<uint64_t> ParseSmapsRollupPssKb(std::string_view smaps_rollup);
// `schedstat` text: "run_ns wait_ns timeslices".
std::optional<std::pair<uint64_t, uint64_t>> ParseSchedstat(std::string_view schedstat);
// The state letter of a `stat` text (R, S, D, T, t, Z, ...).
std::optional<char> ParseStatState(std::string_view stat);

// Field `n` of /proc/PID/stat as proc(5) numbers them (3: state, 4: ppid, 10: minflt, 12:
// majflt, 14: utime), counted from the command name's last ')'; fields 1 and 2 are not served.
std::optional<std::string_view> ProcStatField(std::string_view stat, int n);
// The value after "Key:" in /proc/PID/status, spaces and tabs skipped; empty when absent.
std::string_view ProcStatusField(std::string_view status, std::string_view key);

}  // namespace sbx
