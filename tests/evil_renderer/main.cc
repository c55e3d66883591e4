// A hostile renderer for the integration tests, started through --renderer-path with
// --page=evil://MODE. It speaks docs/PROTOCOL.md exactly as far as it must to get going, then
// breaks it in the way MODE names. MODE "good" breaks nothing: a second, minimal renderer built
// from the protocol document, which shows the contract is enough to write one. MODE "ignore-term"
// is "good" that ignores SIGTERM; "late-pong" and "double-pong" are "good" that answer a ping
// late (after the broker gave up on it) or twice. The stdio modes are "good" that also use their
// fds 0-2 as a hostile renderer would: "stdio" reads fd 0, says what it found on fd 1 and writes
// lines meant to pass for the broker's own events; "log-flood" writes a 1 MiB line and then far
// more than the broker lets through; "stdout-nonblock" makes its fd 1 non-blocking and keeps it
// full. "counted" sends exactly kCountedFrames frames and kCountedHeartbeats heartbeats, then
// only answers what the broker sends, so the broker's counters can be checked exactly. Started
// as a spare (--spare, no page), it sends a frame-ready right after the hello, before any
// assignment: what a spare may never do.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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
// How the renderer answers pings (set from the mode).
int g_pong_copies = 1;
bool g_delay_first_pong = false;
// The first ping's token, answered once this CLOCK_MONOTONIC time has passed (0: nothing held).
uint64_t g_late_token = 0;
int64_t g_late_at_ns = 0;
constexpr int64_t kLateBy = 6'000'000'000;  // past the broker's 5 s ping timeout
constexpr int kCountedFrames = 5;
constexpr int kCountedHeartbeats = 3;

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

protocol::Heartbeat MakeHeartbeat(uint64_t frames) {
  protocol::Heartbeat hb{};
  hb.magic = protocol::kHeartbeatMagic;
  hb.frames = frames;
  hb.mono_ns = MonotonicNs();
  hb.fps = 30;
  return hb;
}

bool SendHeartbeat(const protocol::Heartbeat& hb, bool queue) {
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(&hb), sizeof hb);
  if (queue) return QueueSend(protocol::kHeartbeatFd, bytes).has_value();
  return SendRaw(MsgType::kHeartbeat, bytes);
}

bool SendHeartbeat(uint64_t frames, bool queue) {
  return SendHeartbeat(MakeHeartbeat(frames), queue);
}

void SendPong(uint64_t token) {
  PayloadWriter w;
  w.U64(token);
  SendRaw(MsgType::kPong, w.data());
}

// The held pong of "late-pong", once it is due; then a drill report, so the test can tell from
// the broker's events that the pong was read before it.
void SendLatePong() {
  if (g_late_at_ns == 0 || MonotonicNs() < g_late_at_ns) return;
  g_late_at_ns = 0;
  SendPong(g_late_token);
  PayloadWriter w;
  w.Str("late pong sent");
  SendRaw(MsgType::kDrillReport, w.data());
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
      if (g_delay_first_pong) {
        g_delay_first_pong = false;
        g_late_token = token ? *token : 0;
        g_late_at_ns = MonotonicNs() + kLateBy;
        continue;
      }
      for (int i = 0; i < g_pong_copies; ++i) SendPong(token ? *token : 0);
    }
  }
}

void Print(int fd, std::string_view text) {
  (void)WriteAll(fd, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

// What fd 0 holds, without waiting: a renderer must find EOF there at once, never the broker's
// terminal or input.
void ReportStdin() {
  pollfd p{0, POLLIN, 0};
  int ready = HandleEintr([&] { return ::poll(&p, 1, 0); });
  if (ready <= 0) return Print(1, "stdin: would block\n");
  char buf[256];
  ssize_t n = HandleEintr([&] { return ::read(0, buf, sizeof buf); });
  if (n == 0) return Print(1, "stdin: eof\n");
  if (n < 0) return Print(1, "stdin: error\n");
  Print(1, "stdin: read " + std::to_string(n) +
               " bytes: " + std::string(buf, static_cast<size_t>(n)) + "\n");
}

void StdioMode() {
  ReportStdin();
  Print(1, "hello on stdout\n");
  Print(2, "hello on stderr\n");
  // Lines shaped like the broker's events, a terminal escape and bytes that are not UTF-8.
  Print(1, R"({"event":"exited","t_ms":1,"id":2,"status":"crashed","signal":"SIGSEGV"})"
           "\n");
  Print(2, "\x1b[2J\xff\xfe not text\n");
  Print(1, "no newline at exit");
}

// More than the broker lets through (64 KiB and 256 lines a second): 64 lines of 200 bytes per
// turn of the loop, about 400 KiB a second.
void FloodTurn(int fd) {
  std::string lines;
  for (int i = 0; i < 64; ++i) lines += "flood " + std::string(194, 'f') + "\n";
  Print(fd, lines);
}

// Its fd 1, made non-blocking, filled until it refuses more. Before renderers had a pipe of
// their own this was the broker's stdout, and the broker's next event blocked it.
void FillNonBlocking() {
  static const std::string kChunk(4096, 'n');
  while (::write(1, kChunk.data(), kChunk.size()) > 0) {
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
    if (a == "--spare") mode = "spare-frame";
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
  if (mode == "late-pong") g_delay_first_pong = true;
  if (mode == "double-pong") g_pong_copies = 2;
  const bool flood_log = mode == "log-flood";
  const bool fill_stdout = mode == "stdout-nonblock";
  if (mode == "stdio") StdioMode();
  if (flood_log) Print(2, std::string(1 << 20, 'L') + "\n");
  if (fill_stdout && ::fcntl(1, F_SETFL, ::fcntl(1, F_GETFL) | O_NONBLOCK) != 0) return 7;
  if (mode == "stdio" || flood_log || fill_stdout) mode = "good";
  // Modes that stop using the pipe after their breakage (heartbeats go on, on the queue).
  bool pipe_silent =
      mode == "half-header" || mode == "half-payload" || mode == "close-command-pipe";

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
  } else if (mode == "close-command-pipe") {
    ::close(protocol::kControlInFd);
  } else if (mode == "half-header" || mode == "half-payload") {
    // Whole messages fit in one atomic pipe write; these stop partway through one, and stay.
    PayloadWriter w;
    w.U32(0).U64(frame);
    std::vector<uint8_t> bytes;
    EncodeMessage(MsgType::kFrameReady, g_seq++, w.data(), bytes);
    bytes.resize(mode == "half-header" ? 7 : sizeof(protocol::MessageHeader) + 5);
    (void)WriteAll(protocol::kControlOutFd, bytes);
  } else if (mode == "heartbeat-clock" || mode == "heartbeat-cpu" || mode == "heartbeat-render") {
    // Figures no real renderer can send: a clock far in the past (the broker's latency
    // arithmetic once overflowed on it), more CPU time or a longer frame than its whole life.
    protocol::Heartbeat hb = MakeHeartbeat(frame);
    if (mode == "heartbeat-clock") hb.mono_ns = INT64_MIN;
    if (mode == "heartbeat-cpu") hb.cpu_ns = UINT64_MAX;
    if (mode == "heartbeat-render") hb.render_us = UINT32_MAX;
    SendHeartbeat(hb, queue);
  } else if (mode == "counted") {
    for (int i = 1; i < kCountedFrames; ++i) publish();
    for (int i = 1; i < kCountedHeartbeats; ++i) SendHeartbeat(frame, queue);
    pipe_silent = true;
  } else if (mode != "good" && mode != "late-pong" && mode != "double-pong") {
    std::fprintf(stderr, "evil renderer: unknown mode %s\n", mode.c_str());
    return 6;
  }
  // Behave from here on, so the only reason to die is what the broker decides.
  int64_t next_hb = MonotonicNs();
  for (;;) {
    if (mode == "close-command-pipe") {
      (void)::poll(nullptr, 0, 30);
    } else if (!Pump(decoder, 30)) {
      return 0;
    }
    SendLatePong();
    if (flood_log) FloodTurn(1);
    if (fill_stdout) FillNonBlocking();
    if (mode != "close-pipe" && !pipe_silent) publish();
    if (MonotonicNs() >= next_hb && (queue || !pipe_silent) && mode != "counted") {
      SendHeartbeat(frame, queue);
      next_hb = MonotonicNs() + 100'000'000;
    }
  }
}
