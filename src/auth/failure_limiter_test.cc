#include "auth/failure_limiter.h"

#include <string>

#include <gtest/gtest.h>

namespace coffer::auth {
namespace {

TEST(FailureLimiterTest, BurstIsAllowedThenOneFailurePerRefill) {
  FakeClock clock(1000);
  FailureLimiter limiter(clock, {3, 10}, 100);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(limiter.RetryAfter("app"), 0) << i;
    limiter.RecordFailure("app");
  }
  EXPECT_EQ(limiter.RetryAfter("app"), 10);
  clock.Advance(4);
  EXPECT_EQ(limiter.RetryAfter("app"), 6);
  clock.Advance(6);
  EXPECT_EQ(limiter.RetryAfter("app"), 0);
  limiter.RecordFailure("app");
  EXPECT_EQ(limiter.RetryAfter("app"), 10);
  // A full bucket again after burst * refill seconds without failures.
  clock.Advance(30);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(limiter.RetryAfter("app"), 0) << i;
    limiter.RecordFailure("app");
  }
}

TEST(FailureLimiterTest, KeysAreCountedApart) {
  FakeClock clock(1000);
  FailureLimiter limiter(clock, {1, 60}, 100);
  limiter.RecordFailure("a");
  EXPECT_GT(limiter.RetryAfter("a"), 0);
  EXPECT_EQ(limiter.RetryAfter("b"), 0);
  // Keys are cut at 128 bytes, so their entries stay small.
  limiter.RecordFailure(std::string(128, 'x') + "1");
  EXPECT_GT(limiter.RetryAfter(std::string(128, 'x') + "2"), 0);
}

TEST(FailureLimiterTest, FullTableRefusesNewKeysUntilOldOnesRefill) {
  FakeClock clock(1000);
  FailureLimiter limiter(clock, {5, 10}, 2);
  limiter.RecordFailure("a");
  limiter.RecordFailure("b");
  EXPECT_EQ(limiter.size(), 2u);
  // "c" cannot be counted, so it is not given a fresh bucket either.
  EXPECT_EQ(limiter.RetryAfter("c"), 10);
  limiter.RecordFailure("c");
  EXPECT_EQ(limiter.size(), 2u);
  // Held keys keep their own counts meanwhile.
  EXPECT_EQ(limiter.RetryAfter("a"), 0);
  clock.Advance(10);  // a and b are full again and make room
  EXPECT_EQ(limiter.RetryAfter("c"), 0);
  limiter.RecordFailure("c");
  EXPECT_EQ(limiter.size(), 1u);
}

TEST(FailureLimiterTest, ClockGoingBackHoldsAKeyNoLongerThanAFullBurst) {
  FakeClock clock(100000);
  FailureLimiter limiter(clock, {2, 10}, 100);
  limiter.RecordFailure("a");
  limiter.RecordFailure("a");
  clock.Set(100000 - 3600);
  EXPECT_LE(limiter.RetryAfter("a"), 20);
  clock.Advance(20);
  EXPECT_EQ(limiter.RetryAfter("a"), 0);
}

}  // namespace
}  // namespace coffer::auth
