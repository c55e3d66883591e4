#include "broker/delegated_scope.h"

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "broker/child_process.h"
#include "broker/renderer_log.h"
#include "ipc/posix.h"

extern char** environ;

namespace sbx {

namespace {

std::vector<char*> CArgv(std::vector<std::string>& words) {
  std::vector<char*> out;
  for (auto& w : words) out.push_back(w.data());
  out.push_back(nullptr);
  return out;
}

int RemainingMs(int64_t deadline_ns) {
  int64_t left = deadline_ns - MonotonicNs();
  return left <= 0 ? 0 : static_cast<int>((left + 999'999) / 1'000'000);
}

// systemd-run's stderr, read until it closes it or the deadline passes (false then), kept to
// its first bytes: a message such as "Failed to connect to bus: No such file or directory".
bool ReadUntilClosed(int fd, int64_t deadline_ns, std::string& text) {
  while (true) {
    auto ready = WaitReadable(fd, RemainingMs(deadline_ns));
    if (!ready || !*ready) return false;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    if (text.size() < 1024) text.append(buf, static_cast<size_t>(n));
  }
}

// Runs `systemd-run ... -- true` and returns why it failed, or nullopt when systemd granted
// the scope and ran the command in it.
std::optional<std::string> Probe() {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  UniqueFd rd(ends[0]), wr(ends[1]);
  posix_spawn_file_actions_t actions;
  if (int err = ::posix_spawn_file_actions_init(&actions); err != 0) {
    return std::string("posix_spawn: ") + std::strerror(err);
  }
  int rc = ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (rc == 0) {
    rc = ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  }
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions, wr.get(), STDERR_FILENO);
  std::vector<std::string> words = ScopeCommand("true", {});
  auto argv = CArgv(words);
  pid_t pid = -1;
  if (rc == 0) rc = ::posix_spawnp(&pid, "systemd-run", &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  if (rc == ENOENT) return std::string("systemd-run is not installed");
  if (rc != 0) return std::string("systemd-run: ") + std::strerror(rc);
  wr.reset();
  auto child = ChildProcess::Adopt(pid);
  if (!child) {
    ChildProcess::KillAndReapPid(pid);
    return "pidfd_open: " + child.error().ToString();
  }
  const int64_t deadline = MonotonicNs() + int64_t{kProbeTimeoutMs} * 1'000'000;
  std::string err;
  bool closed = ReadUntilClosed(rd.get(), deadline, err);
  auto exited = WaitReadable(child->pidfd(), RemainingMs(deadline));
  auto info = child->TryReap();
  if (!closed || !exited || !*exited || !info) {
    return "systemd-run --user gave no answer within " + std::to_string(kProbeTimeoutMs / 1000) +
           " s";
  }
  if (info->code == 0) return std::nullopt;
  std::string line = SanitizeLogLine(err.substr(0, err.find('\n')));
  if (line.empty()) line = "exited with status " + std::to_string(info->code);
  return "systemd-run --user: " + line;
}

}  // namespace

ScopeFacts GatherScopeFacts(bool cgroups_wanted) {
  ScopeFacts f;
  f.root = ::geteuid() == 0;
  f.reentered = std::getenv(kDelegatedScopeEnv) != nullptr;
  f.cgroups_wanted = cgroups_wanted;
  if (!f.root && !f.reentered && cgroups_wanted) f.own = ProbeOwnCgroupV2();
  return f;
}

std::optional<std::string> WhyNoScopeNeeded(const ScopeFacts& f) {
  if (!f.cgroups_wanted) return "no cgroups wanted (--no-cgroup)";
  if (f.root) return "run as root: the broker's own cgroup serves";
  if (f.reentered) return "already in a scope of its own";
  if (f.own.dir.empty()) return "no cgroup v2 hierarchy";
  if (!f.own.controllers) return "cgroup v2 offers no memory, pids and cpu controllers here";
  if (f.own.usable) return "the broker's own cgroup serves";
  return std::nullopt;
}

std::vector<std::string> ScopeCommand(const std::string& program,
                                      std::span<const std::string> args) {
  std::vector<std::string> cmd = {"systemd-run",  "--user",  "--scope", "-p",
                                  "Delegate=yes", "--quiet", "--",      program};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return cmd;
}

std::string ReenterThroughSystemd(const std::string& program, std::span<const std::string> args) {
  if (auto why = Probe()) return *why;
  std::vector<std::string> words = ScopeCommand(program, args);
  auto argv = CArgv(words);
  if (::setenv(kDelegatedScopeEnv, "1", 1) != 0) {
    return std::string("setenv: ") + std::strerror(errno);
  }
  ::execvp("systemd-run", argv.data());
  int err = errno;
  ::unsetenv(kDelegatedScopeEnv);
  return std::string("systemd-run: ") + std::strerror(err);
}

std::string MaybeReenterDelegatedScope(int argc, char** argv, bool cgroups_wanted) {
  if (WhyNoScopeNeeded(GatherScopeFacts(cgroups_wanted))) return "";
  auto self = SelfExePath();
  if (!self) return "no cgroup scope from systemd: " + self.error().ToString();
  std::vector<std::string> args(argv + 1, argv + argc);
  return "no cgroup scope of its own from systemd (" + ReenterThroughSystemd(*self, args) + ")";
}

}  // namespace sbx
