// A renderer that never calls any sandbox code, for the tests that prove the launcher's layers
// hold a program that does not confine itself (any --renderer-path program, or code that runs
// before the renderer's own sandbox call). It speaks no protocol: it prints one line and then
// acts as --page=bare://MODE says.
//   bare://hold    waits until its control pipe closes (the broker is done with it)
//   bare://escape  tries what a renderer with its own sandbox skipped would try first, prints
//                  each result, and ends with mount(2), which the launcher's filter kills
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string_view>

namespace {

void Say(const char* what, int rc) {
  std::printf("bare: %s: %s\n", what, rc < 0 ? std::strerror(errno) : "ALLOWED");
  std::fflush(stdout);
}

void Escape() {
  Say("open /proc/1/mem", ::open("/proc/1/mem", O_RDWR | O_CLOEXEC));
  Say("open /etc/passwd", ::open("/etc/passwd", O_RDONLY | O_CLOEXEC));
  // Every process this one may signal, the other renderers included if it could see them.
  Say("kill -1", ::kill(-1, SIGKILL));
  Say("socket", ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  std::printf("bare: mount next\n");
  std::fflush(stdout);
  Say("mount", ::mount("none", "/", "tmpfs", 0, nullptr));
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = "hold";
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.starts_with("--page=bare://")) mode = a.substr(14);
  }
  std::printf("bare: up as uid %d\n", static_cast<int>(::getuid()));
  std::fflush(stdout);
  if (mode == "escape") Escape();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(3, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR)) return 0;
  }
}
