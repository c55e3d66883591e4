#include "broker/renderer_host.h"

#include <signal.h>

#include <cstdio>
#include <utility>

#include "broker/death_detection.h"
#include "broker/hang_watchdog.h"
#include "ipc/codec.h"
#include "ipc/posix.h"

namespace sbx {

namespace {
using protocol::MsgType;
constexpr int64_t kNsPerMs = 1'000'000;
}  // namespace

RendererHost::RendererHost(RendererHostEnv& env, int id, std::string page)
    : env_(env),
      loop_(env.loop()),
      id_(id),
      page_(std::move(page)),
      policy_(env.options().restart_policy),
      visibility_(env.options().start_hidden ? protocol::Visibility::kHidden
                                             : protocol::Visibility::kVisible) {}

RendererHost::~RendererHost() {
  loop_.CancelTimer(restart_timer_);
  process_.reset();
}

void RendererHost::Emit(EventType type, BrokerEvent e) {
  e.type = type;
  e.id = id_;
  if (e.pid == 0) e.pid = figures().pid;
  e.page = page_;
  env_.Emit(e);
}

bool RendererHost::Transition(Happening h) {
  auto next = NextState(state_, h, process_ && process_->has_frame());
  if (!next) return false;
  state_ = *next;
  return true;
}

void RendererHostEnv::QueueLaunch(RendererHost& host) { host.LaunchNow(); }

std::unique_ptr<RendererProcess> RendererHostEnv::TakeSpare() { return nullptr; }

Result<LaunchedChild> RendererHostEnv::Launch(const LaunchSpec& spec) { return sbx::Launch(spec); }

uint64_t RendererHostEnv::StartLaunch(const LaunchSpec& spec, LaunchDone done) {
  done(Launch(spec));
  return 0;
}

void RendererHost::Start() {
  restart_timer_ = 0;
  // Closed meanwhile (an observer of the exit can close the slot before its restart is due):
  // it must neither take the spare nor start anything.
  if (closing_ || launch_queued_ || launching_) return;
  (void)Transition(Happening::kLaunch);
  // What the slot shows until its process runs, and what a launch that fails leaves: no pid,
  // and the fallback only if it was forced.
  last_ = {};
  last_.spawn_ns = MonotonicNs();
  last_.heartbeat_fallback = env_.options().force_queue_fallback;
  // The spare, if there is one, needs no turn of the queue: already launched, sandboxed and in
  // its cgroup, it only has to be told who it is, and a restart tells it before the dead
  // process's teardown (OnExit) rather than after.
  if (TakeSpare()) return;
  launch_queued_ = true;
  env_.QueueLaunch(*this);
}

bool RendererHost::TakeSpare() {
  // One that cannot be told is dropped (killed and reaped) for a launch.
  auto spare = env_.TakeSpare();
  if (!spare || !spare->Assign(id_, page_, visibility_, *this)) return false;
  silence_sample_.reset();
  process_ = std::move(spare);
  Spawned();
  return true;
}

void RendererHost::LaunchNow() {
  if (!launch_queued_ || closing_) return;
  launch_queued_ = false;
  // Taken here too: the spare may have started while this launch waited.
  if (TakeSpare()) return;
  silence_sample_.reset();
  auto process = RendererProcess::Launch(env_, id_, page_, *this, visibility_);
  if (!process) return LaunchFailed(process.error());
  // The zygote makes it while the loop goes on: OnLaunched, or a close, ends the wait.
  if ((*process)->launching()) {
    launching_ = std::move(*process);
    return;
  }
  process_ = std::move(*process);
  Spawned();
}

void RendererHost::OnLaunched(Result<void> result) {
  std::unique_ptr<RendererProcess> launched = std::move(launching_);
  if (!result) return LaunchFailed(result.error());
  process_ = std::move(launched);
  // Told of a change while it was launching: the process started with the old visibility.
  if (process_->visibility() != visibility_) (void)process_->SetVisibility(visibility_);
  Spawned();
}

void RendererHost::Spawned() {
  BrokerEvent e;
  e.heartbeat_fallback = process_->figures().heartbeat_fallback;
  if (e.heartbeat_fallback) e.detail = "no message queue: " + process_->fallback_reason();
  Emit(EventType::kSpawned, e);
}

void RendererHost::LaunchFailed(const Error& e) {
  ExitInfo info = LaunchFailedExit(e);
  std::fprintf(stderr, "sbx: renderer %d: %s\n", id_, info.detail.c_str());
  HandleExit(std::move(info));
}

void RendererHost::OnFirstFrame(int64_t since_spawn_ns) {
  (void)Transition(Happening::kFirstFrame);
  BrokerEvent e;
  e.first_frame_ms = static_cast<double>(since_spawn_ns) / 1e6;
  Emit(EventType::kReady, e);
}

void RendererHost::OnFrame(uint64_t frame_number) { env_.NotifyFrame(id_, frame_number); }

void RendererHost::OnHeartbeat(const protocol::Heartbeat& hb, int64_t latency_ns) {
  silence_sample_.reset();
  // One the broker is killing stays unresponsive: it is not coming back.
  if (!process_->being_killed() && Transition(Happening::kHeartbeatsResumed)) {
    Emit(EventType::kResponsive);
  }
  env_.NotifyHeartbeat(id_, hb, latency_ns);
}

void RendererHost::OnDrillReport(const std::string& text) {
  std::fprintf(stderr, "sbx: renderer %d escape drill: %s\n", id_, text.c_str());
  BrokerEvent e;
  e.detail = text;
  Emit(EventType::kDrillReport, e);
}

void RendererHost::OnLog(BrokerEvent e) { Emit(EventType::kLog, std::move(e)); }

void RendererHost::OnExit(ExitInfo info) {
  // Destroyed once the exit is handled, which SIGKILLs the namespace's init and unmaps the frame
  // buffer: woken, the init could preempt us on this CPU and spend its exit (tearing down a copy
  // of our address space) on the detection path.
  std::unique_ptr<RendererProcess> gone = std::move(process_);
  last_ = gone->figures();
  messages_in_ += gone->messages_in();
  HandleExit(std::move(info));
}

void RendererHost::HandleExit(ExitInfo info) {
  exit_ns_ = MonotonicNs();
  last_exit_ = info;
  ++env_.counters().exits;
  BrokerEvent e;
  e.exit = info;
  e.detail = info.detail;
  if (closing_) {
    (void)Transition(Happening::kExitWhileClosing);
    return Emit(EventType::kClosed, e);
  }
  (void)Transition(Happening::kExit);
  Emit(EventType::kExited, e);
  if (env_.options().restart && !closing_) RestartOrFail();
}

void RendererHost::RestartOrFail() {
  auto delay = policy_.OnCrash(exit_ns_ / kNsPerMs);
  if (!delay) {
    (void)Transition(Happening::kCrashLoop);
    BrokerEvent f;
    f.detail = "more than " + std::to_string(policy_.config().max_crashes) + " exits within " +
               std::to_string(policy_.config().window_ms / 1000) + " s";
    return Emit(EventType::kFailed, f);
  }
  (void)Transition(Happening::kRestartScheduled);
  ++restarts_;
  ++env_.counters().restarts;
  BrokerEvent rs;
  rs.delay_ms = *delay;
  Emit(EventType::kRestarting, rs);
  if (*delay == 0) return Start();
  restart_timer_ = loop_.AddTimer(MonotonicNs() + *delay * kNsPerMs, [this] { Start(); });
}

void RendererHost::RequestClose(CloseHow how) {
  if (closing_) return;
  closing_ = true;
  launch_queued_ = false;  // a launch still queued is dropped
  launching_.reset();      // and one in flight is cancelled
  loop_.CancelTimer(restart_timer_);
  restart_timer_ = 0;
  if (!alive()) {
    (void)Transition(Happening::kClose);
    return Emit(EventType::kClosed);
  }
  // Asked only if it will read the request soon: not one that is unresponsive or still starting
  // (a slow start would turn the close into a SIGKILL a second later), not one with a backlog it
  // is not draining, and not one the broker is already killing.
  bool asked = how == CloseHow::kAsk && state_ == RendererState::kRunning &&
               !process_->being_killed() && !process_->has_pending_output() &&
               process_->Send(MsgType::kShutdown).has_value();
  if (!asked) (void)process_->Signal(SIGTERM, KillReason::kClose);
  // SIGCONT too: a stopped renderer can neither read the request nor act on SIGTERM until it
  // runs again.
  (void)process_->Signal(SIGCONT, KillReason::kClose);
  process_->KillAfter(env_.options().term_grace_ms * kNsPerMs, KillReason::kClose);
}

Result<void> RendererHost::Send(MsgType type, std::span<const uint8_t> payload) {
  if (!process_) return MakeError(Errc::kState, "renderer is not running");
  return process_->Send(type, payload);
}

Result<void> RendererHost::Signal(int sig, KillReason reason) {
  if (!process_) return MakeError(Errc::kState, "renderer has no live process");
  return process_->Signal(sig, reason);
}

Result<void> RendererHost::Navigate(std::string_view url) {
  if (!IsValidUrl(url)) return MakeError(Errc::kInvalidArgument, "invalid url");
  PayloadWriter w;
  w.Str(url);
  if (auto r = Send(MsgType::kNavigate, w.data()); !r) return r;
  page_ = std::string(url);
  return {};
}

Result<void> RendererHost::Reload() {
  if (closing_) return MakeError(Errc::kState, "renderer is closing");
  if (alive()) return Navigate(std::string(page_));
  policy_.Reset();
  loop_.CancelTimer(restart_timer_);
  restart_timer_ = 0;
  // A reload is a person's decision, not a restart: `restarts` counts the broker's own.
  Start();
  return {};
}

Result<void> RendererHost::Ping(Broker::PingCallback callback) {
  if (!process_) return MakeError(Errc::kState, "renderer is not running");
  return process_->Ping(std::move(callback));
}

HangVerdict RendererHost::Verdict(int64_t now) const {
  const BrokerOptions& opt = env_.options();
  return CheckForHang(state_, process_->signs_of_life(), opt.hang_timeout_ms, opt.kill_hung, now);
}

void RendererHost::CheckWatchdog(int64_t now) {
  if (!alive()) return;
  process_->ExpirePings(now);
  if (closing_ || process_->being_killed()) return;
  HangVerdict v = Verdict(now);
  if (v.unresponsive) {
    // A heartbeat may wait unread behind this tick (the broker itself ran late): read it first.
    process_->ReadPendingHeartbeats();
    if (process_->being_killed()) return;  // what it had sent broke the protocol
    v = Verdict(now);
  }
  // Starved, not hung: the next look asks again.
  if (v.unresponsive && !SilenceIsHang(v)) return;
  if (v.suspect && !v.unresponsive && !silence_sample_) {
    if (auto sample = ReadSchedSample(process_->figures().pid)) silence_sample_ = *sample;
  }
  if (v.unresponsive) {
    silence_sample_.reset();
    (void)Transition(Happening::kHeartbeatsMissed);
    BrokerEvent e;
    e.detail = "no heartbeat for " + std::to_string(v.silent_ms) + " ms";
    Emit(EventType::kUnresponsive, e);
  }
  if (v.kill) process_->Kill(KillReason::kHung, "killed by the hang watchdog");
}

bool RendererHost::SilenceIsHang(const HangVerdict& v) {
  // The renderer is our child and not yet reaped, so its pid is still its own.
  auto now_sample = ReadSchedSample(process_->figures().pid);
  if (!now_sample) return true;  // unreadable: judged by its silence alone
  const SchedSample* before = silence_sample_ ? &*silence_sample_ : nullptr;
  Silence s = JudgeSilence(before, *now_sample, v.silent_ms, v.limit_ms);
  if (s == Silence::kNotYetKnown) silence_sample_ = *now_sample;
  return s == Silence::kHung;
}

void RendererHost::SetVisibility(protocol::Visibility visibility) {
  if (visibility == visibility_) return;
  visibility_ = visibility;
  // A renderer that cannot be told is being killed for it (its pipe is full); the next one is
  // launched with the slot's visibility.
  if (alive()) (void)process_->SetVisibility(visibility);
  BrokerEvent e;
  e.visibility = visibility;
  Emit(EventType::kVisibility, e);
}

RendererSnapshot RendererHost::Snapshot(int64_t now) const {
  const ProcessFigures& f = figures();
  RendererSnapshot s;
  s.id = id_;
  s.pid = alive() ? f.pid : 0;
  s.state = state_;
  s.page = page_;
  s.restarts = restarts_;
  s.visibility = visibility_;
  if (f.spawn_ns != 0) s.uptime_ms = ((alive() ? now : exit_ns_) - f.spawn_ns) / kNsPerMs;
  if (s.uptime_ms < 0) s.uptime_ms = 0;
  s.last_exit = last_exit_;
  s.heartbeat_fallback = f.heartbeat_fallback;
  s.frames = f.frames;
  s.heartbeat_age_ms = f.last_heartbeat_ns == 0 ? -1 : (now - f.last_heartbeat_ns) / kNsPerMs;
  s.cpu_ns = f.last_heartbeat.cpu_ns;
  s.fps = f.last_heartbeat.fps;
  s.render_us = f.last_heartbeat.render_us;
  s.messages_in = messages_in_ + (process_ ? process_->messages_in() : 0);
  return s;
}

}  // namespace sbx
