// The task manager's table as a person reads it at the window's default size.
#include "ui/task_manager.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <QFontMetrics>
#include <QTableView>

#include "tests/ui/ui_test_util.h"
#include "ui/main_window.h"
#include "ui/renderer_model.h"

namespace sbx::ui::testing {
namespace {

TEST(TaskManagerTest, PageAndLastExitAreReadableAtTheDefaultSize) {
  BrokerOptions o = TestOptions();
  o.restart = false;
  WindowEnv env(o);
  int id = env.SpawnDrawing("sbx://text/Hello%20from%20sbx");
  size_t mark = env.recorder->size();
  ASSERT_TRUE(SignalPid(env.broker->Get(id)->pid, SIGKILL));
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kExited, id, 10s, mark));
  RendererModel* model = env.window->model();
  model->Refresh();
  QTableView* table = env.window->task_manager()->table();
  QFontMetrics fm(table->font());
  int row = model->RowForId(id);
  ASSERT_GE(row, 0);
  for (int column : {RendererModel::kPage, RendererModel::kLastExit, RendererModel::kMemory,
                     RendererModel::kState}) {
    QString text = model->data(model->index(row, column)).toString();
    EXPECT_GE(table->columnWidth(column), fm.horizontalAdvance(text) + 8)
        << column << ": " << text.toStdString();
  }
  // Every column fits the table at the default size, the last one included.
  int total = 0;
  for (int c = 0; c < RendererModel::kColumnCount - 1; ++c) total += table->columnWidth(c);
  EXPECT_LT(total + 100, table->viewport()->width());
}

}  // namespace
}  // namespace sbx::ui::testing
