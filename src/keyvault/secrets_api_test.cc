#include "keyvault/secrets_api.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/json.h"
#include "crypto/primitives.h"
#include "storage/memory/memory_store.h"

namespace coffer::keyvault {
namespace {

class SecretsApiTest : public ::testing::Test {
 protected:
  SecretsApiTest()
      : clock_(1800000000),
        envelope_(Envelope::Create(crypto::RandomBytes(32)).value()),
        registry_(store_, *envelope_, clock_, 0),
        service_(store_, *envelope_, clock_),
        api_(service_),
        routes_(api_.Operations()) {
    storage::VaultRecord v;
    v.name = "kv";
    v.tags_json = "{}";
    v.wrapped_data_key = envelope_->NewWrappedDataKey("kv");
    EXPECT_TRUE(store_.CreateVault(v).ok());
  }

  http::Response Call(const std::string& method, const std::string& target,
                      const std::string& body = "") {
    http::Request r;
    r.method = method;
    r.host = "kv.vault.localhost:8443";
    EXPECT_TRUE(http::ParseTarget(target, r).ok());
    r.body = body;
    // As the vault plane runs it, authorization aside.
    auto found = routes_.Find(r);
    if (found.operation == nullptr) {
      return VaultRoutes::Unmatched(found);
    }
    auto vault = registry_.Get("kv").value();
    authz::Principal who{"oid", "app", "tenant"};
    return found.operation->handle(VaultCall{vault, r, found.params, who});
  }

  static Json J(const http::Response& r) { return ParseJson(r.body).value_or(Json()); }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<Envelope> envelope_;
  VaultRegistry registry_;
  SecretService service_;
  SecretsApi api_;
  VaultRoutes routes_;
};

TEST_F(SecretsApiTest, SetAndGetUseHostBasedIdsAndKeyVaultShapes) {
  auto set = Call("PUT", "/secrets/db?api%2Dversion=2025-07-01",
                  R"({"value":"v1","contentType":"text/plain","tags":{"a":"b"},"attributes":{}})");
  ASSERT_EQ(set.status, 200) << set.body;
  auto j = J(set);
  std::string id = j["id"];
  EXPECT_EQ(id.rfind("https://kv.vault.localhost:8443/secrets/db/", 0), 0u);
  EXPECT_EQ(j["value"], "v1");
  EXPECT_EQ(j["attributes"]["enabled"], true);
  EXPECT_TRUE(j["attributes"]["created"].is_number_integer());
  EXPECT_EQ(j["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
  auto latest = Call("GET", "/secrets/db/?api-version=7.3");
  EXPECT_EQ(J(latest)["id"], id);
  EXPECT_EQ(Call("GET", "/secrets/db?api-version=7.3").status, 200);
  std::string version = id.substr(id.rfind('/') + 1);
  EXPECT_EQ(J(Call("GET", "/secrets/db/" + version + "?api-version=7.3"))["value"], "v1");
}

TEST_F(SecretsApiTest, StatusCodesMatchKeyVault) {
  ASSERT_EQ(Call("PUT", "/secrets/db?api-version=7.3", R"({"value":"x"})").status, 200);
  auto deleted = Call("DELETE", "/secrets/db?api-version=7.3");
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(J(deleted)["recoveryId"], "https://kv.vault.localhost:8443/deletedsecrets/db");
  EXPECT_TRUE(J(deleted)["scheduledPurgeDate"].is_number_integer());
  EXPECT_FALSE(J(deleted).contains("value"));
  auto conflict = Call("PUT", "/secrets/db?api-version=7.3", R"({"value":"y"})");
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(J(conflict)["error"]["code"], "Conflict");
  EXPECT_EQ(Call("GET", "/deletedsecrets/db?api-version=7.3").status, 200);
  auto purge = Call("DELETE", "/deletedsecrets/db?api-version=7.3");
  EXPECT_EQ(purge.status, 204);
  EXPECT_TRUE(purge.body.empty());
  auto gone = Call("GET", "/deletedsecrets/db?api-version=7.3");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(J(gone)["error"]["code"], "SecretNotFound");
}

TEST_F(SecretsApiTest, PaginatesWithAbsoluteNextLinks) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(Call("PUT", "/secrets/s" + std::to_string(i) + "?api-version=7.3", R"({"value":"x"})")
                  .status,
              200);
  }
  std::string target = "/secrets?api-version=7.3&maxresults=3";
  int pages = 0;
  size_t seen = 0;
  while (!target.empty()) {
    auto page = J(Call("GET", target));
    ASSERT_TRUE(page["value"].is_array());
    seen += page["value"].size();
    ++pages;
    if (page["nextLink"].is_null()) {
      break;
    }
    std::string link = page["nextLink"];
    const std::string base = "https://kv.vault.localhost:8443";
    ASSERT_EQ(link.rfind(base, 0), 0u);
    target = link.substr(base.size());
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, 7u);
}

TEST_F(SecretsApiTest, RejectsMalformedRequests) {
  struct Case {
    const char* method;
    const char* target;
    const char* body;
    int status;
  };
  for (const auto& c : {
           Case{"PUT", "/secrets/db?api-version=7.3", "", 400},
           Case{"PUT", "/secrets/db?api-version=7.3", "{", 400},
           Case{"PUT", "/secrets/db?api-version=7.3", "[]", 400},
           Case{"PUT", "/secrets/db?api-version=7.3", R"({"value":5})", 400},
           Case{"PUT", "/secrets/db?api-version=7.3", R"({"value":"x","tags":[]})", 400},
           Case{"PUT", "/secrets/db?api-version=7.3", R"({"value":"x","tags":{"a":1}})", 400},
           Case{"PUT", "/secrets/db?api-version=7.3",
                R"({"value":"x","attributes":{"enabled":"yes"}})", 400},
           Case{"PUT", "/secrets/db?api-version=7.3", R"({"value":"x","attributes":{"exp":"1"}})",
                400},
           Case{"PUT", "/secrets/db?api-version=7.3", R"({"value":"x","contentType":7})", 400},
           Case{"PUT", "/secrets/bad_name?api-version=7.3", R"({"value":"x"})", 400},
           Case{"PUT", "/secrets/db", R"({"value":"x"})", 400},
           Case{"GET", "/secrets/db/zz?api-version=7.3", "", 400},
           Case{"GET", "/secrets?api-version=7.3&maxresults=0", "", 400},
           Case{"GET", "/secrets?api-version=7.3&maxresults=26", "", 400},
           Case{"GET", "/secrets?api-version=7.3&maxresults=1x", "", 400},
           Case{"GET", "/secrets?api-version=7.3&$skiptoken=!!", "", 400},
           Case{"GET", "/secrets?api-version=7.3&$skiptoken=YWJj", "", 400},
           Case{"POST", "/secrets/restore?api-version=7.3", R"({"value":"AAAA"})", 400},
           Case{"POST", "/secrets/restore?api-version=7.3", R"({"value":"*"})", 400},
           Case{"POST", "/secrets?api-version=7.3", "", 405},
           Case{"GET", "/keys/k?api-version=7.3", "", 404},
           Case{"GET", "/secrets/a/b/c?api-version=7.3", "", 404},
       }) {
    auto r = Call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body;
    EXPECT_TRUE(J(r)["error"]["code"].is_string()) << c.target;
  }
  EXPECT_EQ(Call("GET", "/secrets/db?api-version=7.3").status, 404);
}

TEST_F(SecretsApiTest, BackupRestoreRoundTrip) {
  ASSERT_EQ(Call("PUT", "/secrets/db?api-version=7.3", R"({"value":"x"})").status, 200);
  auto backup = J(Call("POST", "/secrets/db/backup?api-version=7.3"));
  ASSERT_TRUE(backup["value"].is_string());
  ASSERT_EQ(Call("DELETE", "/secrets/db?api-version=7.3").status, 200);
  ASSERT_EQ(Call("DELETE", "/deletedsecrets/db?api-version=7.3").status, 204);
  auto restored =
      Call("POST", "/secrets/restore?api-version=7.3", ToJson(Json{{"value", backup["value"]}}));
  EXPECT_EQ(restored.status, 200) << restored.body;
  EXPECT_EQ(J(Call("GET", "/secrets/db/?api-version=7.3"))["value"], "x");
}

// HMAC-SHA256 (RFC 2104) built here from SHA-256 alone, so that the hash
// operation is checked against a computation that does not share its code.
std::string ReferenceHmacSha256(std::string key, std::string_view data) {
  constexpr size_t kBlock = 64;
  if (key.size() > kBlock) {
    key = crypto::Sha256(key);
  }
  key.resize(kBlock, '\0');
  std::string inner(kBlock, '\0');
  std::string outer(kBlock, '\0');
  for (size_t i = 0; i < kBlock; ++i) {
    inner[i] = static_cast<char>(key[i] ^ 0x36);
    outer[i] = static_cast<char>(key[i] ^ 0x5c);
  }
  return crypto::Sha256(outer + crypto::Sha256(inner + std::string(data)));
}

TEST(ReferenceHmacTest, MatchesRfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(ReferenceHmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

class SecretHashTest : public SecretsApiTest {
 protected:
  // Sets `name` to `value`; returns the new version.
  std::string Put(const std::string& name, const std::string& value) {
    auto r = Call("PUT", "/secrets/" + name + "?api-version=7.3", ToJson(Json{{"value", value}}));
    EXPECT_EQ(r.status, 200) << r.body;
    std::string id = J(r)["id"];
    return id.substr(id.rfind('/') + 1);
  }
  http::Response Hash(const std::string& path, const std::string& key) {
    return Call("POST", path + "/hash?api-version=7.3", ToJson(Json{{"key", key}}));
  }
  // The base64url HMAC the hash of `path` answers under `key`, "" on error.
  std::string Mac(const std::string& path, const std::string& key) {
    auto r = Hash(path, key);
    EXPECT_EQ(r.status, 200) << path << " " << r.body;
    return J(r).value("value", "");
  }

  const std::string key_ = Base64UrlEncode(crypto::RandomBytes(32));
};

TEST_F(SecretHashTest, AnswersHmacSha256OfTheValue) {
  std::string version = Put("db", "correct horse battery staple");
  // A fixed vector, computed apart (Python's hmac): key bytes 0..31.
  auto r = Call("POST", "/secrets/db/hash?api-version=7.3",
                R"({"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = J(r);
  EXPECT_EQ(j["value"], "G54Alds-qQwgqrTIT2q-nG2rVk_LAiDk3Lkqj11L6YA");
  EXPECT_EQ(j["alg"], "HS256");
  EXPECT_EQ(j["id"], "https://kv.vault.localhost:8443/secrets/db/" + version);
  EXPECT_EQ(j.size(), 3u) << r.body;
  EXPECT_EQ(r.body.find("correct horse"), std::string::npos);
  // Keys of every size allowed, against the reference.
  for (size_t size : {32, 33, 48, 63, 64}) {
    std::string key = crypto::RandomBytes(size);
    EXPECT_EQ(Mac("/secrets/db", Base64UrlEncode(key)),
              Base64UrlEncode(ReferenceHmacSha256(key, "correct horse battery staple")))
        << size;
  }
}

TEST_F(SecretHashTest, EqualValuesHashEquallyAndAnythingElseDoesNot) {
  std::string v1 = Put("db", "same");
  std::string v2 = Put("db", "same");
  Put("other", "same");
  Put("different", "Same");
  ASSERT_NE(v1, v2);
  std::string mac = Mac("/secrets/db/" + v1, key_);
  ASSERT_FALSE(mac.empty());
  EXPECT_EQ(Mac("/secrets/db/" + v2, key_), mac);
  EXPECT_EQ(Mac("/secrets/other", key_), mac);
  EXPECT_NE(Mac("/secrets/different", key_), mac);
  EXPECT_NE(Mac("/secrets/db/" + v1, Base64UrlEncode(crypto::RandomBytes(32))), mac);
}

TEST_F(SecretHashTest, NamesTheVersionItHashed) {
  std::string v1 = Put("db", "one");
  std::string v2 = Put("db", "two");
  auto current = J(Hash("/secrets/db", key_));
  EXPECT_EQ(current["id"], "https://kv.vault.localhost:8443/secrets/db/" + v2);
  EXPECT_EQ(J(Hash("/secrets/db/" + v2, key_)), current);
  // An empty version names the latest, as for Get.
  EXPECT_EQ(J(Hash("/secrets/db/", key_)), current);
  auto old = J(Hash("/secrets/db/" + v1, key_));
  EXPECT_EQ(old["id"], "https://kv.vault.localhost:8443/secrets/db/" + v1);
  EXPECT_NE(old["value"], current["value"]);
  // The name's case is the caller's; the id's is the secret's.
  EXPECT_EQ(J(Hash("/secrets/DB", key_)), current);
}

TEST_F(SecretHashTest, RefusesAnyKeyButOneOf32To64BytesWithoutQuotingIt) {
  Put("db", "v");
  const std::string k31 = Base64UrlEncode(crypto::RandomBytes(31));
  const std::string k65 = Base64UrlEncode(crypto::RandomBytes(65));
  // A 32-byte key whose standard base64 has '+' or '/': base64url refuses it.
  std::string plus_slash = Base64Encode(std::string(32, '\xfb'));
  ASSERT_NE(plus_slash.find_first_of("+/"), std::string::npos);
  // Base64url of 32 bytes whose last character has stray low bits.
  std::string stray = Base64UrlEncode(std::string(32, '\0'));
  stray.back() = 'B';
  const std::string long_text(4096, 'A');
  struct Case {
    std::string body;
    std::string secret_text;  // what must not come back ("" when nothing)
  };
  for (const auto& c : std::vector<Case>{
           {"", ""},
           {"{", ""},
           {"[]", ""},
           {"\"" + key_ + "\"", key_},
           {"[\"" + key_ + "\"]", key_},
           {"{}", ""},
           {R"({"Key":")" + key_ + "\"}", key_},
           {R"({"value":")" + key_ + "\"}", key_},
           {R"({"key":null})", ""},
           {R"({"key":5})", ""},
           {R"({"key":[")" + key_ + "\"]}", key_},
           {R"({"key":{"k":")" + key_ + "\"}}", key_},
           {R"({"key":""})", ""},
           {R"({"key":")" + k31 + "\"}", k31},
           {R"({"key":")" + k65 + "\"}", k65},
           {R"({"key":")" + long_text + "\"}", long_text},
           {R"({"key":")" + plus_slash + "\"}", plus_slash},
           {R"({"key":")" + stray + "\"}", stray},
           {R"({"key":")" + key_ + "*\"}", key_},
           {R"({"key":")" + key_.substr(0, 20) + "=" + key_.substr(20) + "\"}", key_.substr(20)},
       }) {
    auto r = Call("POST", "/secrets/db/hash?api-version=7.3", c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_EQ(J(r)["error"]["code"], "BadParameter") << c.body;
    std::string message = J(r)["error"]["message"];
    EXPECT_FALSE(message.empty()) << c.body;
    if (!c.secret_text.empty()) {
      EXPECT_EQ(r.body.find(c.secret_text), std::string::npos) << r.body;
    }
  }
  // Padding is optional; other members are ignored.
  std::string padded = Base64UrlEncode(std::string(32, '\x01')) + "=";
  EXPECT_EQ(Mac("/secrets/db", padded), Mac("/secrets/db", padded.substr(0, padded.size() - 1)));
  auto extra = Call("POST", "/secrets/db/hash?api-version=7.3",
                    ToJson(Json{{"key", key_}, {"alg", "HS512"}, {"x", {1, 2}}}));
  EXPECT_EQ(extra.status, 200) << extra.body;
  EXPECT_EQ(J(extra)["alg"], "HS256");
  EXPECT_EQ(Call("POST", "/secrets/db/hash", ToJson(Json{{"key", key_}})).status, 400);
}

TEST_F(SecretHashTest, AnswersAsGetForMissingAndDisabledVersions) {
  std::string v1 = Put("db", "v");
  auto missing = Hash("/secrets/nope", key_);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(J(missing)["error"]["code"], "SecretNotFound");
  auto no_version = Hash("/secrets/db/" + std::string(32, '0'), key_);
  EXPECT_EQ(no_version.status, 404);
  EXPECT_EQ(J(no_version)["error"]["code"], "SecretNotFound");
  EXPECT_EQ(Hash("/secrets/db/zz", key_).status,
            Call("GET", "/secrets/db/zz?api-version=7.3").status);
  ASSERT_EQ(
      Call("PATCH", "/secrets/db/" + v1 + "?api-version=7.3", R"({"attributes":{"enabled":false}})")
          .status,
      200);
  auto get = Call("GET", "/secrets/db/" + v1 + "?api-version=7.3");
  auto hash = Hash("/secrets/db/" + v1, key_);
  EXPECT_EQ(get.status, 403);
  EXPECT_EQ(hash.status, get.status);
  EXPECT_EQ(J(hash)["error"]["code"], J(get)["error"]["code"]);
  EXPECT_EQ(Hash("/secrets/db", key_).status, get.status) << "the latest is the disabled one";
  ASSERT_EQ(Call("DELETE", "/secrets/db?api-version=7.3").status, 200);
  EXPECT_EQ(Hash("/secrets/db", key_).status, 404);
}

}  // namespace
}  // namespace coffer::keyvault
