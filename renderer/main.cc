// sbx-renderer: the sandboxed child. Started only by the broker, with the fds and argv that
// docs/PROTOCOL.md describes. It draws its page into the shared frame buffer, sends heartbeats,
// and obeys control messages, including the fault drills that break it on purpose.
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

#include "ipc/channel.h"
#include "ipc/codec.h"
#include "ipc/frame_buffer.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "renderer/pages.h"
#include "sandbox/confine.h"
#include "sandbox/policy.h"

namespace sbx::renderer {
namespace {

using protocol::MsgType;

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int kHelloTimeoutMs = 5000;

struct Args {
  int id = -1;
  std::string page;
  uint32_t fps = 30;
  bool queue = true;
  sandbox::Level sandbox = sandbox::Level::kFull;
  std::string sandbox_root;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "sbx-renderer: %s\n"
               "sbx-renderer is started by the broker (sbx-broker or sbx), never by hand: it\n"
               "needs --type=renderer --id=N --page=URL and its pipes, frame buffer and queue\n"
               "at fds 3-6 (see docs/PROTOCOL.md).\n",
               why);
  std::exit(protocol::kExitUsage);
}

std::optional<Args> ParseArgs(int argc, char** argv) {
  Args a;
  bool type_ok = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view s(argv[i]);
    auto value = [&](std::string_view key) -> std::optional<std::string_view> {
      if (!s.starts_with(key)) return std::nullopt;
      return s.substr(key.size());
    };
    if (auto v = value("--type=")) {
      type_ok = *v == "renderer";
    } else if (auto v = value("--id=")) {
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), a.id);
      if (ec != std::errc() || p != v->data() + v->size() || a.id < 0) return std::nullopt;
    } else if (auto v = value("--page=")) {
      a.page = std::string(*v);
    } else if (auto v = value("--fps=")) {
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), a.fps);
      if (ec != std::errc() || a.fps < protocol::kMinFps || a.fps > protocol::kMaxFps) {
        return std::nullopt;
      }
    } else if (auto v = value("--sandbox=")) {
      if (!sandbox::LevelFromName(*v, &a.sandbox)) return std::nullopt;
    } else if (auto v = value("--sandbox-root=")) {
      a.sandbox_root = std::string(*v);
    } else if (auto v = value("--heartbeat=")) {
      if (*v != "mq" && *v != "pipe") return std::nullopt;
      a.queue = *v == "mq";
    } else {
      return std::nullopt;
    }
  }
  if (!type_ok || a.id < 0 || !IsValidUrl(a.page)) return std::nullopt;
  return a;
}

bool FdOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

int64_t CpuNs() {
  timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Recursion the optimiser cannot turn into a loop: each frame keeps a live, used buffer. The
// depth check never fires; it only stops the compiler from proving the recursion infinite.
int Recurse(volatile int* depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(*depth);
  *depth = *depth + 1;
  if (*depth < 0) return 0;
  return Recurse(depth) + pad[0];
}

[[noreturn]] void Crash(protocol::CrashKind kind) {
  switch (kind) {
    case protocol::CrashKind::kSegv: {
      // A store to a page mapped with no access: a real SIGSEGV from the MMU, and, unlike a
      // null dereference, not undefined behaviour the compiler or UBSan may turn into something
      // else.
      void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (page == MAP_FAILED) std::abort();
      *static_cast<volatile int*>(page) = 42;
      break;
    }
    case protocol::CrashKind::kAbort:
      std::abort();
    case protocol::CrashKind::kEscape:  // handled by Renderer::Escape
      break;
    case protocol::CrashKind::kStackOverflow: {
      volatile int depth = 0;
      std::printf("%d\n", Recurse(&depth));
    } break;
  }
  std::abort();
}

[[noreturn]] void Hang() {
  // A busy loop, not a sleep: a hung renderer burns CPU, as a runaway script does.
  volatile uint64_t spin = 0;
  for (;;) spin = spin + 1;
}

[[noreturn]] void OutOfMemory(size_t vm_at_start) {
  // Cap the address space a little above what we use, so the drill ends quickly and cannot push
  // the machine into the kernel's OOM killer; keep a tighter limit if one is already set.
  rlimit lim;
  if (::getrlimit(RLIMIT_AS, &lim) == 0) {
    rlim_t cap = vm_at_start + (256u << 20);
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > cap) {
      lim.rlim_cur = cap;
      ::setrlimit(RLIMIT_AS, &lim);
    }
  }
  constexpr size_t kChunk = 16u << 20;
  for (;;) {
    void* p = ::mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::_exit(protocol::kExitOom);
    std::memset(p, 0xA5, kChunk);  // touch it, so it is real memory
  }
}

size_t VirtualSize() {
  // /proc/self/statm's first field is the address-space size in pages.
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  size_t pages = 0;
  std::from_chars(buf, buf + n, pages);
  return pages * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

class Renderer {
 public:
  Renderer(Args args, Channel channel, FrameWriter frames, int queue_fd)
      : args_(std::move(args)),
        channel_(std::move(channel)),
        frames_(std::move(frames)),
        queue_fd_(queue_fd),
        fps_(args_.fps),
        vm_at_start_(VirtualSize()) {
    Navigate(args_.page);
  }

  // Starts the IO thread, which from now on is the only reader of the control pipe. Called
  // from inside EnterSandbox, once the capabilities are gone (see start_threads there).
  Result<void> StartIoThread() {
    // The IO thread blocks in read(), as a bare pipe echo does: no poll on the way of a ping.
    // Only this process reads this pipe end, so the broker's end keeps its own flags.
    int flags = ::fcntl(channel_.in_fd(), F_GETFL);
    if (flags < 0 || ::fcntl(channel_.in_fd(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
      return SysError("fcntl(control pipe)");
    }
    // pthread, not std::thread: a failure to start must be an error value (launch-failed), not
    // an exception. Detached: it ends with the process, as _exit takes every thread.
    pthread_attr_t attr;
    if (int e = ::pthread_attr_init(&attr); e != 0) {
      errno = e;
      return SysError("pthread_attr_init");
    }
    (void)::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int e = ::pthread_create(
        &thread, &attr,
        [](void* self) -> void* {
          static_cast<Renderer*>(self)->IoMain();
          return nullptr;
        },
        this);
    (void)::pthread_attr_destroy(&attr);
    if (e != 0) {
      errno = e;
      return SysError("pthread_create");
    }
    return {};
  }

  int Run() {
    // Stopped after the hello (a shutdown in the same batch, say) ends as the main loop does: 0.
    if (!WaitForHello()) return hello_ ? 0 : 1;
    int64_t now = MonotonicNs();
    next_frame_ns_ = now;
    next_heartbeat_ns_ = now;
    for (;;) {
      now = MonotonicNs();
      if (now >= next_frame_ns_) {
        RenderFrame(now);
        next_frame_ns_ += 1'000'000'000 / fps_;
        if (next_frame_ns_ < now) next_frame_ns_ = now + 1'000'000'000 / fps_;  // fell behind
      }
      if (now >= next_heartbeat_ns_) {
        if (!SendHeartbeat(now)) return 1;
        next_heartbeat_ns_ = now + protocol::kHeartbeatIntervalMs * kNsPerMs;
      }
      if (!WaitAndHandle(std::min(next_frame_ns_, next_heartbeat_ns_))) return 0;
    }
  }

 private:
  // The IO thread (Chrome's renderer has one too): reads every control message, answers pings
  // itself once the main thread has taken the hello, and hands everything else to the main
  // thread, which owns the page, the frames and the drills.
  void IoMain() {
    std::vector<Message> batch;
    bool open = true;
    while (open) {
      batch.clear();
      // At most one read: the fd blocks now, and a second read after a full first one would
      // sit on messages already read until the broker writes again.
      auto r = channel_.Receive(batch, Channel::kReadChunk);
      if (!r) {
        std::fprintf(stderr, "sbx-renderer %d: bad message from the broker: %s\n", args_.id,
                     r.error().ToString().c_str());
        break;
      }
      open = *r;
      bool forwarded = false;
      bool hang = false;
      for (auto& m : batch) {
        // A pong says the IO thread is alive, not that earlier messages have taken effect; after
        // a hang drill, not even that.
        if (m.type == MsgType::kPing && !hang && answer_pings_.load(std::memory_order_acquire)) {
          if (auto token = DecodeU64(m)) {
            PayloadWriter w;
            w.U64(*token);
            std::lock_guard out(out_mu_);
            if (!channel_.Send(MsgType::kPong, w.data())) open = false;
            continue;
          }
          // A malformed ping goes to the main thread, which rejects it.
        }
        hang |= m.type == MsgType::kHang;
        std::lock_guard in(in_mu_);
        pending_.push_back(std::move(m));
        forwarded = true;
      }
      if (forwarded) in_cv_.notify_one();
      // A hung renderer stops reading its pipe too, so the broker sees a real hang.
      while (hang) {
        std::unique_lock in(in_mu_);
        in_cv_.wait(in);
      }
    }
    {
      std::lock_guard in(in_mu_);
      io_done_ = true;
    }
    in_cv_.notify_one();
  }

  // Waits until `deadline_ns` (CLOCK_MONOTONIC), or until the IO thread hands over messages,
  // and handles them. Returns false when the broker is gone or asked us to stop.
  bool WaitAndHandle(int64_t deadline_ns) {
    bool pending_output;
    {
      std::lock_guard out(out_mu_);
      pending_output = channel_.HasPendingOutput();
    }
    if (pending_output) {
      // The broker is not reading: wait for room in the pipe (rare; messages handed over
      // meanwhile wait until the next frame).
      int64_t wait_ns = deadline_ns - MonotonicNs();
      int timeout_ms = wait_ns <= 0 ? 0 : static_cast<int>((wait_ns + kNsPerMs - 1) / kNsPerMs);
      pollfd p{channel_.out_fd(), POLLOUT, 0};
      if (HandleEintr([&] { return ::poll(&p, 1, timeout_ms); }) < 0) return false;
      std::lock_guard out(out_mu_);
      if (!channel_.Flush()) return false;
    }
    std::vector<Message>& messages = inbox_;  // reused: no allocation per batch
    messages.clear();
    bool io_done;
    {
      std::unique_lock in(in_mu_);
      if (!pending_output) {
        // Steady clock is CLOCK_MONOTONIC, the clock of every deadline here.
        std::chrono::steady_clock::time_point until{std::chrono::nanoseconds(deadline_ns)};
        in_cv_.wait_until(in, until, [&] { return !pending_.empty() || io_done_; });
      }
      messages.swap(pending_);
      io_done = io_done_;
    }
    for (const auto& m : messages) {
      if (!Handle(m)) return false;
    }
    return !io_done;
  }

  bool WaitForHello() {
    int64_t deadline = MonotonicNs() + kHelloTimeoutMs * kNsPerMs;
    while (!hello_) {
      if (MonotonicNs() >= deadline) {
        std::fprintf(stderr, "sbx-renderer %d: no hello from the broker\n", args_.id);
        return false;
      }
      if (!WaitAndHandle(deadline)) return false;
    }
    // Confined (main calls Run after EnterSandbox) and introduced: pings may be answered now.
    answer_pings_.store(true, std::memory_order_release);
    return true;
  }

  bool Handle(const Message& m) {
    if (!hello_ && m.type != MsgType::kHello) return false;  // hello must come first
    switch (m.type) {
      case MsgType::kHello: {
        auto h = DecodeHello(m);
        if (!h) return false;
        hello_ = true;
        pid_ = static_cast<int>(h->pid);
        fps_ = h->fps;
        broker_pid_ = static_cast<int>(h->broker_pid);
        return true;
      }
      case MsgType::kNavigate: {
        auto url = DecodeNavigate(m);
        if (!url) return false;
        Navigate(*url);
        return true;
      }
      case MsgType::kSetFps: {
        auto fps = DecodeU32(m);
        if (!fps || *fps < protocol::kMinFps || *fps > protocol::kMaxFps) return false;
        fps_ = *fps;
        return true;
      }
      case MsgType::kPing: {  // only before the IO thread answers them itself
        auto token = DecodeU64(m);
        if (!token) return false;
        PayloadWriter w;
        w.U64(*token);
        std::lock_guard out(out_mu_);
        return channel_.Send(MsgType::kPong, w.data()).has_value();
      }
      case MsgType::kShutdown:
        return false;
      case MsgType::kCrash: {
        auto kind = DecodeU32(m);
        if (!kind || *kind < 1 || *kind > 4) return false;
        if (*kind == static_cast<uint32_t>(protocol::CrashKind::kEscape)) Escape();
        Crash(static_cast<protocol::CrashKind>(*kind));
      }
      case MsgType::kHang:
        Hang();
      case MsgType::kOom:
        OutOfMemory(vm_at_start_);
      case MsgType::kBadIpc:
        SendGarbage();
        return true;
      default:
        return false;
    }
  }

  void Report(const std::string& line) {
    PayloadWriter w;
    w.Str(line.substr(0, protocol::kMaxDrillReport));
    std::lock_guard out(out_mu_);
    (void)channel_.Send(MsgType::kDrillReport, w.data());
    // The last attempt may kill us: make sure every report is out before it.
    while (channel_.HasPendingOutput()) {
      pollfd p{channel_.out_fd(), POLLOUT, 0};
      if (HandleEintr([&] { return ::poll(&p, 1, 1000); }) <= 0 || !channel_.Flush()) break;
    }
  }

  // Reports what a syscall attempt did: "denied (EPERM)", or "ALLOWED" when it got through.
  void Attempt(const char* what, const char* syscall_name, const std::function<long()>& call) {
    const sandbox::SyscallRule* rule = sandbox::FindRule(syscall_name);
    if (args_.sandbox != sandbox::Level::kOff && rule != nullptr &&
        rule->outcome == sandbox::Outcome::kKill) {
      Report(std::string(what) + ": the policy kills (SIGSYS); tried last");
      return;
    }
    errno = 0;
    long r = call();
    if (r < 0) {
      Report(std::string(what) + ": denied (" + std::strerror(errno) + ")");
    } else {
      Report(std::string(what) + ": ALLOWED (not sandboxed)");
    }
  }

  // The escape drill: what a compromised renderer would try, in turn. Each denied attempt is
  // reported; execve, which the policy answers with SIGSYS, is made last and for real.
  [[noreturn]] void Escape() {
    Report("escape drill: sandbox " + std::string(sandbox::LevelName(args_.sandbox)));
    Attempt("open(\"/etc/passwd\")", "openat", [] {
      long fd = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
      if (fd >= 0) ::close(static_cast<int>(fd));
      return fd;
    });
    Attempt("socket(AF_INET)", "socket", [] {
      long fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) ::close(static_cast<int>(fd));
      return fd;
    });
    Attempt("connect to the broker's control socket", "socket", [] {
      long fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) ::close(static_cast<int>(fd));  // reaching the socket needs one first
      return fd;
    });
    Attempt("fork()", "fork", [] {
      pid_t child = ::fork();
      if (child == 0) ::_exit(0);
      if (child > 0) ::waitpid(child, nullptr, 0);
      return static_cast<long>(child);
    });
    Attempt("execve(\"/bin/sh\")", "execve", [] { return -1L; });
    Attempt("ptrace(PTRACE_ATTACH, broker)", "ptrace", [] { return -1L; });
    int broker = broker_pid_;
    Attempt("kill(broker, 0)", "kill", [broker] { return static_cast<long>(::kill(broker, 0)); });
    Attempt("mq_open(new queue)", "mq_open", [] {
      mqd_t q = ::mq_open("/sbx-escape", O_CREAT | O_RDWR | O_CLOEXEC, 0600, nullptr);
      if (q != static_cast<mqd_t>(-1)) {
        ::mq_close(q);
        ::mq_unlink("/sbx-escape");
      }
      return static_cast<long>(q);
    });
    Attempt("write a file in /tmp", "openat", [] {
      long fd = ::open("/tmp/sbx-escape", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::close(static_cast<int>(fd));
        ::unlink("/tmp/sbx-escape");
      }
      return fd;
    });
    Report("execve(\"/bin/sh\"): trying it now");
    char sh[] = "/bin/sh";
    char* const argv[] = {sh, nullptr};
    ::execve(sh, argv, environ);
    Report(std::string("execve: denied (") + std::strerror(errno) + ")");
    ::_exit(0);
  }

  void SendGarbage() {
    // Written around the channel on purpose: a header with a type no renderer may send.
    protocol::MessageHeader h{0x7777, 0, 4, 1};
    uint8_t bytes[sizeof h + 4] = {};
    std::memcpy(bytes, &h, sizeof h);
    std::lock_guard out(out_mu_);
    (void)WriteAll(protocol::kControlOutFd, bytes);
  }

  void Navigate(const std::string& url) {
    auto page = MakePage(url);
    if (page) {
      page_ = std::move(*page);
      return;
    }
    // Like Chrome's error page: the renderer stays alive and says what went wrong.
    auto error_page = MakePage("sbx://text/Cannot%20load%20" + url.substr(0, 200));
    if (error_page) page_ = std::move(*error_page);
  }

  void RenderFrame(int64_t now) {
    const FrameGeometry& g = frames_.geometry();
    uint8_t* pixels = frames_.BeginFrame();
    Canvas canvas{pixels, g.width, g.height, static_cast<int>(g.stride())};
    timespec wall;
    ::clock_gettime(CLOCK_REALTIME, &wall);
    FrameInfo info{args_.id, pid_, frame_, now, static_cast<int64_t>(wall.tv_sec)};
    if (page_) page_->Render(canvas, info);
    int index = frames_.EndFrame(frame_);
    render_us_ = static_cast<uint32_t>((MonotonicNs() - now) / 1000);
    PayloadWriter w;
    w.U32(static_cast<uint32_t>(index)).U64(frame_);
    ++frame_;
    // A full queue means the broker is not reading; it will notice our silence, not us.
    std::lock_guard out(out_mu_);
    (void)channel_.Send(MsgType::kFrameReady, w.data());
  }

  bool SendHeartbeat(int64_t now) {
    protocol::Heartbeat hb{};
    hb.magic = protocol::kHeartbeatMagic;
    hb.frames = frame_;
    hb.cpu_ns = static_cast<uint64_t>(CpuNs());
    hb.render_us = render_us_;
    hb.fps = fps_;
    // Stamped last, right before the send: the broker measures the queue's latency from it, and
    // the CPU clock above is a system call of its own.
    hb.mono_ns = MonotonicNs();
    (void)now;
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(&hb), sizeof hb);
    if (queue_fd_ >= 0) {
      auto r = QueueSend(queue_fd_, bytes);
      // Full: the broker is behind; the next heartbeat will do.
      return r || r.error().code == Errc::kOverflow;
    }
    std::lock_guard out(out_mu_);
    auto r = channel_.Send(MsgType::kHeartbeat, bytes);
    return r || r.error().code == Errc::kOverflow;
  }

  Args args_;
  // Its input side belongs to the IO thread; its output side to whoever holds out_mu_.
  Channel channel_;
  std::mutex out_mu_;
  // Messages the IO thread hands to the main thread.
  std::mutex in_mu_;
  std::condition_variable in_cv_;
  std::vector<Message> pending_;  // guarded by in_mu_
  bool io_done_ = false;          // guarded by in_mu_: EOF or a bad message
  std::atomic<bool> answer_pings_{false};
  FrameWriter frames_;
  std::vector<Message> inbox_;
  int queue_fd_;
  uint32_t fps_;
  size_t vm_at_start_;
  bool hello_ = false;
  int pid_ = 0;
  int broker_pid_ = 0;
  uint64_t frame_ = 0;
  uint32_t render_us_ = 0;
  int64_t next_frame_ns_ = 0;
  int64_t next_heartbeat_ns_ = 0;
  std::unique_ptr<Page> page_;
};

}  // namespace
}  // namespace sbx::renderer

int main(int argc, char** argv) {
  using namespace sbx;
  auto args = renderer::ParseArgs(argc, argv);
  if (!args) renderer::Usage("missing or malformed arguments");
  for (int fd : {protocol::kControlInFd, protocol::kControlOutFd, protocol::kFrameFd}) {
    if (!renderer::FdOpen(fd)) renderer::Usage("expected descriptors are not open");
  }
  if (args->queue && !renderer::FdOpen(protocol::kHeartbeatFd)) {
    renderer::Usage("--heartbeat=mq but no queue at fd 6");
  }
  // A dead broker must read as EPIPE on our next write, not kill us with SIGPIPE.
  if (auto r = IgnoreSignal(SIGPIPE); !r) {
    std::fprintf(stderr, "sbx-renderer: %s\n", r.error().ToString().c_str());
    return 1;
  }
  auto frames = FrameWriter::Attach(protocol::kFrameFd);
  if (!frames) {
    std::fprintf(stderr, "sbx-renderer: frame buffer: %s\n", frames.error().ToString().c_str());
    return 1;
  }
  auto channel =
      Channel::Create(UniqueFd(protocol::kControlInFd), UniqueFd(protocol::kControlOutFd),
                      protocol::Direction::kToRenderer, 1 << 20);
  if (!channel) {
    std::fprintf(stderr, "sbx-renderer: control pipes: %s\n", channel.error().ToString().c_str());
    return 1;
  }
  int queue_fd = args->queue ? protocol::kHeartbeatFd : -1;
  sandbox::Level level = args->sandbox;
  std::string root = args->sandbox_root;
  renderer::Renderer r(std::move(*args), std::move(*channel), std::move(*frames), queue_fd);
  // One malloc arena for both threads: a second one would reserve 64 MiB of address space.
  ::mallopt(M_ARENA_MAX, 1);
  // Out of memory on either thread is the documented out-of-memory exit, not an exception that
  // would end in abort() and read as a crash.
  std::set_new_handler([] { ::_exit(protocol::kExitOom); });
  // Everything the renderer needs is loaded and allocated; from here on it is a prisoner.
  if (auto s = sandbox::EnterSandbox(level, ::getpid(), root, [&] { return r.StartIoThread(); });
      !s) {
    std::fprintf(stderr, "sbx-renderer: %s\n", s.error().ToString().c_str());
    ::_exit(protocol::kExitLaunchFailed);
  }
  // _exit, not return: exit-time work (a sanitizer's leak check, for one) would need syscalls
  // the policy denies.
  ::_exit(r.Run());
}
