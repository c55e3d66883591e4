// What a renderer's sandbox looks like from outside, read from /proc/PID the way
// chrome://sandbox reports it: seccomp mode, no_new_privs, effective capabilities, which
// namespaces it shares with the broker, its rlimits, and a verdict.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ipc/error.h"
#include "sandbox/confine.h"

namespace sbx {

struct SandboxReport {
  sandbox::Level level = sandbox::Level::kOff;  // what the broker asked for
  int seccomp_mode = -1;                        // /proc/PID/status "Seccomp" (2 = filter)
  int no_new_privs = -1;
  int seccomp_filters = -1;  // "Seccomp_filters": how many are stacked
  uint64_t cap_eff = ~uint64_t{0};
  uint64_t cap_prm = ~uint64_t{0};
  uint64_t cap_inh = ~uint64_t{0};
  uint64_t cap_amb = ~uint64_t{0};
  uint64_t cap_bnd = ~uint64_t{0};
  bool root_empty = false;   // its root is an empty, read-only tmpfs
  bool stdio_clean = false;  // fd 0 is /dev/null, fds 1 and 2 one pipe (the broker's log pipe)
  std::string uid_map;       // /proc/PID/uid_map, its first line
  struct Namespace {
    std::string name;  // user, pid, net, ipc, mnt, uts
    bool isolated = false;
  };
  std::vector<Namespace> namespaces;
  struct Rlimit {
    std::string name;  // as /proc/PID/limits spells it
    std::string soft;
    std::string hard;
  };
  std::vector<Rlimit> rlimits;
  bool adequate = false;
  std::string verdict;
  std::vector<std::string> problems;
  std::string note;  // e.g. why namespaces are unavailable
};

// Reads /proc/PID and judges it against what `level` promises; nothing the renderer says about
// itself counts. `note` rides along (the reason a layer is missing on this machine).
// `launcher_filter`: the launcher installed a filter of its own before exec, so a renderer that
// also stacked its own shows two; one alone reads "contained by the launcher's filter only".
Result<SandboxReport> InspectSandbox(pid_t pid, sandbox::Level level, const std::string& note,
                                     bool launcher_filter = false);

// When the process `pid` started, in clock ticks since boot (/proc/PID/stat field 22): with the
// pid, it names one process, where a pid alone may name a later one the kernel gave it to.
std::optional<uint64_t> ProcessStartTicks(pid_t pid);

// InspectSandbox for a broker that is asked again and again (`list`, every renderer each time):
// it keeps, per process, the layers a sandboxed renderer can no longer change once its own
// filter is on (seccomp, no_new_privs, capabilities, root, uid map, namespaces, limits) and
// reads only its stdio and start time again. The report is the one InspectSandbox makes. A
// renderer may still lower a limit after that; the report shows the ones it started with.
class SandboxInspector {
 public:
  static constexpr size_t kMaxCached = 2048;

  // Safe from any thread: the broker's loop (`sandbox ID`) and its worker (`list`) both ask.
  Result<SandboxReport> Inspect(pid_t pid, sandbox::Level level, const std::string& note,
                                bool launcher_filter = false);
  size_t cached() const {
    std::lock_guard lock(mutex_);
    return cache_.size();
  }

 private:
  struct Entry {
    uint64_t start_ticks = 0;
    SandboxReport layers;  // as read, before the live parts and the judgement
    int64_t used_ns = 0;
  };
  void Evict(int64_t now_ns);

  mutable std::mutex mutex_;  // guards cache_ (the reads themselves run unlocked)
  std::unordered_map<pid_t, Entry> cache_;
};

nlohmann::json SandboxReportToJson(const SandboxReport& r);

}  // namespace sbx
