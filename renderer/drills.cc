#include "renderer/drills.h"

#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "ipc/posix.h"
#include "sandbox/policy.h"

extern char** environ;

namespace sbx::renderer {

namespace {

// Recursion the optimiser cannot turn into a loop: each frame keeps a live, used buffer. The
// depth check never fires; it only stops the compiler from proving the recursion infinite.
int Recurse(volatile int* depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(*depth);
  *depth = *depth + 1;
  if (*depth < 0) return 0;
  return Recurse(depth) + pad[0];
}

class EscapeDrill {
 public:
  EscapeDrill(SandboxLevel level, const std::function<void(const std::string&)>& report)
      : level_(level), report_(report) {}

  // Makes `call` unless the policy would kill `syscall_name` with these arguments (then it only
  // says so), and reports what happened.
  template <typename F>
  void Attempt(const char* what, const char* syscall_name, std::array<uint64_t, 6> args, F&& call) {
    if (level_ != SandboxLevel::kOff &&
        sandbox::Judge(syscall_name, args, ::getpid()).outcome == sandbox::Outcome::kKill) {
      report_(std::string(what) + ": the policy kills (SIGSYS); tried last");
      return;
    }
    errno = 0;
    long r = call();
    if (r < 0) {
      report_(std::string(what) + ": denied (" + std::strerror(errno) + ")");
    } else {
      report_(std::string(what) + ": ALLOWED (not sandboxed)");
    }
  }

 private:
  SandboxLevel level_;
  const std::function<void(const std::string&)>& report_;
};

long OpenAndClose(const char* path, int flags) {
  long fd = ::open(path, flags | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(static_cast<int>(fd));
  return fd;
}

long SocketAndClose(int domain) {
  long fd = ::socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) ::close(static_cast<int>(fd));
  return fd;
}

// What leaves the process: files, sockets, processes, other programs.
void TryToLeave(EscapeDrill& d, int broker_pid) {
  d.Attempt("open(\"/etc/passwd\")", "openat", {},
            [] { return OpenAndClose("/etc/passwd", O_RDONLY); });
  d.Attempt("socket(AF_INET)", "socket", {}, [] { return SocketAndClose(AF_INET); });
  // Reaching the broker's control socket needs a socket first.
  d.Attempt("connect to the broker's control socket", "socket", {},
            [] { return SocketAndClose(AF_UNIX); });
  d.Attempt("fork()", "fork", {}, [] {
    pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    if (child > 0) ::waitpid(child, nullptr, 0);
    return static_cast<long>(child);
  });
  d.Attempt("execve(\"/bin/sh\")", "execve", {}, [] { return -1L; });
  d.Attempt("ptrace(PTRACE_ATTACH, broker)", "ptrace", {}, [] { return -1L; });
  const uint64_t broker = static_cast<uint64_t>(broker_pid);
  d.Attempt("kill(broker, 0)", "kill", {broker},
            [broker_pid] { return static_cast<long>(::kill(broker_pid, 0)); });
  d.Attempt("mq_open(new queue)", "mq_open", {}, [] {
    mqd_t q = ::mq_open("/sbx-escape", O_CREAT | O_RDWR | O_CLOEXEC, 0600, nullptr);
    if (q != static_cast<mqd_t>(-1)) {
      ::mq_close(q);
      ::mq_unlink("/sbx-escape");
    }
    return static_cast<long>(q);
  });
  d.Attempt("write a file in /tmp", "openat", {}, [] {
    long fd = OpenAndClose("/tmp/sbx-escape", O_CREAT | O_WRONLY);
    if (fd >= 0) ::unlink("/tmp/sbx-escape");
    return fd;
  });
}

// What an exploit does inside the process once it runs: map fresh code, copy a descriptor.
void TryToRunCode(EscapeDrill& d) {
  constexpr uint64_t kRwx = PROT_READ | PROT_WRITE | PROT_EXEC;
  d.Attempt("mmap(PROT_WRITE|PROT_EXEC)", "mmap", {0, 4096, kRwx}, [] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) return -1L;
    ::munmap(p, 4096);
    return 0L;
  });
  d.Attempt("fcntl(F_DUPFD_CLOEXEC)", "fcntl", {3, F_DUPFD_CLOEXEC}, [] {
    long fd = ::fcntl(protocol::kControlInFd, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return fd;
  });
}

}  // namespace

// Touches memory in 16 MiB steps with no cap of its own: the renderer's cgroup limit (256 MiB by
// default, below the 1 GiB address-space rlimit) has the kernel's OOM killer end it with
// SIGKILL. Without a cgroup the address-space limit stops it instead, and it exits kExitOom.
[[noreturn]] void ExhaustMemory() {
  constexpr size_t kChunk = 16u << 20;
  for (;;) {
    void* p = ::mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::_exit(protocol::kExitOom);
    std::memset(p, 0x5A, kChunk);
  }
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
    case protocol::CrashKind::kEscape:  // Escape's
      break;
    case protocol::CrashKind::kOomKill:
      ExhaustMemory();
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

void SendGarbage(int fd) {
  protocol::MessageHeader h{0x7777, 0, 4, 1};
  uint8_t bytes[sizeof h + 4] = {};
  std::memcpy(bytes, &h, sizeof h);
  (void)WriteAll(fd, bytes);
}

[[noreturn]] void Escape(SandboxLevel level, int broker_pid,
                         const std::function<void(const std::string&)>& report) {
  report("escape drill: sandbox " + std::string(LevelName(level)));
  EscapeDrill drill(level, report);
  TryToLeave(drill, broker_pid);
  TryToRunCode(drill);
  report("execve(\"/bin/sh\"): trying it now");
  char sh[] = "/bin/sh";
  char* const argv[] = {sh, nullptr};
  ::execve(sh, argv, environ);
  report(std::string("execve: denied (") + std::strerror(errno) + ")");
  ::_exit(0);
}

}  // namespace sbx::renderer
