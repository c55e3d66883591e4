#include "ui/renderer_view.h"

#include <QContextMenuEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QPushButton>
#include <QStackedWidget>
#include <QStyle>
#include <QTimer>
#include <QVBoxLayout>

#include "ipc/posix.h"
#include "ui/broker_bridge.h"
#include "ui/format.h"
#include "ui/sad_tab.h"

namespace sbx::ui {

namespace {

const QColor kFrameBackground(0x20, 0x21, 0x24);
constexpr int kCaptionMaxPage = 44;

QString Elide(const std::string& s) {
  QString q = ToQString(s);
  if (q.size() <= kCaptionMaxPage) return q;
  return q.left(kCaptionMaxPage - 1) + QChar(0x2026);
}

}  // namespace

// --- FrameWidget -----------------------------------------------------------------------------

FrameWidget::FrameWidget(const Broker& broker, int id, QWidget* parent)
    : QWidget(parent), broker_(broker), id_(id) {
  setAttribute(Qt::WA_OpaquePaintEvent);
  setMinimumSize(160, 90);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

QRect FrameWidget::FrameRect(const FrameGeometry& g) const {
  QSize fitted = QSize(g.width, g.height).scaled(size(), Qt::KeepAspectRatio);
  return QRect(QPoint((width() - fitted.width()) / 2, (height() - fitted.height()) / 2), fitted);
}

void FrameWidget::Freeze() {
  const FrameReader* reader = broker_.Frames(id_);
  if (reader == nullptr) return;
  const FrameGeometry& g = reader->geometry();
  std::vector<uint8_t> pixels(g.frame_bytes());
  if (!reader->CopyFrame(pixels)) return;
  QImage colour(pixels.data(), g.width, g.height, static_cast<qsizetype>(g.stride()),
                QImage::Format_RGBX8888);
  // Greyed like Chrome's hung page: desaturated and faded towards white.
  QImage grey =
      colour.convertToFormat(QImage::Format_Grayscale8).convertToFormat(QImage::Format_RGB32);
  QPainter p(&grey);
  p.fillRect(grey.rect(), QColor(255, 255, 255, 110));
  p.end();
  frozen_ = std::move(grey);
  update();
}

void FrameWidget::Thaw() {
  frozen_ = QImage();
  update();
}

void FrameWidget::paintEvent(QPaintEvent* /*event*/) {
  ++paints_;
  QPainter p(this);
  p.fillRect(rect(), kFrameBackground);
  p.setRenderHint(QPainter::SmoothPixmapTransform, smooth_);
  if (!frozen_.isNull()) {
    p.drawImage(FrameRect(FrameGeometry{frozen_.width(), frozen_.height()}), frozen_);
    return;
  }
  if (!PaintLive(p)) {
    p.setPen(QColor(0x9a, 0xa0, 0xa6));
    p.drawText(rect(), Qt::AlignCenter, QStringLiteral("Waiting for the first frame\u2026"));
  }
}

void FrameWidget::CountFrame(uint64_t number) {
  if (painted_pid_ != pid_ || number != last_frame_) ++frames_painted_;
  painted_pid_ = pid_;
  last_frame_ = number;
}

// The frame is drawn straight from the mapped front buffer, with no copy: a QImage over shared
// memory, validated afterwards with the buffer's seqlock (FrameReader::BeginRead/EndRead). The
// renderer only ever writes the buffer that is not in front, so the front one changes only if it
// publishes twice while we paint (a tile paints in well under a millisecond; a frame at 240 fps
// is 4 ms). When it did, the drawn frame may be torn and is drawn again from a private copy (or
// covered, if no copy holds still either); torn_reads() counts how often that happens. The
// mapping belongs to the broker and is replaced at each restart, so the QImage lives only inside
// this call.
bool FrameWidget::PaintLive(QPainter& p) {
  const FrameReader* reader = broker_.Frames(id_);
  if (reader == nullptr || reader->published() == 0) return false;
  const FrameGeometry& g = reader->geometry();
  QRect target = FrameRect(g);
  bool drawn = false;
  if (auto view = reader->BeginRead()) {
    // RGBX: the bytes are R, G, B, A as the protocol's RGBA8888, but the renderer's alpha is
    // ignored, so an untrusted alpha cannot make a tile translucent and Qt skips blending.
    const QImage shared(view->pixels, g.width, g.height, static_cast<qsizetype>(g.stride()),
                        QImage::Format_RGBX8888);
    p.drawImage(target, shared);
    drawn = true;
    if (reader->EndRead(*view)) {
      CountFrame(view->frame_number);
      return true;
    }
  }
  ++torn_reads_;
  copy_.resize(g.frame_bytes());
  auto copied = reader->CopyFrame(copy_);
  if (!copied) {
    // Torn again on every retry (a writer publishing faster than a copy, a hostile one), or a
    // front index that is not a buffer. Cover what may be a torn image; the next frame-ready
    // paints again.
    if (drawn) p.fillRect(target, Qt::black);
    return drawn;
  }
  const QImage copy(copy_.data(), g.width, g.height, static_cast<qsizetype>(g.stride()),
                    QImage::Format_RGBX8888);
  p.drawImage(target, copy);
  CountFrame(copied->frame_number);
  return true;
}

// --- RendererView ----------------------------------------------------------------------------

QString RendererView::StyleSheet() {
  return QStringLiteral(
      "sbx--ui--RendererView { background: #dee1e6; border-radius: 6px; }"
      "sbx--ui--RendererView[selected=\"true\"] { background: #1a73e8; }"
      "QLabel#caption { background: #f1f3f4; border-top-left-radius: 5px;"
      "  border-top-right-radius: 5px; color: #202124; }"
      "QFrame#unresponsive-bar { background: #fef7e0; border-bottom: 1px solid #f9ab00; }"
      "QLabel#recovery-note { background: #e6f4ea; border-bottom: 1px solid #1e8e3e; }"
      "QWidget#sad-tab { background: #ffffff; }"
      "QLabel#sad-title { font-size: 15px; font-weight: 600; color: #202124; }"
      "QLabel { color: #3c4043; }");
}

RendererView::RendererView(BrokerBridge* bridge, int id, QWidget* parent)
    : QFrame(parent), bridge_(bridge), id_(id) {
  setObjectName(QStringLiteral("renderer-view-%1").arg(id));
  setFrameShape(QFrame::NoFrame);
  setMinimumSize(240, 170);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  setAttribute(Qt::WA_StyledBackground);
  setFocusPolicy(Qt::ClickFocus);

  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(2, 2, 2, 2);
  outer->setSpacing(0);

  caption_ = new QLabel(this);
  caption_->setObjectName(QStringLiteral("caption"));
  caption_->setTextFormat(Qt::RichText);
  caption_->setFixedHeight(26);
  caption_->setContentsMargins(8, 0, 8, 0);
  outer->addWidget(caption_);

  stack_ = new QStackedWidget(this);
  outer->addWidget(stack_, 1);

  // Page 0: the frame, with the unresponsive bar above it.
  auto* live = new QWidget(stack_);
  auto* live_layout = new QVBoxLayout(live);
  live_layout->setContentsMargins(0, 0, 0, 0);
  live_layout->setSpacing(0);
  bar_ = new QFrame(live);
  bar_->setObjectName(QStringLiteral("unresponsive-bar"));
  auto* bar_layout = new QHBoxLayout(bar_);
  bar_layout->setContentsMargins(8, 4, 8, 4);
  bar_text_ = new QLabel(bar_);
  bar_text_->setWordWrap(true);
  auto* wait = new QPushButton(QStringLiteral("Wait"), bar_);
  wait->setObjectName(QStringLiteral("unresponsive-wait"));
  auto* kill = new QPushButton(QStringLiteral("Kill"), bar_);
  kill->setObjectName(QStringLiteral("unresponsive-kill"));
  kill->setToolTip(QStringLiteral("SIGKILL through the broker; the exit is classified `hung`"));
  bar_layout->addWidget(bar_text_, 1);
  bar_layout->addWidget(wait);
  bar_layout->addWidget(kill);
  bar_->hide();
  recovery_ = new RecoveryNote(live);
  frame_ = new FrameWidget(bridge_->broker(), id_, live);
  live_layout->addWidget(bar_);
  live_layout->addWidget(recovery_);
  live_layout->addWidget(frame_, 1);
  stack_->addWidget(live);

  // Page 1: the sad tab, also the crash-loop page.
  sad_ = new SadTab(stack_);
  stack_->addWidget(sad_);

  connect(wait, &QPushButton::clicked, this, [this] {
    bar_->hide();
    // Chrome's Wait: ask again if it is still unresponsive one hang timeout from now.
    wait_timer_->start(bridge_->broker().options().hang_timeout_ms);
  });
  connect(kill, &QPushButton::clicked, this,
          [this] { Report(bridge_->broker().KillHung(id_), "kill"); });
  connect(sad_, &SadTab::reloadClicked, this,
          [this] { Report(bridge_->broker().Reload(id_), "reload"); });
  wait_timer_ = new QTimer(this);
  wait_timer_->setSingleShot(true);
  connect(wait_timer_, &QTimer::timeout, this, [this] {
    if (mode_ == Mode::kUnresponsive) bar_->show();
  });
  // The watchdog says "unresponsive" once; how long it has been silent keeps growing.
  bar_tick_ = new QTimer(this);
  bar_tick_->setInterval(500);
  connect(bar_tick_, &QTimer::timeout, this, &RendererView::ShowUnresponsive);

  SetSelected(false);
  SyncFromSnapshot();
}

// A view made after its renderer started (a window opened on a busy broker) catches up here.
void RendererView::SyncFromSnapshot() {
  auto snap = bridge_->Snapshot(id_);
  if (!snap) return RefreshCaption();
  pid_ = snap->pid;
  frame_->set_pid(pid_);
  switch (snap->state) {
    case RendererState::kRunning:
      return SetMode(Mode::kLive);
    case RendererState::kUnresponsive:
      return SetMode(Mode::kUnresponsive);
    case RendererState::kExited:
    case RendererState::kRestarting:
      return ShowSadTab(snap->last_exit);
    case RendererState::kFailed:
      sad_->ShowCrashLoop(id_, QStringLiteral("it exits again and again"));
      return SetMode(Mode::kFailed);
    default:
      return SetMode(Mode::kLoading);
  }
}

bool RendererView::unresponsive_bar_visible() const {
  return mode_ == Mode::kUnresponsive && !bar_->isHidden();
}

QString RendererView::unresponsive_text() const { return bar_text_->text(); }

QString RendererView::caption_text() const { return caption_->text(); }

bool RendererView::recovery_note_visible() const { return !recovery_->isHidden(); }

QString RendererView::recovery_text() const { return recovery_->text(); }

void RendererView::SetSelected(bool selected) {
  selected_ = selected;
  setProperty("selected", selected);
  style()->unpolish(this);
  style()->polish(this);
}

void RendererView::Report(const Result<void>& r, const char* what) {
  if (!r) {
    emit commandFailed(
        QStringLiteral("renderer %1: %2: %3")
            .arg(id_)
            .arg(QString::fromLatin1(what), QString::fromStdString(r.error().ToString())));
  }
}

void RendererView::SetMode(Mode mode) {
  bool changed = mode != mode_;
  mode_ = mode;
  switch (mode) {
    case Mode::kLoading:
    case Mode::kLive:
      frame_->Thaw();
      bar_->hide();
      bar_tick_->stop();
      wait_timer_->stop();
      stack_->setCurrentIndex(0);
      break;
    case Mode::kUnresponsive:
      frame_->Freeze();
      ShowUnresponsive();
      bar_->show();
      bar_tick_->start();
      stack_->setCurrentIndex(0);
      break;
    case Mode::kSadTab:
    case Mode::kFailed:
      bar_tick_->stop();
      recovery_->hide();
      stack_->setCurrentIndex(1);
      break;
  }
  RefreshCaption();
  if (changed) emit modeChanged(id_, mode);
}

void RendererView::RefreshCaption() {
  auto snap = bridge_->Snapshot(id_);
  RendererState state = snap ? snap->state : RendererState::kClosed;
  QString colour = StateColor(state).name();
  QString page = snap ? Elide(snap->page).toHtmlEscaped() : QString();
  QString pid = pid_ > 0 ? QStringLiteral("pid %1").arg(pid_) : QStringLiteral("no process");
  QString text = QStringLiteral(
                     "<span style='color:%1'>&#9679;</span>&nbsp;<b>#%2</b>&nbsp;&nbsp;%3"
                     "&nbsp;&nbsp;<span style='color:#5f6368'>%4</span>&nbsp;&nbsp;"
                     "<span style='color:%1'>%5</span>")
                     .arg(colour)
                     .arg(id_)
                     .arg(page, pid, ToQString(RendererStateName(state)));
  if (snap && snap->heartbeat_fallback) {
    text += QStringLiteral("&nbsp;&nbsp;<span style='color:#e37400'>heartbeats on pipe</span>");
  }
  // Called every second for every tile: an unchanged caption must not cost a relayout.
  if (text == caption_html_) return;
  caption_html_ = text;
  caption_->setText(text);
  caption_->setToolTip(snap ? ToQString(snap->page) : QString());
}

void RendererView::ShowUnresponsive() {
  auto snap = bridge_->Snapshot(id_);
  // Silent since its last heartbeat, or since it started if it never sent one.
  int64_t silent_ms = !snap                         ? -1
                      : snap->heartbeat_age_ms >= 0 ? snap->heartbeat_age_ms
                                                    : snap->uptime_ms;
  bar_text_->setText(QStringLiteral("<b>Page unresponsive.</b> Renderer #%1 (pid %2): no "
                                    "heartbeat for %3. Wait for it, or kill it.")
                         .arg(id_)
                         .arg(pid_)
                         .arg(DurationText(silent_ms)));
}

void RendererView::ShowSadTab(const ExitInfo& exit) {
  auto snap = bridge_->Snapshot(id_);
  sad_->ShowExit(id_, exit, snap ? snap->uptime_ms : -1);
  SetMode(Mode::kSadTab);
}

void RendererView::OnReady(const BrokerEvent& event) {
  SetMode(Mode::kLive);
  dirty_ = true;
  if (!recovering_) return;
  recovering_ = false;
  // Both times are on the broker's clock: from the death it saw to the first frame it saw.
  recovery_->Show(death_, event.t_ms - death_t_ms_, event.pid);
}

void RendererView::OnBrokerEvent(const BrokerEvent& event) {
  switch (event.type) {
    case EventType::kSpawned:
      pid_ = event.pid;
      frame_->set_pid(event.pid);
      if (mode_ == Mode::kSadTab || mode_ == Mode::kFailed) {
        // Stay on the sad tab until the replacement draws its first frame.
        sad_->ShowProgress(QStringLiteral("Starting a new renderer (pid %1)\u2026").arg(event.pid));
        if (mode_ == Mode::kFailed) SetMode(Mode::kSadTab);
      } else {
        SetMode(Mode::kLoading);
      }
      break;
    case EventType::kReady:
      OnReady(event);
      break;
    case EventType::kUnresponsive:
      SetMode(Mode::kUnresponsive);
      break;
    case EventType::kResponsive: {
      auto snap = bridge_->Snapshot(id_);
      SetMode(snap && snap->frames > 0 ? Mode::kLive : Mode::kLoading);
      break;
    }
    case EventType::kExited:
      recovering_ = false;
      death_t_ms_ = event.t_ms;
      death_ = event.exit.value_or(ExitInfo{});
      ShowSadTab(death_);
      break;
    case EventType::kRestarting: {
      // Only a restart the broker made on its own counts as a recovery; a Reload after a
      // person read the sad tab would measure the person.
      recovering_ = true;
      sad_->ShowProgress(
          event.delay_ms > 0
              ? QStringLiteral("Restarting in %1\u2026").arg(DurationText(event.delay_ms))
              : QStringLiteral("Restarting\u2026"));
      break;
    }
    case EventType::kFailed:
      recovering_ = false;
      sad_->ShowCrashLoop(id_, ToQString(event.detail));
      SetMode(Mode::kFailed);
      break;
    default:  // closed (the grid drops the view), drill reports (the event log shows them)
      break;
  }
  RefreshCaption();
}

void RendererView::OnFrame(uint64_t /*frame_number*/) {
  if (mode_ == Mode::kLive) dirty_ = true;
}

bool RendererView::TakeDirty() { return std::exchange(dirty_, false); }

void RendererView::mousePressEvent(QMouseEvent* event) {
  emit activated(id_);
  QFrame::mousePressEvent(event);
}

void RendererView::contextMenuEvent(QContextMenuEvent* event) {
  emit activated(id_);
  emit contextMenuRequested(id_, event->globalPos());
}

}  // namespace sbx::ui
