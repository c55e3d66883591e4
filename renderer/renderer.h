// One renderer: the page, its frames, its heartbeats and its control pipe. sbx-renderer's main
// makes one from its launch arguments and descriptors, confines the process and runs it; a test
// can make one over its own pipes and frame buffer and talk to it as the broker does.
//
// Threads: the IO thread (StartIoThread) is the only reader of the control pipe; it answers pings
// itself and hands every other message to the main thread (Run), which owns the page, the frames
// and the drills. Writes to the pipe go through one mutex. The process must ignore SIGPIPE, so a
// broker that went away is an error on the next write, not a signal.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ipc/channel.h"
#include "ipc/frame_buffer.h"
#include "ipc/launch_args.h"
#include "renderer/pages.h"

namespace sbx::renderer {

class Renderer {
 public:
  // Called on the main thread with the launch arguments as they stand whenever the page
  // changes (first from the constructor): `page` is the one shown now.
  using PageObserver = std::function<void(const LaunchArgs&)>;

  // `queue_fd` is the heartbeat queue, or -1 to send heartbeats over the pipe.
  Renderer(LaunchArgs args, Channel channel, FrameWriter frames, int queue_fd,
           PageObserver on_page = {});
  // Waits for the IO thread, which ends at EOF on the control pipe: the broker's end must be
  // closed first. (sbx-renderer never gets here: it leaves with _exit.)
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  // Starts the IO thread. sbx-renderer calls it from inside EnterSandbox, once the capabilities
  // are gone (see start_threads there).
  Result<void> StartIoThread();

  // Waits for hello (and, a spare, for its assignment), then draws and beats until the broker
  // closes the pipe or says shutdown (0), or the pipe or the queue fails (1). Drills may end the
  // process instead.
  int Run();

 private:
  void IoMain();
  bool WaitAndHandle(int64_t deadline_ns);
  bool WaitForHello();
  bool Handle(const Message& m);
  // A spare's assignment: its id, page, fps and visibility. False if malformed or not a spare.
  bool Assign(const Message& m);
  void Report(const std::string& line);
  void Navigate(const std::string& url);
  void RenderFrame(int64_t now);
  bool SendHeartbeat();
  int HeartbeatIntervalMs() const;
  void SetVisibility(protocol::Visibility v);

  LaunchArgs args_;  // args_.page: the page shown now
  PageObserver on_page_;
  // Its input side belongs to the IO thread; its output side to whoever holds out_mu_.
  Channel channel_;
  std::mutex out_mu_;
  // Messages the IO thread hands to the main thread.
  std::mutex in_mu_;
  std::condition_variable in_cv_;
  std::vector<Message> pending_;  // guarded by in_mu_
  bool io_done_ = false;          // guarded by in_mu_: EOF or a bad message
  std::atomic<bool> answer_pings_{false};
  pthread_t io_thread_{};
  bool io_started_ = false;
  FrameWriter frames_;
  std::vector<Message> inbox_;
  int queue_fd_;
  uint32_t fps_;
  protocol::Visibility visibility_;
  size_t vm_at_start_;
  bool hello_ = false;
  bool refused_ = false;  // a spare was sent what it may not take: it ends with 1
  int pid_ = 0;
  int broker_pid_ = 0;
  uint64_t frame_ = 0;
  uint32_t render_us_ = 0;
  int64_t next_frame_ns_ = 0;
  int64_t next_heartbeat_ns_ = 0;
  std::unique_ptr<Page> page_;
};

}  // namespace sbx::renderer
