#include "keyvault/envelope.h"

#include <cstdlib>
#include <filesystem>

#include "common/encoding.h"
#include "common/files.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::keyvault {
namespace {

constexpr char kBackupMagic[] = "CKB1";

std::string ValueAad(const std::string& vault, const std::string& name,
                     const std::string& version) {
  return "coffer-secret-v1|" + AsciiLower(vault) + "|" + AsciiLower(name) + "|" + version;
}

// SECURITY: a key's private half is bound to the key, not only to its
// place: a secret and a key may share a name and a version id, and a sealed
// private key moved into the secret's row must not open as its value.
std::string KeyAad(const std::string& vault, const std::string& name, const std::string& version) {
  return "coffer-key-v1|" + AsciiLower(vault) + "|" + AsciiLower(name) + "|" + version;
}

}  // namespace

Envelope::Envelope(std::string master_key)
    : master_key_(std::move(master_key)),
      backup_key_(crypto::HkdfSha256(master_key_, "coffer", "coffer-backup-key-v1", 32)),
      installation_key_(
          crypto::HkdfSha256(master_key_, "coffer", "coffer-installation-keys-v1", 32)) {}

Envelope::~Envelope() {
  crypto::SecureWipe(master_key_);
  crypto::SecureWipe(backup_key_);
  crypto::SecureWipe(installation_key_);
}

StatusOr<std::unique_ptr<Envelope>> Envelope::Create(std::string master_key) {
  if (master_key.size() != crypto::kAes256KeySize) {
    return InvalidArgumentError("master key must be 32 bytes");
  }
  return std::unique_ptr<Envelope>(new Envelope(std::move(master_key)));
}

StatusOr<std::string> Envelope::LoadMasterKey(const std::string& path) {
  if (const char* env = std::getenv("COFFER_MASTER_KEY"); env != nullptr && *env != '\0') {
    auto key = Base64Decode(TrimWhitespace(env));
    if (!key || key->size() != crypto::kAes256KeySize) {
      return InvalidArgumentError("COFFER_MASTER_KEY must be base64 of 32 bytes");
    }
    return *key;
  }
  if (!std::filesystem::exists(path)) {
    RETURN_IF_ERROR(WriteFileAtomic(
        path, Base64Encode(crypto::RandomBytes(crypto::kAes256KeySize)) + "\n", 0600));
  }
  // SECURITY: refuse a master key that other users could read.
  int mode = FileMode(path);
  if (mode < 0 || (mode & 077) != 0) {
    return FailedPreconditionError("master key file " + path +
                                   " must not be accessible by group or others (chmod 600)");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto key = Base64Decode(TrimWhitespace(text));
  if (!key || key->size() != crypto::kAes256KeySize) {
    return InvalidArgumentError("master key file " + path + " is malformed");
  }
  return *key;
}

std::string Envelope::NewWrappedDataKey(const std::string& vault) const {
  std::string dek = crypto::RandomBytes(crypto::kAes256KeySize);
  std::string wrapped = crypto::AesGcmSeal(master_key_, dek, "coffer-dek-v1|" + AsciiLower(vault));
  crypto::SecureWipe(dek);
  return wrapped;
}

StatusOr<std::string> Envelope::UnwrapDataKey(const std::string& vault,
                                              const std::string& wrapped) const {
  auto dek = crypto::AesGcmOpen(master_key_, wrapped, "coffer-dek-v1|" + AsciiLower(vault));
  if (!dek.ok()) {
    return DataLossError("data key of vault '" + vault + "' does not open with this master key");
  }
  return dek;
}

std::string Envelope::SealValue(const std::string& data_key, const std::string& vault,
                                const std::string& name, const std::string& version,
                                const std::string& plaintext) {
  return crypto::AesGcmSeal(data_key, plaintext, ValueAad(vault, name, version));
}

StatusOr<std::string> Envelope::OpenValue(const std::string& data_key, const std::string& vault,
                                          const std::string& name, const std::string& version,
                                          const std::string& sealed) {
  auto v = crypto::AesGcmOpen(data_key, sealed, ValueAad(vault, name, version));
  if (!v.ok()) {
    return DataLossError("stored value of secret '" + name + "' failed authentication");
  }
  return v;
}

std::string Envelope::SealKeyMaterial(const std::string& data_key, const std::string& vault,
                                      const std::string& name, const std::string& version,
                                      const std::string& plaintext) {
  return crypto::AesGcmSeal(data_key, plaintext, KeyAad(vault, name, version));
}

StatusOr<std::string> Envelope::OpenKeyMaterial(const std::string& data_key,
                                                const std::string& vault, const std::string& name,
                                                const std::string& version,
                                                const std::string& sealed) {
  auto v = crypto::AesGcmOpen(data_key, sealed, KeyAad(vault, name, version));
  if (!v.ok()) {
    return DataLossError("stored material of key '" + name + "' failed authentication");
  }
  return v;
}

std::string Envelope::SealInstallationKey(const std::string& label,
                                          const std::string& plaintext) const {
  return crypto::AesGcmSeal(installation_key_, plaintext, "coffer-installation-key-v1|" + label);
}

StatusOr<std::string> Envelope::OpenInstallationKey(const std::string& label,
                                                    const std::string& sealed) const {
  auto v = crypto::AesGcmOpen(installation_key_, sealed, "coffer-installation-key-v1|" + label);
  if (!v.ok()) {
    return DataLossError("the installation's key '" + label +
                         "' does not open with this master key");
  }
  return v;
}

std::string Envelope::SealBackup(const std::string& plaintext) const {
  return kBackupMagic + crypto::AesGcmSeal(backup_key_, plaintext, kBackupMagic);
}

StatusOr<std::string> Envelope::OpenBackup(const std::string& sealed) const {
  if (!StartsWith(sealed, kBackupMagic)) {
    return InvalidArgumentError("not a Coffer backup blob", "BadParameter");
  }
  auto plain = crypto::AesGcmOpen(backup_key_, sealed.substr(4), kBackupMagic);
  if (!plain.ok()) {
    return InvalidArgumentError("backup blob is corrupt or was made by another installation",
                                "BadParameter");
  }
  return plain;
}

}  // namespace coffer::keyvault
