// Runs a real sbx-broker (--json, a unique control socket) and reads its events with deadlines.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/process_inspector.h"
#include "ipc/unique_fd.h"

namespace sbx {
class Broker;
}

namespace sbx::testing {

std::string BinPath(const std::string& name);
// A name no other test (or ctest -j process) uses.
std::string UniqueName(const std::string& stem);

// For a broker run in-process: dispatches its loop until done() or the deadline; false on the
// deadline or a loop error.
bool RunUntil(Broker& b, const std::function<bool()>& done, std::chrono::milliseconds timeout);
// Dispatches the broker's loop, appending what arrives on the socket `fd` to `got`, until
// `lines` whole lines are there; false if the peer closes first or the deadline passes.
bool ReceiveLines(Broker& b, int fd, size_t lines, std::string& got,
                  std::chrono::milliseconds timeout);

// The broker's fds 0 and 2, when a test gives it others than its own (-1: the test's).
struct BrokerStdio {
  int stdin_fd = -1;
  int stderr_fd = -1;
};

class BrokerProcess {
 public:
  // Starts sbx-broker with args plus --json and --control.
  explicit BrokerProcess(std::vector<std::string> args, BrokerStdio stdio = {});
  ~BrokerProcess();  // SIGKILLs and reaps it if still running

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& control_path() const { return control_; }

  // The earliest not yet consumed event matching pred, waiting up to timeout for it. Only the
  // match is consumed, so waits for several renderers may come in any order.
  std::optional<nlohmann::json> WaitFor(const std::function<bool(const nlohmann::json&)>& pred,
                                        std::chrono::milliseconds timeout);
  std::optional<nlohmann::json> WaitForEvent(const std::string& event, int id,
                                             std::chrono::milliseconds timeout);
  const std::vector<nlohmann::json>& history() const { return history_; }

  // One command over a fresh connection; the reply, or a {"harness_error":...} object.
  nlohmann::json Ctl(const std::string& line);

  // Sends sig and waits (with a deadline) for the broker to exit; returns its wait status info.
  std::optional<siginfo_t> SignalAndWait(int sig, std::chrono::milliseconds timeout);
  // The two halves of SignalAndWait, for a test that reads the events of a shutdown as they come.
  bool Signal(int sig);
  std::optional<siginfo_t> WaitExit(std::chrono::milliseconds timeout);

 private:
  bool ReadMore(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd out_;
  std::string control_;
  std::string buffer_;
  std::vector<nlohmann::json> pending_;
  std::vector<nlohmann::json> history_;
  bool reaped_ = false;
};

// `stats`' object `key` ("spare", "zygote"), or an empty object.
nlohmann::json StatsObject(BrokerProcess& b, const std::string& key);
// The `pid` of `stats`' object `key` once it is set and not `not_pid` (a replacement): 0 if none
// shows within timeout. There is no event for either process (neither belongs to a slot), so
// each look is a `stats` round trip.
int WaitForStatsPid(BrokerProcess& b, const std::string& key, int not_pid,
                    std::chrono::milliseconds timeout);

// Connection that stays open across commands (to prove a bad command leaves it usable).
class ControlConnection {
 public:
  explicit ControlConnection(const std::string& path);
  bool connected() const { return fd_.valid(); }
  bool SendRaw(const std::string& bytes);
  std::optional<nlohmann::json> ReadReply(std::chrono::milliseconds timeout);
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string buffer_;
};

// What the fds in /proc/PID/fd point at ("pipe:[123]", "anon_inode:[pidfd]", ...), leaving out
// sockets: control clients come and go on their own schedule.
std::vector<std::string> RendererSideFds(pid_t pid);
// The /dev/mqueue entries created by the broker with this pid ("sbx-PID-*").
std::vector<std::string> QueueEntries(pid_t broker_pid);
// The /dev/shm entries whose names start with prefix. The broker shares frames through memfds,
// which have no name there, so nothing of its own should ever show up.
std::vector<std::string> ShmEntries(std::string_view prefix);
// Waits until the process is gone (pidfd readable or ESRCH) within timeout.
bool WaitProcessGone(pid_t pid, std::chrono::milliseconds timeout);
// Every child `pid` has now (zombies included), from each of its threads' lists.
std::vector<pid_t> ChildrenOf(pid_t pid);
bool ProcessAlive(pid_t pid);
// The value of `key` in /proc/PID/status ("CapEff", "Seccomp", ...), leading blanks trimmed; ""
// if the process or the key is not there.
std::string StatusField(pid_t pid, const std::string& key);
// The soft and hard values /proc/PID/limits shows for the limit it names `name` ("Max open
// files"), read with the process view's parser; nullopt if the process or the row is not there.
std::optional<ProcessInfo::Rlimit> ProcLimit(pid_t pid, std::string_view name);
// Waits until every thread of the process is stopped (state T in /proc/PID/task/*/stat), within
// timeout. kill(SIGSTOP) returns before a thread running on another CPU has stopped, so a test
// that needs the process frozen waits for it. The kernel sends no event for this: it polls.
bool WaitProcessStopped(pid_t pid, std::chrono::milliseconds timeout);
// The nice value of each thread of the process (/proc/PID/task/*/stat, field 19); empty if it
// is gone.
std::vector<int> ThreadNices(pid_t pid);

}  // namespace sbx::testing
