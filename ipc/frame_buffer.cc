#include "ipc/frame_buffer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <utility>

namespace sbx {

Result<Mapping> Mapping::Map(int fd, size_t size, bool writable) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return SysError("mmap");
  Mapping m;
  m.addr_ = p;
  m.size_ = size;
  return m;
}

Mapping::Mapping(Mapping&& o) noexcept
    : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    Reset();
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() { Reset(); }

void Mapping::Reset() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

Result<FrameReader> FrameReader::Create(FrameGeometry g) {
  if (!g.valid()) return MakeError(Errc::kInvalidArgument, "bad frame geometry");
  int raw = ::memfd_create("sbx-frames", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (raw < 0) return SysError("memfd_create");
  UniqueFd fd(raw);
  if (::ftruncate(fd.get(), static_cast<off_t>(g.total_bytes())) != 0) return SysError("ftruncate");
  auto map = Mapping::Map(fd.get(), g.total_bytes(), /*writable=*/true);
  if (!map) return std::unexpected(map.error());
  // A fresh memfd is zero-filled, which is a valid state for every atomic.
  auto* h = std::construct_at(static_cast<SharedFrameHeader*>(static_cast<void*>(map->data())));
  h->magic = protocol::kFrameMagic;
  h->version = protocol::kFrameVersion;
  h->width = static_cast<uint32_t>(g.width);
  h->height = static_cast<uint32_t>(g.height);
  h->stride = static_cast<uint32_t>(g.stride());
  h->format = protocol::kFormatRgba8888;
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return SysError("fcntl(F_ADD_SEALS)");
  }
  return FrameReader(std::move(fd), std::move(*map), g);
}

uint64_t FrameReader::published() const {
  return header()->published.load(std::memory_order_acquire);
}

std::expected<FrameReader::View, FrameReader::NoView> FrameReader::Begin(int index) const {
  const SharedFrameHeader* h = header();
  int i = index;
  if (i < 0) {
    if (h->published.load(std::memory_order_acquire) == 0)
      return std::unexpected(NoView::kNothingYet);
    i = static_cast<int>(h->front.load(std::memory_order_acquire));
  }
  if (i != 0 && i != 1) return std::unexpected(NoView::kBadIndex);  // the caller's decision
  uint64_t seq = h->seq[i].load(std::memory_order_acquire);
  if (seq & 1) return std::unexpected(NoView::kBeingWritten);
  return View{buffer(i), h->frame_number[i].load(std::memory_order_relaxed), i, seq};
}

std::optional<FrameReader::View> FrameReader::BeginRead() const {
  auto v = Begin(-1);
  if (!v) return std::nullopt;
  return *v;
}

bool FrameReader::EndRead(const View& view) const {
  if (view.buffer_index != 0 && view.buffer_index != 1) return false;
  // Orders every load of the pixels before the counter is read again (the seqlock's reader).
  std::atomic_thread_fence(std::memory_order_acquire);
  return header()->seq[view.buffer_index].load(std::memory_order_relaxed) == view.seq;
}

std::optional<FrameReader::Frame> FrameReader::CopyFrame(std::span<uint8_t> out, int index) const {
  if (out.size() < geometry_.frame_bytes()) return std::nullopt;
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto v = Begin(index);
    if (!v) {
      if (v.error() == NoView::kBeingWritten) continue;
      return std::nullopt;
    }
    std::memcpy(out.data(), v->pixels, geometry_.frame_bytes());
    if (EndRead(*v)) return Frame{v->frame_number, v->buffer_index};
  }
  return std::nullopt;
}

Result<FrameWriter> FrameWriter::Attach(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return SysError("fstat(frame fd)");
  if (static_cast<size_t>(st.st_size) < protocol::kFrameHeaderSize) {
    return MakeError(Errc::kProtocol, "frame memfd too small");
  }
  auto map = Mapping::Map(fd, static_cast<size_t>(st.st_size), /*writable=*/true);
  if (!map) return std::unexpected(map.error());
  const auto* h = reinterpret_cast<const SharedFrameHeader*>(map->data());
  FrameGeometry g{static_cast<int>(h->width), static_cast<int>(h->height)};
  if (h->magic != protocol::kFrameMagic || h->version != protocol::kFrameVersion ||
      h->format != protocol::kFormatRgba8888 || h->width > protocol::kMaxDimension ||
      h->height > protocol::kMaxDimension || !g.valid() || h->stride != g.stride() ||
      g.total_bytes() > static_cast<size_t>(st.st_size)) {
    return MakeError(Errc::kProtocol, "frame header does not match the memfd");
  }
  return FrameWriter(std::move(*map), g);
}

uint8_t* FrameWriter::BeginFrame() {
  SharedFrameHeader* h = header();
  // Write into the buffer that is not the front, so a reader of the front is never disturbed by
  // the next frame; only a reader still copying two frames later can see a changed counter.
  back_ = h->published.load(std::memory_order_relaxed) == 0
              ? 0
              : 1 - static_cast<int>(h->front.load(std::memory_order_relaxed) & 1);
  uint64_t s = h->seq[back_].load(std::memory_order_relaxed);
  h->seq[back_].store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  return map_.data() + geometry_.buffer_offset(back_);
}

int FrameWriter::EndFrame(uint64_t frame_number) {
  SharedFrameHeader* h = header();
  h->frame_number[back_].store(frame_number, std::memory_order_relaxed);
  uint64_t s = h->seq[back_].load(std::memory_order_relaxed);
  h->seq[back_].store(s + 1, std::memory_order_release);
  h->front.store(static_cast<uint32_t>(back_), std::memory_order_release);
  h->published.fetch_add(1, std::memory_order_release);
  return back_;
}

}  // namespace sbx
