// "Did you mean ...?" for misspelt request fields, flags and subcommands.
#include "lockstep/base/nearest_name.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace lockstep {
namespace {

TEST(NearestNameTest, EditDistanceCountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("abc", ""), 3);
  EXPECT_EQ(EditDistance("temperature", "temprature"), 1);  // deletion
  EXPECT_EQ(EditDistance("top_p", "top-p"), 1);             // substitution
  EXPECT_EQ(EditDistance("--threads", "--thraeds"), 1);     // adjacent swap
  EXPECT_EQ(EditDistance("Seed", "seed"), 0);               // case-insensitive
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("ca", "abc"), 3);  // optimal string alignment, not Damerau
}

TEST(NearestNameTest, SuggestsOnlyPlausibleMisspellings) {
  const std::vector<std::string_view> fields = {"max_tokens", "temperature", "top_k", "top_p",
                                                "seed", "stop"};
  EXPECT_EQ(NearestName("temprature", fields), "temperature");
  EXPECT_EQ(NearestName("max_token", fields), "max_tokens");
  EXPECT_EQ(NearestName("sed", fields), "seed");
  EXPECT_EQ(NearestName("top_q", fields), "top_k");  // ties: the earlier candidate
  EXPECT_EQ(NearestName("temp", fields), "temperature");  // an abbreviation
  EXPECT_EQ(NearestName("frobnicate", fields), std::nullopt);
  EXPECT_EQ(NearestName("", fields), std::nullopt);
  EXPECT_EQ(NearestName("xy", fields), std::nullopt);
  EXPECT_EQ(DidYouMean("temprature", fields), "; did you mean 'temperature'?");
  EXPECT_EQ(DidYouMean("frobnicate", fields), "");
}

}  // namespace
}  // namespace lockstep
