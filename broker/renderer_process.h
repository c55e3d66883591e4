// Internal to the broker core. One RendererProcess is one launched renderer process and
// everything that dies with it: the process (and, sandboxed, its namespace's init), its control
// channel, its frame buffer, its heartbeat queue, their event-loop watches, the inbound rate
// limit and the pings waiting for a pong. Its slot (RendererHost) holds at most one; a restart
// builds a new one, so nothing of a dead process is ever reset by hand. A spare (LaunchSpare) is
// one whose delegate is not a slot yet: started ahead of need with no id or page, it is handed
// to the slot that takes it (Assign), which sends it both.
//
// Everything the process sends is validated here; a violation kills it (`bad-message`) and
// stops reading from it. What passes is reported to the Delegate, which owns the state machine.
// Its destructor kills and reaps a process that is still running.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/cgroup.h"
#include "broker/child_process.h"
#include "broker/event_loop.h"
#include "broker/exit_status.h"
#include "broker/hang_watchdog.h"
#include "broker/ipc_inspector.h"
#include "broker/process_inspector.h"
#include "ipc/channel.h"
#include "ipc/frame_buffer.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"
#include "ipc/unique_fd.h"

namespace sbx {

class RendererLog;

// Why a heartbeat carries figures no real renderer can send, or nullopt when every field is in
// range. `last` is the previous heartbeat accepted from the same process ({} before the first);
// spawn_ns and now_ns (CLOCK_MONOTONIC, as the renderer's own clock) bracket its life so far, and
// `cpus` is how many CPUs its threads could have run on at once.
std::optional<std::string> ImpossibleHeartbeat(const protocol::Heartbeat& hb,
                                               const protocol::Heartbeat& last, int64_t spawn_ns,
                                               int64_t now_ns, unsigned cpus);
// The most frames a renderer can have published `elapsed_ns` after its launch: what the broker's
// flood limit lets through.
uint64_t MaxFramesAfter(int64_t elapsed_ns);

// What a process's life so far shows in its slot's snapshot; kept by the slot once it is gone.
struct ProcessFigures {
  pid_t pid = 0;
  int64_t spawn_ns = 0;
  bool heartbeat_fallback = false;  // no message queue: heartbeats ride the pipe
  uint64_t frames = 0;
  int64_t last_heartbeat_ns = 0;
  protocol::Heartbeat last_heartbeat{};
};

// What a RendererProcess's launch in flight holds for the process it will make: the child's ends
// close with it. At namespace scope because clang cannot value-initialize a nested class with
// member initializers inside std::optional before the enclosing class is complete.
struct RendererPendingLaunch {
  PipePair to_renderer;
  PipePair from_renderer;
  std::optional<QueuePair> queue;  // made in the broker's IPC namespace
  bool queue_in_namespace = false;
  UniqueFd log_child_end;
};

class RendererProcess {
 public:
  // What the process tells its owner, on the loop thread, after validating it.
  class Delegate {
   public:
    virtual void OnFirstFrame(int64_t since_spawn_ns) = 0;
    virtual void OnFrame(uint64_t frame_number) = 0;
    virtual void OnHeartbeat(const protocol::Heartbeat& hb, int64_t latency_ns) = 0;
    virtual void OnDrillReport(const std::string& text) = 0;
    // A line it wrote to its stdout or stderr, or a note of what was dropped (EventType::kLog).
    virtual void OnLog(BrokerEvent e) = 0;
    // The process is gone and reaped, and its pings have failed. The delegate may destroy this
    // RendererProcess here: nothing of it is touched after the call.
    virtual void OnExit(ExitInfo info) = 0;
    // A launch that Launch() returned still launching() has ended: the process runs (its hello
    // sent), or the error says why there is none. The delegate may destroy this RendererProcess
    // here: nothing of it is touched after the call.
    virtual void OnLaunched(Result<void> result) = 0;

   protected:
    ~Delegate() = default;
  };
  using PingCallback = Broker::PingCallback;

  // Launches renderer `id` on `page` and sends it the hello. An error means no process runs.
  // The result may still be launching() (the zygote's answer has not come): then OnLaunched
  // tells the outcome, from the loop, unless the object is destroyed first, which cancels the
  // launch (whatever it makes is killed and reaped).
  // `visibility` is the renderer's from its first instruction (its argv and, hidden, its CPU
  // share or nice value).
  static Result<std::unique_ptr<RendererProcess>> Launch(
      RendererHostEnv& env, int id, const std::string& page, Delegate& delegate,
      protocol::Visibility visibility = protocol::Visibility::kVisible);
  // A spare: launched as Launch() does but with --spare in place of --id and --page, and id 0
  // until Assign. Anything it sends before its assignment is a violation (`bad-message`).
  static Result<std::unique_ptr<RendererProcess>> LaunchSpare(RendererHostEnv& env,
                                                              Delegate& delegate);
  // Makes a spare slot `id`'s: the assign message (id, page, the broker's fps, visibility), and
  // from now on its events go to `delegate`. An error leaves it unassigned (a spare no longer).
  Result<void> Assign(int id, const std::string& page, protocol::Visibility visibility,
                      Delegate& delegate);
  bool spare() const { return spare_; }
  bool launching() const { return launching_; }
  // Public only in form: the key is private, so Launch() is the one way in.
  struct Key {
   private:
    friend class RendererProcess;
    Key() = default;
  };
  RendererProcess(Key, RendererHostEnv& env, int id, Delegate& delegate);
  RendererProcess(const RendererProcess&) = delete;
  RendererProcess& operator=(const RendererProcess&) = delete;
  // A process still running is SIGKILLed and reaped, then its init; the init of one already
  // reaped is handed to the environment to reap.
  ~RendererProcess();

  void SetDelegate(Delegate& delegate) { delegate_ = &delegate; }

  Result<void> Send(protocol::MsgType type, std::span<const uint8_t> payload = {});
  // `reason`, if the broker has one, names the exit; the first reason given wins.
  Result<void> Signal(int sig, KillReason reason);
  // SIGKILL for the broker's own reason; `why` becomes the exit's detail.
  void Kill(KillReason reason, std::string why);
  // SIGKILL (for `reason`) once grace_ns have passed, unless the process is gone by then.
  void KillAfter(int64_t grace_ns, KillReason reason);
  Result<void> Ping(PingCallback callback);
  // Fails the pings that have waited more than 5 s for their pong.
  void ExpirePings(int64_t now_ns);
  // Tells the renderer (set-visibility) and moves it to the CPU share of its visibility.
  Result<void> SetVisibility(protocol::Visibility visibility);
  // Handles heartbeats already sent but not yet read, so that a broker that was itself slow to
  // run does not blame the renderer for its own delay; the watchdog calls it before a verdict.
  void ReadPendingHeartbeats();

  // True until its exit has been seen (it is reaped only when this object goes).
  bool alive() const { return process_.valid() && !process_.exited(); }
  // The renderer's pidfd, borrowed (-1 when there is none).
  int pidfd() const { return process_.pidfd(); }
  // Whether the broker has already signalled it for a reason of its own.
  bool being_killed() const { return kill_reason_ != KillReason::kNone; }
  bool has_frame() const { return first_frame_ns_ != 0; }
  bool has_pending_output() const { return channel_ && channel_->HasPendingOutput(); }
  SignsOfLife signs_of_life() const {
    return {figures_.spawn_ns, first_frame_ns_, figures_.last_heartbeat_ns, visibility_,
            visibility_changed_ns_};
  }
  protocol::Visibility visibility() const { return visibility_; }
  const ProcessFigures& figures() const { return figures_; }
  uint64_t messages_in() const { return messages_in_; }
  const FrameReader* frames() const { return frames_ ? &*frames_ : nullptr; }
  // Its cgroup (invalid when it has none); removed as soon as the process is reaped.
  const RendererCgroup& cgroup() const { return cgroup_; }
  const IpcInspector& inspector() const { return ipc_; }
  // The inspector's counters, with the queue depth and the bytes waiting in each pipe read now.
  IpcSnapshot Ipc(int64_t now_ns) const;
  // The broker's ends of what the process was given, and its pids, for the process view.
  RendererEnds ends(int dev_null) const;
  // Set when there is no message queue: why not.
  const std::string& fallback_reason() const { return fallback_reason_; }

 private:
  struct PendingPing {
    int64_t sent_ns;
    PingCallback callback;
  };

  // Everything a launch needs, then the launch asked of the environment (StartLaunch).
  Result<void> Spawn(const std::string& page);
  // The launch's outcome, whenever it comes; tells the delegate unless inside Spawn.
  void Complete(Result<LaunchedChild> launched);
  Result<void> Started(Result<LaunchedChild> child);
  // Its cgroup, when the broker has a hierarchy for one; an error fails the launch.
  Result<void> MakeCgroup(const LaunchSite& site);
  void WatchChannelAndQueue();
  // The CPU share of visibility_: the cgroup's weight, or without a cgroup every thread's nice.
  void ApplyPriority();
  void OnExitReadable();
  void OnControlReadable();
  void OnControlWritable(uint32_t events);
  void TrackPartialMessage(bool progressed, int64_t now_ns);
  void OnPartialMessageDeadline();
  // A renderer that closed one of its pipe ends gets a grace period to exit, then `bad-message`.
  void StartPipeClosedGrace(std::string what, int64_t now_ns);
  void OnQueueReadable();
  void HandleMessage(const Message& m, int64_t now_ns);
  void HandleFrameReady(const Message& m, int64_t now_ns);
  void HandlePong(const Message& m, int64_t now_ns);
  void HandleHeartbeat(const protocol::Heartbeat& hb, int64_t now_ns);
  bool TakeInboundToken(int64_t now_ns);
  void Violation(std::string what);
  void ReleaseKernelObjects();
  void FailPings(const std::string& why);
  void UpdateWriteInterest();
  // Shows a recorded message to the environment's tracers (no-op when the inspector is off); a
  // spare's are recorded (its slot's `ipc` shows them) but belong to no id a tracer knows yet.
  void Traced(const IpcRecord* r) {
    if (r && !spare_) env_.NotifyIpc(id_, *r);
  }

  RendererHostEnv& env_;
  EventLoop& loop_;
  int id_;  // 0 while a spare
  Delegate* delegate_;
  bool spare_ = false;

  RendererCgroup cgroup_;  // declared first: removed after the process is reaped
  ChildProcess process_;   // the renderer: signals go here
  ChildProcess init_;      // sandboxed: the namespace's init, killed once the renderer is gone
  std::optional<Channel> channel_;
  std::optional<FrameReader> frames_;
  UniqueFd queue_;
  std::unique_ptr<RendererLog> log_;  // its stdout and stderr
  std::string fallback_reason_;
  std::vector<Message> inbox_;  // OnControlReadable's batch, kept for its capacity
  std::optional<RendererPendingLaunch> pending_;
  bool launching_ = false;
  bool in_spawn_ = false;  // Complete called inside StartLaunch: Spawn returns its result
  Result<void> spawn_result_;
  uint64_t launch_ticket_ = 0;  // the environment's, while launching (CancelLaunch)

  EventLoop::Token exit_watch_ = 0;
  EventLoop::Token in_watch_ = 0;
  EventLoop::Token out_watch_ = 0;  // from launch to exit; EPOLLOUT only while output waits
  bool want_writable_ = false;
  EventLoop::Token queue_watch_ = 0;
  EventLoop::Token kill_timer_ = 0;
  EventLoop::Token eof_timer_ = 0;
  EventLoop::Token partial_timer_ = 0;
  int64_t partial_since_ns_ = 0;  // when the unfinished message in the decoder began, or 0

  KillReason kill_reason_ = KillReason::kNone;
  std::string kill_note_;    // why the broker killed it, for the exit's detail
  ProcessFigures figures_;   // spawn_ns: its launch, or for a spare its assignment
  int64_t launched_ns_ = 0;  // when the process was launched: what bounds what it may claim
  int64_t first_frame_ns_ = 0;
  protocol::Visibility visibility_ = protocol::Visibility::kVisible;
  int64_t visibility_changed_ns_ = 0;  // when it was last told of a change
  uint64_t last_frame_number_ = 0;
  uint64_t messages_in_ = 0;
  IpcInspector ipc_;
  uint64_t messages_out_ = 0;  // the sequence number of the last command sent
  uint64_t queue_messages_ = 0;
  double inbound_tokens_ = 0;
  int64_t inbound_refill_ns_ = 0;
  uint64_t next_ping_token_ = 1;
  std::map<uint64_t, PendingPing> pings_;
  // Pings whose 5 s ran out unanswered: their pong may still come (a renderer stopped for a while
  // answers what it missed when it resumes) and is accepted once, without a callback.
  std::set<uint64_t> expired_pings_;
};

}  // namespace sbx
