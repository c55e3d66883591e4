#include "broker/event_loop.h"

#include <sys/timerfd.h>

#include <array>
#include <vector>

#include "ipc/posix.h"

namespace sbx {

namespace {
constexpr EventLoop::Token kTimerToken = 0;
}

Result<EventLoop> EventLoop::Create() {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return SysError("epoll_create1");
  UniqueFd epoll(ep);
  int tf = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tf < 0) return SysError("timerfd_create");
  UniqueFd timer(tf);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTimerToken;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, tf, &ev) != 0) return SysError("epoll_ctl(timerfd)");
  return EventLoop(std::move(epoll), std::move(timer));
}

Result<EventLoop::Token> EventLoop::Watch(int fd, uint32_t events, FdHandler handler) {
  Token token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return SysError("epoll_ctl(ADD)");
  watches_.emplace(token, WatchEntry{fd, std::make_shared<FdHandler>(std::move(handler))});
  return token;
}

Result<void> EventLoop::Modify(Token token, uint32_t events) {
  auto it = watches_.find(token);
  if (it == watches_.end()) return MakeError(Errc::kNotFound, "no such watch");
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, it->second.fd, &ev) != 0) {
    return SysError("epoll_ctl(MOD)");
  }
  return {};
}

void EventLoop::Unwatch(Token token) {
  auto it = watches_.find(token);
  if (it == watches_.end()) return;
  // The fd may already be closed by its owner, which removed it from the epoll set; ignore.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
  watches_.erase(it);
}

EventLoop::Token EventLoop::AddTimer(int64_t deadline_ns, TimerHandler handler) {
  Token token = next_token_++;
  timers_.emplace(deadline_ns, std::make_pair(token, std::move(handler)));
  timer_deadlines_.emplace(token, deadline_ns);
  ArmTimerFd();
  return token;
}

void EventLoop::CancelTimer(Token token) {
  auto d = timer_deadlines_.find(token);
  if (d == timer_deadlines_.end()) return;
  auto [lo, hi] = timers_.equal_range(d->second);
  for (auto it = lo; it != hi; ++it) {
    if (it->second.first == token) {
      timers_.erase(it);
      break;
    }
  }
  timer_deadlines_.erase(d);
}

int64_t EventLoop::NextTimerIn() const {
  if (timers_.empty()) return -1;
  int64_t d = timers_.begin()->first - MonotonicNs();
  return d < 0 ? 0 : d;
}

void EventLoop::ArmTimerFd() {
  if (timers_.empty()) return;
  int64_t first = timers_.begin()->first;
  if (armed_deadline_ != 0 && armed_deadline_ <= first) return;
  itimerspec its{};
  // A zero it_value would disarm the timer; a deadline in the past fires at once.
  int64_t when = first <= 0 ? 1 : first;
  its.it_value.tv_sec = when / 1'000'000'000;
  its.it_value.tv_nsec = when % 1'000'000'000;
  // Failure here is impossible for a valid timerfd and absolute time; fall back on polling.
  if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &its, nullptr) == 0) {
    armed_deadline_ = first;
  }
}

void EventLoop::RunDueTimers() {
  uint64_t expirations;
  (void)HandleEintr([&] { return ::read(timer_.get(), &expirations, sizeof expirations); });
  armed_deadline_ = 0;
  int64_t now = MonotonicNs();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_deadlines_.erase(node.mapped().first);
    node.mapped().second();
  }
  ArmTimerFd();
}

Result<void> EventLoop::Dispatch(int timeout_ms) {
  std::array<epoll_event, 64> events;
  int n = HandleEintr([&] {
    return ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  });
  if (n < 0) return SysError("epoll_wait");
  bool timers_due = false;
  for (int i = 0; i < n; ++i) {
    Token token = events[i].data.u64;
    if (token == kTimerToken) {
      timers_due = true;
      continue;
    }
    auto it = watches_.find(token);
    if (it == watches_.end()) continue;  // removed by an earlier handler in this batch
    std::shared_ptr<FdHandler> handler = it->second.handler;
    (*handler)(events[i].events);
  }
  if (timers_due || (!timers_.empty() && timers_.begin()->first <= MonotonicNs())) RunDueTimers();
  return {};
}

}  // namespace sbx
