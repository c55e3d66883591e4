// The shared frame buffer: the broker's memfd is sealed before anyone else sees it, the
// renderer's side validates what it maps, and a reader never returns a torn frame even while a
// writer in another process is publishing as fast as it can.
#include "ipc/frame_buffer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

constexpr FrameGeometry kSmall{64, 48};

// A second, writable mapping of the reader's memfd: what a hostile renderer gets.
SharedFrameHeader* HostileView(Mapping& m) {
  return reinterpret_cast<SharedFrameHeader*>(m.data());
}

Mapping MapWritable(const FrameReader& reader) {
  auto m = Mapping::Map(reader.fd(), reader.geometry().total_bytes(), /*writable=*/true);
  EXPECT_TRUE(m.has_value()) << m.error().ToString();
  return m ? std::move(*m) : Mapping();
}

// The colour of every pixel of frame n: distinct for neighbouring frames, never zero.
uint32_t PixelFor(uint64_t n) { return static_cast<uint32_t>(n * 2654435761u) | 1u; }

void FillFrame(uint8_t* pixels, const FrameGeometry& g, uint32_t value) {
  const size_t count = g.frame_bytes() / 4;
  for (size_t i = 0; i < count; ++i) std::memcpy(pixels + i * 4, &value, 4);
}

// True when every pixel of the copy equals the one expected for its frame number.
bool IsUniform(const std::vector<uint8_t>& copy, uint64_t frame_number) {
  const uint32_t want = PixelFor(frame_number);
  for (size_t i = 0; i + 4 <= copy.size(); i += 4) {
    uint32_t px;
    std::memcpy(&px, copy.data() + i, 4);
    if (px != want) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Creation and sealing

TEST(FrameBufferTest, CreateSealsTheMemfdAgainstShrinkGrowAndFurtherSeals) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value()) << reader.error().ToString();
  int seals = ::fcntl(reader->fd(), F_GET_SEALS);
  ASSERT_GE(seals, 0) << std::strerror(errno);
  EXPECT_EQ(seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

TEST(FrameBufferTest, SealedMemfdCannotBeResizedOrResealed) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value()) << reader.error().ToString();
  const off_t size = static_cast<off_t>(reader->geometry().total_bytes());

  errno = 0;
  EXPECT_EQ(::ftruncate(reader->fd(), size / 2), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(::ftruncate(reader->fd(), 0), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(::ftruncate(reader->fd(), size * 2), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(::fcntl(reader->fd(), F_ADD_SEALS, F_SEAL_WRITE), -1);
  EXPECT_EQ(errno, EPERM);

  struct stat st;
  ASSERT_EQ(::fstat(reader->fd(), &st), 0);
  EXPECT_EQ(st.st_size, size);
}

TEST(FrameBufferTest, CreateWritesTheHeaderAndSizesTheFile) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value()) << reader.error().ToString();
  Mapping view = MapWritable(*reader);
  ASSERT_NE(view.data(), nullptr);
  const SharedFrameHeader* h = HostileView(view);
  EXPECT_EQ(h->magic, protocol::kFrameMagic);
  EXPECT_EQ(h->version, protocol::kFrameVersion);
  EXPECT_EQ(h->width, 64u);
  EXPECT_EQ(h->height, 48u);
  EXPECT_EQ(h->stride, 64u * 4);
  EXPECT_EQ(h->format, protocol::kFormatRgba8888);
  EXPECT_EQ(reader->published(), 0u);
  struct stat st;
  ASSERT_EQ(::fstat(reader->fd(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), kSmall.total_bytes());
  EXPECT_TRUE(::fcntl(reader->fd(), F_GETFD) & FD_CLOEXEC);
}

TEST(FrameBufferTest, CreateRejectsInvalidGeometry) {
  for (FrameGeometry g : {FrameGeometry{0, 10}, FrameGeometry{10, 0}, FrameGeometry{-1, 10},
                          FrameGeometry{protocol::kMaxDimension + 1, 1},
                          FrameGeometry{1, protocol::kMaxDimension + 1}}) {
    auto reader = FrameReader::Create(g);
    ASSERT_FALSE(reader.has_value()) << g.width << "x" << g.height;
    EXPECT_EQ(reader.error().code, Errc::kInvalidArgument);
  }
}

// ---------------------------------------------------------------------------------------------
// Publishing and copying

TEST(FrameBufferTest, CopyFrameReturnsNothingBeforeTheFirstPublish) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  std::vector<uint8_t> out(kSmall.frame_bytes());
  EXPECT_FALSE(reader->CopyFrame(out).has_value());
}

TEST(FrameBufferTest, WriterPublishesIntoAlternatingBuffersAndReaderCopiesThem) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  auto writer = FrameWriter::Attach(reader->fd());
  ASSERT_TRUE(writer.has_value()) << writer.error().ToString();
  EXPECT_EQ(writer->geometry().width, kSmall.width);
  EXPECT_EQ(writer->geometry().height, kSmall.height);

  std::vector<uint8_t> out(kSmall.frame_bytes());
  int expected_index = 0;
  for (uint64_t n = 1; n <= 5; ++n) {
    FillFrame(writer->BeginFrame(), kSmall, PixelFor(n));
    EXPECT_EQ(writer->EndFrame(n), expected_index);
    auto frame = reader->CopyFrame(out);
    ASSERT_TRUE(frame.has_value()) << n;
    EXPECT_EQ(frame->frame_number, n);
    EXPECT_EQ(frame->buffer_index, expected_index);
    EXPECT_TRUE(IsUniform(out, n));
    EXPECT_EQ(reader->published(), n);
    expected_index = 1 - expected_index;
  }
  // Both buffers can still be read by index: frame 4 in buffer 1, frame 5 in buffer 0.
  auto older = reader->CopyFrame(out, 1);
  ASSERT_TRUE(older.has_value());
  EXPECT_EQ(older->frame_number, 4u);
  EXPECT_TRUE(IsUniform(out, 4));
}

// The zero-copy read the window paints from: the pixels in place, then the seqlock's verdict.
TEST(FrameBufferTest, BeginReadPointsAtTheFrontBufferInPlace) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  EXPECT_FALSE(reader->BeginRead().has_value()) << "nothing published yet";
  auto writer = FrameWriter::Attach(reader->fd());
  ASSERT_TRUE(writer.has_value());
  for (uint64_t n = 1; n <= 3; ++n) {
    FillFrame(writer->BeginFrame(), kSmall, PixelFor(n));
    int index = writer->EndFrame(n);
    auto view = reader->BeginRead();
    ASSERT_TRUE(view.has_value()) << n;
    EXPECT_EQ(view->frame_number, n);
    EXPECT_EQ(view->buffer_index, index);
    std::vector<uint8_t> seen(view->pixels, view->pixels + kSmall.frame_bytes());
    EXPECT_TRUE(IsUniform(seen, n));
    EXPECT_TRUE(reader->EndRead(*view));
  }
}

TEST(FrameBufferTest, EndReadRejectsAViewTheWriterOverwroteMeanwhile) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  auto writer = FrameWriter::Attach(reader->fd());
  ASSERT_TRUE(writer.has_value());
  FillFrame(writer->BeginFrame(), kSmall, PixelFor(1));
  writer->EndFrame(1);
  auto view = reader->BeginRead();
  ASSERT_TRUE(view.has_value());
  // One more frame goes to the other buffer: the view is still whole.
  FillFrame(writer->BeginFrame(), kSmall, PixelFor(2));
  writer->EndFrame(2);
  EXPECT_TRUE(reader->EndRead(*view));
  // The writer starts on the viewed buffer again: whatever was read may be torn.
  writer->BeginFrame();
  EXPECT_FALSE(reader->EndRead(*view));
  writer->EndFrame(3);
  EXPECT_FALSE(reader->EndRead(*view));
  // A view naming a buffer that does not exist is never valid.
  FrameReader::View forged = *view;
  forged.buffer_index = 2;
  EXPECT_FALSE(reader->EndRead(forged));
}

TEST(FrameBufferTest, BeginReadRefusesAHostileFrontIndexAndABufferBeingWritten) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  Mapping hostile = MapWritable(*reader);
  ASSERT_NE(hostile.data(), nullptr);
  SharedFrameHeader* h = HostileView(hostile);
  h->published.store(1);
  for (uint32_t front : {2u, 0xffffffffu}) {
    h->front.store(front);
    EXPECT_FALSE(reader->BeginRead().has_value()) << front;
  }
  h->front.store(0);
  h->seq[0].store(1);
  EXPECT_FALSE(reader->BeginRead().has_value());
  h->seq[0].store(2);
  EXPECT_TRUE(reader->BeginRead().has_value());
}

TEST(FrameBufferTest, CopyFrameRejectsAnOutputSpanThatIsTooSmall) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  auto writer = FrameWriter::Attach(reader->fd());
  ASSERT_TRUE(writer.has_value());
  FillFrame(writer->BeginFrame(), kSmall, PixelFor(1));
  writer->EndFrame(1);
  std::vector<uint8_t> out(kSmall.frame_bytes() - 1);
  EXPECT_FALSE(reader->CopyFrame(out).has_value());
}

// ---------------------------------------------------------------------------------------------
// A hostile renderer

TEST(FrameBufferTest, HostileFrontIndexMakesCopyFrameReturnNothing) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  Mapping hostile = MapWritable(*reader);
  ASSERT_NE(hostile.data(), nullptr);
  HostileView(hostile)->published.store(1);
  std::vector<uint8_t> out(kSmall.frame_bytes());
  for (uint32_t front : {2u, 7u, 0x80000000u, 0xffffffffu}) {
    HostileView(hostile)->front.store(front);
    EXPECT_FALSE(reader->CopyFrame(out).has_value()) << front;
  }
}

TEST(FrameBufferTest, CopyFrameRejectsAnExplicitIndexOutOfRange) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  std::vector<uint8_t> out(kSmall.frame_bytes());
  EXPECT_FALSE(reader->CopyFrame(out, 2).has_value());
  EXPECT_FALSE(reader->CopyFrame(out, 7).has_value());
}

TEST(FrameBufferTest, CopyFrameGivesUpOnAWriterStuckMidFrame) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  Mapping hostile = MapWritable(*reader);
  ASSERT_NE(hostile.data(), nullptr);
  SharedFrameHeader* h = HostileView(hostile);
  h->published.store(1);
  h->front.store(0);
  h->seq[0].store(1);  // odd forever: a writer that died (or lies) mid-frame
  std::vector<uint8_t> out(kSmall.frame_bytes());
  EXPECT_FALSE(reader->CopyFrame(out).has_value());
  EXPECT_FALSE(reader->CopyFrame(out, 0).has_value());
}

// ---------------------------------------------------------------------------------------------
// FrameWriter::Attach validation

struct TamperCase {
  const char* name;
  std::function<void(SharedFrameHeader&)> tamper;
};

class FrameWriterAttachTest : public ::testing::TestWithParam<TamperCase> {};

TEST_P(FrameWriterAttachTest, RejectsAHeaderThatDoesNotMatchTheMemfd) {
  auto reader = FrameReader::Create(kSmall);
  ASSERT_TRUE(reader.has_value());
  {
    Mapping view = MapWritable(*reader);
    ASSERT_NE(view.data(), nullptr);
    GetParam().tamper(*HostileView(view));
  }
  auto writer = FrameWriter::Attach(reader->fd());
  ASSERT_FALSE(writer.has_value()) << GetParam().name;
  EXPECT_EQ(writer.error().code, Errc::kProtocol);
}

INSTANTIATE_TEST_SUITE_P(
    Headers, FrameWriterAttachTest,
    ::testing::Values(TamperCase{"magic", [](SharedFrameHeader& h) { h.magic ^= 1; }},
                      TamperCase{
                          "version",
                          [](SharedFrameHeader& h) { h.version = protocol::kFrameVersion + 1; }},
                      TamperCase{"format", [](SharedFrameHeader& h) { h.format = 2; }},
                      TamperCase{"zero width", [](SharedFrameHeader& h) { h.width = 0; }},
                      TamperCase{"zero height", [](SharedFrameHeader& h) { h.height = 0; }},
                      TamperCase{"negative width",
                                 [](SharedFrameHeader& h) {
                                   h.width = 0x80000000u;
                                   h.stride = 0;
                                 }},
                      TamperCase{"width too large",
                                 [](SharedFrameHeader& h) {
                                   h.width = protocol::kMaxDimension + 1;
                                   h.stride = h.width * 4;
                                 }},
                      TamperCase{"stride", [](SharedFrameHeader& h) { h.stride += 4; }},
                      TamperCase{"larger than the file",
                                 [](SharedFrameHeader& h) {
                                   h.width = protocol::kMaxDimension;
                                   h.height = protocol::kMaxDimension;
                                   h.stride = h.width * 4;
                                 }}),
    [](const ::testing::TestParamInfo<TamperCase>& info) {
      std::string name = info.param.name;
      for (char& c : name) {
        if (c == ' ') c = '_';
      }
      return name;
    });

TEST(FrameBufferTest, AttachRejectsAFileSmallerThanTheHeaderPage) {
  UniqueFd fd(::memfd_create("sbx-unit-small", MFD_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::ftruncate(fd.get(), 100), 0);
  auto writer = FrameWriter::Attach(fd.get());
  ASSERT_FALSE(writer.has_value());
  EXPECT_EQ(writer.error().code, Errc::kProtocol);
}

TEST(FrameBufferTest, AttachRejectsDescriptorsThatAreNotAFrameFile) {
  EXPECT_FALSE(FrameWriter::Attach(-1).has_value());
  auto pipe = MakePipe(false);
  ASSERT_TRUE(pipe.has_value());
  EXPECT_FALSE(FrameWriter::Attach(pipe->read.get()).has_value());
}

// ---------------------------------------------------------------------------------------------
// Torn frames

// A child process attaches its own FrameWriter to the memfd and publishes frames as fast as it
// can. It alternates slow frames (pixel by pixel, so many copies succeed) with fast ones (a fill
// that outruns the reader's memcpy, so the writer often laps a copy in progress: exactly where a
// broken seqlock would hand out a torn frame). Every copy CopyFrame returns must be exactly one
// frame: all pixels equal, and equal to its frame number's colour.
TEST(FrameBufferTest, ReaderNeverReturnsATornFrameWhileAnotherProcessWrites) {
  constexpr FrameGeometry kGeometry{128, 96};
  auto reader = FrameReader::Create(kGeometry);
  ASSERT_TRUE(reader.has_value()) << reader.error().ToString();
  auto started = MakePipe(false);
  ASSERT_TRUE(started.has_value());

  const int frame_fd = reader->fd();
  const int started_fd = started->write.get();
  test::Child child = test::ForkChild([frame_fd, started_fd] {
    auto writer = FrameWriter::Attach(frame_fd);
    if (!writer) ::_exit(3);
    const FrameGeometry g = writer->geometry();
    const size_t count = g.frame_bytes() / 4;
    for (uint64_t n = 1;; ++n) {
      uint8_t* pixels = writer->BeginFrame();
      const uint32_t value = PixelFor(n);
      if (n % 2 == 0) {
        std::fill_n(reinterpret_cast<uint32_t*>(pixels), count, value);
      } else {
        volatile uint32_t* px = reinterpret_cast<volatile uint32_t*>(pixels);
        for (size_t i = 0; i < count; ++i) px[i] = value;
      }
      writer->EndFrame(n);
      if (n == 1) {
        const char one = 1;
        if (::write(started_fd, &one, 1) != 1) ::_exit(4);
      }
    }
  });
  ASSERT_GT(child.pid, 0);
  ASSERT_TRUE(child.pidfd.valid());
  started->write.reset();

  auto ready = WaitReadable(started->read.get(), test::kDeadlineMs);
  ASSERT_TRUE(ready.has_value() && *ready) << "the writer never published a frame";

  std::vector<uint8_t> out(kGeometry.frame_bytes());
  int good = 0;
  int torn = 0;
  const uint64_t first_published = reader->published();
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  // Copy until thousands of copies have succeeded *and* the writer has published thousands of
  // frames meanwhile, so copies and writes really overlapped; a deadline bounds it, not a sleep.
  while ((good < 3000 || reader->published() < first_published + 20000) &&
         MonotonicNs() < deadline) {
    auto frame = reader->CopyFrame(out);
    if (!frame) continue;
    if (IsUniform(out, frame->frame_number)) {
      ++good;
    } else if (++torn <= 3) {
      ADD_FAILURE() << "torn copy of frame " << frame->frame_number << " from buffer "
                    << frame->buffer_index;
    }
  }
  const uint64_t last_published = reader->published();

  (void)PidfdSendSignal(child.pidfd.get(), SIGKILL);
  auto exit = test::WaitForExit(child.pidfd.get());
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->si_code, CLD_KILLED)
      << "the writer stopped on its own: status " << exit->si_status;

  EXPECT_EQ(torn, 0);
  EXPECT_GE(good, 3000) << "too few consistent copies before the deadline";
  EXPECT_GE(last_published, first_published + 20000) << "the writer barely ran before the deadline";
}

}  // namespace
}  // namespace sbx
