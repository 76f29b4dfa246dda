#include "cli/output.h"

#include <algorithm>
#include <map>
#include <vector>

namespace coffer::cli {

bool ParseOutputFormat(std::string_view name, OutputFormat* format) {
  static const std::map<std::string_view, OutputFormat> kFormats = {{"json", OutputFormat::kJson},
                                                                    {"tsv", OutputFormat::kTsv},
                                                                    {"table", OutputFormat::kTable},
                                                                    {"none", OutputFormat::kNone}};
  auto it = kFormats.find(name);
  if (it == kFormats.end()) {
    return false;
  }
  *format = it->second;
  return true;
}

namespace {

// A scalar as Python's str() prints the value json.loads made of it.
std::string PythonStr(const Json& v) {
  if (v.is_string()) {
    return v.get<std::string>();
  }
  if (v.is_boolean()) {
    return v.get<bool>() ? "True" : "False";
  }
  if (v.is_null()) {
    return "None";
  }
  return v.dump();
}

std::vector<Json> Items(const Json& value) {
  if (value.is_array()) {
    return std::vector<Json>(value.begin(), value.end());
  }
  return {value};
}

// One cell of a tsv row.
std::string TsvCell(const Json& v) {
  if (v.is_array()) {
    return std::to_string(v.size());
  }
  if (v.is_object()) {
    return "";
  }
  return PythonStr(v);
}

std::string Tsv(const Json& value) {
  std::string out;
  for (const Json& item : Items(value)) {
    if (item.is_object() || item.is_array()) {
      // An object's members iterate in key order (Json keeps them sorted).
      std::string sep;
      for (const auto& member : item) {
        out += sep + TsvCell(member);
        sep = "\t";
      }
    } else if (item.is_boolean()) {
      out += item.get<bool>() ? "true" : "false";
    } else {
      out += TsvCell(item);
    }
    out += "\n";
  }
  return out;
}

// Display width of UTF-8 text: its code points.
size_t Width(const std::string& s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

using Row = std::vector<std::pair<std::string, std::string>>;  // (header, cell)

Row TableRow(const Json& item) {
  Row row;
  if (item.is_object()) {
    for (const auto& [key, v] : item.items()) {
      if (key == "id" || key == "type" || key == "etag" || v.is_null() || v.is_object() ||
          v.is_array()) {
        continue;
      }
      std::string header = key;
      if (!header.empty() && header[0] >= 'a' && header[0] <= 'z') {
        header[0] = static_cast<char>(header[0] - 'a' + 'A');
      }
      row.emplace_back(header, PythonStr(v));
    }
  } else if (item.is_array()) {
    for (size_t i = 0; i < item.size(); ++i) {
      row.emplace_back("Column" + std::to_string(i + 1), PythonStr(item[i]));
    }
  } else {
    row.emplace_back("Result", PythonStr(item));
  }
  return row;
}

std::string Table(const Json& value) {
  std::vector<Row> rows;
  std::vector<std::string> headers;  // in order of first appearance
  for (const Json& item : Items(value)) {
    rows.push_back(TableRow(item));
    for (const auto& [header, cell] : rows.back()) {
      if (std::find(headers.begin(), headers.end(), header) == headers.end()) {
        headers.push_back(header);
      }
    }
  }
  if (headers.empty()) {
    return "\n";
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  for (const auto& h : headers) {
    widths.push_back(Width(h) + 2);
  }
  for (const Row& row : rows) {
    std::vector<std::string> line(headers.size());
    for (const auto& [header, cell] : row) {
      size_t col =
          static_cast<size_t>(std::find(headers.begin(), headers.end(), header) - headers.begin());
      line[col] = cell;
      widths[col] = std::max(widths[col], Width(cell));
    }
    cells.push_back(std::move(line));
  }
  auto render = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
      out += (i == 0 ? "" : "  ") + line[i] + std::string(widths[i] - Width(line[i]), ' ');
    }
    out.erase(out.find_last_not_of(' ') + 1);
    return out + "\n";
  };
  std::vector<std::string> dashes;
  for (size_t w : widths) {
    dashes.emplace_back(w, '-');
  }
  std::string out = render(headers) + render(dashes);
  for (const auto& line : cells) {
    out += render(line);
  }
  return out;
}

}  // namespace

std::string FormatOutput(const Json& value, OutputFormat format) {
  switch (format) {
    case OutputFormat::kJson:
      return value.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
    case OutputFormat::kTsv:
      return Tsv(value);
    case OutputFormat::kTable:
      return Table(value);
    case OutputFormat::kNone:
      return "";
  }
  return "";
}

}  // namespace coffer::cli
