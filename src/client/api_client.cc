#include "client/api_client.h"

#include <cstdlib>

#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "common/strings.h"
#include "http/url.h"
#include "net/http_client.h"

namespace coffer::client {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

StatusOr<ClientConfig> ClientConfig::FromEnvironment() {
  return FromVariables([](const char* name) { return Env(name); });
}

StatusOr<ClientConfig> ClientConfig::FromVariables(
    const std::function<std::string(const char*)>& variable) {
  ClientConfig c;
  c.tenant_id = variable("AZURE_TENANT_ID");
  c.tenant_guid = variable("COFFER_TENANT_ID");
  c.client_id = variable("AZURE_CLIENT_ID");
  c.client_secret = variable("AZURE_CLIENT_SECRET");
  c.authority = variable("AZURE_AUTHORITY_HOST");
  c.ca_file = variable("COFFER_CA_FILE");
  if (c.ca_file.empty()) {
    c.ca_file = variable("REQUESTS_CA_BUNDLE");
  }
  c.subscription_id = variable("COFFER_SUBSCRIPTION_ID");
  c.resource_group = variable("COFFER_RESOURCE_GROUP");
  if (!variable("COFFER_VAULT_DNS_SUFFIX").empty()) {
    c.vault_dns_suffix = variable("COFFER_VAULT_DNS_SUFFIX");
  }
  if (c.client_id.empty() || c.client_secret.empty()) {
    // No application credentials: a person's sign-in, if there is one.
    auto text = ReadFile(LoginFile(variable));
    auto login = text.ok() ? ParseJson(*text) : std::nullopt;
    // SECURITY: the refresh token goes only to the authority that issued it;
    // an environment naming another one does not get it.
    std::string issued_by = login && login->is_object() ? StringMember(*login, "authority") : "";
    std::string asked = c.authority;
    while (!asked.empty() && asked.back() == '/') {
      asked.pop_back();
    }
    if (login && login->is_object() && !StringMember(*login, "refreshToken").empty() &&
        (asked.empty() || asked == issued_by)) {
      c.refresh_token = StringMember(*login, "refreshToken");
      c.client_id = StringMember(*login, "clientId");
      c.client_secret.clear();
      if (c.authority.empty()) {
        c.authority = StringMember(*login, "authority");
      }
      if (c.tenant_id.empty()) {
        c.tenant_id = StringMember(*login, "tenantId");
      }
      if (c.ca_file.empty()) {
        c.ca_file = StringMember(*login, "caFile");
      }
    }
  }
  for (const auto& [name, value] :
       {std::pair{"AZURE_TENANT_ID", c.tenant_id}, std::pair{"AZURE_CLIENT_ID", c.client_id},
        std::pair{"AZURE_CLIENT_SECRET", c.refresh_token.empty() ? c.client_secret : "-"},
        std::pair{"AZURE_AUTHORITY_HOST", c.authority}}) {
    if (value.empty()) {
      return FailedPreconditionError(std::string(name) +
                                     " is not set (source the server's dev.env, or sign in "
                                     "with coffer login)");
    }
  }
  while (!c.authority.empty() && c.authority.back() == '/') {
    c.authority.pop_back();
  }
  return c;
}

std::string ClientConfig::LoginFile(const std::function<std::string(const char*)>& variable) {
  if (std::string dir = variable("COFFER_CONFIG_DIR"); !dir.empty()) {
    return dir + "/login.json";
  }
  if (std::string dir = variable("XDG_CONFIG_HOME"); !dir.empty()) {
    return dir + "/coffer/login.json";
  }
  return variable("HOME") + "/.config/coffer/login.json";
}

std::string ClientConfig::VaultUrl(const std::string& vault) const {
  std::string suffix = vault_dns_suffix;
  if (suffix.find(':') != std::string::npos) {
    // The suffix names its own port: behind a load balancer or a port
    // mapping it need not be the authority's.
    if (suffix.size() > 4 && suffix.compare(suffix.size() - 4, 4, ":443") == 0) {
      suffix.resize(suffix.size() - 4);
    }
    return "https://" + AsciiLower(vault) + "." + suffix;
  }
  // Otherwise the port is the authority's: one server answers both.
  std::string port;
  StatusOr<http::Url> url = http::ParseUrl(authority);
  if (url.ok() && !url->default_port()) {
    port = ":" + std::to_string(url->port);
  }
  return "https://" + AsciiLower(vault) + "." + suffix + port;
}

StatusOr<std::string> ApiClient::Claim(const std::string& resource, const std::string& name) {
  ASSIGN_OR_RETURN(std::string token, Token(resource));
  auto parts = Split(token, '.');
  auto payload = parts.size() == 3 ? Base64UrlDecode(parts[1]) : std::nullopt;
  auto claims = payload ? ParseJson(*payload) : std::nullopt;
  std::string value = claims && claims->is_object() ? StringMember(*claims, name.c_str()) : "";
  if (value.empty()) {
    return UnauthenticatedError("the access token carries no " + name + " claim");
  }
  return value;
}

StatusOr<std::string> ApiClient::SignedInObjectId(const std::string& resource) {
  return Claim(resource, "oid");
}

StatusOr<std::string> ApiClient::TenantId() {
  if (!config_.tenant_guid.empty()) {
    return config_.tenant_guid;
  }
  if (config_.tenant_id != "adfs") {
    return config_.tenant_id;
  }
  return Claim(config_.authority, "tid");
}

ApiClient::ApiClient(ClientConfig config) : config_(std::move(config)) {
  CredentialOptions options;
  options.authority_host = config_.authority;
  options.transport_options.ca_file = config_.ca_file;
  if (!config_.refresh_token.empty()) {
    // A person signed in with `coffer login`: never prompts here.
    credential_ = std::make_shared<DeviceCodeCredential>(config_.tenant_id, nullptr, options,
                                                         config_.client_id, config_.refresh_token);
    return;
  }
  credential_ = std::make_shared<ClientSecretCredential>(config_.tenant_id, config_.client_id,
                                                         config_.client_secret, options);
}

StatusOr<std::string> ApiClient::Token(const std::string& resource) {
  StatusOr<AccessToken> token = credential_->GetToken(resource + "/.default");
  if (!token.ok()) {
    return Status(token.status().code(), "cannot get a token for " + resource + ": " +
                                             std::string(token.status().message()));
  }
  return token->token;
}

StatusOr<http::Response> ApiClient::Stream(
    const std::string& url, const std::string& resource,
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::function<bool(std::string_view)>& on_data, const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(std::string token, Token(resource));
  net::ClientRequest req;
  req.url = url;
  req.headers = {{"Authorization", "Bearer " + token}, {"Accept", "text/event-stream"}};
  req.headers.insert(req.headers.end(), headers.begin(), headers.end());
  req.ca_file = config_.ca_file;
  return net::StreamRequest(req, on_data, cancel);
}

StatusOr<http::Response> ApiClient::Call(const std::string& method, const std::string& url,
                                         const std::string& resource, const std::string& body) {
  ASSIGN_OR_RETURN(std::string token, Token(resource));
  net::ClientRequest req;
  req.method = method;
  req.url = url;
  req.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
  if (!body.empty() || method == "PUT" || method == "PATCH" || method == "POST") {
    req.headers.emplace_back("Content-Type", "application/json");
  }
  req.body = body;
  req.ca_file = config_.ca_file;
  return net::SendRequest(req);
}

Status ErrorFromResponse(const http::Response& response) {
  auto body = ParseJson(response.body);
  std::string code = "HTTP" + std::to_string(response.status);
  std::string message = "the server answered " + std::to_string(response.status);
  if (body && body->is_object() && body->contains("error") && (*body)["error"].is_object()) {
    const auto& e = (*body)["error"];
    code = e.value("code", code);
    message = e.value("message", message);
  }
  return Status(StatusCode::kUnknown, message, code);
}

}  // namespace coffer::client
