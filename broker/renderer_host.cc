#include "broker/renderer_host.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

#include "broker/launcher.h"
#include "ipc/codec.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"

namespace sbx {

namespace {

using protocol::MsgType;

constexpr int64_t kNsPerMs = 1'000'000;
// A renderer that has sent no heartbeat yet gets this long to start (a wrapper such as valgrind
// is slow) before it counts as unresponsive.
constexpr int64_t kMinStartTimeoutMs = 10'000;
constexpr int64_t kPingTimeoutNs = 5'000 * kNsPerMs;
// Grace for a renderer that closed its control pipe but did not exit.
constexpr int64_t kEofGraceNs = 1'000 * kNsPerMs;
// Inbound budget: frame-ready and heartbeat messages a renderer may send, as a token bucket.
// Twice the highest frame rate plus heartbeats; a renderer above it is flooding the broker.
constexpr double kInboundBurst = 4.0 * protocol::kMaxFps;
constexpr double kInboundPerSecond = 2.0 * protocol::kMaxFps + 20.0;
// Bytes one wakeup may read from a renderer, so one chatty renderer cannot starve the others.
constexpr size_t kReadBudget = 64 * 1024;
constexpr int kQueueBudget = 32;

}  // namespace

RendererHost::RendererHost(Broker& broker, int id, std::string page)
    : broker_(broker),
      loop_(broker.loop_),
      id_(id),
      page_(std::move(page)),
      policy_(broker.options_.restart_policy) {}

RendererHost::~RendererHost() {
  loop_.CancelTimer(restart_timer_);
  loop_.CancelTimer(kill_timer_);
  loop_.CancelTimer(eof_timer_);
  // Bounded: a SIGKILLed process exits promptly, and we must not leave a zombie behind. The
  // broker is going away, so nothing is left to reap later.
  for (UniqueFd* child : {&pidfd_, &init_pidfd_}) {
    if (!child->valid()) continue;
    (void)PidfdSendSignal(child->get(), SIGKILL);
    siginfo_t si{};
    (void)HandleEintr([&] { return ::waitid(P_PIDFD, child->get(), &si, WEXITED); });
    child->reset();
  }
  ReleaseProcess();
}

void RendererHost::Emit(EventType type, BrokerEvent e) {
  e.type = type;
  e.id = id_;
  if (e.pid == 0) e.pid = pid_;
  e.page = page_;
  broker_.Emit(e);
}

bool RendererHost::Transition(Happening h) {
  auto next = NextState(state_, h, ready_);
  if (!next) return false;
  state_ = *next;
  return true;
}

void RendererHost::Start() {
  restart_timer_ = 0;
  pid_ = 0;  // a launch that fails must not report the previous process's pid
  kill_reason_ = KillReason::kNone;
  violation_.clear();
  ready_ = false;
  last_heartbeat_ns_ = 0;
  last_frame_number_ = 0;
  frames_seen_ = 0;
  last_hb_ = {};
  inbound_tokens_ = kInboundBurst;
  spawn_ns_ = MonotonicNs();
  inbound_refill_ns_ = spawn_ns_;
  (void)Transition(Happening::kLaunch);

  const BrokerOptions& opt = broker_.options_;
  auto frames = FrameReader::Create(opt.geometry);
  if (!frames) return LaunchFailed(frames.error());
  frames_.emplace(std::move(*frames));

  std::optional<QueuePair> queue;
  fallback_ = true;
  std::string queue_error = "disabled by option";
  if (!opt.force_queue_fallback) {
    auto q = CreateQueuePair(protocol::kQueueMaxMsg, protocol::kQueueMsgSize);
    if (q) {
      queue.emplace(std::move(*q));
      fallback_ = false;
    } else {
      queue_error = q.error().ToString();
    }
  }
  if (fallback_) {
    std::fprintf(stderr, "sbx: renderer %d: no message queue (%s); heartbeats use the pipe\n", id_,
                 queue_error.c_str());
  }

  auto to_renderer = MakePipe(false);
  if (!to_renderer) return LaunchFailed(to_renderer.error());
  auto from_renderer = MakePipe(false);
  if (!from_renderer) return LaunchFailed(from_renderer.error());

  LaunchSpec spec;
  spec.argv = opt.cmd_prefix;
  spec.search_path = !opt.cmd_prefix.empty();
  spec.argv.push_back(broker_.renderer_path_);
  spec.argv.push_back("--type=renderer");
  spec.argv.push_back("--id=" + std::to_string(id_));
  spec.argv.push_back("--page=" + page_);
  spec.argv.push_back("--fps=" + std::to_string(opt.fps));
  spec.argv.push_back(fallback_ ? "--heartbeat=pipe" : "--heartbeat=mq");
  spec.argv.push_back("--sandbox=" + std::string(sandbox::LevelName(broker_.sandbox_level_)));
  if (broker_.sandbox_level_ == sandbox::Level::kFull) {
    if (auto h = broker_.EnsureNamespaceHolder(); !h) return LaunchFailed(h.error());
    spec.namespaces = broker_.RendererNamespaces();
    spec.argv.push_back("--sandbox-root=" + broker_.sandbox_root());
  }
  spec.fds = {{to_renderer->read.get(), protocol::kControlInFd},
              {from_renderer->write.get(), protocol::kControlOutFd},
              {frames_->fd(), protocol::kFrameFd}};
  if (queue) spec.fds.emplace_back(queue->writer.get(), protocol::kHeartbeatFd);

  auto child = Launch(spec);
  if (!child) return LaunchFailed(child.error());
  // Reaped off the spawn path: its exit tears down a copy of our address space.
  broker_.ReapLater(std::move(child->joiner_pidfd));
  pid_ = child->pid > 0 ? child->pid : 0;
  pidfd_ = std::move(child->pidfd);
  init_pidfd_ = std::move(child->init_pidfd);
  ++broker_.stats_.spawns;

  auto channel = Channel::Create(std::move(from_renderer->read), std::move(to_renderer->write),
                                 protocol::Direction::kToBroker);
  // The child's ends close here, at the end of scope: from now on EOF means the renderer.
  if (!channel) {
    (void)Signal(SIGKILL, KillReason::kNone);
    violation_ = "channel setup failed: " + channel.error().ToString();
  } else {
    channel_.emplace(std::move(*channel));
  }
  if (queue) queue_ = std::move(queue->reader);

  // The renderer is our direct child even when sandboxed, so its own pidfd tells us of its end.
  auto w = loop_.Watch(pidfd_.get(), EPOLLIN, [this](uint32_t) { OnExitReadable(); });
  if (w) exit_watch_ = *w;
  if (channel_) {
    if (auto r = loop_.Watch(channel_->in_fd(), EPOLLIN, [this](uint32_t) { OnControlReadable(); }))
      in_watch_ = *r;
  }
  if (queue_.valid()) {
    if (auto r = loop_.Watch(queue_.get(), EPOLLIN, [this](uint32_t) { OnQueueReadable(); }))
      queue_watch_ = *r;
  }
  if (!w) {
    // Without the exit watch we could never reap it: kill and reap now.
    (void)Signal(SIGKILL, KillReason::kNone);
    siginfo_t si{};
    (void)HandleEintr([&] { return ::waitid(P_PIDFD, pidfd_.get(), &si, WEXITED); });
    ReleaseProcess();
    return LaunchFailed(w.error());
  }

  BrokerEvent e;
  e.heartbeat_fallback = fallback_;
  if (fallback_) e.detail = "no message queue: " + queue_error;
  Emit(EventType::kSpawned, e);
  PayloadWriter hello;
  hello.U32(static_cast<uint32_t>(pid_)).U32(opt.fps).U32(static_cast<uint32_t>(::getpid()));
  (void)Send(MsgType::kHello, hello.data());
}

void RendererHost::LaunchFailed(const Error& e) {
  ExitInfo info;
  info.status = ExitStatus::kLaunchFailed;
  info.code = protocol::kExitLaunchFailed;
  info.detail = e.ToString();
  std::fprintf(stderr, "sbx: renderer %d: %s\n", id_, info.detail.c_str());
  HandleExit(std::move(info));
}

void RendererHost::ReleaseProcess() {
  for (auto* t : {&exit_watch_, &in_watch_, &out_watch_, &queue_watch_}) {
    loop_.Unwatch(*t);
    *t = 0;
  }
  loop_.CancelTimer(eof_timer_);
  eof_timer_ = 0;
  channel_.reset();
  queue_.reset();
  pidfd_.reset();
  RetireInit(std::move(init_pidfd_));
}

void RendererHost::RetireInit(UniqueFd init) {
  if (!init) return;
  // With the renderer gone, the namespace's init has nothing left to do. Its exit tears down a
  // copy of our address space, so it is reaped whenever it is done, off this path.
  (void)PidfdSendSignal(init.get(), SIGKILL);
  broker_.ReapLater(std::move(init));
}

Result<void> RendererHost::Send(MsgType type, std::span<const uint8_t> payload) {
  if (!channel_ || !alive()) return MakeError(Errc::kState, "renderer is not running");
  auto r = channel_->Send(type, payload);
  if (!r) {
    if (r.error().code == Errc::kOverflow) {
      violation_ = "does not drain its control pipe";
      (void)Signal(SIGKILL, KillReason::kHung);
    }
    return r;
  }
  UpdateWriteInterest();
  return {};
}

void RendererHost::UpdateWriteInterest() {
  bool want = channel_ && channel_->HasPendingOutput();
  if (want && out_watch_ == 0) {
    if (auto w =
            loop_.Watch(channel_->out_fd(), EPOLLOUT, [this](uint32_t) { OnControlWritable(); }))
      out_watch_ = *w;
  } else if (!want && out_watch_ != 0) {
    loop_.Unwatch(out_watch_);
    out_watch_ = 0;
  }
}

void RendererHost::OnControlWritable() {
  if (!channel_) return;
  if (auto r = channel_->Flush(); !r) {
    // The renderer closed its read end; its exit will follow on the pidfd.
    loop_.Unwatch(out_watch_);
    out_watch_ = 0;
    return;
  }
  UpdateWriteInterest();
}

Result<void> RendererHost::Signal(int sig, KillReason reason) {
  if (!pidfd_.valid()) return MakeError(Errc::kState, "renderer has no live process");
  int target = pidfd_.get();
  if (reason != KillReason::kNone && kill_reason_ == KillReason::kNone) kill_reason_ = reason;
  auto r = PidfdSendSignal(target, sig);
  // ESRCH: it already exited and awaits reaping; the pidfd will report that.
  if (!r && r.error().sys_errno == ESRCH) return {};
  return r;
}

void RendererHost::Violation(std::string what) {
  if (kill_reason_ != KillReason::kNone) return;
  ++broker_.stats_.bad_messages;
  violation_ = std::move(what);
  std::fprintf(stderr, "sbx: renderer %d (pid %d) broke the protocol: %s; killing it\n", id_, pid_,
               violation_.c_str());
  (void)Signal(SIGKILL, KillReason::kBadMessage);
  // Stop reading from it: nothing more it says can be trusted.
  loop_.Unwatch(in_watch_);
  in_watch_ = 0;
  loop_.Unwatch(queue_watch_);
  queue_watch_ = 0;
}

bool RendererHost::TakeInboundToken(int64_t now_ns) {
  double elapsed_s = static_cast<double>(now_ns - inbound_refill_ns_) / 1e9;
  inbound_refill_ns_ = now_ns;
  inbound_tokens_ = std::min(kInboundBurst, inbound_tokens_ + elapsed_s * kInboundPerSecond);
  if (inbound_tokens_ < 1.0) return false;
  inbound_tokens_ -= 1.0;
  return true;
}

void RendererHost::OnControlReadable() {
  if (!channel_) return;
  // Reused across calls (no allocation per batch); moved out while handling, since a handler
  // may re-enter this host (a pong callback that pings again).
  std::vector<Message> messages = std::move(inbox_);
  messages.clear();
  auto open = channel_->Receive(messages, kReadBudget);
  int64_t now = MonotonicNs();
  struct GiveBack {
    std::vector<Message>& from;
    std::vector<Message>& to;
    ~GiveBack() { to = std::move(from); }
  } give_back{messages, inbox_};
  for (const auto& m : messages) {
    if (kill_reason_ == KillReason::kBadMessage) return;
    HandleMessage(m, now);
  }
  if (kill_reason_ == KillReason::kBadMessage) return;
  if (!open) {
    if (open.error().code == Errc::kProtocol || open.error().code == Errc::kOverflow) {
      return Violation(open.error().what);
    }
    // A read error on our own pipe end: treat like EOF below.
  } else if (*open) {
    return;
  }
  loop_.Unwatch(in_watch_);
  in_watch_ = 0;
  // EOF usually means the process is exiting and the pidfd is about to say so; a renderer that
  // keeps running without its control pipe is broken.
  eof_timer_ = loop_.AddTimer(now + kEofGraceNs, [this] {
    eof_timer_ = 0;
    if (alive()) Violation("closed its control pipe");
  });
}

void RendererHost::HandleMessage(const Message& m, int64_t now) {
  ++messages_in_;
  ++broker_.stats_.messages_in;
  switch (m.type) {
    case MsgType::kFrameReady: {
      if (!TakeInboundToken(now)) return Violation("message flood");
      auto f = DecodeFrameReady(m);
      if (!f) return Violation(f.error().what);
      if (frames_seen_ > 0 && f->frame_number <= last_frame_number_) {
        return Violation("frame number went backwards");
      }
      last_frame_number_ = f->frame_number;
      ++frames_seen_;
      if (!ready_) {
        ready_ = true;
        ready_ns_ = now;
        (void)Transition(Happening::kFirstFrame);
        BrokerEvent e;
        e.first_frame_ms = static_cast<double>(now - spawn_ns_) / 1e6;
        Emit(EventType::kReady, e);
      }
      broker_.NotifyFrame(id_, f->frame_number);
      return;
    }
    case MsgType::kPong: {
      auto token = DecodeU64(m);
      if (!token) return Violation(token.error().what);
      auto it = pings_.find(*token);
      if (it == pings_.end()) return Violation("unsolicited pong");
      auto cb = std::move(it->second.callback);
      int64_t rtt = now - it->second.sent_ns;
      pings_.erase(it);
      if (cb) cb(rtt);
      return;
    }
    case MsgType::kDrillReport: {
      if (!TakeInboundToken(now)) return Violation("message flood");
      auto text = DecodeDrillReport(m);
      if (!text) return Violation(text.error().what);
      std::fprintf(stderr, "sbx: renderer %d escape drill: %s\n", id_, text->c_str());
      BrokerEvent e;
      e.detail = *text;
      Emit(EventType::kDrillReport, e);
      return;
    }
    case MsgType::kHeartbeat: {
      if (!fallback_) return Violation("heartbeat on the pipe while a queue exists");
      if (!TakeInboundToken(now)) return Violation("message flood");
      auto hb = DecodeHeartbeat(m.payload);
      if (!hb) return Violation(hb.error().what);
      return HandleHeartbeat(*hb, now);
    }
    default:
      return Violation("message type not for the broker");
  }
}

void RendererHost::OnQueueReadable() {
  std::array<uint8_t, protocol::kQueueMsgSize> buf;
  for (int i = 0; i < kQueueBudget && queue_.valid(); ++i) {
    auto n = QueueReceive(queue_.get(), buf);
    if (!n) {
      loop_.Unwatch(queue_watch_);
      queue_watch_ = 0;
      return;
    }
    if (!*n) return;
    int64_t now = MonotonicNs();
    ++messages_in_;
    ++broker_.stats_.messages_in;
    if (!TakeInboundToken(now)) return Violation("message flood");
    auto hb = DecodeHeartbeat(std::span(buf).first(**n));
    if (!hb) return Violation(hb.error().what);
    HandleHeartbeat(*hb, now);
    if (kill_reason_ == KillReason::kBadMessage) return;
  }
}

void RendererHost::HandleHeartbeat(const protocol::Heartbeat& hb, int64_t now) {
  if (hb.frames < last_hb_.frames) return Violation("heartbeat frame count went backwards");
  last_hb_ = hb;
  last_heartbeat_ns_ = now;
  ++broker_.stats_.heartbeats;
  // One the broker is killing stays unresponsive: it is not coming back.
  if (kill_reason_ == KillReason::kNone && Transition(Happening::kHeartbeatsResumed)) {
    Emit(EventType::kResponsive);
  }
  broker_.NotifyHeartbeat(id_, hb, now - hb.mono_ns);
}

void RendererHost::CheckWatchdog(int64_t now) {
  for (auto it = pings_.begin(); it != pings_.end();) {
    if (now - it->second.sent_ns > kPingTimeoutNs) {
      auto cb = std::move(it->second.callback);
      it = pings_.erase(it);
      if (cb) cb(MakeError(Errc::kTimeout, "no pong within 5 s"));
    } else {
      ++it;
    }
  }
  const BrokerOptions& opt = broker_.options_;
  if (!alive() || closing_ || kill_reason_ != KillReason::kNone) return;
  if (NextState(state_, Happening::kHeartbeatsMissed)) {
    // The start allowance ends with the first heartbeat or the first frame, whichever is first:
    // a renderer stopped right after its first frame must still be caught in time.
    int64_t limit_ms = opt.hang_timeout_ms;
    int64_t since = std::max(last_heartbeat_ns_, ready_ ? ready_ns_ : 0);
    if (since == 0) {
      since = spawn_ns_;
      limit_ms = std::max<int64_t>(limit_ms, kMinStartTimeoutMs);
    }
    if (now - since > limit_ms * kNsPerMs) {
      (void)Transition(Happening::kHeartbeatsMissed);
      BrokerEvent e;
      e.detail = "no heartbeat for " + std::to_string((now - since) / kNsPerMs) + " ms";
      Emit(EventType::kUnresponsive, e);
    }
  }
  if (state_ == RendererState::kUnresponsive && opt.kill_hung) {
    violation_ = "killed by the hang watchdog";
    (void)Signal(SIGKILL, KillReason::kHung);
  }
}

void RendererHost::OnExitReadable() {
  siginfo_t si{};
  int r = HandleEintr([&] { return ::waitid(P_PIDFD, pidfd_.get(), &si, WEXITED | WNOHANG); });
  if (r != 0 || si.si_pid == 0) {
    if (r != 0 && errno == ECHILD) {
      // Someone else reaped it (should not happen); treat as gone.
      si.si_code = CLD_KILLED;
      si.si_status = SIGKILL;
    } else {
      return;
    }
  }
  int cld_code = si.si_code;
  int status = si.si_status;
  ExitInfo info = ClassifyExit(cld_code, status, kill_reason_);
  if (!violation_.empty() &&
      (info.status == ExitStatus::kBadMessage || info.status == ExitStatus::kHung)) {
    info.detail = violation_;
  }
  // The init's SIGKILL waits until the exit is handled: woken, the init could preempt us on this
  // CPU and spend its exit (tearing down a copy of our address space) on the detection path.
  UniqueFd init = std::move(init_pidfd_);
  ReleaseProcess();
  HandleExit(std::move(info));
  RetireInit(std::move(init));
}

void RendererHost::FailPings(const std::string& why) {
  auto pings = std::move(pings_);
  pings_.clear();
  for (auto& [token, p] : pings) {
    if (p.callback) p.callback(MakeError(Errc::kState, why));
  }
}

void RendererHost::HandleExit(ExitInfo info) {
  exit_ns_ = MonotonicNs();
  loop_.CancelTimer(kill_timer_);
  kill_timer_ = 0;
  last_exit_ = info;
  ++broker_.stats_.exits;
  FailPings("renderer exited");
  BrokerEvent e;
  e.exit = info;
  e.detail = info.detail;
  if (closing_) {
    (void)Transition(Happening::kExitWhileClosing);
    Emit(EventType::kClosed, e);
    broker_.ScheduleRemoval(id_);
    return;
  }
  (void)Transition(Happening::kExit);
  Emit(EventType::kExited, e);
  if (!broker_.options_.restart) return;
  auto delay = policy_.OnCrash(exit_ns_ / kNsPerMs);
  if (!delay) {
    (void)Transition(Happening::kCrashLoop);
    BrokerEvent f;
    f.detail = "more than " + std::to_string(policy_.config().max_crashes) + " exits within " +
               std::to_string(policy_.config().window_ms / 1000) + " s";
    Emit(EventType::kFailed, f);
    return;
  }
  (void)Transition(Happening::kRestartScheduled);
  ++restarts_;
  ++broker_.stats_.restarts;
  BrokerEvent rs;
  rs.delay_ms = *delay;
  Emit(EventType::kRestarting, rs);
  if (*delay == 0) return Start();
  restart_timer_ = loop_.AddTimer(MonotonicNs() + *delay * kNsPerMs, [this] { Start(); });
}

void RendererHost::RequestClose(CloseHow how) {
  if (closing_) return;
  closing_ = true;
  loop_.CancelTimer(restart_timer_);
  restart_timer_ = 0;
  if (alive()) {
    // Asked only if it will read the request soon: not one that is unresponsive or still
    // starting (a slow start would turn the close into a SIGKILL a second later), not one with
    // a backlog it is not draining, and not one the broker is already killing.
    bool asked = how == CloseHow::kAsk && state_ == RendererState::kRunning &&
                 kill_reason_ == KillReason::kNone && channel_ && !channel_->HasPendingOutput() &&
                 Send(protocol::MsgType::kShutdown).has_value();
    if (!asked) (void)Signal(SIGTERM, KillReason::kClose);
    // SIGCONT too: a stopped renderer can neither read the request nor act on SIGTERM until it
    // runs again.
    (void)Signal(SIGCONT, KillReason::kClose);
    kill_timer_ = loop_.AddTimer(MonotonicNs() + broker_.options_.term_grace_ms * kNsPerMs, [this] {
      kill_timer_ = 0;
      (void)Signal(SIGKILL, KillReason::kClose);
    });
    return;
  }
  (void)Transition(Happening::kClose);
  Emit(EventType::kClosed);
  broker_.ScheduleRemoval(id_);
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
  uint64_t token = next_ping_token_++;
  PayloadWriter w;
  w.U64(token);
  int64_t sent = MonotonicNs();
  if (auto r = Send(MsgType::kPing, w.data()); !r) return r;
  pings_.emplace(token, PendingPing{sent, std::move(callback)});
  return {};
}

RendererSnapshot RendererHost::Snapshot(int64_t now) const {
  RendererSnapshot s;
  s.id = id_;
  s.pid = alive() ? pid_ : 0;
  s.state = state_;
  s.page = page_;
  s.restarts = restarts_;
  if (spawn_ns_ != 0) s.uptime_ms = ((alive() ? now : exit_ns_) - spawn_ns_) / kNsPerMs;
  if (s.uptime_ms < 0) s.uptime_ms = 0;
  s.last_exit = last_exit_;
  s.heartbeat_fallback = fallback_;
  s.frames = frames_seen_;
  s.heartbeat_age_ms = last_heartbeat_ns_ == 0 ? -1 : (now - last_heartbeat_ns_) / kNsPerMs;
  s.cpu_ns = last_hb_.cpu_ns;
  s.fps = last_hb_.fps;
  s.render_us = last_hb_.render_us;
  s.messages_in = messages_in_;
  return s;
}

}  // namespace sbx
