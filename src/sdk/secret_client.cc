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
  SplitObjectId(p.id, "secrets", &p.vault_url, &p.name, &p.version);
  p.content_type = StringMember(item, "contentType");
  p.key_id = StringMember(item, "kid");
  ReadObjectProperties(item, &p);
  return p;
}

DeletedSecret ParseDeleted(const Json& item) {
  DeletedSecret d;
  d.secret.properties = ParseProperties(item);
  d.secret.value = StringMember(item, "value");
  ReadDeletion(item, &d.recovery_id, &d.deleted_on, &d.scheduled_purge_date);
  return d;
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
    : channel_(std::make_shared<VaultChannel>(std::move(vault_url), std::move(credential),
                                              std::move(options), "/secrets")) {}

const std::string& SecretClient::vault_url() const {
  return channel_->vault_url();
}

StatusOr<HttpResponse> SecretClient::Call(const std::string& method, const std::string& path,
                                          const std::string& body, const std::string& query) {
  return channel_->Call(method, path, body, query);
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
      Json json, channel_->CallJson(
                     "PATCH", "/secrets/" + PercentEncode(p.name) + "/" + PercentEncode(p.version),
                     ToJson(body)));
  return ParseProperties(json);
}

StatusOr<std::vector<SecretProperties>> SecretClient::ListPropertiesOfSecrets() {
  std::vector<SecretProperties> out;
  RETURN_IF_ERROR(channel_->ListPages("/secrets", "&maxresults=25", [&](const Json& item) {
    out.push_back(ParseProperties(item));
  }));
  return out;
}

StatusOr<std::vector<SecretProperties>> SecretClient::ListPropertiesOfSecretVersions(
    const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  std::vector<SecretProperties> out;
  RETURN_IF_ERROR(
      channel_->ListPages("/secrets/" + PercentEncode(name) + "/versions", "&maxresults=25",
                          [&](const Json& item) { out.push_back(ParseProperties(item)); }));
  return out;
}

StatusOr<DeletedSecret> SecretClient::DeleteSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("DELETE", "/secrets/" + PercentEncode(name)));
  return ParseDeleted(json);
}

StatusOr<DeletedSecret> SecretClient::GetDeletedSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(Json json, channel_->CallJson("GET", "/deletedsecrets/" + PercentEncode(name)));
  return ParseDeleted(json);
}

StatusOr<std::vector<DeletedSecret>> SecretClient::ListDeletedSecrets() {
  std::vector<DeletedSecret> out;
  RETURN_IF_ERROR(channel_->ListPages("/deletedsecrets", "&maxresults=25", [&](const Json& item) {
    out.push_back(ParseDeleted(item));
  }));
  return out;
}

StatusOr<SecretProperties> SecretClient::RecoverDeletedSecret(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(
      Json json, channel_->CallJson("POST", "/deletedsecrets/" + PercentEncode(name) + "/recover"));
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
  ASSIGN_OR_RETURN(Json json,
                   channel_->CallJson("POST", "/secrets/" + PercentEncode(name) + "/backup"));
  return StringMember(json, "value");
}

StatusOr<SecretProperties> SecretClient::RestoreSecretBackup(const std::string& backup) {
  ASSIGN_OR_RETURN(Json json,
                   channel_->CallJson("POST", "/secrets/restore", ToJson(Json{{"value", backup}})));
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
    ASSIGN_OR_RETURN(std::string authorization, channel_->Authorization(challenged));
    HttpRequest req;
    req.url = channel_->vault_url() +
              "/coffer/watch?api-version=" + channel_->options().api_version + query;
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
    ASSIGN_OR_RETURN(HttpResponse res, channel_->options().transport->Stream(req, on_data, cancel));
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
      return UnavailableError("the watch stream of " + channel_->vault_url() + " ended");
    }
    return last_token;
  }
}

}  // namespace coffer
