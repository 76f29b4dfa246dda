#include "server/arm_limits.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/json.h"

namespace coffer::server {
namespace {

class ArmLimitsTest : public ::testing::Test {
 protected:
  void On() {
    LimitSettings azure;
    azure.mode = LimitSettings::Mode::kAzure;
    service_.Apply(azure);
  }
  // Takes `n` tokens; every one must be given.
  void TakeAll(const std::string& who, ArmKind kind, int n) {
    for (int i = 0; i < n; ++i) {
      auto c = arm_.Take(who, kind);
      ASSERT_TRUE(c.has_value());
      ASSERT_FALSE(c->retry_after.has_value()) << who << " " << i;
      ASSERT_EQ(c->remaining, ArmLimits::kPrincipal[static_cast<size_t>(kind)].tokens - i - 1);
    }
  }

  FakeClock clock_{1'800'000'000};
  ServiceLimits service_{clock_};
  ArmLimits arm_{clock_, service_};
};

TEST_F(ArmLimitsTest, OffAndCustomTakeNothing) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_FALSE(arm_.Take("p", ArmKind::kWrite).has_value());
  }
  LimitSettings custom;
  custom.mode = LimitSettings::Mode::kCustom;
  service_.Apply(custom);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_FALSE(arm_.Take("p", ArmKind::kWrite).has_value());
  }
  On();
  TakeAll("p", ArmKind::kWrite, 200);  // nothing was taken before
}

TEST_F(ArmLimitsTest, BucketsPerPrincipalAndKindRefillAtAzuresRates) {
  On();
  TakeAll("reader", ArmKind::kRead, 250);
  auto c = arm_.Take("reader", ArmKind::kRead);
  ASSERT_TRUE(c && c->retry_after);
  EXPECT_EQ(*c->retry_after, 1);
  EXPECT_EQ(c->remaining, 0);
  // Writes, deletes and other principals have buckets of their own.
  TakeAll("reader", ArmKind::kWrite, 200);
  TakeAll("reader", ArmKind::kDelete, 200);
  TakeAll("READER-2", ArmKind::kRead, 250);
  // 25 reads a second come back, and no more than the bucket holds.
  clock_.Advance(1);
  TakeAll("reader", ArmKind::kRead, 0);
  for (int i = 0; i < 25; ++i) {
    auto again = arm_.Take("reader", ArmKind::kRead);
    ASSERT_TRUE(again && !again->retry_after) << i;
  }
  EXPECT_TRUE(arm_.Take("reader", ArmKind::kRead)->retry_after);
  // Writes come back at 10 a second (the second that passed gave 10); an
  // empty bucket waits a tenth of one.
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(arm_.Take("reader", ArmKind::kWrite)->retry_after) << i;
  }
  auto w = arm_.Take("reader", ArmKind::kWrite);
  ASSERT_TRUE(w && w->retry_after);
  clock_.AdvanceMicros(100'000);
  EXPECT_FALSE(arm_.Take("reader", ArmKind::kWrite)->retry_after);
  clock_.Advance(3600);
  TakeAll("reader", ArmKind::kRead, 250);  // full again, not more
  EXPECT_TRUE(arm_.Take("reader", ArmKind::kRead)->retry_after);
  // Object ids ignore case.
  EXPECT_TRUE(arm_.Take("Reader", ArmKind::kRead)->retry_after);
}

TEST_F(ArmLimitsTest, TheSubscriptionHoldsFifteenPrincipalsWorth) {
  On();
  for (int p = 0; p < ArmLimits::kGlobalFactor; ++p) {
    TakeAll("p" + std::to_string(p), ArmKind::kDelete, 200);
  }
  auto c = arm_.Take("a-sixteenth", ArmKind::kDelete);
  ASSERT_TRUE(c && c->retry_after);
  EXPECT_EQ(c->remaining, 200);  // its own bucket is full; the subscription's is not
  // The subscription refills at 150 a second: a tenth of a second is 15.
  clock_.AdvanceMicros(100'000);
  for (int i = 0; i < 15; ++i) {
    ASSERT_FALSE(arm_.Take("a-sixteenth", ArmKind::kDelete)->retry_after) << i;
  }
  EXPECT_TRUE(arm_.Take("a-sixteenth", ArmKind::kDelete)->retry_after);
}

TEST_F(ArmLimitsTest, ManyPrincipalsAreForgottenOnceIdle) {
  On();
  for (size_t p = 0; p < ArmLimits::kMaxPrincipals + 5; ++p) {
    ASSERT_TRUE(arm_.Take("p" + std::to_string(p), ArmKind::kRead).has_value());
    if (p % 3000 == 0) {
      clock_.Advance(60);  // the subscription refills, and earlier principals are full again
    }
  }
  EXPECT_LE(arm_.TrackedPrincipals(), ArmLimits::kMaxPrincipals);
  // A principal that was forgotten starts again from a full bucket.
  clock_.Advance(60);
  auto c = arm_.Take("p1", ArmKind::kRead);
  ASSERT_TRUE(c && !c->retry_after);
  EXPECT_EQ(c->remaining, 249);
}

TEST_F(ArmLimitsTest, ConcurrentTakersNeverTakeMoreThanTheBucket) {
  On();
  std::atomic<int> given{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!arm_.Take("shared", ArmKind::kRead)->retry_after) {
          ++given;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(given.load(), 250);
}

TEST(ArmLimitsAnswer, IsResourceManagersThrottledAnswer) {
  http::Response r = ArmLimits::Throttled(ArmKind::kWrite, "sub-1", 3);
  EXPECT_EQ(r.status, 429);
  auto body = ParseJson(r.body);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ((*body)["error"]["code"], "SubscriptionRequestsThrottled");
  EXPECT_NE(StringMember((*body)["error"], "message")
                .find("'write' requests for subscription "
                      "'sub-1'"),
            std::string::npos);
  bool retry = false;
  for (const auto& [k, v] : r.headers) {
    retry = retry || (k == "Retry-After" && v == "3");
  }
  EXPECT_TRUE(retry);
  EXPECT_EQ(ArmLimits::KindOf("GET"), ArmKind::kRead);
  EXPECT_EQ(ArmLimits::KindOf("HEAD"), ArmKind::kRead);
  EXPECT_EQ(ArmLimits::KindOf("DELETE"), ArmKind::kDelete);
  EXPECT_EQ(ArmLimits::KindOf("POST"), ArmKind::kWrite);
  EXPECT_EQ(ArmLimits::KindOf("PATCH"), ArmKind::kWrite);
}

}  // namespace
}  // namespace coffer::server
