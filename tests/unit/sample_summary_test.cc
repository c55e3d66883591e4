#include "broker/sample_summary.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace sbx {
namespace {

TEST(SampleSummaryTest, NoSamplesIsAllZero) {
  SampleSummary s = SummarizeSamples({});
  EXPECT_EQ(s.samples, 0u);
  EXPECT_EQ(s.median_ns, 0);
  EXPECT_EQ(s.p99_ns, 0);
  EXPECT_EQ(s.max_ns, 0);
}

TEST(SampleSummaryTest, MedianOfAnOddAndAnEvenCount) {
  EXPECT_EQ(SummarizeSamples({30, 10, 20}).median_ns, 20);
  EXPECT_EQ(SummarizeSamples({40, 10, 30, 20}).median_ns, 25);  // mean of the middle two
}

TEST(SampleSummaryTest, P99IsTheNearestRank) {
  std::vector<int64_t> hundred;
  for (int64_t i = 100; i >= 1; --i) hundred.push_back(i);  // unsorted on purpose
  SampleSummary s = SummarizeSamples(hundred);
  EXPECT_EQ(s.samples, 100u);
  EXPECT_EQ(s.p99_ns, 99);
  EXPECT_EQ(s.max_ns, 100);
  EXPECT_EQ(s.median_ns, 50.5);
  // With fewer than 100 samples the 99th percentile is the largest.
  EXPECT_EQ(SummarizeSamples({5, 1, 3}).p99_ns, 5);
}

}  // namespace
}  // namespace sbx
