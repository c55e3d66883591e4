// How sbx-ctl shows a broker's reply to a person at a terminal. Scripts (stdout not a terminal,
// or --json) get the reply line exactly as the broker sent it; these forms are only for reading.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sbx {

// {"renderers": [...]} as a table with one row per renderer, like `docker ps`.
std::string FormatRendererTable(const nlohmann::json& reply);

// {"commands": [...]} as a usage text, one command per line.
std::string FormatHelp(const nlohmann::json& reply);

// Any other reply, indented for reading.
std::string FormatReply(const nlohmann::json& reply);

}  // namespace sbx
