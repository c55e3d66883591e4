// The inspector on its own: counts, the rate over the last whole second, a ring that stays
// bounded however much is recorded, lenient decoding of what may be an invalid payload.
#include "broker/ipc_inspector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ipc/codec.h"

namespace sbx {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(IpcInspectorTest, CountsMessagesAndBytesPerMechanism) {
  IpcInspector in(true);
  int64_t t = 10 * kSecond;
  for (int i = 0; i < 3; ++i) in.Record(t, Mechanism::kQueue, 0, i + 1, 40, "hb");
  in.Record(t, Mechanism::kSignal, 15, 0, 0, "%s", "close");
  IpcSnapshot s = in.Snapshot(t);
  EXPECT_EQ(s.counters[size_t(Mechanism::kQueue)].messages, 3u);
  EXPECT_EQ(s.counters[size_t(Mechanism::kQueue)].bytes, 120u);
  EXPECT_EQ(s.counters[size_t(Mechanism::kSignal)].messages, 1u);
  EXPECT_EQ(s.counters[size_t(Mechanism::kPipeToBroker)].messages, 0u);
  EXPECT_EQ(s.recorded, 4u);
}

TEST(IpcInspectorTest, RateIsTheLastWholeSecond) {
  IpcInspector in(true);
  for (int i = 0; i < 7; ++i) in.Record(5 * kSecond + i, Mechanism::kFrames, 0, i, 100, "f");
  // While the second runs, the one before it (nothing); once over, its 7; later, nothing.
  EXPECT_EQ(in.Counter(Mechanism::kFrames, 5 * kSecond + 500).messages_per_s, 0u);
  EXPECT_EQ(in.Counter(Mechanism::kFrames, 6 * kSecond).messages_per_s, 7u);
  EXPECT_EQ(in.Counter(Mechanism::kFrames, 6 * kSecond).bytes_per_s, 700u);
  EXPECT_EQ(in.Counter(Mechanism::kFrames, 7 * kSecond).messages_per_s, 0u);
  in.Record(6 * kSecond + 1, Mechanism::kFrames, 0, 8, 100, "f");
  EXPECT_EQ(in.Counter(Mechanism::kFrames, 6 * kSecond + 2).messages_per_s, 7u);
  EXPECT_EQ(in.Counter(Mechanism::kFrames, 6 * kSecond + 2).messages, 8u);
}

TEST(IpcInspectorTest, RingStaysBoundedUnderAFlood) {
  IpcInspector in(true);
  constexpr uint64_t kFlood = 100 * IpcInspector::kRingSize + 7;
  for (uint64_t i = 1; i <= kFlood; ++i) {
    in.Record(static_cast<int64_t>(i), Mechanism::kPipeToBroker, 64, i, 28, "n %llu",
              static_cast<unsigned long long>(i));
  }
  auto recent = in.Recent();
  ASSERT_EQ(recent.size(), IpcInspector::kRingSize);
  EXPECT_EQ(recent.front().seq, kFlood - IpcInspector::kRingSize + 1);
  EXPECT_EQ(recent.back().seq, kFlood);
  EXPECT_EQ(recent.back().Summary(), "n " + std::to_string(kFlood));
  EXPECT_EQ(in.Recent(3).size(), 3u);
  EXPECT_EQ(in.Recent(3).back().seq, kFlood);
  EXPECT_EQ(in.Snapshot(0).counters[size_t(Mechanism::kPipeToBroker)].messages, kFlood);
}

TEST(IpcInspectorTest, DecodesPipeMessagesEvenInvalidOnes) {
  IpcInspector in(true);
  PayloadWriter w;
  w.U32(1).U64(42);
  const IpcRecord* r =
      in.RecordPipe(1, Mechanism::kPipeToBroker, protocol::MsgType::kFrameReady, 9, w.data());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Summary(), "buffer 1, frame 42");
  EXPECT_EQ(r->size, 16u + 12u);
  EXPECT_EQ(r->TypeName(), "frame-ready");
  PayloadWriter url;
  url.Str("sbx://text/\x01hi");
  r = in.RecordPipe(2, Mechanism::kPipeToRenderer, protocol::MsgType::kNavigate, 2, url.data());
  EXPECT_EQ(r->Summary(), "sbx://text/?hi");
  EXPECT_TRUE(r->to_renderer());
  // A string that claims more bytes than there are, and a payload too short for its fields.
  uint8_t lying[6] = {0xff, 0xff, 0, 0, 'a', 'b'};
  r = in.RecordPipe(3, Mechanism::kPipeToBroker, protocol::MsgType::kDrillReport, 3, lying);
  EXPECT_EQ(r->Summary(), "ab");
  r = in.RecordPipe(4, Mechanism::kPipeToBroker, protocol::MsgType::kPong, 4, {});
  EXPECT_EQ(r->Summary(), "token 0");
}

// The payload is kept, not pointed to, and decoded when read: a long one is cut to what a slot
// holds, and the buffer it came from may be reused at once.
TEST(IpcInspectorTest, KeepsWhatItNeedsOfAPayloadAndDecodesItWhenRead) {
  IpcInspector in(true);
  PayloadWriter url;
  url.Str("sbx://text/" + std::string(200, 'x'));
  std::vector<uint8_t> bytes(url.data().begin(), url.data().end());
  const IpcRecord* r =
      in.RecordPipe(1, Mechanism::kPipeToRenderer, protocol::MsgType::kNavigate, 1, bytes);
  std::fill(bytes.begin(), bytes.end(), uint8_t{0});
  EXPECT_EQ(r->size, 16u + 4u + 211u);
  EXPECT_EQ(r->Summary(), "sbx://text/" + std::string(36, 'x'));
  PayloadWriter ping;
  ping.U64(7);
  in.RecordPipe(2, Mechanism::kPipeToRenderer, protocol::MsgType::kPing, 2, ping.data());
  in.Record(3, Mechanism::kSignal, 15, 0, 0, "%s", "SIGTERM");
  auto recent = in.Recent();
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[1].Summary(), "token 7");
  EXPECT_EQ(recent[2].Summary(), "SIGTERM");
  EXPECT_EQ(IpcRecordToJson(1, recent[1], 0).value("summary", ""), "token 7");
}

TEST(IpcInspectorTest, OffRecordsNothing) {
  IpcInspector in(false);
  EXPECT_EQ(in.Record(1, Mechanism::kQueue, 0, 1, 40, "hb"), nullptr);
  EXPECT_EQ(in.RecordPipe(1, Mechanism::kPipeToBroker, protocol::MsgType::kPong, 1, {}), nullptr);
  EXPECT_TRUE(in.Recent().empty());
  EXPECT_FALSE(in.Snapshot(1).enabled);
  EXPECT_EQ(in.Snapshot(1).counters[size_t(Mechanism::kQueue)].messages, 0u);
}

TEST(IpcInspectorTest, FiltersByMechanism) {
  EXPECT_TRUE(MechanismMatches("", Mechanism::kPidfd));
  EXPECT_TRUE(MechanismMatches("pipe", Mechanism::kPipeToBroker));
  EXPECT_TRUE(MechanismMatches("pipe", Mechanism::kPipeToRenderer));
  EXPECT_FALSE(MechanismMatches("pipe", Mechanism::kQueue));
  EXPECT_TRUE(MechanismMatches("mq", Mechanism::kQueue));
  EXPECT_FALSE(MechanismMatches("pipe-in", Mechanism::kPipeToRenderer));
  EXPECT_TRUE(IsMechanismFilter("shm"));
  EXPECT_FALSE(IsMechanismFilter("socket"));
}

}  // namespace
}  // namespace sbx
