// Where the control socket lives when --control is not given: a private directory under
// $XDG_RUNTIME_DIR, else /tmp/sbx-UID (created if missing, as sbx-broker would). Each test runs
// in a process of its own under ctest, and puts the environment back for a run by hand.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "broker/control_server.h"
#include "tests/unit/test_util.h"

namespace sbx {
namespace {

// Puts XDG_RUNTIME_DIR back as it was, for the rest of the binary when it is run by hand.
class ControlPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg != nullptr) saved_ = xdg;
  }
  void TearDown() override {
    if (saved_) {
      (void)::setenv("XDG_RUNTIME_DIR", saved_->c_str(), 1);
    } else {
      (void)::unsetenv("XDG_RUNTIME_DIR");
    }
  }

 private:
  std::optional<std::string> saved_;
};

TEST_F(ControlPathTest, UnderXdgRuntimeDirInAPrivateDirectory) {
  test::ScratchDir xdg("sbx-control-path");
  ASSERT_FALSE(xdg.path().empty());
  ASSERT_EQ(::setenv("XDG_RUNTIME_DIR", xdg.path().c_str(), 1), 0);
  auto path = DefaultControlPath();
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(*path, xdg.path() + "/sbx/control");
  struct stat st {};
  ASSERT_EQ(::stat((xdg.path() + "/sbx").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(ControlPathTest, ADirectoryOthersCanEnterIsRefused) {
  test::ScratchDir xdg("sbx-control-path");
  ASSERT_FALSE(xdg.path().empty());
  const std::string dir = xdg.path() + "/sbx";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);  // whatever the umask made of it
  ASSERT_EQ(::setenv("XDG_RUNTIME_DIR", xdg.path().c_str(), 1), 0);
  auto path = DefaultControlPath();
  ASSERT_FALSE(path) << "accepted " << *path;
  EXPECT_NE(path.error().what.find("0700"), std::string::npos) << path.error().ToString();
}

// Another user made the directory first (on /tmp anyone can): the error names the owner and the
// ways out, since this user cannot remove it.
TEST_F(ControlPathTest, ADirectoryOfAnotherUserIsRefusedWithTheWayOut) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to give a directory to another uid";
  test::ScratchDir xdg("sbx-control-path");
  ASSERT_FALSE(xdg.path().empty());
  const std::string dir = xdg.path() + "/sbx";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::setenv("XDG_RUNTIME_DIR", xdg.path().c_str(), 1), 0);
  auto path = DefaultControlPath();
  ASSERT_FALSE(path) << "accepted " << *path;
  const std::string& what = path.error().what;
  EXPECT_NE(what.find("belongs to uid 65534"), std::string::npos) << what;
  EXPECT_NE(what.find("--control PATH"), std::string::npos) << what;
  EXPECT_NE(what.find("XDG_RUNTIME_DIR"), std::string::npos) << what;
}

TEST_F(ControlPathTest, WithoutXdgRuntimeDirUnderTmpByUid) {
  ASSERT_EQ(::unsetenv("XDG_RUNTIME_DIR"), 0);
  auto path = DefaultControlPath();
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(*path, "/tmp/sbx-" + std::to_string(::geteuid()) + "/control");
}

}  // namespace
}  // namespace sbx
