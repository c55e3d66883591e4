// The sbx binary as people and scripts run it: without a display, driven through its control
// socket like sbx-broker, and closed by SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <QProcess>
#include <QProcessEnvironment>
#include <nlohmann/json.hpp>

#include "tests/ui/ui_test_util.h"
#include "tests/unit/test_util.h"

namespace sbx::ui::testing {
namespace {

// Reads the JSON events sbx prints with --json until one matches (or the deadline).
std::optional<nlohmann::json> WaitForJson(QProcess& p, std::string& buffer,
                                          const std::function<bool(const nlohmann::json&)>& match,
                                          std::chrono::milliseconds timeout) {
  std::optional<nlohmann::json> found;
  WaitUntil(
      [&] {
        buffer += p.readAllStandardOutput().toStdString();
        size_t nl;
        while (!found && (nl = buffer.find('\n')) != std::string::npos) {
          auto j = nlohmann::json::parse(buffer.substr(0, nl), nullptr, false);
          buffer.erase(0, nl + 1);
          if (!j.is_discarded() && match(j)) found = j;
        }
        return found.has_value();
      },
      timeout);
  return found;
}

TEST(AppTest, WithoutADisplayItSaysWhatToRunInstead) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.remove(QStringLiteral("DISPLAY"));
  env.remove(QStringLiteral("WAYLAND_DISPLAY"));
  env.remove(QStringLiteral("QT_QPA_PLATFORM"));
  p.setProcessEnvironment(env);
  p.start(QString::fromStdString(BinPath("sbx")),
          {QStringLiteral("--renderers"), QStringLiteral("1")});
  ASSERT_TRUE(p.waitForFinished(10'000));
  EXPECT_EQ(p.exitStatus(), QProcess::NormalExit) << "a Qt abort is not a clear message";
  EXPECT_EQ(p.exitCode(), 1);
  QString err = QString::fromUtf8(p.readAllStandardError());
  EXPECT_TRUE(err.contains(QStringLiteral("sbx-broker"))) << err.toStdString();
  EXPECT_TRUE(err.contains(QStringLiteral("QT_QPA_PLATFORM=offscreen"))) << err.toStdString();
}

TEST(AppTest, ScriptsDriveTheWindowThroughItsControlSocketAndSigtermClosesIt) {
  test::ScratchDir dir("sbx-ui-test");
  ASSERT_FALSE(dir.path().empty());
  std::string control = dir.path() + "/control";
  QProcess sbx;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
  sbx.setProcessEnvironment(env);
  sbx.start(QString::fromStdString(BinPath("sbx")),
            {QStringLiteral("--renderers"), QStringLiteral("1"), QStringLiteral("--json"),
             QStringLiteral("--control"), QString::fromStdString(control)});
  ASSERT_TRUE(sbx.waitForStarted(10'000));
  std::string buffer;
  auto ready = WaitForJson(
      sbx, buffer, [](const auto& j) { return j["event"] == "ready" && j["id"] == 1; }, 20s);
  ASSERT_TRUE(ready) << sbx.readAllStandardError().toStdString();
  pid_t first_pid = ready->value("pid", 0);

  // The same command sbx-ctl sends to sbx-broker.
  QProcess ctl;
  ctl.start(QString::fromStdString(BinPath("sbx-ctl")),
            {QStringLiteral("--control"), QString::fromStdString(control), QStringLiteral("spawn"),
             QStringLiteral("sbx://clock")});
  ASSERT_TRUE(ctl.waitForFinished(10'000));
  EXPECT_EQ(ctl.exitCode(), 0) << ctl.readAllStandardOutput().toStdString();
  auto reply = nlohmann::json::parse(ctl.readAllStandardOutput().toStdString(), nullptr, false);
  ASSERT_FALSE(reply.is_discarded());
  EXPECT_EQ(reply["id"], 2);
  auto second = WaitForJson(
      sbx, buffer, [](const auto& j) { return j["event"] == "ready" && j["id"] == 2; }, 20s);
  ASSERT_TRUE(second);
  pid_t second_pid = second->value("pid", 0);

  // SIGTERM: every renderer closed and reaped, then a clean exit.
  ASSERT_EQ(::kill(static_cast<pid_t>(sbx.processId()), SIGTERM), 0);
  ASSERT_TRUE(WaitUntil([&] { return sbx.state() == QProcess::NotRunning; }, 20s));
  EXPECT_EQ(sbx.exitStatus(), QProcess::NormalExit);
  EXPECT_EQ(sbx.exitCode(), 0) << sbx.readAllStandardError().toStdString();
  buffer += sbx.readAllStandardOutput().toStdString();
  EXPECT_NE(buffer.find("\"event\":\"closed\""), std::string::npos) << buffer;
  for (pid_t pid : {first_pid, second_pid}) {
    ASSERT_GT(pid, 0);
    EXPECT_NE(::kill(pid, 0), 0) << "renderer " << pid << " outlived the window";
  }
  EXPECT_NE(::access(control.c_str(), F_OK), 0) << "the control socket is removed";
}

}  // namespace
}  // namespace sbx::ui::testing
