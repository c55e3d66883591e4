// A cgroup per renderer, proved on the real hierarchy: the limits are the kernel's, the OOM kill
// is the kernel's, and nothing is left behind. Every test that needs a writable hierarchy skips,
// saying why, where the broker finds none (DetectCgroups' reason).
#include "broker/cgroup.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/cli.h"
#include "broker/death_detection.h"
#include "broker/launcher.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;

#define SKIP_WITHOUT_CGROUPS(support)                                  \
  if ((support).mode == CgroupMode::kNone) {                           \
    GTEST_SKIP() << "cgroups not writable here: " << (support).reason; \
  }

class Recorder : public BrokerObserver {
 public:
  void OnBrokerEvent(const BrokerEvent& e) override { events.push_back(e); }
  const BrokerEvent* Exit(int id) const {
    for (const auto& e : events) {
      if (e.type == EventType::kExited && e.id == id) return &e;
    }
    return nullptr;
  }
  bool Ready(int id) const {
    for (const auto& e : events) {
      if (e.type == EventType::kReady && e.id == id) return true;
    }
    return false;
  }
  std::vector<BrokerEvent> events;
};

std::unique_ptr<Broker> MakeBroker(BrokerOptions o) {
  o.renderer_path = BinPath("sbx-renderer");
  o.restart = false;
  auto b = Broker::Create(std::move(o));
  return b ? std::move(*b) : nullptr;
}

// Renderer directories (r-N) left in this process's per-broker directories.
std::vector<std::string> RendererDirs(const CgroupSupport& s) {
  std::vector<std::string> out;
  for (const auto& dir : s.broker_dirs) {
    auto listing = ReadSmallFile(dir + "/cgroup.procs");  // exists while the directory does
    if (!listing) continue;
    for (int n = 1; n < 100000; ++n) {
      std::string sub = dir + "/r-" + std::to_string(n);
      struct stat st;
      if (::stat(sub.c_str(), &st) == 0) out.push_back(sub);
    }
  }
  return out;
}

// A new renderer's snapshot once it drew its first frame; nullopt if it never did.
std::optional<RendererSnapshot> SpawnReady(Broker& b, const Recorder& rec) {
  auto id = b.Spawn();
  if (!id || !RunUntil(
                 b, [&] { return rec.Ready(*id); }, 10s)) {
    return std::nullopt;
  }
  return b.Get(*id);
}

int64_t ReadInt(const std::string& path) {
  auto text = ReadSmallFile(path);
  return text ? std::stoll(*text) : -1;
}

TEST(CgroupTest, ACgroupSigkillDuringOomIsOomWithTheLimit) {
  ExitInfo killed{ExitStatus::kKilled, SIGKILL, -1, ""};
  auto oom = ClassifyCgroupOom(killed, 1, uint64_t{64} << 20);
  EXPECT_EQ(oom.status, ExitStatus::kOom);
  EXPECT_NE(oom.detail.find("64 MiB"), std::string::npos) << oom.detail;
  EXPECT_EQ(ClassifyCgroupOom(killed, 0, 1 << 20).status, ExitStatus::kKilled);
  ExitInfo hung{ExitStatus::kHung, SIGKILL, -1, "killed by the hang watchdog"};
  EXPECT_EQ(ClassifyCgroupOom(hung, 1, 1 << 20).status, ExitStatus::kHung);
  ExitInfo segv{ExitStatus::kCrashed, SIGSEGV, -1, ""};
  EXPECT_EQ(ClassifyCgroupOom(segv, 1, 1 << 20).status, ExitStatus::kCrashed);
}

TEST(CgroupTest, OptionsSetTheLimitsAndTheBudget) {
  const char* argv[] = {"sbx-broker",        "--renderer-memory", "128",
                        "--renderer-cpu=30", "--memory-budget",   "1024"};
  auto cl = ParseCommandLine(6, argv);
  ASSERT_TRUE(cl) << cl.error().ToString();
  EXPECT_EQ(cl->broker.cgroup.memory_bytes, uint64_t{128} << 20);
  EXPECT_EQ(cl->broker.cgroup.cpu_percent, 30);
  EXPECT_EQ(cl->broker.memory_budget, uint64_t{1024} << 20);
  const char* bad[] = {"sbx-broker", "--renderer-memory", "8"};
  EXPECT_FALSE(ParseCommandLine(3, bad));
}

TEST(CgroupTest, TheRendererRunsInItsCgroupUnderItsLimitsAndAboveTheBrokerForTheOomKiller) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  BrokerOptions o;
  o.cgroup.memory_bytes = uint64_t{96} << 20;
  auto b = MakeBroker(o);
  ASSERT_TRUE(b);
  Recorder rec;
  b->AddObserver(&rec);
  auto snap = SpawnReady(*b, rec);
  ASSERT_TRUE(snap);
  ASSERT_FALSE(snap->cgroup_path.empty());
  EXPECT_EQ(snap->memory_limit, uint64_t{96} << 20);
  EXPECT_GT(snap->cgroup_usage.memory_bytes, 0);
  EXPECT_GE(snap->cgroup_usage.pids, 1);
  auto procs = ReadSmallFile(snap->cgroup_path + "/cgroup.procs");
  ASSERT_TRUE(procs);
  // The renderer alone: its namespace's init stays outside, so the directory empties at reap.
  EXPECT_EQ(*procs, std::to_string(snap->pid) + "\n");
  std::string limit_file =
      b->cgroups().mode == CgroupMode::kV2 ? "/memory.max" : "/memory.limit_in_bytes";
  EXPECT_EQ(ReadInt(snap->cgroup_path + limit_file), int64_t{96} << 20);
  EXPECT_EQ(ReadInt("/proc/" + std::to_string(snap->pid) + "/oom_score_adj"), 300);
  EXPECT_LT(ReadInt("/proc/self/oom_score_adj"), 300);
  // Once it runs, the broker holds the OOM counter of its cgroup and none of its cgroup.procs.
  int procs_open = 0, oom_open = 0;
  // (On v1 the pids and cpu hierarchies' cgroup.procs lie outside cgroup_path.)
  for (const auto& target : RendererSideFds(::getpid())) {
    procs_open += target.ends_with("/cgroup.procs");
    if (!target.starts_with(snap->cgroup_path + "/")) continue;
    oom_open += target.ends_with("/memory.events") || target.ends_with("/memory.oom_control");
  }
  EXPECT_EQ(procs_open, 0);
  EXPECT_EQ(oom_open, 1);
  b->RemoveObserver(&rec);
}

// --no-cgroup is how sbx-bench measures what a cgroup costs: the renderer runs, with none, and
// the broker says why wherever it reports cgroups.
TEST(CgroupTest, NoCgroupStartsRenderersWithoutOne) {
  const char* argv[] = {"sbx-broker", "--no-cgroup"};
  auto cl = ParseCommandLine(2, argv);
  ASSERT_TRUE(cl) << cl.error().ToString();
  EXPECT_FALSE(cl->broker.cgroups);
  auto b = MakeBroker(cl->broker);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->cgroups().mode, CgroupMode::kNone);
  EXPECT_NE(b->cgroups().reason.find("--no-cgroup"), std::string::npos) << b->cgroups().reason;
  Recorder rec;
  b->AddObserver(&rec);
  auto snap = SpawnReady(*b, rec);
  ASSERT_TRUE(snap);
  EXPECT_TRUE(snap->cgroup_path.empty());
  EXPECT_EQ(snap->cgroup_usage.memory_bytes, -1);
  b->RemoveObserver(&rec);
}

TEST(CgroupTest, TheOomKillDrillEndsInOomWithTheLimitAndTheOthersGoOn) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  BrokerOptions o;
  o.cgroup.memory_bytes = uint64_t{64} << 20;
  auto b = MakeBroker(o);
  ASSERT_TRUE(b);
  Recorder rec;
  b->AddObserver(&rec);
  auto victim = b->Spawn();
  auto other = b->Spawn();
  ASSERT_TRUE(victim && other);
  ASSERT_TRUE(RunUntil(
      *b, [&] { return rec.Ready(*victim) && rec.Ready(*other); }, 10s));
  ASSERT_TRUE(b->Crash(*victim, protocol::CrashKind::kOomKill));
  ASSERT_TRUE(RunUntil(
      *b, [&] { return rec.Exit(*victim) != nullptr; }, 20s));
  const BrokerEvent* e = rec.Exit(*victim);
  ASSERT_TRUE(e->exit);
  EXPECT_EQ(e->exit->status, ExitStatus::kOom) << e->exit->detail;
  EXPECT_EQ(e->exit->signal, SIGKILL);
  EXPECT_NE(e->exit->detail.find("cgroup memory limit of 64 MiB"), std::string::npos)
      << e->exit->detail;
  bool answered = false;
  ASSERT_TRUE(b->Ping(*other, [&](Result<int64_t> rtt) { answered = rtt.has_value(); }));
  ASSERT_TRUE(RunUntil(
      *b, [&] { return answered; }, 10s));
  auto snap = b->Get(*other);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->state, RendererState::kRunning);
  b->RemoveObserver(&rec);
}

TEST(CgroupTest, NoRendererCgroupIsLeftAfterAnyKindOfExit) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  auto b = MakeBroker({});
  ASSERT_TRUE(b);
  Recorder rec;
  b->AddObserver(&rec);
  std::vector<int> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(b->Spawn().value_or(0));
  ASSERT_TRUE(RunUntil(
      *b, [&] { return rec.Ready(ids[0]) && rec.Ready(ids[3]); }, 10s));
  // The spare renderer, while one waits or is being launched, has a cgroup of its own: counted
  // apart.
  auto spare_dirs = [&] {
    BrokerStats s = b->Stats();
    return s.spare_pid != 0 || s.spare_launching ? b->cgroups().broker_dirs.size() : 0;
  };
  EXPECT_EQ(RendererDirs(b->cgroups()).size(), 4u * b->cgroups().broker_dirs.size() + spare_dirs());
  ASSERT_TRUE(b->Kill(ids[0], SIGKILL));
  ASSERT_TRUE(b->Crash(ids[1], protocol::CrashKind::kSegv));
  ASSERT_TRUE(b->Close(ids[2]));
  ASSERT_TRUE(b->Oom(ids[3]));
  ASSERT_TRUE(RunUntil(
      *b,
      [&] { return b->Stats().running == 0 && RendererDirs(b->cgroups()).size() == spare_dirs(); },
      20s));
  EXPECT_EQ(RendererDirs(b->cgroups()).size(), spare_dirs());
  b->RemoveObserver(&rec);
}

TEST(CgroupTest, ABrokerKilledWithSigkillLeavesNothingTheNextStartDoesNotRemove) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  std::string dead_dir;
  {
    BrokerProcess broker({"--renderers", "2"});
    ASSERT_TRUE(broker.started());
    auto ready = broker.WaitForEvent("ready", 2, 15s);
    ASSERT_TRUE(ready);
    std::string mine = support.broker_dirs.front();
    dead_dir = mine.substr(0, mine.rfind('/')) + "/sbx-" + std::to_string(broker.pid());
    struct stat st;
    ASSERT_EQ(::stat((dead_dir + "/r-1").c_str(), &st), 0) << dead_dir;
    ASSERT_TRUE(broker.SignalAndWait(SIGKILL, 10s));
  }
  auto b = MakeBroker({});  // the next start
  ASSERT_TRUE(b);
  struct stat st;
  EXPECT_NE(::stat(dead_dir.c_str(), &st), 0) << dead_dir << " survived the start-up sweep";
}

TEST(CgroupTest, SpawnsPastTheMemoryBudgetAreRefused) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  BrokerOptions o;
  o.cgroup.memory_bytes = uint64_t{64} << 20;
  o.memory_budget = uint64_t{128} << 20;
  auto b = MakeBroker(o);
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->Spawn());
  ASSERT_TRUE(b->Spawn());
  auto third = b->Spawn();
  ASSERT_FALSE(third);
  EXPECT_NE(third.error().what.find("memory budget of 128 MiB"), std::string::npos)
      << third.error().ToString();
}

// A process launched into a cgroup as a renderer is, running a shell script.
struct Shell {
  RendererCgroup cgroup;
  LaunchedChild child;
};

std::optional<Shell> LaunchShell(const CgroupSupport& s, CgroupLimits limits,
                                 const std::string& script) {
  auto cg = RendererCgroup::Create(s, limits);
  if (!cg) return std::nullopt;
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.cgroup_procs = cg->procs_fds();
  auto child = Launch(spec);
  if (!child) return std::nullopt;
  return Shell{std::move(*cg), std::move(*child)};
}

// 16 renderers spinning on a 2-core machine: each is held to its CPU bound, and the broker and a
// 17th renderer still answer every ping. The bound is 1% of a CPU, so that even on a machine
// busy with other work each spinner reaches it, and its bound, not the machine, stops it.
TEST(CgroupTest, SixteenSpinningRenderersAreThrottledAndPingsAreStillAnswered) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  BrokerOptions o;
  o.cgroup.cpu_percent = 1;
  auto b = MakeBroker(o);
  ASSERT_TRUE(b);
  Recorder rec;
  b->AddObserver(&rec);
  std::vector<int> ids;
  for (int i = 0; i < 17; ++i) ids.push_back(b->Spawn().value_or(0));
  ASSERT_TRUE(RunUntil(
      *b,
      [&] { return std::all_of(ids.begin(), ids.end(), [&](int id) { return rec.Ready(id); }); },
      20s));
  const int healthy = ids.back();
  ids.pop_back();
  for (int id : ids) ASSERT_TRUE(b->Hang(id));
  for (int i = 0; i < 10; ++i) {
    std::optional<Result<int64_t>> rtt;
    ASSERT_TRUE(b->Ping(healthy, [&](Result<int64_t> r) { rtt = std::move(r); }));
    ASSERT_TRUE(RunUntil(
        *b, [&] { return rtt.has_value(); }, 10s))
        << "ping " << i << " went unanswered";
    EXPECT_TRUE(*rtt) << rtt->error().ToString();
  }
  auto throttled = [&] {
    auto snap = b->Get(ids.front());
    return snap && snap->cgroup_usage.throttled_us > 0;
  };
  EXPECT_TRUE(RunUntil(*b, throttled, 10s)) << "a spinning renderer was never throttled";
  b->RemoveObserver(&rec);
}

TEST(CgroupTest, ForkingPastPidsMaxIsStoppedByTheCgroup) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  CgroupLimits limits;
  limits.pids = 4;
  // Each background sleep is one more process; the fifth fork fails with EAGAIN.
  auto sh = LaunchShell(support, limits,
                        "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done 2>/dev/null; exit 0");
  ASSERT_TRUE(sh);
  auto exited = WaitReadable(sh->child.process.pidfd(), 10'000);
  ASSERT_TRUE(exited && *exited);
  auto exit = sh->child.process.TryReap();
  ASSERT_TRUE(exit);
  EXPECT_NE(exit->code, 0) << "the shell forked 8 times under pids.max 4";
  EXPECT_LE(sh->cgroup.Usage().pids, 4);
}

TEST(CgroupTest, ASpinningProcessIsThrottledToItsCpuBound) {
  auto support = DetectCgroups();
  SKIP_WITHOUT_CGROUPS(support);
  CgroupLimits limits;
  limits.cpu_percent = 10;
  auto sh = LaunchShell(support, limits, "while :; do :; done");
  ASSERT_TRUE(sh);
  // The kernel sends no event for throttling: poll cpu.stat, with a deadline.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sh->cgroup.Usage().throttled_us <= 0 && std::chrono::steady_clock::now() < deadline) {
    ::usleep(20'000);
  }
  EXPECT_GT(sh->cgroup.Usage().throttled_us, 0);
  (void)sh->child.process.KillAndReap(MonotonicNs() + ChildProcess::kReapBoundNs);
}

}  // namespace
}  // namespace sbx::testing
