#include "coffer/certificate_client.h"

#include "common/encoding.h"
#include "common/json.h"
#include "sdk/pipeline.h"
#include "sdk/wire.h"

namespace coffer {
namespace {

// A CertificateItem (a list's) or the properties of a CertificateBundle.
CertificateProperties ParseCertificateItem(const Json& item) {
  CertificateProperties p;
  p.id = StringMember(item, "id");
  SplitObjectId(p.id, "certificates", &p.vault_url, &p.name, &p.version);
  p.x509_thumbprint = Base64UrlDecode(StringMember(item, "x5t")).value_or("");
  ReadAttributesAndTags(item, &p);
  return p;
}

StatusOr<KeyVaultCertificate> ParseCertificate(const Json& body) {
  if (!body.is_object() || !body.contains("id") || !body["id"].is_string()) {
    return InvalidArgumentError("not a Key Vault certificate bundle");
  }
  std::optional<std::string> cer = Base64Decode(StringMember(body, "cer"));
  if (!cer.has_value()) {
    return InvalidArgumentError("the certificate bundle's cer is not base64");
  }
  KeyVaultCertificate out;
  out.properties = ParseCertificateItem(body);
  out.key_id = StringMember(body, "kid");
  out.secret_id = StringMember(body, "sid");
  out.cer = *std::move(cer);
  return out;
}

std::string CertificatePath(const std::string& name) {
  return "/certificates/" + PercentEncode(name);
}

}  // namespace

StatusOr<KeyVaultCertificate> ParseCertificateBundle(const std::string& json) {
  auto body = ParseJson(json);
  if (!body) {
    return InvalidArgumentError("not a Key Vault certificate bundle");
  }
  return ParseCertificate(*body);
}

CertificateClient::CertificateClient(std::string vault_url,
                                     std::shared_ptr<TokenCredential> credential,
                                     SecretClientOptions options)
    : channel_(std::make_shared<VaultChannel>(std::move(vault_url), std::move(credential),
                                              std::move(options), "/certificates")) {}

const std::string& CertificateClient::vault_url() const {
  return channel_->vault_url();
}

StatusOr<KeyVaultCertificate> CertificateClient::GetCertificate(const std::string& name,
                                                                const std::string& version) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json,
                   channel_->CallJson("GET", CertificatePath(name) + "/" + PercentEncode(version)));
  return ParseCertificate(json);
}

StatusOr<std::vector<CertificateProperties>> CertificateClient::ListPropertiesOfCertificates() {
  std::vector<CertificateProperties> out;
  RETURN_IF_ERROR(channel_->ListPages("/certificates", "&maxresults=25", [&](const Json& item) {
    out.push_back(ParseCertificateItem(item));
  }));
  return out;
}

StatusOr<std::vector<CertificateProperties>> CertificateClient::ListPropertiesOfCertificateVersions(
    const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  std::vector<CertificateProperties> out;
  RETURN_IF_ERROR(
      channel_->ListPages(CertificatePath(name) + "/versions", "&maxresults=25",
                          [&](const Json& item) { out.push_back(ParseCertificateItem(item)); }));
  return out;
}

}  // namespace coffer
