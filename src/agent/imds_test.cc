#include "agent/imds.h"

#include <gtest/gtest.h>

#include "common/json.h"

namespace coffer::agent {
namespace {

class ImdsEndpointTest : public ::testing::Test {
 protected:
  ImdsEndpointTest()
      : endpoint_(
            ImdsOptions{"127.0.0.1", 0, "https://localhost:8443/msi/token", "uid.mac", ""},
            [this](const std::string& url, const std::string& header) {
              return Upstream(url, header);
            },
            clock_) {}

  StatusOr<http::Response> Upstream(const std::string& url, const std::string& header) {
    calls_.push_back(url);
    headers_.push_back(header);
    if (!reachable_) {
      return UnavailableError("connect failed");
    }
    return answer_;
  }

  static http::Request TokenRequest(const std::string& target, bool metadata = true,
                                    const std::string& host = "127.0.0.1:50342") {
    http::Request r;
    r.method = "GET";
    r.host = host;
    r.target = target;
    EXPECT_TRUE(http::ParseTarget(target, r).ok());
    if (metadata) {
      r.headers["metadata"] = "true";
    }
    return r;
  }

  static http::Response TokenAnswer(int64_t expires_on) {
    return http::JsonResponse(200, ToJson(Json{{"access_token", "t"},
                                               {"expires_on", std::to_string(expires_on)},
                                               {"resource", "https://vault.localhost:8443"},
                                               {"token_type", "Bearer"}}));
  }

  FakeClock clock_{1'000'000};
  bool reachable_ = true;
  http::Response answer_ = TokenAnswer(1'003'600);
  std::vector<std::string> calls_;
  std::vector<std::string> headers_;
  ImdsEndpoint endpoint_;
};

TEST_F(ImdsEndpointTest, ForwardsAsTheWorkloadAndTranslatesSelectors) {
  auto r = endpoint_.Handle(TokenRequest(
      "/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https%3A%2F%2Fvault."
      "localhost%3A8443&msi_res_id=%2Fsubscriptions%2Fs%2Fx&object_id=o1"));
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(headers_[0], "uid.mac");
  EXPECT_EQ(calls_[0],
            "https://localhost:8443/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault."
            "localhost%3A8443&object_id=o1&mi_res_id=%2Fsubscriptions%2Fs%2Fx");
  EXPECT_EQ(ParseJson(r.body)->at("access_token"), "t");
}

TEST_F(ImdsEndpointTest, CachesUntilFiveMinutesBeforeExpiry) {
  auto req = TokenRequest("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r");
  EXPECT_EQ(endpoint_.Handle(req).status, 200);
  EXPECT_EQ(endpoint_.Handle(req).status, 200);
  EXPECT_EQ(calls_.size(), 1u);
  // Another identity is another cache entry.
  EXPECT_EQ(
      endpoint_
          .Handle(TokenRequest(
              "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r&client_id=c"))
          .status,
      200);
  EXPECT_EQ(calls_.size(), 2u);
  clock_.Advance(3600 - 299);
  EXPECT_EQ(endpoint_.Handle(req).status, 200);
  EXPECT_EQ(calls_.size(), 3u);
}

TEST_F(ImdsEndpointTest, RefusesRequestsAzureRefuses) {
  const std::string ok = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r";
  EXPECT_EQ(endpoint_.Handle(TokenRequest(ok, false)).status, 400);  // no Metadata header
  auto proxied = TokenRequest(ok);
  proxied.headers["x-forwarded-for"] = "10.0.0.1";
  EXPECT_EQ(endpoint_.Handle(proxied).status, 400);
  EXPECT_EQ(endpoint_.Handle(TokenRequest("/metadata/identity/oauth2/token?resource=r")).status,
            400);
  EXPECT_EQ(
      endpoint_
          .Handle(TokenRequest("/metadata/identity/oauth2/token?api-version=2017-01-01&resource=r"))
          .status,
      400);
  EXPECT_EQ(endpoint_.Handle(TokenRequest("/metadata/identity/oauth2/token?api-version=2018-02-01"))
                .status,
            400);
  EXPECT_EQ(endpoint_.Handle(TokenRequest("/metadata/instance?api-version=2021-02-01")).status,
            404);
  auto post = TokenRequest(ok);
  post.method = "POST";
  EXPECT_EQ(endpoint_.Handle(post).status, 405);
  EXPECT_TRUE(calls_.empty());
  auto bad = endpoint_.Handle(TokenRequest(ok, false));
  EXPECT_EQ(ParseJson(bad.body)->at("error"), "invalid_request");
}

TEST_F(ImdsEndpointTest, AnswersOnlyTheHostNamesImdsIsReachedBy) {
  const std::string ok = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r";
  for (const char* host : {"127.0.0.1", "127.0.0.1:50342", "localhost", "LocalHost:50342",
                           "169.254.169.254", "169.254.169.254:80"}) {
    EXPECT_EQ(endpoint_.Handle(TokenRequest(ok, true, host)).status, 200) << host;
  }
  // DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own name.
  for (const char* host :
       {"attacker.example", "attacker.example:50342", "", "127.0.0.1.nip.io",
        "localhost.attacker.example", "127.0.0.1@attacker.example", "attacker.example@127.0.0.1",
        "127.0.0.1:50342/x", "127.0.0.2", "[::1]:50342", "0.0.0.0", "127.1", "2130706433",
        "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1 ", "localhost."}) {
    size_t calls = calls_.size();
    http::Response r = endpoint_.Handle(TokenRequest(ok, true, host));
    EXPECT_EQ(r.status, 400) << host;
    EXPECT_EQ(ParseJson(r.body)->at("error"), "invalid_request") << host;
    EXPECT_EQ(r.body.find("access_token"), std::string::npos) << host;
    EXPECT_EQ(calls_.size(), calls) << host << ": nothing reached the server";
  }
  // Before any other check: an unknown path on a foreign Host is 400, not 404.
  EXPECT_EQ(endpoint_.Handle(TokenRequest("/metadata/instance", true, "attacker.example")).status,
            400);
}

TEST(ImdsEndpoint, AlsoAnswersTheAddressItListensOn) {
  FakeClock clock(1'000'000);
  auto upstream = [](const std::string&, const std::string&) -> StatusOr<http::Response> {
    return http::JsonResponse(200, R"({"access_token":"t","expires_on":"1003600"})");
  };
  const std::string ok = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r";
  auto request = [&](const std::string& host) {
    http::Request r;
    r.method = "GET";
    r.host = host;
    r.target = ok;
    EXPECT_TRUE(http::ParseTarget(ok, r).ok());
    r.headers["metadata"] = "true";
    return r;
  };
  ImdsEndpoint v6(ImdsOptions{"::1", 0, "https://localhost:8443/msi/token", "h", ""}, upstream,
                  clock);
  EXPECT_EQ(v6.Handle(request("[::1]:50342")).status, 200);
  EXPECT_EQ(v6.Handle(request("[0:0::1]")).status, 200);
  EXPECT_EQ(v6.Handle(request("127.0.0.1:50342")).status, 200);
  ImdsEndpoint other(ImdsOptions{"127.0.0.2", 0, "https://localhost:8443/msi/token", "h", ""},
                     upstream, clock);
  EXPECT_EQ(other.Handle(request("127.0.0.2:50342")).status, 200);
  EXPECT_EQ(other.Handle(request("127.0.0.3:50342")).status, 400);
}

TEST_F(ImdsEndpointTest, PassesServerErrorsAndSurvivesOutages) {
  const std::string ok = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=r";
  answer_ =
      http::JsonResponse(400, R"({"error":"invalid_request","error_description":"not assigned"})");
  auto r = endpoint_.Handle(TokenRequest(ok));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ParseJson(r.body)->at("error_description"), "not assigned");
  reachable_ = false;
  EXPECT_EQ(endpoint_.Handle(TokenRequest(ok)).status, 503);
  reachable_ = true;
  answer_ = http::JsonResponse(200, "not json");
  EXPECT_EQ(endpoint_.Handle(TokenRequest(ok)).status, 502);
  answer_ = http::JsonResponse(200, R"({"access_token":"t","expires_on":"soon"})");
  EXPECT_EQ(endpoint_.Handle(TokenRequest(ok)).status, 502);
  answer_ = TokenAnswer(1'003'600);
  EXPECT_EQ(endpoint_.Handle(TokenRequest(ok)).status, 200);
}

}  // namespace
}  // namespace coffer::agent
