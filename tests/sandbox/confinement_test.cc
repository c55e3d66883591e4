// The sandbox from outside: a real broker's renderers, inspected through /proc the way a person
// would (and the way `sbx-ctl sandbox ID` does), plus signals typed in a terminal.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/confine.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

ino_t NsInode(pid_t pid, const std::string& ns) {
  struct stat st;
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A broker with one ready renderer; its pid and the sandbox level the broker settled on.
struct Sandboxed {
  std::unique_ptr<BrokerProcess> broker;
  pid_t pid = 0;
  std::string level;
  std::string note;
};

Sandboxed Start(std::vector<std::string> extra = {}) {
  Sandboxed s;
  std::vector<std::string> args = {"--renderers", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  s.broker = std::make_unique<BrokerProcess>(args);
  auto ready = s.broker->WaitForEvent("ready", 1, 10s);
  if (!ready) return s;
  s.pid = ready->value("pid", 0);
  json report = s.broker->Ctl("sandbox 1");
  s.level = report.value("level", "");
  s.note = report.value("note", "");
  return s;
}

// /proc/PID/cmdline as ps reads it: the arguments, without the empty ones a rewritten title
// leaves behind.
std::vector<std::string> Cmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> out;
  for (std::string arg; std::getline(in, arg, '\0');) {
    if (!arg.empty()) out.push_back(arg);
  }
  return out;
}

// Waits, up to a deadline, until the command line has an argument containing `needle`; returns
// the last command line read.
std::vector<std::string> WaitForCmdline(pid_t pid, const std::string& needle) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto args = Cmdline(pid);
    for (const auto& a : args) {
      if (a.find(needle) != std::string::npos) return args;
    }
    if (std::chrono::steady_clock::now() > deadline) return args;
    std::this_thread::sleep_for(1ms);  // the renderer acts on its next frame
  }
}

bool Has(const std::vector<std::string>& args, const std::string& arg) {
  return std::find(args.begin(), args.end(), arg) != args.end();
}

// ps shows what a renderer is, as Chrome's --type=renderer does, and the page it shows now.
TEST(ConfinementTest, TheCommandLineShowsTheTypeAndTheCurrentPage) {
  auto s = Start({"--page", "sbx://clock"});
  ASSERT_GT(s.pid, 0);
  auto args = Cmdline(s.pid);
  EXPECT_TRUE(Has(args, "--type=renderer"));
  EXPECT_TRUE(Has(args, "--id=1"));
  EXPECT_TRUE(Has(args, "--page=sbx://clock"));
  // Longer than the page it started with: one line running on into the environment's place.
  const std::string long_page = "sbx://text/" + std::string(120, 'x');
  ASSERT_TRUE(s.broker->Ctl("navigate 1 " + long_page).value("ok", false));
  args = WaitForCmdline(s.pid, "--page=" + long_page);
  ASSERT_EQ(args.size(), 1u);
  EXPECT_NE(args[0].find("--type=renderer --id=1 --page=" + long_page), std::string::npos)
      << args[0];
  // Short again: separate arguments again, with the old page gone.
  ASSERT_TRUE(s.broker->Ctl("navigate 1 about:blank").value("ok", false));
  args = WaitForCmdline(s.pid, "--page=about:blank");
  EXPECT_TRUE(Has(args, "--page=about:blank"));
  EXPECT_TRUE(Has(args, "--type=renderer"));
  for (const auto& a : args) EXPECT_EQ(a.find("xxx"), std::string::npos) << a;
}

TEST(ConfinementTest, RunningRendererHasSeccompNoNewPrivsAndNoCapabilities) {
  auto s = Start();
  ASSERT_GT(s.pid, 0);
  EXPECT_EQ(StatusField(s.pid, "Seccomp"), "2");
  EXPECT_EQ(StatusField(s.pid, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(s.pid, "CapEff"), "0000000000000000");
  EXPECT_EQ(StatusField(s.pid, "CapPrm"), "0000000000000000");
  EXPECT_EQ(StatusField(s.pid, "CapBnd"), "0000000000000000");
}

// Capabilities and no_new_privs are per thread: every thread must be confined, the IO thread
// as much as the main one.
TEST(ConfinementTest, EveryThreadOfTheRendererIsConfined) {
  auto s = Start();
  ASSERT_GT(s.pid, 0);
  std::string tasks = "/proc/" + std::to_string(s.pid) + "/task";
  int threads = 0;
  for (const auto& entry : std::filesystem::directory_iterator(tasks)) {
    std::ifstream in(entry.path() / "status");
    std::map<std::string, std::string> fields;
    for (std::string line; std::getline(in, line);) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto value = line.find_first_not_of(" \t", colon + 1);
      fields[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
    }
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(fields["Seccomp"], "2");
    EXPECT_EQ(fields["NoNewPrivs"], "1");
    EXPECT_EQ(fields["CapEff"], "0000000000000000");
    EXPECT_EQ(fields["CapPrm"], "0000000000000000");
    EXPECT_EQ(fields["CapBnd"], "0000000000000000");
    ++threads;
  }
  EXPECT_EQ(threads, 2) << "a main thread and an IO thread";
}

TEST(ConfinementTest, RendererIsTheBrokersOwnChild) {
  auto s = Start();
  ASSERT_GT(s.pid, 0);
  if (s.level != "full") GTEST_SKIP() << "namespaces unavailable here: " << s.note;
  // Sandboxed too: the broker learns its exit status from waitid, not from the namespace init.
  EXPECT_EQ(StatusField(s.pid, "PPid"), std::to_string(s.broker->pid()));
}

TEST(ConfinementTest, RendererLivesInNamespacesOfItsOwn) {
  auto s = Start();
  ASSERT_GT(s.pid, 0);
  if (s.level != "full") GTEST_SKIP() << "namespaces unavailable here: " << s.note;
  for (const char* ns : {"user", "pid", "net", "ipc", "mnt", "uts"}) {
    ino_t theirs = NsInode(s.pid, ns);
    ASSERT_NE(theirs, 0u) << ns;
    EXPECT_NE(theirs, NsInode(s.broker->pid(), ns)) << ns << " namespace shared with the broker";
  }
  // It is pid 2 under its own init, not pid 1 (which would ignore signals it has no handler for).
  std::string nspid = StatusField(s.pid, "NSpid");
  EXPECT_EQ(nspid.substr(nspid.find_last_of(" \t") + 1), "2") << nspid;
}

TEST(ConfinementTest, RendererHoldsExactlyTheDocumentedFds) {
  auto s = Start();
  ASSERT_GT(s.pid, 0);
  std::set<int> fds;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(s.pid) + "/fd")) {
    fds.insert(std::stoi(entry.path().filename()));
  }
  EXPECT_EQ(fds, (std::set<int>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(ConfinementTest, RendererHasTheDocumentedRlimits) {
  auto s = Start();
  ASSERT_GT(s.pid, 0);
  for (const auto& limit : sandbox::Limits()) {
    auto row = ProcLimit(s.pid, limit.name);
    ASSERT_TRUE(row) << limit.name;
    std::string want = limit.value == RLIM_INFINITY ? "unlimited" : std::to_string(limit.value);
    EXPECT_EQ(row->soft, want) << limit.name;
    EXPECT_EQ(row->hard, want) << limit.name;
  }
}

TEST(ConfinementTest, ReportAndListCarryTheVerdict) {
  auto s = Start();
  ASSERT_GT(s.pid, 0);
  json report = s.broker->Ctl("sandbox 1");
  EXPECT_EQ(report.value("seccomp", -1), 2) << report.dump();
  EXPECT_EQ(report.value("no_new_privs", -1), 1);
  EXPECT_EQ(report.value("cap_eff", ""), "0000000000000000");
  if (s.level == "full") {
    EXPECT_EQ(report.value("verdict", ""), "adequately sandboxed") << report.dump();
    EXPECT_TRUE(report.value("adequate", false));
  }
  json list = s.broker->Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 1u);
  EXPECT_EQ(list["renderers"][0]["sandbox"]["verdict"], report["verdict"]);
  EXPECT_TRUE(s.broker->Ctl("sandbox 99").contains("error"));
}

TEST(ConfinementTest, EscapeDrillIsDeniedAtEveryStepAndEndsInASandboxViolation) {
  auto s = Start({"--no-restart"});
  ASSERT_GT(s.pid, 0);
  ASSERT_EQ(s.broker->Ctl("crash 1 escape").value("ok", false), true);
  auto exited = s.broker->WaitForEvent("exited", 1, 10s);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->value("status", ""), "sandbox-violation") << exited->dump();
  EXPECT_EQ(exited->value("signal", ""), "SIGSYS");
  int denied = 0;
  for (const auto& e : s.broker->history()) {
    if (e.value("event", "") != "drill-report") continue;
    std::string d = e.value("detail", "");
    EXPECT_EQ(d.find("ALLOWED"), std::string::npos) << d;
    denied += d.find("denied") != std::string::npos;
  }
  // open, socket, connect, fork, kill, mq_open, a file in /tmp.
  EXPECT_EQ(denied, 7);
}

struct SignalCase {
  int sig;
  const char* status;
};

void PrintTo(const SignalCase& c, std::ostream* os) { *os << "signal " << c.sig; }

class TerminalSignalTest : public ::testing::TestWithParam<SignalCase> {};

TEST_P(TerminalSignalTest, KeepsItsMeaningForASandboxedRenderer) {
  auto s = Start({"--no-restart"});
  ASSERT_GT(s.pid, 0);
  ASSERT_EQ(::kill(s.pid, GetParam().sig), 0);
  auto exited = s.broker->WaitForEvent("exited", 1, 10s);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->value("status", ""), GetParam().status) << exited->dump();
  EXPECT_EQ(exited->value("pid", 0), s.pid);
}

INSTANTIATE_TEST_SUITE_P(Signals, TerminalSignalTest,
                         ::testing::Values(SignalCase{SIGTERM, "killed"},
                                           SignalCase{SIGSEGV, "crashed"},
                                           SignalCase{SIGKILL, "killed"},
                                           SignalCase{SIGSYS, "sandbox-violation"}),
                         [](const auto& info) { return std::to_string(info.param.sig); });

TEST(ConfinementTest, StopFromATerminalMakesASandboxedRendererUnresponsive) {
  auto s = Start({"--hang-timeout", "300"});
  ASSERT_GT(s.pid, 0);
  ASSERT_EQ(::kill(s.pid, SIGSTOP), 0);
  auto e = s.broker->WaitForEvent("unresponsive", 1, 10s);
  ::kill(s.pid, SIGCONT);
  EXPECT_TRUE(e);
  EXPECT_TRUE(s.broker->WaitForEvent("responsive", 1, 10s));
}

TEST(ConfinementTest, NoSandboxIsLoudAndShowsInTheReport) {
  auto s = Start({"--no-sandbox"});
  ASSERT_GT(s.pid, 0);
  json report = s.broker->Ctl("sandbox 1");
  EXPECT_EQ(report.value("level", ""), "off");
  EXPECT_EQ(report.value("verdict", ""), "not sandboxed (--no-sandbox)");
  EXPECT_FALSE(report.value("adequate", true));
  EXPECT_NE(StatusField(s.pid, "Seccomp"), "2");
}

}  // namespace
}  // namespace sbx::testing
