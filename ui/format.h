// How the window words and colours what the core reports, in one place so the views, the task
// manager and the event log agree.
#pragma once

#include <QColor>
#include <QString>
#include <cstdint>

#include "broker/broker.h"
#include "broker/exit_status.h"

namespace sbx::ui {

QString ToQString(std::string_view s);
// "crashed by SIGSEGV", "abnormal, exit code 3", "exited"; empty for kNone.
QString ExitText(const ExitInfo& exit);
// A sad tab's headline for a renderer that ended this way.
QString SadTabTitle(const ExitInfo& exit);
QString DurationText(int64_t ms);   // "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min"
QString BytesText(uint64_t bytes);  // "12.4 MiB"
QColor StateColor(RendererState state);
QColor EventColor(EventType type);

}  // namespace sbx::ui
