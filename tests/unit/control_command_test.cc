// Control commands are untrusted input: every malformed line gets exactly one {"error": ...}
// reply that serialises, and nothing else happens. The broker is real but has no renderers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/control_server.h"
#include "broker/event_json.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using nlohmann::json;

class ControlCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions options;
    options.renderers = 0;
    // Nothing is ever launched here: no renderer (a path that cannot exist makes sure of it),
    // and no sandbox namespace holder either, so the test needs no user namespaces.
    options.renderer_path = "/nonexistent/sbx-unit-renderer";
    options.sandbox = false;
    auto broker = Broker::Create(options);
    ASSERT_TRUE(broker.has_value()) << broker.error().ToString();
    broker_ = std::move(*broker);
  }

  // Runs one line; expects exactly one reply, one line of valid JSON (`list` and `inspect` send
  // it from the loop, once the broker's worker thread has read the processes).
  json Run(std::string_view line) {
    std::vector<std::string> replies;
    ExecuteCommand(*broker_, line,
                   [&replies](std::string reply) { replies.push_back(std::move(reply)); });
    const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
    while (replies.empty() && MonotonicNs() < deadline) (void)broker_->loop().Dispatch(10);
    EXPECT_EQ(replies.size(), 1u) << "line: " << line;
    if (replies.empty()) return json();
    EXPECT_EQ(replies[0].find('\n'), std::string::npos) << replies[0];
    json reply = json::parse(replies[0], nullptr, false);
    EXPECT_FALSE(reply.is_discarded()) << replies[0];
    return reply;
  }

  // Runs the line in a forked copy of this process first, so that a command that crashes the
  // broker fails one test instead of taking the whole binary down.
  bool RunsWithoutCrashing(std::string_view line) {
    test::Child child =
        test::ForkChild([this, line] { ExecuteCommand(*broker_, line, [](std::string) {}); });
    auto exit = test::WaitForExit(child.pidfd.get());
    return exit && exit->si_code == CLD_EXITED && exit->si_status == 0;
  }

  std::unique_ptr<Broker> broker_;
};

class ControlMalformedCommandTest : public ControlCommandTest,
                                    public ::testing::WithParamInterface<std::string> {};

TEST_P(ControlMalformedCommandTest, RepliesWithOneErrorObjectAndChangesNothing) {
  ASSERT_TRUE(RunsWithoutCrashing(GetParam())) << "ExecuteCommand crashed on this line";
  json reply = Run(GetParam());
  ASSERT_TRUE(reply.is_object()) << reply.dump(-1, ' ', false, json::error_handler_t::replace);
  ASSERT_TRUE(reply.contains("error")) << DumpJson(reply);
  EXPECT_TRUE(reply["error"].is_string());
  EXPECT_FALSE(reply.contains("ok"));
  EXPECT_TRUE(broker_->List().empty());
  EXPECT_EQ(broker_->Stats().spawns, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Lines, ControlMalformedCommandTest,
    ::testing::Values("", " ", "\t\t", "bogus", "LIST", "close", "close abc", "close -1", "close 0",
                      "close 99999", "close 1 2", "close 2147483648", "close 1.5", "kill", "kill x",
                      "kill 1 SIGNOPE", "kill 1 0", "kill 1 65", "kill 1 KILL extra", "kill 1 KILL",
                      "crash 1 explode", "crash 1", "crash x segv", "crash 1 segv", "hang",
                      "hang 1", "oom x", "oom 1", "bad-ipc 1", "bad-ipc", "reload 1", "reload",
                      "navigate 1", "navigate 1 sbx://plasma", "navigate x sbx://plasma",
                      "navigate 1 sbx://plasma extra", "fps", "fps 1 9999", "fps 1 0", "fps 1 abc",
                      "fps 1 -5", "fps 1", "fps 1 30", "ping", "ping 1", "ping 1 2", "sandbox",
                      "sandbox x", "sandbox 1", "crash 1 escape", "list extra", "stats extra",
                      "spawn a b", std::string("spawn \x01\x02", 8), "spawn caf\xc3\xa9",
                      // A 5000-byte garbage line, and 5000 bytes of invalid UTF-8.
                      std::string(5000, 'x'),
                      std::string(2500, '\xff') + " " + std::string(2499, '\x80'),
                      // Invalid UTF-8 wherever a word is echoed back.
                      "\xff\xfe", "\xc3\x28 1", "kill 1 \xc3\x28", "crash 1 \xff\xfe\xfd",
                      std::string(63, 'a') + "\xc3\xa9", std::string("close\0 1", 8)),
    [](const ::testing::TestParamInfo<std::string>& info) {
      // "L<index>_" and the line's first letters, digits and spaces (as underscores).
      std::string name = "L" + std::to_string(info.index) + "_";
      for (char c : info.param.substr(0, 24)) {
        if (std::isalnum(static_cast<unsigned char>(c))) name += c;
        if (c == ' ') name += '_';
      }
      return name;
    });

TEST_F(ControlCommandTest, ErrorsTellUsageFromUnknownIdsAndBadArguments) {
  auto error = [this](std::string_view line) {
    json reply = Run(line);
    return reply.contains("error") ? reply["error"].get<std::string>() : std::string("<none>");
  };
  for (const char* line :
       {"close", "close abc", "close -1", "close 0", "close 1 2", "close 1abc", "kill", "kill 0",
        "crash 1", "navigate 1", "fps 1 -5", "fps 1 30abc", "ping 0", "hang 1 2", "list extra"}) {
    EXPECT_TRUE(error(line).starts_with("usage: ")) << line << " -> " << error(line);
  }
  for (const char* line : {"close 99999", "kill 7 KILL", "crash 1 segv", "navigate 3 about:blank",
                           "fps 1 30", "ping 1", "reload 2"}) {
    EXPECT_NE(error(line).find("no renderer"), std::string::npos) << line << " -> " << error(line);
  }
  EXPECT_TRUE(error("kill 1 SIGNOPE").starts_with("unknown signal: SIGNOPE"))
      << error("kill 1 SIGNOPE");
  EXPECT_TRUE(error("crash 1 explode").starts_with("unknown crash kind: explode"));
  EXPECT_TRUE(error("bogus").starts_with("unknown command: bogus"));
  EXPECT_TRUE(error("fps 1 9999").starts_with("fps out of range")) << error("fps 1 9999");
  EXPECT_TRUE(error("spawn has\x01x").starts_with("invalid url")) << error("spawn has\x01x");
}

// Each error about a value says which values would have been accepted.
TEST_F(ControlCommandTest, ErrorsAboutAValueSayWhatIsValid) {
  auto error = [this](std::string_view line) {
    json reply = Run(line);
    return reply.contains("error") ? reply["error"].get<std::string>() : std::string("<none>");
  };
  EXPECT_EQ(error("fps 1 9999"), "fps out of range: 9999 (1-240)");
  EXPECT_EQ(error("fps 1 0"), "fps out of range: 0 (1-240)");
  // Too large for any integer: still a number, so still out of range, not a usage error.
  EXPECT_EQ(error("fps 1 99999999999999999999"), "fps out of range: 99999999999999999999 (1-240)");

  std::string sig = error("kill 1 SIGNOPE");
  EXPECT_TRUE(sig.starts_with("unknown signal: SIGNOPE (a number 1-64")) << sig;
  for (const char* name : {" HUP ", " KILL ", " SEGV ", " TERM ", " CONT ", " STOP ", " SYS)"}) {
    EXPECT_NE(sig.find(name), std::string::npos) << name << " missing from: " << sig;
  }
  EXPECT_TRUE(error("kill 1 65").starts_with("unknown signal: 65 (a number 1-64")) << sig;

  const std::string pages =
      "the pages are sbx://plasma, sbx://clock, sbx://text/MESSAGE and about:blank";
  for (const char* line : {"spawn has\x01x", "spawn caf\xc3\xa9", "navigate 1 a\x7f"}) {
    std::string e = error(line);
    EXPECT_TRUE(e.starts_with("invalid url: ")) << e;
    EXPECT_NE(e.find(pages), std::string::npos) << e;
  }
  EXPECT_NE(error("spawn has\x01x").find("a space or control character at offset 3"),
            std::string::npos);
  EXPECT_NE(error("spawn caf\xc3\xa9").find("a non-ASCII byte at offset 3"), std::string::npos);
  EXPECT_NE(error("spawn " + std::string(2049, 'a')).find("longer than 2048 bytes"),
            std::string::npos);
}

TEST_F(ControlCommandTest, HelpIsTheSameObjectSbxCtlPrintsWithoutABroker) {
  EXPECT_EQ(Run("help"), HelpJson());
}

TEST_F(ControlCommandTest, AnUnknownCommandIsEchoedOnlyInPart) {
  json reply = Run(std::string(5000, 'z'));
  ASSERT_TRUE(reply.contains("error"));
  EXPECT_LT(reply["error"].get<std::string>().size(), 200u);
}

TEST_F(ControlCommandTest, FpsRejectsTrailingGarbageAfterTheNumber) {
  // "fps 1 30abc" is a usage error, like "close 1abc"; with no renderer 1 a parsed 30 would
  // have answered "no renderer 1" instead.
  EXPECT_EQ(Run("close 1abc")["error"], "usage: close ID");
  EXPECT_EQ(Run("fps 1 30abc")["error"], "usage: fps ID N");
}

TEST_F(ControlCommandTest, HelpListsEveryCommand) {
  json reply = Run("help");
  ASSERT_TRUE(reply.contains("commands")) << DumpJson(reply);
  ASSERT_TRUE(reply["commands"].is_array());
  std::vector<std::string> names;
  for (const auto& line : reply["commands"]) {
    std::string s = line.get<std::string>();
    names.push_back(s.substr(0, s.find(' ')));
  }
  for (const char* cmd : {"list", "spawn", "close", "kill", "crash", "hang", "oom", "bad-ipc",
                          "navigate", "reload", "fps", "ping", "stats", "help"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), cmd), names.end()) << cmd;
  }
}

TEST_F(ControlCommandTest, ListWithNoRenderersIsAnEmptyArray) {
  EXPECT_EQ(Run("list"), json::parse(R"({"renderers":[]})"));
  EXPECT_EQ(Run("  list\t"), json::parse(R"({"renderers":[]})"));
}

TEST_F(ControlCommandTest, StatsHasTheDocumentedKeys) {
  json reply = Run("stats");
  ASSERT_TRUE(reply.is_object());
  for (const char* key : {"renderers", "running", "spawns", "restarts", "exits", "bad_messages",
                          "messages_in", "heartbeats", "uptime_ms"}) {
    ASSERT_TRUE(reply.contains(key)) << key << " missing from " << DumpJson(reply);
    EXPECT_TRUE(reply[key].is_number_integer()) << key;
  }
  // Every renderer's channels added up, and the control socket's own traffic.
  ASSERT_TRUE(reply.contains("ipc") && reply["ipc"].is_object()) << DumpJson(reply);
  EXPECT_TRUE(reply["ipc"].contains("mq") && reply["ipc"].contains("control")) << DumpJson(reply);
  // The spare renderer (docs/PROTOCOL.md, "The spare in stats"); this broker runs none yet.
  ASSERT_TRUE(reply.contains("spare") && reply["spare"].is_object()) << DumpJson(reply);
  for (const char* key : {"enabled", "pid", "state", "cgroup", "started", "taken", "lost"}) {
    EXPECT_TRUE(reply["spare"].contains(key)) << key << " missing from " << DumpJson(reply);
  }
  EXPECT_EQ(reply["spare"]["pid"], 0);
  EXPECT_EQ(reply.size(), 12u) << DumpJson(reply);
  EXPECT_EQ(reply["renderers"], 0);
  EXPECT_EQ(reply["running"], 0);
  EXPECT_EQ(reply["spawns"], 0);
  EXPECT_GE(reply["uptime_ms"].get<int64_t>(), 0);
}

TEST_F(ControlCommandTest, DumpJsonReplacesInvalidUtf8InsteadOfThrowing) {
  json j = {{"error", std::string("bad \xff\xfe bytes")}};
  EXPECT_THROW((void)j.dump(), json::type_error);  // what DumpJson exists to avoid
  std::string text;
  ASSERT_NO_THROW(text = DumpJson(j));
  json back = json::parse(text);
  EXPECT_EQ(back["error"].get<std::string>().substr(0, 4), "bad ");
}

}  // namespace
}  // namespace sbx
