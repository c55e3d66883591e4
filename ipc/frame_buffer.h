// The shared frame buffer: one sealed memfd holding a header page and two frame buffers.
//
// The renderer (FrameWriter) draws into the back buffer and publishes it; the broker
// (FrameReader) copies the latest complete frame out without a lock and without ever seeing a
// torn frame. Each buffer carries its own sequence counter (a seqlock): odd while being written.
// A reader that sees the counter odd, or changed across its copy, retries a bounded number of
// times: the writer is untrusted, so the reader never spins on it.
//
// The broker creates the memfd, sizes it and seals it (no shrink, no grow, no further seals)
// before the renderer exists, so a hostile renderer can never truncate the mapping under the
// broker (which would SIGBUS the broker). Geometry lives in the broker's private memory; the only
// shared fields the broker reads are the atomics, and it validates them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>

#include "ipc/error.h"
#include "ipc/protocol.h"
#include "ipc/unique_fd.h"

namespace sbx {

struct FrameGeometry {
  int width = protocol::kDefaultWidth;
  int height = protocol::kDefaultHeight;
  size_t stride() const { return static_cast<size_t>(width) * 4; }
  size_t frame_bytes() const { return stride() * static_cast<size_t>(height); }
  // Each buffer starts on a page boundary.
  size_t buffer_span() const { return (frame_bytes() + 4095) & ~size_t{4095}; }
  size_t total_bytes() const { return protocol::kFrameHeaderSize + 2 * buffer_span(); }
  size_t buffer_offset(int index) const {
    return protocol::kFrameHeaderSize + static_cast<size_t>(index) * buffer_span();
  }
  bool valid() const {
    return width >= 1 && height >= 1 && width <= protocol::kMaxDimension &&
           height <= protocol::kMaxDimension;
  }
};

// The header page, as laid out in shared memory (docs/PROTOCOL.md).
struct SharedFrameHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t width;
  uint32_t height;
  uint32_t stride;
  uint32_t format;
  std::atomic<uint32_t> front;  // index of the latest complete buffer
  uint32_t reserved;
  std::atomic<uint64_t> published;  // frames published so far
  std::atomic<uint64_t> seq[2];     // per-buffer seqlock counters
  std::atomic<uint64_t> frame_number[2];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(SharedFrameHeader) <= protocol::kFrameHeaderSize);

// A MAP_SHARED mapping, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  static Result<Mapping> Map(int fd, size_t size, bool writable);
  Mapping(Mapping&& o) noexcept;
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  void Reset();
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// The broker's side: creates and owns the memfd, reads frames.
class FrameReader {
 public:
  // Creates, sizes, initialises and seals the memfd.
  static Result<FrameReader> Create(FrameGeometry geometry);

  const FrameGeometry& geometry() const { return geometry_; }
  int fd() const { return fd_.get(); }  // to hand to the renderer (it dups it)

  struct Frame {
    uint64_t frame_number;
    int buffer_index;
  };
  // Copies the frame in buffer `index` (or the current front if index < 0) into out, which must
  // hold frame_bytes(). nullopt when no consistent copy was possible within a few attempts, or
  // nothing was published yet.
  std::optional<Frame> CopyFrame(std::span<uint8_t> out, int index = -1) const;

  // Zero-copy reading, for a display that draws straight from shared memory: BeginRead() points
  // at the front buffer's pixels (frame_bytes() of them, stride() apart) and remembers its
  // sequence counter; once done with them, EndRead() says whether the writer left them alone
  // meanwhile. false means what was read may be torn: use it no further (CopyFrame is the
  // fallback). BeginRead gives nullopt when nothing was published yet, the front index is not 0
  // or 1 (a hostile writer), or the front buffer is being written right now.
  struct View {
    const uint8_t* pixels;
    uint64_t frame_number;
    int buffer_index;
    uint64_t seq;
  };
  std::optional<View> BeginRead() const;
  bool EndRead(const View& view) const;
  uint64_t published() const;

 private:
  FrameReader(UniqueFd fd, Mapping map, FrameGeometry g)
      : fd_(std::move(fd)), map_(std::move(map)), geometry_(g) {}
  // Why a read could not begin: a retry helps only while the buffer is being written.
  enum class NoView { kNothingYet, kBadIndex, kBeingWritten };
  std::expected<View, NoView> Begin(int index) const;
  // Every read of shared memory goes through Begin/EndRead: nothing else touches the header.
  const uint8_t* buffer(int index) const { return map_.data() + geometry_.buffer_offset(index); }
  const SharedFrameHeader* header() const {
    return reinterpret_cast<const SharedFrameHeader*>(map_.data());
  }
  // The mapping is declared after the fd so it is destroyed first.
  UniqueFd fd_;
  Mapping map_;
  FrameGeometry geometry_;
};

// The renderer's side: maps the memfd it inherited and publishes frames.
class FrameWriter {
 public:
  // Validates the header the broker wrote against the file's real size.
  static Result<FrameWriter> Attach(int fd);

  const FrameGeometry& geometry() const { return geometry_; }
  // The buffer to draw the next frame into.
  uint8_t* BeginFrame();
  // Publishes the buffer returned by BeginFrame; returns its index.
  int EndFrame(uint64_t frame_number);

 private:
  FrameWriter(Mapping map, FrameGeometry g) : map_(std::move(map)), geometry_(g) {}
  SharedFrameHeader* header() { return reinterpret_cast<SharedFrameHeader*>(map_.data()); }
  Mapping map_;
  FrameGeometry geometry_;
  int back_ = 0;
};

}  // namespace sbx
