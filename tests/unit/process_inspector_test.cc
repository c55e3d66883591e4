// The process view's reader against real processes: a child that dies (and is reaped) before
// each read in turn still gives a clean answer, and names a process gives itself arrive bounded
// and printable. Then the parsers, on /proc text.
#include "broker/process_inspector.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace sbx {
namespace {

// A child that only waits to be killed; `name`, if given, is what it calls its main thread and a
// second thread (prctl(PR_SET_NAME), the way a renderer would).
pid_t StartChild(const char* name = nullptr) {
  static int ready[2];
  static const char* thread_name;
  if (::pipe2(ready, O_CLOEXEC) != 0) return -1;
  thread_name = name;
  pid_t pid = ::fork();
  if (pid == 0) {
    char c = 1;
    if (name == nullptr) {
      (void)!::write(ready[1], &c, 1);
    } else {
      ::prctl(PR_SET_NAME, name, 0, 0, 0);
      pthread_t t;
      // The thread says it is ready once it has named itself.
      ::pthread_create(
          &t, nullptr,
          [](void*) -> void* {
            ::prctl(PR_SET_NAME, thread_name, 0, 0, 0);
            char one = 1;
            (void)!::write(ready[1], &one, 1);
            for (;;) ::pause();
          },
          nullptr);
    }
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c;
  (void)!::read(ready[0], &c, 1);
  ::close(ready[0]);
  return pid;
}

void KillAndReap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

// Kills and reaps the child when a test ends, an ASSERT's early return included.
struct Reaper {
  pid_t pid;
  ~Reaper() {
    if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) KillAndReap(pid);
  }
};

std::vector<std::string> Steps(pid_t pid) {
  std::vector<std::string> steps;
  (void)InspectProcess({ProcessRole::kRenderer, pid, 1, {}, true},
                       [&](std::string_view s) { steps.emplace_back(s); });
  return steps;
}

TEST(ProcessInspectorTest, AProcessThatDiesBeforeAnyReadIsGoneAndTheReplyStaysClean) {
  pid_t probe = StartChild();
  ASSERT_GT(probe, 0);
  std::vector<std::string> steps;
  {
    Reaper reaper{probe};
    steps = Steps(probe);
  }
  ASSERT_GE(steps.size(), 10u);
  for (size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE("dies before " + steps[k]);
    pid_t pid = StartChild();
    ASSERT_GT(pid, 0);
    Reaper reaper{pid};
    size_t step = 0;
    ProcessInfo p =
        InspectProcess({ProcessRole::kRenderer, pid, 1, {}, true}, [&](std::string_view) {
          if (step++ == k) KillAndReap(pid);
        });
    EXPECT_TRUE(p.gone);
    EXPECT_EQ(p.pid, pid);
    // A vanished process is no failure to report: nothing reads as "unreadable".
    EXPECT_TRUE(p.unreadable.empty()) << p.unreadable.front();
    nlohmann::json j = ProcessInfoToJson(p);
    EXPECT_EQ(j.value("gone", false), true);
    EXPECT_NO_THROW((void)j.dump());
  }
}

TEST(ProcessInspectorTest, AStoppedProcessShowsTAndALiveOneIsNotGone) {
  pid_t pid = StartChild();
  ASSERT_GT(pid, 0);
  Reaper reaper{pid};
  ProcessInfo running = InspectProcess({ProcessRole::kRenderer, pid, 1, {}, true});
  EXPECT_FALSE(running.gone);
  EXPECT_TRUE(running.state == 'S' || running.state == 'R')
      << running.state;  // on its way to pause
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, pid, &info, WSTOPPED), 0);
  ProcessInfo stopped = InspectProcess({ProcessRole::kRenderer, pid, 1, {}, true});
  EXPECT_EQ(stopped.state, 'T');
  EXPECT_FALSE(stopped.gone);
  EXPECT_EQ(ProcessInfoToJson(stopped)["state"], "T");
}

TEST(ProcessInspectorTest, NamesAProcessGivesItselfArrivePrintableAndFdsAreMatchedByFile) {
  // The kernel keeps 15 bytes of it; the quote and braces survive, the control bytes do not.
  pid_t pid = StartChild("\x01\"}{\x1b[31m\xff");
  ASSERT_GT(pid, 0);
  Reaper reaper{pid};
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  // The child's fd 0 is the test's own (fork): named by our copy. The pipe is made after the
  // fork, so no fd of the child may carry its label.
  ProcessTarget t{ProcessRole::kRenderer, pid, 1, {{0, "the test's stdin"}, {fds[0], "x"}}, true};
  ProcessInfo p = InspectProcess(t);
  EXPECT_FALSE(p.gone);
  EXPECT_EQ(p.name, "?\"}{?[31m?");
  ASSERT_EQ(p.thread_count, 2u);
  for (const auto& th : p.threads) EXPECT_EQ(th.name, "?\"}{?[31m?");
  bool stdin_named = false;
  for (const auto& f : p.fds) {
    if (f.fd == 0) stdin_named = f.label == "the test's stdin";
    EXPECT_NE(f.label, "x");  // the child never had this pipe
  }
  EXPECT_TRUE(stdin_named);
  std::string dumped = ProcessInfoToJson(p).dump();
  EXPECT_EQ(nlohmann::json::parse(dumped)["name"], p.name);
  ::close(fds[0]);
  ::close(fds[1]);
}

// A plan is read on another thread while the broker goes on: it holds copies, so a descriptor
// the broker closes meanwhile still names its object, and a process that exits meanwhile (whose
// pid may then be another's) reads as gone.
TEST(ProcessInspectorTest, APlanNeedsNothingTheBrokerMayCloseOrReap) {
  // A pipe the child inherits (fork): its fd in the child and ours are one object.
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  pid_t pid = StartChild();
  ASSERT_GT(pid, 0);
  Reaper reaper{pid};
  InspectPlan plan =
      PlanProcess({ProcessRole::kRenderer, pid, 1, {{fds[0], "the pipe"}}, true}, -1);
  ASSERT_EQ(::close(fds[0]), 0);
  ProcessInfo p = ReadPlan(plan);
  EXPECT_FALSE(p.gone);
  bool named = false;
  for (const auto& f : p.fds) named |= f.fd == fds[0] && f.label == "the pipe";
  EXPECT_TRUE(named) << "the object was forgotten with the broker's descriptor";
  ::close(fds[1]);

  // The plan's pidfd is of a process that has exited since: whatever the pid shows is not it.
  pid_t other = StartChild();
  ASSERT_GT(other, 0);
  int other_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, other, 0));
  ASSERT_GE(other_pidfd, 0);
  InspectPlan stale = PlanProcess({ProcessRole::kRenderer, pid, 1, {}, true}, other_pidfd);
  ::close(other_pidfd);
  KillAndReap(other);
  ProcessInfo stale_read = ReadPlan(stale);
  EXPECT_TRUE(stale_read.gone);
  EXPECT_TRUE(stale_read.name.empty() && stale_read.fds.empty()) << "showed what the pid holds now";
  EXPECT_FALSE(ReadPlan(PlanProcess({ProcessRole::kRenderer, pid, 1, {}, true}, -1)).gone);
}

TEST(ProcessInspectorTest, ParsesLimitsUidMapsAndBoundsNames) {
  constexpr char kLimits[] =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max open files            16                   16                   files     \n"
      "Max realtime priority     0                    0                                \n"
      "Max realtime timeout      unlimited            unlimited            us        \n";
  auto limits = ParseLimits(kLimits);
  ASSERT_EQ(limits.size(), 4u);
  EXPECT_EQ(limits[1].name, "Max open files");
  EXPECT_EQ(limits[1].soft, "16");
  EXPECT_EQ(limits[1].hard, "16");
  EXPECT_EQ(limits[2].name, "Max realtime priority");  // a name of 21 letters, no unit
  EXPECT_EQ(limits[2].soft, "0");
  EXPECT_EQ(limits[3].name, "Max realtime timeout");
  EXPECT_TRUE(ParseLimits("").empty());
  EXPECT_TRUE(ParseLimits("header only\nshort\n").empty());

  EXPECT_EQ(MapUidInside("         0      60901          1\n", 60901), 0);
  EXPECT_EQ(MapUidInside("         0      60901          1\n", 60902), -1);
  EXPECT_EQ(MapUidInside("         0          0 4294967295\n", 1000), 1000);
  EXPECT_EQ(MapUidInside("garbage", 0), -1);

  EXPECT_EQ(PrintableName("sbx-io\n"), "sbx-io");
  EXPECT_EQ(PrintableName(std::string(1000, 'a')).size(), ProcessInfo::kMaxName);
  EXPECT_EQ(PrintableName(std::string("a\0b", 3)), "a?b");
}

}  // namespace
}  // namespace sbx
