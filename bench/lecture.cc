// The lecture's table. Every figure is a median of samples taken here and now; the sentences
// are built from those numbers. The ping-pongs run with both ends pinned to one CPU, so a
// wakeup is a context switch on that CPU (not an inter-processor interrupt) in every row alike.
#include "bench/lecture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "bench/child_process.h"
#include "bench/cpu_pin.h"
#include "broker/proc_stats.h"
#include "ipc/posix.h"

namespace sbx::bench {

namespace {

constexpr size_t kSmall = 64;
constexpr size_t kBig = size_t{1} << 20;
constexpr double kMiB = 1024.0 * 1024.0;

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A number with as many digits as its size deserves.
std::string Num(double v) { return Fixed(v, v >= 100 ? 0 : v >= 10 ? 1 : 2); }

LectureCell Cell(std::string label, double value, std::string unit) {
  return {std::move(label), value, std::move(unit), ""};
}
LectureCell Fact(std::string label, std::string text) {
  return {std::move(label), std::nullopt, "", std::move(text)};
}

template <typename F>
Result<double> MedianUs(const BenchConfig& config, int full, int quick, F&& once) {
  auto samples = CollectSamples(Count(config, full / 10 + 1, 1), Count(config, full, quick),
                                std::forward<F>(once));
  if (!samples) return std::unexpected(samples.error());
  return Summarize(std::move(*samples)).median_us;
}

// A pthread that runs `body`; joined by Join() or, at the latest, by the destructor.
class Thread {
 public:
  static Result<Thread> Start(std::function<void()> body) {
    auto fn = std::make_unique<std::function<void()>>(std::move(body));
    pthread_t t;
    int err = ::pthread_create(&t, nullptr, &Run, fn.get());
    if (err != 0) {
      errno = err;
      return SysError("pthread_create");
    }
    return Thread(t, std::move(fn));
  }
  Thread(Thread&& o) noexcept
      : thread_(o.thread_), fn_(std::move(o.fn_)), joinable_(std::exchange(o.joinable_, false)) {}
  Thread& operator=(Thread&&) = delete;
  ~Thread() { Join(); }
  void Join() {
    if (joinable_) (void)::pthread_join(thread_, nullptr);
    joinable_ = false;
  }

 private:
  Thread(pthread_t t, std::unique_ptr<std::function<void()>> fn)
      : thread_(t), fn_(std::move(fn)), joinable_(true) {}
  static void* Run(void* arg) {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  }
  pthread_t thread_;
  std::unique_ptr<std::function<void()>> fn_;
  bool joinable_;
};

// An anonymous mapping, unmapped when it goes. MAP_SHARED stays shared with children forked
// while it exists; MAP_PRIVATE becomes copy-on-write in them.
class Region {
 public:
  static Result<Region> Map(size_t bytes, int flags) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return SysError("mmap");
    return Region(p, bytes);
  }
  Region(Region&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  Region& operator=(Region&&) = delete;
  ~Region() {
    if (addr_ != nullptr) (void)::munmap(addr_, bytes_);
  }
  char* data() const { return static_cast<char*>(addr_); }

 private:
  Region(void* addr, size_t bytes) : addr_(addr), bytes_(bytes) {}
  void* addr_;
  size_t bytes_;
};

// ---- creation ----

Result<double> ThreadCreateUs(const BenchConfig& config) {
  return MedianUs(config, 1000, 100, []() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    pthread_t t;
    int err = ::pthread_create(
        &t, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
    if (err != 0) {
      errno = err;
      return SysError("pthread_create");
    }
    if ((err = ::pthread_join(t, nullptr)) != 0) {
      errno = err;
      return SysError("pthread_join");
    }
    return MonotonicNs() - t0;
  });
}

Result<double> ForkExitUs(const BenchConfig& config, int full, int quick) {
  return MedianUs(config, full, quick, []() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    auto child = Fork([] {});
    if (!child) return std::unexpected(child.error());
    if (auto r = ExpectExitCode(*child, 0, "forked child"); !r) return std::unexpected(r.error());
    return MonotonicNs() - t0;
  });
}

std::string NextToSelf(const char* name) {
  auto self = SelfExePath();
  if (!self) return name;
  return self->substr(0, self->rfind('/') + 1) + name;
}

Result<LectureRow> CreationRow(const BenchConfig& config) {
  auto thread = ThreadCreateUs(config);
  if (!thread) return std::unexpected(thread.error());
  auto process = ForkExitUs(config, 300, 30);
  if (!process) return std::unexpected(process.error());
  return LectureRow{
      "creation",
      "thread vs process",
      {Cell("pthread_create+join", *thread, "us"), Cell("fork+exit+wait", *process, "us")},
      "A new thread shares its creator's address space, so nothing is copied; fork copies the "
      "page tables and the process's bookkeeping and the parent waits for the exit: " +
          Num(*process / *thread) + "x the thread here."};
}

Result<LectureRow> ExecRow(const BenchConfig& config) {
  auto process = ForkExitUs(config, 200, 20);
  if (!process) return std::unexpected(process.error());
  auto exec = ForkExec(config, {NextToSelf("sbx-lecture-exit")}, 0, "");
  if (!exec) return std::unexpected(exec.error());
  double e = exec->summary.median_us;
  return LectureRow{"creation",
                    "fork+exec",
                    {Cell("fork+exec+wait (static)", e, "us"), Cell("fork alone", *process, "us")},
                    "Running a new program also replaces the address space and loads the "
                    "program, even a tiny static one: " +
                        Num(e / *process) + "x a bare fork."};
}

Result<LectureRow> RendererSpawnRow(const BenchConfig& config) {
  BenchConfig with = config;
  with.sandbox = true;
  auto sandboxed = SpawnToFirstFrame(with);
  if (!sandboxed) return std::unexpected(sandboxed.error());
  with.sandbox = false;
  auto bare = SpawnToFirstFrame(with);
  if (!bare) return std::unexpected(bare.error());
  double s = sandboxed->summary.median_us / 1000.0;
  double b = bare->summary.median_us / 1000.0;
  return LectureRow{
      "creation",
      "sbx renderer",
      {Cell("sandboxed, to first frame", s, "ms"), Cell("unsandboxed", b, "ms")},
      "A renderer is a fork+exec plus its setup; with the sandbox (namespaces, an init, an "
      "empty root, seccomp) a start takes " +
          Num(s / b) + "x the time it takes without."};
}

// ---- overhead ----

struct Memory {
  double rss_kb = 0;
  double pss_kb = 0;
  double pte_kb = 0;
};

Result<Memory> MemoryOf(pid_t pid) {
  auto stats = ReadProcStats(pid);
  if (!stats) return std::unexpected(stats.error());
  Memory m;
  m.rss_kb = static_cast<double>(stats->rss_bytes) / 1024.0;
  m.pss_kb = static_cast<double>(stats->pss_bytes.value_or(0)) / 1024.0;
  m.pte_kb = static_cast<double>(StatusKb(pid, "VmPTE").value_or(0));
  return m;
}

constexpr int kMemoryWorkers = 16;

// Each thread waits on one pipe until the writer closes it; the process's growth per thread.
Result<Memory> PerThread() {
  auto gate = MakePipe(false);
  if (!gate) return std::unexpected(gate.error());
  auto before = MemoryOf(::getpid());
  if (!before) return std::unexpected(before.error());
  std::vector<Thread> threads;
  const int in = gate->read.get();
  for (int i = 0; i < kMemoryWorkers; ++i) {
    auto t = Thread::Start([in] {
      char c;
      (void)RawReadExact(in, &c, 1);  // returns at EOF
    });
    if (!t) return std::unexpected(t.error());
    threads.push_back(std::move(*t));
  }
  auto after = MemoryOf(::getpid());
  gate->write.reset();
  for (auto& t : threads) t.Join();
  if (!after) return std::unexpected(after.error());
  return Memory{(after->rss_kb - before->rss_kb) / kMemoryWorkers,
                (after->pss_kb - before->pss_kb) / kMemoryWorkers,
                (after->pte_kb - before->pte_kb) / kMemoryWorkers};
}

// Each child waits on one pipe; what the kernel charges each of them.
Result<Memory> PerProcess() {
  auto gate = MakePipe(false);
  if (!gate) return std::unexpected(gate.error());
  std::vector<ChildProcess> children;
  const int in = gate->read.get();
  const int out = gate->write.get();
  for (int i = 0; i < kMemoryWorkers; ++i) {
    auto c = Fork([in, out] {
      ::close(out);
      char c;
      (void)RawReadExact(in, &c, 1);
    });
    if (!c) return std::unexpected(c.error());
    children.push_back(std::move(*c));
  }
  Memory sum;
  for (auto& c : children) {
    auto m = MemoryOf(c.pid());
    if (!m) return std::unexpected(m.error());
    sum.rss_kb += m->rss_kb;
    sum.pss_kb += m->pss_kb;
    sum.pte_kb += m->pte_kb;
  }
  gate->write.reset();
  for (auto& c : children) {
    if (auto r = ExpectExitCode(c, 0, "waiting child"); !r) return std::unexpected(r.error());
  }
  return Memory{sum.rss_kb / kMemoryWorkers, sum.pss_kb / kMemoryWorkers,
                sum.pte_kb / kMemoryWorkers};
}

std::vector<LectureCell> MemoryCells(const Memory& m) {
  return {Cell("RSS", m.rss_kb, "KiB"), Cell("PSS", m.pss_kb, "KiB"),
          Cell("page tables", m.pte_kb, "KiB")};
}

Result<std::vector<LectureRow>> OverheadRows(const BenchConfig& config) {
  auto thread = PerThread();
  if (!thread) return std::unexpected(thread.error());
  auto process = PerProcess();
  if (!process) return std::unexpected(process.error());
  BenchConfig sandboxed = config;
  sandboxed.sandbox = true;
  auto renderer = RendererMemory(sandboxed);
  if (!renderer) return std::unexpected(renderer.error());
  std::vector<LectureRow> rows;
  rows.push_back({"overhead", "memory per thread", MemoryCells(*thread),
                  "A thread adds only its stack's touched pages and their page tables to the "
                  "process it lives in."});
  rows.push_back({"overhead", "memory per process", MemoryCells(*process),
                  "A forked process maps all of its parent's pages: RSS counts them whole (" +
                      Num(process->rss_kb) + " KiB), PSS splits each shared page among its " +
                      "sharers (" + Num(process->pss_kb) + " KiB), and it has page tables of " +
                      "its own."});
  std::vector<LectureCell> cells = {Cell("RSS", static_cast<double>(renderer->rss_kb), "KiB")};
  if (renderer->pss_kb) cells.push_back(Cell("PSS", static_cast<double>(*renderer->pss_kb), "KiB"));
  if (renderer->page_tables_kb) {
    cells.push_back(Cell("page tables", static_cast<double>(*renderer->page_tables_kb), "KiB"));
  }
  rows.push_back({"overhead", "sandboxed renderer", std::move(cells),
                  "A renderer is a whole program with its own frame buffer (" +
                      renderer->confinement +
                      "): the price of keeping a page's code in a process of its own."});
  return rows;
}

// ---- context switching and the IPC ping-pongs ----

// Echoes n-byte messages from in to out until EOF. Runs after fork or in a thread: no
// allocation.
void Echo(int in, int out, size_t n) {
  char buf[kSmall];
  while (RawReadExact(in, buf, n) && RawWriteExact(out, buf, n)) {
  }
}

// Reads kBig bytes into `buf` and answers one byte, until EOF.
void Sink(int in, int out, char* buf) {
  while (RawReadExact(in, buf, kBig)) {
    char ack = 1;
    if (!RawWriteExact(out, &ack, 1)) return;
  }
}

// Two directions of a byte stream. For a pipe pair the ends are four fds; for a socket the
// same fd serves both directions of one end.
struct Stream {
  UniqueFd a_in, a_out, b_in, b_out;  // a: the measuring side, b: the echoing side
  int a_read() const { return a_in.get(); }
  int a_write() const { return a_out ? a_out.get() : a_in.get(); }
  int b_read() const { return b_in.get(); }
  int b_write() const { return b_out ? b_out.get() : b_in.get(); }
};

Result<Stream> PipeStream() {
  auto there = MakePipe(false);
  if (!there) return std::unexpected(there.error());
  auto back = MakePipe(false);
  if (!back) return std::unexpected(back.error());
  return Stream{std::move(back->read), std::move(there->write), std::move(there->read),
                std::move(back->write)};
}

Result<Stream> UnixStream() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return SysError("socketpair");
  return Stream{UniqueFd(sv[0]), UniqueFd(), UniqueFd(sv[1]), UniqueFd()};
}

Result<Stream> TcpStream() {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return SysError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return SysError("bind/listen on 127.0.0.1");
  }
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client) return SysError("socket");
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return SysError("connect 127.0.0.1");
  }
  UniqueFd server(
      HandleEintr([&] { return ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC); }));
  if (!server) return SysError("accept");
  int one = 1;
  // Small messages go out at once, as a request/reply protocol wants them.
  if (::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
      ::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    return SysError("setsockopt(TCP_NODELAY)");
  }
  return Stream{std::move(client), UniqueFd(), std::move(server), UniqueFd()};
}

Result<int64_t> RoundTrip(const Stream& s, const char* msg, char* reply, size_t n) {
  int64_t t0 = MonotonicNs();
  if (!RawWriteExact(s.a_write(), msg, n)) return SysError("write");
  if (!RawReadExact(s.a_read(), reply, n)) return SysError("read");
  return MonotonicNs() - t0;
}

// Half a round trip of n bytes to a forked echo.
Result<double> StreamLatencyUs(const BenchConfig& config, Result<Stream> (*make)(), size_t n) {
  auto s = make();
  if (!s) return std::unexpected(s.error());
  auto child = Fork([&] {
    s->a_in.reset();
    s->a_out.reset();
    Echo(s->b_read(), s->b_write(), n);
  });
  if (!child) return std::unexpected(child.error());
  s->b_in.reset();
  s->b_out.reset();
  char msg[kSmall] = {}, reply[kSmall];
  auto rtt = MedianUs(config, 5000, 500, [&] { return RoundTrip(*s, msg, reply, n); });
  s->a_in.reset();  // EOF for the echo
  s->a_out.reset();
  if (!rtt) return std::unexpected(rtt.error());
  if (auto r = ExpectExitCode(*child, 0, "echo"); !r) return std::unexpected(r.error());
  return *rtt / 2;
}

// MiB/s for kBig bytes to a forked reader that acknowledges each.
Result<double> StreamThroughput(const BenchConfig& config, Result<Stream> (*make)()) {
  auto s = make();
  if (!s) return std::unexpected(s.error());
  std::vector<char> data(kBig, 'x');
  std::vector<char> sink(kBig);  // the child's receive buffer, allocated before fork
  auto child = Fork([&] {
    s->a_in.reset();
    s->a_out.reset();
    Sink(s->b_read(), s->b_write(), sink.data());
  });
  if (!child) return std::unexpected(child.error());
  s->b_in.reset();
  s->b_out.reset();
  auto us = MedianUs(config, 200, 20, [&]() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    char ack;
    if (!RawWriteExact(s->a_write(), data.data(), kBig)) return SysError("write");
    if (!RawReadExact(s->a_read(), &ack, 1)) return SysError("read");
    return MonotonicNs() - t0;
  });
  s->a_in.reset();
  s->a_out.reset();
  if (!us) return std::unexpected(us.error());
  if (auto r = ExpectExitCode(*child, 0, "reader"); !r) return std::unexpected(r.error());
  return kBig / kMiB / (*us / 1e6);
}

Result<LectureRow> ContextSwitchRow(const BenchConfig& config) {
  auto pin = ScopedCpuPin::PinHere();
  if (!pin) return std::unexpected(pin.error());
  auto s = PipeStream();
  if (!s) return std::unexpected(s.error());
  const int in = s->b_read(), out = s->b_write();
  auto echo = Thread::Start([in, out] { Echo(in, out, 1); });
  if (!echo) return std::unexpected(echo.error());
  char msg[1] = {1}, reply[1];
  auto thread_rtt = MedianUs(config, 5000, 500, [&] { return RoundTrip(*s, msg, reply, 1); });
  s->a_out.reset();  // EOF for the echo thread
  echo->Join();
  if (!thread_rtt) return std::unexpected(thread_rtt.error());
  auto process = StreamLatencyUs(config, &PipeStream, 1);
  if (!process) return std::unexpected(process.error());
  double t = *thread_rtt / 2, p = *process;
  return LectureRow{"context switching",
                    "switch on one CPU",
                    {Cell("thread to thread", t, "us"), Cell("process to process", p, "us")},
                    "A 1-byte pipe ping-pong, per switch: between threads the CPU keeps its "
                    "address space, between processes it changes it; here the process switch "
                    "costs " +
                        Num(p / t) + "x the thread switch."};
}

// ---- signals, shared memory, queues ----

Result<double> SignalLatencyUs(const BenchConfig& config) {
  sigset_t usr1, saved;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  // Blocked before fork, so the child inherits it and both wait synchronously.
  if (int err = ::pthread_sigmask(SIG_BLOCK, &usr1, &saved); err != 0) {
    errno = err;
    return SysError("pthread_sigmask");
  }
  const pid_t parent = ::getpid();
  auto child = Fork([&] {
    siginfo_t si;
    while (::sigwaitinfo(&usr1, &si) == SIGUSR1 && si.si_value.sival_int != 0) {
      if (::kill(parent, SIGUSR1) != 0) return;
    }
  });
  Result<double> rtt = MakeError(Errc::kState, "no child");
  if (child) {
    rtt = MedianUs(config, 5000, 500, [&]() -> Result<int64_t> {
      int64_t t0 = MonotonicNs();
      if (::sigqueue(child->pid(), SIGUSR1, sigval{1}) != 0) return SysError("sigqueue");
      siginfo_t si;
      if (HandleEintr([&] { return ::sigwaitinfo(&usr1, &si); }) != SIGUSR1) {
        return SysError("sigwaitinfo");
      }
      return MonotonicNs() - t0;
    });
    (void)::sigqueue(child->pid(), SIGUSR1, sigval{0});  // stop
  }
  (void)::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (!child) return std::unexpected(child.error());
  if (!rtt) return std::unexpected(rtt.error());
  if (auto r = ExpectExitCode(*child, 0, "signal echo"); !r) return std::unexpected(r.error());
  return *rtt / 2;
}

// A shared anonymous mapping both processes see after fork: a futex word to take turns (odd:
// the child's turn, even: the parent's, kStop: the child leaves) and the message bytes.
struct SharedRegion {
  uint32_t turn;
  char data[kBig];
};
constexpr uint32_t kStop = UINT32_MAX;

void WaitWhile(uint32_t* word, uint32_t value) {
  while (std::atomic_ref<uint32_t>(*word).load() == value) {
    (void)::syscall(SYS_futex, word, FUTEX_WAIT, value, nullptr, nullptr, 0);
  }
}

void Pass(uint32_t* word, uint32_t value) {
  std::atomic_ref<uint32_t>(*word).store(value);
  (void)::syscall(SYS_futex, word, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// n bytes copied in by the parent and out by the child, then a turn back: half of it for
// latency, all of it for throughput.
Result<double> SharedMemoryUs(const BenchConfig& config, size_t n, int full, int quick) {
  auto mapping = Region::Map(sizeof(SharedRegion), MAP_SHARED);
  if (!mapping) return std::unexpected(mapping.error());
  // Fresh anonymous memory is zero: turn 0, the parent's.
  auto* region = reinterpret_cast<SharedRegion*>(mapping->data());
  std::vector<char> local(kBig, 'x');
  auto child = Fork([&] {
    for (uint32_t seen = 0;;) {
      WaitWhile(&region->turn, seen);
      uint32_t t = std::atomic_ref<uint32_t>(region->turn).load();
      if (t == kStop) return;
      std::memcpy(local.data(), region->data, n);
      ClobberMemory(local.data());
      seen = t + 1;
      Pass(&region->turn, seen);
    }
  });
  if (!child) return std::unexpected(child.error());
  uint32_t turn = 0;
  auto us = MedianUs(config, full, quick, [&]() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    std::memcpy(region->data, local.data(), n);
    Pass(&region->turn, ++turn);
    WaitWhile(&region->turn, turn);
    ++turn;
    return MonotonicNs() - t0;
  });
  Pass(&region->turn, kStop);
  if (!us) return std::unexpected(us.error());
  if (auto r = ExpectExitCode(*child, 0, "shared memory reader"); !r) {
    return std::unexpected(r.error());
  }
  return *us;
}

// The largest message a queue takes without raising /proc/sys/fs/mqueue/msgsize_max.
constexpr long kQueueChunk = 8192;

// n bytes in kQueueChunk messages to a forked receiver, which answers a 1-byte message once
// it has them all; a 0-byte message stops it.
Result<double> QueueUs(const BenchConfig& config, size_t n, int full, int quick) {
  auto there = OpenUnlinkedQueue(8, kQueueChunk);
  if (!there) return std::unexpected(there.error());
  auto back = OpenUnlinkedQueue(8, kQueueChunk);
  if (!back) return std::unexpected(back.error());
  std::vector<char> buf(kQueueChunk, 'x');
  const int to = there->get(), from = back->get();
  auto child = Fork([&] {
    for (size_t got = 0;;) {
      ssize_t r = ::mq_receive(to, buf.data(), buf.size(), nullptr);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return;
      got += static_cast<size_t>(r);
      if (got < n) continue;
      got = 0;
      if (::mq_send(from, buf.data(), n == kSmall ? kSmall : 1, 0) != 0) return;
    }
  });
  if (!child) return std::unexpected(child.error());
  std::vector<char> reply(kQueueChunk);
  auto us = MedianUs(config, full, quick, [&]() -> Result<int64_t> {
    int64_t t0 = MonotonicNs();
    for (size_t sent = 0; sent < n; sent += std::min<size_t>(n - sent, kQueueChunk)) {
      size_t len = std::min<size_t>(n - sent, kQueueChunk);
      if (HandleEintr([&] { return ::mq_send(to, buf.data(), len, 0); }) != 0) {
        return SysError("mq_send");
      }
    }
    if (HandleEintr([&] { return ::mq_receive(from, reply.data(), reply.size(), nullptr); }) < 0) {
      return SysError("mq_receive");
    }
    return MonotonicNs() - t0;
  });
  (void)::mq_send(to, buf.data(), 0, 0);  // stop
  if (!us) return std::unexpected(us.error());
  if (auto r = ExpectExitCode(*child, 0, "queue reader"); !r) return std::unexpected(r.error());
  return *us;
}

LectureRow IpcRow(std::string name, double latency_us, std::optional<double> mib_s,
                  std::string says) {
  // A signal carries no bytes, only its number and one int: its latency is for that.
  std::vector<LectureCell> cells = {
      Cell(mib_s ? "64 B, one way" : "one int, one way", latency_us, "us")};
  cells.push_back(mib_s ? Cell("1 MiB", *mib_s, "MiB/s")
                        : Fact("1 MiB", "cannot carry it (a signal holds one int)"));
  return {"ipc", std::move(name), std::move(cells), std::move(says)};
}

Result<std::vector<LectureRow>> IpcRows(const BenchConfig& config) {
  auto pin = ScopedCpuPin::PinHere();
  if (!pin) return std::unexpected(pin.error());
  std::vector<LectureRow> rows;
  struct StreamKind {
    const char* name;
    Result<Stream> (*make)();
    const char* says;
  };
  const StreamKind kinds[] = {
      {"pipe", &PipeStream,
       "pipe(): one-way bytes through the kernel, copied in and out; "
       "sbx's control channel to each renderer."},
      {"Unix socket", &UnixStream,
       "socketpair(AF_UNIX): a pipe in both directions that can "
       "also pass fds and credentials; sbx's control socket."},
      {"TCP loopback", &TcpStream,
       "TCP on 127.0.0.1: the same bytes through the whole "
       "network stack; what telnet to the broker uses."},
  };
  for (const auto& k : kinds) {
    auto lat = StreamLatencyUs(config, k.make, kSmall);
    if (!lat) return std::unexpected(lat.error());
    auto tput = StreamThroughput(config, k.make);
    if (!tput) return std::unexpected(tput.error());
    rows.push_back(IpcRow(k.name, *lat, *tput, k.says));
  }
  auto sig = SignalLatencyUs(config);
  if (!sig) return std::unexpected(sig.error());
  rows.push_back(IpcRow("signal", *sig, std::nullopt,
                        "kill()/sigqueue(): a notification with at most one int attached, no "
                        "stream; sbx uses signals only to stop, continue or kill."));
  for (auto [name, measure, says] : {
           std::tuple{"shared memory", &SharedMemoryUs,
                      "mmap(MAP_SHARED) and a futex to take turns: no kernel copy, the reader "
                      "sees the writer's bytes in place; sbx's frame buffers."},
           std::tuple{"POSIX queue", &QueueUs,
                      "mq_send/mq_receive: whole messages with a priority, at most 8 KiB each by "
                      "default (1 MiB goes as 128); sbx's heartbeats."},
       }) {
    auto small = measure(config, kSmall, 5000, 500);
    if (!small) return std::unexpected(small.error());
    auto big = measure(config, kBig, 100, 10);
    if (!big) return std::unexpected(big.error());
    rows.push_back(IpcRow(name, *small / 2, kBig / kMiB / (*big / 1e6), says));
  }
  return rows;
}

// ---- virtual memory ----

volatile int g_shared_word = 0;

Result<LectureRow> ThreadWriteRow() {
  g_shared_word = 0;
  auto t = Thread::Start([] { g_shared_word = 42; });
  if (!t) return std::unexpected(t.error());
  t->Join();
  bool seen = g_shared_word == 42;
  return LectureRow{"virtual memory",
                    "a thread's write",
                    {Fact("seen by the other thread", seen ? "seen" : "not seen")},
                    "Threads share one address space: a variable one thread writes is the "
                    "same memory the other reads."};
}

Result<LectureRow> ChildWriteRow() {
  g_shared_word = 0;
  auto report = MakePipe(false);
  if (!report) return std::unexpected(report.error());
  const int out = report->write.get();
  auto child = Fork([out] {
    g_shared_word = 42;
    const volatile int* where = &g_shared_word;
    (void)RawWriteExact(out, &where, sizeof where);
  });
  if (!child) return std::unexpected(child.error());
  report->write.reset();
  const volatile int* child_address = nullptr;
  bool read = RawReadExact(report->read.get(), &child_address, sizeof child_address);
  if (auto r = ExpectExitCode(*child, 0, "writing child"); !r) return std::unexpected(r.error());
  if (!read) return MakeError(Errc::kProtocol, "the child reported no address");
  bool seen = g_shared_word == 42;
  bool same = child_address == &g_shared_word;
  return LectureRow{"virtual memory",
                    "a child's write",
                    {Fact("seen by the parent", seen ? "seen" : "not seen"),
                     Fact("at the same virtual address", same ? "yes" : "no")},
                    "After fork the child writes the variable at the very address the parent "
                    "reads, yet the parent never sees it: the write went to the child's own "
                    "copy of the page."};
}

// A private anonymous region, every page touched.
Result<Region> TouchedRegion(size_t bytes) {
  auto r = Region::Map(bytes, MAP_PRIVATE);
  if (!r) return std::unexpected(r.error());
  std::memset(r->data(), 1, bytes);
  return r;
}

Result<LectureRow> ForkGrowthRow(const BenchConfig& config) {
  std::vector<LectureCell> cells;
  double first = 0, last = 0;
  size_t last_mib = 0;
  for (size_t mib : {size_t{0}, size_t{64}, size_t{256}}) {
    std::optional<Region> region;
    if (mib > 0) {
      auto r = TouchedRegion(mib << 20);
      if (!r) return std::unexpected(r.error());
      region.emplace(std::move(*r));
    }
    auto us = ForkExitUs(config, 40, 8);
    if (!us) return std::unexpected(us.error());
    cells.push_back(Cell("parent +" + std::to_string(mib) + " MiB", *us, "us"));
    if (mib == 0) first = *us;
    last = *us;
    last_mib = mib;
  }
  double per_mib = (last - first) / static_cast<double>(last_mib);
  return LectureRow{"virtual memory", "fork as the parent grows", std::move(cells),
                    "fork copies page tables, not pages: each MiB the parent has touched adds "
                    "about " +
                        Num(per_mib) + " us to fork+exit+wait."};
}

constexpr size_t kCowBytes = size_t{64} << 20;

// ns per page for a first write to every page of `region`, in a child (each write faults and
// copies the page) and in the parent (its pages are already its own).
Result<LectureRow> CopyOnWriteRow(const BenchConfig& config) {
  auto region = TouchedRegion(kCowBytes);
  if (!region) return std::unexpected(region.error());
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t pages = kCowBytes / page;
  auto* bytes = static_cast<volatile char*>(region->data());
  auto write_all = [bytes, page] {
    int64_t t0 = MonotonicNs();
    for (size_t off = 0; off < kCowBytes; off += page) bytes[off] = 2;
    return MonotonicNs() - t0;
  };
  auto child_ns = MedianUs(config, 9, 3, [&]() -> Result<int64_t> {
    auto report = MakePipe(false);
    if (!report) return std::unexpected(report.error());
    const int out = report->write.get();
    auto child = Fork([&write_all, out] {
      int64_t ns = write_all();
      (void)RawWriteExact(out, &ns, sizeof ns);
    });
    if (!child) return std::unexpected(child.error());
    report->write.reset();
    int64_t ns = 0;
    bool read = RawReadExact(report->read.get(), &ns, sizeof ns);
    if (auto r = ExpectExitCode(*child, 0, "writing child"); !r) return std::unexpected(r.error());
    if (!read) return MakeError(Errc::kProtocol, "the child reported no time");
    return ns;
  });
  if (!child_ns) return std::unexpected(child_ns.error());
  auto parent_ns = MedianUs(config, 9, 3, [&]() -> Result<int64_t> { return write_all(); });
  if (!parent_ns) return std::unexpected(parent_ns.error());
  // MedianUs reports microseconds of the whole pass; per page in ns.
  double child_page = *child_ns * 1000.0 / static_cast<double>(pages);
  double parent_page = *parent_ns * 1000.0 / static_cast<double>(pages);
  return LectureRow{"virtual memory",
                    "copy-on-write",
                    {Cell("child's first write", child_page, "ns/page"),
                     Cell("parent's write", parent_page, "ns/page")},
                    "After fork both share every page read-only; the first write to one takes "
                    "a fault and a 4 KiB copy: " +
                        Num(child_page / parent_page) + "x a write to a page already one's own."};
}

std::string CellText(const LectureCell& c) {
  if (!c.value) return c.label + ": " + c.text;
  return c.label + " " + Num(*c.value) + " " + c.unit;
}

}  // namespace

void PrintLectureRow(const LectureRow& row, bool json) {
  if (json) {
    nlohmann::ordered_json j;
    j["section"] = row.section;
    j["name"] = row.name;
    j["cells"] = nlohmann::ordered_json::array();
    for (const auto& c : row.cells) {
      nlohmann::ordered_json cell;
      cell["label"] = c.label;
      if (c.value) {
        cell["value"] = std::round(*c.value * 1000.0) / 1000.0;
        cell["unit"] = c.unit;
      } else {
        cell["fact"] = c.text;
      }
      j["cells"].push_back(std::move(cell));
    }
    j["says"] = row.says;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::string cells;
    for (const auto& c : row.cells) cells += (cells.empty() ? "" : " | ") + CellText(c);
    std::printf("%-18s %-26s %s\n%45s%s\n", row.section.c_str(), row.name.c_str(), cells.c_str(),
                "", row.says.c_str());
  }
  std::fflush(stdout);
}

bool MeasureLecture(const BenchConfig& config, void (*print)(const LectureRow&, bool), bool json) {
  bool ok = true;
  auto many = [&](const char* what, Result<std::vector<LectureRow>> rows) {
    if (!rows) {
      std::fprintf(stderr, "sbx-bench: %s: %s\n", what, rows.error().ToString().c_str());
      ok = false;
      return;
    }
    for (const auto& r : *rows) print(r, json);
  };
  auto one = [&](const char* what, Result<LectureRow> row) {
    if (!row) return many(what, std::unexpected(row.error()));
    many(what, std::vector<LectureRow>{std::move(*row)});
  };
  one("creation", CreationRow(config));
  one("fork+exec", ExecRow(config));
  one("renderer spawn", RendererSpawnRow(config));
  many("overhead", OverheadRows(config));
  one("context switching", ContextSwitchRow(config));
  one("thread write", ThreadWriteRow());
  one("child write", ChildWriteRow());
  one("fork growth", ForkGrowthRow(config));
  one("copy-on-write", CopyOnWriteRow(config));
  many("ipc", IpcRows(config));
  return ok;
}

int RunLecture(const BenchConfig& config, bool json) {
  if (!json) {
    double load[1] = {-1};
    if (::getloadavg(load, 1) != 1) load[0] = -1;
    std::printf(
        "sbx-bench --lecture: threads against processes, and the lecture's IPC side by side, "
        "measured now (%s run, %ld cores, load average %.2f)\n\n",
        config.quick ? "quick" : "full", ::sysconf(_SC_NPROCESSORS_ONLN), load[0]);
  }
  return MeasureLecture(config, &PrintLectureRow, json) ? 0 : 1;
}

}  // namespace sbx::bench
