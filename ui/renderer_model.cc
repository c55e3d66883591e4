#include "ui/renderer_model.h"

#include <unistd.h>

#include <QBrush>
#include <QFont>
#include <algorithm>

#include "ipc/posix.h"
#include "ui/broker_bridge.h"
#include "ui/format.h"

namespace sbx::ui {

namespace {

constexpr int kRefreshMs = 1000;

// What each column measures, for its header's tooltip.
QVariant HeaderToolTip(int section) {
  switch (section) {
    case RendererModel::kId:
      return QStringLiteral("The broker's id for the renderer; it stays across restarts");
    case RendererModel::kPage:
      return QStringLiteral("The page the renderer shows (sbx://plasma, sbx://clock, ...)");
    case RendererModel::kPid:
      return QStringLiteral("The process id as the broker sees it; a new one each restart");
    case RendererModel::kState:
      return QStringLiteral("starting, running, unresponsive, exited, restarting or failed");
    case RendererModel::kVisibility:
      return QStringLiteral(
          "visible, or hidden (its tile out of view or the window minimised): a hidden renderer "
          "draws no frames, beats once a second and gets a smaller CPU share");
    case RendererModel::kUptime:
      return QStringLiteral("How long the current process has run (or ran, once it exited)");
    case RendererModel::kCpu:
      return QStringLiteral("CPU time over the last second, in % of one core (/proc/PID/stat)");
    case RendererModel::kMemory:
      return QStringLiteral(
          "RSS: resident memory, pages shared with other processes counted in full. PSS "
          "(where /proc/PID/smaps_rollup is readable): each shared page divided among the "
          "processes sharing it, so the PSS of all renderers adds up to what they cost");
    case RendererModel::kFramesPerSecond:
      return QStringLiteral("Frames the renderer published per second, over the last second");
    case RendererModel::kMessagesPerSecond:
      return QStringLiteral(
          "Messages from the renderer per second (pipe messages: frame-ready, pong, drill "
          "reports, and heartbeats on the queue or the pipe), over the last second");
    case RendererModel::kHeartbeatAge:
      return QStringLiteral(
          "Time since the last heartbeat arrived (one is due every 100 ms, every second while "
          "hidden; none for the hang timeout means unresponsive). (pipe): heartbeats ride the "
          "control pipe because no "
          "message queue could be had");
    case RendererModel::kRestarts:
      return QStringLiteral(
          "Times the broker restarted the renderer after it died (a Reload is not counted)");
    case RendererModel::kLastExit:
      return QStringLiteral(
          "How the previous process ended: its classification and signal or "
          "exit code");
    case RendererModel::kCgroupMemory:
      return QStringLiteral(
          "Memory the renderer's cgroup uses (memory.current) of its limit (memory.max); hover "
          "a cell for the cgroup's path");
    case RendererModel::kCgroupTasks:
      return QStringLiteral("Tasks in the renderer's cgroup (pids.current) of pids.max");
    case RendererModel::kCgroupThrottled:
      return QStringLiteral(
          "Time the renderer's threads waited for CPU beyond their cgroup's bound (cpu.max)");
    case RendererModel::kSandbox:
      return QStringLiteral(
          "The running process's sandbox as /proc shows it (sbx-ctl sandbox "
          "ID); - while no process runs");
    default:
      return {};
  }
}

}  // namespace

RendererModel::RendererModel(BrokerBridge* bridge, QObject* parent)
    : QAbstractTableModel(parent), bridge_(bridge) {
  connect(bridge_, &BrokerBridge::brokerEvent, this, &RendererModel::OnBrokerEvent);
  connect(&timer_, &QTimer::timeout, this, &RendererModel::Refresh);
  timer_.start(kRefreshMs);
  Refresh();  // renderers spawned before the model existed
}

// The sampler (a member) waits for a sample in progress; its queued result dies with this object.
RendererModel::~RendererModel() = default;

int RendererModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int RendererModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : kColumnCount;
}

int RendererModel::RowForId(int id) const {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), id,
                             [](const RendererRow& r, int v) { return r.snap.id < v; });
  return it != rows_.end() && it->snap.id == id ? static_cast<int>(it - rows_.begin()) : -1;
}

int RendererModel::IdAt(int row) const {
  return row >= 0 && row < static_cast<int>(rows_.size()) ? rows_[static_cast<size_t>(row)].snap.id
                                                          : 0;
}

const RendererRow* RendererModel::Find(int id) const {
  int row = RowForId(id);
  return row < 0 ? nullptr : &rows_[static_cast<size_t>(row)];
}

QVariant RendererModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  if (role == Qt::ToolTipRole) return HeaderToolTip(section);
  if (role != Qt::DisplayRole) return {};
  switch (section) {
    case kId:
      return QStringLiteral("ID");
    case kPage:
      return QStringLiteral("Page");
    case kPid:
      return QStringLiteral("PID");
    case kState:
      return QStringLiteral("State");
    case kVisibility:
      return QStringLiteral("Visibility");
    case kUptime:
      return QStringLiteral("Uptime");
    case kCpu:
      return QStringLiteral("CPU %");
    case kMemory:
      return QStringLiteral("Memory");
    case kFramesPerSecond:
      return QStringLiteral("Frames/s");
    case kMessagesPerSecond:
      return QStringLiteral("IPC msgs/s");
    case kHeartbeatAge:
      return QStringLiteral("Heartbeat");
    case kRestarts:
      return QStringLiteral("Restarts");
    case kLastExit:
      return QStringLiteral("Last exit");
    case kCgroupMemory:
      return QStringLiteral("Cgroup memory");
    case kCgroupTasks:
      return QStringLiteral("Tasks");
    case kCgroupThrottled:
      return QStringLiteral("Throttled");
    case kSandbox:
      return QStringLiteral("Sandbox");
    default:
      return {};
  }
}

// One case per role, each a short switch over the columns: long, but it reads as the table.
QVariant RendererModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) {
    return {};
  }
  const RendererRow& r = rows_[static_cast<size_t>(index.row())];
  const RendererSnapshot& s = r.snap;
  if (role == kIdRole) return s.id;
  if (index.column() >= kCgroupMemory && index.column() <= kCgroupThrottled) {
    return CgroupData(r, index.column(), role);
  }
  if (role == Qt::ForegroundRole && index.column() == kState) return QBrush(StateColor(s.state));
  if (role == Qt::TextAlignmentRole) {
    switch (index.column()) {
      case kPage:
      case kState:
      case kVisibility:
      case kLastExit:
      case kSandbox:
        return QVariant(Qt::AlignLeft | Qt::AlignVCenter);
      default:
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    }
  }
  if (role == Qt::ToolTipRole) {
    if (index.column() == kMemory) {
      return QStringLiteral("RSS %1, PSS %2")
          .arg(BytesText(r.rss_bytes),
               r.pss_bytes ? BytesText(*r.pss_bytes) : QStringLiteral("not readable"));
    }
    if (index.column() == kHeartbeatAge && s.heartbeat_fallback) {
      return QStringLiteral("No message queue could be had: heartbeats ride the control pipe");
    }
    if (index.column() == kLastExit) return ToQString(s.last_exit.detail);
    if (index.column() == kSandbox) return s.pid > 0 ? r.sandbox_details : QString();
    return {};
  }
  bool display = role == Qt::DisplayRole;
  bool sort = role == kSortRole;
  if (!display && !sort) return {};
  switch (index.column()) {
    case kId:
      return s.id;
    case kPage:
      return ToQString(s.page);
    case kPid:
      if (sort) return s.pid;
      return s.pid > 0 ? QString::number(s.pid) : QStringLiteral("-");
    case kState:
      return ToQString(RendererStateName(s.state));
    case kVisibility:
      return ToQString(protocol::VisibilityName(s.visibility));
    case kUptime:
      if (sort) return static_cast<qlonglong>(s.uptime_ms);
      return DurationText(s.uptime_ms);
    case kCpu:
      if (sort) return r.cpu_percent;
      return r.cpu_percent < 0 ? QStringLiteral("-") : QString::number(r.cpu_percent, 'f', 1);
    case kMemory: {
      uint64_t shown = r.pss_bytes.value_or(r.rss_bytes);
      if (sort) return static_cast<qulonglong>(shown);
      if (s.pid <= 0 || r.rss_bytes == 0) return QStringLiteral("-");
      if (!r.pss_bytes) return BytesText(r.rss_bytes);
      return QStringLiteral("%1 (PSS %2)").arg(BytesText(r.rss_bytes), BytesText(*r.pss_bytes));
    }
    case kFramesPerSecond:
      if (sort) return r.frames_per_s;
      return QString::number(r.frames_per_s, 'f', 1);
    case kMessagesPerSecond:
      if (sort) return r.messages_per_s;
      return QString::number(r.messages_per_s, 'f', 0);
    case kHeartbeatAge: {
      // A dead process's last heartbeat only grows older; it says nothing.
      int64_t age_ms = s.pid > 0 ? s.heartbeat_age_ms : -1;
      if (sort) return static_cast<qlonglong>(age_ms);
      QString age = age_ms < 0 ? QStringLiteral("-") : DurationText(age_ms);
      return s.heartbeat_fallback ? age + QStringLiteral(" (pipe)") : age;
    }
    case kRestarts:
      return s.restarts;
    case kLastExit:
      return ExitText(s.last_exit);
    case kSandbox:
      // The verdict was about a process; once it is gone there is nothing sandboxed to judge.
      if (sort) return s.pid > 0 ? r.sandbox_rank : -1;
      return s.pid <= 0 || r.sandbox_verdict.isEmpty() ? QStringLiteral("-") : r.sandbox_verdict;
    default:
      return {};
  }
}

// The cgroup columns: the core's figures (Broker::List) of the renderer's own cgroup, or, when
// the broker runs without cgroups, that it has none and why.
QVariant RendererModel::CgroupData(const RendererRow& r, int column, int role) const {
  if (role == Qt::TextAlignmentRole) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  const RendererSnapshot& s = r.snap;
  bool none = s.cgroup_path.empty();
  static const CgroupUsage kUnknown;
  const CgroupUsage& u = r.cgroup_pid == s.pid && s.pid > 0 ? r.cgroup_usage : kUnknown;
  int64_t figure = column == kCgroupMemory  ? u.memory_bytes
                   : column == kCgroupTasks ? u.pids
                                            : u.throttled_us;
  if (role == kSortRole) return static_cast<qlonglong>(none ? -1 : figure);
  const Broker& broker = bridge_->broker();
  if (role == Qt::ToolTipRole) {
    if (none) return ToQString(broker.cgroups().reason);
    return QStringLiteral("cgroup %1\nlimits: memory %2, %3 tasks, %4% of one CPU")
        .arg(ToQString(s.cgroup_path), BytesText(s.memory_limit))
        .arg(broker.options().cgroup.pids)
        .arg(broker.options().cgroup.cpu_percent);
  }
  if (role != Qt::DisplayRole) return {};
  if (none) return column == kCgroupMemory ? QStringLiteral("no cgroup") : QStringLiteral("-");
  if (figure < 0) return QStringLiteral("-");  // no process now, or a hierarchy without it
  switch (column) {
    case kCgroupMemory: {
      constexpr double kMiB = 1024.0 * 1024.0;
      double limit = static_cast<double>(s.memory_limit) / kMiB;
      return QStringLiteral("%1 of %2 MiB")
          .arg(static_cast<double>(figure) / kMiB, 0, 'f', 1)
          .arg(limit, 0, 'f', limit == static_cast<double>(static_cast<int64_t>(limit)) ? 0 : 1);
    }
    case kCgroupTasks:
      return QStringLiteral("%1 of %2").arg(figure).arg(broker.options().cgroup.pids);
    default:
      return DurationText(figure / 1000);
  }
}

void RendererModel::SampleCounters(RendererRow& row, int64_t now_ns) {
  const RendererSnapshot& s = row.snap;
  if (s.pid <= 0) {
    row.frames_per_s = 0;
    row.messages_per_s = 0;
    row.sample_pid = 0;
    return;
  }
  double dt_s = static_cast<double>(now_ns - row.sample_ns) / 1e9;
  if (row.sample_pid == s.pid && row.sample_ns != 0) {
    if (dt_s < 0.2) return;  // too soon after the last sample for a meaningful rate
    // Frames restart from zero with each process; messages count across restarts.
    if (s.frames >= row.sample_frames) {
      row.frames_per_s = static_cast<double>(s.frames - row.sample_frames) / dt_s;
    }
    if (s.messages_in >= row.sample_messages) {
      row.messages_per_s = static_cast<double>(s.messages_in - row.sample_messages) / dt_s;
    }
  } else {
    row.frames_per_s = 0;
    row.messages_per_s = 0;
  }
  row.sample_pid = s.pid;
  row.sample_ns = now_ns;
  row.sample_frames = s.frames;
  row.sample_messages = s.messages_in;
}

void RendererModel::Refresh() {
  // No cgroup figures: at 500 renderers their 2000 file reads would hold the GUI thread for tens
  // of milliseconds each second. The sampler reads them.
  std::vector<RendererSnapshot> list = bridge_->broker().List(/*read_cgroup_usage=*/false);
  std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::vector<int> ids;
  for (const auto& s : list) ids.push_back(s.id);
  // Drop rows the broker no longer has (from the end, so indices stay valid).
  for (int row = static_cast<int>(rows_.size()) - 1; row >= 0; --row) {
    if (!std::binary_search(ids.begin(), ids.end(), rows_[static_cast<size_t>(row)].snap.id)) {
      beginRemoveRows({}, row, row);
      rows_.erase(rows_.begin() + row);
      endRemoveRows();
    }
  }
  int64_t now = MonotonicNs();
  for (const auto& snap : list) {
    Upsert(snap);
    SampleCounters(rows_[static_cast<size_t>(RowForId(snap.id))], now);
  }
  if (!rows_.empty()) {
    emit dataChanged(index(0, 0), index(static_cast<int>(rows_.size()) - 1, kColumnCount - 1));
  }
  if (sampling_) return;  // the last sample is still being read; skip one
  std::vector<ProcSample> wanted;
  ProcSample self;
  self.pid = ::getpid();
  wanted.push_back(std::move(self));
  for (const auto& r : rows_) {
    if (r.snap.pid <= 0) continue;
    // The sandbox is read once per process, after its first frame: it has confined itself by
    // then, and a sandbox never loosens.
    ProcSample s;
    s.id = r.snap.id;
    s.pid = r.snap.pid;
    s.inspect_sandbox = r.snap.pid != r.sandbox_pid && r.snap.state == RendererState::kRunning;
    s.cgroup_files = r.snap.cgroup_files;
    wanted.push_back(std::move(s));
  }
  const Broker& b = bridge_->broker();
  sampling_ = true;
  sampler_.Post([this, wanted = std::move(wanted), level = b.sandbox_level(),
                 note = b.sandbox_note()]() mutable {
    auto samples = ReadProc(std::move(wanted), level, std::move(note));
    QMetaObject::invokeMethod(
        this, [this, samples = std::move(samples)]() mutable { ApplyProc(std::move(samples)); },
        Qt::QueuedConnection);
  });
}

// Runs on a worker thread: touches nothing but its arguments.
std::vector<RendererModel::ProcSample> RendererModel::ReadProc(std::vector<ProcSample> wanted,
                                                               sandbox::Level level,
                                                               std::string note) {
  for (ProcSample& s : wanted) {
    if (auto stats = ReadProcStats(s.pid)) s.stats = *stats;
    if (s.cgroup_files.mode != CgroupMode::kNone) s.cgroup_usage = s.cgroup_files.Read();
    s.at_ns = MonotonicNs();
    if (s.inspect_sandbox) {
      auto report = InspectSandbox(s.pid, level, note);
      if (report) {
        s.sandbox = std::move(*report);
      } else {
        s.sandbox_error = report.error().ToString();
      }
    }
  }
  return wanted;
}

void RendererModel::ApplyProc(std::vector<ProcSample> samples) {
  sampling_ = false;
  for (const ProcSample& s : samples) {
    if (s.id == 0) {
      if (s.stats && self_at_ns_ != 0 && s.at_ns > self_at_ns_) {
        self_cpu_percent_ = static_cast<double>(s.stats->cpu_ns - self_.cpu_ns) /
                            static_cast<double>(s.at_ns - self_at_ns_) * 100.0;
      }
      if (s.stats) {
        self_ = *s.stats;
        self_at_ns_ = s.at_ns;
      }
      continue;
    }
    int row_index = RowForId(s.id);
    if (row_index < 0) continue;
    RendererRow& row = rows_[static_cast<size_t>(row_index)];
    if (row.snap.pid != s.pid) continue;  // restarted while we read: the figures are stale
    row.cgroup_usage = s.cgroup_usage;
    row.cgroup_pid = s.pid;
    if (s.inspect_sandbox) {
      row.sandbox_pid = s.pid;
      if (s.sandbox) {
        const SandboxReport& r = *s.sandbox;
        row.sandbox_verdict = ToQString(r.verdict);
        row.sandbox_rank = r.level == sandbox::Level::kOff ? 0 : r.adequate ? 2 : 1;
        QStringList details;
        details << QStringLiteral("level: ") + ToQString(sandbox::LevelName(r.level));
        for (const auto& p : r.problems) details << ToQString(p);
        if (!r.note.empty()) details << ToQString(r.note);
        row.sandbox_details = details.join(QLatin1Char('\n'));
      } else {
        row.sandbox_verdict = QStringLiteral("unknown");
        row.sandbox_details = QString::fromStdString(s.sandbox_error);
        row.sandbox_rank = -1;
      }
    }
    if (!s.stats) continue;
    if (row.cpu_pid == s.pid && s.at_ns > row.cpu_at_ns && s.stats->cpu_ns >= row.cpu_ns) {
      row.cpu_percent = static_cast<double>(s.stats->cpu_ns - row.cpu_ns) /
                        static_cast<double>(s.at_ns - row.cpu_at_ns) * 100.0;
    } else if (row.cpu_pid != s.pid) {
      row.cpu_percent = -1;
    }
    row.cpu_pid = s.pid;
    row.cpu_at_ns = s.at_ns;
    row.cpu_ns = s.stats->cpu_ns;
    row.rss_bytes = s.stats->rss_bytes;
    row.pss_bytes = s.stats->pss_bytes;
  }
  for (RendererRow& row : rows_) {
    if (row.snap.pid <= 0) {
      row.cpu_percent = -1;
      row.rss_bytes = 0;
      row.pss_bytes.reset();
    }
  }
  if (!rows_.empty()) {
    emit dataChanged(index(0, kCpu), index(static_cast<int>(rows_.size()) - 1, kColumnCount - 1));
  }
  emit refreshed();
}

void RendererModel::Upsert(const RendererSnapshot& snap) {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), snap.id,
                             [](const RendererRow& r, int v) { return r.snap.id < v; });
  int row = static_cast<int>(it - rows_.begin());
  if (it != rows_.end() && it->snap.id == snap.id) {
    it->snap = snap;
    return;
  }
  beginInsertRows({}, row, row);
  RendererRow r;
  r.snap = snap;
  rows_.insert(rows_.begin() + row, std::move(r));
  endInsertRows();
}

void RendererModel::RemoveId(int id) {
  int row = RowForId(id);
  if (row < 0) return;
  beginRemoveRows({}, row, row);
  rows_.erase(rows_.begin() + row);
  endRemoveRows();
}

void RendererModel::OnBrokerEvent(const BrokerEvent& event) {
  if (event.type == EventType::kClosed) return RemoveId(event.id);
  auto snap = bridge_->Snapshot(event.id);
  if (!snap) return RemoveId(event.id);
  bool existed = RowForId(event.id) >= 0;
  Upsert(*snap);
  if (existed) {
    int row = RowForId(event.id);
    emit dataChanged(index(row, 0), index(row, kColumnCount - 1));
  }
}

}  // namespace sbx::ui
