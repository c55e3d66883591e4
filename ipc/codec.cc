#include "ipc/codec.h"

#include <cstring>

namespace sbx {

using protocol::Direction;
using protocol::MsgType;

PayloadWriter& PayloadWriter::U32(uint32_t v) {
  return Bytes({reinterpret_cast<const uint8_t*>(&v), sizeof v});
}

PayloadWriter& PayloadWriter::U64(uint64_t v) {
  return Bytes({reinterpret_cast<const uint8_t*>(&v), sizeof v});
}

PayloadWriter& PayloadWriter::Str(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  return Bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

PayloadWriter& PayloadWriter::Bytes(std::span<const uint8_t> b) {
  buf_.insert(buf_.end(), b.begin(), b.end());
  return *this;
}

bool PayloadReader::Take(void* out, size_t n) {
  if (broken_ || data_.size() - pos_ < n) {
    broken_ = true;
    return false;
  }
  std::memcpy(out, data_.data() + pos_, n);
  pos_ += n;
  return true;
}

bool PayloadReader::U32(uint32_t* v) { return Take(v, sizeof *v); }
bool PayloadReader::U64(uint64_t* v) { return Take(v, sizeof *v); }

bool PayloadReader::Str(std::string* s, size_t max_len) {
  uint32_t len = 0;
  if (!U32(&len)) return false;
  if (len > max_len || data_.size() - pos_ < len) {
    broken_ = true;
    return false;
  }
  s->assign(reinterpret_cast<const char*>(data_.data() + pos_), len);
  pos_ += len;
  return true;
}

void EncodeMessage(MsgType type, uint64_t seq, std::span<const uint8_t> payload,
                   std::vector<uint8_t>& out) {
  protocol::MessageHeader h{static_cast<uint16_t>(type), 0, static_cast<uint32_t>(payload.size()),
                            seq};
  const auto* hp = reinterpret_cast<const uint8_t*>(&h);
  out.insert(out.end(), hp, hp + sizeof h);
  out.insert(out.end(), payload.begin(), payload.end());
}

std::unexpected<Error> Decoder::Fail(std::string what) {
  broken_ = true;
  return MakeError(Errc::kProtocol, std::move(what));
}

Result<void> Decoder::Feed(std::span<const uint8_t> bytes) {
  if (broken_) return MakeError(Errc::kProtocol, "decoder already failed");
  constexpr size_t kLimit = 2 * (sizeof(protocol::MessageHeader) + protocol::kMaxPayload);
  if (buffered() + bytes.size() > kLimit) {
    broken_ = true;
    return MakeError(Errc::kOverflow, "inbound buffer full");
  }
  // Compact only when the consumed prefix dominates, so steady traffic does not memmove.
  if (start_ > 0 && start_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(start_));
    start_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  return {};
}

Result<std::optional<Message>> Decoder::Next() {
  if (broken_) return MakeError(Errc::kProtocol, "decoder already failed");
  if (buffered() < sizeof(protocol::MessageHeader)) return std::optional<Message>();
  protocol::MessageHeader h;
  std::memcpy(&h, buf_.data() + start_, sizeof h);
  if (!protocol::IsKnownType(h.type, incoming_)) {
    return Fail("unknown message type " + std::to_string(h.type));
  }
  auto type = static_cast<MsgType>(h.type);
  if (h.flags != 0) return Fail("nonzero flags");
  if (h.length > protocol::kMaxPayload) return Fail("oversize payload " + std::to_string(h.length));
  if (h.length < protocol::MinPayload(type) || h.length > protocol::MaxPayload(type)) {
    return Fail("bad length " + std::to_string(h.length) + " for " +
                std::string(protocol::MsgTypeName(type)));
  }
  if (h.seq != expected_seq_) {
    return Fail("out-of-order sequence " + std::to_string(h.seq) + ", expected " +
                std::to_string(expected_seq_));
  }
  if (buffered() < sizeof h + h.length) return std::optional<Message>();
  Message m{type, h.seq, {}};
  const uint8_t* p = buf_.data() + start_ + sizeof h;
  m.payload.assign(p, p + h.length);
  start_ += sizeof h + h.length;
  ++expected_seq_;
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  }
  return std::optional<Message>(std::move(m));
}

namespace {
std::unexpected<Error> BadPayload(const Message& m) {
  return MakeError(Errc::kProtocol,
                   "malformed " + std::string(protocol::MsgTypeName(m.type)) + " payload");
}
}  // namespace

Result<HelloMsg> DecodeHello(const Message& m) {
  PayloadReader r(m.payload);
  HelloMsg h{};
  if (m.type != MsgType::kHello || !r.U32(&h.pid) || !r.U32(&h.fps) || !r.U32(&h.broker_pid) ||
      !r.Done()) {
    return BadPayload(m);
  }
  if (h.fps < protocol::kMinFps || h.fps > protocol::kMaxFps) return BadPayload(m);
  return h;
}

Result<std::string> DecodeNavigate(const Message& m) {
  PayloadReader r(m.payload);
  std::string url;
  if (m.type != MsgType::kNavigate || !r.Str(&url, protocol::kMaxUrl) || !r.Done() ||
      !IsValidUrl(url)) {
    return BadPayload(m);
  }
  return url;
}

Result<AssignMsg> DecodeAssign(const Message& m) {
  PayloadReader r(m.payload);
  AssignMsg a{};
  uint32_t visibility = 0;
  if (m.type != MsgType::kAssign || !r.U32(&a.id) || !r.U32(&a.fps) || !r.U32(&visibility) ||
      !r.Str(&a.page, protocol::kMaxUrl) || !r.Done()) {
    return BadPayload(m);
  }
  if (a.id < 1 || a.id > static_cast<uint32_t>(INT32_MAX) || a.fps < protocol::kMinFps ||
      a.fps > protocol::kMaxFps ||
      visibility > static_cast<uint32_t>(protocol::Visibility::kHidden) || !IsValidUrl(a.page)) {
    return BadPayload(m);
  }
  a.visibility = static_cast<protocol::Visibility>(visibility);
  return a;
}

void EncodeAssign(const AssignMsg& a, PayloadWriter& w) {
  w.U32(a.id).U32(a.fps).U32(static_cast<uint32_t>(a.visibility)).Str(a.page);
}

Result<std::string> DecodeDrillReport(const Message& m) {
  PayloadReader r(m.payload);
  std::string text;
  if (m.type != MsgType::kDrillReport || !r.Str(&text, protocol::kMaxDrillReport) || !r.Done()) {
    return BadPayload(m);
  }
  for (char c : text) {
    if (c < ' ' || c > '~') return BadPayload(m);
  }
  return text;
}

Result<uint32_t> DecodeU32(const Message& m) {
  PayloadReader r(m.payload);
  uint32_t v = 0;
  if (!r.U32(&v) || !r.Done()) return BadPayload(m);
  return v;
}

Result<uint64_t> DecodeU64(const Message& m) {
  PayloadReader r(m.payload);
  uint64_t v = 0;
  if (!r.U64(&v) || !r.Done()) return BadPayload(m);
  return v;
}

Result<FrameReadyMsg> DecodeFrameReady(const Message& m) {
  PayloadReader r(m.payload);
  FrameReadyMsg f{};
  if (m.type != MsgType::kFrameReady || !r.U32(&f.buffer_index) || !r.U64(&f.frame_number) ||
      !r.Done()) {
    return BadPayload(m);
  }
  if (f.buffer_index > 1) {
    return MakeError(Errc::kProtocol,
                     "frame index out of range: " + std::to_string(f.buffer_index));
  }
  return f;
}

Result<protocol::Heartbeat> DecodeHeartbeat(std::span<const uint8_t> bytes) {
  protocol::Heartbeat hb{};
  if (bytes.size() != sizeof hb) {
    return MakeError(Errc::kProtocol, "heartbeat of " + std::to_string(bytes.size()) + " bytes");
  }
  std::memcpy(&hb, bytes.data(), sizeof hb);
  if (hb.magic != protocol::kHeartbeatMagic || hb.flags != 0) {
    return MakeError(Errc::kProtocol, "heartbeat with bad magic or flags");
  }
  if (hb.fps < protocol::kMinFps || hb.fps > protocol::kMaxFps) {
    return MakeError(Errc::kProtocol, "heartbeat with fps out of range");
  }
  return hb;
}

bool IsValidUrl(std::string_view url) {
  if (url.empty() || url.size() > protocol::kMaxUrl) return false;
  for (char c : url) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace sbx
