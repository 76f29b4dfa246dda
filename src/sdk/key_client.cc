#include "coffer/key_client.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "http/url.h"
#include "sdk/pipeline.h"
#include "sdk/wire.h"

namespace coffer {
namespace {

// SplitKeyId splits https://host/keys/name[/version]; the outputs stay empty
// for anything else.
void SplitKeyId(const std::string& kid, KeyProperties* p) {
  StatusOr<http::Url> url = http::ParseUrl(kid);
  if (!url.ok() || !url->tls() || url->Path() != url->path_and_query) {
    return;
  }
  auto parts = Split(std::string_view(url->path_and_query).substr(1), '/');
  if (parts.size() < 2 || parts.size() > 3 || parts[0] != "keys") {
    return;
  }
  p->vault_url = url->Origin();
  p->name = std::string(parts[1]);
  if (parts.size() == 3) {
    p->version = std::string(parts[2]);
  }
}

void ReadAttributes(const Json& item, KeyProperties* p) {
  p->managed =
      item.contains("managed") && item["managed"].is_boolean() && item["managed"].get<bool>();
  if (item.contains("attributes") && item["attributes"].is_object()) {
    const Json& a = item["attributes"];
    if (a.contains("enabled") && a["enabled"].is_boolean()) {
      p->enabled = a["enabled"].get<bool>();
    }
    auto seconds = [&](const char* name) -> std::optional<int64_t> {
      if (a.contains(name) && a[name].is_number_integer()) {
        return a[name].get<int64_t>();
      }
      return std::nullopt;
    };
    p->not_before = seconds("nbf");
    p->expires_on = seconds("exp");
    p->created_on = seconds("created").value_or(0);
    p->updated_on = seconds("updated").value_or(0);
    p->recovery_level = StringMember(a, "recoveryLevel");
  }
  if (item.contains("tags") && item["tags"].is_object()) {
    for (const auto& [k, v] : item["tags"].items()) {
      if (v.is_string()) {
        p->tags[k] = v.get<std::string>();
      }
    }
  }
}

}  // namespace

StatusOr<KeyVaultKey> ParseKeyBundle(const std::string& json) {
  auto body = ParseJson(json);
  if (!body || !body->is_object() || !body->contains("key") || !(*body)["key"].is_object() ||
      !(*body)["key"].contains("kid") || !(*body)["key"]["kid"].is_string()) {
    return InvalidArgumentError("not a Key Vault key bundle");
  }
  const Json& k = (*body)["key"];
  KeyVaultKey out;
  // SECURITY: only the public members are read; a private one (`d`, `p`,
  // ...) that a vault sent by mistake is never copied.
  out.key.kid = StringMember(k, "kid");
  out.key.kty = StringMember(k, "kty");
  out.key.n = StringMember(k, "n");
  out.key.e = StringMember(k, "e");
  out.key.crv = StringMember(k, "crv");
  out.key.x = StringMember(k, "x");
  out.key.y = StringMember(k, "y");
  if (k.contains("key_ops") && k["key_ops"].is_array()) {
    for (const Json& op : k["key_ops"]) {
      if (op.is_string()) {
        out.key.key_ops.push_back(op.get<std::string>());
      }
    }
  }
  out.properties.id = out.key.kid;
  SplitKeyId(out.key.kid, &out.properties);
  ReadAttributes(*body, &out.properties);
  return out;
}

KeyClient::KeyClient(std::string vault_url, std::shared_ptr<TokenCredential> credential,
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

StatusOr<std::string> KeyClient::Authorization(bool refresh_challenge) {
  std::string scope;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scope = scope_;
  }
  if (scope.empty() || refresh_challenge) {
    HttpRequest probe;
    probe.url = vault_url_ + "/keys?api-version=" + options_.api_version;
    ASSIGN_OR_RETURN(HttpResponse res, options_.transport->Send(probe));
    ASSIGN_OR_RETURN(scope, ScopeFromChallenge(res, vault_url_));
    std::lock_guard<std::mutex> lock(mu_);
    scope_ = scope;
  }
  ASSIGN_OR_RETURN(AccessToken token, credential_->GetToken(scope));
  return "Bearer " + token.token;
}

StatusOr<KeyVaultKey> KeyClient::GetKey(const std::string& name, const std::string& version) {
  RETURN_IF_ERROR(CheckName(name));
  HttpRequest req;
  req.url = vault_url_ + "/keys/" + PercentEncode(name) + "/" + PercentEncode(version) +
            "?api-version=" + options_.api_version;
  req.headers = {{"Accept", "application/json"}};
  ASSIGN_OR_RETURN(HttpResponse res,
                   SendAuthorized(*options_.transport, options_.retry, req,
                                  [this](bool refresh) { return Authorization(refresh); }));
  if (res.status != 200) {
    return ErrorFromResponse(res);
  }
  return ParseKeyBundle(res.body);
}

}  // namespace coffer
