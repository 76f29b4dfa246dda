#include "common/json.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(ParseJson, AcceptsValidAndRejectsMalformed) {
  EXPECT_TRUE(ParseJson(R"({"a":[1,2,{"b":"c"}]})").has_value());
  EXPECT_FALSE(ParseJson(R"({"a":)").has_value());
  EXPECT_FALSE(ParseJson("").has_value());
  EXPECT_FALSE(ParseJson("{\"a\":1}}").has_value());
}

TEST(ParseJson, RejectsDeepNesting) {
  std::string deep(100000, '[');
  EXPECT_FALSE(ParseJson(deep).has_value());
  std::string ok = std::string(10, '[') + std::string(10, ']');
  EXPECT_TRUE(ParseJson(ok).has_value());
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJson("{\"v\":\"" + std::string(100, '[') + "\"}").has_value());
}

TEST(ToJson, ReplacesInvalidUtf8InsteadOfThrowing) {
  Json j;
  j["m"] = std::string("bad \xff byte");
  std::string out = ToJson(j);
  EXPECT_NE(out.find("bad"), std::string::npos);
}

}  // namespace
}  // namespace coffer

namespace coffer {
namespace {

TEST(AppendJsonString, EscapesAndRoundTripsThroughTheParser) {
  std::string tricky =
      std::string("q\"b\\s/\n\r\t\b\f\x01\x1f ") + "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91";
  std::string out;
  AppendJsonString(out, tricky);
  auto parsed = ParseJson(out);
  ASSERT_TRUE(parsed.has_value()) << out;
  EXPECT_EQ(parsed->get<std::string>(), tricky);
}

TEST(AppendJsonString, ReplacesInvalidUtf8WithReplacementCharacters) {
  for (std::string bad :
       {std::string("a\xff"), std::string("\xc0\x80"), std::string("\xed\xa0\x80"),
        std::string("\xe2\x82"), std::string("\xf5\x80\x80\x80")}) {
    std::string out;
    AppendJsonString(out, bad);
    auto parsed = ParseJson(out);
    ASSERT_TRUE(parsed.has_value()) << out;
    EXPECT_NE(parsed->get<std::string>().find("\xef\xbf\xbd"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace coffer
