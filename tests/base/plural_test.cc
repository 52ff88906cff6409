#include "lockstep/base/plural.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(PluralTest, SingularOnlyForOne) {
  EXPECT_EQ(Plural(1, "rank"), "1 rank");
  EXPECT_EQ(Plural(0, "rank"), "0 ranks");
  EXPECT_EQ(Plural(2, "rank"), "2 ranks");
  EXPECT_EQ(Plural(1, "micro-batch"), "1 micro-batch");
  EXPECT_EQ(Plural(4, "micro-batch"), "4 micro-batches");
  EXPECT_EQ(Plural(3, "pass"), "3 passes");
  EXPECT_EQ(Plural(2, "error record"), "2 error records");
  EXPECT_EQ(Plural(1, "entry", "entries"), "1 entry");
  EXPECT_EQ(Plural(5, "entry", "entries"), "5 entries");
}

TEST(PluralTest, RangesNameOneOrMany) {
  EXPECT_EQ(Range("rank", 0, 0), "rank 0");
  EXPECT_EQ(Range("rank", 4, 7), "ranks 4-7");
  EXPECT_EQ(Range("layer", 2, 2), "layer 2");
  EXPECT_EQ(Range("layer", 0, 21), "layers 0-21");
}

TEST(PluralTest, CountsWithSuffixes) {
  EXPECT_EQ(FormatCount(950), "950");
  EXPECT_EQ(FormatCount(4388352), "4.4 M");
  EXPECT_EQ(FormatCount(6738415616.0), "6.74 B");
  EXPECT_EQ(FormatCount(45000), "45.0 k");
}

}  // namespace
}  // namespace lockstep
