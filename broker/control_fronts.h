// What sbx-broker and the window both open after the broker: the control socket (at --control
// or the default path) and, with --listen, the TCP listener for telnet.
#pragma once

#include <memory>
#include <string>

#include "broker/broker.h"
#include "broker/cli.h"
#include "broker/control_server.h"
#include "broker/tcp_listener.h"
#include "ipc/error.h"

namespace sbx {

struct ControlFronts {
  std::string path;  // the control socket's path
  std::unique_ptr<ControlServer> server;
  std::unique_ptr<TcpListener> tcp;  // null without --listen
};

// An error says which of the two failed, and for a socket in use what to do about it.
Result<ControlFronts> OpenControlFronts(Broker& broker, const CommandLine& cl);

// The lines a front prints once both are open, each prefixed with `who` ("sbx-broker: ").
std::string DescribeControlFronts(const ControlFronts& fronts, std::string_view who);

}  // namespace sbx
