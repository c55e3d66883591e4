// A Renderer run in-process over real pipes and a real frame buffer, talked to as the broker
// does: no sandbox, no exec, so what it does with each message can be watched from the test.
#include "renderer/renderer.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipc/codec.h"
#include "ipc/posix.h"
#include "ipc/protocol.h"
#include "test_util.h"

namespace sbx::renderer {
namespace {

using protocol::MsgType;

class RendererTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As sbx-renderer's main does: the broker closing its end must be EPIPE, not a signal.
    ASSERT_TRUE(IgnoreSignal(SIGPIPE));
    auto to = MakePipe(false);
    auto from = MakePipe(false);
    auto frames = FrameReader::Create({64, 48});
    ASSERT_TRUE(to && from && frames);
    frames_.emplace(std::move(*frames));
    auto writer = FrameWriter::Attach(frames_->fd());
    auto theirs = Channel::Create(std::move(to->read), std::move(from->write),
                                  protocol::Direction::kToRenderer, 1 << 20);
    auto ours = Channel::Create(std::move(from->read), std::move(to->write),
                                protocol::Direction::kToBroker, 1 << 20);
    ASSERT_TRUE(writer && theirs && ours);
    broker_.emplace(std::move(*ours));
    renderer_.emplace(Args(), std::move(*theirs), std::move(*writer), -1,
                      [this](const LaunchArgs& now) {
                        std::lock_guard lock(mu_);
                        pages_.push_back(now.page);
                      });
    ASSERT_TRUE(renderer_->StartIoThread());
    main_ = std::thread([this] { exit_code_ = renderer_->Run(); });
  }

  virtual LaunchArgs Args() const {
    return {4, "sbx://plasma", 60, Heartbeat::kPipe, SandboxLevel::kOff, ""};
  }

  void TearDown() override {
    broker_.reset();  // EOF: the renderer's loop and IO thread end
    if (main_.joinable()) main_.join();
    renderer_.reset();
  }

  void Send(MsgType type, const PayloadWriter& w = PayloadWriter()) {
    ASSERT_TRUE(broker_->Send(type, w.data()));
  }

  // The next message of `type`, skipping others, within the deadline.
  std::optional<Message> Next(MsgType type) {
    int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
    for (;;) {
      for (size_t i = 0; i < inbox_.size(); ++i) {
        if (inbox_[i].type == type) {
          Message m = std::move(inbox_[i]);
          inbox_.erase(inbox_.begin() + static_cast<long>(i));
          return m;
        }
      }
      inbox_.clear();
      pollfd p{broker_->in_fd(), POLLIN, 0};
      if (HandleEintr([&] { return ::poll(&p, 1, test::RemainingMs(deadline)); }) <= 0) {
        return std::nullopt;
      }
      auto r = broker_->Receive(inbox_);
      if (!r || !*r) return std::nullopt;
    }
  }

  std::vector<std::string> Pages() {
    std::lock_guard lock(mu_);
    return pages_;
  }

  std::optional<FrameReader> frames_;
  std::optional<Channel> broker_;
  std::optional<Renderer> renderer_;
  std::thread main_;
  int exit_code_ = -1;
  std::vector<Message> inbox_;
  std::mutex mu_;
  std::vector<std::string> pages_;
};

TEST_F(RendererTest, DrawsAfterHelloAnswersPingsAndStopsOnShutdown) {
  PayloadWriter hello;
  hello.U32(1234).U32(60).U32(1);
  Send(MsgType::kHello, hello);
  ASSERT_TRUE(Next(MsgType::kFrameReady));
  ASSERT_TRUE(Next(MsgType::kHeartbeat));  // over the pipe: no queue was given
  PayloadWriter ping;
  ping.U64(77);
  Send(MsgType::kPing, ping);
  auto pong = Next(MsgType::kPong);
  ASSERT_TRUE(pong);
  EXPECT_EQ(DecodeU64(*pong).value_or(0), 77u);
  Send(MsgType::kShutdown);
  main_.join();
  EXPECT_EQ(exit_code_, 0);
}

TEST_F(RendererTest, TellsItsObserverEveryPageItShows) {
  PayloadWriter hello;
  hello.U32(1234).U32(60).U32(1);
  Send(MsgType::kHello, hello);
  PayloadWriter nav;
  nav.Str("sbx://clock");
  Send(MsgType::kNavigate, nav);
  PayloadWriter unknown;
  unknown.Str("sbx://no-such-page");
  Send(MsgType::kNavigate, unknown);
  // A ping answered by the main thread would not order after the navigations; a frame drawn
  // after them does, and frames keep coming.
  int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
  while (Pages().size() < 3 && MonotonicNs() < deadline) ASSERT_TRUE(Next(MsgType::kFrameReady));
  std::vector<std::string> expected = {"sbx://plasma", "sbx://clock", "sbx://no-such-page"};
  EXPECT_EQ(Pages(), expected);
}

TEST_F(RendererTest, AMessageBeforeHelloEndsIt) {
  PayloadWriter fps;
  fps.U32(10);
  Send(MsgType::kSetFps, fps);
  main_.join();
  EXPECT_EQ(exit_code_, 1);
}

// Started with --spare: no id, no page, until the broker assigns them.
class SpareRendererTest : public RendererTest {
 protected:
  LaunchArgs Args() const override {
    LaunchArgs a{-1, "", 30, Heartbeat::kPipe, SandboxLevel::kOff, ""};
    a.spare = true;
    return a;
  }

  void Hello() {
    PayloadWriter hello;
    hello.U32(1234).U32(30).U32(1);
    Send(MsgType::kHello, hello);
  }

  void Assign(const AssignMsg& a) {
    PayloadWriter w;
    EncodeAssign(a, w);
    Send(MsgType::kAssign, w);
  }

  // Waits for its main loop to end; returns what it had sent (the exit code is set).
  std::vector<Message> UntilItEnds() {
    main_.join();
    std::vector<Message> got = std::move(inbox_);
    (void)broker_->Receive(got);
    return got;
  }
};

TEST_F(SpareRendererTest, WaitsForItsAssignmentThenDrawsItsPageAtOnce) {
  Hello();
  // Introduced but unassigned: it answers a ping, and draws and beats nothing.
  PayloadWriter ping;
  ping.U64(5);
  Send(MsgType::kPing, ping);
  ASSERT_TRUE(Next(MsgType::kPong));
  EXPECT_TRUE(inbox_.empty());
  EXPECT_TRUE(Pages().empty());
  Assign({9, 60, protocol::Visibility::kVisible, "sbx://clock"});
  ASSERT_TRUE(Next(MsgType::kFrameReady));
  ASSERT_TRUE(Next(MsgType::kHeartbeat));
  std::vector<std::string> expected = {"sbx://clock"};
  EXPECT_EQ(Pages(), expected);
}

TEST_F(SpareRendererTest, RejectsAMalformedAssignment) {
  Hello();
  // Id 0 is no slot's: the broker's ids start at 1.
  Assign({0, 60, protocol::Visibility::kVisible, "sbx://clock"});
  for (const auto& m : UntilItEnds()) EXPECT_NE(m.type, MsgType::kFrameReady);
  EXPECT_EQ(exit_code_, 1);
  EXPECT_TRUE(Pages().empty());
}

TEST_F(SpareRendererTest, RejectsAnAssignmentWithAnUnknownVisibility) {
  Hello();
  PayloadWriter w;
  w.U32(3).U32(30).U32(7).Str("sbx://clock");
  Send(MsgType::kAssign, w);
  UntilItEnds();
  EXPECT_EQ(exit_code_, 1);
}

TEST_F(SpareRendererTest, RejectsACommandBeforeItsAssignment) {
  Hello();
  PayloadWriter nav;
  nav.Str("sbx://clock");
  Send(MsgType::kNavigate, nav);
  UntilItEnds();
  EXPECT_EQ(exit_code_, 1);
  EXPECT_TRUE(Pages().empty());
}

TEST_F(SpareRendererTest, RejectsASecondAssignment) {
  Hello();
  Assign({9, 60, protocol::Visibility::kVisible, "sbx://clock"});
  ASSERT_TRUE(Next(MsgType::kFrameReady));
  Assign({10, 60, protocol::Visibility::kVisible, "sbx://plasma"});
  UntilItEnds();
  EXPECT_EQ(exit_code_, 1);
  std::vector<std::string> expected = {"sbx://clock"};
  EXPECT_EQ(Pages(), expected);
}

}  // namespace
}  // namespace sbx::renderer
