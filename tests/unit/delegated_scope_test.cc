// An unprivileged broker's re-entry into a systemd scope of its own. The machine running the
// tests need not have a systemd user manager, so the systemd side is played by a script named
// systemd-run placed first on PATH, which logs its arguments and runs what follows "--", as
// `systemd-run --scope` does. What is tested is sbx's side: when it asks, what it runs, and
// that a missing, failing or silent systemd never costs the broker its start.
#include "broker/delegated_scope.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using test::ForkChild;
using test::ReadAllWithin;
using test::ScratchDir;
using test::WaitForExit;

ScopeFacts NeedsScope() {
  ScopeFacts f;
  f.own = {"/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope", true, false};
  return f;
}

void WriteScript(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs ReenterThroughSystemd in a child with `dir` first on PATH. Returns what the child
// printed (the reason it came back with, then the marker it sees) and its exit code.
std::pair<std::string, int> Reenter(const std::string& dir, const std::string& program,
                                    std::vector<std::string> args = {}) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) return {"pipe failed", -1};
  UniqueFd rd(ends[0]), wr(ends[1]);
  auto child = ForkChild([&] {
    std::string path = dir + ":/usr/bin:/bin";
    ::setenv("PATH", path.c_str(), 1);
    ::unsetenv(kDelegatedScopeEnv);
    std::string why = ReenterThroughSystemd(program, args);
    const char* marker = std::getenv(kDelegatedScopeEnv);
    why += std::string("|marker=") + (marker != nullptr ? marker : "unset");
    (void)!::write(wr.get(), why.data(), why.size());
    ::_exit(99);
  });
  wr.reset();
  auto out = ReadAllWithin(rd.get());
  auto si = WaitForExit(child.pidfd.get());
  return {out.value_or("read timed out"), si ? si->si_status : -1};
}

TEST(DelegatedScopeTest, AsksOnlyWhenTheOwnV2CgroupOffersControllersButCannotServe) {
  EXPECT_FALSE(WhyNoScopeNeeded(NeedsScope()).has_value());
  ScopeFacts f = NeedsScope();
  f.root = true;
  EXPECT_TRUE(WhyNoScopeNeeded(f).has_value());
  f = NeedsScope();
  f.reentered = true;
  EXPECT_TRUE(WhyNoScopeNeeded(f).has_value());
  f = NeedsScope();
  f.cgroups_wanted = false;
  EXPECT_TRUE(WhyNoScopeNeeded(f).has_value());
  f = NeedsScope();
  f.own.dir.clear();
  EXPECT_TRUE(WhyNoScopeNeeded(f).has_value());
  f = NeedsScope();
  f.own.controllers = false;  // cgroup v1 holds them, as on a hybrid machine
  EXPECT_TRUE(WhyNoScopeNeeded(f).has_value());
  f = NeedsScope();
  f.own.usable = true;
  EXPECT_TRUE(WhyNoScopeNeeded(f).has_value());
}

TEST(DelegatedScopeTest, TheCommandRunsTheSameProgramWithTheSameArguments) {
  std::vector<std::string> args = {"--renderers", "2", "a b"};
  EXPECT_EQ(
      ScopeCommand("/usr/bin/sbx-broker", args),
      (std::vector<std::string>{"systemd-run", "--user", "--scope", "-p", "Delegate=yes", "--quiet",
                                "--", "/usr/bin/sbx-broker", "--renderers", "2", "a b"}));
}

TEST(DelegatedScopeTest, ProbesThenBecomesTheProgramInTheScopeWithTheMarkerSet) {
  ScratchDir dir("sbx-scope");
  ASSERT_FALSE(dir.path().empty());
  WriteScript(dir.path() + "/systemd-run",
              "echo \"$*\" >> \"" + dir.path() +
                  "/log\"\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n");
  WriteScript(dir.path() + "/program", "echo \"marker=$" + std::string(kDelegatedScopeEnv) +
                                           " args=$*\" > \"" + dir.path() + "/ran\"\nexit 7\n");
  auto [out, code] = Reenter(dir.path(), dir.path() + "/program", {"--one", "two"});
  EXPECT_EQ(code, 7) << out;  // the program's own exit: the child became it
  EXPECT_EQ(ReadFile(dir.path() + "/log"),
            "--user --scope -p Delegate=yes --quiet -- true\n"
            "--user --scope -p Delegate=yes --quiet -- " +
                dir.path() + "/program --one two\n");
  EXPECT_EQ(ReadFile(dir.path() + "/ran"), "marker=1 args=--one two\n");
}

TEST(DelegatedScopeTest, ASystemdWithoutAUserManagerLeavesTheBrokerWhereItIsAndSaysWhy) {
  ScratchDir dir("sbx-scope");
  ASSERT_FALSE(dir.path().empty());
  WriteScript(dir.path() + "/systemd-run",
              "echo 'Failed to connect to bus: No such file or directory' >&2\nexit 1\n");
  WriteScript(dir.path() + "/program", "exit 0\n");
  auto [out, code] = Reenter(dir.path(), dir.path() + "/program");
  EXPECT_EQ(code, 99);  // came back
  EXPECT_EQ(out,
            "systemd-run --user: Failed to connect to bus: No such file or directory"
            "|marker=unset");
}

TEST(DelegatedScopeTest, NoSystemdRunOnThePathIsSaidSo) {
  ScratchDir dir("sbx-scope");
  ASSERT_FALSE(dir.path().empty());
  int ends[2];
  ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
  UniqueFd rd(ends[0]), wr(ends[1]);
  auto child = ForkChild([&] {
    ::setenv("PATH", dir.path().c_str(), 1);  // nothing in it
    std::string why = ReenterThroughSystemd("/bin/true", {});
    (void)!::write(wr.get(), why.data(), why.size());
  });
  wr.reset();
  EXPECT_EQ(ReadAllWithin(rd.get()).value_or(""), "systemd-run is not installed");
  ASSERT_TRUE(WaitForExit(child.pidfd.get()).has_value());
}

TEST(DelegatedScopeTest, ASystemdThatNeverAnswersIsGivenUpAfterTheProbeBound) {
  ScratchDir dir("sbx-scope");
  ASSERT_FALSE(dir.path().empty());
  WriteScript(dir.path() + "/systemd-run", "exec sleep 600\n");
  WriteScript(dir.path() + "/program", "exit 0\n");
  auto [out, code] = Reenter(dir.path(), dir.path() + "/program");
  EXPECT_EQ(code, 99);
  EXPECT_EQ(out, "systemd-run --user gave no answer within 5 s|marker=unset");
}

}  // namespace
}  // namespace sbx
