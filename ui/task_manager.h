// Chrome's Task Manager (Shift+Esc): a sortable table of every renderer and what it costs, with
// an "End process" button that kills the selected renderer through the broker.
#pragma once

#include <QWidget>

class QPushButton;
class QSortFilterProxyModel;
class QTableView;

namespace sbx::ui {

class BrokerBridge;
class RendererModel;

class TaskManager : public QWidget {
  Q_OBJECT

 public:
  TaskManager(BrokerBridge* bridge, RendererModel* model, QWidget* parent = nullptr);

  QTableView* table() const { return table_; }
  QPushButton* end_process_button() const { return end_; }
  int selected_id() const;
  void Select(int id);

 signals:
  void selectedChanged(int id);
  void commandFailed(const QString& what);

 private:
  void SizeColumns();
  void EndProcess();

  BrokerBridge* bridge_;
  RendererModel* model_;
  QSortFilterProxyModel* proxy_;
  QTableView* table_;
  QPushButton* end_;
  bool selecting_ = false;
};

}  // namespace sbx::ui
