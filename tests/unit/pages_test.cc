// The renderer's pages: known URLs make pages, anything else is an error; Render covers every
// pixel of any canvas (down to 1x1) and writes nothing outside it.
#include "renderer/pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace sbx::renderer {
namespace {

const std::vector<std::string>& KnownUrls() {
  static const std::vector<std::string> urls = {
      "sbx://plasma",
      "sbx://clock",
      "about:blank",
      "sbx://text/hello",
      "sbx://text/",
      "sbx://text/Hello%2C%20world%21%0Asecond%20line%0D%0Athird",
      "sbx://text/%zz%4%%E2%82%AC%C3%28%F0%9F%98%80" + std::string(600, 'w'),
      "sbx://text/" + std::string(300, 'a') + "%20" + std::string(300, 'b'),
  };
  return urls;
}

FrameInfo Info(uint64_t frame = 7) {
  return FrameInfo{
      .id = 3, .pid = 4242, .frame = frame, .mono_ns = 123'456'789'000, .wall_s = 1'700'000'000};
}

// A canvas inside a larger zeroed buffer: `pad` bytes after each row and a guard area after the
// last row, so writes outside the canvas are visible.
struct TestCanvas {
  TestCanvas(int w, int h, int pad = 0) : width(w), height(h), stride(w * 4 + pad) {
    bytes.assign(static_cast<size_t>(stride) * static_cast<size_t>(h) + kGuard, 0);
  }
  Canvas canvas() { return Canvas{bytes.data(), width, height, stride}; }
  uint8_t alpha(int x, int y) const {
    return bytes[static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 4 + 3];
  }
  // Counts pixels whose alpha is not 255 (the buffer started all zero, so these were not drawn).
  int UnpaintedPixels() const {
    int n = 0;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) n += alpha(x, y) != 255;
    }
    return n;
  }
  // Counts non-zero bytes in the row padding and the guard area.
  int BytesWrittenOutside() const {
    int n = 0;
    for (int y = 0; y < height; ++y) {
      for (int i = width * 4; i < stride; ++i) n += bytes[static_cast<size_t>(y) * stride + i] != 0;
    }
    for (size_t i = static_cast<size_t>(stride) * height; i < bytes.size(); ++i) n += bytes[i] != 0;
    return n;
  }

  static constexpr size_t kGuard = 64;
  int width, height, stride;
  std::vector<uint8_t> bytes;
};

TEST(PagesTest, MakePageAcceptsEveryKnownUrlAndKeepsItExactly) {
  for (const auto& url : KnownUrls()) {
    auto page = MakePage(url);
    ASSERT_TRUE(page.has_value()) << url << ": " << page.error();
    ASSERT_NE(*page, nullptr);
    EXPECT_EQ((*page)->url(), url);
  }
}

TEST(PagesTest, MakePageRejectsUnknownUrls) {
  for (const std::string url :
       {"", "sbx://", "sbx://nope", "sbx://plasma2", "sbx://plasma/", "SBX://PLASMA",
        " sbx://plasma", "sbx://text", "about:blank2", "http://example.com"}) {
    auto page = MakePage(url);
    ASSERT_FALSE(page.has_value()) << "[" << url << "]";
    EXPECT_EQ(page.error(), "unknown page: " + url);
  }
}

TEST(PagesTest, TheUnknownPageErrorTruncatesTheUrlTo100Characters) {
  const std::string url = "sbx://" + std::string(500, 'q');
  auto page = MakePage(url);
  ASSERT_FALSE(page.has_value());
  EXPECT_EQ(page.error(), "unknown page: " + url.substr(0, 100));
}

struct Size {
  int width, height, pad;
};

class PageRenderTest : public ::testing::TestWithParam<std::tuple<std::string, Size>> {};

TEST_P(PageRenderTest, PaintsEveryPixelOpaqueAndNothingOutsideTheCanvas) {
  const auto& [url, size] = GetParam();
  auto page = MakePage(url);
  ASSERT_TRUE(page.has_value()) << page.error();
  TestCanvas c(size.width, size.height, size.pad);
  (*page)->Render(c.canvas(), Info());
  EXPECT_EQ(c.UnpaintedPixels(), 0);
  EXPECT_EQ(c.BytesWrittenOutside(), 0);
  // A second frame on the same page object (layouts are cached per size) behaves the same.
  (*page)->Render(c.canvas(), Info(8));
  EXPECT_EQ(c.UnpaintedPixels(), 0);
  EXPECT_EQ(c.BytesWrittenOutside(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    PagesAndSizes, PageRenderTest,
    ::testing::Combine(::testing::ValuesIn(KnownUrls()),
                       ::testing::Values(Size{640, 360, 0}, Size{97, 33, 12}, Size{1, 1, 0},
                                         Size{1, 1, 4}, Size{3, 2, 0}, Size{2, 1, 8},
                                         Size{1, 300, 0}, Size{300, 1, 0}, Size{400, 120, 4},
                                         Size{4096, 2, 0})));

TEST(PagesTest, RenderIgnoresInvalidCanvases) {
  for (const auto& url : KnownUrls()) {
    auto page = MakePage(url);
    ASSERT_TRUE(page.has_value());
    std::vector<uint8_t> bytes(4096, 0);
    const Canvas invalid[] = {
        {nullptr, 10, 10, 40},      {bytes.data(), 0, 10, 40},   {bytes.data(), 10, 0, 40},
        {bytes.data(), -5, 10, 40}, {bytes.data(), 10, -5, 40},  {bytes.data(), 10, 10, 39},
        {bytes.data(), 10, 10, 0},  {bytes.data(), 10, 10, -40},
    };
    for (const Canvas& c : invalid) (*page)->Render(c, Info());
    for (uint8_t b : bytes) ASSERT_EQ(b, 0) << url << " wrote through an invalid canvas";
  }
}

TEST(PagesTest, RenderSurvivesExtremeFrameInfo) {
  const FrameInfo extremes[] = {
      {std::numeric_limits<int>::max(), std::numeric_limits<int>::max(),
       std::numeric_limits<uint64_t>::max(), std::numeric_limits<int64_t>::max(),
       std::numeric_limits<int64_t>::max()},
      {std::numeric_limits<int>::min(), -1, 0, std::numeric_limits<int64_t>::min(),
       std::numeric_limits<int64_t>::min()},
      {0, 0, 0, -1, -1},
  };
  for (const auto& url : KnownUrls()) {
    auto page = MakePage(url);
    ASSERT_TRUE(page.has_value());
    for (const FrameInfo& info : extremes) {
      TestCanvas c(160, 90, 4);
      (*page)->Render(c.canvas(), info);
      EXPECT_EQ(c.UnpaintedPixels(), 0) << url;
      EXPECT_EQ(c.BytesWrittenOutside(), 0) << url;
    }
  }
}

TEST(PagesTest, DrawOverlayAloneStaysInsideTheCanvas) {
  for (Size s : {Size{1, 1, 0}, Size{5, 3, 4}, Size{640, 360, 0}}) {
    TestCanvas c(s.width, s.height, s.pad);
    DrawOverlay(c.canvas(), Info(), std::string(3000, '\xff'));
    EXPECT_EQ(c.BytesWrittenOutside(), 0) << s.width << "x" << s.height;
  }
}

}  // namespace
}  // namespace sbx::renderer
