// The pipe decoder, both directions, as a hostile peer drives it: any byte stream, cut into
// reads of any size. Properties:
// - the stream decodes to the same messages and the same verdict whether it arrives in one read
//   or in many (the streaming path may not change what a stream means);
// - every message it returns is exactly the bytes it consumed (re-encoding gives them back), in
//   sequence, of a type for this direction and within that type's length bounds;
// - a typed payload decoder accepts only what its contract allows (docs/PROTOCOL.md);
// - once the decoder fails, it stays failed.
//
// Input: byte 0 bit 0 picks the direction (0: to the renderer, 1: to the broker), byte 1 seeds
// how the stream is cut into reads; the rest is the stream.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "ipc/codec.h"
#include "ipc/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace sbx {
namespace {

using protocol::Direction;
using protocol::MsgType;

struct Outcome {
  std::vector<Message> messages;
  bool failed = false;
};

bool SameMessages(const std::vector<Message>& a, const std::vector<Message>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].seq != b[i].seq || a[i].payload != b[i].payload) {
      return false;
    }
  }
  return true;
}

bool Printable(const std::string& s) {
  for (char c : s) {
    if (c < ' ' || c > '~') return false;
  }
  return true;
}

// What each typed decoder accepts must stay inside its documented contract.
void CheckTypedPayload(const Message& m) {
  switch (m.type) {
    case MsgType::kHello:
      if (auto h = DecodeHello(m)) {
        SBX_FUZZ_CHECK(h->fps >= protocol::kMinFps && h->fps <= protocol::kMaxFps);
      }
      break;
    case MsgType::kNavigate:
      if (auto url = DecodeNavigate(m)) SBX_FUZZ_CHECK(IsValidUrl(*url));
      break;
    case MsgType::kAssign:
      if (auto a = DecodeAssign(m)) {
        SBX_FUZZ_CHECK(a->id >= 1 && a->fps >= protocol::kMinFps && a->fps <= protocol::kMaxFps &&
                       IsValidUrl(a->page));
        PayloadWriter again;
        EncodeAssign(*a, again);
        SBX_FUZZ_CHECK(std::equal(again.data().begin(), again.data().end(), m.payload.begin(),
                                  m.payload.end()));
      }
      break;
    case MsgType::kDrillReport:
      if (auto text = DecodeDrillReport(m)) {
        SBX_FUZZ_CHECK(text->size() <= protocol::kMaxDrillReport && Printable(*text));
      }
      break;
    case MsgType::kSetFps:
    case MsgType::kCrash:
    case MsgType::kSetVisibility:
      if (auto v = DecodeU32(m)) SBX_FUZZ_CHECK(m.payload.size() == sizeof *v);
      break;
    case MsgType::kPing:
    case MsgType::kPong:
      if (auto v = DecodeU64(m)) SBX_FUZZ_CHECK(m.payload.size() == sizeof *v);
      break;
    case MsgType::kFrameReady:
      if (auto f = DecodeFrameReady(m)) SBX_FUZZ_CHECK(f->buffer_index <= 1);
      break;
    case MsgType::kHeartbeat:
      if (auto hb = DecodeHeartbeat(m.payload)) {
        SBX_FUZZ_CHECK(hb->magic == protocol::kHeartbeatMagic && hb->flags == 0);
      }
      break;
    case MsgType::kShutdown:
    case MsgType::kHang:
    case MsgType::kOom:
    case MsgType::kBadIpc:
      SBX_FUZZ_CHECK(m.payload.empty());
      break;
  }
}

void CheckMessage(const Message& m, Direction dir, size_t index,
                  std::span<const uint8_t> consumed) {
  SBX_FUZZ_CHECK(protocol::IsKnownType(static_cast<uint16_t>(m.type), dir));
  SBX_FUZZ_CHECK(m.seq == index + 1);
  SBX_FUZZ_CHECK(m.payload.size() >= protocol::MinPayload(m.type) &&
                 m.payload.size() <= protocol::MaxPayload(m.type));
  std::vector<uint8_t> again;
  EncodeMessage(m.type, m.seq, m.payload, again);
  SBX_FUZZ_CHECK(again.size() == consumed.size() &&
                 std::memcmp(again.data(), consumed.data(), again.size()) == 0);
  CheckTypedPayload(m);
}

// The next read's size: mostly small (headers split anywhere), sometimes large.
size_t NextCut(uint32_t* state) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return (*state & 0x100) ? 1 + *state % 4096 : 1 + *state % 24;
}

// Feeds `stream` in reads cut by `cut_seed` (one single read when it is nullopt), draining every
// complete message after each read, as the broker's and the renderer's loops do.
Outcome Decode(Direction dir, std::span<const uint8_t> stream, std::optional<uint8_t> cut_seed) {
  Outcome out;
  Decoder decoder(dir);
  uint32_t state = 0x9e3779b9u ^ cut_seed.value_or(0);
  size_t fed = 0;
  size_t consumed = 0;
  while (fed < stream.size() && !out.failed) {
    size_t n = cut_seed ? std::min(NextCut(&state), stream.size() - fed) : stream.size();
    if (!decoder.Feed(stream.subspan(fed, n))) {
      out.failed = true;
      break;
    }
    fed += n;
    for (;;) {
      auto next = decoder.Next();
      if (!next) {
        out.failed = true;
        break;
      }
      if (!next->has_value()) break;
      const Message& m = **next;
      size_t bytes = sizeof(protocol::MessageHeader) + m.payload.size();
      CheckMessage(m, dir, out.messages.size(), stream.subspan(consumed, bytes));
      consumed += bytes;
      out.messages.push_back(std::move(**next));
    }
  }
  SBX_FUZZ_CHECK(decoder.broken() == out.failed);
  if (out.failed) {
    // Poisoned for good: no later read or message may succeed.
    const uint8_t byte = 0;
    SBX_FUZZ_CHECK(!decoder.Feed({&byte, 1}));
    SBX_FUZZ_CHECK(!decoder.Next());
  } else {
    SBX_FUZZ_CHECK(decoder.buffered() == stream.size() - consumed);
  }
  return out;
}

}  // namespace
}  // namespace sbx

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sbx::protocol::Direction;
  if (size < 2) return 0;
  // One maximal message is all a peer can have in flight; longer inputs add nothing but time.
  std::span<const uint8_t> stream(data + 2, size - 2);
  if (stream.size() > 2 * (sizeof(sbx::protocol::MessageHeader) + sbx::protocol::kMaxPayload)) {
    return 0;
  }
  Direction dir = (data[0] & 1) ? Direction::kToBroker : Direction::kToRenderer;
  sbx::Outcome whole = sbx::Decode(dir, stream, std::nullopt);
  sbx::Outcome pieces = sbx::Decode(dir, stream, data[1]);
  SBX_FUZZ_CHECK(whole.failed == pieces.failed);
  SBX_FUZZ_CHECK(sbx::SameMessages(whole.messages, pieces.messages));
  return 0;
}
