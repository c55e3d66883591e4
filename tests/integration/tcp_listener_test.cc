// --listen: the control protocol over TCP on loopback, for telnet. Only the broker's uid is
// served (the owner of the connecting socket, from the kernel's socket diagnostics), and only
// loopback addresses are accepted at start.
#include "broker/tcp_listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "broker/broker.h"
#include "broker/cli.h"
#include "broker/control_server.h"
#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/test_util.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;

// A broker in this process with its Unix control socket and a TCP listener on a kernel-picked
// loopback port; the test dispatches its loop.
struct TcpBroker {
  test::ScratchDir dir{"sbx-tcp"};
  std::unique_ptr<Broker> broker;
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<TcpListener> tcp;

  bool Start() {
    BrokerOptions o;
    o.renderer_path = BinPath("sbx-renderer");
    auto b = Broker::Create(std::move(o));
    if (!b) return false;
    broker = std::move(*b);
    auto c = ControlServer::Create(*broker, dir.path() + "/control");
    if (!c) return false;
    control = std::move(*c);
    auto l = StartTcpListener(*broker, *control, "127.0.0.1:0");
    if (!l) return false;
    tcp = std::move(*l);
    return tcp->port() != 0;
  }
};

UniqueFd ConnectLoopback(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The kernel completes a loopback handshake from the backlog, before the broker accepts.
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return UniqueFd();
  }
  return fd;
}

TEST(TcpListenerTest, ASameUidClientIsGreetedAndGetsTheListAsTelnetWouldSendIt) {
  TcpBroker t;
  ASSERT_TRUE(t.Start());
  UniqueFd fd = ConnectLoopback(t.tcp->port());
  ASSERT_TRUE(fd.valid()) << std::strerror(errno);
  ASSERT_TRUE(SetNonBlocking(fd.get(), true));
  // telnet ends each typed line with CR LF.
  static constexpr char kList[] = "list\r\n";
  ASSERT_EQ(::send(fd.get(), kList, sizeof kList - 1, MSG_NOSIGNAL),
            static_cast<ssize_t>(sizeof kList - 1));
  std::string got;
  ASSERT_TRUE(ReceiveLines(*t.broker, fd.get(), 2, got, 10s)) << got;
  auto lines = test::SplitLines(got);
  ASSERT_EQ(lines.size(), 2u) << got;
  EXPECT_EQ(lines[0], TcpListener::kGreeting);
  EXPECT_NE(lines[0].find("help"), std::string::npos);
  EXPECT_EQ(lines[1], "{\"renderers\":[]}");
}

TEST(TcpListenerTest, TheSocketDiagnosticsNameTheOwnerOfALoopbackSocket) {
  TcpBroker t;
  ASSERT_TRUE(t.Start());
  UniqueFd fd = ConnectLoopback(t.tcp->port());
  ASSERT_TRUE(fd.valid());
  sockaddr_storage local{}, remote{};
  socklen_t len = sizeof local;
  ASSERT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len), 0);
  len = sizeof remote;
  ASSERT_EQ(::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&remote), &len), 0);
  auto owner = LocalTcpSocketOwner(local, remote);
  ASSERT_TRUE(owner.has_value()) << owner.error().ToString();
  EXPECT_EQ(*owner, ::geteuid());
  // A 4-tuple no socket has is an error, never a uid.
  reinterpret_cast<sockaddr_in&>(remote).sin_port = htons(1);
  EXPECT_FALSE(LocalTcpSocketOwner(local, remote).has_value());
}

TEST(TcpListenerTest, AnotherUidIsRefusedWithAnErrorLine) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as a second uid";
  TcpBroker t;
  ASSERT_TRUE(t.Start());
  auto report = MakePipe(false);
  ASSERT_TRUE(report.has_value());
  const int out = report->write.get();
  const uint16_t port = t.tcp->port();
  test::Child child = test::ForkChild([out, port] {
    if (::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      ::_exit(3);
    }
    UniqueFd fd = ConnectLoopback(port);
    if (!fd) ::_exit(4);
    static constexpr char kList[] = "list\r\n";
    (void)::send(fd.get(), kList, sizeof kList - 1, MSG_NOSIGNAL);
    char buf[512];
    for (;;) {
      ssize_t n = HandleEintr([&] { return ::read(fd.get(), buf, sizeof buf); });
      if (n <= 0) break;
      if (!WriteAll(out, {reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n)})) break;
    }
    ::_exit(0);
  });
  ASSERT_TRUE(child.pidfd.valid());
  report->write.reset();
  ASSERT_TRUE(SetNonBlocking(report->read.get(), true));
  std::string text;
  bool eof = false;
  ASSERT_TRUE(RunUntil(
      *t.broker,
      [&] {
        char buf[512];
        ssize_t n = ::read(report->read.get(), buf, sizeof buf);
        if (n > 0) text.append(buf, static_cast<size_t>(n));
        eof = n == 0;
        return eof;
      },
      10s));
  auto exit = test::WaitForExit(child.pidfd.get());
  ASSERT_TRUE(exit.has_value());
  ASSERT_EQ(exit->si_code, CLD_EXITED);
  ASSERT_EQ(exit->si_status, 0) << "3: could not become nobody, 4: could not connect";
  EXPECT_EQ(text, "{\"error\":\"permission denied\"}\n") << "no list for another uid";
  EXPECT_EQ(t.control->client_count(), 0u);
}

TEST(TcpListenerTest, OnlyLoopbackAddressesAreAcceptedAtStart) {
  for (const char* ok : {"127.0.0.1:4321", "127.1.2.3:0", "localhost:80", "[::1]:4321"}) {
    EXPECT_TRUE(ParseListenAddress(ok).has_value()) << ok;
  }
  for (const char* bad : {"0.0.0.0:4321", "192.168.1.10:4321", "[::]:4321", "[::ffff:10.0.0.1]:1",
                          "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:x", "example.com:80"}) {
    EXPECT_FALSE(ParseListenAddress(bad).has_value()) << bad;
  }
  const char* argv[] = {"sbx-broker", "--listen", "0.0.0.0:4321"};
  auto cl = ParseCommandLine(3, argv);
  ASSERT_FALSE(cl.has_value());
  EXPECT_NE(cl.error().what.find("only loopback"), std::string::npos) << cl.error().what;
}

}  // namespace
}  // namespace sbx::testing
