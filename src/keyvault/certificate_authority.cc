#include "keyvault/certificate_authority.h"

#include "common/encoding.h"
#include "common/json.h"
#include "crypto/primitives.h"

namespace coffer::keyvault {
namespace {

// The metadata row: {"cer": base64 DER, "key": base64 of the sealed PKCS#8}.
constexpr char kMetaKey[] = "installation_ca";
constexpr char kSealLabel[] = "installation-ca";
constexpr int64_t kValiditySeconds = int64_t{20} * 365 * 86400;

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
  crypto::SecureBytes pkcs8 = key->ToPrivateDer();
  std::string plain(pkcs8.view());
  std::string sealed = envelope.SealInstallationKey(kSealLabel, plain);
  crypto::SecureWipe(plain);
  return ToJson(Json{{"cer", Base64Encode(der)}, {"key", Base64Encode(sealed)}});
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
  auto der = Base64Decode(json->value("cer", std::string()));
  auto sealed = Base64Decode(json->value("key", std::string()));
  if (!der || !sealed) {
    return DataLossError("the installation's CA record is corrupt");
  }
  ASSIGN_OR_RETURN(std::string pkcs8, envelope_.OpenInstallationKey(kSealLabel, *sealed));
  auto key = crypto::AsymKey::FromPrivateDer(pkcs8);
  crypto::SecureWipe(pkcs8);
  RETURN_IF_ERROR(key.status());
  auto loaded = std::make_shared<Loaded>();
  loaded->der = std::move(*der);
  loaded->key = std::move(key).value();
  loaded_ = std::move(loaded);
  return loaded_;
}

StatusOr<std::string> CertificateAuthority::CertificateDer() {
  ASSIGN_OR_RETURN(std::shared_ptr<const Loaded> ca, Load());
  return ca->der;
}

StatusOr<std::vector<std::string>> CertificateAuthority::Issue(
    const crypto::CertificateProfile& profile, std::string_view public_key_der) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Loaded> ca, Load());
  ASSIGN_OR_RETURN(std::string leaf,
                   crypto::IssueCertificate(profile, public_key_der, *ca->key, ca->der));
  return std::vector<std::string>{std::move(leaf), ca->der};
}

}  // namespace coffer::keyvault
