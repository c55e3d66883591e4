// The broker's cached sandbox report (SandboxInspector): the report it gives is the one a fresh
// read of /proc gives, it keeps only processes whose own filter is on, and it reads again what
// a confined process can still change (its stdio).
#include "broker/sandbox_report.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;

// A forked child that, when told to, confines itself with no_new_privs and an allow-all filter
// (the two layers that mark a process's layers as final), and, when told again, makes its stdio
// a renderer's: /dev/null on 0 and a pipe of its own on 1 and 2. Killed and reaped at the end.
class Child {
 public:
  Child() {
    int to[2], from[2];
    if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) Run(to[0], from[1]);
    ::close(to[0]);
    ::close(from[1]);
    to_ = to[1];
    from_ = from[0];
  }
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(to_);
    ::close(from_);
  }
  pid_t pid() const { return pid_; }
  // Sends one step ('c': confine, 's': clean stdio) and waits for the child to have taken it.
  bool Step(char step) {
    char done = 0;
    return ::write(to_, &step, 1) == 1 && ::read(from_, &done, 1) == 1 && done == step;
  }

 private:
  [[noreturn]] static void Run(int in, int out) {
    char step = 0;
    while (::read(in, &step, 1) == 1) {
      if (step == 'c') {
        sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        sock_fprog prog{1, allow};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
          ::_exit(1);
        }
      } else if (step == 's') {
        int null = ::open("/dev/null", O_RDWR);
        int log[2];
        if (null < 0 || ::pipe(log) != 0 || ::dup2(null, 0) < 0 || ::dup2(log[1], 1) < 0 ||
            ::dup2(log[1], 2) < 0) {
          ::_exit(1);
        }
      }
      if (::write(out, &step, 1) != 1) ::_exit(1);
    }
    ::_exit(0);
  }

  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
};

TEST(SandboxInspectorTest, AnUnconfinedProcessIsNeverKept) {
  Child child;
  ASSERT_GT(child.pid(), 0);
  SandboxInspector inspector;
  auto report = inspector.Inspect(child.pid(), sandbox::Level::kFull, "");
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->seccomp_mode, 0);
  EXPECT_EQ(inspector.cached(), 0u);
  // Confined later, the next report shows it: nothing of the earlier read was kept.
  ASSERT_TRUE(child.Step('c'));
  report = inspector.Inspect(child.pid(), sandbox::Level::kFull, "");
  ASSERT_TRUE(report);
  EXPECT_EQ(report->seccomp_mode, 2);
  EXPECT_EQ(report->no_new_privs, 1);
  EXPECT_EQ(inspector.cached(), 1u);
}

TEST(SandboxInspectorTest, StdioIsReadAgainAfterTheLayersAreKept) {
  Child child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(child.Step('c'));
  SandboxInspector inspector;
  auto before = inspector.Inspect(child.pid(), sandbox::Level::kFull, "");
  ASSERT_TRUE(before);
  ASSERT_EQ(inspector.cached(), 1u);
  EXPECT_FALSE(before->stdio_clean);  // the test's own stdio
  ASSERT_TRUE(child.Step('s'));
  auto after = inspector.Inspect(child.pid(), sandbox::Level::kFull, "");
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->stdio_clean);
  // And the judgement is made again: the stdio problem is gone from the kept report's problems.
  auto fresh = InspectSandbox(child.pid(), sandbox::Level::kFull, "");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(SandboxReportToJson(*after).dump(), SandboxReportToJson(*fresh).dump());
}

TEST(SandboxInspectorTest, AKeptReportIsTheOneAFreshReadGivesForARealRenderer) {
  BrokerProcess broker({"--renderers", "1", "--no-restart"});
  auto ready = broker.WaitForEvent("ready", 1, 10s);
  ASSERT_TRUE(ready);
  auto spawned = broker.WaitForEvent("spawned", 1, 1s);
  ASSERT_TRUE(spawned);
  const pid_t pid = spawned->value("pid", 0);
  ASSERT_GT(pid, 0);
  const std::string level = broker.Ctl("sandbox 1").value("level", "");
  sandbox::Level l = sandbox::Level::kOff;
  ASSERT_TRUE(sandbox::LevelFromName(level, &l)) << level;
  SandboxInspector inspector;
  auto first = inspector.Inspect(pid, l, "");
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(inspector.cached(), 1u) << "a renderer past its first frame has its filter on";
  auto kept = inspector.Inspect(pid, l, "");
  auto fresh = InspectSandbox(pid, l, "");
  ASSERT_TRUE(kept);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(SandboxReportToJson(*kept).dump(), SandboxReportToJson(*fresh).dump());
  EXPECT_EQ(SandboxReportToJson(*first).dump(), SandboxReportToJson(*fresh).dump());
}

TEST(SandboxInspectorTest, StartTicksTellTwoProcessesApart) {
  Child a;
  ASSERT_GT(a.pid(), 0);
  auto mine = ProcessStartTicks(::getpid());
  auto theirs = ProcessStartTicks(a.pid());
  ASSERT_TRUE(mine);
  ASSERT_TRUE(theirs);
  EXPECT_GE(*theirs, *mine);
  EXPECT_EQ(ProcessStartTicks(a.pid()), theirs) << "one process, one start time";
  EXPECT_FALSE(ProcessStartTicks(0));
}

}  // namespace
}  // namespace sbx::testing
