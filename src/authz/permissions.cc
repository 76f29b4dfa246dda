#include "authz/permissions.h"

#include "common/strings.h"

namespace coffer::authz {
namespace {

// Key Vault's permission names (reference: anchors §1.4).
constexpr std::string_view kSecretPermissions[] = {"get",     "list",   "set",     "delete",
                                                   "recover", "backup", "restore", "purge"};
constexpr std::string_view kKeyPermissions[] = {"get",
                                                "list",
                                                "update",
                                                "create",
                                                "import",
                                                "delete",
                                                "recover",
                                                "backup",
                                                "restore",
                                                "decrypt",
                                                "encrypt",
                                                "unwrapKey",
                                                "wrapKey",
                                                "verify",
                                                "sign",
                                                "purge",
                                                "release",
                                                "rotate",
                                                "getrotationpolicy",
                                                "setrotationpolicy"};
constexpr std::string_view kCertificatePermissions[] = {
    "get",         "list",       "update",        "create",         "import",        "delete",
    "recover",     "backup",     "restore",       "managecontacts", "manageissuers", "getissuers",
    "listissuers", "setissuers", "deleteissuers", "purge"};
constexpr std::string_view kStoragePermissions[] = {
    "get",   "list",   "delete",  "set",    "update",  "regeneratekey", "recover",
    "purge", "backup", "restore", "setsas", "listsas", "getsas",        "deletesas"};

constexpr std::span<const std::string_view> Names(ObjectType type) {
  switch (type) {
    case ObjectType::kSecrets:
      return kSecretPermissions;
    case ObjectType::kKeys:
      return kKeyPermissions;
    case ObjectType::kCertificates:
      return kCertificatePermissions;
    case ObjectType::kStorage:
      return kStoragePermissions;
  }
  return {};
}

constexpr PermissionSet Bit(ObjectType type, std::string_view name) {
  auto names = Names(type);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      return PermissionSet{1} << i;
    }
  }
  return 0;
}

// The secrets operations and what each needs (docs/authorization.md).
// Reading a deleted secret needs "list", as in Key Vault; updating a
// version's attributes needs "set" under access policies.
#define COFFER_SECRET_OP(name, perm, action, on_object)                                       \
  DataOperation {                                                                             \
    name, ObjectType::kSecrets, perm, "Microsoft.KeyVault/vaults/secrets/" action, on_object, \
        Bit(ObjectType::kSecrets, perm)                                                       \
  }
// The keys operations (docs/keys.md): reading a deleted key needs "list",
// as for secrets; rotation policies have actions of their own.
#define COFFER_KEY_OP(name, perm, action, on_object)                               \
  DataOperation {                                                                  \
    name, ObjectType::kKeys, perm, "Microsoft.KeyVault/vaults/" action, on_object, \
        Bit(ObjectType::kKeys, perm)                                               \
  }
#define COFFER_CERT_OP(name, perm, action, on_object)                                        \
  DataOperation {                                                                            \
    name, ObjectType::kCertificates, perm, "Microsoft.KeyVault/vaults/certificates/" action, \
        on_object, Bit(ObjectType::kCertificates, perm)                                      \
  }
// A vault's certificate contacts and issuers: Key Vault's actions of their
// own, and "manage..." permissions that also grant each issuer operation.
#define COFFER_CERT_ADMIN_OP(name, perm, also, action, on_object)                          \
  DataOperation {                                                                          \
    name, ObjectType::kCertificates, perm, "Microsoft.KeyVault/vaults/" action, on_object, \
        Bit(ObjectType::kCertificates, perm) | Bit(ObjectType::kCertificates, also)        \
  }
constexpr DataOperation kOperations[] = {
    COFFER_SECRET_OP("SecretGet", "get", "getSecret/action", true),
    // SECURITY: a keyed hash of the value under a key the caller picks
    // lets the caller test guesses of the value offline, so it needs what
    // reading the value needs (keyvault/secrets_api.cc, docs/secrets.md).
    COFFER_SECRET_OP("SecretHash", "get", "getSecret/action", true),
    COFFER_SECRET_OP("SecretList", "list", "readMetadata/action", false),
    COFFER_SECRET_OP("SecretListVersions", "list", "readMetadata/action", true),
    COFFER_SECRET_OP("SecretSet", "set", "setSecret/action", true),
    COFFER_SECRET_OP("SecretUpdate", "set", "update/action", true),
    COFFER_SECRET_OP("SecretDelete", "delete", "delete", true),
    COFFER_SECRET_OP("SecretBackup", "backup", "backup/action", true),
    COFFER_SECRET_OP("SecretRestore", "restore", "restore/action", false),
    COFFER_SECRET_OP("SecretRecover", "recover", "recover/action", true),
    COFFER_SECRET_OP("SecretPurge", "purge", "purge/action", true),
    COFFER_SECRET_OP("SecretGetDeleted", "list", "readMetadata/action", true),
    COFFER_SECRET_OP("SecretListDeleted", "list", "readMetadata/action", false),
    COFFER_KEY_OP("KeyCreate", "create", "keys/create/action", true),
    COFFER_KEY_OP("KeyImport", "import", "keys/import/action", true),
    COFFER_KEY_OP("KeyGet", "get", "keys/read", true),
    COFFER_KEY_OP("KeyList", "list", "keys/read", false),
    COFFER_KEY_OP("KeyListVersions", "list", "keys/read", true),
    COFFER_KEY_OP("KeyUpdate", "update", "keys/update/action", true),
    COFFER_KEY_OP("KeyDelete", "delete", "keys/delete", true),
    COFFER_KEY_OP("KeyGetDeleted", "list", "keys/read", true),
    COFFER_KEY_OP("KeyListDeleted", "list", "keys/read", false),
    COFFER_KEY_OP("KeyRecover", "recover", "keys/recover/action", true),
    COFFER_KEY_OP("KeyPurge", "purge", "keys/purge/action", true),
    COFFER_KEY_OP("KeyBackup", "backup", "keys/backup/action", true),
    COFFER_KEY_OP("KeyRestore", "restore", "keys/restore/action", false),
    COFFER_KEY_OP("KeyEncrypt", "encrypt", "keys/encrypt/action", true),
    COFFER_KEY_OP("KeyDecrypt", "decrypt", "keys/decrypt/action", true),
    COFFER_KEY_OP("KeyWrap", "wrapKey", "keys/wrap/action", true),
    COFFER_KEY_OP("KeyUnwrap", "unwrapKey", "keys/unwrap/action", true),
    COFFER_KEY_OP("KeySign", "sign", "keys/sign/action", true),
    COFFER_KEY_OP("KeyVerify", "verify", "keys/verify/action", true),
    COFFER_KEY_OP("KeyRotate", "rotate", "keys/rotate/action", true),
    COFFER_KEY_OP("KeyRotationPolicyGet", "getrotationpolicy", "keyrotationpolicies/read", true),
    COFFER_KEY_OP("KeyRotationPolicySet", "setrotationpolicy", "keyrotationpolicies/write", true),
    // The certificates operations (docs/certificates.md): reading a deleted
    // certificate needs "list", as for secrets and keys; the policy is read
    // with "get" and changed with "update".
    COFFER_CERT_OP("CertificateCreate", "create", "create/action", true),
    COFFER_CERT_OP("CertificateImport", "import", "import/action", true),
    COFFER_CERT_OP("CertificateGet", "get", "read", true),
    COFFER_CERT_OP("CertificateList", "list", "read", false),
    COFFER_CERT_OP("CertificateListVersions", "list", "read", true),
    COFFER_CERT_OP("CertificateUpdate", "update", "update/action", true),
    COFFER_CERT_OP("CertificatePendingGet", "get", "read", true),
    COFFER_CERT_OP("CertificatePolicyGet", "get", "read", true),
    COFFER_CERT_OP("CertificatePolicyUpdate", "update", "update/action", true),
    COFFER_CERT_OP("CertificateDelete", "delete", "delete", true),
    COFFER_CERT_OP("CertificateGetDeleted", "list", "read", true),
    COFFER_CERT_OP("CertificateListDeleted", "list", "read", false),
    COFFER_CERT_OP("CertificateRecover", "recover", "recover/action", true),
    COFFER_CERT_OP("CertificatePurge", "purge", "purge/action", true),
    COFFER_CERT_OP("CertificateBackup", "backup", "backup/action", true),
    COFFER_CERT_OP("CertificateRestore", "restore", "restore/action", false),
    // An operation in progress is cancelled and dropped with "update" and
    // merged with "create", as in Key Vault.
    COFFER_CERT_OP("CertificatePendingUpdate", "update", "update/action", true),
    COFFER_CERT_OP("CertificatePendingDelete", "update", "update/action", true),
    COFFER_CERT_OP("CertificatePendingMerge", "create", "create/action", true),
    COFFER_CERT_ADMIN_OP("CertificateContactsGet", "managecontacts", "managecontacts",
                         "certificatecontacts/write", false),
    COFFER_CERT_ADMIN_OP("CertificateContactsSet", "managecontacts", "managecontacts",
                         "certificatecontacts/write", false),
    COFFER_CERT_ADMIN_OP("CertificateContactsDelete", "managecontacts", "managecontacts",
                         "certificatecontacts/write", false),
    COFFER_CERT_ADMIN_OP("CertificateIssuerGet", "getissuers", "manageissuers",
                         "certificatecas/read", false),
    COFFER_CERT_ADMIN_OP("CertificateIssuerList", "listissuers", "manageissuers",
                         "certificatecas/read", false),
    COFFER_CERT_ADMIN_OP("CertificateIssuerSet", "setissuers", "manageissuers",
                         "certificatecas/write", false),
    COFFER_CERT_ADMIN_OP("CertificateIssuerUpdate", "setissuers", "manageissuers",
                         "certificatecas/write", false),
    COFFER_CERT_ADMIN_OP("CertificateIssuerDelete", "deleteissuers", "manageissuers",
                         "certificatecas/delete", false),
    // Random bytes come from the vault, not a key: any caller who may read
    // the vault's keys may ask (Key Vault offers it on Managed HSM only).
    COFFER_KEY_OP("GetRandomBytes", "get", "keys/read", false),
};
#undef COFFER_SECRET_OP
#undef COFFER_KEY_OP
#undef COFFER_CERT_OP
#undef COFFER_CERT_ADMIN_OP

constexpr std::string_view kDataActions[] = {
    // secrets
    "Microsoft.KeyVault/vaults/secrets/delete",
    "Microsoft.KeyVault/vaults/secrets/backup/action",
    "Microsoft.KeyVault/vaults/secrets/purge/action",
    "Microsoft.KeyVault/vaults/secrets/update/action",
    "Microsoft.KeyVault/vaults/secrets/recover/action",
    "Microsoft.KeyVault/vaults/secrets/restore/action",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    // keys
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/update/action",
    "Microsoft.KeyVault/vaults/keys/create/action",
    "Microsoft.KeyVault/vaults/keys/import/action",
    "Microsoft.KeyVault/vaults/keys/recover/action",
    "Microsoft.KeyVault/vaults/keys/restore/action",
    "Microsoft.KeyVault/vaults/keys/delete",
    "Microsoft.KeyVault/vaults/keys/backup/action",
    "Microsoft.KeyVault/vaults/keys/purge/action",
    "Microsoft.KeyVault/vaults/keys/encrypt/action",
    "Microsoft.KeyVault/vaults/keys/decrypt/action",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
    "Microsoft.KeyVault/vaults/keys/sign/action",
    "Microsoft.KeyVault/vaults/keys/verify/action",
    "Microsoft.KeyVault/vaults/keys/release/action",
    "Microsoft.KeyVault/vaults/keys/rotate/action",
    "Microsoft.KeyVault/vaults/keyrotationpolicies/read",
    "Microsoft.KeyVault/vaults/keyrotationpolicies/write",
    // certificates
    "Microsoft.KeyVault/vaults/certificates/read",
    "Microsoft.KeyVault/vaults/certificates/delete",
    "Microsoft.KeyVault/vaults/certificates/backup/action",
    "Microsoft.KeyVault/vaults/certificates/purge/action",
    "Microsoft.KeyVault/vaults/certificates/update/action",
    "Microsoft.KeyVault/vaults/certificates/create/action",
    "Microsoft.KeyVault/vaults/certificates/import/action",
    "Microsoft.KeyVault/vaults/certificates/recover/action",
    "Microsoft.KeyVault/vaults/certificates/restore/action",
    "Microsoft.KeyVault/vaults/certificatecas/delete",
    "Microsoft.KeyVault/vaults/certificatecas/read",
    "Microsoft.KeyVault/vaults/certificatecas/write",
    "Microsoft.KeyVault/vaults/certificatecontacts/write",
};

Status Invalid(const std::string& message) {
  return InvalidArgumentError(message, "BadRequest");
}

}  // namespace

std::string_view ObjectTypeName(ObjectType type) {
  switch (type) {
    case ObjectType::kSecrets:
      return "secrets";
    case ObjectType::kKeys:
      return "keys";
    case ObjectType::kCertificates:
      return "certificates";
    case ObjectType::kStorage:
      return "storage";
  }
  return "";
}

std::span<const std::string_view> PermissionNames(ObjectType type) {
  return Names(type);
}

std::optional<PermissionSet> ParsePermission(ObjectType type, std::string_view name) {
  auto names = PermissionNames(type);
  if (EqualsIgnoreCase(name, "all")) {
    return (PermissionSet{1} << names.size()) - 1;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (EqualsIgnoreCase(names[i], name)) {
      return PermissionSet{1} << i;
    }
  }
  return std::nullopt;
}

std::span<const DataOperation> DataOperations() {
  return kOperations;
}

const DataOperation* FindOperation(std::string_view name) {
  for (const auto& op : kOperations) {
    if (EqualsIgnoreCase(op.name, name)) {
      return &op;
    }
  }
  return nullptr;
}

std::span<const std::string_view> KnownDataActions() {
  return kDataActions;
}

namespace {

// The permission list of one object type in an entry (const or not).
template <typename Policy>
auto& ListOf(Policy& p, ObjectType type) {
  switch (type) {
    case ObjectType::kKeys:
      return p.keys;
    case ObjectType::kCertificates:
      return p.certificates;
    case ObjectType::kStorage:
      return p.storage;
    case ObjectType::kSecrets:
      break;
  }
  return p.secrets;
}

constexpr ObjectType kTypes[] = {ObjectType::kKeys, ObjectType::kSecrets, ObjectType::kCertificates,
                                 ObjectType::kStorage};

}  // namespace

StatusOr<std::vector<storage::AccessPolicyRecord>> ParseAccessPolicies(const Json& policies) {
  if (!policies.is_array()) {
    return Invalid("properties.accessPolicies must be an array.");
  }
  if (policies.size() > kMaxAccessPolicies) {
    return Invalid("A vault may have at most 1024 access policies; this request has " +
                   std::to_string(policies.size()) + ".");
  }
  std::vector<storage::AccessPolicyRecord> out;
  out.reserve(policies.size());
  for (size_t i = 0; i < policies.size(); ++i) {
    const Json& p = policies[i];
    std::string where = "accessPolicies[" + std::to_string(i) + "]";
    if (!p.is_object()) {
      return Invalid(where + " must be an object.");
    }
    storage::AccessPolicyRecord policy;
    for (const char* field : {"tenantId", "objectId"}) {
      auto it = p.find(field);
      if (it == p.end() || !it->is_string() || it->get<std::string>().empty() ||
          it->get<std::string>().size() > 64) {
        return Invalid(where + "." + field + " must be a non-empty string.");
      }
    }
    policy.tenant_id = p["tenantId"].get<std::string>();
    policy.object_id = p["objectId"].get<std::string>();
    if (auto it = p.find("applicationId"); it != p.end() && !it->is_null()) {
      if (!it->is_string() || it->get<std::string>().size() > 64) {
        return Invalid(where + ".applicationId must be a string.");
      }
      policy.application_id = it->get<std::string>();
    }
    auto perms = p.find("permissions");
    if (perms == p.end() || !perms->is_object()) {
      return Invalid(where + ".permissions must be an object.");
    }
    for (const auto& [kind, list] : perms->items()) {
      std::optional<ObjectType> type;
      for (ObjectType t : kTypes) {
        if (EqualsIgnoreCase(ObjectTypeName(t), kind)) {
          type = t;
        }
      }
      if (!type) {
        return Invalid(where + ".permissions." + kind.substr(0, 64) +
                       " is not an object type; use secrets, keys, certificates or storage.");
      }
      if (list.is_null()) {
        continue;
      }
      if (!list.is_array()) {
        return Invalid(where + ".permissions." + kind + " must be an array of strings.");
      }
      auto& names = ListOf(policy, *type);
      if (!names) {
        names.emplace();
      }
      for (const auto& name : list) {
        auto bit =
            name.is_string() ? ParsePermission(*type, name.get<std::string>()) : std::nullopt;
        if (!bit) {
          std::string allowed;
          for (auto n : PermissionNames(*type)) {
            allowed += std::string(n) + ", ";
          }
          return Invalid(where + ".permissions." + kind + " holds '" +
                         (name.is_string() ? name.get<std::string>().substr(0, 64)
                                           : ToJson(name).substr(0, 64)) +
                         "', which is not a permission. Valid: " + allowed + "all.");
        }
        names->push_back(name.get<std::string>());
      }
    }
    out.push_back(std::move(policy));
  }
  return out;
}

AccessPolicySet CompileAccessPolicies(const std::vector<storage::AccessPolicyRecord>& policies) {
  AccessPolicySet out;
  out.entries.reserve(policies.size());
  for (const auto& p : policies) {
    AccessPolicy policy;
    policy.tenant_id = AsciiLower(p.tenant_id);
    policy.object_id = AsciiLower(p.object_id);
    policy.application_id = AsciiLower(p.application_id);
    for (ObjectType t : kTypes) {
      const auto& names = ListOf(p, t);
      if (!names) {
        continue;
      }
      for (const auto& name : *names) {
        // Names were checked when written; one that is not a permission
        // grants nothing.
        policy.granted[static_cast<int>(t)] |= ParsePermission(t, name).value_or(0);
      }
    }
    out.by_object[policy.object_id].push_back(static_cast<uint32_t>(out.entries.size()));
    out.entries.push_back(std::move(policy));
  }
  return out;
}

StatusOr<AccessPolicySet> CompileAccessPolicies(const Json& policies) {
  ASSIGN_OR_RETURN(auto parsed, ParseAccessPolicies(policies));
  return CompileAccessPolicies(parsed);
}

Json AccessPoliciesToArm(const std::vector<storage::AccessPolicyRecord>& policies) {
  Json out = Json::array();
  for (const auto& p : policies) {
    Json entry = {{"tenantId", p.tenant_id}, {"objectId", p.object_id}};
    if (!p.application_id.empty()) {
      entry["applicationId"] = p.application_id;
    }
    Json permissions = Json::object();
    for (ObjectType t : kTypes) {
      if (const auto& names = ListOf(p, t)) {
        Json list = Json::array();
        for (const auto& n : *names) {
          list.push_back(n);
        }
        permissions[std::string(ObjectTypeName(t))] = std::move(list);
      }
    }
    entry["permissions"] = std::move(permissions);
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace coffer::authz
