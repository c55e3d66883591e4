// The task manager's table as a person reads it at the window's default size.
#include "ui/task_manager.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <QFontMetrics>
#include <QLabel>
#include <QSignalSpy>
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
  // Every column up to the sandbox verdict fits the table at the default size, the verdict
  // included; the cgroup figures after it are a scroll away.
  int total = 0;
  for (int c = 0; c < RendererModel::kSandbox; ++c) total += table->columnWidth(c);
  EXPECT_LT(total + 100, table->viewport()->width());
}

QString Cell(RendererModel* model, int row, int column, int role = Qt::DisplayRole) {
  return model->data(model->index(row, column), role).toString();
}

TEST(TaskManagerTest, CgroupColumnsHoldTheCoresFiguresForALiveRenderer) {
  WindowEnv env(TestOptions());
  if (env.broker->cgroups().mode == CgroupMode::kNone) {
    GTEST_SKIP() << "no cgroup here: " << env.broker->cgroups().reason;
  }
  int id = env.SpawnDrawing();
  RendererModel* model = env.window->model();
  // The figures are read by the model's sampler thread, off the GUI thread: refresh until a
  // sample of this process has come back.
  QSignalSpy sampled(model, &RendererModel::refreshed);
  const RendererRow* shown = nullptr;
  for (int i = 0; i < 20; ++i) {
    model->Refresh();
    shown = model->Find(id);
    if (shown != nullptr && shown->snap.pid > 0 && shown->cgroup_pid == shown->snap.pid) break;
    ASSERT_TRUE(sampled.wait(10000)) << "no sample came back";
  }
  int row = model->RowForId(id);
  ASSERT_GE(row, 0);
  auto core = env.broker->Get(id);
  ASSERT_TRUE(core);
  ASSERT_FALSE(core->cgroup_path.empty());
  shown = model->Find(id);
  ASSERT_NE(shown, nullptr);
  ASSERT_EQ(shown->cgroup_pid, shown->snap.pid) << "no sample of the renderer's cgroup";
  EXPECT_EQ(shown->snap.cgroup_path, core->cgroup_path);
  EXPECT_EQ(shown->snap.memory_limit, core->memory_limit);
  const CgroupUsage& usage = shown->cgroup_usage;
  ASSERT_GT(usage.memory_bytes, 0);
  ASSERT_GT(usage.pids, 0);
  ASSERT_GE(usage.throttled_us, 0);
  // The cells are those figures, of the limits the broker set (256 MiB and 32 tasks by default).
  double used_mib = static_cast<double>(usage.memory_bytes) / (1024.0 * 1024.0);
  EXPECT_EQ(Cell(model, row, RendererModel::kCgroupMemory),
            QStringLiteral("%1 of 256 MiB").arg(used_mib, 0, 'f', 1));
  EXPECT_EQ(Cell(model, row, RendererModel::kCgroupTasks),
            QStringLiteral("%1 of 32").arg(usage.pids));
  EXPECT_FALSE(Cell(model, row, RendererModel::kCgroupThrottled).isEmpty());
  EXPECT_NE(Cell(model, row, RendererModel::kCgroupThrottled), QStringLiteral("-"));
  EXPECT_TRUE(Cell(model, row, RendererModel::kCgroupMemory, Qt::ToolTipRole)
                  .contains(QString::fromStdString(core->cgroup_path)));
  EXPECT_TRUE(env.window->task_manager()->no_cgroup_label()->isHidden());
}

TEST(TaskManagerTest, WithoutCgroupsTheTaskManagerSaysSo) {
  BrokerOptions o = TestOptions();
  o.cgroups = false;  // --no-cgroup
  WindowEnv env(o);
  int id = env.SpawnDrawing();
  RendererModel* model = env.window->model();
  model->Refresh();
  int row = model->RowForId(id);
  ASSERT_GE(row, 0);
  QLabel* label = env.window->task_manager()->no_cgroup_label();
  EXPECT_FALSE(label->isHidden());
  EXPECT_TRUE(label->text().contains(QStringLiteral("memory bounded per process only")))
      << label->text().toStdString();
  EXPECT_TRUE(label->text().contains(QStringLiteral("--no-cgroup"))) << label->text().toStdString();
  EXPECT_EQ(Cell(model, row, RendererModel::kCgroupMemory), QStringLiteral("no cgroup"));
  EXPECT_EQ(Cell(model, row, RendererModel::kCgroupMemory, Qt::ToolTipRole), label->text());
  EXPECT_EQ(Cell(model, row, RendererModel::kCgroupTasks), QStringLiteral("-"));
}

}  // namespace
}  // namespace sbx::ui::testing
