// Pins the calling thread, and every process it forks meanwhile, to the CPU it runs on.
//
// On two CPUs a ping-pong is bimodal: with both ends on one CPU a wakeup is a context switch;
// across CPUs it is an inter-processor interrupt, often into an idle (on a VM, halted) CPU,
// several times slower. The scheduler picks the mode, differently from run to run, so a ratio
// of two round trips is only meaningful when both were taken on one CPU.
#pragma once

#include <sched.h>

#include <utility>

#include "ipc/error.h"

namespace sbx::bench {

class ScopedCpuPin {
 public:
  static Result<ScopedCpuPin> PinHere() {
    cpu_set_t saved;
    CPU_ZERO(&saved);
    if (::sched_getaffinity(0, sizeof saved, &saved) != 0) return SysError("sched_getaffinity");
    int cpu = ::sched_getcpu();
    if (cpu < 0) return SysError("sched_getcpu");
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (::sched_setaffinity(0, sizeof one, &one) != 0) return SysError("sched_setaffinity");
    return ScopedCpuPin(saved);
  }

  ScopedCpuPin(ScopedCpuPin&& other) noexcept
      : saved_(other.saved_), active_(std::exchange(other.active_, false)) {}
  ScopedCpuPin& operator=(ScopedCpuPin&&) = delete;
  // Children keep the pin they inherited; only this thread gets its old mask back. Best effort:
  // restoring a mask we read a moment ago cannot fail short of a CPU going offline.
  ~ScopedCpuPin() {
    if (active_) (void)::sched_setaffinity(0, sizeof saved_, &saved_);
  }

 private:
  explicit ScopedCpuPin(cpu_set_t saved) : saved_(saved) {}
  cpu_set_t saved_;
  bool active_ = true;
};

}  // namespace sbx::bench
