#include "keyvault/secrets_api.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace coffer::keyvault
