// The charts and the status bar follow the model's once-a-second refresh.
#include "ui/charts.h"

#include <gtest/gtest.h>

#include <QAbstractAxis>
#include <QChart>
#include <QFontMetrics>
#include <QLabel>
#include <QRegularExpression>
#include <QStatusBar>
#include <QTest>

#include "tests/ui/ui_test_util.h"
#include "ui/main_window.h"
#include "ui/renderer_model.h"

namespace sbx::ui::testing {
namespace {

TEST(ChartsTest, OneLinePerRendererAndControlRoundTripsMeasured) {
  WindowEnv env;
  int a = env.SpawnDrawing("sbx://plasma");
  env.SpawnDrawing("sbx://clock");
  ChartsPanel* charts = env.window->charts();
  // Pings go out on a refresh and are counted by the next one.
  ASSERT_TRUE(WaitUntil([&] { return charts->series_count() == 2 && charts->pongs() >= 2; }));

  // The status bar counts what runs.
  bool found = false;
  ASSERT_TRUE(WaitUntil([&] {
    for (QLabel* l : env.window->statusBar()->findChildren<QLabel*>()) {
      if (l->text() == QStringLiteral("Renderers: 2 running / 2")) found = true;
    }
    return found;
  }));

  ASSERT_TRUE(env.broker->Close(a));
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kClosed, a));
  ASSERT_TRUE(WaitUntil([&] { return charts->series_count() == 1; }));
}

// At the size the window opens with, nothing in the charts is elided and the legend names
// every renderer's line, with few renderers and with many.
void ExpectLegible(WindowEnv& env, int renderers) {
  ChartsPanel* charts = env.window->charts();
  ASSERT_TRUE(WaitUntil([&] { return charts->series_count() == renderers; }, 30s));
  QTest::qWait(50);  // the charts lay out on the next paint
  QStringList legend = charts->renderer_legend();
  for (const auto& snap : env.broker->List()) {
    EXPECT_TRUE(legend.contains(QStringLiteral("#%1").arg(snap.id))) << snap.id;
  }
  auto* label = charts->findChild<QLabel*>(QStringLiteral("renderer-legend"));
  ASSERT_NE(label, nullptr);
  for (const auto& snap : env.broker->List()) {
    QRegularExpression entry(QStringLiteral("#%1(?!\\d)").arg(snap.id));
    EXPECT_TRUE(label->text().contains(entry)) << snap.id;
  }
  // The wrapped legend is shown whole, not clipped.
  EXPECT_GE(label->height(), label->heightForWidth(label->width()));
  for (QChart* chart : charts->charts()) {
    QFontMetrics title(chart->titleFont());
    EXPECT_LE(title.horizontalAdvance(chart->title()), chart->size().width() - 8)
        << chart->title().toStdString();
    EXPECT_GE(chart->plotArea().height(), 40) << chart->title().toStdString();
    for (QAbstractAxis* axis : chart->axes()) {
      EXPECT_FALSE(axis->labelsTruncated())
          << chart->title().toStdString() << ", " << renderers << " renderers";
    }
  }
}

TEST(ChartsTest, LegibleAtTheDefaultSizeWithFourRenderers) {
  WindowEnv env;
  ASSERT_EQ(env.window->size(), QSize(1500, 950));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(env.broker->Spawn("sbx://clock"));
  ExpectLegible(env, 4);
}

TEST(ChartsTest, LegibleAtTheDefaultSizeWithSixteenRenderers) {
  BrokerOptions o = TestOptions();
  o.fps = 5;  // sixteen renderers on two shared cores
  WindowEnv env(o);
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(env.broker->Spawn("about:blank"));
  ExpectLegible(env, 16);
}

// Past sixteen renderers only the busiest are drawn, and the legend says how many are not.
TEST(ChartsTest, PastSixteenRenderersTheBusiestAreDrawnAndTheRestCounted) {
  BrokerOptions o = TestOptions();
  o.fps = 1;
  WindowEnv env(o);
  for (int i = 0; i < 19; ++i) ASSERT_TRUE(env.broker->Spawn("about:blank"));
  // Out of view at the window's size, so hidden: it spins all the same, the most CPU of twenty.
  auto spawned = env.broker->Spawn("about:blank");
  ASSERT_TRUE(spawned);
  const int busy = *spawned;
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kSpawned, busy));
  ASSERT_TRUE(env.broker->Hang(busy));
  ChartsPanel* charts = env.window->charts();
  ASSERT_TRUE(WaitUntil(
      [&] { return charts->series_count() == 16 && charts->uncharted_count() == 4; }, 30s));
  auto* label = charts->findChild<QLabel*>(QStringLiteral("renderer-legend"));
  ASSERT_NE(label, nullptr);
  EXPECT_TRUE(label->text().contains(QStringLiteral("and 4 more"))) << label->text().toStdString();
  // The spinning one is drawn, though its id is the highest.
  EXPECT_TRUE(WaitUntil(
      [&] { return charts->renderer_legend().contains(QStringLiteral("#%1").arg(busy)); }, 30s))
      << charts->renderer_legend().join(QStringLiteral(" ")).toStdString();
}

}  // namespace
}  // namespace sbx::ui::testing
