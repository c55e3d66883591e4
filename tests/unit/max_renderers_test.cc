// The default bound on renderers: whichever of memory, the process limit and the descriptor
// limit holds fewest, named in the reason the errors cite; and the broker's own descriptor limit,
// raised to its hard limit so that Debian's default soft limit does not decide the bound.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdint>

#include "broker/broker.h"

namespace sbx {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(MaxRenderersTest, TheTightestBoundDecidesAndIsNamed) {
  RendererBound none = DefaultMaxRenderers(0, 2 * kMiB, RLIM_INFINITY, RLIM_INFINITY);
  EXPECT_EQ(none.max, kMaxRenderersCap);

  // 1024 descriptors, Debian's default soft limit: (1024 - 256) / 10 = 76 renderers.
  RendererBound fds = DefaultMaxRenderers(0, 2 * kMiB, RLIM_INFINITY, 1024);
  EXPECT_EQ(fds.max, (1024 - kFdsReserved) / kFdsPerRenderer);
  EXPECT_NE(fds.why.find("RLIMIT_NOFILE (1024"), std::string::npos) << fds.why;

  // A tighter process limit wins over the descriptors.
  RendererBound procs = DefaultMaxRenderers(0, 2 * kMiB, 80, 1024);
  EXPECT_EQ(procs.max, 80 / 2 / kTasksPerRenderer);
  EXPECT_NE(procs.why.find("RLIMIT_NPROC"), std::string::npos) << procs.why;

  // Fewer descriptors than the reserve still allow one renderer.
  EXPECT_EQ(DefaultMaxRenderers(0, 2 * kMiB, RLIM_INFINITY, 100).max, 1);
}

TEST(MaxRenderersTest, TheSoftDescriptorLimitIsRaisedToTheHardOne) {
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  if (before.rlim_max == RLIM_INFINITY || before.rlim_max < 512) {
    GTEST_SKIP() << "needs a finite hard RLIMIT_NOFILE of at least 512";
  }
  rlimit low{256, before.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  uint64_t now = RaiseFdLimit();
  rlimit after{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(now, after.rlim_cur);
  EXPECT_EQ(after.rlim_max, before.rlim_max);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &before), 0);
}

}  // namespace
}  // namespace sbx
