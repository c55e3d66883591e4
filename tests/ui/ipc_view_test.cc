// The IPC view over a real broker's live traffic: its model passes QAbstractItemModelTester as
// messages pour in, the diagram paints one arrow per message in the mechanism's colour, a pause
// freezes it, and the task manager's process tree shows a stopped renderer in state T.
#include "ui/ipc_view.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <QAbstractItemModelTester>
#include <QDockWidget>
#include <QImage>
#include <QPushButton>
#include <QScrollBar>
#include <QSemaphore>
#include <QStandardItemModel>
#include <QThread>
#include <QTimer>
#include <QTreeView>
#include <atomic>
#include <set>

#include "tests/ui/ui_test_util.h"
#include "ui/broker_bridge.h"
#include "ui/main_window.h"
#include "ui/task_manager.h"

namespace sbx::ui::testing {
namespace {

// Counts the warnings QAbstractItemModelTester reports (in Warning mode it only logs them).
int g_model_warnings = 0;
QtMessageHandler g_previous = nullptr;
void CountModelWarnings(QtMsgType type, const QMessageLogContext& context, const QString& text) {
  if (context.category != nullptr && QByteArray(context.category) == "qt.modeltest") {
    ++g_model_warnings;
  }
  if (g_previous != nullptr) g_previous(type, context, text);
}

std::set<QRgb> ColoursIn(const QImage& image) {
  std::set<QRgb> out;
  for (int y = 0; y < image.height(); ++y) {
    for (int x = 0; x < image.width(); ++x) out.insert(image.pixel(x, y) & 0xffffff);
  }
  return out;
}

TEST(IpcViewTest, TheModelStaysConsistentUnderLiveTrafficAndAcrossARestart) {
  WindowEnv env;
  int id = env.SpawnDrawing();
  IpcModel model(*env.broker);
  g_model_warnings = 0;
  g_previous = qInstallMessageHandler(CountModelWarnings);
  {
    QAbstractItemModelTester tester(&model,
                                    QAbstractItemModelTester::FailureReportingMode::Warning);
    model.SetRenderer(id);
    // Heartbeats come ten a second and frames thirty: past the ring's 512 within some 8 s, so
    // rows are removed at the front as well as added.
    std::set<Mechanism> seen;
    ASSERT_TRUE(WaitUntil(
        [&] {
          model.Refresh();
          for (int r = 0; r < model.rowCount(); ++r) seen.insert(model.record(r).mechanism);
          return seen.contains(Mechanism::kQueue) && seen.contains(Mechanism::kFrames) &&
                 seen.contains(Mechanism::kPipeToBroker) &&
                 env.broker->Get(id)->ipc->recorded > IpcModel::kMaxRows + 50;
        },
        30s));
    EXPECT_EQ(model.rowCount(), static_cast<int>(IpcModel::kMaxRows));
    for (int r = 1; r < model.rowCount(); ++r) {
      EXPECT_LE(model.record(r - 1).t_ns, model.record(r).t_ns) << r;
    }
    QModelIndex cell = model.index(0, IpcModel::kMechanism);
    EXPECT_FALSE(model.data(cell).toString().isEmpty());
    EXPECT_FALSE(model.data(cell, Qt::ToolTipRole).toString().isEmpty());
    // A new process for the same renderer starts the rows over.
    size_t mark = env.recorder->size();
    ASSERT_TRUE(SignalPid(env.broker->Get(id)->pid, SIGKILL));
    ASSERT_TRUE(env.recorder->WaitFor(EventType::kReady, id, 10s, mark));
    model.Refresh();
    pid_t pid = env.broker->Get(id)->pid;
    ASSERT_TRUE(WaitUntil([&] {
      model.Refresh();
      return model.rowCount() > 0;
    }));
    EXPECT_GT(pid, 0);
    model.SetRenderer(0);
    EXPECT_EQ(model.rowCount(), 0);
  }
  qInstallMessageHandler(g_previous);
  EXPECT_EQ(g_model_warnings, 0);
}

TEST(IpcViewTest, TheDiagramDrawsAnArrowPerMessageInItsMechanismsColour) {
  WindowEnv env;
  int id = env.SpawnDrawing();
  IpcView* view = env.window->ipc_view();
  env.window->ipc_dock()->show();
  env.window->ipc_dock()->raise();
  view->resize(900, 220);
  view->SetRenderer(id);
  ASSERT_EQ(view->model()->renderer(), id);
  // Live traffic: frames (shm, pipe-in) and heartbeats (mq) within the diagram's 2 s.
  ASSERT_TRUE(WaitUntil(
      [&] {
        (void)view->diagram()->grab();
        return view->diagram()->painted_arrows() >= 20;
      },
      10s));
  std::set<QRgb> colours = ColoursIn(view->diagram()->grab().toImage());
  for (Mechanism m : {Mechanism::kPipeToBroker, Mechanism::kFrames, Mechanism::kQueue}) {
    EXPECT_TRUE(colours.contains(MechanismColor(m).rgb() & 0xffffff))
        << MechanismName(m) << " is not painted";
  }
  EXPECT_FALSE(colours.contains(MechanismColor(Mechanism::kSignal).rgb() & 0xffffff))
      << "no signal was sent";

  // Paused, the rows stop growing and the scroll bar reaches back through them.
  view->pause_button()->click();
  ASSERT_TRUE(view->paused());
  int rows = view->model()->rowCount();
  // Three of the view's refresh periods pass with the event loop running.
  (void)WaitUntil([] { return false; }, 300ms);
  EXPECT_EQ(view->model()->rowCount(), rows);
  EXPECT_TRUE(view->scroll_bar()->isEnabled());
  EXPECT_LT(view->scroll_bar()->minimum(), view->scroll_bar()->maximum());
  view->pause_button()->click();
  EXPECT_FALSE(view->paused());
}

// The process tree as last shown, after asking for a fresh read (shown when it is done, so
// callers wait with WaitUntil): the broker's row, the root of everything else, or null.
QStandardItem* FreshBrokerRow(TaskManager* tm) {
  tm->RefreshProcesses();
  QStandardItemModel* m = tm->process_model();
  return m->rowCount() == 1 ? m->item(0, 0) : nullptr;
}

TEST(IpcViewTest, TheProcessTreeShowsTheBrokerTheHolderTheInitAndAStoppedRendererAsT) {
  WindowEnv env;
  int id = env.SpawnDrawing();
  pid_t pid = env.broker->Get(id)->pid;
  ASSERT_TRUE(SignalPid(pid, SIGSTOP));
  TaskManager* tm = env.window->task_manager();
  QStandardItemModel* m = tm->process_model();
  // The broker's row, then (sandboxed) the holder and the init with the renderer below it.
  auto renderer_state = [&]() -> QString {
    QStandardItem* broker = FreshBrokerRow(tm);
    if (broker == nullptr) return {};
    for (int r = 0; r < broker->rowCount(); ++r) {
      QStandardItem* init = broker->child(r, 0);
      if (!init->text().startsWith(QStringLiteral("init")) || init->rowCount() != 1) continue;
      if (init->child(0, 0)->text() != QStringLiteral("renderer %1").arg(id)) continue;
      return init->child(0, 3)->text();
    }
    return {};
  };
  EXPECT_TRUE(WaitUntil([&] { return renderer_state() == QStringLiteral("T"); }, 5s))
      << renderer_state().toStdString();
  EXPECT_TRUE(m->item(0, 0)->text().startsWith(QStringLiteral("broker")));
  bool holder = false;
  for (int r = 0; r < m->item(0, 0)->rowCount(); ++r) {
    holder |= m->item(0, 0)->child(r, 0)->text() == QStringLiteral("namespace holder");
  }
  EXPECT_TRUE(holder);
  ASSERT_TRUE(SignalPid(pid, SIGCONT));
  EXPECT_TRUE(WaitUntil([&] { return renderer_state() != QStringLiteral("T"); }, 5s));
}

// At 500 renderers the tree is a thousand processes and a third of a second of reads: they run
// on a thread of their own, and the GUI thread goes on while they are held.
TEST(IpcViewTest, TheProcessTreeIsReadWithoutHoldingTheGuiThread) {
  // Before the window: a read still running when the test ends may call the hook until the task
  // manager's reader has finished it.
  QSemaphore inside_a_read, go_on;
  std::atomic<bool> first{true};
  std::atomic<bool> read_on_gui_thread{false};
  WindowEnv env;
  env.SpawnDrawing();
  TaskManager* tm = env.window->task_manager();
  int shown = 0;
  QObject::connect(tm, &TaskManager::processesShown, tm, [&] { ++shown; });
  QThread* gui = QThread::currentThread();
  tm->SetReadHookForTest([&, gui](std::string_view) {
    if (QThread::currentThread() == gui) read_on_gui_thread = true;
    if (first.exchange(false)) {
      inside_a_read.release();
      (void)go_on.tryAcquire(1, 10'000);  // bounded: a read on the GUI thread would wait forever
    }
  });
  // A read begun before the hook was set finishes first; the next one takes the hook.
  ASSERT_TRUE(WaitUntil(
      [&] {
        tm->RefreshProcesses();
        return inside_a_read.tryAcquire();
      },
      10s));
  shown = 0;
  bool fired = false;
  QTimer::singleShot(0, tm, [&] { fired = true; });
  EXPECT_TRUE(WaitUntil([&] { return fired; }, 5s)) << "the GUI thread waited for the read";
  EXPECT_EQ(shown, 0);
  go_on.release();
  EXPECT_TRUE(WaitUntil([&] { return shown > 0; }, 10s));
  EXPECT_NE(FreshBrokerRow(tm), nullptr);
  EXPECT_FALSE(read_on_gui_thread);
  tm->SetReadHookForTest({});
}

// The spare renderer waits under an init of its own, named for what it is, until a spawn takes
// it; then that row is the new renderer's and another spare appears.
TEST(IpcViewTest, TheProcessTreeShowsTheSpareRendererWaitingForTheNextSpawn) {
  WindowEnv env;
  env.SpawnDrawing();
  TaskManager* tm = env.window->task_manager();
  auto spare_pid = [&]() -> QString {
    QStandardItem* broker = FreshBrokerRow(tm);
    if (broker == nullptr) return {};
    for (int r = 0; r < broker->rowCount(); ++r) {
      // Sandboxed, the spare sits under its init; the pid is each row's second column.
      QStandardItem* parent = broker;
      int at = r;
      if (broker->child(r, 0)->text() == QStringLiteral("init of the spare renderer")) {
        parent = broker->child(r, 0);
        at = 0;
        if (parent->rowCount() != 1) continue;
      }
      if (parent->child(at, 0)->text().startsWith(QStringLiteral("spare renderer"))) {
        return parent->child(at, 1)->text();
      }
    }
    return {};
  };
  QString first;
  ASSERT_TRUE(WaitUntil([&] { return !(first = spare_pid()).isEmpty(); }, 10s));
  int id = env.SpawnDrawing();
  EXPECT_EQ(QString::number(env.broker->Get(id)->pid), first) << "the spawn took the spare";
  QString next;
  EXPECT_TRUE(WaitUntil([&] { return !(next = spare_pid()).isEmpty() && next != first; }, 10s));
}

}  // namespace
}  // namespace sbx::ui::testing
