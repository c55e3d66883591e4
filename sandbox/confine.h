// The layers a renderer applies to itself once it has loaded everything it needs, in a fixed
// order; the first that fails stops the renderer (the broker sees `launch-failed`), so a
// renderer is never silently weaker than asked.
//
//   1. (namespaces only) chroot into the empty, read-only tmpfs the broker's namespace holder
//      mounted; with no capability left, nothing outside it is reachable again
//   2. every capability dropped: bounding set, then effective/permitted/inheritable
//   3. PR_SET_DUMPABLE 0
//   4. rlimits (kLimits)
//   5. PR_SET_NO_NEW_PRIVS 1 and the seccomp-bpf policy (policy.h), on every thread; at pid 2 the
//      program prepared at build time (prepared_policy.h), else compiled for the pid now
#pragma once

#include <sys/resource.h>

#include <functional>
#include <span>
#include <string_view>

#include "ipc/error.h"
#include "ipc/launch_args.h"

namespace sbx::sandbox {

// kFull: all five steps; kNoNamespaces: steps 2-5; kOff: nothing. Defined with the launch
// contract, which carries it to the renderer as --sandbox=.
using Level = SandboxLevel;
using ::sbx::LevelFromName;
using ::sbx::LevelName;

struct Limit {
  int resource;
  std::string_view name;  // as /proc/PID/limits spells it
  rlim_t value;           // soft = hard; RLIM_INFINITY where the build cannot have one
  std::string_view why;
  // Set by the launcher before exec as well. The process limit is not: it counts every process
  // of the user, so it would refuse the renderer's own IO thread (see kLimitTable).
  bool before_exec = true;
};

// The documented limits (docs/SANDBOX.md). The address-space limit is absent from sanitizer
// builds, whose shadow memory reserves terabytes of address space.
std::span<const Limit> Limits();

// Applies the layers of `level`; `self_pid` is getpid() as the caller sees it; `empty_root` is
// the directory to chroot into (kFull only), or empty when the launcher already made the root
// empty before exec (then it is only checked: read-only and empty). `start_threads`, if given, runs
// once the root is empty and the capabilities are gone, before the rlimits and the filter: the only
// point where a thread can be started that inherits the dropped capabilities (they are per thread)
// and is not refused by RLIMIT_NPROC (which counts every renderer of the user). The filter then
// reaches every thread through TSYNC.
Result<void> EnterSandbox(Level level, int self_pid, std::string_view empty_root,
                          const std::function<Result<void>()>& start_threads = {});

}  // namespace sbx::sandbox
