#include "sandbox/confine.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <string>

#include "ipc/posix.h"
#include "sandbox/policy.h"
#include "sandbox/prepared_policy.h"

namespace sbx::sandbox {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr rlim_t kAddressSpace = RLIM_INFINITY;
#else
constexpr rlim_t kAddressSpace = rlim_t{1} << 30;
#endif

constexpr std::array kLimitTable{
    Limit{RLIMIT_AS, "Max address space", kAddressSpace,
          "1 GiB: a renderer needs ~30 MiB plus its two frame buffers; the oom drill and a "
          "runaway page hit this instead of the machine's OOM killer"},
    Limit{RLIMIT_NOFILE, "Max open files", 16,
          "it needs fds 0-6 and opens nothing after start (open is denied anyway)"},
    Limit{RLIMIT_NPROC, "Max processes", 16,
          "fork is denied by seccomp, this is a second wall; the IO thread starts before it "
          "is set, since it counts every process of the user, other renderers included",
          /*before_exec=*/false},
    Limit{RLIMIT_FSIZE, "Max file size", 0, "it writes no files; SIGXFSZ is ignored, writes fail"},
    Limit{RLIMIT_CORE, "Max core file size", 0, "a crash must not dump the page's memory"},
    Limit{RLIMIT_MSGQUEUE, "Max msgqueue size", 0, "queues come from the broker only"},
    Limit{RLIMIT_MEMLOCK, "Max locked memory", 0, "nothing to lock"},
};

Result<void> Step(bool ok, const char* what) {
  if (ok) return {};
  return SysError(std::string("sandbox: ") + what);
}

// The launcher chrooted us before exec: our root must be its empty, read-only tmpfs.
Result<void> CheckEmptyRoot() {
  struct statfs fs;
  if (auto r = Step(::statfs("/", &fs) == 0, "statfs /"); !r) return r;
  if (fs.f_type != TMPFS_MAGIC || (fs.f_flags & ST_RDONLY) == 0) {
    errno = EPERM;
    return SysError("sandbox: the root is not the launcher's empty tmpfs");
  }
  return {};
}

Result<void> EnterEmptyRoot(std::string_view dir) {
  std::string path(dir);
  if (path.empty()) return CheckEmptyRoot();
  if (path[0] != '/') {
    errno = EINVAL;
    return SysError("sandbox: no empty root given");
  }
  if (auto r = Step(::chdir(path.c_str()) == 0, "chdir to the empty root"); !r) return r;
  if (auto r = Step(::chroot(".") == 0, "chroot"); !r) return r;
  return Step(::chdir("/") == 0, "chdir /");
}

Result<void> DropCapabilities() {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    // EINVAL: a capability this kernel does not know; nothing to drop.
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      // Without CAP_SETPCAP the bounding set cannot change; then we hold no capability anyway
      // (checked below by clearing the sets, which always succeeds).
      if (errno == EPERM) break;
      return SysError("sandbox: drop bounding capability");
    }
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  return Step(::syscall(SYS_capset, &header, data) == 0, "clear capabilities");
}

Result<void> ApplyLimits() {
  for (const auto& l : kLimitTable) {
    rlimit value{l.value, l.value};
    if (::setrlimit(l.resource, &value) != 0) {
      return SysError("sandbox: setrlimit " + std::string(l.name));
    }
  }
  // With a zero file size limit a write past the end raises SIGXFSZ; an error is kinder to a
  // renderer whose stderr happens to be a file.
  return IgnoreSignal(SIGXFSZ);
}

// A renderer in its own pid namespace is pid kRendererPidInside, the pid the prepared program
// was compiled for; at any other pid (no namespaces, or the child of a wrapper) it is compiled
// now, for that pid. Both are the same table, compiled by the same libseccomp.
Result<void> InstallPolicy(int self_pid) {
  if (self_pid == kRendererPidInside) return LoadPolicyProgram(PreparedPolicyProgram());
  return InstallSeccompPolicy(self_pid);
}

}  // namespace

std::span<const Limit> Limits() { return kLimitTable; }

Result<void> EnterSandbox(Level level, int self_pid, std::string_view empty_root,
                          const std::function<Result<void>()>& start_threads) {
  if (level == Level::kOff) return start_threads ? start_threads() : Result<void>{};
  if (level == Level::kFull) {
    if (auto r = EnterEmptyRoot(empty_root); !r) return r;
  }
  if (auto r = DropCapabilities(); !r) return r;
  if (auto r = Step(::prctl(PR_SET_DUMPABLE, 0) == 0, "PR_SET_DUMPABLE"); !r) return r;
  if (start_threads) {
    if (auto r = start_threads(); !r) return r;
  }
  if (auto r = ApplyLimits(); !r) return r;
  if (auto r = Step(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS"); !r) {
    return r;
  }
  return InstallPolicy(self_pid);
}

}  // namespace sbx::sandbox
