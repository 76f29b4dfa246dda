// FederatedTrust against a fake issuer (a UrlFetcher answering from a table):
// one fetch per issuer at a time, failed fetches backed off, and one
// client-visible message whatever went wrong with a fetch. Waits are bounded
// polls for events, never timing assertions.

#include "auth/federation.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/json.h"
#include "crypto/rsa_key.h"
#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

constexpr char kIssuer[] = "https://issuer.example/tenant";
constexpr char kDiscovery[] = "https://issuer.example/tenant/.well-known/openid-configuration";
constexpr char kJwks[] = "https://issuer.example/tenant/keys";
constexpr char kSubject[] = "system:serviceaccount:shop:checkout";
constexpr char kAudience[] = "api://AzureADTokenExchange";

// FakeIssuer answers the fetcher from a table and counts the fetches of each
// URL. While `hold` is set, a fetch waits inside the fetcher until released.
class FakeIssuer {
 public:
  FakeIssuer() { Healthy(); }

  UrlFetcher Fetcher() {
    return [this](const std::string& url) -> StatusOr<std::string> {
      std::unique_lock<std::mutex> lock(mu_);
      ++calls_[url];
      ++inside_;
      cv_.wait(lock, [&] { return !hold_; });
      --inside_;
      auto it = answers_.find(url);
      if (it == answers_.end()) {
        return UnavailableError("HTTP 404");
      }
      return it->second;
    };
  }

  void Healthy() { SetAnswers(DiscoveryDoc(kJwks), Jwks()); }
  void SetAnswers(StatusOr<std::string> discovery, StatusOr<std::string> jwks) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.clear();
    answers_.emplace(kDiscovery, std::move(discovery));
    answers_.emplace(kJwks, std::move(jwks));
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    cv_.notify_all();
  }
  int calls(const std::string& url) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[url];
  }
  int inside() {
    std::lock_guard<std::mutex> lock(mu_);
    return inside_;
  }

  static std::string DiscoveryDoc(const std::string& jwks_uri) {
    return ToJson(Json{{"issuer", kIssuer}, {"jwks_uri", jwks_uri}});
  }
  static std::string Jwks();
  static const crypto::RsaKey& Key();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  int inside_ = 0;
  std::map<std::string, int> calls_;
  std::map<std::string, StatusOr<std::string>> answers_;
};

const crypto::RsaKey& FakeIssuer::Key() {
  static const crypto::RsaKey* key = crypto::RsaKey::Generate(2048).value().release();
  return *key;
}

std::string FakeIssuer::Jwks() {
  Json k{{"kty", "RSA"},
         {"kid", "k1"},
         {"n", Base64UrlEncode(Key().Modulus())},
         {"e", Base64UrlEncode(Key().Exponent())}};
  return ToJson(Json{{"keys", Json::array({k})}});
}

class FederationTest : public ::testing::Test {
 protected:
  FederationTest() : clock_(1'800'000'000) {
    identity_.object_id = "uai-1";
    identity_.app_id = "client-1";
    identity_.tenant_id = "t1";
    identity_.kind = "UserAssignedIdentity";
    EXPECT_TRUE(store_.CreatePrincipal(identity_).ok());
    storage::FederatedCredentialRecord c;
    c.principal_object_id = identity_.object_id;
    c.name = "fic";
    c.issuer = kIssuer;
    c.subject = kSubject;
    c.audiences = {kAudience};
    EXPECT_TRUE(
        store_
            .PutFederatedCredential(
                c.principal_object_id, c.name,
                [&](const auto&) -> StatusOr<storage::FederatedCredentialRecord> { return c; })
            .ok());
    trust_ = std::make_unique<FederatedTrust>(store_, clock_, issuer_.Fetcher());
  }

  std::string Mint(const std::string& kid = "k1") {
    int64_t now = clock_.NowSeconds();
    std::string head = Base64UrlEncode(ToJson(Json{{"alg", "RS256"}, {"kid", kid}}));
    std::string body = Base64UrlEncode(ToJson(Json{{"iss", kIssuer},
                                                   {"sub", kSubject},
                                                   {"aud", kAudience},
                                                   {"iat", now},
                                                   {"exp", now + 600}}));
    std::string input = head + "." + body;
    return input + "." + Base64UrlEncode(FakeIssuer::Key().SignRs256(input));
  }

  Status Check(const std::string& kid = "k1") {
    return trust_->Authenticate(identity_, Mint(kid)).status();
  }

  // WaitFor polls `done` for up to a minute (an event, not a time limit).
  static bool WaitFor(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  FakeIssuer issuer_;
  storage::PrincipalRecord identity_;
  std::unique_ptr<FederatedTrust> trust_;
};

TEST_F(FederationTest, AValidAssertionIsAcceptedAndTheKeysAreCached) {
  EXPECT_TRUE(Check().ok()) << Check().ToString();
  EXPECT_TRUE(Check().ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), 1);
  EXPECT_EQ(issuer_.calls(kJwks), 1);
}

TEST_F(FederationTest, ConcurrentCallersShareOneFetch) {
  constexpr int kCallers = 8;
  issuer_.Hold();
  std::vector<std::thread> threads;
  std::atomic<int> accepted{0};
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&] { accepted += Check().ok() ? 1 : 0; });
  }
  // Every caller is either fetching or waiting for a fetch before the issuer
  // answers: without single flight each would be inside the fetcher.
  EXPECT_TRUE(
      WaitFor([&] { return issuer_.inside() + static_cast<int>(trust_->waiting()) == kCallers; }));
  issuer_.Release();
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(accepted.load(), kCallers);
  EXPECT_EQ(issuer_.calls(kDiscovery), 1);
  EXPECT_EQ(issuer_.calls(kJwks), 1);
  EXPECT_EQ(trust_->waiting(), 0u);
}

TEST_F(FederationTest, ConcurrentCallersShareOneFailedFetch) {
  constexpr int kCallers = 8;
  issuer_.SetAnswers(UnavailableError("connect failed: Connection refused"), std::string());
  issuer_.Hold();
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> messages;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&] {
      Status s = Check();
      std::lock_guard<std::mutex> lock(mu);
      messages.insert(s.ok() ? "accepted" : std::string(s.message()));
    });
  }
  EXPECT_TRUE(
      WaitFor([&] { return issuer_.inside() + static_cast<int>(trust_->waiting()) == kCallers; }));
  issuer_.Release();
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(issuer_.calls(kDiscovery), 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(*messages.begin(),
            "Federated assertion failed validation: the issuer's signing keys could not be "
            "obtained.");
}

TEST_F(FederationTest, FailedFetchesAreBackedOff) {
  issuer_.SetAnswers(UnavailableError("connect failed: Connection refused"), std::string());
  EXPECT_FALSE(Check().ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), 1);
  // The first failure is retried at once (an issuer being fixed recovers).
  EXPECT_FALSE(Check().ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), 2);
  // From the second consecutive failure on: 1 s, 2 s, 4 s ... without a fetch.
  for (int64_t backoff : {1, 2, 4, 8}) {
    int before = issuer_.calls(kDiscovery);
    for (int64_t waited = 0; waited < backoff; ++waited) {
      EXPECT_EQ(Check().code(), StatusCode::kUnauthenticated);
      EXPECT_EQ(issuer_.calls(kDiscovery), before) << "backed off for " << backoff << " s";
      clock_.Advance(1);
    }
    EXPECT_FALSE(Check().ok());
    EXPECT_EQ(issuer_.calls(kDiscovery), before + 1) << "after " << backoff << " s";
  }
  // The back-off stops growing at five minutes.
  for (int i = 0; i < 12; ++i) {
    clock_.Advance(300);
    EXPECT_FALSE(Check().ok());
  }
  int before = issuer_.calls(kDiscovery);
  clock_.Advance(299);
  EXPECT_FALSE(Check().ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), before);
  // Fixed: the next fetch after the back-off succeeds and clears the count.
  issuer_.Healthy();
  clock_.Advance(1);
  EXPECT_TRUE(Check().ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), before + 1);
  issuer_.SetAnswers(UnavailableError("timed out"), std::string());
  clock_.Advance(600);  // the keys expire
  EXPECT_FALSE(Check().ok());
  EXPECT_FALSE(Check().ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), before + 3);
}

TEST_F(FederationTest, CachedKeysOutliveAFailedRefetch) {
  ASSERT_TRUE(Check().ok());
  issuer_.SetAnswers(UnavailableError("connect failed: Connection refused"), std::string());
  clock_.Advance(31);
  // An unknown kid refetches; that fails, and a known kid still verifies.
  EXPECT_EQ(Check("k2").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(issuer_.calls(kDiscovery), 2);
  EXPECT_TRUE(Check().ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), 2);
}

TEST_F(FederationTest, EveryFetchFailureGivesTheCallerTheSameMessage) {
  struct Case {
    const char* name;
    StatusOr<std::string> discovery;
    StatusOr<std::string> jwks;
    const char* detail;  // in the log, never in the answer
  };
  const std::string none;
  std::vector<Case> cases = {
      {"unreachable", UnavailableError("connect failed: Connection refused"), none, "refused"},
      {"timed out", Status(StatusCode::kDeadlineExceeded, "connect timed out"), none, "timed out"},
      {"wrong status", UnavailableError("HTTP 404"), none, "HTTP 404"},
      {"discovery not JSON", std::string("<html>hello</html>"), none, "jwks_uri"},
      {"no jwks_uri", std::string("{}"), none, "jwks_uri"},
      {"jwks_uri on plain http", FakeIssuer::DiscoveryDoc("http://10.0.0.1/keys"), none,
       "jwks_uri"},
      {"keys unreachable", FakeIssuer::DiscoveryDoc(kJwks), UnavailableError("HTTP 500"),
       "HTTP 500"},
      {"keys not JSON", FakeIssuer::DiscoveryDoc(kJwks), std::string("nope"), "not a JWKS"},
      {"keys not a JWKS", FakeIssuer::DiscoveryDoc(kJwks), std::string(R"({"keys":5})"),
       "not a JWKS"},
  };
  std::set<std::string> messages;
  for (Case& c : cases) {
    FakeIssuer issuer;
    issuer.SetAnswers(c.discovery, c.jwks);
    FederatedTrust trust(store_, clock_, issuer.Fetcher());
    ::testing::internal::CaptureStderr();
    Status s = trust.Authenticate(identity_, Mint()).status();
    std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(s.code(), StatusCode::kUnauthenticated) << c.name;
    EXPECT_EQ(s.reason(), "invalid_client") << c.name;
    EXPECT_EQ(std::string(s.message()).find(c.detail), std::string::npos) << c.name;
    EXPECT_NE(log.find(c.detail), std::string::npos) << c.name << ": " << log;
    EXPECT_NE(log.find(kIssuer), std::string::npos) << c.name << ": " << log;
    messages.insert(std::string(s.message()));
  }
  ASSERT_EQ(messages.size(), 1u) << "the answer tells the failures apart";
  EXPECT_EQ(*messages.begin(),
            "Federated assertion failed validation: the issuer's signing keys could not be "
            "obtained.");
}

TEST_F(FederationTest, AnUnknownKidIsRefetchedAtMostEveryThirtySeconds) {
  ASSERT_TRUE(Check().ok());
  EXPECT_FALSE(Check("k2").ok());
  EXPECT_EQ(issuer_.calls(kDiscovery), 1);
  clock_.Advance(30);
  Status s = Check("k2");
  EXPECT_NE(std::string(s.message()).find("has no key 'k2'"), std::string::npos) << s.ToString();
  EXPECT_EQ(issuer_.calls(kDiscovery), 2);
}

}  // namespace
}  // namespace coffer::auth
