#include "keyvault/certificate_policy.h"

#include <algorithm>

#include "common/strings.h"
#include "keyvault/api_util.h"

namespace coffer::keyvault {
namespace {

constexpr size_t kMaxLifetimeActions = 10;
constexpr size_t kMaxIssuerName = 127;

constexpr const char* kPkcs12 = "application/x-pkcs12";
constexpr const char* kPem = "application/x-pem-file";

// The member `name` of `parent` when present and not null.
const Json* Member(const Json& parent, const char* name) {
  auto it = parent.find(name);
  if (it == parent.end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

StatusOr<const Json*> Object(const Json& parent, const char* name, const std::string& path) {
  const Json* m = Member(parent, name);
  if (m != nullptr && !m->is_object()) {
    return TypeError(path, "an object");
  }
  return m;
}

Status ReadString(const Json& parent, const char* name, const std::string& path, std::string& out) {
  if (const Json* m = Member(parent, name)) {
    if (!m->is_string()) {
      return TypeError(path, "a string");
    }
    out = m->get<std::string>();
  }
  return OkStatus();
}

Status ReadBool(const Json& parent, const char* name, const std::string& path, bool& out) {
  if (const Json* m = Member(parent, name)) {
    if (!m->is_boolean()) {
      return TypeError(path, "a boolean");
    }
    out = m->get<bool>();
  }
  return OkStatus();
}

Status ReadInt(const Json& parent, const char* name, const std::string& path,
               std::optional<int>& out) {
  if (const Json* m = Member(parent, name)) {
    if (!m->is_number_integer() || m->get<int64_t>() < 0 || m->get<int64_t>() > 1000000) {
      return TypeError(path, "a non-negative integer");
    }
    out = static_cast<int>(m->get<int64_t>());
  }
  return OkStatus();
}

Status ReadStrings(const Json& parent, const char* name, const std::string& path,
                   std::vector<std::string>& out) {
  if (const Json* m = Member(parent, name)) {
    if (!m->is_array()) {
      return TypeError(path, "an array of strings");
    }
    std::vector<std::string> values;
    for (const auto& v : *m) {
      if (!v.is_string()) {
        return TypeError(path, "an array of strings");
      }
      values.push_back(v.get<std::string>());
    }
    out = std::move(values);
  }
  return OkStatus();
}

// Key Vault's key usage names, in its spelling.
constexpr std::string_view kKeyUsages[] = {"digitalSignature", "nonRepudiation", "keyEncipherment",
                                           "dataEncipherment", "keyAgreement",   "keyCertSign",
                                           "cRLSign",          "encipherOnly",   "decipherOnly"};

Status CanonicalKeyUsage(std::vector<std::string>& usages) {
  std::vector<std::string> out;
  for (const auto& u : usages) {
    auto it = std::find_if(std::begin(kKeyUsages), std::end(kKeyUsages),
                           [&](std::string_view k) { return EqualsIgnoreCase(k, u); });
    if (it == std::end(kKeyUsages)) {
      return BadParameter(
          "Property 'x509_props.key_usage' has an unknown key usage; allowed are "
          "digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, "
          "keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly.");
    }
    if (std::find(out.begin(), out.end(), *it) == out.end()) {
      out.emplace_back(*it);
    }
  }
  usages = std::move(out);
  return OkStatus();
}

Status ReadKeyProps(const Json& json, CertificatePolicy& p) {
  ASSIGN_OR_RETURN(const Json* k, Object(json, "key_props", "key_props"));
  if (k == nullptr) {
    return OkStatus();
  }
  std::string kty = p.kty;
  RETURN_IF_ERROR(ReadString(*k, "kty", "key_props.kty", kty));
  std::optional<int> size;
  RETURN_IF_ERROR(ReadInt(*k, "key_size", "key_props.key_size", size));
  std::optional<std::string> crv;
  if (Member(*k, "crv") != nullptr) {
    crv.emplace();
    RETURN_IF_ERROR(ReadString(*k, "crv", "key_props.crv", *crv));
  }
  if (kty == "RSA-HSM" || kty == "EC-HSM") {
    return BadParameter("Hardware-protected keys need an HSM; use kty RSA or EC.");
  }
  if (kty != "RSA" && kty != "EC") {
    return BadParameter("Property 'key_props.kty' must be RSA or EC.");
  }
  if (kty != p.kty) {
    // Another type: its size or curve start from that type's default.
    p.key_size = kty == "RSA" ? 2048 : 0;
    p.crv = kty == "EC" ? "P-256" : "";
  }
  p.kty = kty;
  if (kty == "RSA") {
    if (crv && !crv->empty()) {
      return BadParameter("Property 'key_props.crv' applies to EC keys.");
    }
    if (size) {
      p.key_size = *size;
    }
    if (p.key_size != 2048 && p.key_size != 3072 && p.key_size != 4096) {
      return BadParameter("Property 'key_props.key_size' must be 2048, 3072 or 4096.");
    }
  } else {
    if (size && *size != 0) {
      return BadParameter("Property 'key_props.key_size' applies to RSA keys; EC keys take crv.");
    }
    if (crv) {
      p.crv = *crv;
    }
    if (p.crv.empty()) {
      p.crv = "P-256";
    }
    if (p.crv != "P-256" && p.crv != "P-384" && p.crv != "P-521" && p.crv != "P-256K") {
      return BadParameter("Property 'key_props.crv' must be P-256, P-384, P-521 or P-256K.");
    }
    p.key_size = 0;
  }
  RETURN_IF_ERROR(ReadBool(*k, "exportable", "key_props.exportable", p.exportable));
  return ReadBool(*k, "reuse_key", "key_props.reuse_key", p.reuse_key);
}

Status ReadX509Props(const Json& json, CertificatePolicy& p) {
  ASSIGN_OR_RETURN(const Json* x, Object(json, "x509_props", "x509_props"));
  if (x == nullptr) {
    return OkStatus();
  }
  RETURN_IF_ERROR(ReadString(*x, "subject", "x509_props.subject", p.subject));
  ASSIGN_OR_RETURN(const Json* sans, Object(*x, "sans", "x509_props.sans"));
  if (sans != nullptr) {
    RETURN_IF_ERROR(ReadStrings(*sans, "dns_names", "x509_props.sans.dns_names", p.dns_names));
    RETURN_IF_ERROR(ReadStrings(*sans, "emails", "x509_props.sans.emails", p.emails));
    RETURN_IF_ERROR(ReadStrings(*sans, "upns", "x509_props.sans.upns", p.upns));
    RETURN_IF_ERROR(ReadStrings(*sans, "uris", "x509_props.sans.uris", p.uris));
    RETURN_IF_ERROR(
        ReadStrings(*sans, "ipAddresses", "x509_props.sans.ipAddresses", p.ip_addresses));
  }
  RETURN_IF_ERROR(ReadStrings(*x, "key_usage", "x509_props.key_usage", p.key_usage));
  RETURN_IF_ERROR(ReadStrings(*x, "ekus", "x509_props.ekus", p.ekus));
  std::optional<int> months;
  RETURN_IF_ERROR(ReadInt(*x, "validity_months", "x509_props.validity_months", months));
  if (months) {
    p.validity_months = *months;
  }
  return OkStatus();
}

Status ReadLifetimeActions(const Json& json, CertificatePolicy& p) {
  const Json* list = Member(json, "lifetime_actions");
  if (list == nullptr) {
    return OkStatus();
  }
  if (!list->is_array() || list->size() > kMaxLifetimeActions) {
    return TypeError("lifetime_actions", "an array of at most 10 actions");
  }
  std::vector<CertificatePolicy::LifetimeAction> actions;
  for (const auto& a : *list) {
    if (!a.is_object()) {
      return TypeError("lifetime_actions", "an array of objects");
    }
    CertificatePolicy::LifetimeAction out;
    ASSIGN_OR_RETURN(const Json* trigger, Object(a, "trigger", "lifetime_actions.trigger"));
    ASSIGN_OR_RETURN(const Json* action, Object(a, "action", "lifetime_actions.action"));
    if (trigger == nullptr || action == nullptr) {
      return BadParameter("Each lifetime action needs a trigger and an action.");
    }
    RETURN_IF_ERROR(ReadInt(*trigger, "lifetime_percentage",
                            "lifetime_actions.trigger.lifetime_percentage",
                            out.lifetime_percentage));
    RETURN_IF_ERROR(ReadInt(*trigger, "days_before_expiry",
                            "lifetime_actions.trigger.days_before_expiry", out.days_before_expiry));
    RETURN_IF_ERROR(
        ReadString(*action, "action_type", "lifetime_actions.action.action_type", out.action_type));
    if (out.lifetime_percentage.has_value() == out.days_before_expiry.has_value()) {
      return BadParameter(
          "A lifetime action's trigger takes lifetime_percentage or days_before_expiry, one of "
          "the two.");
    }
    if (out.lifetime_percentage &&
        (*out.lifetime_percentage < 1 || *out.lifetime_percentage > 99)) {
      return BadParameter("Property 'lifetime_percentage' must be between 1 and 99.");
    }
    if (EqualsIgnoreCase(out.action_type, "AutoRenew")) {
      out.action_type = "AutoRenew";
    } else if (EqualsIgnoreCase(out.action_type, "EmailContacts")) {
      out.action_type = "EmailContacts";
    } else {
      return BadParameter("Property 'action_type' must be AutoRenew or EmailContacts.");
    }
    actions.push_back(out);
  }
  p.lifetime_actions = std::move(actions);
  return OkStatus();
}

Status ReadIssuer(const Json& json, CertificatePolicy& p) {
  ASSIGN_OR_RETURN(const Json* issuer, Object(json, "issuer", "issuer"));
  if (issuer == nullptr) {
    return OkStatus();
  }
  RETURN_IF_ERROR(ReadString(*issuer, "name", "issuer.name", p.issuer));
  RETURN_IF_ERROR(ReadString(*issuer, "cty", "issuer.cty", p.certificate_type));
  if (const Json* ct = Member(*issuer, "cert_transparency")) {
    if (!ct->is_boolean()) {
      return TypeError("issuer.cert_transparency", "a boolean");
    }
    p.cert_transparency = ct->get<bool>();
  }
  if (EqualsIgnoreCase(p.issuer, "Self")) {
    p.issuer = "Self";
  } else if (EqualsIgnoreCase(p.issuer, "Unknown")) {
    p.issuer = "Unknown";
  }
  return OkStatus();
}

// What the parts read cannot check alone, and the defaults for what is
// still unset.
Status Complete(CertificatePolicy& p) {
  if (p.content_type != kPkcs12 && p.content_type != kPem) {
    return BadParameter(
        "Property 'secret_props.contentType' must be application/x-pkcs12 or "
        "application/x-pem-file.");
  }
  if (p.validity_months < 1 || p.validity_months > 1200) {
    return BadParameter("Property 'x509_props.validity_months' must be between 1 and 1200.");
  }
  if (p.issuer.empty() || p.issuer.size() > kMaxIssuerName) {
    return BadParameter(
        "Property 'issuer.name' must name an issuer: Self, Unknown or one of "
        "the vault's issuers.");
  }
  if (p.subject.empty() && p.dns_names.empty() && p.emails.empty() && p.upns.empty()) {
    return BadParameter(
        "Property 'x509_props.subject' is required unless subject alternative names are given.");
  }
  RETURN_IF_ERROR(CanonicalKeyUsage(p.key_usage));
  if (p.key_usage.empty()) {
    p.key_usage = p.kty == "RSA" ? std::vector<std::string>{"digitalSignature", "keyEncipherment"}
                                 : std::vector<std::string>{"digitalSignature"};
  }
  if (p.ekus.empty()) {
    p.ekus = {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"};
  }
  if (!p.subject.empty()) {
    ASSIGN_OR_RETURN(p.subject, crypto::NormalizeSubject(p.subject));
  }
  // Names, usages and EKUs as a certificate would carry them; the validity
  // is checked above.
  RETURN_IF_ERROR(crypto::CheckProfile(ProfileOf(p, 0, 1)));
  const int64_t validity_days = static_cast<int64_t>(p.validity_months) * 28;
  for (const auto& a : p.lifetime_actions) {
    if (a.days_before_expiry &&
        (*a.days_before_expiry < 1 || *a.days_before_expiry >= validity_days)) {
      return BadParameter(
          "Property 'days_before_expiry' must be at least 1 and less than the "
          "certificate's validity.");
    }
    if (a.action_type == "AutoRenew" && p.issuer == "Unknown") {
      return BadParameter(
          "AutoRenew needs an issuer that can sign; the Unknown issuer takes "
          "EmailContacts only.");
    }
  }
  return OkStatus();
}

Json Strings(const std::vector<std::string>& v) {
  return Json(v);
}

}  // namespace

StatusOr<CertificatePolicy> ParseCertificatePolicy(const Json& json,
                                                   const CertificatePolicy& base) {
  if (!json.is_object()) {
    return TypeError("policy", "an object");
  }
  CertificatePolicy p = base;
  const bool had_actions = !base.lifetime_actions.empty() || base.created != 0;
  RETURN_IF_ERROR(ReadKeyProps(json, p));
  ASSIGN_OR_RETURN(const Json* secret, Object(json, "secret_props", "secret_props"));
  if (secret != nullptr) {
    RETURN_IF_ERROR(ReadString(*secret, "contentType", "secret_props.contentType", p.content_type));
  }
  RETURN_IF_ERROR(ReadX509Props(json, p));
  RETURN_IF_ERROR(ReadLifetimeActions(json, p));
  RETURN_IF_ERROR(ReadIssuer(json, p));
  ASSIGN_OR_RETURN(const Json* attrs, Object(json, "attributes", "attributes"));
  if (attrs != nullptr) {
    RETURN_IF_ERROR(ReadBool(*attrs, "enabled", "attributes.enabled", p.enabled));
  }
  if (!had_actions && Member(json, "lifetime_actions") == nullptr) {
    CertificatePolicy::LifetimeAction renew;
    if (p.issuer == "Unknown") {
      renew.lifetime_percentage = 80;
      renew.action_type = "EmailContacts";
    } else {
      renew.lifetime_percentage = 80;
      renew.action_type = "AutoRenew";
    }
    p.lifetime_actions = {renew};
  }
  RETURN_IF_ERROR(Complete(p));
  return p;
}

Json RenderCertificatePolicy(const CertificatePolicy& p, const std::string& id) {
  Json key = {{"exportable", p.exportable}, {"kty", p.kty}, {"reuse_key", p.reuse_key}};
  if (p.kty == "RSA") {
    key["key_size"] = p.key_size;
  } else {
    key["crv"] = p.crv;
  }
  Json sans = Json::object();
  auto add = [&sans](const char* name, const std::vector<std::string>& v) {
    if (!v.empty()) {
      sans[name] = Strings(v);
    }
  };
  add("dns_names", p.dns_names);
  add("emails", p.emails);
  add("upns", p.upns);
  add("uris", p.uris);
  add("ipAddresses", p.ip_addresses);
  Json x509 = {{"subject", p.subject},
               {"sans", std::move(sans)},
               {"key_usage", Strings(p.key_usage)},
               {"ekus", Strings(p.ekus)},
               {"validity_months", p.validity_months}};
  Json actions = Json::array();
  for (const auto& a : p.lifetime_actions) {
    Json trigger = Json::object();
    if (a.lifetime_percentage) {
      trigger["lifetime_percentage"] = *a.lifetime_percentage;
    } else {
      trigger["days_before_expiry"] = *a.days_before_expiry;
    }
    actions.push_back({{"trigger", trigger}, {"action", {{"action_type", a.action_type}}}});
  }
  Json issuer = {{"name", p.issuer}};
  if (!p.certificate_type.empty()) {
    issuer["cty"] = p.certificate_type;
  }
  if (p.cert_transparency) {
    issuer["cert_transparency"] = *p.cert_transparency;
  }
  Json out = Json::object();
  if (!id.empty()) {
    out["id"] = id;
  }
  out["key_props"] = std::move(key);
  out["secret_props"] = {{"contentType", p.content_type}};
  out["x509_props"] = std::move(x509);
  out["lifetime_actions"] = std::move(actions);
  out["issuer"] = std::move(issuer);
  out["attributes"] = {{"enabled", p.enabled}, {"created", p.created}, {"updated", p.updated}};
  return out;
}

crypto::CertificateProfile ProfileOf(const CertificatePolicy& p, int64_t not_before,
                                     int64_t not_after) {
  crypto::CertificateProfile profile;
  profile.subject = p.subject;
  profile.sans.dns_names = p.dns_names;
  profile.sans.emails = p.emails;
  profile.sans.upns = p.upns;
  profile.sans.uris = p.uris;
  profile.sans.ip_addresses = p.ip_addresses;
  profile.key_usage = p.key_usage;
  profile.ekus = p.ekus;
  profile.not_before = not_before;
  profile.not_after = not_after;
  return profile;
}

StatusOr<CertificatePolicy> LoadCertificatePolicy(const std::string& stored) {
  auto json = ParseJson(stored, 8);
  if (!json) {
    return DataLossError("a stored certificate policy does not parse");
  }
  CertificatePolicy base;
  auto p = ParseCertificatePolicy(*json, base);
  if (!p.ok()) {
    return DataLossError("a stored certificate policy is not valid: " +
                         std::string(p.status().message()));
  }
  const Json& attrs = (*json)["attributes"];
  p->created = attrs.value("created", int64_t{0});
  p->updated = attrs.value("updated", int64_t{0});
  return p;
}

}  // namespace coffer::keyvault
