#include "broker/proc_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <memory>
#include <string>

#include "ipc/posix.h"

namespace sbx {

namespace {

// smaps_rollup is about 1 KiB and stat a few hundred bytes; a bounded read keeps a hostile
// process name from making us allocate.
constexpr size_t kMaxProcFile = 8192;
constexpr size_t kMaxThreadsSampled = 64;

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// The n-th (0-based) space-separated word of s.
std::optional<std::string_view> Word(std::string_view s, int n) {
  size_t i = 0;
  for (int k = 0;; ++k) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) return std::nullopt;
    size_t end = s.find_first_of(" \n", i);
    if (end == std::string_view::npos) end = s.size();
    if (k == n) return s.substr(i, end - i);
    i = end;
  }
}

}  // namespace

std::optional<std::string_view> ProcStatField(std::string_view stat, int n) {
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos || n < 3) return std::nullopt;
  // After "pid (comm)" come: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime(14) stime(15); word 0 of the rest is field 3.
  return Word(stat.substr(close + 1), n - 3);
}

std::string_view ProcStatusField(std::string_view status, std::string_view key) {
  size_t at = 0;
  while ((at = status.find(key, at)) != std::string_view::npos) {
    if ((at == 0 || status[at - 1] == '\n') && status.substr(at + key.size(), 1) == ":") {
      std::string_view rest = status.substr(at + key.size() + 1);
      while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
      return rest.substr(0, rest.find('\n'));
    }
    at += key.size();
  }
  return {};
}

std::optional<uint64_t> ParseStatCpuTicks(std::string_view stat) {
  auto utime = ProcStatField(stat, 14);
  auto stime = ProcStatField(stat, 15);
  if (!utime || !stime) return std::nullopt;
  auto u = ParseU64(*utime);
  auto s = ParseU64(*stime);
  if (!u || !s) return std::nullopt;
  return *u + *s;
}

std::optional<uint64_t> ParseStatmResidentPages(std::string_view statm) {
  auto w = Word(statm, 1);
  return w ? ParseU64(*w) : std::nullopt;
}

std::optional<uint64_t> ParseSmapsRollupPssKb(std::string_view text) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    if (line.starts_with("Pss:")) {
      line.remove_prefix(4);
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      size_t digits = line.find(' ');
      return ParseU64(line.substr(0, digits));
    }
    at = end + 1;
  }
  return std::nullopt;
}

std::optional<std::pair<uint64_t, uint64_t>> ParseSchedstat(std::string_view text) {
  auto run = Word(text, 0);
  auto wait = Word(text, 1);
  if (!run || !wait) return std::nullopt;
  auto r = ParseU64(*run);
  auto w = ParseU64(*wait);
  if (!r || !w) return std::nullopt;
  return std::pair{*r, *w};
}

std::optional<char> ParseStatState(std::string_view stat) {
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  auto state = Word(stat.substr(close + 1), 0);
  if (!state || state->size() != 1) return std::nullopt;
  return state->front();
}

Result<std::vector<pid_t>> ThreadIds(pid_t pid, size_t max) {
  if (pid <= 0) return MakeError(Errc::kInvalidArgument, "no process");
  std::string task = "/proc/" + std::to_string(pid) + "/task";
  // glibc opens it close-on-exec.
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(task.c_str()), ::closedir);
  if (!dir) return SysError("opendir " + task);
  std::vector<pid_t> out;
  while (out.size() < max) {
    dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) break;
    int tid = 0;
    std::string_view name = entry->d_name;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), tid);
    if (ec == std::errc() && p == name.data() + name.size() && tid > 0) out.push_back(tid);
  }
  if (out.empty()) return MakeError(Errc::kNotFound, "no thread in " + task);
  return out;
}

Result<SchedSample> ReadSchedSample(pid_t pid) {
  // A renderer has two threads and at most pids.max; the bound keeps a thread bomb cheap.
  auto tids = ThreadIds(pid, kMaxThreadsSampled);
  if (!tids) return std::unexpected(tids.error());
  SchedSample out;
  int threads = 0;
  for (pid_t tid : *tids) {
    std::string base = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/";
    // A thread that ended between the listing and the read is no longer part of the process.
    auto sched = ReadSmallFile(base + "schedstat", kMaxProcFile);
    auto stat = ReadSmallFile(base + "stat", kMaxProcFile);
    if (!sched || !stat) continue;
    auto times = ParseSchedstat(*sched);
    auto state = ParseStatState(*stat);
    if (!times || !state) return MakeError(Errc::kProtocol, "unreadable " + base + "schedstat");
    out.run_ns += times->first;
    out.wait_ns += times->second;
    out.runnable |= *state == 'R';
    out.stopped |= *state == 'T' || *state == 't';
    ++threads;
  }
  if (threads == 0) return MakeError(Errc::kNotFound, "no thread of " + std::to_string(pid));
  return out;
}

Result<ProcStats> ReadProcStats(pid_t pid) {
  if (pid <= 0) return MakeError(Errc::kInvalidArgument, "no process");
  std::string dir = "/proc/" + std::to_string(pid) + "/";
  static const long kTicksPerSecond = ::sysconf(_SC_CLK_TCK);
  static const long kPageSize = ::sysconf(_SC_PAGESIZE);

  ProcStats out;
  auto stat = ReadSmallFile(dir + "stat", kMaxProcFile);
  if (!stat) return std::unexpected(stat.error());
  auto ticks = ParseStatCpuTicks(*stat);
  if (!ticks) return MakeError(Errc::kProtocol, "unreadable " + dir + "stat");
  out.cpu_ns = *ticks * (1'000'000'000 / static_cast<uint64_t>(kTicksPerSecond));

  auto statm = ReadSmallFile(dir + "statm", kMaxProcFile);
  if (!statm) return std::unexpected(statm.error());
  auto pages = ParseStatmResidentPages(*statm);
  if (!pages) return MakeError(Errc::kProtocol, "unreadable " + dir + "statm");
  out.rss_bytes = *pages * static_cast<uint64_t>(kPageSize);

  if (auto rollup = ReadSmallFile(dir + "smaps_rollup", kMaxProcFile)) {
    if (auto kb = ParseSmapsRollupPssKb(*rollup)) out.pss_bytes = *kb * 1024;
  }
  return out;
}

}  // namespace sbx
