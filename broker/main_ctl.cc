// sbx-ctl: sends one control command to a running broker and prints its reply: the broker's
// JSON line as sent when the output is not a terminal (or with --json), a table for `list` and
// indented JSON otherwise on a terminal. `help` needs no broker. `trace` goes on printing the
// lines the broker streams, one per message, until interrupted.
// Exit status: 0 for a reply without "error", 1 for an error reply, 2 for no broker or bad use.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "broker/control_server.h"
#include "broker/ctl_output.h"
#include "broker/event_json.h"
#include "ipc/posix.h"

namespace {

constexpr char kUsage[] =
    "usage: sbx-ctl [--json] [--control PATH] COMMAND [ARGS...]\n"
    "Sends COMMAND to a running sbx-broker or sbx window; `sbx-ctl help` lists commands.\n"
    "The socket is --control, else $SBX_CONTROL, else the broker's default path.\n"
    "--json prints the broker's JSON reply as sent, as when the output is not a terminal.\n";

struct Args {
  std::string control;  // empty: $SBX_CONTROL, else DefaultControlPath()
  bool json = false;
  std::string line;  // the command, its words joined by single spaces
};

// nullopt after printing usage (exit 0 for --help, 2 otherwise; `exit_code` says which).
std::optional<Args> ParseArgs(int argc, char** argv, int* exit_code) {
  Args a;
  if (const char* env = std::getenv("SBX_CONTROL"); env != nullptr) a.control = env;
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg == "--control" && i + 1 < argc) {
      a.control = argv[++i];
    } else if (arg.starts_with("--control=")) {
      a.control = std::string(arg.substr(10));
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      *exit_code = 0;
      return std::nullopt;
    } else {
      break;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "sbx-ctl: no command (try: sbx-ctl help)\n");
    *exit_code = 2;
    return std::nullopt;
  }
  for (; i < argc; ++i) {
    if (!a.line.empty()) a.line += ' ';
    a.line += argv[i];
  }
  if (a.line.find('\n') != std::string::npos) {
    std::fprintf(stderr, "sbx-ctl: a command is one line\n");
    *exit_code = 2;
    return std::nullopt;
  }
  return a;
}

// An open connection's unread bytes: what came after the first reply line (a trace's lines).
struct Connection {
  sbx::UniqueFd fd;
  std::string rest;
};

// One request, one reply line (without its newline); nullopt after printing why not. `keep`,
// if given, receives the connection to read more lines from.
std::optional<std::string> Ask(std::string path, const std::string& line,
                               Connection* keep = nullptr) {
  if (path.empty()) {
    auto p = sbx::DefaultControlPath();
    if (!p) {
      std::fprintf(stderr, "sbx-ctl: %s\n", p.error().ToString().c_str());
      return std::nullopt;
    }
    path = *p;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "sbx-ctl: socket path too long\n");
    return std::nullopt;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  sbx::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "sbx-ctl: cannot reach a broker at %s: %s (start one with sbx-broker)\n",
                 path.c_str(), std::strerror(errno));
    return std::nullopt;
  }
  std::string request = line + '\n';
  if (auto w = sbx::WriteAll(fd.get(),
                             {reinterpret_cast<const uint8_t*>(request.data()), request.size()});
      !w) {
    std::fprintf(stderr, "sbx-ctl: %s\n", w.error().ToString().c_str());
    return std::nullopt;
  }
  std::string reply;
  char buf[4096];
  while (reply.find('\n') == std::string::npos) {
    auto ready = sbx::WaitReadable(fd.get(), 10'000);
    if (!ready || !*ready) {
      std::fprintf(stderr, "sbx-ctl: no reply within 10 s\n");
      return std::nullopt;
    }
    auto n = sbx::ReadSome(fd.get(), {reinterpret_cast<uint8_t*>(buf), sizeof buf});
    if (!n || *n == 0) {
      std::fprintf(stderr, "sbx-ctl: the broker closed the connection\n");
      return std::nullopt;
    }
    reply.append(buf, *n);
  }
  size_t nl = reply.find('\n');
  if (keep != nullptr) *keep = {std::move(fd), reply.substr(nl + 1)};
  reply.resize(nl);
  return reply;
}

// `trace`: every line the broker streams after its first reply, until it hangs up or we are
// interrupted (SIGINT ends the process, which is all there is to clean up). Exit status 0.
int StreamTrace(Connection c, bool json_out) {
  std::string buf = std::move(c.rest);
  char chunk[4096];
  for (;;) {
    for (size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) {
      std::string line = buf.substr(0, nl);
      if (json_out) {
        std::printf("%s\n", line.c_str());
      } else {
        std::fputs(sbx::FormatTraceLine(nlohmann::json::parse(line, nullptr, false)).c_str(),
                   stdout);
      }
    }
    std::fflush(stdout);
    auto n = sbx::ReadSome(c.fd.get(), {reinterpret_cast<uint8_t*>(chunk), sizeof chunk});
    if (!n || *n == 0) {
      std::fprintf(stderr, "sbx-ctl: the broker closed the connection\n");
      return 0;
    }
    buf.append(chunk, *n);
  }
}

// On a terminal: a table for `list`, a tree for `inspect`, usage text for `help`, an error on
// stderr, anything else indented. `reply` did parse.
void PrintForPeople(std::string_view command, const nlohmann::json& reply) {
  if (reply.is_object() && reply.contains("error")) {
    const auto& e = reply["error"];
    std::string text = e.is_string() ? e.get<std::string>() : sbx::DumpJson(e);
    std::fprintf(stderr, "sbx-ctl: %s\n", text.c_str());
  } else if (command == "list" && reply.is_object() && reply.contains("renderers")) {
    std::fputs(sbx::FormatRendererTable(reply).c_str(), stdout);
  } else if (command == "inspect" && reply.is_object() && reply.contains("process")) {
    std::fputs(sbx::FormatProcessTree(reply).c_str(), stdout);
  } else if (command == "help" && reply.is_object() && reply.contains("commands")) {
    std::fputs(sbx::FormatHelp(reply).c_str(), stdout);
  } else {
    std::fputs(sbx::FormatReply(reply).c_str(), stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A broker that drops the connection (another uid, too many clients) is an error to print,
  // not a signal to die of.
  if (auto r = sbx::IgnoreSignal(SIGPIPE); !r) {
    std::fprintf(stderr, "sbx-ctl: %s\n", r.error().ToString().c_str());
    return 2;
  }
  int exit_code = 2;
  auto args = ParseArgs(argc, argv, &exit_code);
  if (!args) return exit_code;
  std::string_view command = std::string_view(args->line).substr(0, args->line.find(' '));
  std::string reply;
  if (args->line == "help") {
    // The same object a broker would send, so it works before any broker runs.
    reply = sbx::DumpJson(sbx::HelpJson());
  }
  Connection conn;
  if (args->line != "help") {
    auto r = Ask(args->control, args->line, &conn);
    if (!r) return 2;
    reply = std::move(*r);
  }
  auto j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  bool error = j.is_object() && j.contains("error");
  bool json_out = args->json || !::isatty(STDOUT_FILENO);
  if (json_out || j.is_discarded()) {
    std::printf("%s\n", reply.c_str());
  } else {
    PrintForPeople(command, j);
  }
  if (command == "trace" && !error) return StreamTrace(std::move(conn), json_out);
  return error ? 1 : 0;
}
