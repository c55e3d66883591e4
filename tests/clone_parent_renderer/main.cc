// A hostile renderer for the integration tests, started through --renderer-path. Before anything
// else (as code that runs before the real renderer's seccomp filter could) it makes two processes
// with CLONE_PARENT, which makes them children of the broker that the broker never started: one
// exits at once (a zombie nobody owns), one sleeps until it is killed (inside a sandbox, it keeps
// the renderer's pid namespace alive). Then it becomes the real sbx-renderer next to it, with the
// same arguments, so the broker sees a renderer that works.
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  (void)argc;
  char self[PATH_MAX] = {};
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 127;
  std::string renderer(self, static_cast<size_t>(n));
  renderer = renderer.substr(0, renderer.rfind('/') + 1) + "sbx-renderer";

  long quick = ::syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
  if (quick == 0) ::_exit(0);
  long sleeper = ::syscall(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
  if (sleeper == 0) {
    for (;;) ::pause();
  }
  if (quick < 0 || sleeper < 0) std::perror("clone(CLONE_PARENT)");
  argv[0] = renderer.data();
  ::execv(renderer.c_str(), argv);
  std::perror("execv sbx-renderer");
  return 127;
}
