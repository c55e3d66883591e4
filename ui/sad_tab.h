// What a tile shows when its renderer is gone, as Chrome's sad tab does: the page for a dead
// renderer (what ended it, how, and Reload), the same page with its own icon and words when the
// broker gave up on a crash loop, and, once a restarted renderer draws again, a note over its
// frames saying what happened and how fast it recovered.
#pragma once

#include <sys/types.h>

#include <QLabel>
#include <QWidget>
#include <cstdint>

#include "broker/exit_status.h"

class QPushButton;
class QTimer;

namespace sbx::ui {

// A small busy indicator that animates only while visible (a restart on its way).
class Spinner : public QWidget {
  Q_OBJECT

 public:
  explicit Spinner(QWidget* parent = nullptr);
  QSize sizeHint() const override { return {22, 22}; }

 protected:
  void paintEvent(QPaintEvent* event) override;
  void showEvent(QShowEvent* event) override;
  void hideEvent(QHideEvent* event) override;

 private:
  QTimer* timer_;
  int angle_ = 0;
};

class SadTab : public QWidget {
  Q_OBJECT

 public:
  explicit SadTab(QWidget* parent = nullptr);

  // The renderer died this way after running for uptime_ms.
  void ShowExit(int id, const ExitInfo& exit, int64_t uptime_ms);
  // The broker stopped restarting it; why says what it saw ("more than 5 exits within 30 s").
  void ShowCrashLoop(int id, const QString& why);
  // A spinner and text under the details while a new process is on its way.
  void ShowProgress(const QString& text);
  bool crash_loop() const { return crash_loop_; }

 signals:
  void reloadClicked();

 private:
  QLabel* icon_;
  QLabel* title_;
  QLabel* details_;
  QWidget* progress_row_;
  QLabel* progress_text_;
  bool crash_loop_ = false;
};

// The note a restarted renderer's tile carries for a few seconds: the classification of the
// death and the time from it to the new process's first frame.
class RecoveryNote : public QLabel {
  Q_OBJECT

 public:
  static constexpr int kShownMs = 6000;
  explicit RecoveryNote(QWidget* parent = nullptr);
  void Show(const ExitInfo& exit, int64_t death_to_frame_ms, pid_t new_pid);

 private:
  QTimer* hide_timer_;
};

}  // namespace sbx::ui
