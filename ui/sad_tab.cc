#include "ui/sad_tab.h"

#include <QHBoxLayout>
#include <QPainter>
#include <QPainterPath>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>

#include "ipc/posix.h"
#include "ui/format.h"

namespace sbx::ui {

namespace {

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

QLabel* CenteredLabel(const char* name, QWidget* parent) {
  auto* l = new QLabel(parent);
  l->setObjectName(QString::fromLatin1(name));
  l->setAlignment(Qt::AlignCenter);
  l->setWordWrap(true);
  return l;
}

}  // namespace

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

SadTab::SadTab(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("sad-tab"));
  auto* layout = new QVBoxLayout(this);
  layout->addStretch(1);
  icon_ = CenteredLabel("sad-icon", this);
  title_ = CenteredLabel("sad-title", this);
  details_ = CenteredLabel("sad-details", this);
  layout->addWidget(icon_);
  layout->addWidget(title_);
  layout->addWidget(details_);

  progress_row_ = new QWidget(this);
  auto* progress = new QHBoxLayout(progress_row_);
  progress->setContentsMargins(0, 0, 0, 0);
  progress->addStretch(1);
  progress->addWidget(new Spinner(progress_row_));
  progress_text_ = new QLabel(progress_row_);
  progress_text_->setObjectName(QStringLiteral("sad-restart"));
  progress->addWidget(progress_text_);
  progress->addStretch(1);
  progress_row_->hide();
  layout->addWidget(progress_row_);

  auto* reload = new QPushButton(QStringLiteral("Reload"), this);
  reload->setObjectName(QStringLiteral("sad-reload"));
  auto* buttons = new QHBoxLayout;
  buttons->addStretch(1);
  buttons->addWidget(reload);
  buttons->addStretch(1);
  layout->addLayout(buttons);
  layout->addStretch(1);
  connect(reload, &QPushButton::clicked, this, &SadTab::reloadClicked);
}

void SadTab::ShowExit(int id, const ExitInfo& exit, int64_t uptime_ms) {
  crash_loop_ = false;
  icon_->setPixmap(SadFace(QColor(0x5f, 0x63, 0x68)));
  title_->setText(SadTabTitle(exit));
  QStringList parts;
  parts << QStringLiteral("Renderer #%1").arg(id);
  parts << ToQString(ExitStatusName(exit.status));
  if (exit.signal != 0) {
    parts << QString::fromLatin1(SignalName(exit.signal));
  } else if (exit.code >= 0) {
    parts << QStringLiteral("exit code %1").arg(exit.code);
  }
  if (uptime_ms >= 0) parts << QStringLiteral("uptime %1").arg(DurationText(uptime_ms));
  QString details = parts.join(QStringLiteral(" \u00b7 "));
  if (!exit.detail.empty()) details += QStringLiteral("\n") + ToQString(exit.detail);
  details_->setText(details);
  progress_row_->hide();
}

void SadTab::ShowCrashLoop(int id, const QString& why) {
  crash_loop_ = true;
  icon_->setPixmap(LoopIcon(QColor(0x8b, 0x00, 0x00)));
  title_->setText(QStringLiteral("This renderer keeps crashing"));
  details_->setText(QStringLiteral("Renderer #%1: %2, so sbx stopped restarting it.\nReload "
                                   "starts it again and forgets the crash loop.")
                        .arg(id)
                        .arg(why));
  progress_row_->hide();
}

void SadTab::ShowProgress(const QString& text) {
  progress_text_->setText(text);
  progress_row_->show();
}

RecoveryNote::RecoveryNote(QWidget* parent) : QLabel(parent), hide_timer_(new QTimer(this)) {
  setObjectName(QStringLiteral("recovery-note"));
  setWordWrap(true);
  setContentsMargins(8, 4, 8, 4);
  hide_timer_->setSingleShot(true);
  connect(hide_timer_, &QTimer::timeout, this, &QWidget::hide);
  hide();
}

void RecoveryNote::Show(const ExitInfo& exit, int64_t death_to_frame_ms, pid_t new_pid) {
  setText(QStringLiteral("<b>Recovered</b> from %1: the new renderer (pid %2) drew its first "
                         "frame %3 after the old one died.")
              .arg(ExitText(exit).toHtmlEscaped())
              .arg(new_pid)
              .arg(DurationText(death_to_frame_ms)));
  show();
  hide_timer_->start(kShownMs);
}

}  // namespace sbx::ui
