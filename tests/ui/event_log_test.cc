// The event log: every broker event, filterable, saved as the JSON lines sbx-broker prints.
#include "ui/event_log.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <QComboBox>
#include <QCoreApplication>
#include <QLineEdit>
#include <QScrollBar>
#include <QTableView>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/ui/ui_test_util.h"
#include "tests/unit/test_util.h"
#include "ui/broker_bridge.h"
#include "ui/main_window.h"

namespace sbx::ui::testing {
namespace {

TEST(EventLogTest, LogsFiltersAndSavesJsonLines) {
  WindowEnv env;
  EventLog* log = env.window->event_log();
  int a = env.SpawnDrawing("sbx://plasma");
  int b = env.SpawnDrawing("sbx://clock");
  size_t mark = env.recorder->size();
  ASSERT_TRUE(SignalPid(env.broker->Get(a)->pid, SIGKILL));
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kReady, a, 10s, mark));

  // Every event the broker emitted is in the log, in order.
  ASSERT_EQ(static_cast<size_t>(log->model()->rowCount()), env.recorder->size());
  for (size_t i = 0; i < env.recorder->size(); ++i) {
    EXPECT_EQ(log->model()->event(static_cast<int>(i)).type, env.recorder->events()[i].type);
  }
  // Coloured by kind.
  QVariant colour =
      log->model()->data(log->model()->index(0, EventLogModel::kEvent), Qt::ForegroundRole);
  EXPECT_TRUE(colour.isValid());

  // Filter by kind through the combo box, as a person would.
  int exited_index = log->type_combo()->findText(QStringLiteral("exited"));
  ASSERT_GE(exited_index, 0);
  log->type_combo()->setCurrentIndex(exited_index);
  ASSERT_EQ(log->filter()->rowCount(), 1);
  // Then by text as well: nothing about renderer b exited.
  log->filter_edit()->setText(QStringLiteral("SIGKILL"));
  EXPECT_EQ(log->filter()->rowCount(), 1);
  log->filter_edit()->setText(QStringLiteral("no such text"));
  EXPECT_EQ(log->filter()->rowCount(), 0);
  log->type_combo()->setCurrentIndex(0);
  log->filter_edit()->setText(QStringLiteral("sbx://clock"));
  int clock_rows = log->filter()->rowCount();
  EXPECT_GE(clock_rows, 2);  // spawned and ready of b

  // Save what is shown: one JSON object per line, the sbx-broker --json form.
  test::ScratchDir dir("sbx-ui-test");
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.path() + "/events.jsonl";
  auto saved = log->SaveJsonLines(QString::fromStdString(path));
  ASSERT_TRUE(saved) << saved.error().ToString();
  EXPECT_EQ(*saved, clock_rows);
  std::ifstream in(path);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["id"], b);
    EXPECT_TRUE(j.contains("event"));
    EXPECT_TRUE(j.contains("t_ms"));
  }
  EXPECT_EQ(lines, clock_rows);
  log->filter_edit()->clear();
  EXPECT_FALSE(log->SaveJsonLines(QStringLiteral("/nonexistent-dir/x.jsonl")));
}

// The log follows new events until the person scrolls up, filtered or not, and a filter that
// is cleared again does not stop it.
TEST(EventLogTest, FollowsNewEventsAfterItsFilterIsCleared) {
  auto broker = Broker::Create(TestOptions());
  ASSERT_TRUE(broker);
  BrokerBridge bridge(**broker);
  EventLog log(&bridge);
  log.resize(480, 240);
  log.show();
  QScrollBar* sb = log.table()->verticalScrollBar();
  int next_id = 1;
  auto emit_events = [&](int n) {
    for (int i = 0; i < n; ++i) {
      BrokerEvent e;
      e.type = EventType::kSpawned;
      e.id = next_id++;
      e.page = e.id % 10 == 0 ? "sbx://clock" : "sbx://plasma";
      emit bridge.brokerEvent(e);
    }
    QCoreApplication::processEvents();
  };
  auto at_bottom = [&] { return sb->maximum() > 0 && sb->value() == sb->maximum(); };
  emit_events(60);
  EXPECT_TRUE(at_bottom()) << sb->value() << " of " << sb->maximum();

  log.filter_edit()->setText(QStringLiteral("sbx://clock"));
  QCoreApplication::processEvents();
  emit_events(60);
  EXPECT_EQ(log.filter()->rowCount(), 12);
  log.filter_edit()->clear();
  QCoreApplication::processEvents();  // the view lays the rows out again before more arrive
  emit_events(5);
  EXPECT_TRUE(log.following());
  EXPECT_TRUE(at_bottom()) << sb->value() << " of " << sb->maximum();

  // The same through the kind filter.
  log.type_combo()->setCurrentIndex(log.type_combo()->findText(QStringLiteral("ready")));
  QCoreApplication::processEvents();
  log.type_combo()->setCurrentIndex(0);
  QCoreApplication::processEvents();
  emit_events(5);
  EXPECT_TRUE(at_bottom()) << sb->value() << " of " << sb->maximum();

  // Scrolled up to read: new events leave the view where the person put it.
  sb->setValue(0);
  emit_events(5);
  EXPECT_FALSE(log.following());
  EXPECT_EQ(sb->value(), 0);
  // Back at the bottom, it follows again.
  sb->setValue(sb->maximum());
  emit_events(5);
  EXPECT_TRUE(at_bottom());
}

// A renderer's output is a row of kind `log`: the line in Details, found by the kind filter.
TEST(EventLogTest, ShowsARendererLineAsALogRow) {
  EventLogModel model;
  BrokerEvent line;
  line.type = EventType::kLog;
  line.id = 4;
  line.line = "hello from a renderer";
  model.Append(line);
  BrokerEvent note;
  note.type = EventType::kLog;
  note.id = 4;
  note.dropped_lines = 7;
  note.dropped_bytes = 900;
  model.Append(note);
  ASSERT_EQ(model.rowCount(), 2);
  EXPECT_EQ(model.data(model.index(0, EventLogModel::kEvent)).toString(), QStringLiteral("log"));
  EXPECT_TRUE(model.data(model.index(0, EventLogModel::kDetails))
                  .toString()
                  .contains(QStringLiteral("hello from a renderer")));
  EXPECT_TRUE(model.data(model.index(1, EventLogModel::kDetails))
                  .toString()
                  .contains(QStringLiteral("dropped 7 lines, 900 bytes")));
  EventLogFilter filter;
  filter.setSourceModel(&model);
  filter.SetType(EventType::kLog);
  EXPECT_EQ(filter.rowCount(), 2);
}

TEST(EventLogTest, BoundedInSize) {
  EventLogModel model;
  BrokerEvent e;
  e.type = EventType::kSpawned;
  for (size_t i = 0; i < EventLogModel::kMaxEntries + 5; ++i) {
    e.id = static_cast<int>(i);
    model.Append(e);
  }
  EXPECT_EQ(static_cast<size_t>(model.rowCount()), EventLogModel::kMaxEntries);
  EXPECT_EQ(model.event(0).id, 5);
}

}  // namespace
}  // namespace sbx::ui::testing
