#include "ui/renderer_view.h"

#include <QContextMenuEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QPushButton>
#include <QStackedWidget>
#include <QStyle>
#include <QTimer>
#include <QVBoxLayout>
#include <atomic>

#include "ipc/posix.h"
#include "ui/broker_bridge.h"
#include "ui/format.h"

namespace sbx::ui {

namespace {

const QColor kFrameBackground(0x20, 0x21, 0x24);
constexpr int kCaptionMaxPage = 44;

QPixmap SadFace(const QColor& color) {
  QPixmap pm(72, 72);
  pm.fill(Qt::transparent);
  QPainter p(&pm);
  p.setRenderHint(QPainter::Antialiasing);
  QPen pen(color, 4, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin);
  p.setPen(pen);
  // A page with a folded corner, as Chrome's sad tab draws it.
  QPainterPath page;
  page.moveTo(10, 4);
  page.lineTo(48, 4);
  page.lineTo(62, 18);
  page.lineTo(62, 68);
  page.lineTo(10, 68);
  page.closeSubpath();
  p.drawPath(page);
  p.drawLine(QPointF(24, 30), QPointF(30, 36));
  p.drawLine(QPointF(30, 30), QPointF(24, 36));
  p.drawLine(QPointF(42, 30), QPointF(48, 36));
  p.drawLine(QPointF(48, 30), QPointF(42, 36));
  p.drawArc(QRectF(24, 48, 24, 14), 30 * 16, 120 * 16);
  return pm;
}

QPixmap LoopIcon(const QColor& color) {
  QPixmap pm(72, 72);
  pm.fill(Qt::transparent);
  QPainter p(&pm);
  p.setRenderHint(QPainter::Antialiasing);
  p.setPen(QPen(color, 5, Qt::SolidLine, Qt::RoundCap));
  p.drawArc(QRectF(12, 12, 48, 48), 60 * 16, 300 * 16);
  p.setBrush(color);
  p.setPen(Qt::NoPen);
  QPolygonF head;
  head << QPointF(40, 4) << QPointF(52, 14) << QPointF(38, 22);
  p.drawPolygon(head);
  p.setPen(QPen(color, 5, Qt::SolidLine, Qt::RoundCap));
  p.drawLine(QPointF(36, 30), QPointF(36, 40));
  p.drawPoint(QPointF(36, 48));
  return pm;
}

QString Elide(const std::string& s) {
  QString q = ToQString(s);
  if (q.size() <= kCaptionMaxPage) return q;
  return q.left(kCaptionMaxPage - 1) + QChar(0x2026);
}

}  // namespace

// --- Spinner ---------------------------------------------------------------------------------

Spinner::Spinner(QWidget* parent) : QWidget(parent), timer_(new QTimer(this)) {
  setFixedSize(sizeHint());
  connect(timer_, &QTimer::timeout, this, [this] {
    angle_ = (angle_ + 30) % 360;
    update();
  });
}

void Spinner::paintEvent(QPaintEvent* /*event*/) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  p.setPen(QPen(QColor(0x1a, 0x73, 0xe8), 3, Qt::SolidLine, Qt::RoundCap));
  p.drawArc(QRectF(3, 3, width() - 6, height() - 6), -angle_ * 16, 270 * 16);
}

void Spinner::showEvent(QShowEvent* /*event*/) { timer_->start(80); }
void Spinner::hideEvent(QHideEvent* /*event*/) { timer_->stop(); }

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
// memory, checked with the buffer's seqlock like FrameReader::CopyFrame. The renderer only ever
// writes the buffer that is not in front, so the front one changes only if it publishes twice
// while we paint (a tile paints in well under a millisecond; a frame at 240 fps is 4 ms). When
// the counter did move, the drawn frame may be torn and is drawn again from a private copy (or
// covered, if no copy holds still either); torn_reads() counts how often that happens. The mapping
// belongs to the broker and is replaced at each restart, so the QImage lives only inside this call.
bool FrameWidget::PaintLive(QPainter& p) {
  const FrameReader* reader = broker_.Frames(id_);
  if (reader == nullptr) return false;
  const FrameGeometry& g = reader->geometry();
  const SharedFrameHeader* h = reader->header();
  if (h->published.load(std::memory_order_acquire) == 0) return false;
  uint32_t front = h->front.load(std::memory_order_acquire);
  if (front > 1) return false;  // a hostile writer; the broker decides its fate, we draw nothing
  QRect target = FrameRect(g);
  bool drawn = false;
  uint64_t s1 = h->seq[front].load(std::memory_order_acquire);
  if ((s1 & 1) == 0) {
    uint64_t number = h->frame_number[front].load(std::memory_order_relaxed);
    // RGBX: the bytes are R, G, B, A as the protocol's RGBA8888, but the renderer's alpha is
    // ignored, so an untrusted alpha cannot make a tile translucent and Qt skips blending.
    const QImage shared(reader->buffer(static_cast<int>(front)), g.width, g.height,
                        static_cast<qsizetype>(g.stride()), QImage::Format_RGBX8888);
    p.drawImage(target, shared);
    drawn = true;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (h->seq[front].load(std::memory_order_relaxed) == s1) {
      CountFrame(number);
      return true;
    }
  }
  ++torn_reads_;
  copy_.resize(g.frame_bytes());
  auto copied = reader->CopyFrame(copy_);
  if (!copied) {
    // Torn again on every retry: a writer publishing faster than a copy (a hostile one). Cover
    // what may be a torn image; the next frame-ready paints again.
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
      "QWidget#sad-tab, QWidget#crash-loop { background: #ffffff; }"
      "QLabel#sad-title, QLabel#failed-title { font-size: 15px; font-weight: 600;"
      "  color: #202124; }"
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
  frame_ = new FrameWidget(bridge_->broker(), id_, live);
  live_layout->addWidget(bar_);
  live_layout->addWidget(frame_, 1);
  stack_->addWidget(live);

  // Page 1: the sad tab.
  sad_ = new QWidget(stack_);
  sad_->setObjectName(QStringLiteral("sad-tab"));
  auto* sad_layout = new QVBoxLayout(sad_);
  sad_layout->addStretch(1);
  auto* icon = new QLabel(sad_);
  icon->setPixmap(SadFace(QColor(0x5f, 0x63, 0x68)));
  icon->setAlignment(Qt::AlignCenter);
  sad_layout->addWidget(icon);
  sad_title_ = new QLabel(sad_);
  sad_title_->setObjectName(QStringLiteral("sad-title"));
  sad_title_->setAlignment(Qt::AlignCenter);
  sad_title_->setWordWrap(true);
  sad_layout->addWidget(sad_title_);
  sad_details_ = new QLabel(sad_);
  sad_details_->setObjectName(QStringLiteral("sad-details"));
  sad_details_->setAlignment(Qt::AlignCenter);
  sad_details_->setWordWrap(true);
  sad_layout->addWidget(sad_details_);
  sad_restart_row_ = new QWidget(sad_);
  auto* restart_layout = new QHBoxLayout(sad_restart_row_);
  restart_layout->setContentsMargins(0, 0, 0, 0);
  restart_layout->addStretch(1);
  restart_layout->addWidget(new Spinner(sad_restart_row_));
  sad_restart_text_ = new QLabel(sad_restart_row_);
  sad_restart_text_->setObjectName(QStringLiteral("sad-restart"));
  restart_layout->addWidget(sad_restart_text_);
  restart_layout->addStretch(1);
  sad_layout->addWidget(sad_restart_row_);
  auto* sad_reload = new QPushButton(QStringLiteral("Reload"), sad_);
  sad_reload->setObjectName(QStringLiteral("sad-reload"));
  auto* sad_buttons = new QHBoxLayout;
  sad_buttons->addStretch(1);
  sad_buttons->addWidget(sad_reload);
  sad_buttons->addStretch(1);
  sad_layout->addLayout(sad_buttons);
  sad_layout->addStretch(1);
  stack_->addWidget(sad_);

  // Page 2: the crash loop.
  failed_ = new QWidget(stack_);
  failed_->setObjectName(QStringLiteral("crash-loop"));
  auto* failed_layout = new QVBoxLayout(failed_);
  failed_layout->addStretch(1);
  auto* loop_icon = new QLabel(failed_);
  loop_icon->setPixmap(LoopIcon(QColor(0x8b, 0x00, 0x00)));
  loop_icon->setAlignment(Qt::AlignCenter);
  failed_layout->addWidget(loop_icon);
  auto* failed_title = new QLabel(QStringLiteral("This renderer keeps crashing"), failed_);
  failed_title->setObjectName(QStringLiteral("failed-title"));
  failed_title->setAlignment(Qt::AlignCenter);
  failed_layout->addWidget(failed_title);
  failed_details_ = new QLabel(failed_);
  failed_details_->setAlignment(Qt::AlignCenter);
  failed_details_->setWordWrap(true);
  failed_layout->addWidget(failed_details_);
  auto* failed_reload = new QPushButton(QStringLiteral("Reload"), failed_);
  failed_reload->setObjectName(QStringLiteral("failed-reload"));
  auto* failed_buttons = new QHBoxLayout;
  failed_buttons->addStretch(1);
  failed_buttons->addWidget(failed_reload);
  failed_buttons->addStretch(1);
  failed_layout->addLayout(failed_buttons);
  failed_layout->addStretch(1);
  stack_->addWidget(failed_);

  connect(wait, &QPushButton::clicked, this, [this] {
    bar_->hide();
    // Chrome's Wait: ask again if it is still unresponsive one hang timeout from now.
    wait_timer_->start(bridge_->broker().options().hang_timeout_ms);
  });
  connect(kill, &QPushButton::clicked, this,
          [this] { Report(bridge_->broker().KillHung(id_), "kill"); });
  auto reload = [this] { Report(bridge_->broker().Reload(id_), "reload"); };
  connect(sad_reload, &QPushButton::clicked, this, reload);
  connect(failed_reload, &QPushButton::clicked, this, reload);
  wait_timer_ = new QTimer(this);
  wait_timer_->setSingleShot(true);
  connect(wait_timer_, &QTimer::timeout, this, [this] {
    if (mode_ == Mode::kUnresponsive) bar_->show();
  });

  SetSelected(false);
  SyncFromSnapshot();
}

// A view made after its renderer started (a window opened on a busy broker) catches up here.
void RendererView::SyncFromSnapshot() {
  auto snap = bridge_->broker().Get(id_);
  if (!snap) return UpdateCaption();
  pid_ = snap->pid;
  frame_->set_pid(pid_);
  switch (snap->state) {
    case RendererState::kRunning:
      return SetMode(Mode::kLive);
    case RendererState::kUnresponsive:
      bar_text_->setText(QStringLiteral("<b>Page unresponsive.</b> Renderer #%1 (pid %2) sends "
                                        "no heartbeats. Wait for it, or kill it.")
                             .arg(id_)
                             .arg(pid_));
      return SetMode(Mode::kUnresponsive);
    case RendererState::kExited:
    case RendererState::kRestarting:
      return ShowSadTab(snap->last_exit);
    case RendererState::kFailed:
      failed_details_->setText(QStringLiteral("Renderer #%1 exits again and again, so sbx "
                                              "stopped restarting it.")
                                   .arg(id_));
      return SetMode(Mode::kFailed);
    default:
      return SetMode(Mode::kLoading);
  }
}

bool RendererView::unresponsive_bar_visible() const {
  return mode_ == Mode::kUnresponsive && !bar_->isHidden();
}

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
      wait_timer_->stop();
      stack_->setCurrentIndex(0);
      break;
    case Mode::kUnresponsive:
      frame_->Freeze();
      bar_->show();
      stack_->setCurrentIndex(0);
      break;
    case Mode::kSadTab:
      stack_->setCurrentIndex(1);
      break;
    case Mode::kFailed:
      stack_->setCurrentIndex(2);
      break;
  }
  UpdateCaption();
  if (changed) emit modeChanged(id_, mode);
}

void RendererView::UpdateCaption() {
  auto snap = bridge_->broker().Get(id_);
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
  caption_->setText(text);
  caption_->setToolTip(snap ? ToQString(snap->page) : QString());
}

void RendererView::ShowSadTab(const ExitInfo& exit) {
  sad_title_->setText(SadTabTitle(exit));
  QStringList parts;
  parts << QStringLiteral("Renderer #%1").arg(id_);
  parts << ToQString(ExitStatusName(exit.status));
  if (exit.signal != 0) {
    parts << QString::fromLatin1(SignalName(exit.signal));
  } else if (exit.code >= 0) {
    parts << QStringLiteral("exit code %1").arg(exit.code);
  }
  if (auto snap = bridge_->broker().Get(id_)) {
    parts << QStringLiteral("uptime %1").arg(DurationText(snap->uptime_ms));
  }
  QString details = parts.join(QStringLiteral(" \u00b7 "));
  if (!exit.detail.empty()) details += QStringLiteral("\n") + ToQString(exit.detail);
  sad_details_->setText(details);
  sad_restart_row_->hide();
  SetMode(Mode::kSadTab);
}

void RendererView::OnBrokerEvent(const BrokerEvent& event) {
  switch (event.type) {
    case EventType::kSpawned:
      pid_ = event.pid;
      frame_->set_pid(event.pid);
      if (mode_ == Mode::kSadTab || mode_ == Mode::kFailed) {
        // Stay on the sad tab until the replacement draws its first frame.
        sad_restart_text_->setText(
            QStringLiteral("Starting a new renderer (pid %1)\u2026").arg(event.pid));
        sad_restart_row_->show();
        if (mode_ == Mode::kFailed) SetMode(Mode::kSadTab);
      } else {
        SetMode(Mode::kLoading);
      }
      break;
    case EventType::kReady:
      SetMode(Mode::kLive);
      dirty_ = true;
      break;
    case EventType::kUnresponsive:
      bar_text_->setText(QStringLiteral("<b>Page unresponsive.</b> Renderer #%1 (pid %2): %3. "
                                        "Wait for it, or kill it.")
                             .arg(id_)
                             .arg(pid_)
                             .arg(ToQString(event.detail).toHtmlEscaped()));
      SetMode(Mode::kUnresponsive);
      break;
    case EventType::kResponsive: {
      auto snap = bridge_->broker().Get(id_);
      SetMode(snap && snap->frames > 0 ? Mode::kLive : Mode::kLoading);
      break;
    }
    case EventType::kExited:
      ShowSadTab(event.exit.value_or(ExitInfo{}));
      break;
    case EventType::kRestarting:
      sad_restart_text_->setText(
          event.delay_ms > 0
              ? QStringLiteral("Restarting in %1\u2026").arg(DurationText(event.delay_ms))
              : QStringLiteral("Restarting\u2026"));
      sad_restart_row_->show();
      break;
    case EventType::kFailed:
      failed_details_->setText(
          QStringLiteral("Renderer #%1: %2, so sbx stopped restarting it.\nReload starts it "
                         "again and forgets the crash loop.")
              .arg(id_)
              .arg(ToQString(event.detail)));
      SetMode(Mode::kFailed);
      break;
    default:  // closed (the grid drops the view), drill reports (the event log shows them)
      break;
  }
  UpdateCaption();
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
