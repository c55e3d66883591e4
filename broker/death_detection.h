// Death detection: how the broker learns that a renderer is gone, and what it calls the death.
//
// A renderer is always the broker's direct child (sandboxed too: the launcher starts it with
// CLONE_PARENT), so the pidfd clone3 returned for it turns readable the moment it exits. The
// event loop watches that pidfd like any other fd; there is no SIGCHLD handler. When it fires,
// RendererProcess calls DetectDeath: waitid(P_PIDFD, WNOWAIT) reads the status without reaping
// (ChildProcess::TryWait), ClassifyExit names it (exit_status.h), and ExplainExit adds why. The
// process then releases every kernel object it held, and its slot (RendererHost::OnExit) decides
// what follows: a restart, `failed` after a crash loop, or `closed`. The reap itself comes after
// that, when the process object goes: it frees the renderer's /proc entries, which the broker's
// reports have read, and that is the slowest step of the exit path.
//
// A launch that fails is a death too (LaunchFailedExit), handled and restarted like any other.
// A closed pipe is not a death, only a sign of one: the process gets kPipeClosedGraceNs for its
// pidfd to report the exit, and is killed as `bad-message` if it keeps running without the pipe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/child_process.h"
#include "broker/exit_status.h"
#include "ipc/error.h"

namespace sbx {

inline constexpr int64_t kPipeClosedGraceNs = 1'000'000'000;

// Completes a reaped exit's detail: the broker's own reason (`kill_note`: the protocol
// violation, "killed by the hang watchdog") when the status says the broker's kill is what ended
// it, else, if nothing else is known, that a wrapper (--renderer-cmd-prefix) stands between the
// broker and the renderer and the status may be the wrapper's.
ExitInfo ExplainExit(ExitInfo reaped, std::string_view kill_note,
                     const std::vector<std::string>& cmd_prefix);

// A renderer SIGKILLed while its memory cgroup counts an OOM kill (`oom_kills` > 0: memory.events
// or memory.oom_control) died of the cgroup's memory limit: `oom`, with the limit in the detail.
// Any other exit is returned as it was.
ExitInfo ClassifyCgroupOom(ExitInfo info, int64_t oom_kills, uint64_t limit_bytes);

// The exit a failed launch is reported as.
ExitInfo LaunchFailedExit(const Error& e);

// Returns the explained exit of `process` once it has exited (never blocks), leaving it to be
// reaped later; nullopt while it runs. `reason` is why the broker signalled it, if it did.
std::optional<ExitInfo> DetectDeath(ChildProcess& process, KillReason reason,
                                    std::string_view kill_note,
                                    const std::vector<std::string>& cmd_prefix);

}  // namespace sbx
