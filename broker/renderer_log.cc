#include "broker/renderer_log.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "ipc/posix.h"

namespace sbx {

namespace {

constexpr size_t kChunk = 16 * 1024;

void AppendHex(std::string& out, const char* format, unsigned value) {
  char buf[12];
  std::snprintf(buf, sizeof buf, format, value);
  out += buf;
}

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF) and its code point in *cp; 0 when it is malformed.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t lead = byte(i);
  size_t len = 0;
  uint32_t value = 0;
  uint8_t lo = 0x80;  // the bounds of the second byte; later ones are always 80..BF
  uint8_t hi = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    len = 2;
    value = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    len = 3;
    value = lead & 0x0f;
    if (lead == 0xe0) lo = 0xa0;  // overlong
    if (lead == 0xed) hi = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    len = 4;
    value = lead & 0x07;
    if (lead == 0xf0) lo = 0x90;  // overlong
    if (lead == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (len > s.size() - i) return 0;
  for (size_t k = 1; k < len; ++k) {
    uint8_t c = byte(i + k);
    if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xbf)) return 0;
    value = (value << 6) | (c & 0x3f);
  }
  *cp = value;
  return len;
}

// Characters that are valid text yet let a line pose as something else: C1 controls (some
// terminals act on them), line and paragraph separators, and the bidi embeddings, overrides and
// isolates that reorder what a reader sees.
bool EscapedCodePoint(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string SanitizeLogLine(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    auto c = static_cast<uint8_t>(raw[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        AppendHex(out, "\\x%02x", c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t len = DecodeUtf8(raw, i, &cp);
    if (len == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD for this byte; the next one starts afresh
      ++i;
    } else if (EscapedCodePoint(cp)) {
      AppendHex(out, "\\u%04x", cp);
      i += len;
    } else {
      out.append(raw.substr(i, len));
      i += len;
    }
  }
  return out;
}

BrokerEvent ToLogEvent(LogRecord record) {
  BrokerEvent e;
  e.type = EventType::kLog;
  e.line = std::move(record.line);
  e.truncated = record.truncated;
  e.dropped_lines = record.dropped_lines;
  e.dropped_bytes = record.dropped_bytes;
  if (record.is_note()) {
    e.detail = "output dropped: the limits are " + std::to_string(LineLimiter::kMaxLine) +
               " bytes a line, " + std::to_string(static_cast<int>(LineLimiter::kBytesPerSecond)) +
               " bytes and " + std::to_string(static_cast<int>(LineLimiter::kLinesPerSecond)) +
               " lines a second";
  }
  return e;
}

LineLimiter::LineLimiter(int64_t now_ns) : refilled_ns_(now_ns) { partial_.reserve(kMaxLine); }

void LineLimiter::Refill(int64_t now_ns) {
  double elapsed_s = static_cast<double>(std::max<int64_t>(now_ns - refilled_ns_, 0)) / 1e9;
  refilled_ns_ = std::max(refilled_ns_, now_ns);
  for (Bucket* b : {&bytes_, &lines_})
    b->tokens = std::min(b->rate, b->tokens + elapsed_s * b->rate);
}

void LineLimiter::DropBytes(uint64_t n) {
  drops_.dropped_bytes += n;
  total_dropped_bytes_ += n;
}

void LineLimiter::EmitLine(bool truncated, int64_t now_ns, std::vector<LogRecord>& out) {
  if (!truncated && !partial_.empty() && partial_.back() == '\r') partial_.pop_back();
  Refill(now_ns);
  // A line costs its bytes and its newline: a flood of empty lines is a flood too.
  double cost = static_cast<double>(partial_.size() + 1);
  if (bytes_.tokens >= cost && lines_.tokens >= 1.0) {
    bytes_.tokens -= cost;
    lines_.tokens -= 1.0;
    out.push_back({SanitizeLogLine(partial_), truncated});
  } else {
    ++drops_.dropped_lines;
    ++total_dropped_lines_;
    DropBytes(partial_.size());
  }
  partial_.clear();
}

void LineLimiter::Feed(std::span<const uint8_t> bytes, int64_t now_ns,
                       std::vector<LogRecord>& out) {
  const char* p = reinterpret_cast<const char*>(bytes.data());
  size_t left = bytes.size();
  while (left > 0) {
    const void* nl = std::memchr(p, '\n', left);
    size_t segment = nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - p) : left;
    if (discarding_) {
      DropBytes(segment);
      discarding_ = nl == nullptr;
    } else {
      size_t take = std::min(segment, kMaxLine - partial_.size());
      partial_.append(p, take);
      if (take < segment) {
        // Over-long: its first kMaxLine bytes go out now (memory stays bounded and the line is
        // not held back), the rest is dropped up to its newline.
        EmitLine(/*truncated=*/true, now_ns, out);
        DropBytes(segment - take);
        discarding_ = nl == nullptr;
      } else if (nl != nullptr) {
        EmitLine(/*truncated=*/false, now_ns, out);
      }
    }
    size_t consumed = segment + (nl != nullptr ? 1 : 0);
    p += consumed;
    left -= consumed;
  }
}

void LineLimiter::Finish(int64_t now_ns, std::vector<LogRecord>& out) {
  if (!partial_.empty()) EmitLine(/*truncated=*/false, now_ns, out);
  discarding_ = false;
}

LogRecord LineLimiter::TakeDrops() { return std::exchange(drops_, LogRecord{}); }

Result<RendererLog::Pipe> RendererLog::Create(EventLoop& loop, Sink sink) {
  // Blocking on the renderer's side, as a terminal would be; ours never blocks.
  auto pipe = MakePipe(/*nonblocking=*/false);
  if (!pipe) return std::unexpected(pipe.error());
  if (auto r = SetNonBlocking(pipe->read.get(), true); !r) return std::unexpected(r.error());
  Pipe out;
  out.log = std::make_unique<RendererLog>(loop, std::move(pipe->read), std::move(sink));
  if (auto r = out.log->StartWatch(); !r) return std::unexpected(r.error());
  out.child_end = std::move(pipe->write);
  return out;
}

RendererLog::RendererLog(EventLoop& loop, UniqueFd read_end, Sink sink)
    : loop_(loop), fd_(std::move(read_end)), sink_(std::move(sink)), limiter_(MonotonicNs()) {}

RendererLog::~RendererLog() {
  *alive_ = false;
  loop_.Unwatch(watch_);
  loop_.CancelTimer(note_timer_);
  loop_.CancelTimer(resume_timer_);
}

Result<void> RendererLog::StartWatch() {
  auto w = loop_.Watch(fd_.get(), EPOLLIN, [this](uint32_t) { OnReadable(); });
  if (!w) return std::unexpected(w.error());
  watch_ = *w;
  return {};
}

bool RendererLog::ReadSome(size_t budget) {
  std::array<uint8_t, kChunk> buf;
  while (budget > 0 && !eof_) {
    auto n = sbx::ReadSome(fd_.get(), std::span(buf).first(std::min(budget, buf.size())));
    if (!n && n.error().sys_errno == EAGAIN) return true;
    if (!n || *n == 0) {
      eof_ = true;
      break;
    }
    limiter_.Feed(std::span(buf).first(*n), MonotonicNs(), batch_);
    budget -= *n;
  }
  return !eof_;
}

void RendererLog::OnReadable() {
  batch_.clear();
  uint64_t dropped_before = limiter_.total_dropped_lines();
  bool open = ReadSome(kReadBudget);
  bool pause = open && limiter_.total_dropped_lines() > dropped_before;
  if (!open || pause) {
    loop_.Unwatch(watch_);
    watch_ = 0;
  }
  if (!open) {
    // EOF while the process lives (it closed fds 1 and 2): unwatched, since a level-triggered
    // hang-up would wake the loop until the process is gone.
    limiter_.Finish(MonotonicNs(), batch_);
  } else if (pause) {
    // Past its rate: read again only after a pause. Draining a flood as fast as it comes would
    // let one renderer spend the broker's CPU at the speed it writes (a `yes` loop writes
    // faster than the broker can read and discard); paused, the broker reads at most
    // kReadBudget per kPauseNs, and the renderer finds its pipe full meanwhile, which only slows
    // the writer that floods.
    resume_timer_ = loop_.AddTimer(MonotonicNs() + kPauseNs, [this] {
      resume_timer_ = 0;
      (void)StartWatch();
    });
  }
  ScheduleNote();
  Deliver(batch_);
}

void RendererLog::ScheduleNote() {
  if (note_timer_ != 0 || !limiter_.has_drops()) return;
  note_timer_ = loop_.AddTimer(MonotonicNs() + kNoteIntervalNs, [this] {
    note_timer_ = 0;
    batch_.clear();
    batch_.push_back(limiter_.TakeDrops());
    Deliver(batch_);
  });
}

void RendererLog::Finish() {
  batch_.clear();
  (void)ReadSome(kFinishBudget);
  loop_.Unwatch(watch_);
  watch_ = 0;
  loop_.CancelTimer(resume_timer_);
  resume_timer_ = 0;
  eof_ = true;
  fd_.reset();
  limiter_.Finish(MonotonicNs(), batch_);
  loop_.CancelTimer(note_timer_);
  note_timer_ = 0;
  if (limiter_.has_drops()) batch_.push_back(limiter_.TakeDrops());
  Deliver(batch_);
}

void RendererLog::Deliver(std::vector<LogRecord>& records) {
  // Moved out, so that a sink that destroys this object leaves nothing of it in use here.
  std::vector<LogRecord> mine = std::move(records);
  records.clear();
  std::shared_ptr<bool> alive = alive_;
  for (auto& r : mine) {
    sink_(ToLogEvent(std::move(r)));
    if (!*alive) return;
  }
  mine.clear();
  records = std::move(mine);  // keeps its capacity for the next wakeup
}

}  // namespace sbx
