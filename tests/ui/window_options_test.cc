// The window's command line: sbx-broker's options unchanged, plus the window's own.
#include "ui/window_options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "ui/latency_probe.h"

namespace sbx::ui {
namespace {

Result<WindowOptions> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "sbx");
  return ParseWindowCommandLine(args);
}

TEST(WindowOptionsTest, BrokerOptionsMeanWhatTheyMeanForSbxBroker) {
  auto w = Parse({"--renderers", "4", "--page=sbx://clock", "--control", "/tmp/x.sock",
                  "--hang-timeout", "750", "--kill-hung", "--no-restart", "--renderer-path",
                  "/bin/r", "--renderer-cmd-prefix", "valgrind -q", "--json", "--fps", "12"});
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w->cl.broker.renderers, 4);
  EXPECT_EQ(w->cl.broker.page, "sbx://clock");
  EXPECT_EQ(w->cl.control_path, "/tmp/x.sock");
  EXPECT_EQ(w->cl.broker.hang_timeout_ms, 750);
  EXPECT_TRUE(w->cl.broker.kill_hung);
  EXPECT_FALSE(w->cl.broker.restart);
  EXPECT_EQ(w->cl.broker.renderer_path, "/bin/r");
  EXPECT_EQ(w->cl.broker.cmd_prefix, (std::vector<std::string>{"valgrind", "-q"}));
  EXPECT_TRUE(w->cl.json);
  EXPECT_EQ(w->cl.broker.fps, 12u);
}

TEST(WindowOptionsTest, WindowOptionsAreTakenOutBeforeTheBrokerParserSeesThem) {
  auto w = Parse({"--spawn", "sbx://clock", "--spawn=about:blank", "--stats", "--screenshot",
                  "out.png", "--screenshot-after-ms=500", "--measure-latency", "2.5", "--size",
                  "1600x1000", "--renderers=0"});
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w->spawn, (std::vector<std::string>{"sbx://clock", "about:blank"}));
  EXPECT_TRUE(w->stats);
  EXPECT_EQ(w->screenshot, "out.png");
  EXPECT_EQ(w->screenshot_after_ms, 500);
  EXPECT_DOUBLE_EQ(w->measure_latency_s, 2.5);
  EXPECT_EQ(w->width, 1600);
  EXPECT_EQ(w->height, 1000);
  EXPECT_EQ(w->cl.broker.renderers, 0);
}

TEST(WindowOptionsTest, WithoutRenderersOrSpawnTheWindowOpensOne) {
  auto w = Parse({});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->cl.broker.renderers, 1);
  auto spawn_only = Parse({"--spawn", "sbx://clock"});
  ASSERT_TRUE(spawn_only);
  EXPECT_EQ(spawn_only->cl.broker.renderers, 0);
}

TEST(WindowOptionsTest, BadValuesAreErrorsNamingTheOption) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--spawn", "not a url"},
                                                                {"--spawn"},
                                                                {"--size", "10x10"},
                                                                {"--size", "wide"},
                                                                {"--measure-latency", "0"},
                                                                {"--screenshot-after-ms", "-1"},
                                                                {"--stats=yes"},
                                                                {"--bogus"},
                                                                {"--renderers", "many"}}) {
    auto w = Parse(args);
    ASSERT_FALSE(w) << args[0];
    std::string name = args[0].substr(0, args[0].find('='));
    EXPECT_NE(w.error().what.find(name), std::string::npos) << w.error().what;
  }
}

TEST(WindowOptionsTest, DisplayDetection) {
  const char* none[] = {"sbx"};
  const char* platform[] = {"sbx", "-platform", "offscreen"};
  std::string saved[3];
  const char* names[] = {"QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"};
  for (int i = 0; i < 3; ++i) {
    const char* v = std::getenv(names[i]);
    saved[i] = v != nullptr ? v : "";
    ::unsetenv(names[i]);
  }
  EXPECT_FALSE(HasDisplay(1, none));
  EXPECT_TRUE(HasDisplay(3, platform));
  ::setenv("DISPLAY", ":99", 1);
  EXPECT_TRUE(HasDisplay(1, none));
  ::unsetenv("DISPLAY");
  for (int i = 0; i < 3; ++i) {
    if (!saved[i].empty()) ::setenv(names[i], saved[i].c_str(), 1);
  }
  std::string msg = NoDisplayMessage();
  EXPECT_NE(msg.find("sbx-broker"), std::string::npos);
  EXPECT_NE(msg.find("QT_QPA_PLATFORM=offscreen"), std::string::npos);
}

TEST(LatencySummaryTest, Percentiles) {
  std::vector<int64_t> v;
  for (int i = 1; i <= 100; ++i) v.push_back(int64_t{i} * 1'000'000);  // 1..100 ms
  LatencySummary s = Summarize(v);
  EXPECT_EQ(s.samples, 100u);
  EXPECT_NEAR(s.p50_ms, 50.5, 0.6);
  EXPECT_NEAR(s.p99_ms, 99, 1.01);
  EXPECT_DOUBLE_EQ(s.max_ms, 100);
  EXPECT_EQ(Summarize({}).samples, 0u);
}

}  // namespace
}  // namespace sbx::ui
