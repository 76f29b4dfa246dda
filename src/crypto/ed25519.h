#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "crypto/evp_pkey_ptr.h"

namespace coffer::crypto {

constexpr size_t kEd25519PublicKeySize = 32;
constexpr size_t kEd25519SignatureSize = 64;

// Ed25519Key is an Ed25519 key pair (or a public key alone) for signing
// records whose authenticity must outlive the process, such as audit log
// checkpoints. Immutable after creation; thread-safe.
class Ed25519Key {
 public:
  Ed25519Key(const Ed25519Key&) = delete;
  Ed25519Key& operator=(const Ed25519Key&) = delete;

  // Generate makes a new key pair. kInternal if OpenSSL fails.
  static StatusOr<std::unique_ptr<Ed25519Key>> Generate();
  // FromPrivatePem parses a PKCS#8 PEM private key. kInvalidArgument if it
  // is not PEM or not an Ed25519 key.
  static StatusOr<std::unique_ptr<Ed25519Key>> FromPrivatePem(std::string_view pem);
  // FromPublicPem parses a SubjectPublicKeyInfo PEM ("PUBLIC KEY").
  // kInvalidArgument if it is not PEM or not an Ed25519 key.
  static StatusOr<std::unique_ptr<Ed25519Key>> FromPublicPem(std::string_view pem);
  // FromPublicRaw builds a public key from its 32 raw bytes (RFC 8032).
  static StatusOr<std::unique_ptr<Ed25519Key>> FromPublicRaw(std::string_view raw);

  bool has_private() const { return has_private_; }
  // PKCS#8 PEM. REQUIRES: has_private(). The caller should SecureWipe it.
  std::string PrivatePem() const;
  // SubjectPublicKeyInfo PEM.
  std::string PublicPem() const;
  // The 32 raw public key bytes.
  std::string PublicRaw() const;

  // Sign returns the 64-byte signature over `data` (PureEdDSA, no
  // pre-hash). REQUIRES: has_private().
  std::string Sign(std::string_view data) const;
  // Verify reports whether `signature` is a valid signature over `data`.
  bool Verify(std::string_view data, std::string_view signature) const;

 private:
  Ed25519Key(EvpPkeyPtr pkey, bool has_private)
      : pkey_(std::move(pkey)), has_private_(has_private) {}
  const EvpPkeyPtr pkey_;
  const bool has_private_;
};

// LoadEd25519PrivateKey reads a PEM private key file. kNotFound if absent;
// kFailedPrecondition if the file is readable by group or others;
// kInvalidArgument if it does not hold an Ed25519 private key.
StatusOr<std::unique_ptr<Ed25519Key>> LoadEd25519PrivateKey(const std::string& path);
// LoadEd25519PublicKey reads a PEM public key file (or a private key file,
// whose public half is taken). kNotFound if absent; kInvalidArgument if it
// holds no Ed25519 key.
StatusOr<std::unique_ptr<Ed25519Key>> LoadEd25519PublicKey(const std::string& path);
// SaveEd25519PrivateKey writes the PKCS#8 PEM atomically with mode 0600.
// REQUIRES: key.has_private().
Status SaveEd25519PrivateKey(const Ed25519Key& key, const std::string& path);
// SaveEd25519PublicKey writes the SubjectPublicKeyInfo PEM atomically with
// mode 0644.
Status SaveEd25519PublicKey(const Ed25519Key& key, const std::string& path);

}  // namespace coffer::crypto
