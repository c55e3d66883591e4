#include "broker/death_detection.h"

#include <signal.h>

#include <utility>

#include "broker/cmd_prefix.h"
#include "ipc/protocol.h"

namespace sbx {

ExitInfo ExplainExit(ExitInfo info, std::string_view kill_note,
                     const std::vector<std::string>& cmd_prefix) {
  if (!kill_note.empty() &&
      (info.status == ExitStatus::kBadMessage || info.status == ExitStatus::kHung)) {
    info.detail = std::string(kill_note);
  }
  if (info.detail.empty()) info.detail = WrapperExitNote(cmd_prefix);
  return info;
}

ExitInfo ClassifyCgroupOom(ExitInfo info, int64_t oom_kills, uint64_t limit_bytes) {
  // A broker kill (bad-message, hung) keeps its name: the broker's reason is the one it acted on.
  if (info.status != ExitStatus::kKilled || info.signal != SIGKILL || oom_kills <= 0) return info;
  info.status = ExitStatus::kOom;
  info.detail = "killed by the kernel at its cgroup memory limit of " +
                std::to_string(limit_bytes >> 20) + " MiB";
  return info;
}

ExitInfo LaunchFailedExit(const Error& e) {
  ExitInfo info;
  info.status = ExitStatus::kLaunchFailed;
  info.code = protocol::kExitLaunchFailed;
  info.detail = e.ToString();
  return info;
}

std::optional<ExitInfo> DetectDeath(ChildProcess& process, KillReason reason,
                                    std::string_view kill_note,
                                    const std::vector<std::string>& cmd_prefix) {
  auto exit = process.TryWait(reason);
  if (!exit) return std::nullopt;
  return ExplainExit(std::move(*exit), kill_note, cmd_prefix);
}

}  // namespace sbx
