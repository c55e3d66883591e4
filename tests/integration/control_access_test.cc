// Who may drive a broker: only its own uid, checked with SO_PEERCRED on every connection.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/test_util.h"

namespace sbx::testing {
namespace {

using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;

TEST(ControlAccessTest, AnotherUidIsRefusedEvenWhenTheFileLetsItConnect) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as a second uid";
  BrokerProcess b({});
  ASSERT_TRUE(b.started());
  ASSERT_TRUE(b.Ctl("stats").contains("renderers"));
  // Past the file's own permission check, so what refuses it can only be the broker.
  ASSERT_EQ(::chmod(b.control_path().c_str(), 0777), 0) << std::strerror(errno);

  auto report = MakePipe(false);
  ASSERT_TRUE(report.has_value());
  const int out = report->write.get();
  const std::string path = b.control_path();
  test::Child child = test::ForkChild([out, &path] {
    if (::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      ::_exit(3);
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::_exit(4);
    }
    static constexpr char kList[] = "list\n";
    (void)::send(fd.get(), kList, sizeof kList - 1, MSG_NOSIGNAL);
    // Whatever comes back before the broker hangs up goes to the test.
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
  auto text = test::ReadAllWithin(report->read.get());
  auto exit = test::WaitForExit(child.pidfd.get());
  ASSERT_TRUE(exit.has_value());
  ASSERT_EQ(exit->si_code, CLD_EXITED);
  ASSERT_EQ(exit->si_status, 0) << "3: could not become nobody, 4: could not connect";
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "{\"error\":\"permission denied\"}\n") << "no list for another uid";
  // And the broker's own uid is still served.
  EXPECT_TRUE(b.Ctl("list").contains("renderers"));
}

}  // namespace
}  // namespace sbx::testing
