#include "auth/signing_keys.h"

#include <filesystem>

#include "common/encoding.h"
#include "common/files.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

constexpr int kKeyBits = 2048;
constexpr char kCurrentFile[] = "signing-current.pem";
constexpr char kPreviousFile[] = "signing-previous.pem";

}  // namespace

std::string SigningKeySet::KidFor(const crypto::RsaKey& key) {
  return Base64UrlEncode(crypto::Sha256(key.Modulus()).substr(0, 15));
}

StatusOr<std::unique_ptr<SigningKeySet>> SigningKeySet::LoadOrCreate(const std::string& dir) {
  std::unique_ptr<SigningKeySet> set(new SigningKeySet());
  set->dir_ = dir;
  RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  std::string current_path = dir + "/" + kCurrentFile;
  std::string previous_path = dir + "/" + kPreviousFile;
  if (!std::filesystem::exists(current_path)) {
    ASSIGN_OR_RETURN(auto key, crypto::RsaKey::Generate(kKeyBits));
    std::shared_ptr<const crypto::RsaKey> shared(std::move(key));
    set->current_ = Entry{KidFor(*shared), shared};
    RETURN_IF_ERROR(set->Persist());
    return set;
  }
  for (const auto& [path, is_current] :
       {std::pair{current_path, true}, std::pair{previous_path, false}}) {
    if (!is_current && !std::filesystem::exists(path)) {
      continue;
    }
    ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
    auto key = crypto::RsaKey::FromPrivatePem(pem);
    if (!key.ok()) {
      return DataLossError("signing key file " + path + " is corrupt");
    }
    std::shared_ptr<const crypto::RsaKey> shared(std::move(key).value());
    Entry e{KidFor(*shared), shared};
    if (is_current) {
      set->current_ = e;
    } else {
      set->previous_.push_back(e);
    }
  }
  return set;
}

std::unique_ptr<SigningKeySet> SigningKeySet::ForTest() {
  std::unique_ptr<SigningKeySet> set(new SigningKeySet());
  auto key = crypto::RsaKey::Generate(kKeyBits);
  std::shared_ptr<const crypto::RsaKey> shared(std::move(key).value());
  set->current_ = Entry{KidFor(*shared), shared};
  return set;
}

Status SigningKeySet::Persist() const {
  if (dir_.empty()) {
    return OkStatus();
  }
  if (!previous_.empty()) {
    RETURN_IF_ERROR(
        WriteFileAtomic(dir_ + "/" + kPreviousFile, previous_.front().key->PrivatePem(), 0600));
  }
  return WriteFileAtomic(dir_ + "/" + kCurrentFile, current_.key->PrivatePem(), 0600);
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

Status SigningKeySet::Rotate() {
  ASSIGN_OR_RETURN(auto key, crypto::RsaKey::Generate(kKeyBits));
  std::shared_ptr<const crypto::RsaKey> shared(std::move(key));
  std::lock_guard<std::mutex> lock(mu_);
  previous_ = {current_};
  current_ = Entry{KidFor(*shared), shared};
  return Persist();
}

}  // namespace coffer::auth
