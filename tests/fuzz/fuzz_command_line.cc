// The command line of sbx-broker and the window: the input is argv[1..] separated by NUL bytes,
// as a shell script may pass anything. Properties: ParseCommandLine never crashes, returns an
// error value for anything it refuses, and every value it accepts is within its documented range.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/cli.h"
#include "ipc/codec.h"
#include "ipc/protocol.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args{"sbx-broker"};
  while (!bytes.empty() && args.size() < 64) {
    size_t nul = bytes.find('\0');
    args.emplace_back(bytes.substr(0, nul));
    bytes.remove_prefix(nul == std::string_view::npos ? bytes.size() : nul + 1);
  }
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);

  auto cl = sbx::ParseCommandLine(static_cast<int>(args.size()), argv.data());
  if (!cl) {
    SBX_FUZZ_CHECK(cl.error().code == sbx::Errc::kInvalidArgument && !cl.error().what.empty());
    return 0;
  }
  const sbx::BrokerOptions& b = cl->broker;
  SBX_FUZZ_CHECK(b.renderers >= 0 && b.renderers <= sbx::kMaxRenderersOption);
  SBX_FUZZ_CHECK(b.max_renderers >= 0 && b.max_renderers <= sbx::kMaxRenderersOption);
  SBX_FUZZ_CHECK(b.hang_timeout_ms >= 10 && b.hang_timeout_ms <= 3'600'000);
  SBX_FUZZ_CHECK(b.fps >= sbx::protocol::kMinFps && b.fps <= sbx::protocol::kMaxFps);
  SBX_FUZZ_CHECK(sbx::IsValidUrl(b.page));
  for (const auto& word : b.cmd_prefix) {
    SBX_FUZZ_CHECK(!word.empty() && word.find_first_of(" \t\n\v\f\r") == std::string::npos);
  }
  return 0;
}
