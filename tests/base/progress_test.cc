#include "lockstep/base/progress.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(ProgressTest, FormatsRequestsRateElapsedAndEta) {
  EXPECT_EQ(ProgressReporter::Format(3, 10, 120, 6.0),
            "requests 3/10 done, 120 tokens, 20.0 tokens/s, elapsed 6s, ETA 14s");
  EXPECT_EQ(ProgressReporter::Format(0, 10, 0, 0.0),
            "requests 0/10 done, 0 tokens, 0.0 tokens/s, elapsed 0s, ETA ?");
  EXPECT_EQ(ProgressReporter::Format(1, 100, 5000, 100.0),
            "requests 1/100 done, 5000 tokens, 50.0 tokens/s, elapsed 1m40s, ETA 2h45m");
  EXPECT_EQ(ProgressReporter::Format(10, 10, 7, 3.5),
            "requests 10/10 done, 7 tokens, 2.0 tokens/s, elapsed 4s, ETA 0s");
}

TEST(ProgressTest, FormatsDurations) {
  EXPECT_EQ(FormatDuration(0.4), "0s");
  EXPECT_EQ(FormatDuration(59.4), "59s");
  EXPECT_EQ(FormatDuration(185.0), "3m05s");
  EXPECT_EQ(FormatDuration(3720.0), "1h02m");
  EXPECT_EQ(FormatDuration(-1.0), "?");
}

TEST(ProgressTest, LineIsDueOnlyWhenEnabledAndTheIntervalPassed) {
  const ProgressLine disabled("test", /*enabled=*/false, /*terminal=*/false, 0.0);
  EXPECT_FALSE(disabled.Due());
  const ProgressLine every_time("test", /*enabled=*/true, /*terminal=*/false, 0.0);
  EXPECT_TRUE(every_time.Due());
  const ProgressLine hourly("test", /*enabled=*/true, /*terminal=*/false, 3600.0);
  EXPECT_FALSE(hourly.Due());
  EXPECT_GE(hourly.ElapsedSeconds(), 0.0);
}

}  // namespace
}  // namespace lockstep
