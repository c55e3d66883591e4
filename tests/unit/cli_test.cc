// The shared command line: both "--opt VALUE" and "--opt=VALUE", and a clear error for anything
// it does not understand.
#include "broker/cli.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sbx {
namespace {

Result<CommandLine> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "sbx-broker");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(args.size()), argv.data());
}

// Parses and expects an kInvalidArgument error whose text mentions `mention`.
void ExpectError(std::vector<std::string> args, const std::string& mention) {
  std::string shown;
  for (const auto& a : args) shown += "[" + a + "]";
  auto cl = Parse(std::move(args));
  ASSERT_FALSE(cl.has_value()) << "accepted " << shown;
  EXPECT_EQ(cl.error().code, Errc::kInvalidArgument) << shown;
  EXPECT_NE(cl.error().what.find(mention), std::string::npos) << shown << ": " << cl.error().what;
}

TEST(CliTest, NoArgumentsGiveTheDefaults) {
  auto cl = Parse({});
  ASSERT_TRUE(cl.has_value()) << cl.error().what;
  const BrokerOptions defaults;
  EXPECT_EQ(cl->broker.renderers, defaults.renderers);
  EXPECT_EQ(cl->broker.page, "sbx://plasma");
  EXPECT_EQ(cl->broker.fps, 30u);
  EXPECT_EQ(cl->broker.hang_timeout_ms, 2000);
  EXPECT_TRUE(cl->broker.restart);
  EXPECT_FALSE(cl->broker.kill_hung);
  EXPECT_TRUE(cl->broker.renderer_path.empty());
  EXPECT_TRUE(cl->broker.cmd_prefix.empty());
  EXPECT_TRUE(cl->control_path.empty());
  EXPECT_FALSE(cl->json);
  EXPECT_FALSE(cl->help);
}

TEST(CliTest, SpaceAndEqualsFormsGiveTheSameResult) {
  const std::vector<std::vector<std::string>> forms = {
      {"--renderers", "3", "--page", "sbx://clock", "--control", "/tmp/x/control", "--hang-timeout",
       "500", "--fps", "60", "--renderer-path", "/opt/r", "--renderer-cmd-prefix", "valgrind -q"},
      {"--renderers=3", "--page=sbx://clock", "--control=/tmp/x/control", "--hang-timeout=500",
       "--fps=60", "--renderer-path=/opt/r", "--renderer-cmd-prefix=valgrind -q"},
  };
  for (const auto& args : forms) {
    auto cl = Parse(args);
    ASSERT_TRUE(cl.has_value()) << cl.error().what;
    EXPECT_EQ(cl->broker.renderers, 3);
    EXPECT_EQ(cl->broker.page, "sbx://clock");
    EXPECT_EQ(cl->control_path, "/tmp/x/control");
    EXPECT_EQ(cl->broker.hang_timeout_ms, 500);
    EXPECT_EQ(cl->broker.fps, 60u);
    EXPECT_EQ(cl->broker.renderer_path, "/opt/r");
    EXPECT_EQ(cl->broker.cmd_prefix, (std::vector<std::string>{"valgrind", "-q"}));
  }
}

TEST(CliTest, FlagsSetTheirOptions) {
  EXPECT_FALSE(Parse({}).value().broker.force_queue_fallback);
  auto cl = Parse({"--json", "--kill-hung", "--no-restart", "--heartbeat-pipe"});
  ASSERT_TRUE(cl.has_value()) << cl.error().what;
  EXPECT_TRUE(cl->json);
  EXPECT_TRUE(cl->broker.kill_hung);
  EXPECT_FALSE(cl->broker.restart);
  EXPECT_TRUE(cl->broker.force_queue_fallback);
  EXPECT_TRUE(Parse({"--help"}).value().help);
  EXPECT_TRUE(Parse({"-h"}).value().help);
}

TEST(CliTest, ASpareIsOnlyForTheBuiltInRenderer) {
  EXPECT_TRUE(Parse({}).value().broker.spare);
  EXPECT_FALSE(Parse({"--no-spare"}).value().broker.spare);
  // Another program, or a wrapper, need not know the spare form of the launch.
  EXPECT_FALSE(Parse({"--renderer-path", "/opt/r"}).value().broker.spare);
  EXPECT_FALSE(Parse({"--renderer-cmd-prefix", "strace -f"}).value().broker.spare);
  ExpectError({"--no-spare=1"}, "--no-spare");
}

TEST(CliTest, OnlyTheFirstEqualsSignSeparatesTheValue) {
  auto cl = Parse({"--page=sbx://text/a=b"});
  ASSERT_TRUE(cl.has_value()) << cl.error().what;
  EXPECT_EQ(cl->broker.page, "sbx://text/a=b");
}

TEST(CliTest, TheLastOccurrenceOfAnOptionWins) {
  auto cl = Parse({"--fps", "10", "--fps=20"});
  ASSERT_TRUE(cl.has_value()) << cl.error().what;
  EXPECT_EQ(cl->broker.fps, 20u);
}

TEST(CliTest, TheRangeEndsAreAccepted) {
  auto low = Parse({"--renderers=0", "--fps=1", "--hang-timeout=10"});
  ASSERT_TRUE(low.has_value()) << low.error().what;
  EXPECT_EQ(low->broker.fps, 1u);
  auto high = Parse(
      {"--renderers=100000", "--max-renderers=100000", "--fps=240", "--hang-timeout=3600000"});
  ASSERT_TRUE(high.has_value()) << high.error().what;
  EXPECT_EQ(high->broker.renderers, 100000);
  EXPECT_EQ(high->broker.max_renderers, 100000);
  EXPECT_EQ(high->broker.hang_timeout_ms, 3'600'000);
}

TEST(CliTest, RejectsUnknownOptions) {
  ExpectError({"--bogus"}, "--bogus");
  ExpectError({"--bogus=1"}, "--bogus");
  ExpectError({"-x"}, "-x");
  ExpectError({"positional"}, "positional");
  ExpectError({"--fps", "30", "extra"}, "extra");
  ExpectError({"--JSON"}, "--JSON");
  ExpectError({"-h=1"}, "-h=1");
}

TEST(CliTest, RejectsBadNumbers) {
  ExpectError({"--renderers", "abc"}, "--renderers");
  ExpectError({"--renderers", "-1"}, "--renderers");
  ExpectError({"--renderers", "100001"}, "--renderers");
  ExpectError({"--max-renderers", "0"}, "--max-renderers");
  ExpectError({"--max-renderers", "100001"}, "--max-renderers");
  ExpectError({"--renderers", "3x"}, "--renderers");
  ExpectError({"--renderers", " 3"}, "--renderers");
  ExpectError({"--renderers", "+3"}, "--renderers");
  ExpectError({"--renderers", "99999999999999999999"}, "--renderers");
  ExpectError({"--renderers="}, "--renderers");
  ExpectError({"--fps", "0"}, "--fps");
  ExpectError({"--fps", "241"}, "--fps");
  ExpectError({"--fps=1.5"}, "--fps");
  ExpectError({"--hang-timeout", "9"}, "--hang-timeout");
  ExpectError({"--hang-timeout", "3600001"}, "--hang-timeout");
}

TEST(CliTest, RejectsMissingValues) {
  for (const char* opt : {"--renderers", "--page", "--control", "--hang-timeout", "--fps",
                          "--renderer-path", "--renderer-cmd-prefix"}) {
    ExpectError({opt}, opt);
    ExpectError({"--json", opt}, opt);
  }
}

TEST(CliTest, RejectsEmptyOrInvalidStringValues) {
  ExpectError({"--page="}, "--page");
  ExpectError({"--page", "has space"}, "--page");
  ExpectError({"--page", "caf\xc3\xa9"}, "--page");
  ExpectError({"--control="}, "--control");
  ExpectError({"--renderer-path", ""}, "--renderer-path");
}

TEST(CliTest, RejectsAFlagGivenAValue) {
  ExpectError({"--json=1"}, "--json");
  ExpectError({"--json="}, "--json");
  ExpectError({"--kill-hung=yes"}, "--kill-hung");
  ExpectError({"--no-restart=false"}, "--no-restart");
  ExpectError({"--heartbeat-pipe=1"}, "--heartbeat-pipe");
}

TEST(CliTest, RejectsHelpGivenAValue) { ExpectError({"--help=no"}, "--help"); }

TEST(CliTest, HelpTextMentionsEveryOption) {
  const std::string help = CommandLineHelp();
  for (const char* opt :
       {"--renderers", "--max-renderers", "--page", "--control", "--json", "--hang-timeout",
        "--kill-hung", "--no-restart", "--no-sandbox", "--heartbeat-pipe", "--fps",
        "--renderer-path", "--renderer-cmd-prefix", "--no-spare", "--help"}) {
    EXPECT_NE(help.find(opt), std::string::npos) << opt;
  }
}

}  // namespace
}  // namespace sbx
