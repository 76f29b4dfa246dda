#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "http/message.h"
#include "keyvault/vault_api.h"

namespace coffer::keyvault {

// What the vault object APIs (secrets, keys) read and write alike.

// Key Vault's 400 for a request it cannot take.
Status BadParameter(const std::string& message);
// "Property 'field' must be <expected>."
Status TypeError(const std::string& field, const char* expected);

// Paging: `maxresults` 1-25 and an opaque `$skiptoken`.
struct Paging {
  int limit = 25;
  std::string cursor;
};
StatusOr<Paging> ReadPaging(const http::Request& req);
// The nextLink of a listing at `path` that continues after `cursor`, or
// JSON null (as text) when `cursor` is empty.
std::string NextLink(const http::Request& req, const std::string& path, const std::string& cursor,
                     int limit);

// The request body as a JSON object.
StatusOr<Json> ParseBody(const http::Request& req);

// BackupAnswer is a backup's answer: {"value": the blob in base64url}.
http::Response BackupAnswer(const StatusOr<std::string>& blob);
// ReadBackupBlob reads a restore request's blob (`value`, base64url).
StatusOr<std::string> ReadBackupBlob(const http::Request& req);

// ReadEnabled reads `attributes.enabled` of a request body: nullopt when
// absent; kInvalidArgument naming the member when it is not an object with
// a boolean.
StatusOr<std::optional<bool>> ReadEnabled(const Json& body);

// ReadBinary reads the binary member `field` of a request body: base64url,
// with or without padding (backup blobs, cryptographic operands).
StatusOr<std::string> ReadBinary(const Json& body, const char* field);
// Reads attributes.nbf / exp: absent -> nullopt; null -> inner nullopt;
// integer -> value.
Status ReadTime(const Json& attrs, const char* field, std::optional<std::optional<int64_t>>& out);

// "https://" + the request's Host.
std::string BaseUrl(const http::Request& req);

// ApiRoute is one row of an object API's route table (secrets, keys,
// certificates) whose handler first checks that api-version is given, as
// every Key Vault operation does.
VaultOperation ApiRoute(std::string_view method, std::string_view pattern,
                        std::string_view operation, std::string_view object,
                        std::function<http::Response(const VaultCall&)> handler);

}  // namespace coffer::keyvault
