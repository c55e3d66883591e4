#include "broker/control_server.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "broker/event_json.h"
#include "ipc/codec.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"

namespace sbx {

using nlohmann::json;

namespace {

std::vector<std::string_view> SplitWords(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::optional<int> ParseId(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 1) return std::nullopt;
  return v;
}

json ErrorJson(std::string what) { return {{"error", std::move(what)}}; }

json ResultJson(const Result<void>& r) {
  if (!r) return ErrorJson(r.error().ToString());
  return {{"ok", true}};
}

// An echoed word is cut short: the reply must stay small whatever a client sends.
std::string Shown(std::string_view word) { return std::string(word.substr(0, 64)); }

// Every name SignalFromName accepts, as a user types it ("HUP INT ... SYS").
std::string SignalNames() {
  std::string names;
  for (int sig = 1; sig < 32; ++sig) {
    std::string_view name = SignalName(sig);
    if (name.size() <= 3 || std::isdigit(static_cast<unsigned char>(name[3]))) continue;
    if (!names.empty()) names += ' ';
    names += name.substr(3);
  }
  return names;
}

std::string UnknownSignal(std::string_view word) {
  return "unknown signal: " + Shown(word) + " (a number 1-" + std::to_string(NSIG - 1) +
         ", or a name with or without SIG: " + SignalNames() + ")";
}

// Why IsValidUrl refuses url, in words, with the pages a renderer can show.
std::string InvalidUrl(std::string_view url) {
  std::string why;
  if (url.empty()) {
    why = "empty";
  } else if (url.size() > protocol::kMaxUrl) {
    why = "longer than " + std::to_string(protocol::kMaxUrl) + " bytes";
  } else {
    for (size_t i = 0; i < url.size(); ++i) {
      auto c = static_cast<unsigned char>(url[i]);
      if (c <= ' ' || c > '~') {
        why =
            (c > '~' ? "a non-ASCII byte at offset " : "a space or control character at offset ") +
            std::to_string(i) + " (percent-encode it, as in sbx://text/hello%20world)";
        break;
      }
    }
  }
  return "invalid url: " + why +
         "; a url is printable ASCII, and the pages are sbx://plasma, sbx://clock, "
         "sbx://text/MESSAGE and about:blank";
}

std::string FpsOutOfRange(std::string_view word) {
  return "fps out of range: " + Shown(word) + " (" + std::to_string(protocol::kMinFps) + "-" +
         std::to_string(protocol::kMaxFps) + ")";
}

constexpr const char* kHelp[] = {
    "list",
    "spawn [URL]",
    "close ID",
    "kill ID [SIGNAL]   (default SIGTERM; names like KILL, SIGSEGV or numbers)",
    "crash ID segv|abort|stack-overflow|escape",
    "sandbox ID         (the renderer's sandbox, read from /proc, with a verdict)",
    "inspect [ID]       (the processes: threads, fds, namespaces, limits, read from /proc)",
    "hang ID",
    "oom ID",
    "bad-ipc ID",
    "navigate ID URL",
    "reload ID",
    "fps ID N",
    "visibility ID visible|hidden   (hidden: no frames, slow heartbeats, a smaller CPU share)",
    "ping ID",
    "stats",
    "trace [ID] [pipe|pipe-in|pipe-out|shm|mq|signal|pidfd]   (streams one line per message)",
    "help",
};

Result<void> CheckPrivateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return SysError("mkdir " + dir);
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return SysError("lstat " + dir);
  std::string problem;
  if (!S_ISDIR(st.st_mode)) {
    problem = "is not a directory";
  } else if (st.st_uid != ::geteuid()) {
    // Typically /tmp/sbx-UID made by another user first: only its owner (or root) can fix it.
    problem = "belongs to uid " + std::to_string(st.st_uid) + ", not to this user (uid " +
              std::to_string(::geteuid()) + ")";
  } else if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    problem = std::string("has mode ") + mode + ", open to others (want 0700)";
  }
  if (problem.empty()) return {};
  return MakeError(Errc::kInvalidArgument,
                   "the control socket's directory " + dir + " " + problem +
                       "; remove it, or put the socket elsewhere with --control PATH or by "
                       "setting XDG_RUNTIME_DIR to a private directory of yours");
}

Result<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return MakeError(Errc::kInvalidArgument, "control socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

json HelpJson() {
  json list = json::array();
  for (const char* h : kHelp) list.push_back(h);
  return {{"commands", list}};
}

Result<std::string> DefaultControlPath() {
  std::string dir;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] == '/') {
    dir = std::string(xdg) + "/sbx";
  } else {
    dir = "/tmp/sbx-" + std::to_string(::geteuid());
  }
  if (auto r = CheckPrivateDir(dir); !r) return std::unexpected(r.error());
  return dir + "/control";
}

namespace {

using Words = std::vector<std::string_view>;

// A command's one answer: a JSON value, serialised here, or (`list` and `inspect`, built on the
// broker's worker thread) a line serialised already.
class Reply {
 public:
  explicit Reply(std::function<void(std::string)> send) : send_(std::move(send)) {}
  void operator()(const json& j) const { send_(DumpJson(j)); }
  void Text(std::string line) const { send_(std::move(line)); }

 private:
  std::function<void(std::string)> send_;
};

// The renderer id in words[1], when the command has between min_words and max_words words.
std::optional<int> NeedId(const Words& words, size_t min_words, size_t max_words) {
  if (words.size() < min_words || words.size() > max_words) return std::nullopt;
  return ParseId(words[1]);
}

void Usage(const Reply& reply, std::string_view form) {
  reply(ErrorJson("usage: " + std::string(form)));
}

void ListCommand(Broker& broker, const Words& words, const Reply& reply) {
  if (words.size() != 1) return Usage(reply, "list");
  // At 500 renderers a tenth of a second of reads and JSON, which the loop does not wait for.
  broker.ListAll([reply](std::string text) { reply.Text(std::move(text)); });
}

void SpawnCommand(Broker& broker, const Words& words, const Reply& reply) {
  if (words.size() > 2) return Usage(reply, "spawn [URL]");
  if (words.size() == 2 && !IsValidUrl(words[1])) return reply(ErrorJson(InvalidUrl(words[1])));
  auto id = broker.Spawn(words.size() == 2 ? words[1] : std::string_view());
  if (!id) return reply(ErrorJson(id.error().ToString()));
  reply({{"ok", true}, {"id", *id}});
}

void KillCommand(Broker& broker, const Words& words, const Reply& reply) {
  auto id = NeedId(words, 2, 3);
  if (!id) return Usage(reply, "kill ID [SIGNAL]");
  int sig = SIGTERM;
  if (words.size() == 3) {
    sig = SignalFromName(std::string(words[2]));
    if (sig < 0) return reply(ErrorJson(UnknownSignal(words[2])));
  }
  reply(ResultJson(broker.Kill(*id, sig)));
}

void CrashCommand(Broker& broker, const Words& words, const Reply& reply) {
  auto id = NeedId(words, 3, 3);
  if (!id) return Usage(reply, "crash ID segv|abort|stack-overflow|escape");
  protocol::CrashKind kind;
  if (!protocol::CrashKindFromName(words[2], &kind)) {
    return reply(ErrorJson("unknown crash kind: " + std::string(words[2]) +
                           " (segv, abort, stack-overflow, escape)"));
  }
  reply(ResultJson(broker.Crash(*id, kind)));
}

// hang, oom, bad-ipc, reload, close: a renderer id and nothing else.
void OneIdCommand(Broker& broker, const Words& words, const Reply& reply) {
  std::string_view cmd = words[0];
  auto id = NeedId(words, 2, 2);
  if (!id) return Usage(reply, std::string(cmd) + " ID");
  if (cmd == "hang") return reply(ResultJson(broker.Hang(*id)));
  if (cmd == "oom") return reply(ResultJson(broker.Oom(*id)));
  if (cmd == "bad-ipc") return reply(ResultJson(broker.BadIpc(*id)));
  if (cmd == "close") return reply(ResultJson(broker.Close(*id)));
  reply(ResultJson(broker.Reload(*id)));
}

void SandboxCommand(Broker& broker, const Words& words, const Reply& reply) {
  auto id = NeedId(words, 2, 2);
  if (!id) return Usage(reply, "sandbox ID");
  auto report = broker.Sandbox(*id);
  if (!report) return reply(ErrorJson(report.error().ToString()));
  json j = SandboxReportToJson(*report);
  j["id"] = *id;
  reply(j);
}

// Without an id every process of the broker, as a tree; with one, that renderer's.
void InspectCommand(Broker& broker, const Words& words, const Reply& reply) {
  std::optional<int> id;
  if (words.size() == 2) id = ParseId(words[1]);
  if (words.size() > 2 || (words.size() == 2 && !id)) return Usage(reply, "inspect [ID]");
  // Every process: at 500 renderers a third of a second of reads, which the loop does not wait
  // for (the reply keeps its place among the client's replies, as a ping's does).
  if (!id) return broker.InspectAll([reply](std::string text) { reply.Text(std::move(text)); });
  auto tree = broker.Inspect(id);
  if (!tree) return reply(ErrorJson(tree.error().ToString()));
  reply({{"process", ProcessInfoToJson(*tree)}});
}

void NavigateCommand(Broker& broker, const Words& words, const Reply& reply) {
  auto id = NeedId(words, 3, 3);
  if (!id) return Usage(reply, "navigate ID URL");
  if (!IsValidUrl(words[2])) return reply(ErrorJson(InvalidUrl(words[2])));
  reply(ResultJson(broker.Navigate(*id, words[2])));
}

void FpsCommand(Broker& broker, const Words& words, const Reply& reply) {
  auto id = NeedId(words, 3, 3);
  if (!id) return Usage(reply, "fps ID N");  // before words[2]: the line may have fewer words
  uint32_t fps = 0;
  const char* end = words[2].data() + words[2].size();
  auto parsed = std::from_chars(words[2].data(), end, fps);
  bool digits = parsed.ptr == end &&
                (parsed.ec == std::errc() || parsed.ec == std::errc::result_out_of_range);
  if (!digits) return Usage(reply, "fps ID N");
  if (parsed.ec != std::errc() || fps < protocol::kMinFps || fps > protocol::kMaxFps) {
    return reply(ErrorJson(FpsOutOfRange(words[2])));
  }
  reply(ResultJson(broker.SetFps(*id, fps)));
}

void VisibilityCommand(Broker& broker, const Words& words, const Reply& reply) {
  auto id = NeedId(words, 3, 3);
  if (!id) return Usage(reply, "visibility ID visible|hidden");
  protocol::Visibility v;
  if (!protocol::VisibilityFromName(words[2], &v)) {
    return reply(ErrorJson("unknown visibility: " + Shown(words[2]) + " (visible, hidden)"));
  }
  reply(ResultJson(broker.SetVisibility(*id, v)));
}

void PingCommand(Broker& broker, const Words& words, const Reply& reply) {
  auto id = NeedId(words, 2, 2);
  if (!id) return Usage(reply, "ping ID");
  int rid = *id;
  // Shared so that the error path below and the callback do not both reply.
  auto replied = std::make_shared<bool>(false);
  auto r = broker.Ping(rid, [reply, replied, rid](Result<int64_t> rtt) {
    *replied = true;
    if (!rtt) return reply(ErrorJson(rtt.error().ToString()));
    reply({{"id", rid}, {"rtt_us", static_cast<double>(*rtt) / 1000.0}});
  });
  if (!r && !*replied) reply(ErrorJson(r.error().ToString()));
}

void HelpCommand(Broker&, const Words&, const Reply& reply) { reply(HelpJson()); }

void StatsCommand(Broker& broker, const Words& words, const Reply& reply) {
  if (words.size() != 1) return Usage(reply, "stats");
  BrokerStats stats = broker.Stats();
  json j = StatsToJson(stats);
  // Every live renderer's channels added up, and the control socket's own traffic.
  std::array<IpcCounterView, kMechanismCount> sum{};
  for (const auto& r : broker.List()) {
    if (!r.ipc) continue;
    for (size_t i = 0; i < kMechanismCount; ++i) {
      sum[i].messages += r.ipc->counters[i].messages;
      sum[i].bytes += r.ipc->counters[i].bytes;
      sum[i].messages_per_s += r.ipc->counters[i].messages_per_s;
      sum[i].bytes_per_s += r.ipc->counters[i].bytes_per_s;
    }
  }
  IpcSnapshot total;
  total.counters = sum;
  json ipc = IpcCountersToJson(total);
  ipc["control"] = {{"lines_in", stats.control_lines_in},
                    {"bytes_in", stats.control_bytes_in},
                    {"lines_out", stats.control_lines_out},
                    {"bytes_out", stats.control_bytes_out}};
  j["ipc"] = std::move(ipc);
  reply(j);
}

void TraceCommand(Broker& broker, const Words&, const Reply& reply) {
  (void)broker;
  reply(ErrorJson("trace streams its lines: run it on the control socket (sbx-ctl trace)"));
}

struct Command {
  std::string_view name;
  void (*run)(Broker&, const Words&, const Reply&);
};

// Every command the control socket knows; HelpJson() describes each of them.
constexpr Command kCommands[] = {
    {"help", HelpCommand},         {"list", ListCommand},       {"stats", StatsCommand},
    {"spawn", SpawnCommand},       {"close", OneIdCommand},     {"kill", KillCommand},
    {"crash", CrashCommand},       {"hang", OneIdCommand},      {"oom", OneIdCommand},
    {"bad-ipc", OneIdCommand},     {"reload", OneIdCommand},    {"sandbox", SandboxCommand},
    {"navigate", NavigateCommand}, {"fps", FpsCommand},         {"ping", PingCommand},
    {"trace", TraceCommand},       {"inspect", InspectCommand}, {"visibility", VisibilityCommand},
};

}  // namespace

Result<TraceFilter> ParseTrace(const Broker& broker, std::string_view line) {
  auto words = SplitWords(line);
  constexpr const char* kForm =
      "usage: trace [ID] [MECHANISM]   (MECHANISM: pipe, pipe-in, pipe-out, shm, mq, signal, "
      "pidfd)";
  TraceFilter f;
  size_t i = 1;
  if (i < words.size() && !words[i].empty() &&
      std::isdigit(static_cast<unsigned char>(words[i][0]))) {
    auto id = ParseId(words[i]);
    if (!id) return MakeError(Errc::kInvalidArgument, kForm);
    if (!broker.Get(*id)) return MakeError(Errc::kNotFound, "no renderer " + std::to_string(*id));
    f.id = *id;
    ++i;
  }
  if (i < words.size()) {
    if (!IsMechanismFilter(words[i])) {
      return MakeError(Errc::kInvalidArgument,
                       "unknown mechanism: " + Shown(words[i]) + "; " + kForm);
    }
    f.mechanism = std::string(words[i]);
    ++i;
  }
  if (i != words.size()) return MakeError(Errc::kInvalidArgument, kForm);
  return f;
}

void ExecuteCommand(Broker& broker, std::string_view line, std::function<void(std::string)> send) {
  const Reply reply(std::move(send));
  auto words = SplitWords(line);
  if (words.empty()) return reply(ErrorJson("empty command; try help"));
  for (const Command& c : kCommands) {
    if (c.name == words[0]) return c.run(broker, words, reply);
  }
  reply(ErrorJson("unknown command: " + Shown(words[0]) + "; try help"));
}

Result<std::unique_ptr<ControlServer>> ControlServer::Create(Broker& broker, std::string path) {
  auto addr = SocketAddress(path);
  if (!addr) return std::unexpected(addr.error());
  int raw = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (raw < 0) return SysError("socket");
  UniqueFd fd(raw);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0) {
    if (errno != EADDRINUSE) return SysError("bind " + path);
    // Either a live broker or a stale socket from one that was killed: ask it.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) return SysError("socket");
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) == 0) {
      return MakeError(Errc::kState, "another broker is listening on " + path);
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return MakeError(Errc::kState, path + " exists and is not a socket");
    }
    if (::unlink(path.c_str()) != 0) return SysError("unlink stale " + path);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0) {
      return SysError("bind " + path);
    }
  }
  if (::chmod(path.c_str(), 0600) != 0) return SysError("chmod " + path);
  if (::listen(fd.get(), 16) != 0) return SysError("listen");
  auto s = std::make_unique<ControlServer>(Key{}, broker, std::move(path), std::move(fd));
  auto w = broker.loop().Watch(s->listener_.get(), EPOLLIN,
                               [srv = s.get()](uint32_t) { srv->OnAccept(); });
  if (!w) return std::unexpected(w.error());
  s->listen_watch_ = *w;
  return s;
}

ControlServer::ControlServer(Key, Broker& broker, std::string path, UniqueFd listener)
    : broker_(broker), path_(std::move(path)), listener_(std::move(listener)) {}

ControlServer::~ControlServer() {
  *alive_ = false;
  if (tracers_ > 0) broker_.RemoveIpcObserver(this);
  broker_.loop().Unwatch(listen_watch_);
  for (auto& [id, c] : clients_) broker_.loop().Unwatch(c.watch);
  clients_.clear();
  ::unlink(path_.c_str());
}

void ControlServer::OnAccept() {
  for (;;) {
    int raw = HandleEintr(
        [&] { return ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK); });
    if (raw < 0) return;  // EAGAIN, or a transient error such as EMFILE: try on the next wakeup
    UniqueFd fd(raw);
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        cred.uid != ::geteuid()) {
      static constexpr char kDenied[] = "{\"error\":\"permission denied\"}\n";
      (void)::send(fd.get(), kDenied, sizeof kDenied - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      continue;
    }
    Adopt(std::move(fd), {});
  }
}

void ControlServer::Adopt(UniqueFd fd, std::string_view greeting) {
  // Full: the one idle longest goes, so idle connections can never lock everyone out.
  if (clients_.size() >= kMaxClients) EvictIdlest();
  uint64_t id = next_client_++;
  int cfd = fd.get();
  auto w = broker_.loop().Watch(cfd, EPOLLIN | EPOLLRDHUP,
                                [this, id](uint32_t ev) { OnClient(id, ev); });
  if (!w) return;
  Client c;
  c.fd = std::move(fd);
  c.watch = *w;
  c.last_active_ns = MonotonicNs();
  if (!greeting.empty()) c.out = std::string(greeting) + '\n';
  clients_.emplace(id, std::move(c));
  if (!greeting.empty()) FlushClient(id);
}

void ControlServer::EvictIdlest() {
  auto idlest = std::min_element(clients_.begin(), clients_.end(), [](auto& a, auto& b) {
    return a.second.last_active_ns < b.second.last_active_ns;
  });
  if (idlest == clients_.end()) return;
  static constexpr char kEvicted[] =
      "{\"error\":\"disconnected: too many control clients, and this one was idle longest\"}\n";
  (void)::send(idlest->second.fd.get(), kEvicted, sizeof kEvicted - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  Drop(idlest->first);
}

void ControlServer::OnClient(uint64_t id, uint32_t events) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  if (events & EPOLLOUT) FlushClient(id);
  it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  if (c.read_closed && (events & (EPOLLHUP | EPOLLERR))) return Drop(id);
  // Lines already received are served first; more is read only once they are, and once the
  // client has taken its replies so far. So its input stays bounded and a client that does not
  // read stops being heard instead of making the broker work for nobody.
  bool readable = (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0;
  if (readable && !c.read_closed && c.out.empty() && !HasWaitingLine(c)) {
    char buf[4096];
    ssize_t n = HandleEintr([&] { return ::recv(c.fd.get(), buf, sizeof buf, 0); });
    if (n < 0 && errno != EAGAIN) return Drop(id);
    if (n == 0) {
      // Half-closed (`echo ping 1 | socat ...`): answer what was asked, then hang up.
      c.read_closed = true;
    } else if (n > 0) {
      c.last_active_ns = MonotonicNs();
      c.in.append(buf, static_cast<size_t>(n));
    }
  }
  ServeLines(id);
  FlushClient(id);
}

bool ControlServer::HasWaitingLine(const Client& c) {
  return c.in.find('\n') != std::string::npos || c.in.size() > kMaxLine;
}

void ControlServer::ServeLines(uint64_t id) {
  for (size_t served = 0;;) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (c.discarding) {
      size_t nl = c.in.find('\n');
      c.in.erase(0, nl == std::string::npos ? nl : nl + 1);
      c.discarding = nl == std::string::npos;
    }
    if (!c.out.empty() || c.replies.size() >= kMaxPendingReplies || c.slow_pending > 0 ||
        served == kLinesPerWakeup || !HasWaitingLine(c)) {
      return;
    }
    ++served;
    size_t nl = c.in.find('\n');
    if (nl == std::string::npos || nl > kMaxLine) {
      // Refused as soon as it is too long, not when (if ever) its newline comes.
      c.discarding = nl == std::string::npos;
      c.in.erase(0, c.discarding ? nl : nl + 1);
      size_t serial = c.next_serial++;
      c.replies.emplace_back();
      Fill(id, serial, DumpJson(ErrorJson("line too long (max 4096 bytes)")));
      continue;
    }
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    HandleLine(id, line);
  }
}

void ControlServer::HandleLine(uint64_t id, std::string_view line) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  broker_.CountControl(true, line.size() + 1);
  size_t serial = it->second.next_serial++;
  it->second.replies.emplace_back();
  if (StartTrace(id, serial, line)) return;
  std::weak_ptr<bool> alive = alive_;
  // Known only once the command returns: whether its reply comes later (from the worker thread).
  auto deferred = std::make_shared<bool>(false);
  auto replied = std::make_shared<bool>(false);
  ExecuteCommand(broker_, line, [this, alive, id, serial, deferred, replied](std::string reply) {
    if (alive.expired() || !*alive.lock()) return;  // the server is gone
    *replied = true;
    if (*deferred) {
      auto c = clients_.find(id);
      if (c != clients_.end()) --c->second.slow_pending;
    }
    Fill(id, serial, std::move(reply));
  });
  // A `list` or `inspect` read on the worker holds the client's next lines until it is answered:
  // each would be another read (and its rows) held for a reply the client cannot have yet. Pings
  // wait for their renderers instead, which costs nothing, so they may queue up.
  if (*replied) return;  // most commands: answered already, no second look at the line
  auto words = SplitWords(line);
  if (!words.empty() && words[0] == "ping") return;
  it = clients_.find(id);
  if (it == clients_.end()) return;
  *deferred = true;
  ++it->second.slow_pending;
}

void ControlServer::Fill(uint64_t id, size_t serial, std::string reply) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;  // the client left before its reply was ready
  Client& c = it->second;
  if (serial < c.first_serial || serial - c.first_serial >= c.replies.size()) return;
  c.replies[serial - c.first_serial] = std::move(reply);
  c.last_active_ns = MonotonicNs();
  // One reply may be larger than the bound (`inspect` at 500 renderers is megabytes); what is
  // bounded is output the client left unread before it.
  const size_t unread_before = c.out.size();
  while (!c.replies.empty() && c.replies.front()) {
    broker_.CountControl(false, c.replies.front()->size() + 1);
    c.out += *c.replies.front();
    c.out += '\n';
    c.replies.pop_front();
    ++c.first_serial;
  }
  const size_t queued = c.out.size();
  FlushClient(id);
  it = clients_.find(id);
  if (it == clients_.end()) return;
  const size_t written = queued - it->second.out.size();
  if (unread_before > written && unread_before - written > kMaxPendingOutput) {
    return Drop(id);  // it does not read its replies
  }
}

void ControlServer::FlushClient(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  while (!c.out.empty()) {
    ssize_t n = HandleEintr([&] {
      return ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    });
    if (n < 0) {
      if (errno == EAGAIN) break;
      return Drop(id);
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  if (c.read_closed && !c.trace && c.out.empty() && c.replies.empty() && !HasWaitingLine(c)) {
    return Drop(id);
  }
  UpdateInterest(c);
}

void ControlServer::UpdateInterest(Client& c) {
  bool waiting = HasWaitingLine(c);
  bool servable =
      waiting && c.out.empty() && c.replies.size() < kMaxPendingReplies && c.slow_pending == 0;
  uint32_t want = 0;
  // EPOLLOUT for lines left over from a wakeup's budget too: the socket is writable, so the next
  // loop turn serves them, after every other ready fd had its turn.
  if (!c.out.empty() || servable) want |= EPOLLOUT;
  if (!c.read_closed && c.out.empty() && !waiting) want |= EPOLLIN | EPOLLRDHUP;
  (void)broker_.loop().Modify(c.watch, want);
}

void ControlServer::Drop(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  broker_.loop().Unwatch(it->second.watch);
  if (it->second.trace && --tracers_ == 0) broker_.RemoveIpcObserver(this);
  clients_.erase(it);
}

// True when `line` was a trace command, answered in `serial` (the trace starts on success).
bool ControlServer::StartTrace(uint64_t id, size_t serial, std::string_view line) {
  auto words = SplitWords(line);
  if (words.empty() || words[0] != "trace") return false;
  auto f = ParseTrace(broker_, line);
  if (!f) {
    Fill(id, serial, DumpJson(ErrorJson(f.error().what)));
    return true;
  }
  auto it = clients_.find(id);
  if (it == clients_.end()) return true;
  Client& c = it->second;
  if (!c.trace && tracers_++ == 0) broker_.AddIpcObserver(this);
  json what = {{"id", f->id == 0 ? json("all") : json(f->id)},
               {"mechanism", f->mechanism.empty() ? "all" : f->mechanism}};
  c.trace = std::move(*f);
  c.trace_dropped = 0;
  Fill(id, serial, DumpJson({{"ok", true}, {"trace", what}}));
  return true;
}

void ControlServer::OnIpc(int renderer, const IpcRecord& record) {
  std::string line;
  for (auto it = clients_.begin(); it != clients_.end();) {
    uint64_t id = it->first;
    Client& c = it->second;
    ++it;  // before FlushClient, which may drop this client
    if (!c.trace || (c.trace->id != 0 && c.trace->id != renderer) ||
        !MechanismMatches(c.trace->mechanism, record.mechanism)) {
      continue;
    }
    if (line.empty()) line = DumpJson(IpcRecordToJson(renderer, record, broker_.start_ns()));
    AppendTraceLine(c, line);
    FlushClient(id);
  }
}

void ControlServer::AppendTraceLine(Client& c, const std::string& line) {
  // Replies still pending (a ping) keep their place: the trace resumes once they are out.
  if (!c.replies.empty() || c.out.size() + line.size() + 64 > kMaxTraceBacklog) {
    ++c.trace_dropped;
    return;
  }
  if (c.trace_dropped > 0) {
    std::string note = DumpJson({{"dropped", c.trace_dropped}});
    broker_.CountControl(false, note.size() + 1);
    c.out += note;
    c.out += '\n';
    c.trace_dropped = 0;
  }
  broker_.CountControl(false, line.size() + 1);
  c.out += line;
  c.out += '\n';
}

}  // namespace sbx
