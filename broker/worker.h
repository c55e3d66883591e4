// One long-lived thread for reads too slow for the event loop: `inspect` at 500 renderers reads a
// thousand processes from /proc, a third of a second that the loop would otherwise spend not
// answering anyone. Work runs on the thread and touches only what it was given (an InspectPlan
// holds copies); its completion runs on the loop's thread, woken through an eventfd the loop
// watches, so everything of the broker's stays on one thread.
//
// Start() returns once the thread runs: a thread glibc is still starting when the broker
// clone3()s a launch would leave the child's setresgid() waiting on it forever.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "broker/event_loop.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

class Worker {
 public:
  using Task = std::function<void()>;

  static Result<std::unique_ptr<Worker>> Start(EventLoop& loop);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Waits for the work in progress, then ends the thread. Work not started and completions not
  // yet run are dropped.
  ~Worker();

  // `work` on the thread, in order; then `done` on the loop's thread, unless this is gone first.
  void Post(Task work, Task done);

  // Public only in form: Start() is the one way in.
  struct Key {
   private:
    friend class Worker;
    Key() = default;
  };
  Worker(Key, EventLoop& loop, UniqueFd wake);

 private:
  static void* Main(void* self);
  void Run();
  void RunCompletions();

  EventLoop& loop_;
  UniqueFd wake_;  // eventfd: the thread adds one for each finished task
  EventLoop::Token watch_ = 0;
  pthread_t thread_{};
  bool started_ = false;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool running_ = false;  // the thread has entered its loop
  bool stop_ = false;
  std::deque<std::pair<Task, Task>> queue_;
  std::deque<Task> finished_;
};

}  // namespace sbx
