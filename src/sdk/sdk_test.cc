#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "coffer/certificate_client.h"
#include "coffer/credentials.h"
#include "coffer/cryptography_client.h"
#include "coffer/key_client.h"
#include "coffer/secret_cache.h"
#include "coffer/secret_client.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "crypto/asym_key.h"
#include "crypto/primitives.h"
#include "crypto/rsa_key.h"
#include "crypto/x509.h"
#include "sdk/follow.h"
#include "sdk/secret_cache_testing.h"
#include "sdk/wire.h"

namespace coffer {
namespace {

using namespace std::chrono_literals;

// FakeTransport answers with a handler and records every request.
class FakeTransport : public HttpTransport {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit FakeTransport(Handler handler) : handler_(std::move(handler)) {}

  StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    Handler h;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      times_.push_back(std::chrono::steady_clock::now());
      h = handler_;
    }
    return h(request);
  }
  StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                const std::function<bool(std::string_view)>& on_data,
                                const std::atomic<bool>* cancel) override {
    (void)on_data;
    {
      std::lock_guard<std::mutex> lock(mu_);
      streams_.push_back(request);
    }
    while (cancel != nullptr && !cancel->load()) {
      std::this_thread::sleep_for(5ms);
    }
    return UnavailableError("no stream in this fake");
  }

  void set_handler(Handler h) {
    std::lock_guard<std::mutex> lock(mu_);
    handler_ = std::move(h);
  }
  std::vector<HttpRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<std::chrono::steady_clock::time_point> times() {
    std::lock_guard<std::mutex> lock(mu_);
    return times_;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.size();
  }

 private:
  std::mutex mu_;
  Handler handler_;
  std::vector<HttpRequest> requests_;
  std::vector<HttpRequest> streams_;
  std::vector<std::chrono::steady_clock::time_point> times_;
};

std::string HeaderOf(const HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (EqualsIgnoreCase(k, name)) {
      return v;
    }
  }
  return "";
}

HttpResponse Json200(const Json& body) {
  return HttpResponse{200, {{"Content-Type", "application/json"}}, ToJson(body)};
}

HttpResponse Challenge() {
  return HttpResponse{401,
                      {{"WWW-Authenticate",
                        "Bearer authorization=\"https://localhost:8443/t1\", "
                        "resource=\"https://vault.localhost:8443\""}},
                      "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"no token\"}}"};
}

class FixedCredential : public TokenCredential {
 public:
  StatusOr<AccessToken> GetToken(const std::string& scope) override {
    std::lock_guard<std::mutex> lock(mu);
    scopes.push_back(scope);
    return AccessToken{"tok", std::chrono::system_clock::now() + 1h};
  }
  std::mutex mu;
  std::vector<std::string> scopes;
};

// A small vault: name -> (version, value); the probe gets a challenge.
class FakeVault {
 public:
  HttpResponse Handle(const HttpRequest& r) {
    if (HeaderOf(r, "Authorization").empty()) {
      return Challenge();
    }
    std::lock_guard<std::mutex> lock(mu);
    if (down) {
      return HttpResponse{
          503, {}, "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"down\"}}"};
    }
    std::string path = r.url.substr(r.url.find("/secrets/") + 9);
    path = path.substr(0, path.find('?'));
    auto parts = Split(path, '/');
    std::string name(parts[0]);
    auto it = secrets.find(name);
    if (it == secrets.end()) {
      return HttpResponse{
          404,
          {},
          "{\"error\":{\"code\":\"SecretNotFound\",\"message\":\"A secret with (name/id) " + name +
              " was not found in this key vault.\"}}"};
    }
    ++reads[name];
    std::string version =
        parts.size() > 1 && !parts[1].empty() ? std::string(parts[1]) : it->second.first;
    return Json200({{"id", "https://dev.vault.localhost:8443/secrets/" + name + "/" + version},
                    {"value", it->second.second},
                    {"attributes", {{"enabled", true}, {"created", 1}, {"updated", 2}}}});
  }
  std::mutex mu;
  bool down = false;
  std::map<std::string, std::pair<std::string, std::string>> secrets;
  std::map<std::string, int> reads;
};

std::shared_ptr<SecretClient> ClientFor(std::shared_ptr<FakeTransport> t,
                                        std::shared_ptr<TokenCredential> cred = nullptr) {
  SecretClientOptions o;
  o.transport = std::move(t);
  o.retry.max_retries = 1;
  o.retry.initial_delay = 1ms;
  return std::make_shared<SecretClient>("https://dev.vault.localhost:8443/",
                                        cred ? cred : std::make_shared<FixedCredential>(), o);
}

// ---- wire ------------------------------------------------------------------------------

TEST(Wire, ChallengeScopeAndDomainCheck) {
  auto scope = ScopeFromChallenge(Challenge(), "https://dev.vault.localhost:8443");
  ASSERT_TRUE(scope.ok()) << scope.status().ToString();
  EXPECT_EQ(*scope, "https://vault.localhost:8443/.default");
  HttpResponse foreign = Challenge();
  foreign.headers = {{"www-authenticate", "Bearer resource=\"https://evil.example\""}};
  EXPECT_EQ(ScopeFromChallenge(foreign, "https://dev.vault.localhost:8443").status().code(),
            StatusCode::kUnauthenticated);
  // A suffix that is not a parent domain ("xvault.localhost") is not accepted.
  foreign.headers = {{"WWW-Authenticate", "Bearer resource=\"https://ault.localhost\""}};
  EXPECT_FALSE(ScopeFromChallenge(foreign, "https://dev.vault.localhost").ok());
  HttpResponse with_scope{
      401, {{"WWW-Authenticate", "Bearer scope=\"https://vault.localhost/.default\""}}, ""};
  EXPECT_EQ(*ScopeFromChallenge(with_scope, "https://a.vault.localhost"),
            "https://vault.localhost/.default");
  EXPECT_FALSE(ScopeFromChallenge(HttpResponse{200, {}, ""}, "https://a.vault.localhost").ok());
  EXPECT_FALSE(ScopeFromChallenge(HttpResponse{401, {{"WWW-Authenticate", "Bearer"}}, ""},
                                  "https://a.vault.localhost")
                   .ok());
}

TEST(Wire, ChallengeResourceIsReadAsTheHttpClientReadsUrls) {
  // A resource with user information, or one the client would not send a
  // request to, names no domain: no token is asked for it.
  for (const char* resource :
       {"https://evil.example@vault.localhost", "https://vault.localhost:8443@evil.example",
        "https://vault.localhost\\@evil.example", "https://[::1"}) {
    HttpResponse challenge{
        401, {{"WWW-Authenticate", std::string("Bearer resource=\"") + resource + "\""}}, ""};
    EXPECT_EQ(ScopeFromChallenge(challenge, "https://dev.vault.localhost:8443").status().code(),
              StatusCode::kUnauthenticated)
        << resource;
  }
  std::string v, n, ver;
  SplitObjectId("https://evil.example@dev.vault.localhost/secrets/db", "secrets", &v, &n, &ver);
  EXPECT_EQ(v, "");
  SplitObjectId("https://DEV.vault.localhost:443/secrets/db", "secrets", &v, &n, &ver);
  EXPECT_EQ(v, "https://dev.vault.localhost");
  EXPECT_EQ(n, "db");
}

TEST(Wire, ErrorsMapToCanonicalCodesAndKeepKeyVaultsCode) {
  Status s = ErrorFromResponse(
      {404, {}, "{\"error\":{\"code\":\"SecretNotFound\",\"message\":\"gone\"}}"});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.reason(), "SecretNotFound");
  EXPECT_EQ(s.message(), "gone");
  EXPECT_EQ(ErrorFromResponse({403, {}, "not json"}).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorFromResponse({429, {}, ""}).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorFromResponse({502, {}, ""}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrorFromResponse({400, {}, "{\"error\":[1]}"}).reason(), "HTTP400");
}

TEST(Wire, RetryAfterForms) {
  EXPECT_EQ(RetryAfter({429, {{"Retry-After", "3"}}, ""}), 3000ms);
  EXPECT_EQ(RetryAfter({429, {{"retry-after-ms", "250"}, {"Retry-After", "3"}}, ""}), 250ms);
  EXPECT_EQ(RetryAfter({429, {{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}}, ""}), 0ms);
  EXPECT_EQ(RetryAfter({429, {{"Retry-After", "99999999"}}, ""}), 3600000ms);
  EXPECT_EQ(RetryAfter({429, {{"Retry-After", "-1"}}, ""}), 0ms);
}

TEST(Wire, NamesThatCouldChangeThePathAreRefused) {
  EXPECT_TRUE(CheckName("db-password").ok());
  for (const char* bad : {"", "a/b", "..", "a?b", "a%2Fb", "a b", "\xc3\xa9"}) {
    EXPECT_EQ(CheckName(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(CheckName(std::string(128, 'a')).ok());
}

TEST(Wire, ObjectIds) {
  std::string v, n, ver;
  SplitObjectId("https://dev.vault.localhost:8443/secrets/db/abc", "secrets", &v, &n, &ver);
  EXPECT_EQ(v, "https://dev.vault.localhost:8443");
  EXPECT_EQ(n, "db");
  EXPECT_EQ(ver, "abc");
  SplitObjectId("https://x/keys/db/abc", "secrets", &v, &n, &ver);
  EXPECT_EQ(n, "");
  SplitObjectId("garbage", "secrets", &v, &n, &ver);
  EXPECT_EQ(v, "");
  bool deleted = false;
  EXPECT_TRUE(SplitObjectId("https://x/keys/k/v1", "keys", &v, &n, &ver, &deleted));
  EXPECT_EQ(n, "k");
  EXPECT_EQ(ver, "v1");
  EXPECT_FALSE(deleted);
  EXPECT_TRUE(SplitObjectId("https://x/deletedkeys/k", "keys", &v, &n, &ver, &deleted));
  EXPECT_TRUE(deleted);
  EXPECT_FALSE(SplitObjectId("https://x/deletedsecrets/k", "keys", &v, &n, &ver));
  EXPECT_FALSE(SplitObjectId("https://x/xkeys/k", "keys", &v, &n, &ver));
}

TEST(Wire, ServerSentEventsInAnyPieces) {
  std::string body =
      ": coffer watch\n\nid: 41\r\nevent: Microsoft.KeyVault.SecretNewVersionCreated\n"
      "data: {\"subject\":\"db\",\"data\":{\"ObjectName\":\"db\",\"Version\":\"v2\"}}\n\n"
      "id: 41\nevent: coffer.ready\ndata: {\"token\":\"41\"}\n\n: keep-alive\n\n";
  for (size_t step : {size_t{1}, size_t{7}, body.size()}) {
    SseParser parser;
    std::vector<SecretChange> got;
    for (size_t i = 0; i < body.size(); i += step) {
      ASSERT_TRUE(parser
                      .Feed(std::string_view(body).substr(i, step),
                            [&](const SseEvent& e) {
                              got.push_back(ChangeFromEvent(e));
                              return true;
                            })
                      .ok());
    }
    ASSERT_EQ(got.size(), 2u) << step;
    EXPECT_EQ(got[0].name, "db");
    EXPECT_EQ(got[0].version, "v2");
    EXPECT_EQ(got[0].token, "41");
    EXPECT_EQ(got[1].type, "coffer.ready");
    EXPECT_EQ(got[1].token, "41");
  }
}

TEST(Wire, AnEndlessEventIsRefusedAndTheParserStaysFailed) {
  SseParser parser;
  std::string chunk(64 * 1024, 'x');
  Status s;
  for (int i = 0; i < 20 && s.ok(); ++i) {
    s = parser.Feed(chunk, [](const SseEvent&) { return true; });
  }
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(parser.overflowed());
  EXPECT_FALSE(parser.Feed("\n\n", [](const SseEvent&) { return true; }).ok());
}

// ---- credentials ------------------------------------------------------------------------

TEST(Credentials, ClientSecretTokensAreCachedAndRefreshedBeforeExpiry) {
  int issued = 0;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.url, "https://localhost:8443/t1/oauth2/v2.0/token");
    EXPECT_NE(r.body.find("client_secret=s%3Dcr%26t"), std::string::npos) << r.body;
    ++issued;
    // The first token is already inside the refresh window; the second is not.
    return Json200(
        {{"access_token", "t" + std::to_string(issued)}, {"expires_in", issued == 1 ? 60 : 3600}});
  });
  CredentialOptions o;
  o.authority_host = "https://localhost:8443/";
  o.transport = t;
  ClientSecretCredential c("t1", "app", "s=cr&t", o);
  EXPECT_EQ(c.GetToken("https://vault.localhost/.default")->token, "t1");
  EXPECT_EQ(c.GetToken("https://vault.localhost/.default")->token, "t2");
  EXPECT_EQ(c.GetToken("https://vault.localhost/.default")->token, "t2");
  EXPECT_EQ(t->count(), 2u);
  // Another scope is another token.
  EXPECT_EQ(c.GetToken("https://localhost/.default")->token, "t3");
}

TEST(Credentials, DeviceCodeSignsInOnceThenRefreshesForEveryScope) {
  int polls = 0;
  std::vector<std::string> refreshed_with;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) {
    if (r.url == "https://localhost:8443/t1/oauth2/v2.0/devicecode") {
      EXPECT_NE(r.body.find("client_id=04b07795"), std::string::npos) << r.body;
      EXPECT_NE(r.body.find("offline_access"), std::string::npos) << r.body;
      return Json200({{"device_code", "dc"},
                      {"user_code", "BCDF-GHJK"},
                      {"verification_uri", "https://localhost:8443/devicelogin"},
                      {"expires_in", 900},
                      {"interval", 1},
                      {"message", "enter BCDF-GHJK"}});
    }
    EXPECT_EQ(r.url, "https://localhost:8443/t1/oauth2/v2.0/token");
    if (r.body.find("grant_type=refresh_token") != std::string::npos) {
      refreshed_with.push_back(r.body.substr(r.body.find("refresh_token=") + 14, 3));
      return Json200(
          {{"access_token", "at-refreshed"}, {"expires_in", 3600}, {"refresh_token", "rt2"}});
    }
    EXPECT_NE(r.body.find("device_code=dc"), std::string::npos) << r.body;
    if (++polls == 1) {
      return HttpResponse{400, {}, "{\"error\":\"authorization_pending\"}"};
    }
    return Json200(
        {{"access_token", "at-signed-in"}, {"expires_in", 3600}, {"refresh_token", "rt1"}});
  });
  CredentialOptions o;
  o.authority_host = "https://localhost:8443";
  o.transport = t;
  std::vector<DeviceCodeInfo> prompts;
  DeviceCodeCredential c(
      "t1", [&](const DeviceCodeInfo& info) { prompts.push_back(info); }, o);
  EXPECT_EQ(c.GetToken("https://vault.localhost/.default")->token, "at-signed-in");
  ASSERT_EQ(prompts.size(), 1u);
  EXPECT_EQ(prompts[0].user_code, "BCDF-GHJK");
  EXPECT_EQ(prompts[0].verification_uri, "https://localhost:8443/devicelogin");
  EXPECT_EQ(polls, 2) << "polled again after authorization_pending";
  EXPECT_EQ(c.refresh_token(), "rt1");
  EXPECT_EQ(c.GetToken("https://localhost/.default")->token, "at-refreshed");
  EXPECT_EQ(prompts.size(), 1u) << "another scope needs no second sign-in";
  EXPECT_EQ(refreshed_with, std::vector<std::string>{"rt1"});
  EXPECT_EQ(c.refresh_token(), "rt2");

  // A saved sign-in without a prompt never prompts: a refused refresh token
  // is an error, and no refresh token is a precondition.
  t->set_handler([](const HttpRequest&) {
    return HttpResponse{400, {}, "{\"error\":\"invalid_grant\",\"error_description\":\"revoked\"}"};
  });
  DeviceCodeCredential saved("t1", nullptr, o, DeviceCodeCredential::kAzureCliClientId, "old");
  EXPECT_EQ(saved.GetToken("s").status().code(), StatusCode::kUnauthenticated);
  DeviceCodeCredential none("t1", nullptr, o);
  EXPECT_EQ(none.GetToken("s").status().code(), StatusCode::kFailedPrecondition);
}

TEST(Credentials, RefusalsCarryTheServicesReasonButNoSecret) {
  auto t = std::make_shared<FakeTransport>([](const HttpRequest&) {
    return HttpResponse{
        401, {}, "{\"error\":\"invalid_client\",\"error_description\":\"bad secret\"}"};
  });
  CredentialOptions o;
  o.authority_host = "https://localhost:8443";
  o.transport = t;
  ClientSecretCredential c("t1", "app", "hunter2", o);
  auto token = c.GetToken("s");
  EXPECT_EQ(token.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(token.status().message().find("bad secret"), std::string::npos);
  EXPECT_EQ(token.status().message().find("hunter2"), std::string::npos);
  t->set_handler([](const HttpRequest&) { return HttpResponse{200, {}, "{\"access_token\":1}"}; });
  EXPECT_FALSE(c.GetToken("s").ok());
  t->set_handler([](const HttpRequest&) { return Json200({{"access_token", "x"}}); });
  EXPECT_FALSE(c.GetToken("s").ok()) << "a token without expiry is refused";
}

TEST(Credentials, ManagedIdentityAppServiceAndImdsRequests) {
  std::vector<HttpRequest> seen;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) {
    seen.push_back(r);
    return Json200({{"access_token", "mi"}, {"expires_on", "4102444800"}});
  });
  CredentialOptions o;
  o.transport = t;
  setenv("IDENTITY_ENDPOINT", "https://localhost:8443/msi/token", 1);
  setenv("IDENTITY_HEADER", "hdr", 1);
  ManagedIdentityCredential app(ManagedIdentityId::Parse("/subscriptions/s/x"), o);
  auto tok = app.GetToken("https://vault.localhost:8443/.default");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->expires_on.time_since_epoch(), std::chrono::seconds(4102444800));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].url,
            "https://localhost:8443/msi/token?api-version=2019-08-01&resource=https%3A%2F%2F"
            "vault.localhost%3A8443&mi_res_id=%2Fsubscriptions%2Fs%2Fx");
  EXPECT_EQ(HeaderOf(seen[0], "X-IDENTITY-HEADER"), "hdr");
  unsetenv("IDENTITY_ENDPOINT");
  unsetenv("IDENTITY_HEADER");
  setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:50342/", 1);
  ManagedIdentityCredential imds(ManagedIdentityId::ClientId("c1"), o);
  ASSERT_TRUE(imds.GetToken("https://vault.localhost/.default").ok());
  EXPECT_EQ(seen[1].url,
            "http://127.0.0.1:50342/metadata/identity/oauth2/token?api-version=2018-02-01&"
            "resource=https%3A%2F%2Fvault.localhost&client_id=c1");
  EXPECT_EQ(HeaderOf(seen[1], "Metadata"), "true");
  unsetenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
  ManagedIdentityCredential none({}, o);
  EXPECT_EQ(none.GetToken("s").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(seen.size(), 2u) << "nothing is probed without an endpoint";
}

TEST(Credentials, ClientCertificateSendsAnAssertionSignedByTheCertificatesKey) {
  auto key = crypto::RsaKey::Generate(2048);
  ASSERT_TRUE(key.ok());
  auto cert = crypto::CreateSelfSignedCertificate(**key, "app", 1);
  ASSERT_TRUE(cert.ok());
  auto dir = test::TempDir::Create("coffer-sdk-test-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string path = dir->Join("cert.pem");
  std::ofstream(path) << *cert << (*key)->PrivatePem();
  std::string assertion;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) {
    for (std::string_view kv : Split(r.body, '&')) {
      if (StartsWith(kv, "client_assertion=")) {
        assertion = std::string(kv.substr(17));
      }
    }
    EXPECT_EQ(r.body.find("client_secret"), std::string::npos);
    return Json200({{"access_token", "c"}, {"expires_in", 3600}});
  });
  CredentialOptions o;
  o.authority_host = "https://localhost:8443";
  o.transport = t;
  ClientCertificateCredential c("t1", "app-id", path, o);
  ASSERT_TRUE(c.GetToken("s").ok());
  auto parts = Split(assertion, '.');
  ASSERT_EQ(parts.size(), 3u) << assertion;
  auto header = ParseJson(*Base64UrlDecode(parts[0]));
  auto claims = ParseJson(*Base64UrlDecode(parts[1]));
  auto info = crypto::ParseCertificate(*cert);
  EXPECT_EQ(StringMember(*header, "x5t"), Base64UrlEncode(info->sha1_thumbprint));
  EXPECT_EQ(StringMember(*claims, "aud"), "https://localhost:8443/t1/oauth2/v2.0/token");
  EXPECT_EQ(StringMember(*claims, "iss"), "app-id");
  EXPECT_EQ(StringMember(*claims, "sub"), "app-id");
  std::string input = std::string(parts[0]) + "." + std::string(parts[1]);
  EXPECT_TRUE(info->public_key->VerifyRs256(input, *Base64UrlDecode(parts[2])));

  // A key that is not the certificate's is refused before anything is sent.
  auto other = crypto::RsaKey::Generate(2048);
  std::ofstream(path) << *cert << (*other)->PrivatePem();
  ClientCertificateCredential mismatched("t1", "app-id", path, o);
  EXPECT_EQ(mismatched.GetToken("s").status().code(), StatusCode::kInvalidArgument);
  ClientCertificateCredential missing("t1", "app-id", path + ".absent", o);
  EXPECT_EQ(missing.GetToken("s").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(t->count(), 1u);
}

TEST(Credentials, WorkloadIdentityReadsAndTrimsTheTokenFileEachTime) {
  auto dir = test::TempDir::Create("coffer-sdk-test-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string path = dir->Join("federated_token");
  std::ofstream(path) << "eyJ.first.sig\n";
  std::vector<std::string> bodies;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) {
    bodies.push_back(r.body);
    return Json200({{"access_token", "w"}, {"expires_in", 10}});  // always due for refresh
  });
  CredentialOptions o;
  o.authority_host = "https://localhost:8443";
  o.transport = t;
  WorkloadIdentityCredential c(o, "t1", "client", path);
  ASSERT_TRUE(c.GetToken("s").ok());
  std::ofstream(path) << "eyJ.second.sig";
  ASSERT_TRUE(c.GetToken("s").ok());
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_NE(bodies[0].find("client_assertion=eyJ.first.sig"), std::string::npos) << bodies[0];
  EXPECT_NE(bodies[1].find("client_assertion=eyJ.second.sig"), std::string::npos);
  EXPECT_EQ(bodies[0].find("%0A"), std::string::npos) << "the newline was trimmed";
  std::ofstream(path) << "   ";
  WorkloadIdentityCredential empty(o, "t1", "client", path);
  EXPECT_EQ(empty.GetToken("s").status().code(), StatusCode::kInvalidArgument);
}

TEST(Credentials, ClientAssertionAsksItsProviderForEveryExchange) {
  std::vector<std::string> bodies;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) {
    bodies.push_back(r.body);
    return Json200({{"access_token", "a"}, {"expires_in", 10}});  // always due for refresh
  });
  CredentialOptions o;
  o.authority_host = "https://localhost:8443";
  o.transport = t;
  int calls = 0;
  ClientAssertionCredential c(
      "t1", "client",
      [&]() -> StatusOr<std::string> {
        ++calls;
        return "eyJ.n" + std::to_string(calls) + ".sig";
      },
      o);
  ASSERT_TRUE(c.GetToken("s").ok());
  ASSERT_TRUE(c.GetToken("s").ok());
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_NE(bodies[0].find("client_id=client"), std::string::npos) << bodies[0];
  EXPECT_NE(bodies[0].find("client_assertion=eyJ.n1.sig"), std::string::npos) << bodies[0];
  EXPECT_NE(bodies[1].find("client_assertion=eyJ.n2.sig"), std::string::npos) << bodies[1];
  EXPECT_NE(bodies[0].find("jwt-bearer"), std::string::npos);

  ClientAssertionCredential failing(
      "t1", "client",
      []() -> StatusOr<std::string> {
        return NotFoundError("no token for audience api://AzureADTokenExchange");
      },
      o);
  EXPECT_EQ(failing.GetToken("s").status().code(), StatusCode::kNotFound);
  ClientAssertionCredential empty(
      "t1", "client", [] { return StatusOr<std::string>(""); }, o);
  EXPECT_EQ(empty.GetToken("s").status().code(), StatusCode::kInvalidArgument);
  ClientAssertionCredential no_client(
      "t1", "", [] { return StatusOr<std::string>("x"); }, o);
  EXPECT_EQ(no_client.GetToken("s").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(bodies.size(), 2u) << "failed assertions never reach the token service";
}

TEST(Credentials, ChainPassesOverUnconfiguredAndStopsAtARefusal) {
  struct Fails : TokenCredential {
    explicit Fails(Status status) : status_(std::move(status)) {}
    StatusOr<AccessToken> GetToken(const std::string&) override { return status_; }
    Status status_;
  };
  auto good = std::make_shared<FixedCredential>();
  ChainedTokenCredential chain(
      {{"A", std::make_shared<Fails>(FailedPreconditionError("not set"))}, {"B", good}});
  EXPECT_TRUE(chain.GetToken("s").ok());
  ChainedTokenCredential refused(
      {{"A", std::make_shared<Fails>(UnauthenticatedError("no"))}, {"B", good}});
  auto r = refused.GetToken("s");
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("A: no"), std::string::npos);
}

// ---- secret client ---------------------------------------------------------------------

TEST(SecretClient, ChallengeThenBearerAndTheScopeIsKept) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "pw"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  auto cred = std::make_shared<FixedCredential>();
  auto client = ClientFor(t, cred);
  auto s = client->GetSecret("db");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->value, "pw");
  EXPECT_EQ(s->properties.name, "db");
  EXPECT_EQ(s->properties.version, "v1");
  ASSERT_TRUE(client->GetSecret("db", "v0").ok());
  auto reqs = t->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(HeaderOf(reqs[0], "Authorization"), "");
  EXPECT_EQ(reqs[0].body, "");
  EXPECT_EQ(HeaderOf(reqs[1], "Authorization"), "Bearer tok");
  EXPECT_EQ(reqs[1].url, "https://dev.vault.localhost:8443/secrets/db/?api-version=7.5");
  EXPECT_EQ(cred->scopes.front(), "https://vault.localhost:8443/.default");
  auto missing = client->GetSecret("nope");
  EXPECT_EQ(missing.status().reason(), "SecretNotFound");
  EXPECT_EQ(client->GetSecret("../admin").status().code(), StatusCode::kInvalidArgument);
}

TEST(SecretClient, NoTokenGoesToAHostTheChallengeDoesNotMatch) {
  auto t = std::make_shared<FakeTransport>([](const HttpRequest&) {
    return HttpResponse{
        401, {{"WWW-Authenticate", "Bearer resource=\"https://evil.example\""}}, ""};
  });
  auto cred = std::make_shared<FixedCredential>();
  EXPECT_EQ(ClientFor(t, cred)->GetSecret("db").status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(cred->scopes.empty());
}

TEST(SecretClient, ThrottlingIsRetriedAfterRetryAfter) {
  int calls = 0;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) {
    if (HeaderOf(r, "Authorization").empty()) {
      return Challenge();
    }
    if (++calls == 1) {
      return HttpResponse{429,
                          {{"Retry-After", "1"}},
                          "{\"error\":{\"code\":\"Throttled\",\"message\":\"slow down\"}}"};
    }
    return Json200({{"id", "https://dev.vault.localhost:8443/secrets/db/v1"}, {"value", "pw"}});
  });
  auto client = ClientFor(t);
  ASSERT_TRUE(client->GetSecret("db").ok());
  auto times = t->times();
  ASSERT_EQ(times.size(), 3u);
  EXPECT_GE(times[2] - times[1], 1000ms) << "the retry waited for Retry-After";
  calls = -100;  // always throttled: the last answer comes back as the error
  t->set_handler([](const HttpRequest&) {
    return HttpResponse{
        429, {{"retry-after-ms", "1"}}, "{\"error\":{\"code\":\"Throttled\",\"message\":\"x\"}}"};
  });
  auto r = client->GetSecret("db");
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().reason(), "Throttled");
}

TEST(SecretClient, NextLinksAreFollowedOnlyOnTheVaultsOrigin) {
  auto t = std::make_shared<FakeTransport>([](const HttpRequest& r) {
    if (HeaderOf(r, "Authorization").empty()) {
      return Challenge();
    }
    if (r.url.find("skiptoken") == std::string::npos) {
      return Json200(
          {{"value", {{{"id", "https://dev.vault.localhost:8443/secrets/a"}}}},
           {"nextLink", "https://dev.vault.localhost:8443/secrets?api-version=7.5&$skiptoken=x"}});
    }
    return Json200({{"value", {{{"id", "https://dev.vault.localhost:8443/secrets/b"}}}},
                    {"nextLink", "https://evil.example/secrets?$skiptoken=y"}});
  });
  auto client = ClientFor(t);
  auto r = client->ListPropertiesOfSecrets();
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  for (const HttpRequest& req : t->requests()) {
    EXPECT_EQ(req.url.find("evil"), std::string::npos);
  }
  auto urls = t->requests();
  EXPECT_EQ(urls.back().url,
            "https://dev.vault.localhost:8443/secrets?api-version=7.5&$skiptoken=x");
}

// ---- cache -----------------------------------------------------------------------------

SecretCacheOptions NoBackground() {
  SecretCacheOptions o;
  o.watch = false;
  o.poll_interval = std::chrono::hours(1);
  return o;
}

TEST(SecretCache, HitsMakeNoRequest) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "pw"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  SecretCache cache(ClientFor(t), NoBackground());
  ASSERT_EQ(cache.GetSecret("db")->value, "pw");
  size_t after_first = t->count();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(cache.GetSecret("db")->value, "pw");
    ASSERT_EQ(cache.GetSecret("DB")->value, "pw") << "names are case-insensitive";
  }
  EXPECT_EQ(t->count(), after_first);
  EXPECT_EQ(cache.stats().hits, 200u);
  EXPECT_EQ(cache.stats().misses, 1u);
}

TEST(SecretCache, StaleValuesAreServedWhileARefreshRuns) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "old"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  SecretCacheOptions o = NoBackground();
  o.ttl = 1ms;
  o.stale_while_revalidate = std::chrono::hours(1);
  SecretCache cache(ClientFor(t), o);
  ASSERT_EQ(cache.GetSecret("db")->value, "old");
  {
    std::lock_guard<std::mutex> lock(vault.mu);
    vault.secrets["db"] = {"v2", "new"};
  }
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(cache.GetSecret("db")->value, "old") << "stale, served at once";
  ASSERT_TRUE(test::WaitUntil([&] { return cache.stats().refreshes != 0; }));
  EXPECT_EQ(cache.GetSecret("db")->value, "new") << "a counted refresh is served";
  EXPECT_GE(cache.stats().stale_hits, 1u);
}

// RefreshHook installs a SecretCache refresh hook for its lifetime.
class RefreshHook {
 public:
  explicit RefreshHook(std::function<void(const std::string&)> hook) {
    SetSecretCacheRefreshHookForTesting(std::move(hook));
  }
  ~RefreshHook() { SetSecretCacheRefreshHookForTesting(nullptr); }
  RefreshHook(const RefreshHook&) = delete;
  RefreshHook& operator=(const RefreshHook&) = delete;
};

TEST(SecretCache, ARefreshIsCountedOnlyOnceItsValueIsServed) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "old"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  SecretCacheOptions o = NoBackground();
  o.ttl = 1ms;
  std::mutex mu;
  std::condition_variable cv;
  std::string served;  // GUARDED_BY(mu): what a reader got right after the first count
  SecretCache cache(ClientFor(t), o);
  ASSERT_EQ(cache.GetSecret("db")->value, "old");
  {
    std::lock_guard<std::mutex> lock(vault.mu);
    vault.secrets["db"] = {"v2", "new"};
  }
  std::atomic<bool> first{true};
  // The hook reads where a reader that has just seen `refreshes` go up
  // reads: between the count and whatever the cache does after it.
  RefreshHook hook([&](const std::string& name) {
    if (!first.exchange(false)) {
      return;
    }
    auto s = cache.GetSecret(name);
    std::lock_guard<std::mutex> lock(mu);
    served = s.ok() ? s->value : s.status().ToString();
    cv.notify_all();
  });
  std::this_thread::sleep_for(5ms);  // older than the ttl: the next read queues a refresh
  EXPECT_EQ(cache.GetSecret("db")->value, "old");
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return !served.empty(); }));
  EXPECT_EQ(served, "new") << "the refresh was counted before its value was stored";
}

TEST(SecretCache, AnOutageServesCachedValuesAndRecovers) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "pw"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  SecretCacheOptions o = NoBackground();
  o.ttl = 0ms;
  o.stale_while_revalidate = 0ms;  // every read goes to the vault
  SecretCache cache(ClientFor(t), o);
  ASSERT_EQ(cache.GetSecret("db")->value, "pw");
  {
    std::lock_guard<std::mutex> lock(vault.mu);
    vault.down = true;
  }
  auto during = cache.GetSecret("db");
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->value, "pw");
  EXPECT_EQ(cache.LastError("db").code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.GetSecret("other").status().code(), StatusCode::kUnavailable);
  {
    std::lock_guard<std::mutex> lock(vault.mu);
    vault.down = false;
    vault.secrets["db"] = {"v2", "pw2"};
  }
  EXPECT_EQ(cache.GetSecret("db")->value, "pw2");
  EXPECT_TRUE(cache.LastError("db").ok());
}

TEST(SecretCache, ADeletedSecretIsNotServedFromTheCache) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "pw"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  SecretCacheOptions o = NoBackground();
  o.ttl = 0ms;
  o.stale_while_revalidate = 0ms;
  SecretCache cache(ClientFor(t), o);
  ASSERT_TRUE(cache.GetSecret("db").ok());
  {
    std::lock_guard<std::mutex> lock(vault.mu);
    vault.secrets.erase("db");
  }
  EXPECT_EQ(cache.GetSecret("db").status().reason(), "SecretNotFound");
}

TEST(SecretCache, ARotationFiresTheCallbackOnce) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "pw1"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  SecretCache cache(ClientFor(t), NoBackground());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> seen;
  cache.OnChange("db", [&](const KeyVaultSecret& s) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(s.properties.version + ":" + s.value);
    cv.notify_all();
  });
  cache.Refresh();  // nothing changed: no callback
  {
    std::lock_guard<std::mutex> lock(vault.mu);
    vault.secrets["db"] = {"v2", "pw2"};
  }
  cache.Refresh();
  cache.Refresh();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return !seen.empty(); }));
  }
  // More refreshes of the unchanged value, each waited for by its count.
  // The callbacks of what a refresh found run at the refresh thread's next
  // turn, before that turn's refreshes: once a later refresh is counted, any
  // (wrong) callback of an earlier one has run.
  for (int i = 0; i < 5; ++i) {
    const uint64_t before = cache.stats().refreshes;
    cache.Refresh();
    ASSERT_TRUE(test::WaitUntil([&] { return cache.stats().refreshes > before; }));
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "v2:pw2");
  EXPECT_EQ(cache.GetSecret("db")->value, "pw2");
}

TEST(SecretCache, PinnedVersionsAreNeverRefreshed) {
  FakeVault vault;
  vault.secrets["db"] = {"v1", "pw"};
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) { return vault.Handle(r); });
  SecretCacheOptions o = NoBackground();
  o.ttl = 0ms;
  o.stale_while_revalidate = 0ms;
  SecretCache cache(ClientFor(t), o);
  ASSERT_TRUE(cache.GetSecret("db", "v1").ok());
  size_t n = t->count();
  ASSERT_TRUE(cache.GetSecret("db", "v1").ok());
  EXPECT_EQ(t->count(), n);
}

// Scripted watch streams for FollowChanges: each Stream call plays the next
// session (a 200 with its SSE body, after which the stream ends, or an error
// status with its body); the probe gets a challenge.
class ScriptedStreams : public HttpTransport {
 public:
  struct Session {
    int status;
    std::string body;
  };
  explicit ScriptedStreams(std::vector<Session> sessions) : sessions_(std::move(sessions)) {}

  StatusOr<HttpResponse> Send(const HttpRequest&) override { return Challenge(); }
  StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                const std::function<bool(std::string_view)>& on_data,
                                const std::atomic<bool>*) override {
    urls.push_back(request.url);
    if (urls.size() > sessions_.size()) {
      return UnavailableError("no more sessions");
    }
    const Session& s = sessions_[urls.size() - 1];
    if (s.status != 200) {
      return HttpResponse{s.status, {}, s.body};
    }
    on_data(s.body);
    return HttpResponse{200, {}, ""};
  }

  std::vector<std::string> urls;

 private:
  std::vector<Session> sessions_;
};

std::string Event(const std::string& id, const std::string& type, const std::string& name) {
  return "id: " + id + "\nevent: " + type + "\ndata: {\"subject\":\"" + name +
         "\",\"data\":{\"ObjectName\":\"" + name + "\",\"Version\":\"v" + id + "\"}}\n\n";
}
std::string Ready(const std::string& id) {
  return "id: " + id + "\nevent: coffer.ready\ndata: {\"token\":\"" + id + "\"}\n\n";
}

TEST(FollowChanges, ResumesFromTheLastTokenAndResyncsOnceLiveAfterTheTokenExpired) {
  auto t = std::make_shared<ScriptedStreams>(std::vector<ScriptedStreams::Session>{
      {200, Event("1", "Microsoft.KeyVault.SecretNewVersionCreated", "DB") + Ready("1")},
      {410, R"({"error":{"code":"ResumeTokenExpired","message":"too old"}})"},
      {200, Ready("5") + Event("6", "Microsoft.KeyVault.SecretUpdated", "api") +
                Event("7", "Microsoft.KeyVault.SecretNearExpiry", "api")},
  });
  SecretClientOptions options;
  options.transport = t;
  SecretClient client("https://dev.vault.localhost:8443", std::make_shared<FixedCredential>(),
                      options);
  std::atomic<bool> cancel{false};
  std::vector<std::string> seen;
  std::vector<std::chrono::milliseconds> delays;
  int errors = 0;
  FollowHandlers h;
  h.changed = [&](const std::string& name) { seen.push_back("changed " + name); };
  h.resync = [&] { seen.push_back("resync"); };
  h.error = [&](const Status&) { ++errors; };
  h.wait = [&](std::chrono::milliseconds d) {
    delays.push_back(d);
    if (delays.size() == 3) {
      cancel = true;
    }
    return true;
  };
  FollowChanges(client, FollowOptions{}, h, cancel);
  EXPECT_EQ(seen, (std::vector<std::string>{"changed db", "resync", "changed api"}));
  ASSERT_EQ(t->urls.size(), 3u);
  EXPECT_EQ(t->urls[0].find("from="), std::string::npos);
  EXPECT_NE(t->urls[1].find("from=1"), std::string::npos) << t->urls[1];
  EXPECT_EQ(t->urls[2].find("from="), std::string::npos) << t->urls[2];  // expired: from now
  EXPECT_EQ(delays, (std::vector<std::chrono::milliseconds>{500ms, 1000ms, 500ms}));
  EXPECT_EQ(errors, 2);  // the two streams that ended; the expiry is not an error
}

std::string Control(const std::string& type, const std::string& id, const std::string& reason) {
  return "id: " + id + "\nevent: " + type + "\ndata: {\"token\":\"" + id + "\",\"reason\":\"" +
         reason + "\"}\n\n";
}

TEST(FollowChanges, AResyncEventReadsAfreshOnceLiveAndTheStreamGoesOnFromItsToken) {
  auto t = std::make_shared<ScriptedStreams>(std::vector<ScriptedStreams::Session>{
      {200, Event("1", "Microsoft.KeyVault.SecretNewVersionCreated", "DB") + Ready("1")},
      // Resuming after 1, the backlog was too large: a resync before the
      // ready marker, and later one on the live stream.
      {200, ": coffer watch\n\n" + Control("coffer.resync", "50", "BacklogTooLarge") + Ready("50") +
                Event("51", "Microsoft.KeyVault.SecretUpdated", "api") +
                Control("coffer.resync", "90", "BacklogTooLarge") +
                Event("91", "Microsoft.KeyVault.SecretNewVersionCreated", "x")},
      // The token expired: the last event names the place to resume from.
      {200, Ready("91") + Control("coffer.closed", "95", "TokenExpired")},
  });
  SecretClientOptions options;
  options.transport = t;
  SecretClient client("https://dev.vault.localhost:8443", std::make_shared<FixedCredential>(),
                      options);
  std::atomic<bool> cancel{false};
  std::vector<std::string> seen;
  FollowHandlers h;
  h.changed = [&](const std::string& name) { seen.push_back("changed " + name); };
  h.resync = [&] { seen.push_back("resync"); };
  int waits = 0;
  h.wait = [&](std::chrono::milliseconds) {
    if (++waits == 4) {
      cancel = true;
    }
    return true;
  };
  FollowChanges(client, FollowOptions{}, h, cancel);
  EXPECT_EQ(seen, (std::vector<std::string>{"changed db", "resync", "changed api", "resync",
                                            "changed x"}));
  ASSERT_EQ(t->urls.size(), 4u);
  EXPECT_NE(t->urls[1].find("from=1"), std::string::npos) << t->urls[1];
  EXPECT_NE(t->urls[2].find("from=91"), std::string::npos) << t->urls[2];
  EXPECT_NE(t->urls[3].find("from=95"), std::string::npos) << t->urls[3];
}

TEST(FollowChanges, BacksOffWhileTheVaultFailsAndResyncsTheFirstStreamWhenAsked) {
  auto t = std::make_shared<ScriptedStreams>(std::vector<ScriptedStreams::Session>{
      {503, ""}, {503, ""}, {503, ""}, {200, Ready("9")}, {503, ""}});
  SecretClientOptions options;
  options.transport = t;
  options.retry.max_retries = 0;
  SecretClient client("https://dev.vault.localhost:8443", std::make_shared<FixedCredential>(),
                      options);
  std::atomic<bool> cancel{false};
  int resyncs = 0;
  std::vector<std::chrono::milliseconds> delays;
  FollowOptions follow;
  follow.max_backoff = 3s;
  follow.resync_on_first_stream = true;
  FollowHandlers h;
  h.resync = [&] { ++resyncs; };
  h.wait = [&](std::chrono::milliseconds d) {
    delays.push_back(d);
    return delays.size() < 5;  // false stops following
  };
  FollowChanges(client, follow, h, cancel);
  EXPECT_EQ(resyncs, 1);
  EXPECT_EQ(delays,
            (std::vector<std::chrono::milliseconds>{1000ms, 2000ms, 3000ms, 500ms, 1000ms}));
  EXPECT_EQ(t->urls.size(), 5u);
}

std::string TypedEvent(const std::string& id, const std::string& type, const std::string& kind,
                       const std::string& name) {
  return "id: " + id + "\nevent: " + type + "\ndata: {\"subject\":\"" + name +
         "\",\"data\":{\"ObjectType\":\"" + kind + "\",\"ObjectName\":\"" + name +
         "\",\"Version\":\"v" + id + "\"}}\n\n";
}

TEST(FollowChanges, AKeyASecretAndACertificateOfOneNameAreToldApart) {
  auto t = std::make_shared<ScriptedStreams>(std::vector<ScriptedStreams::Session>{
      {200,
       Ready("1") + TypedEvent("2", "Microsoft.KeyVault.KeyNewVersionCreated", "Key", "Shared") +
           TypedEvent("3", "Coffer.KeyVault.KeyDeleted", "Key", "shared") +
           TypedEvent("4", "Microsoft.KeyVault.SecretNewVersionCreated", "Secret", "shared") +
           TypedEvent("5", "Microsoft.KeyVault.KeyNearExpiry", "Key", "shared") +
           TypedEvent("6", "Coffer.KeyVault.KeyUpdated", "Key", "other") +
           TypedEvent("7", "Microsoft.KeyVault.CertificateNewVersionCreated", "Certificate",
                      "Shared") +
           TypedEvent("8", "Microsoft.KeyVault.CertificateNearExpiry", "Certificate", "shared")},
  });
  SecretClientOptions options;
  options.transport = t;
  SecretClient client("https://dev.vault.localhost:8443", std::make_shared<FixedCredential>(),
                      options);
  std::atomic<bool> cancel{false};
  std::vector<std::string> seen;
  FollowHandlers h;
  h.changed = [&](const std::string& name) { seen.push_back("secret " + name); };
  h.key_changed = [&](const std::string& name) { seen.push_back("key " + name); };
  h.certificate_changed = [&](const std::string& name) { seen.push_back("cert " + name); };
  h.wait = [&](std::chrono::milliseconds) { return false; };
  FollowChanges(client, FollowOptions{}, h, cancel);
  EXPECT_EQ(seen, (std::vector<std::string>{"key shared", "key shared", "secret shared",
                                            "key other", "cert shared"}));
  EXPECT_TRUE(ChangesCertificate("Coffer.KeyVault.CertificateDeleted"));
  EXPECT_FALSE(ChangesCertificate("Microsoft.KeyVault.SecretNewVersionCreated"));
  EXPECT_FALSE(ChangesValue("Microsoft.KeyVault.CertificateNewVersionCreated"));
  // A follower of secrets only (SecretCache) hears nothing of keys.
  EXPECT_FALSE(ChangesValue("Microsoft.KeyVault.KeyNewVersionCreated"));
  EXPECT_FALSE(ChangesValue("Coffer.KeyVault.KeyDeleted"));
  EXPECT_TRUE(ChangesValue("Coffer.KeyVault.SecretPurged"));
  EXPECT_TRUE(ChangesKey("Coffer.KeyVault.KeyRecovered"));
  EXPECT_FALSE(ChangesKey("Microsoft.KeyVault.SecretNewVersionCreated"));
  SseEvent e{"7", "Microsoft.KeyVault.KeyNewVersionCreated",
             R"({"data":{"ObjectType":"Key","ObjectName":"k","Version":"abc"}})"};
  SecretChange c = ChangeFromEvent(e);
  EXPECT_EQ(c.object_type, "Key");
  EXPECT_EQ(c.name, "k");
  EXPECT_EQ(c.version, "abc");
}

TEST(KeyClient, GetKeyReadsThePublicJwkAndNeverAPrivateMember) {
  auto bundle = ParseKeyBundle(R"({"key":{"kid":"https://dev.vault.localhost:8443/keys/k/0123abcd",
      "kty":"EC","crv":"P-256","x":"eA","y":"eQ","d":"c2VjcmV0","key_ops":["sign","verify"]},
      "attributes":{"enabled":false,"created":1700000000,"exp":1900000000},"tags":{"a":"b"}})");
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  EXPECT_EQ(bundle->properties.name, "k");
  EXPECT_EQ(bundle->properties.version, "0123abcd");
  EXPECT_EQ(bundle->properties.vault_url, "https://dev.vault.localhost:8443");
  EXPECT_FALSE(bundle->properties.enabled);
  EXPECT_EQ(bundle->properties.expires_on, 1900000000);
  EXPECT_EQ(bundle->properties.tags.at("a"), "b");
  EXPECT_EQ(bundle->key.crv, "P-256");
  EXPECT_EQ(bundle->key.key_ops, (std::vector<std::string>{"sign", "verify"}));
  EXPECT_FALSE(ParseKeyBundle(R"({"id":"https://dev.vault.localhost/secrets/s/1"})").ok());
  EXPECT_FALSE(ParseKeyBundle("[]").ok());

  // Through the client: the challenge is read on /keys, and a name that
  // could change the path is refused before anything is sent.
  auto t = std::make_shared<FakeTransport>([](const HttpRequest& r) -> HttpResponse {
    if (HeaderOf(r, "Authorization").empty()) {
      return Challenge();
    }
    if (r.url.find("/keys/k/?api-version=7.5") != std::string::npos) {
      return HttpResponse{200, {}, R"({"key":{"kid":"https://dev.vault.localhost:8443/keys/k/v2",
          "kty":"RSA","n":"AQAB","e":"AQAB"}})"};
    }
    return HttpResponse{404, {}, R"({"error":{"code":"KeyNotFound","message":"no key"}})"};
  });
  SecretClientOptions options;
  options.transport = t;
  KeyClient client("https://dev.vault.localhost:8443/", std::make_shared<FixedCredential>(),
                   options);
  auto key = client.GetKey("k");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->properties.version, "v2");
  EXPECT_EQ(key->key.kty, "RSA");
  auto missing = client.GetKey("gone", "v1");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().reason(), "KeyNotFound");
  EXPECT_EQ(client.GetKey("../secrets/x").status().code(), StatusCode::kInvalidArgument);
  for (const HttpRequest& r : t->requests()) {
    if (HeaderOf(r, "Authorization").empty()) {
      EXPECT_NE(r.url.find("/keys?api-version="), std::string::npos) << r.url;
    }
  }
}

TEST(KeyClient, RequestsCarryKeyVaultsShapes) {
  std::vector<std::pair<std::string, Json>> sent;  // "METHOD path" -> body
  std::mutex mu;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) -> HttpResponse {
    if (HeaderOf(r, "Authorization").empty()) {
      return Challenge();
    }
    std::string path = r.url.substr(0, r.url.find('?'));
    path = path.substr(path.find("/keys") != std::string::npos ? path.find("/keys")
                                                               : path.find("/rng"));
    {
      std::lock_guard<std::mutex> lock(mu);
      sent.emplace_back(r.method + " " + path, ParseJson(r.body).value_or(Json()));
    }
    if (path == "/rng") {
      return Json200({{"value", Base64UrlEncode(std::string(16, 'x'))}});
    }
    if (path == "/keys/k/rotationpolicy") {
      return Json200(
          {{"id", "https://dev.vault.localhost:8443/keys/k/rotationpolicy"},
           {"lifetimeActions",
            {{{"trigger", {{"timeAfterCreate", "P90D"}}}, {"action", {{"type", "Rotate"}}}}}},
           {"attributes", {{"expiryTime", "P1Y"}, {"created", 5}, {"updated", 6}}}});
    }
    if (path == "/keys" && r.url.find("skiptoken") == std::string::npos) {
      return Json200({{"value", {{{"kid", "https://dev.vault.localhost:8443/keys/a"}}}},
                      {"nextLink",
                       "https://dev.vault.localhost:8443/keys?api-version=7.5&"
                       "maxresults=25&$skiptoken=b"}});
    }
    if (path == "/keys") {
      return Json200({{"value",
                       {{{"kid", "https://dev.vault.localhost:8443/keys/b"},
                         {"attributes", {{"exportable", true}}}}}}});
    }
    return Json200({{"key", {{"kid", "https://dev.vault.localhost:8443/keys/k/v1"}, {"kty", "EC"}}},
                    {"attributes", {{"enabled", true}}}});
  });
  SecretClientOptions options;
  options.transport = t;
  KeyClient client("https://dev.vault.localhost:8443", std::make_shared<FixedCredential>(),
                   options);
  CreateKeyOptions create;
  create.kty = "EC";
  create.curve = "P-384";
  create.key_ops = {"sign"};
  create.expires_on = 1900000000;
  create.tags = {{"team", "a"}};
  ASSERT_TRUE(client.CreateKey("k", create).ok());
  ASSERT_TRUE(
      client.ImportKey("k", R"({"kty":"EC","crv":"P-256","x":"eA","y":"eQ","d":"ZA"})").ok());
  KeyProperties props;
  props.name = "k";
  props.version = "v1";
  props.enabled = false;
  ASSERT_TRUE(client.UpdateKeyProperties(props, std::vector<std::string>{"verify"}).ok());
  ASSERT_TRUE(client.RotateKey("k").ok());
  KeyRotationPolicy policy;
  policy.lifetime_actions = {{"Rotate", "P90D", ""}};
  policy.expires_in = "P1Y";
  auto stored = client.UpdateKeyRotationPolicy("k", policy);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->expires_in, "P1Y");
  ASSERT_EQ(stored->lifetime_actions.size(), 1u);
  EXPECT_EQ(stored->lifetime_actions[0].time_after_create, "P90D");
  auto random = client.GetRandomBytes(16);
  ASSERT_TRUE(random.ok());
  EXPECT_EQ(random->size(), 16u);
  EXPECT_EQ(client.GetRandomBytes(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.GetRandomBytes(20).status().code(), StatusCode::kInternal);  // 16 came back
  auto listed = client.ListPropertiesOfKeys();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].name, "b");
  EXPECT_TRUE((*listed)[1].exportable);
  // The private JWK is refused before it is sent when it is not JSON, and
  // the message does not quote it.
  auto bad = client.ImportKey("k", "{\"d\":\"c2VjcmV0\"");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().find("c2VjcmV0"), std::string::npos);

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(sent.size(), 6u);
  EXPECT_EQ(sent[0].first, "POST /keys/k/create");
  EXPECT_EQ(sent[0].second["kty"], "EC");
  EXPECT_EQ(sent[0].second["crv"], "P-384");
  EXPECT_FALSE(sent[0].second.contains("key_size"));
  EXPECT_EQ(sent[0].second["key_ops"], Json::array({"sign"}));
  EXPECT_EQ(sent[0].second["attributes"]["exp"], 1900000000);
  EXPECT_EQ(sent[0].second["tags"]["team"], "a");
  EXPECT_EQ(sent[1].first, "PUT /keys/k");
  EXPECT_EQ(sent[1].second["key"]["d"], "ZA");
  EXPECT_EQ(sent[2].first, "PATCH /keys/k/v1");
  EXPECT_EQ(sent[2].second["attributes"]["enabled"], false);
  EXPECT_EQ(sent[2].second["key_ops"], Json::array({"verify"}));
  EXPECT_EQ(sent[3].first, "POST /keys/k/rotate");
  EXPECT_EQ(sent[4].first, "PUT /keys/k/rotationpolicy");
  EXPECT_EQ(sent[4].second["lifetimeActions"][0]["trigger"]["timeAfterCreate"], "P90D");
  EXPECT_EQ(sent[4].second["lifetimeActions"][0]["action"]["type"], "Rotate");
  EXPECT_EQ(sent[4].second["attributes"]["expiryTime"], "P1Y");
  EXPECT_EQ(sent[5].first, "POST /rng");
  EXPECT_EQ(sent[5].second["count"], 16);
}

TEST(CertificateClient, GetCertificateReadsTheDerAndTheIdsOfItsKeyAndSecret) {
  const std::string der("\x30\x82\x01\x0a\x00\xff", 6);
  const std::string thumbprint(20, '\x5a');
  auto bundle = ParseCertificateBundle(
      ToJson({{"id", "https://dev.vault.localhost:8443/certificates/tls/0123abcd"},
              {"kid", "https://dev.vault.localhost:8443/keys/tls/0123abcd"},
              {"sid", "https://dev.vault.localhost:8443/secrets/tls/0123abcd"},
              {"x5t", Base64UrlEncode(thumbprint)},
              {"cer", Base64Encode(der)},
              {"attributes",
               {{"enabled", false},
                {"created", 1700000000},
                {"nbf", 1700000000},
                {"exp", 1731536000},
                {"recoveryLevel", "Recoverable+Purgeable"}}},
              {"tags", {{"team", "web"}}},
              {"policy", {{"id", "https://dev.vault.localhost:8443/certificates/tls/policy"}}}}));
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  EXPECT_EQ(bundle->properties.vault_url, "https://dev.vault.localhost:8443");
  EXPECT_EQ(bundle->properties.name, "tls");
  EXPECT_EQ(bundle->properties.version, "0123abcd");
  EXPECT_EQ(bundle->properties.x509_thumbprint, thumbprint);
  EXPECT_FALSE(bundle->properties.enabled);
  EXPECT_EQ(bundle->properties.created_on, 1700000000);
  EXPECT_EQ(bundle->properties.not_before, 1700000000);
  EXPECT_EQ(bundle->properties.expires_on, 1731536000);
  EXPECT_EQ(bundle->properties.recovery_level, "Recoverable+Purgeable");
  EXPECT_EQ(bundle->properties.tags.at("team"), "web");
  EXPECT_EQ(bundle->key_id, "https://dev.vault.localhost:8443/keys/tls/0123abcd");
  EXPECT_EQ(bundle->secret_id, "https://dev.vault.localhost:8443/secrets/tls/0123abcd");
  EXPECT_EQ(bundle->cer, der);
  EXPECT_FALSE(ParseCertificateBundle(R"({"cer":"MA=="})").ok());
  EXPECT_FALSE(ParseCertificateBundle(R"({"id":"https://x/certificates/a/1","cer":"*"})").ok());
  EXPECT_FALSE(ParseCertificateBundle("[]").ok());

  // A certificate's secret says it is one: managed, and the kid of its key.
  auto secret = ParseSecretBundle(R"({"id":"https://dev.vault.localhost:8443/secrets/tls/0123abcd",
      "value":"MIIK","contentType":"application/x-pkcs12","managed":true,
      "kid":"https://dev.vault.localhost:8443/keys/tls/0123abcd"})");
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_TRUE(secret->properties.managed);
  EXPECT_EQ(secret->properties.key_id, "https://dev.vault.localhost:8443/keys/tls/0123abcd");
  auto plain = ParseSecretBundle(R"({"id":"https://dev.vault.localhost:8443/secrets/db/1"})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->properties.managed);
  EXPECT_EQ(plain->properties.key_id, "");
}

TEST(CertificateClient, RequestsCarryKeyVaultsShapes) {
  std::vector<std::string> sent;  // "METHOD path?query" of the authorized requests
  std::mutex mu;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) -> HttpResponse {
    if (HeaderOf(r, "Authorization").empty()) {
      return Challenge();
    }
    std::string path = r.url.substr(r.url.find("/certificates"));
    {
      std::lock_guard<std::mutex> lock(mu);
      sent.push_back(r.method + " " + path);
    }
    std::string base = "https://dev.vault.localhost:8443/certificates/";
    if (StartsWith(path, "/certificates/tls/versions") &&
        path.find("skiptoken") == std::string::npos) {
      return Json200(
          {{"value",
            {{{"id", base + "tls/v1"},
              {"x5t", Base64UrlEncode("a")},
              {"attributes", {{"enabled", true}, {"created", 10}}}}}},
           {"nextLink", base + "tls/versions?api-version=7.5&maxresults=25&$skiptoken=2"}});
    }
    if (StartsWith(path, "/certificates/tls/versions")) {
      return Json200({{"value",
                       {{{"id", base + "tls/v2"},
                         {"attributes", {{"enabled", false}, {"created", 20}}},
                         {"tags", {{"a", "b"}}}}}}});
    }
    if (StartsWith(path, "/certificates?")) {
      return Json200({{"value", {{{"id", base + "tls"}}, {{"id", base + "web"}}}}});
    }
    if (StartsWith(path, "/certificates/tls/")) {
      return Json200({{"id", base + "tls/v2"}, {"cer", Base64Encode("der")}});
    }
    return HttpResponse{
        404, {}, R"({"error":{"code":"CertificateNotFound","message":"no certificate"}})"};
  });
  SecretClientOptions options;
  options.transport = t;
  CertificateClient client("https://dev.vault.localhost:8443/", std::make_shared<FixedCredential>(),
                           options);
  EXPECT_EQ(client.vault_url(), "https://dev.vault.localhost:8443");
  auto latest = client.GetCertificate("tls");
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(latest->properties.version, "v2");
  EXPECT_EQ(latest->cer, "der");
  ASSERT_TRUE(client.GetCertificate("tls", "v1").ok());
  auto missing = client.GetCertificate("gone");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().reason(), "CertificateNotFound");
  EXPECT_EQ(client.GetCertificate("../keys/x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.ListPropertiesOfCertificateVersions("a/b").status().code(),
            StatusCode::kInvalidArgument);
  auto versions = client.ListPropertiesOfCertificateVersions("tls");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].version, "v1");
  EXPECT_EQ((*versions)[0].x509_thumbprint, "a");
  EXPECT_TRUE((*versions)[0].enabled);
  EXPECT_EQ((*versions)[0].created_on, 10);
  EXPECT_EQ((*versions)[1].version, "v2");
  EXPECT_FALSE((*versions)[1].enabled);
  EXPECT_EQ((*versions)[1].tags.at("a"), "b");
  auto all = client.ListPropertiesOfCertificates();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].name, "web");
  EXPECT_EQ((*all)[1].version, "");

  // The challenge is read on /certificates; the requests are Key Vault's.
  for (const HttpRequest& r : t->requests()) {
    if (HeaderOf(r, "Authorization").empty()) {
      EXPECT_NE(r.url.find("/certificates?api-version="), std::string::npos) << r.url;
    }
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(sent.size(), 6u);
  EXPECT_EQ(sent[0], "GET /certificates/tls/?api-version=7.5");
  EXPECT_EQ(sent[1], "GET /certificates/tls/v1?api-version=7.5");
  EXPECT_EQ(sent[2], "GET /certificates/gone/?api-version=7.5");
  EXPECT_EQ(sent[3], "GET /certificates/tls/versions?api-version=7.5&maxresults=25");
  EXPECT_EQ(sent[4], "GET /certificates/tls/versions?api-version=7.5&maxresults=25&$skiptoken=2");
  EXPECT_EQ(sent[5], "GET /certificates?api-version=7.5&maxresults=25");
}

TEST(CryptographyClient, OperationsGoToTheKeysPathsWithBase64UrlValues) {
  std::vector<std::pair<std::string, Json>> sent;
  std::mutex mu;
  auto t = std::make_shared<FakeTransport>([&](const HttpRequest& r) -> HttpResponse {
    if (HeaderOf(r, "Authorization").empty()) {
      return Challenge();
    }
    std::string path = r.url.substr(0, r.url.find('?'));
    path = path.substr(path.find("/keys"));
    Json body = ParseJson(r.body).value_or(Json());
    {
      std::lock_guard<std::mutex> lock(mu);
      sent.emplace_back(path, body);
    }
    if (EndsWith(path, "/verify")) {
      return Json200({{"value", body["value"] == Base64UrlEncode("sig")}});
    }
    if (EndsWith(path, "/decrypt")) {
      return Json200({{"kid", "https://dev.vault.localhost:8443/keys/k/v1"},
                      {"value", Base64UrlEncode("plain")}});
    }
    return Json200({{"kid", "https://dev.vault.localhost:8443/keys/k/v1"},
                    {"value", Base64UrlEncode("out\xff\xfe")}});
  });
  SecretClientOptions options;
  options.transport = t;
  auto credential = std::make_shared<FixedCredential>();
  CryptographyClient latest("https://dev.vault.localhost:8443/keys/k", credential, options);
  CryptographyClient pinned("https://dev.vault.localhost:8443/keys/k/v1", credential, options);
  std::vector<uint8_t> bytes = {0xfb, 0xff, 'a'};
  auto enc = latest.Encrypt("RSA-OAEP-256", bytes);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_EQ(enc->key_id, "https://dev.vault.localhost:8443/keys/k/v1");
  EXPECT_EQ(enc->algorithm, "RSA-OAEP-256");
  EXPECT_EQ(std::string(enc->ciphertext.begin(), enc->ciphertext.end()), "out\xff\xfe");
  auto dec = pinned.Decrypt("RSA-OAEP-256", enc->ciphertext);
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(std::string(dec->plaintext.begin(), dec->plaintext.end()), "plain");
  ASSERT_TRUE(pinned.WrapKey("RSA-OAEP", bytes).ok());
  ASSERT_TRUE(pinned.UnwrapKey("RSA1_5", bytes).ok());
  std::vector<uint8_t> data = {'h', 'i'};
  ASSERT_TRUE(pinned.SignData("ES384", data).ok());
  auto valid = pinned.Verify("RS256", std::vector<uint8_t>(32, 1), {'s', 'i', 'g'});
  ASSERT_TRUE(valid.ok());
  EXPECT_TRUE(valid->is_valid);
  auto invalid = pinned.VerifyData("PS512", data, {'n', 'o'});
  ASSERT_TRUE(invalid.ok());
  EXPECT_FALSE(invalid->is_valid);
  // An algorithm that does not sign has no hash to sign data with.
  EXPECT_EQ(pinned.SignData("RSA-OAEP", data).status().code(), StatusCode::kInvalidArgument);

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(sent.size(), 7u);
  EXPECT_EQ(sent[0].first, "/keys/k//encrypt");  // no version: the latest
  EXPECT_EQ(sent[0].second["alg"], "RSA-OAEP-256");
  EXPECT_EQ(sent[0].second["value"], Base64UrlEncode("\xfb\xff"
                                                     "a"));
  EXPECT_EQ(sent[1].first, "/keys/k/v1/decrypt");
  EXPECT_EQ(sent[2].first, "/keys/k/v1/wrapkey");
  EXPECT_EQ(sent[3].first, "/keys/k/v1/unwrapkey");
  EXPECT_EQ(sent[4].first, "/keys/k/v1/sign");
  EXPECT_EQ(sent[4].second["value"], Base64UrlEncode(*crypto::HashForSigning("ES384", "hi")));
  EXPECT_EQ(Base64UrlDecode(sent[4].second["value"].get<std::string>())->size(), 48u);
  EXPECT_EQ(sent[5].first, "/keys/k/v1/verify");
  EXPECT_EQ(sent[5].second["digest"], Base64UrlEncode(std::string(32, '\1')));
  EXPECT_EQ(sent[5].second["value"], Base64UrlEncode("sig"));
  EXPECT_EQ(sent[6].second["digest"], Base64UrlEncode(*crypto::HashForSigning("PS512", "hi")));
}

TEST(CryptographyClient, WhatIsNotAKeyIdIsRefusedBeforeAnythingIsSent) {
  auto t = std::make_shared<FakeTransport>([](const HttpRequest&) -> HttpResponse {
    return Json200({{"value", ""}});
  });
  SecretClientOptions options;
  options.transport = t;
  auto credential = std::make_shared<FixedCredential>();
  for (const char* id :
       {"http://dev.vault.localhost/keys/k", "https://dev.vault.localhost/keys",
        "https://dev.vault.localhost/secrets/k/v1", "https://dev.vault.localhost/keys/k/v1/sign",
        "https://dev.vault.localhost/keys/../secrets/s", "https://dev.vault.localhost/keys/k?x=1",
        "https://dev.vault.localhost/deletedkeys/k", "not a url"}) {
    CryptographyClient client(id, credential, options);
    EXPECT_EQ(client.Sign("RS256", std::vector<uint8_t>(32)).status().code(),
              StatusCode::kInvalidArgument)
        << id;
  }
  EXPECT_EQ(t->count(), 0u);
}

}  // namespace
}  // namespace coffer
