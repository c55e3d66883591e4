#include "broker/death_detection.h"

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
  auto exit = process.TryReap(reason);
  if (!exit) return std::nullopt;
  return ExplainExit(std::move(*exit), kill_note, cmd_prefix);
}

}  // namespace sbx
