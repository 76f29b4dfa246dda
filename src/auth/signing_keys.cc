#include "auth/signing_keys.h"

#include <filesystem>
#include <system_error>

#include "common/encoding.h"
#include "common/files.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

constexpr int kKeyBits = 2048;
constexpr char kCurrentFile[] = "signing-current.pem";
constexpr char kPreviousFile[] = "signing-previous.pem";
// The sealed form (docs/encryption.md): kSealedPrefix, then base64url of
// AES-256-GCM(nonce || ciphertext || tag) under the derived key, with
// kSealedAad as associated data, over {"current":PEM,"previous":[PEM]}.
constexpr char kSealedPrefix[] = "csk1.";
constexpr char kSealedAad[] = "coffer-signing-keys-v1";
constexpr char kSealingKeyLabel[] = "coffer signing keys v1";

// The private keys of a set, as PEM.
struct Pems {
  std::string current;
  std::vector<std::string> previous;

  Pems() = default;
  Pems(Pems&&) = default;
  Pems& operator=(Pems&&) = default;
  Pems(const Pems&) = delete;
  Pems& operator=(const Pems&) = delete;
  ~Pems() {
    crypto::SecureWipe(current);
    for (auto& p : previous) {
      crypto::SecureWipe(p);
    }
  }
};

std::string Seal(const std::string& key, const Pems& pems) {
  Json previous = Json::array();
  for (const auto& p : pems.previous) {
    previous.push_back(p);
  }
  std::string plain = ToJson(Json{{"current", pems.current}, {"previous", previous}});
  std::string sealed = kSealedPrefix + Base64UrlEncode(crypto::AesGcmSeal(key, plain, kSealedAad));
  crypto::SecureWipe(plain);
  return sealed;
}

// SECURITY: the messages name what is wrong, never a byte of the value.
StatusOr<Pems> Unseal(const std::string& key, const std::string& sealed) {
  const Status garbled =
      DataLossError("the signing keys stored in the database are malformed (meta '" +
                    std::string(SigningKeySet::kMetaKey) + "')");
  if (!StartsWith(sealed, kSealedPrefix)) {
    return garbled;
  }
  auto bytes = Base64UrlDecode(std::string_view(sealed).substr(sizeof(kSealedPrefix) - 1));
  if (!bytes) {
    return garbled;
  }
  auto plain = crypto::AesGcmOpen(key, *bytes, kSealedAad);
  if (!plain.ok()) {
    return DataLossError(
        "the signing keys stored in the database do not open with this master key (every "
        "server sharing the database needs the same master key) or were altered");
  }
  auto json = ParseJson(*plain, 4);
  crypto::SecureWipe(*plain);
  Pems pems;
  if (!json || !json->is_object()) {
    return garbled;
  }
  auto current = json->find("current");
  auto previous = json->find("previous");
  if (current == json->end() || !current->is_string() || previous == json->end() ||
      !previous->is_array()) {
    return garbled;
  }
  pems.current = current->get<std::string>();
  for (const auto& p : *previous) {
    if (!p.is_string()) {
      return garbled;
    }
    pems.previous.push_back(p.get<std::string>());
  }
  return pems;
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// The key files of `dir` as servers kept them before the store held the
// set, or a fresh key when there are none.
StatusOr<Pems> LegacyOrFresh(const std::string& dir, bool* adopted) {
  const std::string current_path = dir + "/" + kCurrentFile;
  const std::string previous_path = dir + "/" + kPreviousFile;
  Pems pems;
  *adopted = FileExists(current_path);
  if (!*adopted) {
    ASSIGN_OR_RETURN(auto key, crypto::RsaKey::Generate(kKeyBits));
    pems.current = key->PrivatePem();
    return pems;
  }
  for (const std::string& path : {current_path, previous_path}) {
    if (path == previous_path && !FileExists(path)) {
      break;
    }
    ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
    if (!crypto::RsaKey::FromPrivatePem(pem).ok()) {
      return DataLossError("signing key file " + path + " is corrupt");
    }
    if (path == current_path) {
      pems.current = std::move(pem);
    } else {
      pems.previous.push_back(std::move(pem));
    }
  }
  return pems;
}

}  // namespace

std::string SigningKeySet::SealingKeyFor(std::string_view master_key) {
  return crypto::HkdfSha256(master_key, "", kSealingKeyLabel, crypto::kAes256KeySize);
}

std::string SigningKeySet::KidFor(const crypto::RsaKey& key) {
  return Base64UrlEncode(crypto::Sha256(key.Modulus()).substr(0, 15));
}

SigningKeySet::~SigningKeySet() {
  crypto::SecureWipe(sealing_key_);
}

StatusOr<std::unique_ptr<SigningKeySet>> SigningKeySet::Open(storage::Store& store,
                                                             std::string sealing_key,
                                                             const std::string& legacy_dir,
                                                             const Clock& clock) {
  if (sealing_key.size() != crypto::kAes256KeySize) {
    return InvalidArgumentError("the signing keys' sealing key must be 32 bytes");
  }
  std::unique_ptr<SigningKeySet> set(new SigningKeySet());
  set->store_ = &store;
  set->clock_ = &clock;
  set->sealing_key_ = std::move(sealing_key);
  ASSIGN_OR_RETURN(std::optional<std::string> stored, store.GetMeta(kMetaKey));
  if (!stored) {
    bool adopted = false;
    ASSIGN_OR_RETURN(Pems pems, LegacyOrFresh(legacy_dir, &adopted));
    const std::string candidate = Seal(set->sealing_key_, pems);
    // Servers starting together on an empty store each propose a set; the
    // first stored is everyone's.
    ASSIGN_OR_RETURN(stored, store.UpdateMeta(kMetaKey, [&](const std::optional<std::string>& cur) {
      return StatusOr<std::string>(cur ? *cur : candidate);
    }));
    if (adopted && *stored == candidate) {
      COFFER_LOG(kInfo) << "signing keys: the key files of " << legacy_dir
                        << " are now kept in the store (the files are no longer used)";
    }
  }
  std::lock_guard<std::mutex> lock(set->update_mu_);
  RETURN_IF_ERROR(set->InstallLocked(*stored));
  return set;
}

std::unique_ptr<SigningKeySet> SigningKeySet::ForTest() {
  std::unique_ptr<SigningKeySet> set(new SigningKeySet());
  auto key = crypto::RsaKey::Generate(kKeyBits);
  std::shared_ptr<const crypto::RsaKey> shared(std::move(key).value());
  set->current_ = Entry{KidFor(*shared), shared};
  return set;
}

Status SigningKeySet::InstallLocked(const std::string& sealed) {
  if (!installed_.empty() && sealed == installed_) {
    return OkStatus();
  }
  ASSIGN_OR_RETURN(Pems pems, Unseal(sealing_key_, sealed));
  auto parse = [](const std::string& pem) -> StatusOr<Entry> {
    auto key = crypto::RsaKey::FromPrivatePem(pem);
    if (!key.ok()) {
      return DataLossError("a signing key stored in the database is corrupt");
    }
    std::shared_ptr<const crypto::RsaKey> shared(std::move(key).value());
    return Entry{KidFor(*shared), shared};
  };
  ASSIGN_OR_RETURN(Entry current, parse(pems.current));
  std::vector<Entry> previous;
  for (const auto& pem : pems.previous) {
    ASSIGN_OR_RETURN(Entry e, parse(pem));
    previous.push_back(std::move(e));
  }
  bool retired = false;
  const bool first = installed_.empty();
  std::string old_kid;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto kept = [&](const std::string& kid) {
      if (kid == current.kid) {
        return true;
      }
      for (const auto& e : previous) {
        if (e.kid == kid) {
          return true;
        }
      }
      return false;
    };
    old_kid = current_.kid;
    retired = !old_kid.empty() && !kept(old_kid);
    for (const auto& e : previous_) {
      retired = retired || !kept(e.kid);
    }
    current_ = std::move(current);
    previous_ = std::move(previous);
  }
  installed_ = sealed;
  if (!first && old_kid != current_kid()) {
    COFFER_LOG(kInfo) << "signing keys: current kid " << current_kid();
  }
  if (retired && on_retired_) {
    on_retired_();
  }
  return OkStatus();
}

Status SigningKeySet::ReloadLocked() {
  if (store_ == nullptr) {
    return OkStatus();
  }
  ASSIGN_OR_RETURN(std::optional<std::string> stored, store_->GetMeta(kMetaKey));
  if (!stored) {
    return FailedPreconditionError("the store holds no signing keys; the ones held are kept");
  }
  return InstallLocked(*stored);
}

Status SigningKeySet::Reload() {
  std::lock_guard<std::mutex> lock(update_mu_);
  return ReloadLocked();
}

Status SigningKeySet::Rotate() {
  ASSIGN_OR_RETURN(auto key, crypto::RsaKey::Generate(kKeyBits));
  std::shared_ptr<const crypto::RsaKey> shared(std::move(key));
  std::lock_guard<std::mutex> lock(update_mu_);
  if (store_ == nullptr) {
    std::lock_guard<std::mutex> held(mu_);
    previous_ = {current_};
    current_ = Entry{KidFor(*shared), shared};
    return OkStatus();
  }
  Pems fresh;
  fresh.current = shared->PrivatePem();
  // The new previous is the store's current, not the one held here: another
  // server may have rotated since this one last heard.
  ASSIGN_OR_RETURN(
      std::string stored,
      store_->UpdateMeta(kMetaKey,
                         [&](const std::optional<std::string>& cur) -> StatusOr<std::string> {
                           Pems next;
                           next.current = fresh.current;
                           if (cur) {
                             ASSIGN_OR_RETURN(Pems stored_set, Unseal(sealing_key_, *cur));
                             next.previous.push_back(stored_set.current);
                           } else {
                             std::lock_guard<std::mutex> held(mu_);
                             next.previous.push_back(current_.key->PrivatePem());
                           }
                           return Seal(sealing_key_, next);
                         }));
  return InstallLocked(stored);
}

std::string SigningKeySet::Sign(const Json& payload) const {
  Entry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    e = current_;
  }
  Json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"kid", e.kid}};
  std::string signing_input =
      Base64UrlEncode(ToJson(header)) + "." + Base64UrlEncode(ToJson(payload));
  return signing_input + "." + Base64UrlEncode(e.key->SignRs256(signing_input));
}

std::shared_ptr<const crypto::RsaKey> SigningKeySet::Find(const std::string& kid) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (current_.kid == kid) {
    return current_.key;
  }
  for (const auto& e : previous_) {
    if (e.kid == kid) {
      return e.key;
    }
  }
  return nullptr;
}

std::shared_ptr<const crypto::RsaKey> SigningKeySet::FindOrReload(const std::string& kid) {
  if (auto key = Find(kid); key != nullptr || store_ == nullptr) {
    return key;
  }
  std::lock_guard<std::mutex> lock(update_mu_);
  // A reload that ran while this one waited may have brought the key.
  if (auto key = Find(kid); key != nullptr) {
    return key;
  }
  const int64_t now = clock_->NowMicros();
  if (looked_up_ && now >= last_lookup_reload_us_ &&
      now - last_lookup_reload_us_ < kReloadIntervalMicros) {
    return nullptr;
  }
  looked_up_ = true;
  last_lookup_reload_us_ = now;
  Status reloaded = ReloadLocked();
  if (!reloaded.ok()) {
    COFFER_LOG(kWarning) << "signing keys: reloading for an unknown kid failed: "
                         << reloaded.ToString();
    return nullptr;
  }
  return Find(kid);
}

Json SigningKeySet::Jwks() const {
  std::lock_guard<std::mutex> lock(mu_);
  Json keys = Json::array();
  auto add = [&keys](const Entry& e) {
    keys.push_back({{"kty", "RSA"},
                    {"use", "sig"},
                    {"alg", "RS256"},
                    {"kid", e.kid},
                    {"n", Base64UrlEncode(e.key->Modulus())},
                    {"e", Base64UrlEncode(e.key->Exponent())}});
  };
  add(current_);
  for (const auto& e : previous_) {
    add(e);
  }
  return Json{{"keys", keys}};
}

std::string SigningKeySet::current_kid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_.kid;
}

}  // namespace coffer::auth
