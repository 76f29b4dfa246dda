#pragma once

// CryptographyClient: the operations on one key that use its private half,
// carried out by the vault (encrypt, decrypt, wrap, unwrap, sign, verify),
// named as the Azure SDKs name them. The key never leaves the vault; what
// travels is the data, the digest or the result. SignData and VerifyData
// hash here and send the digest, as the Azure SDKs do.
//
// Algorithms are Key Vault's names: "RSA-OAEP", "RSA-OAEP-256", "RSA1_5"
// (encrypt, wrap); "RS256" ... "PS512", "ES256", "ES384", "ES512", "ES256K"
// (sign). The vault checks the key's key_ops, enabled flag and nbf/exp:
// kPermissionDenied reason "Forbidden" when an operation is not permitted,
// kInvalidArgument reason "BadParameter" for input the key cannot take.
//
// Authentication, retries and errors are SecretClient's. Thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coffer/credentials.h"
#include "coffer/secret_client.h"
#include "coffer/status.h"

namespace coffer {

struct EncryptResult {
  std::string key_id;  // the version that did it
  std::string algorithm;
  std::vector<uint8_t> ciphertext;
};

struct DecryptResult {
  std::string key_id;
  std::string algorithm;
  std::vector<uint8_t> plaintext;
};

struct WrapResult {
  std::string key_id;
  std::string algorithm;
  std::vector<uint8_t> encrypted_key;
};

struct UnwrapResult {
  std::string key_id;
  std::string algorithm;
  std::vector<uint8_t> key;
};

struct SignResult {
  std::string key_id;
  std::string algorithm;
  std::vector<uint8_t> signature;
};

struct VerifyResult {
  std::string key_id;
  std::string algorithm;
  bool is_valid = false;
};

class CryptographyClient {
 public:
  // `key_id` is a key's id, https://<vault>/keys/<name>[/<version>] (no
  // version: the latest at each call). kInvalidArgument from every call when
  // it is not one.
  CryptographyClient(std::string key_id, std::shared_ptr<TokenCredential> credential,
                     SecretClientOptions options = {});

  const std::string& key_id() const { return key_id_; }

  StatusOr<EncryptResult> Encrypt(const std::string& algorithm,
                                  const std::vector<uint8_t>& plaintext);
  StatusOr<DecryptResult> Decrypt(const std::string& algorithm,
                                  const std::vector<uint8_t>& ciphertext);
  StatusOr<WrapResult> WrapKey(const std::string& algorithm, const std::vector<uint8_t>& key);
  StatusOr<UnwrapResult> UnwrapKey(const std::string& algorithm,
                                   const std::vector<uint8_t>& encrypted_key);
  // Sign and Verify take the digest of the data (32, 48 or 64 bytes, as the
  // algorithm's hash).
  StatusOr<SignResult> Sign(const std::string& algorithm, const std::vector<uint8_t>& digest);
  StatusOr<VerifyResult> Verify(const std::string& algorithm, const std::vector<uint8_t>& digest,
                                const std::vector<uint8_t>& signature);
  // SignData and VerifyData hash `data` with the algorithm's hash (SHA-256,
  // SHA-384 or SHA-512) and sign or verify the digest.
  StatusOr<SignResult> SignData(const std::string& algorithm, const std::vector<uint8_t>& data);
  StatusOr<VerifyResult> VerifyData(const std::string& algorithm, const std::vector<uint8_t>& data,
                                    const std::vector<uint8_t>& signature);

 private:
  // POSTs {"alg", "value"[, "digest"]} to <key>/<operation>; returns the
  // answer's kid and decoded value (verify: value is empty, `valid` set).
  struct Answer {
    std::string kid;
    std::vector<uint8_t> value;
    bool valid = false;
  };
  StatusOr<Answer> Operate(const std::string& operation, const std::string& algorithm,
                           const std::vector<uint8_t>& value,
                           const std::vector<uint8_t>* digest = nullptr);

  std::string key_id_;
  std::string path_;  // /keys/<name>/[<version>]; "" when key_id_ is not a key id
  std::shared_ptr<VaultChannel> channel_;
};

}  // namespace coffer
