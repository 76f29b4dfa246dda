#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token_verifier.h"
#include "common/clock.h"
#include "storage/store.h"

namespace coffer::server {

// Caller is the authenticated principal of a request.
struct Caller {
  std::string object_id;
  std::string app_id;
  std::string tenant_id;
  std::string identity_type;
};

// Authenticator turns an Authorization header into a Caller: a Bearer token
// verified by TokenVerifier, whose principal still exists. Successful
// verifications are cached by the token's SHA-256 until the token expires
// (bounded), so the RSA check and the principal lookup run once per token.
//
// Errors are kUnauthenticated with a message for the 401 body.
// Thread-safe. The referenced objects must outlive it.
class Authenticator {
 public:
  Authenticator(const auth::TokenVerifier& verifier, storage::Store& store, const Clock& clock);

  StatusOr<Caller> Authenticate(std::string_view authorization,
                                const std::vector<std::string>& audiences);

  // TryCached answers from the cache only, without blocking: the caller of a
  // token verified before, or nullopt.
  std::optional<Caller> TryCached(std::string_view authorization,
                                  const std::vector<std::string>& audiences);

  // ForgetPrincipal drops cached tokens of a deleted principal.
  void ForgetPrincipal(const std::string& object_id);
  // ForgetAll drops every cached token (after a signing key is retired).
  void ForgetAll();

 private:
  struct Entry {
    Caller caller;
    std::string audience;
    int64_t expires;
  };
  const auth::TokenVerifier& verifier_;
  storage::Store& store_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;  // guarded by mu_
};

}  // namespace coffer::server
