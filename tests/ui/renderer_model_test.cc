// The task manager's model under QAbstractItemModelTester, fed by a real broker.
#include "ui/renderer_model.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <QAbstractItemModelTester>
#include <QString>
#include <QStringList>

#include "tests/ui/ui_test_util.h"
#include "ui/broker_bridge.h"

namespace sbx::ui::testing {
namespace {

// The tester reports in Warning mode through qWarning; collect what it says so a failure is a
// GoogleTest failure with the tester's words, not an abort.
QStringList* g_warnings = nullptr;
void CollectWarnings(QtMsgType type, const QMessageLogContext&, const QString& msg) {
  if (type != QtDebugMsg && g_warnings != nullptr) g_warnings->append(msg);
}

class ModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_warnings = &warnings_;
    previous_ = qInstallMessageHandler(CollectWarnings);
  }
  void TearDown() override {
    qInstallMessageHandler(previous_);
    g_warnings = nullptr;
    for (const QString& w : warnings_) {
      EXPECT_FALSE(w.contains(QStringLiteral("FAIL"))) << w.toStdString();
    }
  }
  QString Cell(const RendererModel& m, int id, int column) {
    int row = m.RowForId(id);
    return row < 0 ? QString() : m.data(m.index(row, column)).toString();
  }

  QStringList warnings_;
  QtMessageHandler previous_ = nullptr;
};

TEST_F(ModelTest, RowsAppearChangeStateAndDisappearAsEventsArrive) {
  BrokerOptions o = TestOptions();
  o.hang_timeout_ms = 300;
  auto broker = Broker::Create(o);
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  EventRecorder rec(&bridge);
  RendererModel model(&bridge);
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::Warning);
  EXPECT_EQ(model.rowCount(), 0);
  EXPECT_EQ(model.columnCount(), RendererModel::kColumnCount);

  auto a = (*broker)->Spawn("sbx://plasma");
  auto b = (*broker)->Spawn("sbx://clock");
  ASSERT_TRUE(a && b);
  // Rows appear on `spawned`, before the 1 s refresh could add them.
  ASSERT_TRUE(rec.WaitFor(EventType::kSpawned, *b));
  EXPECT_EQ(model.rowCount(), 2);
  EXPECT_EQ(model.IdAt(0), *a);
  EXPECT_EQ(model.IdAt(1), *b);
  EXPECT_EQ(Cell(model, *b, RendererModel::kPage), QStringLiteral("sbx://clock"));
  ASSERT_TRUE(WaitUntil([&] { return Cell(model, *a, RendererModel::kState) == "running"; }));

  // SIGSTOP: the watchdog's `unresponsive` reaches the row.
  pid_t pid = (*broker)->Get(*a)->pid;
  ASSERT_TRUE(SignalPid(pid, SIGSTOP));
  ASSERT_TRUE(rec.WaitFor(EventType::kUnresponsive, *a));
  EXPECT_EQ(Cell(model, *a, RendererModel::kState), QStringLiteral("unresponsive"));

  // SIGKILL: exited, then a new process; the row keeps its id and counts the restart.
  size_t mark = rec.size();
  ASSERT_TRUE(SignalPid(pid, SIGKILL));
  ASSERT_TRUE(rec.WaitFor(EventType::kExited, *a, 10s, mark));
  ASSERT_TRUE(rec.WaitFor(EventType::kReady, *a, 10s, mark));
  EXPECT_EQ(Cell(model, *a, RendererModel::kRestarts), QStringLiteral("1"));
  EXPECT_EQ(Cell(model, *a, RendererModel::kLastExit), QStringLiteral("killed by SIGKILL"));
  EXPECT_NE(Cell(model, *a, RendererModel::kPid), QString::number(pid));

  // The 1 s refresh fills the rates and /proc figures; force one now.
  ASSERT_TRUE(WaitUntil([&] {
    model.Refresh();
    const RendererRow* r = model.Find(*b);
    return r != nullptr && r->cpu_percent >= 0 && r->rss_bytes > 0 && r->frames_per_s > 0;
  }));
  EXPECT_FALSE(Cell(model, *b, RendererModel::kSandbox).isEmpty());

  // Closing removes the row.
  ASSERT_TRUE((*broker)->Close(*a));
  ASSERT_TRUE(rec.WaitFor(EventType::kClosed, *a));
  EXPECT_EQ(model.rowCount(), 1);
  EXPECT_EQ(model.RowForId(*a), -1);
  model.Refresh();
  EXPECT_EQ(model.rowCount(), 1);
}

TEST_F(ModelTest, SortRoleGivesNumbers) {
  auto broker = Broker::Create(TestOptions());
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  EventRecorder rec(&bridge);
  RendererModel model(&bridge);
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::Warning);
  auto id = (*broker)->Spawn();
  ASSERT_TRUE(id);
  ASSERT_TRUE(rec.WaitFor(EventType::kReady, *id));
  model.Refresh();
  QVariant pid = model.data(model.index(0, RendererModel::kPid), RendererModel::kSortRole);
  EXPECT_EQ(pid.typeId(), QMetaType::Int);
  EXPECT_EQ(model.data(model.index(0, 0), RendererModel::kIdRole).toInt(), *id);
  for (int c = 0; c < RendererModel::kColumnCount; ++c) {
    EXPECT_TRUE(model.headerData(c, Qt::Horizontal).isValid()) << c;
  }
}

TEST_F(ModelTest, EveryHeaderSaysWhatItsColumnMeasures) {
  auto broker = Broker::Create(TestOptions());
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  RendererModel model(&bridge);
  for (int c = 0; c < RendererModel::kColumnCount; ++c) {
    EXPECT_FALSE(model.headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString().isEmpty()) << c;
  }
  auto tip = [&](int c) { return model.headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString(); };
  EXPECT_TRUE(tip(RendererModel::kMemory).contains(QStringLiteral("RSS")));
  EXPECT_TRUE(tip(RendererModel::kMemory).contains(QStringLiteral("PSS")));
  EXPECT_TRUE(tip(RendererModel::kMessagesPerSecond).contains(QStringLiteral("per second")));
  EXPECT_TRUE(tip(RendererModel::kHeartbeatAge).contains(QStringLiteral("since the last")));
}

// A dead renderer has no sandbox to judge, and bringing it back by hand is not a restart.
TEST_F(ModelTest, AnExitedRowHasNoSandboxVerdictAndAReloadIsNoRestart) {
  BrokerOptions o = TestOptions();
  o.restart = false;
  auto broker = Broker::Create(o);
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  EventRecorder rec(&bridge);
  RendererModel model(&bridge);
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::Warning);
  auto id = (*broker)->Spawn("sbx://clock");
  ASSERT_TRUE(id);
  ASSERT_TRUE(rec.WaitFor(EventType::kReady, *id));
  ASSERT_TRUE(WaitUntil([&] {
    model.Refresh();
    const RendererRow* r = model.Find(*id);
    return r != nullptr && !r->sandbox_verdict.isEmpty();
  }));
  EXPECT_NE(Cell(model, *id, RendererModel::kSandbox), QStringLiteral("-"));

  size_t mark = rec.size();
  ASSERT_TRUE(SignalPid((*broker)->Get(*id)->pid, SIGKILL));
  ASSERT_TRUE(rec.WaitFor(EventType::kExited, *id, 10s, mark));
  model.Refresh();
  EXPECT_EQ(Cell(model, *id, RendererModel::kState), QStringLiteral("exited"));
  EXPECT_EQ(Cell(model, *id, RendererModel::kSandbox), QStringLiteral("-"));
  EXPECT_TRUE(model.data(model.index(model.RowForId(*id), RendererModel::kSandbox), Qt::ToolTipRole)
                  .toString()
                  .isEmpty());

  ASSERT_TRUE((*broker)->Reload(*id));
  ASSERT_TRUE(rec.WaitFor(EventType::kReady, *id, 10s, mark));
  model.Refresh();
  EXPECT_EQ(Cell(model, *id, RendererModel::kRestarts), QStringLiteral("0"));
  EXPECT_EQ((*broker)->Stats().restarts, 0u);
}

}  // namespace
}  // namespace sbx::ui::testing
