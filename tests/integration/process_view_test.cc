// `inspect` against a real broker: the tree of its processes, a renderer's fds named for what the
// broker gave it (docs/PROTOCOL.md, "The process view"), its namespaces judged against the
// broker's, a stopped renderer in state T, bad ids answered with errors, and a renderer that dies
// in the middle of being read answered cleanly.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "broker/broker.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::map<int, std::string> FdLabels(const json& process) {
  std::map<int, std::string> out;
  for (const auto& f : process.value("fds", json::array())) out[f["fd"]] = f["label"];
  return out;
}

std::string Verdict(const json& process, const char* ns) {
  return process["namespaces"].value(ns, json::object()).value("verdict", "absent");
}

TEST(ProcessViewTest, ARendererHoldsExactlyTheDocumentedFdsInItsOwnNamespaces) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s)) << json(b.history()).dump();
  json reply = b.Ctl("inspect 1");
  ASSERT_TRUE(reply.contains("process")) << reply.dump();
  const json& init = reply["process"];
  ASSERT_EQ(init.value("role", ""), "init") << init.dump();
  EXPECT_EQ(init["nspid"].back(), 1);
  EXPECT_EQ(init.value("fd_count", -1), 0) << init.dump();
  ASSERT_EQ(init["children"].size(), 1u) << init.dump();
  const json& r = init["children"][0];
  EXPECT_EQ(r.value("role", ""), "renderer");
  EXPECT_EQ(r.value("id", 0), 1);
  EXPECT_EQ(r["nspid"].front(), r["pid"]);
  EXPECT_EQ(r["nspid"].back(), 2);
  EXPECT_FALSE(r.value("gone", false));

  const std::map<int, std::string> want = {
      {0, "/dev/null"},
      {1, "log pipe: stdout and stderr, to the broker"},
      {2, "log pipe: stdout and stderr, to the broker"},
      {3, "control pipe: commands from the broker"},
      {4, "control pipe: messages to the broker"},
      {5, "frames memfd"},
      {6, "heartbeat queue"},
  };
  EXPECT_EQ(FdLabels(r), want) << r["fds"].dump();
  EXPECT_EQ(r.value("fd_count", 0), 7);
  for (const auto& f : r["fds"]) {
    if (f["fd"] != 5) continue;
    std::set<std::string> seals(f["seals"].begin(), f["seals"].end());
    EXPECT_EQ(seals, (std::set<std::string>{"seal", "shrink", "grow"})) << f.dump();
  }
  for (const char* ns : {"user", "pid", "net", "ipc", "mnt", "uts"}) {
    EXPECT_EQ(Verdict(r, ns), "new") << ns;
  }
  // sbx unshares neither of these.
  EXPECT_EQ(Verdict(r, "cgroup"), "shared");
  std::set<std::string> threads;
  for (const auto& t : r["threads"]) threads.insert(t["name"]);
  EXPECT_EQ(threads, (std::set<std::string>{"sbx-renderer", "sbx-io"})) << r["threads"].dump();
  EXPECT_EQ(r["seccomp"].value("mode", -1), 2);
  EXPECT_GE(r["seccomp"].value("filters", 0), 1);
  EXPECT_EQ(r["uid"].value("inside", -1), 0);
  EXPECT_EQ(r["rlimits"]["Max open files"].value("hard", ""), "16") << r["rlimits"].dump();
  EXPECT_GT(r["context_switches"].value("voluntary", 0), 0);
  EXPECT_GT(r["page_faults"].value("minor", 0), 0);
}

// `inspect` is read off the loop and answered later; several asked at once, by one client and
// by two, share one read, and every reply keeps its place among its client's replies.
TEST(ProcessViewTest, InspectsAskedTogetherAreEachAnsweredInTheirPlace) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s));
  ControlConnection first(b.control_path());
  ControlConnection second(b.control_path());
  ASSERT_TRUE(first.connected() && second.connected());
  ASSERT_TRUE(first.SendRaw("inspect\ninspect\nstats\ninspect\n"));
  ASSERT_TRUE(second.SendRaw("inspect\nping 1\n"));
  for (const char* expected : {"process", "process", "renderers", "process"}) {
    auto r = first.ReadReply(10s);
    ASSERT_TRUE(r) << "no reply where " << expected << " was due";
    EXPECT_TRUE(r->contains(expected)) << r->dump().substr(0, 200);
    if (r->contains("process")) {
      EXPECT_EQ((*r)["process"].value("pid", 0), b.pid());
    }
  }
  for (const char* expected : {"process", "rtt_us"}) {
    auto r = second.ReadReply(10s);
    ASSERT_TRUE(r) << "no reply where " << expected << " was due";
    EXPECT_TRUE(r->contains(expected)) << r->dump().substr(0, 200);
  }
}

TEST(ProcessViewTest, TheWholeTreeHasTheBrokerTheHolderAndEachInitWithItsRenderer) {
  BrokerProcess b({"--renderers", "2"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s) && b.WaitForEvent("ready", 2, 10s));
  json reply = b.Ctl("inspect");
  ASSERT_TRUE(reply.contains("process")) << reply.dump();
  const json& root = reply["process"];
  EXPECT_EQ(root.value("role", ""), "broker");
  EXPECT_EQ(root.value("pid", 0), b.pid());
  EXPECT_TRUE(root["fds"].empty());  // counted, not listed
  EXPECT_GT(root.value("fd_count", 0), 0);
  for (const char* ns : {"user", "pid", "net", "ipc", "mnt", "uts"}) {
    EXPECT_EQ(Verdict(root, ns), "shared") << ns;
  }
  json holder, zygote;
  std::set<int> ids;
  for (const auto& c : root["children"]) {
    if (c["role"] == "namespace-holder") holder = c;
    if (c["role"] == "zygote") zygote = c;
    if (c["role"] == "init" && !c.value("spare", false)) {
      ASSERT_EQ(c["children"].size(), 1u);
      EXPECT_EQ(c["children"][0].value("id", 0), c.value("id", -1));
      ids.insert(c.value("id", 0));
    }
  }
  EXPECT_EQ(ids, (std::set<int>{1, 2})) << root["children"].dump();
  ASSERT_TRUE(holder.is_object()) << root["children"].dump();
  EXPECT_EQ(holder.value("fd_count", -1), 0);
  // The holder owns the user, net and mount namespaces every renderer joins; pid is the broker's.
  for (const char* ns : {"user", "net", "mnt"}) EXPECT_EQ(Verdict(holder, ns), "new") << ns;
  EXPECT_EQ(Verdict(holder, "pid"), "shared");
  // Renderer 2's, whether or not the spare (spare_test.cc) came after it.
  json renderer;
  for (const auto& c : root["children"]) {
    if (c["role"] == "init" && c.value("id", 0) == 2) renderer = c["children"][0];
  }
  EXPECT_EQ(renderer["namespaces"]["user"]["inode"], holder["namespaces"]["user"]["inode"]);
  // The zygote lives in the holder's namespaces and the broker's pid namespace. (The sanitizer
  // build's renderer is dynamic and launched without one: zygote_test.cc.)
#if defined(__SANITIZE_ADDRESS__)
  return;
#endif
  ASSERT_TRUE(zygote.is_object()) << root["children"].dump();
  EXPECT_EQ(zygote.value("ppid", 0), b.pid());
  for (const char* ns : {"user", "net", "mnt"}) {
    EXPECT_EQ(zygote["namespaces"][ns]["inode"], holder["namespaces"][ns]["inode"]) << ns;
  }
  EXPECT_EQ(Verdict(zygote, "pid"), "shared");
}

TEST(ProcessViewTest, AStoppedRendererShowsT) {
  BrokerProcess b({"--renderers", "1", "--hang-timeout", "60000"});
  auto ready = b.WaitForEvent("ready", 1, 10s);
  ASSERT_TRUE(ready);
  pid_t pid = (*ready)["pid"];
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  ASSERT_TRUE(WaitProcessStopped(pid, 5s));
  json reply = b.Ctl("inspect 1");
  const json& r = reply["process"]["children"][0];
  EXPECT_EQ(r.value("state", ""), "T") << reply.dump();
  for (const auto& t : r["threads"]) EXPECT_EQ(t.value("state", ""), "T") << t.dump();
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
}

TEST(ProcessViewTest, ABadIdIsAJsonErrorAndTheConnectionGoesOn) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, 10s));
  EXPECT_EQ(b.Ctl("inspect 9").value("error", ""), "no renderer 9");
  EXPECT_EQ(b.Ctl("inspect x").value("error", ""), "usage: inspect [ID]");
  EXPECT_EQ(b.Ctl("inspect 1 2").value("error", ""), "usage: inspect [ID]");
  EXPECT_EQ(b.Ctl("inspect 0").value("error", ""), "usage: inspect [ID]");
  EXPECT_TRUE(b.Ctl("inspect 1").contains("process"));
}

TEST(ProcessViewTest, ARendererDyingWhileItIsReadGivesACleanReply) {
  BrokerOptions o;
  o.renderer_path = BinPath("sbx-renderer");
  o.renderers = 3;
  o.restart = false;
  auto made = Broker::Create(std::move(o));
  ASSERT_TRUE(made) << made.error().ToString();
  Broker& b = **made;
  ASSERT_TRUE(b.Start());
  ASSERT_TRUE(RunUntil(
      b,
      [&] {
        for (int id = 1; id <= 3; ++id) {
          auto s = b.Get(id);
          if (!s || s->state != RendererState::kRunning) return false;
        }
        return true;
      },
      10s));
  // Each renderer dies at another point of its reading: its first read, its fds, its last.
  const std::map<int, std::string> kill_at = {{1, "stat"}, {2, "fd"}, {3, "limits"}};
  for (const auto& [id, step] : kill_at) {
    SCOPED_TRACE("killed before " + step);
    pid_t pid = b.Get(id)->pid;
    bool killed = false;
    auto tree = b.Inspect(id, [&](std::string_view s) {
      if (killed || s != step) return;
      killed = true;
      ::kill(pid, SIGKILL);
      WaitProcessGone(pid, 5s);  // gone as a process, unreaped: the loop is not running
    });
    ASSERT_TRUE(tree) << tree.error().ToString();
    EXPECT_TRUE(killed);
    json j = ProcessInfoToJson(*tree);
    ASSERT_EQ(j["children"].size(), 1u) << j.dump();
    const json& r = j["children"][0];
    EXPECT_TRUE(r.value("gone", false)) << r.dump();
    EXPECT_FALSE(r.contains("unreadable")) << r.dump();
    EXPECT_FALSE(j.value("gone", false)) << j.dump();  // its init lives on
  }
  ASSERT_TRUE(RunUntil(
      b,
      [&] {
        for (int id = 1; id <= 3; ++id) {
          if (b.Get(id)->state != RendererState::kExited) return false;
        }
        return true;
      },
      10s));
  EXPECT_FALSE(b.Inspect(1)) << "an exited renderer has nothing to inspect";
}

}  // namespace
}  // namespace sbx::testing
