// A hostile renderer for the integration tests, started through --renderer-path with
// --page=evil://MODE. It speaks docs/PROTOCOL.md exactly as far as it must to get going, then
// breaks it in the way MODE names. MODE "good" breaks nothing: a second, minimal renderer built
// from the protocol document, which shows the contract is enough to write one. MODE "ignore-term"
// is "good" that ignores SIGTERM.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/codec.h"
#include "ipc/frame_buffer.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"

namespace {

using namespace sbx;
using protocol::MsgType;

uint64_t g_seq = 1;

bool SendRaw(MsgType type, std::span<const uint8_t> payload, uint64_t seq = 0) {
  std::vector<uint8_t> bytes;
  EncodeMessage(type, seq == 0 ? g_seq++ : seq, payload, bytes);
  return WriteAll(protocol::kControlOutFd, bytes).has_value();
}

bool SendFrameReady(uint32_t index, uint64_t frame) {
  PayloadWriter w;
  w.U32(index).U64(frame);
  return SendRaw(MsgType::kFrameReady, w.data());
}

bool SendHeartbeat(uint64_t frames, bool queue) {
  protocol::Heartbeat hb{};
  hb.magic = protocol::kHeartbeatMagic;
  hb.frames = frames;
  hb.mono_ns = MonotonicNs();
  hb.fps = 30;
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(&hb), sizeof hb);
  if (queue) return QueueSend(protocol::kHeartbeatFd, bytes).has_value();
  return SendRaw(MsgType::kHeartbeat, bytes);
}

// Reads the broker's messages that are waiting; answers pings. False once the broker is gone.
bool Pump(Decoder& decoder, int timeout_ms) {
  pollfd p{protocol::kControlInFd, POLLIN, 0};
  if (HandleEintr([&] { return ::poll(&p, 1, timeout_ms); }) <= 0) return true;
  uint8_t buf[4096];
  ssize_t n = HandleEintr([&] { return ::read(protocol::kControlInFd, buf, sizeof buf); });
  if (n <= 0) return false;
  if (!decoder.Feed({buf, static_cast<size_t>(n)})) return false;
  for (;;) {
    auto m = decoder.Next();
    if (!m) return false;
    if (!*m) return true;
    if ((*m)->type == MsgType::kShutdown) return false;
    if ((*m)->type == MsgType::kPing) {
      auto token = DecodeU64(**m);
      PayloadWriter w;
      w.U64(token ? *token : 0);
      SendRaw(MsgType::kPong, w.data());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode;
  bool queue = true;
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a.starts_with("--page=evil://")) mode = std::string(a.substr(14));
    if (a == "--heartbeat=pipe") queue = false;
  }
  ::signal(SIGPIPE, SIG_IGN);
  auto frames = FrameWriter::Attach(protocol::kFrameFd);
  if (!frames) return 3;

  if (mode == "shrink") {
    // The seals must refuse this; if the file shrank, the broker could take SIGBUS.
    if (::ftruncate(protocol::kFrameFd, 0) == 0 || errno != EPERM) return 4;
    mode = "good";
  }
  if (mode == "ignore-term") {
    // Only the SIGKILL the broker sends once the grace period is over can end it: the step of a
    // close or a shutdown that no well-behaved renderer ever reaches.
    ::signal(SIGTERM, SIG_IGN);
    mode = "good";
  }

  Decoder decoder(protocol::Direction::kToRenderer);
  // The broker's hello always comes first.
  if (!Pump(decoder, 5000)) return 5;

  uint64_t frame = 0;
  auto publish = [&] {
    uint8_t* px = frames->BeginFrame();
    std::memset(px, static_cast<int>(frame & 0xff), frames->geometry().frame_bytes());
    int index = frames->EndFrame(frame);
    return SendFrameReady(static_cast<uint32_t>(index), frame++);
  };
  publish();
  SendHeartbeat(frame, queue);

  if (mode == "flood") {
    for (;;) {
      if (!publish()) return 0;
    }
  } else if (mode == "oversize") {
    protocol::MessageHeader h{static_cast<uint16_t>(MsgType::kFrameReady), 0, 1u << 20, g_seq};
    (void)WriteAll(protocol::kControlOutFd, {reinterpret_cast<uint8_t*>(&h), sizeof h});
  } else if (mode == "bad-frame-index") {
    SendFrameReady(2, frame++);
  } else if (mode == "backwards-frame") {
    SendFrameReady(0, 0);
  } else if (mode == "bad-heartbeat") {
    uint8_t junk[7] = {1, 2, 3, 4, 5, 6, 7};
    if (queue) {
      (void)QueueSend(protocol::kHeartbeatFd, junk);
    } else {
      SendRaw(MsgType::kHeartbeat, junk);
    }
  } else if (mode == "bad-sequence") {
    PayloadWriter w;
    w.U32(0).U64(frame++);
    SendRaw(MsgType::kFrameReady, w.data(), 99);
  } else if (mode == "unsolicited-pong") {
    PayloadWriter w;
    w.U64(0xdead);
    SendRaw(MsgType::kPong, w.data());
  } else if (mode == "close-pipe") {
    ::close(protocol::kControlOutFd);
  } else if (mode != "good") {
    std::fprintf(stderr, "evil renderer: unknown mode %s\n", mode.c_str());
    return 6;
  }
  // Behave from here on, so the only reason to die is what the broker decides.
  int64_t next_hb = MonotonicNs();
  for (;;) {
    if (!Pump(decoder, 30)) return 0;
    if (mode != "close-pipe") publish();
    if (MonotonicNs() >= next_hb) {
      SendHeartbeat(frame, queue);
      next_hb = MonotonicNs() + 100'000'000;
    }
  }
}
