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
