// The renderer's launch contract: the argv and the descriptors a renderer starts with
// (docs/PROTOCOL.md, "Process start"). The broker builds both from one LaunchArgs; the renderer
// parses its argv back into one. Neither side spells an argument itself, so they cannot drift.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/error.h"
#include "ipc/protocol.h"

namespace sbx {

// The sandbox layers a renderer applies to itself (sandbox/confine.h says which).
enum class SandboxLevel {
  kFull,          // every layer (the renderer runs in the sandbox's namespaces)
  kNoNamespaces,  // every layer but the namespaces' empty root: user namespaces are unavailable
  kOff,           // --no-sandbox: nothing
};
std::string_view LevelName(SandboxLevel level);
bool LevelFromName(std::string_view name, SandboxLevel* out);

// Where heartbeats go: the message queue at kHeartbeatFd, or the control pipe (the fallback
// when the broker could not create a queue).
enum class Heartbeat { kQueue, kPipe };

struct LaunchArgs {
  int id = -1;       // >= 0; the broker's ids start at 1. -1 for a spare
  std::string page;  // a URL as IsValidUrl defines it; empty for a spare
  uint32_t fps = 30;
  Heartbeat heartbeat = Heartbeat::kQueue;
  SandboxLevel sandbox = SandboxLevel::kFull;
  std::string sandbox_root;  // with kFull: the empty directory to chroot into
  // Hidden from the start: it draws its first frame only, then none until it is made visible.
  protocol::Visibility visibility = protocol::Visibility::kVisible;
  // A spare (--spare, in place of --id and --page) is started ahead of need: it waits after the
  // hello for the assign message that names its id, page, fps and visibility.
  bool spare = false;

  bool operator==(const LaunchArgs&) const = default;
};

// The arguments after argv[0], in the documented order ("--type=renderer" first, so `ps`
// shows what the process is).
std::vector<std::string> ToArgv(const LaunchArgs& args);

// The inverse of ToArgv, for the renderer: `args` excludes argv[0]. Fails on an unknown,
// repeated-in-conflict or malformed argument, or a missing --type, --id or --page; a spare
// (--spare) must have neither --id nor --page.
Result<LaunchArgs> ParseLaunchArgs(std::span<const char* const> args);

// The descriptors the broker hands over, as the broker holds them.
struct LaunchFds {
  int control_in = -1;   // read end of the broker -> renderer pipe
  int control_out = -1;  // write end of the renderer -> broker pipe
  int frame = -1;        // the sealed frame memfd
  int heartbeat = -1;    // the queue's write end; -1 with Heartbeat::kPipe
};

// (fd in the broker, fd number in the renderer), for the launcher's fd map.
std::vector<std::pair<int, int>> FdMap(const LaunchFds& fds);

// The fd numbers a renderer started with `heartbeat` must find open.
std::vector<int> ExpectedFds(Heartbeat heartbeat);

}  // namespace sbx
