// Device-code sign-ins and refresh tokens: the flow's states, one redemption
// per approval, scopes, the claims of user tokens, and revocation.

#include "auth/user_grants.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "auth/device_flows.h"
#include "auth/oauth.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

constexpr char kCli[] = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
constexpr char kPassword[] = "Correct-Horse-1";
constexpr char kIssuer[] = "https://localhost:8443/t1/v2.0";

Json Claims(const std::string& jwt) {
  auto parts = Split(jwt, '.');
  auto payload = Base64UrlDecode(parts.at(1));
  return payload ? ParseJson(*payload).value_or(Json()) : Json();
}

Json BodyOf(const http::Response& r) {
  return ParseJson(r.body).value_or(Json());
}

http::Request Form(const std::string& body) {
  http::Request r;
  r.method = "POST";
  r.body = body;
  r.host = "localhost:8443";
  return r;
}

class UserGrantsTest : public ::testing::Test {
 protected:
  UserGrantsTest()
      : clock_(1800000000),
        keys_(SigningKeySet::ForTest()),
        users_(store_, clock_, "t1",
               [] {
                 UserOptions o;
                 o.cost = crypto::LeastCost();
                 return o;
               }()),
        flows_(store_, clock_, 4),
        grants_(
            UserGrantsConfig{"t1"}, *keys_, users_, flows_, clock_,
            [](std::string_view scope) -> std::optional<std::string> {
              for (std::string r : {"https://vault.azure.net", "https://graph.microsoft.com",
                                    "https://management.core.windows.net"}) {
                if (scope == r + "/.default" || scope == r + "//.default") {
                  return r;
                }
              }
              return std::nullopt;
            },
            [](const std::string& p) { return "sealed:" + p; },
            [](const std::string& s) -> StatusOr<std::string> {
              if (s.rfind("sealed:", 0) != 0) {
                return DataLossError("does not open");
              }
              return s.substr(7);
            }) {
    NewUser u;
    u.display_name = "Ada Lovelace";
    u.user_principal_name = "ada@example.test";
    u.mail_nickname = "ada";
    u.given_name = "Ada";
    u.password = kPassword;
    user_id_ = users_.Create(u).value().object_id;
  }

  Json Start(const std::string& scope = "https://vault.azure.net/.default offline_access openid") {
    http::Response r = grants_.DeviceCode(
        Form("client_id=" + std::string(kCli) + "&scope=" + PercentEncode(scope)),
        "https://localhost:8443/devicelogin");
    EXPECT_EQ(r.status, 200) << r.body;
    return BodyOf(r);
  }
  http::Response Poll(const std::string& device_code, const std::string& client = kCli) {
    return grants_.Token({{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                          {"client_id", client},
                          {"device_code", device_code},
                          {"client_info", "1"}},
                         kIssuer);
  }
  http::Response Refresh(const std::string& token, const std::string& scope = "") {
    std::map<std::string, std::string> form = {
        {"grant_type", "refresh_token"}, {"client_id", kCli}, {"refresh_token", token}};
    if (!scope.empty()) {
      form["scope"] = scope;
    }
    return grants_.Token(form, kIssuer);
  }

  int64_t Svf() { return users_.Find(user_id_)->sessions_valid_from; }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<SigningKeySet> keys_;
  Users users_;
  DeviceFlows flows_;
  UserGrants grants_;
  std::string user_id_;
};

TEST_F(UserGrantsTest, ADeviceFlowIsPendingThenApprovedOnceWithUserClaims) {
  Json started = Start();
  std::string user_code = started["user_code"];
  EXPECT_EQ(user_code.size(), 9u);
  EXPECT_EQ(user_code[4], '-');
  EXPECT_EQ(started["expires_in"], 900);
  EXPECT_EQ(started["interval"], 5);
  EXPECT_EQ(started["verification_uri"], "https://localhost:8443/devicelogin");
  EXPECT_NE(started["message"].get<std::string>().find(user_code), std::string::npos);
  // The store keeps neither code in the clear.
  std::string doc = store_.GetMeta(DeviceFlows::kMetaKey).value().value();
  EXPECT_EQ(doc.find(started["device_code"].get<std::string>()), std::string::npos);
  EXPECT_EQ(doc.find(user_code.substr(0, 4)), std::string::npos);

  std::string device_code = started["device_code"];
  http::Response pending = Poll(device_code);
  EXPECT_EQ(pending.status, 400);
  EXPECT_EQ(BodyOf(pending)["error"], "authorization_pending");
  EXPECT_EQ(BodyOf(Poll(device_code, "another-client"))["error"], "bad_verification_code");

  // The code is typed in any case, with or without its dash.
  std::string typed = AsciiLower(user_code.substr(0, 4)) + " " + user_code.substr(5);
  ASSERT_TRUE(flows_.Find(typed).ok());
  ASSERT_TRUE(flows_.Decide(typed, true, user_id_, clock_.NowSeconds(), Svf()).ok());
  EXPECT_EQ(flows_.Decide(user_code, true, user_id_, 0, Svf()).code(), StatusCode::kNotFound)
      << "decided once";

  http::Response done = Poll(device_code);
  ASSERT_EQ(done.status, 200) << done.body;
  Json body = BodyOf(done);
  EXPECT_NE(body["scope"].get<std::string>().find("https://vault.azure.net/.default"),
            std::string::npos);
  Json access = Claims(body["access_token"]);
  EXPECT_EQ(access["aud"], "https://vault.azure.net");
  EXPECT_EQ(access["iss"], kIssuer);
  EXPECT_EQ(access["oid"], user_id_);
  EXPECT_EQ(access["idtyp"], "user");
  EXPECT_EQ(access["upn"], "ada@example.test");
  EXPECT_EQ(access["name"], "Ada Lovelace");
  EXPECT_EQ(access["given_name"], "Ada");
  EXPECT_EQ(access["appid"], kCli);
  EXPECT_EQ(access["appidacr"], "0");
  EXPECT_EQ(access["scp"], "user_impersonation");
  EXPECT_EQ(access["xms_svf"], Svf());
  Json id = Claims(body["id_token"]);
  EXPECT_EQ(id["aud"], kCli);
  EXPECT_EQ(id["preferred_username"], "ada@example.test");
  EXPECT_EQ(id["ver"], "2.0");
  Json info = ParseJson(Base64UrlDecode(body["client_info"].get<std::string>()).value()).value();
  EXPECT_EQ(info["uid"], user_id_);
  EXPECT_EQ(info["utid"], "t1");
  EXPECT_TRUE(body.contains("refresh_token"));

  EXPECT_EQ(BodyOf(Poll(device_code))["error"], "bad_verification_code") << "redeemed once";
}

TEST_F(UserGrantsTest, DeclinedExpiredAndUnknownFlowsAreAnsweredSo) {
  Json declined = Start();
  ASSERT_TRUE(flows_.Decide(declined["user_code"].get<std::string>(), false, "", 0).ok());
  EXPECT_EQ(BodyOf(Poll(declined["device_code"].get<std::string>()))["error"],
            "authorization_declined");
  Json expired = Start();
  clock_.Advance(901);
  EXPECT_EQ(BodyOf(Poll(expired["device_code"].get<std::string>()))["error"], "expired_token");
  EXPECT_EQ(flows_.Find(expired["user_code"].get<std::string>()).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(BodyOf(Poll("never-issued"))["error"], "bad_verification_code");
  Json short_name = Start();
  EXPECT_EQ(BodyOf(grants_.Token({{"grant_type", "device_code"},
                                  {"client_id", kCli},
                                  {"device_code", short_name["device_code"].get<std::string>()}},
                                 kIssuer))["error"],
            "authorization_pending")
      << "msal-node's grant_type";
  for (const char* typed : {"", "BCDF", "BCDF-GHJK-L", "AEIO-UAEI", "bcdf\ngh jk"}) {
    EXPECT_TRUE(DeviceFlows::NormalizeUserCode(typed).empty()) << typed;
  }
}

TEST_F(UserGrantsTest, ConcurrentPollsRedeemAnApprovalExactlyOnce) {
  Json started = Start();
  ASSERT_TRUE(flows_
                  .Decide(started["user_code"].get<std::string>(), true, user_id_,
                          clock_.NowSeconds(), Svf())
                  .ok());
  std::atomic<int> issued{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (Poll(started["device_code"].get<std::string>()).status == 200) {
        ++issued;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(issued.load(), 1);
}

TEST_F(UserGrantsTest, StartsAreBoundedAndClientsMustBePublic) {
  for (int i = 0; i < 4; ++i) {
    Start();
  }
  http::Response full = grants_.DeviceCode(Form("client_id=" + std::string(kCli) + "&scope=openid"),
                                           "https://x/devicelogin");
  EXPECT_EQ(full.status, 429);
  bool retry_after = false;
  for (const auto& [name, value] : full.headers) {
    retry_after = retry_after || name == "Retry-After";
  }
  EXPECT_TRUE(retry_after);
  clock_.Advance(901);
  Start();  // expired flows make room

  http::Response unknown =
      grants_.DeviceCode(Form("client_id=not-a-public-client&scope=openid"), "https://x/d");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(BodyOf(unknown)["error"], "unauthorized_client");
  EXPECT_EQ(BodyOf(grants_.DeviceCode(Form("scope=openid"), "https://x/d"))["error"],
            "invalid_request");
  EXPECT_EQ(BodyOf(grants_.DeviceCode(Form("client_id=%zz"), "https://x/d"))["error"],
            "invalid_request");
  http::Response two = grants_.DeviceCode(
      Form("client_id=" + std::string(kCli) + "&scope=" +
           PercentEncode("https://vault.azure.net/.default https://graph.microsoft.com/.default")),
      "https://x/d");
  EXPECT_EQ(BodyOf(two)["error"], "invalid_scope");
  EXPECT_EQ(BodyOf(grants_.DeviceCode(Form("client_id=" + std::string(kCli) +
                                           "&scope=https%3A%2F%2Fevil.test%2F.default"),
                                      "https://x/d"))["error"],
            "invalid_scope");
  EXPECT_EQ(BodyOf(grants_.Token({{"grant_type", "refresh_token"},
                                  {"client_id", kCli},
                                  {"refresh_token", "x"},
                                  {"client_secret", "s"}},
                                 kIssuer))["error"],
            "invalid_client")
      << "a public client presents no secret";
}

TEST_F(UserGrantsTest, RefreshTokensServeAnyResourceUntilThePasswordChanges) {
  Json started = Start();
  ASSERT_TRUE(flows_
                  .Decide(started["user_code"].get<std::string>(), true, user_id_,
                          clock_.NowSeconds(), Svf())
                  .ok());
  std::string rt = BodyOf(Poll(started["device_code"].get<std::string>()))["refresh_token"];

  http::Response other = Refresh(rt, "https://management.core.windows.net//.default");
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(Claims(BodyOf(other)["access_token"])["aud"], "https://management.core.windows.net");
  std::string next = BodyOf(other)["refresh_token"];
  EXPECT_EQ(Refresh(next).status, 200);

  // Tampered, another client's, or expired: invalid_grant.
  std::string tampered = rt;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(BodyOf(Refresh(tampered))["error"], "invalid_grant");
  EXPECT_EQ(BodyOf(Refresh("garbage"))["error"], "invalid_grant");
  EXPECT_EQ(
      BodyOf(grants_.Token(
          {{"grant_type", "refresh_token"}, {"client_id", "someone-else"}, {"refresh_token", rt}},
          kIssuer))["error"],
      "invalid_grant");

  // A password change in the same second still ends every refresh token.
  ASSERT_EQ(users_.ChangePassword(user_id_, kPassword, "Brand-New-Pass2", "a")->failure,
            SignInFailure::kNone);
  http::Response revoked = Refresh(next);
  EXPECT_EQ(revoked.status, 400);
  EXPECT_EQ(BodyOf(revoked)["error"], "invalid_grant");
  EXPECT_EQ(BodyOf(revoked)["error_codes"][0], 50173);

  Json again = Start();
  ASSERT_TRUE(
      flows_
          .Decide(again["user_code"].get<std::string>(), true, user_id_, clock_.NowSeconds(), Svf())
          .ok());
  std::string fresh = BodyOf(Poll(again["device_code"].get<std::string>()))["refresh_token"];
  clock_.Advance(90 * 86400);
  EXPECT_EQ(BodyOf(Refresh(fresh))["error_codes"][0], 70008) << "expired";
}

TEST_F(UserGrantsTest, AnApprovalEndsWhenTheUserIsDisabledBeforeThePoll) {
  Json started = Start();
  ASSERT_TRUE(flows_
                  .Decide(started["user_code"].get<std::string>(), true, user_id_,
                          clock_.NowSeconds(), Svf())
                  .ok());
  UserChange disable;
  disable.account_enabled = false;
  ASSERT_TRUE(users_.Update(user_id_, disable).ok());
  EXPECT_EQ(BodyOf(Poll(started["device_code"].get<std::string>()))["error"], "invalid_grant");
}

TEST_F(UserGrantsTest, ScopesAreBoundedAndStartsAreLimitedPerAddress) {
  std::string many;
  for (int i = 0; i < 17; ++i) {
    many += "openid ";
  }
  for (const std::string& scope : {std::string(2000, 'o'), many}) {
    http::Response r = grants_.DeviceCode(
        Form("client_id=" + std::string(kCli) + "&scope=" + PercentEncode(scope)), "https://x/d");
    EXPECT_EQ(BodyOf(r)["error"], "invalid_scope") << scope.size();
  }
  DeviceFlows roomy(store_, clock_, 1000);
  UserGrants grants(
      UserGrantsConfig{"t1"}, *keys_, users_, roomy, clock_,
      [](std::string_view) { return std::optional<std::string>("https://vault.azure.net"); },
      [](const std::string& p) { return p; },
      [](const std::string& s) -> StatusOr<std::string> { return s; });
  auto start = [&](const std::string& address) {
    http::Request r = Form("client_id=" + std::string(kCli) + "&scope=openid");
    r.remote_address = address;
    return grants.DeviceCode(r, "https://x/d").status;
  };
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(start("192.0.2.1"), 200) << i;
  }
  EXPECT_EQ(start("192.0.2.1"), 429);
  EXPECT_EQ(start("192.0.2.2"), 200) << "other addresses go on";
  // What is kept is the scope as understood.
  std::string doc = store_.GetMeta(DeviceFlows::kMetaKey).value().value();
  EXPECT_NE(doc.find("https://graph.microsoft.com/.default openid"), std::string::npos) << doc;
}

TEST_F(UserGrantsTest, OpenIdScopesAloneGetAGraphToken) {
  auto scope = grants_.ParseScope("openid profile");
  ASSERT_TRUE(std::holds_alternative<UserGrants::Scope>(scope));
  EXPECT_EQ(std::get<UserGrants::Scope>(scope).resource, "https://graph.microsoft.com");
  EXPECT_TRUE(std::get<UserGrants::Scope>(scope).openid);
  EXPECT_FALSE(std::get<UserGrants::Scope>(scope).offline);
}

}  // namespace
}  // namespace coffer::auth
