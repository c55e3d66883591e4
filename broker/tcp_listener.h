// The control line protocol over TCP on loopback, so `telnet 127.0.0.1 PORT` drives a broker as
// in an IPC lecture's last demo. Opt-in (`--listen`): the Unix socket stays the default, because
// a file in a 0700 directory and SO_PEERCRED decide who may connect, while any local process may
// connect to a TCP port. TCP has no SO_PEERCRED, so on every connection the listener asks the
// kernel (NETLINK_SOCK_DIAG, an exact inet_diag lookup of the peer's 4-tuple) which uid owns the
// connecting socket, and refuses any other uid with an error line, as the Unix socket does.
// Accepted connections are handed to the ControlServer, which serves them like any other client.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "broker/control_server.h"
#include "broker/event_loop.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

// A loopback address and port: "127.0.0.1:PORT" (any 127.0.0.0/8 address), "localhost:PORT" or
// "[::1]:PORT". Port 0 lets the kernel pick one. Anything that is not loopback is refused.
struct ListenAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};
Result<ListenAddress> ParseListenAddress(std::string_view text);
// "127.0.0.1:4321", "[::1]:4321".
std::string FormatAddress(const sockaddr_storage& addr);

// The uid owning the local TCP socket whose (local, remote) endpoints are `local`/`remote`, as
// the kernel's socket diagnostics report it. Both must be of one family, AF_INET or AF_INET6.
Result<uid_t> LocalTcpSocketOwner(const sockaddr_storage& local, const sockaddr_storage& remote);

class TcpListener {
 public:
  // One line sent on every accepted connection before any reply.
  static constexpr char kGreeting[] =
      "{\"sbx\":\"broker control: one command per line, type help for the list\"}";

  // Binds and listens on `address`; accepted connections from the broker's uid go to `server`.
  static Result<std::unique_ptr<TcpListener>> Create(EventLoop& loop, ControlServer& server,
                                                     const ListenAddress& address);
  struct Key {
   private:
    friend class TcpListener;
    Key() = default;
  };
  TcpListener(Key, EventLoop& loop, ControlServer& server, UniqueFd fd, sockaddr_storage bound);
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  ~TcpListener();

  // The address actually bound (with the kernel's port when 0 was asked for).
  const sockaddr_storage& address() const { return bound_; }
  uint16_t port() const;

 private:
  void OnAccept();

  EventLoop& loop_;
  ControlServer& server_;
  UniqueFd fd_;
  sockaddr_storage bound_;
  EventLoop::Token watch_ = 0;
};

// What both front ends do with --listen: parse, bind and serve on the broker's loop.
Result<std::unique_ptr<TcpListener>> StartTcpListener(Broker& broker, ControlServer& server,
                                                      std::string_view address);
// The listener's address as telnet takes it: "127.0.0.1 4321".
std::string TelnetTarget(const TcpListener& listener);

}  // namespace sbx
