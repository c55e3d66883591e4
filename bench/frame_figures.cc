// The shared frame buffer in one process: a writer publishing a prepared frame and a reader
// copying it out, against one plain memcpy of the same bytes. Publishing is one copy into the
// memfd and reading is another: twice the memcpy while everything stays in cache, 3-4.5x once
// the two shared buffers push the working set out of the L2 (see FramePublish's note).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/figures.h"
#include "ipc/frame_buffer.h"
#include "ipc/posix.h"

namespace sbx::bench {

namespace {

// A non-constant pattern, so every page of the source is real memory and nothing is shared
// with the zero page.
std::vector<uint8_t> PreparedFrame(size_t bytes) {
  std::vector<uint8_t> frame(bytes);
  for (size_t i = 0; i < bytes; ++i) frame[i] = static_cast<uint8_t>(i * 31 + 7);
  return frame;
}

std::string Megabytes(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

Result<Measurement> MemcpyFrame(const BenchConfig& config) {
  FrameGeometry geometry;  // 640x360 RGBA, the broker's default
  std::vector<uint8_t> source = PreparedFrame(geometry.frame_bytes());
  std::vector<uint8_t> copy(geometry.frame_bytes());
  auto once = [&]() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    std::memcpy(copy.data(), source.data(), source.size());
    ClobberMemory(copy.data());
    return MonotonicNs() - t0;
  };
  auto samples = CollectSamples(Count(config, 100, 20), Count(config, 2000, 200), once);
  if (!samples) return std::unexpected(samples.error());
  return Measurement{Summarize(std::move(*samples)), "one copy of a " +
                                                         std::to_string(geometry.frame_bytes()) +
                                                         "-byte frame from one buffer to another"};
}

Result<Measurement> FramePublish(const BenchConfig& config) {
  FrameGeometry geometry;
  auto reader = FrameReader::Create(geometry);
  if (!reader) return std::unexpected(reader.error());
  // Attach maps the memfd itself, as the renderer does with the descriptor it inherits.
  auto writer = FrameWriter::Attach(reader->fd());
  if (!writer) return std::unexpected(writer.error());
  std::vector<uint8_t> source = PreparedFrame(geometry.frame_bytes());
  std::vector<uint8_t> copy(geometry.frame_bytes());
  uint64_t frame_number = 0;

  auto once = [&]() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    uint8_t* pixels = writer->BeginFrame();
    std::memcpy(pixels, source.data(), source.size());
    writer->EndFrame(frame_number);
    auto frame = reader->CopyFrame(copy);
    int64_t t1 = MonotonicNs();
    ClobberMemory(copy.data());
    if (!frame) return MakeError(Errc::kState, "CopyFrame found no consistent frame");
    if (frame->frame_number != frame_number) {
      return MakeError(Errc::kState, "CopyFrame returned frame " +
                                         std::to_string(frame->frame_number) + ", expected " +
                                         std::to_string(frame_number));
    }
    ++frame_number;
    return t1 - t0;
  };
  auto samples = CollectSamples(Count(config, 100, 20), Count(config, 2000, 200), once);
  if (!samples) return std::unexpected(samples.error());
  // Two copies where memcpy_frame makes one, so 2x if both stay in cache. The writer alternates
  // between two buffers, so a cycle touches twice memcpy_frame's bytes; where those overflow
  // the L2 and memcpy_frame's do not, each copy also runs from memory, and 3-4.5x is measured.
  const size_t ours = 4 * geometry.frame_bytes();
  const size_t theirs = 2 * geometry.frame_bytes();
  std::string note =
      "the renderer's side (begin a frame, copy it into shared memory, publish it) and the "
      "broker's (copy the newest frame out) on one thread: two copies where memcpy_frame makes "
      "one, touching " +
      Megabytes(ours) + " (source, both shared buffers, the copy) against " + Megabytes(theirs);
  long l2 = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l2 > 0) {
    auto cache = static_cast<size_t>(l2);
    note += "; L2 " + Megabytes(cache) + " per core, so expect a ratio of ";
    note += theirs <= cache && ours > cache ? "3-4.5 (only memcpy_frame fits in it)" : "about 2";
  }
  return Measurement{Summarize(std::move(*samples)), std::move(note)};
}

}  // namespace sbx::bench
