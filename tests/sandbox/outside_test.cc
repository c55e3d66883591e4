// The layers the launcher applies before exec, seen on a renderer that never calls any sandbox
// code (tests/bare_renderer): from outside through /proc, and from inside by what it can reach.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "broker/broker.h"
#include "ipc/unique_fd.h"
#include "sandbox/confine.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Bare {
  std::unique_ptr<BrokerProcess> broker;
  pid_t pid = 0;
  std::string level;
};

// A broker whose renderers are the bare renderer in `mode`; waits for renderer 1's first line.
Bare StartBare(const std::string& mode, int renderers = 1) {
  Bare b;
  b.broker = std::make_unique<BrokerProcess>(std::vector<std::string>{
      "--renderers", std::to_string(renderers), "--no-restart", "--renderer-path",
      BinPath("sbx-bare-renderer"), "--page", "bare://" + mode});
  auto spawned = b.broker->WaitForEvent("spawned", 1, 10s);
  if (!spawned) return b;
  auto up = b.broker->WaitFor(
      [](const json& e) {
        return e.value("event", "") == "log" && e.value("id", 0) == 1 &&
               e.value("line", "").starts_with("bare: up");
      },
      10s);
  if (!up) return b;
  b.pid = spawned->value("pid", 0);
  b.level = b.broker->Ctl("sandbox 1").value("level", "");
  return b;
}

TEST(OutsideTest, ARendererThatNeverConfinesItselfIsConfinedFromOutside) {
  auto b = StartBare("hold");
  ASSERT_GT(b.pid, 0);
  if (b.level != "full") GTEST_SKIP() << "namespaces unavailable here";
  for (const char* cap : {"CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"}) {
    EXPECT_EQ(StatusField(b.pid, cap), "0000000000000000") << cap;
  }
  EXPECT_EQ(StatusField(b.pid, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(b.pid, "Seccomp"), "2");
  EXPECT_EQ(StatusField(b.pid, "Seccomp_filters"), "1") << "the launcher's filter alone";
  // Its root is the empty, read-only tmpfs.
  std::string proc = "/proc/" + std::to_string(b.pid);
  struct statfs fs;
  ASSERT_EQ(::statfs((proc + "/root").c_str(), &fs), 0);
  EXPECT_EQ(fs.f_type, static_cast<decltype(fs.f_type)>(TMPFS_MAGIC));
  EXPECT_TRUE(std::filesystem::is_empty(proc + "/root"));
  // Its stdio: /dev/null, then one pipe twice.
  EXPECT_EQ(std::filesystem::read_symlink(proc + "/fd/0"), "/dev/null");
  std::string out = std::filesystem::read_symlink(proc + "/fd/1");
  EXPECT_TRUE(out.starts_with("pipe:")) << out;
  EXPECT_EQ(std::filesystem::read_symlink(proc + "/fd/2"), out);
  // The rlimits set before exec (every one but the process limit, which the renderer sets).
  for (const auto& limit : sandbox::Limits()) {
    if (!limit.before_exec) continue;
    auto row = ProcLimit(b.pid, limit.name);
    ASSERT_TRUE(row) << limit.name;
    std::string want = limit.value == RLIM_INFINITY ? "unlimited" : std::to_string(limit.value);
    EXPECT_EQ(row->hard, want) << limit.name;
  }
  // The report tells it apart from a renderer that stacked its own filter.
  json report = b.broker->Ctl("sandbox 1");
  EXPECT_EQ(report.value("verdict", ""), "contained by the launcher's filter only")
      << report.dump();
  EXPECT_FALSE(report.value("adequate", true));
}

TEST(OutsideTest, FromInsideItReachesNothingAndMountKillsIt) {
  auto b = StartBare("hold");  // renderer 1, the sibling
  ASSERT_GT(b.pid, 0);
  if (b.level != "full") GTEST_SKIP() << "namespaces unavailable here";
  ASSERT_TRUE(b.broker->Ctl("spawn bare://escape").contains("id"));
  auto exited = b.broker->WaitForEvent("exited", 2, 10s);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->value("status", ""), "sandbox-violation") << exited->dump();
  EXPECT_EQ(exited->value("signal", ""), "SIGSYS");
  std::vector<std::string> lines;
  for (const auto& e : b.broker->history()) {
    if (e.value("event", "") == "log" && e.value("id", 0) == 2) lines.push_back(e["line"]);
  }
  auto has = [&](const std::string& l) {
    return std::find(lines.begin(), lines.end(), l) != lines.end();
  };
  // The launcher's filter is an allowlist: files, signals to others and sockets are refused as
  // the renderer's own policy refuses them, and mount, in no table, kills.
  EXPECT_TRUE(has("bare: open /proc/1/mem: Operation not permitted"));
  EXPECT_TRUE(has("bare: open /etc/passwd: Operation not permitted"));
  EXPECT_TRUE(has("bare: kill -1: Operation not permitted"));
  EXPECT_TRUE(has("bare: socket: Operation not permitted"));
  EXPECT_TRUE(has("bare: mount next"));
  for (const auto& l : lines) EXPECT_EQ(l.find("ALLOWED"), std::string::npos) << l;
  // The sibling lives on.
  json list = b.broker->Ctl("list");
  bool sibling_running = false;
  for (const auto& r : list["renderers"]) {
    sibling_running |= r.value("id", 0) == 1 && r.value("pid", 0) == b.pid;
  }
  EXPECT_TRUE(sibling_running) << list.dump();
}

// A root broker's renderers run as an id no other broker holds: one taken by another broker's
// claim (the abstract socket it binds, docs/SANDBOX.md) is passed over even before any process
// runs as it, which is the moment two brokers starting together would otherwise collide.
TEST(OutsideTest, ARootBrokerPassesOverAnIdAnotherBrokerClaimed) {
  if (::geteuid() != 0) GTEST_SKIP() << "only a root broker maps renderers to ids of their own";
  // Claim the first id this test can: the one a broker starting now would take first.
  UniqueFd claim;
  uid_t claimed = 0;
  for (uid_t id = 60900; id <= 60999 && !claim; ++id) {
    claim = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(claim);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string name = RendererIdClaimName(id);
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (::bind(claim.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
      claimed = id;
    } else {
      claim.reset();
    }
  }
  ASSERT_NE(claimed, 0u);
  BrokerProcess broker({"--renderers", "1", "--no-restart"});
  auto spawned = broker.WaitForEvent("spawned", 1, 10s);
  ASSERT_TRUE(spawned);
  pid_t pid = spawned->value("pid", 0);
  if (broker.Ctl("sandbox 1").value("level", "") != "full") GTEST_SKIP() << "no namespaces here";
  std::istringstream uids(StatusField(pid, "Uid"));
  uid_t uid = 0;
  uids >> uid;
  EXPECT_NE(uid, claimed);
  EXPECT_GE(uid, 60900u);
  EXPECT_LE(uid, 60999u);
}

}  // namespace
}  // namespace sbx::testing
