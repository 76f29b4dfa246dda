#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "auth/directory.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::auth {

// AdministratorCredentials keeps the installation's administrator: the
// service principal the first start creates, and the client secrets issued
// for it here (docs/directory.md, "The administrator's credentials").
//
// The store records (meta):
//   admin_object_ids          JSON list of the administrators' object ids;
//                             the first is the one created here;
//   admin_env_secret_key_ids  {"generation", "current", "keyIds"}: the key
//                             ids of the secrets issued here and not yet
//                             revoked, the one in use, and a count that
//                             each issue raises. (A JSON list of key ids in
//                             earlier releases, read as generation 0.)
// Both are changed only by Store::UpdateMeta, so that several servers
// sharing one store agree. Secrets added through the Graph API are not
// recorded and never revoked here.
//
// Thread-safe. `directory` and `store` must outlive it.
class AdministratorCredentials {
 public:
  struct Claim {
    // The administrators' object ids; the first is the one created here.
    std::vector<std::string> administrators;
    // Set for the one caller whose Claim created the administrator: the
    // principal and its first secret, which exists in the clear only here.
    std::optional<NewServicePrincipal> created;
  };

  struct Issued {
    NewClientSecret secret;  // in the clear, this once
    int64_t generation = 0;
  };

  AdministratorCredentials(Directory& directory, storage::Store& store, int secret_lifetime_days)
      : directory_(directory), store_(store), lifetime_days_(secret_lifetime_days) {}

  // ClaimAdministrator returns the administrators, creating the
  // administrator service principal (`display_name`) when the store has
  // none. Of callers sharing a store (servers starting together), exactly
  // one creates it and gets `created`; a caller that loses the race deletes
  // the principal it made and gets the winner's administrators without a
  // secret.
  StatusOr<Claim> ClaimAdministrator(const std::string& display_name);

  // AbandonClaim undoes the Claim that created `object_id` when its secret
  // could not be delivered (the credentials file could not be written): the
  // record is cleared and the principal deleted, so that the next start
  // creates the administrator again. kAborted if `object_id` is not the
  // recorded administrator (nothing is changed then).
  Status AbandonClaim(const std::string& object_id);

  // Rotate issues a new client secret for the administrator `object_id`,
  // makes it the current one, and revokes every other secret issued here.
  // Rotations are ordered by generation and the highest stays valid: a
  // rotation that a concurrent one superseded before it returns is
  // kAborted, and its secret is revoked (nobody ever holds it). kNotFound if
  // the principal does not exist. Without a record of what was issued (a
  // release that kept none), every secret of the principal counts as issued
  // here.
  StatusOr<Issued> Rotate(const std::string& object_id);

  // Keep makes `key_id`, a secret of `object_id` that a credentials file
  // holds, the current one and revokes every other secret issued here.
  // Without a record of what was issued (a release that kept none), it
  // revokes nothing: a Rotate then takes every secret as issued.
  Status Keep(const std::string& object_id, const std::string& key_id);

  // Called by ClaimAdministrator after it has found no administrator and
  // before it creates one; tests use it to make claims overlap.
  void SetClaimHookForTesting(std::function<void()> hook) { claim_hook_ = std::move(hook); }

 private:
  // Makes `key_id` the current secret in the record and returns its
  // generation. Without a record (a release that kept none), every secret
  // of the principal counts as issued here when `unrecorded_are_issued`.
  StatusOr<int64_t> MakeCurrent(const std::string& object_id, const std::string& key_id,
                                bool unrecorded_are_issued);
  // Removes the recorded secrets other than the current one, then drops
  // them from the record. Returns the current key id it saw.
  StatusOr<std::string> RevokeSuperseded(const std::string& object_id);

  Directory& directory_;
  storage::Store& store_;
  const int lifetime_days_;
  std::function<void()> claim_hook_;
};

}  // namespace coffer::auth
