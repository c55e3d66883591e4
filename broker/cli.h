// The command line shared by sbx-broker and the window, so scripts drive both the same way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "broker/broker.h"
#include "ipc/error.h"

namespace sbx {

struct CommandLine {
  BrokerOptions broker;
  std::string control_path;  // empty: DefaultControlPath()
  std::string listen;        // empty: no TCP listener; else a loopback ADDRESS:PORT (checked)
  bool json = false;
  bool help = false;
};

// One argument split in the "--opt=VALUE" form: name "--opt", inline value "VALUE". Anything
// else (including "--opt" followed by a separate VALUE) has no inline value. Shared by every
// front end's parser, so `sbx` and `sbx-broker` read options the same way.
struct OptionArg {
  std::string_view name;
  std::optional<std::string_view> inline_value;
};
OptionArg SplitOption(std::string_view arg);
std::unexpected<Error> OptionNeedsValue(std::string_view name);
std::unexpected<Error> BadOptionValue(std::string_view name, std::string_view value);

// Accepts "--opt VALUE" and "--opt=VALUE". Unknown options are an error.
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv);
const char* CommandLineHelp();

}  // namespace sbx
