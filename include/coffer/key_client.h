#pragma once

// KeyClient: the Key Vault keys API (api-version 7.5) of one vault, named as
// the Azure SDKs name it: create and import keys, read their public halves,
// update, list, delete, recover, purge, back up, restore, rotate, rotation
// policies and random bytes. The private half of a key never leaves the
// vault; the operations that use it are CryptographyClient's
// (cryptography_client.h).
//
// Authentication, retries and errors are SecretClient's (secret_client.h):
// Key Vault's challenge names the token's resource, 429 and 5xx are retried
// with back-off, and a Status's reason() is Key Vault's error code
// ("KeyNotFound", "Forbidden", ...). Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coffer/credentials.h"
#include "coffer/http_transport.h"
#include "coffer/secret_client.h"
#include "coffer/status.h"

namespace coffer {

// The public members of a key's JWK, as the vault sends them (base64url
// without padding). A vault never sends a private member; one that did
// would not be kept here.
struct JsonWebKey {
  std::string kid;  // https://<vault>/keys/<name>/<version>
  std::string kty;  // "RSA", "EC", "RSA-HSM", "EC-HSM"
  std::vector<std::string> key_ops;
  std::string n;  // RSA
  std::string e;
  std::string crv;  // EC: "P-256", "P-384", "P-521", "P-256K"
  std::string x;
  std::string y;
};

struct KeyProperties {
  std::string id;  // the kid
  std::string vault_url;
  std::string name;
  std::string version;
  bool enabled = true;
  std::optional<int64_t> not_before;  // Unix seconds
  std::optional<int64_t> expires_on;
  int64_t created_on = 0;
  int64_t updated_on = 0;
  std::map<std::string, std::string> tags;
  std::string recovery_level;
  bool managed = false;
  bool exportable = false;
};

struct KeyVaultKey {
  KeyProperties properties;
  JsonWebKey key;
};

struct DeletedKey {
  KeyVaultKey key;
  std::string recovery_id;
  int64_t deleted_on = 0;
  int64_t scheduled_purge_date = 0;
};

struct CreateKeyOptions {
  std::string kty = "RSA";           // "RSA" or "EC"
  std::optional<int> key_size;       // RSA: 2048 (the vault's default), 3072, 4096
  std::string curve;                 // EC: "P-256" (the vault's default), "P-384", ...
  std::vector<std::string> key_ops;  // empty: every operation the key type allows
  std::optional<bool> enabled;
  std::optional<int64_t> not_before;
  std::optional<int64_t> expires_on;
  std::map<std::string, std::string> tags;
};

struct ImportKeyOptions {
  std::optional<bool> enabled;
  std::optional<int64_t> not_before;
  std::optional<int64_t> expires_on;
  std::map<std::string, std::string> tags;
};

// A lifetime action of a rotation policy: `action` "Rotate" or "Notify",
// with one of the ISO 8601 durations set ("P90D", "P1Y2M").
struct KeyRotationLifetimeAction {
  std::string action;
  std::string time_after_create;
  std::string time_before_expiry;
};

struct KeyRotationPolicy {
  std::string id;
  std::vector<KeyRotationLifetimeAction> lifetime_actions;
  std::string expires_in;  // the new versions' lifetime ("P2Y"); "" for none
  int64_t created_on = 0;
  int64_t updated_on = 0;
};

class KeyClient {
 public:
  // `vault_url` is https://<vault>.<suffix>[:port]; a trailing "/" is ignored.
  // The options are SecretClient's (transport, retry, api-version).
  KeyClient(std::string vault_url, std::shared_ptr<TokenCredential> credential,
            SecretClientOptions options = {});

  const std::string& vault_url() const;

  // CreateKey makes a new key, or a new version of an existing one, in the
  // vault. kInvalidArgument reason "BadParameter" for a type, size or curve
  // the vault does not make.
  StatusOr<KeyVaultKey> CreateKey(const std::string& name, const CreateKeyOptions& options);
  // ImportKey stores a key from a JWK with its private members, given as
  // JSON text. The answer, like every read, has only the public half.
  StatusOr<KeyVaultKey> ImportKey(const std::string& name, const std::string& jwk_json,
                                  const ImportKeyOptions& options = {});
  // GetKey reads a version ("" means the latest): its public JWK and
  // properties. kNotFound reason "KeyNotFound" when there is no such key or
  // version.
  StatusOr<KeyVaultKey> GetKey(const std::string& name, const std::string& version = "");
  // UpdateKeyProperties changes enabled, nbf, exp and tags of
  // properties.name / properties.version ("" is the latest), and the
  // permitted operations when `key_ops` is given.
  StatusOr<KeyVaultKey> UpdateKeyProperties(
      const KeyProperties& properties,
      const std::optional<std::vector<std::string>>& key_ops = std::nullopt);
  StatusOr<std::vector<KeyProperties>> ListPropertiesOfKeys();
  StatusOr<std::vector<KeyProperties>> ListPropertiesOfKeyVersions(const std::string& name);

  StatusOr<DeletedKey> DeleteKey(const std::string& name);
  StatusOr<DeletedKey> GetDeletedKey(const std::string& name);
  StatusOr<std::vector<DeletedKey>> ListDeletedKeys();
  StatusOr<KeyVaultKey> RecoverDeletedKey(const std::string& name);
  Status PurgeDeletedKey(const std::string& name);

  // BackupKey returns the opaque backup blob (Key Vault's `value`, base64url).
  StatusOr<std::string> BackupKey(const std::string& name);
  StatusOr<KeyVaultKey> RestoreKeyBackup(const std::string& backup);

  // RotateKey makes a new version now, of the same type, size or curve.
  StatusOr<KeyVaultKey> RotateKey(const std::string& name);
  StatusOr<KeyRotationPolicy> GetKeyRotationPolicy(const std::string& name);
  StatusOr<KeyRotationPolicy> UpdateKeyRotationPolicy(const std::string& name,
                                                      const KeyRotationPolicy& policy);

  // GetRandomBytes returns `count` (1 to 128) bytes from the vault's
  // generator.
  StatusOr<std::vector<uint8_t>> GetRandomBytes(int count);

 private:
  std::shared_ptr<VaultChannel> channel_;
};

// ParseKeyBundle reads a Key Vault KeyBundle JSON body (`key`, `attributes`,
// `tags`, `managed`). kInvalidArgument when it has no `key` object with a
// `kid`.
StatusOr<KeyVaultKey> ParseKeyBundle(const std::string& json);

}  // namespace coffer
