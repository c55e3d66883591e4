// A renderer's tile with real renderers: live pixels, the sad tab after kill -9 and the new
// process's frames, the unresponsive bar after SIGSTOP and its Kill button.
#include "ui/renderer_view.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <QElapsedTimer>
#include <QImage>
#include <QLabel>
#include <QPushButton>
#include <iostream>

#include "ipc/posix.h"
#include "tests/ui/ui_test_util.h"
#include "ui/broker_bridge.h"
#include "ui/format.h"
#include "ui/main_window.h"
#include "ui/renderer_grid.h"
#include "ui/sad_tab.h"

namespace sbx::ui::testing {
namespace {

using Mode = RendererView::Mode;

// Records every mode a view passes through, with when, so a sad tab that lasts less than one
// wait-loop iteration is still seen.
class ModeLog : public QObject {
 public:
  explicit ModeLog(RendererView* view) {
    connect(view, &RendererView::modeChanged, this, [this](int, Mode m) {
      modes.push_back({m, MonotonicNs()});
    });
  }
  int64_t FirstNs(Mode m) const {
    for (const auto& [mode, ns] : modes) {
      if (mode == m) return ns;
    }
    return 0;
  }
  std::vector<std::pair<Mode, int64_t>> modes;
};

TEST(RendererViewTest, ShowsChangingPixelsOverTime) {
  WindowEnv env;
  int id = env.SpawnDrawing("sbx://plasma");
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  QImage first = view->frame_widget()->grab().toImage();
  uint64_t painted = view->frame_widget()->frames_painted();
  // The pacer repaints on its own as frames arrive: no grab needed to advance.
  ASSERT_TRUE(WaitUntil([&] { return view->frame_widget()->frames_painted() >= painted + 5; }));
  QImage later = view->frame_widget()->grab().toImage();
  ASSERT_EQ(first.size(), later.size());
  EXPECT_NE(first, later) << "an animated page must change the view's pixels";
  // Not a blank tile: the frame has more than one colour along its middle row. (Two fixed
  // points may happen to share a colour at some instant of the animation; a whole row does not.)
  const int y = later.height() / 2;
  const QColor first_pixel = later.pixelColor(0, y);
  bool varied = false;
  for (int x = 1; x < later.width() && !varied; ++x) varied = later.pixelColor(x, y) != first_pixel;
  EXPECT_TRUE(varied) << "the middle row is one colour";
}

TEST(RendererViewTest, KillNineShowsTheSadTabThenTheNewProcessFrames) {
  WindowEnv env;
  int id = env.SpawnDrawing("sbx://clock");
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  ModeLog log(view);
  pid_t old_pid = view->pid();
  ASSERT_GT(old_pid, 0);
  size_t mark = env.recorder->size();
  int64_t killed_at = MonotonicNs();
  ASSERT_TRUE(SignalPid(old_pid, SIGKILL));

  ASSERT_TRUE(WaitUntil([&] { return log.FirstNs(Mode::kSadTab) != 0; }, 5s));
  double sad_ms = static_cast<double>(log.FirstNs(Mode::kSadTab) - killed_at) / 1e6;
  std::cout << "[ measure  ] kill -9 to sad tab: " << sad_ms << " ms\n";
  auto exited = env.recorder->WaitFor(EventType::kExited, id, 5s, mark);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->exit->status, ExitStatus::kKilled);
  EXPECT_EQ(exited->exit->signal, SIGKILL);
  auto* details = view->findChild<QLabel*>(QStringLiteral("sad-details"));
  ASSERT_NE(details, nullptr);
  EXPECT_TRUE(details->text().contains(QStringLiteral("SIGKILL"))) << details->text().toStdString();
  EXPECT_TRUE(details->text().contains(QStringLiteral("killed")));

  // Then the replacement's frames: a new pid, live, painting.
  ASSERT_TRUE(WaitUntil([&] {
    return view->mode() == Mode::kLive && view->pid() != old_pid && view->pid() > 0 &&
           view->frame_widget()->painted_pid() == view->pid();
  }));
  uint64_t painted = view->frame_widget()->frames_painted();
  ASSERT_TRUE(WaitUntil([&] { return view->frame_widget()->frames_painted() >= painted + 3; }));
  // The order it went through: sad tab before live again.
  int64_t sad = log.FirstNs(Mode::kSadTab);
  int64_t live_again = 0;
  for (const auto& [m, ns] : log.modes) {
    if (m == Mode::kLive && ns > sad) live_again = ns;
  }
  EXPECT_GT(live_again, sad);
}

TEST(RendererViewTest, StoppedRendererGetsTheUnresponsiveBarAndKillMeansHung) {
  BrokerOptions o = TestOptions();
  o.hang_timeout_ms = 400;
  WindowEnv env(o);
  int stopped = env.SpawnDrawing("sbx://clock");
  int other = env.SpawnDrawing("sbx://plasma");
  RendererView* view = env.window->grid()->View(stopped);
  RendererView* other_view = env.window->grid()->View(other);
  ASSERT_TRUE(view && other_view);
  pid_t pid = view->pid();
  size_t mark = env.recorder->size();
  ASSERT_TRUE(SignalPid(pid, SIGSTOP));
  uint64_t other_painted = other_view->frame_widget()->frames_painted();

  ASSERT_TRUE(WaitUntil([&] { return view->unresponsive_bar_visible(); }, 10s));
  EXPECT_EQ(view->mode(), Mode::kUnresponsive);
  EXPECT_TRUE(view->frame_widget()->frozen());
  // The window never blocks on a stopped renderer: the other view kept animating meanwhile.
  EXPECT_GE(other_view->frame_widget()->frames_painted(), other_painted + 5);

  // Wait hides the bar; the renderer stays unresponsive.
  auto* wait = view->findChild<QPushButton*>(QStringLiteral("unresponsive-wait"));
  ASSERT_NE(wait, nullptr);
  wait->click();
  EXPECT_FALSE(view->unresponsive_bar_visible());
  EXPECT_EQ(view->mode(), Mode::kUnresponsive);
  // ... and asks again after one more hang timeout.
  ASSERT_TRUE(WaitUntil([&] { return view->unresponsive_bar_visible(); }, 5s));

  auto* kill = view->findChild<QPushButton*>(QStringLiteral("unresponsive-kill"));
  ASSERT_NE(kill, nullptr);
  kill->click();
  auto exited = env.recorder->WaitFor(EventType::kExited, stopped, 5s, mark);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->exit->status, ExitStatus::kHung);
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kRestarting, stopped, 5s, mark));
  ASSERT_TRUE(WaitUntil([&] {
    return view->mode() == Mode::kLive && view->pid() != pid &&
           view->frame_widget()->painted_pid() == view->pid();
  }));
}

TEST(RendererViewTest, CrashLoopShowsItsOwnPanelAndReloadStartsAgain) {
  BrokerOptions o = TestOptions();
  o.restart_policy.max_crashes = 2;
  o.restart_policy.base_delay_ms = 10;
  WindowEnv env(o);
  int id = env.SpawnDrawing("sbx://clock");
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  // Kill each new process as soon as it exists until the broker calls it a crash loop.
  ASSERT_TRUE(WaitUntil([&] {
    if (env.recorder->Has(EventType::kFailed, id)) return true;
    if (auto snap = env.broker->Get(id); snap && snap->pid > 0) SignalPid(snap->pid, SIGKILL);
    return false;
  }));
  ASSERT_TRUE(WaitUntil([&] { return view->mode() == Mode::kFailed; }, 2s));
  auto* title = view->findChild<QLabel*>(QStringLiteral("sad-title"));
  ASSERT_NE(title, nullptr);
  EXPECT_TRUE(title->text().contains(QStringLiteral("keeps crashing")));
  auto* reload = view->findChild<QPushButton*>(QStringLiteral("sad-reload"));
  ASSERT_NE(reload, nullptr);
  size_t mark = env.recorder->size();
  reload->click();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kSpawned, id, 5s, mark));
  ASSERT_TRUE(WaitUntil([&] { return view->mode() == Mode::kLive; }));
}

TEST(RendererViewTest, SadTabReloadWithoutAutoRestart) {
  BrokerOptions o = TestOptions();
  o.restart = false;
  WindowEnv env(o);
  int id = env.SpawnDrawing("sbx://plasma");
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  size_t mark = env.recorder->size();
  ASSERT_TRUE(SignalPid(view->pid(), SIGSEGV));
  auto exited = env.recorder->WaitFor(EventType::kExited, id, 5s, mark);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->exit->status, ExitStatus::kCrashed);
  EXPECT_EQ(view->mode(), Mode::kSadTab);
  auto* title = view->findChild<QLabel*>(QStringLiteral("sad-title"));
  ASSERT_NE(title, nullptr);
  EXPECT_TRUE(title->text().contains(QStringLiteral("crashed")));
  auto* reload = view->findChild<QPushButton*>(QStringLiteral("sad-reload"));
  ASSERT_NE(reload, nullptr);
  reload->click();
  ASSERT_TRUE(env.recorder->WaitFor(EventType::kSpawned, id, 5s, mark));
  ASSERT_TRUE(WaitUntil([&] { return view->mode() == Mode::kLive; }));
  // A reload a person asked for after reading the sad tab is no recovery to time.
  EXPECT_FALSE(view->recovery_note_visible());
}

// The broker reports no event for a navigate: sbx-ctl's reaches the caption all the same.
TEST(RendererViewTest, CaptionFollowsANavigateFromOutsideTheWindow) {
  WindowEnv env;
  int id = env.SpawnDrawing("sbx://plasma");
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  EXPECT_TRUE(view->caption_text().contains(QStringLiteral("sbx://plasma")));
  ASSERT_TRUE(env.broker->Navigate(id, "sbx://text/from-a-script"));
  EXPECT_TRUE(WaitUntil(
      [&] { return view->caption_text().contains(QStringLiteral("sbx://text/from-a-script")); },
      5s))
      << view->caption_text().toStdString();
  EXPECT_FALSE(view->caption_text().contains(QStringLiteral("sbx://plasma")));
}

TEST(RendererViewTest, UnresponsiveBarCountsTheSilenceUpWhileItShows) {
  BrokerOptions o = TestOptions();
  o.hang_timeout_ms = 300;
  WindowEnv env(o);
  int id = env.SpawnDrawing("sbx://clock");
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  ASSERT_TRUE(SignalPid(view->pid(), SIGSTOP));
  ASSERT_TRUE(WaitUntil([&] { return view->unresponsive_bar_visible(); }, 10s));
  QString first = view->unresponsive_text();
  EXPECT_TRUE(first.contains(QStringLiteral("no heartbeat for"))) << first.toStdString();
  // Still stopped, so still silent, for longer: the bar's figure must grow.
  ASSERT_TRUE(WaitUntil([&] { return view->unresponsive_text() != first; }, 5s))
      << "the bar still says: " << first.toStdString();
  EXPECT_TRUE(view->unresponsive_text().contains(QStringLiteral("no heartbeat for")));
  EXPECT_TRUE(view->unresponsive_bar_visible());
}

// With automatic restart the sad tab lasts a few milliseconds; the new process's tile says
// what happened and how long the recovery took, on the broker's own clock.
TEST(RendererViewTest, RestartShowsWhatHappenedAndHowFastItRecovered) {
  WindowEnv env;
  int id = env.SpawnDrawing("sbx://clock");
  RendererView* view = env.window->grid()->View(id);
  ASSERT_NE(view, nullptr);
  EXPECT_FALSE(view->recovery_note_visible());
  pid_t old_pid = view->pid();
  size_t mark = env.recorder->size();
  ASSERT_TRUE(SignalPid(old_pid, SIGKILL));
  auto exited = env.recorder->WaitFor(EventType::kExited, id, 5s, mark);
  auto ready = env.recorder->WaitFor(EventType::kReady, id, 10s, mark);
  ASSERT_TRUE(exited && ready);
  ASSERT_TRUE(WaitUntil([&] { return view->recovery_note_visible(); }, 2s));
  QString note = view->recovery_text();
  EXPECT_TRUE(note.contains(QStringLiteral("killed by SIGKILL"))) << note.toStdString();
  EXPECT_TRUE(note.contains(QStringLiteral("pid %1").arg(ready->pid))) << note.toStdString();
  EXPECT_TRUE(note.contains(DurationText(ready->t_ms - exited->t_ms))) << note.toStdString();
  // It goes away by itself.
  EXPECT_TRUE(WaitUntil([&] { return !view->recovery_note_visible(); },
                        std::chrono::milliseconds(RecoveryNote::kShownMs + 3000)));
}

}  // namespace
}  // namespace sbx::ui::testing
