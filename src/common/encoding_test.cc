#include "common/encoding.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(*Base64Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(*Base64Decode("Zm9vYg"), "foob");
}

TEST(Base64, RejectsMalformedInput) {
  EXPECT_FALSE(Base64Decode("Zm9v!").has_value());
  EXPECT_FALSE(Base64Decode("Z").has_value());
  EXPECT_FALSE(Base64Decode("Zh==").has_value());  // non-canonical trailing bits
  EXPECT_FALSE(Base64Decode("Zm-v").has_value());  // url alphabet in std text
}

TEST(Base64Url, RoundTripsAllByteValues) {
  std::string all;
  for (int i = 0; i < 256; ++i) {
    all += static_cast<char>(i);
  }
  std::string enc = Base64UrlEncode(all);
  EXPECT_EQ(enc.find('='), std::string::npos);
  EXPECT_EQ(enc.find('+'), std::string::npos);
  EXPECT_EQ(*Base64UrlDecode(enc), all);
  EXPECT_FALSE(Base64UrlDecode("ab/c").has_value());
}

TEST(PercentDecode, DecodesEscapesAndPlus) {
  EXPECT_EQ(*PercentDecode("api%2Dversion", false), "api-version");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_FALSE(PercentDecode("%", false).has_value());
  EXPECT_FALSE(PercentDecode("%4", false).has_value());
  EXPECT_FALSE(PercentDecode("%zz", false).has_value());
}

TEST(PercentEncode, KeepsUnreserved) {
  EXPECT_EQ(PercentEncode("https://h:1/.default"), "https%3A%2F%2Fh%3A1%2F.default");
}

}  // namespace
}  // namespace coffer

#include "common/time_format.h"

namespace coffer {
namespace {

TEST(TimeFormat, RoundTripsAndRejectsJunk) {
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(*ParseIsoTime("2027-01-31T00:00:00Z"), 1801353600);
  EXPECT_EQ(*ParseIsoTime(FormatIsoTime(1795820022)), 1795820022);
  EXPECT_EQ(*ParseIsoTime("2027-01-31"), 1801353600);
  EXPECT_EQ(*ParseIsoTime("2027-01-31T00:00:00+00:00"), 1801353600);
  for (const char* bad : {"", "yesterday", "2027-01-31T00:00:00+02:00", "2027-13-45", "2027"}) {
    EXPECT_FALSE(ParseIsoTime(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace coffer

namespace coffer {
namespace {

TEST(Hex, RoundTripsEitherCaseAndRejectsJunk) {
  EXPECT_EQ(*HexDecode("00ff7fAb"), std::string("\x00\xff\x7f\xab", 4));
  EXPECT_EQ(*HexDecode(HexEncode(std::string("a\0b", 3))), std::string("a\0b", 3));
  EXPECT_EQ(*HexDecode(""), "");
  for (const char* bad : {"0", "0g", "zz", "0 ", "-1"}) {
    EXPECT_FALSE(HexDecode(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace coffer
