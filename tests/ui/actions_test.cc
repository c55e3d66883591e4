// Every window action reaches the broker: each is triggered as a person would (the QAction,
// the button) and checked through the broker's own events and state, never through mocks.
#include <gtest/gtest.h>
#include <signal.h>

#include <QAction>
#include <QDockWidget>
#include <QPushButton>

#include "tests/ui/ui_test_util.h"
#include "ui/broker_bridge.h"
#include "ui/main_window.h"
#include "ui/renderer_grid.h"
#include "ui/renderer_view.h"
#include "ui/task_manager.h"

namespace sbx::ui::testing {
namespace {

// Answers the window's questions at once instead of opening a modal dialog.
class ScriptedPrompter : public Prompter {
 public:
  std::optional<std::string> url;
  std::optional<int> number;
  std::optional<std::string> AskUrl(QWidget*, const QString&, const std::string&) override {
    return url;
  }
  std::optional<int> AskInt(QWidget*, const QString&, const QString&, int, int, int) override {
    return number;
  }
};

struct ExitCase {
  const char* action;
  ExitStatus status;
  int signal;  // 0: any
};

void PrintTo(const ExitCase& c, std::ostream* os) { *os << c.action; }

class ExitActionTest : public ::testing::TestWithParam<ExitCase> {};

TEST_P(ExitActionTest, EndsTheRendererWithTheRightClassification) {
  WindowEnv env;
  int id = env.SpawnDrawing("sbx://clock");
  env.window->SetCurrent(id);
  QAction* a = env.window->action(QString::fromLatin1(GetParam().action));
  ASSERT_NE(a, nullptr) << GetParam().action;
  ASSERT_TRUE(a->isEnabled());
  size_t mark = env.recorder->size();
  a->trigger();
  auto exited = env.recorder->WaitFor(EventType::kExited, id, 20s, mark);
  ASSERT_TRUE(exited) << GetParam().action;
  EXPECT_EQ(exited->exit->status, GetParam().status)
      << GetParam().action << ": " << ExitStatusName(exited->exit->status);
  if (GetParam().signal != 0) {
    EXPECT_EQ(exited->exit->signal, GetParam().signal);
  }
  // ... and the broker restarts it.
  EXPECT_TRUE(env.recorder->WaitFor(EventType::kReady, id, 10s, mark));
}

INSTANTIATE_TEST_SUITE_P(
    Actions, ExitActionTest,
    ::testing::Values(ExitCase{"action-kill-SIGTERM", ExitStatus::kKilled, SIGTERM},
                      ExitCase{"action-kill-SIGKILL", ExitStatus::kKilled, SIGKILL},
                      ExitCase{"action-kill-SIGSEGV", ExitStatus::kCrashed, SIGSEGV},
                      ExitCase{"action-kill-SIGABRT", ExitStatus::kCrashed, SIGABRT},
                      ExitCase{"action-kill-hung-now", ExitStatus::kHung, SIGKILL},
                      ExitCase{"action-crash-segv", ExitStatus::kCrashed, SIGSEGV},
                      ExitCase{"action-crash-abort", ExitStatus::kCrashed, SIGABRT},
                      ExitCase{"action-crash-stack-overflow", ExitStatus::kCrashed, 0},
                      ExitCase{"action-oom", ExitStatus::kOom, 0},
                      ExitCase{"action-bad-ipc", ExitStatus::kBadMessage, SIGKILL}),
    [](const auto& info) {
      std::string name = info.param.action;
      std::string out;
      for (char c : name.substr(7)) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return out;
    });

TEST(ActionsTest, StopHangAndContinue) {
  BrokerOptions o = TestOptions();
  o.hang_timeout_ms = 300;
  WindowEnv env(o);
  int id = env.SpawnDrawing("sbx://clock");
  env.window->SetCurrent(id);
  size_t mark = env.recorder->size();
  env.window->action(QStringLiteral("action-kill-SIGSTOP"))->trigger();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kUnresponsive, id, 10s, mark));
  env.window->action(QStringLiteral("action-kill-SIGCONT"))->trigger();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kResponsive, id, 10s, mark));

  // The hang drill: spinning without heartbeats.
  mark = env.recorder->size();
  env.window->action(QStringLiteral("action-hang"))->trigger();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kUnresponsive, id, 10s, mark));
}

TEST(ActionsTest, NewCloseNavigateFpsReload) {
  WindowEnv env;
  auto prompter = std::make_unique<ScriptedPrompter>();
  ScriptedPrompter* ask = prompter.get();
  env.window->set_prompter(std::move(prompter));

  // New renderer (Ctrl+T) on the chosen page; the window selects it.
  ask->url = "sbx://clock";
  size_t mark = env.recorder->size();
  env.window->action(QStringLiteral("action-new"))->trigger();
  auto spawned = env.recorder->WaitFor(
      [](const BrokerEvent& e) { return e.type == EventType::kSpawned; }, 10s, mark);
  ASSERT_TRUE(spawned);
  EXPECT_EQ(spawned->page, "sbx://clock");
  int id = spawned->id;
  EXPECT_EQ(env.window->current_id(), id);
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kReady, id, 10s, mark));

  // Navigate changes the page the broker reports.
  ask->url = "sbx://text/navigated";
  env.window->action(QStringLiteral("action-navigate"))->trigger();
  EXPECT_EQ(env.broker->Get(id)->page, "sbx://text/navigated");
  // ... and the tile's caption says so at once, as the task manager does.
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  EXPECT_TRUE(view->caption_text().contains(QStringLiteral("sbx://text/navigated")))
      << view->caption_text().toStdString();

  // Frame rate reaches the renderer, which reports it in its heartbeats.
  ask->number = 7;
  env.window->action(QStringLiteral("action-fps"))->trigger();
  ASSERT_TRUE(WaitUntil([&] { return env.broker->Get(id)->fps == 7; }));

  // Reload of a live renderer navigates it again: same process, same page.
  pid_t pid = env.broker->Get(id)->pid;
  env.window->action(QStringLiteral("action-reload"))->trigger();
  EXPECT_EQ(env.broker->Get(id)->pid, pid);
  EXPECT_EQ(env.broker->Get(id)->page, "sbx://text/navigated");

  // An invalid page is refused before the broker sees it.
  ask->url = "not a url";
  size_t before = env.recorder->size();
  env.window->action(QStringLiteral("action-new"))->trigger();
  EXPECT_EQ(env.recorder->size(), before);

  // Close (Ctrl+W): closed, and the view is gone.
  mark = env.recorder->size();
  env.window->action(QStringLiteral("action-close"))->trigger();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kClosed, id, 10s, mark));
  ASSERT_TRUE(WaitUntil([&] { return env.window->grid()->View(id) == nullptr; }));
}

TEST(ActionsTest, ReloadStartsADeadRendererAgain) {
  WindowEnv env;
  env.window->action(QStringLiteral("action-auto-restart"))->setChecked(false);
  EXPECT_FALSE(env.broker->options().restart);
  int id = env.SpawnDrawing();
  env.window->SetCurrent(id);
  size_t mark = env.recorder->size();
  env.window->action(QStringLiteral("action-kill-SIGKILL"))->trigger();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kExited, id, 10s, mark));
  // With auto-restart off the broker leaves it dead.
  EXPECT_EQ(env.broker->Get(id)->state, RendererState::kExited);
  EXPECT_FALSE(env.recorder->Has(EventType::kRestarting, id, mark));
  EXPECT_FALSE(env.window->action(QStringLiteral("action-kill-SIGKILL"))->isEnabled());
  ASSERT_TRUE(env.window->action(QStringLiteral("action-reload"))->isEnabled());
  env.window->action(QStringLiteral("action-reload"))->trigger();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kSpawned, id, 10s, mark));
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kReady, id, 10s, mark));
}

TEST(ActionsTest, HangTimeoutAndKillHungSettingsAreLive) {
  BrokerOptions o = TestOptions();
  o.hang_timeout_ms = 60'000;
  WindowEnv env(o);
  auto prompter = std::make_unique<ScriptedPrompter>();
  prompter->number = 250;
  env.window->set_prompter(std::move(prompter));
  env.window->action(QStringLiteral("action-hang-timeout"))->trigger();
  EXPECT_EQ(env.broker->options().hang_timeout_ms, 250);
  env.window->action(QStringLiteral("action-kill-hung"))->setChecked(true);
  EXPECT_TRUE(env.broker->options().kill_hung);

  int id = env.SpawnDrawing("sbx://clock");
  pid_t pid = env.broker->Get(id)->pid;
  size_t mark = env.recorder->size();
  ASSERT_TRUE(SignalPid(pid, SIGSTOP));
  // The new timeout applies (not 60 s), and the watchdog kills: exited `hung`.
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kUnresponsive, id, 10s, mark));
  auto exited = env.recorder->WaitFor(EventType::kExited, id, 10s, mark);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->exit->status, ExitStatus::kHung);
}

TEST(ActionsTest, TaskManagerEndProcess) {
  WindowEnv env;
  int id = env.SpawnDrawing("sbx://clock");
  env.SpawnDrawing("sbx://plasma");
  TaskManager* tm = env.window->task_manager();
  tm->Select(id);
  ASSERT_EQ(tm->selected_id(), id);
  ASSERT_TRUE(tm->end_process_button()->isEnabled());
  size_t mark = env.recorder->size();
  tm->end_process_button()->click();
  auto exited = env.recorder->WaitFor(EventType::kExited, id, 10s, mark);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->exit->status, ExitStatus::kKilled);
  EXPECT_EQ(exited->exit->signal, SIGKILL);
}

TEST(ActionsTest, SelectionFollowsTilesAndTheTaskManager) {
  WindowEnv env;
  int a = env.SpawnDrawing();
  int b = env.SpawnDrawing("sbx://clock");
  env.window->SetCurrent(b);
  EXPECT_EQ(env.window->task_manager()->selected_id(), b);
  env.window->task_manager()->Select(a);
  emit env.window->task_manager()->selectedChanged(a);
  EXPECT_EQ(env.window->current_id(), a);
}

TEST(ActionsTest, ShiftEscTogglesTheTaskManager) {
  WindowEnv env;
  QAction* toggle = env.window->action(QStringLiteral("action-task-manager"));
  ASSERT_NE(toggle, nullptr);
  EXPECT_EQ(toggle->shortcut(), QKeySequence(Qt::SHIFT | Qt::Key_Escape));
  bool shown = env.window->task_manager_dock()->isVisible();
  toggle->trigger();
  EXPECT_NE(env.window->task_manager_dock()->isVisible(), shown);
  toggle->trigger();
  EXPECT_EQ(env.window->task_manager_dock()->isVisible(), shown);
}

TEST(ActionsTest, EscapeDrillReportsFindings) {
  WindowEnv env;
  int id = env.SpawnDrawing("sbx://clock");
  env.window->SetCurrent(id);
  size_t mark = env.recorder->size();
  env.window->action(QStringLiteral("action-crash-escape"))->trigger();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kDrillReport, id, 10s, mark));
}

TEST(ActionsTest, CloseWindowClosesEveryRendererFirst) {
  WindowEnv env;
  int a = env.SpawnDrawing();
  int b = env.SpawnDrawing("sbx://clock");
  std::vector<pid_t> pids = {env.broker->Get(a)->pid, env.broker->Get(b)->pid};
  EXPECT_FALSE(env.window->close()) << "the first close waits for the renderers";
  ASSERT_TRUE(WaitUntil([&] { return env.window->isHidden(); }));
  EXPECT_TRUE(env.broker->finished());
  EXPECT_TRUE(env.recorder->Has(EventType::kClosed, a));
  EXPECT_TRUE(env.recorder->Has(EventType::kClosed, b));
  for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0), 0) << pid << " still exists";
}

}  // namespace
}  // namespace sbx::ui::testing
