// sbx-ctl: sends one control command to a running broker and prints its JSON reply.
// Exit status: 0 for a reply without "error", 1 for an error reply, 2 for no broker or bad use.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "broker/control_server.h"
#include "ipc/posix.h"

int main(int argc, char** argv) {
  // A broker that drops the connection (another uid, too many clients) is an error to print,
  // not a signal to die of.
  if (auto r = sbx::IgnoreSignal(SIGPIPE); !r) {
    std::fprintf(stderr, "sbx-ctl: %s\n", r.error().ToString().c_str());
    return 2;
  }
  std::string path;
  const char* env = std::getenv("SBX_CONTROL");
  if (env != nullptr) path = env;
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a == "--control" && i + 1 < argc) {
      path = argv[++i];
    } else if (a.starts_with("--control=")) {
      path = std::string(a.substr(10));
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: sbx-ctl [--control PATH] COMMAND [ARGS...]\n"
          "Sends COMMAND to a running sbx-broker or sbx window; `sbx-ctl help` lists commands.\n"
          "The socket is --control, else $SBX_CONTROL, else the broker's default path.\n");
      return 0;
    } else {
      break;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "sbx-ctl: no command (try: sbx-ctl help)\n");
    return 2;
  }
  std::string line;
  for (; i < argc; ++i) {
    if (!line.empty()) line += ' ';
    line += argv[i];
  }
  if (line.find('\n') != std::string::npos) {
    std::fprintf(stderr, "sbx-ctl: a command is one line\n");
    return 2;
  }
  line += '\n';
  if (path.empty()) {
    auto p = sbx::DefaultControlPath();
    if (!p) {
      std::fprintf(stderr, "sbx-ctl: %s\n", p.error().ToString().c_str());
      return 2;
    }
    path = *p;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "sbx-ctl: socket path too long\n");
    return 2;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  sbx::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "sbx-ctl: cannot reach a broker at %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return 2;
  }
  if (auto w =
          sbx::WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(line.data()), line.size()});
      !w) {
    std::fprintf(stderr, "sbx-ctl: %s\n", w.error().ToString().c_str());
    return 2;
  }
  std::string reply;
  char buf[4096];
  while (reply.find('\n') == std::string::npos) {
    auto ready = sbx::WaitReadable(fd.get(), 10'000);
    if (!ready || !*ready) {
      std::fprintf(stderr, "sbx-ctl: no reply within 10 s\n");
      return 2;
    }
    auto n = sbx::ReadSome(fd.get(), {reinterpret_cast<uint8_t*>(buf), sizeof buf});
    if (!n || *n == 0) {
      std::fprintf(stderr, "sbx-ctl: the broker closed the connection\n");
      return 2;
    }
    reply.append(buf, *n);
  }
  reply.resize(reply.find('\n'));
  std::printf("%s\n", reply.c_str());
  auto j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  return (j.is_object() && j.contains("error")) ? 1 : 0;
}
