#pragma once

// SecretClient: the Key Vault secrets API (api-version 7.5) of one vault,
// named as the Azure SDKs name it, plus Coffer's watch stream.
//
// Authentication follows Key Vault's challenge: the first request goes out
// without a token, the 401's WWW-Authenticate names the resource, and the
// client asks its credential for "<resource>/.default"; the scope is kept for
// later requests. Throttling (429) and 503 are retried with exponential
// back-off, honouring Retry-After.
//
// Errors are values. The Status's reason() is Key Vault's error code
// ("SecretNotFound", "Forbidden", "Throttled"…) and its code the canonical
// one: kNotFound 404, kPermissionDenied 403, kUnauthenticated 401,
// kInvalidArgument 400, kAlreadyExists/kFailedPrecondition 409,
// kResourceExhausted 429, kUnavailable 5xx or unreachable. Thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coffer/credentials.h"
#include "coffer/http_transport.h"
#include "coffer/status.h"

namespace coffer {

// The requests of one vault's clients (internal: src/sdk/pipeline.h).
class VaultChannel;

struct SecretProperties {
  std::string id;         // https://<vault>/secrets/<name>/<version>
  std::string vault_url;  // https://<vault>
  std::string name;
  std::string version;
  bool enabled = true;
  std::optional<int64_t> not_before;  // Unix seconds
  std::optional<int64_t> expires_on;
  int64_t created_on = 0;
  int64_t updated_on = 0;
  std::string content_type;
  std::map<std::string, std::string> tags;
  std::string recovery_level;
  // A certificate's secret (docs/certificates.md): managed, and key_id names
  // the certificate's key (https://<vault>/keys/<name>/<version>); the value
  // is the key with its chain, as content_type says (application/x-pkcs12:
  // base64 of a PFX without a password; application/x-pem-file: PEM).
  bool managed = false;
  std::string key_id;
};

struct KeyVaultSecret {
  SecretProperties properties;
  std::string value;
};

struct DeletedSecret {
  KeyVaultSecret secret;  // value is empty in lists
  std::string recovery_id;
  int64_t deleted_on = 0;
  int64_t scheduled_purge_date = 0;
};

struct SetSecretOptions {
  std::string content_type;
  std::map<std::string, std::string> tags;
  std::optional<bool> enabled;
  std::optional<int64_t> not_before;
  std::optional<int64_t> expires_on;
};

struct RetryOptions {
  int max_retries = 3;
  std::chrono::milliseconds initial_delay{800};
  std::chrono::milliseconds max_delay{60000};
};

struct SecretClientOptions {
  std::shared_ptr<HttpTransport> transport;  // null: MakeDefaultTransport(transport_options)
  TransportOptions transport_options;
  RetryOptions retry;
  std::string api_version = "7.5";
};

// One event of the watch stream. `type` is the event type
// ("Microsoft.KeyVault.SecretNewVersionCreated", "Coffer.KeyVault.SecretDeleted"…),
// or one of the stream's own, which set only `token` (docs/events.md):
// "coffer.ready" when the backlog has been sent; "coffer.resync" when it was
// too large to send (read afresh, then carry on from `token`); "coffer.closed"
// just before the server ends the stream (its token expired, or its principal
// was deleted: reconnect with a fresh token).
struct SecretChange {
  std::string token;  // resume token (the event id)
  std::string type;
  // What changed: "Secret", "Key" or "Vault" (the event data's ObjectType);
  // "" for the stream's own events. A key and a secret may share a name.
  std::string object_type;
  std::string name;
  std::string version;
};

struct WatchOptions {
  std::vector<std::string> names;  // empty: every secret the caller may read
  std::string from;                // resume token; "" starts now
};

class SecretClient {
 public:
  // `vault_url` is https://<vault>.<suffix>[:port]; a trailing "/" is ignored.
  SecretClient(std::string vault_url, std::shared_ptr<TokenCredential> credential,
               SecretClientOptions options = {});

  const std::string& vault_url() const;

  // GetSecret reads a version ("" means the latest).
  StatusOr<KeyVaultSecret> GetSecret(const std::string& name, const std::string& version = "");
  StatusOr<KeyVaultSecret> SetSecret(const std::string& name, const std::string& value,
                                     const SetSecretOptions& options = {});
  // UpdateSecretProperties changes enabled, nbf, exp, content type and tags
  // of properties.name / properties.version ("" is the latest).
  StatusOr<SecretProperties> UpdateSecretProperties(const SecretProperties& properties);
  StatusOr<std::vector<SecretProperties>> ListPropertiesOfSecrets();
  StatusOr<std::vector<SecretProperties>> ListPropertiesOfSecretVersions(const std::string& name);

  StatusOr<DeletedSecret> DeleteSecret(const std::string& name);
  StatusOr<DeletedSecret> GetDeletedSecret(const std::string& name);
  StatusOr<std::vector<DeletedSecret>> ListDeletedSecrets();
  StatusOr<SecretProperties> RecoverDeletedSecret(const std::string& name);
  Status PurgeDeletedSecret(const std::string& name);

  // BackupSecret returns the opaque backup blob (as Key Vault's `value`, base64url).
  StatusOr<std::string> BackupSecret(const std::string& name);
  StatusOr<SecretProperties> RestoreSecretBackup(const std::string& backup);

  // Watch follows the vault's watch stream (GET /coffer/watch) and calls
  // `on_change` for each event until the stream ends, `on_change` returns
  // false or `*cancel` becomes true. Returns the last resume token seen, so
  // that a reconnect with WatchOptions::from misses nothing; a stream that
  // breaks is kUnavailable. kNotFound reason "ResumeTokenExpired" (HTTP 410)
  // means the token is too old: read afresh and watch from now.
  StatusOr<std::string> Watch(const WatchOptions& options,
                              const std::function<bool(const SecretChange&)>& on_change,
                              const std::atomic<bool>* cancel = nullptr);

 private:
  StatusOr<HttpResponse> Call(const std::string& method, const std::string& path,
                              const std::string& body = "", const std::string& query = "");

  std::shared_ptr<VaultChannel> channel_;
};

// ParseSecretBundle reads a Key Vault SecretBundle JSON body (exposed for
// tests and for programs that read backups or event payloads themselves).
StatusOr<KeyVaultSecret> ParseSecretBundle(const std::string& json);

}  // namespace coffer
