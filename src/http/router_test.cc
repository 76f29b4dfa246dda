#include "http/router.h"

#include <gtest/gtest.h>

#include "http/message.h"

namespace coffer::http {
namespace {

std::vector<std::string> Segments(const std::string& path) {
  Request r;
  EXPECT_TRUE(ParseTarget(path, r).ok()) << path;
  return r.segments;
}

const RouteTable& Vault() {
  static const RouteTable table({{"GET", "/secrets"},
                                 {"POST", "/secrets/restore"},
                                 {"GET", "/secrets/{name}"},
                                 {"PUT", "/secrets/{name}"},
                                 {"GET", "/secrets/{name}/versions"},
                                 {"GET", "/secrets/{name}/{version}"},
                                 {"PATCH", "/secrets/{name}/{version}"}},
                                false);
  return table;
}

TEST(RouteTableTest, MatchesTheMostSpecificPatternAndCapturesParameters) {
  auto m = Vault().Find("GET", Segments("/secrets/db/v1"));
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.index, 5u);
  EXPECT_EQ(m.params.Get("name"), "db");
  EXPECT_EQ(m.params.Get("version"), "v1");
  EXPECT_EQ(m.params.Get("other"), "");
  EXPECT_EQ(Vault().Find("GET", Segments("/secrets/db/versions")).index, 4u);
  EXPECT_EQ(Vault().Find("GET", Segments("/secrets")).index, 0u);
  // One trailing slash is no segment.
  EXPECT_EQ(Vault().Find("GET", Segments("/secrets/")).index, 0u);
  EXPECT_EQ(Vault().Find("GET", Segments("/secrets/db/")).index, 2u);
  // Percent-decoded segments are captured decoded.
  EXPECT_EQ(Vault().Find("GET", Segments("/secrets/a%2Db")).params.Get("name"), "a-b");
}

TEST(RouteTableTest, AnswersNotFoundOrMethodNotAllowedWithTheAllowedMethods) {
  EXPECT_EQ(Vault().Find("GET", Segments("/keys/a")).status, 404);
  EXPECT_EQ(Vault().Find("GET", Segments("/secrets/a/b/c")).status, 404);
  EXPECT_EQ(Vault().Find("GET", Segments("/")).status, 404);
  EXPECT_EQ(Vault().Find("GET", Segments("/secrets//v1")).status, 404);  // empty name
  auto m = Vault().Find("DELETE", Segments("/secrets/a/v1"));
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allowed, "GET, PATCH");
  // A literal beats a parameter: GET /secrets/restore is not a read of a
  // secret named "restore".
  m = Vault().Find("GET", Segments("/secrets/restore"));
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allowed, "POST");
  EXPECT_EQ(Vault().Find("PATCH", Segments("/secrets/a/versions")).status, 405);
  // Methods are exact.
  EXPECT_EQ(Vault().Find("get", Segments("/secrets")).status, 405);
}

TEST(RouteTableTest, RestParametersTakeOneOrMoreSegmentsAnywhere) {
  RouteTable arm({{"GET", "/{scope...}/providers/Microsoft.Authorization/roleAssignments"},
                  {"PUT", "/{scope...}/providers/Microsoft.Authorization/roleAssignments/{id}"},
                  {"GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults"},
                  {"GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}"}},
                 true);
  auto m = arm.Find("PUT", Segments("/subscriptions/s/resourceGroups/rg/providers/"
                                    "microsoft.authorization/ROLEASSIGNMENTS/x"));
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.index, 1u);
  EXPECT_EQ(m.params.Get("scope"), "/subscriptions/s/resourceGroups/rg");
  EXPECT_EQ(m.params.Get("id"), "x");
  m = arm.Find("GET",
               Segments("/subscriptions/s/providers/Microsoft.Authorization/roleAssignments"));
  EXPECT_EQ(m.index, 0u);
  EXPECT_EQ(m.params.Get("scope"), "/subscriptions/s");
  // Leading empty segments (a client joining "/" and "/subscriptions") go.
  EXPECT_EQ(
      arm.Find("GET", Segments("//subscriptions/s/providers/Microsoft.KeyVault/vaults")).index, 2u);
  // No scope at all is not a match of a rest parameter.
  EXPECT_EQ(arm.Find("GET", Segments("/providers/Microsoft.Authorization/roleAssignments")).status,
            404);
  EXPECT_EQ(arm.Find("GET", Segments("/subscriptions/s/resourceGroups/rg/providers/A/b")).index,
            3u);
}

TEST(RouteTableTest, AnOptionalParameterMayBeEmpty) {
  RouteTable keys({{"POST", "/keys/{name}/{version?}/decrypt"}}, false);
  auto m = keys.Find("POST", Segments("/keys/k//decrypt"));
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.params.Get("version"), "");
  EXPECT_EQ(keys.Find("POST", Segments("/keys/k/v1/decrypt")).params.Get("version"), "v1");
  EXPECT_EQ(keys.Find("POST", Segments("/keys//v1/decrypt")).status, 404);
}

TEST(RouteTableTest, AStarMethodTakesEveryMethod) {
  RouteTable table({{"*", "/{tenant}/oauth2/v2.0/token"}, {"GET", "/healthz"}}, false);
  EXPECT_EQ(table.Find("GET", Segments("/t/oauth2/v2.0/token")).status, 200);
  EXPECT_EQ(table.Find("DELETE", Segments("/t/oauth2/v2.0/token")).status, 200);
  EXPECT_EQ(table.Find("POST", Segments("/healthz")).status, 405);
}

TEST(RouteTableTest, HostileAndLongPathsMatchNothing) {
  std::string deep;
  for (int i = 0; i < 2000; ++i) {
    deep += "/x";
  }
  EXPECT_EQ(Vault().Find("GET", Segments(deep)).status, 404);
  RouteTable arm({{"GET", "/{scope...}/providers/X/y"}}, true);
  EXPECT_EQ(arm.Find("GET", Segments(deep + "/providers/X/y")).status, 200);
  EXPECT_EQ(arm.Find("GET", Segments(deep)).status, 404);
}

}  // namespace
}  // namespace coffer::http
