// Chrome's Task Manager (Shift+Esc): a sortable table of every renderer and what it costs, with
// an "End process" button that kills the selected renderer through the broker; below it, every
// process of the broker as a tree (the broker, its namespace holder, each renderer's init and
// the renderer), read through the core's process inspector once a second: state (T for a
// stopped one), threads, uids, seccomp, fds, context switches and page faults.
#pragma once

#include <QWidget>
#include <tuple>
#include <vector>

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
  // Reads every process again (the model's refresh does it once a second).
  void RefreshProcesses();
  int selected_id() const;
  void Select(int id);

 signals:
  void selectedChanged(int id);
  void commandFailed(const QString& what);

 private:
  void SizeColumns();
  void EndProcess();
  QTreeView* MakeProcessTree();

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
};

}  // namespace sbx::ui
