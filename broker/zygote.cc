#include "broker/zygote.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

#include "ipc/posix.h"

namespace sbx {

using nlohmann::json;

namespace {

// Between two messages of one launch. Longer than the launcher's own bounds on a joiner (5 s for
// its pids, 5 s for its queue), so a slow launch is the launcher's error, reported, and not the
// zygote's silence.
constexpr int kAnswerTimeoutMs = 15'000;
constexpr int kReadyTimeoutMs = 5'000;
// ExecProgram's bound on the fd map, plus the three stdio fds.
constexpr size_t kMaxFdMap = 16;
constexpr size_t kMaxArgs = 256;
constexpr size_t kMaxFilter = BPF_MAXINSNS;

struct Message {
  std::vector<uint8_t> bytes;
  std::vector<UniqueFd> fds;
};

Result<void> SendMessage(int sock, std::span<const uint8_t> bytes, std::span<const int> fds) {
  if (bytes.size() > zygote::kMaxMessage || fds.size() > zygote::kMaxFds) {
    return MakeError(Errc::kOverflow, "zygote message too large");
  }
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * zygote::kMaxFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  // SOCK_SEQPACKET: all of it or nothing.
  if (HandleEintr([&] { return ::sendmsg(sock, &msg, MSG_NOSIGNAL); }) < 0) {
    return std::unexpected(Error{errno == EPIPE ? Errc::kPeerClosed : Errc::kSystem, errno,
                                 "send to the zygote's socket"});
  }
  return {};
}

// One message, waiting at most timeout_ms (-1: forever). kPeerClosed on EOF. The fds are owned
// before anything is checked, so a malformed message leaks none.
Result<Message> ReceiveMessage(int sock, int timeout_ms) {
  if (timeout_ms >= 0) {
    auto ready = WaitReadable(sock, timeout_ms);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return MakeError(Errc::kTimeout, "no answer on the zygote's socket");
  }
  Message m;
  m.bytes.resize(zygote::kMaxMessage);
  iovec iov{m.bytes.data(), m.bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * zygote::kMaxFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = HandleEintr([&] { return ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); });
  if (n < 0) return SysError("recvmsg on the zygote's socket");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      m.fds.emplace_back(fd);
    }
  }
  if (n == 0 && m.fds.empty()) return MakeError(Errc::kPeerClosed, "the zygote's socket closed");
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    return MakeError(Errc::kProtocol, "zygote message truncated");
  }
  m.bytes.resize(static_cast<size_t>(n));
  return m;
}

// nlohmann's CBOR reader, fed a hostile message, takes its process down two ways: it goes one
// call deeper per nesting level, so a message of nested arrays (256 KiB of 0x81 bytes)
// overflowed the stack; and its tree builder throws, whatever allow_exceptions says, on an array
// or map whose declared length passes what a vector can hold (found by fuzz_zygote_wire). No
// message here nests more than four levels, and no real count exceeds the largest message's bytes:
// a builder that refuses either stops the reader before it does harm.
constexpr int kMaxDepth = 8;

class BoundedDom : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  explicit BoundedDom(json& out) : json_sax_dom_parser(out, /*allow_exceptions_=*/false) {}
  bool start_object(std::size_t n) {
    return ++depth_ <= kMaxDepth && Fits(n) && json_sax_dom_parser::start_object(n);
  }
  bool start_array(std::size_t n) {
    return ++depth_ <= kMaxDepth && Fits(n) && json_sax_dom_parser::start_array(n);
  }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }

 private:
  // A declared element count (-1: an indefinite length, ended by a break byte).
  static bool Fits(std::size_t n) {
    return n == static_cast<std::size_t>(-1) || n <= zygote::kMaxMessage;
  }
  int depth_ = 0;
};

// The message decoded, or a discarded value when it is not one CBOR item or nests too deep.
json ParseCbor(std::span<const uint8_t> bytes) {
  json out;
  BoundedDom dom(out);
  if (!json::sax_parse(bytes.begin(), bytes.end(), &dom, json::input_format_t::cbor,
                       /*strict=*/true) ||
      dom.is_errored()) {
    return json(json::value_t::discarded);
  }
  return out;
}

// Checked reads of a decoded message: nlohmann's get<> would throw on a wrong type.
std::optional<int64_t> Int(const json& j, int64_t lo, int64_t hi) {
  int64_t v = 0;
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    v = static_cast<int64_t>(u);
  } else if (j.is_number_integer()) {
    v = j.get<int64_t>();
  } else {
    return std::nullopt;
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

const json* Field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::optional<std::vector<std::string>> Strings(const json* j, size_t min, size_t max) {
  if (j == nullptr || !j->is_array() || j->size() < min || j->size() > max) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : *j) {
    if (!e.is_string()) return std::nullopt;
    const auto& s = e.get_ref<const std::string&>();
    if (s.find('\0') != std::string::npos) return std::nullopt;  // exec would cut it short
    out.push_back(s);
  }
  return out;
}

std::unexpected<Error> Malformed(const char* what) {
  return MakeError(Errc::kInvalidArgument, std::string("malformed zygote request: ") + what);
}

}  // namespace

namespace zygote {

std::vector<uint8_t> EncodeRequest(const LaunchSpec& spec, std::vector<int>& fds) {
  std::map<int, int> index;  // one index per distinct fd: stdout and stderr share the log pipe
  auto ref = [&](int fd) -> int {
    if (fd < 0) return -1;
    auto [it, added] = index.emplace(fd, static_cast<int>(fds.size()));
    if (added) fds.push_back(fd);
    return it->second;
  };
  json j;
  j["argv"] = spec.argv;
  j["search_path"] = spec.search_path;
  j["fds"] = json::array();
  for (auto [from, to] : spec.fds) j["fds"].push_back({ref(from), to});
  j["stdio"] = {ref(spec.stdio[0]), ref(spec.stdio[1]), ref(spec.stdio[2])};
  j["namespaces"] = spec.namespaces.has_value();
  j["cgroup_procs"] = json::array();
  for (int fd : spec.cgroup_procs) j["cgroup_procs"].push_back(ref(fd));
  j["nice"] = spec.nice ? json(*spec.nice) : json(nullptr);
  if (spec.confine) {
    json c;
    c["exec"] = ref(spec.confine->exec_fd);
    c["limits"] = json::array();
    for (auto [resource, value] : spec.confine->limits) c["limits"].push_back({resource, value});
    std::vector<uint8_t> filter(spec.confine->filter.size() * sizeof(sock_filter));
    std::memcpy(filter.data(), spec.confine->filter.data(), filter.size());
    c["filter"] = json::binary(std::move(filter));
    j["confine"] = std::move(c);
  } else {
    j["confine"] = nullptr;
  }
  if (spec.queue) {
    j["queue"] = {{"target", spec.queue->target_fd},
                  {"max_msg", spec.queue->max_msg},
                  {"msg_size", spec.queue->msg_size},
                  {"fallback_argv", spec.queue->fallback_argv}};
  } else {
    j["queue"] = nullptr;
  }
  return json::to_cbor(j);
}

// Over 80 lines: one field of the spec after another, each checked before it is used, in the
// order EncodeRequest writes them; split up, the checks would no longer read against it.
Result<LaunchSpec> DecodeRequest(std::span<const uint8_t> bytes, std::span<const int> fds) {
  json j = ParseCbor(bytes);
  if (j.is_discarded() || !j.is_object()) return Malformed("not a CBOR map");
  auto fd_at = [&](const json* e) -> std::optional<int> {
    if (e == nullptr) return std::nullopt;
    auto i = Int(*e, -1, static_cast<int64_t>(fds.size()) - 1);
    if (!i) return std::nullopt;
    return *i < 0 ? -1 : fds[static_cast<size_t>(*i)];
  };
  LaunchSpec spec;
  auto argv = Strings(Field(j, "argv"), 1, kMaxArgs);
  if (!argv) return Malformed("argv");
  spec.argv = std::move(*argv);
  const json* search = Field(j, "search_path");
  if (search == nullptr || !search->is_boolean()) return Malformed("search_path");
  spec.search_path = search->get<bool>();

  const json* map = Field(j, "fds");
  if (map == nullptr || !map->is_array() || map->size() > kMaxFdMap) return Malformed("fds");
  for (const auto& e : *map) {
    if (!e.is_array() || e.size() != 2) return Malformed("fds");
    auto from = fd_at(&e[0]);
    auto to = Int(e[1], 0, 4095);
    if (!from || *from < 0 || !to) return Malformed("fds");
    spec.fds.emplace_back(*from, static_cast<int>(*to));
  }
  const json* stdio = Field(j, "stdio");
  if (stdio == nullptr || !stdio->is_array() || stdio->size() != 3) return Malformed("stdio");
  for (size_t i = 0; i < 3; ++i) {
    auto fd = fd_at(&(*stdio)[i]);
    if (!fd) return Malformed("stdio");
    spec.stdio[i] = *fd;
  }
  const json* ns = Field(j, "namespaces");
  if (ns == nullptr || !ns->is_boolean()) return Malformed("namespaces");
  if (ns->get<bool>()) spec.namespaces = NamespaceSpec{-1};
  const json* procs = Field(j, "cgroup_procs");
  if (procs == nullptr || !procs->is_array() || procs->size() > 4) return Malformed("cgroup_procs");
  for (const auto& e : *procs) {
    auto fd = fd_at(&e);
    if (!fd || *fd < 0) return Malformed("cgroup_procs");
    spec.cgroup_procs.push_back(*fd);
  }
  const json* nice = Field(j, "nice");
  if (nice == nullptr) return Malformed("nice");
  if (!nice->is_null()) {
    auto v = Int(*nice, -20, 19);
    if (!v) return Malformed("nice");
    spec.nice = static_cast<int>(*v);
  }

  const json* confine = Field(j, "confine");
  if (confine == nullptr || !(confine->is_null() || confine->is_object())) {
    return Malformed("confine");
  }
  if (confine->is_object()) {
    Confinement c;
    auto exe = fd_at(Field(*confine, "exec"));
    if (!exe || *exe < 0) return Malformed("confine.exec");
    c.exec_fd = *exe;
    c.root = "/";
    const json* limits = Field(*confine, "limits");
    if (limits == nullptr || !limits->is_array() || limits->size() > RLIM_NLIMITS) {
      return Malformed("confine.limits");
    }
    for (const auto& e : *limits) {
      if (!e.is_array() || e.size() != 2) return Malformed("confine.limits");
      auto resource = Int(e[0], 0, RLIM_NLIMITS - 1);
      if (!resource || !e[1].is_number_unsigned()) return Malformed("confine.limits");
      c.limits.emplace_back(static_cast<int>(*resource), e[1].get<uint64_t>());
    }
    const json* filter = Field(*confine, "filter");
    if (filter == nullptr || !filter->is_binary()) return Malformed("confine.filter");
    const auto& raw = filter->get_binary();
    if (raw.empty() || raw.size() % sizeof(sock_filter) != 0 ||
        raw.size() / sizeof(sock_filter) > kMaxFilter) {
      return Malformed("confine.filter");
    }
    c.filter.resize(raw.size() / sizeof(sock_filter));
    std::memcpy(c.filter.data(), raw.data(), raw.size());
    spec.confine = std::move(c);
  }

  const json* queue = Field(j, "queue");
  if (queue == nullptr || !(queue->is_null() || queue->is_object())) return Malformed("queue");
  if (queue->is_object()) {
    NamespaceQueue q;
    auto target = queue->contains("target") ? Int((*queue)["target"], 3, 4095) : std::nullopt;
    auto max_msg = queue->contains("max_msg") ? Int((*queue)["max_msg"], 1, 65536) : std::nullopt;
    auto msg_size =
        queue->contains("msg_size") ? Int((*queue)["msg_size"], 1, 1 << 20) : std::nullopt;
    auto fallback = Strings(Field(*queue, "fallback_argv"), 1, kMaxArgs);
    if (!target || !max_msg || !msg_size || !fallback) return Malformed("queue");
    q.target_fd = static_cast<int>(*target);
    q.max_msg = *max_msg;
    q.msg_size = *msg_size;
    q.fallback_argv = std::move(*fallback);
    spec.queue = std::move(q);
  }
  return spec;
}

std::vector<uint8_t> EncodeChild(const Child& child) {
  json j = {{"child", static_cast<int>(child.role)}, {"pid", child.pid}};
  return json::to_cbor(j);
}

std::vector<uint8_t> EncodeReply(const Reply& reply) {
  json j;
  j["ok"] = reply.ok;
  j["code"] = static_cast<int>(reply.error.code);
  j["errno"] = reply.error.sys_errno;
  j["what"] = reply.error.what;
  j["queue_errno"] = reply.queue_errno;
  j["queue"] = reply.has_queue;
  return json::to_cbor(j);
}

Result<Answer> DecodeAnswer(std::span<const uint8_t> bytes, size_t nfds) {
  auto bad = [] { return MakeError(Errc::kProtocol, "malformed answer from the zygote"); };
  json j = ParseCbor(bytes);
  if (j.is_discarded() || !j.is_object()) return bad();
  Answer a;
  if (const json* child = Field(j, "child")) {
    auto role = Int(*child, 0, static_cast<int>(LaunchRole::kProgram));
    auto pid =
        j.contains("pid") ? Int(j["pid"], 1, std::numeric_limits<pid_t>::max()) : std::nullopt;
    if (!role || !pid || nfds > 1) return bad();
    a.child = Child{static_cast<LaunchRole>(*role), static_cast<pid_t>(*pid)};
    return a;
  }
  Reply& r = a.reply;
  const json* ok = Field(j, "ok");
  const json* queue = Field(j, "queue");
  const json* what = Field(j, "what");
  if (ok == nullptr || !ok->is_boolean() || queue == nullptr || !queue->is_boolean() ||
      what == nullptr || !what->is_string()) {
    return bad();
  }
  auto code =
      j.contains("code") ? Int(j["code"], 0, static_cast<int>(Errc::kTimeout)) : std::nullopt;
  auto err = j.contains("errno") ? Int(j["errno"], 0, 4095) : std::nullopt;
  auto queue_errno = j.contains("queue_errno") ? Int(j["queue_errno"], 0, 4095) : std::nullopt;
  if (!code || !err || !queue_errno) return bad();
  r.ok = ok->get<bool>();
  // A launch's failure relayed must never read as the zygote's own (kPeerClosed, kTimeout).
  auto errc = static_cast<Errc>(*code);
  if (errc == Errc::kPeerClosed || errc == Errc::kTimeout) errc = Errc::kState;
  r.error = Error{errc, static_cast<int>(*err), what->get<std::string>()};
  r.queue_errno = static_cast<int>(*queue_errno);
  r.has_queue = queue->get<bool>();
  if (nfds != (r.has_queue ? 1u : 0u) || (!r.ok && r.has_queue) ||
      (r.has_queue && r.queue_errno != 0)) {
    return bad();
  }
  return a;
}

namespace {

void SendReady(bool ok, const std::string& what, int err) {
  json j = {{"ready", ok}, {"what", what}, {"errno", err}};
  auto bytes = json::to_cbor(j);
  (void)SendMessage(kSocketFd, bytes, {});  // nobody to tell if this fails
}

int StartFailed(const std::string& what) {
  int err = errno;
  std::fprintf(stderr, "sbx-zygote: %s: %s\n", what.c_str(), std::strerror(err));
  SendReady(false, what, err);
  return 1;
}

// One request: a message for each process its launch makes, the moment it exists, then the
// reply.
void ServeOne(Message request, int parent_pidfd) {
  std::vector<int> raw;
  for (const auto& fd : request.fds) raw.push_back(fd.get());
  Reply reply;
  UniqueFd queue;
  auto spec = DecodeRequest(request.bytes, raw);
  if (!spec) {
    reply.error = spec.error();
  } else if (!Zygote::CanLaunch(*spec)) {
    reply.error = Error{Errc::kInvalidArgument, 0, "the zygote makes confined launches only"};
  } else {
    LaunchOrigin origin{parent_pidfd, /*in_namespaces=*/true, nullptr};
    origin.on_child = [](LaunchRole role, pid_t pid, int pidfd) {
      std::vector<int> fds;
      if (pidfd >= 0) fds.push_back(pidfd);
      (void)SendMessage(kSocketFd, EncodeChild({role, pid}), fds);  // a broker gone: EOF next
    };
    auto child = Launch(*spec, origin);
    if (!child) {
      reply.error = child.error();
    } else {
      reply.ok = true;
      // The broker owns them now (on_child): ours close without a kill.
      (void)child->joiner.Release();
      (void)child->init.Release();
      (void)child->process.Release();
      reply.queue_errno = child->queue_errno;
      if (child->queue) {
        reply.has_queue = true;
        queue = std::move(child->queue);
      }
    }
  }
  request.fds.clear();  // the request's fds close before the reply: nothing of it stays here
  std::vector<int> send;
  if (queue) send.push_back(queue.get());
  (void)SendMessage(kSocketFd, EncodeReply(reply), send);
}

}  // namespace

int Serve(const std::string& empty_root) {
  // Before anything else: our parent is the broker, and every process we make will be its child.
  auto parent = PidfdOpen(::getppid());
  if (!parent) return StartFailed("pidfd_open(parent)");
  if (::setns(kHolderFd, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0) {
    return StartFailed("join the sandbox namespaces");
  }
  ::close(kHolderFd);
  // Root of the user namespace (as a launch's joiner becomes): the namespaces each renderer gets
  // of its own are made from here. One thread, so glibc's wrappers are safe.
  if (::setresgid(0, 0, 0) != 0) return StartFailed("setresgid");
  if (::setgroups(0, nullptr) != 0 && errno != EPERM) return StartFailed("setgroups");
  if (::setresuid(0, 0, 0) != 0) return StartFailed("setresuid");
  // The credential change cleared the parent-death signal; armed again, then a parent that died
  // before it is caught by its pidfd.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return StartFailed("PR_SET_PDEATHSIG");
  pollfd p{parent->get(), POLLIN, 0};
  if (::poll(&p, 1, 0) != 0) return StartFailed("the broker is gone");
  PrimeLauncher();  // reads /proc, which the empty root does not have
  if (::chdir(empty_root.c_str()) != 0 || ::chroot(".") != 0 || ::chdir("/") != 0) {
    return StartFailed("enter the empty root " + empty_root);
  }
  // Nothing of the same uid (the renderers map to it) may ptrace us or read our memory.
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) return StartFailed("PR_SET_DUMPABLE");
  SendReady(true, "", 0);
  for (;;) {
    auto request = ReceiveMessage(kSocketFd, -1);
    if (!request) return request.error().code == Errc::kPeerClosed ? 0 : 1;
    ServeOne(std::move(*request), parent->get());
  }
}

}  // namespace zygote

bool Zygote::CanLaunch(const LaunchSpec& spec) {
  return spec.namespaces && spec.confine && !spec.search_path;
}

Result<Zygote> Zygote::Start(const std::string& path, const NamespaceHolder& holder, int dev_null) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return SysError("socketpair");
  }
  UniqueFd ours(sv[0]), theirs(sv[1]);
  LaunchSpec spec;
  spec.argv = {path, "--root", holder.empty_root()};
  spec.fds = {{theirs.get(), zygote::kSocketFd}, {holder.pidfd(), zygote::kHolderFd}};
  spec.stdio = {dev_null, dev_null, -1};
  auto child = sbx::Launch(spec);
  if (!child) return std::unexpected(child.error());
  theirs.reset();
  Zygote z(std::move(child->process), std::move(ours));
  auto ready = ReceiveMessage(z.socket_.get(), kReadyTimeoutMs);
  if (!ready) return std::unexpected(ready.error());  // z's destructor kills and reaps it
  json j = ParseCbor(ready->bytes);
  if (j.is_discarded() || !j.is_object() || !j.contains("ready") || !j["ready"].is_boolean()) {
    return MakeError(Errc::kProtocol, "the zygote's first message is not a ready report");
  }
  if (!j["ready"].get<bool>()) {
    auto err = j.contains("errno") ? Int(j["errno"], 0, 4095) : std::nullopt;
    std::string what =
        j.contains("what") && j["what"].is_string() ? j["what"].get<std::string>() : "unknown step";
    return std::unexpected(
        Error{Errc::kState, static_cast<int>(err.value_or(0)), "the zygote could not " + what});
  }
  return z;
}

void Zygote::Abandon(InFlight& launch) {
  // The program first: a namespace's init cannot finish exiting while it is unreaped.
  for (int i = 2; i >= 0; --i) {
    ChildProcess& c = launch.children[i];
    if (!c.valid()) continue;
    (void)c.Signal(SIGKILL);
    if (reap_later_) {
      reap_later_(std::move(c));
    } else {
      c = {};  // kills and reaps, bounded
    }
  }
}

void Zygote::Fail(Error why) {
  if (why.code != Errc::kTimeout) why.code = Errc::kPeerClosed;
  process_ = {};  // killed and reaped first, so nothing more arrives
  // What it sent before it went: the processes it announced are already ours, and only we can
  // kill and reap them.
  std::deque<InFlight> failed;
  while (socket_.valid()) {
    auto got = ReadOne();
    if (!got) break;
    if (*got) failed.push_back(std::move((*got)->launch));
  }
  socket_.reset();
  for (auto& launch : in_flight_) failed.push_back(std::move(launch));
  in_flight_.clear();
  std::vector<pid_t> joiners;
  for (auto& launch : failed) {
    if (launch.children[0].valid()) joiners.push_back(launch.children[0].pid());
  }
  // Abandon SIGKILLs each joiner, so none makes anything after the sweep below.
  for (auto& launch : failed) Abandon(launch);
  // What a joiner had made but the zygote had not announced yet when it went (it announces the
  // init and the program together, once the joiner has reported both): nobody can now. A launch
  // whose joiner it had not announced either is not found; that joiner can report nothing to a
  // dead zygote and stops (launcher.cc, JoinerMain), leaving at most a sleeping init until the
  // broker exits.
  for (ChildProcess& c : AdoptUnannouncedLaunches(joiners)) {
    (void)c.Signal(SIGKILL);
    if (reap_later_) {
      reap_later_(std::move(c));
    } else {
      c = {};  // kills and reaps, bounded
    }
  }
  // Last: any of these may destroy this Zygote.
  for (auto& launch : failed) {
    if (launch.done) launch.done(std::unexpected(why));
  }
}

Result<uint64_t> Zygote::Submit(const LaunchSpec& spec, LaunchDone done) {
  if (!ok()) return MakeError(Errc::kPeerClosed, "the zygote is gone");
  if (!CanLaunch(spec)) return MakeError(Errc::kInvalidArgument, "not a launch for the zygote");
  std::vector<int> fds;
  auto bytes = zygote::EncodeRequest(spec, fds);
  if (in_flight_.empty()) progress_ns_ = MonotonicNs();
  // Queued before it is sent: a send that fails fails the zygote, and this launch with it.
  InFlight& launch = in_flight_.emplace_back();
  const uint64_t ticket = launch.ticket = next_ticket_++;
  launch.done = std::move(done);
  if (auto s = SendMessage(socket_.get(), bytes, fds); !s) {
    Error e{Errc::kPeerClosed, s.error().sys_errno, s.error().what};
    Fail(e);  // calls `done`
    return std::unexpected(std::move(e));
  }
  return ticket;
}

void Zygote::Cancel(uint64_t ticket) {
  for (auto& launch : in_flight_) {
    if (launch.ticket != ticket) continue;
    // Its processes go once the zygote has answered: killed in the middle, a launch could leave
    // one it made but had not announced yet.
    launch.done = nullptr;
  }
}

int64_t Zygote::deadline_ns() const {
  return in_flight_.empty() ? 0 : progress_ns_ + int64_t{kAnswerTimeoutMs} * 1'000'000;
}

void Zygote::Expire(int64_t now_ns) {
  if (!in_flight_.empty() && now_ns >= deadline_ns()) {
    Fail(Error{Errc::kTimeout, 0, "no answer on the zygote's socket"});
  }
}

Result<std::optional<Zygote::Finished>> Zygote::ReadOne() {
  auto message = ReceiveMessage(socket_.get(), 0);
  if (!message) return std::unexpected(message.error());
  if (in_flight_.empty()) return MakeError(Errc::kPeerClosed, "the zygote spoke unasked");
  auto answer = zygote::DecodeAnswer(message->bytes, message->fds.size());
  if (!answer) return MakeError(Errc::kPeerClosed, answer.error().what);
  progress_ns_ = MonotonicNs();
  InFlight& launch = in_flight_.front();
  if (answer->child) {
    auto& slot = launch.children[static_cast<int>(answer->child->role)];
    pid_t pid = answer->child->pid;
    if (slot.valid()) return MakeError(Errc::kPeerClosed, "the zygote announced a process twice");
    // Our child (CLONE_PARENT) and unreaped, so its pid cannot have been reused.
    if (!message->fds.empty()) {
      slot = ChildProcess(pid, std::move(message->fds[0]));
    } else if (auto adopted = ChildProcess::Adopt(pid)) {
      slot = std::move(*adopted);
    } else {
      ChildProcess::KillAndReapPid(pid);
    }
    return std::nullopt;
  }
  Finished f{std::move(launch), answer->reply, {}};
  in_flight_.pop_front();
  if (f.reply.has_queue) f.queue = std::move(message->fds[0]);
  return f;
}

void Zygote::Receive() {
  while (ok()) {
    auto got = ReadOne();
    if (!got) {
      if (got.error().code == Errc::kTimeout) return;  // nothing more waits
      return Fail(got.error());
    }
    if (!*got) continue;
    Finished f = std::move(**got);
    if (!f.launch.done) {  // cancelled: nobody to tell
      Abandon(f.launch);
      continue;
    }
    const zygote::Reply& r = f.reply;
    auto& children = f.launch.children;
    Result<LaunchedChild> out = std::unexpected(r.error);
    if (r.ok && children[0].valid() && children[1].valid() && children[2].valid()) {
      ++launches_;
      LaunchedChild child;
      child.joiner = std::move(children[0]);
      child.init = std::move(children[1]);
      child.process = std::move(children[2]);
      child.queue_errno = r.queue_errno;
      child.queue = std::move(f.queue);
      out = std::move(child);
    } else {
      if (r.ok) {
        out = std::unexpected(
            Error{Errc::kState, 0, "the zygote's launch lost one of its processes"});
      }
      Abandon(f.launch);
    }
    // Last: `done` may destroy this Zygote. What else waits leaves the socket readable, and the
    // caller's loop comes back for it.
    return f.launch.done(std::move(out));
  }
}

Result<LaunchedChild> Zygote::Launch(const LaunchSpec& spec, const ReapLater& reap_later) {
  ReapLater saved = std::exchange(reap_later_, reap_later);
  std::optional<Result<LaunchedChild>> result;
  auto ticket = Submit(spec, [&](Result<LaunchedChild> r) { result = std::move(r); });
  if (!ticket) {
    reap_later_ = std::move(saved);
    return std::unexpected(ticket.error());
  }
  while (!result) {
    auto ready = WaitReadable(socket_.get(), kAnswerTimeoutMs);
    if (!ready || !*ready) {
      Fail(ready ? Error{Errc::kTimeout, 0, "no answer on the zygote's socket"} : ready.error());
      break;
    }
    Receive();
  }
  reap_later_ = std::move(saved);
  return std::move(*result);
}

}  // namespace sbx
