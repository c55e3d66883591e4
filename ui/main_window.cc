#include "ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QInputDialog>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>
#include <QTableView>
#include <QToolBar>
#include <QToolButton>
#include <csignal>

#include "ipc/codec.h"
#include "ipc/posix.h"
#include "ui/broker_bridge.h"
#include "ui/charts.h"
#include "ui/event_log.h"
#include "ui/format.h"
#include "ui/ipc_view.h"
#include "ui/latency_probe.h"
#include "ui/lecture_dialog.h"
#include "ui/renderer_grid.h"
#include "ui/renderer_model.h"
#include "ui/renderer_view.h"
#include "ui/task_manager.h"

namespace sbx::ui {

namespace {

constexpr int kProbeIntervalMs = 20;

struct SignalItem {
  int sig;
  const char* help;
};
constexpr SignalItem kKillSignals[] = {
    {SIGTERM, "ask it to exit (classified killed)"},
    {SIGKILL, "kill it outright (classified killed)"},
    {SIGSEGV, "as if it crashed (classified crashed)"},
    {SIGABRT, "as if it aborted (classified crashed)"},
    {SIGSTOP, "freeze it: unresponsive after the hang timeout"},
    {SIGCONT, "let a frozen one run again"},
};

struct CrashItem {
  protocol::CrashKind kind;
  const char* name;
  const char* text;
};
constexpr CrashItem kCrashes[] = {
    {protocol::CrashKind::kSegv, "segv", "Crash: segmentation fault"},
    {protocol::CrashKind::kAbort, "abort", "Crash: abort()"},
    {protocol::CrashKind::kStackOverflow, "stack-overflow", "Crash: stack overflow"},
    // Tries what a compromised renderer would; the findings arrive as drill-report events.
    {protocol::CrashKind::kEscape, "escape", "Try to escape the sandbox"},
};

const char* const kSuggestedPages[] = {"sbx://plasma", "sbx://clock",
                                       "sbx://text/Hello%20from%20sbx", "about:blank"};

}  // namespace

// The --stats overlay: a translucent box in the grid's corner, refreshed once a second.
class StatsOverlay : public QLabel {
 public:
  explicit StatsOverlay(QWidget* parent) : QLabel(parent) {
    setObjectName(QStringLiteral("stats-overlay"));
    setAttribute(Qt::WA_TransparentForMouseEvents);
    setStyleSheet(
        QStringLiteral("QLabel#stats-overlay { background: rgba(32, 33, 36, 200);"
                       " color: #e8eaed; border-radius: 6px; padding: 6px;"
                       " font-family: monospace; font-size: 11px; }"));
  }
  // Bottom right, where it hides the least of a tile's caption and frame.
  void Place() {
    adjustSize();
    move(parentWidget()->width() - width() - 16, parentWidget()->height() - height() - 12);
    raise();
  }
};

std::optional<std::string> Prompter::AskUrl(QWidget* parent, const QString& title,
                                            const std::string& current) {
  QStringList items;
  for (const char* p : kSuggestedPages) items << QString::fromLatin1(p);
  int at = static_cast<int>(items.indexOf(ToQString(current)));
  if (at < 0 && !current.empty()) {
    items.prepend(ToQString(current));
    at = 0;
  }
  bool ok = false;
  QString url = QInputDialog::getItem(parent, title, QStringLiteral("Page:"), items,
                                      std::max(at, 0), /*editable=*/true, &ok);
  if (!ok) return std::nullopt;
  return url.trimmed().toStdString();
}

std::optional<int> Prompter::AskInt(QWidget* parent, const QString& title, const QString& label,
                                    int value, int min, int max) {
  bool ok = false;
  int v = QInputDialog::getInt(parent, title, label, value, min, max, 1, &ok);
  if (!ok) return std::nullopt;
  return v;
}

MainWindow::MainWindow(BrokerBridge* bridge, MainWindowOptions options, QWidget* parent)
    : QMainWindow(parent),
      bridge_(bridge),
      options_(std::move(options)),
      prompter_(std::make_unique<Prompter>()) {
  setObjectName(QStringLiteral("main-window"));
  setWindowTitle(QStringLiteral("sbx \u2014 renderers"));
  resize(1500, 950);

  model_ = new RendererModel(bridge_, this);
  grid_ = new RendererGrid(bridge_, this);
  setCentralWidget(grid_);
  probe_ = new LatencyProbe(kProbeIntervalMs, /*keep_all=*/false, this);
  probe_->Start();

  CreateActions();
  CreateMenus();
  CreateDocks();
  CreateStatusBar();
  if (options_.stats) {
    overlay_ = new StatsOverlay(grid_->viewport());
    overlay_->setText(QStringLiteral("measuring\u2026"));
    overlay_->Place();
    overlay_->show();
  }

  connect(grid_, &RendererGrid::currentChanged, this, [this](int id) {
    task_manager_->Select(id);
    ipc_view_->SetRenderer(id);
    UpdateActions();
  });
  connect(task_manager_, &TaskManager::selectedChanged, this, [this](int id) {
    if (id != 0) grid_->SetCurrent(id);
  });
  connect(grid_, &RendererGrid::contextMenuRequested, this, &MainWindow::ShowContextMenu);
  connect(grid_, &RendererGrid::commandFailed, this, &MainWindow::ReportFailure);
  connect(task_manager_, &TaskManager::commandFailed, this, &MainWindow::ReportFailure);
  connect(model_, &RendererModel::refreshed, this, &MainWindow::OnRefreshed);
  // The broker reports no event for a navigate (this window's or sbx-ctl's): the captions
  // follow the page once a second, with the task manager.
  connect(model_, &RendererModel::refreshed, grid_, &RendererGrid::RefreshCaptions);
  connect(bridge_, &BrokerBridge::brokerEvent, this, [this] { UpdateActions(); });
  connect(bridge_, &BrokerBridge::loopFailed, this, &MainWindow::ReportFailure);
  connect(bridge_, &BrokerBridge::shutdownFinished, this, [this] {
    shutdown_done_ = true;
    if (closing_) close();
  });
  UpdateActions();
}

MainWindow::~MainWindow() = default;

QAction* MainWindow::action(const QString& name) const { return findChild<QAction*>(name); }

int MainWindow::current_id() const { return grid_->current_id(); }

void MainWindow::SetCurrent(int id) { grid_->SetCurrent(id); }

QAction* MainWindow::AddAction(const QString& name, const QString& text,
                               const QKeySequence& shortcut) {
  auto* a = new QAction(text, this);
  a->setObjectName(name);
  if (!shortcut.isEmpty()) a->setShortcut(shortcut);
  addAction(a);  // shortcuts work even while the menu bar is hidden
  return a;
}

void MainWindow::CreateActions() {
  auto* a = AddAction(QStringLiteral("action-new"), QStringLiteral("New renderer\u2026"),
                      QKeySequence(Qt::CTRL | Qt::Key_T));
  a->setToolTip(QStringLiteral("Start a renderer on a page you choose (Ctrl+T)"));
  connect(a, &QAction::triggered, this, &MainWindow::NewRenderer);

  a = AddAction(QStringLiteral("action-close"), QStringLiteral("Close"),
                QKeySequence(Qt::CTRL | Qt::Key_W));
  connect(a, &QAction::triggered, this, [this] {
    OnCurrent(QStringLiteral("close"), [](Broker& b, int id) { return b.Close(id); });
  });
  a = AddAction(QStringLiteral("action-reload"), QStringLiteral("Reload"),
                QKeySequence(Qt::CTRL | Qt::Key_R));
  connect(a, &QAction::triggered, this, [this] {
    OnCurrent(QStringLiteral("reload"), [](Broker& b, int id) { return b.Reload(id); });
  });
  a = AddAction(QStringLiteral("action-navigate"), QStringLiteral("Navigate\u2026"),
                QKeySequence(Qt::CTRL | Qt::Key_L));
  connect(a, &QAction::triggered, this, &MainWindow::Navigate);
  a = AddAction(QStringLiteral("action-fps"), QStringLiteral("Frame rate\u2026"));
  connect(a, &QAction::triggered, this, &MainWindow::SetFps);

  for (const SignalItem& s : kKillSignals) {
    QString name = QString::fromLatin1(SignalName(s.sig));
    a = AddAction(QStringLiteral("action-kill-") + name, name);
    a->setToolTip(QString::fromLatin1(s.help));
    a->setStatusTip(QString::fromLatin1(s.help));
    int sig = s.sig;
    connect(a, &QAction::triggered, this, [this, sig, name] {
      OnCurrent(QStringLiteral("kill ") + name,
                [sig](Broker& b, int id) { return b.Kill(id, sig); });
    });
  }
  a = AddAction(QStringLiteral("action-kill-hung-now"), QStringLiteral("Kill as unresponsive"));
  a->setStatusTip(QStringLiteral("SIGKILL through the broker, classified hung"));
  connect(a, &QAction::triggered, this, [this] {
    OnCurrent(QStringLiteral("kill hung"), [](Broker& b, int id) { return b.KillHung(id); });
  });

  for (const CrashItem& c : kCrashes) {
    a = AddAction(QStringLiteral("action-crash-") + QString::fromLatin1(c.name),
                  QString::fromLatin1(c.text));
    protocol::CrashKind kind = c.kind;
    connect(a, &QAction::triggered, this, [this, kind] {
      OnCurrent(QStringLiteral("crash"), [kind](Broker& b, int id) { return b.Crash(id, kind); });
    });
  }
  a = AddAction(QStringLiteral("action-hang"), QStringLiteral("Hang (spin without heartbeats)"));
  connect(a, &QAction::triggered, this, [this] {
    OnCurrent(QStringLiteral("hang"), [](Broker& b, int id) { return b.Hang(id); });
  });
  a = AddAction(QStringLiteral("action-oom"), QStringLiteral("Run out of memory"));
  connect(a, &QAction::triggered, this, [this] {
    OnCurrent(QStringLiteral("oom"), [](Broker& b, int id) { return b.Oom(id); });
  });
  a = AddAction(QStringLiteral("action-bad-ipc"), QStringLiteral("Send a malformed message"));
  connect(a, &QAction::triggered, this, [this] {
    OnCurrent(QStringLiteral("bad-ipc"), [](Broker& b, int id) { return b.BadIpc(id); });
  });

  BrokerOptions& opt = bridge_->broker().options();
  a = AddAction(QStringLiteral("action-auto-restart"), QStringLiteral("Restart crashed renderers"));
  a->setCheckable(true);
  a->setChecked(opt.restart);
  connect(a, &QAction::toggled, this,
          [this](bool on) { bridge_->broker().options().restart = on; });
  a = AddAction(QStringLiteral("action-kill-hung"), QStringLiteral("Kill unresponsive renderers"));
  a->setCheckable(true);
  a->setChecked(opt.kill_hung);
  connect(a, &QAction::toggled, this,
          [this](bool on) { bridge_->broker().options().kill_hung = on; });
  a = AddAction(QStringLiteral("action-hang-timeout"), QStringLiteral("Hang timeout\u2026"));
  connect(a, &QAction::triggered, this, &MainWindow::SetHangTimeout);

  a = AddAction(QStringLiteral("action-quit"), QStringLiteral("Quit"),
                QKeySequence(Qt::CTRL | Qt::Key_Q));
  connect(a, &QAction::triggered, this, &MainWindow::close);
}

QMenu* MainWindow::KillMenu(QWidget* parent) {
  auto* m = new QMenu(QStringLiteral("Kill"), parent);
  for (const SignalItem& s : kKillSignals) {
    m->addAction(action(QStringLiteral("action-kill-") + QString::fromLatin1(SignalName(s.sig))));
  }
  m->addSeparator();
  m->addAction(action(QStringLiteral("action-kill-hung-now")));
  return m;
}

QMenu* MainWindow::DrillMenu(QWidget* parent) {
  auto* m = new QMenu(QStringLiteral("Drills"), parent);
  for (const CrashItem& c : kCrashes) {
    if (c.kind == protocol::CrashKind::kEscape) continue;
    m->addAction(action(QStringLiteral("action-crash-") + QString::fromLatin1(c.name)));
  }
  m->addAction(action(QStringLiteral("action-hang")));
  m->addAction(action(QStringLiteral("action-oom")));
  m->addAction(action(QStringLiteral("action-bad-ipc")));
  m->addSeparator();
  m->addAction(action(QStringLiteral("action-crash-escape")));
  return m;
}

void MainWindow::CreateMenus() {
  QMenu* file = menuBar()->addMenu(QStringLiteral("&Renderer"));
  file->addAction(action(QStringLiteral("action-new")));
  file->addAction(action(QStringLiteral("action-close")));
  file->addAction(action(QStringLiteral("action-reload")));
  file->addAction(action(QStringLiteral("action-navigate")));
  file->addAction(action(QStringLiteral("action-fps")));
  file->addSeparator();
  file->addMenu(KillMenu(file));
  file->addMenu(DrillMenu(file));
  file->addSeparator();
  file->addAction(action(QStringLiteral("action-quit")));

  QMenu* settings = menuBar()->addMenu(QStringLiteral("&Settings"));
  settings->addAction(action(QStringLiteral("action-auto-restart")));
  settings->addAction(action(QStringLiteral("action-kill-hung")));
  settings->addAction(action(QStringLiteral("action-hang-timeout")));

  QToolBar* tools = addToolBar(QStringLiteral("Renderer"));
  tools->setObjectName(QStringLiteral("toolbar"));
  tools->setMovable(false);
  tools->setToolButtonStyle(Qt::ToolButtonTextOnly);
  tools->addAction(action(QStringLiteral("action-new")));
  tools->addAction(action(QStringLiteral("action-close")));
  tools->addAction(action(QStringLiteral("action-reload")));
  tools->addAction(action(QStringLiteral("action-navigate")));
  tools->addSeparator();
  for (QMenu* m : {KillMenu(tools), DrillMenu(tools)}) {
    auto* button = new QToolButton(tools);
    button->setText(m->title() + QStringLiteral(" \u25be"));
    button->setMenu(m);
    button->setPopupMode(QToolButton::InstantPopup);
    tools->addWidget(button);
  }
}

void MainWindow::CreateDocks() {
  setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowTabbedDocks);
  task_manager_ = new TaskManager(bridge_, model_, this);
  task_dock_ = new QDockWidget(QStringLiteral("Task Manager"), this);
  task_dock_->setObjectName(QStringLiteral("dock-task-manager"));
  task_dock_->setWidget(task_manager_);
  addDockWidget(Qt::BottomDockWidgetArea, task_dock_);

  event_log_ = new EventLog(bridge_, this);
  log_dock_ = new QDockWidget(QStringLiteral("Event Log"), this);
  log_dock_->setObjectName(QStringLiteral("dock-event-log"));
  log_dock_->setWidget(event_log_);
  addDockWidget(Qt::RightDockWidgetArea, log_dock_);

  charts_ = new ChartsPanel(bridge_, model_, this);
  charts_dock_ = new QDockWidget(QStringLiteral("Charts"), this);
  charts_dock_->setObjectName(QStringLiteral("dock-charts"));
  charts_dock_->setWidget(charts_);
  addDockWidget(Qt::RightDockWidgetArea, charts_dock_);
  resizeDocks({log_dock_, charts_dock_}, {480, 480}, Qt::Horizontal);
  // The charts get the larger share: three of them, each needing room for its labels.
  resizeDocks({log_dock_, charts_dock_}, {200, 460}, Qt::Vertical);
  // Room for the renderers' table and, below it, the process tree.
  resizeDocks({task_dock_}, {330}, Qt::Vertical);
  // The IPC view shares the bottom with the task manager, one tab each.
  ipc_view_ = new IpcView(bridge_, this);
  ipc_dock_ = new QDockWidget(QStringLiteral("IPC"), this);
  ipc_dock_->setObjectName(QStringLiteral("dock-ipc"));
  ipc_dock_->setWidget(ipc_view_);
  tabifyDockWidget(task_dock_, ipc_dock_);
  task_dock_->raise();

  QAction* toggle = task_dock_->toggleViewAction();
  toggle->setObjectName(QStringLiteral("action-task-manager"));
  toggle->setText(QStringLiteral("Task manager"));
  toggle->setShortcut(QKeySequence(Qt::SHIFT | Qt::Key_Escape));
  addAction(toggle);
  connect(toggle, &QAction::triggered, this, [this](bool shown) {
    if (shown) task_manager_->table()->setFocus();
  });
  QMenu* view = menuBar()->addMenu(QStringLiteral("&View"));
  view->addAction(toggle);
  view->addAction(log_dock_->toggleViewAction());
  view->addAction(charts_dock_->toggleViewAction());
  view->addAction(ipc_dock_->toggleViewAction());
  findChild<QToolBar*>(QStringLiteral("toolbar"))->addSeparator();
  findChild<QToolBar*>(QStringLiteral("toolbar"))->addAction(toggle);
  AddLectureHelp(this);
}

void MainWindow::CreateStatusBar() {
  running_label_ = new QLabel(this);
  restarts_label_ = new QLabel(this);
  process_label_ = new QLabel(this);
  latency_label_ = new QLabel(this);
  statusBar()->addPermanentWidget(running_label_);
  statusBar()->addPermanentWidget(restarts_label_);
  statusBar()->addPermanentWidget(process_label_);
  statusBar()->addPermanentWidget(latency_label_);
  if (!options_.control_path.empty()) {
    statusBar()->showMessage(QStringLiteral("Control socket: ") +
                             QString::fromStdString(options_.control_path));
  }
  OnRefreshed();
}

void MainWindow::UpdateActions() {
  auto snap = bridge_->Snapshot(current_id());
  bool has = snap.has_value();
  bool alive = has && snap->pid > 0;
  for (const char* name : {"action-close", "action-reload"}) {
    action(QString::fromLatin1(name))->setEnabled(has);
  }
  for (QAction* a : findChildren<QAction*>()) {
    QString n = a->objectName();
    if (n.startsWith(QStringLiteral("action-kill-")) && n != QStringLiteral("action-kill-hung")) {
      a->setEnabled(alive);
    }
    if (n.startsWith(QStringLiteral("action-crash-")) || n == QStringLiteral("action-hang") ||
        n == QStringLiteral("action-oom") || n == QStringLiteral("action-bad-ipc") ||
        n == QStringLiteral("action-navigate") || n == QStringLiteral("action-fps")) {
      a->setEnabled(alive);
    }
  }
  action(QStringLiteral("action-new"))->setEnabled(!closing_);
}

void MainWindow::OnCurrent(const QString& what,
                           const std::function<Result<void>(Broker&, int)>& command) {
  int id = current_id();
  if (id == 0) return ReportFailure(what + QStringLiteral(": no renderer selected"));
  if (auto r = command(bridge_->broker(), id); !r) {
    ReportFailure(QStringLiteral("renderer %1: %2: %3")
                      .arg(id)
                      .arg(what, QString::fromStdString(r.error().ToString())));
  }
}

void MainWindow::NewRenderer() {
  auto url =
      prompter_->AskUrl(this, QStringLiteral("New renderer"), bridge_->broker().options().page);
  if (!url) return;
  if (!IsValidUrl(*url)) {
    return ReportFailure(QStringLiteral("not a page URL: ") + QString::fromStdString(*url));
  }
  auto id = bridge_->broker().Spawn(*url);
  if (!id) return ReportFailure(QString::fromStdString(id.error().ToString()));
  SetCurrent(*id);
}

void MainWindow::Navigate() {
  auto snap = bridge_->Snapshot(current_id());
  if (!snap) return;
  auto url =
      prompter_->AskUrl(this, QStringLiteral("Navigate renderer #%1").arg(snap->id), snap->page);
  if (!url) return;
  std::string target = *url;
  OnCurrent(QStringLiteral("navigate"),
            [target](Broker& b, int id) { return b.Navigate(id, target); });
  if (auto* view = grid_->View(snap->id)) view->RefreshCaption();
}

void MainWindow::SetFps() {
  auto snap = bridge_->Snapshot(current_id());
  if (!snap) return;
  int current = snap->fps > 0 ? static_cast<int>(snap->fps)
                              : static_cast<int>(bridge_->broker().options().fps);
  auto fps =
      prompter_->AskInt(this, QStringLiteral("Frame rate of renderer #%1").arg(snap->id),
                        QStringLiteral("Frames per second:"), current,
                        static_cast<int>(protocol::kMinFps), static_cast<int>(protocol::kMaxFps));
  if (!fps) return;
  uint32_t value = static_cast<uint32_t>(*fps);
  OnCurrent(QStringLiteral("fps"), [value](Broker& b, int id) { return b.SetFps(id, value); });
}

void MainWindow::SetHangTimeout() {
  BrokerOptions& opt = bridge_->broker().options();
  auto ms = prompter_->AskInt(this, QStringLiteral("Hang timeout"),
                              QStringLiteral("No heartbeat for this many ms means unresponsive:"),
                              opt.hang_timeout_ms, 10, 3'600'000);
  if (ms) opt.hang_timeout_ms = *ms;
}

void MainWindow::ReportFailure(const QString& what) { statusBar()->showMessage(what, 8000); }

void MainWindow::ShowContextMenu(int id, const QPoint& global_pos) {
  grid_->SetCurrent(id);
  QMenu menu(this);
  menu.addAction(action(QStringLiteral("action-reload")));
  menu.addAction(action(QStringLiteral("action-navigate")));
  menu.addAction(action(QStringLiteral("action-fps")));
  menu.addAction(action(QStringLiteral("action-close")));
  menu.addSeparator();
  menu.addMenu(KillMenu(&menu));
  menu.addMenu(DrillMenu(&menu));
  menu.addSeparator();
  menu.addAction(action(QStringLiteral("action-new")));
  menu.exec(global_pos);
}

void MainWindow::OnRefreshed() {
  BrokerStats stats = bridge_->broker().Stats();
  running_label_->setText(
      QStringLiteral("Renderers: %1 running / %2").arg(stats.running).arg(stats.renderers));
  restarts_label_->setText(QStringLiteral("Restarts: %1").arg(stats.restarts));
  // The broker core runs in this process, so its cost is the window's cost.
  const ProcStats& self = model_->self_stats();
  if (self.rss_bytes > 0) {
    double cpu = model_->self_cpu_percent();
    process_label_->setText(QStringLiteral("Broker: CPU %1 \u00b7 %2")
                                .arg(cpu < 0 ? QStringLiteral("-")
                                             : QString::number(cpu, 'f', 1) + QStringLiteral(" %"),
                                     BytesText(self.pss_bytes.value_or(self.rss_bytes))));
  }
  LatencySummary loop = probe_->TakeWindow();
  latency_label_->setText(
      loop.samples == 0 ? QString()
                        : QStringLiteral("Event loop p99: %1 ms").arg(loop.p99_ms, 0, 'f', 1));
  if (overlay_ != nullptr) {
    int64_t now = MonotonicNs();
    double secs = stats_at_ns_ == 0 ? 0 : static_cast<double>(now - stats_at_ns_) / 1e9;
    auto rate = [secs](uint64_t now_count, uint64_t then_count) {
      return secs > 0 ? static_cast<double>(now_count - then_count) / secs : 0.0;
    };
    overlay_->setText(QStringLiteral("event loop, last second (%1 samples):\n"
                                     "  p50 %2 ms  p99 %3 ms  max %4 ms\n"
                                     "tiles painted %5/s, torn reads %6\n"
                                     "broker dispatches %7/s")
                          .arg(loop.samples)
                          .arg(loop.p50_ms, 0, 'f', 2)
                          .arg(loop.p99_ms, 0, 'f', 2)
                          .arg(loop.max_ms, 0, 'f', 2)
                          .arg(rate(grid_->paints(), last_paints_), 0, 'f', 0)
                          .arg(grid_->torn_reads())
                          .arg(rate(bridge_->dispatches(), last_dispatches_), 0, 'f', 0));
    stats_at_ns_ = now;
    last_paints_ = grid_->paints();
    last_dispatches_ = bridge_->dispatches();
    overlay_->Place();
  }
  if (charts_ != nullptr) charts_->Tick(loop.samples == 0 ? -1 : loop.p99_ms);
}

void MainWindow::changeEvent(QEvent* event) {
  QMainWindow::changeEvent(event);
  if (event->type() == QEvent::WindowStateChange) grid_->UpdateVisibility();
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (shutdown_done_ || bridge_->broker().finished()) {
    event->accept();
    return;
  }
  event->ignore();
  if (closing_) return;
  closing_ = true;
  statusBar()->showMessage(QStringLiteral("Closing every renderer\u2026"));
  UpdateActions();
  bridge_->Shutdown();
}

}  // namespace sbx::ui
