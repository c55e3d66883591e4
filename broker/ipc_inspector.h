// What passes between the broker and one renderer process, mechanism by mechanism: counters
// (messages, bytes, the rate over the last whole second) and a bounded ring of the last messages,
// decoded. Fed on the loop thread by RendererProcess, one Record() per message; read when asked
// (`list`, `trace`, the window's IPC view).
//
// Cost on the hot path: no allocation (the ring is part of the object) and no syscall per
// message. A pipe message's payload is copied into its ring slot and decoded into words only
// when read: formatting it on every message cost more than the rest of the inspector together
// (about 120 ns a message, twice per control round trip). Queue depth and bytes waiting in a pipe
// are read by the owner when asked, never here. A disabled inspector returns at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ipc/protocol.h"

namespace sbx {

enum class Mechanism : uint8_t {
  kPipeToRenderer,  // commands on the control pipe
  kPipeToBroker,    // frame notices, pongs, drill reports (and heartbeats on the fallback)
  kFrames,          // frames published in the shared memory buffer
  kQueue,           // heartbeats on the POSIX message queue
  kSignal,          // signals the broker sent
  kPidfd,           // the pidfd reporting the exit
};
inline constexpr size_t kMechanismCount = 6;
// "pipe-out", "pipe-in", "shm", "mq", "signal", "pidfd".
std::string_view MechanismName(Mechanism m);
// A trace filter: a mechanism's name, or "pipe" for both directions of the pipe.
bool IsMechanismFilter(std::string_view filter);
bool MechanismMatches(std::string_view filter, Mechanism m);

struct IpcRecord {
  int64_t t_ns = 0;  // CLOCK_MONOTONIC when the broker sent or handled it
  Mechanism mechanism = Mechanism::kPipeToBroker;
  uint16_t type = 0;  // the MsgType on the pipe, the signal number for a signal, else 0
  uint64_t seq = 0;   // the pipe's sequence number, the frame number, the n-th heartbeat
  uint32_t size = 0;  // bytes on the wire (header included), or the frame's bytes for shm
  // Decoded fields, NUL-terminated; or, for a pipe message, the first bytes of its payload
  // (`payload_size` of them), which Summary() decodes.
  std::array<char, 64> data{};
  int8_t payload_size = -1;  // -1: `data` is the summary text

  bool to_renderer() const {
    return mechanism == Mechanism::kPipeToRenderer || mechanism == Mechanism::kSignal;
  }
  // "hello", "frame-ready", "SIGTERM", "frame", "heartbeat", "exit".
  std::string_view TypeName() const;
  // The decoded fields: "token 7", "buffer 1, frame 42", "sbx://plasma", ...
  std::string Summary() const;
};

struct IpcCounterView {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t messages_per_s = 0;  // in the last whole second
  uint64_t bytes_per_s = 0;
};

// The inspector's figures plus what the owner read from the kernel when asked (-1: none).
struct IpcSnapshot {
  std::array<IpcCounterView, kMechanismCount> counters{};
  uint64_t recorded = 0;       // messages ever recorded; the ring keeps the last kRingSize
  long queue_depth = -1;       // messages waiting in the heartbeat queue (mq_getattr)
  long pipe_in_waiting = -1;   // bytes the renderer wrote that the broker has not read yet
  long pipe_out_waiting = -1;  // bytes in the pipe the renderer has not read yet
  size_t outbound_queued = 0;  // bytes the broker holds because the pipe was full
  bool enabled = true;
};

class IpcInspector {
 public:
  static constexpr size_t kRingSize = 512;

  explicit IpcInspector(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }

  // Counts one message and keeps it in the ring; the summary is a printf format. Returns the
  // ring slot (valid until the next Record), or null when disabled.
  const IpcRecord* Record(int64_t now_ns, Mechanism m, uint16_t type, uint64_t seq, uint32_t size,
                          const char* fmt, ...) __attribute__((format(printf, 7, 8)));
  // A pipe message; its payload is kept for the summary, which decodes it leniently (it may be
  // invalid, or cut to what a ring slot holds).
  const IpcRecord* RecordPipe(int64_t now_ns, Mechanism m, protocol::MsgType type, uint64_t seq,
                              std::span<const uint8_t> payload);

  IpcCounterView Counter(Mechanism m, int64_t now_ns) const;
  // Counters only; the owner adds the kernel's figures.
  IpcSnapshot Snapshot(int64_t now_ns) const;
  uint64_t recorded() const { return recorded_; }
  // The last `max` records, oldest first (allocates: for a reader, not the hot path).
  std::vector<IpcRecord> Recent(size_t max = kRingSize) const;

 private:
  struct Tally {
    uint64_t messages = 0;
    uint64_t bytes = 0;
    int64_t second = -1;  // the whole second `current_*` counts
    uint64_t current_messages = 0;
    uint64_t current_bytes = 0;
    uint64_t previous_messages = 0;  // in second - 1
    uint64_t previous_bytes = 0;
  };
  IpcRecord& Count(int64_t now_ns, Mechanism m, uint16_t type, uint64_t seq, uint32_t size);

  bool enabled_;
  std::array<Tally, kMechanismCount> counters_{};
  std::array<IpcRecord, kRingSize> ring_{};
  uint64_t recorded_ = 0;
};

// {"pipe-out": {"messages", "bytes", "msgs_per_s", "bytes_per_s"}, ...}: the counters alone.
nlohmann::json IpcCountersToJson(const IpcSnapshot& s);
// The counters and the kernel's figures: "recorded", "queue_depth", "pipe_in_waiting", ...
nlohmann::json IpcSnapshotToJson(const IpcSnapshot& s);
// One trace line: {"t_ms", "id", "mechanism", "dir", "type", "seq", "size", "summary"}.
nlohmann::json IpcRecordToJson(int id, const IpcRecord& r, int64_t origin_ns);

}  // namespace sbx
