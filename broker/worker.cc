#include "broker/worker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "ipc/posix.h"

namespace sbx {

Result<std::unique_ptr<Worker>> Worker::Start(EventLoop& loop) {
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return SysError("eventfd");
  auto w = std::make_unique<Worker>(Key{}, loop, std::move(wake));
  auto watch =
      loop.Watch(w->wake_.get(), EPOLLIN, [self = w.get()](uint32_t) { self->RunCompletions(); });
  if (!watch) return std::unexpected(watch.error());
  w->watch_ = *watch;
  if (int err = ::pthread_create(&w->thread_, nullptr, &Worker::Main, w.get()); err != 0) {
    return std::unexpected(Error{Errc::kSystem, err, "pthread_create"});
  }
  w->started_ = true;
  std::unique_lock lock(w->mutex_);
  w->cv_.wait(lock, [&] { return w->running_; });
  return w;
}

Worker::Worker(Key, EventLoop& loop, UniqueFd wake) : loop_(loop), wake_(std::move(wake)) {}

Worker::~Worker() {
  if (watch_ != 0) loop_.Unwatch(watch_);
  if (!started_) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  (void)::pthread_join(thread_, nullptr);
}

void Worker::Post(Task work, Task done) {
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(std::move(work), std::move(done));
  }
  cv_.notify_all();
}

void* Worker::Main(void* self) {
  static_cast<Worker*>(self)->Run();
  return nullptr;
}

void Worker::Run() {
  std::unique_lock lock(mutex_);
  running_ = true;
  cv_.notify_all();
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    auto [work, done] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    lock.lock();
    finished_.push_back(std::move(done));
    // The counter only says "look"; a failed write leaves a full counter, which says so too.
    const uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
}

void Worker::RunCompletions() {
  uint64_t count = 0;
  (void)!::read(wake_.get(), &count, sizeof count);  // EAGAIN: nothing new, the queue says
  std::deque<Task> ready;
  {
    std::lock_guard lock(mutex_);
    ready.swap(finished_);
  }
  for (Task& done : ready) done();
}

}  // namespace sbx
