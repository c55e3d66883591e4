#include "renderer/pages.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <numbers>
#include <utility>
#include <vector>

#include "renderer/font.h"

namespace sbx::renderer {
namespace {

constexpr std::string_view kPlasmaUrl = "sbx://plasma";
constexpr std::string_view kClockUrl = "sbx://clock";
constexpr std::string_view kTextPrefix = "sbx://text/";
constexpr std::string_view kBlankUrl = "about:blank";

constexpr size_t kMaxMessageBytes = 256;
constexpr size_t kMaxUrlInError = 100;

// The box glyph: DrawText renders this byte as a box, so text that has been normalised to one
// byte per cell can be measured with plain byte counts.
constexpr char kBoxChar = '\x7f';

bool ValidCanvas(const Canvas& c) {
  return c.pixels != nullptr && c.width > 0 && c.height > 0 &&
         static_cast<int64_t>(c.stride_bytes) >= static_cast<int64_t>(c.width) * 4;
}

uint32_t PackPixel(uint8_t r, uint8_t g, uint8_t b) {
  // Going through bytes keeps the R,G,B,A memory order independent of host endianness.
  const uint8_t bytes[4] = {r, g, b, 255};
  uint32_t px;
  std::memcpy(&px, bytes, sizeof(px));
  return px;
}

uint8_t* RowPtr(const Canvas& c, int y) {
  return c.pixels + static_cast<size_t>(y) * static_cast<size_t>(c.stride_bytes);
}

void FillRow(uint8_t* row, int width, uint32_t px) {
  for (int x = 0; x < width; ++x) std::memcpy(row + static_cast<size_t>(x) * 4, &px, 4);
}

uint8_t Lerp(uint8_t a, uint8_t b, int num, int den) {
  return static_cast<uint8_t>(a + (static_cast<int64_t>(b) - a) * num / den);
}

// Vertical gradient from `top` to `bottom`; pages use it as a cheap full-canvas clear.
void FillGradient(const Canvas& c, std::array<uint8_t, 3> top, std::array<uint8_t, 3> bottom) {
  const int den = std::max(1, c.height - 1);
  for (int y = 0; y < c.height; ++y) {
    FillRow(RowPtr(c, y), c.width,
            PackPixel(Lerp(top[0], bottom[0], y, den), Lerp(top[1], bottom[1], y, den),
                      Lerp(top[2], bottom[2], y, den)));
  }
}

// ---------------------------------------------------------------------------------------------
// Overlay

int OverlayScale(const Canvas& c) { return (c.width >= 400 && c.height >= 120) ? 2 : 1; }

int OverlayBandHeight(int scale, int lines) { return scale + lines * (TextHeight(scale) + scale); }

// Height pages should keep free at the top so their content is never under the overlay,
// whichever layout (one or two lines) the overlay ends up using.
int OverlayReserve(const Canvas& c) { return OverlayBandHeight(OverlayScale(c), 2); }

// One byte per glyph cell, printable ASCII only, so the overlay can truncate by byte count.
std::string SanitizeForOverlay(std::string_view s, size_t max_cells) {
  std::string out;
  const size_t keep = std::min(s.size(), max_cells);
  out.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    out.push_back(ch >= 32 && ch < 127 ? static_cast<char>(ch) : kBoxChar);
  }
  if (keep < s.size()) {
    // Mark the cut so a truncated url is not mistaken for the real one.
    const size_t dots = std::min<size_t>(3, out.size());
    out.replace(out.size() - dots, dots, dots, '.');
  }
  return out;
}

}  // namespace

void DrawOverlay(const Canvas& canvas, const FrameInfo& info, std::string_view url) {
  if (!ValidCanvas(canvas)) return;
  const int scale = OverlayScale(canvas);
  const int pad = scale * 2;
  const int cell = kGlyphAdvance * scale;
  const int line_pitch = TextHeight(scale) + scale;

  std::string status = "#" + std::to_string(info.id) + " pid " + std::to_string(info.pid) +
                       " frame " + std::to_string(info.frame);
  const size_t max_cells =
      static_cast<size_t>(std::max(1, (canvas.width - 2 * pad + scale) / cell));
  const size_t gap_cells = 3;
  const bool one_line = status.size() + gap_cells + url.size() <= max_cells;
  const std::string shown_url = SanitizeForOverlay(url, one_line ? url.size() : max_cells);

  const int lines = one_line ? 1 : 2;
  FillRect(canvas, 0, 0, canvas.width, OverlayBandHeight(scale, lines), 0, 0, 0, 170);
  const int text_y = scale;
  DrawText(canvas, pad, text_y, status, scale, 255, 255, 255);
  if (one_line) {
    const int url_x = pad + static_cast<int>(status.size() + gap_cells) * cell;
    DrawText(canvas, url_x, text_y, shown_url, scale, 255, 214, 110);
  } else {
    DrawText(canvas, pad, text_y + line_pitch, shown_url, scale, 255, 214, 110);
  }
}

namespace {

// ---------------------------------------------------------------------------------------------
// Plasma

constexpr int kSineBits = 10;
constexpr uint32_t kSineSize = 1u << kSineBits;
constexpr uint32_t kSineMask = kSineSize - 1;
// Phases are 16.16 fixed point in units of sine-table entries; one full cycle is this much.
constexpr uint64_t kCycle = uint64_t{kSineSize} << 16;

struct PlasmaTables {
  std::array<uint8_t, kSineSize> sine;  // 0..255, one period
  std::array<uint32_t, 256> palette;    // packed pixels, cyclic so index wrap is seamless
};

const PlasmaTables& GetPlasmaTables() {
  // Built once per process; the per-pixel loop only does table lookups and integer adds.
  static const PlasmaTables tables = [] {
    PlasmaTables t{};
    constexpr double kTau = 2.0 * std::numbers::pi;
    for (uint32_t i = 0; i < kSineSize; ++i) {
      const double v = std::sin(kTau * i / kSineSize);
      t.sine[i] = static_cast<uint8_t>(std::lround(127.5 + 127.5 * v));
    }
    for (int i = 0; i < 256; ++i) {
      const double a = kTau * i / 256.0;
      const auto channel = [a](double phase, double lo, double hi) {
        const double v = 0.5 + 0.5 * std::sin(a + phase);
        return static_cast<uint8_t>(std::lround(lo + (hi - lo) * v));
      };
      t.palette[static_cast<size_t>(i)] = PackPixel(
          channel(0.0, 20, 255), channel(kTau / 3.0, 10, 230), channel(2.0 * kTau / 3.0, 40, 255));
    }
    return t;
  }();
  return tables;
}

// Phase step per pixel for `cycles` periods across `extent` pixels.
uint32_t StepFor(double cycles, int extent) {
  return static_cast<uint32_t>(static_cast<double>(kCycle) * cycles / std::max(1, extent));
}

// Phase offset after `ms` milliseconds at `cycles_per_s`; wraps modulo 2^32, which is a whole
// number of cycles, so the animation stays continuous.
uint32_t TimePhase(uint32_t ms, double cycles_per_s) {
  // Via int64 because converting a negative double straight to unsigned is undefined.
  const auto per_ms = static_cast<int64_t>(static_cast<double>(kCycle) * cycles_per_s / 1000.0);
  return ms * static_cast<uint32_t>(per_ms);
}

class PlasmaPage final : public Page {
 public:
  explicit PlasmaPage(std::string url) : url_(std::move(url)) {}

  void Render(const Canvas& canvas, const FrameInfo& info) override {
    if (!ValidCanvas(canvas)) return;
    const PlasmaTables& tab = GetPlasmaTables();
    const uint8_t* sine = tab.sine.data();
    const uint32_t ms = static_cast<uint32_t>(static_cast<uint64_t>(info.mono_ns / 1'000'000));
    const int w = canvas.width;
    const int h = canvas.height;
    const int extent = std::max(w, h);

    // Separable terms are evaluated once per column / row / diagonal instead of per pixel.
    col_.resize(static_cast<size_t>(w));
    ring_col_.resize(static_cast<size_t>(w));
    diag_.resize(static_cast<size_t>(w) + static_cast<size_t>(h) - 1);
    const uint32_t col_step = StepFor(2.1, extent);
    const uint32_t col_phase = TimePhase(ms, 0.23);
    for (int x = 0; x < w; ++x) {
      col_[static_cast<size_t>(x)] =
          sine[((static_cast<uint32_t>(x) * col_step + col_phase) >> 16) & kSineMask];
    }
    const uint32_t diag_step = StepFor(1.3, extent);
    const uint32_t diag_phase = TimePhase(ms, -0.17);
    for (size_t i = 0; i < diag_.size(); ++i) {
      diag_[i] = sine[((static_cast<uint32_t>(i) * diag_step + diag_phase) >> 16) & kSineMask];
    }

    // Concentric rings around a wandering centre: squared distance split into x and y parts.
    // The ring spacing shrinks outwards, which reads as depth rather than a flat pattern.
    const auto wander = [&](uint32_t phase, int size) {
      return static_cast<int64_t>(sine[(phase >> 16) & kSineMask]) * size / 256;
    };
    const int64_t cx = wander(TimePhase(ms, 0.071), w);
    const int64_t cy = wander(TimePhase(ms, 0.053) + (kSineSize / 4 << 16), h);
    // Scale so the ring phase reaches ~7 cycles at distance `extent`.
    const double ring_k = static_cast<double>(kCycle) * 7.0 /
                          (static_cast<double>(extent) * static_cast<double>(extent));
    const auto ring_k_fixed = static_cast<uint64_t>(ring_k * 256.0);
    const auto ring_part = [ring_k_fixed](int64_t d) {
      return static_cast<uint32_t>((static_cast<uint64_t>(d * d) * ring_k_fixed) >> 8);
    };
    for (int x = 0; x < w; ++x) ring_col_[static_cast<size_t>(x)] = ring_part(x - cx);
    const uint32_t ring_phase = TimePhase(ms, -0.6);

    // A plane wave whose direction slowly rotates; per pixel it is a single add.
    const uint32_t angle = TimePhase(ms, 0.031);
    const int32_t cos_a =
        static_cast<int32_t>(sine[((angle >> 16) + kSineSize / 4) & kSineMask]) - 128;
    const int32_t sin_a = static_cast<int32_t>(sine[(angle >> 16) & kSineMask]) - 128;
    const int64_t rot_len = StepFor(1.7, extent);
    const auto rot_dx = static_cast<uint32_t>(static_cast<int64_t>(cos_a) * rot_len / 128);
    const auto rot_dy = static_cast<uint32_t>(static_cast<int64_t>(sin_a) * rot_len / 128);
    const uint32_t rot_phase = TimePhase(ms, 0.41);

    const uint32_t row_step = StepFor(1.6, extent);
    const uint32_t row_phase = TimePhase(ms, 0.29);
    const uint32_t shift = ms / 24;
    const uint32_t* palette = tab.palette.data();
    const uint32_t* col = col_.data();
    const uint32_t* ring_col = ring_col_.data();

    for (int y = 0; y < h; ++y) {
      const auto yu = static_cast<uint32_t>(y);
      const uint32_t row_term = sine[((yu * row_step + row_phase) >> 16) & kSineMask];
      const uint32_t ring_row = ring_part(y - cy) + ring_phase;
      const uint32_t* diag = diag_.data() + y;
      uint32_t rot = yu * rot_dy + rot_phase;
      uint8_t* out = RowPtr(canvas, y);
      for (int x = 0; x < w; ++x) {
        const uint32_t v = col[x] + row_term + diag[x] + sine[(rot >> 16) & kSineMask] +
                           sine[((ring_col[x] + ring_row) >> 16) & kSineMask];
        rot += rot_dx;
        const uint32_t px = palette[((v >> 2) + shift) & 255];
        std::memcpy(out + static_cast<size_t>(x) * 4, &px, 4);
      }
    }
    DrawOverlay(canvas, info, url_);
  }

  std::string_view url() const override { return url_; }

 private:
  std::string url_;
  std::vector<uint32_t> col_;
  std::vector<uint32_t> ring_col_;
  std::vector<uint32_t> diag_;
};

// ---------------------------------------------------------------------------------------------
// Clock

void AppendTwoDigits(std::string* s, int64_t v) {
  s->push_back(static_cast<char>('0' + v / 10 % 10));
  s->push_back(static_cast<char>('0' + v % 10));
}

class ClockPage final : public Page {
 public:
  explicit ClockPage(std::string url) : url_(std::move(url)) {}

  void Render(const Canvas& canvas, const FrameInfo& info) override {
    if (!ValidCanvas(canvas)) return;
    FillGradient(canvas, {12, 18, 40}, {40, 16, 56});

    // Years 1970..9999 are all the clock can sensibly show; clamping keeps the calendar math
    // far away from overflow for absurd inputs.
    constexpr int64_t kMaxWall = 253402300799;  // 9999-12-31 23:59:59 UTC
    const int64_t wall = std::clamp<int64_t>(info.wall_s, 0, kMaxWall);
    const int64_t sec_of_day = wall % 86400;
    const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{wall / 86400}}};

    std::string time_text;
    AppendTwoDigits(&time_text, sec_of_day / 3600);
    time_text.push_back(':');
    AppendTwoDigits(&time_text, sec_of_day / 60 % 60);
    time_text.push_back(':');
    AppendTwoDigits(&time_text, sec_of_day % 60);

    std::string date_text = std::to_string(static_cast<int>(ymd.year())) + "-";
    AppendTwoDigits(&date_text, static_cast<unsigned>(ymd.month()));
    date_text.push_back('-');
    AppendTwoDigits(&date_text, static_cast<unsigned>(ymd.day()));
    date_text += " UTC";

    const int top = std::min(OverlayReserve(canvas), canvas.height / 3);
    const int avail_w = canvas.width - canvas.width / 10;
    const int avail_h = canvas.height - top;
    const int unit_w = TextWidth(time_text, 1);
    // Digits have no descenders, so only 7 of the 8 font rows count; the date and bar below
    // take roughly another 5 rows' worth.
    const int scale = std::max(1, std::min(avail_w / unit_w, avail_h / 13));
    const int date_scale = std::max(1, scale / 3);
    const int digits_h = (kGlyphHeight - 1) * scale;
    const int gap = std::max(1, scale);
    const int bar_h = std::max(2, scale);
    const int block_h = digits_h + gap + TextHeight(date_scale) + gap + bar_h;

    const int time_w = TextWidth(time_text, scale);
    const int time_x = (canvas.width - time_w) / 2;
    const int time_y = top + (avail_h - block_h) / 2;
    const int shadow = std::max(1, scale / 4);
    DrawText(canvas, time_x + shadow, time_y + shadow, time_text, scale, 0, 0, 0);
    DrawText(canvas, time_x, time_y, time_text, scale, 200, 240, 255);

    const int date_y = time_y + digits_h + gap;
    DrawText(canvas, (canvas.width - TextWidth(date_text, date_scale)) / 2, date_y, date_text,
             date_scale, 150, 170, 210);

    // Seconds sweep: one segment per second of the minute. Sub-second brightness of the current
    // segment comes from the monotonic clock, which is not phase-locked to the wall second but
    // only has to look alive.
    const int bar_y = date_y + TextHeight(date_scale) + gap;
    const int seconds = static_cast<int>(sec_of_day % 60);
    const auto sub_ms = static_cast<int>(((info.mono_ns / 1'000'000) % 1000 + 1000) % 1000);
    const int seg_gap = time_w >= 60 * 4 ? 1 : 0;
    for (int i = 0; i < 60; ++i) {
      const int x0 = time_x + static_cast<int>(static_cast<int64_t>(time_w) * i / 60);
      const int x1 = time_x + static_cast<int>(static_cast<int64_t>(time_w) * (i + 1) / 60);
      const int seg_w = std::max(1, x1 - x0 - seg_gap);
      if (i < seconds) {
        FillRect(canvas, x0, bar_y, seg_w, bar_h, 80, 200, 255, 255);
      } else if (i == seconds) {
        const int glow = 255 - sub_ms * 200 / 1000;
        FillRect(canvas, x0, bar_y, seg_w, bar_h, 255, 255, 255, static_cast<uint8_t>(glow));
      } else {
        FillRect(canvas, x0, bar_y, seg_w, bar_h, 50, 60, 100, 255);
      }
    }
    DrawOverlay(canvas, info, url_);
  }

  std::string_view url() const override { return url_; }

 private:
  std::string url_;
};

// ---------------------------------------------------------------------------------------------
// Text

int HexValue(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(std::min(in.size(), kMaxMessageBytes * 3));
  for (size_t i = 0; i < in.size() && out.size() < kMaxMessageBytes; ++i) {
    if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// Length in bytes of the UTF-8 sequence a lead byte announces (1 for anything else).
size_t SequenceLength(unsigned char ch) {
  if (ch >= 0xC2 && ch <= 0xDF) return 2;
  if (ch >= 0xE0 && ch <= 0xEF) return 3;
  if (ch >= 0xF0 && ch <= 0xF4) return 4;
  return 1;
}

// Maps the message to one byte per glyph cell: printable ASCII stays, '\n' is a hard break,
// tabs become spaces and every other character (including whole UTF-8 sequences) becomes a box.
std::string ToCells(std::string_view msg) {
  std::string cells;
  cells.reserve(msg.size());
  for (size_t i = 0; i < msg.size();) {
    const auto ch = static_cast<unsigned char>(msg[i]);
    if (ch >= 32 && ch < 127) {
      cells.push_back(static_cast<char>(ch));
      ++i;
      continue;
    }
    if (ch == '\n' || ch == '\t' || ch == '\r') {
      // "\r\n" counts as a single break.
      if (ch == '\n' || (ch == '\r' && !(i + 1 < msg.size() && msg[i + 1] == '\n'))) {
        cells.push_back('\n');
      } else if (ch == '\t') {
        cells.push_back(' ');
      }
      ++i;
      continue;
    }
    const size_t len = SequenceLength(ch);
    size_t j = i + 1;
    while (j < i + len && j < msg.size() && (static_cast<unsigned char>(msg[j]) & 0xC0) == 0x80) {
      ++j;
    }
    cells.push_back(kBoxChar);
    i = j;
  }
  return cells;
}

// Greedy word wrap to at most `cols` cells per line; words longer than a line are split.
std::vector<std::string> Wrap(std::string_view cells, size_t cols) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= cells.size()) {
    size_t end = cells.find('\n', start);
    if (end == std::string_view::npos) end = cells.size();
    std::string_view para = cells.substr(start, end - start);
    std::string line;
    size_t i = 0;
    while (i < para.size()) {
      if (para[i] == ' ') {
        ++i;
        continue;
      }
      size_t word_end = para.find(' ', i);
      if (word_end == std::string_view::npos) word_end = para.size();
      std::string_view word = para.substr(i, word_end - i);
      i = word_end;
      const size_t needed = line.empty() ? word.size() : line.size() + 1 + word.size();
      if (needed <= cols) {
        if (!line.empty()) line.push_back(' ');
        line.append(word);
        continue;
      }
      if (!line.empty()) {
        lines.push_back(std::move(line));
        line.clear();
      }
      while (word.size() > cols) {
        lines.emplace_back(word.substr(0, cols));
        word.remove_prefix(cols);
      }
      line.assign(word);
    }
    lines.push_back(std::move(line));
    if (end == cells.size()) break;
    start = end + 1;
  }
  return lines;
}

class TextPage final : public Page {
 public:
  TextPage(std::string url, std::string cells) : url_(std::move(url)), cells_(std::move(cells)) {}

  void Render(const Canvas& canvas, const FrameInfo& info) override {
    if (!ValidCanvas(canvas)) return;
    FillGradient(canvas, {238, 242, 250}, {196, 212, 236});
    if (canvas.width != layout_width_ || canvas.height != layout_height_) {
      Layout(canvas);
    }
    const int pitch = LinePitch(scale_);
    const int total_h = static_cast<int>(lines_.size()) * pitch - 2 * scale_;
    const int top = std::min(OverlayReserve(canvas), canvas.height / 3);
    int y = top + (canvas.height - top - total_h) / 2;
    y = std::max(y, top);
    const int shadow = std::max(1, scale_ / 6);
    for (const std::string& line : lines_) {
      if (y >= canvas.height) break;
      const int x = (canvas.width - TextWidth(line, scale_)) / 2;
      DrawText(canvas, x + shadow, y + shadow, line, scale_, 170, 185, 215);
      DrawText(canvas, x, y, line, scale_, 24, 34, 64);
      y += pitch;
    }
    DrawOverlay(canvas, info, url_);
  }

  std::string_view url() const override { return url_; }

 private:
  static constexpr int kMaxScale = 24;

  static int LinePitch(int scale) { return TextHeight(scale) + 2 * scale; }

  // Picks the largest scale at which the wrapped message fits below the overlay; falls back to
  // scale 1 (clipped) on canvases too small for anything.
  void Layout(const Canvas& canvas) {
    layout_width_ = canvas.width;
    layout_height_ = canvas.height;
    const int margin = std::max(1, canvas.width / 20);
    const int avail_w = canvas.width - 2 * margin;
    const int top = std::min(OverlayReserve(canvas), canvas.height / 3);
    const int avail_h = canvas.height - top - margin;
    for (int scale = kMaxScale; scale >= 1; --scale) {
      const int cols = (avail_w + scale) / (kGlyphAdvance * scale);
      if (cols < 1) continue;
      std::vector<std::string> lines = Wrap(cells_, static_cast<size_t>(cols));
      const int64_t total_h = static_cast<int64_t>(lines.size()) * LinePitch(scale) - 2 * scale;
      if (total_h <= avail_h || scale == 1) {
        scale_ = scale;
        lines_ = std::move(lines);
        return;
      }
    }
    scale_ = 1;
    lines_ = Wrap(cells_, 1);
  }

  std::string url_;
  std::string cells_;
  int layout_width_ = -1;
  int layout_height_ = -1;
  int scale_ = 1;
  std::vector<std::string> lines_;
};

// ---------------------------------------------------------------------------------------------
// about:blank

class BlankPage final : public Page {
 public:
  explicit BlankPage(std::string url) : url_(std::move(url)) {}

  void Render(const Canvas& canvas, const FrameInfo& info) override {
    if (!ValidCanvas(canvas)) return;
    const uint32_t px = PackPixel(224, 224, 224);
    for (int y = 0; y < canvas.height; ++y) FillRow(RowPtr(canvas, y), canvas.width, px);
    DrawOverlay(canvas, info, url_);
  }

  std::string_view url() const override { return url_; }

 private:
  std::string url_;
};

}  // namespace

std::expected<std::unique_ptr<Page>, std::string> MakePage(std::string_view url) {
  if (url == kPlasmaUrl) return std::make_unique<PlasmaPage>(std::string(url));
  if (url == kClockUrl) return std::make_unique<ClockPage>(std::string(url));
  if (url == kBlankUrl) return std::make_unique<BlankPage>(std::string(url));
  if (url.starts_with(kTextPrefix)) {
    std::string msg = PercentDecode(url.substr(kTextPrefix.size()));
    return std::make_unique<TextPage>(std::string(url), ToCells(msg));
  }
  return std::unexpected("unknown page: " + std::string(url.substr(0, kMaxUrlInError)));
}

}  // namespace sbx::renderer
