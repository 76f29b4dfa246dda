#include "coffer/cryptography_client.h"

#include "common/encoding.h"
#include "common/json.h"
#include "crypto/asym_key.h"
#include "crypto/primitives.h"
#include "sdk/pipeline.h"
#include "sdk/wire.h"

namespace coffer {
namespace {

// Splits https://host[:port]/keys/name[/version] into the vault's URL and
// the key's path; false for anything else (another collection, a query, a
// name or version that could change the path).
bool SplitKeyUrl(const std::string& key_id, std::string* vault_url, std::string* path) {
  std::string name, version;
  bool deleted = false;
  if (!SplitObjectId(key_id, "keys", vault_url, &name, &version, &deleted) || deleted ||
      !CheckName(name).ok() || (!version.empty() && !CheckName(version).ok())) {
    return false;
  }
  // An empty version is the latest: /keys/<name>//sign, as the Azure SDKs
  // send it.
  *path = "/keys/" + name + "/" + version;
  return true;
}

std::string Bytes(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

std::vector<uint8_t> Vector(std::string_view bytes) {
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

}  // namespace

CryptographyClient::CryptographyClient(std::string key_id,
                                       std::shared_ptr<TokenCredential> credential,
                                       SecretClientOptions options)
    : key_id_(std::move(key_id)) {
  std::string vault_url;
  if (!SplitKeyUrl(key_id_, &vault_url, &path_)) {
    path_.clear();
  }
  channel_ = std::make_shared<VaultChannel>(std::move(vault_url), std::move(credential),
                                            std::move(options), "/keys");
}

StatusOr<CryptographyClient::Answer> CryptographyClient::Operate(
    const std::string& operation, const std::string& algorithm, const std::vector<uint8_t>& value,
    const std::vector<uint8_t>* digest) {
  if (path_.empty()) {
    return InvalidArgumentError("'" + key_id_.substr(0, 200) +
                                "' is not a key id (https://<vault>/keys/<name>[/<version>])");
  }
  Json body = {{"alg", algorithm}, {"value", Base64UrlEncode(Bytes(value))}};
  if (digest != nullptr) {
    body["digest"] = Base64UrlEncode(Bytes(*digest));
  }
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("POST", path_ + "/" + operation, ToJson(body)));
  Answer out;
  out.kid = StringMember(json, "kid");
  if (operation == "verify") {
    if (!json.contains("value") || !json["value"].is_boolean()) {
      return InternalError("the vault's verify answer has no boolean value");
    }
    out.valid = json["value"].get<bool>();
    return out;
  }
  std::optional<std::string> bytes = Base64UrlDecode(StringMember(json, "value"));
  if (!bytes) {
    return InternalError("the vault's " + operation + " answer is not base64url");
  }
  out.value = Vector(*bytes);
  crypto::SecureWipe(*bytes);
  return out;
}

StatusOr<EncryptResult> CryptographyClient::Encrypt(const std::string& algorithm,
                                                    const std::vector<uint8_t>& plaintext) {
  ASSIGN_OR_RETURN(Answer a, Operate("encrypt", algorithm, plaintext));
  return EncryptResult{a.kid, algorithm, std::move(a.value)};
}

StatusOr<DecryptResult> CryptographyClient::Decrypt(const std::string& algorithm,
                                                    const std::vector<uint8_t>& ciphertext) {
  ASSIGN_OR_RETURN(Answer a, Operate("decrypt", algorithm, ciphertext));
  return DecryptResult{a.kid, algorithm, std::move(a.value)};
}

StatusOr<WrapResult> CryptographyClient::WrapKey(const std::string& algorithm,
                                                 const std::vector<uint8_t>& key) {
  ASSIGN_OR_RETURN(Answer a, Operate("wrapkey", algorithm, key));
  return WrapResult{a.kid, algorithm, std::move(a.value)};
}

StatusOr<UnwrapResult> CryptographyClient::UnwrapKey(const std::string& algorithm,
                                                     const std::vector<uint8_t>& encrypted_key) {
  ASSIGN_OR_RETURN(Answer a, Operate("unwrapkey", algorithm, encrypted_key));
  return UnwrapResult{a.kid, algorithm, std::move(a.value)};
}

StatusOr<SignResult> CryptographyClient::Sign(const std::string& algorithm,
                                              const std::vector<uint8_t>& digest) {
  ASSIGN_OR_RETURN(Answer a, Operate("sign", algorithm, digest));
  return SignResult{a.kid, algorithm, std::move(a.value)};
}

StatusOr<VerifyResult> CryptographyClient::Verify(const std::string& algorithm,
                                                  const std::vector<uint8_t>& digest,
                                                  const std::vector<uint8_t>& signature) {
  ASSIGN_OR_RETURN(Answer a, Operate("verify", algorithm, signature, &digest));
  return VerifyResult{a.kid, algorithm, a.valid};
}

StatusOr<SignResult> CryptographyClient::SignData(const std::string& algorithm,
                                                  const std::vector<uint8_t>& data) {
  ASSIGN_OR_RETURN(std::string digest, crypto::HashForSigning(algorithm, Bytes(data)));
  return Sign(algorithm, Vector(digest));
}

StatusOr<VerifyResult> CryptographyClient::VerifyData(const std::string& algorithm,
                                                      const std::vector<uint8_t>& data,
                                                      const std::vector<uint8_t>& signature) {
  ASSIGN_OR_RETURN(std::string digest, crypto::HashForSigning(algorithm, Bytes(data)));
  return Verify(algorithm, Vector(digest), signature);
}

}  // namespace coffer
