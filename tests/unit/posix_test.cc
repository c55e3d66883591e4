// The syscall wrappers everything else stands on: pipes, short transfers, signal names.
#include "ipc/posix.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/test_util.h"

namespace sbx {
namespace {

TEST(PosixTest, MakePipeIsCloseOnExecAndNonBlockingOnlyWhenAsked) {
  auto blocking = MakePipe(false);
  auto nonblocking = MakePipe(true);
  ASSERT_TRUE(blocking.has_value() && nonblocking.has_value());
  for (int fd : {blocking->read.get(), blocking->write.get(), nonblocking->read.get(),
                 nonblocking->write.get()}) {
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << fd;
  }
  EXPECT_FALSE(::fcntl(blocking->read.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(nonblocking->read.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(nonblocking->write.get(), F_GETFL) & O_NONBLOCK);
}

TEST(PosixTest, ReadSomeOnAnEmptyNonBlockingPipeIsEagainAndEofIsZero) {
  auto pipe = MakePipe(true);
  ASSERT_TRUE(pipe.has_value());
  uint8_t buf[8];
  auto empty = ReadSome(pipe->read.get(), buf);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().sys_errno, EAGAIN);
  pipe->write.reset();
  auto eof = ReadSome(pipe->read.get(), buf);
  ASSERT_TRUE(eof.has_value());
  EXPECT_EQ(*eof, 0u);
}

TEST(PosixTest, WriteAllAndReadFullMoveMoreThanAPipeHoldsThroughAChild) {
  // A child drains the pipe while WriteAll blocks on it, so both must loop on short transfers.
  auto pipe = MakePipe(false);
  auto back = MakePipe(false);
  ASSERT_TRUE(pipe.has_value() && back.has_value());
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);

  const int in = pipe->read.get();
  const int out = back->write.get();
  const size_t size = data.size();
  test::Child child = test::ForkChild([in, out, size] {
    std::vector<uint8_t> got(size);
    auto n = ReadFull(in, got);
    if (!n || *n != size) ::_exit(3);
    if (!WriteAll(out, got)) ::_exit(4);
  });
  ASSERT_TRUE(child.pidfd.valid());
  pipe->read.reset();
  back->write.reset();

  ASSERT_TRUE(WriteAll(pipe->write.get(), data).has_value());
  pipe->write.reset();
  auto echoed = test::ReadAllWithin(back->read.get());
  auto exit = test::WaitForExit(child.pidfd.get());
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->si_code, CLD_EXITED);
  EXPECT_EQ(exit->si_status, 0);
  ASSERT_TRUE(echoed.has_value());
  ASSERT_EQ(echoed->size(), data.size());
  EXPECT_TRUE(
      std::equal(data.begin(), data.end(), reinterpret_cast<const uint8_t*>(echoed->data())));
}

TEST(PosixTest, ReadFullStopsAtEof) {
  auto pipe = MakePipe(false);
  ASSERT_TRUE(pipe.has_value());
  const uint8_t three[3] = {1, 2, 3};
  ASSERT_TRUE(WriteAll(pipe->write.get(), three).has_value());
  pipe->write.reset();
  uint8_t buf[10];
  auto n = ReadFull(pipe->read.get(), buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 3u);
}

TEST(PosixTest, WaitReadableReportsReadinessWithoutWaitingWhenAskedNotTo) {
  auto pipe = MakePipe(true);
  ASSERT_TRUE(pipe.has_value());
  EXPECT_EQ(WaitReadable(pipe->read.get(), 0).value_or(true), false);
  const uint8_t b = 0;
  ASSERT_TRUE(WriteAll(pipe->write.get(), std::span(&b, 1)).has_value());
  EXPECT_EQ(WaitReadable(pipe->read.get(), 0).value_or(false), true);
}

TEST(PosixTest, SignalFromNameAcceptsNamesWithOrWithoutSigAndNumbers) {
  EXPECT_EQ(SignalFromName("KILL"), SIGKILL);
  EXPECT_EQ(SignalFromName("SIGKILL"), SIGKILL);
  EXPECT_EQ(SignalFromName("sigsegv"), SIGSEGV);
  EXPECT_EQ(SignalFromName("term"), SIGTERM);
  EXPECT_EQ(SignalFromName("9"), 9);
  EXPECT_EQ(SignalFromName("64"), 64);
}

TEST(PosixTest, SignalFromNameRejectsEverythingElse) {
  for (const char* name : {"", "SIG", "SIGNOPE", "NOPE", "0", "-9", "65", "9x", " 9", "+9",
                           "99999999999", "SIGKILL ", "KILL\xff"}) {
    EXPECT_EQ(SignalFromName(name), -1) << "[" << name << "]";
  }
}

TEST(PosixTest, SignalNameNamesTheCommonSignals) {
  EXPECT_STREQ(SignalName(SIGKILL), "SIGKILL");
  EXPECT_STREQ(SignalName(SIGSEGV), "SIGSEGV");
  EXPECT_STREQ(SignalName(SIGSYS), "SIGSYS");
  for (int sig : {SIGHUP, SIGINT, SIGABRT, SIGTERM, SIGBUS, SIGFPE, SIGILL}) {
    EXPECT_EQ(SignalFromName(SignalName(sig)), sig) << sig;
  }
}

TEST(PosixTest, SignalNameNamesEveryStandardSignal) {
  // Each of these kills a process by default; unnamed, they printed as "SIG16" and so on.
  EXPECT_STREQ(SignalName(SIGSTKFLT), "SIGSTKFLT");
  EXPECT_STREQ(SignalName(SIGVTALRM), "SIGVTALRM");
  EXPECT_STREQ(SignalName(SIGPROF), "SIGPROF");
  EXPECT_STREQ(SignalName(SIGIO), "SIGIO");
  EXPECT_STREQ(SignalName(SIGPWR), "SIGPWR");
  EXPECT_EQ(SignalFromName("POLL"), SIGIO);
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    if (sig == 32 || sig == 33) continue;  // reserved by glibc for its threads
    std::string name = SignalName(sig);
    EXPECT_NE(name, "SIG" + std::to_string(sig)) << "signal " << sig << " has no name";
    EXPECT_EQ(SignalFromName(name), sig) << name;
  }
}

TEST(PosixTest, SignalNameOfAnUnnamedSignalIsSigAndItsNumber) {
  // ipc/posix.h: "SIGKILL"; "SIG42" for unnamed ones (static storage).
  EXPECT_STREQ(SignalName(42), "SIG42");
  EXPECT_STREQ(SignalName(64), "SIG64");
  const char* first = SignalName(42);
  (void)SignalName(43);
  EXPECT_STREQ(first, "SIG42") << "a later call overwrote an earlier result";
}

// In a child: the mask it sets is process state the rest of this binary must not inherit.
TEST(PosixTest, BlockedSignalsArriveOnTheSignalfdAndNoHandlerRuns) {
  test::Child child = test::ForkChild([] {
    auto fd = BlockSignalsToFd({SIGUSR2, SIGTERM});
    if (!fd) ::_exit(2);
    if (!(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC)) ::_exit(3);
    if (!(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK)) ::_exit(4);
    // Default action would kill us: blocked, it must wait on the fd instead.
    if (::raise(SIGUSR2) != 0) ::_exit(5);
    auto ready = WaitReadable(fd->get(), test::kDeadlineMs);
    if (!ready || !*ready) ::_exit(6);
    signalfd_siginfo si{};
    if (::read(fd->get(), &si, sizeof si) != static_cast<ssize_t>(sizeof si)) ::_exit(7);
    ::_exit(si.ssi_signo == SIGUSR2 ? 0 : 8);
  });
  ASSERT_TRUE(child.pidfd.valid());
  auto exit = test::WaitForExit(child.pidfd.get());
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->si_code, CLD_EXITED) << "died of signal " << exit->si_status;
  EXPECT_EQ(exit->si_status, 0) << "2: no fd, 3: not CLOEXEC, 4: blocking, 5-7: no signal on it";
}

}  // namespace
}  // namespace sbx
