// sbx-bench --lecture: every row of the lecture's table is there with its units, and the facts
// that cannot come out otherwise do not. Timings are never asserted: only that they exist.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "ipc/posix.h"
#include "tests/integration/harness.h"
#include "tests/unit/test_util.h"

namespace sbx::testing {
namespace {

using nlohmann::json;

// The rows by name, from one quick run.
std::map<std::string, json> RunLecture() {
  auto out = MakePipe(false);
  if (!out) return {};
  std::string bench = BinPath("sbx-bench");
  const int w = out->write.get();
  test::Child child = test::ForkChild([&] {
    if (::dup2(w, 1) < 0) ::_exit(126);
    ::execl(bench.c_str(), bench.c_str(), "--lecture", "--quick", "--json", nullptr);
    ::_exit(127);
  });
  out->write.reset();
  auto text = test::ReadAllWithin(out->read.get(), 120'000);
  auto exit = test::WaitForExit(child.pidfd.get());
  EXPECT_TRUE(exit && exit->si_code == CLD_EXITED && exit->si_status == 0)
      << "sbx-bench --lecture did not measure every row";
  std::map<std::string, json> rows;
  if (!text) return rows;
  for (const auto& line : test::SplitLines(*text)) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    if (j.is_object() && j.contains("name")) rows[j["name"].get<std::string>()] = j;
  }
  return rows;
}

class LectureTest : public ::testing::Test {
 protected:
  // One run for the whole suite: a run takes seconds.
  static const std::map<std::string, json>& Rows() {
    static const std::map<std::string, json> rows = RunLecture();
    return rows;
  }
  static const json* Row(const std::string& name) {
    auto it = Rows().find(name);
    return it == Rows().end() ? nullptr : &it->second;
  }
  static std::string Fact(const std::string& row, const std::string& label) {
    const json* r = Row(row);
    if (!r) return "(no row " + row + ")";
    for (const auto& c : (*r)["cells"]) {
      if (c.value("label", "") == label) return c.value("fact", "(a number, not a fact)");
    }
    return "(no cell " + label + ")";
  }
};

TEST_F(LectureTest, EveryRowOfTheTableIsMeasuredWithItsUnits) {
  const std::set<std::string> units = {"us", "ms", "KiB", "ns/page", "MiB/s"};
  const char* expected[] = {"thread vs process",
                            "fork+exec",
                            "sbx renderer",
                            "memory per thread",
                            "memory per process",
                            "sandboxed renderer",
                            "switch on one CPU",
                            "a thread's write",
                            "a child's write",
                            "fork as the parent grows",
                            "copy-on-write",
                            "pipe",
                            "Unix socket",
                            "TCP loopback",
                            "signal",
                            "shared memory",
                            "POSIX queue"};
  for (const char* name : expected) {
    const json* row = Row(name);
    ASSERT_NE(row, nullptr) << "no row " << name;
    EXPECT_FALSE(row->value("section", "").empty()) << name;
    EXPECT_FALSE(row->value("says", "").empty()) << name << ": a sentence saying what it shows";
    ASSERT_TRUE((*row)["cells"].is_array() && !(*row)["cells"].empty()) << name;
    for (const auto& c : (*row)["cells"]) {
      if (c.contains("fact")) continue;
      ASSERT_TRUE(c.contains("value") && c["value"].is_number()) << name << ": " << c.dump();
      EXPECT_TRUE(std::isfinite(c["value"].get<double>())) << name << ": " << c.dump();
      EXPECT_TRUE(units.contains(c.value("unit", ""))) << name << ": " << c.dump();
    }
  }
}

TEST_F(LectureTest, AChildsWriteIsNeverSeenByItsParentAndAThreadsAlwaysIs) {
  EXPECT_EQ(Fact("a child's write", "seen by the parent"), "not seen");
  EXPECT_EQ(Fact("a child's write", "at the same virtual address"), "yes");
  EXPECT_EQ(Fact("a thread's write", "seen by the other thread"), "seen");
}

TEST_F(LectureTest, TheIpcRowsPutEveryApproachSideBySide) {
  for (const char* name :
       {"pipe", "Unix socket", "TCP loopback", "signal", "shared memory", "POSIX queue"}) {
    const json* row = Row(name);
    ASSERT_NE(row, nullptr) << name;
    EXPECT_EQ(row->value("section", ""), "ipc") << name;
    ASSERT_EQ((*row)["cells"].size(), 2u) << name << ": 64-byte latency and 1 MiB throughput";
    EXPECT_EQ((*row)["cells"][0].value("unit", ""), "us") << name;
  }
  EXPECT_TRUE((*Row("signal"))["cells"][1].contains("fact")) << "a signal carries no 1 MiB";
}

}  // namespace
}  // namespace sbx::testing
