#include "ui/task_manager.h"

#include <QFontMetrics>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>
#include <algorithm>
#include <csignal>

#include "ui/broker_bridge.h"
#include "ui/renderer_model.h"

namespace sbx::ui {

TaskManager::TaskManager(BrokerBridge* bridge, RendererModel* model, QWidget* parent)
    : QWidget(parent), bridge_(bridge), model_(model) {
  setObjectName(QStringLiteral("task-manager"));
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(model_);
  proxy_->setSortRole(RendererModel::kSortRole);
  // Rows are re-sorted as figures change, like Chrome's task manager sorted by CPU.
  proxy_->setDynamicSortFilter(true);

  table_ = new QTableView(this);
  table_->setObjectName(QStringLiteral("task-table"));
  table_->setModel(proxy_);
  table_->setSortingEnabled(true);
  table_->sortByColumn(RendererModel::kId, Qt::AscendingOrder);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setAlternatingRowColors(true);
  table_->verticalHeader()->hide();
  table_->verticalHeader()->setDefaultSectionSize(20);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table_->setWordWrap(false);
  SizeColumns();

  end_ = new QPushButton(QStringLiteral("End process"), this);
  end_->setObjectName(QStringLiteral("end-process"));
  end_->setToolTip(QStringLiteral("SIGKILL the selected renderer (through the broker)"));
  end_->setEnabled(false);
  auto* hint = new QLabel(QStringLiteral("Shift+Esc toggles this pane"), this);
  hint->setStyleSheet(QStringLiteral("color: #5f6368;"));

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(hint);
  buttons->addStretch(1);
  buttons->addWidget(end_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(table_, 1);
  layout->addLayout(buttons);

  connect(end_, &QPushButton::clicked, this, &TaskManager::EndProcess);
  connect(table_, &QTableView::doubleClicked, this,
          [this] { emit selectedChanged(selected_id()); });
  connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
    int id = selected_id();
    end_->setEnabled(id != 0);
    if (!selecting_) emit selectedChanged(id);
  });
}

// Each column as wide as the longest text it usually holds, measured in the table's font, so
// Page and Last exit are readable at the window's default size; Sandbox takes what is left.
void TaskManager::SizeColumns() {
  struct Sample {
    RendererModel::Column column;
    const char* text;
  };
  constexpr Sample kSamples[] = {
      {RendererModel::kId, "999"},
      {RendererModel::kPage, "sbx://text/Hello%20from%20sbx"},
      {RendererModel::kPid, "4194304"},
      {RendererModel::kState, "unresponsive"},
      {RendererModel::kVisibility, "Visibility"},
      {RendererModel::kUptime, "59 min 59 s"},
      {RendererModel::kCpu, "CPU %"},
      {RendererModel::kMemory, "99.9 MiB (PSS 99.9 MiB)"},
      {RendererModel::kFramesPerSecond, "Frames/s"},
      {RendererModel::kMessagesPerSecond, "IPC msgs/s"},
      {RendererModel::kHeartbeatAge, "12.3 s (pipe)"},
      {RendererModel::kRestarts, "Restarts"},
      {RendererModel::kLastExit, "sandbox-violation by SIGSYS"},
  };
  QFontMetrics body(table_->font());
  QFontMetrics head(table_->horizontalHeader()->font());
  for (const Sample& s : kSamples) {
    QString header = model_->headerData(s.column, Qt::Horizontal).toString();
    // Room for the cell's margins and, in the header, the sort arrow.
    int width = std::max(body.horizontalAdvance(QString::fromLatin1(s.text)) + 16,
                         head.horizontalAdvance(header) + 28);
    table_->setColumnWidth(s.column, width);
  }
}

int TaskManager::selected_id() const {
  QModelIndexList rows = table_->selectionModel()->selectedRows();
  if (rows.isEmpty()) return 0;
  return proxy_->data(rows.first(), RendererModel::kIdRole).toInt();
}

void TaskManager::Select(int id) {
  if (id == selected_id()) return;
  selecting_ = true;
  int row = model_->RowForId(id);
  if (row < 0) {
    table_->clearSelection();
  } else {
    QModelIndex index = proxy_->mapFromSource(model_->index(row, 0));
    table_->selectionModel()->select(
        index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    table_->scrollTo(index);
  }
  selecting_ = false;
  end_->setEnabled(selected_id() != 0);
}

void TaskManager::EndProcess() {
  int id = selected_id();
  if (id == 0) return;
  if (auto r = bridge_->broker().Kill(id, SIGKILL); !r) {
    emit commandFailed(QStringLiteral("End process %1: %2")
                           .arg(id)
                           .arg(QString::fromStdString(r.error().ToString())));
  }
}

}  // namespace sbx::ui
