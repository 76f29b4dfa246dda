#pragma once

// Credentials: how a program proves who it is to Coffer (or to Azure), named
// and configured as in the Azure SDKs. Every credential caches its tokens per
// scope and fetches a new one shortly before the cached one expires; all are
// thread-safe. Errors are values: kUnauthenticated when the token service
// refuses (its error_description in the message), kFailedPrecondition when
// the credential is not configured (what is missing in the message),
// kUnavailable when the endpoint cannot be reached. No message ever carries a
// secret, an assertion or a token.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "coffer/http_transport.h"
#include "coffer/status.h"

namespace coffer {

struct AccessToken {
  std::string token;
  std::chrono::system_clock::time_point expires_on;
};

struct CredentialOptions {
  // The token service, e.g. https://localhost:8443. "" means
  // $AZURE_AUTHORITY_HOST, then https://login.microsoftonline.com.
  std::string authority_host;
  // How the credential reaches its endpoint; null means MakeDefaultTransport.
  std::shared_ptr<HttpTransport> transport;
  TransportOptions transport_options;  // for the default transport
  // A cached token is replaced this long before it expires (as the Azure
  // SDKs: five minutes).
  std::chrono::seconds refresh_before_expiry{300};
};

// TokenCredential is the interface every credential implements.
class TokenCredential {
 public:
  virtual ~TokenCredential() = default;
  // GetToken returns a token for `scope` ("https://vault.azure.net/.default").
  virtual StatusOr<AccessToken> GetToken(const std::string& scope) = 0;
};

// CachingCredential holds the token cache the concrete credentials share;
// subclasses implement FetchToken.
class CachingCredential : public TokenCredential {
 public:
  explicit CachingCredential(CredentialOptions options);
  StatusOr<AccessToken> GetToken(const std::string& scope) final;

 protected:
  virtual StatusOr<AccessToken> FetchToken(const std::string& scope) = 0;
  // PostTokenRequest posts an OAuth2 form to {authority}/{tenant}/oauth2/v2.0/token
  // and reads access_token with expires_in or expires_on.
  StatusOr<AccessToken> PostTokenRequest(const std::string& tenant_id, const std::string& form);
  const CredentialOptions& options() const { return options_; }
  HttpTransport& transport() { return *options_.transport; }

 private:
  CredentialOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, AccessToken> tokens_;  // GUARDED_BY(mu_)
};

// ClientSecretCredential: a service principal with a client secret.
class ClientSecretCredential : public CachingCredential {
 public:
  ClientSecretCredential(std::string tenant_id, std::string client_id, std::string client_secret,
                         CredentialOptions options = {});

 private:
  StatusOr<AccessToken> FetchToken(const std::string& scope) override;
  std::string tenant_id_, client_id_, client_secret_;
};

// What a device-code sign-in shows the person (Entra's device authorization
// answer).
struct DeviceCodeInfo {
  std::string user_code;
  std::string verification_uri;
  std::string message;  // names both, for a terminal
  int64_t expires_in = 0;
};

// DeviceCodeCredential signs a person in as `az login --use-device-code`
// does: the prompt shows a code, the person enters it on the verification
// page, and the credential polls until they have. Its refresh token then
// serves every scope without another sign-in. A credential made with a
// refresh token (from an earlier sign-in) and no prompt never prompts: when
// the refresh token is refused, GetToken is kUnauthenticated.
class DeviceCodeCredential : public CachingCredential {
 public:
  // The Azure CLI's public client id, the default of az and the Azure SDKs.
  static constexpr char kAzureCliClientId[] = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
  using Prompt = std::function<void(const DeviceCodeInfo&)>;

  DeviceCodeCredential(std::string tenant_id, Prompt prompt, CredentialOptions options = {},
                       std::string client_id = kAzureCliClientId, std::string refresh_token = "");

  // The refresh token of the last sign-in or refresh ("" before any): a
  // secret, to be kept as one.
  std::string refresh_token() const;

 private:
  StatusOr<AccessToken> FetchToken(const std::string& scope) override;
  StatusOr<AccessToken> SignIn(const std::string& scope);
  // Keeps the answer's refresh token and returns its access token.
  StatusOr<AccessToken> Take(const HttpResponse& response);
  HttpResponse Post(const std::string& path, const std::string& form, Status& error);

  std::string tenant_id_, client_id_;
  Prompt prompt_;
  mutable std::mutex rt_mu_;
  std::string refresh_token_;  // GUARDED_BY(rt_mu_)
};

// ClientCertificateCredential: a service principal with a certificate. The
// PEM file holds the certificate and its unencrypted RSA private key (as
// AZURE_CLIENT_CERTIFICATE_PATH); each token request carries a fresh RS256
// client assertion with the certificate's x5t. The file is read on first use;
// kInvalidArgument if it holds no usable certificate and key.
class ClientCertificateCredential : public CachingCredential {
 public:
  ClientCertificateCredential(std::string tenant_id, std::string client_id,
                              std::string certificate_path, CredentialOptions options = {});

 private:
  StatusOr<AccessToken> FetchToken(const std::string& scope) override;
  std::string tenant_id_, client_id_, certificate_path_;
};

// WorkloadIdentityCredential: a federated token (a Kubernetes service-account
// token) exchanged for an access token. Empty arguments are read from
// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE; the file is
// read again (and trimmed) for every exchange, since the kubelet rotates it.
class WorkloadIdentityCredential : public CachingCredential {
 public:
  explicit WorkloadIdentityCredential(CredentialOptions options = {}, std::string tenant_id = "",
                                      std::string client_id = "", std::string token_file = "");

 private:
  StatusOr<AccessToken> FetchToken(const std::string& scope) override;
  std::string tenant_id_, client_id_, token_file_;
};

// ClientAssertionCredential: an application that proves itself with a JWT
// assertion it gets from `assertion` (a federated token such as a Kubernetes
// service-account token, as the Azure SDKs' ClientAssertionCredential). The
// callback is called for every exchange, so it may hand out a rotated token;
// its error is returned as is.
class ClientAssertionCredential : public CachingCredential {
 public:
  using AssertionProvider = std::function<StatusOr<std::string>()>;
  ClientAssertionCredential(std::string tenant_id, std::string client_id,
                            AssertionProvider assertion, CredentialOptions options = {});

 private:
  StatusOr<AccessToken> FetchToken(const std::string& scope) override;
  std::string tenant_id_, client_id_;
  AssertionProvider assertion_;
};

// Which managed identity to ask for: the system-assigned one (the default) or
// a user-assigned one by client id, object (principal) id or resource id.
struct ManagedIdentityId {
  enum class Kind { kSystem, kClientId, kObjectId, kResourceId };
  Kind kind = Kind::kSystem;
  std::string value;

  static ManagedIdentityId System() { return {}; }
  static ManagedIdentityId ClientId(std::string id) { return {Kind::kClientId, std::move(id)}; }
  static ManagedIdentityId ObjectId(std::string id) { return {Kind::kObjectId, std::move(id)}; }
  static ManagedIdentityId ResourceId(std::string id) { return {Kind::kResourceId, std::move(id)}; }
  // Parse takes a resource id ("/subscriptions/…") or a client id; "" is
  // the system-assigned identity.
  static ManagedIdentityId Parse(const std::string& text);
};

// ManagedIdentityCredential: the workload's managed identity, through the App
// Service endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER) when those are set,
// else IMDS at $AZURE_POD_IDENTITY_AUTHORITY_HOST with `Metadata: true`
// (`coffer agent --imds`). With neither set, GetToken is kFailedPrecondition:
// the credential never probes 169.254.169.254 on its own.
class ManagedIdentityCredential : public CachingCredential {
 public:
  explicit ManagedIdentityCredential(ManagedIdentityId id = {}, CredentialOptions options = {});

 private:
  StatusOr<AccessToken> FetchToken(const std::string& scope) override;
  ManagedIdentityId id_;
  std::string identity_endpoint_, identity_header_, imds_host_;
};

// ChainedTokenCredential tries each credential in order and returns the
// first token; the error names every credential's failure.
class ChainedTokenCredential : public TokenCredential {
 public:
  ChainedTokenCredential(
      std::vector<std::pair<std::string, std::shared_ptr<TokenCredential>>> named_credentials);
  StatusOr<AccessToken> GetToken(const std::string& scope) override;

 private:
  std::vector<std::pair<std::string, std::shared_ptr<TokenCredential>>> credentials_;
  std::mutex mu_;
  int chosen_ = -1;  // GUARDED_BY(mu_): once one works, the chain keeps it
};

// MakeDefaultAzureCredential builds the chain of DefaultAzureCredential from
// the environment, in the Azure SDKs' order: environment (AZURE_TENANT_ID +
// AZURE_CLIENT_ID + AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH),
// workload identity (AZURE_FEDERATED_TOKEN_FILE), managed identity
// (`managed_identity` chooses which; AZURE_CLIENT_ID is the default
// user-assigned one when it is set alone, as in the Azure SDKs).
std::shared_ptr<TokenCredential> MakeDefaultAzureCredential(
    CredentialOptions options = {}, ManagedIdentityId managed_identity = {});

}  // namespace coffer
