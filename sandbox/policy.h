// The renderer's seccomp-bpf policy (built with libseccomp) and the table that documents it.
// docs/SANDBOX.md is this table in prose; the escape drill and the tests read the same table,
// so the three cannot drift apart.
#pragma once

#include <span>
#include <string_view>

#include "ipc/error.h"

namespace sbx::sandbox {

enum class Outcome {
  kAllow,  // allowed (possibly only for some arguments; see `note`)
  kErrno,  // fails with `err`: calls a well-meaning library may try, which should degrade
  kKill,   // the process dies of SIGSYS: calls only an exploit makes
};

struct SyscallRule {
  std::string_view name;
  Outcome outcome;
  int err;                // for kErrno
  std::string_view note;  // argument conditions and the reason
};

// Every rule the policy installs, in the order docs/SANDBOX.md lists them. Anything not listed
// is killed (SIGSYS), which the broker classifies as `sandbox-violation`.
std::span<const SyscallRule> PolicyTable();
const SyscallRule* FindRule(std::string_view name);

// Installs the policy on the calling process (every thread: TSYNC), after PR_SET_NO_NEW_PRIVS.
// `self_pid` is getpid() as the caller sees it: signals may go to that pid only. Irreversible.
Result<void> InstallSeccompPolicy(int self_pid);

}  // namespace sbx::sandbox
