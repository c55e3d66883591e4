// docs/LAB.md, run as written: every command block of every exercise runs against real brokers
// and the lines each "expect" block names must appear, so the lab cannot drift from the
// programs. The one liberty taken: the lab's port 4321 becomes a free one, so parallel test
// runs do not collide; and XDG_RUNTIME_DIR points into a scratch directory, so the lab's
// default control socket is this test's own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/test_util.h"

extern char** environ;

namespace sbx::testing {
namespace {

constexpr int kCommandDeadlineMs = 60'000;  // sbx-bench --lecture --quick on a loaded machine
constexpr int kExpectDeadlineMs = 20'000;

struct Block {
  std::string info;  // the fence's info string: "sh", "terminal broker", "expect", ...
  std::string body;
};

struct Exercise {
  std::string title;
  std::vector<Block> blocks;
};

std::string ReadLab() {
  std::ifstream in(std::string(SBX_SOURCE_DIR) + "/docs/LAB.md");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<Exercise> ParseLab(const std::string& text) {
  std::vector<Exercise> out;
  std::istringstream in(text);
  std::optional<Block> open;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("```")) {
      if (open) {
        if (!out.empty()) out.back().blocks.push_back(std::move(*open));
        open.reset();
      } else {
        open = Block{line.substr(3), ""};
      }
    } else if (open) {
      open->body += line + "\n";
    } else if (line.starts_with("## ")) {
      out.push_back({line.substr(3), {}});
    }
  }
  return out;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

int FreeLoopbackPort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  return ntohs(a.sin_port);
}

// One `bash -c` in its own process group, its stdout and stderr on one pipe, as in a terminal.
class Shell {
 public:
  Shell(const std::string& command, const std::string& cwd, const std::vector<std::string>& env,
        bool interactive) {
    auto out = MakePipe(false);
    auto in = MakePipe(false);
    if (!out || !in) return;
    std::vector<std::string> argv_s = {"/bin/bash", "-o", "pipefail", "-c", command};
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const int out_w = out->write.get(), in_r = in->read.get();
    child_.emplace(test::ForkChild([&] {
      (void)::setpgid(0, 0);
      int null_fd = ::open("/dev/null", O_RDONLY);
      if (::dup2(interactive ? in_r : null_fd, 0) < 0 || ::dup2(out_w, 1) < 0 ||
          ::dup2(out_w, 2) < 0 || ::chdir(cwd.c_str()) != 0) {
        ::_exit(126);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }));
    out_ = std::move(out->read);
    (void)SetNonBlocking(out_.get(), true);
    if (interactive) stdin_ = std::move(in->write);
  }
  ~Shell() {
    if (child_ && child_->pid > 0 && !exited_) (void)::kill(-child_->pid, SIGKILL);
  }

  bool started() const { return child_ && child_->pidfd.valid() && out_.valid(); }
  int out_fd() const { return out_.get(); }
  const std::string& output() const { return output_; }

  // Reads whatever is there without waiting.
  void Drain() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(out_.get(), buf, sizeof buf);
      if (n <= 0) return;
      output_.append(buf, static_cast<size_t>(n));
    }
  }
  bool Type(const std::string& text) {
    return stdin_ &&
           WriteAll(stdin_.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  void CloseStdin() { stdin_.reset(); }
  bool Exited() {
    if (exited_) return true;
    if (!started()) return false;
    pollfd p{child_->pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) != 1) return false;
    siginfo_t si{};
    if (::waitid(P_PIDFD, static_cast<id_t>(child_->pidfd.get()), &si, WEXITED) != 0) return false;
    exited_ = true;
    status_ = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    return true;
  }
  int status() const { return status_; }
  // SIGTERM to the command itself (a broker closes its renderers on it); the group goes with
  // SIGKILL in the destructor if it has not left by then.
  void Terminate() {
    if (started() && !exited_) (void)::kill(child_->pid, SIGTERM);
  }

 private:
  std::optional<test::Child> child_;
  UniqueFd out_;
  UniqueFd stdin_;
  std::string output_;
  bool exited_ = false;
  int status_ = -1;
};

// The expected lines not found in `output`: each must be part of a line, each line used once.
std::vector<std::string> Missing(const std::string& expected, const std::string& output) {
  std::vector<std::string> lines = test::SplitLines(output);
  std::vector<bool> used(lines.size(), false);
  std::vector<std::string> missing;
  for (const std::string& want : test::SplitLines(expected)) {
    bool found = false;
    for (size_t i = 0; i < lines.size() && !found; ++i) {
      if (!used[i] && lines[i].find(want) != std::string::npos) found = used[i] = true;
    }
    if (!found) missing.push_back(want);
  }
  return missing;
}

class Lab {
 public:
  Lab(std::string dir, int port) : dir_(std::move(dir)), port_(port) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view v(*e);
      if (v.starts_with("XDG_RUNTIME_DIR=") || v.starts_with("SBX_CONTROL=")) continue;
      env_.emplace_back(v);
    }
    env_.push_back("XDG_RUNTIME_DIR=" + dir_ + "/run");
  }
  ~Lab() {
    for (auto& [name, t] : terminals_) t->Terminate();
    int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
    for (auto& [name, t] : terminals_) {
      while (!t->Exited() && MonotonicNs() < deadline) PumpAll(nullptr, 20);
    }
  }

  bool Prepare() {
    std::error_code ec;
    std::filesystem::create_directories(dir_ + "/build", ec);
    std::filesystem::create_directory_symlink(std::filesystem::path(BinPath("x")).parent_path(),
                                              dir_ + "/build/bin", ec);
    return !ec && ::mkdir((dir_ + "/run").c_str(), 0700) == 0;
  }

  void Run(const Exercise& ex) {
    SCOPED_TRACE(ex.title);
    Shell* last = nullptr;   // the block an "expect" refers to
    size_t broker_mark = 0;  // terminal 1's output before the last command
    size_t last_mark = 0;
    for (size_t i = 0; i < ex.blocks.size(); ++i) {
      const Block& b = ex.blocks[i];
      std::string body = ReplaceAll(b.body, "4321", std::to_string(port_));
      if (b.info.starts_with("terminal ")) {
        auto& t = terminals_[b.info.substr(9)];
        t = std::make_unique<Shell>(body, dir_, env_, false);
        ASSERT_TRUE(t->started()) << body;
        last = t.get();
        last_mark = 0;
      } else if (b.info == "sh") {
        broker_mark = BrokerOutputSize();
        bool typed = i + 1 < ex.blocks.size() && ex.blocks[i + 1].info == "type";
        commands_.push_back(std::make_unique<Shell>(body, dir_, env_, typed));
        last = commands_.back().get();
        last_mark = 0;
        ASSERT_TRUE(last->started()) << body;
        if (typed) {
          std::string expect =
              i + 2 < ex.blocks.size() && ex.blocks[i + 2].info == "expect"
                  ? ReplaceAll(ex.blocks[i + 2].body, "4321", std::to_string(port_))
                  : "";
          RunInteractive(*last, ex.blocks[i + 1].body, expect);
          ++i;
        } else {
          WaitExit(*last, body);
        }
      } else if (b.info == "expect" || b.info == "expect broker") {
        Shell* target = b.info == "expect" ? last : Terminal("broker");
        ASSERT_NE(target, nullptr) << "an expect block with nothing before it";
        size_t from = b.info == "expect" ? last_mark : broker_mark;
        AwaitLines(*target, from, body);
      } else {
        ADD_FAILURE() << "unknown block kind: " << b.info;
      }
    }
  }

 private:
  Shell* Terminal(const std::string& name) {
    auto it = terminals_.find(name);
    return it == terminals_.end() ? nullptr : it->second.get();
  }
  size_t BrokerOutputSize() {
    Shell* b = Terminal("broker");
    if (!b) return 0;
    b->Drain();
    return b->output().size();
  }

  // Reads every terminal (a full pipe would stall a broker that logs, such as strace's) and
  // `also`, waiting up to `ms` for any of them.
  void PumpAll(Shell* also, int ms) {
    std::vector<pollfd> fds;
    for (auto& [name, t] : terminals_) fds.push_back({t->out_fd(), POLLIN, 0});
    if (also) fds.push_back({also->out_fd(), POLLIN, 0});
    (void)::poll(fds.data(), fds.size(), ms);
    for (auto& [name, t] : terminals_) t->Drain();
    if (also) also->Drain();
  }

  void WaitExit(Shell& s, const std::string& body) {
    int64_t deadline = test::DeadlineIn(kCommandDeadlineMs);
    while (!s.Exited() && MonotonicNs() < deadline) PumpAll(&s, 50);
    s.Drain();
    ASSERT_TRUE(s.Exited()) << body << "\ndid not finish; it printed:\n" << s.output();
    EXPECT_EQ(s.status(), 0) << body << "\nprinted:\n" << s.output();
  }

  void AwaitLines(Shell& s, size_t from, const std::string& expected) {
    int64_t deadline = test::DeadlineIn(kExpectDeadlineMs);
    std::vector<std::string> missing;
    for (;;) {
      s.Drain();
      missing = Missing(expected, s.output().substr(std::min(from, s.output().size())));
      if (missing.empty() || MonotonicNs() >= deadline) break;
      PumpAll(&s, 50);
    }
    std::string list;
    for (const auto& m : missing) list += "  " + m + "\n";
    EXPECT_TRUE(missing.empty()) << "missing lines:\n"
                                 << list << "in:\n"
                                 << s.output().substr(from);
  }

  // Types the lines, keeps stdin open until the expected lines are there, then ends the input
  // as Ctrl+D would; what the command exits with after that is not the lab's point.
  void RunInteractive(Shell& s, const std::string& typed, const std::string& expected) {
    ASSERT_TRUE(s.Type(typed));
    AwaitLines(s, 0, expected);
    s.CloseStdin();
    int64_t deadline = test::DeadlineIn(test::kDeadlineMs);
    while (!s.Exited() && MonotonicNs() < deadline) PumpAll(&s, 50);
    EXPECT_TRUE(s.Exited()) << "still running once its input ended";
  }

  std::string dir_;
  int port_;
  std::vector<std::string> env_;
  std::map<std::string, std::unique_ptr<Shell>> terminals_;
  std::vector<std::unique_ptr<Shell>> commands_;
};

TEST(LabTest, EveryExerciseSaysWhatToDoAndWhatToExpect) {
  auto exercises = ParseLab(ReadLab());
  ASSERT_GE(exercises.size(), 9u) << "docs/LAB.md not found or cut short";
  for (const auto& ex : exercises) {
    bool runs = false, expects = false;
    for (const auto& b : ex.blocks) {
      runs |= b.info == "sh" || b.info.starts_with("terminal ");
      expects |= b.info.starts_with("expect");
    }
    EXPECT_TRUE(runs && expects) << ex.title << ": a command and an expect block each";
  }
}

TEST(LabTest, TheLabRunsAsWritten) {
  test::ScratchDir dir("sbx-lab");
  ASSERT_FALSE(dir.path().empty());
  int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  test::ScopedIgnoreSigpipe no_sigpipe;
  Lab lab(dir.path(), port);
  ASSERT_TRUE(lab.Prepare());
  for (const auto& ex : ParseLab(ReadLab())) {
    lab.Run(ex);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace sbx::testing
