#pragma once

// KeyClient: the Key Vault keys API (api-version 7.5) of one vault, as far
// as a reader of public keys needs it: a key's public JSON Web Key and its
// properties. Named as the Azure SDKs name it; the operations that use the
// private half (sign, decrypt, ...) run in the vault and are not here yet.
//
// Authentication, retries and errors are SecretClient's (secret_client.h):
// Key Vault's challenge names the token's resource, 429 and 5xx are retried
// with back-off, and a Status's reason() is Key Vault's error code
// ("KeyNotFound", "Forbidden", ...). Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
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
};

struct KeyVaultKey {
  KeyProperties properties;
  JsonWebKey key;
};

class KeyClient {
 public:
  // `vault_url` is https://<vault>.<suffix>[:port]; a trailing "/" is ignored.
  // The options are SecretClient's (transport, retry, api-version).
  KeyClient(std::string vault_url, std::shared_ptr<TokenCredential> credential,
            SecretClientOptions options = {});

  const std::string& vault_url() const { return vault_url_; }

  // GetKey reads a version ("" means the latest): its public JWK and
  // properties. kNotFound reason "KeyNotFound" when there is no such key or
  // version.
  StatusOr<KeyVaultKey> GetKey(const std::string& name, const std::string& version = "");

 private:
  StatusOr<std::string> Authorization(bool refresh_challenge);

  std::string vault_url_;
  std::shared_ptr<TokenCredential> credential_;
  SecretClientOptions options_;
  std::mutex mu_;
  std::string scope_;  // GUARDED_BY(mu_): learnt from the first challenge
};

// ParseKeyBundle reads a Key Vault KeyBundle JSON body (`key`, `attributes`,
// `tags`, `managed`). kInvalidArgument when it has no `key` object with a
// `kid`.
StatusOr<KeyVaultKey> ParseKeyBundle(const std::string& json);

}  // namespace coffer
