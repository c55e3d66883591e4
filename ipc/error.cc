#include "ipc/error.h"

#include <cstring>

namespace sbx {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kSystem:
      return "system";
    case Errc::kPeerClosed:
      return "peer-closed";
    case Errc::kProtocol:
      return "protocol";
    case Errc::kOverflow:
      return "overflow";
    case Errc::kInvalidArgument:
      return "invalid-argument";
    case Errc::kNotFound:
      return "not-found";
    case Errc::kState:
      return "state";
    case Errc::kTimeout:
      return "timeout";
  }
  return "unknown";
}

std::string Error::ToString() const {
  std::string out = what;
  if (sys_errno != 0) {
    out += ": ";
    out += std::strerror(sys_errno);
  }
  return out;
}

}  // namespace sbx
