#include "renderer/renderer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "ipc/codec.h"
#include "ipc/message_queue.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "renderer/drills.h"

namespace sbx::renderer {

namespace {

using protocol::MsgType;

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int kHelloTimeoutMs = 5000;
// How long one wait of a spare for its assignment lasts before it simply waits again.
constexpr int64_t kSpareWaitNs = 3'600'000'000'000;

int64_t CpuNs() {
  timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

Renderer::Renderer(LaunchArgs args, Channel channel, FrameWriter frames, int queue_fd,
                   PageObserver on_page)
    : args_(std::move(args)),
      on_page_(std::move(on_page)),
      channel_(std::move(channel)),
      frames_(std::move(frames)),
      queue_fd_(queue_fd),
      fps_(args_.fps),
      visibility_(args_.visibility),
      vm_at_start_(VirtualSize()) {
  if (!args_.spare) Navigate(args_.page);
}

Renderer::~Renderer() {
  if (io_started_) (void)::pthread_join(io_thread_, nullptr);
}

Result<void> Renderer::StartIoThread() {
  // The IO thread blocks in read(), as a bare pipe echo does: no poll on the way of a ping.
  // Only this process reads this pipe end, so the broker's end keeps its own flags.
  int flags = ::fcntl(channel_.in_fd(), F_GETFL);
  if (flags < 0 || ::fcntl(channel_.in_fd(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return SysError("fcntl(control pipe)");
  }
  // pthread, not std::thread: a failure to start must be an error value (launch-failed), not
  // an exception.
  int e = ::pthread_create(
      &io_thread_, nullptr,
      [](void* self) -> void* {
        // Named so that the process view (and top -H) tells it from the main thread; prctl,
        // because pthread_setname_np writes /proc/self/task/TID/comm, which the empty root lacks.
        (void)::prctl(PR_SET_NAME, "sbx-io", 0, 0, 0);
        static_cast<Renderer*>(self)->IoMain();
        return nullptr;
      },
      this);
  if (e != 0) {
    errno = e;
    return SysError("pthread_create");
  }
  io_started_ = true;
  return {};
}

int Renderer::Run() {
  // Stopped after the hello (a shutdown in the same batch, say) ends as the main loop does: 0.
  if (!WaitForHello()) return hello_ && !refused_ ? 0 : 1;
  int64_t now = MonotonicNs();
  next_frame_ns_ = now;
  next_heartbeat_ns_ = now;
  for (;;) {
    now = MonotonicNs();
    // Hidden, it draws nothing but its first frame, so that it is ready and its tile has a
    // picture; the last frame stays in the buffer.
    bool draws = visibility_ == protocol::Visibility::kVisible || frame_ == 0;
    if (draws && now >= next_frame_ns_) {
      RenderFrame(now);
      next_frame_ns_ += 1'000'000'000 / fps_;
      if (next_frame_ns_ < now) next_frame_ns_ = now + 1'000'000'000 / fps_;  // fell behind
    }
    if (now >= next_heartbeat_ns_) {
      if (!SendHeartbeat()) return 1;
      next_heartbeat_ns_ = now + HeartbeatIntervalMs() * kNsPerMs;
    }
    draws = visibility_ == protocol::Visibility::kVisible || frame_ == 0;
    int64_t wake = draws ? std::min(next_frame_ns_, next_heartbeat_ns_) : next_heartbeat_ns_;
    if (!WaitAndHandle(wake)) return refused_ ? 1 : 0;
  }
}

int Renderer::HeartbeatIntervalMs() const {
  return visibility_ == protocol::Visibility::kHidden ? protocol::kHiddenHeartbeatIntervalMs
                                                      : protocol::kHeartbeatIntervalMs;
}

void Renderer::SetVisibility(protocol::Visibility v) {
  if (v == visibility_) return;
  visibility_ = v;
  if (v == protocol::Visibility::kVisible) {
    // At once, not at the next tick of the slow timer: a frame for the tile coming into view,
    // and a heartbeat so the watchdog sees the fast rate again.
    int64_t now = MonotonicNs();
    next_frame_ns_ = now;
    next_heartbeat_ns_ = now;
  }
  // Hidden: the heartbeat already due (within the fast interval) still goes out; the next ones
  // come at the slow rate.
}

void Renderer::IoMain() {
  std::vector<Message> batch;
  bool open = true;
  while (open) {
    batch.clear();
    // At most one read: the fd blocks now, and a second read after a full first one would
    // sit on messages already read until the broker writes again.
    auto r = channel_.Receive(batch, Channel::kReadChunk);
    if (!r) {
      std::fprintf(stderr, "sbx-renderer %d: bad message from the broker: %s\n", args_.id,
                   r.error().ToString().c_str());
      break;
    }
    open = *r;
    bool forwarded = false;
    bool hang = false;
    for (auto& m : batch) {
      // A pong says the IO thread is alive, not that earlier messages have taken effect; after
      // a hang drill, not even that.
      if (m.type == MsgType::kPing && !hang && answer_pings_.load(std::memory_order_acquire)) {
        if (auto token = DecodeU64(m)) {
          PayloadWriter w;
          w.U64(*token);
          std::lock_guard out(out_mu_);
          if (!channel_.Send(MsgType::kPong, w.data())) open = false;
          continue;
        }
        // A malformed ping goes to the main thread, which rejects it.
      }
      hang |= m.type == MsgType::kHang;
      std::lock_guard in(in_mu_);
      pending_.push_back(std::move(m));
      forwarded = true;
    }
    if (forwarded) in_cv_.notify_one();
    // A hung renderer stops reading its pipe too, so the broker sees a real hang.
    while (hang) {
      std::unique_lock in(in_mu_);
      in_cv_.wait(in);
    }
  }
  {
    std::lock_guard in(in_mu_);
    io_done_ = true;
  }
  in_cv_.notify_one();
}

// Waits until `deadline_ns` (CLOCK_MONOTONIC), or until the IO thread hands over messages,
// and handles them. Returns false when the broker is gone or asked us to stop.
bool Renderer::WaitAndHandle(int64_t deadline_ns) {
  bool pending_output;
  {
    std::lock_guard out(out_mu_);
    pending_output = channel_.HasPendingOutput();
  }
  if (pending_output) {
    // The broker is not reading: wait for room in the pipe (rare; messages handed over
    // meanwhile wait until the next frame).
    int64_t wait_ns = deadline_ns - MonotonicNs();
    int timeout_ms = wait_ns <= 0 ? 0 : static_cast<int>((wait_ns + kNsPerMs - 1) / kNsPerMs);
    pollfd p{channel_.out_fd(), POLLOUT, 0};
    if (HandleEintr([&] { return ::poll(&p, 1, timeout_ms); }) < 0) return false;
    std::lock_guard out(out_mu_);
    if (!channel_.Flush()) return false;
  }
  std::vector<Message>& messages = inbox_;  // reused: no allocation per batch
  messages.clear();
  bool io_done;
  {
    std::unique_lock in(in_mu_);
    if (!pending_output) {
      // Steady clock is CLOCK_MONOTONIC, the clock of every deadline here.
      std::chrono::steady_clock::time_point until{std::chrono::nanoseconds(deadline_ns)};
      in_cv_.wait_until(in, until, [&] { return !pending_.empty() || io_done_; });
    }
    messages.swap(pending_);
    io_done = io_done_;
  }
  for (const auto& m : messages) {
    if (!Handle(m)) return false;
  }
  return !io_done;
}

bool Renderer::WaitForHello() {
  int64_t deadline = MonotonicNs() + kHelloTimeoutMs * kNsPerMs;
  while (!hello_) {
    if (MonotonicNs() >= deadline) {
      std::fprintf(stderr, "sbx-renderer %d: no hello from the broker\n", args_.id);
      return false;
    }
    if (!WaitAndHandle(deadline)) return false;
  }
  // Confined (main calls Run after EnterSandbox) and introduced: pings may be answered now.
  answer_pings_.store(true, std::memory_order_release);
  // A spare waits as long as the broker keeps it, drawing and beating nothing, until it is told
  // who it is; the broker closing the pipe ends it. First it faults in the buffer its first
  // frame will be drawn into (zeros, as the memfd already holds, and never published), so that
  // the frame it was started ahead for does not wait for a few hundred page faults.
  if (args_.spare) {
    std::memset(frames_.BeginFrame(), 0, frames_.geometry().frame_bytes());
  }
  while (args_.spare) {
    if (!WaitAndHandle(MonotonicNs() + kSpareWaitNs)) return false;
  }
  return true;
}

bool Renderer::Assign(const Message& m) {
  auto a = DecodeAssign(m);
  if (!args_.spare || !a) {
    refused_ = true;
    std::fprintf(stderr, "sbx-renderer: %s\n",
                 args_.spare ? a.error().what.c_str() : "assign to a renderer that is not a spare");
    return false;
  }
  args_.spare = false;
  args_.id = static_cast<int>(a->id);
  fps_ = a->fps;
  visibility_ = a->visibility;
  args_.visibility = a->visibility;
  Navigate(a->page);  // and the process title, which shows the id from now on
  return true;
}

bool Renderer::Handle(const Message& m) {
  if (!hello_ && m.type != MsgType::kHello) return false;  // hello must come first
  // Before its assignment a spare has no page to act on: only a ping or a shutdown may come.
  if (args_.spare && m.type != MsgType::kHello && m.type != MsgType::kAssign &&
      m.type != MsgType::kPing && m.type != MsgType::kShutdown) {
    refused_ = true;
    std::fprintf(stderr, "sbx-renderer: %s before the assignment\n",
                 std::string(protocol::MsgTypeName(m.type)).c_str());
    return false;
  }
  switch (m.type) {
    case MsgType::kHello: {
      auto h = DecodeHello(m);
      if (!h) return false;
      hello_ = true;
      pid_ = static_cast<int>(h->pid);
      fps_ = h->fps;
      broker_pid_ = static_cast<int>(h->broker_pid);
      return true;
    }
    case MsgType::kNavigate: {
      auto url = DecodeNavigate(m);
      if (!url) return false;
      Navigate(*url);
      return true;
    }
    case MsgType::kSetFps: {
      auto fps = DecodeU32(m);
      if (!fps || *fps < protocol::kMinFps || *fps > protocol::kMaxFps) return false;
      fps_ = *fps;
      return true;
    }
    case MsgType::kPing: {  // only before the IO thread answers them itself
      auto token = DecodeU64(m);
      if (!token) return false;
      PayloadWriter w;
      w.U64(*token);
      std::lock_guard out(out_mu_);
      return channel_.Send(MsgType::kPong, w.data()).has_value();
    }
    case MsgType::kSetVisibility: {
      auto v = DecodeU32(m);
      if (!v || *v > static_cast<uint32_t>(protocol::Visibility::kHidden)) return false;
      SetVisibility(static_cast<protocol::Visibility>(*v));
      return true;
    }
    case MsgType::kAssign:
      return Assign(m);
    case MsgType::kShutdown:
      return false;
    case MsgType::kCrash: {
      auto kind = DecodeU32(m);
      if (!kind || *kind < 1 || *kind > 5) return false;
      if (*kind == static_cast<uint32_t>(protocol::CrashKind::kEscape)) {
        Escape(args_.sandbox, broker_pid_, [this](const std::string& line) { Report(line); });
      }
      Crash(static_cast<protocol::CrashKind>(*kind));
    }
    case MsgType::kHang:
      Hang();
    case MsgType::kOom:
      OutOfMemory(vm_at_start_);
    case MsgType::kBadIpc: {
      // Around the channel on purpose, but not in the middle of one of its messages.
      std::lock_guard out(out_mu_);
      SendGarbage(channel_.out_fd());
    }
      return true;
    default:
      return false;
  }
}

void Renderer::Report(const std::string& line) {
  PayloadWriter w;
  w.Str(line.substr(0, protocol::kMaxDrillReport));
  std::lock_guard out(out_mu_);
  (void)channel_.Send(MsgType::kDrillReport, w.data());
  // The last attempt may kill us: make sure every report is out before it.
  while (channel_.HasPendingOutput()) {
    pollfd p{channel_.out_fd(), POLLOUT, 0};
    if (HandleEintr([&] { return ::poll(&p, 1, 1000); }) <= 0 || !channel_.Flush()) break;
  }
}

void Renderer::Navigate(const std::string& url) {
  auto page = MakePage(url);
  if (page) {
    page_ = std::move(*page);
  } else {
    // Like Chrome's error page: the renderer stays alive and says what went wrong.
    auto error_page = MakePage("sbx://text/Cannot%20load%20" + url.substr(0, 200));
    if (error_page) page_ = std::move(*error_page);
  }
  // The URL asked for, as Chrome's address bar keeps it over an error page.
  args_.page = url;
  if (on_page_) on_page_(args_);
}

void Renderer::RenderFrame(int64_t now) {
  const FrameGeometry& g = frames_.geometry();
  uint8_t* pixels = frames_.BeginFrame();
  Canvas canvas{pixels, g.width, g.height, static_cast<int>(g.stride())};
  timespec wall;
  ::clock_gettime(CLOCK_REALTIME, &wall);
  FrameInfo info{args_.id, pid_, frame_, now, static_cast<int64_t>(wall.tv_sec)};
  if (page_) page_->Render(canvas, info);
  int index = frames_.EndFrame(frame_);
  render_us_ = static_cast<uint32_t>((MonotonicNs() - now) / 1000);
  PayloadWriter w;
  w.U32(static_cast<uint32_t>(index)).U64(frame_);
  ++frame_;
  // A full queue means the broker is not reading; it will notice our silence, not us.
  std::lock_guard out(out_mu_);
  (void)channel_.Send(MsgType::kFrameReady, w.data());
}

bool Renderer::SendHeartbeat() {
  protocol::Heartbeat hb{};
  hb.magic = protocol::kHeartbeatMagic;
  hb.frames = frame_;
  hb.cpu_ns = static_cast<uint64_t>(CpuNs());
  hb.render_us = render_us_;
  hb.fps = fps_;
  // Stamped last, right before the send: the broker measures the queue's latency from it, and
  // the CPU clock above is a system call of its own.
  hb.mono_ns = MonotonicNs();
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(&hb), sizeof hb);
  if (queue_fd_ >= 0) {
    auto r = QueueSend(queue_fd_, bytes);
    // Full: the broker is behind; the next heartbeat will do.
    return r || r.error().code == Errc::kOverflow;
  }
  std::lock_guard out(out_mu_);
  auto r = channel_.Send(MsgType::kHeartbeat, bytes);
  return r || r.error().code == Errc::kOverflow;
}

}  // namespace sbx::renderer
