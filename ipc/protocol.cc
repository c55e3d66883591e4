#include "ipc/protocol.h"

namespace sbx::protocol {

std::string_view MsgTypeName(MsgType t) {
  switch (t) {
    case MsgType::kHello:
      return "hello";
    case MsgType::kNavigate:
      return "navigate";
    case MsgType::kSetFps:
      return "set-fps";
    case MsgType::kPing:
      return "ping";
    case MsgType::kShutdown:
      return "shutdown";
    case MsgType::kCrash:
      return "crash";
    case MsgType::kHang:
      return "hang";
    case MsgType::kOom:
      return "oom";
    case MsgType::kBadIpc:
      return "bad-ipc";
    case MsgType::kSetVisibility:
      return "set-visibility";
    case MsgType::kAssign:
      return "assign";
    case MsgType::kFrameReady:
      return "frame-ready";
    case MsgType::kPong:
      return "pong";
    case MsgType::kHeartbeat:
      return "heartbeat";
    case MsgType::kDrillReport:
      return "drill-report";
  }
  return "unknown";
}

bool IsKnownType(uint16_t raw, Direction dir) {
  if (dir == Direction::kToRenderer) return raw >= 1 && raw <= 11;
  return raw >= 64 && raw <= 67;
}

size_t MinPayload(MsgType t) {
  switch (t) {
    case MsgType::kHello:
      return 12;
    case MsgType::kNavigate:
    case MsgType::kDrillReport:
      return 4;
    case MsgType::kAssign:
      return 16;
    case MsgType::kSetFps:
    case MsgType::kCrash:
    case MsgType::kSetVisibility:
      return 4;
    case MsgType::kPing:
    case MsgType::kPong:
      return 8;
    case MsgType::kFrameReady:
      return 12;
    case MsgType::kHeartbeat:
      return sizeof(Heartbeat);
    case MsgType::kShutdown:
    case MsgType::kHang:
    case MsgType::kOom:
    case MsgType::kBadIpc:
      return 0;
  }
  return 0;
}

size_t MaxPayload(MsgType t) {
  if (t == MsgType::kNavigate) return 4 + kMaxUrl;
  if (t == MsgType::kAssign) return 16 + kMaxUrl;
  if (t == MsgType::kDrillReport) return 4 + kMaxDrillReport;
  return MinPayload(t);
}

std::string_view CrashKindName(CrashKind k) {
  switch (k) {
    case CrashKind::kSegv:
      return "segv";
    case CrashKind::kAbort:
      return "abort";
    case CrashKind::kStackOverflow:
      return "stack-overflow";
    case CrashKind::kEscape:
      return "escape";
    case CrashKind::kOomKill:
      return "oom-kill";
  }
  return "unknown";
}

bool CrashKindFromName(std::string_view name, CrashKind* out) {
  for (auto k : {CrashKind::kSegv, CrashKind::kAbort, CrashKind::kStackOverflow, CrashKind::kEscape,
                 CrashKind::kOomKill}) {
    if (name == CrashKindName(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

std::string_view VisibilityName(Visibility v) {
  return v == Visibility::kHidden ? "hidden" : "visible";
}

bool VisibilityFromName(std::string_view name, Visibility* out) {
  for (auto v : {Visibility::kVisible, Visibility::kHidden}) {
    if (name == VisibilityName(v)) {
      *out = v;
      return true;
    }
  }
  return false;
}

}  // namespace sbx::protocol
