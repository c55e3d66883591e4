// The central area: one RendererView per renderer id in a grid sized to the window, like a
// browser window's tiles. It routes each renderer's events and frames to its view and repaints
// views with new frames once per display refresh, however many frames arrived in between.
#pragma once

#include <QPoint>
#include <QScrollArea>
#include <QTimer>
#include <map>
#include <vector>

#include "broker/broker.h"

class QGridLayout;
class QLabel;

namespace sbx::ui {

class BrokerBridge;
class RendererView;

class RendererGrid : public QScrollArea {
  Q_OBJECT

 public:
  explicit RendererGrid(BrokerBridge* bridge, QWidget* parent = nullptr);

  RendererView* View(int id) const;
  std::vector<RendererView*> views() const;
  int current_id() const { return current_; }
  void SetCurrent(int id);
  // update() calls for new frames; paints() and torn_reads() sum what the tiles really drew
  // (a tile scrolled out of view is asked but not painted).
  uint64_t repaints() const { return repaints_; }
  uint64_t paints() const;
  uint64_t torn_reads() const;
  int visible_tiles() const;
  // Re-reads every tile's caption (a navigate changes the page without an event).
  void RefreshCaptions();
  // Makes a renderer hidden when its tile leaves the scroll area's view or the window is
  // minimised, and visible when it comes back, as Chrome does with occluded and background tabs
  // (Broker::SetVisibility). Only a change of a tile's own view is told: a `visibility` command
  // from sbx-ctl holds until the tile next goes out of view or comes back. Runs on its own after
  // a scroll, a resize or a new layout; the window calls it when it is minimised or restored.
  void UpdateVisibility();

 signals:
  void currentChanged(int id);
  void contextMenuRequested(int id, const QPoint& global_pos);
  void commandFailed(const QString& what);

 protected:
  void resizeEvent(QResizeEvent* event) override;
  void showEvent(QShowEvent* event) override;
  // A tile that moves or changes size may cross the viewport's edge: its visibility is due.
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void OnBrokerEvent(const BrokerEvent& event);
  void OnFrame(int id, quint64 frame_number);
  void AddView(int id);
  void RemoveView(int id);
  void Relayout(bool force);
  void Pace();
  void ScheduleVisibilityUpdate();

  BrokerBridge* bridge_;
  QWidget* canvas_;
  QGridLayout* layout_;
  QLabel* empty_;
  std::map<int, RendererView*> views_;
  int columns_ = 0;
  int current_ = 0;
  QTimer pacer_;
  int idle_ticks_ = 0;
  uint64_t repaints_ = 0;
  QTimer visibility_timer_;      // coalesces the triggers of UpdateVisibility into one pass
  std::map<int, bool> in_view_;  // what each tile was when last told
};

}  // namespace sbx::ui
