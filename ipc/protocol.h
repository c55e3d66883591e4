// The renderer contract (docs/PROTOCOL.md is its prose form): fd numbers, exit codes, message
// types and their payloads. Everything here is shared verbatim by the broker and the renderer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sbx::protocol {

// Descriptors a renderer finds open at exec. kHeartbeatFd is absent when the broker could not
// create a message queue (the renderer is told so with --heartbeat=pipe).
inline constexpr int kControlInFd = 3;   // broker -> renderer pipe, read end
inline constexpr int kControlOutFd = 4;  // renderer -> broker pipe, write end
inline constexpr int kFrameFd = 5;       // sealed memfd holding the frame buffer
inline constexpr int kHeartbeatFd = 6;   // POSIX message queue, write-only

// Exit codes with a meaning the broker classifies.
inline constexpr int kExitUsage = 2;           // started by hand, without the broker's fds/argv
inline constexpr int kExitOom = 86;            // allocation failed (address-space limit)
inline constexpr int kExitLaunchFailed = 127;  // the child recipe failed before exec

inline constexpr size_t kMaxPayload = 64 * 1024;
inline constexpr size_t kMaxUrl = 2048;
inline constexpr size_t kMaxDrillReport = 512;
inline constexpr uint32_t kMinFps = 1;
inline constexpr uint32_t kMaxFps = 240;

enum class MsgType : uint16_t {
  // broker -> renderer
  kHello = 1,           // u32 pid (as the broker sees it), u32 fps, u32 broker pid. Always first.
  kNavigate = 2,        // str url
  kSetFps = 3,          // u32 fps
  kPing = 4,            // u64 token
  kShutdown = 5,        // (empty)
  kCrash = 6,           // u32 CrashKind
  kHang = 7,            // (empty)
  kOom = 8,             // (empty)
  kBadIpc = 9,          // (empty)
  kSetVisibility = 10,  // u32 Visibility
  kAssign = 11,         // u32 id, u32 fps, u32 Visibility, str page. Only to a spare, once.
  // renderer -> broker
  kFrameReady = 64,   // u32 buffer index, u64 frame number
  kPong = 65,         // u64 token (echoed)
  kHeartbeat = 66,    // the Heartbeat struct, only when running on the pipe fallback
  kDrillReport = 67,  // str: one line of the escape drill's findings
};

enum class Direction { kToRenderer, kToBroker };

// kOomKill touches memory until its cgroup's memory limit has the kernel kill it.
enum class CrashKind : uint32_t {
  kSegv = 1,
  kAbort = 2,
  kStackOverflow = 3,
  kEscape = 4,
  kOomKill = 5,
};

// Whether the renderer's page is on screen (Chrome's foreground vs background tab). Hidden, it
// draws no frames and beats at kHiddenHeartbeatIntervalMs; the broker's watchdog knows.
enum class Visibility : uint32_t {
  kVisible = 0,
  kHidden = 1,
};

// Header of every pipe message, native byte order (both ends are on one machine).
struct MessageHeader {
  uint16_t type;
  uint16_t flags;   // must be 0
  uint32_t length;  // payload bytes that follow, <= kMaxPayload and within the type's bounds
  uint64_t seq;     // 1, 2, 3... per direction; anything else is a violation
};
static_assert(sizeof(MessageHeader) == 16);

// Heartbeat and telemetry, one fixed-size record per message-queue message (or the payload of a
// kHeartbeat pipe message on the fallback). A record of any other size is a violation.
struct Heartbeat {
  uint32_t magic;      // kHeartbeatMagic
  uint32_t flags;      // must be 0
  uint64_t frames;     // frames published so far
  int64_t mono_ns;     // CLOCK_MONOTONIC at send
  uint64_t cpu_ns;     // renderer's CPU time (CLOCK_PROCESS_CPUTIME_ID)
  uint32_t render_us;  // time to render the last frame
  uint32_t fps;        // current target frame rate
};
static_assert(sizeof(Heartbeat) == 40);
inline constexpr uint32_t kHeartbeatMagic = 0x53425848;  // "HXBS"
inline constexpr int kHeartbeatIntervalMs = 100;
inline constexpr int kHiddenHeartbeatIntervalMs = 1000;
inline constexpr long kQueueMaxMsg = 8;
inline constexpr long kQueueMsgSize = 64;

// Shared frame buffer layout. The broker writes the geometry once before the renderer starts and
// never reads it back; the atomics are the only fields it reads, and it validates them.
inline constexpr uint32_t kFrameMagic = 0x53425846;  // "FXBS"
inline constexpr uint32_t kFrameVersion = 1;
inline constexpr uint32_t kFormatRgba8888 = 1;  // bytes R,G,B,A (QImage::Format_RGBA8888)
inline constexpr size_t kFrameHeaderSize = 4096;
inline constexpr int kDefaultWidth = 640;
inline constexpr int kDefaultHeight = 360;
inline constexpr int kMaxDimension = 4096;

std::string_view MsgTypeName(MsgType t);
bool IsKnownType(uint16_t raw, Direction dir);
// Payload length bounds per type; IsKnownType must hold.
size_t MinPayload(MsgType t);
size_t MaxPayload(MsgType t);

std::string_view CrashKindName(CrashKind k);
bool CrashKindFromName(std::string_view name, CrashKind* out);

std::string_view VisibilityName(Visibility v);
bool VisibilityFromName(std::string_view name, Visibility* out);

}  // namespace sbx::protocol
