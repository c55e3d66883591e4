// One renderer's tile: a caption (id, page, pid, state) over its live frames, or over the panel
// for the state it is in, as Chrome shows a tab's page, its "Page Unresponsive" dialog, its sad
// tab and its crash-loop page (ui/sad_tab.h). Buttons act through sbx::Broker; the view never
// signals a process itself.
#pragma once

#include <QFrame>
#include <QImage>
#include <QPointer>
#include <QWidget>
#include <cstdint>
#include <vector>

#include "broker/broker.h"

class QLabel;
class QStackedWidget;
class QTimer;

namespace sbx::ui {

class BrokerBridge;
class RecoveryNote;
class SadTab;

// Paints the renderer's front buffer straight from shared memory.
class FrameWidget : public QWidget {
  Q_OBJECT

 public:
  FrameWidget(const Broker& broker, int id, QWidget* parent = nullptr);

  // Keeps a private grey copy of the current frame and shows it instead of live frames.
  void Freeze();
  void Thaw();
  bool frozen() const { return !frozen_.isNull(); }
  // Bilinear scaling, or nearest-neighbour (the grid's choice; see RendererGrid::Relayout).
  void set_smooth(bool smooth) { smooth_ = smooth; }

  // The process whose frames are being shown; set by the view on each `spawned`.
  void set_pid(pid_t pid) { pid_ = pid; }
  // The process whose frame was drawn last (0: none yet).
  pid_t painted_pid() const { return painted_pid_; }
  uint64_t frames_painted() const { return frames_painted_; }
  uint64_t torn_reads() const { return torn_reads_; }
  uint64_t paints() const { return paints_; }
  // The frame number last drawn from shared memory, and whether any was.
  uint64_t last_frame() const { return last_frame_; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  QRect FrameRect(const FrameGeometry& g) const;
  bool PaintLive(class QPainter& p);
  void CountFrame(uint64_t number);

  const Broker& broker_;
  const int id_;
  QImage frozen_;
  std::vector<uint8_t> copy_;  // only for frames the seqlock says were torn
  pid_t pid_ = 0;
  pid_t painted_pid_ = 0;
  bool smooth_ = true;
  uint64_t last_frame_ = 0;
  uint64_t frames_painted_ = 0;
  uint64_t torn_reads_ = 0;
  uint64_t paints_ = 0;
};

class RendererView : public QFrame {
  Q_OBJECT

 public:
  enum class Mode { kLoading, kLive, kUnresponsive, kSadTab, kFailed };
  Q_ENUM(Mode)

  RendererView(BrokerBridge* bridge, int id, QWidget* parent = nullptr);
  // The tiles' look; the grid sets it once on their parent rather than on each tile, since
  // every widget with its own style sheet gets its own style object.
  static QString StyleSheet();

  int id() const { return id_; }
  Mode mode() const { return mode_; }
  // The process whose frames this view shows or waits for.
  pid_t pid() const { return pid_; }
  bool unresponsive_bar_visible() const;
  QString unresponsive_text() const;
  QString caption_text() const;
  // The note a restarted renderer shows over its first frames ("Recovered from ... in N ms").
  bool recovery_note_visible() const;
  QString recovery_text() const;
  FrameWidget* frame_widget() const { return frame_; }
  void SetSelected(bool selected);
  bool selected() const { return selected_; }

  // Fed by the grid, which routes each renderer's events to its view.
  void OnBrokerEvent(const BrokerEvent& event);
  void OnFrame(uint64_t frame_number);
  // The pacer asks once per display refresh whether a new frame is waiting.
  bool TakeDirty();
  // Re-reads the caption from the broker: the page changes with no event (navigate).
  void RefreshCaption();

 signals:
  void activated(int id);
  void contextMenuRequested(int id, const QPoint& global_pos);
  void commandFailed(const QString& what);
  // Every transition, even one that lasts less than a frame (a sad tab whose replacement draws
  // at once), so tests and the curious can see it happened.
  void modeChanged(int id, sbx::ui::RendererView::Mode mode);

 protected:
  void mousePressEvent(QMouseEvent* event) override;
  void contextMenuEvent(QContextMenuEvent* event) override;

 private:
  void SetMode(Mode mode);
  void SyncFromSnapshot();
  void ShowSadTab(const ExitInfo& exit);
  void ShowUnresponsive();
  void OnReady(const BrokerEvent& event);
  void Report(const Result<void>& r, const char* what);

  BrokerBridge* bridge_;
  const int id_;
  Mode mode_ = Mode::kLoading;
  pid_t pid_ = 0;
  bool dirty_ = false;
  bool selected_ = false;
  // The last death (its t_ms on the broker's clock, and how), and whether the broker is
  // restarting the renderer after it: the first frame then shows the recovery note.
  int64_t death_t_ms_ = 0;
  ExitInfo death_;
  bool recovering_ = false;

  QLabel* caption_;
  QString caption_html_;
  QStackedWidget* stack_;
  FrameWidget* frame_;
  RecoveryNote* recovery_;
  // The "Page unresponsive" bar over the frozen frame; its age is re-read while it shows.
  QFrame* bar_;
  QLabel* bar_text_;
  QTimer* bar_tick_;
  QTimer* wait_timer_;  // Wait: hide the bar for one hang timeout, then ask again
  SadTab* sad_;
};

}  // namespace sbx::ui
