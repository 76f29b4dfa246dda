#include "auth/users.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

constexpr size_t kMaxUserPrincipalName = 113;
constexpr size_t kMaxAlias = 64;
constexpr size_t kMaxDisplayName = 256;
constexpr size_t kMaxNamePart = 64;
constexpr size_t kMinPassword = 8;

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsAliasChar(char c) {
  return IsAsciiAlnum(c) || std::string_view("'.-_!#^~").find(c) != std::string_view::npos;
}

bool IsNicknameChar(char c) {
  // Exchange's mailNickname: printable ASCII without these.
  return c > ' ' && c < 0x7f &&
         std::string_view("@()\\[]\";:<>,").find(c) == std::string_view::npos;
}

Status BadProperty(std::string_view property) {
  return InvalidArgumentError("Invalid value specified for property '" + std::string(property) +
                              "' of resource 'User'.");
}

Status CheckText(std::string_view property, std::string_view value, size_t min, size_t max) {
  if (value.size() < min || value.size() > max || !IsValidUtf8(value)) {
    return BadProperty(property);
  }
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return BadProperty(property);
    }
  }
  return OkStatus();
}

Status CheckNickname(std::string_view nickname) {
  if (nickname.empty() || nickname.size() > kMaxNamePart ||
      !std::all_of(nickname.begin(), nickname.end(), IsNicknameChar)) {
    return BadProperty("mailNickname");
  }
  return OkStatus();
}

// The store's "taken" answer in Graph's words.
Status NameTaken(Status s) {
  if (s.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError(
        "Another object with the same value for property userPrincipalName already exists.");
  }
  return s;
}

}  // namespace

Users::Users(storage::Store& store, const Clock& clock, std::string tenant_id, UserOptions options)
    : store_(store),
      clock_(clock),
      tenant_id_(std::move(tenant_id)),
      options_(options),
      dummy_hash_(
          crypto::HashPassword(Base64UrlEncode(crypto::RandomBytes(18)), options.cost).value()),
      address_failures_(clock, options.per_address, options.max_limited_keys),
      unknown_failures_(clock, FailureLimit{options.lockout_threshold, options.lockout_seconds},
                        options.max_limited_keys),
      hash_slots_(options.hash_slots, options.hash_queue) {}

Status Users::PasswordPolicy(std::string_view password) {
  if (password.size() < kMinPassword || password.size() > crypto::kMaxPasswordBytes) {
    return InvalidArgumentError(
        "The specified password does not comply with password complexity requirements: it "
        "must have 8 to 256 characters.");
  }
  bool lower = false, upper = false, digit = false, symbol = false;
  for (char c : password) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError(
          "The specified password does not comply with password complexity requirements: it "
          "may not hold control characters.");
    }
    lower = lower || (c >= 'a' && c <= 'z');
    upper = upper || (c >= 'A' && c <= 'Z');
    digit = digit || (c >= '0' && c <= '9');
    symbol = symbol || !IsAsciiAlnum(c);
  }
  if (int{lower} + int{upper} + int{digit} + int{symbol} < 3) {
    return InvalidArgumentError(
        "The specified password does not comply with password complexity requirements: it "
        "must hold three of lower case letters, upper case letters, digits and symbols.");
  }
  return OkStatus();
}

Status Users::ValidUserPrincipalName(std::string_view upn) {
  size_t at = upn.find('@');
  if (upn.size() > kMaxUserPrincipalName || at == std::string_view::npos || at == 0 ||
      at > kMaxAlias || upn.find('@', at + 1) != std::string_view::npos) {
    return BadProperty("userPrincipalName");
  }
  std::string_view alias = upn.substr(0, at);
  std::string_view domain = upn.substr(at + 1);
  if (alias.front() == '.' || alias.back() == '.' ||
      !std::all_of(alias.begin(), alias.end(), IsAliasChar)) {
    return BadProperty("userPrincipalName");
  }
  for (std::string_view label : Split(domain, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(),
                     [](char c) { return IsAsciiAlnum(c) || c == '-'; })) {
      return BadProperty("userPrincipalName");
    }
  }
  return OkStatus();
}

StatusOr<std::string> Users::HashNew(std::string_view password) {
  RETURN_IF_ERROR(PasswordPolicy(password));
  std::optional<StatusOr<std::string>> hashed;
  if (!hash_slots_.Run([&] { hashed = crypto::HashPassword(password, options_.cost); })) {
    return UnavailableError("Too many sign-ins are being checked; try again shortly.");
  }
  return std::move(*hashed);
}

StatusOr<storage::UserRecord> Users::Create(NewUser user) {
  struct Wipe {
    std::string& s;
    ~Wipe() { crypto::SecureWipe(s); }
  } wipe{user.password};
  RETURN_IF_ERROR(CheckText("displayName", user.display_name, 1, kMaxDisplayName));
  RETURN_IF_ERROR(ValidUserPrincipalName(user.user_principal_name));
  RETURN_IF_ERROR(CheckNickname(user.mail_nickname));
  RETURN_IF_ERROR(CheckText("givenName", user.given_name, 0, kMaxNamePart));
  RETURN_IF_ERROR(CheckText("surname", user.surname, 0, kMaxNamePart));
  ASSIGN_OR_RETURN(std::string hash, HashNew(user.password));
  int64_t now = clock_.NowSeconds();
  storage::PrincipalRecord principal;
  principal.object_id = crypto::RandomUuid();
  principal.app_id = "user:" + principal.object_id;
  principal.tenant_id = tenant_id_;
  principal.display_name = user.display_name;
  principal.kind = "User";
  principal.created = now;
  storage::UserRecord record;
  record.user_principal_name = user.user_principal_name;
  record.mail_nickname = user.mail_nickname;
  record.given_name = user.given_name;
  record.surname = user.surname;
  record.account_enabled = user.account_enabled;
  record.password_hash = std::move(hash);
  record.password_changed = now;
  record.force_change_password = user.force_change_password;
  record.created = now;
  RETURN_IF_ERROR(NameTaken(store_.CreateUser(principal, record)));
  return store_.GetUser(principal.object_id);
}

StatusOr<storage::UserRecord> Users::Find(const std::string& id_or_name) {
  if (id_or_name.find('@') != std::string::npos) {
    return store_.GetUserByName(id_or_name);
  }
  return store_.GetUser(id_or_name);
}

StatusOr<std::vector<storage::UserRecord>> Users::List() {
  return store_.ListUsers();
}

StatusOr<storage::UserRecord> Users::Update(const std::string& object_id, UserChange change) {
  struct Wipe {
    std::optional<std::string>& s;
    ~Wipe() {
      if (s) {
        crypto::SecureWipe(*s);
      }
    }
  } wipe{change.password};
  if (change.display_name) {
    RETURN_IF_ERROR(CheckText("displayName", *change.display_name, 1, kMaxDisplayName));
  }
  if (change.user_principal_name) {
    RETURN_IF_ERROR(ValidUserPrincipalName(*change.user_principal_name));
  }
  if (change.mail_nickname) {
    RETURN_IF_ERROR(CheckNickname(*change.mail_nickname));
  }
  if (change.given_name) {
    RETURN_IF_ERROR(CheckText("givenName", *change.given_name, 0, kMaxNamePart));
  }
  if (change.surname) {
    RETURN_IF_ERROR(CheckText("surname", *change.surname, 0, kMaxNamePart));
  }
  // The slow hash runs before the write, so the write is short.
  std::optional<std::string> hash;
  if (change.password) {
    ASSIGN_OR_RETURN(hash, HashNew(*change.password));
  }
  int64_t now = clock_.NowSeconds();
  auto updated = store_.UpdateUser(object_id, [&](storage::UserRecord& u) {
    if (change.display_name)
      u.display_name = *change.display_name;
    if (change.user_principal_name)
      u.user_principal_name = *change.user_principal_name;
    if (change.mail_nickname)
      u.mail_nickname = *change.mail_nickname;
    if (change.given_name)
      u.given_name = *change.given_name;
    if (change.surname)
      u.surname = *change.surname;
    if (change.force_change_password)
      u.force_change_password = *change.force_change_password;
    if (change.account_enabled) {
      if (u.account_enabled && !*change.account_enabled) {
        u.sessions_valid_from = std::max(now, u.sessions_valid_from + 1);
      }
      u.account_enabled = *change.account_enabled;
    }
    if (hash) {
      u.password_hash = *hash;
      u.password_changed = now;
      u.sessions_valid_from = std::max(now, u.sessions_valid_from + 1);
      u.failed_sign_ins = 0;
      u.locked_until = 0;
      u.lockouts = 0;
    }
    return OkStatus();
  });
  return updated.ok() ? updated : StatusOr<storage::UserRecord>(NameTaken(updated.status()));
}

StatusOr<storage::UserRecord> Users::RevokeSessions(const std::string& object_id) {
  int64_t now = clock_.NowSeconds();
  return store_.UpdateUser(object_id, [&](storage::UserRecord& u) {
    u.sessions_valid_from = std::max(now, u.sessions_valid_from + 1);
    return OkStatus();
  });
}

Status Users::Delete(const std::string& object_id) {
  RETURN_IF_ERROR(store_.GetUser(object_id).status());
  return store_.DeletePrincipal(object_id);
}

bool WorkSlots::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (running_ >= slots_) {
    if (waiting_ >= queue_) {
      return false;
    }
    ++waiting_;
    free_.wait(lock, [&] { return running_ < slots_; });
    --waiting_;
  }
  ++running_;
  return true;
}

void WorkSlots::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
  }
  free_.notify_one();
}

StatusOr<SignInResult> Users::SignIn(const std::string& user_principal_name,
                                     const std::string& password,
                                     const std::string& client_address) {
  std::optional<storage::UserRecord> user;
  if (user_principal_name.size() <= kMaxUserPrincipalName) {
    auto found = store_.GetUserByName(user_principal_name);
    if (found.ok()) {
      user = std::move(*found);
    } else if (found.status().code() != StatusCode::kNotFound) {
      return found.status();
    }
  }
  SignInResult out;
  // Unknown names are limited under their own (bounded, lower-case) key.
  std::string unknown_key = AsciiLower(user_principal_name.substr(0, kMaxUserPrincipalName));
  if (!user) {
    if (int64_t wait = unknown_failures_.RetryAfter(unknown_key); wait > 0) {
      out.failure = SignInFailure::kLocked;
      out.retry_after = wait;
      return out;
    }
  }
  ASSIGN_OR_RETURN(out, Check(std::move(user), password, client_address));
  if (out.failure == SignInFailure::kBadCredentials && out.user.object_id.empty()) {
    unknown_failures_.RecordFailure(unknown_key);
  }
  return out;
}

StatusOr<SignInResult> Users::Check(std::optional<storage::UserRecord> user,
                                    const std::string& password,
                                    const std::string& client_address) {
  SignInResult out;
  int64_t now = clock_.NowSeconds();
  if (int64_t wait = address_failures_.RetryAfter(client_address); wait > 0) {
    out.failure = SignInFailure::kThrottled;
    out.retry_after = wait;
    return out;
  }
  if (user && user->locked_until > now) {
    // SECURITY: no hash runs for a locked user, right password or not.
    out.failure = SignInFailure::kLocked;
    out.retry_after = user->locked_until - now;
    return out;
  }
  // An unknown user's guess costs the same hash, so that time does not tell
  // which names exist.
  const std::string& encoded = user ? user->password_hash : dummy_hash_;
  bool match = false;
  bool rehash = false;
  std::string new_hash;
  bool ran = hash_slots_.Run([&] {
    password_checks_.fetch_add(1);
    auto verified = password.size() <= crypto::kMaxPasswordBytes
                        ? crypto::VerifyPassword(encoded, password)
                        : StatusOr<bool>(false);
    match = user && verified.ok() && *verified;
    rehash = match && crypto::NeedsRehash(encoded, options_.cost);
    if (rehash) {
      auto made = crypto::HashPassword(password, options_.cost);
      rehash = made.ok();
      if (made.ok()) {
        new_hash = std::move(*made);
      }
    }
  });
  if (!ran) {
    out.failure = SignInFailure::kBusy;
    return out;
  }
  if (!match) {
    address_failures_.RecordFailure(client_address);
    out.failure = SignInFailure::kBadCredentials;
    if (!user) {
      return out;
    }
    // Counted in the store, so every server and a restart see one count; a
    // lockout another server began meanwhile is not counted again.
    auto counted = store_.UpdateUser(user->object_id, [&](storage::UserRecord& u) {
      if (u.locked_until > now) {
        return OkStatus();
      }
      if (++u.failed_sign_ins >= options_.lockout_threshold) {
        int64_t lockout = options_.lockout_seconds;
        for (int64_t i = 0; i < u.lockouts && lockout < options_.max_lockout_seconds; ++i) {
          lockout *= 2;
        }
        u.locked_until = now + std::min(lockout, options_.max_lockout_seconds);
        u.lockouts += 1;
        u.failed_sign_ins = 0;
      }
      return OkStatus();
    });
    if (!counted.ok() && counted.status().code() != StatusCode::kNotFound) {
      return counted.status();
    }
    out.user.object_id = user->object_id;
    return out;
  }
  if (!user->account_enabled) {
    out.failure = SignInFailure::kDisabled;
    out.user = std::move(*user);
    return out;
  }
  if (user->failed_sign_ins != 0 || user->lockouts != 0 || rehash) {
    auto reset = store_.UpdateUser(user->object_id, [&](storage::UserRecord& u) {
      u.failed_sign_ins = 0;
      u.lockouts = 0;
      if (rehash && u.password_hash == encoded) {
        u.password_hash = new_hash;
      }
      return OkStatus();
    });
    if (!reset.ok()) {
      return reset.status();
    }
    user = std::move(*reset);
  }
  crypto::SecureWipe(new_hash);
  out.must_change = user->force_change_password;
  out.user = std::move(*user);
  return out;
}

StatusOr<SignInResult> Users::ChangePassword(const std::string& object_id,
                                             const std::string& current, std::string replacement,
                                             const std::string& client_address) {
  struct Wipe {
    std::string& s;
    ~Wipe() { crypto::SecureWipe(s); }
  } wipe{replacement};
  ASSIGN_OR_RETURN(storage::UserRecord user, store_.GetUser(object_id));
  ASSIGN_OR_RETURN(SignInResult checked, Check(std::move(user), current, client_address));
  if (checked.failure != SignInFailure::kNone) {
    return checked;
  }
  if (replacement == current) {
    return InvalidArgumentError("The new password must differ from the current one.");
  }
  ASSIGN_OR_RETURN(std::string hash, HashNew(replacement));
  int64_t now = clock_.NowSeconds();
  const std::string checked_hash = checked.user.password_hash;
  const int64_t checked_sessions = checked.user.sessions_valid_from;
  ASSIGN_OR_RETURN(checked.user, store_.UpdateUser(object_id, [&](storage::UserRecord& u) {
    // SECURITY: only over the password that was checked. A reset or a
    // revocation that landed meanwhile (an administrator locking out
    // whoever knew the old one) wins.
    if (u.password_hash != checked_hash || u.sessions_valid_from != checked_sessions) {
      return AbortedError("The password was changed or reset meanwhile; sign in again.");
    }
    u.password_hash = hash;
    u.password_changed = now;
    u.force_change_password = false;
    u.sessions_valid_from = std::max(now, u.sessions_valid_from + 1);
    return OkStatus();
  }));
  checked.must_change = false;
  return checked;
}

}  // namespace coffer::auth
