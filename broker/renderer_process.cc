#include "broker/renderer_process.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <mqueue.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "broker/death_detection.h"
#include "broker/launcher.h"
#include "broker/proc_stats.h"
#include "broker/renderer_log.h"
#include "ipc/codec.h"
#include "ipc/launch_args.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"

namespace sbx {

namespace {

using protocol::MsgType;

constexpr int64_t kPingTimeoutNs = 5'000'000'000;
// A real renderer writes each message with one write() of at most PIPE_BUF bytes, which a pipe
// delivers whole; part of a message still unfinished this long later is one that stopped halfway.
constexpr int64_t kPartialMessageNs = 1'000'000'000;
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

// What a signal the broker sent was for, in the trace.
const char* KillWhy(KillReason r) {
  switch (r) {
    case KillReason::kBadMessage:
      return "bad-message";
    case KillReason::kHung:
      return "hung";
    case KillReason::kClose:
      return "close";
    case KillReason::kNone:
      break;
  }
  return "";
}

// A queue message for the trace, decoded leniently: it is validated after it is recorded.
std::array<char, 48> HeartbeatSummary(std::span<const uint8_t> bytes) {
  std::array<char, 48> out{};
  protocol::Heartbeat hb{};
  if (bytes.size() != sizeof hb) {
    std::snprintf(out.data(), out.size(), "%zu bytes (not a heartbeat)", bytes.size());
    return out;
  }
  std::memcpy(&hb, bytes.data(), sizeof hb);
  std::snprintf(out.data(), out.size(), "%llu frames, %u fps, render %u us",
                static_cast<unsigned long long>(hb.frames), hb.fps, hb.render_us);
  return out;
}

// Bytes in a pipe not read yet (FIONREAD works on either end), or -1.
long PipeWaiting(int fd) {
  int n = 0;
  if (fd < 0 || ::ioctl(fd, FIONREAD, &n) != 0) return -1;
  return n;
}

unsigned CpuCount() {
  static const unsigned kCpus = std::max(1u, std::thread::hardware_concurrency());
  return kCpus;
}

// The heartbeat queue, or nullopt and why not: the renderer then sends heartbeats on the pipe.
std::optional<QueuePair> HeartbeatQueue(bool disabled, std::string& why_not) {
  if (disabled) {
    why_not = "disabled by option";
    return std::nullopt;
  }
  auto q = CreateQueuePair(protocol::kQueueMaxMsg, protocol::kQueueMsgSize);
  if (!q) {
    why_not = q.error().ToString();
    return std::nullopt;
  }
  return std::move(*q);
}

// Chrome's way: renderers above the browser, so that the kernel's OOM killer picks one of them
// before the broker or the window. Written by the broker, which holds CAP_SYS_RESOURCE when it
// is root: that also makes the value the renderer's floor, which it cannot lower again.
void RaiseOomScore(pid_t pid, int adj) {
  if (pid <= 0 || adj == 0) return;
  std::string path = "/proc/" + std::to_string(pid) + "/oom_score_adj";
  std::string value = std::to_string(adj);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || !WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(value.data()), value.size()})) {
    std::fprintf(stderr, "sbx: cannot raise the oom_score_adj of renderer pid %d: %s\n",
                 static_cast<int>(pid), std::strerror(errno));
  }
}

// Renderers run below the broker (docs/SANDBOX.md, "Priorities"): every one starts at this nice
// value, set before exec so that its IO thread inherits it too.
constexpr int kRendererNice = 5;
// Hidden, with no cgroup to lower its share: every thread at this nice value, and only if the
// broker may lower it back to kRendererNice when the renderer is visible again.
constexpr int kHiddenNice = 15;

// Whether the broker may lower a renderer's nice value back after raising it: CAP_SYS_NICE, or
// an RLIMIT_NICE (which its renderers inherit, and which is checked on the target) that allows
// kRendererNice. Then the renderer could lower it as far itself, if its sandbox let it call
// setpriority, which it does not.
bool MayRestoreNice() {
  static const bool kMay = [] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capget, &header, caps) == 0 &&
        (caps[CAP_TO_INDEX(CAP_SYS_NICE)].effective & CAP_TO_MASK(CAP_SYS_NICE)) != 0) {
      return true;
    }
    rlimit limit{};
    return ::getrlimit(RLIMIT_NICE, &limit) == 0 &&
           limit.rlim_cur >= static_cast<rlim_t>(20 - kRendererNice);
  }();
  return kMay;
}

// Every thread of `pid` at `nice`: setpriority on a pid changes that one thread only.
Result<void> SetThreadsNice(pid_t pid, int nice) {
  auto tids = ThreadIds(pid);
  if (!tids) return std::unexpected(tids.error());
  for (pid_t tid : *tids) {
    // A thread that ended meanwhile (ESRCH) is not an error.
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) != 0 && errno != ESRCH) {
      return SysError("setpriority " + std::to_string(tid));
    }
  }
  return {};
}

LaunchSpec RendererSpec(const BrokerOptions& opt, const LaunchSite& site, LaunchArgs args,
                        const LaunchFds& fds) {
  LaunchSpec spec;
  spec.argv = opt.cmd_prefix;
  spec.search_path = !opt.cmd_prefix.empty();
  spec.argv.push_back(site.renderer_path);
  args.sandbox = site.level;
  args.sandbox_root = site.sandbox_root;
  for (auto& a : ToArgv(args)) spec.argv.push_back(std::move(a));
  spec.fds = FdMap(fds);
  spec.namespaces = site.namespaces;
  spec.confine = site.confine;
  return spec;
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

Result<std::unique_ptr<RendererProcess>> RendererProcess::Launch(RendererHostEnv& env, int id,
                                                                 const std::string& page,
                                                                 Delegate& delegate,
                                                                 protocol::Visibility visibility) {
  auto p = std::make_unique<RendererProcess>(Key{}, env, id, delegate);
  p->visibility_ = visibility;
  // On failure the half-made process goes here: its destructor releases what was made.
  if (auto r = p->Spawn(page); !r) return std::unexpected(r.error());
  return p;
}

Result<std::unique_ptr<RendererProcess>> RendererProcess::LaunchSpare(RendererHostEnv& env,
                                                                      Delegate& delegate) {
  auto p = std::make_unique<RendererProcess>(Key{}, env, 0, delegate);
  p->spare_ = true;
  if (auto r = p->Spawn(""); !r) return std::unexpected(r.error());
  return p;
}

Result<void> RendererProcess::Assign(int id, const std::string& page,
                                     protocol::Visibility visibility, Delegate& delegate) {
  if (!spare_) return MakeError(Errc::kState, "not a spare");
  PayloadWriter w;
  EncodeAssign({static_cast<uint32_t>(id), env_.options().fps, visibility, page}, w);
  id_ = id;
  delegate_ = &delegate;
  spare_ = false;
  // The slot's clocks (its uptime, the first frame, the watchdog's start-up grace) run from
  // here; what the renderer may claim (its heartbeats' CPU time, its frame count) still runs
  // from its launch.
  figures_.spawn_ns = MonotonicNs();
  if (auto r = Send(MsgType::kAssign, w.data()); !r) return r;
  if (visibility != visibility_) {
    visibility_ = visibility;
    visibility_changed_ns_ = figures_.spawn_ns;
    ApplyPriority();
  }
  return {};
}

RendererProcess::RendererProcess(Key, RendererHostEnv& env, int id, Delegate& delegate)
    : env_(env), loop_(env.loop()), id_(id), delegate_(&delegate), ipc_(env.options().inspector) {
  figures_.spawn_ns = MonotonicNs();
  launched_ns_ = figures_.spawn_ns;
  inbound_tokens_ = kInboundBurst;
  inbound_refill_ns_ = figures_.spawn_ns;
}

RendererProcess::~RendererProcess() {
  // Still launching: whatever the launch makes is killed and reaped once the zygote answers.
  if (launch_ticket_ != 0) env_.CancelLaunch(launch_ticket_);
  ReleaseKernelObjects();
  if (alive()) {
    // Bounded (ChildProcess), the renderer before its init, which cannot finish exiting while
    // the renderer is unreaped. The owner is going away, so nothing is left to reap later.
    process_ = {};
    init_ = {};
    return;
  }
  // Its exit has been handled: reap it now (a zombie, so this does not wait).
  (void)process_.TryReap();
  // With the renderer gone, the namespace's init has nothing left to do. Its exit tears down a
  // copy of our address space, so it is reaped whenever it is done, off this path. Then the
  // frame buffer is unmapped (a member), also off the detection path.
  if (!init_.valid()) return;
  (void)init_.Signal(SIGKILL);
  env_.ReapLater(std::move(init_));
}

Result<void> RendererProcess::Spawn(const std::string& page) {
  const BrokerOptions& opt = env_.options();
  auto frames = FrameReader::Create(opt.geometry);
  if (!frames) return std::unexpected(frames.error());
  frames_.emplace(std::move(*frames));

  auto site = env_.PrepareLaunch();
  if (!site) return std::unexpected(site.error());
  RendererPendingLaunch& pending = pending_.emplace();
  // In a sandbox the launcher makes the queue inside the renderer's own IPC namespace, where no
  // other renderer's counts against queues_max; otherwise it is made here, in the broker's.
  pending.queue_in_namespace = site->namespaces && !opt.force_queue_fallback;
  if (!pending.queue_in_namespace) {
    pending.queue = HeartbeatQueue(opt.force_queue_fallback, fallback_reason_);
  }
  auto to_renderer = MakePipe(false);
  if (!to_renderer) return std::unexpected(to_renderer.error());
  pending.to_renderer = std::move(*to_renderer);
  auto from_renderer = MakePipe(false);
  if (!from_renderer) return std::unexpected(from_renderer.error());
  pending.from_renderer = std::move(*from_renderer);
  // Its stdout and stderr: log events, never the broker's own output.
  auto log = RendererLog::Create(loop_, [this](BrokerEvent e) { delegate_->OnLog(std::move(e)); });
  if (!log) return std::unexpected(log.error());
  log_ = std::move(log->log);
  pending.log_child_end = std::move(log->child_end);

  LaunchArgs args;  // the sandbox fields come from the site
  args.spare = spare_;
  if (!spare_) {
    args.id = id_;
    args.page = page;
  }
  args.fps = opt.fps;
  args.heartbeat =
      pending.queue || pending.queue_in_namespace ? Heartbeat::kQueue : Heartbeat::kPipe;
  args.visibility = visibility_;
  const LaunchFds fds{pending.to_renderer.read.get(), pending.from_renderer.write.get(),
                      frames_->fd(), pending.queue ? pending.queue->writer.get() : -1};
  LaunchSpec spec = RendererSpec(opt, *site, args, fds);
  if (pending.queue_in_namespace) {
    args.heartbeat = Heartbeat::kPipe;
    spec.queue = NamespaceQueue{protocol::kHeartbeatFd, protocol::kQueueMaxMsg,
                                protocol::kQueueMsgSize, RendererSpec(opt, *site, args, fds).argv};
  }
  spec.stdio = {site->dev_null, pending.log_child_end.get(), pending.log_child_end.get()};
  if (auto c = MakeCgroup(*site); !c) return std::unexpected(c.error());
  spec.cgroup_procs = cgroup_.procs_fds();
  bool hidden = visibility_ == protocol::Visibility::kHidden;
  if (hidden && cgroup_.valid()) {
    if (auto r = cgroup_.SetHidden(true); !r) return std::unexpected(r.error());
  }
  if (opt.renderers_below_broker) {
    spec.nice = hidden && !cgroup_.valid() && MayRestoreNice() ? kHiddenNice : kRendererNice;
  }
  // From here the outcome is Complete's: called inside StartLaunch (a launch this process makes
  // itself), or later from the loop (the zygote's answer).
  in_spawn_ = true;
  launching_ = true;
  uint64_t ticket =
      env_.StartLaunch(spec, [this](Result<LaunchedChild> child) { Complete(std::move(child)); });
  in_spawn_ = false;
  // The request holds copies of every fd it names: ours can go.
  cgroup_.CloseProcsFds();
  if (launching_) {
    launch_ticket_ = ticket;
    return {};
  }
  return std::exchange(spawn_result_, {});
}

void RendererProcess::Complete(Result<LaunchedChild> launched) {
  launch_ticket_ = 0;
  launching_ = false;
  Result<void> r = Started(std::move(launched));
  pending_.reset();
  if (in_spawn_) {
    spawn_result_ = std::move(r);
    return;
  }
  // Last: the delegate may destroy this object.
  delegate_->OnLaunched(std::move(r));
}

Result<void> RendererProcess::Started(Result<LaunchedChild> child) {
  const BrokerOptions& opt = env_.options();
  cgroup_.CloseProcsFds();
  if (!child) return std::unexpected(child.error());
  RendererPendingLaunch& pending = *pending_;
  if (pending.queue_in_namespace && !child->queue) {
    fallback_reason_ = "mq_open in the renderer's IPC namespace: " +
                       std::string(std::strerror(child->queue_errno));
  }
  figures_.heartbeat_fallback = !pending.queue && !child->queue;
  if (figures_.heartbeat_fallback) {
    std::fprintf(stderr, "sbx: renderer %d: no message queue (%s); heartbeats use the pipe\n", id_,
                 fallback_reason_.c_str());
  }
  RaiseOomScore(child->process.pid(), opt.oom_score_adj);
  // Reaped off the spawn path: its exit tears down a copy of our address space.
  env_.ReapLater(std::move(child->joiner));
  figures_.pid = child->process.pid() > 0 ? child->process.pid() : 0;
  process_ = std::move(child->process);
  init_ = std::move(child->init);
  ++env_.counters().spawns;

  auto channel =
      Channel::Create(std::move(pending.from_renderer.read), std::move(pending.to_renderer.write),
                      protocol::Direction::kToBroker);
  // The child's ends close with pending_ (Complete): from then on EOF means the renderer.
  if (!channel) {
    (void)Signal(SIGKILL, KillReason::kNone);
    kill_note_ = "channel setup failed: " + channel.error().ToString();
  } else {
    channel_.emplace(std::move(*channel));
  }
  queue_ = pending.queue ? std::move(pending.queue->reader) : std::move(child->queue);
  // The renderer is our direct child even when sandboxed, so its own pidfd tells us of its end.
  auto w = loop_.Watch(process_.pidfd(), EPOLLIN, [this](uint32_t) { OnExitReadable(); });
  if (!w) {
    // Without the exit watch we could never reap it: kill and reap now.
    (void)process_.KillAndReap(MonotonicNs() + ChildProcess::kReapBoundNs);
    return std::unexpected(w.error());
  }
  exit_watch_ = *w;
  WatchChannelAndQueue();
  PayloadWriter hello;
  hello.U32(static_cast<uint32_t>(figures_.pid))
      .U32(opt.fps)
      .U32(static_cast<uint32_t>(::getpid()));
  (void)Send(MsgType::kHello, hello.data());
  return {};
}

Result<void> RendererProcess::MakeCgroup(const LaunchSite& site) {
  if (site.cgroups == nullptr || site.cgroups->mode == CgroupMode::kNone) return {};
  auto cg = RendererCgroup::Create(*site.cgroups, env_.options().cgroup);
  if (!cg) return std::unexpected(cg.error());
  cgroup_ = std::move(*cg);
  return {};
}

IpcSnapshot RendererProcess::Ipc(int64_t now) const {
  IpcSnapshot s = ipc_.Snapshot(now);
  if (channel_) {
    s.pipe_in_waiting = PipeWaiting(channel_->in_fd());
    s.pipe_out_waiting = PipeWaiting(channel_->out_fd());
    s.outbound_queued = channel_->pending_output();
  }
  mq_attr attr{};
  if (queue_.valid() && ::mq_getattr(queue_.get(), &attr) == 0) s.queue_depth = attr.mq_curmsgs;
  return s;
}

RendererEnds RendererProcess::ends(int dev_null) const {
  RendererEnds e;
  e.id = id_;
  e.pid = process_.valid() ? process_.pid() : 0;
  e.init_pid = init_.valid() ? init_.pid() : 0;
  e.pidfd = process_.pidfd();
  e.init_pidfd = init_.pidfd();
  e.dev_null = dev_null;
  e.log = log_ ? log_->fd() : -1;
  e.commands = channel_ ? channel_->out_fd() : -1;
  e.messages = channel_ ? channel_->in_fd() : -1;
  e.frames = frames_ ? frames_->fd() : -1;
  e.queue = queue_.get();
  return e;
}

void RendererProcess::WatchChannelAndQueue() {
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
}

void RendererProcess::ReleaseKernelObjects() {
  for (auto* t : {&exit_watch_, &in_watch_, &out_watch_, &queue_watch_}) {
    loop_.Unwatch(*t);
    *t = 0;
  }
  for (auto* t : {&kill_timer_, &eof_timer_, &partial_timer_}) {
    loop_.CancelTimer(*t);
    *t = 0;
  }
  channel_.reset();
  queue_.reset();
  log_.reset();
}

void RendererProcess::OnExitReadable() {
  auto exit = DetectDeath(process_, kill_reason_, kill_note_, env_.options().cmd_prefix);
  if (!exit) return;
  // The cgroup held the renderer alone, which is reaped: it goes with this object, after the
  // exit is reported (an rmdir of a memory cgroup costs more than the rest of the exit path).
  if (cgroup_.valid()) {
    *exit = ClassifyCgroupOom(std::move(*exit), cgroup_.OomKills(), cgroup_.limits().memory_bytes);
  }
  Traced(ipc_.Record(MonotonicNs(), Mechanism::kPidfd, 0, 0, 0, "%s",
                     ExitStatusName(exit->status).data()));
  // What it wrote last (a crash message, say) comes before its exit.
  if (log_) log_->Finish();
  // Every fd of the process closes right here; the frame buffer and the init wait until the
  // exit is handled (the destructor), off the detection path.
  ReleaseKernelObjects();
  FailPings("renderer exited");
  // Last: the delegate may destroy this object.
  delegate_->OnExit(std::move(*exit));
}

Result<void> RendererProcess::Send(MsgType type, std::span<const uint8_t> payload) {
  if (!channel_ || !alive()) return MakeError(Errc::kState, "renderer is not running");
  auto r = channel_->Send(type, payload);
  if (!r) {
    if (r.error().code == Errc::kOverflow)
      Kill(KillReason::kHung, "does not drain its control pipe");
    return r;
  }
  Traced(
      ipc_.RecordPipe(MonotonicNs(), Mechanism::kPipeToRenderer, type, ++messages_out_, payload));
  UpdateWriteInterest();
  return {};
}

void RendererProcess::UpdateWriteInterest() {
  bool want = channel_ && channel_->HasPendingOutput();
  // Only on a change: a send that the pipe took whole (nearly all) costs no epoll_ctl.
  if (out_watch_ == 0 || want == want_writable_) return;
  if (loop_.Modify(out_watch_, want ? EPOLLOUT : 0u)) want_writable_ = want;
}

void RendererProcess::OnControlWritable(uint32_t events) {
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

void RendererProcess::StartPipeClosedGrace(std::string what, int64_t now) {
  // Usually the process is exiting and the pidfd is about to say so; a renderer that keeps
  // running without one of its pipes is broken.
  if (eof_timer_ != 0) return;
  eof_timer_ = loop_.AddTimer(now + kPipeClosedGraceNs, [this, what = std::move(what)]() mutable {
    eof_timer_ = 0;
    if (alive()) Violation(std::move(what));
  });
}

Result<void> RendererProcess::Signal(int sig, KillReason reason) {
  if (!alive()) return MakeError(Errc::kState, "renderer has no live process");
  if (reason != KillReason::kNone && kill_reason_ == KillReason::kNone) kill_reason_ = reason;
  // A renderer that exited and awaits reaping is not an error; its pidfd will report the exit.
  auto r = process_.Signal(sig);
  if (r) {
    Traced(ipc_.Record(MonotonicNs(), Mechanism::kSignal, static_cast<uint16_t>(sig), 0, 0, "%s",
                       reason == KillReason::kNone ? "" : KillWhy(reason)));
  }
  return r;
}

void RendererProcess::Kill(KillReason reason, std::string why) {
  kill_note_ = std::move(why);
  (void)Signal(SIGKILL, reason);
}

void RendererProcess::KillAfter(int64_t grace_ns, KillReason reason) {
  loop_.CancelTimer(kill_timer_);
  kill_timer_ = loop_.AddTimer(MonotonicNs() + grace_ns, [this, reason] {
    kill_timer_ = 0;
    (void)Signal(SIGKILL, reason);
  });
}

void RendererProcess::Violation(std::string what) {
  if (being_killed()) return;
  ++env_.counters().bad_messages;
  if (spare_) {
    std::fprintf(stderr, "sbx: the spare renderer (pid %d) broke the protocol: %s; killing it\n",
                 figures_.pid, what.c_str());
  } else {
    std::fprintf(stderr, "sbx: renderer %d (pid %d) broke the protocol: %s; killing it\n", id_,
                 figures_.pid, what.c_str());
  }
  Kill(KillReason::kBadMessage, std::move(what));
  // Stop reading from it: nothing more it says can be trusted.
  loop_.Unwatch(in_watch_);
  in_watch_ = 0;
  loop_.Unwatch(queue_watch_);
  queue_watch_ = 0;
}

bool RendererProcess::TakeInboundToken(int64_t now_ns) {
  double elapsed_s = static_cast<double>(now_ns - inbound_refill_ns_) / 1e9;
  inbound_refill_ns_ = now_ns;
  inbound_tokens_ = std::min(kInboundBurst, inbound_tokens_ + elapsed_s * kInboundPerSecond);
  if (inbound_tokens_ < 1.0) return false;
  inbound_tokens_ -= 1.0;
  return true;
}

void RendererProcess::OnControlReadable() {
  if (!channel_) return;
  // Reused across calls (no allocation per batch); moved out while handling, since a handler
  // may re-enter this process (a pong callback that pings again).
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

void RendererProcess::TrackPartialMessage(bool progressed, int64_t now) {
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

void RendererProcess::OnPartialMessageDeadline() {
  partial_timer_ = 0;
  if (!alive() || being_killed() || in_watch_ == 0) return;
  // The rest may be waiting in the pipe unread (the broker itself may have been slow): read
  // first, which restarts the clock if a message completed.
  OnControlReadable();
  if (partial_since_ns_ != 0 && MonotonicNs() - partial_since_ns_ >= kPartialMessageNs) {
    Violation("sent part of a message, then nothing for 1 s");
  }
}

void RendererProcess::HandleMessage(const Message& m, int64_t now) {
  Traced(ipc_.RecordPipe(now, Mechanism::kPipeToBroker, m.type, m.seq, m.payload));
  ++messages_in_;
  ++env_.counters().messages_in;
  // A spare has nothing to say until it is assigned but the pong to the broker's ping (which
  // tells that it is confined and waiting): it draws and beats nothing before.
  if (spare_ && m.type != MsgType::kPong) {
    return Violation(std::string(protocol::MsgTypeName(m.type)) +
                     " from a spare before its assignment");
  }
  switch (m.type) {
    case MsgType::kFrameReady:
      return HandleFrameReady(m, now);
    case MsgType::kPong:
      return HandlePong(m, now);
    case MsgType::kDrillReport: {
      if (!TakeInboundToken(now)) return Violation("message flood");
      auto text = DecodeDrillReport(m);
      if (!text) return Violation(text.error().what);
      return delegate_->OnDrillReport(*text);
    }
    case MsgType::kHeartbeat: {
      if (!figures_.heartbeat_fallback)
        return Violation("heartbeat on the pipe while a queue exists");
      if (!TakeInboundToken(now)) return Violation("message flood");
      auto hb = DecodeHeartbeat(m.payload);
      if (!hb) return Violation(hb.error().what);
      return HandleHeartbeat(*hb, now);
    }
    default:
      return Violation("message type not for the broker");
  }
}

void RendererProcess::HandleFrameReady(const Message& m, int64_t now) {
  if (!TakeInboundToken(now)) return Violation("message flood");
  auto f = DecodeFrameReady(m);
  if (!f) return Violation(f.error().what);
  if (figures_.frames > 0 && f->frame_number <= last_frame_number_) {
    return Violation("frame number went backwards");
  }
  if (f->frame_number > MaxFramesAfter(now - launched_ns_)) {
    return Violation("frame number beyond what the flood limit lets through");
  }
  last_frame_number_ = f->frame_number;
  ++figures_.frames;
  Traced(ipc_.Record(now, Mechanism::kFrames, 0, f->frame_number,
                     static_cast<uint32_t>(env_.options().geometry.frame_bytes()), "buffer %u",
                     f->buffer_index));
  if (first_frame_ns_ == 0) {
    first_frame_ns_ = now;
    delegate_->OnFirstFrame(now - figures_.spawn_ns);
  }
  delegate_->OnFrame(f->frame_number);
}

void RendererProcess::HandlePong(const Message& m, int64_t now) {
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
}

void RendererProcess::OnQueueReadable() {
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
    auto got = std::span(buf).first(**n);
    Traced(ipc_.Record(now, Mechanism::kQueue, 0, ++queue_messages_,
                       static_cast<uint32_t>(got.size()), "%s", HeartbeatSummary(got).data()));
    ++messages_in_;
    ++env_.counters().messages_in;
    if (spare_) return Violation("heartbeat from a spare before its assignment");
    if (!TakeInboundToken(now)) return Violation("message flood");
    auto hb = DecodeHeartbeat(got);
    if (!hb) return Violation(hb.error().what);
    HandleHeartbeat(*hb, now);
    if (kill_reason_ == KillReason::kBadMessage) return;
  }
}

void RendererProcess::HandleHeartbeat(const protocol::Heartbeat& hb, int64_t now) {
  if (auto bad = ImpossibleHeartbeat(hb, figures_.last_heartbeat, launched_ns_, now, CpuCount())) {
    return Violation(std::move(*bad));
  }
  figures_.last_heartbeat = hb;
  figures_.last_heartbeat_ns = now;
  ++env_.counters().heartbeats;
  delegate_->OnHeartbeat(hb, now - hb.mono_ns);
}

Result<void> RendererProcess::Ping(PingCallback callback) {
  uint64_t token = next_ping_token_++;
  PayloadWriter w;
  w.U64(token);
  int64_t sent = MonotonicNs();
  if (auto r = Send(MsgType::kPing, w.data()); !r) return r;
  pings_.emplace(token, PendingPing{sent, std::move(callback)});
  return {};
}

void RendererProcess::ExpirePings(int64_t now) {
  for (auto it = pings_.begin(); it != pings_.end();) {
    if (now - it->second.sent_ns <= kPingTimeoutNs) {
      ++it;
      continue;
    }
    auto cb = std::move(it->second.callback);
    expired_pings_.insert(it->first);
    // Tokens only grow, so the first is the oldest.
    if (expired_pings_.size() > kMaxExpiredPings) expired_pings_.erase(expired_pings_.begin());
    it = pings_.erase(it);
    if (cb) cb(MakeError(Errc::kTimeout, "no pong within 5 s"));
  }
}

Result<void> RendererProcess::SetVisibility(protocol::Visibility visibility) {
  if (visibility == visibility_) return {};
  PayloadWriter w;
  w.U32(static_cast<uint32_t>(visibility));
  if (auto r = Send(MsgType::kSetVisibility, w.data()); !r) return r;
  visibility_ = visibility;
  visibility_changed_ns_ = MonotonicNs();
  ApplyPriority();
  return {};
}

void RendererProcess::ApplyPriority() {
  bool hidden = visibility_ == protocol::Visibility::kHidden;
  Result<void> r;
  if (cgroup_.valid()) {
    r = cgroup_.SetHidden(hidden);
  } else if (env_.options().renderers_below_broker && MayRestoreNice()) {
    r = SetThreadsNice(figures_.pid, hidden ? kHiddenNice : kRendererNice);
  }
  // Not fatal: the renderer only keeps the share it had.
  if (!r) {
    std::fprintf(stderr, "sbx: renderer %d: cannot change its CPU share: %s\n", id_,
                 r.error().ToString().c_str());
  }
}

void RendererProcess::ReadPendingHeartbeats() {
  if (queue_watch_ != 0) return OnQueueReadable();
  if (figures_.heartbeat_fallback && in_watch_ != 0) OnControlReadable();
}

void RendererProcess::FailPings(const std::string& why) {
  auto pings = std::move(pings_);
  pings_.clear();
  expired_pings_.clear();
  for (auto& [token, p] : pings) {
    if (p.callback) p.callback(MakeError(Errc::kState, why));
  }
}

}  // namespace sbx
