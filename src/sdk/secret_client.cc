#include "coffer/secret_client.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "http/url.h"
#include "sdk/pipeline.h"
#include "sdk/wire.h"

namespace coffer {
namespace {

SecretProperties ParseProperties(const Json& item) {
  SecretProperties p;
  p.id = StringMember(item, "id");
  SplitObjectId(p.id, &p.vault_url, &p.name, &p.version);
  p.content_type = StringMember(item, "contentType");
  p.managed =
      item.contains("managed") && item["managed"].is_boolean() && item["managed"].get<bool>();
  if (item.contains("attributes") && item["attributes"].is_object()) {
    const Json& a = item["attributes"];
    if (a.contains("enabled") && a["enabled"].is_boolean()) {
      p.enabled = a["enabled"].get<bool>();
    }
    auto seconds = [&](const char* name) -> std::optional<int64_t> {
      if (a.contains(name) && a[name].is_number_integer()) {
        return a[name].get<int64_t>();
      }
      return std::nullopt;
    };
    p.not_before = seconds("nbf");
    p.expires_on = seconds("exp");
    p.created_on = seconds("created").value_or(0);
    p.updated_on = seconds("updated").value_or(0);
    p.recovery_level = StringMember(a, "recoveryLevel");
  }
  if (item.contains("tags") && item["tags"].is_object()) {
    for (const auto& [k, v] : item["tags"].items()) {
      if (v.is_string()) {
        p.tags[k] = v.get<std::string>();
      }
    }
  }
  return p;
}

DeletedSecret ParseDeleted(const Json& item) {
  DeletedSecret d;
  d.secret.properties = ParseProperties(item);
  d.secret.value = StringMember(item, "value");
  d.recovery_id = StringMember(item, "recoveryId");
  if (item.contains("deletedDate") && item["deletedDate"].is_number_integer()) {
    d.deleted_on = item["deletedDate"].get<int64_t>();
  }
  if (item.contains("scheduledPurgeDate") && item["scheduledPurgeDate"].is_number_integer()) {
    d.scheduled_purge_date = item["scheduledPurgeDate"].get<int64_t>();
  }
  return d;
}

StatusOr<Json> ParseBody(const HttpResponse& res) {
  auto body = ParseJson(res.body);
  if (!body || !body->is_object()) {
    return InternalError("the vault answered HTTP " + std::to_string(res.status) +
                         " with a body that is not a JSON object");
  }
  return *body;
}

Json AttributesJson(std::optional<bool> enabled, std::optional<int64_t> nbf,
                    std::optional<int64_t> exp) {
  Json a = Json::object();
  if (enabled) {
    a["enabled"] = *enabled;
  }
  if (nbf) {
    a["nbf"] = *nbf;
  }
  if (exp) {
    a["exp"] = *exp;
  }
  return a;
}

Json TagsJson(const std::map<std::string, std::string>& tags) {
  Json t = Json::object();
  for (const auto& [k, v] : tags) {
    t[k] = v;
  }
  return t;
}

}  // namespace

StatusOr<KeyVaultSecret> ParseSecretBundle(const std::string& json) {
  auto body = ParseJson(json);
  if (!body || !body->is_object() || !(*body)["id"].is_string()) {
    return InvalidArgumentError("not a Key Vault secret bundle");
  }
  KeyVaultSecret s;
  s.properties = ParseProperties(*body);
  s.value = StringMember(*body, "value");
  return s;
}

SecretClient::SecretClient(std::string vault_url, std::shared_ptr<TokenCredential> credential,
                           SecretClientOptions options)
    : vault_url_(std::move(vault_url)),
      credential_(std::move(credential)),
      options_(std::move(options)) {
  while (!vault_url_.empty() && vault_url_.back() == '/') {
    vault_url_.pop_back();
  }
  if (options_.transport == nullptr) {
    options_.transport = MakeDefaultTransport(options_.transport_options);
  }
}

StatusOr<std::string> SecretClient::Authorization(bool refresh_challenge) {
  std::string scope;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scope = scope_;
  }
  if (scope.empty() || refresh_challenge) {
    // Key Vault's challenge: a bodiless, unauthenticated request names the
    // resource to ask a token for.
    HttpRequest probe;
    probe.url = vault_url_ + "/secrets?api-version=" + options_.api_version;
    ASSIGN_OR_RETURN(HttpResponse res, options_.transport->Send(probe));
    ASSIGN_OR_RETURN(scope, ScopeFromChallenge(res, vault_url_));
    std::lock_guard<std::mutex> lock(mu_);
    scope_ = scope;
  }
  ASSIGN_OR_RETURN(AccessToken token, credential_->GetToken(scope));
  return "Bearer " + token.token;
}

StatusOr<HttpResponse> SecretClient::Call(const std::string& method, const std::string& path,
                                          const std::string& body, const std::string& query) {
  HttpRequest req;
  req.method = method;
  req.url = vault_url_ + path + "?api-version=" + options_.api_version + query;
  req.body = body;
  req.headers = {{"Accept", "application/json"}};
  if (!body.empty()) {
    req.headers.emplace_back("Content-Type", "application/json");
  }
  return SendAuthorized(*options_.transport, options_.retry, req,
                        [this](bool refresh) { return Authorization(refresh); });
}

StatusOr<KeyVaultSecret> SecretClient::GetSecret(const std::string& name,
                                                 const std::string& version) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse res,
                   Call("GET", "/secrets/" + PercentEncode(name) + "/" + PercentEncode(version)));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  return ParseSecretBundle(res.body);
}

StatusOr<KeyVaultSecret> SecretClient::SetSecret(const std::string& name, const std::string& value,
                                                 const SetSecretOptions& options) {
  RETURN_IF_ERROR(CheckName(name));
  Json body = {{"value", value}};
  if (!options.content_type.empty()) {
    body["contentType"] = options.content_type;
  }
  if (!options.tags.empty()) {
    body["tags"] = TagsJson(options.tags);
  }
  Json attributes = AttributesJson(options.enabled, options.not_before, options.expires_on);
  if (!attributes.empty()) {
    body["attributes"] = attributes;
  }
  ASSIGN_OR_RETURN(HttpResponse res, Call("PUT", "/secrets/" + PercentEncode(name), ToJson(body)));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  return ParseSecretBundle(res.body);
}

StatusOr<SecretProperties> SecretClient::UpdateSecretProperties(const SecretProperties& p) {
  RETURN_IF_ERROR(CheckName(p.name));
  Json body = {{"attributes", AttributesJson(p.enabled, p.not_before, p.expires_on)},
               {"tags", TagsJson(p.tags)}};
  if (!p.content_type.empty()) {
    body["contentType"] = p.content_type;
  }
  ASSIGN_OR_RETURN(
      HttpResponse res,
      Call("PATCH", "/secrets/" + PercentEncode(p.name) + "/" + PercentEncode(p.version),
           ToJson(body)));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  ASSIGN_OR_RETURN(Json json, ParseBody(res));
  return ParseProperties(json);
}

namespace {

// ListPages follows nextLink pages of a list answer, calling `each` per item.
// SECURITY: a nextLink is followed only on the vault's own origin, so the
// bearer token never goes to a host the caller did not name.
template <typename Call>
Status ListPages(const std::string& vault_url, const std::string& first_path,
                 const std::string& first_query, Call call,
                 const std::function<void(const Json&)>& each) {
  StatusOr<http::Url> base = http::ParseUrl(vault_url);
  const std::string origin = base.ok() ? base->Origin() : "";
  std::string base_path = base.ok() ? std::string(base->Path()) : "";
  while (!base_path.empty() && base_path.back() == '/') {
    base_path.pop_back();
  }
  std::string path = first_path;
  std::string query = first_query;
  for (int page = 0; page < 10000; ++page) {
    ASSIGN_OR_RETURN(HttpResponse res, call(path, query));
    if (res.status != 200) {
      return ErrorFromResponse(res);
    }
    ASSIGN_OR_RETURN(Json json, ParseBody(res));
    if (json.contains("value") && json["value"].is_array()) {
      for (const Json& item : json["value"]) {
        if (item.is_object()) {
          each(item);
        }
      }
    }
    std::string next = StringMember(json, "nextLink");
    if (next.empty()) {
      return OkStatus();
    }
    StatusOr<http::Url> link = http::ParseUrl(next);
    if (!link.ok() || origin.empty() || link->Origin() != origin ||
        !StartsWith(link->path_and_query, base_path + "/")) {
      return InternalError("the vault's nextLink leaves the vault's origin; not followed");
    }
    std::string rest = link->path_and_query.substr(base_path.size());
    size_t q = rest.find('?');
    path = rest.substr(0, q);
    query.clear();
    if (q != std::string::npos) {
      // Keep every parameter of the link but api-version, which Call adds.
      for (std::string_view part : Split(std::string_view(rest).substr(q + 1), '&')) {
        if (!part.empty() && !StartsWith(part, "api-version=") &&
            !StartsWith(part, "api%2Dversion=") && !StartsWith(part, "api%2dversion=")) {
          query += "&" + std::string(part);
        }
      }
    }
  }
  return InternalError("the vault's list did not end after 10,000 pages");
}

}  // namespace

StatusOr<std::vector<SecretProperties>> SecretClient::ListPropertiesOfSecrets() {
  std::vector<SecretProperties> out;
  RETURN_IF_ERROR(ListPages(
      vault_url_, "/secrets", "&maxresults=25",
      [this](const std::string& path, const std::string& query) {
        return Call("GET", path, "", query);
      },
      [&](const Json& item) { out.push_back(ParseProperties(item)); }));
  return out;
}

StatusOr<std::vector<SecretProperties>> SecretClient::ListPropertiesOfSecretVersions(
    const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  std::vector<SecretProperties> out;
  RETURN_IF_ERROR(ListPages(
      vault_url_, "/secrets/" + PercentEncode(name) + "/versions", "&maxresults=25",
      [this](const std::string& path, const std::string& query) {
        return Call("GET", path, "", query);
      },
      [&](const Json& item) { out.push_back(ParseProperties(item)); }));
  return out;
}

StatusOr<DeletedSecret> SecretClient::DeleteSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse res, Call("DELETE", "/secrets/" + PercentEncode(name)));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  ASSIGN_OR_RETURN(Json json, ParseBody(res));
  return ParseDeleted(json);
}

StatusOr<DeletedSecret> SecretClient::GetDeletedSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse res, Call("GET", "/deletedsecrets/" + PercentEncode(name)));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  ASSIGN_OR_RETURN(Json json, ParseBody(res));
  return ParseDeleted(json);
}

StatusOr<std::vector<DeletedSecret>> SecretClient::ListDeletedSecrets() {
  std::vector<DeletedSecret> out;
  RETURN_IF_ERROR(ListPages(
      vault_url_, "/deletedsecrets", "&maxresults=25",
      [this](const std::string& path, const std::string& query) {
        return Call("GET", path, "", query);
      },
      [&](const Json& item) { out.push_back(ParseDeleted(item)); }));
  return out;
}

StatusOr<SecretProperties> SecretClient::RecoverDeletedSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse res,
                   Call("POST", "/deletedsecrets/" + PercentEncode(name) + "/recover"));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  ASSIGN_OR_RETURN(Json json, ParseBody(res));
  return ParseProperties(json);
}

Status SecretClient::PurgeDeletedSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse res, Call("DELETE", "/deletedsecrets/" + PercentEncode(name)));
  if (res.status != 204 && res.status != 200) {
    return ErrorFromResponse(res);
  }
  return OkStatus();
}

StatusOr<std::string> SecretClient::BackupSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse res, Call("POST", "/secrets/" + PercentEncode(name) + "/backup"));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  ASSIGN_OR_RETURN(Json json, ParseBody(res));
  return StringMember(json, "value");
}

StatusOr<SecretProperties> SecretClient::RestoreSecretBackup(const std::string& backup) {
  ASSIGN_OR_RETURN(HttpResponse res,
                   Call("POST", "/secrets/restore", ToJson(Json{{"value", backup}})));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  ASSIGN_OR_RETURN(Json json, ParseBody(res));
  return ParseProperties(json);
}

StatusOr<std::string> SecretClient::Watch(const WatchOptions& options,
                                          const std::function<bool(const SecretChange&)>& on_change,
                                          const std::atomic<bool>* cancel) {
  std::string query;
  if (!options.names.empty()) {
    std::string names;
    for (const std::string& n : options.names) {
      RETURN_IF_ERROR(CheckName(n));
      names += (names.empty() ? "" : ",") + n;
    }
    query += "&names=" + PercentEncode(names);
  }
  if (!options.from.empty()) {
    query += "&from=" + PercentEncode(options.from);
  }
  SseParser parser;
  std::string last_token = options.from;
  bool stopped = false;
  bool challenged = false;
  for (;;) {
    ASSIGN_OR_RETURN(std::string authorization, Authorization(challenged));
    HttpRequest req;
    req.url = vault_url_ + "/coffer/watch?api-version=" + options_.api_version + query;
    req.headers = {{"Accept", "text/event-stream"}, {"Authorization", authorization}};
    auto on_data = [&](std::string_view piece) {
      Status fed = parser.Feed(piece, [&](const SseEvent& e) {
        SecretChange change = ChangeFromEvent(e);
        if (!change.token.empty()) {
          last_token = change.token;
        }
        if (!on_change(change)) {
          stopped = true;
        }
        return !stopped;
      });
      return fed.ok() && !stopped;
    };
    ASSIGN_OR_RETURN(HttpResponse res, options_.transport->Stream(req, on_data, cancel));
    if (res.status == 401 && !challenged) {
      challenged = true;
      continue;
    }
    if (res.status / 100 != 2) {
      return ErrorFromResponse(res);
    }
    if (parser.overflowed()) {
      return InternalError("the watch stream sent an event longer than 1 MiB");
    }
    if (!stopped && (cancel == nullptr || !cancel->load())) {
      return UnavailableError("the watch stream of " + vault_url_ + " ended");
    }
    return last_token;
  }
}

}  // namespace coffer
