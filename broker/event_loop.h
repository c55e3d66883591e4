// One epoll loop over every fd the broker watches (pidfds, pipes, queues, the control socket)
// plus one timerfd for all deadlines. Level-triggered; handlers run on the loop's thread only.
//
// Handlers may add or remove watches and timers while the loop dispatches: every watch has a
// never-reused token, and an event whose token was removed earlier in the same batch is skipped.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

class EventLoop {
 public:
  using Token = uint64_t;
  using FdHandler = std::function<void(uint32_t epoll_events)>;
  using TimerHandler = std::function<void()>;

  static Result<EventLoop> Create();
  EventLoop(EventLoop&&) = default;
  EventLoop& operator=(EventLoop&&) = default;

  // The epoll fd: readable whenever Dispatch(0) has work (lets a Qt loop watch it).
  int fd() const { return epoll_.get(); }

  Result<Token> Watch(int fd, uint32_t events, FdHandler handler);
  Result<void> Modify(Token token, uint32_t events);
  void Unwatch(Token token);

  // Runs `handler` once at or after `deadline_ns` (CLOCK_MONOTONIC).
  Token AddTimer(int64_t deadline_ns, TimerHandler handler);
  void CancelTimer(Token token);

  // Waits up to timeout_ms (-1: until something happens; 0: poll) and runs what is ready.
  Result<void> Dispatch(int timeout_ms);
  // Nanoseconds until the next timer, or -1 if none.
  int64_t NextTimerIn() const;

 private:
  EventLoop(UniqueFd epoll, UniqueFd timer) : epoll_(std::move(epoll)), timer_(std::move(timer)) {}
  void ArmTimerFd();
  void RunDueTimers();

  struct WatchEntry {
    int fd;
    // Shared so Dispatch can keep a handler alive while it runs, even if it unwatches itself.
    std::shared_ptr<FdHandler> handler;
  };
  UniqueFd epoll_;
  UniqueFd timer_;
  Token next_token_ = 1;
  std::unordered_map<Token, WatchEntry> watches_;
  // deadline -> (token, handler); token lets CancelTimer find it.
  std::multimap<int64_t, std::pair<Token, TimerHandler>> timers_;
  std::unordered_map<Token, int64_t> timer_deadlines_;
  int64_t armed_deadline_ = 0;
};

}  // namespace sbx
