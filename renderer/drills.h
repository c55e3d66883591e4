// The fault drills: the ways a renderer breaks on purpose when the broker asks (crash, hang,
// oom, bad-ipc and the sandbox escape; docs/PROTOCOL.md), so that detection, classification and
// recovery can be watched on a real process. Each runs on the renderer's main thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "ipc/launch_args.h"
#include "ipc/protocol.h"

namespace sbx::renderer {

// segv, abort, stack-overflow or oom-kill (kEscape is Escape's).
[[noreturn]] void Crash(protocol::CrashKind kind);

// Spins forever without a frame or a heartbeat.
[[noreturn]] void Hang();

// Caps the address space a little above `vm_at_start`, then allocates until that fails and
// exits protocol::kExitOom.
[[noreturn]] void OutOfMemory(size_t vm_at_start);

// The process's address-space size, read from /proc; 0 if unreadable (so call it before the
// sandbox, which denies open).
size_t VirtualSize();

// Writes to `fd`, around the channel, a message header whose type no renderer may send.
void SendGarbage(int fd);

// The escape drill: what a compromised renderer would try, in turn. `report` sends one line to
// the broker and returns once it is out. Each attempt the policy answers with an error is made
// and reported; those it kills are reported and skipped, except execve, made last and for real.
[[noreturn]] void Escape(SandboxLevel level, int broker_pid,
                         const std::function<void(const std::string&)>& report);

}  // namespace sbx::renderer
