// The broker's own stdout (`sbx-broker --json` and its text form, `sbx --json`), written from the
// event loop without ever blocking it. Lines wait in a bounded buffer while the reader is slow;
// a line that does not fit is dropped whole and counted (the stream only ever holds whole
// lines, one event each), and stderr says, one line each time, when dropping starts and how many
// events were dropped once the reader has caught up.
//
// How the descriptor is written without blocking depends on what it is (see Create in the .cc
// file for why): a pipe, FIFO or terminal is opened again through /proc/self/fd, which gives
// the broker a file description of its own to set O_NONBLOCK on (setting it on the inherited
// one would change it for the shell and every other process sharing it); a socket is written
// with MSG_DONTWAIT; a regular file (or /dev/null) never waits for a reader and is written
// directly.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "broker/event_loop.h"
#include "ipc/error.h"
#include "ipc/unique_fd.h"

namespace sbx {

// SIGPIPE must be ignored (Broker::Create does), so that a reader that went away is an error.
class OutputSink {
 public:
  static constexpr size_t kDefaultCapacity = 1024 * 1024;
  enum class Mode {
    kNonBlocking,  // a private, non-blocking description of the same pipe or terminal
    kSocket,       // send(MSG_DONTWAIT)
    kDirect,       // a regular file or /dev/null: a write never waits for a reader
    kBlocking,     // could not be made non-blocking (no /proc): written as is, and said so
  };

  // `fd` is left open and unchanged. `program` prefixes what goes to `report_fd` (stderr).
  static Result<std::unique_ptr<OutputSink>> Create(EventLoop& loop, int fd, std::string program,
                                                    int report_fd = STDERR_FILENO,
                                                    size_t capacity = kDefaultCapacity);
  OutputSink(EventLoop& loop, int fd, UniqueFd own, Mode mode, std::string program, int report_fd,
             size_t capacity);
  OutputSink(const OutputSink&) = delete;
  OutputSink& operator=(const OutputSink&) = delete;
  // One last write that does not wait; what is still queued counts as dropped, and is told.
  ~OutputSink();

  // Queues `line` and a newline; false, and counted, when the line does not fit.
  bool WriteLine(std::string_view line);
  // Writes what is queued, waiting at most timeout_ms for the reader: for the end of a program,
  // once its event loop no longer runs.
  void Drain(int timeout_ms);

  Mode mode() const { return mode_; }
  size_t queued() const { return buffer_.size(); }
  uint64_t dropped() const { return dropped_total_; }

 private:
  void Flush();
  void UpdateWatch();
  void Report(const std::string& what) const;
  void Broken(const Error& e);

  EventLoop& loop_;
  int fd_;        // what is written: own_ if there is one, else the caller's fd
  UniqueFd own_;  // the private description (kNonBlocking)
  Mode mode_;
  std::string program_;
  int report_fd_;
  size_t capacity_;
  std::string buffer_;
  EventLoop::Token watch_ = 0;
  bool broken_ = false;           // the reader is gone: every later line is dropped
  uint64_t dropped_episode_ = 0;  // dropped since the buffer was last empty
  uint64_t dropped_total_ = 0;
};

}  // namespace sbx
