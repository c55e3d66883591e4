#include "broker/renderer_state.h"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>

namespace sbx {
namespace {

using S = RendererState;
using H = Happening;

constexpr std::array kStates = {S::kStarting,   S::kRunning, S::kUnresponsive, S::kExited,
                                S::kRestarting, S::kClosed,  S::kFailed};
constexpr std::array kHappenings = {
    H::kLaunch, H::kFirstFrame,       H::kHeartbeatsMissed, H::kHeartbeatsResumed,
    H::kExit,   H::kExitWhileClosing, H::kRestartScheduled, H::kCrashLoop,
    H::kClose};

struct Edge {
  S from;
  H happening;
  bool has_frame;
  S to;
};

// Every legal edge of the lifecycle; anything not listed must be refused.
constexpr std::array kEdges = {
    Edge{S::kStarting, H::kLaunch, false, S::kStarting},  // the first launch of a new slot
    Edge{S::kExited, H::kLaunch, false, S::kStarting},    // reload after --no-restart
    Edge{S::kRestarting, H::kLaunch, false, S::kStarting},
    Edge{S::kFailed, H::kLaunch, false, S::kStarting},  // reload out of a crash loop
    Edge{S::kStarting, H::kFirstFrame, false, S::kRunning},
    Edge{S::kStarting, H::kHeartbeatsMissed, false, S::kUnresponsive},
    Edge{S::kRunning, H::kHeartbeatsMissed, false, S::kUnresponsive},
    Edge{S::kUnresponsive, H::kHeartbeatsResumed, true, S::kRunning},
    Edge{S::kUnresponsive, H::kHeartbeatsResumed, false, S::kStarting},
    Edge{S::kStarting, H::kExit, false, S::kExited},
    Edge{S::kRunning, H::kExit, false, S::kExited},
    Edge{S::kUnresponsive, H::kExit, false, S::kExited},
    Edge{S::kStarting, H::kExitWhileClosing, false, S::kClosed},
    Edge{S::kRunning, H::kExitWhileClosing, false, S::kClosed},
    Edge{S::kUnresponsive, H::kExitWhileClosing, false, S::kClosed},
    Edge{S::kExited, H::kRestartScheduled, false, S::kRestarting},
    Edge{S::kExited, H::kCrashLoop, false, S::kFailed},
    Edge{S::kStarting, H::kClose, false, S::kClosed},  // its launch was still queued
    Edge{S::kExited, H::kClose, false, S::kClosed},
    Edge{S::kRestarting, H::kClose, false, S::kClosed},
    Edge{S::kFailed, H::kClose, false, S::kClosed},
};

std::optional<S> Expected(S from, H h, bool has_frame) {
  for (const Edge& e : kEdges) {
    if (e.from == from && e.happening == h && e.has_frame == has_frame) return e.to;
  }
  // Only the return from unresponsive looks at has_frame; elsewhere both values lead alike.
  if (h != H::kHeartbeatsResumed) {
    for (const Edge& e : kEdges) {
      if (e.from == from && e.happening == h) return e.to;
    }
  }
  return std::nullopt;
}

std::string Name(std::optional<S> s) {
  return s ? std::string(RendererStateName(*s)) : std::string("(refused)");
}

TEST(RendererStateTest, EveryStateAndHappeningLeadsWhereTheDiagramSays) {
  int legal = 0;
  for (S from : kStates) {
    for (H h : kHappenings) {
      for (bool has_frame : {false, true}) {
        std::optional<S> want = Expected(from, h, has_frame);
        std::optional<S> got = NextState(from, h, has_frame);
        EXPECT_EQ(Name(got), Name(want)) << RendererStateName(from) << " + " << HappeningName(h)
                                         << (has_frame ? " (has a frame)" : " (no frame yet)");
        legal += got.has_value();
      }
    }
  }
  // 20 edges, each seen with and without a frame except the two halves of the return.
  EXPECT_EQ(legal, 2 * static_cast<int>(kEdges.size()) - 2);
}

TEST(RendererStateTest, ClosedIsFinal) {
  for (H h : kHappenings) {
    EXPECT_FALSE(NextState(S::kClosed, h, true).has_value()) << HappeningName(h);
  }
}

TEST(RendererStateTest, OnlyLiveStatesHaveAProcess) {
  for (S s : kStates) {
    bool live = s == S::kStarting || s == S::kRunning || s == S::kUnresponsive;
    EXPECT_EQ(HasProcess(s), live) << RendererStateName(s);
  }
}

// The path, walked end to end: a hang, a recovery, a crash, a restart, a crash loop,
// a reload and a close.
TEST(RendererStateTest, ALifeFromLaunchToClose) {
  S s = S::kStarting;
  auto step = [&](H h, bool has_frame = false) {
    auto next = NextState(s, h, has_frame);
    EXPECT_TRUE(next.has_value()) << RendererStateName(s) << " + " << HappeningName(h);
    if (next) s = *next;
    return s;
  };
  EXPECT_EQ(step(H::kLaunch), S::kStarting);
  EXPECT_EQ(step(H::kFirstFrame), S::kRunning);
  EXPECT_EQ(step(H::kHeartbeatsMissed), S::kUnresponsive);
  // Drawing again is not enough: only a heartbeat brings it back.
  EXPECT_FALSE(NextState(s, H::kFirstFrame, true).has_value());
  EXPECT_EQ(step(H::kHeartbeatsResumed, true), S::kRunning);
  EXPECT_EQ(step(H::kExit), S::kExited);
  EXPECT_EQ(step(H::kRestartScheduled), S::kRestarting);
  EXPECT_EQ(step(H::kLaunch), S::kStarting);
  EXPECT_EQ(step(H::kExit), S::kExited);
  EXPECT_EQ(step(H::kCrashLoop), S::kFailed);
  EXPECT_FALSE(NextState(s, H::kRestartScheduled).has_value());
  EXPECT_EQ(step(H::kLaunch), S::kStarting);  // reload
  EXPECT_EQ(step(H::kExitWhileClosing), S::kClosed);
}

TEST(RendererStateTest, NamesAreTheOnesScriptsSee) {
  EXPECT_EQ(RendererStateName(S::kStarting), "starting");
  EXPECT_EQ(RendererStateName(S::kRunning), "running");
  EXPECT_EQ(RendererStateName(S::kUnresponsive), "unresponsive");
  EXPECT_EQ(RendererStateName(S::kExited), "exited");
  EXPECT_EQ(RendererStateName(S::kRestarting), "restarting");
  EXPECT_EQ(RendererStateName(S::kClosed), "closed");
  EXPECT_EQ(RendererStateName(S::kFailed), "failed");
}

}  // namespace
}  // namespace sbx
