// What a renderer's sandbox looks like from outside, read from /proc/PID the way
// chrome://sandbox reports it: seccomp mode, no_new_privs, effective capabilities, which
// namespaces it shares with the broker, its rlimits, and a verdict.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ipc/error.h"
#include "sandbox/confine.h"

namespace sbx {

struct SandboxReport {
  sandbox::Level level = sandbox::Level::kOff;  // what the broker asked for
  int seccomp_mode = -1;                        // /proc/PID/status "Seccomp" (2 = filter)
  int no_new_privs = -1;
  uint64_t cap_eff = ~uint64_t{0};
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

// Reads /proc/PID and judges it against what `level` promises. `note` rides along (the reason
// a layer is missing on this machine).
Result<SandboxReport> InspectSandbox(pid_t pid, sandbox::Level level, const std::string& note);

nlohmann::json SandboxReportToJson(const SandboxReport& r);

}  // namespace sbx
