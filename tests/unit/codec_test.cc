// The pipe wire format: every message type round-trips, and every malformed input is an error
// value (never a crash, never a partially trusted message).
#include "ipc/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ipc/protocol.h"

namespace sbx {
namespace {

using protocol::Direction;
using protocol::MsgType;

using Bytes = std::vector<uint8_t>;

Bytes ToBytes(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

Bytes Encoded(MsgType type, uint64_t seq, std::span<const uint8_t> payload = {}) {
  Bytes out;
  EncodeMessage(type, seq, payload, out);
  return out;
}

// A header with arbitrary (possibly illegal) fields, as a hostile peer would write it.
Bytes RawHeader(uint16_t type, uint16_t flags, uint32_t length, uint64_t seq) {
  protocol::MessageHeader h{type, flags, length, seq};
  Bytes out(sizeof h);
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

protocol::Heartbeat ValidHeartbeat() {
  protocol::Heartbeat hb{};
  hb.magic = protocol::kHeartbeatMagic;
  hb.flags = 0;
  hb.frames = 1234;
  hb.mono_ns = 987654321;
  hb.cpu_ns = 5555;
  hb.render_us = 777;
  hb.fps = 30;
  return hb;
}

Bytes HeartbeatBytes(const protocol::Heartbeat& hb) {
  Bytes out(sizeof hb);
  std::memcpy(out.data(), &hb, sizeof hb);
  return out;
}

// Feeds `bytes` and drains every complete message; the first error is returned as is.
Result<std::vector<Message>> FeedAndDrain(Decoder& d, std::span<const uint8_t> bytes) {
  if (auto r = d.Feed(bytes); !r) return std::unexpected(r.error());
  std::vector<Message> out;
  for (;;) {
    auto m = d.Next();
    if (!m) return std::unexpected(m.error());
    if (!*m) return out;
    out.push_back(std::move(**m));
  }
}

// Expects that the decoder rejects `bytes` with a protocol error and is broken afterwards.
void ExpectRejected(Direction dir, const Bytes& bytes) {
  Decoder d(dir);
  auto r = FeedAndDrain(d, bytes);
  ASSERT_FALSE(r.has_value()) << "accepted " << r->size() << " message(s)";
  EXPECT_EQ(r.error().code, Errc::kProtocol) << r.error().what;
  EXPECT_TRUE(d.broken());
}

Message MakeMessage(MsgType type, std::span<const uint8_t> payload) {
  return Message{type, 1, ToBytes(payload)};
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(CodecTest, EveryBrokerToRendererTypeRoundTrips) {
  PayloadWriter hello, navigate, fps, ping, crash;
  hello.U32(4242).U32(60).U32(1000);
  navigate.Str("sbx://text/hello");
  fps.U32(120);
  ping.U64(0x0123456789abcdefULL);
  crash.U32(static_cast<uint32_t>(protocol::CrashKind::kAbort));
  struct Sent {
    MsgType type;
    Bytes payload;
  };
  const std::vector<Sent> sent = {
      {MsgType::kHello, ToBytes(hello.data())},
      {MsgType::kNavigate, ToBytes(navigate.data())},
      {MsgType::kSetFps, ToBytes(fps.data())},
      {MsgType::kPing, ToBytes(ping.data())},
      {MsgType::kShutdown, {}},
      {MsgType::kCrash, ToBytes(crash.data())},
      {MsgType::kHang, {}},
      {MsgType::kOom, {}},
      {MsgType::kBadIpc, {}},
      {MsgType::kSetVisibility, ToBytes(PayloadWriter().U32(1).data())},
  };
  Bytes stream;
  for (size_t i = 0; i < sent.size(); ++i)
    EncodeMessage(sent[i].type, i + 1, sent[i].payload, stream);

  Decoder d(Direction::kToRenderer);
  auto got = FeedAndDrain(d, stream);
  ASSERT_TRUE(got.has_value()) << got.error().what;
  ASSERT_EQ(got->size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ((*got)[i].type, sent[i].type) << i;
    EXPECT_EQ((*got)[i].seq, i + 1);
    EXPECT_EQ((*got)[i].payload, sent[i].payload) << protocol::MsgTypeName(sent[i].type);
  }
  EXPECT_EQ(d.buffered(), 0u);

  auto h = DecodeHello((*got)[0]);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->pid, 4242u);
  EXPECT_EQ(h->fps, 60u);
  EXPECT_EQ(h->broker_pid, 1000u);
  EXPECT_EQ(DecodeNavigate((*got)[1]).value_or("?"), "sbx://text/hello");
  EXPECT_EQ(DecodeU32((*got)[2]).value_or(0), 120u);
  EXPECT_EQ(DecodeU64((*got)[3]).value_or(0), 0x0123456789abcdefULL);
  EXPECT_EQ(DecodeU32((*got)[5]).value_or(0), static_cast<uint32_t>(protocol::CrashKind::kAbort));
}

TEST(CodecTest, EveryRendererToBrokerTypeRoundTrips) {
  PayloadWriter frame, pong, drill;
  frame.U32(1).U64(99);
  pong.U64(7);
  drill.Str("seccomp: clone3 -> ENOSYS");
  const Bytes hb = HeartbeatBytes(ValidHeartbeat());
  Bytes stream;
  EncodeMessage(MsgType::kFrameReady, 1, frame.data(), stream);
  EncodeMessage(MsgType::kPong, 2, pong.data(), stream);
  EncodeMessage(MsgType::kHeartbeat, 3, hb, stream);
  EncodeMessage(MsgType::kDrillReport, 4, drill.data(), stream);

  Decoder d(Direction::kToBroker);
  auto got = FeedAndDrain(d, stream);
  ASSERT_TRUE(got.has_value()) << got.error().what;
  ASSERT_EQ(got->size(), 4u);

  auto f = DecodeFrameReady((*got)[0]);
  ASSERT_TRUE(f.has_value()) << f.error().what;
  EXPECT_EQ(f->buffer_index, 1u);
  EXPECT_EQ(f->frame_number, 99u);
  EXPECT_EQ(DecodeU64((*got)[1]).value_or(0), 7u);
  ASSERT_EQ((*got)[2].type, MsgType::kHeartbeat);
  auto decoded = DecodeHeartbeat((*got)[2].payload);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().what;
  EXPECT_EQ(decoded->frames, 1234u);
  EXPECT_EQ(decoded->mono_ns, 987654321);
  EXPECT_EQ(decoded->cpu_ns, 5555u);
  EXPECT_EQ(decoded->render_us, 777u);
  EXPECT_EQ(decoded->fps, 30u);
  EXPECT_EQ(DecodeDrillReport((*got)[3]).value_or("?"), "seccomp: clone3 -> ENOSYS");
}

TEST(CodecTest, NavigateRoundTripsTheLongestAllowedUrl) {
  const std::string url = "sbx://text/" + std::string(protocol::kMaxUrl - 11, 'x');
  ASSERT_EQ(url.size(), protocol::kMaxUrl);
  PayloadWriter w;
  w.Str(url);
  Decoder d(Direction::kToRenderer);
  auto got = FeedAndDrain(d, Encoded(MsgType::kNavigate, 1, w.data()));
  ASSERT_TRUE(got.has_value()) << got.error().what;
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(DecodeNavigate((*got)[0]).value_or("?"), url);
}

// ---------------------------------------------------------------------------------------------
// Header violations

struct UnknownTypeCase {
  Direction dir;
  uint16_t type;
  uint32_t length;  // legal for the type where it is known, so only the type check can fail
};

class CodecUnknownTypeTest : public ::testing::TestWithParam<UnknownTypeCase> {};

TEST_P(CodecUnknownTypeTest, IsRejectedAsUnknown) {
  const UnknownTypeCase& c = GetParam();
  Bytes bytes = RawHeader(c.type, 0, c.length, 1);
  bytes.resize(bytes.size() + c.length);
  if (c.type == static_cast<uint16_t>(MsgType::kHeartbeat)) {
    Bytes hb = HeartbeatBytes(ValidHeartbeat());
    std::copy(hb.begin(), hb.end(), bytes.end() - static_cast<ptrdiff_t>(hb.size()));
  }
  Decoder d(c.dir);
  auto r = FeedAndDrain(d, bytes);
  ASSERT_FALSE(r.has_value()) << "type " << c.type << " accepted";
  EXPECT_EQ(r.error().code, Errc::kProtocol);
  EXPECT_NE(r.error().what.find("unknown"), std::string::npos) << r.error().what;
  EXPECT_TRUE(d.broken());
}

constexpr uint16_t Raw(MsgType t) { return static_cast<uint16_t>(t); }

INSTANTIATE_TEST_SUITE_P(
    Types, CodecUnknownTypeTest,
    ::testing::Values(
        // A broker->renderer type arriving at the broker is unknown there, and vice versa.
        UnknownTypeCase{Direction::kToBroker, Raw(MsgType::kHello), 12},
        UnknownTypeCase{Direction::kToBroker, Raw(MsgType::kPing), 8},
        UnknownTypeCase{Direction::kToBroker, Raw(MsgType::kShutdown), 0},
        UnknownTypeCase{Direction::kToBroker, Raw(MsgType::kBadIpc), 0},
        UnknownTypeCase{Direction::kToBroker, Raw(MsgType::kSetVisibility), 4},
        UnknownTypeCase{Direction::kToRenderer, Raw(MsgType::kFrameReady), 12},
        UnknownTypeCase{Direction::kToRenderer, Raw(MsgType::kPong), 8},
        UnknownTypeCase{Direction::kToRenderer, Raw(MsgType::kHeartbeat), 40},
        UnknownTypeCase{Direction::kToRenderer, Raw(MsgType::kDrillReport), 4},
        // Numbers no direction knows.
        UnknownTypeCase{Direction::kToBroker, 0, 0}, UnknownTypeCase{Direction::kToRenderer, 0, 0},
        UnknownTypeCase{Direction::kToRenderer, 12, 0},
        UnknownTypeCase{Direction::kToBroker, 63, 0}, UnknownTypeCase{Direction::kToBroker, 68, 0},
        UnknownTypeCase{Direction::kToBroker, 0xffff, 0},
        UnknownTypeCase{Direction::kToRenderer, 0xffff, 0}));

TEST(CodecTest, RejectsNonzeroFlags) {
  for (uint16_t flags : {uint16_t{1}, uint16_t{0x8000}, uint16_t{0xffff}}) {
    SCOPED_TRACE(flags);
    Bytes bytes = RawHeader(static_cast<uint16_t>(MsgType::kPong), flags, 8, 1);
    bytes.resize(bytes.size() + 8);
    ExpectRejected(Direction::kToBroker, bytes);
  }
}

TEST(CodecTest, RejectsOversizeLengthAsSoonAsTheHeaderIsComplete) {
  for (uint32_t length :
       {static_cast<uint32_t>(protocol::kMaxPayload + 1), std::numeric_limits<uint32_t>::max()}) {
    SCOPED_TRACE(length);
    Decoder d(Direction::kToRenderer);
    Bytes header = RawHeader(static_cast<uint16_t>(MsgType::kNavigate), 0, length, 1);
    // Fifteen bytes are not a header yet: no verdict.
    ASSERT_TRUE(d.Feed(std::span(header).first(15)).has_value());
    auto partial = d.Next();
    ASSERT_TRUE(partial.has_value());
    EXPECT_FALSE(partial->has_value());
    // The sixteenth byte completes it; no payload byte has arrived, yet the verdict is final.
    ASSERT_TRUE(d.Feed(std::span(header).subspan(15)).has_value());
    auto r = d.Next();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::kProtocol);
    EXPECT_TRUE(d.broken());
  }
}

struct LengthCase {
  Direction dir;
  MsgType type;
  uint32_t length;
};

class CodecLengthOutOfBoundsTest : public ::testing::TestWithParam<LengthCase> {};

TEST_P(CodecLengthOutOfBoundsTest, IsRejectedBeforeThePayloadArrives) {
  const LengthCase& c = GetParam();
  ExpectRejected(c.dir, RawHeader(static_cast<uint16_t>(c.type), 0, c.length, 1));
}

INSTANTIATE_TEST_SUITE_P(
    Types, CodecLengthOutOfBoundsTest,
    ::testing::Values(
        LengthCase{Direction::kToRenderer, MsgType::kHello, 8},
        LengthCase{Direction::kToRenderer, MsgType::kHello, 11},
        LengthCase{Direction::kToRenderer, MsgType::kHello, 13},
        LengthCase{Direction::kToRenderer, MsgType::kNavigate, 3},
        LengthCase{Direction::kToRenderer, MsgType::kNavigate,
                   static_cast<uint32_t>(4 + protocol::kMaxUrl + 1)},
        LengthCase{Direction::kToRenderer, MsgType::kSetFps, 8},
        LengthCase{Direction::kToRenderer, MsgType::kPing, 4},
        LengthCase{Direction::kToRenderer, MsgType::kShutdown, 1},
        LengthCase{Direction::kToRenderer, MsgType::kCrash, 0},
        LengthCase{Direction::kToRenderer, MsgType::kHang, 4},
        LengthCase{Direction::kToBroker, MsgType::kFrameReady, 11},
        LengthCase{Direction::kToBroker, MsgType::kFrameReady, 13},
        LengthCase{Direction::kToBroker, MsgType::kPong, 0},
        LengthCase{Direction::kToBroker, MsgType::kHeartbeat, sizeof(protocol::Heartbeat) - 1},
        LengthCase{Direction::kToBroker, MsgType::kHeartbeat, sizeof(protocol::Heartbeat) + 1},
        LengthCase{Direction::kToBroker, MsgType::kDrillReport, 3},
        LengthCase{Direction::kToBroker, MsgType::kDrillReport,
                   static_cast<uint32_t>(4 + protocol::kMaxDrillReport + 1)}));

// ---------------------------------------------------------------------------------------------
// Sequence numbers

Bytes PongStream(std::initializer_list<uint64_t> seqs) {
  PayloadWriter w;
  w.U64(1);
  Bytes out;
  for (uint64_t s : seqs) EncodeMessage(MsgType::kPong, s, w.data(), out);
  return out;
}

TEST(CodecTest, AcceptsSequenceNumbersOneTwoThree) {
  Decoder d(Direction::kToBroker);
  auto got = FeedAndDrain(d, PongStream({1, 2, 3}));
  ASSERT_TRUE(got.has_value()) << got.error().what;
  EXPECT_EQ(got->size(), 3u);
}

TEST(CodecTest, RejectsAFirstSequenceNumberOtherThanOne) {
  for (uint64_t seq : {uint64_t{0}, uint64_t{2}, std::numeric_limits<uint64_t>::max()}) {
    SCOPED_TRACE(seq);
    ExpectRejected(Direction::kToBroker, PongStream({seq}));
  }
}

TEST(CodecTest, RejectsRepeatedSequenceNumbers) {
  Decoder d(Direction::kToBroker);
  ASSERT_TRUE(d.Feed(PongStream({1, 2, 2})).has_value());
  ASSERT_TRUE(d.Next().has_value());
  ASSERT_TRUE(d.Next().has_value());
  auto third = d.Next();
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code, Errc::kProtocol);
}

TEST(CodecTest, RejectsOutOfOrderSequenceNumbers) {
  ExpectRejected(Direction::kToBroker, PongStream({1, 3}));
  ExpectRejected(Direction::kToBroker, PongStream({2, 1}));
  ExpectRejected(Direction::kToBroker, PongStream({1, 2, 1}));
}

// ---------------------------------------------------------------------------------------------
// Payload violations (the typed decoders)

TEST(CodecTest, TypedDecodersRejectTrailingBytes) {
  PayloadWriter hello, nav, u32, u64, frame, drill;
  hello.U32(1).U32(30).U32(1).U32(0);
  nav.Str("sbx://plasma").U32(0);
  drill.Str("ok").U32(0);
  u32.U32(30).U32(0);
  u64.U64(1).U32(0);
  frame.U32(0).U64(1).U32(0);
  EXPECT_FALSE(DecodeHello(MakeMessage(MsgType::kHello, hello.data())).has_value());
  EXPECT_FALSE(DecodeNavigate(MakeMessage(MsgType::kNavigate, nav.data())).has_value());
  EXPECT_FALSE(DecodeU32(MakeMessage(MsgType::kSetFps, u32.data())).has_value());
  EXPECT_FALSE(DecodeU64(MakeMessage(MsgType::kPong, u64.data())).has_value());
  EXPECT_FALSE(DecodeFrameReady(MakeMessage(MsgType::kFrameReady, frame.data())).has_value());
  EXPECT_FALSE(DecodeDrillReport(MakeMessage(MsgType::kDrillReport, drill.data())).has_value());
}

TEST(CodecTest, TrailingBytesAfterANavigateUrlPassTheDecoderButFailDecodeNavigate) {
  // Length bounds alone cannot catch this one: the payload is within kNavigate's bounds.
  PayloadWriter nav;
  nav.Str("sbx://plasma").Bytes(std::vector<uint8_t>{'!'});
  Decoder d(Direction::kToRenderer);
  auto got = FeedAndDrain(d, Encoded(MsgType::kNavigate, 1, nav.data()));
  ASSERT_TRUE(got.has_value()) << got.error().what;
  ASSERT_EQ(got->size(), 1u);
  auto url = DecodeNavigate((*got)[0]);
  ASSERT_FALSE(url.has_value());
  EXPECT_EQ(url.error().code, Errc::kProtocol);
}

TEST(CodecTest, TypedDecodersRejectShortPayloads) {
  PayloadWriter four, eight;
  four.U32(30);
  eight.U32(1).U32(30);  // a hello without the broker pid
  EXPECT_FALSE(DecodeHello(MakeMessage(MsgType::kHello, four.data())).has_value());
  EXPECT_FALSE(DecodeHello(MakeMessage(MsgType::kHello, eight.data())).has_value());
  EXPECT_FALSE(DecodeDrillReport(MakeMessage(MsgType::kDrillReport, {})).has_value());
  EXPECT_FALSE(DecodeU64(MakeMessage(MsgType::kPing, four.data())).has_value());
  EXPECT_FALSE(DecodeFrameReady(MakeMessage(MsgType::kFrameReady, four.data())).has_value());
  EXPECT_FALSE(DecodeU32(MakeMessage(MsgType::kSetFps, {})).has_value());
  EXPECT_FALSE(DecodeNavigate(MakeMessage(MsgType::kNavigate, {})).has_value());
}

TEST(CodecTest, TypedDecodersRejectTheWrongMessageType) {
  PayloadWriter hello, frame, nav;
  hello.U32(1).U32(30).U32(1);
  frame.U32(0).U64(1);
  nav.Str("sbx://plasma");
  EXPECT_FALSE(DecodeHello(MakeMessage(MsgType::kPing, hello.data())).has_value());
  EXPECT_FALSE(DecodeFrameReady(MakeMessage(MsgType::kPong, frame.data())).has_value());
  EXPECT_FALSE(DecodeNavigate(MakeMessage(MsgType::kShutdown, nav.data())).has_value());
  EXPECT_FALSE(DecodeDrillReport(MakeMessage(MsgType::kNavigate, nav.data())).has_value());
}

TEST(CodecTest, DecodeNavigateRejectsTruncatedStrings) {
  const std::string url = "sbx://plasma";
  {
    // The length prefix promises more bytes than follow.
    PayloadWriter w;
    w.U32(static_cast<uint32_t>(url.size() + 5))
        .Bytes({reinterpret_cast<const uint8_t*>(url.data()), url.size()});
    EXPECT_FALSE(DecodeNavigate(MakeMessage(MsgType::kNavigate, w.data())).has_value());
  }
  {
    PayloadWriter w;
    w.U32(std::numeric_limits<uint32_t>::max());
    EXPECT_FALSE(DecodeNavigate(MakeMessage(MsgType::kNavigate, w.data())).has_value());
  }
  {
    // A length prefix cut in half.
    const Bytes two = {12, 0};
    EXPECT_FALSE(DecodeNavigate(MakeMessage(MsgType::kNavigate, two)).has_value());
  }
  {
    // Longer than kMaxUrl, even though every byte is present.
    PayloadWriter w;
    w.Str(std::string(protocol::kMaxUrl + 1, 'a'));
    EXPECT_FALSE(DecodeNavigate(MakeMessage(MsgType::kNavigate, w.data())).has_value());
  }
}

TEST(CodecTest, IsValidUrlAcceptsPrintableAsciiUpToTheLimit) {
  EXPECT_TRUE(IsValidUrl("sbx://plasma"));
  EXPECT_TRUE(IsValidUrl("a"));
  EXPECT_TRUE(IsValidUrl("sbx://text/%20~!"));
  EXPECT_TRUE(IsValidUrl(std::string(protocol::kMaxUrl, 'a')));
}

class CodecInvalidUrlTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CodecInvalidUrlTest, IsRejectedByIsValidUrlAndDecodeNavigate) {
  const std::string& url = GetParam();
  EXPECT_FALSE(IsValidUrl(url));
  PayloadWriter w;
  w.Str(url);
  auto r = DecodeNavigate(MakeMessage(MsgType::kNavigate, w.data()));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kProtocol);
}

INSTANTIATE_TEST_SUITE_P(Urls, CodecInvalidUrlTest,
                         ::testing::Values(std::string(), std::string("has space"),
                                           std::string("tab\there"), std::string("nl\n"),
                                           std::string("nul\0byte", 8), std::string("del\x7f"),
                                           std::string("caf\xc3\xa9"), std::string("\xff"),
                                           std::string(protocol::kMaxUrl + 1, 'a')));

TEST(CodecTest, DecodeDrillReportAcceptsPrintableAsciiUpToTheLimit) {
  for (const std::string& text : {std::string(), std::string("net: socket(AF_INET) -> EACCES"),
                                  std::string(protocol::kMaxDrillReport, '~')}) {
    PayloadWriter w;
    w.Str(text);
    EXPECT_EQ(DecodeDrillReport(MakeMessage(MsgType::kDrillReport, w.data())).value_or("?"), text);
  }
}

TEST(CodecTest, DecodeDrillReportRejectsControlBytesHighBytesAndOverlongText) {
  for (const std::string& text :
       {std::string("line\nbreak"), std::string("esc\x1b[31m"), std::string("del\x7f"),
        std::string("caf\xc3\xa9"), std::string("nul\0x", 5),
        std::string(protocol::kMaxDrillReport + 1, 'a')}) {
    PayloadWriter w;
    w.Str(text);
    auto r = DecodeDrillReport(MakeMessage(MsgType::kDrillReport, w.data()));
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code, Errc::kProtocol);
  }
}

TEST(CodecTest, DecodeFrameReadyAcceptsBufferIndexZeroAndOne) {
  for (uint32_t index : {0u, 1u}) {
    PayloadWriter w;
    w.U32(index).U64(5);
    auto f = DecodeFrameReady(MakeMessage(MsgType::kFrameReady, w.data()));
    ASSERT_TRUE(f.has_value()) << f.error().what;
    EXPECT_EQ(f->buffer_index, index);
  }
}

TEST(CodecTest, DecodeFrameReadyRejectsBufferIndexOutOfRange) {
  for (uint32_t index : {2u, 3u, std::numeric_limits<uint32_t>::max()}) {
    SCOPED_TRACE(index);
    PayloadWriter w;
    w.U32(index).U64(5);
    auto f = DecodeFrameReady(MakeMessage(MsgType::kFrameReady, w.data()));
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code, Errc::kProtocol);
  }
}

TEST(CodecTest, DecodeHelloRejectsFpsOutOfRange) {
  for (uint32_t fps : {0u, protocol::kMaxFps + 1, std::numeric_limits<uint32_t>::max()}) {
    PayloadWriter w;
    w.U32(1).U32(fps).U32(1);
    EXPECT_FALSE(DecodeHello(MakeMessage(MsgType::kHello, w.data())).has_value()) << fps;
  }
  for (uint32_t fps : {protocol::kMinFps, protocol::kMaxFps}) {
    PayloadWriter w;
    w.U32(1).U32(fps).U32(1);
    EXPECT_TRUE(DecodeHello(MakeMessage(MsgType::kHello, w.data())).has_value()) << fps;
  }
}

// ---------------------------------------------------------------------------------------------
// Heartbeats

TEST(CodecTest, DecodeHeartbeatAcceptsTheFpsRangeEnds) {
  for (uint32_t fps : {protocol::kMinFps, protocol::kMaxFps}) {
    protocol::Heartbeat hb = ValidHeartbeat();
    hb.fps = fps;
    EXPECT_TRUE(DecodeHeartbeat(HeartbeatBytes(hb)).has_value()) << fps;
  }
}

TEST(CodecTest, DecodeHeartbeatRejectsAnyOtherSize) {
  Bytes bytes = HeartbeatBytes(ValidHeartbeat());
  for (size_t size : {size_t{0}, size_t{1}, sizeof(protocol::Heartbeat) - 1}) {
    auto r = DecodeHeartbeat(std::span(bytes).first(size));
    ASSERT_FALSE(r.has_value()) << size;
    EXPECT_EQ(r.error().code, Errc::kProtocol);
  }
  bytes.push_back(0);
  EXPECT_FALSE(DecodeHeartbeat(bytes).has_value());
  EXPECT_FALSE(DecodeHeartbeat(Bytes(64, 0)).has_value());
}

TEST(CodecTest, DecodeHeartbeatRejectsBadMagicFlagsAndFps) {
  struct Case {
    const char* name;
    void (*mutate)(protocol::Heartbeat&);
  };
  const Case cases[] = {
      {"magic", [](protocol::Heartbeat& hb) { hb.magic ^= 1; }},
      {"zero magic", [](protocol::Heartbeat& hb) { hb.magic = 0; }},
      {"flags", [](protocol::Heartbeat& hb) { hb.flags = 1; }},
      {"high flags", [](protocol::Heartbeat& hb) { hb.flags = 0x80000000u; }},
      {"fps 0", [](protocol::Heartbeat& hb) { hb.fps = 0; }},
      {"fps max+1", [](protocol::Heartbeat& hb) { hb.fps = protocol::kMaxFps + 1; }},
      {"fps uint max", [](protocol::Heartbeat& hb) { hb.fps = 0xffffffffu; }},
  };
  for (const Case& c : cases) {
    protocol::Heartbeat hb = ValidHeartbeat();
    c.mutate(hb);
    auto r = DecodeHeartbeat(HeartbeatBytes(hb));
    ASSERT_FALSE(r.has_value()) << c.name;
    EXPECT_EQ(r.error().code, Errc::kProtocol) << c.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoder state

TEST(CodecTest, ABrokenDecoderStaysBroken) {
  Decoder d(Direction::kToBroker);
  ASSERT_FALSE(FeedAndDrain(d, RawHeader(0xffff, 0, 0, 1)).has_value());
  ASSERT_TRUE(d.broken());

  // A perfectly valid message afterwards changes nothing.
  PayloadWriter w;
  w.U64(1);
  auto feed = d.Feed(Encoded(MsgType::kPong, 1, w.data()));
  ASSERT_FALSE(feed.has_value());
  EXPECT_EQ(feed.error().code, Errc::kProtocol);
  for (int i = 0; i < 3; ++i) {
    auto next = d.Next();
    ASSERT_FALSE(next.has_value());
    EXPECT_EQ(next.error().code, Errc::kProtocol);
  }
  EXPECT_TRUE(d.broken());
}

// A stream long enough that the bytes fed in total exceed the inbound buffer limit several
// times over, with every type and payload size the broker can receive.
Bytes LongRendererStream(size_t* count) {
  Bytes stream;
  const Bytes hb = HeartbeatBytes(ValidHeartbeat());
  uint64_t seq = 1;
  for (uint64_t i = 0; stream.size() < 400 * 1024; ++i) {
    PayloadWriter frame, pong;
    frame.U32(static_cast<uint32_t>(i & 1)).U64(i);
    pong.U64(i * 3);
    EncodeMessage(MsgType::kFrameReady, seq++, frame.data(), stream);
    EncodeMessage(MsgType::kPong, seq++, pong.data(), stream);
    EncodeMessage(MsgType::kHeartbeat, seq++, hb, stream);
  }
  *count = seq - 1;
  return stream;
}

TEST(CodecTest, FeedingByteByByteYieldsTheSameMessagesAsFeedingAllAtOnce) {
  size_t count = 0;
  const Bytes stream = LongRendererStream(&count);

  Decoder whole(Direction::kToBroker);
  std::vector<Message> at_once;
  // All at once in chunks the size of the buffer limit, drained in between.
  for (size_t off = 0; off < stream.size(); off += 64 * 1024) {
    size_t n = std::min<size_t>(64 * 1024, stream.size() - off);
    auto got = FeedAndDrain(whole, std::span(stream).subspan(off, n));
    ASSERT_TRUE(got.has_value()) << got.error().what;
    at_once.insert(at_once.end(), got->begin(), got->end());
  }
  ASSERT_EQ(at_once.size(), count);

  Decoder bytewise(Direction::kToBroker);
  std::vector<Message> one_by_one;
  for (uint8_t b : stream) {
    auto got = FeedAndDrain(bytewise, std::span(&b, 1));
    ASSERT_TRUE(got.has_value()) << got.error().what;
    one_by_one.insert(one_by_one.end(), got->begin(), got->end());
  }
  ASSERT_EQ(one_by_one.size(), at_once.size());
  for (size_t i = 0; i < at_once.size(); ++i) {
    EXPECT_EQ(one_by_one[i].type, at_once[i].type) << i;
    EXPECT_EQ(one_by_one[i].seq, at_once[i].seq) << i;
    EXPECT_EQ(one_by_one[i].payload, at_once[i].payload) << i;
  }
  EXPECT_EQ(bytewise.buffered(), 0u);
}

TEST(CodecTest, FeedOverflowsBeyondTwoMaximalMessagesAndBreaksTheDecoder) {
  constexpr size_t kLimit = 2 * (sizeof(protocol::MessageHeader) + protocol::kMaxPayload);
  // Valid messages, never drained, filled up to exactly the limit.
  PayloadWriter w;
  w.U64(1);
  Bytes bytes;
  for (uint64_t seq = 1; bytes.size() + 24 <= kLimit; ++seq) {
    EncodeMessage(MsgType::kPong, seq, w.data(), bytes);
  }
  bytes.resize(kLimit, 0);
  Decoder d(Direction::kToBroker);
  ASSERT_TRUE(d.Feed(bytes).has_value());
  EXPECT_EQ(d.buffered(), kLimit);

  auto r = d.Feed(Bytes(1, 0));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kOverflow);
  EXPECT_TRUE(d.broken());
  // Not even the complete, valid messages buffered before the overflow come out.
  auto next = d.Next();
  ASSERT_FALSE(next.has_value()) << "a broken decoder delivered a message";
  EXPECT_EQ(next.error().code, Errc::kProtocol);
}

TEST(CodecTest, FeedLimitCountsOnlyBytesNotYetDrained) {
  PayloadWriter w;
  w.U64(1);
  const size_t msg_size = sizeof(protocol::MessageHeader) + 8;
  const size_t per_round = 2 * (sizeof(protocol::MessageHeader) + protocol::kMaxPayload) / msg_size;
  Decoder d(Direction::kToBroker);
  uint64_t seq = 1;
  for (int round = 0; round < 3; ++round) {
    Bytes batch;
    for (size_t i = 0; i < per_round; ++i) EncodeMessage(MsgType::kPong, seq++, w.data(), batch);
    auto got = FeedAndDrain(d, batch);
    ASSERT_TRUE(got.has_value()) << "round " << round << ": " << got.error().what;
    EXPECT_EQ(got->size(), per_round);
  }
}

TEST(CodecTest, PayloadReaderPoisonsItselfOnAShortRead) {
  PayloadWriter w;
  w.U32(7).U32(8);
  PayloadReader r(w.data());
  uint64_t big = 0;
  uint32_t small = 0;
  ASSERT_TRUE(r.U32(&small));
  EXPECT_FALSE(r.U64(&big));    // only four bytes left
  EXPECT_FALSE(r.U32(&small));  // they would fit, but the reader is broken
  EXPECT_FALSE(r.Done());
}

TEST(CodecTest, PayloadReaderStrHonoursMaxLen) {
  PayloadWriter w;
  w.Str("abcdef");
  std::string s;
  PayloadReader too_short_limit(w.data());
  EXPECT_FALSE(too_short_limit.Str(&s, 5));
  PayloadReader exact(w.data());
  ASSERT_TRUE(exact.Str(&s, 6));
  EXPECT_EQ(s, "abcdef");
  EXPECT_TRUE(exact.Done());
}

}  // namespace
}  // namespace sbx
