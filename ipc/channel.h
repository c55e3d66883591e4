// A framed message channel over a pair of non-blocking pipes, one per direction. Sends are
// queued in a bounded outbound buffer and flushed as the pipe accepts them, so a peer that stops
// reading can never block the sender; it only fills the buffer, which Send then reports.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "ipc/codec.h"
#include "ipc/error.h"
#include "ipc/protocol.h"
#include "ipc/unique_fd.h"

namespace sbx {

class Channel {
 public:
  static constexpr size_t kDefaultMaxOutbound = 256 * 1024;
  // Receive reads at most this much per read(); a max_bytes of this makes it one read, which is
  // what a reader that blocks in read() needs.
  static constexpr size_t kReadChunk = 16 * 1024;

  // `in` is read, `out` written; both are made non-blocking.
  static Result<Channel> Create(UniqueFd in, UniqueFd out, protocol::Direction incoming,
                                size_t max_outbound = kDefaultMaxOutbound);

  Channel(Channel&&) = default;
  Channel& operator=(Channel&&) = default;

  int in_fd() const { return in_.get(); }
  int out_fd() const { return out_.get(); }

  // Queues one message and writes as much as the pipe takes now. kOverflow when the queue would
  // exceed its bound (nothing is queued then); kPeerClosed when the reader is gone.
  Result<void> Send(protocol::MsgType type, std::span<const uint8_t> payload = {});
  // Writes queued bytes until the pipe is full or the queue empty.
  Result<void> Flush();
  bool HasPendingOutput() const { return out_start_ < out_buf_.size(); }
  size_t pending_output() const { return out_buf_.size() - out_start_; }
  // Bytes received that do not make a whole message yet.
  size_t buffered_input() const { return decoder_.buffered(); }

  // Reads at most max_bytes that are available now and appends every complete message to out.
  // Returns false once the peer has closed its end (after the messages before EOF are
  // delivered); kProtocol/kOverflow errors mean the peer broke the protocol.
  Result<bool> Receive(std::vector<Message>& out, size_t max_bytes = 64 * 1024);

 private:
  Channel(UniqueFd in, UniqueFd out, protocol::Direction incoming, size_t max_outbound)
      : in_(std::move(in)), out_(std::move(out)), decoder_(incoming), max_outbound_(max_outbound) {}

  UniqueFd in_;
  UniqueFd out_;
  Decoder decoder_;
  size_t max_outbound_;
  std::vector<uint8_t> out_buf_;
  size_t out_start_ = 0;
  uint64_t next_seq_ = 1;
};

}  // namespace sbx
