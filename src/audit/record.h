#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coffer::audit {

// Categories of the lines Coffer itself writes. A caller's Entry never
// carries one of the log's own categories (checkpoint, recovery,
// acknowledgement): the formatter rewrites them to "AuditEvent", so only the
// Log can produce a line that verifiers treat as one (AppendOwnRecordBody).
inline constexpr std::string_view kAuditEventCategory = "AuditEvent";
inline constexpr std::string_view kCheckpointCategory = "CofferAuditCheckpoint";
inline constexpr std::string_view kRecoveryCategory = "CofferAuditRecovery";
inline constexpr std::string_view kAcknowledgementCategory = "CofferAuditAcknowledgement";
// The properties of an acknowledgement line (docs/audit.md).
inline constexpr char kAcknowledgedSeqProperty[] = "acknowledgedSeq";
inline constexpr char kAcknowledgedHashProperty[] = "acknowledgedHash";
inline constexpr char kOperatorProperty[] = "operator";
// The record field naming the server that wrote the line (docs/audit.md).
inline constexpr char kServerIdField[] = "serverId";

// Entry is one operation as the server saw it: plain data in the shape of
// Azure Key Vault's `AuditEvent` record (docs/audit.md). SECURITY: the server
// never puts a secret value, a token or a request body into an Entry.
struct Entry {
  int64_t time_us = 0;            // UTC, microseconds since the epoch; 0 = when queued
  std::string resource_id;        // ARM id of the vault or resource; emitted upper-cased
  std::string operation_name;     // "SecretGet", "VaultPut", "Authentication", ...
  std::string operation_version;  // the client's api-version
  std::string category = std::string(kAuditEventCategory);
  int http_status = 0;  // 0 = no response was sent
  std::string result_description;
  int64_t duration_ms = 0;
  std::string caller_ip;
  std::string correlation_id;  // x-ms-client-request-id
  // identity.claim.<name> = value, emitted in this order.
  std::vector<std::pair<std::string, std::string>> claims;
  std::string id;                              // properties.id: the object's URI
  std::string request_uri;                     // properties.requestUri
  std::string client_info;                     // properties.clientInfo (User-Agent)
  std::string tls_version;                     // properties.tlsVersion, e.g. "TLS1_3"
  std::optional<bool> is_rbac_authorized;      // omitted when unset
  std::optional<bool> is_access_policy_match;  // omitted when unset
  std::string applied_assignment_id;           // omitted when empty
  // Further properties.<name> string fields, in order. A name that collides
  // with one of the fields above is dropped.
  std::vector<std::pair<std::string, std::string>> extra;
};

// EntryView is an Entry whose fields are borrowed, for the request path: the
// server fills it from the request without copying a string, and the log
// formats it before Append returns. `claims_json` is the identity.claim
// object already in JSON (AppendClaimsJson), "" for none.
struct EntryView {
  int64_t time_us = 0;
  std::string_view resource_id;
  std::string_view operation_name;
  std::string_view operation_version;
  std::string_view category = kAuditEventCategory;
  int http_status = 0;
  std::string_view result_description;
  int64_t duration_ms = 0;
  std::string_view caller_ip;
  std::string_view correlation_id;
  std::string_view claims_json;
  std::string_view id;
  std::string_view request_uri;
  std::string_view client_info;
  std::string_view tls_version;
  std::optional<bool> is_rbac_authorized;
  std::optional<bool> is_access_policy_match;
  std::string_view applied_assignment_id;
  const std::vector<std::pair<std::string, std::string>>* extra = nullptr;
};

// AppendClaimsJson appends claims as the JSON object identity.claim holds.
void AppendClaimsJson(std::string& out,
                      const std::vector<std::pair<std::string, std::string>>& claims);

// The `prev` of the first line ever written: 64 zeros.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// AppendRecordLine appends `entry` as one JSON object, with the chain fields
// "seq" and "prev", without a trailing newline. Every string is escaped
// (control characters, quotes, backslashes; invalid UTF-8 becomes U+FFFD), so
// no value can end the line or break out of its field. Thread-safe.
void AppendRecordLine(std::string& out, const Entry& entry, uint64_t seq, std::string_view prev);
// The same line in two parts: the body (every field but the chain's, an
// unterminated object), which a caller can format on its own thread, and the
// chain suffix the writer adds in order.
void AppendRecordBody(std::string& out, const Entry& entry);
void AppendRecordBody(std::string& out, const EntryView& entry);
void AppendChainSuffix(std::string& out, uint64_t seq, std::string_view prev);
// AppendOwnRecordBody is AppendRecordBody for the Log's own records: it
// keeps the recovery and acknowledgement categories (never the checkpoint's,
// which only AppendCheckpointLine writes).
void AppendOwnRecordBody(std::string& out, const Entry& entry);

// AppendCheckpointLine appends a checkpoint line covering record `seq - 1`,
// whose hash is `prev` (docs/audit.md), without a trailing newline.
// `signature` is the raw Ed25519 signature over CheckpointSigningInput().
void AppendCheckpointLine(std::string& out, int64_t time_us, uint64_t seq, std::string_view prev,
                          uint64_t retained_from, std::string_view key_id,
                          std::string_view signature);

// The exact bytes a checkpoint signs, and those the head file signs.
std::string CheckpointSigningInput(uint64_t covered_seq, std::string_view hash,
                                   uint64_t retained_from);
std::string HeadSigningInput(uint64_t seq, std::string_view hash);

// LineHash is the lowercase hex SHA-256 of a line's bytes, newline excluded.
std::string LineHash(std::string_view line);

// FormatAuditTime renders microseconds since the epoch as ISO 8601 UTC with
// seven fractional digits, "2026-01-05T01:32:01.2691220Z", as Azure does.
std::string FormatAuditTime(int64_t time_us);
// ParseAuditTime reads that form back (any number of fractional digits,
// or none). nullopt for anything else.
std::optional<int64_t> ParseAuditTime(std::string_view text);
// ParseTimeFilter reads a query's time bound as microseconds: the log's own
// form or any form ParseIsoTime takes (a date alone, "+00:00"). nullopt for
// anything else.
std::optional<int64_t> ParseTimeFilter(std::string_view text);

// ResultSignature is the HTTP reason phrase for `status` ("OK", "Not Found"),
// or "" for a code not in its table. Records carry the decimal code instead
// of "" (and "" for status 0).
std::string_view ResultSignature(int status);
// ResultType is "Success" for 1..399 and "Failure" otherwise.
std::string_view ResultType(int status);

}  // namespace coffer::audit
