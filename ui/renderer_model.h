// The task manager's table: one row per renderer id (Qt's addressbook pattern: a
// QAbstractTableModel over plain structs). Rows appear on `spawned`, change on every event and
// disappear on `closed`; a 1 s timer pulls Broker::List() for the rates and has /proc read for
// CPU, memory and the sandbox verdict. Checked under QAbstractItemModelTester
// (tests/ui/renderer_model_test.cc).
//
// /proc is read on a worker thread (WorkerThread): for 32 renderers it took 7-15 ms per second
// here (smaps_rollup walks each process's page tables), which would show up as event-loop
// latency. The worker gets only pids and copies; results are matched back by (id, pid) on this
// thread.
#pragma once

#include <QAbstractTableModel>
#include <QString>
#include <QTimer>
#include <cstdint>
#include <optional>
#include <vector>

#include "broker/broker.h"
#include "broker/proc_stats.h"
#include "broker/sandbox_report.h"
#include "ui/worker_thread.h"

namespace sbx::ui {

class BrokerBridge;

struct RendererRow {
  RendererSnapshot snap;
  double cpu_percent = -1;  // -1 until two samples of the same process exist
  uint64_t rss_bytes = 0;
  std::optional<uint64_t> pss_bytes;
  double frames_per_s = 0;
  double messages_per_s = 0;
  // From InspectSandbox(), read once per process after its first frame (the renderer has
  // confined itself by then, and a process's sandbox never loosens).
  QString sandbox_verdict;
  QString sandbox_details;
  int sandbox_rank = -1;  // for sorting: -1 unknown, 0 none, 1 partial, 2 adequate
  pid_t sandbox_pid = 0;
  // The previous samples, for the rates above.
  pid_t sample_pid = 0;
  int64_t sample_ns = 0;
  uint64_t sample_frames = 0;
  uint64_t sample_messages = 0;
  pid_t cpu_pid = 0;
  int64_t cpu_at_ns = 0;
  uint64_t cpu_ns = 0;
  // The cgroup's figures, read by the sampler (Broker::List reads none for the window): of
  // the process cgroup_pid, -1 until the first sample of it.
  CgroupUsage cgroup_usage;
  pid_t cgroup_pid = 0;
};

class RendererModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    kId,
    kPage,
    kPid,
    kState,
    kVisibility,
    kUptime,
    kCpu,
    kMemory,
    kFramesPerSecond,
    kMessagesPerSecond,
    kHeartbeatAge,
    kRestarts,
    kLastExit,
    kSandbox,
    // After the sandbox: at the window's default width they are a scroll away.
    kCgroupMemory,
    kCgroupTasks,
    kCgroupThrottled,
    kColumnCount
  };
  static constexpr int kSortRole = Qt::UserRole + 1;  // numbers sort as numbers
  static constexpr int kIdRole = Qt::UserRole + 2;

  explicit RendererModel(BrokerBridge* bridge, QObject* parent = nullptr);
  ~RendererModel() override;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation,
                      int role = Qt::DisplayRole) const override;

  int RowForId(int id) const;  // -1 if absent
  int IdAt(int row) const;
  const RendererRow* Find(int id) const;
  const std::vector<RendererRow>& rows() const { return rows_; }

  // This process (the broker core and the window) as of the last /proc sample.
  const ProcStats& self_stats() const { return self_; }
  double self_cpu_percent() const { return self_cpu_percent_; }

  // Re-reads every renderer and starts a /proc sample; the timer calls it once a second.
  void Refresh();

 signals:
  // When a /proc sample has been applied, so the charts and the status bar show the same
  // figures as the table.
  void refreshed();

 private:
  struct ProcSample {
    int id = 0;  // 0: this process
    pid_t pid = 0;
    int64_t at_ns = 0;
    std::optional<ProcStats> stats;
    bool inspect_sandbox = false;
    std::optional<SandboxReport> sandbox;
    std::string sandbox_error;
    CgroupUsageFiles cgroup_files;  // read here, off the GUI thread, into cgroup_usage
    CgroupUsage cgroup_usage;
  };
  static std::vector<ProcSample> ReadProc(std::vector<ProcSample> wanted, sandbox::Level level,
                                          std::string note);
  void ApplyProc(std::vector<ProcSample> samples);
  void OnBrokerEvent(const BrokerEvent& event);
  void Upsert(const RendererSnapshot& snap);
  void RemoveId(int id);
  void SampleCounters(RendererRow& row, int64_t now_ns);
  QVariant CgroupData(const RendererRow& r, int column, int role) const;

  BrokerBridge* bridge_;
  std::vector<RendererRow> rows_;  // sorted by id
  QTimer timer_;
  WorkerThread sampler_{QStringLiteral("sbx-proc-sampler")};  // started before the first Refresh
  bool sampling_ = false;
  ProcStats self_;
  int64_t self_at_ns_ = 0;
  double self_cpu_percent_ = -1;
};

}  // namespace sbx::ui
