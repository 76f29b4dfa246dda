#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/records.h"
#include "storage/store.h"

namespace coffer::keyvault {

// Key Vault's naming rules (anchors §1.2). Each returns kInvalidArgument with
// reason "BadParameter" and a message naming the offending value.

// Object (secret, key, certificate) names: 1-127 of [0-9a-zA-Z-].
Status ValidateObjectName(const std::string& name);
// Versions: 32 hex digits.
Status ValidateVersion(const std::string& version);
// Vault names: 3-24 characters of [0-9a-zA-Z-], starting with a letter,
// ending with a letter or digit, no consecutive hyphens.
Status ValidateVaultName(const std::string& name);

// Key Vault's errors about one object, in its words, with the kind's reason
// ("SecretNotFound", "KeyNotFound", "CertificateNotFound", "Conflict").
Status ObjectNotFound(storage::ObjectKind kind, const std::string& name);
Status DeletedObjectNotFound(storage::ObjectKind kind, const std::string& name);
// `s` in Key Vault's words when it is the store's kNotFound for the object
// (`deleted`: for a soft-deleted one); any other status as it is.
Status InKeyVaultWords(const Status& s, storage::ObjectKind kind, const std::string& name,
                       bool deleted);
// FindDeletedObject reads a soft-deleted object's latest version; kNotFound
// in Key Vault's words when there is none, or when the object is live.
StatusOr<storage::SecretView> FindDeletedObject(storage::Store& store, storage::ObjectKind kind,
                                                const std::string& vault, const std::string& name);
// A new version of a soft-deleted object.
Status DeletedButRecoverable(storage::ObjectKind kind, const std::string& name);

// VaultDocumentKey names a small JSON document kept for a vault in the
// store's metadata (Store::UpdateMeta, read and written atomically): a
// vault's certificate contacts and issuers, a certificate's pending
// operation. "vault/<name>/<created>/<document>": the vault's creation
// time makes the key one vault's alone, so a vault purged and made again
// under its name never sees its predecessor's documents.
std::string VaultDocumentKey(const storage::VaultRecord& vault, std::string_view document);

}  // namespace coffer::keyvault
