#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/token_service.h"
#include "common/clock.h"
#include "common/status.h"
#include "http/message.h"
#include "storage/store.h"

namespace coffer::auth {

// IdentityHeaders makes and checks a workload's identity header: the secret
// its processes present to the managed-identity endpoint (App Service's
// IDENTITY_HEADER). A header is "<workload uid>.<MAC>", the MAC an
// HMAC-SHA256 of the uid and the workload's header generation under a key
// derived from the master key. Nothing secret is stored; bumping the
// generation revokes every header given out before. Thread-safe.
class IdentityHeaders {
 public:
  explicit IdentityHeaders(std::string key);
  ~IdentityHeaders();

  std::string For(const storage::WorkloadRecord& workload) const;
  // UidOf returns the workload uid a header names, if it is well-formed.
  static std::optional<std::string> UidOf(std::string_view header);
  // Matches compares in constant time.
  bool Matches(const storage::WorkloadRecord& workload, std::string_view header) const;

 private:
  std::string key_;
};

// How a token request names the identity it wants.
struct IdentitySelector {
  enum class By { kDefault, kClientId, kObjectId, kResourceId };
  By by = By::kDefault;
  std::string value;
};

// ResolveIdentity picks the principal a workload asks for: its
// system-assigned identity or one of its user-assigned identities, by client
// id, object (principal) id or resource id. With no selector: the
// system-assigned identity, else the only user-assigned one. kNotFound if the
// identity is not assigned to the workload (or no longer exists);
// kInvalidArgument if the choice is ambiguous.
StatusOr<storage::PrincipalRecord> ResolveIdentity(storage::Store& store,
                                                   const storage::WorkloadRecord& workload,
                                                   const IdentitySelector& selector);

// ManagedIdentityEndpoint serves App Service's managed-identity protocol:
//   GET /msi/token?api-version=2019-08-01&resource=<r>
//       [&client_id=|&principal_id=|&object_id=|&mi_res_id=|&msi_res_id=]
//   X-IDENTITY-HEADER: <the workload's identity header>
// The header decides the workload, and so which identities may be used
// (docs/identities.md). Answers {access_token, expires_on, resource,
// token_type, client_id, ...} or an OAuth2 error body. Thread-safe.
class ManagedIdentityEndpoint {
 public:
  ManagedIdentityEndpoint(storage::Store& store, const IdentityHeaders& headers,
                          const TokenService& tokens, const Clock& clock);

  // Token answers the route /msi/token (every method: other than GET is
  // 405 in the endpoint's own shape).
  http::Response Token(const http::Request& request);

 private:
  storage::Store& store_;
  const IdentityHeaders& headers_;
  const TokenService& tokens_;
  const Clock& clock_;
};

}  // namespace coffer::auth
