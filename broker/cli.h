// The command line shared by sbx-broker and the window, so scripts drive both the same way.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "broker/broker.h"
#include "ipc/error.h"

namespace sbx {

// What --renderers and --max-renderers accept; the broker's own bound (--max-renderers, or its
// default) is checked at start, where the machine's limits are known.
inline constexpr int kMaxRenderersOption = 100'000;

struct CommandLine {
  BrokerOptions broker;
  std::string control_path;  // empty: DefaultControlPath()
  std::string listen;        // empty: no TCP listener; else a loopback ADDRESS:PORT (checked)
  bool json = false;
  bool help = false;
  bool renderers_given = false;  // --renderers was on the command line
};

// An option a front end adds to the shared ones (the window's --spawn, --size, ...), read by
// the same parser so every option takes "--opt VALUE" and "--opt=VALUE" alike. apply gets the
// value (empty for a flag) and returns false for a bad one.
struct ExtraOption {
  std::string_view name;
  bool takes_value = true;
  std::function<bool(std::string_view value)> apply;
};

// "N" in [min, max], as every numeric option is read.
std::optional<int> ParseIntOption(std::string_view s, int min, int max);

// Accepts "--opt VALUE" and "--opt=VALUE". Unknown options are an error.
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv,
                                     std::span<const ExtraOption> extra = {});
const char* CommandLineHelp();

}  // namespace sbx
