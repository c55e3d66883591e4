// The command line shared by sbx-broker and the window, so scripts drive both the same way.
#pragma once

#include <string>

#include "broker/broker.h"
#include "ipc/error.h"

namespace sbx {

struct CommandLine {
  BrokerOptions broker;
  std::string control_path;  // empty: DefaultControlPath()
  bool json = false;
  bool help = false;
};

// Accepts "--opt VALUE" and "--opt=VALUE". Unknown options are an error.
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv);
const char* CommandLineHelp();

}  // namespace sbx
