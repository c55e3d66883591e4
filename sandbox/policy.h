// The renderer's seccomp-bpf policy (built with libseccomp) as one table of data. The filter,
// the escape drill, docs/SANDBOX.md and the tests all read this table, argument conditions
// included, so none of them can drift from what the kernel enforces.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ipc/error.h"

namespace sbx::sandbox {

enum class Outcome {
  kAllow,  // the call goes through
  kErrno,  // fails with `err`: calls a well-meaning library may try, which should degrade
  kKill,   // the whole process dies of SIGSYS: calls only an exploit (or a broken renderer) makes
};

// One comparison of a syscall argument, as libseccomp's scmp_arg_cmp makes it.
enum class Cmp {
  kEq,        // arg == value
  kNe,        // arg != value
  kGt,        // arg > value
  kLe,        // arg <= value
  kMaskedEq,  // (arg & mask) == value
};

// Stands for the renderer's own pid (getpid() inside its pid namespace), known only at install.
inline constexpr uint64_t kSelfPid = ~uint64_t{0};

struct ArgCheck {
  unsigned arg = 0;  // 0..5
  Cmp op = Cmp::kEq;
  uint64_t value = 0;  // or kSelfPid
  uint64_t mask = 0;   // kMaskedEq only
};

// A set of arguments (every check holds) and what the policy does with them. A rule's cases
// never overlap; arguments that match none of them are killed.
struct ArgCase {
  Outcome outcome = Outcome::kKill;
  int err = 0;  // for kErrno
  std::array<ArgCheck, 2> checks{};
  size_t count = 0;  // checks in use, 1..2
};

struct SyscallRule {
  std::string_view name;
  // With no cases: the outcome for every call. With cases: the most permissive of them (what
  // the table's "outcome" column shows).
  Outcome outcome;
  int err;                         // for kErrno
  std::span<const ArgCase> cases;  // empty: unconditional
  std::string_view args;           // the argument conditions, for people (docs/SANDBOX.md)
  std::string_view why;
};

// Every rule the policy installs, in the order docs/SANDBOX.md lists them. A syscall not listed
// is killed (SIGSYS), as is any syscall of another architecture (an x86-64 renderer making a
// 32-bit `int $0x80` call); the broker classifies both as `sandbox-violation`.
std::span<const SyscallRule> PolicyTable();
const SyscallRule* FindRule(std::string_view name);

// What the installed filter does with `name` called with `args`, read from the table (a syscall
// not in it is killed). `self_pid` stands in for kSelfPid.
struct Verdict {
  Outcome outcome;
  int err;
};
Verdict Judge(std::string_view name, std::span<const uint64_t, 6> args, int self_pid);

// True if the case's checks all hold for `args`.
bool Matches(const ArgCase& c, std::span<const uint64_t, 6> args, int self_pid);

// Installs the policy on the calling process (every thread: TSYNC), after PR_SET_NO_NEW_PRIVS.
// `self_pid` is getpid() as the caller sees it: signals may go to that pid only. Irreversible.
// Compiles it with libseccomp on every call (~0.6 ms); a renderer at pid kRendererPidInside loads
// the program prepared at build time instead (prepared_policy.h).
Result<void> InstallSeccompPolicy(int self_pid);

// The same policy compiled to BPF, instruction for instruction what InstallSeccompPolicy loads.
Result<std::vector<sock_filter>> PolicyProgram(int self_pid);

// Loads a program from PolicyProgram() on the calling process as InstallSeccompPolicy does: after
// PR_SET_NO_NEW_PRIVS, on every thread (TSYNC). Irreversible. A filter only ever adds to those
// already loaded: every one of them runs on every syscall and the strictest verdict wins.
Result<void> LoadPolicyProgram(std::span<const sock_filter> program);

// The descriptor number the launcher execs a renderer from. It is above the renderer's
// open-file limit (16, Limits()), so once the exec has closed it (close-on-exec) the renderer can
// never hold a descriptor of that number again: dup2 and every open fail above the limit, and
// the limit cannot be raised without CAP_SYS_RESOURCE.
inline constexpr int kLauncherExecFd = 64;

// The renderer's pid inside its own pid namespace (the namespace's init is 1). The launcher's
// filter is compiled before any renderer exists, so this is the pid it lets signals go to.
inline constexpr int kRendererPidInside = 2;

// What the launcher's filter allows beyond PolicyTable(), or more widely: what a renderer does
// between the launcher's exec and its own filter (static glibc's start-up, the sandbox's own
// calls, each of which can only take something away), and the one exec itself. A rule here
// replaces the table's rule of the same name in the launcher's filter.
std::span<const SyscallRule> StartupTable();

// The launcher's filter (docs/SANDBOX.md, "The launcher's filter"), compiled to BPF before any
// launch so that the launcher's child only has to load it: an allowlist, PolicyTable() with
// StartupTable() over it. It allows exactly one exec, execveat(kLauncherExecFd, "", ...,
// AT_EMPTY_PATH); anything in neither table, and a foreign architecture, kills the process. A
// renderer that never installs its own policy is held by this one.
Result<std::vector<sock_filter>> LauncherFilterProgram();

// What the launcher's filter does with `name` called with `args`, read from the two tables.
Verdict JudgeAtLaunch(std::string_view name, std::span<const uint64_t, 6> args);

}  // namespace sbx::sandbox
