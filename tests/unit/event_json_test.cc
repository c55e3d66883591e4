// The one event printer sbx-broker and the window share: one line per event, in the JSON form
// scripts parse or the text form people read.
#include "broker/event_json.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "ipc/posix.h"

namespace sbx {
namespace {

std::string ReadAvailable(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

BrokerEvent Exited() {
  BrokerEvent e;
  e.type = EventType::kExited;
  e.t_ms = 1234;
  e.id = 3;
  e.pid = 4321;
  e.page = "sbx://clock";
  e.exit = ExitInfo{ExitStatus::kKilled, SIGKILL, -1, ""};
  return e;
}

// The printer's sink, over a pipe the test reads.
struct PrinterPipe {
  PrinterPipe() {
    if (auto p = MakePipe(/*nonblocking=*/true)) pipe = std::move(*p);
    if (auto l = EventLoop::Create()) loop.emplace(std::move(*l));
    if (loop && pipe.write) {
      if (auto s = OutputSink::Create(*loop, pipe.write.get(), "test")) sink = std::move(*s);
    }
  }
  PipePair pipe;
  std::optional<EventLoop> loop;
  std::unique_ptr<OutputSink> sink;
};

TEST(EventPrinterTest, JsonIsOneLinePerEventInTheEventToJsonForm) {
  PrinterPipe p;
  ASSERT_TRUE(p.sink);
  auto& pipe = p.pipe;
  EventPrinter printer(*p.sink, EventPrinter::Format::kJson);
  printer.OnBrokerEvent(Exited());
  BrokerEvent ready;
  ready.type = EventType::kReady;
  ready.id = 3;
  printer.OnBrokerEvent(ready);
  std::string out = ReadAvailable(pipe.read.get());
  auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(out.substr(0, nl)), EventToJson(Exited()));
  EXPECT_EQ(out.substr(nl + 1), DumpJson(EventToJson(ready)) + "\n");
}

TEST(EventPrinterTest, TextIsTheEventToTextLine) {
  PrinterPipe p;
  ASSERT_TRUE(p.sink);
  EventPrinter printer(*p.sink, EventPrinter::Format::kText);
  printer.OnBrokerEvent(Exited());
  EXPECT_EQ(ReadAvailable(p.pipe.read.get()), EventToText(Exited()) + "\n");
}

// Scripts read `list`; docs/PROTOCOL.md names every field of a row and where it comes from.
TEST(SnapshotJsonTest, EveryFieldOfARowIsDocumented) {
  std::ifstream in(std::string(SBX_SOURCE_DIR) + "/docs/PROTOCOL.md");
  ASSERT_TRUE(in);
  std::stringstream doc;
  doc << in.rdbuf();
  auto at = doc.str().find("## A renderer's row in `list` and `get`");
  ASSERT_NE(at, std::string::npos);
  std::string section = doc.str().substr(at, doc.str().find("\n## ", at + 1) - at);
  RendererSnapshot s;
  s.cgroup_path = "/sys/fs/cgroup/x";
  nlohmann::json row = SnapshotToJson(s);
  // Added by the control server: the sandbox report, and the counters with the inspector on.
  row["sandbox"] = nlohmann::json::object();
  row["ipc"] = nlohmann::json::object();
  for (const auto& [key, value] : row.items()) {
    EXPECT_NE(section.find("| `" + key + "` |"), std::string::npos) << key << " is not documented";
  }
  for (const auto& [key, value] : row["cgroup"].items()) {
    EXPECT_NE(section.find("`" + key + "`"), std::string::npos) << key << " is not documented";
  }
}

}  // namespace
}  // namespace sbx
