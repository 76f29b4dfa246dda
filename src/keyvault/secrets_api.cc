#include "keyvault/secrets_api.h"

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

// RenderSecret writes a bundle or an item as JSON text. `with_version`
// selects the id form; deleted secrets get Key Vault's deletion fields.
// Written by hand rather than through a JSON tree: it is the hot path of
// every read. Tags are stored as validated compact JSON and copied as is.
void RenderSecret(std::string& out, const Secret& s, const http::Request& req, bool with_version) {
  const auto& r = s.record;
  std::string base = BaseUrl(req);
  out += "{\"id\":";
  AppendJsonString(out, base + "/secrets/" + r.name + (with_version ? "/" + r.version : ""));
  out += ",\"attributes\":{\"enabled\":";
  out += r.enabled ? "true" : "false";
  if (r.nbf) {
    out += ",\"nbf\":" + std::to_string(*r.nbf);
  }
  if (r.exp) {
    out += ",\"exp\":" + std::to_string(*r.exp);
  }
  out += ",\"created\":" + std::to_string(r.created);
  out += ",\"updated\":" + std::to_string(r.updated);
  out += ",\"recoverableDays\":" + std::to_string(s.recoverable_days);
  out += ",\"recoveryLevel\":";
  AppendJsonString(out, s.recovery_level);
  out += "}";
  if (!r.content_type.empty()) {
    out += ",\"contentType\":";
    AppendJsonString(out, r.content_type);
  }
  if (!r.tags_json.empty() && r.tags_json != "{}") {
    out += ",\"tags\":" + r.tags_json;
  }
  if (s.managed) {
    out += ",\"managed\":true,\"kid\":";
    AppendJsonString(out, base + "/keys/" + r.name + "/" + r.version);
  }
  if (s.deleted) {
    out += ",\"recoveryId\":";
    AppendJsonString(out, base + "/deletedsecrets/" + r.name);
    out += ",\"deletedDate\":" + std::to_string(s.deleted_date);
    out += ",\"scheduledPurgeDate\":" + std::to_string(s.scheduled_purge_date);
  }
  if (s.value) {
    out += ",\"value\":";
    AppendJsonString(out, *s.value);
  }
  out += "}";
}

http::Response Ok(const Json& body) {
  return http::JsonResponse(200, ToJson(body));
}

http::Response Ok(const Secret& s, const http::Request& req) {
  std::string body;
  body.reserve(512 + (s.value ? s.value->size() : 0));
  RenderSecret(body, s, req, true);
  return http::JsonResponse(200, std::move(body));
}

http::Response Answer(const StatusOr<Secret>& s, const http::Request& req) {
  return s.ok() ? Ok(*s, req) : Error(s.status());
}

http::Response ListResponse(const SecretList& list, const http::Request& req,
                            const std::string& path, int limit, bool with_version) {
  std::string body = "{\"value\":[";
  for (size_t i = 0; i < list.items.size(); ++i) {
    if (i > 0) {
      body += ',';
    }
    RenderSecret(body, list.items[i], req, with_version);
  }
  body += "],\"nextLink\":" + NextLink(req, path, list.next_cursor, limit) + "}";
  return http::JsonResponse(200, std::move(body));
}

// Fields shared by set and update.
Status ReadCommon(const Json& body, SecretPatch& patch) {
  if (auto it = body.find("contentType"); it != body.end() && !it->is_null()) {
    if (!it->is_string())
      return TypeError("contentType", "a string");
    patch.content_type = it->get<std::string>();
  }
  if (auto it = body.find("tags"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      return TypeError("tags", "an object of strings");
    patch.tags_json = ToJson(*it);
  }
  if (auto it = body.find("attributes"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      return TypeError("attributes", "an object");
    if (auto e = it->find("enabled"); e != it->end() && !e->is_null()) {
      if (!e->is_boolean())
        return TypeError("attributes.enabled", "a boolean");
      patch.enabled = e->get<bool>();
    }
    RETURN_IF_ERROR(ReadTime(*it, "nbf", patch.nbf));
    RETURN_IF_ERROR(ReadTime(*it, "exp", patch.exp));
  }
  return OkStatus();
}

// The sizes of a hash request's key: at least SHA-256's output, at most
// its block (a longer key would be hashed down first, RFC 2104).
constexpr size_t kHashKeyMinBytes = 32;
constexpr size_t kHashKeyMaxBytes = 64;

// ReadHashKey reads a hash request's `key`: base64url, padding optional, of
// 32 to 64 bytes. Other members are ignored, as in Key Vault's bodies.
// SECURITY: no message quotes the key, and a key of the wrong size is wiped
// before it is dropped.
StatusOr<std::string> ReadHashKey(const Json& body) {
  auto it = body.find("key");
  if (it == body.end() || !it->is_string()) {
    return TypeError("key", "a base64url string");
  }
  auto key = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!key) {
    return BadParameter("Property 'key' is not valid base64url.");
  }
  if (key->size() < kHashKeyMinBytes || key->size() > kHashKeyMaxBytes) {
    const size_t size = key->size();
    crypto::SecureWipe(*key);
    return BadParameter("Property 'key' must be 32 to 64 bytes; it is " + std::to_string(size) +
                        ".");
  }
  return std::move(*key);
}

}  // namespace

http::Response SecretsApi::ListLive(const VaultCall& call) {
  return List(call, false);
}

http::Response SecretsApi::ListDeleted(const VaultCall& call) {
  return List(call, true);
}

http::Response SecretsApi::List(const VaultCall& call, bool deleted) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  auto list = deleted ? service_.ListDeleted(call.vault, paging->cursor, paging->limit)
                      : service_.List(call.vault, paging->cursor, paging->limit);
  if (!list.ok()) {
    return Error(list.status());
  }
  return ListResponse(*list, call.request, deleted ? "/deletedsecrets" : "/secrets", paging->limit,
                      false);
}

http::Response SecretsApi::Restore(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  auto it = body->find("value");
  if (it == body->end() || !it->is_string()) {
    return Error(TypeError("value", "a base64url string"));
  }
  auto blob = Base64UrlDecode(it->get<std::string>());
  if (!blob) {
    return Error(BadParameter("Property 'value' is not valid base64url."));
  }
  return Answer(service_.Restore(call.vault, *blob), call.request);
}

http::Response SecretsApi::Set(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  auto v = body->find("value");
  if (v == body->end() || !v->is_string()) {
    return Error(TypeError("value", "a string"));
  }
  SecretPatch common;
  if (Status read = ReadCommon(*body, common); !read.ok()) {
    return Error(read);
  }
  SecretInput in;
  in.value = v->get<std::string>();
  in.content_type = common.content_type.value_or("");
  in.tags_json = common.tags_json.value_or("{}");
  in.enabled = common.enabled.value_or(true);
  in.nbf = common.nbf.value_or(std::nullopt);
  in.exp = common.exp.value_or(std::nullopt);
  return Answer(service_.Set(call.vault, std::string(call.params.Get("name")), std::move(in)),
                call.request);
}

http::Response SecretsApi::Get(const VaultCall& call) {
  return Answer(service_.Get(call.vault, std::string(call.params.Get("name")),
                             std::string(call.params.Get("version"))),
                call.request);
}

std::optional<http::Response> SecretsApi::GetCached(const VaultCall& call) {
  auto s = service_.TryGetCached(call.vault, std::string(call.params.Get("name")),
                                 std::string(call.params.Get("version")));
  if (!s) {
    return std::nullopt;
  }
  return Answer(std::move(*s), call.request);
}

http::Response SecretsApi::Update(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  SecretPatch patch;
  if (Status read = ReadCommon(*body, patch); !read.ok()) {
    return Error(read);
  }
  return Answer(service_.Update(call.vault, std::string(call.params.Get("name")),
                                std::string(call.params.Get("version")), patch),
                call.request);
}

http::Response SecretsApi::ListVersions(const VaultCall& call) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  std::string name(call.params.Get("name"));
  auto list = service_.ListVersions(call.vault, name, paging->cursor, paging->limit);
  if (!list.ok()) {
    return Error(list.status());
  }
  return ListResponse(*list, call.request, "/secrets/" + name + "/versions", paging->limit, true);
}

http::Response SecretsApi::Backup(const VaultCall& call) {
  auto blob = service_.Backup(call.vault, std::string(call.params.Get("name")));
  return blob.ok() ? Ok(Json{{"value", Base64UrlEncode(*blob)}}) : Error(blob.status());
}

// SECURITY: an HMAC under a key the caller chooses is an oracle for the
// value: whoever may ask can test guesses of a low-entropy value (a PIN, a
// word) offline against the answer. So SecretHash needs what reading the
// value needs (secrets get, getSecret/action; authz/permissions.cc), and is
// a convenience for comparing values without moving them, not a weaker
// right. The key and the HMAC go to no log, and the value read here never
// leaves this function.
http::Response SecretsApi::Hash(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  auto key = ReadHashKey(*body);
  if (!key.ok()) {
    return Error(key.status());
  }
  // The same read as Get: disabled versions, certificates' secrets and
  // missing versions answer as Get answers them.
  auto secret = service_.Get(call.vault, std::string(call.params.Get("name")),
                             std::string(call.params.Get("version")));
  if (!secret.ok() || !secret->value) {
    crypto::SecureWipe(*key);
    return Error(secret.ok() ? InternalError("The secret's value could not be read.")
                             : secret.status());
  }
  std::string mac = crypto::HmacSha256(*key, *secret->value);
  crypto::SecureWipe(*key);
  crypto::SecureWipe(*secret->value);
  const auto& r = secret->record;
  return Ok(Json{{"id", BaseUrl(call.request) + "/secrets/" + r.name + "/" + r.version},
                 {"alg", "HS256"},
                 {"value", Base64UrlEncode(mac)}});
}

http::Response SecretsApi::Delete(const VaultCall& call) {
  return Answer(service_.Delete(call.vault, std::string(call.params.Get("name"))), call.request);
}

http::Response SecretsApi::GetDeleted(const VaultCall& call) {
  return Answer(service_.GetDeleted(call.vault, std::string(call.params.Get("name"))),
                call.request);
}

http::Response SecretsApi::Purge(const VaultCall& call) {
  Status s = service_.Purge(call.vault, std::string(call.params.Get("name")));
  return s.ok() ? http::EmptyResponse(204) : Error(s);
}

http::Response SecretsApi::Recover(const VaultCall& call) {
  return Answer(service_.Recover(call.vault, std::string(call.params.Get("name"))), call.request);
}

std::vector<VaultOperation> SecretsApi::Operations() {
  using Handle = http::Response (SecretsApi::*)(const VaultCall&);
  auto op = [this](std::string_view method, std::string_view pattern, std::string_view operation,
                   std::string_view object, Handle handle, bool cached = false) {
    VaultOperation o =
        ApiRoute(method, pattern, operation, object,
                 [this, handle](const VaultCall& call) { return (this->*handle)(call); });
    if (cached) {
      o.fast = [this](const VaultCall& call) -> std::optional<http::Response> {
        if (call.request.Query("api-version").empty()) {
          return std::nullopt;
        }
        return GetCached(call);
      };
    }
    return o;
  };
  // A hash reads and changes nothing: audited as a read, as a key's
  // cryptographic operations are.
  auto hash = [&op](std::string_view pattern) {
    VaultOperation o = op("POST", pattern, "SecretHash", "name", &SecretsApi::Hash);
    o.changes_nothing = true;
    return o;
  };
  // Key Vault's secrets REST surface (reference azure-sdk-compat.md §4.1).
  return {
      op("GET", "/secrets", "SecretList", "", &SecretsApi::ListLive),
      op("POST", "/secrets/restore", "SecretRestore", "", &SecretsApi::Restore),
      op("PUT", "/secrets/{name}", "SecretSet", "name", &SecretsApi::Set),
      op("GET", "/secrets/{name}", "SecretGet", "name", &SecretsApi::Get, true),
      op("DELETE", "/secrets/{name}", "SecretDelete", "name", &SecretsApi::Delete),
      op("GET", "/secrets/{name}/versions", "SecretListVersions", "name",
         &SecretsApi::ListVersions),
      op("POST", "/secrets/{name}/backup", "SecretBackup", "name", &SecretsApi::Backup),
      // Coffer's own (docs/secrets.md): literal last segments, so they never
      // meet GET/PATCH /secrets/{name}/{version}, whose versions are hex.
      hash("/secrets/{name}/hash"),
      hash("/secrets/{name}/{version?}/hash"),
      op("GET", "/secrets/{name}/{version}", "SecretGet", "name", &SecretsApi::Get, true),
      // An empty version ("/secrets/{name}/") names the latest.
      op("PATCH", "/secrets/{name}", "SecretUpdate", "name", &SecretsApi::Update),
      op("PATCH", "/secrets/{name}/{version}", "SecretUpdate", "name", &SecretsApi::Update),
      op("GET", "/deletedsecrets", "SecretListDeleted", "", &SecretsApi::ListDeleted),
      op("GET", "/deletedsecrets/{name}", "SecretGetDeleted", "name", &SecretsApi::GetDeleted),
      op("DELETE", "/deletedsecrets/{name}", "SecretPurge", "name", &SecretsApi::Purge),
      op("POST", "/deletedsecrets/{name}/recover", "SecretRecover", "name", &SecretsApi::Recover),
  };
}

}  // namespace coffer::keyvault
