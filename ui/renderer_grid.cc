#include "ui/renderer_grid.h"

#include <QEvent>
#include <QGridLayout>
#include <QGuiApplication>
#include <QLabel>
#include <QResizeEvent>
#include <QScreen>
#include <QScrollBar>
#include <algorithm>
#include <cmath>

#include "ui/broker_bridge.h"
#include "ui/renderer_view.h"

namespace sbx::ui {

namespace {

// Bilinear scaling of a 640x360 RGBA frame into a 380x214 tile costs 0.56 ms on the raster
// engine (which also spreads it over a thread pool), nearest-neighbour 0.12 ms (measured with
// Qt 6.4 here). At 30 fps that is 17 ms of every second per tile; beyond this many tiles the
// grid draws nearest-neighbour so 32 renderers leave the GUI thread time to spare.
constexpr int kMaxSmoothTiles = 8;
constexpr int kMinTileWidth = 260;
constexpr int kCaptionHeight = 30;
constexpr int kSpacing = 8;

int DisplayIntervalMs() {
  const QScreen* screen = QGuiApplication::primaryScreen();
  double hz = screen != nullptr ? screen->refreshRate() : 60.0;
  if (hz < 20.0 || hz > 480.0) hz = 60.0;
  return std::max(2, static_cast<int>(std::lround(1000.0 / hz)));
}

}  // namespace

RendererGrid::RendererGrid(BrokerBridge* bridge, QWidget* parent)
    : QScrollArea(parent), bridge_(bridge) {
  setObjectName(QStringLiteral("renderer-grid"));
  setWidgetResizable(true);
  setFrameShape(QFrame::NoFrame);
  canvas_ = new QWidget;
  canvas_->setObjectName(QStringLiteral("grid-canvas"));
  canvas_->setStyleSheet(QStringLiteral("QWidget#grid-canvas { background: #ffffff; }") +
                         RendererView::StyleSheet());
  layout_ = new QGridLayout(canvas_);
  layout_->setContentsMargins(kSpacing, kSpacing, kSpacing, kSpacing);
  layout_->setSpacing(kSpacing);
  empty_ = new QLabel(QStringLiteral("No renderers.\nNew renderer: Ctrl+T"), canvas_);
  empty_->setAlignment(Qt::AlignCenter);
  empty_->setStyleSheet(QStringLiteral("color: #5f6368; font-size: 16px;"));
  setWidget(canvas_);

  pacer_.setTimerType(Qt::PreciseTimer);
  pacer_.setInterval(DisplayIntervalMs());
  connect(&pacer_, &QTimer::timeout, this, &RendererGrid::Pace);
  connect(bridge_, &BrokerBridge::brokerEvent, this, &RendererGrid::OnBrokerEvent);
  connect(bridge_, &BrokerBridge::frameReady, this, &RendererGrid::OnFrame);

  // After the layout has placed the tiles: geometry settles once control returns to the loop.
  visibility_timer_.setSingleShot(true);
  visibility_timer_.setInterval(0);
  connect(&visibility_timer_, &QTimer::timeout, this, &RendererGrid::UpdateVisibility);
  connect(verticalScrollBar(), &QScrollBar::valueChanged, this,
          &RendererGrid::ScheduleVisibilityUpdate);
  connect(horizontalScrollBar(), &QScrollBar::valueChanged, this,
          &RendererGrid::ScheduleVisibilityUpdate);

  for (const auto& snap : bridge_->broker().List()) AddView(snap.id);
  Relayout(true);
}

void RendererGrid::ScheduleVisibilityUpdate() {
  if (!visibility_timer_.isActive()) visibility_timer_.start();
}

void RendererGrid::UpdateVisibility() {
  // Not shown yet (or closed): nothing is in or out of view.
  if (!isVisible()) return;
  bool minimised = window()->isMinimized();
  // The part of the canvas the viewport shows: the canvas moves up and left as it scrolls.
  QRect port(-canvas_->pos(), viewport()->size());
  for (const auto& [id, view] : views_) {
    bool in_view = !minimised && view->geometry().intersects(port);
    auto it = in_view_.find(id);
    if (it != in_view_.end() && it->second == in_view) continue;
    in_view_[id] = in_view;
    auto v = in_view ? protocol::Visibility::kVisible : protocol::Visibility::kHidden;
    if (auto r = bridge_->broker().SetVisibility(id, v); !r) {
      emit commandFailed(QString::fromStdString(r.error().ToString()));
    }
  }
}

bool RendererGrid::eventFilter(QObject* watched, QEvent* event) {
  if (event->type() == QEvent::Move || event->type() == QEvent::Resize) {
    ScheduleVisibilityUpdate();
  }
  return QScrollArea::eventFilter(watched, event);
}

void RendererGrid::showEvent(QShowEvent* event) {
  QScrollArea::showEvent(event);
  ScheduleVisibilityUpdate();
}

RendererView* RendererGrid::View(int id) const {
  auto it = views_.find(id);
  return it == views_.end() ? nullptr : it->second;
}

std::vector<RendererView*> RendererGrid::views() const {
  std::vector<RendererView*> out;
  for (const auto& [id, view] : views_) out.push_back(view);
  return out;
}

uint64_t RendererGrid::paints() const {
  uint64_t n = 0;
  for (const auto& [id, view] : views_) n += view->frame_widget()->paints();
  return n;
}

uint64_t RendererGrid::torn_reads() const {
  uint64_t n = 0;
  for (const auto& [id, view] : views_) n += view->frame_widget()->torn_reads();
  return n;
}

int RendererGrid::visible_tiles() const {
  int n = 0;
  for (const auto& [id, view] : views_) n += !view->visibleRegion().isEmpty();
  return n;
}

void RendererGrid::RefreshCaptions() {
  for (const auto& [id, view] : views_) view->RefreshCaption();
}

void RendererGrid::SetCurrent(int id) {
  if (id != 0 && views_.find(id) == views_.end()) id = 0;
  if (id == current_) return;
  if (auto* old = View(current_)) old->SetSelected(false);
  current_ = id;
  if (auto* view = View(current_)) {
    view->SetSelected(true);
    ensureWidgetVisible(view, 0, 0);
  }
  emit currentChanged(current_);
}

void RendererGrid::AddView(int id) {
  if (views_.count(id) != 0) return;
  auto* view = new RendererView(bridge_, id, canvas_);
  views_.emplace(id, view);
  connect(view, &RendererView::activated, this, &RendererGrid::SetCurrent);
  connect(view, &RendererView::contextMenuRequested, this, &RendererGrid::contextMenuRequested);
  connect(view, &RendererView::commandFailed, this, &RendererGrid::commandFailed);
  view->installEventFilter(this);
  Relayout(true);
  view->show();
  if (current_ == 0) SetCurrent(id);
}

void RendererGrid::RemoveView(int id) {
  auto it = views_.find(id);
  if (it == views_.end()) return;
  RendererView* view = it->second;
  views_.erase(it);
  in_view_.erase(id);
  layout_->removeWidget(view);
  view->deleteLater();
  if (current_ == id) {
    // Like closing a tab: select the neighbour.
    auto next = views_.lower_bound(id);
    if (next == views_.end() && !views_.empty()) next = std::prev(views_.end());
    current_ = 0;
    SetCurrent(next == views_.end() ? 0 : next->first);
    if (views_.empty()) emit currentChanged(0);
  }
  Relayout(true);
}

void RendererGrid::resizeEvent(QResizeEvent* event) {
  QScrollArea::resizeEvent(event);
  Relayout(false);
  ScheduleVisibilityUpdate();
}

// Picks the column count that gives the largest 16:9 frames in the visible area; when even one
// column of minimum-width tiles does not fit, the area scrolls.
void RendererGrid::Relayout(bool force) {
  int n = static_cast<int>(views_.size());
  empty_->setVisible(n == 0);
  if (n == 0) {
    layout_->addWidget(empty_, 0, 0);
    columns_ = 0;
    return;
  }
  layout_->removeWidget(empty_);
  int width = std::max(1, viewport()->width() - 2 * kSpacing);
  int height = std::max(1, viewport()->height() - 2 * kSpacing);
  int best_columns = 1;
  double best_frame = 0;
  for (int c = 1; c <= n; ++c) {
    int rows = (n + c - 1) / c;
    double tile_w = (width - (c - 1) * kSpacing) / static_cast<double>(c);
    double tile_h = (height - (rows - 1) * kSpacing) / static_cast<double>(rows) - kCaptionHeight;
    double frame_w = std::min(tile_w, tile_h * 16.0 / 9.0);
    if (tile_w < kMinTileWidth && c > 1) break;
    if (frame_w > best_frame + 0.5) {
      best_frame = frame_w;
      best_columns = c;
    }
  }
  for (const auto& [id, view] : views_) view->frame_widget()->set_smooth(n <= kMaxSmoothTiles);
  ScheduleVisibilityUpdate();
  if (!force && best_columns == columns_) return;
  columns_ = best_columns;
  int i = 0;
  for (const auto& [id, view] : views_) {
    layout_->removeWidget(view);
    layout_->addWidget(view, i / columns_, i % columns_);
    ++i;
  }
  for (int c = 0; c < layout_->columnCount(); ++c) layout_->setColumnStretch(c, c < columns_);
}

void RendererGrid::OnBrokerEvent(const BrokerEvent& event) {
  if (event.type == EventType::kClosed) return RemoveView(event.id);
  if (event.type == EventType::kSpawned) AddView(event.id);
  if (auto* view = View(event.id)) view->OnBrokerEvent(event);
}

void RendererGrid::OnFrame(int id, quint64 frame_number) {
  auto* view = View(id);
  if (view == nullptr) return;
  view->OnFrame(frame_number);
  if (!pacer_.isActive()) pacer_.start();
}

void RendererGrid::Pace() {
  bool any = false;
  for (const auto& [id, view] : views_) {
    if (view->TakeDirty()) {
      view->frame_widget()->update();
      ++repaints_;
      any = true;
    }
  }
  // Stop ticking once frames stop coming (everything closed, hung or dead); the next frame
  // starts the pacer again.
  idle_ticks_ = any ? 0 : idle_ticks_ + 1;
  if (idle_ticks_ > 30) pacer_.stop();
}

}  // namespace sbx::ui
