// The start-up check of --renderer-cmd-prefix: the wrapper found on PATH or said to be missing,
// and the wrappers that cannot work in the sandbox refused with what to do instead.
#include "broker/cmd_prefix.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using Prefix = std::vector<std::string>;

// An executable file of that name in dir.
std::string MakeProgram(const std::string& dir, const std::string& name) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << "#!/bin/sh\nexec \"$@\"\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

// Sets PATH for one scope.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& path) {
    const char* old = std::getenv("PATH");
    if (old != nullptr) saved_ = old;
    ::setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() { ::setenv("PATH", saved_.c_str(), 1); }

 private:
  std::string saved_;
};

TEST(CmdPrefixTest, NoPrefixIsNoPrefix) {
  auto r = CheckCmdPrefix({}, true);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->empty());
}

TEST(CmdPrefixTest, AWrapperIsResolvedOnPathAndKeepsItsArguments) {
  test::ScratchDir dir("sbx-cmd-prefix");
  ASSERT_FALSE(dir.path().empty());
  std::string wrapper = MakeProgram(dir.path(), "my-wrapper");
  ScopedPath path("/nonexistent-dir:" + dir.path());
  auto r = CheckCmdPrefix({"my-wrapper", "-o", "out.txt"}, true);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, (Prefix{wrapper, "-o", "out.txt"}));
}

TEST(CmdPrefixTest, AWrapperThatIsNotThereIsReportedAsNotFound) {
  test::ScratchDir dir("sbx-cmd-prefix");
  ASSERT_FALSE(dir.path().empty());
  // A directory on PATH that cannot be searched is what made execvp say "Permission denied".
  ::chmod(dir.path().c_str(), 0);
  ScopedPath path(dir.path() + ":/nonexistent-dir");
  auto r = CheckCmdPrefix({"sbx-no-such-wrapper", "-q"}, true);
  ::chmod(dir.path().c_str(), 0700);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what,
            "--renderer-cmd-prefix: sbx-no-such-wrapper: command not found on PATH");
  auto absolute = CheckCmdPrefix({dir.path() + "/missing"}, false);
  ASSERT_FALSE(absolute);
  EXPECT_NE(absolute.error().what.find("is not an executable file"), std::string::npos);
}

TEST(CmdPrefixTest, GdbAndValgrindAreRefusedInTheSandboxWithTheWayOut) {
  test::ScratchDir dir("sbx-cmd-prefix");
  ASSERT_FALSE(dir.path().empty());
  for (const char* name : {"gdb", "gdbserver", "valgrind"}) {
    std::string program = MakeProgram(dir.path(), name);
    auto refused = CheckCmdPrefix({program, "--args"}, /*sandboxed=*/true);
    ASSERT_FALSE(refused) << name;
    EXPECT_NE(refused.error().what.find(std::string(name) + " "), std::string::npos)
        << refused.error().what;
    EXPECT_NE(refused.error().what.find("--no-sandbox --renderer-cmd-prefix '"), std::string::npos)
        << refused.error().what;
    auto unconfined = CheckCmdPrefix({program, "--args"}, /*sandboxed=*/false);
    ASSERT_TRUE(unconfined) << name << ": " << unconfined.error().ToString();
    EXPECT_EQ(*unconfined, (Prefix{program, "--args"}));
  }
  // Only the program's own name counts, not a directory or an argument that looks like one.
  std::string sub = dir.path() + "/gdb.d";
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  EXPECT_TRUE(CheckCmdPrefix({MakeProgram(sub, "strace"), "gdb"}, true));
}

TEST(CmdPrefixTest, AnExitSeenThroughAWrapperSaysSo) {
  EXPECT_EQ(WrapperExitNote({}), "");
  EXPECT_EQ(WrapperExitNote({"/usr/bin/gdb", "--args"}),
            "seen through --renderer-cmd-prefix gdb: the status may be the wrapper's, not the "
            "renderer's");
}

}  // namespace
}  // namespace sbx
