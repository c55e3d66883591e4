// A renderer that makes processes with CLONE_PARENT (tests/clone_parent_renderer/) hands the
// broker children it never started. The broker must reap them: no zombie, no namespace init left
// waiting for them, no pidfd kept per restart, and a SIGTERM still ends it within its grace.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

int ZombieChildren(pid_t pid) {
  int n = 0;
  for (pid_t child : ChildrenOf(pid)) {
    auto stat = ReadSmallFile("/proc/" + std::to_string(child) + "/stat");
    if (stat && stat->rfind(") Z") != std::string::npos) ++n;
  }
  return n;
}

int PidfdCount(pid_t pid) {
  int n = 0;
  for (const auto& fd : RendererSideFds(pid)) n += fd == "anon_inode:[pidfd]";
  return n;
}

// Waits (with a deadline) until the broker has no zombie child and holds `pidfds` pidfds.
bool Settles(pid_t broker, int pidfds, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ZombieChildren(broker) == 0 && PidfdCount(broker) == pidfds) return true;
    // Polling /proc has no event to wait on; a pidfd of the broker gives the wait a bound.
    if (WaitProcessGone(broker, 20ms)) return false;
  }
  return false;
}

TEST(CloneParentTest, StraysAreReapedNothingLeaksAndSigtermEndsTheBroker) {
  BrokerProcess b({"--renderers", "1", "--renderer-path", BinPath("sbx-clone-parent-renderer")});
  ASSERT_TRUE(b.started());
  auto ready = b.WaitForEvent("ready", 1, 15s);
  ASSERT_TRUE(ready) << json(b.history()).dump();
  // What a broker with one renderer holds once its launch is done: the renderer's pidfd and,
  // sandboxed (the renderer in a pid namespace of its own), its init's and the holder's.
  std::string ns = "/proc/" + std::to_string(ready->value("pid", 0)) + "/ns/pid";
  char theirs[64] = {}, ours[64] = {};
  ASSERT_GT(::readlink(ns.c_str(), theirs, sizeof theirs - 1), 0);
  ASSERT_GT(::readlink("/proc/self/ns/pid", ours, sizeof ours - 1), 0);
  const int baseline = std::string(theirs) == ours ? 1 : 3;
  EXPECT_TRUE(Settles(b.pid(), baseline, 10s))
      << ZombieChildren(b.pid()) << " zombies, " << PidfdCount(b.pid()) << " pidfds";

  for (int round = 0; round < 3; ++round) {
    json killed = b.Ctl("kill 1 KILL");
    ASSERT_EQ(killed.value("ok", false), true) << killed.dump();
    ASSERT_TRUE(b.WaitForEvent("exited", 1, 10s)) << round;
    ASSERT_TRUE(b.WaitForEvent("ready", 1, 15s)) << round << json(b.history()).dump();
    EXPECT_TRUE(Settles(b.pid(), baseline, 10s))
        << "round " << round << ": " << ZombieChildren(b.pid()) << " zombies, "
        << PidfdCount(b.pid()) << " pidfds (expected " << baseline << ")";
  }

  std::vector<pid_t> children = ChildrenOf(b.pid());
  // The grace period is 1 s; a broker stuck on a child would need the harness's SIGKILL.
  auto status = b.SignalAndWait(SIGTERM, 5s);
  ASSERT_TRUE(status) << "the broker did not exit on SIGTERM";
  EXPECT_EQ(status->si_code, CLD_EXITED);
  EXPECT_EQ(status->si_status, 0);
  for (pid_t child : children) EXPECT_TRUE(WaitProcessGone(child, 5s)) << child;
}

}  // namespace
}  // namespace sbx::testing
