#include "ipc/launch_args.h"

#include <charconv>
#include <optional>

#include "ipc/codec.h"
#include "ipc/protocol.h"

namespace sbx {

namespace {

constexpr std::string_view kType = "--type=";
constexpr std::string_view kId = "--id=";
constexpr std::string_view kPage = "--page=";
constexpr std::string_view kFps = "--fps=";
constexpr std::string_view kHeartbeat = "--heartbeat=";
constexpr std::string_view kSandbox = "--sandbox=";
constexpr std::string_view kSandboxRoot = "--sandbox-root=";
constexpr std::string_view kVisibility = "--visibility=";
constexpr std::string_view kSpare = "--spare";

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view HeartbeatName(Heartbeat h) { return h == Heartbeat::kQueue ? "mq" : "pipe"; }

// Applies one argument; false if it is unknown or its value malformed.
bool ParseOne(std::string_view s, LaunchArgs* a, bool* type_seen) {
  auto value = [&](std::string_view key) -> std::optional<std::string_view> {
    if (!s.starts_with(key)) return std::nullopt;
    return s.substr(key.size());
  };
  if (s == kSpare) return a->spare = true;
  if (auto v = value(kType)) {
    *type_seen = *v == "renderer";
    return *type_seen;
  }
  if (auto v = value(kId)) return ParseNumber(*v, &a->id) && a->id >= 0;
  if (auto v = value(kPage)) {
    a->page = std::string(*v);
    return IsValidUrl(a->page);
  }
  if (auto v = value(kFps)) {
    return ParseNumber(*v, &a->fps) && a->fps >= protocol::kMinFps && a->fps <= protocol::kMaxFps;
  }
  if (auto v = value(kHeartbeat)) {
    if (*v != HeartbeatName(Heartbeat::kQueue) && *v != HeartbeatName(Heartbeat::kPipe)) {
      return false;
    }
    a->heartbeat = *v == HeartbeatName(Heartbeat::kQueue) ? Heartbeat::kQueue : Heartbeat::kPipe;
    return true;
  }
  if (auto v = value(kSandboxRoot)) {  // before --sandbox=, which is its prefix
    a->sandbox_root = std::string(*v);
    return !a->sandbox_root.empty() && a->sandbox_root[0] == '/';
  }
  if (auto v = value(kSandbox)) return LevelFromName(*v, &a->sandbox);
  if (auto v = value(kVisibility)) return protocol::VisibilityFromName(*v, &a->visibility);
  return false;
}

}  // namespace

std::string_view LevelName(SandboxLevel level) {
  switch (level) {
    case SandboxLevel::kFull:
      return "full";
    case SandboxLevel::kNoNamespaces:
      return "no-namespaces";
    case SandboxLevel::kOff:
      return "off";
  }
  return "unknown";
}

bool LevelFromName(std::string_view name, SandboxLevel* out) {
  for (SandboxLevel l : {SandboxLevel::kFull, SandboxLevel::kNoNamespaces, SandboxLevel::kOff}) {
    if (name == LevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

std::vector<std::string> ToArgv(const LaunchArgs& a) {
  std::vector<std::string> out = {std::string(kType) + "renderer"};
  if (a.spare) {
    out.emplace_back(kSpare);
  } else {
    out.push_back(std::string(kId) + std::to_string(a.id));
    out.push_back(std::string(kPage) + a.page);
  }
  out.insert(out.end(),
             {
                 std::string(kFps) + std::to_string(a.fps),
                 std::string(kHeartbeat) + std::string(HeartbeatName(a.heartbeat)),
                 std::string(kSandbox) + std::string(LevelName(a.sandbox)),
                 std::string(kVisibility) + std::string(protocol::VisibilityName(a.visibility)),
             });
  if (!a.sandbox_root.empty()) out.push_back(std::string(kSandboxRoot) + a.sandbox_root);
  return out;
}

Result<LaunchArgs> ParseLaunchArgs(std::span<const char* const> args) {
  LaunchArgs a;
  bool type_seen = false;
  for (const char* arg : args) {
    if (arg == nullptr || !ParseOne(arg, &a, &type_seen)) {
      return MakeError(Errc::kInvalidArgument,
                       "bad argument: " + std::string(arg ? arg : "(null)").substr(0, 80));
    }
  }
  if (!type_seen) return MakeError(Errc::kInvalidArgument, "no --type=renderer");
  if (a.spare) {
    if (a.id >= 0 || !a.page.empty()) {
      return MakeError(Errc::kInvalidArgument, "--spare with --id or --page");
    }
    return a;
  }
  if (a.id < 0) return MakeError(Errc::kInvalidArgument, "no --id");
  if (a.page.empty()) return MakeError(Errc::kInvalidArgument, "no --page");
  return a;
}

std::vector<std::pair<int, int>> FdMap(const LaunchFds& fds) {
  std::vector<std::pair<int, int>> out = {{fds.control_in, protocol::kControlInFd},
                                          {fds.control_out, protocol::kControlOutFd},
                                          {fds.frame, protocol::kFrameFd}};
  if (fds.heartbeat >= 0) out.emplace_back(fds.heartbeat, protocol::kHeartbeatFd);
  return out;
}

std::vector<int> ExpectedFds(Heartbeat heartbeat) {
  std::vector<int> out = {protocol::kControlInFd, protocol::kControlOutFd, protocol::kFrameFd};
  if (heartbeat == Heartbeat::kQueue) out.push_back(protocol::kHeartbeatFd);
  return out;
}

}  // namespace sbx
