#include "lockstep/base/status.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("{} is odd", x);
  return x / 2;
}

Status Quarter(int x, int* out) {
  LOCKSTEP_ASSIGN_OR_RETURN(int half, Half(x));
  LOCKSTEP_ASSIGN_OR_RETURN(*out, Half(half));
  return Status::Ok();
}

TEST(StatusTest, OkAndErrorValues) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("{}: tensor '{}' is missing", "m.h5", "/norm");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "m.h5: tensor '/norm' is missing");
  EXPECT_EQ(s.ToString(), "not found: m.h5: tensor '/norm' is missing");
  EXPECT_EQ(s.WithContext("loading").message(), "loading: m.h5: tensor '/norm' is missing");
}

TEST(StatusTest, ResultPropagates) {
  int out = 0;
  EXPECT_TRUE(Quarter(12, &out).ok());
  EXPECT_EQ(out, 3);
  Status s = Quarter(6, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "3 is odd");
}

TEST(StatusTest, ResultFromOkStatusIsAnError) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace lockstep
