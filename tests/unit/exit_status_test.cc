// Exit classification against real children: every row of the matrix forks a process, lets it
// exit or die, and classifies the si_code/si_status that waitid reports for it.
#include "broker/exit_status.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "broker/launcher.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

// How the child ends.
enum class Ending {
  kExit,         // _exit(value)
  kRaise,        // resets `value` to its default action and raises it on itself
  kParentKills,  // waits forever; the test sends `value` through the pidfd
};

struct ExitCase {
  const char* name;
  Ending ending;
  int value;
  KillReason reason;
  ExitStatus status;
};

siginfo_t RunChild(Ending ending, int value) {
  test::Child child = test::ForkChild([ending, value] {
    switch (ending) {
      case Ending::kExit:
        ::_exit(value);
      case Ending::kRaise:
        // Sanitizers install handlers for some of these; a real crash meets the default action.
        ::signal(value, SIG_DFL);
        ::raise(value);
        ::_exit(100);  // not reached for a fatal signal
      case Ending::kParentKills:
        for (;;) ::pause();
    }
  });
  EXPECT_GT(child.pid, 0);
  EXPECT_TRUE(child.pidfd.valid());
  if (ending == Ending::kParentKills) {
    EXPECT_TRUE(PidfdSendSignal(child.pidfd.get(), value).has_value());
  }
  auto si = test::WaitForExit(child.pidfd.get());
  EXPECT_TRUE(si.has_value()) << "the child did not end within the deadline";
  return si.value_or(siginfo_t{});
}

class ExitMatrixTest : public ::testing::TestWithParam<ExitCase> {};

TEST_P(ExitMatrixTest, ClassifiesARealChild) {
  const ExitCase& c = GetParam();
  siginfo_t si = RunChild(c.ending, c.value);
  ExitInfo info = ClassifyExit(si.si_code, si.si_status, c.reason);
  EXPECT_EQ(ExitStatusName(info.status), ExitStatusName(c.status))
      << "si_code " << si.si_code << " si_status " << si.si_status;
  if (c.ending == Ending::kExit) {
    EXPECT_EQ(si.si_code, CLD_EXITED);
    EXPECT_EQ(info.code, c.value);
    EXPECT_EQ(info.signal, 0);
  } else {
    EXPECT_NE(si.si_code, CLD_EXITED);
    EXPECT_EQ(info.signal, c.value);
    EXPECT_EQ(info.code, -1);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, ExitMatrixTest,
    ::testing::Values(
        ExitCase{"Exit0", Ending::kExit, 0, KillReason::kNone, ExitStatus::kExited},
        ExitCase{"Exit1", Ending::kExit, 1, KillReason::kNone, ExitStatus::kAbnormal},
        ExitCase{"Exit255", Ending::kExit, 255, KillReason::kNone, ExitStatus::kAbnormal},
        ExitCase{"ExitUsage", Ending::kExit, protocol::kExitUsage, KillReason::kNone,
                 ExitStatus::kAbnormal},
        ExitCase{"Exit86IsOom", Ending::kExit, protocol::kExitOom, KillReason::kNone,
                 ExitStatus::kOom},
        ExitCase{"Exit127IsLaunchFailed", Ending::kExit, protocol::kExitLaunchFailed,
                 KillReason::kNone, ExitStatus::kLaunchFailed},
        ExitCase{"KilledBySigkill", Ending::kParentKills, SIGKILL, KillReason::kNone,
                 ExitStatus::kKilled},
        ExitCase{"KilledBySigterm", Ending::kParentKills, SIGTERM, KillReason::kNone,
                 ExitStatus::kKilled},
        ExitCase{"KilledBySigint", Ending::kParentKills, SIGINT, KillReason::kNone,
                 ExitStatus::kKilled},
        ExitCase{"Sigsegv", Ending::kRaise, SIGSEGV, KillReason::kNone, ExitStatus::kCrashed},
        ExitCase{"Sigabrt", Ending::kRaise, SIGABRT, KillReason::kNone, ExitStatus::kCrashed},
        ExitCase{"Sigbus", Ending::kRaise, SIGBUS, KillReason::kNone, ExitStatus::kCrashed},
        ExitCase{"Sigfpe", Ending::kRaise, SIGFPE, KillReason::kNone, ExitStatus::kCrashed},
        ExitCase{"Sigill", Ending::kRaise, SIGILL, KillReason::kNone, ExitStatus::kCrashed},
        ExitCase{"Sigtrap", Ending::kRaise, SIGTRAP, KillReason::kNone, ExitStatus::kCrashed},
        ExitCase{"SigsysIsASandboxViolation", Ending::kRaise, SIGSYS, KillReason::kNone,
                 ExitStatus::kSandboxViolation},
        ExitCase{"SigkillForABadMessage", Ending::kParentKills, SIGKILL, KillReason::kBadMessage,
                 ExitStatus::kBadMessage},
        ExitCase{"SigkillForAHang", Ending::kParentKills, SIGKILL, KillReason::kHung,
                 ExitStatus::kHung},
        ExitCase{"SigkillOnCloseIsKilled", Ending::kParentKills, SIGKILL, KillReason::kClose,
                 ExitStatus::kKilled},
        // The broker's reason only names a death that its own SIGKILL caused.
        ExitCase{"SigsegvDespiteABadMessageKillStaysCrashed", Ending::kRaise, SIGSEGV,
                 KillReason::kBadMessage, ExitStatus::kCrashed},
        ExitCase{"SigtermDespiteAHangKillIsKilled", Ending::kParentKills, SIGTERM,
                 KillReason::kHung, ExitStatus::kKilled},
        ExitCase{"Exit0DespiteABadMessageKillIsExited", Ending::kExit, 0, KillReason::kBadMessage,
                 ExitStatus::kExited}),
    [](const ::testing::TestParamInfo<ExitCase>& info) { return std::string(info.param.name); });

TEST(ExitStatusTest, ACoreDumpIsClassifiedByItsSignal) {
  // CLD_DUMPED is what waitid reports when the crash wrote a core file.
  EXPECT_EQ(ClassifyExit(CLD_DUMPED, SIGSEGV, KillReason::kNone).status, ExitStatus::kCrashed);
  EXPECT_EQ(ClassifyExit(CLD_DUMPED, SIGSYS, KillReason::kNone).status,
            ExitStatus::kSandboxViolation);
  EXPECT_EQ(ClassifyExit(CLD_DUMPED, SIGABRT, KillReason::kHung).status, ExitStatus::kCrashed);
}

TEST(ExitStatusTest, AShellLaunchedByTheLauncherExiting86IsOom) {
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", "exit 86"};
  auto child = Launch(spec);
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  auto si = test::WaitForExit(child->process.pidfd());
  ASSERT_TRUE(si.has_value());
  EXPECT_EQ(ClassifyExit(si->si_code, si->si_status, KillReason::kNone).status, ExitStatus::kOom);
}

// The shell's own "command not found" (127), not a stand-in exit code.
TEST(ExitStatusTest, AShellThatCannotFindItsCommandIsLaunchFailed) {
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", "exec sbx-no-such-command-anywhere 2>/dev/null"};
  auto child = Launch(spec);
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  auto si = test::WaitForExit(child->process.pidfd());
  ASSERT_TRUE(si.has_value());
  ExitInfo info = ClassifyExit(si->si_code, si->si_status, KillReason::kNone);
  EXPECT_EQ(ExitStatusName(info.status), ExitStatusName(ExitStatus::kLaunchFailed));
  EXPECT_EQ(info.code, 127);
}

TEST(ExitStatusTest, AShellThatKillsItselfWithSigsegvIsCrashed) {
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", "ulimit -c 0; kill -SEGV $$"};
  auto child = Launch(spec);
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  auto si = test::WaitForExit(child->process.pidfd());
  ASSERT_TRUE(si.has_value());
  ExitInfo info = ClassifyExit(si->si_code, si->si_status, KillReason::kNone);
  EXPECT_EQ(info.status, ExitStatus::kCrashed);
  EXPECT_EQ(info.signal, SIGSEGV);
}

TEST(ExitStatusTest, EveryStatusHasItsDocumentedName) {
  EXPECT_EQ(ExitStatusName(ExitStatus::kNone), "none");
  EXPECT_EQ(ExitStatusName(ExitStatus::kExited), "exited");
  EXPECT_EQ(ExitStatusName(ExitStatus::kAbnormal), "abnormal");
  EXPECT_EQ(ExitStatusName(ExitStatus::kKilled), "killed");
  EXPECT_EQ(ExitStatusName(ExitStatus::kCrashed), "crashed");
  EXPECT_EQ(ExitStatusName(ExitStatus::kSandboxViolation), "sandbox-violation");
  EXPECT_EQ(ExitStatusName(ExitStatus::kOom), "oom");
  EXPECT_EQ(ExitStatusName(ExitStatus::kLaunchFailed), "launch-failed");
  EXPECT_EQ(ExitStatusName(ExitStatus::kBadMessage), "bad-message");
  EXPECT_EQ(ExitStatusName(ExitStatus::kHung), "hung");
}

}  // namespace
}  // namespace sbx
