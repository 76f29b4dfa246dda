#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace coffer::keyvault {

// Envelope implements Coffer's envelope encryption (docs/encryption.md):
// every value is sealed with AES-256-GCM under its vault's data key, and each
// data key is sealed under the installation's master key. Associated data
// binds a sealed value to its vault, object name and version, and a data key
// to its vault, so ciphertext moved to another row does not open.
//
// Immutable after creation; thread-safe.
class Envelope {
 public:
  // Create takes the 32-byte master key. kInvalidArgument for another size.
  static StatusOr<std::unique_ptr<Envelope>> Create(std::string master_key);
  // LoadMasterKey resolves the master key: the environment variable
  // COFFER_MASTER_KEY (base64 of 32 bytes) if set, else the file `path`,
  // which is created with mode 0600 if absent. kFailedPrecondition if the
  // file is readable by group or others; kInvalidArgument if malformed.
  static StatusOr<std::string> LoadMasterKey(const std::string& path);

  ~Envelope();

  // NewWrappedDataKey makes a fresh data key for `vault`, sealed.
  std::string NewWrappedDataKey(const std::string& vault) const;
  // UnwrapDataKey opens a sealed data key. kDataLoss if it does not
  // authenticate (wrong master key or vault).
  StatusOr<std::string> UnwrapDataKey(const std::string& vault, const std::string& wrapped) const;

  static std::string SealValue(const std::string& data_key, const std::string& vault,
                               const std::string& name, const std::string& version,
                               const std::string& plaintext);
  // kDataLoss if the sealed value does not authenticate for this place.
  static StatusOr<std::string> OpenValue(const std::string& data_key, const std::string& vault,
                                         const std::string& name, const std::string& version,
                                         const std::string& sealed);

  // SealKeyMaterial / OpenKeyMaterial do the same for a key's private key,
  // under associated data of their own (a key and a secret may share a name
  // and a version id). The caller wipes the plaintext after use.
  static std::string SealKeyMaterial(const std::string& data_key, const std::string& vault,
                                     const std::string& name, const std::string& version,
                                     const std::string& plaintext);
  static StatusOr<std::string> OpenKeyMaterial(const std::string& data_key,
                                               const std::string& vault, const std::string& name,
                                               const std::string& version,
                                               const std::string& sealed);

  // SealInstallationKey / OpenInstallationKey seal a private key the
  // installation itself holds (its certificate authority's), under a key
  // derived from the master key, bound to `label`. kDataLoss if it does not
  // open.
  std::string SealInstallationKey(const std::string& label, const std::string& plaintext) const;
  StatusOr<std::string> OpenInstallationKey(const std::string& label,
                                            const std::string& sealed) const;

  // SealBackup / OpenBackup protect backup blobs with a key derived from the
  // master key, so a blob restores only into this installation.
  std::string SealBackup(const std::string& plaintext) const;
  StatusOr<std::string> OpenBackup(const std::string& sealed) const;

 private:
  explicit Envelope(std::string master_key);
  std::string master_key_;
  std::string backup_key_;
  std::string installation_key_;
};

}  // namespace coffer::keyvault
