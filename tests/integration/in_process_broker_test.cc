// The broker core driven in-process, as the window drives it: observers see events, frames and
// heartbeats; the loop is dispatched by the test.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "broker/control_server.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/test_util.h"

namespace sbx::testing {
namespace {

class Recorder : public BrokerObserver {
 public:
  void OnBrokerEvent(const BrokerEvent& e) override { events.push_back(e); }
  void OnFrame(int, uint64_t frame) override {
    ++frames;
    last_frame = frame;
  }
  void OnHeartbeat(int, const protocol::Heartbeat&, int64_t latency_ns) override {
    latencies.push_back(latency_ns);
  }
  std::vector<BrokerEvent> events;
  int frames = 0;
  uint64_t last_frame = 0;
  std::vector<int64_t> latencies;
};

std::unique_ptr<Broker> MakeBroker(BrokerOptions o) {
  o.renderer_path = BinPath("sbx-renderer");
  auto b = Broker::Create(std::move(o));
  return b ? std::move(*b) : nullptr;
}

TEST(InProcessBrokerTest, WithoutAQueueHeartbeatsRideThePipeAndTheFallbackIsVisible) {
  BrokerOptions o;
  o.force_queue_fallback = true;
  auto b = MakeBroker(o);
  ASSERT_TRUE(b);
  Recorder rec;
  b->AddObserver(&rec);
  auto id = b->Spawn();
  ASSERT_TRUE(id);
  ASSERT_TRUE(RunUntil(
      *b, [&] { return rec.latencies.size() >= 3; }, std::chrono::seconds(10)));
  ASSERT_FALSE(rec.events.empty());
  EXPECT_EQ(rec.events.front().type, EventType::kSpawned);
  EXPECT_TRUE(rec.events.front().heartbeat_fallback);
  EXPECT_FALSE(rec.events.front().detail.empty());
  auto snap = b->Get(*id);
  ASSERT_TRUE(snap);
  EXPECT_TRUE(snap->heartbeat_fallback);
  EXPECT_EQ(snap->state, RendererState::kRunning);
  b->RemoveObserver(&rec);
}

TEST(InProcessBrokerTest, FramesArriveAndCanBeCopiedWithoutTearing) {
  auto b = MakeBroker({});
  ASSERT_TRUE(b);
  Recorder rec;
  b->AddObserver(&rec);
  auto id = b->Spawn("sbx://plasma");
  ASSERT_TRUE(id);
  ASSERT_TRUE(RunUntil(
      *b, [&] { return rec.frames >= 5; }, std::chrono::seconds(10)));
  const FrameReader* frames = b->Frames(*id);
  ASSERT_NE(frames, nullptr);
  std::vector<uint8_t> a(frames->geometry().frame_bytes());
  std::vector<uint8_t> c(a.size());
  auto fa = frames->CopyFrame(a);
  ASSERT_TRUE(fa);
  // Until the broker has heard of a frame past the one copied: a count of notifications alone can
  // be of frames published before the copy (they queue while the loop is busy).
  uint64_t copied = fa->frame_number;
  ASSERT_TRUE(RunUntil(
      *b, [&] { return rec.last_frame > copied; }, std::chrono::seconds(10)));
  auto fc = frames->CopyFrame(c);
  ASSERT_TRUE(fc);
  EXPECT_GT(fc->frame_number, fa->frame_number);
  EXPECT_NE(a, c) << "an animated page must change its pixels";
  b->RemoveObserver(&rec);
}

TEST(InProcessBrokerTest, DestroyingTheBrokerKillsAndReapsItsRenderers) {
  std::vector<pid_t> pids;
  {
    auto b = MakeBroker({});
    ASSERT_TRUE(b);
    Recorder rec;
    b->AddObserver(&rec);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(b->Spawn());
    auto ready = [&] {
      int n = 0;
      for (const auto& e : rec.events) n += e.type == EventType::kReady;
      return n == 3;
    };
    ASSERT_TRUE(RunUntil(*b, ready, std::chrono::seconds(10)));
    for (const auto& s : b->List()) pids.push_back(s.pid);
    b->RemoveObserver(&rec);
  }
  ASSERT_EQ(pids.size(), 3u);
  // Reaped by the destructor: no longer our child at all, not even a zombie.
  for (pid_t pid : pids) {
    siginfo_t si{};
    EXPECT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG), -1) << pid;
    EXPECT_EQ(errno, ECHILD) << pid;
  }
}

// A launch the zygote has made but the broker has not read yet is the broker's all the same:
// destroyed then, the broker kills and reaps every process of it, and leaves no child behind.
TEST(InProcessBrokerTest, DestroyingTheBrokerWithALaunchInFlightLeavesNoChild) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the sanitized renderer is dynamically linked: no zygote launches it";
#endif
  {
    BrokerOptions o;
    o.spare = false;
    auto b = MakeBroker(o);
    ASSERT_TRUE(b);
    Recorder rec;
    b->AddObserver(&rec);
    ASSERT_TRUE(b->Spawn());
    auto ready = [&] {
      for (const auto& e : rec.events) {
        if (e.type == EventType::kReady) return true;
      }
      return false;
    };
    ASSERT_TRUE(RunUntil(*b, ready, std::chrono::seconds(10)));
    ASSERT_TRUE(b->Spawn());
    ASSERT_TRUE(RunUntil(
        *b, [&] { return b->Stats().zygote_in_flight == 1; }, std::chrono::seconds(10)));
    // The loop stops here, so nothing the zygote sends is read. It has made the launch once we
    // have seven children: the holder, the zygote, the first renderer and its init, and the
    // second launch's joiner, init and renderer.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ChildrenOf(::getpid()).size() < 7 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // nothing to wait on
    }
    ASSERT_EQ(ChildrenOf(::getpid()).size(), 7u);
    EXPECT_EQ(b->Stats().zygote_in_flight, 1u);
    b->RemoveObserver(&rec);
  }
  for (pid_t pid : ChildrenOf(::getpid())) {
    ADD_FAILURE() << "left behind: " << pid << " " << StatusField(pid, "Name") << " "
                  << StatusField(pid, "State");
  }
}

// Holds the broker's worker in a ListAll hook: at "rows" until released, so that the test can
// act while a read is under way. Declared before the broker, so the worker is joined (in
// ~Broker) while this still exists.
class WorkerGate {
 public:
  ~WorkerGate() { Release(); }
  InspectStepHook Hook() {
    return [this](std::string_view step) {
      std::unique_lock lock(m_);
      if (step == "rows") {
        reading_ = true;
        cv_.notify_all();
        // Bounded: were the reads made on the loop's thread, this would hold it.
        cv_.wait_for(lock, std::chrono::seconds(10), [&] { return released_; });
      } else {
        read_ = true;
        cv_.notify_all();
      }
    };
  }
  bool WaitReading() { return Wait(reading_); }
  bool WaitRead() { return Wait(read_); }
  void Release() {
    std::lock_guard lock(m_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  bool Wait(const bool& flag) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return flag; });
  }
  std::mutex m_;
  std::condition_variable cv_;
  bool reading_ = false, released_ = false, read_ = false;
};

// Runs the loop until the next turn has been made.
bool OneMoreTurn(Broker& b) {
  bool fired = false;
  b.loop().AddTimer(0, [&] { fired = true; });
  return RunUntil(
      b, [&] { return fired; }, std::chrono::seconds(10));
}

// `list` reads /proc and the cgroup files and builds its JSON on the worker thread: the loop goes
// on while it does, the rows are the broker as it was when asked, and a renderer that exits
// before its row is read is not reported from its pid (a zombie's, or another process's once the
// kernel gives that pid again).
TEST(InProcessBrokerTest, AListIsReadOffTheLoopAndNeverReportsARendererThatExited) {
  WorkerGate gate;
  BrokerOptions o;
  o.restart = false;
  auto b = MakeBroker(o);
  ASSERT_TRUE(b);
  Recorder rec;
  b->AddObserver(&rec);
  auto id = b->Spawn();
  ASSERT_TRUE(id);
  auto has = [&](EventType t) {
    return std::any_of(rec.events.begin(), rec.events.end(),
                       [&](const BrokerEvent& e) { return e.type == t && e.id == *id; });
  };
  ASSERT_TRUE(RunUntil(
      *b, [&] { return has(EventType::kReady); }, std::chrono::seconds(10)));
  const pid_t pid = b->Get(*id)->pid;
  ASSERT_GT(pid, 0);

  std::optional<std::string> reply;
  b->ListAll([&](std::string text) { reply = std::move(text); }, gate.Hook());
  ASSERT_TRUE(gate.WaitReading());
  // The worker is held before its reads; the loop still turns and the reply waits.
  ASSERT_TRUE(OneMoreTurn(*b));
  EXPECT_FALSE(reply);

  // The renderer dies; the loop is not dispatched, so it stays an unreaped zombie, whose /proc
  // entry still answers, while the worker reads.
  auto opened = PidfdOpen(pid);
  ASSERT_TRUE(opened);
  UniqueFd pidfd = std::move(*opened);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitReadable(pidfd.get(), 10'000).value_or(false));
  gate.Release();
  ASSERT_TRUE(gate.WaitRead());
  ASSERT_TRUE(RunUntil(
      *b, [&] { return reply.has_value(); }, std::chrono::seconds(10)));
  auto list = nlohmann::json::parse(*reply, nullptr, false);
  ASSERT_TRUE(list.is_object() && list.contains("renderers")) << *reply;
  ASSERT_EQ(list["renderers"].size(), 1u) << *reply;
  const auto& row = list["renderers"][0];
  EXPECT_EQ(row.value("pid", 0), pid) << *reply;
  EXPECT_EQ(row.value("state", ""), "running") << *reply;
  ASSERT_TRUE(row.contains("sandbox")) << *reply;
  EXPECT_EQ(row["sandbox"].value("verdict", ""), "no live process") << *reply;
  b->RemoveObserver(&rec);
}

// A `list` waiting for the worker holds its client's next lines: none of the commands a client
// pipelines behind it runs (and no second read is taken for it) until the list is answered.
TEST(InProcessBrokerTest, AClientsLinesAfterAListWaitForItsReply) {
  test::ScratchDir dir("sbx-list");
  WorkerGate gate;
  auto b = MakeBroker({});
  ASSERT_TRUE(b);
  auto server = ControlServer::Create(*b, dir.path() + "/control");
  ASSERT_TRUE(server) << server.error().ToString();
  // The worker is held by a list of the test's own; the client's list waits behind it.
  bool held_replied = false;
  b->ListAll([&](std::string) { held_replied = true; }, gate.Hook());
  ASSERT_TRUE(gate.WaitReading());

  ControlConnection c(dir.path() + "/control");
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.SendRaw("list\nhelp\n"));
  ASSERT_TRUE(RunUntil(
      *b, [&] { return b->Stats().control_lines_in >= 1; }, std::chrono::seconds(10)));
  ASSERT_TRUE(OneMoreTurn(*b));
  EXPECT_EQ(b->Stats().control_lines_in, 1u) << "the line after the list was served";

  gate.Release();
  std::string got;
  ASSERT_TRUE(ReceiveLines(*b, c.fd(), 2, got, std::chrono::seconds(10))) << got;
  EXPECT_TRUE(held_replied);
  EXPECT_EQ(b->Stats().control_lines_in, 2u);
  auto first = nlohmann::json::parse(got.substr(0, got.find('\n')), nullptr, false);
  EXPECT_TRUE(first.is_object() && first.contains("renderers")) << got;
  EXPECT_NE(got.find("\"commands\""), std::string::npos) << got;
}

}  // namespace
}  // namespace sbx::testing
