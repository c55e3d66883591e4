// A renderer's stdout and stderr, as the broker sees them: one pipe per renderer (fds 1 and 2 of
// the renderer are its write end), read without ever blocking and turned into bounded `log`
// events. Nothing a renderer writes reaches the broker's own terminal, stdout or log files.
//
// The bounds, per renderer (docs/PROTOCOL.md, "Output"): a line is at most kMaxLine bytes (the
// rest of a longer one is dropped up to its newline); lines pass at most kBytesPerSecond and
// kLinesPerSecond (token buckets, one second of burst); each wakeup reads at most kReadBudget
// bytes, and a wakeup that had to drop lines for their rate is followed by a pause of kPauseNs
// before the next read, so a flood costs the broker at most kReadBudget per pause however fast
// the renderer writes. What does not pass is dropped and counted, and the counts come out as a note
// at most once a second and when the renderer is gone. Every line is made valid UTF-8 with no
// control characters before it leaves, so it cannot break a JSON consumer, a terminal or the
// window.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "broker/event_loop.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

// One thing the log has to say: a line the renderer wrote, or a note of what was dropped.
struct LogRecord {
  std::string line;            // sanitized; empty in a note
  bool truncated = false;      // the line was longer than kMaxLine; its rest is counted as dropped
  uint64_t dropped_lines = 0;  // a note: whole lines dropped since the last note
  uint64_t dropped_bytes = 0;  // a note: bytes dropped since the last note (newlines not counted)
  bool is_note() const { return dropped_lines != 0 || dropped_bytes != 0; }
};

// `raw` as valid UTF-8 without control characters: C0 controls (but tab), DEL and C1 controls
// become \xNN or \u00NN, the characters that reorder or break lines (U+2028, U+2029, the bidi
// embeddings, overrides and isolates) become \uNNNN, and each byte of a malformed sequence
// becomes U+FFFD.
std::string SanitizeLogLine(std::string_view raw);

// A record as the `log` event the broker emits (type kLog; the host fills in id, pid and page).
// A note's detail says what the limits are.
BrokerEvent ToLogEvent(LogRecord record);

// Splits a byte stream into lines and applies the limits. Pure: no fds, time is passed in, so
// the unit tests drive it directly.
class LineLimiter {
 public:
  static constexpr size_t kMaxLine = 1024;
  static constexpr double kBytesPerSecond = 64 * 1024;
  static constexpr double kLinesPerSecond = 256;

  explicit LineLimiter(int64_t now_ns);

  // Appends to `out` each line the bytes complete that the limits let through.
  void Feed(std::span<const uint8_t> bytes, int64_t now_ns, std::vector<LogRecord>& out);
  // End of the stream: the last line, if it had no newline, goes out (limits permitting).
  void Finish(int64_t now_ns, std::vector<LogRecord>& out);
  // The drop counts since the last call, as a note (is_note() false when nothing was dropped).
  LogRecord TakeDrops();
  bool has_drops() const { return drops_.is_note(); }
  uint64_t total_dropped_bytes() const { return total_dropped_bytes_; }
  uint64_t total_dropped_lines() const { return total_dropped_lines_; }

 private:
  struct Bucket {
    double tokens;
    double rate;  // per second; also the capacity
  };
  void EmitLine(bool truncated, int64_t now_ns, std::vector<LogRecord>& out);
  void Refill(int64_t now_ns);
  void DropBytes(uint64_t n);

  std::string partial_;      // the line so far, at most kMaxLine bytes
  bool discarding_ = false;  // inside the dropped rest of an over-long line
  Bucket bytes_{kBytesPerSecond, kBytesPerSecond};
  Bucket lines_{kLinesPerSecond, kLinesPerSecond};
  int64_t refilled_ns_;
  LogRecord drops_;
  uint64_t total_dropped_bytes_ = 0;
  uint64_t total_dropped_lines_ = 0;
};

// Owns the read end of one renderer's log pipe and its watch in the event loop. Created with the
// process and destroyed with it.
//
// The sink runs on the loop's thread, once per record. If it destroys this object, the rest of
// that batch is dropped.
class RendererLog {
 public:
  static constexpr size_t kReadBudget = 64 * 1024;
  static constexpr size_t kFinishBudget = 1024 * 1024;
  static constexpr int64_t kNoteIntervalNs = 1'000'000'000;
  static constexpr int64_t kPauseNs = 50'000'000;
  using Sink = std::function<void(BrokerEvent)>;

  // The log and the pipe's write end, which goes to the child as its fds 1 and 2 (and is closed
  // in the broker right after the launch, so EOF means every writer is gone).
  struct Pipe {
    std::unique_ptr<RendererLog> log;
    UniqueFd child_end;
  };
  static Result<Pipe> Create(EventLoop& loop, Sink sink);
  RendererLog(EventLoop& loop, UniqueFd read_end, Sink sink);
  RendererLog(const RendererLog&) = delete;
  RendererLog& operator=(const RendererLog&) = delete;
  // Stops watching and closes the read end; says nothing more.
  ~RendererLog();

  // The renderer is gone: reads what it left in the pipe (at most kFinishBudget, the largest
  // pipe an unprivileged process can ask for), then the last partial line and a note of anything
  // dropped that was not yet told.
  void Finish();
  const LineLimiter& limiter() const { return limiter_; }
  int fd() const { return fd_.get(); }  // the read end, for the process view

 private:
  // Reads at most `budget` bytes; false once the pipe is at EOF or broken.
  bool ReadSome(size_t budget);
  Result<void> StartWatch();
  void OnReadable();
  void ScheduleNote();
  void Deliver(std::vector<LogRecord>& records);

  EventLoop& loop_;
  UniqueFd fd_;
  Sink sink_;
  LineLimiter limiter_;
  EventLoop::Token watch_ = 0;
  EventLoop::Token resume_timer_ = 0;  // paused after a wakeup that dropped lines for rate
  bool eof_ = false;
  EventLoop::Token note_timer_ = 0;
  std::vector<LogRecord> batch_;  // reused across wakeups
  // Shared with Deliver's loop, which stops if a record's sink destroyed this object anyway.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sbx
