#include "broker/ipc_inspector.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

#include "ipc/posix.h"

namespace sbx {

namespace {

using protocol::MsgType;

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr const char* kNames[kMechanismCount] = {"pipe-out", "pipe-in", "shm",
                                                 "mq",       "signal",  "pidfd"};

// Fixed-offset reads from a payload that may be short: absent fields read as 0.
uint32_t U32At(std::span<const uint8_t> p, size_t at) {
  uint32_t v = 0;
  if (p.size() >= at + sizeof v) std::memcpy(&v, p.data() + at, sizeof v);
  return v;
}
uint64_t U64At(std::span<const uint8_t> p, size_t at) {
  uint64_t v = 0;
  if (p.size() >= at + sizeof v) std::memcpy(&v, p.data() + at, sizeof v);
  return v;
}
// A string field (u32 length, bytes) cut to what the summary can show, printable bytes only.
void StrAt(std::span<const uint8_t> p, size_t at, char* out, size_t cap) {
  size_t len = std::min<size_t>(U32At(p, at), p.size() > at + 4 ? p.size() - at - 4 : 0);
  size_t n = std::min(len, cap - 1);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<char>(p[at + 4 + i]);
    out[i] = (c >= ' ' && c <= '~') ? c : '?';
  }
  out[n] = '\0';
}

}  // namespace

std::string_view MechanismName(Mechanism m) { return kNames[static_cast<size_t>(m)]; }

bool IsMechanismFilter(std::string_view filter) {
  if (filter == "pipe") return true;
  for (const char* n : kNames) {
    if (filter == n) return true;
  }
  return false;
}

bool MechanismMatches(std::string_view filter, Mechanism m) {
  if (filter.empty()) return true;
  if (filter == "pipe") return m == Mechanism::kPipeToRenderer || m == Mechanism::kPipeToBroker;
  return filter == MechanismName(m);
}

std::string_view IpcRecord::TypeName() const {
  switch (mechanism) {
    case Mechanism::kPipeToRenderer:
    case Mechanism::kPipeToBroker:
      return protocol::MsgTypeName(static_cast<MsgType>(type));
    case Mechanism::kFrames:
      return "frame";
    case Mechanism::kQueue:
      return "heartbeat";
    case Mechanism::kSignal:
      return SignalName(type);
    case Mechanism::kPidfd:
      return "exit";
  }
  return "?";
}

IpcRecord& IpcInspector::Count(int64_t now, Mechanism m, uint16_t type, uint64_t seq,
                               uint32_t size) {
  Tally& t = counters_[static_cast<size_t>(m)];
  ++t.messages;
  t.bytes += size;
  int64_t second = now / kNsPerSecond;
  if (second != t.second) {
    bool next = second == t.second + 1;
    t.previous_messages = next ? t.current_messages : 0;
    t.previous_bytes = next ? t.current_bytes : 0;
    t.current_messages = t.current_bytes = 0;
    t.second = second;
  }
  ++t.current_messages;
  t.current_bytes += size;
  IpcRecord& r = ring_[recorded_++ % kRingSize];
  r.t_ns = now;
  r.mechanism = m;
  r.type = type;
  r.seq = seq;
  r.size = size;
  return r;
}

const IpcRecord* IpcInspector::Record(int64_t now, Mechanism m, uint16_t type, uint64_t seq,
                                      uint32_t size, const char* fmt, ...) {
  if (!enabled_) return nullptr;
  IpcRecord& r = Count(now, m, type, seq, size);
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(r.data.data(), r.data.size(), fmt, ap);
  va_end(ap);
  r.payload_size = -1;
  return &r;
}

const IpcRecord* IpcInspector::RecordPipe(int64_t now, Mechanism m, MsgType type, uint64_t seq,
                                          std::span<const uint8_t> p) {
  if (!enabled_) return nullptr;
  auto size = static_cast<uint32_t>(sizeof(protocol::MessageHeader) + p.size());
  IpcRecord& r = Count(now, m, static_cast<uint16_t>(type), seq, size);
  size_t kept = std::min(p.size(), r.data.size());
  if (kept > 0) std::memcpy(r.data.data(), p.data(), kept);
  r.payload_size = static_cast<int8_t>(kept);
  return &r;
}

std::string IpcRecord::Summary() const {
  if (payload_size < 0) return std::string(data.data(), ::strnlen(data.data(), data.size()));
  std::span<const uint8_t> p(reinterpret_cast<const uint8_t*>(data.data()),
                             static_cast<size_t>(payload_size));
  char s[64];
  const size_t cap = sizeof s;
  char text[48];
  s[0] = '\0';
  switch (static_cast<MsgType>(type)) {
    case MsgType::kHello:
      std::snprintf(s, cap, "pid %u, %u fps, broker pid %u", U32At(p, 0), U32At(p, 4), U32At(p, 8));
      break;
    case MsgType::kNavigate:
    case MsgType::kDrillReport:
      StrAt(p, 0, text, sizeof text);
      std::snprintf(s, cap, "%s", text);
      break;
    case MsgType::kSetFps:
      std::snprintf(s, cap, "%u fps", U32At(p, 0));
      break;
    case MsgType::kPing:
    case MsgType::kPong:
      std::snprintf(s, cap, "token %llu", static_cast<unsigned long long>(U64At(p, 0)));
      break;
    case MsgType::kCrash: {
      std::string_view kind =
          protocol::CrashKindName(static_cast<protocol::CrashKind>(U32At(p, 0)));
      std::snprintf(s, cap, "%.*s", static_cast<int>(kind.size()), kind.data());
      break;
    }
    case MsgType::kFrameReady:
      std::snprintf(s, cap, "buffer %u, frame %llu", U32At(p, 0),
                    static_cast<unsigned long long>(U64At(p, 4)));
      break;
    case MsgType::kHeartbeat:
      std::snprintf(s, cap, "%llu frames, %u fps (on the pipe)",
                    static_cast<unsigned long long>(U64At(p, 8)), U32At(p, 36));
      break;
    default:
      break;
  }
  return s;
}

IpcCounterView IpcInspector::Counter(Mechanism m, int64_t now) const {
  const Tally& t = counters_[static_cast<size_t>(m)];
  IpcCounterView v{t.messages, t.bytes, 0, 0};
  int64_t second = now / kNsPerSecond;
  // The last whole second: `current` once it is over, `previous` while it runs.
  if (second == t.second) {
    v.messages_per_s = t.previous_messages;
    v.bytes_per_s = t.previous_bytes;
  } else if (second == t.second + 1) {
    v.messages_per_s = t.current_messages;
    v.bytes_per_s = t.current_bytes;
  }
  return v;
}

IpcSnapshot IpcInspector::Snapshot(int64_t now) const {
  IpcSnapshot s;
  for (size_t i = 0; i < kMechanismCount; ++i) s.counters[i] = Counter(Mechanism(i), now);
  s.recorded = recorded_;
  s.enabled = enabled_;
  return s;
}

std::vector<IpcRecord> IpcInspector::Recent(size_t max) const {
  size_t n = std::min({max, kRingSize, static_cast<size_t>(recorded_)});
  std::vector<IpcRecord> out;
  out.reserve(n);
  for (uint64_t i = recorded_ - n; i < recorded_; ++i) out.push_back(ring_[i % kRingSize]);
  return out;
}

nlohmann::json IpcCountersToJson(const IpcSnapshot& s) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < kMechanismCount; ++i) {
    const IpcCounterView& c = s.counters[i];
    j[kNames[i]] = {{"messages", c.messages},
                    {"bytes", c.bytes},
                    {"msgs_per_s", c.messages_per_s},
                    {"bytes_per_s", c.bytes_per_s}};
  }
  return j;
}

nlohmann::json IpcSnapshotToJson(const IpcSnapshot& s) {
  nlohmann::json j = IpcCountersToJson(s);
  j["recorded"] = s.recorded;
  j["queue_depth"] = s.queue_depth;
  j["pipe_in_waiting"] = s.pipe_in_waiting;
  j["pipe_out_waiting"] = s.pipe_out_waiting;
  j["outbound_queued"] = s.outbound_queued;
  j["enabled"] = s.enabled;
  return j;
}

nlohmann::json IpcRecordToJson(int id, const IpcRecord& r, int64_t origin_ns) {
  return {{"t_ms", static_cast<double>(r.t_ns - origin_ns) / 1e6},
          {"id", id},
          {"mechanism", std::string(MechanismName(r.mechanism))},
          {"dir", r.to_renderer() ? "to-renderer" : "to-broker"},
          {"type", std::string(r.TypeName())},
          {"seq", r.seq},
          {"size", r.size},
          {"summary", r.Summary()}};
}

}  // namespace sbx
