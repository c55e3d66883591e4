// broker/proc_stats: the /proc parsers the task manager and status bar rest on.
#include "broker/proc_stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

namespace sbx {
namespace {

TEST(ProcStatsTest, StatCountsFieldsFromTheLastParenthesis) {
  // A command name may hold spaces and parentheses; a naive split would read the wrong fields.
  const char* stat =
      "1234 (evil) name (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 "
      "1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
  auto ticks = ParseStatCpuTicks(stat);
  ASSERT_TRUE(ticks);
  EXPECT_EQ(*ticks, 325u);
}

TEST(ProcStatsTest, MalformedInputIsRejected) {
  EXPECT_FALSE(ParseStatCpuTicks(""));
  EXPECT_FALSE(ParseStatCpuTicks("1234 (x S 1 2"));
  EXPECT_FALSE(ParseStatCpuTicks("1234 (x) S 1 2 3"));
  EXPECT_FALSE(ParseStatCpuTicks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 5"));
  EXPECT_FALSE(ParseStatmResidentPages("100"));
  EXPECT_FALSE(ParseStatmResidentPages("100 x 3"));
  EXPECT_FALSE(ParseSmapsRollupPssKb("Rss: 12 kB\n"));
}

TEST(ProcStatsTest, StatmAndSmapsRollup) {
  EXPECT_EQ(ParseStatmResidentPages("2000 512 300 10 0 400 0\n"), 512u);
  const char* rollup =
      "55d0c0000000-7ffd00000000 ---p 00000000 00:00 0    [rollup]\n"
      "Rss:                4096 kB\n"
      "Pss:                1234 kB\n"
      "Pss_Anon:            800 kB\n";
  EXPECT_EQ(ParseSmapsRollupPssKb(rollup), 1234u);
}

TEST(ProcStatsTest, ReadsThisProcess) {
  // Burn a little CPU so the figure cannot be zero.
  volatile uint64_t x = 0;
  for (uint64_t i = 0; i < 50'000'000; ++i) x = x + i;
  std::vector<char> touch(8 << 20, 1);
  auto s = ReadProcStats(::getpid());
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_GT(s->rss_bytes, touch.size());
  EXPECT_GT(s->cpu_ns, 0u);
  ASSERT_TRUE(s->pss_bytes.has_value()) << "our own smaps_rollup is always readable";
  EXPECT_GT(*s->pss_bytes, 0u);
  EXPECT_FALSE(ReadProcStats(0));
}

}  // namespace
}  // namespace sbx
