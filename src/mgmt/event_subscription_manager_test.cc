// The management side of endpoint validation: what a PUT stores and
// answers for each handshake outcome, the single-use validation URL, and
// that a request body cannot mark a subscription validated. The handshake
// itself is a fake here (events/webhooks_test.cc tests the real one).

#include "mgmt/event_subscription_manager.h"

#include <gtest/gtest.h>

#include "storage/memory/memory_store.h"

namespace coffer::mgmt {
namespace {

using Outcome = events::HandshakeResult::Outcome;

class EventSubscriptionManagerTest : public ::testing::Test {
 protected:
  EventSubscriptionManagerTest() : clock_(1800000000), manager_("sub1", store_, clock_, Hooks()) {
    storage::VaultRecord v;
    v.name = "kv1";
    v.subscription_id = "sub1";
    v.resource_group = "rg1";
    EXPECT_TRUE(store_.CreateVault(v).ok());
  }

  EventSubscriptionManager::Hooks Hooks() {
    return EventSubscriptionManager::Hooks{
        .signing_key = [](const std::string&, const std::string&, int64_t) { return "k"; },
        .changed = [this] { ++changed_; },
        .url_seal = events::UrlSeal(std::string(32, 'u')),
        .check_target =
            [](const std::string& url) {
              return url.find("internal") == std::string::npos
                         ? OkStatus()
                         : InvalidArgumentError("endpointUrl is refused: private",
                                                "InvalidRequest");
            },
        .validate =
            [this](const events::Subscription& s, const std::string& url) {
              handshakes_.push_back({s.endpoint_url, url});
              if (during_handshake_) {
                during_handshake_(url);
              }
              return events::HandshakeResult{outcome_,
                                             outcome_ == Outcome::kFailed ? "HTTP 403" : ""};
            },
        .validation_base = "https://localhost:8443"};
  }

  http::Response Call(const std::string& method, const std::string& name,
                      const std::string& body = "", const std::string& action = "") {
    http::Request r;
    r.method = method;
    std::string path =
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/"
        "providers/Microsoft.EventGrid/eventSubscriptions" +
        (name.empty() ? "" : "/" + name) + (action.empty() ? "" : "/" + action);
    EXPECT_TRUE(http::ParseTarget(path + "?api-version=2022-06-15", r).ok());
    r.body = body;
    // As the management plane runs it, authorization aside.
    auto match = table_.Find(r.method, r.segments);
    EXPECT_EQ(match.status, 200) << method << " " << path;
    if (match.status != 200) {
      return http::ErrorResponse(match.status, "NoRoute", "no route");
    }
    authz::Principal who{"oid", "app", "t1"};
    LinkedCheck linked = [](std::string_view, std::string_view) { return OkStatus(); };
    return routes_[match.index].handle(ArmCall{r, match.params, who, linked});
  }

  http::Response Open(const std::string& validation_url) {
    http::Request r;
    r.method = "GET";
    std::string prefix = "https://localhost:8443";
    EXPECT_EQ(validation_url.rfind(prefix, 0), 0u) << validation_url;
    EXPECT_TRUE(http::ParseTarget(validation_url.substr(prefix.size()), r).ok());
    // /eventsubscriptions/{vault}/{name}/validate, as the authority host
    // routes it.
    EXPECT_EQ(r.segments.size(), 4u) << validation_url;
    if (r.segments.size() != 4) {
      return http::Response{};
    }
    return manager_.Validate(r, r.segments[1], r.segments[2]);
  }

  static std::string Body(const std::string& url, const std::string& extra = "") {
    return R"({"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":")" +
           url + R"("}})" + extra + "}}";
  }
  static std::string State(const http::Response& r) {
    Json j = Json::parse(r.body, nullptr, false);
    return j.is_object() ? j["properties"].value("provisioningState", "") : "";
  }
  std::string Stored(const std::string& name) {
    auto subs = store_.ListEventSubscriptions("kv1");
    for (const auto& s : subs.value()) {
      if (s.name == name) {
        return s.properties_json;
      }
    }
    return "";
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  int changed_ = 0;
  Outcome outcome_ = Outcome::kSucceeded;
  std::function<void(const std::string&)> during_handshake_;
  std::vector<std::pair<std::string, std::string>> handshakes_;  // endpoint, validation URL
  EventSubscriptionManager manager_;
  std::vector<ArmRoute> routes_ = manager_.Routes();
  http::RouteTable table_{http::RouteTable::EntriesOf(routes_), true};
};

TEST_F(EventSubscriptionManagerTest, AnEchoValidatesAndTheSameEndpointIsNotAskedAgain) {
  auto r = Call("PUT", "hook", Body("https://hooks.example/a"));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(State(r), "Succeeded");
  ASSERT_EQ(handshakes_.size(), 1u);
  EXPECT_EQ(handshakes_[0].first, "https://hooks.example/a");
  EXPECT_EQ(handshakes_[0].second.rfind(
                "https://localhost:8443/eventsubscriptions/kv1/hook/validate?token=", 0),
            0u);
  EXPECT_EQ(r.body.find("validation"), std::string::npos) << r.body;
  // Filters change, the endpoint does not: no handshake.
  r = Call("PUT", "hook",
           Body("https://hooks.example/a", R"(,"filter":{"subjectBeginsWith":"x"})"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(handshakes_.size(), 1u);
  r = Call("PATCH", "hook", R"({"properties":{"filter":{"subjectEndsWith":"y"}}})");
  EXPECT_EQ(State(r), "Succeeded");
  EXPECT_EQ(handshakes_.size(), 1u);
  // A new URL, or another schema, asks again.
  Call("PUT", "hook", Body("https://hooks.example/b"));
  Call("PATCH", "hook", R"({"properties":{"eventDeliverySchema":"CloudEventSchemaV1_0"}})");
  EXPECT_EQ(handshakes_.size(), 3u);
  // The echo used the URL up.
  EXPECT_EQ(Open(handshakes_[2].second).status, 404);
}

TEST_F(EventSubscriptionManagerTest, ManualValidationWorksOnceWithinTenMinutes) {
  outcome_ = Outcome::kAwaitingManualAction;
  auto r = Call("PUT", "manual", Body("https://hooks.example/m"));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(State(r), "AwaitingManualAction");
  const std::string url = handshakes_.back().second;
  std::string token = url.substr(url.find("token=") + 6);
  EXPECT_EQ(Stored("manual").find(token), std::string::npos) << "only its hash is stored";
  std::string wrong = url;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(Open(wrong).status, 404);
  r = Open(url);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(State(Call("GET", "manual")), "Succeeded");
  EXPECT_EQ(Open(url).status, 404) << "single use";

  // Unused for ten minutes: expired, and the subscription shows Failed.
  Call("PUT", "late", Body("https://hooks.example/l"));
  const std::string late = handshakes_.back().second;
  EXPECT_EQ(State(Call("GET", "late")), "AwaitingManualAction");
  clock_.Advance(600);
  EXPECT_EQ(Open(late).status, 404);
  EXPECT_EQ(State(Call("GET", "late")), "Failed");
  // PUT again: a new handshake.
  outcome_ = Outcome::kSucceeded;
  EXPECT_EQ(State(Call("PUT", "late", Body("https://hooks.example/l"))), "Succeeded");
}

TEST_F(EventSubscriptionManagerTest, TheValidationUrlUsedDuringTheHandshakeStands) {
  outcome_ = Outcome::kFailed;
  during_handshake_ = [this](const std::string& url) { EXPECT_EQ(Open(url).status, 200); };
  auto r = Call("PUT", "quick", Body("https://hooks.example/q"));
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(State(r), "Succeeded");
}

TEST_F(EventSubscriptionManagerTest,
       AFailedHandshakeKeepsANewSubscriptionAsFailedAndAnOldOneAsItWas) {
  outcome_ = Outcome::kFailed;
  auto r = Call("PUT", "new", Body("https://hooks.example/n"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(
      r.body.find("Webhook validation handshake failed for https://hooks.example/n: HTTP 403"),
      std::string::npos)
      << r.body;
  EXPECT_EQ(State(Call("GET", "new")), "Failed");

  outcome_ = Outcome::kSucceeded;
  ASSERT_EQ(Call("PUT", "old", Body("https://hooks.example/o?code=1")).status, 201);
  outcome_ = Outcome::kFailed;
  r = Call("PUT", "old", Body("https://hooks.example/elsewhere"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("unchanged"), std::string::npos) << r.body;
  EXPECT_EQ(State(Call("GET", "old")), "Succeeded");
  auto full = Json::parse(Call("POST", "old", "", "getFullUrl").body);
  EXPECT_EQ(full["endpointUrl"], "https://hooks.example/o?code=1");
}

TEST_F(EventSubscriptionManagerTest, ARefusedTargetWritesNothing) {
  auto r = Call("PUT", "inside", Body("https://internal.example/x"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("refused"), std::string::npos);
  EXPECT_TRUE(handshakes_.empty());
  EXPECT_TRUE(store_.ListEventSubscriptions("kv1").value().empty());
  EXPECT_EQ(changed_, 0);
  // Nor may a validated subscription be moved there.
  ASSERT_EQ(Call("PUT", "outside", Body("https://hooks.example/x")).status, 201);
  r = Call(
      "PATCH", "outside",
      R"({"properties":{"destination":{"properties":{"endpointUrl":"https://internal.example/x"}}}})");
  EXPECT_EQ(r.status, 400);
  auto full = Json::parse(Call("POST", "outside", "", "getFullUrl").body);
  EXPECT_EQ(full["endpointUrl"], "https://hooks.example/x");
}

TEST_F(EventSubscriptionManagerTest, ARequestBodyCannotMarkASubscriptionValidated) {
  outcome_ = Outcome::kAwaitingManualAction;
  std::string forged = R"(,"validation":{"state":"Succeeded"},"provisioningState":"Succeeded")";
  auto r = Call("PUT", "forged", Body("https://hooks.example/f", forged));
  EXPECT_EQ(State(r), "AwaitingManualAction");
  r = Call("PATCH", "forged", R"({"properties":{"validation":{"state":"Succeeded"}}})");
  EXPECT_EQ(State(r), "AwaitingManualAction");
  EXPECT_EQ(events::ReadValidation(Json::parse(Stored("forged"))).state,
            events::Validation::State::kAwaitingManualAction);
}

}  // namespace
}  // namespace coffer::mgmt
