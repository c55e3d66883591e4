#include "ui/format.h"

#include "ipc/posix.h"

namespace sbx::ui {

QString ToQString(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}

QString ExitText(const ExitInfo& exit) {
  if (exit.status == ExitStatus::kNone) return {};
  QString text = ToQString(ExitStatusName(exit.status));
  if (exit.signal != 0) {
    text += QStringLiteral(" by ") + QString::fromLatin1(SignalName(exit.signal));
  } else if (exit.code >= 0 && exit.status != ExitStatus::kExited) {
    text += QStringLiteral(", exit code %1").arg(exit.code);
  }
  return text;
}

QString SadTabTitle(const ExitInfo& exit) {
  switch (exit.status) {
    case ExitStatus::kCrashed:
      return QStringLiteral("Aw, snap! This renderer crashed");
    case ExitStatus::kKilled:
      return QStringLiteral("This renderer was killed");
    case ExitStatus::kHung:
      return QStringLiteral("This renderer stopped responding and was killed");
    case ExitStatus::kOom:
      return QStringLiteral("This renderer ran out of memory");
    case ExitStatus::kBadMessage:
      return QStringLiteral("This renderer sent a bad message and was killed");
    case ExitStatus::kSandboxViolation:
      return QStringLiteral("This renderer broke the sandbox rules");
    case ExitStatus::kLaunchFailed:
      return QStringLiteral("This renderer could not be started");
    case ExitStatus::kAbnormal:
      return QStringLiteral("This renderer exited with an error");
    default:  // kExited, kNone and any status the core adds later
      break;
  }
  return QStringLiteral("This renderer exited");
}

QString DurationText(int64_t ms) {
  if (ms < 0) return QStringLiteral("-");
  if (ms < 1000) return QStringLiteral("%1 ms").arg(ms);
  if (ms < 60'000) return QStringLiteral("%1 s").arg(static_cast<double>(ms) / 1000.0, 0, 'f', 1);
  int64_t s = ms / 1000;
  if (s < 3600) {
    return QStringLiteral("%1 min %2 s").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
  }
  return QStringLiteral("%1 h %2 min").arg(s / 3600).arg((s / 60) % 60, 2, 10, QLatin1Char('0'));
}

QString BytesText(uint64_t bytes) {
  double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  if (mib >= 1024.0) return QStringLiteral("%1 GiB").arg(mib / 1024.0, 0, 'f', 2);
  return QStringLiteral("%1 MiB").arg(mib, 0, 'f', 1);
}

QColor StateColor(RendererState state) {
  switch (state) {
    case RendererState::kStarting:
      return QColor(0x1a, 0x73, 0xe8);
    case RendererState::kRunning:
      return QColor(0x18, 0x80, 0x38);
    case RendererState::kUnresponsive:
      return QColor(0xe3, 0x74, 0x00);
    case RendererState::kExited:
      return QColor(0xd9, 0x30, 0x25);
    case RendererState::kRestarting:
      return QColor(0x9c, 0x27, 0xb0);
    case RendererState::kFailed:
      return QColor(0x8b, 0x00, 0x00);
    default:
      break;
  }
  return QColor(0x5f, 0x63, 0x68);
}

QColor EventColor(EventType type) {
  switch (type) {
    case EventType::kSpawned:
      return QColor(0x1a, 0x73, 0xe8);
    case EventType::kReady:
      return QColor(0x18, 0x80, 0x38);
    case EventType::kUnresponsive:
      return QColor(0xe3, 0x74, 0x00);
    case EventType::kResponsive:
      return QColor(0x00, 0x89, 0x7b);
    case EventType::kExited:
      return QColor(0xd9, 0x30, 0x25);
    case EventType::kRestarting:
      return QColor(0x9c, 0x27, 0xb0);
    case EventType::kFailed:
      return QColor(0x8b, 0x00, 0x00);
    case EventType::kDrillReport:
      return QColor(0xb0, 0x60, 0x00);
    default:
      break;
  }
  return QColor(0x5f, 0x63, 0x68);
}

}  // namespace sbx::ui
