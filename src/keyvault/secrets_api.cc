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

Json Attributes(const Secret& s) {
  const auto& r = s.record;
  Json a = {{"enabled", r.enabled},
            {"created", r.created},
            {"updated", r.updated},
            {"recoverableDays", s.recoverable_days},
            {"recoveryLevel", s.recovery_level}};
  if (r.nbf)
    a["nbf"] = *r.nbf;
  if (r.exp)
    a["exp"] = *r.exp;
  return a;
}

// SecretJson renders a bundle or an item. `with_version` selects the id
// form; deleted secrets get Key Vault's deletion fields.
Json SecretJson(const Secret& s, const http::Request& req, bool with_version) {
  const auto& r = s.record;
  std::string id = Base(req) + "/secrets/" + r.name;
  if (with_version) {
    id += "/" + r.version;
  }
  Json j = {{"id", id}, {"attributes", Attributes(s)}};
  if (s.value)
    j["value"] = *s.value;
  if (!r.content_type.empty())
    j["contentType"] = r.content_type;
  auto tags = ParseJson(r.tags_json, 2);
  if (tags && tags->is_object() && !tags->empty())
    j["tags"] = *tags;
  if (s.deleted) {
    j["recoveryId"] = Base(req) + "/deletedsecrets/" + r.name;
    j["deletedDate"] = s.deleted_date;
    j["scheduledPurgeDate"] = s.scheduled_purge_date;
  }
  return j;
}

http::Response Ok(const Json& body) {
  return http::JsonResponse(200, ToJson(body));
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
  Json items = Json::array();
  for (const auto& s : list.items) {
    items.push_back(SecretJson(s, req, with_version));
  }
  Json body = {{"value", items}, {"nextLink", nullptr}};
  if (!list.next_cursor.empty()) {
    std::string version(req.Query("api-version"));
    body["nextLink"] = Base(req) + path + "?api-version=" + PercentEncode(version) +
                       "&$skiptoken=" + Base64UrlEncode(kSkipTokenPrefix + list.next_cursor) +
                       "&maxresults=" + std::to_string(limit);
  }
  return Ok(body);
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

std::optional<http::Response> SecretsApi::TryFast(const std::string& vault,
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
  return s->ok() ? Ok(SecretJson(**s, req, true)) : Error(s->status());
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
    return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
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
      return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
    }
    if (m == "GET") {
      auto s = service_.Get(vault, name, "");
      return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
    }
    if (m == "DELETE") {
      auto s = service_.Delete(vault, name);
      return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
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
      return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
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
      return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
    }
    return method_not_allowed();
  }

  if (deleted && seg.size() == 2) {
    const std::string& name = seg[1];
    if (m == "GET") {
      auto s = service_.GetDeleted(vault, name);
      return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
    }
    if (m == "DELETE") {
      Status s = service_.Purge(vault, name);
      if (!s.ok())
        return Error(s);
      http::Response r;
      r.status = 204;
      return r;
    }
    return method_not_allowed();
  }

  if (deleted && seg.size() == 3 && seg[2] == "recover") {
    if (m != "POST")
      return method_not_allowed();
    auto s = service_.Recover(vault, seg[1]);
    return s.ok() ? Ok(SecretJson(*s, req, true)) : Error(s.status());
  }

  return Error(NotFoundError("The requested path does not exist on this vault.", "NotFound"));
}

}  // namespace coffer::keyvault
