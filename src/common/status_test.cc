#include "common/status.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2 != 0) {
    return InvalidArgumentError("odd", "BadParameter");
  }
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, CarriesCodeMessageAndReason) {
  Status s = NotFoundError("secret 'a' not found", "SecretNotFound");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.reason(), "SecretNotFound");
  EXPECT_EQ(s.ToString(), "NOT_FOUND (SecretNotFound): secret 'a' not found");
}

TEST(StatusOr, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "BadParameter");
}

TEST(StatusOr, OkStatusWithoutValueBecomesInternal) {
  StatusOr<int> r(OkStatus());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace coffer
