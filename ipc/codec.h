// The pipe wire format: a 16-byte MessageHeader then a bounded payload. Encoding appends to a
// byte buffer; decoding is a streaming Decoder that validates each header as soon as it is
// complete, so an oversize length is rejected before a single payload byte is buffered.
// Like Chromium's BrokerSimpleMessage, one failure poisons the decoder for good.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/error.h"
#include "ipc/protocol.h"

namespace sbx {

struct Message {
  protocol::MsgType type;
  uint64_t seq = 0;
  std::vector<uint8_t> payload;
};

class PayloadWriter {
 public:
  PayloadWriter& U32(uint32_t v);
  PayloadWriter& U64(uint64_t v);
  PayloadWriter& Str(std::string_view s);  // u32 length, then the bytes
  PayloadWriter& Bytes(std::span<const uint8_t> b);
  std::span<const uint8_t> data() const { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

// Reads fields in order; any short read marks the reader broken and every later read fails.
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const uint8_t> data) : data_(data) {}
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool Str(std::string* s, size_t max_len);
  // True when every byte was consumed and nothing failed: trailing bytes are a violation too.
  bool Done() const { return !broken_ && pos_ == data_.size(); }

 private:
  bool Take(void* out, size_t n);
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool broken_ = false;
};

// Appends one encoded message to out.
void EncodeMessage(protocol::MsgType type, uint64_t seq, std::span<const uint8_t> payload,
                   std::vector<uint8_t>& out);

class Decoder {
 public:
  // Accepts only message types travelling in direction `incoming`.
  explicit Decoder(protocol::Direction incoming) : incoming_(incoming) {}

  // Buffers bytes; fails with kOverflow if the caller feeds more than one maximal message
  // beyond what Next() has drained.
  Result<void> Feed(std::span<const uint8_t> bytes);
  // The next complete message, nullopt if more bytes are needed, or a kProtocol error.
  Result<std::optional<Message>> Next();
  bool broken() const { return broken_; }
  size_t buffered() const { return buf_.size() - start_; }

 private:
  std::unexpected<Error> Fail(std::string what);

  protocol::Direction incoming_;
  std::vector<uint8_t> buf_;
  size_t start_ = 0;
  uint64_t expected_seq_ = 1;
  bool broken_ = false;
};

// Typed payloads. Each Decode* fails with kProtocol unless the payload is exactly well-formed.
struct HelloMsg {
  uint32_t pid;
  uint32_t fps;
  uint32_t broker_pid;
};
// What a spare renderer becomes: the slot that took it (ipc/launch_args.h, LaunchArgs::spare).
struct AssignMsg {
  uint32_t id;
  uint32_t fps;
  protocol::Visibility visibility;
  std::string page;

  bool operator==(const AssignMsg&) const = default;
};
struct FrameReadyMsg {
  uint32_t buffer_index;
  uint64_t frame_number;
};

Result<HelloMsg> DecodeHello(const Message& m);
Result<std::string> DecodeNavigate(const Message& m);
// id >= 1, fps in range, a known visibility and a valid URL.
Result<AssignMsg> DecodeAssign(const Message& m);
void EncodeAssign(const AssignMsg& a, PayloadWriter& w);
// Printable ASCII only, at most kMaxDrillReport bytes.
Result<std::string> DecodeDrillReport(const Message& m);
Result<uint32_t> DecodeU32(const Message& m);  // kSetFps, kCrash
Result<uint64_t> DecodeU64(const Message& m);  // kPing, kPong
Result<FrameReadyMsg> DecodeFrameReady(const Message& m);
Result<protocol::Heartbeat> DecodeHeartbeat(std::span<const uint8_t> bytes);

// A URL the renderer may be asked to load: 1..kMaxUrl printable ASCII bytes, no spaces.
bool IsValidUrl(std::string_view url);

}  // namespace sbx
