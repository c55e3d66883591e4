#include "ui/charts.h"

#include <QChart>
#include <QChartView>
#include <QLabel>
#include <QLineSeries>
#include <QPointer>
#include <QVBoxLayout>
#include <QValueAxis>
#include <algorithm>
#include <cmath>
#include <iterator>

#include "ui/broker_bridge.h"
#include "ui/renderer_model.h"

namespace sbx::ui {

namespace {

constexpr double kWindowS = 60.0;
constexpr double kSettleS = 3.0;
// The smallest y ranges (%, MiB, ms), so an idle chart is not all noise.
constexpr double kMinCpuTop = 5;
constexpr double kMinMemoryTop = 2;
constexpr double kMinLatencyTop = 1;
// Ten colours that stay apart (Tableau 10); renderers beyond ten reuse them dashed, then
// dotted, and the legend shows which is which.
constexpr QRgb kPalette[] = {0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2, 0x59a14f,
                             0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0xbab0ac};
constexpr int kPaletteSize = static_cast<int>(std::size(kPalette));
// Bounds the per-second sample buffers if ticks stall (the window is busy).
constexpr size_t kMaxSamples = 4096;
// Lines drawn per chart: past about sixteen they cannot be told apart, and at 500 renderers
// laying out and painting a thousand series held the GUI thread for tens of milliseconds a
// second. The Task Manager lists every renderer.
constexpr size_t kMaxLines = 16;
// Renderers pinged per second for the round-trip line: a sample, taken in turn, rather than a
// burst of 500 pipe writes and 500 pongs each second.
constexpr size_t kMaxPings = 32;

double Mean(const std::vector<int64_t>& v) {
  if (v.empty()) return -1;
  double sum = 0;
  for (int64_t x : v) sum += static_cast<double>(x);
  return sum / static_cast<double>(v.size()) / 1e6;
}

double NiceCeiling(double v) {
  if (v <= 0) return 1;
  double p = std::pow(10.0, std::floor(std::log10(v)));
  // Tops whose half is round too: the y axes have three ticks (0, half, top), all a small chart
  // has room to label.
  for (double m : {1.0, 2.0, 4.0, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

struct LineStyle {
  QColor color;
  Qt::PenStyle pen;
  const char* glyph;  // how the legend draws the line
};

LineStyle StyleFor(int index) {
  static constexpr Qt::PenStyle kPens[] = {Qt::SolidLine, Qt::DashLine, Qt::DotLine};
  static constexpr const char* kGlyphs[] = {"\u2501\u2501", "\u2505\u2505", "\u2509\u2509"};
  int i = std::max(index, 0);
  int cycle = (i / kPaletteSize) % 3;
  return {QColor(kPalette[i % kPaletteSize]), kPens[cycle], kGlyphs[cycle]};
}

QPen PenFor(const LineStyle& style) { return QPen(style.color, 2, style.pen); }

QString LegendEntry(const LineStyle& style, const QString& name) {
  return QStringLiteral("<span style='color:%1'>%2</span>&nbsp;%3")
      .arg(style.color.name(), QString::fromUtf8(style.glyph), name.toHtmlEscaped());
}

QLabel* LegendLabel(const char* name, QWidget* parent) {
  auto* l = new QLabel(parent);
  l->setObjectName(QString::fromLatin1(name));
  l->setTextFormat(Qt::RichText);
  l->setWordWrap(true);
  l->setContentsMargins(8, 2, 8, 2);
  return l;
}

}  // namespace

ChartsPanel::ChartsPanel(BrokerBridge* bridge, RendererModel* model, QWidget* parent)
    : QWidget(parent), bridge_(bridge), model_(model) {
  setObjectName(QStringLiteral("charts"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(0);
  // Axis titles and QChart's own legends are left out: in a dock a third of the window high
  // they are what Qt elides first. The units are in the titles, the seconds on the x labels,
  // and one legend for every renderer's line (the same colour in both charts) wraps as needed.
  cpu_chart_ = MakeChart(QStringLiteral("CPU per renderer, % of one core"));
  mem_chart_ = MakeChart(QStringLiteral("Memory per renderer, MiB (PSS, else RSS)"));
  latency_chart_ = MakeChart(QStringLiteral("Latency, ms"));
  renderer_legend_ = LegendLabel("renderer-legend", this);
  latency_legend_ = LegendLabel("latency-legend", this);
  layout->addWidget(renderer_legend_);
  layout->addWidget(cpu_chart_.view, 1);
  layout->addWidget(mem_chart_.view, 1);
  layout->addWidget(latency_legend_);
  layout->addWidget(latency_chart_.view, 1);
  const QString latency_names[] = {QStringLiteral("control round trip"),
                                   QStringLiteral("heartbeat delivery"),
                                   QStringLiteral("window event loop p99")};
  QStringList entries;
  for (int i = 0; i < 3; ++i) {
    latency_[i].series = AddSeries(latency_chart_, latency_names[i], PenFor(StyleFor(i)));
    entries << LegendEntry(StyleFor(i), latency_names[i]);
  }
  latency_legend_->setText(entries.join(QStringLiteral("&nbsp;&nbsp; ")));
  renderer_legend_->setText(QStringLiteral("No renderers"));

  connect(bridge_, &BrokerBridge::heartbeat, this, [this](int, qint64 latency_ns) {
    if (heartbeat_ns_.size() < kMaxSamples) heartbeat_ns_.push_back(latency_ns);
  });
}

ChartsPanel::Chart ChartsPanel::MakeChart(const QString& title) {
  Chart c;
  c.chart = new QChart;
  c.chart->setTitle(title);
  c.chart->setMargins(QMargins(2, 0, 6, 0));
  c.chart->setBackgroundRoundness(0);
  c.chart->legend()->hide();
  QFont title_font = c.chart->titleFont();
  title_font.setPointSize(9);
  title_font.setBold(true);
  c.chart->setTitleFont(title_font);
  c.x = new QValueAxis;
  c.x->setLabelFormat(QStringLiteral("%.0f s"));
  c.x->setRange(-kWindowS, 0);
  c.x->setTickCount(4);  // -60, -40, -20, 0: room for the labels in a narrow dock
  c.y = new QValueAxis;
  c.y->setLabelFormat(QStringLiteral("%g"));
  c.y->setTickCount(3);
  c.y->setRange(0, 1);
  for (QValueAxis* a : {c.x, c.y}) {
    QFont f = a->labelsFont();
    f.setPointSize(7);
    a->setLabelsFont(f);
  }
  c.chart->addAxis(c.x, Qt::AlignBottom);
  c.chart->addAxis(c.y, Qt::AlignLeft);
  c.view = new QChartView(c.chart, this);
  c.view->setMinimumHeight(110);
  // Antialiasing doubles the paint time of a chart for little gain at this size.
  c.view->setRenderHint(QPainter::Antialiasing, false);
  return c;
}

QLineSeries* ChartsPanel::AddSeries(Chart& chart, const QString& name, const QPen& pen) {
  auto* s = new QLineSeries;
  s->setName(name);
  s->setPen(pen);
  chart.chart->addSeries(s);
  s->attachAxis(chart.x);
  s->attachAxis(chart.y);
  return s;
}

void ChartsPanel::Append(Line& line, double t, double value) {
  line.points.append(QPointF(t, value));
  while (!line.points.isEmpty() && line.points.first().x() < t - kWindowS) {
    line.points.removeFirst();
  }
}

// The x axis is fixed at -60..0 s and the y axis changes only when its rounded top does, so
// each series is laid out once per tick: re-ranging an axis lays out every series on it, which
// for 64 series cost several milliseconds of the GUI thread each second.
void ChartsPanel::Show(Chart& chart, std::map<int, Line>& lines, double t, double min_top) {
  if (!isVisible()) return;
  double top = min_top;
  for (const auto& [id, line] : lines) {
    if (line.series == nullptr) continue;
    for (const QPointF& p : line.points) top = std::max(top, p.y());
  }
  top = NiceCeiling(top * 1.1);
  if (chart.y->max() != top) {
    chart.y->setRange(0, top);
  }
  for (auto& [id, line] : lines) {
    if (line.series == nullptr) continue;
    QList<QPointF> shifted;
    shifted.reserve(line.points.size());
    for (const QPointF& p : line.points) shifted.append(QPointF(p.x() - t, p.y()));
    line.series->replace(shifted);
  }
}

void ChartsPanel::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  Show(cpu_chart_, cpu_, last_t_, kMinCpuTop);
  Show(mem_chart_, mem_, last_t_, kMinMemoryTop);
  Show(latency_chart_, latency_, last_t_, kMinLatencyTop);
}

void ChartsPanel::Tick(double loop_p99_ms) {
  double t = static_cast<double>(bridge_->broker().NowMs()) / 1000.0;
  last_t_ = t;
  // Per-renderer lines follow the model's rows: new ids get a line, closed ids lose theirs.
  std::map<int, const RendererRow*> rows;
  for (const auto& r : model_->rows()) rows.emplace(r.snap.id, &r);
  for (auto* lines : {&cpu_, &mem_}) {
    for (auto it = lines->begin(); it != lines->end();) {
      if (rows.count(it->first) != 0) {
        ++it;
        continue;
      }
      Unchart(lines == &cpu_ ? cpu_chart_ : mem_chart_, it->second);
      it = lines->erase(it);
    }
  }
  for (const auto& [id, row] : rows) {
    if (row->snap.pid <= 0) continue;  // a dead renderer leaves a gap rather than a zero
    if (row->cpu_percent >= 0) Append(cpu_[id], t, row->cpu_percent);
    uint64_t bytes = row->pss_bytes.value_or(row->rss_bytes);
    if (bytes > 0) Append(mem_[id], t, static_cast<double>(bytes) / (1 << 20));
  }
  ChooseCharted(rows);
  UpdateRendererLegend();
  double rtt = Mean(rtt_ns_);
  double hb = Mean(heartbeat_ns_);
  rtt_ns_.clear();
  heartbeat_ns_.clear();
  if (rtt >= 0 && t >= kSettleS) Append(latency_[0], t, rtt);
  if (hb >= 0) Append(latency_[1], t, hb);
  // The window's first seconds (fonts, first layout, every renderer starting) would set the
  // scale for the next minute; the chart starts after them.
  if (loop_p99_ms >= 0 && t >= kSettleS) Append(latency_[2], t, loop_p99_ms);
  Show(cpu_chart_, cpu_, t, kMinCpuTop);
  Show(mem_chart_, mem_, t, kMinMemoryTop);
  Show(latency_chart_, latency_, t, kMinLatencyTop);
  PingSome();
}

// The kMaxLines renderers that took the most CPU in the last sample have lines; one drawn
// already keeps its line unless another is busier by kKeepLinePercent, so idle renderers whose
// figures jitter do not trade places every second (the lowest ids first among equals). Every
// renderer keeps its points, so one that becomes busy is drawn with its past.
void ChartsPanel::ChooseCharted(const std::map<int, const RendererRow*>& rows) {
  constexpr double kKeepLinePercent = 2.0;
  std::vector<std::pair<double, int>> by_cpu;
  for (const auto& [id, row] : rows) {
    double score = row->cpu_percent + (charted_.contains(id) ? kKeepLinePercent : 0.0);
    by_cpu.emplace_back(-score, id);
  }
  std::sort(by_cpu.begin(), by_cpu.end());
  charted_.clear();
  for (size_t i = 0; i < by_cpu.size() && i < kMaxLines; ++i) charted_.insert(by_cpu[i].second);
  uncharted_ = static_cast<int>(rows.size() - charted_.size());
  for (auto* lines : {&cpu_, &mem_}) {
    Chart& chart = lines == &cpu_ ? cpu_chart_ : mem_chart_;
    for (auto& [id, line] : *lines) {
      if (!charted_.contains(id)) Unchart(chart, line);
    }
    for (int id : charted_) {
      Line& line = (*lines)[id];
      if (line.series == nullptr) {
        line.series = AddSeries(chart, QStringLiteral("#%1").arg(id), PenFor(StyleFor(id - 1)));
      }
    }
  }
}

void ChartsPanel::Unchart(Chart& chart, Line& line) {
  if (line.series == nullptr) return;
  chart.chart->removeSeries(line.series);
  delete line.series;
  line.series = nullptr;
}

void ChartsPanel::UpdateRendererLegend() {
  QStringList entries;
  for (int id : charted_) entries << LegendEntry(StyleFor(id - 1), QStringLiteral("#%1").arg(id));
  if (uncharted_ > 0) {
    entries << QStringLiteral(
                   "<span style='color:#5f6368'>and %1 more (busiest %2 drawn; the "
                   "Task Manager lists all)</span>")
                   .arg(uncharted_)
                   .arg(charted_.size());
  }
  QString text = entries.isEmpty() ? QStringLiteral("No renderers")
                                   : entries.join(QStringLiteral("&nbsp;&nbsp; "));
  if (text != renderer_legend_->text()) renderer_legend_->setText(text);
}

QStringList ChartsPanel::renderer_legend() const {
  QStringList ids;
  for (int id : charted_) ids << QStringLiteral("#%1").arg(id);
  return ids;
}

void ChartsPanel::PingSome() {
  QPointer<ChartsPanel> self(this);
  std::vector<int> running;
  for (const auto& r : model_->rows()) {
    if (r.snap.state == RendererState::kRunning) running.push_back(r.snap.id);
  }
  const size_t n = std::min(running.size(), kMaxPings);
  for (size_t i = 0; i < n; ++i) {
    int id = running[(ping_cursor_ + i) % running.size()];
    // The callback may run after this panel is gone (the broker outlives the window).
    (void)bridge_->broker().Ping(id, [self](Result<int64_t> rtt) {
      if (!self || !rtt) return;
      ++self->pongs_;
      if (self->rtt_ns_.size() < kMaxSamples) self->rtt_ns_.push_back(*rtt);
    });
  }
  ping_cursor_ = running.empty() ? 0 : (ping_cursor_ + n) % running.size();
}

}  // namespace sbx::ui
