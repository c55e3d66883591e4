#include "ui/event_log.h"

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollBar>
#include <QTableView>
#include <QVBoxLayout>

#include "broker/event_json.h"
#include "ipc/posix.h"
#include "ui/broker_bridge.h"
#include "ui/format.h"

namespace sbx::ui {

namespace {

constexpr EventType kAllTypes[] = {
    EventType::kSpawned,    EventType::kReady,     EventType::kUnresponsive,
    EventType::kResponsive, EventType::kExited,    EventType::kRestarting,
    EventType::kFailed,     EventType::kClosed,    EventType::kDrillReport,
    EventType::kLog,        EventType::kVisibility};

QString Details(const BrokerEvent& e) {
  QStringList parts;
  if (e.exit) parts << ExitText(*e.exit);
  if (e.type == EventType::kSpawned) {
    parts << ToQString(e.page);
    if (e.heartbeat_fallback) parts << QStringLiteral("heartbeats on the pipe");
  }
  if (e.type == EventType::kVisibility) parts << ToQString(protocol::VisibilityName(e.visibility));
  if (e.type == EventType::kLog) {
    if (e.dropped_lines != 0 || e.dropped_bytes != 0) {
      parts
          << QStringLiteral("dropped %1 lines, %2 bytes").arg(e.dropped_lines).arg(e.dropped_bytes);
    } else {
      // Sanitized by the broker: valid UTF-8, no control characters.
      parts << ToQString(e.line) + (e.truncated ? QStringLiteral(" [cut at 1 KiB]") : QString());
    }
  }
  if (e.delay_ms >= 0) parts << QStringLiteral("in %1 ms").arg(e.delay_ms);
  if (e.first_frame_ms >= 0) {
    parts << QStringLiteral("first frame after %1 ms").arg(e.first_frame_ms, 0, 'f', 1);
  }
  if (!e.detail.empty() && !(e.exit && e.exit->detail == e.detail)) parts << ToQString(e.detail);
  if (e.exit && !e.exit->detail.empty()) parts << ToQString(e.exit->detail);
  return parts.join(QStringLiteral(" \u00b7 "));
}

}  // namespace

EventLogModel::EventLogModel(QObject* parent) : QAbstractTableModel(parent) {}

int EventLogModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(entries_.size());
}

int EventLogModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : kColumnCount;
}

QVariant EventLogModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kTime:
      return QStringLiteral("Time");
    case kBrokerTime:
      return QStringLiteral("t (s)");
    case kId:
      return QStringLiteral("ID");
    case kPid:
      return QStringLiteral("PID");
    case kEvent:
      return QStringLiteral("Event");
    case kDetails:
      return QStringLiteral("Details");
    default:
      return {};
  }
}

QVariant EventLogModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) {
    return {};
  }
  const Entry& entry = entries_[static_cast<size_t>(index.row())];
  const BrokerEvent& e = entry.event;
  if (role == kTypeRole) return static_cast<int>(e.type);
  if (role == kSearchRole) return entry.search;
  if (role == Qt::ForegroundRole) return EventColor(e.type);
  if (role == Qt::ToolTipRole && index.column() == kDetails) return entry.details;
  if (role != Qt::DisplayRole) return {};
  switch (index.column()) {
    case kTime:
      return entry.wall.toString(QStringLiteral("HH:mm:ss.zzz"));
    case kBrokerTime:
      return QString::number(static_cast<double>(e.t_ms) / 1000.0, 'f', 3);
    case kId:
      return e.id;
    case kPid:
      return e.pid > 0 ? QVariant(e.pid) : QVariant(QStringLiteral("-"));
    case kEvent:
      return ToQString(EventTypeName(e.type));
    case kDetails:
      return entry.details;
    default:
      return {};
  }
}

void EventLogModel::Append(const BrokerEvent& event) {
  if (entries_.size() >= kMaxEntries) {
    beginRemoveRows({}, 0, 0);
    entries_.pop_front();
    endRemoveRows();
  }
  int row = static_cast<int>(entries_.size());
  beginInsertRows({}, row, row);
  QDateTime now = QDateTime::currentDateTime();
  QString search = now.toString(QStringLiteral("HH:mm:ss.zzz ")) +
                   QString::fromStdString(DumpJson(EventToJson(event)));
  entries_.push_back(Entry{now, event, Details(event), std::move(search)});
  endInsertRows();
}

void EventLogModel::Clear() {
  beginResetModel();
  entries_.clear();
  endResetModel();
}

void EventLogFilter::SetType(std::optional<EventType> type) {
  type_ = type;
  invalidateFilter();
}

void EventLogFilter::SetText(const QString& text) {
  text_ = text.trimmed();
  invalidateFilter();
}

bool EventLogFilter::filterAcceptsRow(int source_row, const QModelIndex& source_parent) const {
  const QAbstractItemModel* m = sourceModel();
  if (type_) {
    int type = m->data(m->index(source_row, 0, source_parent), EventLogModel::kTypeRole).toInt();
    if (type != static_cast<int>(*type_)) return false;
  }
  if (text_.isEmpty()) return true;
  return m->data(m->index(source_row, 0, source_parent), EventLogModel::kSearchRole)
      .toString()
      .contains(text_, Qt::CaseInsensitive);
}

EventLog::EventLog(BrokerBridge* bridge, QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("event-log"));
  model_ = new EventLogModel(this);
  filter_ = new EventLogFilter(this);
  filter_->setSourceModel(model_);

  text_ = new QLineEdit(this);
  text_->setObjectName(QStringLiteral("event-filter"));
  text_->setPlaceholderText(QStringLiteral("Filter: id, pid, status, signal\u2026"));
  text_->setClearButtonEnabled(true);
  type_ = new QComboBox(this);
  type_->setObjectName(QStringLiteral("event-type"));
  type_->addItem(QStringLiteral("All events"), -1);
  for (EventType t : kAllTypes) type_->addItem(ToQString(EventTypeName(t)), static_cast<int>(t));
  auto* save = new QPushButton(QStringLiteral("Save\u2026"), this);
  save->setObjectName(QStringLiteral("event-save"));
  save->setToolTip(
      QStringLiteral("Save the events shown as JSON lines (the sbx-broker --json form)"));
  auto* clear = new QPushButton(QStringLiteral("Clear"), this);
  clear->setObjectName(QStringLiteral("event-clear"));

  table_ = new QTableView(this);
  table_->setModel(filter_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->hide();
  table_->verticalHeader()->setDefaultSectionSize(20);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setWordWrap(false);
  table_->setColumnWidth(EventLogModel::kTime, 90);
  table_->setColumnWidth(EventLogModel::kBrokerTime, 60);
  table_->setColumnWidth(EventLogModel::kId, 36);
  table_->setColumnWidth(EventLogModel::kPid, 60);
  table_->setColumnWidth(EventLogModel::kEvent, 90);

  auto* bar = new QHBoxLayout;
  bar->addWidget(text_, 1);
  bar->addWidget(type_);
  bar->addWidget(save);
  bar->addWidget(clear);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(bar);
  layout->addWidget(table_, 1);

  // Follow new events unless the person scrolled up to read. Whether the log follows is kept,
  // not re-measured at each event: a filter change moves the rows under the scroll bar (cleared,
  // the shown rows grow above where it stands), and that is no reason to stop following.
  QScrollBar* sb = table_->verticalScrollBar();
  connect(sb, &QScrollBar::valueChanged, this,
          [this, sb](int value) { following_ = value >= sb->maximum() - 2; });
  connect(text_, &QLineEdit::textChanged, this, [this](const QString& text) {
    bool follow = following_;
    filter_->SetText(text);
    KeepFollowing(follow);
  });
  connect(type_, &QComboBox::currentIndexChanged, this, [this](int index) {
    bool follow = following_;
    int v = type_->itemData(index).toInt();
    filter_->SetType(v < 0 ? std::nullopt : std::optional(static_cast<EventType>(v)));
    KeepFollowing(follow);
  });
  connect(save, &QPushButton::clicked, this, &EventLog::SaveWithDialog);
  connect(clear, &QPushButton::clicked, model_, &EventLogModel::Clear);
  connect(bridge, &BrokerBridge::brokerEvent, this, [this](const BrokerEvent& e) {
    bool follow = following_;
    model_->Append(e);
    KeepFollowing(follow);
  });
}

bool EventLog::following() const { return following_; }

void EventLog::KeepFollowing(bool follow) {
  following_ = follow;
  if (follow) table_->scrollToBottom();
}

Result<int> EventLog::SaveJsonLines(const QString& path) const {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
    return MakeError(Errc::kSystem, "cannot write " + path.toStdString() + ": " +
                                        file.errorString().toStdString());
  }
  int written = 0;
  for (int row = 0; row < filter_->rowCount(); ++row) {
    int source = filter_->mapToSource(filter_->index(row, 0)).row();
    std::string line = DumpJson(EventToJson(model_->event(source))) + "\n";
    if (file.write(line.data(), static_cast<qint64>(line.size())) !=
        static_cast<qint64>(line.size())) {
      return MakeError(Errc::kSystem, "cannot write " + path.toStdString());
    }
    ++written;
  }
  if (!file.commit()) {
    return MakeError(Errc::kSystem, "cannot write " + path.toStdString() + ": " +
                                        file.errorString().toStdString());
  }
  return written;
}

void EventLog::SaveWithDialog() {
  QString path = QFileDialog::getSaveFileName(this, QStringLiteral("Save events"),
                                              QStringLiteral("sbx-events.jsonl"),
                                              QStringLiteral("JSON lines (*.jsonl *.json)"));
  if (path.isEmpty()) return;
  auto r = SaveJsonLines(path);
  if (!r) {
    QMessageBox::warning(this, QStringLiteral("Save events"),
                         QString::fromStdString(r.error().ToString()));
  }
}

}  // namespace sbx::ui
