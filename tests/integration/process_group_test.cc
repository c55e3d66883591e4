// Ctrl+C in a terminal sends SIGINT to the whole foreground process group. It must reach the
// broker alone: renderers, their inits and the namespace holder live in process groups of their
// own, so the broker closes them in order (SIGTERM) and none dies of the terminal's SIGINT.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "broker/child_process.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"

extern char** environ;

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Reads a pipe until EOF or the deadline, a line at a time.
struct LineReader {
  UniqueFd fd;
  std::string buffer;
  bool eof = false;

  // Reads what arrives within timeout_ms; false at EOF or on an error.
  bool ReadSomeWithin(int timeout_ms) {
    auto ready = WaitReadable(fd.get(), timeout_ms);
    if (!ready || !*ready) return !eof;
    char chunk[4096];
    auto n = ReadSome(fd.get(), {reinterpret_cast<uint8_t*>(chunk), sizeof chunk});
    if (!n || *n == 0) return !(eof = true);
    buffer.append(chunk, *n);
    return true;
  }
};

std::vector<json> Events(const std::string& text) {
  std::vector<json> out;
  size_t at = 0, nl;
  while ((nl = text.find('\n', at)) != std::string::npos) {
    auto j = json::parse(text.substr(at, nl - at), nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
    at = nl + 1;
  }
  return out;
}

int Count(const std::vector<json>& events, const std::string& name) {
  int n = 0;
  for (const auto& e : events) n += e.value("event", "") == name;
  return n;
}

TEST(ProcessGroupTest, CtrlCReachesTheBrokerAloneWhichClosesEveryRendererInOrder) {
  auto out = MakePipe(false);
  auto err = MakePipe(false);
  ASSERT_TRUE(out && err);
  std::string control = "/tmp/" + UniqueName("sbx-test-pgrp") + ".sock";
  std::vector<std::string> args = {BinPath("sbx-broker"), "--json", "--control", control,
                                   "--renderers",         "2"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // As a shell starts a foreground job: a process group of its own, which Ctrl+C signals whole.
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t files;
  ASSERT_EQ(posix_spawnattr_init(&attr), 0);
  ASSERT_EQ(posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP), 0);
  ASSERT_EQ(posix_spawnattr_setpgroup(&attr, 0), 0);
  ASSERT_EQ(posix_spawn_file_actions_init(&files), 0);
  ASSERT_EQ(posix_spawn_file_actions_adddup2(&files, out->write.get(), 1), 0);
  ASSERT_EQ(posix_spawn_file_actions_adddup2(&files, err->write.get(), 2), 0);
  pid_t pid = -1;
  int spawned = posix_spawn(&pid, argv[0], &files, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  ASSERT_EQ(spawned, 0);
  auto broker = ChildProcess::Adopt(pid);  // kills and reaps it however the test ends
  ASSERT_TRUE(broker) << broker.error().ToString();
  out->write.reset();
  err->write.reset();
  LineReader stdout_reader{std::move(out->read), {}, false};
  LineReader stderr_reader{std::move(err->read), {}, false};

  auto deadline = MonotonicNs() + 20'000'000'000;
  while (Count(Events(stdout_reader.buffer), "ready") < 2 && MonotonicNs() < deadline) {
    ASSERT_TRUE(stdout_reader.ReadSomeWithin(100)) << stdout_reader.buffer;
  }
  ASSERT_EQ(Count(Events(stdout_reader.buffer), "ready"), 2) << stdout_reader.buffer;

  ASSERT_EQ(::kill(-pid, SIGINT), 0);  // what the terminal does on Ctrl+C
  while ((!stdout_reader.eof || !stderr_reader.eof) && MonotonicNs() < deadline) {
    if (!stdout_reader.eof) stdout_reader.ReadSomeWithin(50);
    if (!stderr_reader.eof) stderr_reader.ReadSomeWithin(50);
  }
  ASSERT_TRUE(WaitReadable(broker->pidfd(), 10'000).value_or(false)) << "the broker did not exit";
  auto exit = broker->TryReap();
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->code, 0) << ExitStatusName(exit->status);

  auto events = Events(stdout_reader.buffer);
  EXPECT_EQ(Count(events, "closed"), 2) << stdout_reader.buffer;
  for (const auto& e : events) {
    EXPECT_NE(e.value("signal", ""), "SIGINT") << "a renderer got the terminal's SIGINT: " << e;
    if (e.value("event", "") == "closed") {
      EXPECT_EQ(e.value("signal", ""), "SIGTERM") << e;
    }
  }
  EXPECT_EQ(stderr_reader.buffer.find("namespace holder died"), std::string::npos)
      << stderr_reader.buffer;
  ::unlink(control.c_str());
}

}  // namespace
}  // namespace sbx::testing
