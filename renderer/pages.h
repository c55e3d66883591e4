// The pages a renderer process can show, drawn in software straight into a shared-memory frame.
//
// Pages are single-threaded objects: create one with MakePage, then call Render once per frame
// from one thread. Rendering never allocates per pixel, never fails, and is safe for any canvas
// geometry (down to 1x1); an invalid canvas (null pixels, non-positive size, or
// stride_bytes < width * 4) is ignored.

#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

namespace sbx::renderer {

// A view over one frame buffer in shared memory. Pixels are 4 bytes each in byte order R,G,B,A
// (QImage::Format_RGBA8888); A is always 255. stride_bytes >= width*4.
struct Canvas {
  uint8_t* pixels;
  int width;
  int height;
  int stride_bytes;
};

struct FrameInfo {
  int id;           // renderer id assigned by the broker
  int pid;          // pid as the broker sees it (may differ from getpid())
  uint64_t frame;   // frame counter, starts at 0
  int64_t mono_ns;  // CLOCK_MONOTONIC now
  int64_t wall_s;   // CLOCK_REALTIME seconds (for the clock page); shown as UTC
};

class Page {
 public:
  virtual ~Page() = default;
  // Overwrites every pixel of the canvas, then draws the overlay (DrawOverlay).
  virtual void Render(const Canvas& canvas, const FrameInfo& info) = 0;
  // The URL the page was created from, exactly as passed to MakePage.
  virtual std::string_view url() const = 0;
};

// Known URLs: "sbx://plasma" (animated colour plasma), "sbx://clock" (big digital HH:MM:SS UTC
// clock with a seconds sweep), "sbx://text/<message>" (the message, percent-decoded with invalid
// escapes kept literally, at most 256 bytes kept, drawn large, centred and word-wrapped) and
// "about:blank" (plain light grey). Anything else returns "unknown page: <url>" with the url
// truncated to 100 chars.
std::expected<std::unique_ptr<Page>, std::string> MakePage(std::string_view url);

// The overlay every page draws last: a dark translucent band at the top with
// "#<id> pid <pid> frame <frame>" and the page url, so a frozen or restarted renderer is obvious.
void DrawOverlay(const Canvas& canvas, const FrameInfo& info, std::string_view url);

}  // namespace sbx::renderer
