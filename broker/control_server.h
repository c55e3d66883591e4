// The control interface for people and scripts: a Unix stream socket speaking one command per
// line, one JSON object per reply line (drive it with `socat - UNIX-CONNECT:PATH` or sbx-ctl).
// Only the broker's own uid may connect (SO_PEERCRED). Clients are untrusted: a malformed
// command gets {"error": ...} and the connection stays usable. A client is served a few commands
// per wakeup, and not at all while it leaves its earlier replies unread, so none can stall the
// event loop; one that leaves more than a bound of output unread when the next reply is ready is
// disconnected (one reply may be larger: `inspect` at 500 renderers is two megabytes), and when
// every slot is taken the client idle longest makes room for a new one. Replies keep the order
// of the commands, even for a `ping` that waits for its renderer or an `inspect` being read.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "broker/broker.h"
#include "broker/event_loop.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

// $XDG_RUNTIME_DIR/sbx/control, else /tmp/sbx-<uid>/control. Creates the directory 0700 and
// refuses one that is not ours or is open to others.
Result<std::string> DefaultControlPath();

// The reply to `help`: {"commands": [...]}, one usage line per command. sbx-ctl prints the same
// object without asking a broker, so `sbx-ctl help` works before one is started.
nlohmann::json HelpJson();

// What a `trace` client asked to see.
struct TraceFilter {
  int id = 0;             // 0: every renderer
  std::string mechanism;  // empty: every mechanism (else a name IsMechanismFilter accepts)
};
// `trace [ID] [MECHANISM]` parsed and checked (the renderer must exist), or the error to reply.
Result<TraceFilter> ParseTrace(const Broker& broker, std::string_view line);

// Runs one command line against the broker; `reply` is called exactly once with the reply, one
// line of JSON without its newline, now or later (ping, and `list` and `inspect` without an id,
// read on the broker's worker thread), unless the broker is destroyed first.
// `trace` streams, so only a ControlServer connection can run it.
void ExecuteCommand(Broker& broker, std::string_view line, std::function<void(std::string)> reply);

// A `trace` client gets one JSON line per message after its {"ok": true, "trace": ...} reply,
// until it disconnects; it can still send commands. Trace lines never wait in more than
// kMaxTraceBacklog bytes of its unread output: beyond that they are dropped, and the next line
// that fits is preceded by {"dropped": N}, so a slow tracer costs the broker nothing and is not
// disconnected.
class ControlServer : private BrokerObserver {
 public:
  static constexpr size_t kMaxLine = 4096;
  static constexpr size_t kMaxClients = 64;
  static constexpr size_t kMaxPendingOutput = 1 << 20;
  // Commands served per client per wakeup, and commands awaiting their reply (pings) per client.
  static constexpr size_t kLinesPerWakeup = 16;
  static constexpr size_t kMaxPendingReplies = 256;
  static constexpr size_t kMaxTraceBacklog = 64 * 1024;

  // Binds the socket (replacing a stale one; refusing one a live broker listens on).
  static Result<std::unique_ptr<ControlServer>> Create(Broker& broker, std::string path);
  // Public only in form: the key is private, so Create() is the one way in.
  struct Key {
   private:
    friend class ControlServer;
    Key() = default;
  };
  ControlServer(Key, Broker& broker, std::string path, UniqueFd listener);
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  // Closes every client and unlinks the socket.
  ~ControlServer() override;

  const std::string& path() const { return path_; }
  // Serves a connection accepted and authorised elsewhere (the TCP listener) exactly like one
  // from the Unix socket; `greeting`, if any, is the first line the client reads.
  void Adopt(UniqueFd fd, std::string_view greeting);
  size_t client_count() const { return clients_.size(); }

 private:
  struct Client {
    UniqueFd fd;
    EventLoop::Token watch = 0;
    std::string in;  // received, not yet served; read into only when no whole line waits in it
    bool discarding = false;     // inside an over-long line, dropping bytes up to its newline
    bool read_closed = false;    // the client shut down its sending side; finish replies, then drop
    int64_t last_active_ns = 0;  // its last command or reply, to find the one idle longest
    // Replies in command order; nullopt while a command (ping) is still pending. Serial numbers
    // let a late reply find its slot after earlier ones were flushed.
    std::deque<std::optional<std::string>> replies;
    size_t first_serial = 0;
    size_t next_serial = 0;
    std::string out;
    size_t slow_pending = 0;  // replies read on the broker's worker, not yet filled
    std::optional<TraceFilter> trace;
    uint64_t trace_dropped = 0;  // lines dropped since the last {"dropped": N}
  };

  void OnAccept();
  void OnClient(uint64_t id, uint32_t events);
  void ServeLines(uint64_t id);
  static bool HasWaitingLine(const Client& c);
  void UpdateInterest(Client& c);
  void EvictIdlest();
  void HandleLine(uint64_t id, std::string_view line);
  void Fill(uint64_t id, size_t serial, std::string reply);
  bool StartTrace(uint64_t id, size_t serial, std::string_view line);
  void OnIpc(int renderer, const IpcRecord& record) override;
  void AppendTraceLine(Client& c, const std::string& line);
  void FlushClient(uint64_t id);
  void Drop(uint64_t id);

  Broker& broker_;
  std::string path_;
  UniqueFd listener_;
  EventLoop::Token listen_watch_ = 0;
  uint64_t next_client_ = 1;
  std::map<uint64_t, Client> clients_;
  size_t tracers_ = 0;  // clients with a trace: the server observes IPC while there are any
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sbx
