#include "ipc/channel.h"

#include <array>

#include "ipc/posix.h"

namespace sbx {

Result<Channel> Channel::Create(UniqueFd in, UniqueFd out, protocol::Direction incoming,
                                size_t max_outbound) {
  if (auto r = SetNonBlocking(in.get(), true); !r) return std::unexpected(r.error());
  if (auto r = SetNonBlocking(out.get(), true); !r) return std::unexpected(r.error());
  return Channel(std::move(in), std::move(out), incoming, max_outbound);
}

Result<void> Channel::Send(protocol::MsgType type, std::span<const uint8_t> payload) {
  if (payload.size() > protocol::kMaxPayload) {
    return MakeError(Errc::kInvalidArgument, "payload too large");
  }
  if (pending_output() + sizeof(protocol::MessageHeader) + payload.size() > max_outbound_) {
    return MakeError(Errc::kOverflow, "outbound queue full");
  }
  if (out_start_ == out_buf_.size()) {
    out_buf_.clear();
    out_start_ = 0;
  }
  EncodeMessage(type, next_seq_++, payload, out_buf_);
  return Flush();
}

Result<void> Channel::Flush() {
  while (HasPendingOutput()) {
    auto n = WriteSome(out_.get(), std::span(out_buf_).subspan(out_start_));
    if (!n) {
      if (n.error().sys_errno == EAGAIN) break;
      return std::unexpected(n.error());
    }
    out_start_ += *n;
  }
  if (out_start_ == out_buf_.size()) {
    out_buf_.clear();
    out_start_ = 0;
  } else if (out_start_ > 64 * 1024) {
    out_buf_.erase(out_buf_.begin(), out_buf_.begin() + static_cast<ptrdiff_t>(out_start_));
    out_start_ = 0;
  }
  return {};
}

Result<bool> Channel::Receive(std::vector<Message>& out, size_t max_bytes) {
  std::array<uint8_t, kReadChunk> chunk;
  size_t total = 0;
  bool open = true;
  while (total < max_bytes) {
    auto n = ReadSome(in_.get(), std::span(chunk).first(std::min(chunk.size(), max_bytes - total)));
    if (!n) {
      if (n.error().sys_errno == EAGAIN) break;
      return std::unexpected(n.error());
    }
    if (*n == 0) {
      open = false;
      break;
    }
    total += *n;
    if (auto r = decoder_.Feed(std::span(chunk).first(*n)); !r) return std::unexpected(r.error());
    while (true) {
      auto m = decoder_.Next();
      if (!m) return std::unexpected(m.error());
      if (!*m) break;
      out.push_back(std::move(**m));
    }
    if (*n < chunk.size()) break;  // the pipe is drained; skip the extra EAGAIN read
  }
  if (!open && decoder_.buffered() > 0) {
    return MakeError(Errc::kProtocol, "peer closed mid-message");
  }
  return open;
}

}  // namespace sbx
