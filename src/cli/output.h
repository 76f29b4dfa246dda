#pragma once

#include <string>
#include <string_view>

#include "common/json.h"

namespace coffer::cli {

// The `--output/-o` formats of az (knack's output.py), which the commands'
// results are printed in:
//   json   indented by two, keys sorted (the default);
//   tsv    one line per item of a list (a non-list is one item): a object's
//          values in key order, tab-separated, a nested object as "", a list
//          as its length, null as "None", booleans as Python prints them;
//   table  one row per item: an object's scalar members except id, type and
//          etag, keys sorted and capitalized as column headers, each column as
//          wide as its widest cell or its header plus two; other items are a
//          "Result" (or "Column1..n" for a list) column; trailing blanks
//          trimmed;
//   none   nothing.
enum class OutputFormat { kJson, kTsv, kTable, kNone };

// ParseOutputFormat maps a name above to its format; false for any other.
bool ParseOutputFormat(std::string_view name, OutputFormat* format);

// FormatOutput renders `value` in `format`, ending in a newline unless the
// result is empty (none, or tsv of an empty list).
std::string FormatOutput(const Json& value, OutputFormat format);

}  // namespace coffer::cli
