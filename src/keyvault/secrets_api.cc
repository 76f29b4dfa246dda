#include "keyvault/secrets_api.h"

#include <charconv>

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::keyvault {
namespace {

constexpr int kDefaultPageSize = 25;
constexpr int kMaxPageSize = 25;
constexpr char kSkipTokenPrefix[] = "c1:";

Status BadParameter(const std::string& message) {
  return InvalidArgumentError(message, "BadParameter");
}

http::Response Error(const Status& s) {
  return http::ErrorResponse(s);
}

std::string Base(const http::Request& r) {
  return "https://" + r.host;
}

// RenderSecret writes a bundle or an item as JSON text. `with_version`
// selects the id form; deleted secrets get Key Vault's deletion fields.
// Written by hand rather than through a JSON tree: it is the hot path of
// every read. Tags are stored as validated compact JSON and copied as is.
void RenderSecret(std::string& out, const Secret& s, const http::Request& req, bool with_version) {
  const auto& r = s.record;
  std::string base = Base(req);
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

// Paging: `maxresults` 1-25 and an opaque `$skiptoken`.
struct Paging {
  int limit = kDefaultPageSize;
  std::string cursor;
};

StatusOr<Paging> ReadPaging(const http::Request& req) {
  Paging p;
  std::string_view max = req.Query("maxresults");
  if (!max.empty()) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(max.data(), max.data() + max.size(), n);
    if (ec != std::errc() || ptr != max.data() + max.size() || n < 1 || n > kMaxPageSize) {
      return BadParameter("maxresults must be an integer from 1 to 25.");
    }
    p.limit = n;
  }
  std::string_view token = req.Query("$skiptoken");
  if (!token.empty()) {
    auto decoded = Base64UrlDecode(token);
    if (!decoded || !StartsWith(*decoded, kSkipTokenPrefix)) {
      return BadParameter("$skiptoken is not valid.");
    }
    p.cursor = decoded->substr(sizeof(kSkipTokenPrefix) - 1);
  }
  return p;
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
  body += "],\"nextLink\":";
  if (list.next_cursor.empty()) {
    body += "null";
  } else {
    std::string version(req.Query("api-version"));
    AppendJsonString(body,
                     Base(req) + path + "?api-version=" + PercentEncode(version) +
                         "&$skiptoken=" + Base64UrlEncode(kSkipTokenPrefix + list.next_cursor) +
                         "&maxresults=" + std::to_string(limit));
  }
  body += "}";
  return http::JsonResponse(200, std::move(body));
}

StatusOr<Json> ParseBody(const http::Request& req) {
  if (req.body.empty()) {
    return BadParameter("The request body is missing.");
  }
  auto body = ParseJson(req.body);
  if (!body || !body->is_object()) {
    return BadParameter("The request body is not a valid JSON object.");
  }
  return *body;
}

Status TypeError(const std::string& field, const char* expected) {
  return BadParameter("Property '" + field + "' must be " + expected + ".");
}

// Reads nbf/exp: absent -> nullopt; null -> inner nullopt; integer -> value.
Status ReadTime(const Json& attrs, const char* field, std::optional<std::optional<int64_t>>& out) {
  auto it = attrs.find(field);
  if (it == attrs.end()) {
    return OkStatus();
  }
  if (it->is_null()) {
    out = std::optional<int64_t>();
    return OkStatus();
  }
  if (!it->is_number_integer()) {
    return TypeError(std::string("attributes.") + field, "an integer (Unix seconds)");
  }
  out = std::optional<int64_t>(it->get<int64_t>());
  return OkStatus();
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

}  // namespace

std::optional<http::Response> SecretsApi::TryFast(const std::shared_ptr<const OpenVault>& vault,
                                                  const http::Request& req) {
  const auto& seg = req.segments;
  if (req.method != "GET" || seg.size() < 2 || seg.size() > 3 || seg[0] != "secrets" ||
      req.Query("api-version").empty()) {
    return std::nullopt;
  }
  const std::string& version = seg.size() == 3 ? seg[2] : std::string();
  if (version == "versions" || seg[1] == "restore") {
    return std::nullopt;
  }
  auto s = service_.TryGetCached(vault, seg[1], version);
  if (!s) {
    return std::nullopt;
  }
  return s->ok() ? Ok(**s, req) : Error(s->status());
}

http::Response SecretsApi::Handle(const std::string& vault, const http::Request& req) {
  const auto& seg = req.segments;
  const std::string& m = req.method;
  if (req.Query("api-version").empty()) {
    return Error(BadParameter("The 'api-version' query parameter is missing."));
  }
  auto method_not_allowed = [&] {
    http::Response r = Error(BadParameter("Method " + m + " is not allowed on this path."));
    r.status = 405;
    return r;
  };
  bool secrets = !seg.empty() && seg[0] == "secrets";
  bool deleted = !seg.empty() && seg[0] == "deletedsecrets";

  // GET /secrets and GET /deletedsecrets (a trailing slash is tolerated).
  if ((secrets || deleted) && (seg.size() == 1 || (seg.size() == 2 && seg[1].empty()))) {
    if (m != "GET")
      return method_not_allowed();
    auto paging = ReadPaging(req);
    if (!paging.ok())
      return Error(paging.status());
    auto list = secrets ? service_.List(vault, paging->cursor, paging->limit)
                        : service_.ListDeleted(vault, paging->cursor, paging->limit);
    if (!list.ok())
      return Error(list.status());
    return ListResponse(*list, req, secrets ? "/secrets" : "/deletedsecrets", paging->limit, false);
  }

  if (secrets && seg.size() == 2 && seg[1] == "restore") {
    if (m != "POST")
      return method_not_allowed();
    auto body = ParseBody(req);
    if (!body.ok())
      return Error(body.status());
    auto it = body->find("value");
    if (it == body->end() || !it->is_string()) {
      return Error(TypeError("value", "a base64url string"));
    }
    auto blob = Base64UrlDecode(it->get<std::string>());
    if (!blob)
      return Error(BadParameter("Property 'value' is not valid base64url."));
    auto s = service_.Restore(vault, *blob);
    return s.ok() ? Ok(*s, req) : Error(s.status());
  }

  if (secrets && seg.size() == 2) {
    const std::string& name = seg[1];
    if (m == "PUT") {
      auto body = ParseBody(req);
      if (!body.ok())
        return Error(body.status());
      auto v = body->find("value");
      if (v == body->end() || !v->is_string())
        return Error(TypeError("value", "a string"));
      SecretPatch common;
      Status read = ReadCommon(*body, common);
      if (!read.ok())
        return Error(read);
      SecretInput in;
      in.value = v->get<std::string>();
      in.content_type = common.content_type.value_or("");
      in.tags_json = common.tags_json.value_or("{}");
      in.enabled = common.enabled.value_or(true);
      in.nbf = common.nbf.value_or(std::nullopt);
      in.exp = common.exp.value_or(std::nullopt);
      auto s = service_.Set(vault, name, std::move(in));
      return s.ok() ? Ok(*s, req) : Error(s.status());
    }
    if (m == "GET") {
      auto s = service_.Get(vault, name, "");
      return s.ok() ? Ok(*s, req) : Error(s.status());
    }
    if (m == "DELETE") {
      auto s = service_.Delete(vault, name);
      return s.ok() ? Ok(*s, req) : Error(s.status());
    }
    return method_not_allowed();
  }

  if (secrets && seg.size() == 3) {
    const std::string& name = seg[1];
    const std::string& third = seg[2];
    if (third == "versions") {
      if (m != "GET")
        return method_not_allowed();
      auto paging = ReadPaging(req);
      if (!paging.ok())
        return Error(paging.status());
      auto list = service_.ListVersions(vault, name, paging->cursor, paging->limit);
      if (!list.ok())
        return Error(list.status());
      return ListResponse(*list, req, "/secrets/" + name + "/versions", paging->limit, true);
    }
    if (third == "backup") {
      if (m != "POST")
        return method_not_allowed();
      auto blob = service_.Backup(vault, name);
      return blob.ok() ? Ok(Json{{"value", Base64UrlEncode(*blob)}}) : Error(blob.status());
    }
    if (m == "GET") {
      auto s = service_.Get(vault, name, third);
      return s.ok() ? Ok(*s, req) : Error(s.status());
    }
    if (m == "PATCH") {
      auto body = ParseBody(req);
      if (!body.ok())
        return Error(body.status());
      SecretPatch patch;
      Status read = ReadCommon(*body, patch);
      if (!read.ok())
        return Error(read);
      auto s = service_.Update(vault, name, third, patch);
      return s.ok() ? Ok(*s, req) : Error(s.status());
    }
    return method_not_allowed();
  }

  if (deleted && seg.size() == 2) {
    const std::string& name = seg[1];
    if (m == "GET") {
      auto s = service_.GetDeleted(vault, name);
      return s.ok() ? Ok(*s, req) : Error(s.status());
    }
    if (m == "DELETE") {
      Status s = service_.Purge(vault, name);
      if (!s.ok())
        return Error(s);
      return http::EmptyResponse(204);
    }
    return method_not_allowed();
  }

  if (deleted && seg.size() == 3 && seg[2] == "recover") {
    if (m != "POST")
      return method_not_allowed();
    auto s = service_.Recover(vault, seg[1]);
    return s.ok() ? Ok(*s, req) : Error(s.status());
  }

  return Error(NotFoundError("The requested path does not exist on this vault.", "NotFound"));
}

}  // namespace coffer::keyvault
