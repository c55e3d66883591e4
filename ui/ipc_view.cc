#include "ui/ipc_view.h"

#include <QEvent>
#include <QHBoxLayout>
#include <QHelpEvent>
#include <QLabel>
#include <QPainter>
#include <QPainterPath>
#include <QPushButton>
#include <QScrollBar>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>

#include "ipc/posix.h"
#include "ui/broker_bridge.h"
#include "ui/format.h"

namespace sbx::ui {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int kLaneMargin = 18;  // above the broker's lane and below the renderer's
constexpr int kLabelWidth = 70;  // the lanes' names on the left
constexpr int kHitPixels = 4;    // how near the pointer must be to an arrow for its tooltip
// The mechanisms as the rates panel lists them, pipe directions apart.
constexpr Mechanism kAll[] = {Mechanism::kPipeToRenderer, Mechanism::kPipeToBroker,
                              Mechanism::kFrames,         Mechanism::kQueue,
                              Mechanism::kSignal,         Mechanism::kPidfd};

// A rate's bytes: a heartbeat queue moves hundreds of bytes a second, the frames tens of MiB.
QString RateText(uint64_t bytes) {
  if (bytes < 1024) return QStringLiteral("%1 B").arg(bytes);
  if (bytes < 1024 * 1024) return QStringLiteral("%1 KiB").arg(bytes / 1024.0, 0, 'f', 1);
  return BytesText(bytes);
}

QString Name(Mechanism m) { return ToQString(MechanismName(m)); }

}  // namespace

QColor MechanismColor(Mechanism m) {
  switch (m) {
    case Mechanism::kPipeToRenderer:
    case Mechanism::kPipeToBroker:
      return QColor(0x1a, 0x73, 0xe8);  // blue
    case Mechanism::kFrames:
      return QColor(0x18, 0x80, 0x38);  // green
    case Mechanism::kQueue:
      return QColor(0xe3, 0x74, 0x00);  // orange
    case Mechanism::kSignal:
      return QColor(0xd9, 0x30, 0x25);  // red
    case Mechanism::kPidfd:
      return QColor(0x93, 0x34, 0xe6);  // purple
  }
  return Qt::gray;
}

IpcModel::IpcModel(Broker& broker, QObject* parent)
    : QAbstractTableModel(parent), broker_(broker) {}

int IpcModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int IpcModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : kColumnCount;
}

QVariant IpcModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  static const char* const kNames[] = {"Time (ms)", "Direction", "Mechanism", "Type",
                                       "Seq",       "Size",      "Summary"};
  if (section < 0 || section >= kColumnCount) return {};
  return QString::fromLatin1(kNames[section]);
}

QVariant IpcModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= kColumnCount) return {};
  const IpcRecord& r = record(index.row());
  switch (role) {
    case kMechanismRole:
      return static_cast<int>(r.mechanism);
    case kTimeNsRole:
      return static_cast<qint64>(r.t_ns);
    case kToRendererRole:
      return r.to_renderer();
    case Qt::ToolTipRole:
      return Describe(index.row());
    case Qt::ForegroundRole:
      return index.column() == kMechanism ? QVariant(MechanismColor(r.mechanism)) : QVariant();
    case Qt::DisplayRole:
      break;
    default:
      return {};
  }
  switch (index.column()) {
    case kTime:
      return QString::number(static_cast<double>(r.t_ns - origin_ns()) / kNsPerMs, 'f', 1);
    case kDirection:
      return r.to_renderer() ? QStringLiteral("to renderer") : QStringLiteral("to broker");
    case kMechanism:
      return Name(r.mechanism);
    case kType:
      return ToQString(r.TypeName());
    case kSeq:
      return QString::number(r.seq);
    case kSize:
      return QString::number(r.size);
    case kSummary:
      return QString::fromStdString(r.Summary());
  }
  return {};
}

QString IpcModel::Describe(int row) const {
  const IpcRecord& r = record(row);
  return QStringLiteral("%1 ms  %2 %3\n%4 #%5, %6 bytes\n%7")
      .arg(QString::number(static_cast<double>(r.t_ns - origin_ns()) / kNsPerMs, 'f', 1),
           Name(r.mechanism),
           r.to_renderer() ? QStringLiteral("broker \u2192 renderer")
                           : QStringLiteral("renderer \u2192 broker"),
           ToQString(r.TypeName()), QString::number(r.seq), QString::number(r.size),
           QString::fromStdString(r.Summary()));
}

void IpcModel::SetRenderer(int id) {
  if (id == id_) return;
  beginResetModel();
  id_ = id;
  pid_ = 0;
  recorded_ = 0;
  rows_.clear();
  counters_.reset();
  endResetModel();
  Refresh();
}

void IpcModel::Refresh() {
  auto snap = id_ != 0 ? broker_.Get(id_, /*read_cgroup_usage=*/false) : std::nullopt;
  if (!snap || !snap->ipc || snap->pid <= 0) {
    counters_.reset();
    return;
  }
  counters_ = snap->ipc;
  if (snap->pid != pid_) {
    beginResetModel();
    rows_.clear();
    recorded_ = 0;
    pid_ = snap->pid;
    endResetModel();
  }
  uint64_t total = snap->ipc->recorded;
  if (total <= recorded_) return;
  // Only what is new: the ring may have wrapped past what we saw since the last call.
  auto fresh =
      broker_.IpcRecent(id_, static_cast<size_t>(std::min<uint64_t>(total - recorded_, kMaxRows)));
  recorded_ = total;
  if (fresh.empty()) return;
  int first = rowCount();
  beginInsertRows({}, first, first + static_cast<int>(fresh.size()) - 1);
  rows_.insert(rows_.end(), fresh.begin(), fresh.end());
  endInsertRows();
  if (rows_.size() > kMaxRows) {
    int excess = static_cast<int>(rows_.size() - kMaxRows);
    beginRemoveRows({}, 0, excess - 1);
    rows_.erase(rows_.begin(), rows_.begin() + excess);
    endRemoveRows();
  }
}

IpcDiagram::IpcDiagram(IpcModel* model, QWidget* parent) : QWidget(parent), model_(model) {
  setObjectName(QStringLiteral("ipc-diagram"));
  setMouseTracking(true);
  setMinimumHeight(90);
  setAttribute(Qt::WA_OpaquePaintEvent);
  auto repaint = [this] { update(); };
  connect(model_, &QAbstractItemModel::rowsInserted, this, repaint);
  connect(model_, &QAbstractItemModel::modelReset, this, repaint);
}

QSize IpcDiagram::sizeHint() const { return {600, 140}; }

void IpcDiagram::SetEnd(int64_t end_ns) {
  end_ns_ = end_ns;
  update();
}

int64_t IpcDiagram::WindowEnd() const {
  if (end_ns_ != 0) return end_ns_;
  int n = model_->rowCount();
  // Live: the window ends now, so a renderer that went quiet shows its arrows moving away.
  int64_t newest = n > 0 ? model_->record(n - 1).t_ns : 0;
  return std::max(newest, MonotonicNs());
}

int IpcDiagram::XFor(int64_t t_ns) const {
  int64_t start = WindowEnd() - span_ns_;
  int w = width() - kLabelWidth - 8;
  return kLabelWidth + static_cast<int>(static_cast<double>(t_ns - start) / span_ns_ * w);
}

void IpcDiagram::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().base());
  const int top = kLaneMargin, bottom = height() - kLaneMargin;
  p.setPen(palette().text().color());
  p.drawText(QRect(4, top - 8, kLabelWidth - 8, 16), Qt::AlignLeft | Qt::AlignVCenter,
             QStringLiteral("broker"));
  p.drawText(QRect(4, bottom - 8, kLabelWidth - 8, 16), Qt::AlignLeft | Qt::AlignVCenter,
             model_->renderer() != 0 ? QStringLiteral("renderer %1").arg(model_->renderer())
                                     : QStringLiteral("renderer"));
  p.setPen(QPen(palette().mid().color(), 2));
  p.drawLine(kLabelWidth, top, width() - 4, top);
  p.drawLine(kLabelWidth, bottom, width() - 4, bottom);

  painted_ = 0;
  const int64_t end = WindowEnd(), start = end - span_ns_;
  p.setRenderHint(QPainter::Antialiasing);
  for (int row = 0; row < model_->rowCount(); ++row) {
    const IpcRecord& r = model_->record(row);
    if (r.t_ns < start || r.t_ns > end) continue;
    // A frame and its notice pass within microseconds: the frame's arrow sits beside it.
    int x = XFor(r.t_ns) + (r.mechanism == Mechanism::kFrames ? 5 : 0);
    // Arrows lean a little with time, as in a sequence diagram, and point at the receiver.
    int from = r.to_renderer() ? top : bottom, to = r.to_renderer() ? bottom - 3 : top + 3;
    QColor c = MechanismColor(r.mechanism);
    p.setPen(QPen(c, 1.5));
    p.drawLine(x - 3, from, x + 3, to);
    QPainterPath head;
    int dir = r.to_renderer() ? -1 : 1;
    head.moveTo(x + 3, to);
    head.lineTo(x - 1, to + dir * 7);
    head.lineTo(x + 6, to + dir * 6);
    head.closeSubpath();
    p.fillPath(head, c);
    ++painted_;
  }
  if (model_->renderer() != 0 && painted_ == 0) {
    p.setPen(palette().placeholderText().color());
    p.drawText(rect(), Qt::AlignCenter,
               model_->counters() ? QStringLiteral("no messages in these seconds")
                                  : QStringLiteral("no live process (or the inspector is off)"));
  }
}

int IpcDiagram::RowAt(int x) const {
  const int64_t end = WindowEnd(), start = end - span_ns_;
  int best = -1, best_distance = kHitPixels + 1;
  for (int row = 0; row < model_->rowCount(); ++row) {
    int64_t t = model_->record(row).t_ns;
    if (t < start || t > end) continue;
    int d = std::abs(XFor(t) - x);
    if (d < best_distance) {
      best = row;
      best_distance = d;
    }
  }
  return best;
}

bool IpcDiagram::event(QEvent* e) {
  if (e->type() != QEvent::ToolTip) return QWidget::event(e);
  auto* help = static_cast<QHelpEvent*>(e);
  int row = RowAt(help->pos().x());
  if (row < 0) {
    QToolTip::hideText();
    e->ignore();
  } else {
    QToolTip::showText(help->globalPos(), model_->Describe(row), this);
  }
  return true;
}

IpcView::IpcView(BrokerBridge* bridge, QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("ipc-view"));
  model_ = new IpcModel(bridge->broker(), this);
  diagram_ = new IpcDiagram(model_, this);
  title_ = new QLabel(QStringLiteral("Select a renderer"), this);
  pause_ = new QPushButton(QStringLiteral("Pause"), this);
  pause_->setObjectName(QStringLiteral("ipc-pause"));
  pause_->setCheckable(true);
  pause_->setToolTip(QStringLiteral("Stop the diagram and scroll back through the last messages"));
  scroll_ = new QScrollBar(Qt::Horizontal, this);
  scroll_->setObjectName(QStringLiteral("ipc-scroll"));
  scroll_->setEnabled(false);
  rates_ = new QLabel(this);
  rates_->setObjectName(QStringLiteral("ipc-rates"));
  rates_->setTextFormat(Qt::RichText);
  rates_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  rates_->setToolTip(QStringLiteral("Messages and bytes per second, over the last whole second"));

  auto* header = new QHBoxLayout;
  header->addWidget(title_, 1);
  header->addWidget(pause_);
  auto* left = new QVBoxLayout;
  left->addLayout(header);
  left->addWidget(diagram_, 1);
  left->addWidget(scroll_);
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(left, 1);
  layout->addWidget(rates_);

  connect(pause_, &QPushButton::toggled, this, &IpcView::SetPaused);
  connect(scroll_, &QScrollBar::valueChanged, this, [this](int ms) {
    if (paused()) diagram_->SetEnd(model_->origin_ns() + static_cast<int64_t>(ms) * kNsPerMs);
  });
  // Live means a frame's worth of latency at most: ten refreshes a second.
  timer_ = new QTimer(this);
  timer_->setInterval(100);
  connect(timer_, &QTimer::timeout, this, &IpcView::Tick);
  timer_->start();
  UpdateRates();
}

bool IpcView::paused() const { return pause_->isChecked(); }

void IpcView::SetRenderer(int id) {
  if (id == model_->renderer()) return;
  model_->SetRenderer(id);
  title_->setText(id != 0 ? QStringLiteral("Renderer %1: broker above, renderer below, last %2 s")
                                .arg(id)
                                .arg(diagram_->span_ns() / 1'000'000'000)
                          : QStringLiteral("Select a renderer"));
  UpdateRates();
  UpdateScrollRange();
}

void IpcView::Tick() {
  // Hidden (its tab behind the task manager's), it catches up when shown: the ring keeps 512.
  if (paused() || !isVisible()) return;
  model_->Refresh();
  UpdateRates();
  diagram_->update();
}

void IpcView::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  Tick();
}

void IpcView::SetPaused(bool paused) {
  pause_->setText(paused ? QStringLiteral("Resume") : QStringLiteral("Pause"));
  scroll_->setEnabled(paused);
  if (!paused) {
    diagram_->SetEnd(0);
    Tick();
    return;
  }
  UpdateScrollRange();
  diagram_->SetEnd(model_->origin_ns() + static_cast<int64_t>(scroll_->value()) * kNsPerMs);
}

// The scroll bar's values are milliseconds since the broker started: from a window ending at the
// oldest row to one ending at the newest.
void IpcView::UpdateScrollRange() {
  int n = model_->rowCount();
  if (n == 0) {
    scroll_->setRange(0, 0);
    return;
  }
  auto ms = [this](int64_t ns) { return static_cast<int>((ns - model_->origin_ns()) / kNsPerMs); };
  scroll_->setRange(ms(model_->record(0).t_ns), ms(model_->record(n - 1).t_ns));
  scroll_->setPageStep(ms(diagram_->span_ns()));
  scroll_->setSingleStep(100);
  scroll_->setValue(scroll_->maximum());
}

void IpcView::UpdateRates() {
  const auto& c = model_->counters();
  QString html = QStringLiteral(
      "<table cellspacing=3><tr><th></th><th align=right>msgs</th><th align=right>bytes</th></tr>");
  for (Mechanism m : kAll) {
    const IpcCounterView* v = c ? &c->counters[static_cast<size_t>(m)] : nullptr;
    html += QStringLiteral(
                "<tr><td><span style='color:%1'>&#9632;</span> %2</td>"
                "<td align=right>%3/s</td><td align=right>%4/s</td></tr>")
                .arg(MechanismColor(m).name(), Name(m),
                     v ? QString::number(v->messages_per_s) : QStringLiteral("-"),
                     v ? RateText(v->bytes_per_s) : QStringLiteral("-"));
  }
  html += QStringLiteral("</table>");
  rates_->setText(html);
}

}  // namespace sbx::ui
