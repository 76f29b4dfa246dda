#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "coffer/credentials.h"
#include "common/json.h"
#include "common/status.h"
#include "http/message.h"

namespace coffer::client {

// Credentials and endpoints, read from the same environment variables the
// Azure SDKs use (plus Coffer's own, written to dev.env by the server).
struct ClientConfig {
  std::string tenant_id;        // AZURE_TENANT_ID: the tenant's id or its alias "adfs"
  std::string tenant_guid;      // COFFER_TENANT_ID: the tenant's id (optional)
  std::string client_id;        // AZURE_CLIENT_ID
  std::string client_secret;    // AZURE_CLIENT_SECRET
  std::string authority;        // AZURE_AUTHORITY_HOST, e.g. https://localhost:8443
  std::string ca_file;          // COFFER_CA_FILE or REQUESTS_CA_BUNDLE
  std::string subscription_id;  // COFFER_SUBSCRIPTION_ID
  std::string resource_group;   // COFFER_RESOURCE_GROUP (optional): the dev resource group
  // COFFER_VAULT_DNS_SUFFIX: SUFFIX or SUFFIX:PORT.
  std::string vault_dns_suffix = "vault.localhost";
  // A person's sign-in (`coffer login`), used when no client secret is set:
  // the refresh token (a secret) of the public client `client_id`.
  std::string refresh_token;

  // FromEnvironment reads the variables above. kFailedPrecondition naming
  // the first missing required variable.
  static StatusOr<ClientConfig> FromEnvironment();
  // FromVariables is FromEnvironment with the variables looked up by
  // `variable` ("" when unset), e.g. from a dev.env file's lines.
  static StatusOr<ClientConfig> FromVariables(
      const std::function<std::string(const char*)>& variable);
  // LoginFile is where `coffer login` keeps a person's sign-in:
  // $COFFER_CONFIG_DIR/login.json, else $XDG_CONFIG_HOME/coffer/login.json,
  // else $HOME/.config/coffer/login.json.
  static std::string LoginFile(const std::function<std::string(const char*)>& variable);
  // VaultUrl builds https://<vault>.<suffix>[:port]: the suffix's own port
  // when it names one (none for 443), else the authority's.
  std::string VaultUrl(const std::string& vault) const;
};

// ApiClient calls Coffer with client-credentials tokens from the SDK's
// ClientSecretCredential, or a signed-in person's from its
// DeviceCodeCredential (cached per resource, refreshed before expiry).
// Not thread-safe.
class ApiClient {
 public:
  explicit ApiClient(ClientConfig config);

  // Call sends a request to `url` with a bearer token for `resource`.
  // Returns the response whatever its status; transport failures and token
  // failures are errors.
  StatusOr<http::Response> Call(const std::string& method, const std::string& url,
                                const std::string& resource, const std::string& body = "");

  // Stream sends a GET for a streamed response (server-sent events) and
  // calls `on_data` with each piece of the body until the stream ends,
  // `on_data` returns false or `*cancel` becomes true; as net::StreamRequest.
  StatusOr<http::Response> Stream(const std::string& url, const std::string& resource,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  const std::function<bool(std::string_view)>& on_data,
                                  const std::atomic<bool>* cancel = nullptr);

  const ClientConfig& config() const { return config_; }

  // SignedInObjectId is the object id (`oid`) of the signed-in principal,
  // read from its token for `resource`.
  StatusOr<std::string> SignedInObjectId(const std::string& resource);
  // TenantId is the tenant's id, which ARM bodies name (a vault's
  // tenantId): COFFER_TENANT_ID, else AZURE_TENANT_ID unless that is the
  // alias "adfs", else the `tid` of a management token.
  StatusOr<std::string> TenantId();

 private:
  StatusOr<std::string> Token(const std::string& resource);
  // A string claim of the token for `resource`; kUnauthenticated if absent.
  StatusOr<std::string> Claim(const std::string& resource, const std::string& name);

  ClientConfig config_;
  std::shared_ptr<TokenCredential> credential_;
};

// ErrorFromResponse turns a non-2xx response into a Status whose reason is
// the service's error code and whose message is its message.
Status ErrorFromResponse(const http::Response& response);

}  // namespace coffer::client
