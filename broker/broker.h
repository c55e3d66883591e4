// The broker core: owns every renderer, runs their lifecycle on one EventLoop and tells
// observers what happened. No Qt; sbx-broker and the Qt window are both thin fronts over it.
//
// Threading: every method must be called on the thread that runs loop().Dispatch(), and that
// thread must live as long as the renderers (PR_SET_PDEATHSIG fires when the *thread* that
// created a child exits).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/cgroup.h"
#include "broker/child_process.h"
#include "broker/event_loop.h"
#include "broker/exit_status.h"
#include "broker/ipc_inspector.h"
#include "broker/launcher.h"
#include "broker/process_inspector.h"
#include "broker/renderer_state.h"
#include "broker/restart_policy.h"
#include "broker/sandbox_report.h"
#include "broker/worker.h"
#include "broker/zygote.h"
#include "ipc/error.h"
#include "ipc/frame_buffer.h"
#include "ipc/protocol.h"
#include "ipc/unique_fd.h"
#include "sandbox/confine.h"

namespace sbx {

enum class EventType {
  kSpawned,
  kReady,
  kUnresponsive,
  kResponsive,
  kExited,
  kRestarting,
  kFailed,
  kClosed,
  kDrillReport,  // one finding of the escape drill (detail)
  kLog,          // a line the renderer wrote to its stdout or stderr, or a note of what was dropped
  kVisibility,   // the slot was made visible or hidden (visibility)
};
std::string_view EventTypeName(EventType t);

// The abstract Unix socket name (without its leading NUL) a root broker binds while its
// renderers run as `id`, so that no other broker picks the same one (docs/SANDBOX.md).
inline std::string RendererIdClaimName(uid_t id) { return "sbx-renderer-id-" + std::to_string(id); }

struct BrokerEvent {
  EventType type;
  int64_t t_ms = 0;  // milliseconds since the broker started (CLOCK_MONOTONIC)
  int id = 0;
  pid_t pid = 0;
  std::string page;
  std::optional<ExitInfo> exit;     // kExited (and kClosed, when the process had to be reaped)
  int64_t delay_ms = -1;            // kRestarting
  double first_frame_ms = -1;       // kReady: spawn request to first published frame
  std::string detail;               // a human-readable reason, e.g. the protocol violation
  bool heartbeat_fallback = false;  // kSpawned: no message queue, heartbeats ride the pipe
  // kLog: the line, sanitized (valid UTF-8, no control characters); `truncated` when it was cut
  // at 1 KiB. A note of dropped output has no line but the counts since the last note, and a
  // detail saying why.
  std::string line;
  bool truncated = false;
  uint64_t dropped_lines = 0;
  uint64_t dropped_bytes = 0;
  protocol::Visibility visibility = protocol::Visibility::kVisible;  // kVisibility: the new one
};

// Observers are told of events after the broker's state reflects them. Default bodies are empty
// so an observer overrides only what it needs (Chromium's RenderProcessHostObserver).
class BrokerObserver {
 public:
  virtual ~BrokerObserver() = default;
  virtual void OnBrokerEvent(const BrokerEvent& /*event*/) {}
  // A frame was published; the broker has validated the buffer index.
  virtual void OnFrame(int /*id*/, uint64_t /*frame_number*/) {}
  // A heartbeat arrived; latency is its mq_send-to-handling delay.
  virtual void OnHeartbeat(int /*id*/, const protocol::Heartbeat& /*hb*/, int64_t /*latency_ns*/) {}
  // One message on any mechanism, as the inspector recorded it; only for observers added with
  // AddIpcObserver (a tracer), so the others cost nothing per message.
  virtual void OnIpc(int /*id*/, const IpcRecord& /*record*/) {}
};

struct BrokerOptions {
  int renderers = 0;      // spawned by Start()
  int max_renderers = 0;  // live slots at most; 0: DefaultMaxRenderers() (--max-renderers)
  std::string page = "sbx://plasma";
  int hang_timeout_ms = 2000;
  bool kill_hung = false;
  bool restart = true;
  std::string renderer_path;            // empty: sbx-renderer next to this executable
  std::vector<std::string> cmd_prefix;  // e.g. {"valgrind", "-q"}
  uint32_t fps = 30;
  FrameGeometry geometry;
  RestartPolicy::Config restart_policy;
  int term_grace_ms = 1000;           // a close's request (or SIGTERM) to its SIGKILL
  bool force_queue_fallback = false;  // heartbeats on the pipe even if a queue could be had
  bool sandbox = true;                // false: --no-sandbox, renderers run with no layer at all
  CgroupLimits cgroup;                // each renderer's cgroup (--renderer-memory, --renderer-cpu)
  bool cgroups = true;                // false: --no-cgroup, no cgroup per renderer
  uint64_t memory_budget = 0;         // renderers' memory limits summed; 0: half of RAM
  // Raised above the broker's (0) so that the kernel's OOM killer takes a renderer first.
  int oom_score_adj = 300;
  // Renderers at a nice value above the broker's (docs/SANDBOX.md, "Priorities"). Only
  // sbx-bench turns it off, together with the cgroup (whose CPU share does the same), to time
  // the control path apart from what a lower priority costs a round trip on one CPU.
  bool renderers_below_broker = true;
  bool inspector = true;      // per-mechanism IPC counters and the ring of recent messages
  bool start_hidden = false;  // --hidden: every new slot starts hidden
  // One renderer started ahead of need, taken by the next launch (--no-spare: none). Only for a
  // renderer that knows the spare form (--spare, the assign message): the command line turns it
  // off for --renderer-path and --renderer-cmd-prefix, and the broker under a prefix.
  bool spare = true;
  // Sandboxed launches are made by the zygote (zygote.h), a small process forked from instead of
  // the broker (--no-zygote: the broker forks for each launch itself).
  bool zygote = true;
};

struct RendererSnapshot {
  int id = 0;
  pid_t pid = 0;
  RendererState state = RendererState::kStarting;
  std::string page;
  protocol::Visibility visibility = protocol::Visibility::kVisible;
  int restarts = 0;
  int64_t uptime_ms = 0;
  ExitInfo last_exit;
  bool heartbeat_fallback = false;
  uint64_t frames = 0;
  int64_t heartbeat_age_ms = -1;
  uint64_t cpu_ns = 0;
  uint32_t fps = 0;
  uint32_t render_us = 0;
  uint64_t messages_in = 0;
  // Its cgroup: empty path when it has none (then the usage figures are -1).
  std::string cgroup_path;
  uint64_t memory_limit = 0;
  CgroupUsage cgroup_usage;        // -1 throughout when List was told not to read it
  CgroupUsageFiles cgroup_files;   // where to read it later, on any thread
  std::optional<IpcSnapshot> ipc;  // the live process's channels
};

struct BrokerStats {
  int renderers = 0;
  int running = 0;
  uint64_t spawns = 0;
  uint64_t restarts = 0;
  uint64_t exits = 0;
  uint64_t bad_messages = 0;
  uint64_t messages_in = 0;
  uint64_t heartbeats = 0;
  int64_t uptime_ms = 0;
  // The control socket's traffic: command lines read, reply and trace lines written.
  uint64_t control_lines_in = 0;
  uint64_t control_bytes_in = 0;
  uint64_t control_lines_out = 0;
  uint64_t control_bytes_out = 0;
  // The spare renderer: its pid (0 when none waits), whether the broker keeps one at all, and
  // how many were started, taken by a launch, and lost (exited or killed before being taken).
  bool spare_enabled = false;
  pid_t spare_pid = 0;
  bool spare_ready = false;      // it answered a ping: exec'd, confined and waiting
  bool spare_launching = false;  // its launch is in flight: no process yet
  std::string spare_cgroup;      // its cgroup's directory, empty when none
  uint64_t spares_started = 0;
  uint64_t spares_taken = 0;
  uint64_t spares_lost = 0;
  // The zygote: its pid (0 when none runs), the launches it made, and why there is none.
  pid_t zygote_pid = 0;
  uint64_t zygote_launches = 0;
  size_t zygote_in_flight = 0;  // launches sent to it and not answered yet
  std::string zygote_note;
};

// The most renderers a broker runs unless told otherwise (--max-renderers), and why.
struct RendererBound {
  int max = 0;
  std::string why;  // what decided it, for --help and the errors that cite it
};
// Never more than this by default, however large the machine: past it a broker spends more time
// on its renderers' heartbeats and frames than on anything else.
inline constexpr int kMaxRenderersCap = 1000;
// Tasks one sandboxed renderer takes for good: the renderer's two threads and its namespace's
// init; plus one launch child while it starts. Unsandboxed: the two threads.
inline constexpr int kTasksPerRenderer = 4;
// Descriptors the broker holds for one running renderer: its three pipes, its and its init's
// pidfds, its frame memory, its message queue and its cgroup's OOM counter, with two to spare.
// (The cgroup.procs files, three on v1, are open only while it launches.)
inline constexpr int kFdsPerRenderer = 10;
// Descriptors kept for everything else: the control socket and its clients, the telnet listener,
// the event loop, and the window's own (X, fonts, the GPU).
inline constexpr int kFdsReserved = 256;
// memory_bytes: what renderers may use (the memory budget, or less if the broker's own cgroup
// says so); frame_bytes: one renderer's frame buffers, shared with the broker; nproc:
// RLIMIT_NPROC's soft limit (RLIM_INFINITY: no bound). Half of the process limit stays for the
// rest of the user's processes. nofile: RLIMIT_NOFILE's soft limit, which the broker has raised
// to its hard limit (RaiseFdLimit).
RendererBound DefaultMaxRenderers(uint64_t memory_bytes, uint64_t frame_bytes, uint64_t nproc,
                                  uint64_t nofile = RLIM_INFINITY);
// Raises this process's soft RLIMIT_NOFILE to its hard limit (Debian's default soft limit, 1024,
// holds 76 renderers at kFdsPerRenderer). Safe for the broker: it never uses select(), and a
// renderer's own limits are set by the launcher. Returns the soft limit in effect afterwards.
uint64_t RaiseFdLimit();

// Where and how a renderer is launched: the binary, the sandbox level and, at the full level,
// the namespaces to join and the empty root to chroot into.
struct LaunchSite {
  std::string renderer_path;
  sandbox::Level level = sandbox::Level::kFull;
  std::optional<NamespaceSpec> namespaces;
  std::string sandbox_root;
  int dev_null = -1;  // the renderer's fd 0 (-1: it keeps the broker's, as in a unit test)
  const CgroupSupport* cgroups = nullptr;  // null or kNone: no cgroup per renderer
  // The layers the launcher applies before exec (then sandbox_root is empty: the renderer is
  // already in it). Absent under a --renderer-cmd-prefix wrapper and for a dynamically linked
  // renderer, which the empty root would leave without its libraries: those confine themselves.
  std::optional<Confinement> confine = std::nullopt;
  UniqueFd exe =
      UniqueFd();  // the renderer binary confine->exec_fd names, open until the launch is done
};

class RendererHost;
class RendererProcess;

// What a renderer's slot (RendererHost) and its process (RendererProcess) need from the broker
// that owns them, and nothing more: the loop they run on, the live settings, the counters, where
// their events go, and the two services only the owner of every child can give. The Broker is
// one; a unit test provides another over a real EventLoop.
class RendererHostEnv {
 public:
  virtual EventLoop& loop() = 0;
  virtual const BrokerOptions& options() const = 0;
  virtual BrokerStats& counters() = 0;
  // The event sink. An event's id, pid and page are filled in; the sink stamps the time. A
  // kClosed event means the slot is done and may be destroyed once the handler returns.
  virtual void Emit(const BrokerEvent& e) = 0;
  virtual void NotifyFrame(int id, uint64_t frame) = 0;
  virtual void NotifyHeartbeat(int id, const protocol::Heartbeat& hb, int64_t latency_ns) = 0;
  // A message the renderer's inspector recorded, for tracers.
  virtual void NotifyIpc(int /*id*/, const IpcRecord& /*record*/) {}
  // The binary and sandbox for the next launch (at the full level this may have to recreate the
  // namespace holder, and fail).
  virtual Result<LaunchSite> PrepareLaunch() = 0;
  // Takes a child that has finished its work (a namespace init, a joiner) and reaps it once it
  // exits, off the caller's path.
  virtual void ReapLater(ChildProcess child) = 0;
  // Calls host.LaunchNow() when the loop has time for it. The Broker queues every launch (first
  // start, restart, reload) and starts them a few per loop turn, so that a burst of launches
  // never keeps the loop from its sockets, signals and timers; this default launches at once.
  virtual void QueueLaunch(RendererHost& host);
  // The spare renderer, if one is waiting, for the launch about to be made (LaunchNow); the
  // owner starts another in the background once that launch is ready. This default has none.
  virtual std::unique_ptr<RendererProcess> TakeSpare();
  // Makes a launch (launcher.h) from this process and waits for it.
  virtual Result<LaunchedChild> Launch(const LaunchSpec& spec);
  // Makes a launch and gives its outcome to `done`: before returning (this default: Launch), or
  // later from the loop (the Broker's zygote makes the sandboxed ones while the loop goes on).
  // Returns a ticket for CancelLaunch while `done` is still to come, else 0. The spec's fds may
  // close once this returns.
  using LaunchDone = Zygote::LaunchDone;
  virtual uint64_t StartLaunch(const LaunchSpec& spec, LaunchDone done);
  // `done` of that launch will not be called; whatever the launch makes is killed and reaped.
  virtual void CancelLaunch(uint64_t /*ticket*/) {}

 protected:
  ~RendererHostEnv() = default;
};

// Privately a RendererHostEnv: only the hosts it creates see that side of it.
class Broker final : private RendererHostEnv {
 public:
  static Result<std::unique_ptr<Broker>> Create(BrokerOptions options);
  // Public only in form: the key is private, so Create() is the one way in.
  struct Key {
   private:
    friend class Broker;
    Key() = default;
  };
  Broker(Key, EventLoop loop, BrokerOptions options, std::string renderer_path);
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;
  // Kills and reaps every renderer that is still alive.
  ~Broker();

  EventLoop& loop() override { return loop_; }
  BrokerOptions& options() { return options_; }  // live settings: restart, hang timeout, ...
  const BrokerOptions& options() const override { return options_; }
  void AddObserver(BrokerObserver* o);
  void RemoveObserver(BrokerObserver* o);
  // Observers told of every IPC message (OnIpc), such as a `trace` client's server.
  void AddIpcObserver(BrokerObserver* o);
  void RemoveIpcObserver(BrokerObserver* o);
  // The control socket counts its traffic here, for `stats`.
  void CountControl(bool inbound, size_t bytes);

  // Spawns options().renderers renderers on options().page: their slots exist (`starting`) when
  // it returns, and the loop launches them. More than max_renderers() is refused.
  Result<void> Start();
  // Returns the new renderer's id at once; its slot is `starting` and its launch queued (the
  // `spawned` event follows once its process runs). An empty url means options().page. Refused
  // past max_renderers() live slots and past the memory budget.
  Result<int> Spawn(std::string_view url = {});
  Result<void> Close(int id);
  Result<void> Kill(int id, int sig);
  Result<void> KillHung(int id);  // SIGKILL, classified `hung`
  Result<void> Crash(int id, protocol::CrashKind kind);
  Result<void> Hang(int id);
  Result<void> Oom(int id);
  Result<void> BadIpc(int id);
  Result<void> Navigate(int id, std::string_view url);
  Result<void> SetFps(int id, uint32_t fps);
  // Hidden (a background tab, a tile out of view): the renderer draws no frames, beats at the
  // slow rate and gets a smaller CPU share. Kept across restarts.
  Result<void> SetVisibility(int id, protocol::Visibility visibility);
  // Live: navigates again; exited or failed: starts a fresh process and forgets the crash loop.
  Result<void> Reload(int id);
  using PingCallback = std::function<void(Result<int64_t> rtt_ns)>;
  // The callback runs on the loop thread when the pong arrives, or with an error if the
  // renderer dies or does not answer within 5 s.
  Result<void> Ping(int id, PingCallback callback);

  // Closes every renderer (SIGTERM, SIGKILL after term_grace_ms); finished() turns true once
  // all of them are reaped.
  void Shutdown();
  bool shutting_down() const { return shutting_down_; }
  bool finished() const { return shutting_down_ && hosts_.empty(); }

  // Every slot's snapshot. The cgroup figures cost a few file reads per renderer; a caller on a
  // thread that must not wait for them (the window's GUI thread) asks for none and reads them
  // from cgroup_files elsewhere.
  std::vector<RendererSnapshot> List(bool read_cgroup_usage = true) const;
  // As List(): without read_cgroup_usage, the cgroup's usage files are named but not read.
  std::optional<RendererSnapshot> Get(int id, bool read_cgroup_usage = true) const;
  // The renderer's current frame buffer (replaced at each restart), or null.
  const FrameReader* Frames(int id) const;
  BrokerStats Stats() const;
  int64_t NowMs() const;
  std::string renderer_path() const { return renderer_path_; }
  // The sandbox renderers get, decided once at start-up, and why it is less than full.
  sandbox::Level sandbox_level() const { return sandbox_level_; }
  const std::string& sandbox_note() const { return sandbox_note_; }
  // The directory renderers chroot into (empty and read-only in their mount namespace).
  std::string sandbox_root() const { return holder_ ? holder_->empty_root() : std::string(); }
  // The live process's last messages, oldest first (empty when none or the inspector is off).
  std::vector<IpcRecord> IpcRecent(int id, size_t max = IpcInspector::kRingSize) const;
  int64_t start_ns() const { return start_ns_; }
  // The renderer's sandbox as seen from outside, through /proc.
  Result<SandboxReport> Sandbox(int id) const;
  // The process view, read from /proc: without an id the broker with the namespace holder and
  // every renderer (its init, the renderer) below it; with one, that renderer's init and itself.
  // An id with no live process is an error.
  Result<ProcessInfo> Inspect(std::optional<int> id = std::nullopt,
                              const InspectStepHook& hook = {}) const;
  // What Inspect() without an id reads, as a plan ReadPlan() can read on another thread: the
  // window does, since at 500 renderers the reads take a third of a second.
  InspectPlan PlanInspect() const;
  // Inspect() without an id as the control socket's `inspect` replies it ({"process": tree},
  // serialised), read and built on the worker thread: `done` runs on the loop's thread once it is
  // ready, never from inside this call unless the worker cannot start (then all of it is here).
  // Calls made while a read runs share its result. A broker destroyed meanwhile calls none.
  void InspectAll(std::function<void(std::string)> done, InspectStepHook hook = {});
  // The control socket's `list` reply ({"renderers": [...]}, serialised): the rows are taken on
  // the loop, their /proc and cgroup reads and the JSON are made on the worker thread (at 500
  // renderers a tenth of a second). One read at a time: calls made while one runs share the next,
  // whose rows are taken when it starts, after each of them was asked. `done` runs on the loop's
  // thread, never from inside this call unless the worker cannot start (then all of it is here).
  // `hook` (for tests) runs with "rows" before the reads and "done" after them.
  void ListAll(std::function<void(std::string)> done, InspectStepHook hook = {});
  // The namespace holder's pid (0 when there is none).
  pid_t holder_pid() const { return holder_ ? holder_->pid() : 0; }
  // Where renderer cgroups go, or why there are none; and the budget their limits share.
  const CgroupSupport& cgroups() const { return cgroups_; }
  uint64_t memory_budget() const { return memory_budget_; }
  // The most live slots (--max-renderers, or its default) and what decided it.
  const RendererBound& max_renderers() const { return max_renderers_; }
  // Launches waiting for their turn in the loop.
  size_t queued_launches() const { return launch_queue_.size(); }

 private:
  // RendererHostEnv.
  BrokerStats& counters() override { return stats_; }
  void Emit(const BrokerEvent& e) override;
  void NotifyFrame(int id, uint64_t frame) override;
  void NotifyHeartbeat(int id, const protocol::Heartbeat& hb, int64_t latency_ns) override;
  void NotifyIpc(int id, const IpcRecord& record) override;
  Result<LaunchSite> PrepareLaunch() override;
  // Meanwhile each tick reaps strays (ReapStrayChildren), which an init may wait on.
  void ReapLater(ChildProcess child) override;
  void QueueLaunch(RendererHost& host) override;
  std::unique_ptr<RendererProcess> TakeSpare() override;

  // The spare: wanted when enabled, not shutting down, none waits or is queued, and a spawn now
  // would be allowed (it counts against --max-renderers and the memory budget as a slot would).
  bool SpareWanted() const;
  // Queues its launch behind the launches waiting (the queue's marker kSpareMarker), after
  // `delay_ms` when one was just lost.
  void QueueSpare(int64_t delay_ms = 0);
  void LaunchSpare();
  void SpareFailed(const Error& e);
  void SpareStarted(std::unique_ptr<RendererProcess> p);
  // The spare exited or was killed before any launch took it: reaped, counted, replaced.
  void SpareLost(const ExitInfo& info);
  // Pushes `id` (a slot, or kSpareMarker) on the launch queue and makes sure it drains.
  void Enqueue(int id);
  // Runs queued launches for at most kLaunchSliceNs (at least one), then yields to the loop.
  void DrainLaunchQueue();
  // --max-renderers, or the default from memory, RLIMIT_NPROC and RLIMIT_NOFILE.
  void SetMaxRenderers(uint64_t nofile);  // nofile: the soft RLIMIT_NOFILE in effect
  int LiveSlots() const;

  // Creates the namespace holder if there is none (or it died); false if it cannot be had.
  Result<void> EnsureNamespaceHolder();
  uint64_t StartLaunch(const LaunchSpec& spec, LaunchDone done) override;
  void CancelLaunch(uint64_t ticket) override;
  // Reads the zygote's answers; past a failure, drops it and counts the failure.
  void OnZygoteReadable();
  void ZygoteFailed(const Error& why);
  // The timer that fails a zygote whose launch in progress goes unanswered (Zygote::Expire).
  void ArmZygoteTimer();
  // Makes sure queued launches drain, as when a launch in flight has ended.
  void ResumeLaunches();
  // Starts the zygote if there is none; an error when it cannot be had (then the broker
  // launches by itself, and stats say why).
  Result<void> EnsureZygote();
  void DropZygote();
  // Finds where renderer cgroups go, removes those a dead broker left, and sets the budget.
  void SetUpCgroups();
  // A spawn past the memory budget is refused: a hidden renderer keeps its memory (it is only
  // throttled, not discarded), and refusing says plainly why no renderer appeared.
  Result<void> CheckMemoryBudget() const;
  // Opens the renderer and builds the launcher's filter, when the launcher can confine it.
  Result<void> PrepareConfinement();
  int OpenRenderer() const;  // read-only, close-on-exec; -1 if it cannot be opened
  Result<RendererHost*> Find(int id) const;
  void ScheduleRemoval(int id);
  void Tick();

  EventLoop loop_;
  BrokerOptions options_;
  std::string renderer_path_;
  int64_t start_ns_;
  int next_id_ = 1;
  std::map<int, std::unique_ptr<RendererHost>> hosts_;
  std::vector<BrokerObserver*> observers_;
  std::vector<BrokerObserver*> ipc_observers_;
  BrokerStats stats_;
  bool shutting_down_ = false;
  EventLoop::Token tick_timer_ = 0;
  sandbox::Level sandbox_level_ = sandbox::Level::kFull;
  std::string sandbox_note_;
  // `list` reports every renderer's sandbox; what cannot change is read once per process.
  mutable SandboxInspector sandbox_inspector_;
  std::optional<NamespaceHolder> holder_;
  std::optional<Zygote> zygote_;  // lives in holder_'s namespaces: goes when it goes
  EventLoop::Token zygote_watch_ = 0;
  EventLoop::Token zygote_socket_watch_ = 0;
  EventLoop::Token zygote_timer_ = 0;
  int zygote_failures_ = 0;  // starts that failed in a row; past a few the broker stops trying
  uint64_t zygote_launches_ = 0;
  std::string zygote_note_;
  std::map<EventLoop::Token, ChildProcess> reaping_;
  bool strays_seen_ = false;  // the last sweep found strays: sweep again next tick
  int64_t next_stray_sweep_ns_ = 0;
  EventLoop::Token holder_watch_ = 0;
  UniqueFd dev_null_;  // read-only: every renderer's fd 0
  // A root broker's renderer uid and gid (PickRendererIds), and its claim on an id of its own.
  uid_t renderer_id_ = 0;
  gid_t renderer_gid_ = 0;
  UniqueFd renderer_id_claim_;
  CgroupSupport cgroups_;
  uint64_t memory_budget_ = 0;
  RendererBound max_renderers_;
  // Slot ids whose launch waits for the loop; a slot closed meanwhile is skipped.
  std::deque<int> launch_queue_;
  EventLoop::Token launch_timer_ = 0;
  bool draining_ = false;  // DrainLaunchQueue is running: it re-arms the timer itself
  // The spare renderer and its delegate (it has no slot): broker.cc.
  class SpareKeeper;
  friend class SpareKeeper;
  std::unique_ptr<SpareKeeper> spare_;
  bool spare_enabled_ = false;
  bool spare_queued_ = false;
  EventLoop::Token spare_timer_ = 0;
  int64_t spare_retry_ms_ = 0;  // the wait before replacing a spare lost next; 0 after a take
  // Built at start-up when the launcher confines renderers (LaunchSite::confine).
  std::vector<sock_filter> launcher_filter_;
  // The worker, started at the first call (nullptr if it cannot start: the caller reads here).
  Worker* EnsureWorker();
  bool worker_failed_ = false;  // it could not start: said once, not tried again
  // Whoever waits for the read in progress (InspectAll).
  std::vector<std::function<void(std::string)>> inspect_waiters_;
  // ListAll: the rows of one `list`, and those asked for while one is read, who share the next.
  struct ListJob;
  struct ListWaiter {
    std::function<void(std::string)> done;
    InspectStepHook hook;
  };
  std::shared_ptr<ListJob> TakeListRows() const;
  // On any thread: touches nothing but the job, whose rows it fills in (and the inspector's
  // locked cache).
  static std::string BuildList(ListJob& job);
  void StartList();
  std::vector<ListWaiter> list_waiters_;
  bool list_running_ = false;
  // Started by the first InspectAll or ListAll. Its work touches copies (an InspectPlan, a
  // ListJob's rows) and sandbox_inspector_, which locks its cache and is declared before it; so
  // it may still run while ~Broker ends the renderers: declared last, it is joined first of the
  // members.
  std::unique_ptr<Worker> worker_;
};

}  // namespace sbx
