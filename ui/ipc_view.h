// The IPC view (a dock, like the event log): for the selected renderer, a live sequence diagram
// of its last seconds of IPC, the broker and the renderer as two lanes and one arrow per message,
// coloured by mechanism, its decoded header on hover, and each mechanism's rate beside it.
// Paused, the diagram stops and scrolls back through the inspector's ring.
//
// IpcModel is the data: a table over the broker core's ring (Broker::IpcRecent), appended as
// messages pass and reset when the renderer's process changes. IpcDiagram paints from the model
// alone, so what it draws is what the model holds.
#pragma once

#include <QAbstractTableModel>
#include <QColor>
#include <QWidget>
#include <deque>

#include "broker/broker.h"

class QLabel;
class QPushButton;
class QScrollBar;
class QTimer;

namespace sbx::ui {

class BrokerBridge;

// The colour of each mechanism's arrows and swatch: pipe (both directions), shared memory,
// queue, signal, pidfd.
QColor MechanismColor(Mechanism m);

class IpcModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { kTime, kDirection, kMechanism, kType, kSeq, kSize, kSummary, kColumnCount };
  static constexpr int kMechanismRole = Qt::UserRole + 1;   // int(Mechanism)
  static constexpr int kTimeNsRole = Qt::UserRole + 2;      // qint64, CLOCK_MONOTONIC
  static constexpr int kToRendererRole = Qt::UserRole + 3;  // bool
  // As many as the core's ring holds: scrolling back reaches as far as the ring does.
  static constexpr size_t kMaxRows = IpcInspector::kRingSize;

  explicit IpcModel(Broker& broker, QObject* parent = nullptr);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation,
                      int role = Qt::DisplayRole) const override;

  // Follows renderer `id` (0: none); the rows start empty.
  void SetRenderer(int id);
  int renderer() const { return id_; }
  // Appends what the ring gained since the last call; a new process of the renderer starts over.
  // The rows of a process that is gone stay: its last seconds are worth seeing.
  void Refresh();
  const IpcRecord& record(int row) const { return rows_[static_cast<size_t>(row)]; }
  // The live process's counters at the last Refresh (empty when none, or the inspector is off).
  const std::optional<IpcSnapshot>& counters() const { return counters_; }
  // When the broker started: the origin of the times shown (and of the scroll bar's values).
  int64_t origin_ns() const { return broker_.start_ns(); }
  // The text a tooltip shows for a row: its decoded header.
  QString Describe(int row) const;

 private:
  Broker& broker_;
  int id_ = 0;
  pid_t pid_ = 0;
  uint64_t recorded_ = 0;  // the ring's total at the last Refresh
  std::deque<IpcRecord> rows_;
  std::optional<IpcSnapshot> counters_;
};

// The sequence diagram: time runs left to right over `span_ms`, ending at the newest message
// (live) or where the person scrolled to (paused); the broker's lane above, the renderer's below.
class IpcDiagram : public QWidget {
  Q_OBJECT

 public:
  explicit IpcDiagram(IpcModel* model, QWidget* parent = nullptr);

  // The right edge of the window, CLOCK_MONOTONIC ns; 0 follows the newest row.
  void SetEnd(int64_t end_ns);
  int64_t span_ns() const { return span_ns_; }
  // How many arrows the last paint drew (a test reads it).
  int painted_arrows() const { return painted_; }
  QSize sizeHint() const override;

 protected:
  void paintEvent(QPaintEvent* event) override;
  bool event(QEvent* event) override;

 private:
  int64_t WindowEnd() const;
  // The row whose arrow is nearest to x (within a few pixels), or -1.
  int RowAt(int x) const;
  int XFor(int64_t t_ns) const;

  IpcModel* model_;
  int64_t end_ns_ = 0;
  int64_t span_ns_ = 2'000'000'000;
  int painted_ = 0;
};

class IpcView : public QWidget {
  Q_OBJECT

 public:
  explicit IpcView(BrokerBridge* bridge, QWidget* parent = nullptr);

  IpcModel* model() const { return model_; }
  IpcDiagram* diagram() const { return diagram_; }
  QPushButton* pause_button() const { return pause_; }
  QScrollBar* scroll_bar() const { return scroll_; }
  void SetRenderer(int id);
  bool paused() const;

 protected:
  void showEvent(QShowEvent* event) override;

 private:
  void Tick();
  void SetPaused(bool paused);
  void UpdateRates();
  void UpdateScrollRange();

  IpcModel* model_;
  IpcDiagram* diagram_;
  QLabel* title_;
  QLabel* rates_;
  QPushButton* pause_;
  QScrollBar* scroll_;
  QTimer* timer_;
};

}  // namespace sbx::ui
