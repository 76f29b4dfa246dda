#include "cli/output.h"

#include <gtest/gtest.h>

namespace coffer::cli {
namespace {

// Each expectation is what knack (az's formatter, Debian's python3-knack
// 0.10.1 with python3-tabulate 0.8.9) prints for the same JSON.

Json Parse(const char* text) {
  return Json::parse(text);
}

TEST(OutputFormatTest, ParsesTheFourNames) {
  OutputFormat f = OutputFormat::kJson;
  EXPECT_TRUE(ParseOutputFormat("tsv", &f));
  EXPECT_EQ(f, OutputFormat::kTsv);
  EXPECT_TRUE(ParseOutputFormat("table", &f));
  EXPECT_EQ(f, OutputFormat::kTable);
  EXPECT_TRUE(ParseOutputFormat("none", &f));
  EXPECT_EQ(f, OutputFormat::kNone);
  EXPECT_TRUE(ParseOutputFormat("json", &f));
  EXPECT_EQ(f, OutputFormat::kJson);
  for (const char* bad : {"", "yaml", "JSON", "tsv ", "jsonc"}) {
    EXPECT_FALSE(ParseOutputFormat(bad, &f)) << bad;
  }
}

const char* kRows =
    R"([{"name":"a","enabled":true,"n":5,"f":1.5,"id":"x","tags":{}},
        {"name":"longer-name","enabled":false,"n":123,"x":"z","none":null}])";

TEST(OutputFormatTest, TableOfObjects) {
  EXPECT_EQ(FormatOutput(Parse(kRows), OutputFormat::kTable),
            "Enabled    F    N    Name         X\n"
            "---------  ---  ---  -----------  ---\n"
            "True       1.5  5    a\n"
            "False           123  longer-name  z\n");
}

TEST(OutputFormatTest, TsvOfObjects) {
  EXPECT_EQ(FormatOutput(Parse(kRows), OutputFormat::kTsv),
            "True\t1.5\tx\t5\ta\t\nFalse\t123\tlonger-name\tNone\tz\n");
}

TEST(OutputFormatTest, TableOfOneObjectAScalarAndAnEmptyList) {
  EXPECT_EQ(FormatOutput(Parse(R"({"value":"s"})"), OutputFormat::kTable), "Value\n-------\ns\n");
  EXPECT_EQ(FormatOutput(Parse(R"("str")"), OutputFormat::kTable), "Result\n--------\nstr\n");
  EXPECT_EQ(FormatOutput(Parse("[]"), OutputFormat::kTable), "\n");
  EXPECT_EQ(FormatOutput(Parse(R"([1,"b"])"), OutputFormat::kTable), "Result\n--------\n1\nb\n");
  // Width counts characters, not bytes.
  EXPECT_EQ(FormatOutput(Parse(R"({"a":"\u00e9"})"), OutputFormat::kTable), "A\n---\n\u00e9\n");
}

TEST(OutputFormatTest, TsvOfScalarsAndNestedValues) {
  EXPECT_EQ(FormatOutput(Parse(R"("str")"), OutputFormat::kTsv), "str\n");
  EXPECT_EQ(FormatOutput(Parse(R"([true, null, 1.0, [1,2], {"a":1}])"), OutputFormat::kTsv),
            "true\nNone\n1.0\n1\t2\n1\n");
  EXPECT_EQ(FormatOutput(Parse("[]"), OutputFormat::kTsv), "");
}

TEST(OutputFormatTest, JsonSortsKeysAndNonePrintsNothing) {
  EXPECT_EQ(FormatOutput(Parse(R"({"b":1,"a":[]})"), OutputFormat::kJson),
            "{\n  \"a\": [],\n  \"b\": 1\n}\n");
  EXPECT_EQ(FormatOutput(Parse(kRows), OutputFormat::kNone), "");
}

}  // namespace
}  // namespace coffer::cli
