// The child recipe: a failed exec is a named error with its errno and leaves no zombie; exactly
// the declared descriptors reach the child, at the declared numbers; signals start at their
// defaults; the parent-death signal is armed.
#include "broker/launcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

// True when this process has an exited child nobody has reaped (WNOWAIT: it stays a zombie).
bool HasZombieChild() {
  siginfo_t si{};
  int r = ::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
  return r == 0 && si.si_pid != 0;
}

// The descriptors 0-2 a child inherits as they are: open here and not close-on-exec.
std::set<int> InheritedStandardFds() {
  std::set<int> fds;
  for (int fd = 0; fd <= 2; ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) fds.insert(fd);
  }
  return fds;
}

TEST(LauncherTest, ANonexistentProgramFailsAtTheExecStepWithEnoentAndLeavesNoZombie) {
  ASSERT_FALSE(HasZombieChild()) << "an earlier test leaked a child";
  LaunchSpec spec;
  spec.argv = {"/nonexistent/sbx-unit-no-such-program", "--flag"};
  auto child = Launch(spec);
  ASSERT_FALSE(child.has_value());
  EXPECT_EQ(child.error().code, Errc::kState);
  EXPECT_EQ(child.error().sys_errno, ENOENT);
  EXPECT_NE(child.error().what.find("exec"), std::string::npos) << child.error().what;
  EXPECT_NE(child.error().ToString().find(std::strerror(ENOENT)), std::string::npos);
  EXPECT_FALSE(HasZombieChild());
}

TEST(LauncherTest, APathSearchThatFindsNothingFailsWithEnoent) {
  LaunchSpec spec;
  spec.argv = {"sbx-unit-no-such-program-on-path"};
  spec.search_path = true;
  auto child = Launch(spec);
  ASSERT_FALSE(child.has_value());
  EXPECT_EQ(child.error().sys_errno, ENOENT);
  EXPECT_FALSE(HasZombieChild());
}

TEST(LauncherTest, AProgramThatIsNotExecutableFailsWithEacces) {
  char path[] = "/tmp/sbx-unit-noexec-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  LaunchSpec spec;
  spec.argv = {path};
  auto child = Launch(spec);
  ::unlink(path);
  ASSERT_FALSE(child.has_value());
  EXPECT_EQ(child.error().sys_errno, EACCES);
  EXPECT_FALSE(HasZombieChild());
}

TEST(LauncherTest, AnEmptyArgvIsRejectedWithoutForking) {
  auto child = Launch(LaunchSpec{});
  ASSERT_FALSE(child.has_value());
  EXPECT_EQ(child.error().code, Errc::kInvalidArgument);
}

TEST(LauncherTest, ADeclaredFdThatIsNotOpenFailsAtTheRemapStep) {
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.fds = {{987, 3}};  // never opened by this process
  ASSERT_EQ(::fcntl(987, F_GETFD), -1);
  auto child = Launch(spec);
  ASSERT_FALSE(child.has_value());
  EXPECT_EQ(child.error().sys_errno, EBADF);
  EXPECT_NE(child.error().what.find(LaunchStepName(LaunchStep::kFds)), std::string::npos)
      << child.error().what;
  EXPECT_FALSE(HasZombieChild());
}

TEST(LauncherTest, TheChildExecsAndItsPidfdReportsTheExit) {
  LaunchSpec spec;
  spec.argv = {"sh", "-c", "exit 7"};
  spec.search_path = true;
  auto child = Launch(spec);
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  EXPECT_GT(child->process.pid(), 0);
  auto exit = test::WaitForExit(child->process.pidfd());
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->si_pid, child->process.pid());
  EXPECT_EQ(exit->si_code, CLD_EXITED);
  EXPECT_EQ(exit->si_status, 7);
}

// fd number -> link target of every descriptor open in a child launched with `fds` (plus the
// listing pipe at fd 1), as `ls -l /proc/self/fd` shows them from inside the child. The one
// descriptor ls opens itself, the /proc/self/fd directory, is left out.
std::map<int, std::string> ChildFdTable(std::vector<std::pair<int, int>> fds) {
  auto listing = MakePipe(false);
  EXPECT_TRUE(listing.has_value());
  if (!listing) return {};
  LaunchSpec spec;
  spec.argv = {"ls", "-l", "/proc/self/fd"};
  spec.search_path = true;
  spec.fds = std::move(fds);
  spec.fds.emplace_back(listing->write.get(), 1);
  auto done = [&] {
    auto child = Launch(spec);
    listing->write.reset();  // the child's copy is the only writer left
    EXPECT_TRUE(child.has_value()) << child.error().ToString();
    if (!child) return std::optional<std::string>();
    auto text = test::ReadAllWithin(listing->read.get());
    auto exit = test::WaitForExit(child->process.pidfd());
    EXPECT_TRUE(exit.has_value() && exit->si_code == CLD_EXITED && exit->si_status == 0);
    return text;
  }();
  EXPECT_TRUE(done.has_value());
  if (!done) return {};

  std::map<int, std::string> table;
  int directories = 0;
  for (const auto& line : test::SplitLines(*done)) {
    auto arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;  // "total 0"
    auto space = line.rfind(' ', arrow - 1);
    int fd = std::atoi(line.substr(space + 1, arrow - space - 1).c_str());
    std::string target = line.substr(arrow + 4);
    if (target.starts_with("/proc/") && target.ends_with("/fd")) {
      ++directories;
      continue;
    }
    table[fd] = target;
  }
  EXPECT_EQ(directories, 1) << *done;
  return table;
}

std::string PipeName(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return "?";
  return "pipe:[" + std::to_string(st.st_ino) + "]";
}

std::set<int> Keys(const std::map<int, std::string>& m) {
  std::set<int> keys;
  for (const auto& [k, v] : m) keys.insert(k);
  return keys;
}

TEST(LauncherTest, OnlyTheDeclaredFdsAreOpenInTheChildAboveStderr) {
  auto a = MakePipe(false);
  auto b = MakePipe(false);
  ASSERT_TRUE(a.has_value() && b.has_value());
  // Descriptors this process leaks without close-on-exec: one below the highest target (the
  // recipe closes it), one far above it (the recipe marks it close-on-exec).
  UniqueFd leak_low(::dup(a->read.get()));
  UniqueFd leak_high(::fcntl(a->read.get(), F_DUPFD, 40));
  ASSERT_TRUE(leak_low.valid() && leak_high.valid());
  ASSERT_LT(leak_low.get(), 20);

  auto table = ChildFdTable({{a->write.get(), 3}, {b->write.get(), 20}});

  std::set<int> expected = InheritedStandardFds();
  expected.insert({1, 3, 20});
  EXPECT_EQ(Keys(table), expected);
  EXPECT_EQ(table[1].substr(0, 5), "pipe:");
  EXPECT_EQ(table[3], PipeName(a->write.get()));
  EXPECT_EQ(table[20], PipeName(b->write.get()));
}

TEST(LauncherTest, SourcesThatAreEachOthersTargetsAreSwappedNotClobbered) {
  auto p = MakePipe(false);
  auto q = MakePipe(false);
  ASSERT_TRUE(p.has_value() && q.has_value());
  // Put the sources at numbers that are also targets: a naive dup2 sequence would overwrite
  // the second source with the first before reading it.
  UniqueFd x(::fcntl(p->write.get(), F_DUPFD_CLOEXEC, 30));
  UniqueFd y(::fcntl(q->write.get(), F_DUPFD_CLOEXEC, 30));
  ASSERT_TRUE(x.valid() && y.valid());

  auto table = ChildFdTable({{x.get(), y.get()}, {y.get(), x.get()}});

  EXPECT_EQ(table[y.get()], PipeName(p->write.get()));
  EXPECT_EQ(table[x.get()], PipeName(q->write.get()));
}

TEST(LauncherTest, TheChildStartsWithDefaultSignalActionsAndAnEmptyMask) {
  // The broker ignores SIGPIPE and a thread may block signals; neither may reach a renderer.
  test::ScopedIgnoreSigpipe ignore;
  sigset_t block, saved;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &saved), 0);

  auto out = MakePipe(false);
  ASSERT_TRUE(out.has_value());
  LaunchSpec spec;
  spec.argv = {"cat", "/proc/self/status"};
  spec.search_path = true;
  spec.fds = {{out->write.get(), 1}};
  auto child = Launch(spec);
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  out->write.reset();
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  auto status = test::ReadAllWithin(out->read.get());
  ASSERT_TRUE(test::WaitForExit(child->process.pidfd()).has_value());
  ASSERT_TRUE(status.has_value());

  std::string blocked, ignored;
  for (const auto& line : test::SplitLines(*status)) {
    if (line.starts_with("SigBlk:")) blocked = line.substr(7);
    if (line.starts_with("SigIgn:")) ignored = line.substr(7);
  }
  EXPECT_EQ(blocked, "\t0000000000000000");
  EXPECT_EQ(ignored, "\t0000000000000000");
}

TEST(LauncherTest, TheChildDiesWhenTheThreadThatLaunchedItExits) {
  // PR_SET_PDEATHSIG fires when the creating *thread* exits, which is exactly what makes it
  // observable here without killing the test process.
  std::optional<Result<LaunchedChild>> launched;
  std::thread launcher([&launched] {
    LaunchSpec spec;
    spec.argv = {"sleep", "1000"};
    spec.search_path = true;
    launched = Launch(spec);
  });
  launcher.join();
  ASSERT_TRUE(launched.has_value());
  ASSERT_TRUE(launched->has_value()) << launched->error().ToString();
  auto exit = test::WaitForExit((*launched)->process.pidfd());
  ASSERT_TRUE(exit.has_value()) << "the child outlived its launching thread: no PDEATHSIG";
  EXPECT_EQ(exit->si_code, CLD_KILLED);
  EXPECT_EQ(exit->si_status, SIGKILL);
}

TEST(LauncherTest, MoreThanSixteenDeclaredFdsFailAtTheRemapStep) {
  auto p = MakePipe(false);
  ASSERT_TRUE(p.has_value());
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  for (int i = 0; i < 17; ++i) spec.fds.emplace_back(p->write.get(), 3 + i);
  auto child = Launch(spec);
  ASSERT_FALSE(child.has_value());
  EXPECT_EQ(child.error().sys_errno, E2BIG);
  EXPECT_FALSE(HasZombieChild());
}

// /proc/PID/<name> with the NULs that separate argv turned into spaces and the last newline gone.
std::string ProcText(pid_t pid, const char* name) {
  auto text = ReadSmallFile("/proc/" + std::to_string(pid) + "/" + name);
  if (!text) return "?";
  while (!text->empty() && (text->back() == '\0' || text->back() == '\n')) text->pop_back();
  for (char& c : *text) c = c == '\0' ? ' ' : c;
  return *text;
}

// The command line of a program Launch has just started. Launch returns once the exec can no
// longer fail, which is a moment before the kernel has set up the new argument area that
// /proc/PID/cmdline reads, so an empty answer is waited out (with a deadline).
std::string ExecedCmdline(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string text = ProcText(pid, "cmdline");
  while (text.empty() && std::chrono::steady_clock::now() < deadline) {
    ::sched_yield();
    text = ProcText(pid, "cmdline");
  }
  return text;
}

// A process group of its own keeps the terminal's Ctrl+C away; the session stays ours, since a
// session is also a scheduler autogroup, and a renderer in one of its own would compete with
// the broker as a peer group (its wake-ups were measured to wait 100 times longer).
TEST(LauncherTest, TheProgramStartsAProcessGroupOfItsOwnSoCtrlCDoesNotReachIt) {
  LaunchSpec spec;
  spec.argv = {"sleep", "1000"};
  spec.search_path = true;
  auto child = Launch(spec);
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  EXPECT_EQ(::getpgid(child->process.pid()), child->process.pid());
  EXPECT_EQ(::getsid(child->process.pid()), ::getsid(0));
}

// Sandboxed launches need user namespaces; a machine without them has nothing to check here.
std::optional<NamespaceHolder> MakeHolderOrSkip() {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) return std::nullopt;
  return std::move(*holder);
}

TEST(LauncherTest, TheHolderAndTheInitSayWhatTheyAreInArgvAndComm) {
  auto holder = MakeHolderOrSkip();
  if (!holder) GTEST_SKIP() << "no user namespaces here";
  EXPECT_EQ(ProcText(holder->pid(), "cmdline"), "sbx: namespace holder");
  EXPECT_EQ(ProcText(holder->pid(), "comm"), "sbx: ns holder");
  EXPECT_NE(::getpgid(holder->pid()), ::getpgid(0));

  LaunchSpec spec;
  spec.argv = {"/bin/sleep", "1000"};
  spec.namespaces = NamespaceSpec{holder->pidfd()};
  auto child = Launch(spec);
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  EXPECT_EQ(ProcText(child->init.pid(), "cmdline"), "sbx: renderer init");
  EXPECT_EQ(ProcText(child->init.pid(), "comm"), "sbx: init");
  EXPECT_EQ(ExecedCmdline(child->process.pid()), "/bin/sleep 1000");
  // Neither is in our process group: the terminal's Ctrl+C reaches neither.
  EXPECT_NE(::getpgid(child->init.pid()), ::getpgid(0));
  EXPECT_NE(::getpgid(child->process.pid()), ::getpgid(0));
  EXPECT_EQ(::getsid(child->process.pid()), ::getsid(0));
}

// A heartbeat queue made inside the program's own IPC namespace: its write end is the program's
// fd 6 and its read end ours, one queue.
LaunchSpec SleepWithQueue(const NamespaceHolder& holder) {
  LaunchSpec spec;
  spec.argv = {"/bin/sleep", "1000"};
  spec.namespaces = NamespaceSpec{holder.pidfd()};
  spec.queue = NamespaceQueue{6, 8, 64, {"/bin/sleep", "999"}};
  return spec;
}

TEST(LauncherTest, AQueueMadeInTheNamespaceJoinsTheProgramToItsLauncher) {
  auto holder = MakeHolderOrSkip();
  if (!holder) GTEST_SKIP() << "no user namespaces here";
  auto child = Launch(SleepWithQueue(*holder));
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  ASSERT_TRUE(child->queue.valid());
  EXPECT_EQ(child->queue_errno, 0);
  EXPECT_EQ(ExecedCmdline(child->process.pid()), "/bin/sleep 1000");
  mq_attr attr{};
  ASSERT_EQ(::mq_getattr(child->queue.get(), &attr), 0);
  EXPECT_EQ(attr.mq_maxmsg, 8);
  EXPECT_EQ(attr.mq_msgsize, 64);
  EXPECT_NE(attr.mq_flags & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(child->queue.get(), F_GETFD) & FD_CLOEXEC, 0);
  // What is sent on the program's fd 6 arrives on our end.
  std::string fd6 = "/proc/" + std::to_string(child->process.pid()) + "/fd/6";
  UniqueFd writer(::open(fd6.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(writer.valid()) << fd6 << ": " << std::strerror(errno);
  ASSERT_EQ(::mq_send(writer.get(), "beat", 4, 0), 0) << std::strerror(errno);
  char buf[64];
  EXPECT_EQ(::mq_receive(child->queue.get(), buf, sizeof buf, nullptr), 4);
  EXPECT_EQ(std::string(buf, 4), "beat");
}

TEST(LauncherTest, AQueueThatCannotBeMadeStartsTheProgramOnItsFallbackArgv) {
  auto holder = MakeHolderOrSkip();
  if (!holder) GTEST_SKIP() << "no user namespaces here";
  // No byte of queue memory: the joiner inherits the limit and its mq_open fails.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_MSGQUEUE, &saved), 0);
  rlimit none{0, saved.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_MSGQUEUE, &none), 0);
  auto child = Launch(SleepWithQueue(*holder));
  ASSERT_EQ(::setrlimit(RLIMIT_MSGQUEUE, &saved), 0);
  ASSERT_TRUE(child.has_value()) << child.error().ToString();
  EXPECT_FALSE(child->queue.valid());
  EXPECT_EQ(child->queue_errno, EMFILE);
  EXPECT_EQ(ExecedCmdline(child->process.pid()), "/bin/sleep 999");
  std::string fd6 = "/proc/" + std::to_string(child->process.pid()) + "/fd/6";
  EXPECT_NE(::access(fd6.c_str(), F_OK), 0) << "no queue, so no fd 6";
}

TEST(LauncherTest, AQueueInTheNamespaceNeedsNamespacesAndAFallback) {
  LaunchSpec spec;
  spec.argv = {"/bin/true"};
  spec.queue = NamespaceQueue{6, 8, 64, {"/bin/true"}};
  auto child = Launch(spec);
  ASSERT_FALSE(child.has_value());
  EXPECT_EQ(child.error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(HasZombieChild());
}

}  // namespace
}  // namespace sbx
