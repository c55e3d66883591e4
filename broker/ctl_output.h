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

// One `trace` line as text: "[   1.234] 2 mq      -> heartbeat #5  40 B  30 frames, ...".
// A {"dropped": N} line says how many lines the broker dropped; anything else is shown as is.
std::string FormatTraceLine(const nlohmann::json& line);

// {"process": {...}} (`inspect`) as an indented tree, one line per process and, below each, one
// per fd it holds: "renderer 1  pid 4242 (2 inside)  S  threads 2: sbx-renderer, sbx-io ...".
std::string FormatProcessTree(const nlohmann::json& reply);

// Any other reply, indented for reading.
std::string FormatReply(const nlohmann::json& reply);

}  // namespace sbx
