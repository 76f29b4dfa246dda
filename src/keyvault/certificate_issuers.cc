#include "keyvault/certificate_issuers.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "keyvault/api_util.h"
#include "keyvault/envelope.h"
#include "keyvault/names.h"

namespace coffer::keyvault {
namespace {

constexpr char kContactsDocument[] = "certificate-contacts";
constexpr char kIssuersDocument[] = "certificate-issuers";
constexpr size_t kMaxContacts = 64;
constexpr size_t kMaxIssuers = 64;
constexpr size_t kMaxAdmins = 16;
constexpr size_t kMaxField = 256;
constexpr size_t kMaxPassword = 1024;
constexpr size_t kMaxSuffixes = 64;
constexpr char kCoffer[] = "Coffer";

// An optional string member of `obj` of at most `max` bytes.
StatusOr<std::optional<std::string>> OptString(const Json& obj, const char* member,
                                               const std::string& where, size_t max = kMaxField) {
  auto it = obj.find(member);
  if (it == obj.end() || it->is_null()) {
    return std::optional<std::string>();
  }
  if (!it->is_string() || it->get_ref<const std::string&>().size() > max) {
    return BadParameter("Property '" + where + member + "' must be a string of at most " +
                        std::to_string(max) + " characters.");
  }
  return std::optional<std::string>(it->get<std::string>());
}

Status NoIssuer(const std::string& name) {
  return NotFoundError("Issuer not found: " + name, "IssuerNotFound");
}

// ---------------------------------------------------------------- contacts

StatusOr<std::vector<CertificateContact>> ParseContacts(const Json& body) {
  if (!body.is_object()) {
    return BadParameter("The request body must be an object with 'contacts'.");
  }
  auto list = body.find("contacts");
  if (list == body.end() || !list->is_array()) {
    return BadParameter("Property 'contacts' must be an array.");
  }
  if (list->empty() || list->size() > kMaxContacts) {
    return BadParameter("Property 'contacts' must hold 1 to 64 contacts.");
  }
  std::vector<CertificateContact> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& c = (*list)[i];
    std::string where = "contacts[" + std::to_string(i) + "].";
    if (!c.is_object()) {
      return BadParameter("Property '" + where.substr(0, where.size() - 1) +
                          "' must be an object.");
    }
    CertificateContact contact;
    ASSIGN_OR_RETURN(auto email, OptString(c, "email", where));
    ASSIGN_OR_RETURN(auto name, OptString(c, "name", where));
    ASSIGN_OR_RETURN(auto phone, OptString(c, "phone", where));
    contact.email = email.value_or("");
    contact.name = name.value_or("");
    contact.phone = phone.value_or("");
    if (contact.email.empty() && contact.name.empty() && contact.phone.empty()) {
      return BadParameter("Contact '" + where.substr(0, where.size() - 1) +
                          "' needs an email, a name or a phone number.");
    }
    if (!contact.email.empty() && contact.email.find('@') == std::string::npos) {
      return BadParameter("Property '" + where + "email' must be an email address.");
    }
    out.push_back(std::move(contact));
  }
  return out;
}

Json ContactsJson(const std::vector<CertificateContact>& contacts) {
  Json list = Json::array();
  for (const auto& c : contacts) {
    Json one = Json::object();
    if (!c.email.empty())
      one["email"] = c.email;
    if (!c.name.empty())
      one["name"] = c.name;
    if (!c.phone.empty())
      one["phone"] = c.phone;
    list.push_back(std::move(one));
  }
  return list;
}

StatusOr<std::vector<CertificateContact>> LoadContacts(const std::optional<std::string>& doc) {
  if (!doc || doc->empty()) {
    return std::vector<CertificateContact>();
  }
  auto json = ParseJson(*doc, 6);
  if (!json || !json->is_object()) {
    return DataLossError("a vault's certificate contacts do not parse");
  }
  auto parsed = ParseContacts(*json);
  if (!parsed.ok()) {
    return DataLossError("a vault's certificate contacts are corrupt");
  }
  return parsed;
}

// ---------------------------------------------------------------- issuers

// The stored form of one issuer: the wire members, the sealed password and
// the times.
struct StoredIssuer {
  CertificateIssuer issuer;
  std::string sealed_password;  // base64, "" for none
};

Json StoredJson(const StoredIssuer& s) {
  const CertificateIssuer& i = s.issuer;
  Json out = {{"name", i.name},
              {"provider", i.provider},
              {"account_id", i.account_id},
              {"pwd", s.sealed_password},
              {"org_details", i.org_details},
              {"enabled", i.enabled},
              {"created", i.created},
              {"updated", i.updated},
              {"allowed_dns_suffixes", i.allowed_dns_suffixes},
              {"max_validity_months", i.max_validity_months}};
  return out;
}

StatusOr<StoredIssuer> LoadStored(const Json& j) {
  if (!j.is_object()) {
    return DataLossError("a stored certificate issuer is corrupt");
  }
  StoredIssuer s;
  CertificateIssuer& i = s.issuer;
  try {
    i.name = j.at("name").get<std::string>();
    i.provider = j.at("provider").get<std::string>();
    i.account_id = j.value("account_id", std::string());
    s.sealed_password = j.value("pwd", std::string());
    i.has_password = !s.sealed_password.empty();
    i.org_details = j.value("org_details", Json::object());
    i.enabled = j.value("enabled", true);
    i.created = j.value("created", int64_t{0});
    i.updated = j.value("updated", int64_t{0});
    i.allowed_dns_suffixes = j.value("allowed_dns_suffixes", std::vector<std::string>());
    i.max_validity_months = j.value("max_validity_months", 0);
  } catch (const std::exception&) {
    return DataLossError("a stored certificate issuer is corrupt");
  }
  return s;
}

// The vault's issuers by lower-case name.
StatusOr<Json> LoadIssuers(const std::optional<std::string>& doc) {
  if (!doc || doc->empty()) {
    return Json::object();
  }
  auto json = ParseJson(*doc, 8);
  if (!json || !json->is_object() || !json->contains("issuers") ||
      !(*json)["issuers"].is_object()) {
    return DataLossError("a vault's certificate issuers do not parse");
  }
  return (*json)["issuers"];
}

StatusOr<Json> ParseOrgDetails(const Json& j) {
  if (!j.is_object()) {
    return BadParameter("Property 'org_details' must be an object.");
  }
  Json out = Json::object();
  ASSIGN_OR_RETURN(auto id, OptString(j, "id", "org_details."));
  if (id) {
    out["id"] = *id;
  }
  if (auto it = j.find("admin_details"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxAdmins) {
      return BadParameter("Property 'org_details.admin_details' must be an array of at most 16.");
    }
    Json admins = Json::array();
    for (size_t k = 0; k < it->size(); ++k) {
      const Json& a = (*it)[k];
      std::string where = "org_details.admin_details[" + std::to_string(k) + "].";
      if (!a.is_object()) {
        return BadParameter("Property '" + where.substr(0, where.size() - 1) +
                            "' must be an object.");
      }
      Json admin = Json::object();
      for (const char* member : {"first_name", "last_name", "email", "phone"}) {
        ASSIGN_OR_RETURN(auto v, OptString(a, member, where));
        if (v) {
          admin[member] = *v;
        }
      }
      admins.push_back(std::move(admin));
    }
    out["admin_details"] = std::move(admins);
  }
  return out;
}

// Applies the members `body` has to `s` (the whole issuer for a PUT).
Status ApplyIssuer(const Json& body, bool replace, const OpenVault& vault, StoredIssuer& s) {
  if (!body.is_object()) {
    return BadParameter("The request body must be an issuer object.");
  }
  CertificateIssuer& i = s.issuer;
  ASSIGN_OR_RETURN(auto provider, OptString(body, "provider", "", 64));
  if (provider) {
    if (provider->empty()) {
      return BadParameter("Property 'provider' must not be empty.");
    }
    i.provider = *provider;
  } else if (replace) {
    return BadParameter("Property 'provider' is required.");
  }
  if (auto it = body.find("credentials"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return TypeError("credentials", "an object");
    }
    ASSIGN_OR_RETURN(auto account, OptString(*it, "account_id", "credentials."));
    ASSIGN_OR_RETURN(auto pwd, OptString(*it, "pwd", "credentials.", kMaxPassword));
    if (account) {
      i.account_id = *account;
    }
    if (pwd) {
      // SECURITY: the password is sealed at once and the copy wiped.
      s.sealed_password = pwd->empty() ? ""
                                       : Base64Encode(Envelope::SealValue(
                                             vault.data_key, vault.record.name,
                                             "issuer-" + AsciiLower(i.name), "credentials", *pwd));
      crypto::SecureWipe(*pwd);
      i.has_password = !s.sealed_password.empty();
    }
  } else if (replace) {
    i.account_id.clear();
    s.sealed_password.clear();
    i.has_password = false;
  }
  if (auto it = body.find("org_details"); it != body.end() && !it->is_null()) {
    ASSIGN_OR_RETURN(i.org_details, ParseOrgDetails(*it));
  } else if (replace) {
    i.org_details = Json::object();
  }
  ASSIGN_OR_RETURN(std::optional<bool> enabled, ReadEnabled(body));
  if (enabled) {
    i.enabled = *enabled;
  } else if (replace) {
    i.enabled = true;
  }
  // Coffer's rules, a member of its own that Key Vault's clients never send.
  if (auto it = body.find("coffer"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return TypeError("coffer", "an object");
    }
    if (auto sfx = it->find("allowed_dns_suffixes"); sfx != it->end() && !sfx->is_null()) {
      if (!sfx->is_array() || sfx->size() > kMaxSuffixes) {
        return BadParameter(
            "Property 'coffer.allowed_dns_suffixes' must be an array of at most 64 DNS names.");
      }
      std::vector<std::string> suffixes;
      for (const Json& one : *sfx) {
        if (!one.is_string()) {
          return TypeError("coffer.allowed_dns_suffixes", "an array of strings");
        }
        std::string suffix = AsciiLower(one.get<std::string>());
        if (!suffix.empty() && suffix[0] == '.') {
          suffix.erase(0, 1);
        }
        crypto::CertificateProfile probe;
        probe.sans.dns_names = {suffix};
        probe.not_before = 0;
        probe.not_after = 1;
        if (suffix.empty() || suffix.find('*') != std::string::npos ||
            !crypto::CheckProfile(probe).ok()) {
          return BadParameter("Property 'coffer.allowed_dns_suffixes' holds '" +
                              one.get<std::string>() + "', which is not a DNS name.");
        }
        suffixes.push_back(std::move(suffix));
      }
      i.allowed_dns_suffixes = std::move(suffixes);
    }
    if (auto max = it->find("max_validity_months"); max != it->end() && !max->is_null()) {
      if (!max->is_number_integer() || max->get<int64_t>() < 0 || max->get<int64_t>() > 1200) {
        return BadParameter("Property 'coffer.max_validity_months' must be 0 to 1200.");
      }
      i.max_validity_months = max->get<int>();
    }
  } else if (replace) {
    i.allowed_dns_suffixes.clear();
    i.max_validity_months = 0;
  }
  if (i.provider != kCoffer && (!i.allowed_dns_suffixes.empty() || i.max_validity_months != 0)) {
    return BadParameter("Property 'coffer' applies only to issuers of the Coffer provider.");
  }
  return OkStatus();
}

Status ValidateIssuerName(const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (EqualsIgnoreCase(name, "Self") || EqualsIgnoreCase(name, "Unknown")) {
    return BadParameter("Issuer name '" + name + "' is reserved.");
  }
  return OkStatus();
}

bool DnsNameAllowed(const std::string& dns, const std::vector<std::string>& suffixes) {
  std::string name = AsciiLower(dns);
  if (StartsWith(name, "*.")) {
    name.erase(0, 2);
  }
  for (const auto& suffix : suffixes) {
    if (name == suffix || (name.size() > suffix.size() &&
                           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
                           name[name.size() - suffix.size() - 1] == '.')) {
      return true;
    }
  }
  return false;
}

}  // namespace

CertificateIssuers::CertificateIssuers(storage::Store& store, const Clock& clock,
                                       CertificateAuthority& ca)
    : store_(store), clock_(clock), ca_(ca) {}

StatusOr<std::vector<CertificateContact>> CertificateIssuers::SetContacts(const Vault& vault,
                                                                          const Json& body) {
  ASSIGN_OR_RETURN(std::vector<CertificateContact> contacts, ParseContacts(body));
  std::string doc = ToJson(Json{{"contacts", ContactsJson(contacts)}});
  RETURN_IF_ERROR(store_
                      .UpdateMeta(VaultDocumentKey(vault->record, kContactsDocument),
                                  [&](const std::optional<std::string>&) -> StatusOr<std::string> {
                                    return doc;
                                  })
                      .status());
  return contacts;
}

StatusOr<std::vector<CertificateContact>> CertificateIssuers::GetContacts(const Vault& vault) {
  ASSIGN_OR_RETURN(auto doc, store_.GetMeta(VaultDocumentKey(vault->record, kContactsDocument)));
  ASSIGN_OR_RETURN(std::vector<CertificateContact> contacts, LoadContacts(doc));
  if (contacts.empty()) {
    return NotFoundError("Contacts not found", "ContactsNotFound");
  }
  return contacts;
}

StatusOr<std::vector<CertificateContact>> CertificateIssuers::DeleteContacts(const Vault& vault) {
  std::vector<CertificateContact> removed;
  RETURN_IF_ERROR(
      store_
          .UpdateMeta(VaultDocumentKey(vault->record, kContactsDocument),
                      [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                        ASSIGN_OR_RETURN(removed, LoadContacts(current));
                        if (removed.empty()) {
                          return NotFoundError("Contacts not found", "ContactsNotFound");
                        }
                        return std::string();
                      })
          .status());
  return removed;
}

StatusOr<CertificateIssuer> CertificateIssuers::SetIssuer(const Vault& vault,
                                                          const std::string& name, const Json& body,
                                                          bool replace, bool by_administrator) {
  RETURN_IF_ERROR(ValidateIssuerName(name));
  const int64_t now = clock_.NowSeconds();
  const std::string key = AsciiLower(name);
  CertificateIssuer result;
  auto written =
      store_.UpdateMeta(VaultDocumentKey(vault->record, kIssuersDocument),
                        [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                          ASSIGN_OR_RETURN(Json issuers, LoadIssuers(current));
                          StoredIssuer s;
                          bool was_coffer = false;
                          if (auto it = issuers.find(key); it != issuers.end()) {
                            ASSIGN_OR_RETURN(s, LoadStored(*it));
                            was_coffer = s.issuer.provider == kCoffer;
                          } else if (!replace) {
                            return NoIssuer(name);
                          } else if (issuers.size() >= kMaxIssuers) {
                            return BadParameter("A vault may have at most 64 certificate issuers.");
                          } else {
                            s.issuer.name = name;
                            s.issuer.created = now;
                          }
                          RETURN_IF_ERROR(ApplyIssuer(body, replace, *vault, s));
                          if ((was_coffer || s.issuer.provider == kCoffer) && !by_administrator) {
                            return PermissionDeniedError(
                                "Only an administrator of the installation may create or change "
                                "an issuer of the Coffer provider: it signs with the "
                                "installation's CA.",
                                "Forbidden");
                          }
                          s.issuer.updated = now;
                          issuers[key] = StoredJson(s);
                          result = s.issuer;
                          return ToJson(Json{{"issuers", issuers}});
                        });
  RETURN_IF_ERROR(written.status());
  return result;
}

StatusOr<CertificateIssuer> CertificateIssuers::GetIssuer(const Vault& vault,
                                                          const std::string& name) {
  RETURN_IF_ERROR(ValidateIssuerName(name));
  ASSIGN_OR_RETURN(auto doc, store_.GetMeta(VaultDocumentKey(vault->record, kIssuersDocument)));
  ASSIGN_OR_RETURN(Json issuers, LoadIssuers(doc));
  auto it = issuers.find(AsciiLower(name));
  if (it == issuers.end()) {
    return NoIssuer(name);
  }
  ASSIGN_OR_RETURN(StoredIssuer s, LoadStored(*it));
  return s.issuer;
}

StatusOr<std::vector<CertificateIssuer>> CertificateIssuers::ListIssuers(const Vault& vault) {
  ASSIGN_OR_RETURN(auto doc, store_.GetMeta(VaultDocumentKey(vault->record, kIssuersDocument)));
  ASSIGN_OR_RETURN(Json issuers, LoadIssuers(doc));
  std::vector<CertificateIssuer> out;
  for (const auto& [key, stored] : issuers.items()) {
    ASSIGN_OR_RETURN(StoredIssuer s, LoadStored(stored));
    out.push_back(std::move(s.issuer));
  }
  return out;  // nlohmann's objects iterate in key order
}

StatusOr<CertificateIssuer> CertificateIssuers::DeleteIssuer(const Vault& vault,
                                                             const std::string& name) {
  RETURN_IF_ERROR(ValidateIssuerName(name));
  CertificateIssuer removed;
  auto written =
      store_.UpdateMeta(VaultDocumentKey(vault->record, kIssuersDocument),
                        [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                          ASSIGN_OR_RETURN(Json issuers, LoadIssuers(current));
                          auto it = issuers.find(AsciiLower(name));
                          if (it == issuers.end()) {
                            return NoIssuer(name);
                          }
                          ASSIGN_OR_RETURN(StoredIssuer s, LoadStored(*it));
                          removed = s.issuer;
                          issuers.erase(it);
                          return ToJson(Json{{"issuers", issuers}});
                        });
  RETURN_IF_ERROR(written.status());
  return removed;
}

StatusOr<std::vector<std::string>> CertificateIssuers::Issue(
    const Vault& vault, const std::string& name, int validity_months,
    const crypto::CertificateProfile& profile, std::string_view public_key_der) {
  auto issuer = GetIssuer(vault, name);
  if (issuer.status().code() == StatusCode::kNotFound) {
    return BadParameter("Issuer '" + name + "' is not configured in this vault.");
  }
  RETURN_IF_ERROR(issuer.status());
  if (!issuer->enabled) {
    return BadParameter("Issuer '" + name + "' is disabled.");
  }
  if (issuer->provider != kCoffer) {
    return BadParameter("Issuer '" + name + "' has provider '" + issuer->provider +
                        "', which Coffer cannot reach; use an issuer of the Coffer provider, "
                        "Self or Unknown.");
  }
  if (issuer->max_validity_months != 0 && validity_months > issuer->max_validity_months) {
    return BadParameter("Issuer '" + name + "' signs for at most " +
                        std::to_string(issuer->max_validity_months) +
                        " months; the policy asks for " + std::to_string(validity_months) + ".");
  }
  if (!issuer->allowed_dns_suffixes.empty()) {
    for (const auto& dns : profile.sans.dns_names) {
      if (!DnsNameAllowed(dns, issuer->allowed_dns_suffixes)) {
        std::string allowed;
        for (const auto& suffix : issuer->allowed_dns_suffixes) {
          allowed += (allowed.empty() ? "" : ", ") + suffix;
        }
        return BadParameter("Issuer '" + name + "' does not sign the DNS name '" + dns +
                            "'; it allows names under " + allowed + ".");
      }
    }
  }
  return ca_.Issue(profile, public_key_der);
}

}  // namespace coffer::keyvault
