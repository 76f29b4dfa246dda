#pragma once

// The fixture of the mounts layer's tests: an in-process fake of the token
// service and one vault (the HttpTransport seam) holding secrets, keys and
// certificates, each with the clients that may read it, and helpers to
// build mounts against it.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "agent/mount_builder.h"
#include "agent/mount_manager.h"
#include "agent/vault_reader.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/testing/temp_dir.h"

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
// "jwt-<client>") and one vault of secrets, keys and certificates, whose
// readers are listed per object: a secret, a key and a certificate of one
// name each have readers of their own.
class FakeCloud : public HttpTransport {
 public:
  // One version of an object: a secret's value (with its content type, and
  // the kid of the certificate's key for a certificate's secret), a key's
  // public JWK or a certificate's DER.
  struct Version {
    std::string id;
    std::string value;
    int64_t created = 0;
    bool enabled = true;
    std::optional<int64_t> exp;  // Unix seconds
    std::map<std::string, std::string> tags;
    std::string content_type;
    std::string kid;
    Json jwk;
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
    ++attempts_;
    if (down_) {
      return Error(503, "ServiceUnavailable");
    }
    if (throttled_) {
      return Error(429, "Throttled");
    }
    std::string client = auth.substr(std::string("Bearer tok:").size());
    std::string path = r.url.substr(std::string(kVault).size() + 1);
    path = path.substr(0, path.find('?'));
    std::vector<std::string_view> parts = Split(path, '/');
    std::string collection(parts[0]);
    ++reads_;
    if (collection == "keys") {
      ++key_reads_;
    } else if (collection == "certificates") {
      ++certificate_reads_;
    }
    return Answer(collection, std::move(parts), client);
  }

  StatusOr<HttpResponse> Stream(const HttpRequest&, const std::function<bool(std::string_view)>&,
                                const std::atomic<bool>*) override {
    return UnavailableError("no stream in this fake");
  }

  void Put(const std::string& name, const std::string& value,
           std::vector<std::string> readers = {"app"}) {
    std::lock_guard<std::mutex> lock(mu_);
    Version v;
    v.value = value;
    Add("secrets", name, HexEncode(name).substr(0, 8), std::move(v), readers);
  }
  // PutKey adds a version of a key.
  std::string PutKey(const std::string& name, const Json& jwk,
                     std::vector<std::string> readers = {"app"}) {
    std::lock_guard<std::mutex> lock(mu_);
    Version v;
    v.jwk = jwk;
    return Add("keys", name, "k" + HexEncode(name).substr(0, 6), std::move(v), readers);
  }
  // PutCertificate adds a version of a certificate, as the vault makes one:
  // the certificate (`der`) and its secret of the same name and version,
  // `secret_value` of `content_type` with the kid of the certificate's key.
  // `readers` may read both.
  std::string PutCertificate(const std::string& name, const std::string& der,
                             const std::string& secret_value, const std::string& content_type,
                             std::vector<std::string> readers = {"app"}) {
    std::lock_guard<std::mutex> lock(mu_);
    Version certificate;
    certificate.value = der;
    std::string id = Add("certificates", name, "c" + HexEncode(name).substr(0, 6),
                         std::move(certificate), readers);
    Version secret = objects_["certificates"][name].back();
    secret.value = secret_value;
    secret.content_type = content_type;
    secret.kid = std::string(kVault) + "/keys/" + name + "/" + id;
    objects_["secrets"][name].push_back(std::move(secret));
    for (auto& r : readers) {
      readers_["secrets"][name].insert(r);
    }
    return id;
  }
  void Disable(const std::string& name, size_t index) { Set("secrets", name, index, false); }
  void DisableKey(const std::string& name, size_t index) { Set("keys", name, index, false); }
  // DisableCertificate disables a version of a certificate and of its
  // secret, as the vault does.
  void DisableCertificate(const std::string& name, size_t index) {
    Set("certificates", name, index, false);
    Set("secrets", name, index, false);
  }
  // PutTagged adds a version of a secret with tags.
  void PutTagged(const std::string& name, const std::string& value,
                 std::map<std::string, std::string> tags,
                 std::vector<std::string> readers = {"app"}) {
    std::lock_guard<std::mutex> lock(mu_);
    Version v;
    v.value = value;
    v.tags = std::move(tags);
    Add("secrets", name, HexEncode(name).substr(0, 8), std::move(v), readers);
  }
  // Remove deletes a secret (its versions and readers stay listed as
  // readers, so that a read of it is a 404).
  void Remove(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_["secrets"][name].clear();
  }
  // AllowList lets `client` list the vault's secrets.
  void AllowList(const std::string& client) {
    std::lock_guard<std::mutex> lock(mu_);
    listers_.insert(client);
  }
  int lists() {
    std::lock_guard<std::mutex> lock(mu_);
    return lists_;
  }
  // SetExpiry sets the exp of a version of a secret.
  void SetExpiry(const std::string& name, size_t index, std::optional<int64_t> exp) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_["secrets"][name][index].exp = exp;
  }
  // Allow lets `client` read the secret `name` (which may not exist yet).
  void Allow(const std::string& name, const std::string& client) {
    std::lock_guard<std::mutex> lock(mu_);
    readers_["secrets"][name].insert(client);
  }
  void SetDown(bool down) {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = down;
  }
  // SetThrottled answers every vault request 429, as a vault over its
  // service limits does.
  void SetThrottled(bool throttled) {
    std::lock_guard<std::mutex> lock(mu_);
    throttled_ = throttled;
  }
  int reads() {
    std::lock_guard<std::mutex> lock(mu_);
    return reads_;
  }
  // Vault requests with a token, answered or refused.
  int attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }
  int key_reads() {
    std::lock_guard<std::mutex> lock(mu_);
    return key_reads_;
  }
  int certificate_reads() {
    std::lock_guard<std::mutex> lock(mu_);
    return certificate_reads_;
  }

 private:
  // Add appends a version of an object of `collection`, named
  // <prefix><index>, created after the one before.
  std::string Add(const std::string& collection, const std::string& name, const std::string& prefix,
                  Version v, const std::vector<std::string>& readers) {
    auto& versions = objects_[collection][name];
    v.id = prefix + std::to_string(versions.size());
    v.created = 1000 + static_cast<int64_t>(versions.size());
    versions.push_back(v);
    for (auto& r : readers) {
      readers_[collection][name].insert(r);
    }
    return v.id;
  }

  void Set(const std::string& collection, const std::string& name, size_t index, bool enabled) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_[collection][name][index].enabled = enabled;
  }

  // Answer serves GET /<collection>/<name>[/<version>|/versions]: the
  // versions' properties, or the bundle of a version (the latest when none
  // is named), as Key Vault shapes each kind.
  HttpResponse Answer(const std::string& collection, std::vector<std::string_view> parts,
                      const std::string& client) {
    static const std::map<std::string, std::string> kNotFound = {
        {"secrets", "SecretNotFound"},
        {"keys", "KeyNotFound"},
        {"certificates", "CertificateNotFound"}};
    std::string name = parts.size() > 1 ? std::string(parts[1]) : "";
    if (collection == "secrets" && name.empty()) {
      // GET /secrets: every secret's latest version's properties, one page.
      if (listers_.count(client) == 0) {
        return Error(403, "Forbidden");
      }
      ++lists_;
      Json items = Json::array();
      for (const auto& [secret, versions] : objects_["secrets"]) {
        if (versions.empty()) {
          continue;
        }
        const Version& v = versions.back();
        Json item = {{"id", std::string(kVault) + "/secrets/" + secret},
                     {"attributes", {{"enabled", v.enabled}, {"created", v.created}}}};
        if (!v.tags.empty()) {
          item["tags"] = v.tags;
        }
        items.push_back(std::move(item));
      }
      return HttpResponse{200, {}, ToJson({{"value", items}, {"nextLink", nullptr}})};
    }
    if (kNotFound.count(collection) == 0 || readers_[collection][name].count(client) == 0) {
      return Error(403, "Forbidden");
    }
    const std::vector<Version>& versions = objects_[collection][name];
    if (versions.empty()) {
      return Error(404, kNotFound.at(collection));
    }
    std::string base = std::string(kVault) + "/" + collection + "/" + name + "/";
    const char* id_member = collection == "keys" ? "kid" : "id";
    if (parts.size() == 3 && parts[2] == "versions") {
      Json items = Json::array();
      for (const Version& v : versions) {
        items.push_back({{id_member, base + v.id},
                         {"attributes", {{"enabled", v.enabled}, {"created", v.created}}}});
      }
      return HttpResponse{200, {}, ToJson({{"value", items}, {"nextLink", nullptr}})};
    }
    const Version* found = &versions.back();
    if (parts.size() == 3 && !parts[2].empty()) {
      found = nullptr;
      for (const Version& v : versions) {
        if (v.id == parts[2]) {
          found = &v;
        }
      }
      if (found == nullptr) {
        return Error(404, kNotFound.at(collection));
      }
    }
    if (!found->enabled) {
      // Key Vault's answer to a read of a disabled version.
      std::string kind = collection == "keys"           ? "key"
                         : collection == "certificates" ? "certificate"
                                                        : "secret";
      return HttpResponse{
          403,
          {},
          ToJson({{"error",
                   {{"code", "Forbidden"},
                    {"message", "Operation get is not allowed on a disabled " + kind + "."}}}})};
    }
    Json bundle = {{"attributes", {{"enabled", found->enabled}, {"created", found->created}}}};
    if (found->exp.has_value()) {
      bundle["attributes"]["exp"] = *found->exp;
    }
    if (!found->tags.empty()) {
      bundle["tags"] = found->tags;
    }
    if (collection == "keys") {
      bundle["key"] = found->jwk;
      bundle["key"]["kid"] = base + found->id;
      bundle["key"]["key_ops"] = {"sign", "verify"};
    } else if (collection == "certificates") {
      bundle["id"] = base + found->id;
      bundle["cer"] = Base64Encode(found->value);
      bundle["kid"] = std::string(kVault) + "/keys/" + name + "/" + found->id;
      bundle["sid"] = std::string(kVault) + "/secrets/" + name + "/" + found->id;
    } else {
      bundle["id"] = base + found->id;
      bundle["value"] = found->value;
      if (!found->content_type.empty()) {
        bundle["contentType"] = found->content_type;
      }
      if (!found->kid.empty()) {
        bundle["kid"] = found->kid;
        bundle["managed"] = true;
      }
    }
    return HttpResponse{200, {}, ToJson(bundle)};
  }

  std::mutex mu_;
  // collection ("secrets", "keys", "certificates") -> name -> versions,
  // oldest first; and the clients that may read each.
  std::map<std::string, std::map<std::string, std::vector<Version>>> objects_;
  std::map<std::string, std::map<std::string, std::set<std::string>>> readers_;
  std::set<std::string> listers_;  // may list the secrets
  int lists_ = 0;
  bool down_ = false;
  bool throttled_ = false;
  int attempts_ = 0;
  int reads_ = 0;
  int key_reads_ = 0;
  int certificate_reads_ = 0;
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

  // BuildAtOnce builds `n` mounts of `p` at once in `round` and returns how
  // many succeeded with `files` files.
  int BuildAtOnce(int n, const AzureMountParameters& p, const MountIdentity& id, ReadRound& round,
                  size_t files) {
    std::atomic<int> complete{0};
    std::vector<std::thread> mounts;
    for (int m = 0; m < n; ++m) {
      mounts.emplace_back([&] {
        BuiltMount b = Build(p, id, round);
        if (b.status.ok() && b.files.size() == files) {
          ++complete;
        }
      });
    }
    for (auto& t : mounts) {
      t.join();
    }
    return complete.load();
  }

  std::shared_ptr<FakeCloud> cloud_;
  VaultReaderOptions options_;
};

// ManagerTest runs standalone mounts: mount "web" of spc.yaml (the secret
// "db" until a test writes another) as the service principal "app", into
// target/, with a reload command that counts reloads.
class ManagerTest : public MountsTest {
 protected:
  void SetUp() override {
    auto tmp = test::TempDir::Create("coffer-agent-mounts-");
    ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();
    tmp_ = std::move(*tmp);
    dir_ = tmp_.path();
    std::ofstream(dir_ / "spc.yaml") << Spc({"db"});
    std::ofstream(dir_ / "sp.yaml") << "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sp\n"
                                       "stringData:\n  clientid: app\n  clientsecret: good-app\n";
  }
  // Spc is a SecretProviderClass of the secrets `names`; SpcOf of objects
  // given as their fields, in order.
  static std::string Spc(const std::vector<std::string>& names) {
    std::vector<std::vector<std::pair<std::string, std::string>>> objects;
    for (const std::string& n : names) {
      objects.push_back({{"objectName", n}, {"objectType", "secret"}});
    }
    return SpcOf(objects);
  }
  static std::string SpcOf(
      const std::vector<std::vector<std::pair<std::string, std::string>>>& objects) {
    std::string text;
    for (const auto& fields : objects) {
      text += "        - |\n";
      for (const auto& [k, v] : fields) {
        text += "          " + k + ": " + v + "\n";
      }
    }
    return "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"
           "metadata:\n  name: app\nspec:\n  provider: azure\n  parameters:\n"
           "    keyvaultName: dev\n    tenantID: t1\n    objects: |\n      array:\n" +
           text;
  }

  MountManagerOptions Options() {
    MountManagerOptions o;
    o.config.poll_interval = std::chrono::hours(1);  // cycles are run by the test
    o.config.vault_dns_suffix = kSuffix;
    MountConfig m;
    m.name = "web";
    m.spc_file = (dir_ / "spc.yaml").string();
    m.target = (dir_ / "target").string();
    m.node_publish_secret_ref_file = (dir_ / "sp.yaml").string();
    m.reload.kind = ReloadAction::Kind::kCommand;
    m.reload.argv = {"/bin/sh", "-c", "echo x >> " + (dir_ / "reloads").string()};
    o.config.mounts.push_back(m);
    o.state_dir = (dir_ / "state").string();
    o.reader = options_;
    o.watch = false;
    return o;
  }

  static std::string Read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  int Reloads() {
    std::string text = Read(dir_ / "reloads");
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }

  test::TempDir tmp_;
  std::filesystem::path dir_;
};

}  // namespace coffer::agent::mounts_testing
