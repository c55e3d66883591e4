// End-to-end tests against a real sbx-broker and real renderers: every event is read from the
// broker's --json output, every command goes through its control socket.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "broker/launcher.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kEventTimeout = 10s;

using Clock = std::chrono::steady_clock;

int PidOf(const json& event) { return event.value("pid", 0); }

std::chrono::milliseconds MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// Every event of one broker carries t_ms on one clock, and they are printed as they happen.
void ExpectTimesNeverGoBack(const std::vector<json>& events) {
  int64_t last = 0;
  for (const auto& e : events) {
    ASSERT_TRUE(e.contains("t_ms") && e["t_ms"].is_number_integer()) << e.dump();
    int64_t t = e["t_ms"].get<int64_t>();
    EXPECT_GE(t, last) << "t_ms went backwards at " << e.dump();
    last = std::max(last, t);
  }
}

// Opened before the test acts, so a death is timed on the process itself, never on a reused pid.
std::vector<UniqueFd> OpenPidfds(const std::vector<int>& pids) {
  std::vector<UniqueFd> fds;
  for (int pid : pids) {
    auto fd = PidfdOpen(pid);
    fds.push_back(fd ? std::move(*fd) : UniqueFd());
  }
  return fds;
}

// Set difference: what appeared in a directory listing since the first snapshot.
std::vector<std::string> Added(std::vector<std::string> before, std::vector<std::string> after) {
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  std::vector<std::string> added;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(added));
  return added;
}

// Names the broker could have given a POSIX shm object or semaphore (sem.NAME).
std::vector<std::string> SbxShmEntries() {
  auto entries = ShmEntries("sbx");
  auto sems = ShmEntries("sem.sbx");
  entries.insert(entries.end(), sems.begin(), sems.end());
  return entries;
}

TEST(BrokerTest, SpawnsRenderersThatAllBecomeReady) {
  BrokerProcess b({"--renderers", "3"});
  ASSERT_TRUE(b.started());
  std::map<int, int> spawned_pids;  // id -> pid
  for (int i = 0; i < 3; ++i) {
    auto e = b.WaitForEvent("spawned", -1, kEventTimeout);
    ASSERT_TRUE(e) << "only " << spawned_pids.size() << " renderers spawned";
    EXPECT_EQ(e->value("event", ""), "spawned");
    ASSERT_TRUE(e->contains("t_ms") && (*e)["t_ms"].is_number_integer()) << e->dump();
    EXPECT_GE((*e)["t_ms"].get<int64_t>(), 0);
    ASSERT_TRUE(e->contains("id") && (*e)["id"].is_number_integer()) << e->dump();
    ASSERT_TRUE(e->contains("pid") && (*e)["pid"].is_number_integer()) << e->dump();
    EXPECT_GT(PidOf(*e), 0);
    EXPECT_EQ(e->value("page", ""), "sbx://plasma");
    spawned_pids[e->value("id", 0)] = PidOf(*e);
  }
  std::set<int> ready_ids;
  for (int i = 0; i < 3; ++i) {
    auto e = b.WaitForEvent("ready", -1, kEventTimeout);
    ASSERT_TRUE(e) << "only " << ready_ids.size() << " renderers became ready";
    EXPECT_GT(PidOf(*e), 0);
    EXPECT_EQ(PidOf(*e), spawned_pids[e->value("id", 0)]) << "ready from another process";
    EXPECT_GE(e->value("first_frame_ms", -1.0), 0.0);
    ready_ids.insert(e->value("id", 0));
  }
  EXPECT_EQ(ready_ids, (std::set<int>{1, 2, 3}));
  std::set<int> spawned_ids;
  for (const auto& [id, pid] : spawned_pids) spawned_ids.insert(id);
  EXPECT_EQ(spawned_ids, ready_ids);
  // A renderer is announced before it can be ready.
  for (int id : ready_ids) {
    auto first = std::find_if(b.history().begin(), b.history().end(),
                              [id](const json& e) { return e.value("id", 0) == id; });
    ASSERT_NE(first, b.history().end());
    EXPECT_EQ(first->value("event", ""), "spawned") << first->dump();
  }
  ExpectTimesNeverGoBack(b.history());
  json list = b.Ctl("list");
  ASSERT_TRUE(list.contains("renderers")) << list.dump();
  ASSERT_EQ(list["renderers"].size(), 3u);
  for (const auto& r : list["renderers"]) {
    EXPECT_EQ(r["page"], "sbx://plasma");
    EXPECT_GT(r["pid"].get<int>(), 0);
    EXPECT_TRUE(r.contains("uptime_ms"));
    EXPECT_TRUE(r.contains("restarts"));
    EXPECT_TRUE(r.contains("last_exit"));
  }
}

TEST(BrokerTest, ExternalSigkillIsClassifiedKilledAndRestartedWithNewPid) {
  BrokerProcess b({"--renderers", "1"});
  auto ready = b.WaitForEvent("ready", 1, kEventTimeout);
  ASSERT_TRUE(ready);
  int old_pid = PidOf(*ready);
  ASSERT_EQ(::kill(old_pid, SIGKILL), 0);
  auto exited = b.WaitForEvent("exited", 1, kEventTimeout);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->value("status", ""), "killed");
  EXPECT_EQ(exited->value("signal", ""), "SIGKILL");
  EXPECT_EQ(PidOf(*exited), old_pid);
  auto restarting = b.WaitForEvent("restarting", 1, kEventTimeout);
  ASSERT_TRUE(restarting);
  EXPECT_EQ(restarting->value("delay_ms", -1), 0);
  auto again = b.WaitForEvent("ready", 1, kEventTimeout);
  ASSERT_TRUE(again);
  EXPECT_NE(PidOf(*again), old_pid);
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 1u);
  EXPECT_EQ(list["renderers"][0]["restarts"], 1);
  EXPECT_EQ(list["renderers"][0]["last_exit"]["status"], "killed");
}

// The fallback a machine without queues gets, forced: visible in the events and the list, and
// the renderer still counts as alive through its pipe heartbeats.
TEST(BrokerTest, HeartbeatPipeForcesTheVisibleFallback) {
  BrokerProcess b({"--renderers", "1", "--heartbeat-pipe", "--hang-timeout", "500"});
  auto spawned = b.WaitForEvent("spawned", 1, kEventTimeout);
  ASSERT_TRUE(spawned) << json(b.history()).dump();
  EXPECT_EQ(spawned->value("heartbeat", ""), "pipe") << spawned->dump();
  EXPECT_FALSE(spawned->value("detail", "").empty()) << spawned->dump();
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  // Four hang timeouts pass with no unresponsive event: the pipe heartbeats keep it alive.
  EXPECT_FALSE(b.WaitForEvent("unresponsive", 1, 2s)) << json(b.history()).dump();
  json stats = b.Ctl("stats");
  EXPECT_GE(stats.value("heartbeats", 0), 10) << stats.dump();
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 1u) << list.dump();
  EXPECT_EQ(list["renderers"][0].value("heartbeat", ""), "pipe");
  EXPECT_EQ(list["renderers"][0].value("state", ""), "running") << json(b.history()).dump();
  for (const auto& e : b.history()) {
    EXPECT_NE(e.value("event", ""), "unresponsive") << e.dump();
  }
}

TEST(BrokerTest, StoppedRendererIsUnresponsiveThenResponsiveAfterSigcont) {
  constexpr int kHangTimeoutMs = 500;
  BrokerProcess b({"--renderers", "1", "--hang-timeout", std::to_string(kHangTimeoutMs)});
  auto ready = b.WaitForEvent("ready", 1, kEventTimeout);
  ASSERT_TRUE(ready);
  int pid = PidOf(*ready);
  auto stopped_at = Clock::now();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  // The deadline only keeps a broken build from hanging the suite; the bound is checked below.
  auto unresponsive = b.WaitForEvent("unresponsive", 1, kEventTimeout);
  auto noticed_after = MsSince(stopped_at);
  std::string state = b.Ctl("list")["renderers"][0]["state"].get<std::string>();
  ::kill(pid, SIGCONT);
  ASSERT_TRUE(unresponsive) << "events: " << json(b.history()).dump();
  // The bound is hang-timeout + 1 s. Measured up to our read of the line, so it also
  // covers the broker's tick period and its printing.
  EXPECT_LE(noticed_after.count(), kHangTimeoutMs + 1000) << unresponsive->dump();
  EXPECT_EQ(state, "unresponsive");
  auto responsive = b.WaitForEvent("responsive", 1, kEventTimeout);
  ASSERT_TRUE(responsive);
  EXPECT_EQ(PidOf(*responsive), pid);
}

// A renderer stopped past the ping timeout answers the pings it missed when it resumes; those
// late pongs must not get it killed (the window pings every renderer each second).
TEST(BrokerTest, ARendererStoppedPastThePingTimeoutSurvivesItsLatePongs) {
  BrokerProcess b({"--renderers", "1"});
  auto ready = b.WaitForEvent("ready", 1, kEventTimeout);
  ASSERT_TRUE(ready);
  int pid = PidOf(*ready);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  ASSERT_TRUE(WaitProcessStopped(pid, kEventTimeout));
  json missed = b.Ctl("ping 1");  // answered by the broker's 5 s timeout
  ::kill(pid, SIGCONT);
  EXPECT_NE(missed.value("error", "").find("no pong"), std::string::npos) << missed.dump();
  // Pongs come back in the order of the pings, so this one's answer follows the late one.
  json ping = b.Ctl("ping 1");
  EXPECT_TRUE(ping.contains("rtt_us")) << ping.dump();
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 1u) << list.dump();
  EXPECT_EQ(list["renderers"][0].value("pid", 0), pid) << list.dump();
  for (const auto& e : b.history()) EXPECT_NE(e.value("event", ""), "exited") << e.dump();
}

struct DrillCase {
  const char* command;
  const char* status;
  const char* signal;  // nullptr: none expected
  int code;            // -1: none expected
};

void PrintTo(const DrillCase& c, std::ostream* os) { *os << c.command; }

class DrillTest : public ::testing::TestWithParam<DrillCase> {};

TEST_P(DrillTest, DrillYieldsItsClassification) {
  const DrillCase& c = GetParam();
  BrokerProcess b({"--renderers", "1", "--no-restart"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  json reply = b.Ctl(std::string(c.command) + "");
  ASSERT_EQ(reply.value("ok", false), true) << reply.dump();
  auto exited = b.WaitForEvent("exited", 1, 30s);
  ASSERT_TRUE(exited) << c.command;
  EXPECT_EQ(exited->value("status", ""), c.status) << exited->dump();
  if (c.signal != nullptr) {
    EXPECT_EQ(exited->value("signal", ""), c.signal) << exited->dump();
  }
  if (c.code >= 0) {
    EXPECT_EQ(exited->value("code", -1), c.code) << exited->dump();
  }
  // The broker goes on.
  EXPECT_TRUE(b.Ctl("stats").contains("renderers"));
}

INSTANTIATE_TEST_SUITE_P(
    Drills, DrillTest,
    ::testing::Values(DrillCase{"crash 1 segv", "crashed", "SIGSEGV", -1},
                      DrillCase{"crash 1 abort", "crashed", "SIGABRT", -1},
                      DrillCase{"crash 1 stack-overflow", "crashed", "SIGSEGV", -1},
                      DrillCase{"oom 1", "oom", nullptr, 86},
                      DrillCase{"bad-ipc 1", "bad-message", "SIGKILL", -1},
                      DrillCase{"kill 1", "killed", "SIGTERM", -1},
                      DrillCase{"kill 1 SIGSYS", "sandbox-violation", "SIGSYS", -1}),
    [](const auto& info) {
      std::string name = info.param.command;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

TEST(BrokerTest, HangDrillWithKillHungIsClassifiedHungAndRestarted) {
  BrokerProcess b({"--renderers", "1", "--hang-timeout", "300", "--kill-hung"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  ASSERT_EQ(b.Ctl("hang 1").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("unresponsive", 1, kEventTimeout));
  auto exited = b.WaitForEvent("exited", 1, kEventTimeout);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->value("status", ""), "hung");
  EXPECT_EQ(exited->value("signal", ""), "SIGKILL");
  EXPECT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
}

// The renderer's IO thread answers pings on its own; a hung renderer must stop doing that too,
// or `ping` would call a frozen page alive.
TEST(BrokerTest, HungRendererStopsAnsweringPings) {
  BrokerProcess b({"--renderers", "1", "--hang-timeout", "300"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  ASSERT_TRUE(b.Ctl("ping 1").contains("rtt_us"));
  ASSERT_EQ(b.Ctl("hang 1").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("unresponsive", 1, kEventTimeout));
  ControlConnection c(b.control_path());
  ASSERT_TRUE(c.SendRaw("ping 1\n"));
  // The broker gives up on a pong after 5 s and says so.
  auto reply = c.ReadReply(15s);
  ASSERT_TRUE(reply);
  EXPECT_FALSE(reply->contains("rtt_us")) << reply->dump();
  EXPECT_TRUE(reply->contains("error")) << reply->dump();
}

TEST(BrokerTest, CrashLoopEndsInFailedUntilReload) {
  BrokerProcess b({"--renderers", "1"});
  int exits = 0;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout)) << "after " << exits << " exits";
    ASSERT_EQ(b.Ctl("crash 1 abort").value("ok", false), true);
    ASSERT_TRUE(b.WaitForEvent("exited", 1, kEventTimeout));
    ++exits;
  }
  auto failed = b.WaitForEvent("failed", 1, kEventTimeout);
  ASSERT_TRUE(failed);
  EXPECT_EQ(b.Ctl("list")["renderers"][0]["state"], "failed");
  // Backoff doubled between the restarts: 0, 100, 200, 400, 800 ms.
  std::vector<int> delays;
  for (const auto& e : b.history()) {
    if (e.value("event", "") == "restarting") delays.push_back(e.value("delay_ms", -1));
  }
  EXPECT_EQ(delays, (std::vector<int>{0, 100, 200, 400, 800}));
  ASSERT_EQ(b.Ctl("reload 1").value("ok", false), true);
  EXPECT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
}

TEST(BrokerTest, ShutdownOnSigtermLeavesNoRendererFdOrQueue) {
  auto shm_before = SbxShmEntries();
  BrokerProcess b({"--renderers", "4"});
  std::vector<int> pids;
  for (int i = 0; i < 4; ++i) {
    auto e = b.WaitForEvent("ready", -1, kEventTimeout);
    ASSERT_TRUE(e);
    pids.push_back(PidOf(*e));
  }
  // One renderer stopped: SIGTERM cannot act on it until it runs, so the broker must cope.
  ASSERT_EQ(::kill(pids[0], SIGSTOP), 0);
  pid_t broker_pid = b.pid();
  EXPECT_FALSE(QueueEntries(broker_pid).size() > 0) << "queues must be unlinked at creation";
  auto status = b.SignalAndWait(SIGTERM, 10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->si_code, CLD_EXITED);
  EXPECT_EQ(status->si_status, 0);
  int closed = 0;
  for (const auto& e : b.history()) closed += e.value("event", "") == "closed";
  EXPECT_EQ(closed, 4);
  for (int pid : pids) EXPECT_TRUE(WaitProcessGone(pid, 5s)) << "renderer " << pid << " survived";
  EXPECT_TRUE(QueueEntries(broker_pid).empty());
  EXPECT_TRUE(Added(shm_before, SbxShmEntries()).empty())
      << "left in /dev/shm: " << json(Added(shm_before, SbxShmEntries())).dump();
}

// SIGINT is the other shutdown signal, and a renderer that ignores SIGTERM is what the 1 s
// grace followed by SIGKILL is for; the broker must still reap everything and exit 0.
TEST(BrokerTest, ShutdownOnSigintSigkillsARendererThatIgnoresSigterm) {
  constexpr auto kTermGrace = 1000ms;
  BrokerProcess b({"--renderers", "1", "--no-restart", "--renderer-path",
                   BinPath("sbx-evil-renderer"), "--page", "evil://ignore-term"});
  auto stubborn = b.WaitForEvent("ready", 1, kEventTimeout);
  ASSERT_TRUE(stubborn) << json(b.history()).dump();
  // A renderer that obeys SIGTERM alongside: the grace must not hold it back.
  json spawned = b.Ctl("spawn evil://good");
  ASSERT_EQ(spawned.value("ok", false), true) << spawned.dump();
  int polite_id = spawned.value("id", 0);
  auto polite = b.WaitForEvent("ready", polite_id, kEventTimeout);
  ASSERT_TRUE(polite) << json(b.history()).dump();
  std::vector<int> pids = {PidOf(*stubborn), PidOf(*polite)};
  auto pidfds = OpenPidfds(pids);
  for (size_t i = 0; i < pids.size(); ++i) ASSERT_TRUE(pidfds[i].valid()) << pids[i];

  auto signalled_at = Clock::now();
  ASSERT_TRUE(b.Signal(SIGINT));
  auto polite_closed = b.WaitForEvent("closed", polite_id, kEventTimeout);
  auto stubborn_closed = b.WaitForEvent("closed", 1, kEventTimeout);
  auto stubborn_after = MsSince(signalled_at);
  auto status = b.WaitExit(kEventTimeout);

  ASSERT_TRUE(polite_closed) << json(b.history()).dump();
  EXPECT_EQ(polite_closed->value("signal", ""), "SIGTERM") << polite_closed->dump();
  ASSERT_TRUE(stubborn_closed) << json(b.history()).dump();
  EXPECT_EQ(stubborn_closed->value("status", ""), "killed") << stubborn_closed->dump();
  EXPECT_EQ(stubborn_closed->value("signal", ""), "SIGKILL") << stubborn_closed->dump();
  EXPECT_EQ(PidOf(*stubborn_closed), pids[0]);
  // SIGKILL only once the grace is over; the upper slack absorbs a loaded 2-core machine, and
  // still catches a grace far longer than the 1 s.
  EXPECT_GE(stubborn_after, kTermGrace);
  EXPECT_LE(stubborn_after, kTermGrace + 2000ms);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->si_code, CLD_EXITED);
  EXPECT_EQ(status->si_status, 0);
  // The broker reaps before it exits, so both are gone the moment it is.
  for (size_t i = 0; i < pids.size(); ++i) {
    auto gone = WaitReadable(pidfds[i].get(), 0);
    EXPECT_TRUE(gone && *gone) << "renderer " << pids[i] << " outlived the broker";
  }
  for (const auto& e : b.history()) {
    EXPECT_NE(e.value("event", ""), "exited") << "a close is not an exit: " << e.dump();
  }
}

TEST(BrokerTest, BrokerSigkillTakesEveryRendererWithIt) {
  BrokerProcess b({"--renderers", "3"});
  std::vector<int> pids;
  for (int i = 0; i < 3; ++i) {
    auto e = b.WaitForEvent("ready", -1, kEventTimeout);
    ASSERT_TRUE(e);
    pids.push_back(PidOf(*e));
  }
  // The broker's own children too: the sandbox's namespace holder and the renderers' inits.
  std::ifstream children_file("/proc/" + std::to_string(b.pid()) + "/task/" +
                              std::to_string(b.pid()) + "/children");
  std::vector<int> children;
  for (int child; children_file >> child;) children.push_back(child);
  ASSERT_FALSE(children.empty());
  auto pidfds = OpenPidfds(pids);
  for (size_t i = 0; i < pids.size(); ++i) ASSERT_TRUE(pidfds[i].valid()) << pids[i];
  auto killed_at = Clock::now();
  ASSERT_TRUE(b.SignalAndWait(SIGKILL, 10s));
  // Waited for with a generous deadline so a slow death is reported with its time, then held to
  // the bound of 1 s. Each time is taken when we see that renderer gone, so it is an
  // upper bound on when it died.
  for (size_t i = 0; i < pids.size(); ++i) {
    auto left = 5s - MsSince(killed_at);
    auto gone = WaitReadable(pidfds[i].get(), static_cast<int>(std::max<int64_t>(left.count(), 0)));
    auto died_after = MsSince(killed_at);
    ASSERT_TRUE(gone && *gone) << "renderer " << pids[i] << " orphaned";
    EXPECT_LE(died_after, 1000ms) << "renderer " << pids[i] << " outlived the broker too long";
  }
  for (int pid : children) EXPECT_TRUE(WaitProcessGone(pid, 5s)) << "child " << pid << " orphaned";
}

TEST(BrokerTest, RendererDeathLeavesNoFdInTheBroker) {
  BrokerProcess b({"--renderers", "2"});
  ASSERT_TRUE(b.WaitForEvent("ready", -1, kEventTimeout));
  ASSERT_TRUE(b.WaitForEvent("ready", -1, kEventTimeout));
  // A launch's short-lived helper (the joiner) and a dead renderer's namespace init are reaped
  // off the spawn and exit paths, a few loop turns later: each command round trip is a turn.
  auto settles_at = [&](size_t want) {
    auto deadline = Clock::now() + kEventTimeout;
    size_t n = RendererSideFds(b.pid()).size();
    while (n != want && Clock::now() < deadline) {
      if (!b.Ctl("stats").contains("renderers")) break;
      n = RendererSideFds(b.pid()).size();
    }
    return n;
  };
  // The count once it holds still over three round trips.
  auto quiet_count = [&] {
    auto deadline = Clock::now() + kEventTimeout;
    size_t n = RendererSideFds(b.pid()).size();
    for (int same = 0; same < 3 && Clock::now() < deadline;) {
      if (!b.Ctl("stats").contains("renderers")) break;
      size_t m = RendererSideFds(b.pid()).size();
      same = m == n ? same + 1 : 0;
      n = m;
    }
    return n;
  };
  // The spare's launch holds both ends of its pipes until the zygote answers: counted from then,
  // a steady broker would look three short.
  ASSERT_GT(WaitForStatsPid(b, "spare", 0, kEventTimeout), 0);
  size_t before = quiet_count();
  ASSERT_GT(before, 0u);
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(b.Ctl("kill 1 KILL").value("ok", false), true);
    ASSERT_TRUE(b.WaitForEvent("exited", 1, kEventTimeout));
    ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  }
  EXPECT_EQ(settles_at(before), before);
  ASSERT_EQ(b.Ctl("close 2").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("closed", 2, kEventTimeout));
  // Removal of a closed renderer is deferred to the next loop turn; a command round trip is one.
  ASSERT_TRUE(b.Ctl("stats").contains("renderers"));
  size_t one_less = RendererSideFds(b.pid()).size();
  EXPECT_LT(one_less, before) << "closing a renderer must release its fds";
  json spawned = b.Ctl("spawn");
  ASSERT_TRUE(b.WaitForEvent("ready", spawned.value("id", 0), kEventTimeout));
  EXPECT_EQ(settles_at(before), before) << "a new renderer takes what one gave back";
}

// Under --no-restart a dead renderer's sad tab stays until `close`; it shows no pixels, so the
// frame buffer's memfd must not stay with it. The count is one per live renderer and the spare.
TEST(BrokerTest, ADeadRendererKeepsNoFrameBufferWithoutRestart) {
  BrokerProcess b({"--renderers", "2", "--no-restart"});
  ASSERT_TRUE(b.WaitForEvent("ready", -1, kEventTimeout));
  ASSERT_TRUE(b.WaitForEvent("ready", -1, kEventTimeout));
  auto memfds = [&] {
    auto fds = RendererSideFds(b.pid());
    return std::count_if(fds.begin(), fds.end(),
                         [](const std::string& f) { return f.starts_with("/memfd:sbx-frames"); });
  };
  // The spare renderer has a frame buffer too: counted once it is there. With --no-restart
  // nothing takes it, so it keeps its one throughout.
  auto deadline = Clock::now() + kEventTimeout;
  while (b.Ctl("stats")["spare"].value("state", "") != "ready" && Clock::now() < deadline) {
  }
  ASSERT_EQ(b.Ctl("stats")["spare"].value("state", ""), "ready");
  ASSERT_EQ(memfds(), 3) << "the count this test relies on changed";
  ASSERT_EQ(b.Ctl("kill 1 KILL").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("exited", 1, kEventTimeout));
  // Released once the exit is handled, just after the event is out: a command round trip is a
  // later turn of the broker's loop.
  ASSERT_TRUE(b.Ctl("stats").contains("renderers"));
  EXPECT_EQ(memfds(), 2);
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 2u) << "the dead one's sad tab stays: " << list.dump();
}

TEST(BrokerTest, SpawnNavigatePingAndCloseThroughTheControlSocket) {
  BrokerProcess b({});
  json spawned = b.Ctl("spawn sbx://clock");
  ASSERT_EQ(spawned.value("ok", false), true) << spawned.dump();
  int id = spawned.value("id", 0);
  ASSERT_TRUE(b.WaitForEvent("ready", id, kEventTimeout));
  json ping = b.Ctl("ping " + std::to_string(id));
  ASSERT_TRUE(ping.contains("rtt_us")) << ping.dump();
  EXPECT_GT(ping["rtt_us"].get<double>(), 0.0);
  EXPECT_EQ(b.Ctl("navigate " + std::to_string(id) + " sbx://text/hello").value("ok", false), true);
  EXPECT_EQ(b.Ctl("list")["renderers"][0]["page"], "sbx://text/hello");
  EXPECT_EQ(b.Ctl("close " + std::to_string(id)).value("ok", false), true);
  auto closed = b.WaitForEvent("closed", id, kEventTimeout);
  ASSERT_TRUE(closed);
  // Asked to go with the shutdown message, it leaves on its own: exit code 0, no signal.
  EXPECT_EQ(closed->value("status", ""), "exited") << closed->dump();
  EXPECT_EQ(closed->value("code", -1), 0) << closed->dump();
  EXPECT_FALSE(closed->contains("signal")) << closed->dump();
  EXPECT_TRUE(b.Ctl("list")["renderers"].empty());
}

// Close is a request: a stopped renderer is woken to read it, and one that will not answer (a
// hang drill stops its reading too) is made to go.
TEST(BrokerTest, CloseWakesAStoppedRendererAndEndsAHungOne) {
  // The default hang timeout (2 s) leaves the stopped renderer running, not yet unresponsive,
  // however slow the close's round trip is on a loaded machine.
  BrokerProcess b({"--renderers", "2"});
  auto first = b.WaitForEvent("ready", 1, kEventTimeout);
  ASSERT_TRUE(first);
  ASSERT_TRUE(b.WaitForEvent("ready", 2, kEventTimeout));
  ASSERT_EQ(::kill(PidOf(*first), SIGSTOP), 0);
  ASSERT_EQ(b.Ctl("close 1").value("ok", false), true);
  auto stopped_closed = b.WaitForEvent("closed", 1, kEventTimeout);
  ASSERT_TRUE(stopped_closed) << json(b.history()).dump();
  EXPECT_EQ(stopped_closed->value("status", ""), "exited") << stopped_closed->dump();
  EXPECT_EQ(stopped_closed->value("code", -1), 0) << stopped_closed->dump();

  ASSERT_EQ(b.Ctl("hang 2").value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("unresponsive", 2, kEventTimeout)) << json(b.history()).dump();
  // This hang's, not an earlier one's: the broker holds it unresponsive now.
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 1u) << list.dump();
  ASSERT_EQ(list["renderers"][0].value("id", 0), 2) << list.dump();
  ASSERT_EQ(list["renderers"][0].value("state", ""), "unresponsive") << list.dump();
  ASSERT_EQ(b.Ctl("close 2").value("ok", false), true);
  auto hung_closed = b.WaitForEvent("closed", 2, kEventTimeout);
  ASSERT_TRUE(hung_closed) << json(b.history()).dump();
  // Unresponsive, so not asked: terminated at once rather than after the grace period.
  EXPECT_EQ(hung_closed->value("status", ""), "killed") << hung_closed->dump();
  EXPECT_EQ(hung_closed->value("signal", ""), "SIGTERM") << hung_closed->dump();
}

TEST(BrokerTest, MalformedControlInputGetsErrorsAndTheConnectionStaysUsable) {
  BrokerProcess b({});
  ASSERT_TRUE(b.Ctl("stats").contains("renderers"));
  ControlConnection c(b.control_path());
  ASSERT_TRUE(c.connected());
  const std::vector<std::string> bad = {
      "bogus",      "close",       "close x", "close 99",     "kill 1 NOPE",         "crash 1 boom",
      "navigate 1", "spawn a b c", "ping",    "\xff\xfe\x01", std::string(5000, 'A')};
  for (const auto& line : bad) {
    ASSERT_TRUE(c.SendRaw(line + "\n"));
    auto reply = c.ReadReply(5s);
    ASSERT_TRUE(reply) << "no reply to a bad line";
    EXPECT_TRUE(reply->contains("error")) << reply->dump();
  }
  ASSERT_TRUE(c.SendRaw("list\n"));
  auto reply = c.ReadReply(5s);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(reply->contains("renderers"));
}

TEST(BrokerTest, ControlRepliesKeepCommandOrderAcrossAPendingPing) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  ControlConnection c(b.control_path());
  ASSERT_TRUE(c.SendRaw("ping 1\nstats\n"));
  auto first = c.ReadReply(10s);
  auto second = c.ReadReply(10s);
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(first->contains("rtt_us")) << first->dump();
  EXPECT_TRUE(second->contains("spawns")) << second->dump();
}

TEST(BrokerTest, RendererStartedByHandExitsWithUsage) {
  LaunchSpec spec;
  spec.argv = {BinPath("sbx-renderer")};
  auto child = Launch(spec);
  ASSERT_TRUE(child);
  siginfo_t si{};
  ASSERT_EQ(::waitid(P_PIDFD, child->process.pidfd(), &si, WEXITED), 0);
  EXPECT_EQ(si.si_code, CLD_EXITED);
  EXPECT_EQ(si.si_status, 2);
}

TEST(BrokerTest, RendererCmdPrefixWrapsTheRenderer) {
  BrokerProcess b({"--renderers", "1", "--renderer-cmd-prefix", "env SBX_WRAPPED=1"});
  auto ready = b.WaitForEvent("ready", 1, kEventTimeout);
  ASSERT_TRUE(ready);
}

TEST(BrokerTest, MissingRendererIsLaunchFailedAndEndsInFailed) {
  BrokerProcess b({"--renderers", "1", "--renderer-path", "/nonexistent/sbx-renderer"});
  auto exited = b.WaitForEvent("exited", 1, kEventTimeout);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->value("status", ""), "launch-failed");
  EXPECT_TRUE(b.WaitForEvent("failed", 1, kEventTimeout));
  EXPECT_TRUE(b.Ctl("stats").contains("renderers")) << "the broker must survive";
}

}  // namespace
}  // namespace sbx::testing
