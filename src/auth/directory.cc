#include "auth/directory.h"

#include "common/encoding.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

// SECURITY: client secrets are stored as PBKDF2-HMAC-SHA256 with a random
// 16-byte salt; the iteration count is kept per record so it can be raised.
constexpr int kPbkdf2Iterations = 120000;
constexpr int64_t kVerifiedCacheSeconds = 300;
constexpr size_t kVerifiedCacheMax = 10000;

std::string NewSecretText() {
  // 30 random bytes: 40 characters of base64url, the length of Entra's.
  return Base64UrlEncode(crypto::RandomBytes(30));
}

std::string CacheKey(const std::string& app_id, const std::string& secret) {
  return crypto::Sha256(app_id + '\0' + secret);
}

}  // namespace

Directory::Directory(storage::Store& store, const Clock& clock, std::string tenant_id)
    : store_(store), clock_(clock), tenant_id_(std::move(tenant_id)) {}

StatusOr<NewServicePrincipal> Directory::CreateServicePrincipal(const std::string& display_name,
                                                                int secret_lifetime_days) {
  if (display_name.empty() || display_name.size() > 120) {
    return InvalidArgumentError("display name must be 1-120 characters");
  }
  NewServicePrincipal out;
  out.principal.object_id = crypto::RandomUuid();
  out.principal.app_id = crypto::RandomUuid();
  out.principal.tenant_id = tenant_id_;
  out.principal.display_name = display_name;
  out.principal.kind = "ServicePrincipal";
  out.principal.created = clock_.NowSeconds();
  RETURN_IF_ERROR(store_.CreatePrincipal(out.principal));
  ASSIGN_OR_RETURN(NewClientSecret secret,
                   AddClientSecret(out.principal.object_id, secret_lifetime_days));
  out.client_secret = std::move(secret.secret);
  out.secret_expires = out.principal.created + int64_t{secret_lifetime_days} * 86400;
  return out;
}

StatusOr<NewClientSecret> Directory::AddClientSecret(const std::string& object_id,
                                                     int lifetime_days) {
  if (lifetime_days < 1 || lifetime_days > 3650) {
    return InvalidArgumentError("secret lifetime must be 1-3650 days");
  }
  // Only service principals have client secrets; a managed identity's
  // credentials are held by the platform.
  RETURN_IF_ERROR(GetServicePrincipal(object_id).status());
  std::string secret = NewSecretText();
  storage::ClientSecretRecord rec;
  rec.key_id = crypto::RandomUuid();
  rec.principal_object_id = object_id;
  rec.salt = crypto::RandomBytes(16);
  rec.iterations = kPbkdf2Iterations;
  rec.hash = crypto::Pbkdf2Sha256(secret, rec.salt, rec.iterations, 32);
  rec.hint = secret.substr(0, 3);
  rec.created = clock_.NowSeconds();
  rec.expires = rec.created + int64_t{lifetime_days} * 86400;
  Status added = store_.AddClientSecret(rec);
  if (added.code() == StatusCode::kNotFound) {
    return NotFoundError("Service principal '" + object_id + "' does not exist.");
  }
  RETURN_IF_ERROR(added);
  return NewClientSecret{ClientSecretInfo{rec.key_id, rec.hint, rec.created, rec.expires},
                         std::move(secret)};
}

Status Directory::RemoveClientSecret(const std::string& object_id, const std::string& key_id) {
  RETURN_IF_ERROR(GetServicePrincipal(object_id).status());
  Status removed = store_.RemoveClientSecret(object_id, key_id);
  Forget(object_id);
  if (removed.code() == StatusCode::kNotFound) {
    return NotFoundError("Password credential '" + key_id + "' does not exist.");
  }
  return removed;
}

StatusOr<ServicePrincipalInfo> Directory::GetServicePrincipal(const std::string& object_id) {
  auto p = store_.GetPrincipal(object_id);
  if (p.ok() && p->kind != "ServicePrincipal") {
    p = NotFoundError("not a service principal");
  }
  if (!p.ok()) {
    if (p.status().code() == StatusCode::kNotFound) {
      return NotFoundError("Service principal '" + object_id + "' does not exist.");
    }
    return p.status();
  }
  ServicePrincipalInfo info;
  info.principal = std::move(p).value();
  ASSIGN_OR_RETURN(auto secrets, store_.ListClientSecrets(object_id));
  for (const auto& c : secrets) {
    info.secrets.push_back(ClientSecretInfo{c.key_id, c.hint, c.created, c.expires});
  }
  return info;
}

StatusOr<std::vector<ServicePrincipalInfo>> Directory::ListServicePrincipals() {
  ASSIGN_OR_RETURN(auto principals, store_.ListPrincipals());
  std::vector<ServicePrincipalInfo> out;
  for (const auto& p : principals) {
    if (p.kind != "ServicePrincipal") {
      continue;
    }
    ASSIGN_OR_RETURN(ServicePrincipalInfo info, GetServicePrincipal(p.object_id));
    out.push_back(std::move(info));
  }
  return out;
}

Status Directory::DeleteServicePrincipal(const std::string& object_id) {
  // Managed identities are deleted through their ARM resource only.
  auto existing = store_.GetPrincipal(object_id);
  if (existing.ok() && existing->kind != "ServicePrincipal") {
    return NotFoundError("Service principal '" + object_id + "' does not exist.");
  }
  Status deleted = store_.DeletePrincipal(object_id);
  Forget(object_id);
  if (deleted.code() == StatusCode::kNotFound) {
    return NotFoundError("Service principal '" + object_id + "' does not exist.");
  }
  return deleted;
}

StatusOr<storage::PrincipalRecord> Directory::AuthenticateClientSecret(const std::string& app_id,
                                                                       const std::string& secret) {
  const Status denied = UnauthenticatedError(
      "AADSTS7000215: Invalid client secret provided, or the application was not found.",
      "invalid_client");
  if (app_id.empty() || secret.empty() || secret.size() > 256) {
    return denied;
  }
  int64_t now = clock_.NowSeconds();
  std::string cache_key = CacheKey(app_id, secret);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = verified_.find(cache_key);
    if (it != verified_.end() && it->second.valid_until > now) {
      return it->second.principal;
    }
  }
  auto principal = store_.GetPrincipalByAppId(app_id);
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kNotFound) {
      return denied;
    }
    return principal.status();
  }
  ASSIGN_OR_RETURN(auto secrets, store_.ListClientSecrets(principal->object_id));
  for (const auto& rec : secrets) {
    if (rec.expires <= now) {
      continue;
    }
    std::string hash = crypto::Pbkdf2Sha256(secret, rec.salt, rec.iterations, rec.hash.size());
    if (crypto::ConstantTimeEquals(hash, rec.hash)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (verified_.size() >= kVerifiedCacheMax) {
        verified_.clear();
      }
      int64_t until = std::min(now + kVerifiedCacheSeconds, rec.expires);
      verified_[cache_key] = CacheEntry{*principal, until};
      return *principal;
    }
  }
  return denied;
}

void Directory::Forget(const std::string& object_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = verified_.begin(); it != verified_.end();) {
    if (it->second.principal.object_id == object_id) {
      it = verified_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace coffer::auth
