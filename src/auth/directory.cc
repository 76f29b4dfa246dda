#include "auth/directory.h"

#include <algorithm>
#include <cctype>

#include "auth/jwt.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "crypto/rsa_key.h"
#include "crypto/x509.h"
#include "http/client_address.h"

namespace coffer::auth {
namespace {

constexpr int64_t kVerifiedCacheSeconds = 300;
constexpr size_t kVerifiedCacheMax = 10000;

std::string NewSecretText() {
  // 30 random bytes: 40 characters of base64url, the length of Entra's.
  return Base64UrlEncode(crypto::RandomBytes(30));
}

std::string CacheKey(const std::string& app_id, const std::string& secret) {
  return crypto::Sha256(app_id + '\0' + secret);
}

// A record with iterations 0 holds HMAC-SHA256(key, salt || secret); any
// other holds PBKDF2-HMAC-SHA256(secret, salt, iterations), as every record
// of earlier releases does (docs/directory.md).
std::string KeyedSecretHash(const std::string& key, const std::string& salt,
                            const std::string& secret) {
  return crypto::HmacSha256(key, salt + secret);
}

}  // namespace

Directory::Directory(storage::Store& store, const Clock& clock, std::string tenant_id,
                     DirectoryOptions options)
    : store_(store),
      clock_(clock),
      tenant_id_(std::move(tenant_id)),
      secret_hash_key_(std::move(options.secret_hash_key)),
      client_id_failures_(clock, options.per_client_id, options.max_limited_keys),
      address_failures_(clock, options.per_address, options.max_limited_keys) {}

Directory::~Directory() {
  crypto::SecureWipe(secret_hash_key_);
}

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
  out.secret_key_id = secret.info.key_id;
  out.secret_expires = secret.info.expires;
  return out;
}

StatusOr<NewClientSecret> Directory::AddClientSecret(const std::string& object_id,
                                                     int lifetime_days) {
  if (lifetime_days < 1 || lifetime_days > 3650) {
    return InvalidArgumentError("secret lifetime must be 1-3650 days");
  }
  if (secret_hash_key_.empty()) {
    return FailedPreconditionError("the directory has no key to hash client secrets with");
  }
  // Only service principals have client secrets; a managed identity's
  // credentials are held by the platform.
  RETURN_IF_ERROR(GetServicePrincipal(object_id).status());
  std::string secret = NewSecretText();
  storage::ClientSecretRecord rec;
  rec.key_id = crypto::RandomUuid();
  rec.principal_object_id = object_id;
  rec.salt = crypto::RandomBytes(16);
  rec.iterations = 0;
  rec.hash = KeyedSecretHash(secret_hash_key_, rec.salt, secret);
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

StatusOr<ClientCertificateInfo> Directory::AddClientCertificate(const std::string& object_id,
                                                                const std::string& certificate) {
  RETURN_IF_ERROR(GetServicePrincipal(object_id).status());
  if (certificate.size() > 64 * 1024) {
    return InvalidArgumentError("The certificate is too large.");
  }
  auto parsed = crypto::ParseCertificate(certificate);
  if (!parsed.ok()) {
    return InvalidArgumentError("The key is not a valid X.509 certificate with an RSA key.");
  }
  int64_t now = clock_.NowSeconds();
  if (parsed->not_after <= now) {
    return InvalidArgumentError("The certificate has expired.");
  }
  storage::ClientCertificateRecord rec;
  rec.key_id = crypto::RandomUuid();
  rec.principal_object_id = object_id;
  rec.certificate_der = parsed->der;
  rec.sha1_thumbprint = parsed->sha1_thumbprint;
  rec.sha256_thumbprint = parsed->sha256_thumbprint;
  rec.created = now;
  rec.not_before = parsed->not_before;
  rec.not_after = parsed->not_after;
  Status added = store_.AddClientCertificate(rec);
  if (added.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("The certificate is already registered for this application.");
  }
  RETURN_IF_ERROR(added);
  std::string hex = HexEncode(rec.sha1_thumbprint);
  for (char& c : hex) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return ClientCertificateInfo{rec.key_id, hex, rec.created, rec.not_before, rec.not_after};
}

Status Directory::RemoveClientCertificate(const std::string& object_id, const std::string& key_id) {
  RETURN_IF_ERROR(GetServicePrincipal(object_id).status());
  Status removed = store_.RemoveClientCertificate(object_id, key_id);
  if (removed.code() == StatusCode::kNotFound) {
    return NotFoundError("Key credential '" + key_id + "' does not exist.");
  }
  return removed;
}

StatusOr<storage::PrincipalRecord> Directory::AuthenticateClientAssertion(
    const storage::PrincipalRecord* app, const std::string& assertion,
    const std::vector<std::string>& audiences) {
  auto deny = [](const std::string& why) {
    return UnauthenticatedError("Client assertion failed validation: " + why + ".",
                                "invalid_client");
  };
  constexpr int64_t kSkew = 300;
  auto jwt = ParseJwt(assertion);
  if (!jwt.ok()) {
    return deny(std::string(jwt.status().message()));
  }
  const Json* header = &jwt->header;
  const Json* claims = &jwt->claims;
  std::string alg = StringMember(*header, "alg");
  // SECURITY: only asymmetric algorithms bound to a registered certificate.
  if (alg != "RS256" && alg != "PS256") {
    return deny("unsupported algorithm '" + alg.substr(0, 16) + "'");
  }
  std::optional<std::string> x5t;
  bool sha256 = false;
  if (header->contains("x5t#S256") && (*header)["x5t#S256"].is_string()) {
    x5t = Base64UrlDecode((*header)["x5t#S256"].get<std::string>());
    sha256 = true;
  } else if (header->contains("x5t") && (*header)["x5t"].is_string()) {
    x5t = Base64UrlDecode((*header)["x5t"].get<std::string>());
  }
  if (!x5t) {
    return deny("the assertion names no certificate thumbprint (x5t)");
  }
  if (app == nullptr || app->kind != "ServicePrincipal") {
    return deny("unknown application");
  }
  const std::string& app_id = app->app_id;
  ASSIGN_OR_RETURN(auto certs, store_.ListClientCertificates(app->object_id));
  const storage::ClientCertificateRecord* match = nullptr;
  for (const auto& c : certs) {
    if ((sha256 ? c.sha256_thumbprint : c.sha1_thumbprint) == *x5t) {
      match = &c;
    }
  }
  if (match == nullptr) {
    return deny("the certificate is not registered for the application");
  }
  int64_t now = clock_.NowSeconds();
  if (now < match->not_before - kSkew || now >= match->not_after) {
    return deny("the certificate is not valid now");
  }
  auto cert = crypto::ParseCertificate(match->certificate_der);
  if (!cert.ok()) {
    return InternalError("a stored certificate does not parse");
  }
  bool valid = alg == "RS256" ? cert->public_key->VerifyRs256(jwt->signing_input, jwt->signature)
                              : cert->public_key->VerifyPs256(jwt->signing_input, jwt->signature);
  if (!valid) {
    return deny("the signature does not verify");
  }
  if (StringMember(*claims, "iss") != app_id || StringMember(*claims, "sub") != app_id) {
    return deny("iss and sub must be the client id");
  }
  if (!AudienceMatches(*claims, audiences)) {
    return deny("the audience is not this token endpoint");
  }
  auto seconds = [&](const char* name) { return NumericDate(*claims, name); };
  auto exp = seconds("exp");
  if (!exp || *exp + kSkew <= now) {
    return deny("the assertion is expired or has no exp");
  }
  auto nbf = seconds("nbf");
  if (!nbf) {
    nbf = seconds("iat");
  }
  int64_t start = nbf.value_or(now);
  if (start - kSkew > now || *exp - start > 86400) {
    return deny("the assertion is not yet valid or lives longer than a day");
  }
  std::string jti = StringMember(*claims, "jti");
  if (jti.empty() || jti.size() > 256) {
    return deny("the assertion has no jti");
  }
  // SECURITY: an assertion is good for one token; a replayed one is
  // refused, also after a restart and on another server of the same store.
  ASSIGN_OR_RETURN(bool fresh, store_.RecordAssertionId(app_id, jti, *exp + kSkew, now));
  if (!fresh) {
    return deny("the assertion was already used (jti replay)");
  }
  return *app;
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
  ASSIGN_OR_RETURN(auto certs, store_.ListClientCertificates(object_id));
  for (const auto& c : certs) {
    std::string hex = HexEncode(c.sha1_thumbprint);
    for (char& ch : hex) {
      ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    info.certificates.push_back(
        ClientCertificateInfo{c.key_id, hex, c.created, c.not_before, c.not_after});
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

StatusOr<storage::PrincipalRecord> Directory::AuthenticateClientSecret(
    const std::string& app_id, const std::string& secret, const std::string& client_address,
    int64_t* retry_after_seconds) {
  const Status denied = UnauthenticatedError(
      "AADSTS7000215: Invalid client secret provided, or the application was not found.",
      "invalid_client");
  const std::string address_key =
      client_address.empty() ? std::string() : http::ClientAddressKey(client_address);
  int64_t now = clock_.NowSeconds();
  std::string cache_key = CacheKey(app_id, secret);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = verified_.find(cache_key);
    if (it != verified_.end() && it->second.valid_until > now) {
      return it->second.principal;
    }
  }
  int64_t retry_after = client_id_failures_.RetryAfter(app_id);
  if (!address_key.empty()) {
    retry_after = std::max(retry_after, address_failures_.RetryAfter(address_key));
  }
  const bool limited = retry_after > 0;
  auto failed = [&](const Status& status) -> Status {
    if (status.code() != StatusCode::kUnauthenticated) {
      return status;  // the store failed, not the client
    }
    if (!limited) {
      client_id_failures_.RecordFailure(app_id);
      if (!address_key.empty()) {
        address_failures_.RecordFailure(address_key);
      }
      return status;
    }
    // Failures while limited are not counted: the limit is a rate, and the
    // Retry-After it gives holds.
    if (retry_after_seconds != nullptr) {
      *retry_after_seconds = retry_after;
    }
    return ResourceExhaustedError(
        "Too many failed client secret checks for this client id or from this address. Retry "
        "after " +
            std::to_string(retry_after) + " seconds.",
        "invalid_client");
  };
  if (app_id.empty() || secret.empty() || secret.size() > 256) {
    return failed(denied);
  }
  std::shared_ptr<InFlight> flight;
  if (!limited) {
    std::unique_lock<std::mutex> lock(mu_);
    // Single flight: concurrent requests with the same credential wait for
    // one slow hash instead of each computing it.
    if (auto running = in_flight_.find(cache_key); running != in_flight_.end()) {
      std::shared_ptr<InFlight> other = running->second;
      in_flight_cv_.wait(lock, [&] { return other->result.has_value(); });
      return *other->result;
    }
    flight = std::make_shared<InFlight>();
    in_flight_[cache_key] = flight;
  }
  int64_t secret_expires = 0;
  StatusOr<storage::PrincipalRecord> result =
      VerifyClientSecret(app_id, secret, now, !limited, denied, secret_expires);
  if (!result.ok()) {
    result = failed(result.status());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (result.ok()) {
    if (verified_.size() >= kVerifiedCacheMax) {
      verified_.clear();
    }
    // A cached verification never outlives the secret itself.
    verified_[cache_key] =
        CacheEntry{*result, std::min(now + kVerifiedCacheSeconds, secret_expires)};
  }
  if (flight) {
    flight->result = result;
    in_flight_.erase(cache_key);
    in_flight_cv_.notify_all();
  }
  return result;
}

StatusOr<ClientSecretInfo> Directory::FindClientSecret(const std::string& object_id,
                                                       const std::string& secret) {
  ASSIGN_OR_RETURN(auto records, store_.ListClientSecrets(object_id));
  const storage::ClientSecretRecord* match =
      MatchSecret(records, secret, clock_.NowSeconds(), true);
  if (match == nullptr) {
    return UnauthenticatedError("the secret is not one of the principal's");
  }
  const auto& rec = *match;
  return ClientSecretInfo{rec.key_id, rec.hint, rec.created, rec.expires};
}

const storage::ClientSecretRecord* Directory::MatchSecret(
    const std::vector<storage::ClientSecretRecord>& records, const std::string& secret, int64_t now,
    bool allow_slow) const {
  // Keyed hashes first: a match there spares the slow hashes of older
  // records.
  for (const auto& rec : records) {
    if (rec.expires > now && rec.iterations == 0 && !secret_hash_key_.empty() &&
        crypto::ConstantTimeEquals(KeyedSecretHash(secret_hash_key_, rec.salt, secret), rec.hash)) {
      return &rec;
    }
  }
  if (!allow_slow) {
    return nullptr;
  }
  for (const auto& rec : records) {
    if (rec.expires > now && rec.iterations > 0 &&
        crypto::ConstantTimeEquals(
            crypto::Pbkdf2Sha256(secret, rec.salt, rec.iterations, rec.hash.size()), rec.hash)) {
      return &rec;
    }
  }
  return nullptr;
}

StatusOr<storage::PrincipalRecord> Directory::VerifyClientSecret(const std::string& app_id,
                                                                 const std::string& secret,
                                                                 int64_t now, bool allow_slow,
                                                                 const Status& denied,
                                                                 int64_t& secret_expires) {
  auto principal = store_.GetPrincipalByAppId(app_id);
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kNotFound) {
      return denied;
    }
    return principal.status();
  }
  ASSIGN_OR_RETURN(auto records, store_.ListClientSecrets(principal->object_id));
  const storage::ClientSecretRecord* match = MatchSecret(records, secret, now, allow_slow);
  if (match == nullptr) {
    return denied;
  }
  secret_expires = match->expires;
  return *principal;
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

void Directory::ForgetAll() {
  std::lock_guard<std::mutex> lock(mu_);
  verified_.clear();
}

}  // namespace coffer::auth
