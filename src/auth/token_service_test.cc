#include "auth/token_service.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "auth/token_verifier.h"
#include "common/json.h"
#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

class TokenServiceTest : public ::testing::Test {
 protected:
  TokenServiceTest()
      : clock_(1800000000),
        keys_(SigningKeySet::ForTest()),
        directory_(store_, clock_, "t1", DirectoryOptions{std::string(32, 'k'), {3, 60}, {5, 60}}),
        service_(Config(), directory_, *keys_, clock_) {}

  static TokenServiceConfig Config() {
    TokenServiceConfig c;
    c.tenant_id = "t1";
    c.authority_hosts = {"localhost:8443", "127.0.0.1:8443"};
    c.resources = {"https://vault.localhost:8443"};
    return c;
  }

  http::Response Post(const std::string& body, const std::string& tenant = "t1",
                      const std::string& from = "192.0.2.1") {
    http::Request r;
    r.method = "POST";
    r.host = "localhost:8443";
    r.remote_address = from;
    r.segments = {tenant, "oauth2", "v2.0", "token"};
    r.body = body;
    return service_.TokenEndpoint(r, tenant);
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<SigningKeySet> keys_;
  Directory directory_;
  TokenService service_;
};

TEST_F(TokenServiceTest, DiscoveryNamesTheAuthorityAsIssuer) {
  http::Request r;
  r.method = "GET";
  r.host = "localhost:8443";
  r.segments = {"t1", "v2.0", ".well-known", "openid-configuration"};
  auto res = service_.Discovery(r, "t1");
  auto doc = ParseJson(res.body);
  EXPECT_EQ((*doc)["issuer"], "https://localhost:8443/t1/v2.0");
  EXPECT_EQ((*doc)["token_endpoint"], "https://localhost:8443/t1/oauth2/v2.0/token");
  EXPECT_EQ((*doc)["jwks_uri"], "https://localhost:8443/t1/discovery/v2.0/keys");
  EXPECT_TRUE(doc->contains("authorization_endpoint"));
  EXPECT_EQ(service_.Discovery(r, "other").status, 400);
}

TEST_F(TokenServiceTest, TheAdfsAliasServesTheTenantsDocumentAndTokens) {
  http::Request r;
  r.method = "GET";
  r.host = "localhost:8443";
  // MSAL's ADFS path: /adfs/.well-known/openid-configuration, with the
  // tenant's own issuer and endpoints.
  auto res = service_.AdfsDiscovery(r, "adfs");
  ASSERT_EQ(res.status, 200) << res.body;
  auto doc = ParseJson(res.body);
  EXPECT_EQ((*doc)["issuer"], "https://localhost:8443/t1/v2.0");
  EXPECT_EQ((*doc)["token_endpoint"], "https://localhost:8443/t1/oauth2/v2.0/token");
  EXPECT_EQ((*doc)["jwks_uri"], "https://localhost:8443/t1/discovery/v2.0/keys");
  EXPECT_TRUE(doc->contains("authorization_endpoint"));
  EXPECT_EQ(service_.Discovery(r, "adfs").body, res.body);
  EXPECT_EQ(service_.Keys("adfs").status, 200);
  // Only the lower-case alias; the tenant's id is no ADFS path.
  EXPECT_EQ(service_.AdfsDiscovery(r, "ADFS").status, 400);
  EXPECT_EQ(service_.AdfsDiscovery(r, "t1").status, 400);
  EXPECT_EQ(service_.Discovery(r, "Adfs").status, 400);

  // Tokens through the alias are the tenant's, and a resource id ending in
  // '/' gives "<resource>//.default", which is the resource.
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok());
  auto token = Post("grant_type=client_credentials&client_id=" + sp->principal.app_id +
                        "&client_secret=" + sp->client_secret +
                        "&scope=https%3A%2F%2Fvault.localhost%3A8443%2F%2F.default",
                    "adfs");
  ASSERT_EQ(token.status, 200) << token.body;
  TokenVerifier verifier(*keys_, clock_, service_.Issuers(), "t1");
  auto t = verifier.Verify((*ParseJson(token.body))["access_token"].get<std::string>(),
                           {"https://vault.localhost:8443"});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->object_id(), sp->principal.object_id);
  EXPECT_EQ(
      Post("grant_type=client_credentials&client_id=x&client_secret=y&scope=a%2F.default", "ADFS")
          .status,
      400);
}

TEST_F(TokenServiceTest, ClientCredentialsIssueAVerifiableToken) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok());
  // Telemetry fields and claims are ignored, as clients always send them.
  auto res = Post("grant_type=client_credentials&client_id=" + sp->principal.app_id +
                  "&client_secret=" + sp->client_secret +
                  "&scope=https%3A%2F%2Fvault.localhost%3A8443%2F.default&client_info=1"
                  "&claims=%7B%7D&x-client-SKU=msal.js.node");
  ASSERT_EQ(res.status, 200) << res.body;
  auto body = ParseJson(res.body);
  EXPECT_EQ((*body)["token_type"], "Bearer");
  EXPECT_EQ((*body)["expires_in"], 3600);
  EXPECT_FALSE(body->contains("id_token"));
  TokenVerifier verifier(*keys_, clock_, service_.Issuers(), "t1");
  auto t =
      verifier.Verify((*body)["access_token"].get<std::string>(), {"https://vault.localhost:8443"});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->object_id(), sp->principal.object_id);
  EXPECT_EQ(t->app_id(), sp->principal.app_id);
}

TEST_F(TokenServiceTest, RejectsBadClientsScopesAndGrants) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok());
  std::string ok_scope = "&scope=https://vault.localhost:8443/.default";
  std::string id = "&client_id=" + sp->principal.app_id;
  auto error_of = [](const http::Response& r) { return (*ParseJson(r.body))["error"]; };
  auto wrong = Post("grant_type=client_credentials" + id + "&client_secret=nope" + ok_scope);
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(error_of(wrong), "invalid_client");
  EXPECT_NE(wrong.body.find("AADSTS7000215"), std::string::npos);
  auto unknown = Post("grant_type=client_credentials&client_id=x&client_secret=y" + ok_scope);
  EXPECT_EQ(unknown.status, 401);
  auto no_default =
      Post("grant_type=client_credentials" + id + "&client_secret=" + sp->client_secret +
           "&scope=https://vault.localhost:8443");
  EXPECT_EQ(error_of(no_default), "invalid_scope");
  auto foreign = Post("grant_type=client_credentials" + id + "&client_secret=" + sp->client_secret +
                      "&scope=https://graph.microsoft.com/.default");
  EXPECT_EQ(error_of(foreign), "invalid_resource");
  EXPECT_EQ(error_of(Post("grant_type=password" + id)), "unsupported_grant_type");
  EXPECT_EQ(error_of(Post("client_id=x")), "invalid_request");
  EXPECT_EQ(error_of(Post("grant_type=%zz")), "invalid_request");
  EXPECT_EQ(Post("grant_type=client_credentials" + id, "t2").status, 400);
}

TEST_F(TokenServiceTest, ExpiredClientSecretIsRefused) {
  auto sp = directory_.CreateServicePrincipal("app", 1);
  ASSERT_TRUE(sp.ok());
  EXPECT_TRUE(directory_.AuthenticateClientSecret(sp->principal.app_id, sp->client_secret).ok());
  clock_.Advance(2 * 86400);
  EXPECT_EQ(
      directory_.AuthenticateClientSecret(sp->principal.app_id, sp->client_secret).status().code(),
      StatusCode::kUnauthenticated);
}

TEST_F(TokenServiceTest, ConcurrentVerificationsOfOneCredentialAgree) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  ASSERT_TRUE(sp.ok());
  std::vector<std::thread> threads;
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      std::string secret = i % 2 == 0 ? sp->client_secret : std::string("wrong");
      if (directory_.AuthenticateClientSecret(sp->principal.app_id, secret).ok()) {
        ++accepted;
      } else {
        ++refused;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(accepted.load(), 4);
  EXPECT_EQ(refused.load(), 4);
}

TEST_F(TokenServiceTest, RepeatedWrongSecretsGet429WithRetryAfterAndOthersAreServed) {
  auto sp = directory_.CreateServicePrincipal("app", 30);
  auto other = directory_.CreateServicePrincipal("other", 30);
  ASSERT_TRUE(sp.ok() && other.ok());
  std::string scope = "&scope=https://vault.localhost:8443/.default";
  auto form = [&](const NewServicePrincipal& p, const std::string& secret) {
    return "grant_type=client_credentials&client_id=" + p.principal.app_id +
           "&client_secret=" + secret + scope;
  };
  // Three failures per client id are allowed at once (the fixture's limit).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Post(form(*sp, "guess" + std::to_string(i))).status, 401);
  }
  auto limited = Post(form(*sp, "guess3"));
  ASSERT_EQ(limited.status, 429) << limited.body;
  auto body = ParseJson(limited.body);
  EXPECT_EQ((*body)["error"], "invalid_client");
  EXPECT_EQ((*body)["error_codes"][0], 50053);
  std::string retry_after;
  for (const auto& [name, value] : limited.headers) {
    if (name == "Retry-After") {
      retry_after = value;
    }
  }
  EXPECT_EQ(retry_after, "60");
  EXPECT_EQ(limited.body.find("guess"), std::string::npos);
  // The right secret is still accepted, from anywhere: a failure of others
  // does not lock the client out.
  EXPECT_EQ(Post(form(*sp, sp->client_secret), "t1", "198.51.100.7").status, 200);
  // Another client id from the same address is unaffected.
  EXPECT_EQ(Post(form(*other, "wrong")).status, 401);
  EXPECT_EQ(Post(form(*other, other->client_secret)).status, 200);
  // Once the bucket refills, a wrong secret is an ordinary 401 again.
  clock_.Advance(60);
  EXPECT_EQ(Post(form(*sp, "wrong")).status, 401);
  EXPECT_EQ(Post(form(*sp, "wrong")).status, 429);
}

}  // namespace
}  // namespace coffer::auth
