// Control lines, as any client of the control socket may send them: the input is the bytes a
// client writes, cut into lines the way the control server cuts them (newline, an optional
// trailing CR, at most ControlServer::kMaxLine bytes). Properties: every line gets exactly one
// reply, at once; the reply is a JSON object that serialises to valid JSON; it is an error or a
// success, never both; and the broker is left with no renderer.
//
// The broker is real but shut down before the first line, so `spawn` and `reload` are refused
// instead of forking a process per input; every other command meets a broker with no renderers.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "broker/broker.h"
#include "broker/control_server.h"
#include "broker/event_json.h"
#include "tests/fuzz/fuzz_check.h"

namespace sbx {
namespace {

using nlohmann::json;

std::unique_ptr<Broker> MakeBroker() {
  BrokerOptions options;
  options.renderers = 0;
  options.renderer_path = "/nonexistent/sbx-fuzz-renderer";
  options.sandbox = false;  // no namespace holder process either
  auto broker = Broker::Create(options);
  SBX_FUZZ_CHECK(broker.has_value());
  (*broker)->Shutdown();
  SBX_FUZZ_CHECK((*broker)->finished());
  return std::move(*broker);
}

Broker& TheBroker() {
  static std::unique_ptr<Broker> broker = MakeBroker();
  return *broker;
}

void RunLine(std::string_view line) {
  std::vector<std::string> replies;
  ExecuteCommand(TheBroker(), line,
                 [&replies](std::string reply) { replies.push_back(std::move(reply)); });
  // `list` and `inspect` reply from the loop once the worker thread has read the processes.
  for (int i = 0; replies.empty() && i < 1000; ++i) (void)TheBroker().loop().Dispatch(10);
  SBX_FUZZ_CHECK(replies.size() == 1);
  SBX_FUZZ_CHECK(replies[0].find('\n') == std::string::npos);
  const json reply = json::parse(replies[0], nullptr, false);
  SBX_FUZZ_CHECK(!reply.is_discarded());
  SBX_FUZZ_CHECK(reply.is_object() && !reply.empty());
  SBX_FUZZ_CHECK(!(reply.contains("error") && reply.contains("ok")));
  if (reply.contains("error")) SBX_FUZZ_CHECK(reply["error"].is_string() && reply.size() == 1);
}

}  // namespace
}  // namespace sbx

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Lines are independent (the broker never changes), so a few per input explore as much as
  // hundreds, and keep each run short.
  for (int lines = 0; !bytes.empty() && lines < 16; ++lines) {
    size_t nl = bytes.find('\n');
    std::string_view line = bytes.substr(0, nl);
    bytes.remove_prefix(nl == std::string_view::npos ? bytes.size() : nl + 1);
    // The server answers an over-long line itself, without parsing it.
    if (line.size() > sbx::ControlServer::kMaxLine) continue;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    sbx::RunLine(line);
  }
  SBX_FUZZ_CHECK(sbx::TheBroker().List().empty());
  return 0;
}
