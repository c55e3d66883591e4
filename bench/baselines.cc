// The raw-syscall floor under each broker figure: the same kernel mechanism driven by the
// simplest possible code, between this process and a forked child, with no event loop, codec or
// state machine on top. A broker figure's ratio to its baseline is the cost of our code.
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/child_process.h"
#include "bench/cpu_pin.h"
#include "bench/figures.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"

extern char** environ;

namespace sbx::bench {

namespace {

// A kPing on the control pipe is a 16-byte header plus a u64 token.
constexpr size_t kPipeMessageBytes = sizeof(protocol::MessageHeader) + sizeof(uint64_t);
// The mq baseline child stops on a message of this size; real ones are a Heartbeat.
constexpr size_t kStopMessageBytes = 1;
constexpr int kWakeupTimeoutMs = 5000;
// Long enough for a CPU to go properly idle (a halted vCPU), like the broker's loop between
// heartbeats and frames.
constexpr long kIdleGapNs = 10'000'000;

Result<void> SendAll(int mqd, const void* data, size_t n) {
  int r = HandleEintr([&] { return ::mq_send(mqd, static_cast<const char*>(data), n, 0); });
  if (r != 0) return SysError("mq_send");
  return {};
}

}  // namespace

// A blocking queue, unlinked as soon as it is open so that no
// /dev/mqueue entry can outlive this process, however it ends.
Result<UniqueFd> OpenUnlinkedQueue(long max_msg, long msg_size) {
  std::array<uint8_t, 8> rnd;
  if (auto r = RandomBytes(rnd); !r) return std::unexpected(r.error());
  uint64_t suffix;
  std::memcpy(&suffix, rnd.data(), sizeof suffix);
  char name[64];
  std::snprintf(name, sizeof name, "/sbx-bench-%d-%016" PRIx64, ::getpid(), suffix);
  mq_attr attr{};
  attr.mq_maxmsg = max_msg;
  attr.mq_msgsize = msg_size;
  mqd_t q = ::mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
  if (q == static_cast<mqd_t>(-1)) return SysError("mq_open");
  UniqueFd queue(q);  // a mqd_t is a file descriptor on Linux
  if (::mq_unlink(name) != 0) return SysError("mq_unlink");
  return queue;
}

// Times fork + exec + waitpid of `argv`, whose exit code must be `expected_code`. The child's
// stdout and stderr go to /dev/null: sbx-renderer prints its usage when run without the broker.
Result<Measurement> ForkExec(const BenchConfig& config, std::vector<std::string> args,
                             int expected_code, std::string note) {
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) return SysError("open(/dev/null)");
  UniqueFd devnull(null_fd);
  // argv is built before fork: the child must not allocate.
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto once = [&]() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    auto child = Fork([&] {
      if (::dup2(devnull.get(), STDOUT_FILENO) < 0 || ::dup2(devnull.get(), STDERR_FILENO) < 0) {
        ::_exit(126);
      }
      ::execve(argv[0], argv.data(), environ);
      ::_exit(127);
    });
    if (!child) return std::unexpected(child.error());
    if (auto r = ExpectExitCode(*child, expected_code, argv[0]); !r) {
      return std::unexpected(r.error());
    }
    return MonotonicNs() - t0;
  };
  auto samples = CollectSamples(Count(config, 20, 5), Count(config, 500, 50), once);
  if (!samples) return std::unexpected(samples.error());
  return Measurement{Summarize(std::move(*samples)), std::move(note)};
}

struct PipeEcho::Impl {
  ChildProcess child;
  UniqueFd to_child;    // write end
  UniqueFd from_child;  // read end
  std::array<uint8_t, kPipeMessageBytes> message{};
  std::array<uint8_t, kPipeMessageBytes> reply{};
};

PipeEcho::PipeEcho(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PipeEcho::PipeEcho(PipeEcho&&) noexcept = default;
PipeEcho::~PipeEcho() = default;

Result<PipeEcho> PipeEcho::Start() {
  auto to_child = MakePipe(/*nonblocking=*/false);
  if (!to_child) return std::unexpected(to_child.error());
  auto from_child = MakePipe(/*nonblocking=*/false);
  if (!from_child) return std::unexpected(from_child.error());
  int child_in = to_child->read.get();
  int child_out = from_child->write.get();
  int parent_in = from_child->read.get();
  int parent_out = to_child->write.get();

  auto child = Fork([&] {
    // The child's copy of the parent's write end would keep the pipe open after the parent
    // closes its own, and the child would never see EOF.
    (void)::close(parent_out);
    (void)::close(parent_in);
    std::array<uint8_t, kPipeMessageBytes> buf;
    while (RawReadExact(child_in, buf.data(), buf.size())) {
      int cpu = ::sched_getcpu();  // echoed back so the parent can tell the placement
      std::memcpy(buf.data(), &cpu, sizeof cpu);
      if (!RawWriteExact(child_out, buf.data(), buf.size())) ::_exit(1);
    }
  });
  if (!child) return std::unexpected(child.error());
  return PipeEcho(std::make_unique<Impl>(std::move(*child), std::move(to_child->write),
                                         std::move(from_child->read)));
}

Result<int64_t> PipeEcho::RoundTrip() {
  int64_t t0 = MonotonicNs();
  if (auto r = WriteAll(impl_->to_child.get(), impl_->message); !r) {
    return std::unexpected(r.error());
  }
  auto got = ReadFull(impl_->from_child.get(), impl_->reply);
  int64_t t1 = MonotonicNs();
  if (!got) return std::unexpected(got.error());
  if (*got != impl_->reply.size()) return MakeError(Errc::kPeerClosed, "pipe echo child went away");
  int child_cpu;
  std::memcpy(&child_cpu, impl_->reply.data(), sizeof child_cpu);
  placement_.Record(::sched_getcpu(), child_cpu);
  return t1 - t0;
}

Result<void> PipeEcho::Stop() {
  impl_->to_child.reset();  // EOF tells the child to exit
  return ExpectExitCode(impl_->child, 0, "pipe echo child");
}

Result<Measurement> MqRttHalf(const BenchConfig& config) {
  auto pin = ScopedCpuPin::PinHere();  // the child inherits it
  if (!pin) return std::unexpected(pin.error());
  auto ping = OpenUnlinkedQueue();
  if (!ping) return std::unexpected(ping.error());
  auto pong = OpenUnlinkedQueue();
  if (!pong) return std::unexpected(pong.error());
  int ping_q = ping->get();
  int pong_q = pong->get();

  // fork() shares both open queue descriptions with the child; exec is what would close them.
  auto child = Fork([&] {
    std::array<char, protocol::kQueueMsgSize> buf;
    for (;;) {
      ssize_t n = ::mq_receive(ping_q, buf.data(), buf.size(), nullptr);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) ::_exit(1);
      if (static_cast<size_t>(n) == kStopMessageBytes) ::_exit(0);
      int cpu = ::sched_getcpu();  // echoed back so the parent can tell the placement
      std::memcpy(buf.data(), &cpu, sizeof cpu);
      while (::mq_send(pong_q, buf.data(), static_cast<size_t>(n), 0) != 0) {
        if (errno != EINTR) ::_exit(1);
      }
    }
  });
  if (!child) return std::unexpected(child.error());

  protocol::Heartbeat message{};
  message.magic = protocol::kHeartbeatMagic;
  std::array<char, protocol::kQueueMsgSize> reply;
  Placement placement;
  auto once = [&]() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    if (auto r = SendAll(ping_q, &message, sizeof message); !r) return std::unexpected(r.error());
    ssize_t n =
        HandleEintr([&] { return ::mq_receive(pong_q, reply.data(), reply.size(), nullptr); });
    int64_t t1 = MonotonicNs();
    if (n < 0) return SysError("mq_receive");
    if (static_cast<size_t>(n) != sizeof message) {
      return MakeError(Errc::kProtocol, "mq echo child replied with the wrong size");
    }
    int child_cpu;
    std::memcpy(&child_cpu, reply.data(), sizeof child_cpu);
    placement.Record(::sched_getcpu(), child_cpu);
    return (t1 - t0) / 2;
  };
  auto samples = CollectSamples(Count(config, 2000, 200), Count(config, 20000, 2000), once);
  if (!samples) return std::unexpected(samples.error());

  uint8_t stop = 0;
  if (auto r = SendAll(ping_q, &stop, kStopMessageBytes); !r) return std::unexpected(r.error());
  if (auto r = ExpectExitCode(*child, 0, "mq echo child"); !r) return std::unexpected(r.error());
  return Measurement{
      Summarize(std::move(*samples)),
      "half of a round trip of a 40-byte message over two blocking message queues (8 messages "
      "of 64 bytes each); pinned to one CPU: " +
          placement.Describe()};
}

// Shared with both children: written by the receiver, read after it has exited.
struct MqOnewayShared {
  std::atomic<int> stop;
  std::atomic<int> count;
  int64_t samples[MqOneway::kMaxSamples];
};

struct MqOneway::Impl {
  UniqueFd queue;
  MqOnewayShared* shared = nullptr;
  std::optional<ChildProcess> receiver;
  std::optional<ChildProcess> sender;
  ~Impl() {
    sender.reset();  // killed and reaped, unless Stop() already reaped them
    receiver.reset();
    if (shared != nullptr) (void)::munmap(shared, sizeof *shared);
  }
};

MqOneway::MqOneway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MqOneway::MqOneway(MqOneway&&) noexcept = default;
MqOneway::~MqOneway() = default;

Result<MqOneway> MqOneway::Start(int64_t gap_ns) {
  auto impl = std::make_unique<Impl>();
  auto queue = OpenUnlinkedQueue();
  if (!queue) return std::unexpected(queue.error());
  impl->queue = std::move(*queue);
  void* mem = ::mmap(nullptr, sizeof(MqOnewayShared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return SysError("mmap");
  impl->shared = std::construct_at(static_cast<MqOnewayShared*>(mem));
  MqOnewayShared* shared = impl->shared;
  int q = impl->queue.get();

  auto receiver = Fork([&] {
    std::array<char, protocol::kQueueMsgSize> buf;
    for (;;) {
      ssize_t n = ::mq_receive(q, buf.data(), buf.size(), nullptr);
      int64_t now = MonotonicNs();
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) ::_exit(1);
      if (static_cast<size_t>(n) == kStopMessageBytes) ::_exit(0);
      protocol::Heartbeat hb;
      if (static_cast<size_t>(n) != sizeof hb) ::_exit(1);
      std::memcpy(&hb, buf.data(), sizeof hb);
      int i = shared->count.load(std::memory_order_relaxed);
      if (i < kMaxSamples) {
        shared->samples[i] = now - hb.mono_ns;
        shared->count.store(i + 1, std::memory_order_release);
      }
    }
  });
  if (!receiver) return std::unexpected(receiver.error());
  impl->receiver.emplace(std::move(*receiver));

  auto sender = Fork([&] {
    while (shared->stop.load(std::memory_order_acquire) == 0) {
      timespec gap{0, static_cast<long>(gap_ns)};
      while (::nanosleep(&gap, &gap) != 0) {
        if (errno != EINTR) ::_exit(1);
      }
      // Stamped right before the send, as the renderer stamps a heartbeat.
      protocol::Heartbeat hb{};
      hb.magic = protocol::kHeartbeatMagic;
      hb.mono_ns = MonotonicNs();
      while (::mq_send(q, reinterpret_cast<const char*>(&hb), sizeof hb, 0) != 0) {
        if (errno != EINTR) ::_exit(1);
      }
    }
  });
  if (!sender) return std::unexpected(sender.error());
  impl->sender.emplace(std::move(*sender));
  return MqOneway(std::move(impl));
}

Result<std::vector<int64_t>> MqOneway::Stop() {
  impl_->shared->stop.store(1, std::memory_order_release);
  if (auto r = ExpectExitCode(*impl_->sender, 0, "mq sender child"); !r) {
    return std::unexpected(r.error());
  }
  uint8_t stop = 0;
  if (auto r = SendAll(impl_->queue.get(), &stop, kStopMessageBytes); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = ExpectExitCode(*impl_->receiver, 0, "mq receiver child"); !r) {
    return std::unexpected(r.error());
  }
  int n = impl_->shared->count.load(std::memory_order_acquire);
  return std::vector<int64_t>(impl_->shared->samples, impl_->shared->samples + n);
}

Result<Measurement> PidfdWakeup(const BenchConfig& config) {
  auto once = [&]() -> Result<int64_t> {
    auto started = MakePipe(/*nonblocking=*/false);
    if (!started) return std::unexpected(started.error());
    int started_fd = started->write.get();
    auto child = Fork([&] {
      uint8_t byte = 1;
      if (!RawWriteExact(started_fd, &byte, 1)) ::_exit(1);
      for (;;) ::pause();
    });
    if (!child) return std::unexpected(child.error());
    started->write.reset();
    // Kill a child that is asleep, as a renderer between frames is, not one still forking.
    uint8_t byte = 0;
    auto got = ReadFull(started->read.get(), {&byte, 1});
    if (!got) return std::unexpected(got.error());
    if (*got != 1) return MakeError(Errc::kPeerClosed, "pause child died before it started");
    auto pidfd = PidfdOpen(child->pid());
    if (!pidfd) return std::unexpected(pidfd.error());

    int64_t t0 = MonotonicNs();
    if (::kill(child->pid(), SIGKILL) != 0) return SysError("kill");
    pollfd p{pidfd->get(), POLLIN, 0};
    int r = HandleEintr([&] { return ::poll(&p, 1, kWakeupTimeoutMs); });
    int64_t t1 = MonotonicNs();
    if (r < 0) return SysError("poll(pidfd)");
    if (r == 0) return MakeError(Errc::kTimeout, "pidfd not readable 5 s after SIGKILL");

    auto status = child->Wait();
    if (!status) return std::unexpected(status.error());
    if (!WIFSIGNALED(*status) || WTERMSIG(*status) != SIGKILL) {
      return MakeError(Errc::kState, "pause child did not die of SIGKILL");
    }
    return t1 - t0;
  };
  auto samples = CollectSamples(Count(config, 20, 5), Count(config, 1000, 100), once);
  if (!samples) return std::unexpected(samples.error());
  return Measurement{
      Summarize(std::move(*samples)),
      "from kill -9 of an idle child of sbx-bench until a process descriptor reports its "
      "exit"};
}

Result<Measurement> ForkExecTrue(const BenchConfig& config) {
  return ForkExec(config, {"/bin/true"}, 0,
                  "start /bin/true in a new process and wait for its exit");
}

Result<Measurement> ForkExecRenderer(const BenchConfig& config) {
  return ForkExec(
      config, {config.renderer_path}, protocol::kExitUsage,
      "start sbx-renderer with no arguments in a new process (it exits at once) and wait for "
      "its exit");
}

}  // namespace sbx::bench
