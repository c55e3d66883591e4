// The launch contract both ends share: what the broker writes, the renderer reads back.
#include "ipc/launch_args.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "ipc/protocol.h"

namespace sbx {

// Names the variant in test output instead of dumping its bytes.
void PrintTo(const LaunchArgs& a, std::ostream* os) {
  for (const auto& arg : ToArgv(a)) *os << arg << " ";
}

namespace {

Result<LaunchArgs> Parse(const std::vector<std::string>& argv) {
  std::vector<const char*> raw;
  for (const auto& a : argv) raw.push_back(a.c_str());
  return ParseLaunchArgs(raw);
}

class LaunchArgsRoundTrip : public ::testing::TestWithParam<LaunchArgs> {};

TEST_P(LaunchArgsRoundTrip, ParsesBackToWhatWasBuilt) {
  auto parsed = Parse(ToArgv(GetParam()));
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_EQ(*parsed, GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Variants, LaunchArgsRoundTrip,
    ::testing::Values(LaunchArgs{1, "sbx://plasma", 30, Heartbeat::kQueue, SandboxLevel::kFull,
                                 "/mnt"},
                      LaunchArgs{7, "sbx://text/hello%20world", 1, Heartbeat::kPipe,
                                 SandboxLevel::kNoNamespaces, ""},
                      LaunchArgs{0, "about:blank", 240, Heartbeat::kQueue, SandboxLevel::kOff, ""},
                      LaunchArgs{2, "sbx://clock", 30, Heartbeat::kQueue, SandboxLevel::kFull,
                                 "/mnt", protocol::Visibility::kHidden},
                      LaunchArgs{-1, "", 60, Heartbeat::kPipe, SandboxLevel::kFull, "/mnt",
                                 protocol::Visibility::kVisible, true}));

TEST(LaunchArgsTest, ASpareHasNeitherIdNorPage) {
  LaunchArgs spare{-1, "", 30, Heartbeat::kQueue, SandboxLevel::kOff, ""};
  spare.spare = true;
  auto argv = ToArgv(spare);
  ASSERT_GE(argv.size(), 2u);
  EXPECT_EQ(argv[0], "--type=renderer");
  EXPECT_EQ(argv[1], "--spare");
  for (const auto& a : argv) {
    EXPECT_FALSE(a.starts_with("--id=")) << a;
    EXPECT_FALSE(a.starts_with("--page=")) << a;
  }
}

TEST(LaunchArgsTest, TypeComesFirstSoPsShowsWhatTheProcessIs) {
  auto argv = ToArgv({3, "sbx://clock", 30, Heartbeat::kQueue, SandboxLevel::kOff, ""});
  ASSERT_FALSE(argv.empty());
  EXPECT_EQ(argv[0], "--type=renderer");
  EXPECT_EQ(argv[2], "--page=sbx://clock");
}

TEST(LaunchArgsTest, RejectsWhatTheBrokerNeverWrites) {
  const std::vector<std::string> ok = {"--type=renderer", "--id=1", "--page=sbx://clock"};
  ASSERT_TRUE(Parse(ok));
  ASSERT_TRUE(Parse({"--type=renderer", "--spare"}));
  const std::vector<std::vector<std::string>> bad = {
      {"--id=1", "--page=sbx://clock"},                        // no type
      {"--type=gpu", "--id=1", "--page=sbx://clock"},          // another type
      {"--type=renderer", "--page=sbx://clock"},               // no id
      {"--type=renderer", "--id=1"},                           // no page
      {"--type=renderer", "--id=-1", "--page=sbx://clock"},    // negative id
      {"--type=renderer", "--id=1x", "--page=sbx://clock"},    // trailing junk
      {"--type=renderer", "--id=1", "--page=has space"},       // not a URL
      {"--type=renderer", "--id=1", "--page=a", "--fps=0"},    // fps out of range
      {"--type=renderer", "--id=1", "--page=a", "--fps=241"},  // fps out of range
      {"--type=renderer", "--id=1", "--page=a", "--heartbeat=x"},
      {"--type=renderer", "--id=1", "--page=a", "--sandbox=most"},
      {"--type=renderer", "--id=1", "--page=a", "--sandbox-root=relative"},
      {"--type=renderer", "--id=1", "--page=a", "--visibility=occluded"},
      {"--type=renderer", "--id=1", "--page=a", "--verbose"},  // unknown
      {"--type=renderer", "--spare", "--id=1"},                // a spare has no id yet
      {"--type=renderer", "--spare", "--page=sbx://clock"},    // nor a page
      {"--type=renderer", "--id=1", "--page=a", "--spare"},    // in either order
      {"--type=renderer", "--spare=1"},                        // a flag, with no value
      {"--spare"},                                             // no type
  };
  for (const auto& argv : bad) {
    std::string joined;
    for (const auto& a : argv) joined += a + " ";
    EXPECT_FALSE(Parse(argv)) << joined;
  }
}

TEST(LaunchArgsTest, FdMapPutsEachDescriptorAtItsDocumentedNumber) {
  auto with_queue = FdMap({10, 11, 12, 13});
  std::vector<std::pair<int, int>> expected = {{10, protocol::kControlInFd},
                                               {11, protocol::kControlOutFd},
                                               {12, protocol::kFrameFd},
                                               {13, protocol::kHeartbeatFd}};
  EXPECT_EQ(with_queue, expected);
  expected.pop_back();
  EXPECT_EQ(FdMap({10, 11, 12, -1}), expected);
  // What the renderer checks is what the broker maps.
  std::vector<int> numbers;
  for (const auto& [from, to] : with_queue) numbers.push_back(to);
  EXPECT_EQ(ExpectedFds(Heartbeat::kQueue), numbers);
  numbers.pop_back();
  EXPECT_EQ(ExpectedFds(Heartbeat::kPipe), numbers);
}

}  // namespace
}  // namespace sbx
