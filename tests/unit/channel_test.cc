// The framed channel over real pipes: ordering, a full pipe that never blocks the sender, EOF,
// a peer that dies mid-message, and a reader that went away.
#include "ipc/channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ipc/posix.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

using protocol::Direction;
using protocol::MsgType;

// The broker's end of a channel, with the renderer's raw pipe ends so a test can play a
// misbehaving peer byte by byte.
struct BrokerEnd {
  Channel channel;
  UniqueFd peer_read;   // what the renderer reads (broker -> renderer)
  UniqueFd peer_write;  // what the renderer writes (renderer -> broker)
};

BrokerEnd MakeBrokerEnd(size_t max_outbound = Channel::kDefaultMaxOutbound) {
  auto to_renderer = MakePipe(false);
  auto from_renderer = MakePipe(false);
  EXPECT_TRUE(to_renderer.has_value() && from_renderer.has_value());
  auto ch = Channel::Create(std::move(from_renderer->read), std::move(to_renderer->write),
                            Direction::kToBroker, max_outbound);
  EXPECT_TRUE(ch.has_value());
  return BrokerEnd{std::move(*ch), std::move(to_renderer->read), std::move(from_renderer->write)};
}

struct ChannelPair {
  Channel broker;
  Channel renderer;
};

ChannelPair MakeChannelPair(size_t broker_max_outbound = Channel::kDefaultMaxOutbound) {
  BrokerEnd b = MakeBrokerEnd(broker_max_outbound);
  auto r = Channel::Create(std::move(b.peer_read), std::move(b.peer_write), Direction::kToRenderer);
  EXPECT_TRUE(r.has_value());
  return ChannelPair{std::move(b.channel), std::move(*r)};
}

// Receives until at least `count` messages arrived. An error, EOF or the deadline ends it early
// (a timeout is reported as kTimeout).
Result<bool> ReceiveAtLeast(Channel& c, std::vector<Message>& out, size_t count) {
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (out.size() < count) {
    if (MonotonicNs() >= deadline) return MakeError(Errc::kTimeout, "too few messages in time");
    auto ready = WaitReadable(c.in_fd(), test::RemainingMs(deadline));
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return MakeError(Errc::kTimeout, "no message within the deadline");
    auto open = c.Receive(out);
    if (!open || !*open) return open;
  }
  return true;
}

// Receives until the channel reports EOF (false) or an error; kTimeout if neither comes.
Result<bool> ReceiveUntilClosed(Channel& c, std::vector<Message>& out) {
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  for (;;) {
    if (MonotonicNs() >= deadline) return MakeError(Errc::kTimeout, "no EOF within the deadline");
    auto ready = WaitReadable(c.in_fd(), test::RemainingMs(deadline));
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return MakeError(Errc::kTimeout, "no EOF within the deadline");
    auto open = c.Receive(out);
    if (!open || !*open) return open;
  }
}

std::string UrlNumber(size_t i) {
  std::string head = "sbx://text/" + std::to_string(i) + "/";
  return head + std::string(protocol::kMaxUrl - head.size(), 'x');
}

TEST(ChannelTest, CreateMakesBothDescriptorsNonBlocking) {
  ChannelPair p = MakeChannelPair();
  EXPECT_TRUE(::fcntl(p.broker.in_fd(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(p.broker.out_fd(), F_GETFL) & O_NONBLOCK);
}

TEST(ChannelTest, MessagesArriveInOrderWithConsecutiveSequenceNumbers) {
  ChannelPair p = MakeChannelPair();
  PayloadWriter hello, nav, ping;
  hello.U32(77).U32(30).U32(1);
  nav.Str("sbx://clock");
  ping.U64(5);
  ASSERT_TRUE(p.broker.Send(MsgType::kHello, hello.data()).has_value());
  ASSERT_TRUE(p.broker.Send(MsgType::kNavigate, nav.data()).has_value());
  ASSERT_TRUE(p.broker.Send(MsgType::kPing, ping.data()).has_value());
  ASSERT_TRUE(p.broker.Send(MsgType::kShutdown).has_value());
  EXPECT_FALSE(p.broker.HasPendingOutput());

  std::vector<Message> got;
  auto r = ReceiveAtLeast(p.renderer, got, 4);
  ASSERT_TRUE(r.has_value() && *r) << (r ? "EOF" : r.error().ToString());
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].type, MsgType::kHello);
  EXPECT_EQ(got[1].type, MsgType::kNavigate);
  EXPECT_EQ(got[2].type, MsgType::kPing);
  EXPECT_EQ(got[3].type, MsgType::kShutdown);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].seq, i + 1);
  EXPECT_EQ(DecodeHello(got[0])->pid, 77u);
  EXPECT_EQ(DecodeNavigate(got[1]).value_or("?"), "sbx://clock");
  EXPECT_EQ(DecodeU64(got[2]).value_or(0), 5u);

  PayloadWriter frame, pong;
  frame.U32(0).U64(1);
  pong.U64(5);
  ASSERT_TRUE(p.renderer.Send(MsgType::kFrameReady, frame.data()).has_value());
  ASSERT_TRUE(p.renderer.Send(MsgType::kPong, pong.data()).has_value());
  std::vector<Message> back;
  r = ReceiveAtLeast(p.broker, back, 2);
  ASSERT_TRUE(r.has_value() && *r);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].type, MsgType::kFrameReady);
  EXPECT_EQ(back[1].type, MsgType::kPong);
  EXPECT_EQ(back[1].seq, 2u);
}

TEST(ChannelTest, ReceiveWithNothingAvailableReturnsOpenAndNoMessages) {
  ChannelPair p = MakeChannelPair();
  std::vector<Message> got;
  auto r = p.broker.Receive(got);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_TRUE(*r);
  EXPECT_TRUE(got.empty());
}

TEST(ChannelTest, AFullPipeQueuesPartialWritesUntilOverflowThenDrainsIntact) {
  constexpr size_t kMaxOutbound = 32 * 1024;
  ChannelPair p = MakeChannelPair(kMaxOutbound);

  // Nobody reads: the pipe fills, then the bounded queue, then Send says kOverflow.
  size_t sent = 0;
  Result<void> last;
  for (; sent < 10'000; ++sent) {
    PayloadWriter w;
    w.Str(UrlNumber(sent));
    last = p.broker.Send(MsgType::kNavigate, w.data());
    if (!last) break;
  }
  ASSERT_FALSE(last.has_value()) << "Send never overflowed";
  EXPECT_EQ(last.error().code, Errc::kOverflow);
  ASSERT_TRUE(p.broker.HasPendingOutput());
  const size_t pending = p.broker.pending_output();
  EXPECT_LE(pending, kMaxOutbound);

  // The overflowing message was not queued, and a Flush into a full pipe is not an error.
  ASSERT_TRUE(p.broker.Flush().has_value());
  EXPECT_EQ(p.broker.pending_output(), pending);

  // Drain: the renderer reads, the broker flushes what is left.
  std::vector<Message> got;
  const int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (got.size() < sent) {
    ASSERT_LT(MonotonicNs(), deadline) << "stalled after " << got.size() << " of " << sent;
    auto flushed = p.broker.Flush();
    ASSERT_TRUE(flushed.has_value()) << flushed.error().ToString();
    auto ready = WaitReadable(p.renderer.in_fd(), test::RemainingMs(deadline));
    ASSERT_TRUE(ready.has_value() && *ready) << "stalled after " << got.size() << " of " << sent;
    auto open = p.renderer.Receive(got);
    ASSERT_TRUE(open.has_value()) << open.error().ToString();
    ASSERT_TRUE(*open);
  }
  EXPECT_FALSE(p.broker.HasPendingOutput());
  ASSERT_EQ(got.size(), sent);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(DecodeNavigate(got[i]).value_or("?"), UrlNumber(i)) << i;
  }

  // Overflow is not sticky: once drained, sending works again and continues the sequence.
  PayloadWriter ping;
  ping.U64(1);
  ASSERT_TRUE(p.broker.Send(MsgType::kPing, ping.data()).has_value());
  std::vector<Message> more;
  ASSERT_TRUE(ReceiveAtLeast(p.renderer, more, 1).has_value());
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].seq, sent + 1);
}

TEST(ChannelTest, SendRejectsAPayloadAboveTheProtocolMaximum) {
  ChannelPair p = MakeChannelPair();
  std::vector<uint8_t> big(protocol::kMaxPayload + 1, 0);
  auto r = p.broker.Send(MsgType::kNavigate, big);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(p.broker.HasPendingOutput());
}

TEST(ChannelTest, EofIsReportedAsFalseAfterTheMessagesBeforeIt) {
  ChannelPair p = MakeChannelPair();
  PayloadWriter frame, pong;
  frame.U32(0).U64(1);
  pong.U64(9);
  ASSERT_TRUE(p.renderer.Send(MsgType::kFrameReady, frame.data()).has_value());
  ASSERT_TRUE(p.renderer.Send(MsgType::kPong, pong.data()).has_value());
  { Channel gone = std::move(p.renderer); }  // closes both of the renderer's ends

  std::vector<Message> got;
  auto r = ReceiveUntilClosed(p.broker, got);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_FALSE(*r);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].type, MsgType::kPong);
}

TEST(ChannelTest, APeerThatClosesMidHeaderIsAProtocolError) {
  BrokerEnd b = MakeBrokerEnd();
  std::vector<uint8_t> bytes;
  PayloadWriter pong;
  pong.U64(1);
  EncodeMessage(MsgType::kPong, 1, pong.data(), bytes);
  ASSERT_TRUE(WriteAll(b.peer_write.get(), std::span(bytes).first(5)).has_value());
  b.peer_write.reset();

  std::vector<Message> got;
  auto r = ReceiveUntilClosed(b.channel, got);
  ASSERT_FALSE(r.has_value()) << "EOF mid-message was reported as a clean close";
  EXPECT_EQ(r.error().code, Errc::kProtocol);
  EXPECT_TRUE(got.empty());
}

TEST(ChannelTest, APeerThatClosesMidPayloadIsAProtocolError) {
  BrokerEnd b = MakeBrokerEnd();
  std::vector<uint8_t> bytes;
  PayloadWriter first, second;
  first.U64(1);
  second.U64(2);
  EncodeMessage(MsgType::kPong, 1, first.data(), bytes);
  EncodeMessage(MsgType::kPong, 2, second.data(), bytes);
  // The whole first message and all but the last byte of the second.
  ASSERT_TRUE(WriteAll(b.peer_write.get(), std::span(bytes).first(bytes.size() - 1)).has_value());
  b.peer_write.reset();

  std::vector<Message> got;
  auto r = ReceiveUntilClosed(b.channel, got);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kProtocol);
  ASSERT_EQ(got.size(), 1u);  // the complete message before the cut was delivered
  EXPECT_EQ(DecodeU64(got[0]).value_or(0), 1u);
}

TEST(ChannelTest, AMessageTypeForTheOtherDirectionIsAProtocolError) {
  BrokerEnd b = MakeBrokerEnd();
  std::vector<uint8_t> bytes;
  EncodeMessage(MsgType::kShutdown, 1, {}, bytes);  // broker -> renderer, sent to the broker
  ASSERT_TRUE(WriteAll(b.peer_write.get(), bytes).has_value());

  std::vector<Message> got;
  auto r = ReceiveAtLeast(b.channel, got, 1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kProtocol);
  EXPECT_TRUE(got.empty());
}

TEST(ChannelTest, SendingToAClosedReaderIsPeerClosedNotSigpipe) {
  test::ScopedIgnoreSigpipe ignore;
  BrokerEnd b = MakeBrokerEnd();
  b.peer_read.reset();
  auto r = b.channel.Send(MsgType::kShutdown);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kPeerClosed);
  EXPECT_EQ(r.error().sys_errno, EPIPE);
}

TEST(ChannelTest, FlushingQueuedOutputToAReaderThatLeftIsPeerClosed) {
  test::ScopedIgnoreSigpipe ignore;
  BrokerEnd b = MakeBrokerEnd(/*max_outbound=*/16 * 1024);
  for (size_t i = 0; i < 10'000; ++i) {
    PayloadWriter w;
    w.Str(UrlNumber(i));
    if (!b.channel.Send(MsgType::kNavigate, w.data())) break;
  }
  ASSERT_TRUE(b.channel.HasPendingOutput());
  b.peer_read.reset();
  auto r = b.channel.Flush();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kPeerClosed);
}

}  // namespace
}  // namespace sbx
