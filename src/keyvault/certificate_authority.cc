#include "keyvault/certificate_authority.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/json.h"
#include "crypto/primitives.h"

namespace coffer::keyvault {
namespace {

// The metadata row: {"chain": [base64 DER, the CA first], "key": base64 of
// the sealed PKCS#8}.
constexpr char kSealLabel[] = "installation-ca";
constexpr int64_t kValiditySeconds = int64_t{20} * 365 * 86400;

// The metadata row of a CA.
std::string Record(const Envelope& envelope, const crypto::AsymKey& key,
                   const std::vector<std::string>& chain) {
  crypto::SecureBytes pkcs8 = key.ToPrivateDer();
  std::string plain(pkcs8.view());
  std::string sealed = envelope.SealInstallationKey(kSealLabel, plain);
  crypto::SecureWipe(plain);
  Json ders = Json::array();
  for (const auto& der : chain) {
    ders.push_back(Base64Encode(der));
  }
  return ToJson(Json{{"chain", std::move(ders)}, {"key", Base64Encode(sealed)}});
}

// A new CA: its key and certificate as the metadata row stores them.
StatusOr<std::string> MakeCa(const Envelope& envelope, int64_t now) {
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::AsymKey> key,
                   crypto::AsymKey::Generate("EC", 0, "P-384"));
  crypto::CertificateProfile profile;
  // A random part tells one installation's CA from another's in a trust
  // store.
  profile.subject = "CN=Coffer CA " + crypto::RandomHex(4) + ", O=Coffer";
  profile.not_before = now - 300;
  profile.not_after = now + kValiditySeconds;
  profile.is_ca = true;
  profile.key_usage = {"digitalSignature"};
  ASSIGN_OR_RETURN(std::string der,
                   crypto::IssueCertificate(profile, key->PublicKeyDer(), *key, ""));
  return Record(envelope, *key, {der});
}

}  // namespace

CertificateAuthority::CertificateAuthority(storage::Store& store, const Envelope& envelope,
                                           const Clock& clock)
    : store_(store), envelope_(envelope), clock_(clock) {}

StatusOr<std::shared_ptr<const CertificateAuthority::Loaded>> CertificateAuthority::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  if (loaded_) {
    return loaded_;
  }
  ASSIGN_OR_RETURN(std::optional<std::string> stored, store_.GetMeta(kMetaKey));
  if (!stored || stored->empty()) {
    // Made here and stored unless another server stored one first; then
    // that one is used and this one dropped.
    ASSIGN_OR_RETURN(std::string made, MakeCa(envelope_, clock_.NowSeconds()));
    ASSIGN_OR_RETURN(
        std::string kept,
        store_.UpdateMeta(kMetaKey,
                          [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                            if (current && !current->empty()) {
                              return *current;
                            }
                            return made;
                          }));
    stored = std::move(kept);
  }
  auto json = ParseJson(*stored, 4);
  if (!json || !json->is_object()) {
    return DataLossError("the installation's CA record does not parse");
  }
  auto loaded = std::make_shared<Loaded>();
  auto chain = json->find("chain");
  if (chain == json->end() || !chain->is_array() || chain->empty()) {
    return DataLossError("the installation's CA record is corrupt");
  }
  for (const auto& one : *chain) {
    auto der = one.is_string() ? Base64Decode(one.get<std::string>()) : std::nullopt;
    if (!der) {
      return DataLossError("the installation's CA record is corrupt");
    }
    loaded->chain.push_back(std::move(*der));
  }
  auto sealed = Base64Decode(json->value("key", std::string()));
  if (!sealed) {
    return DataLossError("the installation's CA record is corrupt");
  }
  ASSIGN_OR_RETURN(std::string pkcs8, envelope_.OpenInstallationKey(kSealLabel, *sealed));
  auto key = crypto::AsymKey::FromPrivateDer(pkcs8);
  crypto::SecureWipe(pkcs8);
  RETURN_IF_ERROR(key.status());
  loaded->key = std::move(key).value();
  loaded_ = std::move(loaded);
  return loaded_;
}

StatusOr<std::vector<std::string>> CertificateAuthority::Chain() {
  ASSIGN_OR_RETURN(std::shared_ptr<const Loaded> ca, Load());
  return ca->chain;
}

void CertificateAuthority::Forget() {
  std::lock_guard<std::mutex> lock(mu_);
  loaded_.reset();
}

Status CertificateAuthority::Import(std::string_view pem) {
  ASSIGN_OR_RETURN(crypto::KeyAndChain bundle, crypto::ReadPemBundle(pem));
  ASSIGN_OR_RETURN(crypto::CertificateDetails ca, crypto::ReadCertificateDer(bundle.chain_der[0]));
  if (!ca.is_ca) {
    return InvalidArgumentError(
        "The certificate that carries the key is not a CA (basicConstraints CA:TRUE).",
        "BadParameter");
  }
  if (!ca.key_usage.empty() &&
      std::find(ca.key_usage.begin(), ca.key_usage.end(), "keyCertSign") == ca.key_usage.end()) {
    return InvalidArgumentError("The CA certificate's key usage does not allow keyCertSign.",
                                "BadParameter");
  }
  const int64_t now = clock_.NowSeconds();
  if (ca.not_before > now || ca.not_after <= now) {
    return InvalidArgumentError("The CA certificate is not valid now.", "BadParameter");
  }
  std::string record = Record(envelope_, *bundle.key, bundle.chain_der);
  RETURN_IF_ERROR(store_.PutMeta(kMetaKey, record));
  Forget();
  return OkStatus();
}

StatusOr<std::vector<std::string>> CertificateAuthority::Issue(
    const crypto::CertificateProfile& profile, std::string_view public_key_der) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Loaded> ca, Load());
  ASSIGN_OR_RETURN(std::string leaf,
                   crypto::IssueCertificate(profile, public_key_der, *ca->key, ca->chain[0]));
  std::vector<std::string> chain{std::move(leaf)};
  chain.insert(chain.end(), ca->chain.begin(), ca->chain.end());
  return chain;
}

}  // namespace coffer::keyvault
