// POSIX message queues for heartbeats: anonymous from birth (no /dev/mqueue entry can outlive a
// crash), small enough that hundreds fit under RLIMIT_MSGQUEUE, non-blocking at both ends.
#include "ipc/message_queue.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

constexpr long kMaxMsg = protocol::kQueueMaxMsg;
constexpr long kMsgSize = protocol::kQueueMsgSize;
// statfs(2) f_type of the mqueue filesystem (ipc/mqueue.c; not in the uapi headers).
constexpr long kMqueueMagic = 0x19800202;

std::string FdTarget(int fd) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  char buf[512];
  ssize_t n = ::readlink(path, buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string OurQueuePrefix() { return "sbx-" + std::to_string(::getpid()) + "-"; }

std::vector<std::string> ListDir(const char* dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir);
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

// Every queue name in this IPC namespace. Uses /dev/mqueue when it is mounted; otherwise a child
// mounts a private mqueue instance inside a mount namespace of its own (root only), which shows
// the same queues without touching the host's mounts. nullopt when neither works here.
std::optional<std::vector<std::string>> ListQueues() {
  struct statfs fs;
  if (::statfs("/dev/mqueue", &fs) == 0 && fs.f_type == kMqueueMagic) return ListDir("/dev/mqueue");

  char dir[] = "/tmp/sbx-unit-mqueue-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return std::nullopt;
  auto pipe = MakePipe(false);
  if (!pipe) return std::nullopt;
  const int out = pipe->write.get();
  test::Child child = test::ForkChild([&dir, out] {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(10);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(11);
    if (::mount("mqueue", dir, "mqueue", 0, nullptr) != 0) ::_exit(12);
    std::string text;
    for (const auto& name : ListDir(dir)) text += name + "\n";
    if (!WriteAll(out, {reinterpret_cast<const uint8_t*>(text.data()), text.size()})) ::_exit(13);
  });
  pipe->write.reset();
  std::optional<std::string> text;
  std::optional<siginfo_t> exit;
  if (child.pidfd.valid()) {
    text = test::ReadAllWithin(pipe->read.get());
    exit = test::WaitForExit(child.pidfd.get());
  }
  ::rmdir(dir);
  if (!text || !exit || exit->si_code != CLD_EXITED || exit->si_status != 0) return std::nullopt;
  return test::SplitLines(*text);
}

TEST(MessageQueueTest, CreateQueuePairUnlinksTheNameBeforeReturning) {
  auto pair = CreateQueuePair(kMaxMsg, kMsgSize);
  ASSERT_TRUE(pair.has_value()) << pair.error().ToString();

  // The kernel still knows the name the queue was created under, and that it is gone.
  const std::string target = FdTarget(pair->reader.get());
  const std::string deleted = " (deleted)";
  ASSERT_TRUE(target.starts_with("/" + OurQueuePrefix())) << target;
  ASSERT_TRUE(target.ends_with(deleted)) << target;
  const std::string name = target.substr(0, target.size() - deleted.size());
  EXPECT_EQ(name.size(), 1 + OurQueuePrefix().size() + 16) << "8 random bytes in hex: " << name;

  errno = 0;
  mqd_t again = ::mq_open(name.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(again, static_cast<mqd_t>(-1));
  EXPECT_EQ(errno, ENOENT);
  if (again != static_cast<mqd_t>(-1)) ::mq_close(again);
}

TEST(MessageQueueTest, CreateQueuePairLeavesNoEntryInTheMqueueFilesystem) {
  // A queue left linked on purpose proves that the listing does see this namespace's queues.
  std::array<uint8_t, 6> rnd;
  ASSERT_TRUE(RandomBytes(rnd).has_value());
  std::string probe = "sbx-unit-probe-" + std::to_string(::getpid());
  for (uint8_t b : rnd) probe += "0123456789abcdef"[b & 15];
  mq_attr attr{};
  attr.mq_maxmsg = kMaxMsg;
  attr.mq_msgsize = kMsgSize;
  mqd_t linked =
      ::mq_open(("/" + probe).c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
  ASSERT_NE(linked, static_cast<mqd_t>(-1)) << std::strerror(errno);

  auto first = CreateQueuePair(kMaxMsg, kMsgSize);
  auto second = CreateQueuePair(kMaxMsg, kMsgSize);
  auto names = ListQueues();
  ::mq_close(linked);
  ::mq_unlink(("/" + probe).c_str());
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  if (!names) GTEST_SKIP() << "/dev/mqueue is not mounted and a private mount is not allowed";

  EXPECT_NE(std::find(names->begin(), names->end(), probe), names->end())
      << "the listing does not show this IPC namespace's queues";
  for (const auto& name : *names) {
    EXPECT_FALSE(name.starts_with(OurQueuePrefix())) << "left behind: " << name;
  }
}

TEST(MessageQueueTest, BothEndsAreNonBlockingCloseOnExecAndSmall) {
  auto pair = CreateQueuePair(kMaxMsg, kMsgSize);
  ASSERT_TRUE(pair.has_value()) << pair.error().ToString();
  for (int fd : {pair->reader.get(), pair->writer.get()}) {
    mq_attr attr{};
    ASSERT_EQ(::mq_getattr(fd, &attr), 0);
    EXPECT_EQ(attr.mq_maxmsg, kMaxMsg);
    EXPECT_EQ(attr.mq_msgsize, kMsgSize);
    EXPECT_TRUE(attr.mq_flags & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
  }
  EXPECT_EQ(::fcntl(pair->reader.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(::fcntl(pair->writer.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
}

TEST(MessageQueueTest, SendThenReceiveRoundTripsTheBytes) {
  auto pair = CreateQueuePair(kMaxMsg, kMsgSize);
  ASSERT_TRUE(pair.has_value()) << pair.error().ToString();
  std::vector<uint8_t> sent(40);
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<uint8_t>(i * 7 + 1);
  ASSERT_TRUE(QueueSend(pair->writer.get(), sent).has_value());

  std::vector<uint8_t> buf(kMsgSize);
  auto n = QueueReceive(pair->reader.get(), buf);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  ASSERT_TRUE(n->has_value());
  ASSERT_EQ(**n, sent.size());
  EXPECT_TRUE(std::equal(sent.begin(), sent.end(), buf.begin()));
}

TEST(MessageQueueTest, ReceiveOnAnEmptyQueueReturnsNothingWithoutBlocking) {
  auto pair = CreateQueuePair(kMaxMsg, kMsgSize);
  ASSERT_TRUE(pair.has_value()) << pair.error().ToString();
  std::vector<uint8_t> buf(kMsgSize);
  auto n = QueueReceive(pair->reader.get(), buf);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_FALSE(n->has_value());
}

TEST(MessageQueueTest, SendToAFullQueueIsOverflow) {
  auto pair = CreateQueuePair(kMaxMsg, kMsgSize);
  ASSERT_TRUE(pair.has_value()) << pair.error().ToString();
  const std::vector<uint8_t> msg(kMsgSize, 0xab);
  for (long i = 0; i < kMaxMsg; ++i) {
    ASSERT_TRUE(QueueSend(pair->writer.get(), msg).has_value()) << i;
  }
  auto r = QueueSend(pair->writer.get(), msg);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kOverflow);

  // Every message that was accepted is still there, then the queue is empty.
  std::vector<uint8_t> buf(kMsgSize);
  for (long i = 0; i < kMaxMsg; ++i) {
    auto n = QueueReceive(pair->reader.get(), buf);
    ASSERT_TRUE(n.has_value() && n->has_value()) << i;
  }
  auto empty = QueueReceive(pair->reader.get(), buf);
  ASSERT_TRUE(empty.has_value());
  EXPECT_FALSE(empty->has_value());
}

TEST(MessageQueueTest, AMessageLargerThanTheQueueMessageSizeIsASystemError) {
  auto pair = CreateQueuePair(kMaxMsg, kMsgSize);
  ASSERT_TRUE(pair.has_value()) << pair.error().ToString();
  const std::vector<uint8_t> big(kMsgSize + 1, 1);
  auto r = QueueSend(pair->writer.get(), big);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kSystem);
  EXPECT_EQ(r.error().sys_errno, EMSGSIZE);
}

// Creates `count` pairs that all exist at once and checks each is a distinct working queue.
// Returns what went wrong, or an empty string.
std::string CreatePairsAndExercise(int count) {
  std::vector<QueuePair> pairs;
  for (int i = 0; i < count; ++i) {
    auto pair = CreateQueuePair(kMaxMsg, kMsgSize);
    if (!pair) return "pair " + std::to_string(i) + ": " + pair.error().ToString();
    pairs.push_back(std::move(*pair));
  }
  for (size_t i = 0; i < pairs.size(); ++i) {
    const uint8_t tag[2] = {static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)};
    if (!QueueSend(pairs[i].writer.get(), tag)) return "send on pair " + std::to_string(i);
  }
  std::vector<uint8_t> buf(kMsgSize);
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto n = QueueReceive(pairs[i].reader.get(), buf);
    if (!n || !*n || **n != 2 || (buf[0] | (buf[1] << 8)) != static_cast<int>(i)) {
      return "pair " + std::to_string(i) + " did not get its own message back";
    }
  }
  return "";
}

TEST(MessageQueueTest, TwoHundredPairsExistAtOnce) {
  // 200 queues must fit both the per-user RLIMIT_MSGQUEUE (800 KiB by default) and the
  // per-IPC-namespace queues_max (256 by default; only CAP_SYS_RESOURCE bypasses it). The count
  // runs in a child with an IPC namespace of its own where that is allowed, so queues that other
  // processes on this machine hold (a parallel test run, a live broker) do not count against it.
  auto report = MakePipe(false);
  ASSERT_TRUE(report.has_value());
  const int out = report->write.get();
  test::Child child = test::ForkChild([out] {
    (void)::unshare(CLONE_NEWIPC);
    // The default limit, whatever this machine was given: the 200 must fit in what a user has
    // out of the box. Lowering is always allowed; raising back to it may not be.
    const rlimit stock{819'200, 819'200};
    rlimit now{};
    if (::getrlimit(RLIMIT_MSGQUEUE, &now) == 0 && now.rlim_cur > stock.rlim_cur) {
      (void)::setrlimit(RLIMIT_MSGQUEUE, &stock);
    }
    std::string error = CreatePairsAndExercise(200);
    if (!error.empty()) {
      (void)WriteAll(out, {reinterpret_cast<const uint8_t*>(error.data()), error.size()});
      ::_exit(1);
    }
  });
  ASSERT_TRUE(child.pidfd.valid());
  report->write.reset();
  auto text = test::ReadAllWithin(report->read.get());
  auto exit = test::WaitForExit(child.pidfd.get());
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->si_code, CLD_EXITED);
  EXPECT_EQ(exit->si_status, 0) << text.value_or("(no report)");
}

}  // namespace
}  // namespace sbx
