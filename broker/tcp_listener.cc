#include "broker/tcp_listener.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "ipc/posix.h"

namespace sbx {

namespace {

std::optional<uint16_t> ParsePort(std::string_view s) {
  uint16_t port = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return port;
}

bool IsLoopback(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
  }
  if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    return IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr) != 0;
  }
  return false;
}

uint16_t PortOf(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

// Copies the address part of `a` into an inet_diag address field (4 words, network order).
void CopyDiagAddress(const sockaddr_storage& a, __be32 (&out)[4]) {
  std::memset(out, 0, sizeof out);
  if (a.ss_family == AF_INET6) {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, 16);
  } else {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, 4);
  }
}

// Sends one line and lets the connection go; best effort, on a fresh socket that cannot block.
void Refuse(int fd, std::string_view line) {
  (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto bad = [&](std::string why) {
    return MakeError(Errc::kInvalidArgument,
                     "--listen " + std::string(text) + ": " + std::move(why));
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("want ADDRESS:PORT, e.g. 127.0.0.1:4321");
  std::string host(text.substr(0, colon));
  auto port = ParsePort(text.substr(colon + 1));
  if (!port) return bad("bad port");
  ListenAddress out;
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out.addr);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(*port);
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6.sin6_addr) != 1) {
      return bad("not an IPv6 address");
    }
    out.len = sizeof in6;
  } else {
    auto& in = reinterpret_cast<sockaddr_in&>(out.addr);
    in.sin_family = AF_INET;
    in.sin_port = htons(*port);
    if (::inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1) {
      return bad("not an IPv4 address (IPv6 goes in brackets: [::1]:PORT)");
    }
    out.len = sizeof in;
  }
  if (!IsLoopback(out.addr)) {
    return bad(
        "only loopback addresses (127.0.0.0/8, ::1) are served: the broker must not be "
        "reachable from another machine");
  }
  return out;
}

std::string FormatAddress(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET6) {
    (void)::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr, host,
                      sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(PortOf(addr));
  }
  (void)::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(addr).sin_addr, host,
                    sizeof host);
  return std::string(host) + ":" + std::to_string(PortOf(addr));
}

Result<uid_t> LocalTcpSocketOwner(const sockaddr_storage& local, const sockaddr_storage& remote) {
  if (local.ss_family != remote.ss_family ||
      (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
    return MakeError(Errc::kInvalidArgument, "sock_diag: mixed or non-IP address families");
  }
  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl) return SysError("socket(NETLINK_SOCK_DIAG)");
  // No NLM_F_DUMP: an exact lookup, answered (or refused) before sendmsg returns, so the
  // MSG_DONTWAIT read below never waits and never finds nothing.
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = static_cast<uint8_t>(local.ss_family);
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;
  msg.req.id.idiag_sport = htons(PortOf(local));
  msg.req.id.idiag_dport = htons(PortOf(remote));
  CopyDiagAddress(local, msg.req.id.idiag_src);
  CopyDiagAddress(remote, msg.req.id.idiag_dst);
  msg.req.id.idiag_if = 0;
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent = HandleEintr([&] {
    return ::sendto(nl.get(), &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof kernel);
  });
  if (sent != static_cast<ssize_t>(sizeof msg)) return SysError("sendto(sock_diag)");
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = HandleEintr([&] { return ::recv(nl.get(), buf, sizeof buf, MSG_DONTWAIT); });
  if (n < 0) return SysError("recv(sock_diag)");
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
  if (!NLMSG_OK(h, static_cast<size_t>(n))) {
    return MakeError(Errc::kProtocol, "sock_diag: short reply");
  }
  if (h->nlmsg_type == NLMSG_ERROR) {
    const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof *err) ? -err->error : EPROTO;
    return SysError("sock_diag: no such socket");
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return MakeError(Errc::kProtocol, "sock_diag: unexpected reply");
  }
  return static_cast<const inet_diag_msg*>(NLMSG_DATA(h))->idiag_uid;
}

Result<std::unique_ptr<TcpListener>> TcpListener::Create(EventLoop& loop, ControlServer& server,
                                                         const ListenAddress& address) {
  if (!IsLoopback(address.addr)) {
    return MakeError(Errc::kInvalidArgument, "refusing to listen on a non-loopback address");
  }
  UniqueFd fd(::socket(address.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return SysError("socket");
  int one = 1;
  // A broker restarted right after a client left must not wait out TIME_WAIT for its port.
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return SysError("setsockopt(SO_REUSEADDR)");
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.addr), address.len) != 0) {
    return SysError("bind " + FormatAddress(address.addr));
  }
  if (::listen(fd.get(), 16) != 0) return SysError("listen");
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return SysError("getsockname");
  }
  auto l = std::make_unique<TcpListener>(Key{}, loop, server, std::move(fd), bound);
  auto w = loop.Watch(l->fd_.get(), EPOLLIN, [self = l.get()](uint32_t) { self->OnAccept(); });
  if (!w) return std::unexpected(w.error());
  l->watch_ = *w;
  return l;
}

TcpListener::TcpListener(Key, EventLoop& loop, ControlServer& server, UniqueFd fd,
                         sockaddr_storage bound)
    : loop_(loop), server_(server), fd_(std::move(fd)), bound_(bound) {}

TcpListener::~TcpListener() { loop_.Unwatch(watch_); }

uint16_t TcpListener::port() const { return PortOf(bound_); }

Result<std::unique_ptr<TcpListener>> StartTcpListener(Broker& broker, ControlServer& server,
                                                      std::string_view address) {
  auto parsed = ParseListenAddress(address);
  if (!parsed) return std::unexpected(parsed.error());
  return TcpListener::Create(broker.loop(), server, *parsed);
}

std::string TelnetTarget(const TcpListener& listener) {
  std::string text = FormatAddress(listener.address());
  size_t colon = text.rfind(':');
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host + " " + text.substr(colon + 1);
}

void TcpListener::OnAccept() {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    int raw = HandleEintr([&] {
      return ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
    });
    if (raw < 0) return;  // EAGAIN, or a transient error such as EMFILE: try on the next wakeup
    UniqueFd fd(raw);
    sockaddr_storage local{};
    socklen_t local_len = sizeof local;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        !IsLoopback(peer)) {
      Refuse(fd.get(), "{\"error\":\"permission denied\"}\n");
      continue;
    }
    // The peer's socket is the one whose local end is our remote end, and the other way round.
    auto owner = LocalTcpSocketOwner(peer, local);
    if (!owner || *owner != ::geteuid()) {
      Refuse(fd.get(), "{\"error\":\"permission denied\"}\n");
      continue;
    }
    // The replies are short lines in answer to typed commands: send them at once.
    int one = 1;
    (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    server_.Adopt(std::move(fd), kGreeting);
  }
}

}  // namespace sbx
