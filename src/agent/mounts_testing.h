#pragma once

// The fixture of the mounts layer's tests: an in-process fake of the token
// service and one vault (the HttpTransport seam) holding secrets and keys,
// each with the clients that may read it, and helpers to build mounts
// against it.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "agent/mount_builder.h"
#include "agent/vault_reader.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::agent::mounts_testing {

inline constexpr char kVault[] = "https://dev.vault.localhost:8443";
inline constexpr char kSuffix[] = "vault.localhost:8443";

inline std::string HeaderOf(const HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (EqualsIgnoreCase(k, name)) {
      return v;
    }
  }
  return "";
}

inline std::string FormValue(const std::string& body, const std::string& key) {
  for (std::string_view part : Split(body, '&')) {
    if (StartsWith(part, key + "=")) {
      return PercentDecode(part.substr(key.size() + 1), true).value_or("");
    }
  }
  return "";
}

inline HttpResponse Error(int status, const std::string& code) {
  return HttpResponse{status, {}, ToJson({{"error", {{"code", code}, {"message", code}}}})};
}

// The token service (client secret "good-<client>", or an assertion
// "jwt-<client>") and one vault whose readers are listed per secret.
class FakeCloud : public HttpTransport {
 public:
  struct Version {
    std::string id;
    std::string value;
    int64_t created;
    bool enabled = true;
  };

  StatusOr<HttpResponse> Send(const HttpRequest& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (r.url.find("/oauth2/v2.0/token") != std::string::npos) {
      std::string client = FormValue(r.body, "client_id");
      bool good = FormValue(r.body, "client_secret") == "good-" + client ||
                  FormValue(r.body, "client_assertion") == "jwt-" + client;
      ++token_requests_;
      if (!good) {
        return HttpResponse{
            401, {}, "{\"error\":\"invalid_client\",\"error_description\":\"bad proof\"}"};
      }
      return HttpResponse{
          200, {}, ToJson({{"access_token", "tok:" + client}, {"expires_in", 3600}})};
    }
    std::string auth = HeaderOf(r, "Authorization");
    if (auth.empty()) {
      return HttpResponse{401,
                          {{"WWW-Authenticate",
                            "Bearer authorization=\"https://localhost:8443/t1\", "
                            "resource=\"https://vault.localhost:8443\""}},
                          ""};
    }
    if (down_) {
      return Error(503, "ServiceUnavailable");
    }
    std::string client = auth.substr(std::string("Bearer tok:").size());
    if (r.url.find("/keys/") != std::string::npos) {
      return SendKey(r, client);
    }
    std::string path = r.url.substr(r.url.find("/secrets/") + 9);
    path = path.substr(0, path.find('?'));
    std::vector<std::string_view> parts = Split(path, '/');
    std::string name(parts[0]);
    ++reads_;
    if (readers_[name].count(client) == 0) {
      return Error(403, "Forbidden");
    }
    auto it = secrets_.find(name);
    if (it == secrets_.end()) {
      return Error(404, "SecretNotFound");
    }
    if (parts.size() == 2 && parts[1] == "versions") {
      Json items = Json::array();
      for (const Version& v : it->second) {
        items.push_back({{"id", std::string(kVault) + "/secrets/" + name + "/" + v.id},
                         {"attributes", {{"enabled", v.enabled}, {"created", v.created}}}});
      }
      return HttpResponse{200, {}, ToJson({{"value", items}, {"nextLink", nullptr}})};
    }
    const Version* found = &it->second.back();
    if (parts.size() == 2 && !parts[1].empty()) {
      found = nullptr;
      for (const Version& v : it->second) {
        if (v.id == parts[1]) {
          found = &v;
        }
      }
      if (found == nullptr) {
        return Error(404, "SecretNotFound");
      }
    }
    return HttpResponse{200,
                        {},
                        ToJson({{"id", std::string(kVault) + "/secrets/" + name + "/" + found->id},
                                {"value", found->value},
                                {"attributes", {{"enabled", true}, {"created", found->created}}}})};
  }

  StatusOr<HttpResponse> Stream(const HttpRequest&, const std::function<bool(std::string_view)>&,
                                const std::atomic<bool>*) override {
    return UnavailableError("no stream in this fake");
  }

  // GET /keys/{name}/{version}: the key bundle, public JWK only.
  HttpResponse SendKey(const HttpRequest& r, const std::string& client) {
    std::string path = r.url.substr(r.url.find("/keys/") + 6);
    path = path.substr(0, path.find('?'));
    std::vector<std::string_view> parts = Split(path, '/');
    std::string name(parts[0]);
    ++reads_;
    ++key_reads_;
    if (key_readers_[name].count(client) == 0) {
      return Error(403, "Forbidden");
    }
    auto it = keys_.find(name);
    if (it == keys_.end() || it->second.empty()) {
      return Error(404, "KeyNotFound");
    }
    if (parts.size() == 2 && parts[1] == "versions") {
      Json items = Json::array();
      for (const KeyVersion& v : it->second) {
        items.push_back({{"kid", std::string(kVault) + "/keys/" + name + "/" + v.id},
                         {"attributes", {{"enabled", v.enabled}, {"created", v.created}}}});
      }
      return HttpResponse{200, {}, ToJson({{"value", items}, {"nextLink", nullptr}})};
    }
    const KeyVersion* found = &it->second.back();
    if (parts.size() == 2 && !parts[1].empty()) {
      found = nullptr;
      for (const KeyVersion& v : it->second) {
        if (v.id == parts[1]) {
          found = &v;
        }
      }
      if (found == nullptr) {
        return Error(404, "KeyNotFound");
      }
    }
    Json key = found->jwk;
    key["kid"] = std::string(kVault) + "/keys/" + name + "/" + found->id;
    key["key_ops"] = {"sign", "verify"};
    return HttpResponse{
        200,
        {},
        ToJson({{"key", key},
                {"attributes", {{"enabled", found->enabled}, {"created", found->created}}}})};
  }

  void Put(const std::string& name, const std::string& value,
           std::vector<std::string> readers = {"app"}) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& versions = secrets_[name];
    versions.push_back({HexEncode(name).substr(0, 8) + std::to_string(versions.size()), value,
                        1000 + static_cast<int64_t>(versions.size())});
    for (auto& r : readers) {
      readers_[name].insert(r);
    }
  }
  // PutKey adds a version of a key; a key has readers of its own, apart
  // from a secret of the same name.
  std::string PutKey(const std::string& name, const Json& jwk,
                     std::vector<std::string> readers = {"app"}) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& versions = keys_[name];
    std::string id = "k" + HexEncode(name).substr(0, 6) + std::to_string(versions.size());
    versions.push_back({id, jwk, 1000 + static_cast<int64_t>(versions.size()), true});
    for (auto& r : readers) {
      key_readers_[name].insert(r);
    }
    return id;
  }
  void Disable(const std::string& name, size_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    secrets_[name][index].enabled = false;
  }
  void DisableKey(const std::string& name, size_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    keys_[name][index].enabled = false;
  }
  void SetDown(bool down) {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = down;
  }
  int reads() {
    std::lock_guard<std::mutex> lock(mu_);
    return reads_;
  }
  int key_reads() {
    std::lock_guard<std::mutex> lock(mu_);
    return key_reads_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<Version>> secrets_;
  std::map<std::string, std::set<std::string>> readers_;
  struct KeyVersion {
    std::string id;
    Json jwk;
    int64_t created = 0;
    bool enabled = true;
  };
  std::map<std::string, std::vector<KeyVersion>> keys_;
  std::map<std::string, std::set<std::string>> key_readers_;
  bool down_ = false;
  int reads_ = 0;
  int key_reads_ = 0;
  int token_requests_ = 0;
};

class MountsTest : public ::testing::Test {
 protected:
  MountsTest() : cloud_(std::make_shared<FakeCloud>()) {
    options_.client.transport = cloud_;
    options_.client.retry.max_retries = 0;
    options_.credential.transport = cloud_;
    options_.credential.authority_host = "https://localhost:8443";
  }

  static MountIdentity Sp(const std::string& client, const std::string& secret) {
    MountIdentity id;
    id.mode = IdentityMode::kServicePrincipal;
    id.tenant_id = "t1";
    id.client_id = client;
    id.proof = secret;
    return id;
  }

  static AzureObject Secret(const std::string& name) {
    AzureObject o;
    o.name = name;
    o.type = ObjectType::kSecret;
    o.format = "pem";
    return o;
  }

  static AzureMountParameters Params(std::vector<AzureObject> objects) {
    AzureMountParameters p;
    p.keyvault_name = "dev";
    p.tenant_id = "t1";
    p.objects = std::move(objects);
    return p;
  }

  BuiltMount Build(const AzureMountParameters& p, const MountIdentity& id, ReadRound& round,
                   uint32_t mode = 0644) {
    BuildOptions bo;
    bo.vault_dns_suffix = kSuffix;
    bo.default_mode = mode;
    return BuildMount(p, id, round, bo);
  }

  std::shared_ptr<FakeCloud> cloud_;
  VaultReaderOptions options_;
};

}  // namespace coffer::agent::mounts_testing
