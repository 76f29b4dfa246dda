#include "server/service_limits.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/json.h"

namespace coffer::server {
namespace {

LimitSettings Custom(VaultLimits limits, std::map<std::string, VaultLimits> vaults = {}) {
  LimitSettings s;
  s.mode = LimitSettings::Mode::kCustom;
  s.custom = limits;
  s.vaults = std::move(vaults);
  return s;
}

TEST(ServiceLimits, OffCountsNothing) {
  FakeClock clock(1'800'000'000);
  ServiceLimits limits(clock);
  EXPECT_FALSE(limits.on());
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_FALSE(limits.Charge("dev", "SecretGet").has_value());
  }
}

TEST(ServiceLimits, AzureNumbersPerClassAndVault) {
  FakeClock clock(1'800'000'000);
  ServiceLimits limits(clock);
  LimitSettings azure;
  azure.mode = LimitSettings::Mode::kAzure;
  limits.Apply(azure);
  for (int i = 0; i < 300; ++i) {
    ASSERT_FALSE(limits.Charge("dev", "SecretSet").has_value()) << i;
  }
  std::optional<int64_t> wait = limits.Charge("dev", "SecretSet");
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 10);  // the window began at this second
  // Reads have their own budget, and so has another vault; names ignore case.
  EXPECT_FALSE(limits.Charge("dev", "SecretGet").has_value());
  EXPECT_FALSE(limits.Charge("other", "SecretSet").has_value());
  EXPECT_TRUE(limits.Charge("DEV", "SecretSet").has_value());
  for (int i = 0; i < 20; ++i) {
    ASSERT_FALSE(limits.Charge("dev", "KeyCreate").has_value());
  }
  EXPECT_TRUE(limits.Charge("dev", "KeyImport").has_value()) << "KeyImport is a create";
  EXPECT_FALSE(limits.Charge("dev", "KeySign").has_value());
  // Throttled requests do not count: the next window starts fresh.
  clock.AdvanceMicros(9'500'000);
  EXPECT_EQ(limits.Charge("dev", "SecretSet"), std::optional<int64_t>(1));
  clock.AdvanceMicros(500'000);
  EXPECT_FALSE(limits.Charge("dev", "SecretSet").has_value());
}

TEST(ServiceLimits, CustomNumbersPerVaultAndRetryAfterRoundsUp) {
  FakeClock clock(1'800'000'000);
  clock.AdvanceMicros(2'300'000);  // 2.3 s into a window
  ServiceLimits limits(clock);
  VaultLimits small;
  small.secret_other = 2;
  VaultLimits tiny;
  tiny.secret_other = 1;
  limits.Apply(Custom(small, {{"tight", tiny}}));
  EXPECT_FALSE(limits.Charge("dev", "SecretGet").has_value());
  EXPECT_FALSE(limits.Charge("dev", "SecretList").has_value());
  EXPECT_EQ(limits.Charge("dev", "CertificateGet"), std::optional<int64_t>(8));  // 7.7 s left
  EXPECT_FALSE(limits.Charge("tight", "SecretGet").has_value());
  EXPECT_TRUE(limits.Charge("TIGHT", "SecretGet").has_value());
  // Changed at run time: off lets everything through at once.
  limits.Apply(LimitSettings{});
  EXPECT_FALSE(limits.Charge("dev", "SecretGet").has_value());
}

TEST(ServiceLimits, ClassesFollowKeyVault) {
  EXPECT_EQ(ServiceLimits::ClassOf("SecretSet"), LimitClass::kSecretCreate);
  EXPECT_EQ(ServiceLimits::ClassOf("SecretRestore"), LimitClass::kSecretCreate);
  EXPECT_EQ(ServiceLimits::ClassOf("SecretGet"), LimitClass::kSecretOther);
  EXPECT_EQ(ServiceLimits::ClassOf("SecretHash"), LimitClass::kSecretOther);  // a read
  EXPECT_EQ(ServiceLimits::ClassOf("CertificateCreate"), LimitClass::kSecretOther);
  EXPECT_EQ(ServiceLimits::ClassOf("KeyCreate"), LimitClass::kKeyCreate);
  EXPECT_EQ(ServiceLimits::ClassOf("KeyRotate"), LimitClass::kKeyCreate);
  EXPECT_EQ(ServiceLimits::ClassOf("KeyDecrypt"), LimitClass::kKeyOther);
  EXPECT_EQ(ServiceLimits::ClassOf("GetRandomBytes"), LimitClass::kKeyOther);
}

// Applies racing each other leave every vault with one of them, whole.
TEST(ServiceLimits, RacingAppliesNeverMixSettings) {
  FakeClock clock(1'800'000'000);
  ServiceLimits limits(clock);
  VaultLimits one, two;
  one.secret_other = 1;
  two.secret_other = 2;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        limits.Apply(Custom((t + i) % 2 ? one : two));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const int64_t last = limits.settings().custom.secret_other;
  // Every vault (each hashed to some shard) has the budget of the last Apply.
  for (int v = 0; v < 64; ++v) {
    std::string vault = "v" + std::to_string(v);
    clock.Advance(10);  // a window of its own: the subscription's cap is not what is tested
    int admitted = 0;
    while (!limits.Charge(vault, "SecretGet").has_value()) {
      ++admitted;
    }
    EXPECT_EQ(admitted, last) << vault;
  }
}

// Many threads at once never admit more than the budget.
TEST(ServiceLimits, RacingRequestsNeverExceedTheBudget) {
  FakeClock clock(1'800'000'000);
  ServiceLimits limits(clock);
  VaultLimits l;
  l.secret_other = 1000;
  limits.Apply(Custom(l));
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (!limits.Charge("dev", "SecretGet").has_value()) {
          ++admitted;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(admitted.load(), 1000);
}

TEST(ServiceLimits, KeyOperationsWeighByKeySize) {
  EXPECT_EQ(ServiceLimits::KeyWeight(0), 1);  // EC
  EXPECT_EQ(ServiceLimits::KeyWeight(2048), 1);
  EXPECT_EQ(ServiceLimits::KeyWeight(3072), 4);
  EXPECT_EQ(ServiceLimits::KeyWeight(4096), 8);
  FakeClock clock(1'800'000'000);
  ServiceLimits limits(clock);
  LimitSettings azure;
  azure.mode = LimitSettings::Mode::kAzure;
  limits.Apply(azure);
  // 4,000 per 10 s of RSA-2048 weight: 500 RSA-4096 signatures.
  for (int i = 0; i < 500; ++i) {
    ASSERT_FALSE(limits.Charge("dev", "KeySign", ServiceLimits::KeyWeight(4096)).has_value()) << i;
  }
  EXPECT_TRUE(limits.Charge("dev", "KeySign", 8).has_value());
  EXPECT_TRUE(limits.Charge("dev", "KeySign", 1).has_value());
  // A weight beyond a whole budget passes alone in an unused window.
  VaultLimits l;
  l.key_other = 4;
  limits.Apply(Custom(l));
  clock.Advance(10);
  EXPECT_FALSE(limits.Charge("dev", "KeySign", 8).has_value());
  EXPECT_TRUE(limits.Charge("dev", "KeySign", 1).has_value());
}

TEST(ServiceLimits, TheSubscriptionHoldsFiveVaultsWorth) {
  FakeClock clock(1'800'000'000);
  ServiceLimits limits(clock);
  VaultLimits l;
  l.secret_other = 10;
  limits.Apply(Custom(l, {{"big", VaultLimits{300, 100, 20, 4000}}}));
  // Five vaults use the subscription's 50; a sixth is refused though its
  // own budget is untouched, and so is a vault with a budget of its own.
  for (int v = 0; v < 5; ++v) {
    for (int i = 0; i < 10; ++i) {
      ASSERT_FALSE(limits.Charge("v" + std::to_string(v), "SecretGet").has_value());
    }
  }
  EXPECT_EQ(limits.Charge("v5", "SecretGet"), std::optional<int64_t>(10));
  EXPECT_TRUE(limits.Charge("big", "SecretGet").has_value());
  // Other classes have their own, and the next window starts fresh; the
  // refused requests were not counted against their vaults.
  EXPECT_FALSE(limits.Charge("v5", "SecretSet").has_value());
  clock.Advance(10);
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(limits.Charge("v5", "SecretGet").has_value()) << i;
  }
}

TEST(ServiceLimits, RacingVaultsNeverExceedTheSubscription) {
  FakeClock clock(1'800'000'000);
  ServiceLimits limits(clock);
  VaultLimits l;
  l.secret_other = 100;
  limits.Apply(Custom(l));
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (!limits.Charge("vault" + std::to_string(t), "SecretGet").has_value()) {
          ++admitted;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(admitted.load(), 500);
}

TEST(ServiceLimits, TheAnswerIsKeyVaults) {
  http::Response r = ServiceLimits::Throttled(7);
  EXPECT_EQ(r.status, 429);
  std::string retry_after;
  for (const auto& [name, value] : r.headers) {
    if (name == "Retry-After") {
      retry_after = value;
    }
  }
  EXPECT_EQ(retry_after, "7");
  auto body = ParseJson(r.body);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ((*body)["error"]["code"], "Throttled");
  EXPECT_NE((*body)["error"]["message"].get<std::string>().find("VaultRequestTypeLimitReached"),
            std::string::npos);
}

TEST(LimitSettings, JsonRoundTripAndRefusals) {
  auto parsed = LimitSettings::Parse(
      R"({"mode":"custom","limits":{"secretOther":50},"vaults":{"Dev":{"secretCreate":3}}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->mode, LimitSettings::Mode::kCustom);
  EXPECT_EQ(parsed->custom.secret_other, 50);
  EXPECT_EQ(parsed->custom.secret_create, 300) << "omitted: Key Vault's";
  ASSERT_EQ(parsed->vaults.count("dev"), 1u);
  EXPECT_EQ(parsed->vaults["dev"].secret_create, 3);
  auto again = LimitSettings::Parse(parsed->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToJson(), parsed->ToJson());

  for (const char* bad :
       {"", "[]", "{\"mode\":\"fast\"}", "{\"mode\":1}", "{\"other\":1}",
        "{\"limits\":{\"secretOther\":0}}", "{\"limits\":{\"secretOther\":1000001}}",
        "{\"limits\":{\"secretOther\":1.5}}", "{\"limits\":{\"reads\":5}}", "{\"limits\":[]}",
        "{\"vaults\":{\"a/b\":{}}}", "{\"vaults\":{\"\":{}}}",
        "{\"vaults\":{\"aaaaaaaaaaaaaaaaaaaaaaaaa\":{}}}", "{\"vaults\":[]}"}) {
    auto s = LimitSettings::Parse(bad);
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // A patch changes what it names: a vault replaced or removed (null),
  // the rest kept; a bad patch is refused whole.
  auto patched = LimitSettings::Patch(
      *parsed, R"({"vaults":{"Dev":null,"ops":{"keyCreate":5}},"limits":{"secretOther":60}})");
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(patched->mode, LimitSettings::Mode::kCustom);
  EXPECT_EQ(patched->vaults.count("dev"), 0u);
  EXPECT_EQ(patched->vaults.at("ops").key_create, 5);
  EXPECT_EQ(patched->custom.secret_other, 60);
  EXPECT_EQ(LimitSettings::Patch(*parsed, R"({"vaults":{"ops":{"keyCreate":0}}})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(LimitSettings::Patch(*parsed, "[1]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LimitSettings::Patch(*parsed, R"({"speed":1})").status().code(),
            StatusCode::kInvalidArgument);

  std::string many = "{\"vaults\":{";
  for (int i = 0; i < 1001; ++i) {
    many += (i ? "," : "") + std::string("\"v") + std::to_string(i) + "\":{}";
  }
  many += "}}";
  EXPECT_EQ(LimitSettings::Parse(many).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::server
