// The charts and the status bar follow the model's once-a-second refresh.
#include "ui/charts.h"

#include <gtest/gtest.h>

#include <QLabel>
#include <QStatusBar>

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

}  // namespace
}  // namespace sbx::ui::testing
