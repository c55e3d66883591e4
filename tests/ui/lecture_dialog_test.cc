// Help > The lecture's table: the window runs sbx-bench --lecture and shows every row it
// measured, facts included. Timings are never asserted.
#include "ui/lecture_dialog.h"

#include <gtest/gtest.h>

#include <QAction>
#include <QMainWindow>
#include <QTableWidget>
#include <QTest>

namespace sbx::ui {
namespace {

QString BenchPath() { return QStringLiteral(SBX_BIN_DIR "/sbx-bench"); }

int FindRow(QTableWidget* t, const QString& name) {
  for (int r = 0; r < t->rowCount(); ++r) {
    if (t->item(r, 1) != nullptr && t->item(r, 1)->text() == name) return r;
  }
  return -1;
}

TEST(LectureDialogTest, TheHelpMenuOpensTheTable) {
  QMainWindow window;
  AddLectureHelp(&window);
  auto* action = window.findChild<QAction*>(QStringLiteral("action-lecture"));
  ASSERT_NE(action, nullptr);
  action->trigger();
  auto* dialog = window.findChild<LectureDialog*>();
  ASSERT_NE(dialog, nullptr);
  EXPECT_TRUE(dialog->isVisible());
  EXPECT_FALSE(dialog->running()) << "nothing is measured until asked";
}

TEST(LectureDialogTest, AQuickRunFillsEveryRowWithTheMeasuredFacts) {
  LectureDialog dialog(BenchPath());
  bool done = false, ok = false;
  QObject::connect(&dialog, &LectureDialog::finished, [&](bool all) {
    done = true;
    ok = all;
  });
  dialog.Measure(/*quick=*/true);
  ASSERT_TRUE(QTest::qWaitFor([&] { return done; }, 120'000)) << dialog.status().toStdString();
  EXPECT_TRUE(ok) << dialog.status().toStdString();
  QTableWidget* t = dialog.table();
  for (const char* name : {"thread vs process", "memory per process", "switch on one CPU",
                           "copy-on-write", "pipe", "TCP loopback", "POSIX queue"}) {
    int row = FindRow(t, QString::fromLatin1(name));
    ASSERT_GE(row, 0) << name;
    EXPECT_FALSE(t->item(row, 2)->text().isEmpty()) << name;
    EXPECT_FALSE(t->item(row, 3)->text().isEmpty()) << name << ": what it shows";
  }
  int child = FindRow(t, QStringLiteral("a child's write"));
  ASSERT_GE(child, 0);
  EXPECT_TRUE(t->item(child, 2)->text().contains(QStringLiteral("seen by the parent: not seen")))
      << t->item(child, 2)->text().toStdString();
}

TEST(LectureDialogTest, AMissingBenchIsSaidSo) {
  LectureDialog dialog(QStringLiteral("/nonexistent/sbx-bench"));
  bool done = false, ok = true;
  QObject::connect(&dialog, &LectureDialog::finished, [&](bool all) {
    done = true;
    ok = all;
  });
  dialog.Measure(true);
  ASSERT_TRUE(QTest::qWaitFor([&] { return done; }, 10'000));
  EXPECT_FALSE(ok);
  EXPECT_TRUE(dialog.status().contains(QStringLiteral("Could not start")));
}

}  // namespace
}  // namespace sbx::ui
