// Chrome's Task Manager (Shift+Esc): a sortable table of every renderer and what it costs, with
// an "End process" button that kills the selected renderer through the broker; below it, every
// process of the broker as a tree (the broker, its namespace holder, each renderer's init and
// the renderer), read through the core's process inspector once a second: state (T for a
// stopped one), threads, uids, seccomp, fds, context switches and page faults. The tree is read
// on a thread of its own: at 500 renderers that is a thousand processes and a third of a second.
#pragma once

#include <QWidget>
#include <tuple>
#include <vector>

#include "broker/process_inspector.h"
#include "ui/worker_thread.h"

class QLabel;
class QPushButton;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTableView;
class QTreeView;

namespace sbx::ui {

class BrokerBridge;
class RendererModel;

class TaskManager : public QWidget {
  Q_OBJECT

 public:
  TaskManager(BrokerBridge* bridge, RendererModel* model, QWidget* parent = nullptr);

  QTableView* table() const { return table_; }
  QPushButton* end_process_button() const { return end_; }
  QTreeView* processes() const { return processes_; }
  // Shown only when the broker runs renderers without cgroups: that it does, and why.
  QLabel* no_cgroup_label() const { return no_cgroup_; }
  QStandardItemModel* process_model() const { return process_model_; }
  // Starts reading every process again (the model's refresh does it once a second); the tree
  // shows the result when the read is done (processesShown). Ignored while a read runs.
  void RefreshProcesses();
  // Called before each /proc read of the next reads, on the reading thread: for tests.
  void SetReadHookForTest(InspectStepHook hook) { read_hook_ = std::move(hook); }
  int selected_id() const;
  void Select(int id);

 signals:
  void selectedChanged(int id);
  void processesShown();
  void commandFailed(const QString& what);

 private:
  void SizeColumns();
  void EndProcess();
  QTreeView* MakeProcessTree();
  void ShowProcesses(const ProcessInfo& tree);

  BrokerBridge* bridge_;
  RendererModel* model_;
  QSortFilterProxyModel* proxy_;
  QTableView* table_;
  QLabel* no_cgroup_;
  QPushButton* end_;
  QTreeView* processes_;
  QStandardItemModel* process_model_;
  // (role, id, pid) of each row in tree order, to update the rows in place while they stay.
  std::vector<std::tuple<int, int, int>> process_rows_;
  bool selecting_ = false;
  bool reading_ = false;
  InspectStepHook read_hook_;
  // Last: destroyed first, it waits for a read in progress, whose result then dies with us.
  WorkerThread reader_{QStringLiteral("sbx-proc-tree")};
};

}  // namespace sbx::ui
