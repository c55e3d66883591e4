// The zygote, as Chrome's: one small process, exec'd once beside the broker, that makes every
// sandboxed launch for it (docs/ARCHITECTURE.md "The zygote", docs/SANDBOX.md).
//
// Why: a launch starts with a fork of whoever launches. Forked from the broker, every launch
// copies the broker's page tables and, while the short-lived child runs, turns the broker's own
// memory writes into copy-on-write faults; in the window, with hundreds of frame buffers mapped
// and Qt's heap, that was most of what the GUI thread did while renderers started. The zygote is
// a few megabytes: its forks are cheap and touch nothing of the broker's.
//
// What it is: `sbx-zygote`, started by the broker with a socket (fd 3) and the namespace holder's
// pidfd (fd 4). It joins the holder's user, network and mount namespaces as their root (as each
// launch's joiner otherwise does), enters the empty root, makes itself undumpable, says it is
// ready and serves launch requests one at a time. Every process it makes is cloned with
// CLONE_PARENT: the joiner, the namespace's init and the renderer are the broker's children, so
// the broker signals and reaps them through pidfds exactly as when it launches them itself. The
// zygote answers each request with those pidfds (SCM_RIGHTS); the recipe between clone and exec
// is the launcher's own (launcher.h), so a renderer from the zygote has every layer, in the same
// order, that a renderer launched by the broker has.
//
// It trusts nobody but the broker: only the broker holds its socket. Requests and answers are
// validated all the same: a malformed one is an error.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "broker/child_process.h"
#include "broker/launcher.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

namespace zygote {

inline constexpr int kSocketFd = 3;  // in the zygote: its end of the broker's socket
inline constexpr int kHolderFd = 4;  // in the zygote, until it has joined: the holder's pidfd
inline constexpr size_t kMaxMessage = 256 * 1024;
inline constexpr size_t kMaxFds = 32;  // per message; a launch passes about ten

// A launch request: the spec, with every fd it names (LaunchSpec::fds sources, stdio,
// cgroup_procs, the program to exec) replaced by an index into the message's fds. Encoding
// appends those fds to `fds` in index order.
std::vector<uint8_t> EncodeRequest(const LaunchSpec& spec, std::vector<int>& fds);
// The spec back, its fds taken from `fds` (the message's, in order). Validates everything: a
// malformed request is kInvalidArgument. The result names the zygote's namespaces as joined
// (NamespaceSpec::holder_pidfd -1) and its root as "/" (the zygote is already in the empty root).
Result<LaunchSpec> DecodeRequest(std::span<const uint8_t> bytes, std::span<const int> fds);

// The zygote's answer to a request is one message per process the launch makes, sent the moment
// the process exists (its role and pid, its pidfd beside it), then the reply. So the broker owns
// every process of a launch however the launch, or the zygote, ends.
struct Child {
  LaunchRole role = LaunchRole::kJoiner;
  pid_t pid = 0;
};
std::vector<uint8_t> EncodeChild(const Child& child);

// The last message: the launch's outcome, and the queue's read end beside it when made.
struct Reply {
  bool ok = false;
  Error error;          // when !ok
  int queue_errno = 0;  // LaunchedChild::queue_errno
  bool has_queue = false;
};
std::vector<uint8_t> EncodeReply(const Reply& reply);

// Either message. `nfds`: how many fds came with it; they must add up with what it says (a child
// comes with its pidfd or, if the zygote could open none, with no fd).
struct Answer {
  std::optional<Child> child;  // set: a child message; else a reply
  Reply reply;
};
Result<Answer> DecodeAnswer(std::span<const uint8_t> bytes, size_t nfds);

// The zygote's side: joins the holder's namespaces, enters `empty_root`, reports ready on the
// socket and serves until the broker closes it. Returns the exit status for main.
int Serve(const std::string& empty_root);

}  // namespace zygote

class Zygote {
 public:
  // A launch's outcome, given once; see Submit.
  using LaunchDone = std::move_only_function<void(Result<LaunchedChild>)>;
  using ReapLater = std::function<void(ChildProcess)>;

  // Starts `path` in the holder's namespaces and waits (bounded) until it is ready. `dev_null`
  // becomes its stdin and stdout; its stderr stays the broker's, for the one line it prints if
  // it cannot start.
  static Result<Zygote> Start(const std::string& path, const NamespaceHolder& holder, int dev_null);
  Zygote(Zygote&&) noexcept = default;
  Zygote& operator=(Zygote&&) noexcept = default;
  // Closing the socket ends it; ChildProcess kills and reaps it, and every process of a launch
  // still in flight. No LaunchDone is called.
  ~Zygote() = default;

  // Where the processes of a launch that failed or was cancelled go, SIGKILLed, to be reaped off
  // the caller's path. Unset, they are killed and reaped at once (bounded).
  void SetReapLater(ReapLater reap_later) { reap_later_ = std::move(reap_later); }

  // The launch sbx::Launch(spec) would make, made by the zygote: the same processes, our
  // children, reaped through the pidfds returned. `spec` must be a namespaced, confined launch
  // (the zygote sees no file system: it execs by fd). Sends the request and returns at once with
  // a ticket (never 0): the zygote's answer is read by Receive(), which calls `done` with the
  // launch, once. The spec's fds may close as soon as this returns. On any failure every process
  // the launch made has been SIGKILLed and given to reap_later. An error from here or in `done`
  // with Errc::kPeerClosed or kTimeout means the zygote itself failed: it is then unusable
  // (ok() is false) and every launch in flight fails with it.
  Result<uint64_t> Submit(const LaunchSpec& spec, LaunchDone done);
  // `done` of that launch is never called; once the zygote has answered, every process it made is
  // killed and given to reap_later.
  void Cancel(uint64_t ticket);
  // Reads what waits on the socket without blocking. Calls at most one LaunchDone, or every one
  // when the zygote has failed, as its last act: a `done` may destroy this Zygote.
  void Receive();
  // Ends the zygote and fails every launch in flight with `why` (as kPeerClosed, or kTimeout);
  // calls their `done` last, so one may destroy this Zygote.
  void Fail(Error why);
  // Fails the zygote (kTimeout) if the launch it is working on has waited past deadline_ns().
  void Expire(int64_t now_ns);
  // When the next message of the launch in progress is due; 0 with nothing in flight.
  int64_t deadline_ns() const;
  size_t in_flight() const { return in_flight_.size(); }
  // Submit, then wait (bounded) for the answer: for callers with no event loop.
  Result<LaunchedChild> Launch(const LaunchSpec& spec, const ReapLater& reap_later);

  bool ok() const { return socket_.valid(); }
  int socket() const { return socket_.get(); }
  pid_t pid() const { return process_.pid(); }
  int pidfd() const { return process_.pidfd(); }
  uint64_t launches() const { return launches_; }

  // Whether the zygote can make this launch (namespaced, confined, exec by fd).
  static bool CanLaunch(const LaunchSpec& spec);

 private:
  // One request sent and not yet answered in full. The zygote serves requests in order, so the
  // front one is the one its messages are about.
  struct InFlight {
    uint64_t ticket = 0;
    LaunchDone done;           // empty once cancelled
    ChildProcess children[3];  // by LaunchRole, each owned the moment it is announced
  };

  Zygote(ChildProcess process, UniqueFd socket)
      : process_(std::move(process)), socket_(std::move(socket)) {}
  // A launch the zygote has answered, taken off in_flight_.
  struct Finished {
    InFlight launch;
    zygote::Reply reply;
    UniqueFd queue;  // with a reply that has one
  };

  // One message off the socket, without waiting, applied to the launch in progress: the launch
  // it finished, if it was the reply. kTimeout: nothing waits; any other error: the zygote is
  // gone or broke the protocol.
  Result<std::optional<Finished>> ReadOne();
  // Kills what the launch made and hands it to reap_later.
  void Abandon(InFlight& launch);
  ChildProcess process_;
  UniqueFd socket_;
  uint64_t launches_ = 0;
  uint64_t next_ticket_ = 1;
  std::deque<InFlight> in_flight_;
  int64_t progress_ns_ = 0;  // when the front launch last heard from the zygote (or was sent)
  ReapLater reap_later_;
};

}  // namespace sbx
