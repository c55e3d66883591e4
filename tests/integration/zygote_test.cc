// The zygote (broker/zygote.h): every sandboxed renderer is made by it, yet is the broker's own
// child, with every layer a renderer launched by the broker has; a zygote killed from outside is
// replaced; a failed launch leaves nothing; --no-zygote launches from the broker.
#include "broker/zygote.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "broker/launcher.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kTimeout = 10s;

json ZygoteOf(BrokerProcess& b) { return StatsObject(b, "zygote"); }

// The zygote's pid once it is not `not_pid` (a replacement starts at the next launch): 0 if none
// shows within kTimeout.
int WaitForZygote(BrokerProcess& b, int not_pid = 0) {
  return WaitForStatsPid(b, "zygote", not_pid, kTimeout);
}

std::string Ns(int pid, const char* name) {
  char target[128] = {};
  std::string link = "/proc/" + std::to_string(pid) + "/ns/" + name;
  ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : "";
}

// The zygote makes only launches confined before exec, which needs a static renderer; the
// sanitizer build's renderer is dynamic (it confines itself after exec), so there no launch goes
// through a zygote and a broker starts none. ZygoteLaunchTest runs the zygote there all the same.
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_WITHOUT_STATIC_RENDERER() \
  GTEST_SKIP() << "the sanitized renderer is dynamically linked: no zygote launches it"
#else
#define SKIP_WITHOUT_STATIC_RENDERER() (void)0
#endif

int ParentOf(int pid) { return std::atoi(StatusField(pid, "PPid").c_str()); }

TEST(ZygoteTest, RenderersComeFromTheZygoteAsTheBrokersOwnChildren) {
  SKIP_WITHOUT_STATIC_RENDERER();
  BrokerProcess b({"--renderers", "2", "--no-spare"});
  auto ready = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(ready);
  ASSERT_TRUE(b.WaitForEvent("ready", 2, kTimeout));
  json z = ZygoteOf(b);
  int zygote = z.value("pid", 0);
  ASSERT_GT(zygote, 0) << z.dump();
  EXPECT_GE(z.value("launches", 0), 2) << z.dump();
  EXPECT_EQ(ParentOf(zygote), b.pid());
  int renderer = ready->value("pid", 0);
  ASSERT_GT(renderer, 0);
  // Made by the zygote (CLONE_PARENT), so the broker's child: it reaps it and reads its exit.
  EXPECT_EQ(ParentOf(renderer), b.pid());
  // The zygote lives in the renderers' shared namespaces (each renderer has its pid, ipc and uts
  // namespaces of its own below them), and in the broker's pid namespace.
  for (const char* ns : {"user", "net", "mnt"}) {
    EXPECT_EQ(Ns(zygote, ns), Ns(renderer, ns)) << ns;
    EXPECT_NE(Ns(zygote, ns), Ns(b.pid(), ns)) << ns;
  }
  EXPECT_EQ(Ns(zygote, "pid"), Ns(b.pid(), "pid"));
  EXPECT_NE(Ns(renderer, "pid"), Ns(zygote, "pid"));
  // It keeps nothing of what it launched: above its stdio, only its socket to the broker and
  // the broker's pidfd (no pipe, memfd, queue or cgroup file of any renderer). It closes a
  // launch's last fd just after its reply, which the renderer may outrun to `ready`.
  auto fds_kept = [&] {
    std::vector<std::string> kept;
    std::string dir = "/proc/" + std::to_string(zygote) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return kept;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || std::atoi(e->d_name) < 3) continue;
      char target[256] = {};
      ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
      if (n > 0) kept.emplace_back(target, static_cast<size_t>(n));
    }
    ::closedir(d);
    return kept;
  };
  std::vector<std::string> kept = fds_kept();
  for (auto deadline = std::chrono::steady_clock::now() + kTimeout;
       kept.size() > 2 && std::chrono::steady_clock::now() < deadline; kept = fds_kept()) {
    std::this_thread::sleep_for(1ms);  // polled against a deadline: nothing to wait on
  }
  ASSERT_EQ(kept.size(), 2u) << ::testing::PrintToString(kept);
  for (const auto& fd : kept) {
    EXPECT_TRUE(fd.starts_with("socket:") || fd == "anon_inode:[pidfd]") << fd;
  }
  // And the renderer has every layer.
  json sandbox = b.Ctl("sandbox 1");
  EXPECT_EQ(sandbox.value("verdict", ""), "adequately sandboxed") << sandbox.dump();
  EXPECT_EQ(StatusField(renderer, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(renderer, "CapEff"), "0000000000000000");
}

TEST(ZygoteTest, TheZygoteSeesNoFileAndCannotBeTraced) {
  SKIP_WITHOUT_STATIC_RENDERER();
  if (::geteuid() != 0) GTEST_SKIP() << "reading another uid's /proc/PID/root needs root";
  BrokerProcess b({"--renderers", "1", "--no-spare"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kTimeout));
  int zygote = WaitForZygote(b);
  ASSERT_GT(zygote, 0);
  std::vector<std::string> entries;
  std::string root = "/proc/" + std::to_string(zygote) + "/root";
  DIR* d = ::opendir(root.c_str());
  ASSERT_NE(d, nullptr) << root;
  while (dirent* e = ::readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
      entries.push_back(e->d_name);
    }
  }
  ::closedir(d);
  EXPECT_TRUE(entries.empty()) << entries.front();
  // Undumpable: its /proc files belong to root, not to the uid it shares with the renderers.
  struct stat st {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(zygote) + "/mem").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
}

TEST(ZygoteTest, AKilledZygoteIsReplacedAndItsRenderersLiveOn) {
  SKIP_WITHOUT_STATIC_RENDERER();
  BrokerProcess b({"--renderers", "1", "--no-spare"});
  auto ready = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(ready);
  int zygote = WaitForZygote(b);
  ASSERT_GT(zygote, 0);
  ASSERT_EQ(::kill(zygote, SIGKILL), 0);
  ASSERT_TRUE(WaitProcessGone(zygote, kTimeout));
  // The renderer was never the zygote's: it runs on, and no slot saw an event.
  int renderer = ready->value("pid", 0);
  EXPECT_TRUE(ProcessAlive(renderer));
  json reply = b.Ctl("spawn sbx://clock");
  int id = reply.value("id", 0);
  ASSERT_GT(id, 0) << reply.dump();
  auto second = b.WaitForEvent("ready", id, kTimeout);
  ASSERT_TRUE(second);
  int next = WaitForZygote(b, zygote);
  EXPECT_GT(next, 0) << ZygoteOf(b).dump();
  EXPECT_EQ(ParentOf(second->value("pid", 0)), b.pid());
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 2u) << list.dump();
  EXPECT_EQ(list["renderers"][0]["state"], "running");
  for (const auto& e : b.history()) {
    if (e.value("id", 0) == 1) {
      EXPECT_NE(e.value("event", ""), "exited") << e.dump();
    }
  }
}

// The broker never waits for the zygote: with the zygote stopped, a renderer asked for stays
// `starting` while the control socket goes on answering; closed meanwhile, its launch is
// cancelled, and what the zygote makes for it once it runs again is killed and reaped.
TEST(ZygoteTest, TheBrokerAnswersWhileTheZygoteWorksAndACloseCancelsTheLaunch) {
  SKIP_WITHOUT_STATIC_RENDERER();
  BrokerProcess b({"--renderers", "1", "--no-spare"});
  auto ready = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(ready);
  int zygote = WaitForZygote(b);
  ASSERT_GT(zygote, 0);
  ASSERT_EQ(::kill(zygote, SIGSTOP), 0);
  ASSERT_TRUE(WaitProcessStopped(zygote, kTimeout));
  json reply = b.Ctl("spawn sbx://clock");
  int id = reply.value("id", 0);
  ASSERT_GT(id, 0) << reply.dump();
  // Answered at once, though the launch waits on a zygote that cannot run.
  json pong = b.Ctl("ping 1");
  EXPECT_TRUE(pong.contains("rtt_us")) << pong.dump();
  json list = b.Ctl("list");
  ASSERT_EQ(list["renderers"].size(), 2u) << list.dump();
  EXPECT_EQ(list["renderers"][1]["state"], "starting") << list.dump();
  EXPECT_EQ(list["renderers"][1].value("pid", -1), 0) << list.dump();
  EXPECT_EQ(b.Ctl("close " + std::to_string(id)).value("ok", false), true);
  ASSERT_TRUE(b.WaitForEvent("closed", id, kTimeout));

  ASSERT_EQ(::kill(zygote, SIGCONT), 0);
  // Served in order: once the next launch is running, the cancelled one has been answered.
  json next = b.Ctl("spawn sbx://clock");
  int next_id = next.value("id", 0);
  ASSERT_GT(next_id, 0) << next.dump();
  auto next_ready = b.WaitForEvent("ready", next_id, kTimeout);
  ASSERT_TRUE(next_ready);
  // Left: the namespace holder, the zygote, and two renderers with their namespace inits. The
  // joiners and what the cancelled launch made go as they are reaped.
  std::vector<pid_t> children;
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  do {
    children = ChildrenOf(b.pid());
    if (children.size() == 6u) break;
    std::this_thread::sleep_for(10ms);  // polled against a deadline: no event says "reaped"
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(children.size(), 6u) << ::testing::PrintToString(children);
  for (const auto& e : b.history()) {
    if (e.value("id", 0) == id) {
      EXPECT_NE(e.value("event", ""), "spawned") << e.dump();
      EXPECT_NE(e.value("event", ""), "exited") << e.dump();
    }
  }
}

TEST(ZygoteTest, NoZygoteMeansTheBrokerLaunches) {
  BrokerProcess b({"--renderers", "1", "--no-spare", "--no-zygote"});
  auto ready = b.WaitForEvent("ready", 1, kTimeout);
  ASSERT_TRUE(ready);
  json z = ZygoteOf(b);
  EXPECT_EQ(z.value("pid", -1), 0) << z.dump();
  EXPECT_EQ(z.value("launches", -1), 0) << z.dump();
  EXPECT_EQ(z.value("note", ""), "--no-zygote");
  EXPECT_EQ(ParentOf(ready->value("pid", 0)), b.pid());
  json sandbox = b.Ctl("sandbox 1");
  EXPECT_EQ(sandbox.value("verdict", ""), "adequately sandboxed") << sandbox.dump();
}

TEST(ZygoteTest, ShutdownEndsTheZygote) {
  SKIP_WITHOUT_STATIC_RENDERER();
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kTimeout));
  int zygote = WaitForZygote(b);
  ASSERT_GT(zygote, 0);
  auto exit = b.SignalAndWait(SIGTERM, kTimeout);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->si_code, CLD_EXITED);
  EXPECT_EQ(exit->si_status, 0);
  EXPECT_TRUE(WaitProcessGone(zygote, kTimeout));
}

TEST(ZygoteTest, ABrokerKilledTakesItsZygoteAlong) {
  SKIP_WITHOUT_STATIC_RENDERER();
  BrokerProcess b({"--renderers", "1"});
  ASSERT_TRUE(b.WaitForEvent("ready", 1, kTimeout));
  int zygote = WaitForZygote(b);
  ASSERT_GT(zygote, 0);
  ASSERT_TRUE(b.SignalAndWait(SIGKILL, kTimeout));
  EXPECT_TRUE(WaitProcessGone(zygote, kTimeout));  // its parent-death signal
}

// A confined launch through the zygote that fails at its filter (no such BPF instruction, so
// seccomp(2) fails with EINVAL) after all three of its processes exist.
LaunchSpec FailingLaunch(const NamespaceHolder& holder, int dev_null, int exe) {
  LaunchSpec spec;
  spec.argv = {"sbx-renderer"};
  spec.namespaces = NamespaceSpec{holder.pidfd()};
  spec.stdio = {dev_null, dev_null, dev_null};
  Confinement c;
  c.exec_fd = exe;
  c.root = holder.empty_root();
  c.filter = {BPF_STMT(0xffff, 0)};
  spec.confine = c;
  return spec;
}

// A launch that fails inside the zygote (here at the filter, which the kernel refuses) comes
// back as the launcher's error, and every process it made comes back to be reaped: none stays
// behind, running or as a zombie.
TEST(ZygoteLaunchTest, AFailedLaunchComesBackWithEveryProcessItMade) {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) GTEST_SKIP() << "no user namespaces here: " << holder.error().ToString();
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(dev_null.valid());
  auto zygote = Zygote::Start(BinPath("sbx-zygote"), *holder, dev_null.get());
  ASSERT_TRUE(zygote) << zygote.error().ToString();
  UniqueFd exe(::open(BinPath("sbx-renderer").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(exe.valid());

  LaunchSpec spec = FailingLaunch(*holder, dev_null.get(),
                                  exe.get());  // no such instruction: seccomp(2) fails with EINVAL
  std::vector<ChildProcess> handed;
  auto child = zygote->Launch(spec, [&](ChildProcess p) { handed.push_back(std::move(p)); });
  ASSERT_FALSE(child);
  EXPECT_NE(child.error().what.find("seccomp filter"), std::string::npos)
      << child.error().ToString();
  EXPECT_EQ(child.error().sys_errno, EINVAL);
  EXPECT_TRUE(zygote->ok()) << "a failed launch is not a failed zygote";
  EXPECT_EQ(handed.size(), 3u) << "the joiner, the init and the program";
  for (auto& p : handed) EXPECT_EQ(ParentOf(p.pid()), ::getpid()) << p.pid();
  // Each kills (already done) and reaps, in the order handed: the program first, since its init
  // cannot finish exiting while the program is unreaped.
  for (auto& p : handed) p = ChildProcess();
  for (pid_t pid : ChildrenOf(::getpid())) {
    EXPECT_TRUE(pid == holder->pid() || pid == zygote->pid()) << "left behind: " << pid;
  }

  // The zygote serves the next request as before.
  auto again = zygote->Launch(spec, [&](ChildProcess p) { handed.push_back(std::move(p)); });
  EXPECT_FALSE(again);
  EXPECT_TRUE(zygote->ok());
}

// Launches sent together are answered in the order sent, each once, through Receive(), with
// nothing waited for in between; a launch cancelled in flight gets no answer, and every process
// it made is killed and handed back to be reaped.
TEST(ZygoteLaunchTest, LaunchesInFlightAreAnsweredInOrderAndACancelledOneLeavesNothing) {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) GTEST_SKIP() << "no user namespaces here: " << holder.error().ToString();
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(dev_null.valid());
  auto zygote = Zygote::Start(BinPath("sbx-zygote"), *holder, dev_null.get());
  ASSERT_TRUE(zygote) << zygote.error().ToString();
  std::vector<ChildProcess> handed;
  zygote->SetReapLater([&](ChildProcess p) { handed.push_back(std::move(p)); });
  UniqueFd exe(::open(BinPath("sbx-renderer").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(exe.valid());
  LaunchSpec spec = FailingLaunch(
      *holder, dev_null.get(), exe.get());  // fails at the filter, after all three processes exist

  std::vector<std::string> answered;
  auto record = [&](const char* name) {
    return [&answered, name](Result<LaunchedChild> r) {
      answered.push_back(std::string(name) + (r ? ":ok" : ":" + r.error().what));
    };
  };
  auto first = zygote->Submit(spec, record("first"));
  auto second = zygote->Submit(spec, record("second"));
  auto third = zygote->Submit(spec, record("third"));
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(zygote->in_flight(), 3u);
  EXPECT_GT(zygote->deadline_ns(), MonotonicNs());
  zygote->Cancel(*second);
  exe.reset();  // the requests hold their own copies of every fd they name
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (zygote->in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(WaitReadable(zygote->socket(), 1000).has_value());
    zygote->Receive();
  }
  ASSERT_EQ(answered.size(), 2u);
  EXPECT_EQ(answered[0].rfind("first:", 0), 0u) << answered[0];
  EXPECT_NE(answered[0].find("seccomp filter"), std::string::npos) << answered[0];
  EXPECT_EQ(answered[1].rfind("third:", 0), 0u) << answered[1];
  EXPECT_EQ(zygote->deadline_ns(), 0);
  EXPECT_TRUE(zygote->ok());
  EXPECT_EQ(handed.size(), 9u) << "three processes for each of the three launches";
  for (auto& p : handed) p = ChildProcess();
  for (pid_t pid : ChildrenOf(::getpid())) {
    EXPECT_TRUE(pid == holder->pid() || pid == zygote->pid()) << "left behind: " << pid;
  }
}

// A zygote that fails with launches in flight fails each of them, once, and leaves none of their
// processes behind.
TEST(ZygoteLaunchTest, AZygoteThatFailsFailsEveryLaunchInFlight) {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) GTEST_SKIP() << "no user namespaces here: " << holder.error().ToString();
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  auto zygote = Zygote::Start(BinPath("sbx-zygote"), *holder, dev_null.get());
  ASSERT_TRUE(zygote) << zygote.error().ToString();
  UniqueFd exe(::open(BinPath("sbx-renderer").c_str(), O_RDONLY | O_CLOEXEC));
  LaunchSpec spec = FailingLaunch(*holder, dev_null.get(), exe.get());
  // Stopped, it answers nothing until it is gone.
  ASSERT_EQ(::kill(zygote->pid(), SIGSTOP), 0);
  ASSERT_TRUE(WaitProcessStopped(zygote->pid(), kTimeout));
  std::vector<Errc> failed;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(zygote->Submit(spec, [&](Result<LaunchedChild> r) {
      ASSERT_FALSE(r);
      failed.push_back(r.error().code);
    }));
  }
  zygote->Expire(zygote->deadline_ns() - 1);
  EXPECT_TRUE(zygote->ok()) << "not yet due";
  EXPECT_TRUE(failed.empty());
  zygote->Expire(zygote->deadline_ns());
  EXPECT_FALSE(zygote->ok());
  EXPECT_EQ(failed, (std::vector<Errc>{Errc::kTimeout, Errc::kTimeout}));
  EXPECT_EQ(zygote->in_flight(), 0u);
  for (pid_t pid : ChildrenOf(::getpid())) EXPECT_EQ(pid, holder->pid()) << "left behind: " << pid;
}

// A request that cannot be sent (the zygote died meanwhile) fails the zygote, and the launch is
// told so through its own `done`, once, as every launch in flight is.
TEST(ZygoteLaunchTest, ALaunchSentToADeadZygoteIsToldThroughItsDone) {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) GTEST_SKIP() << "no user namespaces here: " << holder.error().ToString();
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  auto zygote = Zygote::Start(BinPath("sbx-zygote"), *holder, dev_null.get());
  ASSERT_TRUE(zygote) << zygote.error().ToString();
  ASSERT_EQ(::kill(zygote->pid(), SIGKILL), 0);
  ASSERT_TRUE(WaitReadable(zygote->pidfd(), 10'000).value_or(false));
  UniqueFd exe(::open(BinPath("sbx-renderer").c_str(), O_RDONLY | O_CLOEXEC));
  LaunchSpec spec = FailingLaunch(*holder, dev_null.get(), exe.get());
  std::vector<Errc> told;
  auto ticket = zygote->Submit(spec, [&](Result<LaunchedChild> r) {
    ASSERT_FALSE(r);
    told.push_back(r.error().code);
  });
  ASSERT_FALSE(ticket);
  EXPECT_EQ(ticket.error().code, Errc::kPeerClosed);
  EXPECT_EQ(told, std::vector<Errc>{Errc::kPeerClosed});
  EXPECT_FALSE(zygote->ok());
  EXPECT_EQ(zygote->in_flight(), 0u);
}

// The processes a zygote announced before it failed are the broker's, whether or not the broker
// has read the announcements: Fail reads what is left on the socket and hands every one back.
TEST(ZygoteLaunchTest, AZygoteThatFailsWithAnswersUnreadLeavesNothingBehind) {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) GTEST_SKIP() << "no user namespaces here: " << holder.error().ToString();
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  auto zygote = Zygote::Start(BinPath("sbx-zygote"), *holder, dev_null.get());
  ASSERT_TRUE(zygote) << zygote.error().ToString();
  std::vector<ChildProcess> handed;
  zygote->SetReapLater([&](ChildProcess p) { handed.push_back(std::move(p)); });
  UniqueFd exe(::open(BinPath("sbx-renderer").c_str(), O_RDONLY | O_CLOEXEC));
  LaunchSpec spec = FailingLaunch(
      *holder, dev_null.get(), exe.get());  // fails after all three processes exist, and kills them
  std::vector<Errc> told;
  ASSERT_TRUE(zygote->Submit(spec, [&](Result<LaunchedChild> r) {
    ASSERT_FALSE(r);
    told.push_back(r.error().code);
  }));
  // The launch has failed once the joiner and the program are zombies of ours (the init cannot
  // finish exiting while the program is unreaped) and the zygote's three announcements wait on
  // the socket: its unread bytes (SIOCINQ counts every packet of a SOCK_SEQPACKET socket) hold
  // them. A zygote killed before it announces a process it made is another case than this one.
  auto zombies = [&] {
    int n = 0;
    for (pid_t pid : ChildrenOf(::getpid())) {
      if (StatusField(pid, "State").rfind("Z", 0) == 0) ++n;
    }
    return n;
  };
  const int announced = 3 * static_cast<int>(zygote::EncodeChild({}).size());
  auto unread = [&] {
    int n = 0;
    return ::ioctl(zygote->socket(), SIOCINQ, &n) == 0 ? n : -1;
  };
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while ((zombies() < 2 || unread() < announced) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // polled against a deadline: nothing to wait on
  }
  ASSERT_EQ(zombies(), 2);
  ASSERT_GE(unread(), announced);
  ASSERT_EQ(ChildrenOf(::getpid()).size(), 5u) << "the holder, the zygote and three of the launch";
  zygote->Fail(Error{Errc::kPeerClosed, 0, "failed by the test"});
  EXPECT_EQ(told, std::vector<Errc>{Errc::kPeerClosed});
  EXPECT_EQ(handed.size(), 3u) << "the joiner, the init and the program";
  for (auto& p : handed) p = ChildProcess();
  for (pid_t pid : ChildrenOf(::getpid())) EXPECT_EQ(pid, holder->pid()) << "left behind: " << pid;
}

// A zygote stopped after it announced a launch's joiner, but before it announced the init and
// the program the joiner went on to make, and then failed: nobody will announce those two, and
// Fail takes them all the same (the joiner's process group names them), so nothing is left.
TEST(ZygoteLaunchTest, AZygoteThatFailsBeforeAnnouncingALaunchsInitAndProgramLeavesNothing) {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) GTEST_SKIP() << "no user namespaces here: " << holder.error().ToString();
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  UniqueFd exe(::open(BinPath("sbx-renderer").c_str(), O_RDONLY | O_CLOEXEC));
  // An announcement's size depends on the pid in it; none is shorter than pid 0's.
  const int shortest = static_cast<int>(zygote::EncodeChild({}).size());
  // The zygote announces the joiner at once and the other two only once the joiner has made
  // both, which takes it far longer than the stop below; should the stop come late all the same
  // (the zygote announced all three), the attempt is repeated with a new zygote.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto zygote = Zygote::Start(BinPath("sbx-zygote"), *holder, dev_null.get());
    ASSERT_TRUE(zygote) << zygote.error().ToString();
    std::vector<ChildProcess> handed;
    zygote->SetReapLater([&](ChildProcess p) { handed.push_back(std::move(p)); });
    ASSERT_TRUE(zygote->Submit(FailingLaunch(*holder, dev_null.get(), exe.get()),
                               [](Result<LaunchedChild>) {}));
    auto unread = [&] {
      int n = 0;
      return ::ioctl(zygote->socket(), SIOCINQ, &n) == 0 ? n : -1;
    };
    auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (unread() < shortest && std::chrono::steady_clock::now() < deadline) {
    }  // polled without a pause: the stop must come within microseconds of the announcement
    ASSERT_EQ(::kill(zygote->pid(), SIGSTOP), 0);
    ASSERT_TRUE(WaitProcessStopped(zygote->pid(), kTimeout));
    const bool only_the_joiner = unread() >= shortest && unread() < 2 * shortest;
    if (only_the_joiner) {
      // The holder, the zygote, the joiner (a zombie once done), the init and the program (a
      // zombie: the launch fails at its filter).
      while (ChildrenOf(::getpid()).size() < 5 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);  // polled against a deadline: nothing to wait on
      }
      ASSERT_EQ(ChildrenOf(::getpid()).size(), 5u);
    }
    zygote->Fail(Error{Errc::kPeerClosed, 0, "failed by the test"});
    for (auto& p : handed) p = ChildProcess();
    for (pid_t pid : ChildrenOf(::getpid())) {
      EXPECT_EQ(pid, holder->pid()) << "left behind: " << pid << " " << StatusField(pid, "Name");
    }
    if (only_the_joiner) {
      EXPECT_EQ(handed.size(), 3u) << "the joiner, and the init and program nobody announced";
      return;
    }
  }
  GTEST_SKIP() << "the zygote announced the whole launch before every stop";
}

TEST(ZygoteLaunchTest, ItRefusesALaunchThatNeedsTheFileSystem) {
  auto holder = NamespaceHolder::Create(::geteuid(), ::getegid(), "/mnt");
  if (!holder) GTEST_SKIP() << "no user namespaces here: " << holder.error().ToString();
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  auto zygote = Zygote::Start(BinPath("sbx-zygote"), *holder, dev_null.get());
  ASSERT_TRUE(zygote) << zygote.error().ToString();
  LaunchSpec spec;
  spec.argv = {BinPath("sbx-renderer")};
  spec.namespaces = NamespaceSpec{holder->pidfd()};
  auto child = zygote->Launch(spec, [](ChildProcess) {});
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(zygote->ok());
}

TEST(ZygoteLaunchTest, ItRefusesToRunByHand) {
  LaunchSpec spec;
  spec.argv = {BinPath("sbx-zygote")};
  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  spec.stdio = {dev_null.get(), dev_null.get(), dev_null.get()};
  auto child = Launch(spec);
  ASSERT_TRUE(child) << child.error().ToString();
  ASSERT_TRUE(WaitReadable(child->process.pidfd(), 10'000).value_or(false));
  auto exit = child->process.TryReap();
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->code, 2);
}

}  // namespace
}  // namespace sbx::testing
