#include "audit/record.h"

#include <array>
#include <charconv>
#include <utility>

#include "common/encoding.h"
#include "common/json.h"
#include "common/time_format.h"
#include "crypto/primitives.h"

namespace coffer::audit {
namespace {

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

// `,"key":` — keys are our own constants and need no escaping.
void AppendKey(std::string& out, std::string_view key) {
  out += ",\"";
  out += key;
  out += "\":";
}

void AppendStringField(std::string& out, std::string_view key, std::string_view value) {
  AppendKey(out, key);
  AppendJsonString(out, value);
}

void AppendUpperString(std::string& out, std::string_view value) {
  // Upper-case ASCII only: multi-byte UTF-8 sequences never contain bytes in
  // 'a'..'z', so they pass through intact to the escaper.
  thread_local std::string upper;
  upper.assign(value);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  AppendJsonString(out, upper);
}

// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void AppendDigits(char* p, uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

void AppendTime(std::string& out, int64_t time_us) {
  int64_t secs = time_us >= 0 ? time_us / 1000000 : -((-time_us + 999999) / 1000000);
  auto frac_us = static_cast<uint64_t>(time_us - secs * 1000000);
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  auto sod = static_cast<uint64_t>(secs - days * 86400);
  int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  CivilFromDays(days, y, m, d);
  if (y < 0 || y > 9999) {
    y = y < 0 ? 0 : 9999;
  }
  // "YYYY-MM-DDTHH:MM:SS.fffffffZ": 28 characters.
  char buf[28];
  AppendDigits(buf, static_cast<uint64_t>(y), 4);
  buf[4] = '-';
  AppendDigits(buf + 5, m, 2);
  buf[7] = '-';
  AppendDigits(buf + 8, d, 2);
  buf[10] = 'T';
  AppendDigits(buf + 11, sod / 3600, 2);
  buf[13] = ':';
  AppendDigits(buf + 14, sod / 60 % 60, 2);
  buf[16] = ':';
  AppendDigits(buf + 17, sod % 60, 2);
  buf[19] = '.';
  AppendDigits(buf + 20, frac_us * 10, 7);
  buf[27] = 'Z';
  out.append(buf, sizeof(buf));
}

constexpr std::array<std::string_view, 8> kFixedProperties = {
    "id",
    "requestUri",
    "clientInfo",
    "httpStatusCode",
    "isRbacAuthorized",
    "isAccessPolicyMatch",
    "appliedAssignmentId",
    "tlsVersion",
};

bool IsFixedProperty(std::string_view name) {
  for (std::string_view f : kFixedProperties) {
    if (f == name) {
      return true;
    }
  }
  return false;
}

// Reason phrases as HTTP/1.1 gives them (RFC 9110), for the codes the server sends.
constexpr std::pair<int, std::string_view> kReasonPhrases[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {422, "Unprocessable Entity"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

}  // namespace

void AppendRecordLine(std::string& out, const Entry& e, uint64_t seq, std::string_view prev) {
  AppendRecordBody(out, e);
  AppendChainSuffix(out, seq, prev);
}

void AppendChainSuffix(std::string& out, uint64_t seq, std::string_view prev) {
  out += ",\"seq\":";
  AppendUint(out, seq);
  out += ",\"prev\":\"";
  out += prev;
  out += "\"}";
}

void AppendClaimsJson(std::string& out,
                      const std::vector<std::pair<std::string, std::string>>& claims) {
  out += '{';
  for (size_t i = 0; i < claims.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    AppendJsonString(out, claims[i].first);
    out += ':';
    AppendJsonString(out, claims[i].second);
  }
  out += '}';
}

namespace {

// Whether a caller's record may carry `category`.
bool IsOwnCategory(std::string_view category) {
  return category == kCheckpointCategory || category == kRecoveryCategory ||
         category == kAcknowledgementCategory;
}

void AppendBody(std::string& out, const EntryView& e, bool own);

void AppendEntryBody(std::string& out, const Entry& e, bool own) {
  thread_local std::string claims;
  claims.clear();
  AppendClaimsJson(claims, e.claims);
  EntryView v;
  v.time_us = e.time_us;
  v.resource_id = e.resource_id;
  v.operation_name = e.operation_name;
  v.operation_version = e.operation_version;
  v.category = e.category;
  v.http_status = e.http_status;
  v.result_description = e.result_description;
  v.duration_ms = e.duration_ms;
  v.caller_ip = e.caller_ip;
  v.correlation_id = e.correlation_id;
  v.claims_json = claims;
  v.id = e.id;
  v.request_uri = e.request_uri;
  v.client_info = e.client_info;
  v.tls_version = e.tls_version;
  v.is_rbac_authorized = e.is_rbac_authorized;
  v.is_access_policy_match = e.is_access_policy_match;
  v.applied_assignment_id = e.applied_assignment_id;
  v.extra = &e.extra;
  AppendBody(out, v, own);
}

void AppendBody(std::string& out, const EntryView& e, bool own) {
  out += "{\"time\":\"";
  AppendTime(out, e.time_us);
  out += '"';
  AppendKey(out, "resourceId");
  AppendUpperString(out, e.resource_id);
  AppendStringField(out, "operationName", e.operation_name);
  AppendStringField(out, "operationVersion", e.operation_version);
  // SECURITY: a record must never pose as one of the log's own lines (a
  // checkpoint, a recovery or its acknowledgement); see record.h.
  bool keep = !IsOwnCategory(e.category) || (own && e.category != kCheckpointCategory);
  AppendStringField(out, "category", keep ? e.category : kAuditEventCategory);
  AppendStringField(out, "resultType", ResultType(e.http_status));
  AppendKey(out, "resultSignature");
  std::string_view signature = ResultSignature(e.http_status);
  if (signature.empty() && e.http_status != 0) {
    out += '"';
    AppendInt(out, e.http_status);
    out += '"';
  } else {
    AppendJsonString(out, signature);
  }
  AppendStringField(out, "resultDescription", e.result_description);
  AppendKey(out, "durationMs");
  AppendInt(out, e.duration_ms);
  AppendStringField(out, "callerIpAddress", e.caller_ip);
  AppendStringField(out, "correlationId", e.correlation_id);
  // SECURITY: claims_json is the server's own AppendClaimsJson output.
  out += ",\"identity\":{\"claim\":";
  out += e.claims_json.empty() ? std::string_view("{}") : e.claims_json;
  out += "},\"properties\":{\"id\":";
  AppendJsonString(out, e.id);
  AppendStringField(out, "requestUri", e.request_uri);
  AppendStringField(out, "clientInfo", e.client_info);
  AppendKey(out, "httpStatusCode");
  AppendInt(out, e.http_status);
  if (e.is_rbac_authorized.has_value()) {
    AppendKey(out, "isRbacAuthorized");
    out += *e.is_rbac_authorized ? "true" : "false";
  }
  if (e.is_access_policy_match.has_value()) {
    AppendKey(out, "isAccessPolicyMatch");
    out += *e.is_access_policy_match ? "true" : "false";
  }
  if (!e.applied_assignment_id.empty()) {
    AppendStringField(out, "appliedAssignmentId", e.applied_assignment_id);
  }
  AppendStringField(out, "tlsVersion", e.tls_version);
  static const std::vector<std::pair<std::string, std::string>> kNone;
  for (const auto& [name, value] : e.extra != nullptr ? *e.extra : kNone) {
    // A duplicate key would let readers disagree on which value counts.
    if (IsFixedProperty(name)) {
      continue;
    }
    out += ',';
    AppendJsonString(out, name);
    out += ':';
    AppendJsonString(out, value);
  }
  out += '}';
}

}  // namespace

void AppendRecordBody(std::string& out, const Entry& e) {
  AppendEntryBody(out, e, false);
}

void AppendOwnRecordBody(std::string& out, const Entry& e) {
  AppendEntryBody(out, e, true);
}

void AppendRecordBody(std::string& out, const EntryView& e) {
  AppendBody(out, e, false);
}

void AppendCheckpointLine(std::string& out, int64_t time_us, uint64_t seq, std::string_view prev,
                          uint64_t retained_from, std::string_view key_id,
                          std::string_view signature) {
  out += "{\"time\":\"";
  AppendTime(out, time_us);
  out += "\",\"category\":\"";
  out += kCheckpointCategory;
  out += "\",\"seq\":";
  AppendUint(out, seq);
  out += ",\"prev\":\"";
  out += prev;
  out += "\",\"checkpoint\":{\"seq\":";
  AppendUint(out, seq - 1);
  out += ",\"hash\":\"";
  out += prev;
  out += "\",\"retainedFrom\":";
  AppendUint(out, retained_from);
  out += ",\"keyId\":\"";
  out += key_id;
  out += "\",\"signature\":\"";
  out += Base64Encode(signature);
  out += "\"}}";
}

std::string CheckpointSigningInput(uint64_t covered_seq, std::string_view hash,
                                   uint64_t retained_from) {
  std::string out = "coffer-audit-checkpoint-v1|";
  AppendUint(out, covered_seq);
  out += '|';
  out += hash;
  out += '|';
  AppendUint(out, retained_from);
  return out;
}

std::string HeadSigningInput(uint64_t seq, std::string_view hash) {
  std::string out = "coffer-audit-head-v1|";
  AppendUint(out, seq);
  out += '|';
  out += hash;
  return out;
}

std::string LineHash(std::string_view line) {
  return HexEncode(crypto::Sha256(line));
}

std::string FormatAuditTime(int64_t time_us) {
  std::string out;
  AppendTime(out, time_us);
  return out;
}

std::optional<int64_t> ParseTimeFilter(std::string_view text) {
  if (auto us = ParseAuditTime(text)) {
    return us;
  }
  if (auto t = ParseIsoTime(text)) {
    return *t * 1000000;
  }
  return std::nullopt;
}

std::optional<int64_t> ParseAuditTime(std::string_view t) {
  auto num = [&](size_t pos, size_t len) -> std::optional<unsigned> {
    if (pos + len > t.size()) {
      return std::nullopt;
    }
    unsigned v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (t[i] < '0' || t[i] > '9') {
        return std::nullopt;
      }
      v = v * 10 + static_cast<unsigned>(t[i] - '0');
    }
    return v;
  };
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' ||
      t.back() != 'Z') {
    return std::nullopt;
  }
  auto y = num(0, 4);
  auto mo = num(5, 2);
  auto d = num(8, 2);
  auto h = num(11, 2);
  auto mi = num(14, 2);
  auto s = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !s || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 ||
      *mi > 59 || *s > 60) {
    return std::nullopt;
  }
  int64_t frac_us = 0;
  std::string_view rest = t.substr(19, t.size() - 20);
  if (!rest.empty()) {
    if (rest[0] != '.' || rest.size() < 2) {
      return std::nullopt;
    }
    int64_t scale = 100000;
    for (size_t i = 1; i < rest.size(); ++i) {
      if (rest[i] < '0' || rest[i] > '9') {
        return std::nullopt;
      }
      frac_us += (rest[i] - '0') * scale;
      scale /= 10;
    }
  }
  int64_t days = DaysFromCivil(*y, *mo, *d);
  return (days * 86400 + int64_t{*h} * 3600 + int64_t{*mi} * 60 + *s) * 1000000 + frac_us;
}

std::string_view ResultSignature(int status) {
  for (const auto& [code, phrase] : kReasonPhrases) {
    if (code == status) {
      return phrase;
    }
  }
  return "";
}

std::string_view ResultType(int status) {
  return status > 0 && status < 400 ? "Success" : "Failure";
}

}  // namespace coffer::audit
