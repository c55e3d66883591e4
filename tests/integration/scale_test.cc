// Hundreds of renderers against a real sbx-broker: the loop answers while they launch, each one
// gets a real message queue, --max-renderers holds, and a shutdown with launches still queued
// leaves nothing behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Each renderer's cgroup limit in these tests, and what the memory check below expects one to
// need at most (its pages, its frame buffers, its processes' kernel side).
constexpr int kRendererMemoryMib = 48;
constexpr uint64_t kRendererNeedsBytes = uint64_t{8} << 20;

// The options that let `n` renderers start on any machine whose memory holds them: a cgroup
// limit small enough for the default memory budget's arithmetic not to refuse them, and the
// budget given outright.
std::vector<std::string> ManyRenderers(int n) {
  return {"--renderers",
          std::to_string(n),
          "--fps",
          "1",
          "--renderer-memory",
          std::to_string(kRendererMemoryMib),
          "--memory-budget",
          std::to_string(n * kRendererMemoryMib),
          "--max-renderers",
          std::to_string(n)};
}

uint64_t MemAvailableBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

// Why this machine cannot hold `n` renderers, or "" when it can.
std::string CannotHold(int n) {
  rlimit nproc{};
  if (::getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY &&
      nproc.rlim_cur < static_cast<rlim_t>(n) * 4 + 256) {
    return "RLIMIT_NPROC " + std::to_string(nproc.rlim_cur) + " cannot hold " + std::to_string(n) +
           " renderers of 4 tasks each";
  }
  uint64_t available = MemAvailableBytes();
  if (available < static_cast<uint64_t>(n) * kRendererNeedsBytes) {
    return "only " + std::to_string(available >> 20) + " MiB of memory available for " +
           std::to_string(n) + " renderers";
  }
  return "";
}

int QueuesMax() {
  std::ifstream f("/proc/sys/fs/mqueue/queues_max");
  int v = 256;
  f >> v;
  return v;
}

std::string ReadAll(int fd, std::chrono::milliseconds within) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + within;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    auto ready = WaitReadable(fd, 100);
    if (!ready || !*ready) continue;
    ssize_t n = HandleEintr([&] { return ::read(fd, buf, sizeof buf); });
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Before, a broker launched every renderer before its loop ran: the first `list` came back
// only once all 200 had their processes.
TEST(ScaleTest, ListAnswersWhile200RenderersStart) {
  constexpr int kCount = 200;
  if (auto why = CannotHold(kCount); !why.empty()) GTEST_SKIP() << why;
  BrokerProcess b(ManyRenderers(kCount));
  ASSERT_TRUE(b.started());
  // The control socket is open before the first launch.
  ASSERT_TRUE(b.WaitForEvent("spawned", 1, 10s));
  json list = b.Ctl("list");
  ASSERT_TRUE(list.contains("renderers")) << list.dump();
  ASSERT_EQ(list["renderers"].size(), static_cast<size_t>(kCount)) << "every slot exists at once";
  int waiting = 0;  // slots whose process is not launched yet
  int running = 0;
  for (const auto& r : list["renderers"]) {
    waiting += r.value("pid", -1) == 0;
    running += r.value("state", "") == "running";
    if (r.value("pid", -1) == 0) {
      EXPECT_EQ(r.value("state", ""), "starting") << r.dump();
    }
  }
  EXPECT_GT(waiting, 0) << "list was answered only after every launch";
  EXPECT_LT(running, kCount);
  // And they all start, in turn.
  std::set<int> ready;
  while (ready.size() < static_cast<size_t>(kCount)) {
    auto e = b.WaitForEvent("ready", -1, 60s);
    ASSERT_TRUE(e) << ready.size() << " of " << kCount << " ready";
    ready.insert(e->value("id", 0));
  }
}

// queues_max (256 by default) counts the queues of one IPC namespace, and every renderer has
// its own, so the broker's own namespace must not be where the queues are made.
TEST(ScaleTest, EveryRendererPastQueuesMaxHasARealQueue) {
#if defined(__SANITIZE_ADDRESS__)
  // Sanitized launches are several times slower (about 0.15 s each here): a few past the cap
  // prove as much as 44 and keep the test well inside its time limit.
  const int count = QueuesMax() + 8;
#else
  const int count = QueuesMax() + 44;  // 300 with the default cap
#endif
  if (auto why = CannotHold(count); !why.empty()) GTEST_SKIP() << why;
  BrokerProcess b(ManyRenderers(count));
  ASSERT_TRUE(b.started());
  std::set<int> ready;
  std::vector<std::string> on_pipe;
  while (ready.size() < static_cast<size_t>(count)) {
    auto e = b.WaitForEvent("ready", -1, 60s);
    ASSERT_TRUE(e) << ready.size() << " of " << count << " ready";
    ready.insert(e->value("id", 0));
  }
  int spawned = 0;
  for (const auto& e : b.history()) {
    if (e.value("event", "") != "spawned") continue;
    ++spawned;
    if (e.value("heartbeat", "") != "mq") on_pipe.push_back(e.dump());
  }
  EXPECT_EQ(spawned, count);
  EXPECT_TRUE(on_pipe.empty()) << on_pipe.size()
                               << " on the pipe fallback, the first: " << on_pipe.front();
  json list = b.Ctl("list");
  ASSERT_TRUE(list.contains("renderers")) << list.dump();
  int fallback = 0;
  for (const auto& r : list["renderers"]) fallback += r.value("heartbeat", "") != "mq";
  EXPECT_EQ(fallback, 0);

  // The process tree of hundreds of renderers is a reply of about a megabyte, more than a
  // client may leave unread: one reply that size is still sent whole.
  ControlConnection c(b.control_path());
  ASSERT_TRUE(c.SendRaw("inspect\n"));
  auto tree = c.ReadReply(30s);
  ASSERT_TRUE(tree && tree->contains("process")) << "no reply to inspect";
#if !defined(__SANITIZE_ADDRESS__)
  // 300 renderers make it larger than the control server's 1 MiB bound on unread output.
  EXPECT_GT(tree->dump().size(), size_t{1} << 20);
#endif
  std::set<int> in_tree;
  auto take = [&](const json& p) {
    if (p.value("role", "") == "renderer" && p.contains("id")) in_tree.insert(p.value("id", 0));
  };
  for (const auto& child : (*tree)["process"].value("children", json::array())) {
    take(child);
    for (const auto& p : child.value("children", json::array())) take(p);  // under its init
  }
  EXPECT_EQ(in_tree.size(), static_cast<size_t>(count));
}

TEST(ScaleTest, SpawnPastMaxRenderersIsRefused) {
  BrokerProcess b({"--renderers", "2", "--max-renderers", "2", "--fps", "1"});
  ASSERT_TRUE(b.started());
  for (int id : {1, 2}) ASSERT_TRUE(b.WaitForEvent("ready", id, 10s)) << id;
  json r = b.Ctl("spawn");
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_NE(r["error"].get<std::string>().find("--max-renderers"), std::string::npos) << r.dump();
  EXPECT_EQ(b.Ctl("list")["renderers"].size(), 2u);
  // A slot closed is a slot free.
  ASSERT_EQ(b.Ctl("close 2").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("closed", 2, 10s));
  json again = b.Ctl("spawn");
  EXPECT_TRUE(again.contains("id")) << again.dump();
}

TEST(ScaleTest, MoreRenderersThanTheMaximumAreRefusedAtStart) {
  auto err = MakePipe(false);
  ASSERT_TRUE(err);
  BrokerProcess b({"--renderers", "3", "--max-renderers", "2"}, {.stderr_fd = err->write.get()});
  err->write.reset();
  ASSERT_TRUE(b.started());
  auto status = b.WaitExit(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->si_code, CLD_EXITED);
  EXPECT_EQ(status->si_status, 1);
  std::string said = ReadAll(err->read.get(), 2s);
  EXPECT_NE(said.find("--renderers 3 is more than the 2"), std::string::npos) << said;
  EXPECT_NE(said.find("--max-renderers"), std::string::npos) << said;
  for (const auto& e : b.history()) EXPECT_NE(e.value("event", ""), "spawned") << e.dump();
}

// A hard descriptor limit of 400 leaves room for (400 - 256) / 10 = 14 renderers, and the
// broker says which limit decided when more are asked for.
TEST(ScaleTest, TheDescriptorLimitBoundsRenderersAndIsNamed) {
  auto err = MakePipe(false);
  ASSERT_TRUE(err);
  std::string broker = BinPath("sbx-broker");
  std::string control = "/tmp/sbx-nofile-" + std::to_string(::getpid()) + ".sock";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Only the broker gets the lowered limit, which an unprivileged process cannot raise back.
    rlimit low{400, 400};
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) ::_exit(99);
    ::dup2(err->write.get(), STDERR_FILENO);
    ::execl(broker.c_str(), broker.c_str(), "--renderers", "15", "--control", control.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(98);
  }
  err->write.reset();
  std::string said = ReadAll(err->read.get(), 10s);  // to EOF: the broker has exited
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1) << said;
  EXPECT_NE(said.find("--renderers 15 is more than the 14"), std::string::npos) << said;
  EXPECT_NE(said.find("RLIMIT_NOFILE (400"), std::string::npos) << said;
}

// SIGTERM while most launches still wait: they are dropped, every slot closes, and every process
// the broker had started is gone with it.
TEST(ScaleTest, ShutdownWithLaunchesQueuedLeavesNothing) {
  constexpr int kCount = 200;
  if (auto why = CannotHold(kCount); !why.empty()) GTEST_SKIP() << why;
  BrokerProcess b(ManyRenderers(kCount));
  ASSERT_TRUE(b.started());
  ASSERT_TRUE(b.WaitForEvent("spawned", 1, 10s));
  std::vector<pid_t> children = ChildrenOf(b.pid());
  ASSERT_TRUE(b.Signal(SIGTERM));
  auto status = b.WaitExit(20s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->si_code, CLD_EXITED);
  EXPECT_EQ(status->si_status, 0);
  int spawned = 0;
  std::set<int> closed;
  for (const auto& e : b.history()) {
    spawned += e.value("event", "") == "spawned";
    if (e.value("event", "") == "closed") closed.insert(e.value("id", 0));
  }
  ASSERT_LT(spawned, kCount) << "every launch was made before SIGTERM: nothing was queued";
  EXPECT_EQ(closed.size(), static_cast<size_t>(kCount)) << "every slot closes, launched or not";
  for (const auto& e : b.history()) {
    if (e.value("event", "") == "spawned") children.push_back(e.value("pid", 0));
  }
  for (pid_t pid : children) {
    EXPECT_TRUE(WaitProcessGone(pid, 5s)) << "process " << pid << " outlived the broker";
  }
}

}  // namespace
}  // namespace sbx::testing
