// The event log pane: every broker event with its time, coloured by kind, filterable by kind
// and text, and savable as JSON lines in exactly the form `sbx-broker --json` prints.
#pragma once

#include <QAbstractTableModel>
#include <QDateTime>
#include <QSortFilterProxyModel>
#include <QWidget>
#include <deque>
#include <optional>

#include "broker/broker.h"

class QComboBox;
class QLineEdit;
class QTableView;

namespace sbx::ui {

class BrokerBridge;

class EventLogModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { kTime, kBrokerTime, kId, kPid, kEvent, kDetails, kColumnCount };
  static constexpr int kTypeRole = Qt::UserRole + 1;
  // What the text filter matches: the event's JSON line (page, status, signal, detail, ...)
  // and its wall-clock time.
  static constexpr int kSearchRole = Qt::UserRole + 2;
  // Old entries are dropped beyond this, so a crash-looping renderer cannot grow us unbounded.
  static constexpr size_t kMaxEntries = 10'000;

  explicit EventLogModel(QObject* parent = nullptr);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation,
                      int role = Qt::DisplayRole) const override;

  void Append(const BrokerEvent& event);
  void Clear();
  const BrokerEvent& event(int row) const { return entries_[static_cast<size_t>(row)].event; }

 private:
  struct Entry {
    QDateTime wall;
    BrokerEvent event;
    QString details;
    QString search;
  };
  std::deque<Entry> entries_;
};

class EventLogFilter : public QSortFilterProxyModel {
  Q_OBJECT

 public:
  using QSortFilterProxyModel::QSortFilterProxyModel;
  void SetType(std::optional<EventType> type);
  void SetText(const QString& text);

 protected:
  bool filterAcceptsRow(int source_row, const QModelIndex& source_parent) const override;

 private:
  std::optional<EventType> type_;
  QString text_;
};

class EventLog : public QWidget {
  Q_OBJECT

 public:
  explicit EventLog(BrokerBridge* bridge, QWidget* parent = nullptr);

  EventLogModel* model() const { return model_; }
  EventLogFilter* filter() const { return filter_; }
  QLineEdit* filter_edit() const { return text_; }
  QComboBox* type_combo() const { return type_; }
  QTableView* table() const { return table_; }
  // Whether new events scroll into view (true until the person scrolls up).
  bool following() const;
  // Writes the events the filter shows, one JSON object per line. Returns how many, or why not.
  Result<int> SaveJsonLines(const QString& path) const;

 private:
  void SaveWithDialog();
  void KeepFollowing(bool follow);

  EventLogModel* model_;
  EventLogFilter* filter_;
  QTableView* table_;
  QLineEdit* text_;
  QComboBox* type_;
  bool following_ = true;
};

}  // namespace sbx::ui
