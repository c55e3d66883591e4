#include "broker/renderer_host.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <thread>
#include <vector>

#include "broker/cmd_prefix.h"
#include "broker/launcher.h"
#include "broker/renderer_log.h"
#include "ipc/codec.h"
#include "ipc/launch_args.h"
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
// A real renderer writes each message with one write() of at most PIPE_BUF bytes, which a pipe
// delivers whole; part of a message still unfinished this long later is one that stopped halfway.
constexpr int64_t kPartialMessageNs = 1'000 * kNsPerMs;
// Expired ping tokens kept for a late pong. More than a stopped renderer can have missed: the
// broker's outbound queue (256 KiB) and the pipe (64 KiB) hold about 13,600 pings of 24 bytes, and
// one that does not drain them is killed as hung.
constexpr size_t kMaxExpiredPings = 16'384;
// Inbound budget: frame-ready and heartbeat messages a renderer may send, as a token bucket.
// Twice the highest frame rate plus heartbeats; a renderer above it is flooding the broker.
constexpr double kInboundBurst = 4.0 * protocol::kMaxFps;
constexpr double kInboundPerSecond = 2.0 * protocol::kMaxFps + 20.0;
// Bytes one wakeup may read from a renderer, so one chatty renderer cannot starve the others.
constexpr size_t kReadBudget = 64 * 1024;
constexpr int kQueueBudget = 32;

unsigned CpuCount() {
  static const unsigned kCpus = std::max(1u, std::thread::hardware_concurrency());
  return kCpus;
}

}  // namespace

uint64_t MaxFramesAfter(int64_t elapsed_ns) {
  double s = static_cast<double>(std::max<int64_t>(elapsed_ns, 0)) / 1e9;
  return static_cast<uint64_t>(kInboundBurst + s * kInboundPerSecond);
}

std::optional<std::string> ImpossibleHeartbeat(const protocol::Heartbeat& hb,
                                               const protocol::Heartbeat& last, int64_t spawn_ns,
                                               int64_t now_ns, unsigned cpus) {
  // The renderer reads the same CLOCK_MONOTONIC as the broker, after the broker took spawn_ns
  // and before it took now_ns. Checked first: every other bound and the latency derive from it.
  if (hb.mono_ns < spawn_ns || hb.mono_ns > now_ns) {
    return "heartbeat timestamp " + std::to_string(hb.mono_ns) + " outside the renderer's life";
  }
  if (hb.mono_ns < last.mono_ns) return "heartbeat timestamp went backwards";
  if (hb.frames < last.frames) return "heartbeat frame count went backwards";
  if (hb.cpu_ns < last.cpu_ns) return "heartbeat CPU time went backwards";
  // Unsigned from here: both are non-negative and hb.mono_ns >= spawn_ns.
  auto lived_ns = static_cast<uint64_t>(hb.mono_ns - spawn_ns);
  if (hb.cpu_ns / std::max(cpus, 1u) > lived_ns) {
    return "heartbeat claims more CPU time than the renderer has lived";
  }
  if (static_cast<uint64_t>(hb.render_us) * 1000 > lived_ns) {
    return "heartbeat claims a frame took longer than the renderer has lived";
  }
  if (hb.frames > MaxFramesAfter(hb.mono_ns - spawn_ns)) {
    return "heartbeat claims more frames than the flood limit lets through";
  }
  return std::nullopt;
}

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
  loop_.CancelTimer(partial_timer_);
  // Bounded (ChildProcess), the renderer before its init, which cannot finish exiting while the
  // renderer is unreaped. The broker is going away, so nothing is left to reap later.
  process_ = {};
  init_ = {};
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
  expired_pings_.clear();
  partial_since_ns_ = 0;
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
  // Its stdout and stderr: log events, never the broker's own output.
  auto log =
      RendererLog::Create(loop_, [this](BrokerEvent e) { Emit(EventType::kLog, std::move(e)); });
  if (!log) return LaunchFailed(log.error());

  LaunchSpec spec;
  spec.argv = opt.cmd_prefix;
  spec.search_path = !opt.cmd_prefix.empty();
  spec.argv.push_back(broker_.renderer_path_);
  LaunchArgs args{
      id_, page_, opt.fps, fallback_ ? Heartbeat::kPipe : Heartbeat::kQueue, broker_.sandbox_level_,
      ""};
  if (broker_.sandbox_level_ == sandbox::Level::kFull) {
    if (auto h = broker_.EnsureNamespaceHolder(); !h) return LaunchFailed(h.error());
    spec.namespaces = broker_.RendererNamespaces();
    args.sandbox_root = broker_.sandbox_root();
  }
  for (auto& a : ToArgv(args)) spec.argv.push_back(std::move(a));
  spec.fds = FdMap({to_renderer->read.get(), from_renderer->write.get(), frames_->fd(),
                    queue ? queue->writer.get() : -1});
  spec.stdio = {broker_.dev_null_.get(), log->child_end.get(), log->child_end.get()};

  auto child = Launch(spec);
  if (!child) return LaunchFailed(child.error());
  // Reaped off the spawn path: its exit tears down a copy of our address space.
  broker_.ReapLater(std::move(child->joiner));
  pid_ = child->process.pid() > 0 ? child->process.pid() : 0;
  process_ = std::move(child->process);
  init_ = std::move(child->init);
  log_ = std::move(log->log);
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
  auto w = loop_.Watch(process_.pidfd(), EPOLLIN, [this](uint32_t) { OnExitReadable(); });
  if (w) exit_watch_ = *w;
  if (channel_) {
    if (auto r = loop_.Watch(channel_->in_fd(), EPOLLIN, [this](uint32_t) { OnControlReadable(); }))
      in_watch_ = *r;
    // Watched from the start, with no events asked for until output waits: epoll still reports
    // EPOLLERR once the renderer closes the pipe it reads commands from.
    if (auto r = loop_.Watch(channel_->out_fd(), 0,
                             [this](uint32_t events) { OnControlWritable(events); }))
      out_watch_ = *r;
    want_writable_ = false;
  }
  if (queue_.valid()) {
    if (auto r = loop_.Watch(queue_.get(), EPOLLIN, [this](uint32_t) { OnQueueReadable(); }))
      queue_watch_ = *r;
  }
  if (!w) {
    // Without the exit watch we could never reap it: kill and reap now.
    (void)process_.KillAndReap(MonotonicNs() + ChildProcess::kReapBoundNs);
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
  loop_.CancelTimer(partial_timer_);
  partial_timer_ = 0;
  channel_.reset();
  queue_.reset();
  log_.reset();
  process_ = {};
  // The sad tab shows no pixels, and a restart maps a new buffer: the memfd goes with the process.
  frames_.reset();
  RetireInit(std::move(init_));
}

void RendererHost::RetireInit(ChildProcess init) {
  if (!init.valid()) return;
  // With the renderer gone, the namespace's init has nothing left to do. Its exit tears down a
  // copy of our address space, so it is reaped whenever it is done, off this path.
  (void)init.Signal(SIGKILL);
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
  // Only on a change: a send that the pipe took whole (nearly all) costs no epoll_ctl.
  if (out_watch_ == 0 || want == want_writable_) return;
  if (loop_.Modify(out_watch_, want ? EPOLLOUT : 0u)) want_writable_ = want;
}

void RendererHost::OnControlWritable(uint32_t events) {
  if (!channel_) return;
  bool closed = (events & (EPOLLERR | EPOLLHUP)) != 0;
  if (!closed) {
    auto r = channel_->Flush();
    if (r) return UpdateWriteInterest();
    closed = r.error().code == Errc::kPeerClosed;
  }
  // Level-triggered: stop the watch, or the error would wake the loop until the renderer is gone.
  loop_.Unwatch(out_watch_);
  out_watch_ = 0;
  if (closed) StartPipeClosedGrace("closed the pipe it reads commands from", MonotonicNs());
}

void RendererHost::StartPipeClosedGrace(std::string what, int64_t now) {
  // Usually the process is exiting and the pidfd is about to say so; a renderer that keeps
  // running without one of its pipes is broken.
  if (eof_timer_ != 0) return;
  eof_timer_ = loop_.AddTimer(now + kEofGraceNs, [this, what = std::move(what)]() mutable {
    eof_timer_ = 0;
    if (alive()) Violation(std::move(what));
  });
}

Result<void> RendererHost::Signal(int sig, KillReason reason) {
  if (!process_.valid()) return MakeError(Errc::kState, "renderer has no live process");
  if (reason != KillReason::kNone && kill_reason_ == KillReason::kNone) kill_reason_ = reason;
  // A renderer that exited and awaits reaping is not an error; its pidfd will report the exit.
  return process_.Signal(sig);
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
    return TrackPartialMessage(!messages.empty(), now);
  }
  loop_.Unwatch(in_watch_);
  in_watch_ = 0;
  StartPipeClosedGrace("closed its control pipe", now);
}

void RendererHost::TrackPartialMessage(bool progressed, int64_t now) {
  if (!channel_ || channel_->buffered_input() == 0) {
    partial_since_ns_ = 0;
    loop_.CancelTimer(partial_timer_);
    partial_timer_ = 0;
    return;
  }
  // A read that completed messages and ended inside the next one starts that one's clock; one
  // that only added bytes to it (a trickle) does not.
  if (partial_since_ns_ != 0 && !progressed) return;
  partial_since_ns_ = now;
  loop_.CancelTimer(partial_timer_);
  partial_timer_ = loop_.AddTimer(now + kPartialMessageNs, [this] { OnPartialMessageDeadline(); });
}

void RendererHost::OnPartialMessageDeadline() {
  partial_timer_ = 0;
  if (!alive() || kill_reason_ != KillReason::kNone || in_watch_ == 0) return;
  // The rest may be waiting in the pipe unread (the broker itself may have been slow): read
  // first, which restarts the clock if a message completed.
  OnControlReadable();
  if (partial_since_ns_ != 0 && MonotonicNs() - partial_since_ns_ >= kPartialMessageNs) {
    Violation("sent part of a message, then nothing for 1 s");
  }
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
      if (f->frame_number > MaxFramesAfter(now - spawn_ns_)) {
        return Violation("frame number beyond what the flood limit lets through");
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
      if (it == pings_.end()) {
        // Late, for a ping given up on: not a violation, and nobody is waiting for it any more.
        if (expired_pings_.erase(*token) == 1) return;
        return Violation("unsolicited pong (a token never sent, or answered already)");
      }
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
  if (auto bad = ImpossibleHeartbeat(hb, last_hb_, spawn_ns_, now, CpuCount())) {
    return Violation(std::move(*bad));
  }
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
      expired_pings_.insert(it->first);
      // Tokens only grow, so the first is the oldest.
      if (expired_pings_.size() > kMaxExpiredPings) expired_pings_.erase(expired_pings_.begin());
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
  auto exit = process_.TryReap(kill_reason_);
  if (!exit) return;
  ExitInfo info = std::move(*exit);
  if (!violation_.empty() &&
      (info.status == ExitStatus::kBadMessage || info.status == ExitStatus::kHung)) {
    info.detail = violation_;
  }
  if (info.detail.empty()) info.detail = WrapperExitNote(broker_.options_.cmd_prefix);
  // The init's SIGKILL waits until the exit is handled: woken, the init could preempt us on this
  // CPU and spend its exit (tearing down a copy of our address space) on the detection path.
  ChildProcess init = std::move(init_);
  // Unmapped after the exit is handled too: it is off the detection path, like the init.
  std::optional<FrameReader> frames = std::move(frames_);
  frames_.reset();
  // What it wrote last (a crash message, say) comes before its exit.
  if (log_) log_->Finish();
  ReleaseProcess();
  HandleExit(std::move(info));
  RetireInit(std::move(init));
}

void RendererHost::FailPings(const std::string& why) {
  auto pings = std::move(pings_);
  pings_.clear();
  expired_pings_.clear();
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
