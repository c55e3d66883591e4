// A cgroup of its own for an unprivileged broker on a systemd machine with cgroup v2 (a Debian
// 12 desktop). There, the cgroup a broker starts in is a terminal's or a session's scope: the
// user may write to it (systemd delegates user@UID.service to the user) but it holds the shell
// and other programs too, and a cgroup that hands controllers down to renderer cgroups may hold
// no process itself. Container runtimes ask systemd for a scope of their own with delegation;
// so does the broker, by running itself again, once, through
//   systemd-run --user --scope -p Delegate=yes --quiet -- <this program> <its arguments>
// which keeps its pid, terminal and process group (a scope adopts the calling process; nothing
// is forked). DetectCgroups then finds a cgroup it may use.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "broker/cgroup.h"

namespace sbx {

// Set in the environment of the re-entered broker, so it never tries twice.
inline constexpr const char* kDelegatedScopeEnv = "SBX_DELEGATED_SCOPE";

// What decides whether a scope of its own would give the broker renderer cgroups.
struct ScopeFacts {
  bool root = false;           // a root broker uses its own cgroup as it is
  bool reentered = false;      // kDelegatedScopeEnv is set
  bool cgroups_wanted = true;  // false with --no-cgroup
  V2Prospect own;              // ProbeOwnCgroupV2()
};

// The facts about this process.
ScopeFacts GatherScopeFacts(bool cgroups_wanted);

// Why re-entering through systemd cannot help, or nullopt when it is worth trying: not root,
// not done before, cgroups wanted, the own v2 cgroup offers memory, pids and cpu, and yet
// cannot be used as it is.
std::optional<std::string> WhyNoScopeNeeded(const ScopeFacts& facts);

// systemd-run's arguments for running `program` (with `args`, argv[0] excluded) in a scope.
std::vector<std::string> ScopeCommand(const std::string& program,
                                      std::span<const std::string> args);

// First asks systemd for a scope with a short probe (`true` run the same way, at most
// kProbeTimeoutMs), so that a machine without a user manager never loses the broker; then
// replaces this process with the command. Returns only when it did not: the reason, for the
// start-up message.
inline constexpr int kProbeTimeoutMs = 5000;
std::string ReenterThroughSystemd(const std::string& program, std::span<const std::string> args);

// The whole start-up step for sbx-broker and the window, called first in main(): returns an
// empty string when nothing needed doing, or a line saying why the broker stays where it is.
std::string MaybeReenterDelegatedScope(int argc, char** argv, bool cgroups_wanted);

}  // namespace sbx
