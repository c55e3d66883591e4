// Internal to the broker core. One RendererHost is one renderer slot, the tab of a renderer id:
// what survives its restarts (the id, the page, the state machine, the restart policy, the last
// exit) and at most one RendererProcess, the process that runs for it now. A restart builds a new
// RendererProcess; the slot never resets a process's fields by hand.
//
// It needs only a RendererHostEnv (loop, settings, event sink), so a test can run it without a
// Broker. Its destructor kills and reaps whatever process it still has.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "broker/broker.h"
#include "broker/exit_status.h"
#include "broker/hang_watchdog.h"
#include "broker/renderer_process.h"
#include "broker/renderer_state.h"
#include "broker/restart_policy.h"
#include "ipc/frame_buffer.h"

namespace sbx {

class RendererHost final : private RendererProcess::Delegate {
 public:
  RendererHost(RendererHostEnv& env, int id, std::string page);
  RendererHost(const RendererHost&) = delete;
  RendererHost& operator=(const RendererHost&) = delete;
  ~RendererHost();

  // Asks for a process (first start, restart, reload): the spare at once if there is one, else
  // the slot is `starting` and its launch waits in the env's queue (RendererHostEnv::QueueLaunch).
  void Start();
  // The queued launch, when the queue reaches it; nothing if the slot was closed meanwhile. A
  // failure is not returned: it becomes a `launch-failed` exit, handled (and restarted) like any
  // other exit.
  void LaunchNow();
  bool launch_queued() const { return launch_queued_; }
  // Its launch is in flight (the zygote makes it): no process yet, and none to signal.
  bool launching() const { return launching_ != nullptr; }
  // kAsk (`close ID`, a tab closed in the window): the shutdown message, as Chrome closes a tab.
  // kTerminate (the broker shutting down): SIGTERM.
  // Either way a renderer still alive after the grace period is SIGKILLed.
  enum class CloseHow { kAsk, kTerminate };
  void RequestClose(CloseHow how);
  Result<void> Send(protocol::MsgType type, std::span<const uint8_t> payload = {});
  Result<void> Signal(int sig, KillReason reason);
  Result<void> Navigate(std::string_view url);
  Result<void> Reload();
  Result<void> Ping(Broker::PingCallback callback);
  // One look of the hang watchdog (hang_watchdog.h), and the 5 s limit of pending pings.
  void CheckWatchdog(int64_t now_ns);
  // The slot's visibility, kept across restarts: the running renderer is told at once, the next
  // one at its launch. A change is a `visibility` event.
  void SetVisibility(protocol::Visibility visibility);
  protocol::Visibility visibility() const { return visibility_; }

  int id() const { return id_; }
  RendererState state() const { return state_; }
  // Whether the renderer process is still ours to reap (a namespace init, once the renderer is
  // gone, is the broker's to reap, not this host's).
  bool alive() const { return process_ && process_->alive(); }
  // The process running for the slot now, or null.
  const RendererProcess* process() const { return process_.get(); }
  const FrameReader* frames() const { return process_ ? process_->frames() : nullptr; }
  RendererSnapshot Snapshot(int64_t now_ns) const;

 private:
  // RendererProcess::Delegate.
  void OnFirstFrame(int64_t since_spawn_ns) override;
  void OnFrame(uint64_t frame_number) override;
  void OnHeartbeat(const protocol::Heartbeat& hb, int64_t latency_ns) override;
  void OnDrillReport(const std::string& text) override;
  void OnLog(BrokerEvent e) override;
  void OnExit(ExitInfo info) override;
  void OnLaunched(Result<void> result) override;

  // Assigns the env's spare to this slot, if it has one that takes the assignment.
  bool TakeSpare();
  // The process runs: the `spawned` event.
  void Spawned();
  void LaunchFailed(const Error& e);
  void HandleExit(ExitInfo info);
  // After an exit: a restart now or later, or `failed` for a crash loop.
  void RestartOrFail();
  // The live process's figures, else those of the last one.
  const ProcessFigures& figures() const { return process_ ? process_->figures() : last_; }
  void Emit(EventType type, BrokerEvent e = {});
  // Moves to NextState(state_, h); false, and no change, when h cannot happen in this state.
  bool Transition(Happening h);
  HangVerdict Verdict(int64_t now_ns) const;
  // Whether a silence past its limit is a hang rather than starvation (JudgeSilence), from the
  // renderer's threads now and as sampled earlier in the silence.
  bool SilenceIsHang(const HangVerdict& v);

  RendererHostEnv& env_;
  EventLoop& loop_;
  const int id_;
  std::string page_;
  RendererState state_ = RendererState::kStarting;
  RestartPolicy policy_;
  std::unique_ptr<RendererProcess> process_;
  std::unique_ptr<RendererProcess> launching_;  // launched, not running yet; destroyed: cancelled
  ProcessFigures last_;       // the last process's, once it is gone (or failed to launch)
  uint64_t messages_in_ = 0;  // from the processes already gone
  EventLoop::Token restart_timer_ = 0;
  bool closing_ = false;
  bool launch_queued_ = false;
  int restarts_ = 0;
  int64_t exit_ns_ = 0;
  ExitInfo last_exit_;
  protocol::Visibility visibility_;
  // The renderer's threads as sampled once its silence neared its limit; reset by a heartbeat.
  std::optional<SchedSample> silence_sample_;
};

}  // namespace sbx
