// The frame buffer's header page, from both sides of the trust boundary:
// - the renderer attaching to a memfd whose header and size are anything (FrameWriter::Attach):
//   a geometry it accepts must fit in the file, which drawing every byte of both buffers proves
//   (a wrong acceptance faults on the mapping's end);
// - the broker copying frames while the renderer has written anything into the header's atomics
//   (FrameReader::CopyFrame): it returns only buffer 0 or 1, with exactly that buffer's pixels
//   and frame number, and never reads outside its own geometry.
//
// Input: a u32 that picks the memfd's size beyond the header page, then the bytes of the header
// page (the rest of the page stays zero).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "ipc/frame_buffer.h"
#include "ipc/protocol.h"
#include "ipc/unique_fd.h"
#include "tests/fuzz/fuzz_check.h"

namespace sbx {
namespace {

// Large enough for the geometries the seeds use, small enough to keep each run quick.
constexpr size_t kMaxExtra = 512 * 1024;

void Attach(size_t extra, std::span<const uint8_t> header) {
  // One memfd for the whole run; truncating to 0 first zeroes what the last input left.
  static const int fd = ::memfd_create("sbx-fuzz-frame", MFD_CLOEXEC);
  SBX_FUZZ_CHECK(fd >= 0);
  const size_t file_size = protocol::kFrameHeaderSize + extra;
  SBX_FUZZ_CHECK(::ftruncate(fd, 0) == 0);
  SBX_FUZZ_CHECK(::ftruncate(fd, static_cast<off_t>(file_size)) == 0);
  SBX_FUZZ_CHECK(::pwrite(fd, header.data(), header.size(), 0) ==
                 static_cast<ssize_t>(header.size()));

  auto writer = FrameWriter::Attach(fd);
  if (!writer) {
    SBX_FUZZ_CHECK(writer.error().code == Errc::kProtocol);
    return;
  }
  const FrameGeometry& g = writer->geometry();
  SBX_FUZZ_CHECK(g.valid() && g.total_bytes() <= file_size);
  for (uint64_t n = 0; n < 2; ++n) {
    std::memset(writer->BeginFrame(), 0xa5, g.frame_bytes());
    int index = writer->EndFrame(n);
    SBX_FUZZ_CHECK(index == 0 || index == 1);
  }
}

struct BrokerSide {
  FrameReader reader;
  Mapping renderer_view;  // what a renderer maps: the whole memfd, writable
};

BrokerSide MakeBrokerSide() {
  auto reader = FrameReader::Create(FrameGeometry{3, 2});
  SBX_FUZZ_CHECK(reader.has_value());
  auto view = Mapping::Map(reader->fd(), reader->geometry().total_bytes(), /*writable=*/true);
  SBX_FUZZ_CHECK(view.has_value());
  return BrokerSide{std::move(*reader), std::move(*view)};
}

// One broker-side buffer for the whole run: creating and sealing a memfd per input would cost
// more than the copy under test.
BrokerSide& Broker() {
  static BrokerSide side = MakeBrokerSide();
  return side;
}

void Copy(std::span<const uint8_t> header) {
  BrokerSide& side = Broker();
  const FrameGeometry& g = side.reader.geometry();
  uint8_t* shared = side.renderer_view.data();
  std::memset(shared, 0, protocol::kFrameHeaderSize);
  std::memcpy(shared, header.data(), header.size());
  // Distinct pixels per buffer, so a copy from the wrong buffer shows.
  std::memset(shared + g.buffer_offset(0), 0x11, g.frame_bytes());
  std::memset(shared + g.buffer_offset(1), 0x22, g.frame_bytes());

  std::vector<uint8_t> out(g.frame_bytes());
  for (int index : {-1, 0, 1, 2, -7}) {
    auto frame = side.reader.CopyFrame(out, index);
    if (!frame) continue;
    SBX_FUZZ_CHECK(frame->buffer_index == 0 || frame->buffer_index == 1);
    SBX_FUZZ_CHECK(index < 0 || frame->buffer_index == index);
    const uint8_t fill = frame->buffer_index == 0 ? 0x11 : 0x22;
    SBX_FUZZ_CHECK(std::all_of(out.begin(), out.end(), [fill](uint8_t b) { return b == fill; }));
    // Read through the renderer's own mapping: the reader keeps its header to itself.
    const auto& numbers =
        reinterpret_cast<const SharedFrameHeader*>(side.renderer_view.data())->frame_number;
    SBX_FUZZ_CHECK(frame->frame_number == numbers[frame->buffer_index].load());
  }
  (void)side.reader.published();
}

}  // namespace
}  // namespace sbx

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t pick = 0;
  if (size < sizeof pick) return 0;
  std::memcpy(&pick, data, sizeof pick);
  std::span<const uint8_t> header(data + sizeof pick,
                                  std::min(size - sizeof pick, sbx::protocol::kFrameHeaderSize));
  sbx::Attach(pick % (sbx::kMaxExtra + 1), header);
  sbx::Copy(header);
  return 0;
}
