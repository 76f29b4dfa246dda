// ParseODataFilter on arbitrary bytes: no crash, and every filter it
// accepts is at most kMaxODataFilter bytes, has at least one clause, and
// every clause names a property and holds exactly one of a string (eq or
// startswith) or a boolean (eq only).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/odata_filter.h"

namespace {

void Check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = coffer::auth::ParseODataFilter(input);
  if (!parsed.ok()) {
    return 0;
  }
  Check(size <= coffer::auth::kMaxODataFilter);
  Check(!parsed->empty());
  for (const auto& clause : *parsed) {
    Check(!clause.property.empty());
    if (clause.boolean) {
      Check(clause.op == coffer::auth::ODataClause::Op::kEq && clause.text.empty());
    }
  }
  return 0;
}
