// The window: renderer tiles in the middle, the task manager, event log and charts in docks,
// every action in the toolbar, the menus and each tile's context menu, and a status bar. A thin
// observer: everything it does to a renderer is one sbx::Broker call.
#pragma once

#include <QMainWindow>
#include <QString>
#include <memory>
#include <optional>
#include <string>

#include "broker/broker.h"

class QAction;
class QDockWidget;
class QLabel;
class QMenu;

namespace sbx::ui {

class BrokerBridge;
class ChartsPanel;
class EventLog;
class IpcView;
class LatencyProbe;
class RendererGrid;
class RendererModel;
class StatsOverlay;
class TaskManager;

// Asks the person for a page or a number. Tests substitute one that answers at once, since a
// modal dialog would wait for a click.
class Prompter {
 public:
  virtual ~Prompter() = default;
  virtual std::optional<std::string> AskUrl(QWidget* parent, const QString& title,
                                            const std::string& current);
  virtual std::optional<int> AskInt(QWidget* parent, const QString& title, const QString& label,
                                    int value, int min, int max);
};

struct MainWindowOptions {
  bool stats = false;        // the latency overlay
  std::string control_path;  // shown in the status bar; empty: none
};

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  MainWindow(BrokerBridge* bridge, MainWindowOptions options, QWidget* parent = nullptr);
  ~MainWindow() override;

  RendererGrid* grid() const { return grid_; }
  RendererModel* model() const { return model_; }
  TaskManager* task_manager() const { return task_manager_; }
  EventLog* event_log() const { return event_log_; }
  ChartsPanel* charts() const { return charts_; }
  QDockWidget* task_manager_dock() const { return task_dock_; }
  IpcView* ipc_view() const { return ipc_view_; }
  QDockWidget* ipc_dock() const { return ipc_dock_; }
  LatencyProbe* latency_probe() const { return probe_; }
  // Actions by object name ("action-new", "action-kill-SIGKILL", "action-crash-segv", ...).
  QAction* action(const QString& name) const;
  void set_prompter(std::unique_ptr<Prompter> prompter) { prompter_ = std::move(prompter); }

  int current_id() const;
  void SetCurrent(int id);

 protected:
  // Closing first closes every renderer (SIGTERM, SIGKILL after the grace) and waits for the
  // broker to reap them, so the window never leaves a renderer behind.
  void closeEvent(QCloseEvent* event) override;
  // Minimised or restored: the renderers' visibility follows (RendererGrid::UpdateVisibility).
  void changeEvent(QEvent* event) override;

 private:
  void CreateActions();
  void CreateMenus();
  void CreateDocks();
  void CreateStatusBar();
  QAction* AddAction(const QString& name, const QString& text, const QKeySequence& shortcut = {});
  QMenu* KillMenu(QWidget* parent);
  QMenu* DrillMenu(QWidget* parent);
  void ShowContextMenu(int id, const QPoint& global_pos);
  void UpdateActions();
  void OnRefreshed();
  // Runs one broker command on the current renderer and reports a failure in the status bar.
  void OnCurrent(const QString& what, const std::function<Result<void>(Broker&, int)>& command);
  void NewRenderer();
  void Navigate();
  void SetFps();
  void SetHangTimeout();
  void ReportFailure(const QString& what);

  BrokerBridge* bridge_;
  MainWindowOptions options_;
  std::unique_ptr<Prompter> prompter_;
  RendererModel* model_;
  RendererGrid* grid_;
  TaskManager* task_manager_;
  EventLog* event_log_;
  ChartsPanel* charts_;
  QDockWidget* task_dock_;
  QDockWidget* log_dock_;
  QDockWidget* charts_dock_;
  IpcView* ipc_view_;
  QDockWidget* ipc_dock_;
  LatencyProbe* probe_;
  StatsOverlay* overlay_ = nullptr;
  QLabel* running_label_;
  QLabel* restarts_label_;
  QLabel* process_label_;
  QLabel* latency_label_;
  int64_t stats_at_ns_ = 0;  // the overlay's rates: counters at its last update
  uint64_t last_paints_ = 0;
  uint64_t last_dispatches_ = 0;
  bool closing_ = false;
  bool shutdown_done_ = false;
};

}  // namespace sbx::ui
