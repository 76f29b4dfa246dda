// Print's formats, as az's --output: json, tsv, table and none.

#include <algorithm>
#include <cctype>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/cli_util.h"

namespace coffer::cli {
namespace {

std::string& Format() {
  static std::string format = "json";
  return format;
}

// A scalar as az writes it in tsv and table cells (Python's str()).
std::string Cell(const Json& v, bool table) {
  if (v.is_string()) {
    return v.get<std::string>();
  }
  if (v.is_null()) {
    return table ? "" : "None";
  }
  if (v.is_boolean()) {
    return v.get<bool>() ? "True" : "False";
  }
  if (v.is_array()) {
    return std::to_string(v.size());  // tsv: a list is its length
  }
  if (v.is_object()) {
    return "";
  }
  return v.dump();
}

// tsv: one line per item of a list (or for the one object), its values in
// key order separated by tabs.
void PrintTsv(const Json& value) {
  auto row = [](const Json& item) {
    std::string line;
    if (item.is_object()) {
      bool first = true;
      for (const auto& [k, v] : item.items()) {
        line += (first ? "" : "\t") + Cell(v, false);
        first = false;
      }
    } else {
      line = Cell(item, false);
    }
    std::cout << line << "\n";
  };
  if (value.is_array()) {
    for (const auto& item : value) {
      row(item);
    }
  } else if (!value.is_null()) {
    row(value);
  }
}

// table: the scalar members of each object as columns (the key with its
// first letter in upper case), left-aligned under a dashed rule.
void PrintTable(const Json& value) {
  Json rows = value.is_array() ? value : Json::array({value});
  std::vector<std::string> keys;
  for (const auto& item : rows) {
    if (!item.is_object()) {
      continue;
    }
    for (const auto& [k, v] : item.items()) {
      if (!v.is_object() && !v.is_array() && std::find(keys.begin(), keys.end(), k) == keys.end()) {
        keys.push_back(k);
      }
    }
  }
  if (keys.empty()) {
    for (const auto& item : rows) {
      if (!item.is_object() && !item.is_array()) {
        std::cout << Cell(item, true) << "\n";
      }
    }
    return;
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  std::vector<std::string> header;
  for (const auto& k : keys) {
    std::string h = k;
    h[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(h[0])));
    header.push_back(h);
    width.push_back(h.size());
  }
  for (const auto& item : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string c = item.is_object() && item.contains(keys[i]) ? Cell(item[keys[i]], true) : "";
      width[i] = std::max(width[i], c.size());
      line.push_back(std::move(c));
    }
    cells.push_back(std::move(line));
  }
  auto print = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) {
        out += std::string(width[i] - line[i].size() + 2, ' ');
      }
    }
    out.erase(out.find_last_not_of(' ') + 1);
    std::cout << out << "\n";
  };
  print(header);
  std::vector<std::string> rule;
  for (size_t w : width) {
    rule.push_back(std::string(w, '-'));
  }
  print(rule);
  for (const auto& line : cells) {
    print(line);
  }
}

}  // namespace

std::string& OutputFormat() {
  return Format();
}

void Print(const Json& j) {
  const std::string& format = Format();
  if (format == "none") {
    return;
  }
  if (format == "tsv") {
    PrintTsv(j);
  } else if (format == "table") {
    PrintTable(j);
  } else {
    std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  }
}

}  // namespace coffer::cli
