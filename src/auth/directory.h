#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::auth {

struct NewServicePrincipal {
  storage::PrincipalRecord principal;
  // The client secret in the clear. It exists only in this value: the store
  // keeps a salted PBKDF2 hash.
  std::string client_secret;
  int64_t secret_expires = 0;
};

// Directory manages the principals of the tenant and checks their
// credentials. Thread-safe. `store` and `clock` must outlive it.
class Directory {
 public:
  Directory(storage::Store& store, const Clock& clock, std::string tenant_id);

  // CreateServicePrincipal registers a new app with a fresh client id, object
  // id and client secret valid for `secret_lifetime_days`.
  StatusOr<NewServicePrincipal> CreateServicePrincipal(const std::string& display_name,
                                                       int secret_lifetime_days);

  // AddClientSecret adds a new secret to an existing principal. kNotFound if
  // the principal does not exist.
  StatusOr<std::string> AddClientSecret(const std::string& object_id, int lifetime_days);

  // AuthenticateClientSecret returns the principal whose app id is `app_id`
  // if `secret` matches one of its unexpired secrets. kUnauthenticated
  // otherwise, with the same message whether the app or the secret is wrong.
  StatusOr<storage::PrincipalRecord> AuthenticateClientSecret(const std::string& app_id,
                                                              const std::string& secret);

  // Forget drops cached verifications for a principal (after deletion or a
  // credential change).
  void Forget(const std::string& object_id);

  const std::string& tenant_id() const { return tenant_id_; }

 private:
  struct CacheEntry {
    storage::PrincipalRecord principal;
    int64_t valid_until;
  };

  storage::Store& store_;
  const Clock& clock_;
  const std::string tenant_id_;
  std::mutex mu_;
  // SHA-256(app id, secret) -> a recent successful verification, so that the
  // slow hash runs once per credential every few minutes, not per token.
  std::map<std::string, CacheEntry> verified_;  // guarded by mu_
};

}  // namespace coffer::auth
