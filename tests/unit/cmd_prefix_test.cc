// The start-up check of --renderer-cmd-prefix: the wrapper found on PATH or said to be missing,
// and the wrappers that cannot work in the sandbox refused with what to do instead.
#include "broker/cmd_prefix.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
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
    auto unconfined = CheckCmdPrefix({program, "-batch", "--args"}, /*sandboxed=*/false);
    ASSERT_TRUE(unconfined) << name << ": " << unconfined.error().ToString();
    EXPECT_EQ(*unconfined, (Prefix{program, "-batch", "--args"}));
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

TEST(CmdPrefixTest, AGdbGivenNoCommandsIsRefusedEvenUnconfined) {
  test::ScratchDir dir("sbx-cmd-prefix");
  ASSERT_FALSE(dir.path().empty());
  std::string gdb = MakeProgram(dir.path(), "gdb");
  for (const Prefix& words :
       {Prefix{gdb, "--args"}, Prefix{gdb, "-q"}, Prefix{gdb}, Prefix{gdb, "--args", "-batch"}}) {
    auto r = CheckCmdPrefix(words, /*sandboxed=*/false);
    ASSERT_FALSE(r) << words.size();
    EXPECT_NE(r.error().what.find("'gdb -q -batch -ex run -ex bt --args'"), std::string::npos)
        << r.error().what;
  }
  for (const Prefix& words :
       {Prefix{gdb, "-q", "-batch", "-ex", "run", "--args"}, Prefix{gdb, "--batch", "--args"},
        Prefix{gdb, "-ex", "run", "--args"}, Prefix{gdb, "--eval-command=run", "--args"},
        Prefix{gdb, "-x", "cmds.gdb", "--args"}}) {
    EXPECT_TRUE(CheckCmdPrefix(words, /*sandboxed=*/false)) << words[1];
  }
  // gdbserver reads no commands: it waits for a debugger to connect.
  EXPECT_TRUE(CheckCmdPrefix({MakeProgram(dir.path(), "gdbserver"), ":1234"}, false));
}

TEST(CmdPrefixTest, SudoUserIsARealNonRootAccountNamedByDigits) {
  const passwd* pw = ::getpwnam("nobody");
  if (pw == nullptr || pw->pw_uid == 0 || pw->pw_gid == 0) GTEST_SKIP() << "no nobody account";
  std::string uid = std::to_string(pw->pw_uid);
  auto user = ParseSudoUser(uid.c_str(), nullptr);
  ASSERT_TRUE(user);
  EXPECT_EQ(user->uid, pw->pw_uid);
  EXPECT_EQ(user->gid, pw->pw_gid);  // no SUDO_GID: the account's own group
  EXPECT_EQ(user->name, pw->pw_name);
  // A SUDO_GID that names a group is taken; root's group, or none, is not.
  if (const group* gr = ::getgrnam("nogroup"); gr != nullptr && gr->gr_gid != 0) {
    std::string gid = std::to_string(gr->gr_gid);
    EXPECT_EQ(ParseSudoUser(uid.c_str(), gid.c_str())->gid, gr->gr_gid);
  }
  for (const char* gid : {"0", "x", "", "-1"}) {
    EXPECT_EQ(ParseSudoUser(uid.c_str(), gid)->gid, pw->pw_gid) << gid;
  }
  uid_t unused = 59000;
  while (unused < 60000 && ::getpwuid(unused) != nullptr) ++unused;
  std::string no_account = std::to_string(unused);
  std::string padded = " " + uid, plus = "+" + uid, trailing = uid + "x";
  for (const std::string& bad : {std::string("0"), std::string("00"), std::string(""),
                                 std::string("abc"), std::string("-1"), std::string("4294967295"),
                                 std::string("99999999999"), padded, plus, trailing, no_account}) {
    EXPECT_FALSE(ParseSudoUser(bad.c_str(), nullptr)) << "'" << bad << "'";
  }
  EXPECT_FALSE(ParseSudoUser(nullptr, nullptr));
}

TEST(CmdPrefixTest, WhoseFilesAWrapperWritesIsSaidAtStart) {
  std::string own = WrapperOwnerNote(std::nullopt, 60901);
  EXPECT_NE(own.find("belong to uid 60901"), std::string::npos) << own;
  EXPECT_NE(own.find("start the broker with sudo"), std::string::npos) << own;
  EXPECT_NE(own.find("from your own account"), std::string::npos) << own;
  std::string sudo = WrapperOwnerNote(InvokingUser{1000, 1000, "alice"}, 60901);
  EXPECT_EQ(std::count(sudo.begin(), sudo.end(), '\n'), 1) << "one line: " << sudo;
  EXPECT_NE(sudo.find("run as alice (uid 1000, gid 1000)"), std::string::npos) << sudo;
  EXPECT_NE(sudo.find("can signal and trace these renderers"), std::string::npos) << sudo;
}

}  // namespace
}  // namespace sbx
