#include "sdk/pipeline.h"

#include <algorithm>
#include <random>
#include <thread>

#include "common/strings.h"
#include "http/url.h"
#include "sdk/wire.h"

namespace coffer {

bool Retryable(int status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

StatusOr<HttpResponse> SendAuthorized(
    HttpTransport& transport, const RetryOptions& retry, const HttpRequest& request,
    const std::function<StatusOr<std::string>(bool refresh)>& authorization) {
  bool challenged = false;
  std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::string header, authorization(challenged));
    HttpRequest sent = request;
    sent.headers.emplace_back("Authorization", std::move(header));
    StatusOr<HttpResponse> res = transport.Send(sent);
    if (res.ok() && res->status == 401 && !challenged) {
      // The resource may have changed (or the token been revoked): read the
      // challenge once more and try again, once.
      challenged = true;
      --attempt;
      continue;
    }
    challenged = false;
    bool transient = res.ok() ? Retryable(res->status)
                              : (res.status().code() == StatusCode::kUnavailable ||
                                 res.status().code() == StatusCode::kDeadlineExceeded);
    if (!transient || attempt >= retry.max_retries) {
      return res;
    }
    std::chrono::milliseconds delay =
        res.ok() ? RetryAfter(*res) : std::chrono::milliseconds::zero();
    if (delay.count() <= 0) {
      // Exponential back-off with jitter, as the Azure SDKs' retry policy.
      auto base = retry.initial_delay.count() << std::min(attempt, 16);
      std::uniform_real_distribution<double> jitter(0.8, 1.2);
      delay =
          std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(base) * jitter(rng)));
    }
    std::this_thread::sleep_for(std::min(delay, retry.max_delay));
  }
}

VaultChannel::VaultChannel(std::string vault_url, std::shared_ptr<TokenCredential> credential,
                           SecretClientOptions options, std::string challenge_path)
    : vault_url_(std::move(vault_url)),
      credential_(std::move(credential)),
      options_(std::move(options)),
      challenge_path_(std::move(challenge_path)) {
  while (!vault_url_.empty() && vault_url_.back() == '/') {
    vault_url_.pop_back();
  }
  if (options_.transport == nullptr) {
    options_.transport = MakeDefaultTransport(options_.transport_options);
  }
}

StatusOr<std::string> VaultChannel::Authorization(bool refresh_challenge) {
  std::string scope;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scope = scope_;
  }
  if (scope.empty() || refresh_challenge) {
    // Key Vault's challenge: a bodiless, unauthenticated request names the
    // resource to ask a token for.
    HttpRequest probe;
    probe.url = vault_url_ + challenge_path_ + "?api-version=" + options_.api_version;
    ASSIGN_OR_RETURN(HttpResponse res, options_.transport->Send(probe));
    ASSIGN_OR_RETURN(scope, ScopeFromChallenge(res, vault_url_));
    std::lock_guard<std::mutex> lock(mu_);
    scope_ = scope;
  }
  ASSIGN_OR_RETURN(AccessToken token, credential_->GetToken(scope));
  return "Bearer " + token.token;
}

StatusOr<HttpResponse> VaultChannel::Call(const std::string& method, const std::string& path,
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

StatusOr<Json> VaultChannel::CallJson(const std::string& method, const std::string& path,
                                      const std::string& body, int expected) {
  ASSIGN_OR_RETURN(HttpResponse res, Call(method, path, body));
  if (res.status != expected) {
    return ErrorFromResponse(res);
  }
  return ParseBody(res);
}

Status VaultChannel::ListPages(const std::string& first_path, const std::string& first_query,
                               const std::function<void(const Json&)>& each) {
  StatusOr<http::Url> base = http::ParseUrl(vault_url_);
  const std::string origin = base.ok() ? base->Origin() : "";
  std::string base_path = base.ok() ? std::string(base->Path()) : "";
  while (!base_path.empty() && base_path.back() == '/') {
    base_path.pop_back();
  }
  std::string path = first_path;
  std::string query = first_query;
  for (int page = 0; page < 10000; ++page) {
    ASSIGN_OR_RETURN(HttpResponse res, Call("GET", path, "", query));
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

void ReadDeletion(const Json& item, std::string* recovery_id, int64_t* deleted_on,
                  int64_t* scheduled_purge_date) {
  *recovery_id = StringMember(item, "recoveryId");
  if (item.contains("deletedDate") && item["deletedDate"].is_number_integer()) {
    *deleted_on = item["deletedDate"].get<int64_t>();
  }
  if (item.contains("scheduledPurgeDate") && item["scheduledPurgeDate"].is_number_integer()) {
    *scheduled_purge_date = item["scheduledPurgeDate"].get<int64_t>();
  }
}

}  // namespace coffer
