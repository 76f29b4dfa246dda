#include "keyvault/rotation_policy.h"

#include <gtest/gtest.h>

namespace coffer::keyvault {
namespace {

constexpr int64_t kDay = 86400;

TEST(RotationPolicy, DurationsAreIso8601) {
  EXPECT_EQ(*ParseIsoDuration("P90D"), 90 * kDay);
  EXPECT_EQ(*ParseIsoDuration("P1Y10D"), 375 * kDay);
  EXPECT_EQ(*ParseIsoDuration("P2M"), 60 * kDay);
  EXPECT_EQ(*ParseIsoDuration("P1W"), 7 * kDay);
  EXPECT_EQ(*ParseIsoDuration("PT48H"), 2 * kDay);
  EXPECT_EQ(*ParseIsoDuration("P1DT1M"), kDay + 60);
  for (const char* bad : {"", "P", "PT", "90D", "P90", "PD", "P1H", "PT1D", "P-1D", "P1.5D",
                          "P99999999999D", "P1DT", "xP1D"}) {
    EXPECT_EQ(ParseIsoDuration(bad).status().reason(), "BadParameter") << bad;
  }
}

Json Action(const char* type, const char* trigger, const char* duration) {
  return Json{{"trigger", {{trigger, duration}}}, {"action", {{"type", type}}}};
}

TEST(RotationPolicy, ARotateOnlyPolicyGetsKeyVaultsNotify) {
  Json body = {{"lifetimeActions", Json::array({Action("rotate", "timeAfterCreate", "p2m")})},
               {"attributes", Json::object()}};
  auto policy = ValidateRotationPolicy(body, std::nullopt, 1000);
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  Json expected = Json::array(
      {Action("Rotate", "timeAfterCreate", "P2M"), Action("Notify", "timeBeforeExpiry", "P30D")});
  EXPECT_EQ((*policy)["lifetimeActions"], expected);
  EXPECT_EQ((*policy)["attributes"]["created"], 1000);
  // An update keeps when the policy was made.
  auto again = ValidateRotationPolicy(body, *policy, 2000);
  EXPECT_EQ((*again)["attributes"]["created"], 1000);
  EXPECT_EQ((*again)["attributes"]["updated"], 2000);
  // A Notify-only policy is kept as it is.
  Json notify = {{"lifetimeActions", Json::array({Action("Notify", "timeBeforeExpiry", "P60D")})},
                 {"attributes", {{"expiryTime", "P90D"}}}};
  auto kept = ValidateRotationPolicy(notify, std::nullopt, 1);
  EXPECT_EQ((*kept)["lifetimeActions"].size(), 1u);
  EXPECT_EQ((*kept)["attributes"]["expiryTime"], "P90D");
  // An empty policy is valid.
  EXPECT_TRUE(
      ValidateRotationPolicy(Json{{"lifetimeActions", Json::array()}}, std::nullopt, 1).ok());
}

TEST(RotationPolicy, KeyVaultsRulesAreEnforced) {
  auto refused = [](Json actions, Json attributes = Json::object()) {
    Json body = {{"lifetimeActions", std::move(actions)}, {"attributes", std::move(attributes)}};
    return ValidateRotationPolicy(body, std::nullopt, 1).status().reason() == "BadParameter";
  };
  EXPECT_TRUE(refused(Json::array({Action("Rotate", "timeAfterCreate", "P6D")})));
  EXPECT_TRUE(refused(Json::array({Action("Notify", "timeAfterCreate", "P30D")})));
  EXPECT_TRUE(refused(Json::array({Action("Rotate", "timeAfterCreate", "P30D"),
                                   Action("Rotate", "timeBeforeExpiry", "P30D")})));
  EXPECT_TRUE(refused(Json::array({Action("Explode", "timeAfterCreate", "P30D")})));
  EXPECT_TRUE(refused(
      Json::array({Json{{"trigger", {{"timeAfterCreate", "P30D"}, {"timeBeforeExpiry", "P30D"}}},
                        {"action", {{"type", "Rotate"}}}}})));
  EXPECT_TRUE(
      refused(Json::array({Json{{"trigger", Json::object()}, {"action", {{"type", "Rotate"}}}}})));
  EXPECT_TRUE(refused(Json::array(), Json{{"expiryTime", "P27D"}}));
  EXPECT_TRUE(refused(Json::array({"not an action"})));
  EXPECT_TRUE(refused(Json("not a list")));
}

TEST(RotationPolicy, RotationFallsDueByItsTrigger) {
  Json after = *ValidateRotationPolicy(
      Json{{"lifetimeActions", Json::array({Action("Rotate", "timeAfterCreate", "P30D")})},
           {"attributes", {{"expiryTime", "P90D"}}}},
      std::nullopt, 0);
  EXPECT_EQ(RotationDue(after, 100, std::nullopt), 100 + 30 * kDay);
  EXPECT_EQ(RotatedExpiry(after, 500), 500 + 90 * kDay);
  Json before = *ValidateRotationPolicy(
      Json{{"lifetimeActions", Json::array({Action("Rotate", "timeBeforeExpiry", "P7D")})}},
      std::nullopt, 0);
  EXPECT_EQ(RotationDue(before, 100, 100 + 60 * kDay), 100 + 53 * kDay);
  EXPECT_FALSE(RotationDue(before, 100, std::nullopt).has_value());
  EXPECT_FALSE(RotatedExpiry(before, 500).has_value());
  EXPECT_FALSE(RotationDue(DefaultRotationPolicy(), 100, 200).has_value());
}

}  // namespace
}  // namespace coffer::keyvault
