// sbx-ctl and sbx-broker as a person meets them in a terminal: help with no broker, the list as
// a table on a terminal and as the broker's JSON line for scripts, errors that say what is valid,
// and a --renderer-cmd-prefix checked before any renderer is launched.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "broker/control_server.h"
#include "broker/event_json.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/test_util.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kEventTimeout = 10s;

struct Output {
  int exit_code = -1;  // -1: did not exit normally within the deadline
  std::string out;     // with "\r\n" turned back into "\n" when stdout was a terminal
  std::string err;
};

// Reads until EOF (or EIO, which a terminal's master side reads once the last writer is gone).
std::string Drain(int fd, int64_t deadline_ns) {
  std::string text;
  uint8_t buf[4096];
  while (MonotonicNs() < deadline_ns) {
    auto ready = WaitReadable(fd, test::RemainingMs(deadline_ns));
    if (!ready || !*ready) break;
    auto n = ReadSome(fd, buf);
    if (!n || *n == 0) break;
    text.append(reinterpret_cast<const char*>(buf), *n);
  }
  return text;
}

// Runs argv with stdout on a pipe, or on a new terminal when `terminal`; stderr on a pipe.
Output RunProgram(const std::vector<std::string>& argv, bool terminal,
                  const std::vector<std::string>& env = {}) {
  Output result;
  UniqueFd out_read, out_write;
  if (terminal) {
    out_read = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!out_read || ::grantpt(out_read.get()) != 0 || ::unlockpt(out_read.get()) != 0) {
      return result;
    }
    out_write = UniqueFd(::open(::ptsname(out_read.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
  } else {
    auto p = MakePipe(false);
    if (!p) return result;
    out_read = std::move(p->read);
    out_write = std::move(p->write);
  }
  auto err = MakePipe(false);
  if (!out_write || !err) return result;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  test::Child child = test::ForkChild([&] {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    if (::dup2(out_write.get(), 1) < 0 || ::dup2(err->write.get(), 2) < 0) ::_exit(125);
    ::execv(args[0], args.data());
    ::_exit(126);
  });
  out_write.reset();
  err->write.reset();
  int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  std::string out = Drain(out_read.get(), deadline);
  result.err = Drain(err->read.get(), deadline);
  for (char c : out) {
    if (c != '\r') result.out += c;
  }
  auto exit = test::WaitForExit(child.pidfd.get(), test::RemainingMs(deadline));
  if (exit && exit->si_code == CLD_EXITED) result.exit_code = exit->si_status;
  return result;
}

// A shell script of that name and body in dir, executable by anyone; its path.
std::string MakeScript(const std::string& dir, const std::string& name, const std::string& body) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body;
  return ::chmod(path.c_str(), 0755) == 0 ? path : "";
}

Output Ctl(const BrokerProcess& b, const std::vector<std::string>& words, bool terminal) {
  std::vector<std::string> argv = {BinPath("sbx-ctl"), "--control", b.control_path()};
  argv.insert(argv.end(), words.begin(), words.end());
  return RunProgram(argv, terminal);
}

TEST(CtlTest, HelpNeedsNoBrokerAndIsWhatABrokerWouldSay) {
  std::string nowhere = "SBX_CONTROL=/nonexistent/" + UniqueName("sbx-ctl") + ".sock";
  Output piped = RunProgram({BinPath("sbx-ctl"), "help"}, false, {nowhere});
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out, DumpJson(HelpJson()) + "\n");
  EXPECT_EQ(piped.err, "");

  Output shown = RunProgram({BinPath("sbx-ctl"), "help"}, true, {nowhere});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(shown.out.starts_with("usage: sbx-ctl")) << shown.out;
  EXPECT_NE(shown.out.find("\n  kill ID [SIGNAL]"), std::string::npos) << shown.out;

  // Anything else still needs a broker, and says where it looked.
  Output list = RunProgram({BinPath("sbx-ctl"), "list"}, false, {nowhere});
  EXPECT_EQ(list.exit_code, 2);
  EXPECT_NE(list.err.find("cannot reach a broker at /nonexistent/"), std::string::npos) << list.err;
}

TEST(CtlTest, ListIsATableOnATerminalAndTheBrokersJsonLineOtherwise) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  int pid = b.Ctl("list")["renderers"][0].value("pid", 0);

  for (bool json_flag : {false, true}) {
    std::vector<std::string> words = {"list"};
    if (json_flag) words.insert(words.begin(), "--json");
    // --json wins over a terminal; without it, a pipe gets the JSON line.
    Output o = Ctl(b, words, /*terminal=*/json_flag);
    EXPECT_EQ(o.exit_code, 0) << o.err;
    ASSERT_EQ(test::SplitLines(o.out).size(), 1u) << o.out;
    json reply = json::parse(o.out, nullptr, false);
    ASSERT_TRUE(reply.contains("renderers")) << o.out;
    EXPECT_EQ(reply["renderers"][0].value("pid", 0), pid);
  }

  Output table = Ctl(b, {"list"}, /*terminal=*/true);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  auto lines = test::SplitLines(table.out);
  ASSERT_EQ(lines.size(), 2u) << table.out;
  EXPECT_TRUE(lines[0].starts_with("ID  PID")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("1   " + std::to_string(pid) + "  running  sbx://plasma"))
      << lines[1];
}

TEST(CtlTest, AnErrorOnATerminalIsOneLineOnStderrThatSaysWhatIsValid) {
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  Output fps = Ctl(b, {"fps", "1", "500"}, /*terminal=*/true);
  EXPECT_EQ(fps.exit_code, 1);
  EXPECT_EQ(fps.out, "");
  EXPECT_EQ(fps.err, "sbx-ctl: fps out of range: 500 (1-240)\n");
  Output piped = Ctl(b, {"fps", "1", "500"}, /*terminal=*/false);
  EXPECT_EQ(piped.exit_code, 1);
  EXPECT_EQ(piped.out, "{\"error\":\"fps out of range: 500 (1-240)\"}\n");
}

TEST(CtlTest, AWrapperThatIsNotThereIsRefusedAtStartAsNotFound) {
  std::string missing = UniqueName("sbx-no-such-wrapper");
  Output o = RunProgram(
      {BinPath("sbx-broker"), "--renderers", "1", "--control",
       "/tmp/" + UniqueName("sbx-test") + ".sock", "--renderer-cmd-prefix", missing + " -f"},
      false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find(missing + ": command not found on PATH"), std::string::npos) << o.err;
  EXPECT_EQ(o.out.find("spawned"), std::string::npos) << "no renderer may be launched: " << o.out;
}

TEST(CtlTest, GdbInTheSandboxIsRefusedAtStartWithTheWayOut) {
  // Any program called gdb: the check is by name, made before a launch could fail.
  test::ScratchDir dir("sbx-ctl-gdb");
  ASSERT_FALSE(dir.path().empty());
  std::string gdb = MakeScript(dir.path(), "gdb", "exec \"$@\"\n");
  ASSERT_FALSE(gdb.empty());
  Output o = RunProgram(
      {BinPath("sbx-broker"), "--renderers", "1", "--control",
       "/tmp/" + UniqueName("sbx-test") + ".sock", "--renderer-cmd-prefix", gdb + " --args"},
      false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("gdb cannot debug a sandboxed renderer"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--no-sandbox --renderer-cmd-prefix 'gdb -q -batch -ex run -ex bt --args'"),
            std::string::npos)
      << o.err;
  EXPECT_EQ(o.out.find("spawned"), std::string::npos) << o.out;
}

TEST(CtlTest, AnExitSeenThroughAWrapperSaysTheStatusMayBeTheWrappers) {
  // Like gdb after its program crashed: the wrapper runs the renderer, then exits 0 itself.
  test::ScratchDir dir("sbx-ctl-wrapper");
  ASSERT_FALSE(dir.path().empty());
  std::string wrapper = MakeScript(dir.path(), "exit-zero", "\"$@\"\nexit 0\n");
  ASSERT_FALSE(wrapper.empty());
  BrokerProcess b({"--renderers", "1", "--no-sandbox", "--renderer-cmd-prefix", wrapper});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kEventTimeout));
  ASSERT_EQ(b.Ctl("crash 1 segv").value("ok", false), true);
  auto exited = b.WaitForEvent("exited", 1, kEventTimeout);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->value("status", ""), "exited");
  EXPECT_EQ(exited->value("code", -1), 0);
  EXPECT_EQ(exited->value("detail", ""),
            "seen through --renderer-cmd-prefix exit-zero: the status may be the wrapper's, not "
            "the renderer's");
}

TEST(CtlTest, ValgrindInTheSandboxIsRefusedAtStartWithTheWayOut) {
  test::ScratchDir dir("sbx-ctl-valgrind");
  ASSERT_FALSE(dir.path().empty());
  std::string valgrind = MakeScript(dir.path(), "valgrind", "exec \"$@\"\n");
  ASSERT_FALSE(valgrind.empty());
  Output o = RunProgram(
      {BinPath("sbx-broker"), "--renderers", "1", "--control",
       "/tmp/" + UniqueName("sbx-test") + ".sock", "--renderer-cmd-prefix", valgrind + " -q"},
      false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("valgrind runs inside the renderer process"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--no-sandbox --renderer-cmd-prefix 'valgrind -q'"), std::string::npos)
      << o.err;
  EXPECT_EQ(o.out.find("spawned"), std::string::npos) << o.out;
}

TEST(CtlTest, AGdbWithNoCommandsIsRefusedEvenUnconfined) {
  // Its stdin is /dev/null: it would quit before running the renderer, at every restart.
  test::ScratchDir dir("sbx-ctl-gdb");
  ASSERT_FALSE(dir.path().empty());
  std::string gdb = MakeScript(dir.path(), "gdb", "exec \"$@\"\n");
  ASSERT_FALSE(gdb.empty());
  Output o = RunProgram(
      {BinPath("sbx-broker"), "--renderers", "1", "--no-sandbox", "--control",
       "/tmp/" + UniqueName("sbx-test") + ".sock", "--renderer-cmd-prefix", gdb + " --args"},
      false);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("gdb reads its commands from its standard input"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("'gdb -q -batch -ex run -ex bt --args'"), std::string::npos) << o.err;
  EXPECT_EQ(o.out.find("spawned"), std::string::npos) << o.out;
}

// Sets or unsets one environment variable for a scope; a broker started inside inherits it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (saved_) {
      ::setenv(name_, saved_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

// Where a wrapper writes its file, and whom the file and the renderer belong to.
struct WrapperOwners {
  uid_t file_uid = static_cast<uid_t>(-1);
  uid_t renderer_uid = static_cast<uid_t>(-1);
};

// Runs one sandboxed renderer under a wrapper that creates a file (as strace -o FILE does)
// before it execs the renderer, and reads whom the file and the running renderer belong to.
std::optional<WrapperOwners> RunFileWritingWrapper(const char* sudo_uid) {
  test::ScratchDir dir("sbx-ctl-owner");
  if (dir.path().empty()) return std::nullopt;
  // Whoever the wrapper runs as must reach the script and create its file.
  std::string out_dir = dir.path() + "/out";
  if (::chmod(dir.path().c_str(), 0755) != 0 || ::mkdir(out_dir.c_str(), 0) != 0 ||
      ::chmod(out_dir.c_str(), 01777) != 0) {
    return std::nullopt;
  }
  std::string wrapper =
      MakeScript(dir.path(), "touch-then-exec", ": > \"$1\"\nshift\nexec \"$@\"\n");
  std::string file = out_dir + "/wrapper.out";
  ScopedEnv uid("SUDO_UID", sudo_uid);
  ScopedEnv gid("SUDO_GID", nullptr);
  BrokerProcess b({"--renderers", "1", "--renderer-cmd-prefix", wrapper + " " + file});
  auto spawned = b.WaitForEvent("spawned", 1, kEventTimeout);
  if (!spawned || !b.WaitForEvent("ready", 1, kEventTimeout)) return std::nullopt;
  WrapperOwners owners;
  std::istringstream(StatusField(spawned->value("pid", 0), "Uid")) >> owners.renderer_uid;
  struct stat st;
  if (::stat(file.c_str(), &st) == 0) owners.file_uid = st.st_uid;
  return owners;
}

const passwd* TestAccount() {
  const passwd* pw = ::getpwnam("nobody");
  return pw != nullptr && pw->pw_uid != 0 && pw->pw_gid != 0 ? pw : nullptr;
}

TEST(CtlTest, ARootBrokerStartedThroughSudoRunsAWrapperAsThatUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, as sudo gives";
  const passwd* account = TestAccount();
  if (account == nullptr) GTEST_SKIP() << "no account to stand for the user who ran sudo";
  uid_t uid = account->pw_uid;
  auto owners = RunFileWritingWrapper(std::to_string(uid).c_str());
  ASSERT_TRUE(owners) << "the renderer did not start under the wrapper";
  EXPECT_EQ(owners->file_uid, uid);
  EXPECT_EQ(owners->renderer_uid, uid);
}

TEST(CtlTest, WithoutSudoAWrappersFileBelongsToTheRenderersOwnUid) {
  auto owners = RunFileWritingWrapper(nullptr);
  ASSERT_TRUE(owners) << "the renderer did not start under the wrapper";
  if (::geteuid() == 0) {
    // A root broker's own renderer uid (docs/SANDBOX.md), never root.
    EXPECT_GE(owners->file_uid, 60900u);
    EXPECT_LE(owners->file_uid, 60999u);
  } else {
    EXPECT_EQ(owners->file_uid, ::geteuid());
  }
  EXPECT_EQ(owners->renderer_uid, owners->file_uid);
}

TEST(CtlTest, ABadSudoUidIsIgnored) {
  if (::geteuid() != 0) GTEST_SKIP() << "SUDO_UID matters to a root broker only";
  // Root itself, and an id that is digits but no account: each keeps the renderers' own uid.
  uid_t unused = 59000;
  while (unused < 60000 && ::getpwuid(unused) != nullptr) ++unused;
  for (std::string bad : {std::string("0"), std::to_string(unused)}) {
    auto owners = RunFileWritingWrapper(bad.c_str());
    ASSERT_TRUE(owners) << bad;
    EXPECT_GE(owners->file_uid, 60900u) << bad;
    EXPECT_LE(owners->file_uid, 60999u) << bad;
    EXPECT_EQ(owners->renderer_uid, owners->file_uid) << bad;
  }
}

}  // namespace
}  // namespace sbx::testing
