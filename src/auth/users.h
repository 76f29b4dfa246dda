#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/failure_limiter.h"
#include "common/clock.h"
#include "common/status.h"
#include "crypto/password_hash.h"
#include "storage/store.h"

namespace coffer::auth {

// WorkSlots runs at most `slots` pieces of work at once, with at most
// `queue` more waiting for a slot; work beyond that is refused, not queued
// (so a flood of password checks costs bounded memory and time).
// Thread-safe.
class WorkSlots {
 public:
  WorkSlots(int slots, int queue) : slots_(slots), queue_(queue) {}
  // Run runs `work` once a slot is free; false, without running it, when
  // the slots and the queue are full.
  template <typename Work>
  bool Run(Work&& work) {
    if (!Acquire()) {
      return false;
    }
    struct Release {
      WorkSlots* slots;
      ~Release() { slots->Release(); }
    } release{this};
    work();
    return true;
  }

 private:
  bool Acquire();
  void Release();

  const int slots_;
  const int queue_;
  std::mutex mu_;
  std::condition_variable free_;
  int running_ = 0;  // guarded by mu_
  int waiting_ = 0;  // guarded by mu_
};

// A new user, as Graph's POST /v1.0/users gives it.
struct NewUser {
  std::string display_name;
  std::string user_principal_name;
  std::string mail_nickname;
  std::string given_name;
  std::string surname;
  bool account_enabled = true;
  std::string password;  // wiped by Create
  bool force_change_password = false;
};

// What a PATCH changes; absent members are kept.
struct UserChange {
  std::optional<std::string> display_name;
  std::optional<std::string> user_principal_name;
  std::optional<std::string> mail_nickname;
  std::optional<std::string> given_name;
  std::optional<std::string> surname;
  std::optional<bool> account_enabled;
  std::optional<std::string> password;  // a reset by an administrator; wiped by Update
  std::optional<bool> force_change_password;
};

struct UserOptions {
  // What each password hash costs (crypto::LeastCost in tests).
  crypto::PasswordHashCost cost = crypto::InteractiveCost();
  // A user whose password fails this many times in a row is locked out for
  // `lockout_seconds`, doubled with each lockout in a row, at most
  // `max_lockout_seconds` (Entra's smart lockout: 10 and 60 s).
  int64_t lockout_threshold = 10;
  int64_t lockout_seconds = 60;
  int64_t max_lockout_seconds = 1800;
  // Failed sign-ins per client address (http::ClientAddressKey), across
  // users, before further ones are refused without a check.
  FailureLimit per_address{30, 2};
  size_t max_limited_keys = 16384;
  // Password checks that run at once (each holds `cost.memory_bytes`), and
  // how many more may wait; beyond that a sign-in is kUnavailable.
  int hash_slots = 2;
  int hash_queue = 16;
};

// Why a sign-in failed, with Entra's AADSTS code for each.
enum class SignInFailure {
  kNone,
  kBadCredentials,  // 50126: unknown user or wrong password, never told apart
  kLocked,          // 50053
  kDisabled,        // 50057: told only after the right password
  kThrottled,       // the client address failed too often
  kBusy,            // every password check slot and queue place taken
};

struct SignInResult {
  SignInFailure failure = SignInFailure::kNone;
  storage::UserRecord user;  // when failure is kNone or kDisabled
  int64_t retry_after = 0;   // seconds, for kLocked and kThrottled
  bool must_change = false;  // the password is to be changed before use
};

// Users manages the directory's people (docs/users.md): their records,
// password policy and hashes, and the checks of a sign-in with lockout.
//
// Thread-safe. `store` and `clock` must outlive it.
class Users {
 public:
  Users(storage::Store& store, const Clock& clock, std::string tenant_id, UserOptions options);
  Users(const Users&) = delete;
  Users& operator=(const Users&) = delete;

  // Create validates and stores a user. kInvalidArgument naming the property
  // that is wrong (its Graph name), or a password that fails the policy;
  // kAlreadyExists if the user principal name is taken in any case.
  StatusOr<storage::UserRecord> Create(NewUser user);
  // Find takes an object id, or a user principal name (anything with '@').
  StatusOr<storage::UserRecord> Find(const std::string& id_or_name);
  StatusOr<std::vector<storage::UserRecord>> List();
  // Update applies `change` in one write. A new password (a reset) or a
  // disabled account also ends the user's sessions: tokens issued before
  // are refused (sessions_valid_from) and a lockout is lifted by a reset.
  StatusOr<storage::UserRecord> Update(const std::string& object_id, UserChange change);
  // RevokeSessions refuses every token issued to the user until now.
  StatusOr<storage::UserRecord> RevokeSessions(const std::string& object_id);
  // Delete removes the user (kNotFound for any other principal).
  Status Delete(const std::string& object_id);

  // SignIn checks a user principal name and password, counting failures
  // toward the user's lockout (shared through the store by every server)
  // and the client address's limit. Unknown users cost the same hash and
  // get the same answer as a wrong password. A locked user is answered
  // without a check. Errors are the store's.
  StatusOr<SignInResult> SignIn(const std::string& user_principal_name, const std::string& password,
                                const std::string& client_address);
  // ChangePassword is a user's own change: `current` is checked as a
  // sign-in is (and counts toward lockout); `replacement` must meet the
  // policy. On success the user's other sessions end.
  StatusOr<SignInResult> ChangePassword(const std::string& object_id, const std::string& current,
                                        std::string replacement, const std::string& client_address);

  // PasswordPolicy: 8 to 256 characters, three of lower case, upper case,
  // digits and symbols (Entra's). kInvalidArgument otherwise.
  static Status PasswordPolicy(std::string_view password);
  // A user principal name: alias@domain, at most 113 characters, the alias
  // at most 64 of A-Z a-z 0-9 ' . - _ ! # ^ ~ (not starting or ending with
  // '.'), the domain dotted labels of letters, digits and '-'.
  static Status ValidUserPrincipalName(std::string_view upn);

  // The password hashes checked so far (a locked user's sign-in runs none).
  uint64_t password_checks() const { return password_checks_.load(); }

 private:
  StatusOr<SignInResult> Check(std::optional<storage::UserRecord> user, const std::string& password,
                               const std::string& client_address);
  StatusOr<std::string> HashNew(std::string_view password);

  storage::Store& store_;
  const Clock& clock_;
  const std::string tenant_id_;
  const UserOptions options_;
  // What an unknown user's password is checked against, for equal cost.
  const std::string dummy_hash_;
  FailureLimiter address_failures_;
  // Unknown names fail toward a lockout too, so that lockouts do not tell
  // which names exist.
  FailureLimiter unknown_failures_;
  WorkSlots hash_slots_;
  std::atomic<uint64_t> password_checks_{0};
};

}  // namespace coffer::auth
