// sbx-ctl's forms for a person at a terminal: the list as a table, help as text.
#include "broker/ctl_output.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/control_server.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using nlohmann::json;

// Two renderers as `list` reports them: one running, one restarting after a crash.
json SampleList() {
  return json::parse(R"({"renderers":[
    {"id":1,"pid":4242,"state":"running","page":"sbx://plasma","restarts":0,"uptime_ms":75000,
     "frames":10,"fps":30,"heartbeat":"mq","heartbeat_age_ms":12,"cpu_ms":1.5,"render_us":300,
     "messages_in":20,"last_exit":{},
     "sandbox":{"level":"full","adequate":true,"verdict":"confined"}},
    {"id":12,"pid":0,"state":"restarting","page":"sbx://text/hello","restarts":3,
     "uptime_ms":900,"frames":0,"fps":30,"heartbeat":"pipe","heartbeat_age_ms":-1,"cpu_ms":0,
     "render_us":0,"messages_in":0,"last_exit":{"status":"crashed","signal":"SIGSEGV"},
     "sandbox":{"level":"full","verdict":"no live process"}}]})");
}

TEST(CtlOutputTest, ListIsATableWithAHeaderAndOneAlignedRowPerRenderer) {
  auto lines = test::SplitLines(FormatRendererTable(SampleList()));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines[0].starts_with("ID  PID   STATE       PAGE  ")) << lines[0];
  for (const char* column : {"UPTIME", "FPS", "RESTARTS", "HEARTBEAT", "LAST EXIT", "SANDBOX"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_TRUE(lines[1].starts_with("1   4242  running     sbx://plasma")) << lines[1];
  EXPECT_NE(lines[1].find("1m15s"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("mq 12ms ago"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("full (ok)"), std::string::npos) << lines[1];
  EXPECT_TRUE(lines[2].starts_with("12  0     restarting  sbx://text/hello")) << lines[2];
  EXPECT_NE(lines[2].find("crashed SIGSEGV"), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("full (no live process)"), std::string::npos) << lines[2];
  // Every column starts at the same offset on every line.
  size_t state = lines[0].find("STATE");
  EXPECT_EQ(lines[1].find("running"), state);
  EXPECT_EQ(lines[2].find("restarting"), state);
}

TEST(CtlOutputTest, AnEmptyListIsTheHeaderAlone) {
  auto lines = test::SplitLines(FormatRendererTable(json::parse(R"({"renderers":[]})")));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].starts_with("ID  PID  STATE")) << lines[0];
}

TEST(CtlOutputTest, ACellNeverCarriesATerminalEscapeAndALongPageIsCut) {
  json list = SampleList();
  list["renderers"][0]["page"] = "sbx://text/\x1b]0;pwned\x07" + std::string(100, 'x');
  list["renderers"][0]["state"] = 42;  // not a string: shown, not trusted
  std::string table = FormatRendererTable(list);
  EXPECT_EQ(table.find('\x1b'), std::string::npos);
  EXPECT_EQ(table.find('\x07'), std::string::npos);
  EXPECT_NE(table.find("sbx://text/?]0;pwned?xxxxxxxx..."), std::string::npos) << table;
}

TEST(CtlOutputTest, HelpListsEveryCommandOnItsOwnLine) {
  const json help = HelpJson();
  std::string text = FormatHelp(help);
  EXPECT_TRUE(text.starts_with("usage: sbx-ctl")) << text;
  for (const auto& c : help["commands"]) {
    EXPECT_NE(text.find("\n  " + c.get<std::string>() + "\n"), std::string::npos) << c;
  }
}

TEST(CtlOutputTest, InspectIsATreeWithEachFdBelowItsProcess) {
  const json reply = json::parse(R"j({"process": {"role": "broker", "pid": 10, "nspid": [10],
    "state": "S", "thread_count": 1, "threads": [{"name": "sbx"}], "fd_count": 20, "fds": [],
    "children": [{"role": "init", "id": 1, "pid": 12, "nspid": [12, 1], "state": "S",
      "children": [{"role": "renderer", "id": 1, "pid": 13, "nspid": [13, 2], "state": "T",
        "thread_count": 2, "threads": [{"name": "sbx-renderer"}, {"name": "\u001b[2J"}],
        "fds": [{"fd": 5, "label": "frames memfd", "target": "/memfd:sbx-frames (deleted)",
                 "seals": ["seal", "shrink"]}], "children": []}]}]}})j");
  std::string text = FormatProcessTree(reply);
  EXPECT_TRUE(text.starts_with("broker ")) << text;
  EXPECT_NE(text.find("\n  init 1 "), std::string::npos) << text;
  EXPECT_NE(text.find("\n    renderer 1 "), std::string::npos) << text;
  EXPECT_NE(text.find("(2 inside)  T"), std::string::npos) << text;
  EXPECT_NE(text.find("threads 2: sbx-renderer, ?[2J"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("\n        fd 5  frames memfd  (/memfd:sbx-frames (deleted))  sealed: seal, "
                      "shrink\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(FormatProcessTree(json::object()), "");
}

}  // namespace
}  // namespace sbx
