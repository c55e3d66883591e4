// Tiny built-in bitmap font and pixel primitives for the renderer.
//
// The renderer runs sandboxed without access to system fonts, so it carries its own 5x8 font:
// glyphs are 5 columns wide; capitals and digits use the top 7 rows and row 8 holds descenders
// (g, j, p, q, y, comma, semicolon). Each glyph advances 6 font pixels. Printable ASCII 32..126
// has real glyphs; every other byte, and every complete or broken UTF-8 sequence, is drawn as a
// single box so a multi-byte character occupies exactly one cell.
//
// All functions clip to the canvas and accept any coordinates; an invalid canvas (null pixels,
// non-positive size, or stride_bytes < width * 4) is silently ignored.

#pragma once

#include <cstdint>
#include <string_view>

#include "renderer/pages.h"

namespace sbx::renderer {

// Font geometry in font pixels (multiply by the scale for screen pixels).
inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 8;
inline constexpr int kGlyphAdvance = 6;

// Draws text at (x, y) top-left, each font pixel scaled to scale x scale, clipped to the canvas.
// The text is drawn on a single line; '\n' and other control characters render as boxes.
// scale < 1 draws nothing.
void DrawText(const Canvas& c, int x, int y, std::string_view text, int scale, uint8_t r, uint8_t g,
              uint8_t b);

// Width in pixels of DrawText's output: glyphs * 6 * scale minus the trailing 1-pixel gap
// (0 for empty text or scale < 1). Saturates at INT_MAX instead of overflowing.
int TextWidth(std::string_view text, int scale);

// Height in pixels of one line including the descender row (8 * scale; 0 for scale < 1).
int TextHeight(int scale);

// Number of glyph cells the text occupies (UTF-8 sequences count as one).
int GlyphCount(std::string_view text);

// Fills a rectangle blending (r, g, b) over the existing pixels with the given alpha
// (255 = opaque, 0 = no-op). Destination alpha stays 255. Negative w/h draw nothing.
void FillRect(const Canvas& c, int x, int y, int w, int h, uint8_t r, uint8_t g, uint8_t b,
              uint8_t alpha);

}  // namespace sbx::renderer
