#include "renderer/font.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstring>
#include <iterator>

namespace sbx::renderer {
namespace {

// One glyph per uint64: byte r is font row r (0 = top), bit 4 of each byte is the leftmost
// column. Index 0 is ASCII 32; the last entry is the box used for anything unprintable.
constexpr uint64_t kGlyphs[] = {
    0x00000000000000,    // space
    0x04000404040404,    // !
    0x000000000a0a0a,    // "
    0x0a0a1f0a1f0a0a,    // #
    0x041e050e140f04,    // $
    0x03130804021918,    // %
    0x0d12150814120c,    // &
    0x00000000080404,    // '
    0x02040808080402,    // (
    0x08040202020408,    // )
    0x0004150e150400,    // *
    0x0004041f040400,    // +
    0x8040c0000000000,   // ,
    0x0000001f000000,    // -
    0x0c0c0000000000,    // .
    0x00100804020100,    // /
    0x0e11191513110e,    // 0
    0x0e040404040c04,    // 1
    0x1f08040201110e,    // 2
    0x0e11010204021f,    // 3
    0x02021f120a0602,    // 4
    0x0e1101011e101f,    // 5
    0x0e11111e100806,    // 6
    0x0808080402011f,    // 7
    0x0e11110e11110e,    // 8
    0x0c02010f11110e,    // 9
    0x000c0c000c0c00,    // :
    0x08040c000c0c00,    // ;
    0x02040810080402,    // <
    0x00001f001f0000,    // =
    0x08040201020408,    // >
    0x0400040201110e,    // ?
    0x0e15150d01110e,    // @
    0x1111111f11110e,    // A
    0x1e11111e11111e,    // B
    0x0e11101010110e,    // C
    0x1c12111111121c,    // D
    0x1f10101e10101f,    // E
    0x1010101e10101f,    // F
    0x0f11111710110e,    // G
    0x1111111f111111,    // H
    0x0e04040404040e,    // I
    0x0c120202020207,    // J
    0x11121418141211,    // K
    0x1f101010101010,    // L
    0x11111115151b11,    // M
    0x11111315191111,    // N
    0x0e11111111110e,    // O
    0x1010101e11111e,    // P
    0x0d12151111110e,    // Q
    0x1112141e11111e,    // R
    0x1e01010e10100f,    // S
    0x0404040404041f,    // T
    0x0e111111111111,    // U
    0x040a1111111111,    // V
    0x0a151515111111,    // W
    0x11110a040a1111,    // X
    0x040404040a1111,    // Y
    0x1f10080402011f,    // Z
    0x0e08080808080e,    // [
    0x00010204081000,    // backslash
    0x0e02020202020e,    // ]
    0x00000000110a04,    // ^
    0x1f000000000000,    // _
    0x00000000020408,    // `
    0x0f110f010e0000,    // a
    0x1e111119161010,    // b
    0x0e1110100e0000,    // c
    0x0f1111130d0101,    // d
    0x0e101f110e0000,    // e
    0x0808081c080906,    // f
    0xe010f11110f0000,   // g
    0x11111119161010,    // h
    0x0e0404040c0004,    // i
    0xc12020202060002,   // j
    0x12141814121010,    // k
    0x0e04040404040c,    // l
    0x151515151a0000,    // m
    0x11111119160000,    // n
    0x0e1111110e0000,    // o
    0x10101e11111e0000,  // p
    0x1010f11110f0000,   // q
    0x10101019160000,    // r
    0x1e010e100f0000,    // s
    0x060908081c0808,    // t
    0x0d131111110000,    // u
    0x040a1111110000,    // v
    0x0a151511110000,    // w
    0x110a040a110000,    // x
    0xe010f1111110000,   // y
    0x1f0804021f0000,    // z
    0x02040408040402,    // {
    0x04040404040404,    // |
    0x08040402040408,    // }
    0x00000215080000,    // ~
    0x1f11111111111f,    // box
};
constexpr int kFirstGlyph = 32;
constexpr int kBoxGlyph = static_cast<int>(std::size(kGlyphs)) - 1;
static_assert(kBoxGlyph == 127 - kFirstGlyph);

bool ValidCanvas(const Canvas& c) {
  return c.pixels != nullptr && c.width > 0 && c.height > 0 &&
         static_cast<int64_t>(c.stride_bytes) >= static_cast<int64_t>(c.width) * 4;
}

// Returns the glyph index for the character starting at text[*pos] and advances past it. UTF-8
// sequences are consumed whole (only as far as they are well formed) so they cost one box each
// and wrapping/centering code can count cells the same way drawing does.
int NextGlyph(std::string_view text, size_t* pos) {
  const auto ch = static_cast<unsigned char>(text[*pos]);
  ++*pos;
  if (ch >= kFirstGlyph && ch < 127) return ch - kFirstGlyph;
  if (ch >= 0xC2 && ch <= 0xF4) {
    int continuation = ch >= 0xF0 ? 3 : (ch >= 0xE0 ? 2 : 1);
    while (continuation > 0 && *pos < text.size() &&
           (static_cast<unsigned char>(text[*pos]) & 0xC0) == 0x80) {
      ++*pos;
      --continuation;
    }
  }
  return kBoxGlyph;
}

int SaturateToInt(int64_t v) { return static_cast<int>(std::clamp<int64_t>(v, INT_MIN, INT_MAX)); }

// Exact round(v / 255) for v in [0, 255 * 255].
inline uint8_t Div255(uint32_t v) {
  v += 128;
  return static_cast<uint8_t>((v + (v >> 8)) >> 8);
}

// Coordinates are 64-bit so that callers (DrawText with big scales, offsets far off-canvas)
// can never overflow while computing a rectangle; everything is clipped before touching memory.
void FillRect64(const Canvas& c, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t r, uint8_t g,
                uint8_t b, uint8_t alpha) {
  if (alpha == 0 || w <= 0 || h <= 0 || !ValidCanvas(c)) return;
  const int64_t x0 = std::max<int64_t>(x, 0);
  const int64_t y0 = std::max<int64_t>(y, 0);
  const int64_t x1 = std::min<int64_t>(x + w, c.width);
  const int64_t y1 = std::min<int64_t>(y + h, c.height);
  if (x0 >= x1 || y0 >= y1) return;
  const auto count = static_cast<size_t>(x1 - x0);
  const auto stride = static_cast<size_t>(c.stride_bytes);
  uint8_t* first_row = c.pixels + static_cast<size_t>(y0) * stride + static_cast<size_t>(x0) * 4;
  if (alpha == 255) {
    const uint8_t px[4] = {r, g, b, 255};
    for (size_t i = 0; i < count; ++i) std::memcpy(first_row + i * 4, px, 4);
    uint8_t* row = first_row;
    for (int64_t yy = y0 + 1; yy < y1; ++yy) {
      row += stride;
      std::memcpy(row, first_row, count * 4);
    }
    return;
  }
  const uint32_t a = alpha;
  const uint32_t inv = 255 - a;
  const uint32_t sr = r * a;
  const uint32_t sg = g * a;
  const uint32_t sb = b * a;
  uint8_t* row = first_row;
  for (int64_t yy = y0; yy < y1; ++yy, row += stride) {
    uint8_t* p = row;
    for (size_t i = 0; i < count; ++i, p += 4) {
      p[0] = Div255(sr + p[0] * inv);
      p[1] = Div255(sg + p[1] * inv);
      p[2] = Div255(sb + p[2] * inv);
      p[3] = 255;
    }
  }
}

}  // namespace

void FillRect(const Canvas& c, int x, int y, int w, int h, uint8_t r, uint8_t g, uint8_t b,
              uint8_t alpha) {
  FillRect64(c, x, y, w, h, r, g, b, alpha);
}

int GlyphCount(std::string_view text) {
  int64_t n = 0;
  for (size_t pos = 0; pos < text.size();) {
    NextGlyph(text, &pos);
    ++n;
  }
  return SaturateToInt(n);
}

int TextWidth(std::string_view text, int scale) {
  if (scale < 1) return 0;
  const int64_t n = GlyphCount(text);
  if (n == 0) return 0;
  return SaturateToInt(n * kGlyphAdvance * scale - scale);
}

int TextHeight(int scale) {
  if (scale < 1) return 0;
  return SaturateToInt(static_cast<int64_t>(kGlyphHeight) * scale);
}

void DrawText(const Canvas& c, int x, int y, std::string_view text, int scale, uint8_t r, uint8_t g,
              uint8_t b) {
  if (scale < 1 || !ValidCanvas(c)) return;
  const int64_t s = scale;
  if (y >= c.height || y + kGlyphHeight * s <= 0) return;
  int64_t gx = x;
  for (size_t pos = 0; pos < text.size(); gx += kGlyphAdvance * s) {
    if (gx >= c.width) break;
    const uint64_t bits = kGlyphs[NextGlyph(text, &pos)];
    if (bits == 0 || gx + kGlyphWidth * s <= 0) continue;
    for (int row = 0; row < kGlyphHeight; ++row) {
      const unsigned line = static_cast<unsigned>(bits >> (row * 8)) & 0x1Fu;
      // Horizontal runs become one rectangle each, which keeps big scales cheap.
      for (int col = 0; col < kGlyphWidth;) {
        if ((line & (0x10u >> col)) == 0) {
          ++col;
          continue;
        }
        int end = col + 1;
        while (end < kGlyphWidth && (line & (0x10u >> end)) != 0) ++end;
        FillRect64(c, gx + col * s, y + row * s, (end - col) * s, s, r, g, b, 255);
        col = end;
      }
    }
  }
}

}  // namespace sbx::renderer
