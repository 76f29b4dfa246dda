#pragma once

// How every client of a vault sends a request: the bearer token for the
// scope Key Vault's challenge named, one more try after a 401, the Azure
// SDKs' retry policy, and paged lists. Shared by SecretClient, KeyClient,
// CertificateClient and CryptographyClient.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "coffer/http_transport.h"
#include "coffer/secret_client.h"
#include "coffer/status.h"
#include "common/json.h"

namespace coffer {

// Retryable is true for the HTTP statuses the Azure SDKs retry: 408, 429,
// 500, 502, 503, 504.
bool Retryable(int status);

// SendAuthorized sends `request` with the Authorization header that
// `authorization(refresh)` returns. After a 401 it asks for it again with
// refresh = true (the resource may have changed, or the token been revoked)
// and sends once more. A retryable status, an unreachable vault or a timeout
// is retried up to retry.max_retries times, after Retry-After or else an
// exponential back-off with jitter. Returns the last response whatever its
// status; an error only when the vault could not be reached (or the
// authorization failed). Blocks for the back-off.
StatusOr<HttpResponse> SendAuthorized(
    HttpTransport& transport, const RetryOptions& retry, const HttpRequest& request,
    const std::function<StatusOr<std::string>(bool refresh)>& authorization);

// VaultChannel sends the requests of one vault's clients: Key Vault's
// challenge (read on `challenge_path`, kept), the credential's token for its
// scope, retries, and nextLink pages. Thread-safe.
class VaultChannel {
 public:
  // `vault_url` is https://<vault>.<suffix>[:port]; trailing "/" are dropped.
  // A null options.transport becomes MakeDefaultTransport.
  VaultChannel(std::string vault_url, std::shared_ptr<TokenCredential> credential,
               SecretClientOptions options, std::string challenge_path);

  const std::string& vault_url() const { return vault_url_; }
  const SecretClientOptions& options() const { return options_; }

  // The Authorization header for the vault: "Bearer <token>". The challenge
  // is read again when `refresh_challenge` (after a 401).
  StatusOr<std::string> Authorization(bool refresh_challenge);

  // Sends `method` `path`?api-version=...`query` (query starts with "&" when
  // set) with a JSON body when `body` is not empty. Any status is a value.
  StatusOr<HttpResponse> Call(const std::string& method, const std::string& path,
                              const std::string& body = "", const std::string& query = "");

  // Calls and returns the body of a JSON object answer with status 200 (or
  // `expected`); any other status is ErrorFromResponse.
  StatusOr<Json> CallJson(const std::string& method, const std::string& path,
                          const std::string& body = "", int expected = 200);

  // Follows the nextLink pages of a list, calling `each` per item.
  // SECURITY: a nextLink is followed only on the vault's own origin and
  // path, so the bearer token never goes to a host the caller did not name.
  Status ListPages(const std::string& first_path, const std::string& first_query,
                   const std::function<void(const Json&)>& each);

 private:
  std::string vault_url_;
  std::shared_ptr<TokenCredential> credential_;
  SecretClientOptions options_;
  std::string challenge_path_;
  std::mutex mu_;
  std::string scope_;  // GUARDED_BY(mu_): learnt from the first challenge
};

// The JSON of answers and requests that every object kind shares.
//
// ParseBody: the answer's body as a JSON object, else kInternal.
StatusOr<Json> ParseBody(const HttpResponse& res);
// {"enabled", "nbf", "exp"} with the members that are set.
Json AttributesJson(std::optional<bool> enabled, std::optional<int64_t> nbf,
                    std::optional<int64_t> exp);
Json TagsJson(const std::map<std::string, std::string>& tags);
// Reads `attributes` (enabled, nbf, exp, created, updated, recoveryLevel)
// and `tags` of an object bundle into `p`, a SecretProperties,
// KeyProperties or CertificateProperties.
template <typename Properties>
void ReadAttributesAndTags(const Json& item, Properties* p) {
  if (item.contains("attributes") && item["attributes"].is_object()) {
    const Json& a = item["attributes"];
    if (a.contains("enabled") && a["enabled"].is_boolean()) {
      p->enabled = a["enabled"].get<bool>();
    }
    auto seconds = [&](const char* name) -> std::optional<int64_t> {
      if (a.contains(name) && a[name].is_number_integer()) {
        return a[name].get<int64_t>();
      }
      return std::nullopt;
    };
    p->not_before = seconds("nbf");
    p->expires_on = seconds("exp");
    p->created_on = seconds("created").value_or(0);
    p->updated_on = seconds("updated").value_or(0);
    if (a.contains("recoveryLevel") && a["recoveryLevel"].is_string()) {
      p->recovery_level = a["recoveryLevel"].get<std::string>();
    }
  }
  if (item.contains("tags") && item["tags"].is_object()) {
    for (const auto& [k, v] : item["tags"].items()) {
      if (v.is_string()) {
        p->tags[k] = v.template get<std::string>();
      }
    }
  }
}
// ReadAttributesAndTags, and `managed` (of a secret or key a certificate
// owns) into a SecretProperties or KeyProperties.
template <typename Properties>
void ReadObjectProperties(const Json& item, Properties* p) {
  p->managed =
      item.contains("managed") && item["managed"].is_boolean() && item["managed"].get<bool>();
  ReadAttributesAndTags(item, p);
}
// Reads deletedDate and scheduledPurgeDate (0 when absent).
void ReadDeletion(const Json& item, std::string* recovery_id, int64_t* deleted_on,
                  int64_t* scheduled_purge_date);

}  // namespace coffer
