// Charts for what people would rather look at than read (Qt Charts): CPU and memory of the
// busiest renderers (at most sixteen lines) over the last 60 s, and latency over time: control
// round trip (a ping to up to 32 live renderers each second, in turn), heartbeat delivery, and
// the window's own event-loop lateness.
#pragma once

#include <QList>
#include <QPen>
#include <QPointF>
#include <QStringList>
#include <QWidget>
#include <map>
#include <set>
#include <vector>

#include "broker/broker.h"

class QChart;
class QChartView;
class QLabel;
class QLineSeries;
class QValueAxis;

namespace sbx::ui {

class BrokerBridge;
class RendererModel;
struct RendererRow;

class ChartsPanel : public QWidget {
  Q_OBJECT

 public:
  ChartsPanel(BrokerBridge* bridge, RendererModel* model, QWidget* parent = nullptr);

  // Called once a second (on the model's refresh) with the window's event-loop p99 for that
  // second, or a negative value if it is not being measured.
  void Tick(double loop_p99_ms);
  // Control round trips answered so far (for tests and the curious).
  uint64_t pongs() const { return pongs_; }
  // Renderers drawn as lines (the busiest sixteen at most), and those left out.
  int series_count() const { return static_cast<int>(charted_.size()); }
  int uncharted_count() const { return uncharted_; }
  // What the legend above the CPU and memory charts lists ("#1", "#2", ...), and the charts
  // themselves (for tests that check what Qt Charts had to elide).
  QStringList renderer_legend() const;
  std::vector<QChart*> charts() const {
    return {cpu_chart_.chart, mem_chart_.chart, latency_chart_.chart};
  }

 private:
  struct Chart {
    QChart* chart = nullptr;
    QChartView* view = nullptr;
    QValueAxis* x = nullptr;
    QValueAxis* y = nullptr;
  };
  struct Line {
    QLineSeries* series = nullptr;  // null while the renderer is not among those drawn
    QList<QPointF> points;
  };

  Chart MakeChart(const QString& title);
  QLineSeries* AddSeries(Chart& chart, const QString& name, const QPen& pen);
  void UpdateRendererLegend();
  static void Append(Line& line, double t, double value);
  // Pushes the points to the chart, as seconds before t. Skipped while the panel is hidden.
  void Show(Chart& chart, std::map<int, Line>& lines, double t, double min_top);
  void ChooseCharted(const std::map<int, const RendererRow*>& rows);
  void Unchart(Chart& chart, Line& line);
  void PingSome();

 protected:
  void showEvent(QShowEvent* event) override;

  BrokerBridge* bridge_;
  RendererModel* model_;
  Chart cpu_chart_;
  Chart mem_chart_;
  Chart latency_chart_;
  QLabel* renderer_legend_;
  QLabel* latency_legend_;
  std::map<int, Line> cpu_;
  std::map<int, Line> mem_;
  std::map<int, Line> latency_;  // 0: control round trip, 1: heartbeat, 2: event loop p99
  std::vector<int64_t> rtt_ns_;
  std::vector<int64_t> heartbeat_ns_;
  std::set<int> charted_;  // ids with a line
  int uncharted_ = 0;
  size_t ping_cursor_ = 0;
  uint64_t pongs_ = 0;
  double last_t_ = 0;
};

}  // namespace sbx::ui
