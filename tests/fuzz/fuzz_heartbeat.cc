// Heartbeat records, as a hostile renderer sends them on its message queue (any bytes, any size)
// and on the pipe fallback (the same bytes as a heartbeat message). Properties: a record is
// accepted only with exactly the documented size, magic, flags and fps range, and then as the
// very bytes sent; the pipe path accepts exactly the records the queue path does.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ipc/codec.h"
#include "ipc/protocol.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sbx::protocol::Heartbeat;
  // A queue message holds at most kQueueMsgSize bytes; a little beyond covers every size check.
  if (size > 4 * sbx::protocol::kQueueMsgSize) return 0;
  std::span<const uint8_t> bytes(data, size);

  auto queued = sbx::DecodeHeartbeat(bytes);
  if (queued) {
    SBX_FUZZ_CHECK(size == sizeof(Heartbeat));
    SBX_FUZZ_CHECK(queued->magic == sbx::protocol::kHeartbeatMagic && queued->flags == 0);
    SBX_FUZZ_CHECK(queued->fps >= sbx::protocol::kMinFps && queued->fps <= sbx::protocol::kMaxFps);
    SBX_FUZZ_CHECK(std::memcmp(&*queued, data, sizeof(Heartbeat)) == 0);
  } else {
    SBX_FUZZ_CHECK(queued.error().code == sbx::Errc::kProtocol);
  }

  // The fallback: the record as the payload of the renderer's first pipe message.
  std::vector<uint8_t> wire;
  sbx::EncodeMessage(sbx::protocol::MsgType::kHeartbeat, 1, bytes, wire);
  sbx::Decoder decoder(sbx::protocol::Direction::kToBroker);
  SBX_FUZZ_CHECK(decoder.Feed(wire).has_value());
  auto next = decoder.Next();
  if (size != sizeof(Heartbeat)) {
    SBX_FUZZ_CHECK(!next);  // the header's length alone condemns it
    return 0;
  }
  SBX_FUZZ_CHECK(next && next->has_value());
  auto piped = sbx::DecodeHeartbeat((*next)->payload);
  SBX_FUZZ_CHECK(piped.has_value() == queued.has_value());
  if (piped) SBX_FUZZ_CHECK(std::memcmp(&*piped, &*queued, sizeof(Heartbeat)) == 0);
  return 0;
}
