// A cgroup per renderer (nsjail's cgroup.cc and cgroup2.cc): memory, process and CPU bounds the
// renderer cannot lift, and the kernel's word on whether it died of its memory limit.
//
// Layout, in each hierarchy used: <the broker's own cgroup>/sbx-<broker pid>/r-<n>. The limits
// are written before the renderer joins, and the renderer joins before it execs (the launcher's
// LaunchSpec::cgroup_procs), so it never runs a single instruction unbounded. A renderer's
// directory is removed once it is reaped; the directory of a broker that died (its pid gone) is
// removed by the next broker's start-up sweep.
//
// cgroup v2 when the unified hierarchy offers memory, pids and cpu to the broker's cgroup; else
// cgroup v1 when those three controllers are mounted separately and writable; else none, and the
// renderer is bounded per process only (its rlimits).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

enum class CgroupMode { kNone, kV1, kV2 };
const char* CgroupModeName(CgroupMode m);

struct CgroupLimits {
  uint64_t memory_bytes = uint64_t{256} << 20;  // memory.max (no swap on top)
  int pids = 32;                                // pids.max: the renderer, its threads, children
  int cpu_percent = 50;                         // cpu.max, of one CPU
};

// Where renderer cgroups go, or why nowhere. Found once per broker (DetectCgroups).
struct CgroupSupport {
  CgroupMode mode = CgroupMode::kNone;
  std::string reason;  // kNone: why; else where the per-broker directories are
  // The per-broker directory in each hierarchy used: one for v2; memory, pids, cpu for v1.
  std::vector<std::string> broker_dirs;
};

// Reads /proc/self/cgroup and /proc/self/mountinfo, creates the per-broker directories (and on
// v2 hands the controllers down to them) and returns what can be used. Never fails: the worst
// is kNone with the reason.
CgroupSupport DetectCgroups();

// What the broker's own cgroup v2 offers it, read without changing anything: whether
// DetectCgroups could use it as it is, or a cgroup of its own would be needed first
// (delegated_scope.h).
struct V2Prospect {
  std::string dir;           // the broker's own cgroup as mounted; empty without cgroup v2
  bool controllers = false;  // it offers memory, pids and cpu
  bool usable = false;       // it holds this process alone and this process may write to it
};
V2Prospect ProbeOwnCgroupV2();

// Removes the per-broker directories whose broker pid no longer runs, with their renderer
// directories, in the hierarchies `support` uses. Returns how many broker directories it removed.
int SweepStaleCgroups(const CgroupSupport& support);

// Removes this broker's own directories if they are empty (another broker of this process may
// still use them: then they stay, for the next start's sweep).
void RemoveBrokerCgroups(const CgroupSupport& support);

// What a renderer's cgroup shows now; -1 where the hierarchy does not say.
struct CgroupUsage {
  int64_t memory_bytes = -1;
  int64_t pids = -1;
  int64_t throttled_us = -1;  // time its threads waited for CPU beyond their bound
  int64_t oom_kills = -1;     // times the kernel killed in it for the memory limit
};

// Where one cgroup's usage figures are read from: a copy, so a reader on another thread (the
// window's sampler) needs nothing of the broker's. Once the cgroup is removed every figure
// reads -1.
struct CgroupUsageFiles {
  CgroupMode mode = CgroupMode::kNone;
  std::string path;               // v2: the directory
  std::vector<std::string> dirs;  // v1: memory, pids, cpu
  CgroupUsage Read() const;
};

// One renderer's cgroup directories, limits written. Move-only; destruction removes them (they
// are empty once the renderer is reaped: only the renderer itself joined).
class RendererCgroup {
 public:
  RendererCgroup() = default;
  static Result<RendererCgroup> Create(const CgroupSupport& support, const CgroupLimits& limits);
  RendererCgroup(RendererCgroup&& o) noexcept;
  RendererCgroup& operator=(RendererCgroup&& o) noexcept;
  ~RendererCgroup();

  bool valid() const { return !dirs_.empty(); }
  // Open for writing, one per hierarchy: the launcher's child writes "0" to each before exec.
  std::vector<int> procs_fds() const;
  // Closes them once the launch is over (joined or failed): three descriptors fewer per
  // renderer on v1, for as long as it runs.
  void CloseProcsFds() { procs_.clear(); }
  // The memory hierarchy's directory (v2: the only one), as the report shows it.
  const std::string& path() const { return path_; }
  const CgroupLimits& limits() const { return limits_; }
  CgroupUsage Usage() const { return UsageFiles().Read(); }
  CgroupUsageFiles UsageFiles() const;
  // Usage().oom_kills alone, for the exit path: one read of a file held open.
  int64_t OomKills() const;
  // The CPU share it gets under contention: a quarter of the broker's, and an eighth of that
  // while its page is hidden (cpu.shares 256 / 32 on v1, cpu.weight 25 / 3 on v2). The renderer
  // cannot change it, and it covers every thread. Written before the renderer runs when it
  // starts hidden.
  Result<void> SetHidden(bool hidden);
  // Removes the directories now (a no-op if already done); the renderer must be reaped.
  void Remove();

 private:
  CgroupMode mode_ = CgroupMode::kNone;
  CgroupLimits limits_;
  std::string path_;
  std::vector<std::string> dirs_;  // v1: memory, pids, cpu
  std::vector<UniqueFd> procs_;
  UniqueFd oom_file_;  // memory.events (v2) or memory.oom_control (v1)
};

}  // namespace sbx
