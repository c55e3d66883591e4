// The one event printer sbx-broker and the window share: one line per event, in the JSON form
// scripts parse or the text form people read.
#include "broker/event_json.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
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

TEST(EventPrinterTest, JsonIsOneLinePerEventInTheEventToJsonForm) {
  auto pipe = MakePipe(/*nonblocking=*/true);
  ASSERT_TRUE(pipe);
  EventPrinter printer(pipe->write.get(), EventPrinter::Format::kJson);
  printer.OnBrokerEvent(Exited());
  BrokerEvent ready;
  ready.type = EventType::kReady;
  ready.id = 3;
  printer.OnBrokerEvent(ready);
  std::string out = ReadAvailable(pipe->read.get());
  auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(out.substr(0, nl)), EventToJson(Exited()));
  EXPECT_EQ(out.substr(nl + 1), DumpJson(EventToJson(ready)) + "\n");
}

TEST(EventPrinterTest, TextIsTheEventToTextLine) {
  auto pipe = MakePipe(/*nonblocking=*/true);
  ASSERT_TRUE(pipe);
  EventPrinter printer(pipe->write.get(), EventPrinter::Format::kText);
  printer.OnBrokerEvent(Exited());
  EXPECT_EQ(ReadAvailable(pipe->read.get()), EventToText(Exited()) + "\n");
}

}  // namespace
}  // namespace sbx
