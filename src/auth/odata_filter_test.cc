// The $filter subset of Graph's user queries: what parses, and that the
// rest is refused rather than ignored.

#include "auth/odata_filter.h"

#include <string>

#include <gtest/gtest.h>

namespace coffer::auth {
namespace {

TEST(ODataFilterTest, ClausesJoinedByAndParse) {
  auto parsed = ParseODataFilter(
      "  userPrincipalName eq 'o''neil@example.test' AND startswith( displayName , 'Ada L' )"
      " and accountEnabled EQ false ");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].property, "userPrincipalName");
  EXPECT_EQ((*parsed)[0].op, ODataClause::Op::kEq);
  EXPECT_EQ((*parsed)[0].text, "o'neil@example.test");
  EXPECT_FALSE((*parsed)[0].boolean);
  EXPECT_EQ((*parsed)[1].property, "displayName");
  EXPECT_EQ((*parsed)[1].op, ODataClause::Op::kStartsWith);
  EXPECT_EQ((*parsed)[1].text, "Ada L");
  EXPECT_EQ((*parsed)[2].property, "accountEnabled");
  EXPECT_EQ((*parsed)[2].boolean, std::optional<bool>(false));
  EXPECT_EQ(ParseODataFilter("mail eq ''")->at(0).text, "");
}

TEST(ODataFilterTest, EverythingElseIsRefused) {
  for (const std::string bad : {"",
                                "   ",
                                "displayName",
                                "displayName eq",
                                "displayName ne 'x'",
                                "displayName eq x",
                                "displayName eq 12",
                                "displayName eq 'x' or mail eq 'y'",
                                "not displayName eq 'x'",
                                "(displayName eq 'x')",
                                "displayName eq 'x' and",
                                "and displayName eq 'x'",
                                "displayName eq 'unterminated",
                                "startswith(displayName 'x')",
                                "startswith(displayName,x)",
                                "startswith(displayName,'x'",
                                "startswith(,'x')",
                                "endswith(displayName,'x')",
                                "displayName eq 'x' and and mail eq 'y'",
                                "displayName eq 'x' mail eq 'y'",
                                "accountEnabled eq True",
                                "displayName eq 'x';drop",
                                "displayName in ('x')"}) {
    EXPECT_EQ(ParseODataFilter(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  std::string huge = "displayName eq '" + std::string(kMaxODataFilter, 'x') + "'";
  EXPECT_EQ(ParseODataFilter(huge).status().code(), StatusCode::kInvalidArgument);
}

TEST(ODataFilterTest, AStringLiteralEndsAtItsClosingQuote) {
  std::string_view s = "'it''s' rest";
  EXPECT_EQ(TakeODataString(s), std::optional<std::string>("it's"));
  EXPECT_EQ(s, " rest");
  std::string_view none = "x'y'";
  EXPECT_FALSE(TakeODataString(none));
  std::string_view open = "'never closed''";
  EXPECT_FALSE(TakeODataString(open));
}

}  // namespace
}  // namespace coffer::auth
