#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace coffer::storage {

// Plain records kept by a Store. Secret values arrive here already sealed
// (crypto/primitives.h AesGcmSeal); a Store never sees plaintext.

struct PrincipalRecord {
  std::string object_id;  // `oid` claim
  std::string app_id;     // client id, `appid` claim
  std::string tenant_id;
  std::string display_name;
  std::string kind;  // "ServicePrincipal" or "UserAssignedIdentity"
  int64_t created = 0;
  // Managed identities are also ARM resources: their resource id (as
  // created), location and tags. Empty for service principals.
  std::string resource_id;
  std::string location;
  std::string tags_json = "{}";
};

struct ClientSecretRecord {
  std::string key_id;
  std::string principal_object_id;
  std::string salt;
  std::string hash;  // PBKDF2-SHA256 of the secret
  int iterations = 0;
  std::string hint;  // first characters, as Entra shows them
  int64_t created = 0;
  int64_t expires = 0;
};

struct ClientCertificateRecord {
  std::string key_id;
  std::string principal_object_id;
  std::string certificate_der;
  std::string sha1_thumbprint;    // raw bytes
  std::string sha256_thumbprint;  // raw bytes
  int64_t created = 0;
  int64_t not_before = 0;
  int64_t not_after = 0;
};

struct VaultRecord {
  std::string name;  // as created; lookups are case-insensitive
  std::string subscription_id;
  std::string resource_group;
  std::string location;
  std::string tenant_id;
  std::string properties_json;   // ARM `properties` as last written (without vaultUri)
  std::string tags_json;         // ARM `tags`
  std::string wrapped_data_key;  // per-vault data key sealed by the master key
  int64_t created = 0;
  int64_t updated = 0;
  // Soft delete: both 0 while the vault is live.
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;

  bool deleted() const { return deleted_date != 0; }
};

struct SecretVersionRecord {
  std::string name;  // display name, case as first created
  std::string version;
  std::string sealed_value;
  std::string content_type;
  std::string tags_json;  // "{}" when none
  bool enabled = true;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
  int64_t created = 0;
  int64_t updated = 0;
};

// A secret as seen by listing and reads: one version plus the secret's
// deletion state.
struct SecretView {
  SecretVersionRecord version;
  bool deleted = false;
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;
};

struct SecretPage {
  std::vector<SecretView> items;
  std::string next_cursor;  // empty when this is the last page
};

struct VersionPage {
  std::vector<SecretVersionRecord> items;
  std::string next_cursor;
};

}  // namespace coffer::storage
