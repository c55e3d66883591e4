// Internal to the broker core. One RendererHost owns everything about one renderer id across
// its restarts: the pidfd, the control channel, the frame buffer, the heartbeat queue, the state
// machine and the restart policy. Its destructor kills and reaps whatever process it still has.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "broker/broker.h"
#include "broker/child_process.h"
#include "broker/event_loop.h"
#include "broker/exit_status.h"
#include "broker/restart_policy.h"
#include "ipc/channel.h"
#include "ipc/frame_buffer.h"
#include "ipc/unique_fd.h"

namespace sbx {

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

class RendererLog;

class RendererHost {
 public:
  RendererHost(Broker& broker, int id, std::string page);
  RendererHost(const RendererHost&) = delete;
  RendererHost& operator=(const RendererHost&) = delete;
  ~RendererHost();

  // Launches a process. A failure is not returned: it becomes a `launch-failed` exit, handled
  // (and restarted) like any other exit.
  void Start();
  // kAsk (`close ID`, a tab closed in the window): the shutdown message, as Chrome closes a tab.
  // kTerminate (the broker shutting down): SIGTERM, as the shutdown contract says.
  // Either way a renderer still alive after the grace period is SIGKILLed.
  enum class CloseHow { kAsk, kTerminate };
  void RequestClose(CloseHow how);
  Result<void> Send(protocol::MsgType type, std::span<const uint8_t> payload = {});
  Result<void> Signal(int sig, KillReason reason);
  Result<void> Navigate(std::string_view url);
  Result<void> Reload();
  Result<void> Ping(Broker::PingCallback callback);
  void CheckWatchdog(int64_t now_ns);

  int id() const { return id_; }
  RendererState state() const { return state_; }
  // Whether the renderer process is still ours to reap (a namespace init, once the renderer is
  // gone, is the broker's to reap, not this host's).
  bool alive() const { return process_.valid(); }
  const FrameReader* frames() const { return frames_ ? &*frames_ : nullptr; }
  RendererSnapshot Snapshot(int64_t now_ns) const;

 private:
  struct PendingPing {
    int64_t sent_ns;
    Broker::PingCallback callback;
  };

  void OnExitReadable();
  void OnControlReadable();
  void OnControlWritable(uint32_t events);
  void TrackPartialMessage(bool progressed, int64_t now_ns);
  void OnPartialMessageDeadline();
  // A renderer that closed one of its pipe ends gets a grace period to exit, then `bad-message`.
  void StartPipeClosedGrace(std::string what, int64_t now_ns);
  void OnQueueReadable();
  void HandleMessage(const Message& m, int64_t now_ns);
  void HandleHeartbeat(const protocol::Heartbeat& hb, int64_t now_ns);
  bool TakeInboundToken(int64_t now_ns);
  void Violation(std::string what);
  void LaunchFailed(const Error& e);
  void HandleExit(ExitInfo info);
  void ReleaseProcess();
  void RetireInit(ChildProcess init);
  void FailPings(const std::string& why);
  void UpdateWriteInterest();
  void Emit(EventType type, BrokerEvent e = {});
  // Moves to NextState(state_, h); false, and no change, when h cannot happen in this state.
  bool Transition(Happening h);

  Broker& broker_;
  EventLoop& loop_;
  const int id_;
  std::string page_;
  RendererState state_ = RendererState::kStarting;
  RestartPolicy policy_;

  pid_t pid_ = 0;
  ChildProcess process_;        // the renderer: signals go here
  std::vector<Message> inbox_;  // OnControlReadable's batch, kept for its capacity
  ChildProcess init_;  // sandboxed: the namespace's init, our direct child, killed and reaped
                       // once the renderer is gone
  std::optional<Channel> channel_;
  std::optional<FrameReader> frames_;
  UniqueFd queue_;
  std::unique_ptr<RendererLog> log_;  // its stdout and stderr
  bool fallback_ = false;

  EventLoop::Token exit_watch_ = 0;
  EventLoop::Token in_watch_ = 0;
  EventLoop::Token out_watch_ = 0;  // from launch to exit; EPOLLOUT only while output waits
  bool want_writable_ = false;
  EventLoop::Token queue_watch_ = 0;
  EventLoop::Token restart_timer_ = 0;
  EventLoop::Token kill_timer_ = 0;
  EventLoop::Token eof_timer_ = 0;
  EventLoop::Token partial_timer_ = 0;
  int64_t partial_since_ns_ = 0;  // when the unfinished message in the decoder began, or 0

  KillReason kill_reason_ = KillReason::kNone;
  std::string violation_;
  bool closing_ = false;
  bool ready_ = false;
  int restarts_ = 0;
  int64_t spawn_ns_ = 0;
  int64_t ready_ns_ = 0;
  int64_t exit_ns_ = 0;
  int64_t last_heartbeat_ns_ = 0;
  uint64_t last_frame_number_ = 0;
  uint64_t frames_seen_ = 0;
  uint64_t messages_in_ = 0;
  protocol::Heartbeat last_hb_{};
  ExitInfo last_exit_;
  double inbound_tokens_ = 0;
  int64_t inbound_refill_ns_ = 0;
  uint64_t next_ping_token_ = 1;
  std::map<uint64_t, PendingPing> pings_;
  // Pings whose 5 s ran out unanswered: their pong may still come (a renderer stopped for a while
  // answers what it missed when it resumes) and is accepted once, without a callback.
  std::set<uint64_t> expired_pings_;
};

}  // namespace sbx
