#include "ui/task_manager.h"

#include <QFontMetrics>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTableView>
#include <QTreeView>
#include <QVBoxLayout>
#include <algorithm>
#include <csignal>
#include <functional>
#include <memory>

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

  // Said once for every row: without cgroups, each renderer is bounded only by its rlimits.
  no_cgroup_ = new QLabel(this);
  no_cgroup_->setObjectName(QStringLiteral("no-cgroup"));
  no_cgroup_->setWordWrap(true);
  no_cgroup_->setStyleSheet(QStringLiteral("color: #b06000;"));
  const CgroupSupport& cgroups = bridge_->broker().cgroups();
  no_cgroup_->setText(QString::fromStdString(cgroups.reason));
  no_cgroup_->setVisible(cgroups.mode == CgroupMode::kNone);

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
  processes_ = MakeProcessTree();
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(table_);
  split->addWidget(processes_);
  // The tree gets the larger share: the renderers' rows need only a few lines.
  split->setStretchFactor(1, 2);
  split->setSizes({100, 200});
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(no_cgroup_);
  layout->addWidget(split, 1);
  layout->addLayout(buttons);
  // Reading every process costs some syscalls each: only while someone can see the tree.
  connect(model_, &RendererModel::refreshed, this, [this] {
    if (processes_->isVisible()) RefreshProcesses();
  });

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
// Page and Last exit are readable at the window's default size; the last column takes what is
// left.
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
      {RendererModel::kSandbox, "adequately sandboxed"},
      {RendererModel::kCgroupMemory, "99.9 of 256 MiB"},
      {RendererModel::kCgroupTasks, "32 of 32"},
      {RendererModel::kCgroupThrottled, "999 ms"},
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

namespace {

enum ProcessColumn {
  kProcName,
  kProcPid,
  kProcInside,
  kProcState,
  kProcThreads,
  kProcUid,
  kProcSeccomp,
  kProcFds,
  kProcSwitches,
  kProcFaults,
  kProcColumnCount
};

QString Text(const std::string& s) { return QString::fromStdString(s); }

QString ProcessName(const ProcessInfo& p) {
  switch (p.role) {
    case ProcessRole::kBroker:
      return QStringLiteral("broker (%1)").arg(Text(p.name));
    case ProcessRole::kHolder:
      return QStringLiteral("namespace holder");
    case ProcessRole::kZygote:
      return QStringLiteral("zygote");
    case ProcessRole::kInit:
      if (p.spare) return QStringLiteral("init of the spare renderer");
      return QStringLiteral("init of renderer %1").arg(p.id);
    case ProcessRole::kRenderer:
      if (p.spare) return QStringLiteral("spare renderer (waits for the next spawn)");
      return QStringLiteral("renderer %1").arg(p.id);
  }
  return {};
}

// One row's cells, as text; the tooltip holds what does not fit a cell.
QStringList ProcessCells(const ProcessInfo& p) {
  QStringList threads;
  for (const auto& t : p.threads) threads << Text(t.name);
  QString state = p.gone ? QStringLiteral("gone") : QString(QChar::fromLatin1(p.state));
  auto id = [](long v) { return v < 0 ? QStringLiteral("-") : QString::number(v); };
  return {ProcessName(p),
          QString::number(p.pid),
          p.nspid.empty() ? QStringLiteral("-") : QString::number(p.nspid.back()),
          state,
          QStringLiteral("%1: %2").arg(p.thread_count).arg(threads.join(QStringLiteral(", "))),
          QStringLiteral("%1 / %2").arg(id(p.uid_outside), id(p.uid_inside)),
          p.seccomp_mode == 2 ? QStringLiteral("filter \u00d7%1").arg(p.seccomp_filters)
                              : QString::number(p.seccomp_mode),
          QString::number(p.fd_count),
          QStringLiteral("%1 / %2").arg(p.voluntary_switches).arg(p.involuntary_switches),
          QStringLiteral("%1 / %2").arg(p.minor_faults).arg(p.major_faults)};
}

QString ProcessTooltip(const ProcessInfo& p) {
  QStringList lines;
  lines << QStringLiteral("%1, pid %2 (ppid %3)").arg(ProcessName(p)).arg(p.pid).arg(p.ppid);
  QStringList ns;
  for (const auto& n : p.namespaces) {
    ns << QStringLiteral("%1 %2").arg(Text(n.name),
                                      n.shared ? QStringLiteral("shared") : QStringLiteral("new"));
  }
  lines << QStringLiteral("namespaces: ") + ns.join(QStringLiteral(", "));
  for (const auto& f : p.fds) {
    QString seals;
    for (const auto& s : f.seals) seals += QStringLiteral(" ") + Text(s);
    lines << QStringLiteral("fd %1: %2 (%3)%4")
                 .arg(f.fd)
                 .arg(Text(f.label), Text(f.target),
                      seals.isEmpty() ? QString() : QStringLiteral(", sealed:") + seals);
  }
  for (const auto& u : p.unreadable) lines << QStringLiteral("unreadable: ") + Text(u);
  return lines.join(QLatin1Char('\n'));
}

void Flatten(const ProcessInfo& p, std::vector<const ProcessInfo*>& out) {
  out.push_back(&p);
  for (const auto& c : p.children) Flatten(c, out);
}

}  // namespace

QTreeView* TaskManager::MakeProcessTree() {
  process_model_ = new QStandardItemModel(0, kProcColumnCount, this);
  process_model_->setHorizontalHeaderLabels(
      {QStringLiteral("Process"), QStringLiteral("PID"), QStringLiteral("PID inside"),
       QStringLiteral("State"), QStringLiteral("Threads"), QStringLiteral("UID out / in"),
       QStringLiteral("Seccomp"), QStringLiteral("FDs"), QStringLiteral("Switches vol / invol"),
       QStringLiteral("Faults min / maj")});
  const char* tips[] = {
      "The broker, its namespace holder, and each renderer below its init (pid 1 of its pid "
      "namespace); hover a row for its namespaces and fds",
      "The pid as the broker sees it",
      "NSpid: the pid inside the process's own pid namespace",
      "Kernel state: R running, S sleeping, D disk wait, T stopped, Z zombie",
      "How many threads, and their names (/proc/PID/task/*/comm)",
      "The real uid outside, in the broker's user namespace, and inside the process's own",
      "Seccomp mode (0 off, 2 filter) and how many filters are stacked",
      "Open file descriptors; the tooltip names each one the broker gave",
      "Voluntary and involuntary context switches",
      "Minor and major page faults"};
  for (int c = 0; c < kProcColumnCount; ++c) {
    process_model_->horizontalHeaderItem(c)->setToolTip(QString::fromLatin1(tips[c]));
  }
  auto* tree = new QTreeView(this);
  tree->setObjectName(QStringLiteral("process-tree"));
  tree->setModel(process_model_);
  tree->setEditTriggers(QAbstractItemView::NoEditTriggers);
  tree->setSelectionBehavior(QAbstractItemView::SelectRows);
  tree->setAlternatingRowColors(true);
  tree->setUniformRowHeights(true);
  tree->setWordWrap(false);
  QFontMetrics fm(tree->font());
  const char* widths[] = {"init of renderer 999",
                          "4194304",
                          "PID inside",
                          "State",
                          "4: sbx, sbx-proc-sampler, QXcbEventQueue",
                          "60999 / 0",
                          "filter ×2",
                          "FDs",
                          "Switches vol / invol"};
  for (int c = 0; c < kProcColumnCount - 1; ++c) {
    // The first column also holds the tree's indentation, three levels deep.
    int indent = c == kProcName ? 3 * tree->indentation() : 0;
    tree->setColumnWidth(c, fm.horizontalAdvance(QString::fromUtf8(widths[c])) + 28 + indent);
  }
  return tree;
}

void TaskManager::RefreshProcesses() {
  // One read at a time: a read slower than the refresh skips a refresh rather than queue up.
  if (reading_) return;
  reading_ = true;
  reader_.Post([this, plan = bridge_->broker().PlanInspect(), hook = read_hook_] {
    auto tree = std::make_shared<ProcessInfo>(ReadPlan(plan, hook));
    QMetaObject::invokeMethod(
        this, [this, tree] { ShowProcesses(*tree); }, Qt::QueuedConnection);
  });
}

void TaskManager::ShowProcesses(const ProcessInfo& tree) {
  reading_ = false;
  std::vector<const ProcessInfo*> flat;
  Flatten(tree, flat);
  std::vector<std::tuple<int, int, int>> rows;
  for (const ProcessInfo* p : flat) rows.emplace_back(static_cast<int>(p->role), p->id, p->pid);
  if (rows == process_rows_) {
    // The same processes: new figures in the same rows, so expansion and selection stay.
    std::function<void(QStandardItem*, size_t&)> update;
    size_t i = 0;
    update = [&](QStandardItem* parent, size_t& at) {
      for (int r = 0; r < parent->rowCount(); ++r) {
        const ProcessInfo& p = *flat[at++];
        QStringList cells = ProcessCells(p);
        for (int c = 0; c < kProcColumnCount; ++c) parent->child(r, c)->setText(cells[c]);
        parent->child(r, 0)->setToolTip(ProcessTooltip(p));
        update(parent->child(r, 0), at);
      }
    };
    update(process_model_->invisibleRootItem(), i);
    emit processesShown();
    return;
  }
  process_rows_ = std::move(rows);
  process_model_->removeRows(0, process_model_->rowCount());
  std::function<void(QStandardItem*, const ProcessInfo&)> add = [&](QStandardItem* parent,
                                                                    const ProcessInfo& p) {
    QList<QStandardItem*> items;
    for (const QString& cell : ProcessCells(p)) items << new QStandardItem(cell);
    items[0]->setToolTip(ProcessTooltip(p));
    parent->appendRow(items);
    for (const auto& c : p.children) add(items[0], c);
  };
  add(process_model_->invisibleRootItem(), tree);
  processes_->expandAll();
  emit processesShown();
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
