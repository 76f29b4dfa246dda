#include "coffer/credentials.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "crypto/rsa_key.h"
#include "crypto/x509.h"

namespace coffer {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string StripSlashes(std::string s) {
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  return s;
}

// ResourceOf turns a scope into the v1 `resource` the managed-identity
// endpoints take ("https://vault.azure.net/.default" -> "https://vault.azure.net").
std::string ResourceOf(const std::string& scope) {
  constexpr std::string_view kDefault = "/.default";
  if (scope.size() > kDefault.size() &&
      scope.compare(scope.size() - kDefault.size(), kDefault.size(), kDefault) == 0) {
    return scope.substr(0, scope.size() - kDefault.size());
  }
  return scope;
}

// AssertionForm is the client-credentials grant that proves the client with
// a JWT (a certificate's, or a federated token) instead of a secret.
std::string AssertionForm(const std::string& client_id, const std::string& scope,
                          const std::string& assertion) {
  return "grant_type=client_credentials&client_id=" + PercentEncode(client_id) +
         "&scope=" + PercentEncode(scope) + "&client_assertion_type=" +
         PercentEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
         "&client_assertion=" + PercentEncode(assertion);
}

StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return FailedPreconditionError(std::string("cannot read the ") + what + " file " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<int64_t> NumberMember(const Json& body, const char* name) {
  if (!body.contains(name)) {
    return std::nullopt;
  }
  const Json& v = body[name];
  if (v.is_number_integer()) {
    return v.get<int64_t>();
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (!s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos) {
      return std::stoll(s);
    }
  }
  return std::nullopt;
}

// ParseTokenResponse reads an OAuth2 or managed-identity token answer.
StatusOr<AccessToken> ParseTokenResponse(const HttpResponse& res, const std::string& who) {
  auto body = ParseJson(res.body);
  if (res.status != 200 || !body || !body->is_object() || !(*body)["access_token"].is_string()) {
    std::string why;
    if (body && body->is_object()) {
      why = StringMember(*body, "error_description");
      if (why.empty()) {
        why = StringMember(*body, "error");
      }
      if (why.empty() && (*body)["error"].is_object()) {
        why = StringMember((*body)["error"], "message");
      }
    }
    if (why.empty()) {
      why = "HTTP " + std::to_string(res.status);
    }
    if (res.status >= 500 || res.status == 429) {
      return UnavailableError(who + " is unavailable: " + why);
    }
    return UnauthenticatedError(who + " refused: " + why);
  }
  AccessToken token;
  token.token = (*body)["access_token"].get<std::string>();
  auto now = std::chrono::system_clock::now();
  if (auto on = NumberMember(*body, "expires_on")) {
    token.expires_on = std::chrono::system_clock::time_point(std::chrono::seconds(*on));
  } else if (auto in = NumberMember(*body, "expires_in")) {
    token.expires_on = now + std::chrono::seconds(*in);
  } else {
    return UnauthenticatedError(who + " answered a token without expires_in or expires_on");
  }
  return token;
}

}  // namespace

CachingCredential::CachingCredential(CredentialOptions options) : options_(std::move(options)) {
  if (options_.authority_host.empty()) {
    options_.authority_host = Env("AZURE_AUTHORITY_HOST");
  }
  if (options_.authority_host.empty()) {
    options_.authority_host = "https://login.microsoftonline.com";
  }
  options_.authority_host = StripSlashes(options_.authority_host);
  if (options_.transport == nullptr) {
    options_.transport = MakeDefaultTransport(options_.transport_options);
  }
}

StatusOr<AccessToken> CachingCredential::GetToken(const std::string& scope) {
  // One fetch at a time per credential: concurrent callers wait for the
  // token the first one gets instead of each asking for their own.
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::system_clock::now();
  auto it = tokens_.find(scope);
  if (it != tokens_.end() && it->second.expires_on - options_.refresh_before_expiry > now) {
    return it->second;
  }
  StatusOr<AccessToken> fresh = FetchToken(scope);
  if (!fresh.ok()) {
    // A token that is due for refresh but not yet expired still works.
    if (it != tokens_.end() && it->second.expires_on > now) {
      return it->second;
    }
    return fresh.status();
  }
  tokens_[scope] = *fresh;
  return fresh;
}

StatusOr<AccessToken> CachingCredential::PostTokenRequest(const std::string& tenant_id,
                                                          const std::string& form) {
  HttpRequest req;
  req.method = "POST";
  req.url = options_.authority_host + "/" + PercentEncode(tenant_id) + "/oauth2/v2.0/token";
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = form;
  ASSIGN_OR_RETURN(HttpResponse res, transport().Send(req));
  return ParseTokenResponse(res, "the token service at " + options_.authority_host);
}

// ---- client secret -----------------------------------------------------------------------

ClientSecretCredential::ClientSecretCredential(std::string tenant_id, std::string client_id,
                                               std::string client_secret, CredentialOptions options)
    : CachingCredential(std::move(options)),
      tenant_id_(std::move(tenant_id)),
      client_id_(std::move(client_id)),
      client_secret_(std::move(client_secret)) {}

StatusOr<AccessToken> ClientSecretCredential::FetchToken(const std::string& scope) {
  if (tenant_id_.empty() || client_id_.empty() || client_secret_.empty()) {
    return FailedPreconditionError(
        "ClientSecretCredential needs a tenant id, a client id and a client secret");
  }
  return PostTokenRequest(tenant_id_,
                          "grant_type=client_credentials&client_id=" + PercentEncode(client_id_) +
                              "&client_secret=" + PercentEncode(client_secret_) +
                              "&scope=" + PercentEncode(scope));
}

// ---- device code -------------------------------------------------------------------------

namespace {

// The OpenID scopes a person's sign-in adds, so that a refresh token and
// the user's name come back.
std::string WithOpenIdScopes(const std::string& scope) {
  return scope + " offline_access openid profile";
}

}  // namespace

DeviceCodeCredential::DeviceCodeCredential(std::string tenant_id, Prompt prompt,
                                           CredentialOptions options, std::string client_id,
                                           std::string refresh_token)
    : CachingCredential(std::move(options)),
      tenant_id_(std::move(tenant_id)),
      client_id_(std::move(client_id)),
      prompt_(std::move(prompt)),
      refresh_token_(std::move(refresh_token)) {}

std::string DeviceCodeCredential::refresh_token() const {
  std::lock_guard<std::mutex> lock(rt_mu_);
  return refresh_token_;
}

HttpResponse DeviceCodeCredential::Post(const std::string& path, const std::string& form,
                                        Status& error) {
  HttpRequest req;
  req.method = "POST";
  req.url = options().authority_host + "/" + PercentEncode(tenant_id_) + path;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = form;
  auto res = transport().Send(req);
  if (!res.ok()) {
    error = res.status();
    return HttpResponse{};
  }
  error = OkStatus();
  return *res;
}

StatusOr<AccessToken> DeviceCodeCredential::Take(const HttpResponse& response) {
  ASSIGN_OR_RETURN(AccessToken token, ParseTokenResponse(response, "the token service at " +
                                                                       options().authority_host));
  auto body = ParseJson(response.body);
  std::string rt = body ? StringMember(*body, "refresh_token") : "";
  if (!rt.empty()) {
    std::lock_guard<std::mutex> lock(rt_mu_);
    refresh_token_ = std::move(rt);
  }
  return token;
}

StatusOr<AccessToken> DeviceCodeCredential::FetchToken(const std::string& scope) {
  std::string rt = refresh_token();
  if (!rt.empty()) {
    Status error;
    HttpResponse res = Post("/oauth2/v2.0/token",
                            "grant_type=refresh_token&client_id=" + PercentEncode(client_id_) +
                                "&refresh_token=" + PercentEncode(rt) +
                                "&scope=" + PercentEncode(WithOpenIdScopes(scope)),
                            error);
    RETURN_IF_ERROR(error);
    auto token = Take(res);
    if (token.ok() || token.status().code() != StatusCode::kUnauthenticated || !prompt_) {
      return token;
    }
    // The refresh token was refused (a password change, its age): sign in.
  }
  if (!prompt_) {
    return FailedPreconditionError("nobody is signed in: sign in first (coffer login)");
  }
  return SignIn(scope);
}

StatusOr<AccessToken> DeviceCodeCredential::SignIn(const std::string& scope) {
  Status error;
  HttpResponse started = Post(
      "/oauth2/v2.0/devicecode",
      "client_id=" + PercentEncode(client_id_) + "&scope=" + PercentEncode(WithOpenIdScopes(scope)),
      error);
  RETURN_IF_ERROR(error);
  auto flow = ParseJson(started.body);
  if (started.status != 200 || !flow || !flow->is_object() ||
      StringMember(*flow, "device_code").empty()) {
    std::string why = flow && flow->is_object() ? StringMember(*flow, "error_description") : "";
    return UnauthenticatedError("the token service at " + options().authority_host +
                                " refused the device sign-in: " +
                                (why.empty() ? "HTTP " + std::to_string(started.status) : why));
  }
  DeviceCodeInfo info;
  info.user_code = StringMember(*flow, "user_code");
  info.verification_uri = StringMember(*flow, "verification_uri");
  info.message = StringMember(*flow, "message");
  info.expires_in = NumberMember(*flow, "expires_in").value_or(900);
  int64_t interval = std::max<int64_t>(1, NumberMember(*flow, "interval").value_or(5));
  prompt_(info);
  std::string poll =
      "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
      "&client_id=" +
      PercentEncode(client_id_) +
      "&device_code=" + PercentEncode(StringMember(*flow, "device_code"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(info.expires_in);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(interval));
    HttpResponse res = Post("/oauth2/v2.0/token", poll, error);
    RETURN_IF_ERROR(error);
    auto body = ParseJson(res.body);
    std::string answer = body && body->is_object() ? StringMember(*body, "error") : "";
    if (answer == "authorization_pending") {
      continue;
    }
    if (answer == "slow_down") {
      interval += 5;  // RFC 8628 §3.5
      continue;
    }
    return Take(res);
  }
  return UnauthenticatedError("the device sign-in expired before it was completed");
}

// ---- client certificate ------------------------------------------------------------------

ClientCertificateCredential::ClientCertificateCredential(std::string tenant_id,
                                                         std::string client_id,
                                                         std::string certificate_path,
                                                         CredentialOptions options)
    : CachingCredential(std::move(options)),
      tenant_id_(std::move(tenant_id)),
      client_id_(std::move(client_id)),
      certificate_path_(std::move(certificate_path)) {}

StatusOr<AccessToken> ClientCertificateCredential::FetchToken(const std::string& scope) {
  if (tenant_id_.empty() || client_id_.empty() || certificate_path_.empty()) {
    return FailedPreconditionError(
        "ClientCertificateCredential needs a tenant id, a client id and a certificate file");
  }
  ASSIGN_OR_RETURN(std::string pem, ReadFile(certificate_path_, "client certificate"));
  auto cert = crypto::ParseCertificate(pem);
  if (!cert.ok()) {
    return InvalidArgumentError("the client certificate file " + certificate_path_ +
                                " holds no RSA certificate");
  }
  auto key = crypto::RsaKey::FromPrivatePem(pem);
  if (!key.ok()) {
    return InvalidArgumentError("the client certificate file " + certificate_path_ +
                                " holds no unencrypted RSA private key");
  }
  // SECURITY: the key must be the certificate's, or the service would refuse
  // every assertion with a message that hides why.
  if ((*key)->Modulus() != cert->public_key->Modulus()) {
    return InvalidArgumentError("the private key in " + certificate_path_ +
                                " does not belong to its certificate");
  }
  std::string audience =
      options().authority_host + "/" + PercentEncode(tenant_id_) + "/oauth2/v2.0/token";
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  Json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5t", Base64UrlEncode(cert->sha1_thumbprint)}};
  Json claims = {
      {"aud", audience}, {"iss", client_id_}, {"sub", client_id_}, {"jti", crypto::RandomUuid()},
      {"nbf", now},      {"iat", now},        {"exp", now + 600}};
  std::string signing_input =
      Base64UrlEncode(ToJson(header)) + "." + Base64UrlEncode(ToJson(claims));
  std::string assertion = signing_input + "." + Base64UrlEncode((*key)->SignRs256(signing_input));
  return PostTokenRequest(tenant_id_, AssertionForm(client_id_, scope, assertion));
}

// ---- workload identity -------------------------------------------------------------------

WorkloadIdentityCredential::WorkloadIdentityCredential(CredentialOptions options,
                                                       std::string tenant_id, std::string client_id,
                                                       std::string token_file)
    : CachingCredential(std::move(options)),
      tenant_id_(tenant_id.empty() ? Env("AZURE_TENANT_ID") : std::move(tenant_id)),
      client_id_(client_id.empty() ? Env("AZURE_CLIENT_ID") : std::move(client_id)),
      token_file_(token_file.empty() ? Env("AZURE_FEDERATED_TOKEN_FILE") : std::move(token_file)) {}

StatusOr<AccessToken> WorkloadIdentityCredential::FetchToken(const std::string& scope) {
  if (tenant_id_.empty() || client_id_.empty() || token_file_.empty()) {
    return FailedPreconditionError(
        "WorkloadIdentityCredential needs AZURE_TENANT_ID, AZURE_CLIENT_ID and "
        "AZURE_FEDERATED_TOKEN_FILE");
  }
  ASSIGN_OR_RETURN(std::string file, ReadFile(token_file_, "federated token"));
  std::string assertion(TrimWhitespace(file));
  if (assertion.empty() || assertion.size() > 16 * 1024) {
    return InvalidArgumentError("the federated token file " + token_file_ +
                                " is empty or longer than 16 KiB");
  }
  return PostTokenRequest(tenant_id_, AssertionForm(client_id_, scope, assertion));
}

// ---- client assertion --------------------------------------------------------------------

ClientAssertionCredential::ClientAssertionCredential(std::string tenant_id, std::string client_id,
                                                     AssertionProvider assertion,
                                                     CredentialOptions options)
    : CachingCredential(std::move(options)),
      tenant_id_(std::move(tenant_id)),
      client_id_(std::move(client_id)),
      assertion_(std::move(assertion)) {}

StatusOr<AccessToken> ClientAssertionCredential::FetchToken(const std::string& scope) {
  if (tenant_id_.empty() || client_id_.empty() || !assertion_) {
    return FailedPreconditionError(
        "ClientAssertionCredential needs a tenant id, a client id and an assertion");
  }
  ASSIGN_OR_RETURN(std::string assertion, assertion_());
  if (assertion.empty() || assertion.size() > 16 * 1024) {
    return InvalidArgumentError("the client assertion is empty or longer than 16 KiB");
  }
  return PostTokenRequest(tenant_id_, AssertionForm(client_id_, scope, assertion));
}

// ---- managed identity --------------------------------------------------------------------

ManagedIdentityId ManagedIdentityId::Parse(const std::string& text) {
  if (text.empty()) {
    return System();
  }
  if (text[0] == '/') {
    return ResourceId(text);
  }
  return ClientId(text);
}

ManagedIdentityCredential::ManagedIdentityCredential(ManagedIdentityId id,
                                                     CredentialOptions options)
    : CachingCredential(std::move(options)),
      id_(std::move(id)),
      identity_endpoint_(Env("IDENTITY_ENDPOINT")),
      identity_header_(Env("IDENTITY_HEADER")),
      imds_host_(StripSlashes(Env("AZURE_POD_IDENTITY_AUTHORITY_HOST"))) {}

StatusOr<AccessToken> ManagedIdentityCredential::FetchToken(const std::string& scope) {
  HttpRequest req;
  std::string query;
  std::string who;
  bool app_service = !identity_endpoint_.empty() && !identity_header_.empty();
  if (app_service) {
    req.url = identity_endpoint_;
    req.headers = {{"X-IDENTITY-HEADER", identity_header_}};
    query = "api-version=2019-08-01";
    who = "the managed-identity endpoint (IDENTITY_ENDPOINT)";
  } else if (!imds_host_.empty()) {
    req.url = imds_host_ + "/metadata/identity/oauth2/token";
    req.headers = {{"Metadata", "true"}};
    query = "api-version=2018-02-01";
    who = "the IMDS endpoint at " + imds_host_;
  } else {
    // Coffer's IMDS is `coffer agent --imds` on loopback, never Azure's
    // link-local address, so there is nothing to probe without configuration.
    return FailedPreconditionError(
        "no managed-identity endpoint is configured: set IDENTITY_ENDPOINT and IDENTITY_HEADER, "
        "or AZURE_POD_IDENTITY_AUTHORITY_HOST");
  }
  query += "&resource=" + PercentEncode(ResourceOf(scope));
  switch (id_.kind) {
    case ManagedIdentityId::Kind::kSystem:
      break;
    case ManagedIdentityId::Kind::kClientId:
      query += "&client_id=" + PercentEncode(id_.value);
      break;
    case ManagedIdentityId::Kind::kObjectId:
      query += (app_service ? "&principal_id=" : "&object_id=") + PercentEncode(id_.value);
      break;
    case ManagedIdentityId::Kind::kResourceId:
      query += (app_service ? "&mi_res_id=" : "&msi_res_id=") + PercentEncode(id_.value);
      break;
  }
  req.url += (req.url.find('?') == std::string::npos ? "?" : "&") + query;
  req.headers.emplace_back("Accept", "application/json");
  ASSIGN_OR_RETURN(HttpResponse res, transport().Send(req));
  return ParseTokenResponse(res, who);
}

// ---- chains ------------------------------------------------------------------------------

ChainedTokenCredential::ChainedTokenCredential(
    std::vector<std::pair<std::string, std::shared_ptr<TokenCredential>>> named_credentials)
    : credentials_(std::move(named_credentials)) {}

StatusOr<AccessToken> ChainedTokenCredential::GetToken(const std::string& scope) {
  int chosen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    chosen = chosen_;
  }
  if (chosen >= 0) {
    return credentials_[static_cast<size_t>(chosen)].second->GetToken(scope);
  }
  std::string tried;
  for (size_t i = 0; i < credentials_.size(); ++i) {
    const auto& [name, credential] = credentials_[i];
    StatusOr<AccessToken> token = credential->GetToken(scope);
    if (token.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      chosen_ = static_cast<int>(i);
      return token;
    }
    tried += (tried.empty() ? "" : "; ") + name + ": " + std::string(token.status().message());
    // As the Azure SDKs: a credential that is not set up (or whose endpoint
    // is not there) passes to the next; one that was refused ends the chain.
    if (token.status().code() != StatusCode::kFailedPrecondition &&
        token.status().code() != StatusCode::kUnavailable) {
      return Status(token.status().code(), "DefaultAzureCredential: " + tried);
    }
  }
  if (tried.empty()) {
    tried = "no credential is configured";
  }
  return FailedPreconditionError("DefaultAzureCredential: " + tried);
}

std::shared_ptr<TokenCredential> MakeDefaultAzureCredential(CredentialOptions options,
                                                            ManagedIdentityId managed_identity) {
  std::vector<std::pair<std::string, std::shared_ptr<TokenCredential>>> chain;
  std::string tenant = Env("AZURE_TENANT_ID");
  std::string client = Env("AZURE_CLIENT_ID");
  if (!tenant.empty() && !client.empty()) {
    if (!Env("AZURE_CLIENT_SECRET").empty()) {
      chain.emplace_back("EnvironmentCredential",
                         std::make_shared<ClientSecretCredential>(
                             tenant, client, Env("AZURE_CLIENT_SECRET"), options));
    } else if (!Env("AZURE_CLIENT_CERTIFICATE_PATH").empty()) {
      chain.emplace_back("EnvironmentCredential",
                         std::make_shared<ClientCertificateCredential>(
                             tenant, client, Env("AZURE_CLIENT_CERTIFICATE_PATH"), options));
    }
    if (!Env("AZURE_FEDERATED_TOKEN_FILE").empty()) {
      chain.emplace_back("WorkloadIdentityCredential",
                         std::make_shared<WorkloadIdentityCredential>(options));
    }
  }
  if (managed_identity.kind == ManagedIdentityId::Kind::kSystem && !client.empty()) {
    managed_identity = ManagedIdentityId::ClientId(client);
  }
  chain.emplace_back("ManagedIdentityCredential",
                     std::make_shared<ManagedIdentityCredential>(managed_identity, options));
  return std::make_shared<ChainedTokenCredential>(std::move(chain));
}

}  // namespace coffer
