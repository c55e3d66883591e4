// sbx-renderer: the sandboxed child. Started only by the broker, with the fds and argv that
// docs/PROTOCOL.md describes. It draws its page into the shared frame buffer, sends heartbeats,
// and obeys control messages, including the fault drills that break it on purpose.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <functional>
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
    case protocol::CrashKind::kStackOverflow:
    {
      volatile int depth = 0;
      std::printf("%d\n", Recurse(&depth));
    }
      break;
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

  int Run() {
    if (!WaitForHello()) return 1;
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
      int64_t wait_ns = std::min(next_frame_ns_, next_heartbeat_ns_) - MonotonicNs();
      int timeout_ms = wait_ns <= 0 ? 0 : static_cast<int>((wait_ns + kNsPerMs - 1) / kNsPerMs);
      // The out pipe joins the poll only while output waits: every fd polled costs a wait-queue
      // entry set up and torn down, on the path of every ping (control_rtt).
      pollfd fds[2] = {{channel_.in_fd(), POLLIN, 0}, {channel_.out_fd(), POLLOUT, 0}};
      nfds_t nfds = channel_.HasPendingOutput() ? 2 : 1;
      int r = HandleEintr([&] { return ::poll(fds, nfds, timeout_ms); });
      if (r < 0) return 1;
      if (fds[1].revents & (POLLOUT | POLLERR)) {
        if (!channel_.Flush()) return 1;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!HandleControl()) return 0;
      }
    }
  }

 private:
  bool WaitForHello() {
    int64_t deadline = MonotonicNs() + kHelloTimeoutMs * kNsPerMs;
    while (!hello_) {
      int64_t left = (deadline - MonotonicNs()) / kNsPerMs;
      if (left <= 0) {
        std::fprintf(stderr, "sbx-renderer %d: no hello from the broker\n", args_.id);
        return false;
      }
      auto readable = WaitReadable(channel_.in_fd(), static_cast<int>(left));
      if (!readable) return false;
      if (*readable && !HandleControl()) return false;
    }
    return true;
  }

  // Returns false when the broker is gone or asked us to stop.
  bool HandleControl() {
    std::vector<Message>& messages = inbox_;  // reused: no allocation per message batch
    messages.clear();
    auto open = channel_.Receive(messages);
    if (!open) {
      std::fprintf(stderr, "sbx-renderer %d: bad message from the broker: %s\n", args_.id,
                   open.error().ToString().c_str());
      return false;
    }
    for (const auto& m : messages) {
      if (!Handle(m)) return false;
    }
    return *open;
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
      case MsgType::kPing: {
        auto token = DecodeU64(m);
        if (!token) return false;
        PayloadWriter w;
        w.U64(*token);
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
    (void)channel_.Send(MsgType::kFrameReady, w.data());
  }

  bool SendHeartbeat(int64_t now) {
    protocol::Heartbeat hb{};
    hb.magic = protocol::kHeartbeatMagic;
    hb.frames = frame_;
    hb.mono_ns = MonotonicNs();
    hb.cpu_ns = static_cast<uint64_t>(CpuNs());
    hb.render_us = render_us_;
    hb.fps = fps_;
    (void)now;
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(&hb), sizeof hb);
    if (queue_fd_ >= 0) {
      auto r = QueueSend(queue_fd_, bytes);
      // Full: the broker is behind; the next heartbeat will do.
      return r || r.error().code == Errc::kOverflow;
    }
    auto r = channel_.Send(MsgType::kHeartbeat, bytes);
    return r || r.error().code == Errc::kOverflow;
  }

  Args args_;
  Channel channel_;
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
  ::signal(SIGPIPE, SIG_IGN);
  auto frames = FrameWriter::Attach(protocol::kFrameFd);
  if (!frames) {
    std::fprintf(stderr, "sbx-renderer: frame buffer: %s\n", frames.error().ToString().c_str());
    return 1;
  }
  auto channel = Channel::Create(UniqueFd(protocol::kControlInFd), UniqueFd(protocol::kControlOutFd),
                                 protocol::Direction::kToRenderer, 1 << 20);
  if (!channel) {
    std::fprintf(stderr, "sbx-renderer: control pipes: %s\n", channel.error().ToString().c_str());
    return 1;
  }
  int queue_fd = args->queue ? protocol::kHeartbeatFd : -1;
  sandbox::Level level = args->sandbox;
  std::string root = args->sandbox_root;
  renderer::Renderer r(std::move(*args), std::move(*channel), std::move(*frames), queue_fd);
  // Everything the renderer needs is loaded and allocated; from here on it is a prisoner.
  if (auto s = sandbox::EnterSandbox(level, ::getpid(), root); !s) {
    std::fprintf(stderr, "sbx-renderer: %s\n", s.error().ToString().c_str());
    ::_exit(protocol::kExitLaunchFailed);
  }
  // _exit, not return: exit-time work (a sanitizer's leak check, for one) would need syscalls
  // the policy denies.
  ::_exit(r.Run());
}
