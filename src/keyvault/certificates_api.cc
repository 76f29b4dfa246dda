#include "keyvault/certificates_api.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "keyvault/api_util.h"

namespace coffer::keyvault {
namespace {

http::Response Error(const Status& s) {
  return http::ErrorResponse(s);
}

std::string Name(const VaultCall& call) {
  return std::string(call.params.Get("name"));
}

std::string Url(const http::Request& req, const char* collection, const std::string& name,
                const std::string& version) {
  return BaseUrl(req) + "/" + collection + "/" + name + (version.empty() ? "" : "/" + version);
}

// A CertificateBundle (`bundle`) or a CertificateItem, with Key Vault's
// deletion fields for deleted certificates.
Json Render(const Certificate& c, const http::Request& req, bool bundle, bool versioned) {
  const auto& r = c.record;
  Json attrs = {{"enabled", r.enabled}, {"created", r.created}, {"updated", r.updated}};
  if (r.nbf) {
    attrs["nbf"] = *r.nbf;
  }
  if (r.exp) {
    attrs["exp"] = *r.exp;
  }
  if (bundle) {
    attrs["recoverableDays"] = c.recoverable_days;
    attrs["recoveryLevel"] = c.recovery_level;
  }
  Json out = Json::object();
  out["id"] = Url(req, "certificates", r.name, versioned ? r.version : "");
  if (!c.cer.empty()) {
    out["x5t"] = Base64UrlEncode(c.x5t);
  }
  out["attributes"] = std::move(attrs);
  auto tags = ParseJson(r.tags_json, 2);
  if (tags && tags->is_object() && !tags->empty()) {
    out["tags"] = *tags;
  }
  if (bundle && !c.cer.empty()) {
    out["kid"] = Url(req, "keys", r.name, r.version);
    out["sid"] = Url(req, "secrets", r.name, r.version);
    out["cer"] = Base64Encode(c.cer);
  }
  if (bundle && c.pending) {
    out["pending"] = {{"id", Url(req, "certificates", r.name, "") + "/pending"}};
  }
  if (bundle) {
    if (c.policy) {
      out["policy"] =
          RenderCertificatePolicy(*c.policy, Url(req, "certificates", r.name, "") + "/policy");
    }
  }
  if (c.deleted) {
    out["recoveryId"] = Url(req, "deletedcertificates", r.name, "");
    out["deletedDate"] = c.deleted_date;
    out["scheduledPurgeDate"] = c.scheduled_purge_date;
  }
  return out;
}

http::Response Answer(const StatusOr<Certificate>& c, const http::Request& req) {
  if (!c.ok()) {
    return Error(c.status());
  }
  return http::JsonResponse(200, ToJson(Render(*c, req, true, true)));
}

http::Response OperationAnswer(const StatusOr<CertificateOperation>& op, const http::Request& req,
                               int status) {
  if (!op.ok()) {
    return Error(op.status());
  }
  Json out = {{"id", Url(req, "certificates", op->name, "") + "/pending"},
              {"issuer", {{"name", op->issuer}}},
              {"csr", Base64Encode(op->csr)},
              {"cancellation_requested", op->cancellation_requested},
              {"status", op->status},
              {"status_details", op->status_details},
              {"target", Url(req, "certificates", op->name, "")},
              {"request_id", op->request_id}};
  return http::JsonResponse(status, ToJson(out));
}

http::Response ListResponse(const StatusOr<CertificateList>& list, const http::Request& req,
                            const std::string& path, int limit, bool versioned) {
  if (!list.ok()) {
    return Error(list.status());
  }
  Json items = Json::array();
  for (const auto& c : list->items) {
    items.push_back(Render(c, req, false, versioned));
  }
  std::string body = "{\"value\":" + ToJson(items) +
                     ",\"nextLink\":" + NextLink(req, path, list->next_cursor, limit) + "}";
  return http::JsonResponse(200, std::move(body));
}

// What create, import and update share: attributes.enabled and tags.
struct Common {
  std::optional<bool> enabled;
  std::optional<std::string> tags_json;
  std::optional<Json> policy;
};

StatusOr<Common> ReadCommon(const Json& body) {
  Common c;
  if (auto it = body.find("tags"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return TypeError("tags", "an object of strings");
    }
    c.tags_json = ToJson(*it);
  }
  ASSIGN_OR_RETURN(c.enabled, ReadEnabled(body));
  if (auto it = body.find("policy"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return TypeError("policy", "an object");
    }
    c.policy = *it;
  }
  return c;
}

// A create, import, update or merge request: its body and what they share.
struct ReadBody {
  Json body;
  Common common;
};

StatusOr<ReadBody> ReadRequest(const http::Request& req) {
  ASSIGN_OR_RETURN(Json body, ParseBody(req));
  ASSIGN_OR_RETURN(Common common, ReadCommon(body));
  return ReadBody{std::move(body), std::move(common)};
}

}  // namespace

http::Response CertificatesApi::List(const VaultCall& call) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  return ListResponse(service_.List(call.vault, paging->cursor, paging->limit), call.request,
                      "/certificates", paging->limit, false);
}

http::Response CertificatesApi::ListDeleted(const VaultCall& call) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  return ListResponse(service_.ListDeleted(call.vault, paging->cursor, paging->limit), call.request,
                      "/deletedcertificates", paging->limit, false);
}

http::Response CertificatesApi::ListVersions(const VaultCall& call) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  std::string name = Name(call);
  return ListResponse(service_.ListVersions(call.vault, name, paging->cursor, paging->limit),
                      call.request, "/certificates/" + name + "/versions", paging->limit, true);
}

http::Response CertificatesApi::Create(const VaultCall& call) {
  auto read = ReadRequest(call.request);
  if (!read.ok()) {
    return Error(read.status());
  }
  const Common* common = &read->common;
  CertificateCreateInput in;
  in.policy = common->policy;
  in.tags_json = common->tags_json.value_or("{}");
  in.enabled = common->enabled.value_or(true);
  auto op = service_.Create(call.vault, Name(call), in);
  // The version is written before this answer, but the answer says
  // "inProgress", as Key Vault's always does: the SDKs' pollers fetch the
  // certificate only once a poll of the operation finds it finished, and
  // Python's never polls an operation that starts out finished.
  if (op.ok()) {
    op->status = "inProgress";
  }
  return OperationAnswer(op, call.request, 202);
}

http::Response CertificatesApi::GetOperation(const VaultCall& call) {
  return OperationAnswer(service_.GetOperation(call.vault, Name(call)), call.request, 200);
}

namespace {

// One x5c entry of a merge: base64 of a DER certificate, as Key Vault
// documents it, or base64 of a certificate's PEM text or of its base64 lines
// (with or without the armour): what the JS SDK's own merge example sends,
// the PEM file's lines after BEGIN joined and passed as bytes.
std::optional<std::string> MergedCertificate(const std::string& entry) {
  auto bytes = Base64Decode(entry);
  if (!bytes || bytes->empty() || static_cast<unsigned char>((*bytes)[0]) == 0x30) {
    return bytes;  // DER starts with a SEQUENCE
  }
  std::string text;
  for (char ch : *bytes) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      return bytes;  // not text: ReadCertificateDer says what is wrong
    }
  }
  std::string stripped = *bytes;
  for (const char* armour : {"-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"}) {
    for (size_t at = stripped.find(armour); at != std::string::npos; at = stripped.find(armour)) {
      stripped.erase(at, std::char_traits<char>::length(armour));
    }
  }
  for (char ch : stripped) {
    if (ch != '\r' && ch != '\n' && ch != ' ' && ch != '\t') {
      text += ch;
    }
  }
  auto der = Base64Decode(text);
  return der ? der : bytes;
}

}  // namespace

http::Response CertificatesApi::CancelOperation(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  auto it = body->find("cancellation_requested");
  if (it == body->end() || !it->is_boolean()) {
    return Error(BadParameter("Property 'cancellation_requested' (a boolean) is required."));
  }
  if (!it->get<bool>()) {
    return GetOperation(call);
  }
  return OperationAnswer(service_.CancelOperation(call.vault, Name(call)), call.request, 200);
}

http::Response CertificatesApi::DeleteOperation(const VaultCall& call) {
  return OperationAnswer(service_.DeleteOperation(call.vault, Name(call)), call.request, 200);
}

http::Response CertificatesApi::Merge(const VaultCall& call) {
  auto read = ReadRequest(call.request);
  if (!read.ok()) {
    return Error(read.status());
  }
  Json* body = &read->body;
  const Common* common = &read->common;
  CertificateMergeInput in;
  auto x5c = body->find("x5c");
  if (x5c == body->end() || !x5c->is_array()) {
    return Error(BadParameter(
        "Property 'x5c' is required: the signed certificate and its chain, base64 DER."));
  }
  for (size_t i = 0; i < x5c->size() && i < 11; ++i) {
    const Json& one = (*x5c)[i];
    auto der =
        one.is_string() ? MergedCertificate(one.get_ref<const std::string&>()) : std::nullopt;
    if (!der) {
      return Error(BadParameter("Property 'x5c[" + std::to_string(i) +
                                "]' must be a certificate in base64 DER."));
    }
    in.x5c.push_back(std::move(*der));
  }
  if (x5c->size() > 10) {
    in.x5c.resize(11);  // the service refuses more than 10
  }
  in.tags_json = common->tags_json;
  in.enabled = common->enabled;
  auto made = service_.Merge(call.vault, Name(call), in);
  if (!made.ok()) {
    return Error(made.status());
  }
  return http::JsonResponse(201, ToJson(Render(*made, call.request, true, true)));
}

http::Response CertificatesApi::Import(const VaultCall& call) {
  auto read = ReadRequest(call.request);
  if (!read.ok()) {
    return Error(read.status());
  }
  Json* body = &read->body;
  const Common* common = &read->common;
  CertificateImportInput in;
  auto value = body->find("value");
  if (value == body->end() || !value->is_string()) {
    return Error(
        BadParameter("Property 'value' is required: a PFX (base64) or PEM certificate "
                     "with its private key."));
  }
  // Moved, not copied: the copies that hold the private key are wiped below.
  in.value = std::move(value->get_ref<std::string&>());
  if (auto it = body->find("pwd"); it != body->end() && !it->is_null()) {
    if (!it->is_string()) {
      return Error(TypeError("pwd", "a string"));
    }
    in.password = std::move(it->get_ref<std::string&>());
  }
  in.policy = common->policy;
  in.tags_json = common->tags_json.value_or("{}");
  in.enabled = common->enabled.value_or(true);
  auto made = service_.Import(call.vault, Name(call), in);
  // SECURITY: the request's key and password are wiped from memory.
  crypto::SecureWipe(in.value);
  crypto::SecureWipe(in.password);
  return Answer(made, call.request);
}

http::Response CertificatesApi::Get(const VaultCall& call) {
  return Answer(service_.Get(call.vault, Name(call), std::string(call.params.Get("version"))),
                call.request);
}

http::Response CertificatesApi::Update(const VaultCall& call) {
  auto read = ReadRequest(call.request);
  if (!read.ok()) {
    return Error(read.status());
  }
  const Common* common = &read->common;
  CertificatePatch patch;
  patch.enabled = common->enabled;
  patch.tags_json = common->tags_json;
  return Answer(
      service_.Update(call.vault, Name(call), std::string(call.params.Get("version")), patch),
      call.request);
}

namespace {

http::Response PolicyAnswer(const StatusOr<CertificatePolicy>& policy, const VaultCall& call,
                            const std::string& name) {
  if (!policy.ok()) {
    return Error(policy.status());
  }
  std::string id = Url(call.request, "certificates", name, "") + "/policy";
  return http::JsonResponse(200, ToJson(RenderCertificatePolicy(*policy, id)));
}

}  // namespace

http::Response CertificatesApi::GetPolicy(const VaultCall& call) {
  std::string name = Name(call);
  return PolicyAnswer(service_.GetPolicy(call.vault, name), call, name);
}

http::Response CertificatesApi::UpdatePolicy(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  std::string name = Name(call);
  return PolicyAnswer(service_.UpdatePolicy(call.vault, name, *body), call, name);
}

http::Response CertificatesApi::Backup(const VaultCall& call) {
  return BackupAnswer(service_.Backup(call.vault, Name(call)));
}

http::Response CertificatesApi::Restore(const VaultCall& call) {
  auto blob = ReadBackupBlob(call.request);
  if (!blob.ok()) {
    return Error(blob.status());
  }
  return Answer(service_.Restore(call.vault, *blob), call.request);
}

http::Response CertificatesApi::Delete(const VaultCall& call) {
  return Answer(service_.Delete(call.vault, Name(call)), call.request);
}

http::Response CertificatesApi::GetDeleted(const VaultCall& call) {
  return Answer(service_.GetDeleted(call.vault, Name(call)), call.request);
}

http::Response CertificatesApi::Recover(const VaultCall& call) {
  return Answer(service_.Recover(call.vault, Name(call)), call.request);
}

http::Response CertificatesApi::Purge(const VaultCall& call) {
  Status s = service_.Purge(call.vault, Name(call));
  return s.ok() ? http::EmptyResponse(204) : Error(s);
}

namespace {

http::Response ContactsAnswer(const StatusOr<std::vector<CertificateContact>>& contacts,
                              const http::Request& req) {
  if (!contacts.ok()) {
    return Error(contacts.status());
  }
  Json list = Json::array();
  for (const auto& c : *contacts) {
    Json one = Json::object();
    if (!c.email.empty())
      one["email"] = c.email;
    if (!c.name.empty())
      one["name"] = c.name;
    if (!c.phone.empty())
      one["phone"] = c.phone;
    list.push_back(std::move(one));
  }
  Json out = {{"id", BaseUrl(req) + "/certificates/contacts"}, {"contacts", std::move(list)}};
  return http::JsonResponse(200, ToJson(out));
}

std::string IssuerUrl(const http::Request& req, const std::string& name) {
  return BaseUrl(req) + "/certificates/issuers/" + name;
}

// An IssuerBundle. The password is never read back.
Json RenderIssuer(const CertificateIssuer& i, const http::Request& req) {
  Json out = {
      {"id", IssuerUrl(req, i.name)},
      {"provider", i.provider},
      {"attributes", {{"enabled", i.enabled}, {"created", i.created}, {"updated", i.updated}}}};
  if (!i.account_id.empty()) {
    out["credentials"] = {{"account_id", i.account_id}};
  }
  if (!i.org_details.empty()) {
    out["org_details"] = i.org_details;
  }
  if (!i.allowed_dns_suffixes.empty() || i.max_validity_months != 0) {
    out["coffer"] = {{"allowed_dns_suffixes", i.allowed_dns_suffixes},
                     {"max_validity_months", i.max_validity_months}};
  }
  return out;
}

http::Response IssuerAnswer(const StatusOr<CertificateIssuer>& issuer, const http::Request& req) {
  if (!issuer.ok()) {
    return Error(issuer.status());
  }
  return http::JsonResponse(200, ToJson(RenderIssuer(*issuer, req)));
}

std::string IssuerName(const VaultCall& call) {
  return std::string(call.params.Get("issuer"));
}

}  // namespace

http::Response CertificatesApi::GetContacts(const VaultCall& call) {
  return ContactsAnswer(issuers_.GetContacts(call.vault), call.request);
}

http::Response CertificatesApi::SetContacts(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  return ContactsAnswer(issuers_.SetContacts(call.vault, *body), call.request);
}

http::Response CertificatesApi::DeleteContacts(const VaultCall& call) {
  return ContactsAnswer(issuers_.DeleteContacts(call.vault), call.request);
}

http::Response CertificatesApi::ListIssuers(const VaultCall& call) {
  auto issuers = issuers_.ListIssuers(call.vault);
  if (!issuers.ok()) {
    return Error(issuers.status());
  }
  Json items = Json::array();
  for (const auto& i : *issuers) {
    items.push_back({{"id", IssuerUrl(call.request, i.name)}, {"provider", i.provider}});
  }
  return http::JsonResponse(200, ToJson(Json{{"value", std::move(items)}, {"nextLink", nullptr}}));
}

http::Response CertificatesApi::GetIssuer(const VaultCall& call) {
  return IssuerAnswer(issuers_.GetIssuer(call.vault, IssuerName(call)), call.request);
}

http::Response CertificatesApi::SetIssuer(const VaultCall& call) {
  return WriteIssuer(call, true);
}

http::Response CertificatesApi::UpdateIssuer(const VaultCall& call) {
  return WriteIssuer(call, false);
}

http::Response CertificatesApi::WriteIssuer(const VaultCall& call, bool replace) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  auto made = issuers_.SetIssuer(call.vault, IssuerName(call), *body, replace,
                                 is_administrator_(call.principal.object_id));
  // SECURITY: the request's password is wiped once sealed.
  if (auto c = body->find("credentials"); c != body->end() && c->is_object()) {
    if (auto p = c->find("pwd"); p != c->end() && p->is_string()) {
      crypto::SecureWipe(p->get_ref<std::string&>());
    }
  }
  return IssuerAnswer(made, call.request);
}

http::Response CertificatesApi::DeleteIssuer(const VaultCall& call) {
  return IssuerAnswer(issuers_.DeleteIssuer(call.vault, IssuerName(call)), call.request);
}

std::vector<VaultOperation> CertificatesApi::Operations() {
  using Handle = http::Response (CertificatesApi::*)(const VaultCall&);
  auto op = [this](std::string_view method, std::string_view pattern, std::string_view operation,
                   std::string_view object, Handle handle) {
    return ApiRoute(method, pattern, operation, object,
                    [this, handle](const VaultCall& call) { return (this->*handle)(call); });
  };
  // Key Vault's certificates REST surface (docs/certificates.md). An empty
  // version ("/certificates/{name}/") names the latest.
  return {
      op("GET", "/certificates", "CertificateList", "", &CertificatesApi::List),
      op("POST", "/certificates/{name}/create", "CertificateCreate", "name",
         &CertificatesApi::Create),
      op("GET", "/certificates/{name}/pending", "CertificatePendingGet", "name",
         &CertificatesApi::GetOperation),
      op("PATCH", "/certificates/{name}/pending", "CertificatePendingUpdate", "name",
         &CertificatesApi::CancelOperation),
      op("DELETE", "/certificates/{name}/pending", "CertificatePendingDelete", "name",
         &CertificatesApi::DeleteOperation),
      op("POST", "/certificates/{name}/pending/merge", "CertificatePendingMerge", "name",
         &CertificatesApi::Merge),
      op("POST", "/certificates/{name}/import", "CertificateImport", "name",
         &CertificatesApi::Import),
      op("POST", "/certificates/{name}/backup", "CertificateBackup", "name",
         &CertificatesApi::Backup),
      op("POST", "/certificates/restore", "CertificateRestore", "", &CertificatesApi::Restore),
      op("GET", "/certificates/{name}", "CertificateGet", "name", &CertificatesApi::Get),
      op("GET", "/certificates/{name}/versions", "CertificateListVersions", "name",
         &CertificatesApi::ListVersions),
      op("GET", "/certificates/{name}/policy", "CertificatePolicyGet", "name",
         &CertificatesApi::GetPolicy),
      op("PATCH", "/certificates/{name}/policy", "CertificatePolicyUpdate", "name",
         &CertificatesApi::UpdatePolicy),
      op("GET", "/certificates/{name}/{version?}", "CertificateGet", "name", &CertificatesApi::Get),
      op("PATCH", "/certificates/{name}", "CertificateUpdate", "name", &CertificatesApi::Update),
      op("PATCH", "/certificates/{name}/{version?}", "CertificateUpdate", "name",
         &CertificatesApi::Update),
      op("DELETE", "/certificates/{name}", "CertificateDelete", "name", &CertificatesApi::Delete),
      op("GET", "/deletedcertificates", "CertificateListDeleted", "",
         &CertificatesApi::ListDeleted),
      op("GET", "/deletedcertificates/{name}", "CertificateGetDeleted", "name",
         &CertificatesApi::GetDeleted),
      op("DELETE", "/deletedcertificates/{name}", "CertificatePurge", "name",
         &CertificatesApi::Purge),
      op("POST", "/deletedcertificates/{name}/recover", "CertificateRecover", "name",
         &CertificatesApi::Recover),
      // A vault's contacts and issuers. Their paths outrank a certificate
      // named "contacts" or "issuers", as in Key Vault; the issuer routes
      // come after /pending so that an issuer named "pending" is reached.
      op("GET", "/certificates/contacts", "CertificateContactsGet", "",
         &CertificatesApi::GetContacts),
      op("PUT", "/certificates/contacts", "CertificateContactsSet", "",
         &CertificatesApi::SetContacts),
      op("DELETE", "/certificates/contacts", "CertificateContactsDelete", "",
         &CertificatesApi::DeleteContacts),
      op("GET", "/certificates/issuers", "CertificateIssuerList", "",
         &CertificatesApi::ListIssuers),
      op("GET", "/certificates/issuers/{issuer}", "CertificateIssuerGet", "",
         &CertificatesApi::GetIssuer),
      op("PUT", "/certificates/issuers/{issuer}", "CertificateIssuerSet", "",
         &CertificatesApi::SetIssuer),
      op("PATCH", "/certificates/issuers/{issuer}", "CertificateIssuerUpdate", "",
         &CertificatesApi::UpdateIssuer),
      op("DELETE", "/certificates/issuers/{issuer}", "CertificateIssuerDelete", "",
         &CertificatesApi::DeleteIssuer),
  };
}

}  // namespace coffer::keyvault
