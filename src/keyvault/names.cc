#include "keyvault/names.h"

#include "common/strings.h"

namespace coffer::keyvault {
namespace {

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Quote untrusted text in messages without letting it run on.
std::string Shown(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s.size() > 64 ? out + "..." : out;
}

}  // namespace

Status ValidateObjectName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 127;
  for (char c : name) {
    ok = ok && (IsAlnum(c) || c == '-');
  }
  if (!ok) {
    return InvalidArgumentError("The request URI contains an invalid name: " + Shown(name) +
                                    ". Names are 1-127 characters of 0-9, a-z, A-Z and '-'.",
                                "BadParameter");
  }
  return OkStatus();
}

Status ValidateVersion(const std::string& version) {
  bool ok = version.size() == 32;
  for (char c : version) {
    ok = ok && IsHex(c);
  }
  if (!ok) {
    return InvalidArgumentError(
        "The request URI contains an invalid version: " + Shown(version) + ".", "BadParameter");
  }
  return OkStatus();
}

Status ValidateVaultName(const std::string& name) {
  bool ok = name.size() >= 3 && name.size() <= 24 && IsAlpha(name.front()) && IsAlnum(name.back());
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    ok = IsAlnum(c) || (c == '-' && name[i - 1] != '-');
  }
  if (!ok) {
    return InvalidArgumentError(
        "The vault name '" + Shown(name) +
            "' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name "
            "must begin with a letter, end with a letter or digit, and not contain consecutive "
            "hyphens.",
        "VaultNameNotValid");
  }
  return OkStatus();
}

Status ObjectNotFound(storage::ObjectKind kind, const std::string& name) {
  const std::string word = AsciiLower(storage::ObjectKindName(kind));
  return NotFoundError("A " + word + " with (name/id) " + name +
                           " was not found in this key vault. If you recently deleted this " +
                           word +
                           " you may be able to recover it using the correct recovery command.",
                       std::string(storage::ObjectKindName(kind)) + "NotFound");
}

Status DeletedObjectNotFound(storage::ObjectKind kind, const std::string& name) {
  return NotFoundError(
      "Deleted " + std::string(storage::ObjectKindName(kind)) + " not found: " + name,
      std::string(storage::ObjectKindName(kind)) + "NotFound");
}

Status InKeyVaultWords(const Status& s, storage::ObjectKind kind, const std::string& name,
                       bool deleted) {
  if (s.code() == StatusCode::kNotFound &&
      s.reason() == std::string(storage::ObjectKindName(kind)) + "NotFound") {
    return deleted ? DeletedObjectNotFound(kind, name) : ObjectNotFound(kind, name);
  }
  return s;
}

Status DeletedButRecoverable(storage::ObjectKind kind, const std::string& name) {
  const std::string word = AsciiLower(storage::ObjectKindName(kind));
  return FailedPreconditionError(
      std::string(storage::ObjectKindName(kind)) + " " + name +
          " is currently in a deleted but recoverable state, and its name cannot be reused; in "
          "this state, the " +
          word + " can only be recovered or purged.",
      "Conflict");
}

StatusOr<storage::SecretView> FindDeletedObject(storage::Store& store, storage::ObjectKind kind,
                                                const std::string& vault, const std::string& name) {
  auto view = store.GetObject(kind, vault, name, "", true);
  if (!view.ok()) {
    return InKeyVaultWords(view.status(), kind, name, true);
  }
  if (!view->deleted) {
    return DeletedObjectNotFound(kind, name);
  }
  return view;
}

std::string VaultDocumentKey(const storage::VaultRecord& vault, std::string_view document) {
  return "vault/" + AsciiLower(vault.name) + "/" + std::to_string(vault.created) + "/" +
         std::string(document);
}

}  // namespace coffer::keyvault
