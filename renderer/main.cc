// sbx-renderer: the sandboxed child. Started only by the broker, with the argv and fds of the
// launch contract (ipc/launch_args.h, docs/PROTOCOL.md). Checks them, confines itself and runs
// one Renderer (renderer.h); the drills it obeys are in drills.h.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <span>

#include "ipc/channel.h"
#include "ipc/frame_buffer.h"
#include "ipc/launch_args.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "renderer/proc_title.h"
#include "renderer/renderer.h"
#include "sandbox/confine.h"

namespace {

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "sbx-renderer: %s\n"
               "sbx-renderer is started by the broker (sbx-broker or sbx), never by hand: it\n"
               "needs --type=renderer --id=N --page=URL and its pipes, frame buffer and queue\n"
               "at fds 3-6 (see docs/PROTOCOL.md).\n",
               why.c_str());
  std::exit(sbx::protocol::kExitUsage);
}

[[noreturn]] void Fail(const char* what, const sbx::Error& e) {
  std::fprintf(stderr, "sbx-renderer: %s: %s\n", what, e.ToString().c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sbx;
  auto args = ParseLaunchArgs(std::span<const char* const>(argv + 1, argc > 0 ? argc - 1 : 0));
  if (!args) Usage(args.error().what);
  for (int fd : ExpectedFds(args->heartbeat)) {
    if (::fcntl(fd, F_GETFD) < 0) Usage("fd " + std::to_string(fd) + " is not open");
  }
  // A dead broker must read as EPIPE on our next write, not kill us with SIGPIPE.
  if (auto r = IgnoreSignal(SIGPIPE); !r) Fail("SIGPIPE", r.error());
  auto frames = FrameWriter::Attach(protocol::kFrameFd);
  if (!frames) Fail("frame buffer", frames.error());
  auto channel =
      Channel::Create(UniqueFd(protocol::kControlInFd), UniqueFd(protocol::kControlOutFd),
                      protocol::Direction::kToRenderer, 1 << 20);
  if (!channel) Fail("control pipes", channel.error());
  int queue_fd = args->heartbeat == Heartbeat::kQueue ? protocol::kHeartbeatFd : -1;
  SandboxLevel level = args->sandbox;
  std::string root = args->sandbox_root;
  // ps shows the page shown now (the constructor sets the first title).
  renderer::ProcTitle title = renderer::ProcTitle::Take(argc, argv);
  renderer::Renderer r(std::move(*args), std::move(*channel), std::move(*frames), queue_fd,
                       [&title](const LaunchArgs& now) { title.Set(ToArgv(now)); });
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
