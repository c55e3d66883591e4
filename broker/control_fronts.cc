#include "broker/control_fronts.h"

namespace sbx {

Result<ControlFronts> OpenControlFronts(Broker& broker, const CommandLine& cl) {
  ControlFronts f;
  f.path = cl.control_path;
  if (f.path.empty()) {
    auto p = DefaultControlPath();
    if (!p) return std::unexpected(p.error());
    f.path = std::move(*p);
  }
  auto control = ControlServer::Create(broker, f.path);
  if (!control) {
    Error e = control.error();
    e.what = "control socket: " + e.what +
             " (another sbx or sbx-broker may be running; pass --control PATH)";
    return std::unexpected(std::move(e));
  }
  f.server = std::move(*control);
  if (!cl.listen.empty()) {
    auto l = StartTcpListener(broker, *f.server, cl.listen);
    if (!l) return std::unexpected(l.error());
    f.tcp = std::move(*l);
  }
  return f;
}

std::string DescribeControlFronts(const ControlFronts& fronts, std::string_view who) {
  std::string out = std::string(who) + "control socket at " + fronts.path + "\n";
  if (fronts.tcp) out += std::string(who) + "telnet " + TelnetTarget(*fronts.tcp) + "\n";
  return out;
}

}  // namespace sbx
