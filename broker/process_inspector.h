// The process view: every process of the broker (itself, the namespace holder, each renderer's
// init and each renderer) read from outside, from /proc, the way Firefox's about:processes and
// htop show them, plus what only the broker knows: which of a renderer's fds is which of the
// objects it handed over. Reading is for display only: nothing here drives a decision.
//
// Everything in /proc/PID of a renderer is the renderer's to shape (its command and thread names,
// how many threads and fds it has), so every list is bounded and every name is cut and made
// printable. A process may die between any two reads: what could not be read because it is gone
// marks it `gone`, never an error.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/unique_fd.h"

namespace sbx {

enum class ProcessRole { kBroker, kHolder, kZygote, kInit, kRenderer };
// "broker", "namespace-holder", "init", "renderer".
std::string_view ProcessRoleName(ProcessRole role);

// One object the broker gave a process, named by the broker's own descriptor for it: the other
// end of a pipe, the same memfd, the same queue. A process's fd is that object when both refer
// to the same file (device and inode).
struct KnownFd {
  int broker_fd = -1;
  std::string label;  // what it is, as the docs name it: "control pipe: commands from the broker"
};

// What to read: which process, in which role, and what it was given.
struct ProcessTarget {
  ProcessRole role = ProcessRole::kRenderer;
  pid_t pid = 0;
  int id = 0;  // the renderer's id (init and renderer), else 0
  std::vector<KnownFd> known;
  bool list_fds = true;  // false for the broker itself: its fds are counted, not listed
};

struct ProcessInfo {
  static constexpr size_t kMaxThreads = 64;
  static constexpr size_t kMaxFds = 256;
  static constexpr size_t kMaxName = 64;

  struct Thread {
    pid_t tid = 0;
    std::string name;  // task/TID/comm, printable
    char state = '?';
  };
  struct Namespace {
    std::string name;  // user, pid, net, ipc, mnt, uts, cgroup, time
    uint64_t inode = 0;
    bool shared = false;  // the broker's own
  };
  struct Fd {
    int fd = -1;
    std::string target;              // the link, as readlink shows it: "pipe:[1234]", "/dev/null"
    std::string label;               // what the broker gave, or "unknown"
    std::vector<std::string> seals;  // a memfd's seals (F_GET_SEALS on the broker's copy)
  };
  struct Rlimit {
    std::string name;  // as /proc/PID/limits spells it: "Max open files"
    std::string soft;
    std::string hard;
  };

  ProcessRole role = ProcessRole::kRenderer;
  int id = 0;
  bool spare = false;        // the spare renderer (or its init): started ahead of need, no id yet
  pid_t pid = 0;             // as the broker sees it
  std::vector<pid_t> nspid;  // NSpid: the broker's view first, the innermost namespace's last
  // It exited before or while it was read (a zombie, or reaped): what was read may be partial.
  bool gone = false;
  std::string name;  // the command name (comm), printable
  char state = '?';  // R, S, D, T, t, Z, ...
  pid_t ppid = 0;
  size_t thread_count = 0;  // all of them; `threads` holds the first kMaxThreads
  std::vector<Thread> threads;
  long uid_outside = -1;  // the real uid as the broker's user namespace sees it
  long uid_inside = -1;   // the same uid inside the process's own user namespace
  std::vector<Namespace> namespaces;
  size_t fd_count = 0;  // all of them; `fds` holds the first kMaxFds (none for the broker)
  std::vector<Fd> fds;
  int seccomp_mode = -1;  // 0 off, 1 strict, 2 filter
  int seccomp_filters = -1;
  std::vector<Rlimit> rlimits;
  uint64_t voluntary_switches = 0;
  uint64_t involuntary_switches = 0;
  uint64_t minor_faults = 0;
  uint64_t major_faults = 0;
  std::vector<std::string> unreadable;  // what the kernel refused to show, and why
  std::vector<ProcessInfo> children;
};

// Called before each read of /proc (with what is about to be read), so a test can make the
// process die at every step in turn.
using InspectStepHook = std::function<void(std::string_view step)>;

// Reads one process. Never fails: a pid that is gone gives `gone` and what was read before.
ProcessInfo InspectProcess(const ProcessTarget& target, const InspectStepHook& hook = {});

// Reading a process tree is some fifty system calls a process: at 500 renderers, a thousand
// processes and a third of a second. A plan lets that happen on another thread. It is made on
// the thread that owns the broker's descriptors and holds only copies: each known fd reduced to
// the identity of its object, and a duplicate of each process's pidfd, so that a pid reaped and
// reused while the reads run is shown `gone` with nothing of what was read, never as the new
// process (and a process whose pidfd could not be copied is not read at all).
struct InspectPlan {
  // A KnownFd reduced to what reading needs: the identity of the object and a memfd's seals.
  struct Object {
    std::string label;
    uint64_t dev = 0;
    uint64_t ino = 0;
    std::vector<std::string> seals;
  };
  ProcessTarget target;  // its `known` left empty: `objects` says the same
  std::vector<Object> objects;
  UniqueFd pidfd;           // a copy; invalid when the process has none (the broker itself)
  int unguarded_errno = 0;  // why the copy failed: the process is then not read at all
  bool spare = false;       // ProcessInfo::spare
  std::vector<InspectPlan> children;
};
// The process behind `pidfd` (a copy taken when its pid was read) has exited since (its pidfd is
// readable): whatever that pid shows now may be another process's. False for an invalid fd.
bool ExitedSince(const UniqueFd& pidfd);
// On the owner's thread: `pidfd` (borrowed, -1 for none) is duplicated.
InspectPlan PlanProcess(ProcessTarget target, int pidfd);
// On any thread: touches nothing but the plan.
ProcessInfo ReadPlan(const InspectPlan& plan, const InspectStepHook& hook = {});

// The broker's own descriptors for what one renderer process was given (-1: none), and its
// pids (0: none). Valid only while the broker holds them: read on the loop thread.
struct RendererEnds {
  int id = 0;
  pid_t pid = 0;
  pid_t init_pid = 0;  // sandboxed: pid 1 of its pid namespace
  int pidfd = -1;      // the renderer's and the init's, while unreaped
  int init_pidfd = -1;
  int dev_null = -1;  // its fd 0
  int log = -1;       // the read end of its fds 1 and 2
  int commands = -1;  // the write end of its fd 3
  int messages = -1;  // the read end of its fd 4
  int frames = -1;    // the memfd of its fd 5
  int queue = -1;     // the queue of its fd 6
};

// One renderer: its init with the renderer below it (pid 1 and 2 of their pid namespace), or the
// renderer alone when it has no init (no namespaces).
ProcessInfo InspectRenderer(const RendererEnds& ends, const InspectStepHook& hook = {});
InspectPlan PlanRenderer(const RendererEnds& ends);

// Its JSON, children included (docs/PROTOCOL.md, "The process view").
nlohmann::json ProcessInfoToJson(const ProcessInfo& p);

// The parsers, exposed for tests. The soft and hard values of every row of /proc/PID/limits.
std::vector<ProcessInfo::Rlimit> ParseLimits(std::string_view limits);
// The uid `outside` as the first line of a uid_map maps it inside, or -1 when it maps nowhere.
long MapUidInside(std::string_view uid_map, long outside);
// At most `max` bytes of `raw`, a trailing newline dropped, every byte that is not printable
// ASCII replaced by '?'.
std::string PrintableName(std::string_view raw, size_t max = ProcessInfo::kMaxName);

}  // namespace sbx
