#include "auth/graph_api.h"

#include "auth/graph_users.h"
#include "auth/odata_filter.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/time_format.h"

namespace coffer::auth {
namespace {

constexpr int kDefaultSecretDays = 365;

http::Response GraphError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return http::ErrorResponse(404, "Request_ResourceNotFound", std::string(s.message()));
    case StatusCode::kInvalidArgument:
      return http::ErrorResponse(400, "Request_BadRequest", std::string(s.message()));
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      return http::ErrorResponse(409, "Request_BadRequest", std::string(s.message()));
    default:
      return http::ErrorResponse(http::HttpStatusFor(s.code()).http_status,
                                 "Service_InternalServerError", std::string(s.message()));
  }
}

Json SecretInfoJson(const ClientSecretInfo& c) {
  return Json{{"keyId", c.key_id},
              {"hint", c.hint},
              {"displayName", nullptr},
              {"customKeyIdentifier", nullptr},
              {"startDateTime", FormatIsoTime(c.created)},
              {"endDateTime", FormatIsoTime(c.expires)}};
}

Json KeyInfoJson(const ClientCertificateInfo& c) {
  return Json{{"keyId", c.key_id},
              {"type", "AsymmetricX509Cert"},
              {"usage", "Verify"},
              {"customKeyIdentifier", c.thumbprint},
              {"displayName", nullptr},
              {"startDateTime", FormatIsoTime(c.not_before)},
              {"endDateTime", FormatIsoTime(c.not_after)}};
}

Json PrincipalJson(const ServicePrincipalInfo& sp) {
  Json secrets = Json::array();
  for (const auto& c : sp.secrets) {
    secrets.push_back(SecretInfoJson(c));
  }
  Json keys = Json::array();
  for (const auto& c : sp.certificates) {
    keys.push_back(KeyInfoJson(c));
  }
  const auto& p = sp.principal;
  return Json{{"id", p.object_id},
              {"appId", p.app_id},
              {"displayName", p.display_name},
              {"servicePrincipalNames", Json::array({p.app_id})},
              {"servicePrincipalType", "Application"},
              {"accountEnabled", true},
              {"appOwnerOrganizationId", p.tenant_id},
              {"createdDateTime", FormatIsoTime(p.created)},
              {"passwordCredentials", secrets},
              {"keyCredentials", keys}};
}

// A managed identity as Graph shows it: a service principal of type
// ManagedIdentity, named by its client id and its resource id.
Json IdentityJson(const storage::PrincipalRecord& p) {
  Json names = Json::array({p.app_id});
  if (!p.resource_id.empty()) {
    names.push_back(p.resource_id);
  }
  return Json{{"id", p.object_id},
              {"appId", p.app_id},
              {"displayName", p.display_name},
              {"servicePrincipalNames", names},
              {"alternativeNames", names},
              {"servicePrincipalType", "ManagedIdentity"},
              {"accountEnabled", true},
              {"appOwnerOrganizationId", nullptr},
              {"createdDateTime", FormatIsoTime(p.created)},
              {"passwordCredentials", Json::array()},
              {"keyCredentials", Json::array()}};
}

// Takes `word` (ignoring case) and the spaces after it from the start of `s`.
bool TakeWord(std::string_view& s, std::string_view word) {
  if (s.size() < word.size() || !EqualsIgnoreCase(s.substr(0, word.size()), word)) {
    return false;
  }
  s.remove_prefix(word.size());
  s = TrimWhitespace(s);
  return true;
}

// The client id a supported $filter asks for:
//   servicePrincipalNames/any(c:c eq '<id>')   (any lambda variable)
//   appId eq '<id>'
std::optional<std::string> FilteredAppId(std::string_view filter) {
  std::string_view s = TrimWhitespace(filter);
  if (TakeWord(s, "appId")) {
    if (!TakeWord(s, "eq")) {
      return std::nullopt;
    }
    auto value = TakeODataString(s);
    return value && TrimWhitespace(s).empty() ? value : std::nullopt;
  }
  if (!TakeWord(s, "servicePrincipalNames/any(") || s.empty() || s.back() != ')') {
    return std::nullopt;
  }
  s.remove_suffix(1);
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view var = TrimWhitespace(s.substr(0, colon));
  s = TrimWhitespace(s.substr(colon + 1));
  if (var.empty() || !TakeWord(s, var) || !TakeWord(s, "eq")) {
    return std::nullopt;
  }
  auto value = TakeODataString(s);
  return value && TrimWhitespace(s).empty() ? value : std::nullopt;
}

// Lifetime in days from an optional passwordCredential.endDateTime.
StatusOr<int> LifetimeDays(const Json& credential, int64_t now) {
  if (!credential.is_object() || !credential.contains("endDateTime") ||
      credential["endDateTime"].is_null()) {
    return kDefaultSecretDays;
  }
  if (!credential["endDateTime"].is_string()) {
    return InvalidArgumentError("passwordCredential.endDateTime must be an ISO 8601 string.");
  }
  auto end = ParseIsoTime(credential["endDateTime"].get<std::string>());
  if (!end) {
    return InvalidArgumentError("passwordCredential.endDateTime must be an ISO 8601 UTC time.");
  }
  int64_t days = (*end - now + 86399) / 86400;
  if (days < 1 || days > 3650) {
    return InvalidArgumentError(
        "passwordCredential.endDateTime must be between 1 day and 10 years from now.");
  }
  return static_cast<int>(days);
}

}  // namespace

GraphApi::GraphApi(Directory& directory, const Clock& clock, Hooks hooks)
    : directory_(directory), clock_(clock), hooks_(std::move(hooks)) {}

http::Response GraphApi::Handle(const http::Request& req, const std::string& id,
                                std::string_view verb) {
  const std::string& m = req.method;
  auto body = [&]() -> StatusOr<Json> {
    auto j = ParseJson(req.body.empty() ? "{}" : req.body);
    if (!j || !j->is_object()) {
      return InvalidArgumentError("The request body is not a JSON object.");
    }
    return *j;
  };

  if (id.empty()) {
    if (m == "GET" && !req.Query("$filter").empty()) {
      return Filtered(req.Query("$filter"));
    }
    if (m == "GET") {
      auto all = directory_.ListServicePrincipals();
      if (!all.ok()) {
        return GraphError(all.status());
      }
      Json items = Json::array();
      for (const auto& sp : *all) {
        items.push_back(PrincipalJson(sp));
      }
      return http::JsonResponse(200, ToJson(Json{{"value", items}}));
    }
    if (m == "POST") {
      auto j = body();
      if (!j.ok()) {
        return GraphError(j.status());
      }
      auto name = j->find("displayName");
      if (name == j->end() || !name->is_string()) {
        return http::ErrorResponse(400, "Request_BadRequest", "displayName is required.");
      }
      auto created =
          directory_.CreateServicePrincipal(name->get<std::string>(), kDefaultSecretDays);
      if (!created.ok()) {
        return GraphError(created.status());
      }
      auto info = directory_.GetServicePrincipal(created->principal.object_id);
      if (!info.ok()) {
        return GraphError(info.status());
      }
      Json out = PrincipalJson(*info);
      // The one response that carries the first secret, as az's
      // create-for-rbac shows its password once.
      out["passwordCredentials"][0]["secretText"] = created->client_secret;
      return http::JsonResponse(201, ToJson(out));
    }
    return http::ErrorResponse(405, "Request_BadRequest", "Method not allowed.");
  }

  if (verb.empty()) {
    if (m == "GET") {
      auto sp = directory_.GetServicePrincipal(id);
      return sp.ok() ? http::JsonResponse(200, ToJson(PrincipalJson(*sp)))
                     : GraphError(sp.status());
    }
    if (m == "DELETE") {
      if (hooks_.is_protected && hooks_.is_protected(id)) {
        return http::ErrorResponse(
            400, "Request_BadRequest",
            "Service principal '" + id +
                "' is an administrator of this installation and cannot be deleted.");
      }
      Status deleted = directory_.DeleteServicePrincipal(id);
      if (!deleted.ok()) {
        return GraphError(deleted);
      }
      if (hooks_.on_deleted) {
        hooks_.on_deleted(id);
      }
      return http::EmptyResponse(204);
    }
    return http::ErrorResponse(405, "Request_BadRequest", "Method not allowed.");
  }
  if (verb == "addPassword") {
    auto j = body();
    if (!j.ok()) {
      return GraphError(j.status());
    }
    Json credential = j->value("passwordCredential", Json::object());
    auto days = LifetimeDays(credential, clock_.NowSeconds());
    if (!days.ok()) {
      return GraphError(days.status());
    }
    auto added = directory_.AddClientSecret(id, *days);
    if (!added.ok()) {
      return GraphError(added.status());
    }
    Json out = SecretInfoJson(added->info);
    out["secretText"] = added->secret;
    return http::JsonResponse(200, ToJson(out));
  }
  if (verb == "addKey") {
    auto j = body();
    if (!j.ok()) {
      return GraphError(j.status());
    }
    Json key = j->value("keyCredential", Json::object());
    if (!key.is_object() || StringMember(key, "type") != "AsymmetricX509Cert" ||
        StringMember(key, "usage") != "Verify" || !key.value("key", Json()).is_string()) {
      return http::ErrorResponse(
          400, "Request_BadRequest",
          "keyCredential needs type AsymmetricX509Cert, usage Verify and the "
          "certificate as 'key' (base64 DER or PEM).");
    }
    auto added = directory_.AddClientCertificate(id, key["key"].get<std::string>());
    if (!added.ok()) {
      return GraphError(added.status());
    }
    return http::JsonResponse(200, ToJson(KeyInfoJson(*added)));
  }
  if (verb == "removeKey" || verb == "removePassword") {
    auto j = body();
    if (!j.ok()) {
      return GraphError(j.status());
    }
    auto key = j->find("keyId");
    if (key == j->end() || !key->is_string()) {
      return http::ErrorResponse(400, "Request_BadRequest", "keyId is required.");
    }
    // A removed credential stops working at once; tokens already issued with
    // it stay valid until they expire, as in Entra.
    Status removed = verb == "removeKey"
                         ? directory_.RemoveClientCertificate(id, key->get<std::string>())
                         : directory_.RemoveClientSecret(id, key->get<std::string>());
    if (!removed.ok()) {
      return GraphError(removed);
    }
    return http::EmptyResponse(204);
  }
  return http::ErrorResponse(404, "Request_ResourceNotFound", "Unknown directory path.");
}

http::Response GraphApi::Filtered(std::string_view filter) {
  std::optional<std::string> app_id = FilteredAppId(filter);
  if (!app_id) {
    // SECURITY: a filter not understood is refused, never ignored: a
    // client that takes value[0] would act on the wrong principal.
    return http::ErrorResponse(400, "Request_UnsupportedQuery",
                               "Unsupported or invalid query filter clause specified. Coffer "
                               "supports servicePrincipalNames/any(c:c eq '<appId>') and "
                               "appId eq '<appId>'.");
  }
  Json items = Json::array();
  auto found = directory_.FindPrincipalByAppId(*app_id);
  if (!found.ok() && found.status().code() != StatusCode::kNotFound) {
    return GraphError(found.status());
  }
  if (found.ok()) {
    if (found->kind == "ServicePrincipal") {
      auto sp = directory_.GetServicePrincipal(found->object_id);
      if (!sp.ok()) {
        return GraphError(sp.status());
      }
      items.push_back(PrincipalJson(*sp));
    } else {
      items.push_back(IdentityJson(*found));
    }
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

http::Response GraphApi::GetByIds(const http::Request& req) {
  auto body = ParseJson(req.body.empty() ? "{}" : req.body);
  if (!body || !body->is_object() || !body->contains("ids") || !(*body)["ids"].is_array()) {
    return http::ErrorResponse(400, "Request_BadRequest",
                               "The request body must be a JSON object with an 'ids' array.");
  }
  const Json& ids = (*body)["ids"];
  if (ids.size() > 1000) {
    return http::ErrorResponse(400, "Request_BadRequest",
                               "At most 1000 ids may be given in one request.");
  }
  // Coffer's principals are users or, to Graph, service principals (apps
  // and managed identities); a types list names which are wanted.
  bool want_principals = true;
  bool want_users = true;
  if (body->contains("types") && (*body)["types"].is_array()) {
    want_principals = want_users = false;
    for (const auto& t : (*body)["types"]) {
      std::string type = t.is_string() ? t.get<std::string>() : "";
      want_principals = want_principals || EqualsIgnoreCase(type, "servicePrincipal");
      want_users = want_users || EqualsIgnoreCase(type, "user");
    }
  }
  Json items = Json::array();
  for (const auto& id : ids) {
    if (!id.is_string()) {
      return http::ErrorResponse(400, "Request_BadRequest", "Every id must be a string.");
    }
    auto p = directory_.FindPrincipal(id.get<std::string>());
    if (!p.ok()) {
      if (p.status().code() == StatusCode::kNotFound) {
        continue;
      }
      return GraphError(p.status());
    }
    Json item;
    if (p->kind == "User") {
      if (!want_users) {
        continue;
      }
      auto user = directory_.FindUser(p->object_id);
      if (!user.ok()) {
        if (user.status().code() == StatusCode::kNotFound) {
          continue;
        }
        return GraphError(user.status());
      }
      item = *GraphUsers::UserJson(*user, "");
      item["@odata.type"] = "#microsoft.graph.user";
      items.push_back(std::move(item));
      continue;
    }
    if (!want_principals) {
      continue;
    } else if (p->kind == "ServicePrincipal") {
      auto sp = directory_.GetServicePrincipal(p->object_id);
      if (!sp.ok()) {
        return GraphError(sp.status());
      }
      item = PrincipalJson(*sp);
    } else {
      item = IdentityJson(*p);
    }
    item["@odata.type"] = "#microsoft.graph.servicePrincipal";
    items.push_back(std::move(item));
  }
  return http::JsonResponse(200, ToJson(Json{{"value", items}}));
}

http::Response GraphApi::Me() {
  return http::ErrorResponse(400, "BadRequest",
                             "/me request is only valid with delegated authentication flow.");
}

}  // namespace coffer::auth
