#include "auth/graph_api.h"

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
              {"servicePrincipalType", "Application"},
              {"accountEnabled", true},
              {"appOwnerOrganizationId", p.tenant_id},
              {"createdDateTime", FormatIsoTime(p.created)},
              {"passwordCredentials", secrets},
              {"keyCredentials", keys}};
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

}  // namespace coffer::auth
