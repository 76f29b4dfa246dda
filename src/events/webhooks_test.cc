// Webhook targets (which addresses a delivery may reach, and that it goes to
// the address that was checked), endpoint validation, and the dispatcher's
// per-subscription lanes: one slow endpoint does not hold up the others.
// Waits are bounded polls for an event, never timing assertions.

#include "events/webhooks.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "common/files.h"
#include "common/strings.h"
#include "events/webhook_target.h"
#include "events/webhook_validation.h"
#include "storage/memory/memory_store.h"

namespace coffer::events {
namespace {

// Waits, bounded (30 s), for `done`.
template <class F>
bool Eventually(F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

AddressKind Kind(const std::string& ip) {
  auto k = ClassifyAddress(ip);
  EXPECT_TRUE(k.ok()) << ip;
  return k.ok() ? *k : AddressKind::kPublic;
}

TEST(WebhookTarget, ClassifiesAddresses) {
  for (const char* ip : {"8.8.8.8", "203.0.113.7", "172.32.0.1", "100.128.0.1", "2001:db8::1",
                         "2606:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1"}) {
    EXPECT_EQ(Kind(ip), AddressKind::kPublic) << ip;
  }
  for (const char* ip : {"127.0.0.1", "127.255.1.2", "::1", "::ffff:127.0.0.1", "::127.0.0.1",
                         "64:ff9b::7f00:1", "2002:7f00:0001::1"}) {
    EXPECT_EQ(Kind(ip), AddressKind::kLoopback) << ip;
  }
  for (const char* ip :
       {"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "198.18.0.1",
        "fc00::1", "fd12:3456::1", "fec0::1", "::ffff:10.1.2.3", "::ffff:192.168.0.1"}) {
    EXPECT_EQ(Kind(ip), AddressKind::kPrivate) << ip;
  }
  for (const char* ip : {"169.254.169.254", "169.254.0.1", "fe80::1", "febf::1", "fe80::1%lo",
                         "::ffff:169.254.169.254"}) {
    EXPECT_EQ(Kind(ip), AddressKind::kLinkLocal) << ip;
  }
  for (const char* ip : {"0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "239.1.2.3", "255.255.255.255",
                         "240.0.0.1", "ff02::1", "::ffff:0.0.0.0"}) {
    EXPECT_EQ(Kind(ip), AddressKind::kForbidden) << ip;
  }
  EXPECT_FALSE(ClassifyAddress("localhost").ok());
  EXPECT_FALSE(ClassifyAddress("[::1]").ok());
}

TEST(WebhookTarget, PolicyAllowsOnlyWhatTheOperatorAllows) {
  TargetPolicy none;
  EXPECT_TRUE(none.Allows(AddressKind::kPublic));
  EXPECT_FALSE(none.Allows(AddressKind::kLoopback));
  EXPECT_FALSE(none.Allows(AddressKind::kPrivate));
  EXPECT_FALSE(none.Allows(AddressKind::kLinkLocal));
  TargetPolicy all{true, true, true};
  EXPECT_TRUE(all.Allows(AddressKind::kLoopback));
  EXPECT_TRUE(all.Allows(AddressKind::kPrivate));
  EXPECT_TRUE(all.Allows(AddressKind::kLinkLocal));
  EXPECT_FALSE(all.Allows(AddressKind::kForbidden)) << "never, whatever is allowed";
}

TEST(WebhookTarget, ParsesOneHostPerUrl) {
  auto t = ParseTargetHost("https://hooks.example/x?code=1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "hooks.example");
  EXPECT_EQ(t->port, "443");
  t = ParseTargetHost("http://[::1]:8080/hook");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, "8080");
  t = ParseTargetHost("http://127.0.0.1:9/");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->port, "9");
  for (const char* bad : {"https://user@hooks.example/", "http://localhost?.attacker.example/",
                          "http://localhost#@attacker.example/", "https://hooks.example:0/",
                          "https://:443/", "https://hooks.example:99999/", "https://[::1/",
                          "https://[::1]x/", "ftp://hooks.example/", "https://a\\b/"}) {
    EXPECT_FALSE(ParseTargetHost(bad).ok()) << bad;
  }
}

TEST(WebhookTarget, LiteralAddressesAreRefusedUnlessAllowed) {
  TargetPolicy none;
  EXPECT_TRUE(CheckLiteralTarget("https://203.0.113.7/hook", none).ok());
  EXPECT_TRUE(CheckLiteralTarget("https://hooks.example/hook", none).ok()) << "names: later";
  for (const char* url : {"http://127.0.0.1:8080/", "http://[::1]/", "https://10.1.2.3/",
                          "https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/",
                          "https://[fd00::1]/", "https://[::ffff:10.0.0.1]/", "https://0.0.0.0/",
                          "http://127.1/", "http://2130706433/", "http://0x7f000001/"}) {
    Status st = CheckLiteralTarget(url, none);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << url;
  }
  Status st = CheckLiteralTarget("https://169.254.169.254/", none);
  EXPECT_NE(st.message().find("link-local"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--webhook-allow-link-local"), std::string::npos);
  EXPECT_EQ(st.message().find("169.254"), std::string::npos) << "names no address";
  TargetPolicy loopback{true, false, false};
  EXPECT_TRUE(CheckLiteralTarget("http://127.0.0.1:8080/", loopback).ok());
  EXPECT_FALSE(CheckLiteralTarget("https://10.1.2.3/", loopback).ok());
}

TEST(WebhookTarget, AHostIsRefusedWhenAnyOfItsAddressesIs) {
  std::vector<std::string> answer;
  HostResolver resolver = [&](const std::string&) -> StatusOr<std::vector<std::string>> {
    return answer;
  };
  TargetPolicy none;
  answer = {"203.0.113.7", "198.51.100.9"};
  EXPECT_EQ(ResolveTarget("https://hooks.example/", none, resolver).value(), "203.0.113.7");
  answer = {"203.0.113.7", "10.0.0.5"};
  EXPECT_EQ(ResolveTarget("https://hooks.example/", none, resolver).status().code(),
            StatusCode::kPermissionDenied);
  answer = {"127.0.0.1"};
  Status st = ResolveTarget("https://hooks.example/", none, resolver).status();
  EXPECT_NE(st.message().find("loopback"), std::string::npos) << st.message();
  answer = {};
  EXPECT_EQ(ResolveTarget("https://hooks.example/", none, resolver).status().code(),
            StatusCode::kUnavailable);
  // A numeric host never goes to the resolver.
  answer = {"203.0.113.7"};
  EXPECT_FALSE(ResolveTarget("https://10.0.0.1/", none, resolver).ok());
  // The system resolver: localhost is loopback.
  EXPECT_EQ(ResolveTarget("http://localhost:1/", none, nullptr).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(ResolveTarget("http://localhost:1/", TargetPolicy{true, false, false}, nullptr).ok());
}

TEST(WebhookValidation, StateIsStoredAndShown) {
  Json stored = Json::object();
  EXPECT_EQ(ReadValidation(stored).state, Validation::State::kLegacy);
  EXPECT_TRUE(IsValidated(ReadValidation(stored)));
  Validation v{Validation::State::kAwaitingManualAction, ValidationTokenHash("t0k"), 1000, ""};
  stored["validation"] = ValidationJson(v);
  Validation back = ReadValidation(stored);
  EXPECT_EQ(back.state, Validation::State::kAwaitingManualAction);
  EXPECT_EQ(back.token_hash, v.token_hash);
  EXPECT_EQ(back.expires, 1000);
  EXPECT_FALSE(IsValidated(back));
  EXPECT_EQ(ProvisioningState(back, 999), "AwaitingManualAction");
  EXPECT_EQ(ProvisioningState(back, 1000), "Failed") << "the URL expired unused";
  back.state = Validation::State::kPending;
  EXPECT_EQ(ProvisioningState(back, 999), "Creating");
  stored["validation"] = {{"state", "Nonsense"}};
  EXPECT_EQ(ReadValidation(stored).state, Validation::State::kFailed);
  EXPECT_FALSE(IsValidated(ReadValidation(stored)));
  EXPECT_EQ(ToJson(stored).find("t0k"), std::string::npos);
}

storage::ChangeRecord Change(int64_t seq, const std::string& name) {
  storage::ChangeRecord c;
  c.seq = seq;
  c.event_id = "00000000-0000-4000-8000-" + std::string(12 - std::to_string(seq).size(), '0') +
               std::to_string(seq);
  c.time_ms = 1700000000123;
  c.vault = "Main";
  c.type = "SecretNewVersionCreated";
  c.object_type = "Secret";
  c.name = name;
  c.version = "v1";
  return c;
}

VaultNaming Naming() {
  return {[](const std::string& v) { return "https://" + v + ".vault.localhost:8443"; },
          [](const std::string& v) {
            return "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + v;
          }};
}

http::Response Answer(int status, std::string body = "") {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// A dispatcher over a memory store, with a sender the test scripts per URL
// path, a resolver that answers per host, and a record of what was sent.
class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::VaultRecord v;
    v.name = "Main";
    ASSERT_TRUE(store_.CreateVault(v).ok());
    options_.base_backoff_ms = 1;
    options_.resolver = [this](const std::string& host) -> StatusOr<std::vector<std::string>> {
      std::lock_guard<std::mutex> lock(mu_);
      auto& answers = dns_[host];
      if (answers.empty()) {
        return UnavailableError("no such host");
      }
      std::vector<std::string> next = answers.front();
      if (answers.size() > 1) {
        answers.erase(answers.begin());
      }
      return next;
    };
  }

  void Subscribe(const std::string& name, const std::string& url, Json validation = nullptr,
                 bool cloud_events = false, Json retry = nullptr) {
    Json props = {
        {"destination", {{"endpointType", "WebHook"}, {"properties", {{"endpointUrl", url}}}}}};
    if (!retry.is_null()) {
      props["retryPolicy"] = retry;
    }
    if (cloud_events) {
      props["eventDeliverySchema"] = "CloudEventSchemaV1_0";
    }
    if (!validation.is_null()) {
      props["validation"] = validation;
    }
    ASSERT_TRUE(store_
                    .PutEventSubscription(
                        "Main", name,
                        [&](const auto&, size_t) -> StatusOr<storage::EventSubscriptionRecord> {
                          storage::EventSubscriptionRecord r;
                          r.vault = "Main";
                          r.name = name;
                          r.properties_json = ToJson(props);
                          return r;
                        })
                    .ok());
  }

  // Starts the dispatcher with `respond` answering every request.
  void Start(std::function<StatusOr<http::Response>(const WebhookRequest&)> respond) {
    respond_ = std::move(respond);
    dispatcher_ = std::make_unique<WebhookDispatcher>(
        store_, Naming(),
        [this](const WebhookRequest& r) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            sent_.push_back(r);
          }
          return respond_(r);
        },
        [](const std::string&, const std::string&, int64_t) { return std::string(32, 'k'); },
        UrlSeal(std::string(32, 'u')), options_);
    ASSERT_TRUE(dispatcher_->Start().ok());
  }

  std::vector<WebhookRequest> SentTo(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<WebhookRequest> out;
    for (const auto& r : sent_) {
      if (r.url.find(needle) != std::string::npos) {
        out.push_back(r);
      }
    }
    return out;
  }

  void TearDown() override {
    if (dispatcher_) {
      dispatcher_->Stop();
    }
  }

  storage::MemoryStore store_;
  WebhookOptions options_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::vector<std::string>>> dns_;  // guarded by mu_
  std::vector<WebhookRequest> sent_;                                  // guarded by mu_
  std::function<StatusOr<http::Response>(const WebhookRequest&)> respond_;
  std::unique_ptr<WebhookDispatcher> dispatcher_;
};

TEST_F(DispatcherTest, DeliversOnlyToTheAddressItCheckedAndRefusesInternalOnes) {
  // hooks.example answers a public address once, then the loopback address
  // (DNS rebinding); internal.example is private; dual.example has one
  // public and one link-local address.
  dns_["hooks.example"] = {{"203.0.113.7"}, {"127.0.0.1"}};
  dns_["internal.example"] = {{"10.0.0.8"}};
  dns_["dual.example"] = {{"203.0.113.9", "169.254.169.254"}};
  Json three = {{"maxDeliveryAttempts", 3}};
  Subscribe("rebinding", "https://hooks.example/rebinding", nullptr, false, three);
  Subscribe("internal", "https://internal.example/internal", nullptr, false, three);
  Subscribe("dual", "https://dual.example/dual", nullptr, false, three);
  Subscribe("literal", "http://127.0.0.1:9/literal", nullptr, false, three);
  std::string dead_path =
      ::testing::TempDir() + "/webhooks-refused-" + std::to_string(::getpid()) + ".jsonl";
  std::remove(dead_path.c_str());
  options_.dead_letter_path = dead_path;
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(503); });
  dispatcher_->OnChanges({Change(1, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().dead_lettered == 4; }));
  auto rebinding = SentTo("/rebinding");
  ASSERT_EQ(rebinding.size(), 1u) << "sent once, to the address checked then";
  EXPECT_EQ(rebinding[0].connect_address, "203.0.113.7");
  EXPECT_EQ(rebinding[0].url, "https://hooks.example/rebinding") << "the URL keeps its host";
  EXPECT_TRUE(SentTo("/internal").empty());
  EXPECT_TRUE(SentTo("/dual").empty()) << "one internal address is enough to refuse";
  EXPECT_TRUE(SentTo("/literal").empty());
  // Rebinding's first attempt was answered (503); its next two and all of
  // the others' were refused before any connection.
  auto stats = dispatcher_->stats();
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.refused, 2u + 3u * 3u);
  EXPECT_EQ(stats.unreachable, 0u);
  EXPECT_EQ(stats.dead_letter_reasons["MaxDeliveryAttemptsExceeded"], 4u);
  // The count is kept before the line is written.
  std::map<std::string, Json> by_sub;
  ASSERT_TRUE(Eventually([&] {
    auto dead = ReadFile(dead_path);
    std::string text = dead.ok() ? *dead : "";
    by_sub.clear();
    for (const auto& line : Split(text, '\n')) {
      Json j = Json::parse(line, nullptr, false);
      if (j.is_object()) {
        by_sub[StringMember(j, "subscriptionName")] = j;
      }
    }
    return by_sub.size() == 4;
  }));
  EXPECT_EQ(by_sub["rebinding"]["deliveryAttempts"], 3);
  EXPECT_NE(by_sub["rebinding"]["lastDeliveryOutcome"].get<std::string>().find("loopback"),
            std::string::npos)
      << by_sub["rebinding"];
  EXPECT_NE(by_sub["internal"]["lastDeliveryOutcome"].get<std::string>().find("private"),
            std::string::npos);
  EXPECT_NE(by_sub["dual"]["lastDeliveryOutcome"].get<std::string>().find("link-local"),
            std::string::npos);
  std::remove(dead_path.c_str());
}

TEST_F(DispatcherTest, TheOperatorMayAllowLoopbackTargets) {
  options_.targets.allow_loopback = true;
  dns_["localhost"] = {{"127.0.0.1"}};
  Subscribe("local", "http://localhost:9/local");
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(200); });
  dispatcher_->OnChanges({Change(1, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 1; }));
  EXPECT_EQ(SentTo("/local").at(0).connect_address, "127.0.0.1");
}

TEST_F(DispatcherTest, OnlyValidatedSubscriptionsReceiveEvents) {
  dns_["hooks.example"] = {{"203.0.113.7"}};
  Subscribe("legacy", "https://hooks.example/legacy");  // stored before validation existed
  Subscribe("validated", "https://hooks.example/validated", {{"state", "Succeeded"}});
  Subscribe("awaiting", "https://hooks.example/awaiting",
            {{"state", "AwaitingManualAction"}, {"tokenHash", "ab"}, {"expires", 4102444800}});
  Subscribe("pending", "https://hooks.example/pending",
            {{"state", "Pending"}, {"tokenHash", "cd"}, {"expires", 4102444800}});
  Subscribe("failed", "https://hooks.example/failed", {{"state", "Failed"}});
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(200); });
  dispatcher_->OnChanges({Change(1, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 2; }));
  EXPECT_EQ(SentTo("/legacy").size(), 1u);
  EXPECT_EQ(SentTo("/validated").size(), 1u);
  // Validated later: events from then on.
  Subscribe("awaiting", "https://hooks.example/awaiting", {{"state", "Succeeded"}});
  ASSERT_TRUE(dispatcher_->Reload().ok());
  dispatcher_->OnChanges({Change(2, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 5; }));
  EXPECT_EQ(SentTo("/awaiting").size(), 1u);
  EXPECT_TRUE(SentTo("/pending").empty());
  EXPECT_TRUE(SentTo("/failed").empty());
}

// The measure is the order of events: the fast endpoint gets every event
// while the slow one still holds its first deliveries.
TEST_F(DispatcherTest, ASlowEndpointDoesNotHoldUpTheOthers) {
  dns_["slow.example"] = {{"203.0.113.1"}};
  dns_["fast.example"] = {{"203.0.113.2"}};
  Subscribe("slow", "https://slow.example/slow");
  Subscribe("fast", "https://fast.example/fast");
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  std::atomic<int> slow_in{0};
  std::atomic<int> slow_max{0};
  std::atomic<int> slow_done{0};
  Start([&](const WebhookRequest& r) -> StatusOr<http::Response> {
    if (r.url.find("/slow") != std::string::npos) {
      int now = ++slow_in;
      slow_max = std::max(slow_max.load(), now);
      std::unique_lock<std::mutex> lock(gate_mu);
      gate_cv.wait_for(lock, std::chrono::seconds(60), [&] { return open; });
      --slow_in;
      ++slow_done;
    }
    return Answer(200);
  });
  const int kEvents = 20;
  for (int i = 1; i <= kEvents; ++i) {
    dispatcher_->OnChanges({Change(i, "s" + std::to_string(i))});
  }
  EXPECT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == kEvents; }))
      << "fast got " << SentTo("/fast").size() << " while the slow endpoint held";
  EXPECT_EQ(SentTo("/fast").size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(slow_done.load(), 0) << "none of the slow endpoint's deliveries has finished";
  EXPECT_TRUE(Eventually([&] { return slow_in.load() == options_.max_in_flight; }))
      << "it holds its share of the threads";
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  EXPECT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 2u * kEvents; }));
  EXPECT_LE(slow_max.load(), options_.max_in_flight);
}

TEST_F(DispatcherTest, ASubscriptionThatUsedItsTimeBudgetWaitsForTheNextWindow) {
  // Time is the test's: only the costly endpoint's attempt takes any.
  std::atomic<int64_t> now{1700000000000};
  options_.now_ms = [&] { return now.load(); };
  options_.threads = 1;  // so the cheap endpoint's attempts never overlap the costly one's
  options_.budget_ms = 30000;
  options_.budget_window_ms = 60000;
  dns_["costly.example"] = {{"203.0.113.1"}};
  dns_["cheap.example"] = {{"203.0.113.2"}};
  Subscribe("costly", "https://costly.example/costly");
  Subscribe("cheap", "https://cheap.example/cheap");
  Start([&](const WebhookRequest& r) -> StatusOr<http::Response> {
    if (r.url.find("/costly") != std::string::npos) {
      now += 40000;  // more than the whole budget
    }
    return Answer(200);
  });
  for (int i = 1; i <= 5; ++i) {
    dispatcher_->OnChanges({Change(i, "s" + std::to_string(i))});
  }
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 6; }));
  EXPECT_EQ(SentTo("/cheap").size(), 5u);
  EXPECT_EQ(SentTo("/costly").size(), 1u) << "its other four wait for the next window";
  // The next window: the waiting ones go (a new event wakes the threads).
  now += 60000;
  dispatcher_->OnChanges({Change(6, "s6")});
  EXPECT_TRUE(Eventually([&] { return SentTo("/costly").size() >= 2; }));
}

TEST_F(DispatcherTest, QueuedEventsPerSubscriptionAreBounded) {
  options_.max_queued_per_subscription = 3;
  dns_["hooks.example"] = {{"203.0.113.7"}};
  Subscribe("held", "https://hooks.example/held");
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  Start([&](const WebhookRequest&) -> StatusOr<http::Response> {
    std::unique_lock<std::mutex> lock(gate_mu);
    gate_cv.wait_for(lock, std::chrono::seconds(60), [&] { return open; });
    return Answer(200);
  });
  dispatcher_->OnChanges({Change(1, "a"), Change(2, "b")});
  ASSERT_TRUE(Eventually([&] { return SentTo("/held").size() == 2; }));  // both in flight
  std::vector<storage::ChangeRecord> more;
  for (int i = 3; i <= 10; ++i) {
    more.push_back(Change(i, "c" + std::to_string(i)));
  }
  // Every matched change counts, queued or dead-lettered.
  EXPECT_EQ(dispatcher_->OnChanges(more), 8u);
  EXPECT_EQ(dispatcher_->stats().dead_lettered, 5u) << "3 queued, 5 over the bound";
  EXPECT_EQ(dispatcher_->stats().dead_letter_reasons["DeliveryQueueFull"], 5u);
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  EXPECT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 5; }));
}

TEST_F(DispatcherTest, EventGridHandshake) {
  dns_["hooks.example"] = {{"203.0.113.7"}};
  std::string code;
  int status = 200;
  bool echo = true;
  Start([&](const WebhookRequest& r) -> StatusOr<http::Response> {
    Json body = Json::parse(r.body);
    code = body[0]["data"]["validationCode"].get<std::string>();
    return Answer(status, echo ? ToJson(Json{{"validationResponse", code}}) : "{}");
  });
  Subscription s;
  s.vault = "Main";
  s.name = "grid";
  s.endpoint_url = "https://hooks.example/grid?code=1";
  HandshakeResult result = dispatcher_->Validate(s, "https://localhost:8443/validate?token=t");
  EXPECT_EQ(result.outcome, HandshakeResult::Outcome::kSucceeded);
  auto sent = SentTo("/grid");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, "POST");
  EXPECT_EQ(sent[0].connect_address, "203.0.113.7");
  EXPECT_EQ(sent[0].url, s.endpoint_url);
  Json event = Json::parse(sent[0].body)[0];
  EXPECT_EQ(event["eventType"], "Microsoft.EventGrid.SubscriptionValidationEvent");
  EXPECT_EQ(event["data"]["validationUrl"], "https://localhost:8443/validate?token=t");
  EXPECT_EQ(event["topic"],
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/Main");
  bool typed = false;
  for (const auto& [k, v] : sent[0].headers) {
    typed = typed || (k == "aeg-event-type" && v == "SubscriptionValidation");
  }
  EXPECT_TRUE(typed);
  std::string first_code = code;
  dispatcher_->Validate(s, "u");
  EXPECT_NE(code, first_code) << "a fresh code each time";

  echo = false;
  EXPECT_EQ(dispatcher_->Validate(s, "u").outcome, HandshakeResult::Outcome::kAwaitingManualAction);
  status = 202;
  echo = true;
  result = dispatcher_->Validate(s, "u");
  EXPECT_EQ(result.outcome, HandshakeResult::Outcome::kFailed);
  EXPECT_NE(result.reason.find("HTTP 202"), std::string::npos) << result.reason;
  // Refused before anything is sent.
  s.endpoint_url = "https://10.1.1.1/grid";
  size_t before = SentTo("/grid").size();
  result = dispatcher_->Validate(s, "u");
  EXPECT_EQ(result.outcome, HandshakeResult::Outcome::kFailed);
  EXPECT_NE(result.reason.find("private"), std::string::npos) << result.reason;
  EXPECT_EQ(SentTo("/grid").size(), before);
  EXPECT_EQ(dispatcher_->CheckTarget(s.endpoint_url).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(dispatcher_->CheckTarget("https://hooks.example/grid").ok());
}

TEST_F(DispatcherTest, AnEndpointThatDoesNotAnswerFailsWithoutSayingWhy) {
  dns_["hooks.example"] = {{"203.0.113.7"}};
  Start([&](const WebhookRequest&) -> StatusOr<http::Response> {
    return UnavailableError("connect failed: Connection refused");
  });
  Subscription s;
  s.vault = "Main";
  s.name = "gone";
  s.endpoint_url = "https://hooks.example/gone";
  HandshakeResult result = dispatcher_->Validate(s, "u");
  EXPECT_EQ(result.outcome, HandshakeResult::Outcome::kFailed);
  EXPECT_EQ(result.reason.find("refused"), std::string::npos) << result.reason;
}

TEST_F(DispatcherTest, CloudEventsAbuseProtectionHandshake) {
  dns_["hooks.example"] = {{"203.0.113.7"}};
  options_.origin = "coffer.example";
  int status = 200;
  std::string allowed = "coffer.example";
  Start([&](const WebhookRequest&) -> StatusOr<http::Response> {
    http::Response r = Answer(status);
    if (!allowed.empty()) {
      r.headers.emplace_back("WebHook-Allowed-Origin", allowed);
    }
    return r;
  });
  Subscription s;
  s.vault = "Main";
  s.name = "cloud";
  s.cloud_events = true;
  s.endpoint_url = "https://hooks.example/cloud";
  EXPECT_EQ(dispatcher_->Validate(s, "https://localhost/v?token=t").outcome,
            HandshakeResult::Outcome::kSucceeded);
  auto sent = SentTo("/cloud");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, "OPTIONS");
  std::map<std::string, std::string> h(sent[0].headers.begin(), sent[0].headers.end());
  EXPECT_EQ(h["WebHook-Request-Origin"], "coffer.example");
  EXPECT_EQ(h["WebHook-Request-Callback"], "https://localhost/v?token=t");
  allowed = "*";
  EXPECT_EQ(dispatcher_->Validate(s, "u").outcome, HandshakeResult::Outcome::kSucceeded);
  allowed = "someone-else.example";
  EXPECT_EQ(dispatcher_->Validate(s, "u").outcome, HandshakeResult::Outcome::kAwaitingManualAction);
  allowed.clear();
  EXPECT_EQ(dispatcher_->Validate(s, "u").outcome, HandshakeResult::Outcome::kAwaitingManualAction);
  status = 405;
  EXPECT_EQ(dispatcher_->Validate(s, "u").outcome, HandshakeResult::Outcome::kFailed);
}

// Deliveries kept in the store (WebhookOptions::persist), as the server
// keeps them: written before they are attempted, continued by the next
// dispatcher on the store, removed when they end.
class PersistentDispatcherTest : public DispatcherTest {
 protected:
  void SetUp() override {
    DispatcherTest::SetUp();
    options_.persist = true;
    options_.now_ms = [this] { return now_ms_.load(); };
    dns_["hooks.example"] = {{"203.0.113.7"}};
    Subscribe("hook", "https://hooks.example/hook");
  }
  // Hands `changes` on as the server's leader does.
  void Queue(const std::vector<storage::ChangeRecord>& changes) {
    auto matched =
        dispatcher_->OnChanges(changes, [&](const std::vector<storage::PendingDelivery>& rows) {
          return store_.QueueDeliveries("position", changes.back().seq, rows);
        });
    ASSERT_TRUE(matched.ok()) << matched.status().ToString();
  }
  std::vector<storage::PendingDelivery> Pending() {
    auto rows = store_.ListDeliveries(std::nullopt, 100);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<storage::PendingDelivery>{};
  }
  std::atomic<int64_t> now_ms_{1'000'000};
};

TEST_F(PersistentDispatcherTest, ARetryPendingAcrossARestartIsDeliveredAfterIt) {
  options_.base_backoff_ms = 3'600'000;  // the retry is due in an hour
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(500); });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  Queue({Change(1, "db")});
  ASSERT_TRUE(Eventually([&] {
    auto rows = Pending();
    return rows.size() == 1 && rows[0].attempts == 1;
  }));
  storage::PendingDelivery row = Pending()[0];
  EXPECT_EQ(row.change.event_id, Change(1, "db").event_id);
  EXPECT_EQ(row.last_status, 500);
  EXPECT_EQ(row.last_outcome, "HTTP 500");
  EXPECT_EQ(row.first_ms, 1'000'000);
  EXPECT_EQ(row.due_ms, 1'000'000 + 3'600'000);
  EXPECT_EQ(**store_.GetMeta("position"), "1");

  // The process ends with the retry pending; the next one, an hour later,
  // continues it.
  dispatcher_.reset();
  now_ms_ += 3'600'000;
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(200); });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 1; }));
  auto sent = SentTo("/hook");
  ASSERT_EQ(sent.size(), 2u);
  auto header = [](const WebhookRequest& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) {
        return v;
      }
    }
    return std::string();
  };
  EXPECT_EQ(header(sent[0], "aeg-delivery-count"), "0");
  EXPECT_EQ(header(sent[1], "aeg-delivery-count"), "1") << "the schedule continues";
  EXPECT_EQ(sent[1].body, sent[0].body);
  EXPECT_TRUE(Eventually([&] { return Pending().empty(); })) << "a delivered row is removed";
}

TEST_F(PersistentDispatcherTest, ADeliveryIsStoredBeforeItsAttemptAndRemovedOnceDelivered) {
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  Start([&](const WebhookRequest&) -> StatusOr<http::Response> {
    std::unique_lock<std::mutex> lock(gate_mu);
    gate_cv.wait_for(lock, std::chrono::seconds(60), [&] { return open; });
    return Answer(200);
  });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  Queue({Change(1, "db")});
  ASSERT_TRUE(Eventually([&] { return SentTo("/hook").size() == 1; }));
  EXPECT_EQ(Pending().size(), 1u) << "in flight, and still pending";
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 1; }));
  EXPECT_TRUE(Eventually([&] { return Pending().empty(); }));
}

TEST_F(PersistentDispatcherTest, ADeadLetteredDeliveryIsRemoved) {
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(400); });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  Queue({Change(1, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().dead_lettered == 1; }));
  EXPECT_EQ(dispatcher_->stats().dead_letter_reasons["NonRetryableResponse"], 1u);
  EXPECT_TRUE(Eventually([&] { return Pending().empty(); }));
}

// A dispatcher that does not lead stores what it is handed and attempts
// nothing; the one that leads next delivers it.
TEST_F(PersistentDispatcherTest, OnlyTheLeaderAttempts) {
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(200); });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  dispatcher_->Follow();
  Queue({Change(1, "db")});
  ASSERT_EQ(Pending().size(), 1u);
  EXPECT_TRUE(SentTo("/hook").empty());
  ASSERT_TRUE(dispatcher_->Lead().ok());
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 1; }));
  EXPECT_EQ(SentTo("/hook").size(), 1u);
  EXPECT_TRUE(Eventually([&] { return Pending().empty(); }));
}

// A server that led a moment ago and did not know it had lost the lease
// may queue a page after the new leader loaded the store. The new leader's
// own pass over that page finds it queued already and takes the rows from
// the store, so they are delivered now rather than at the next takeover.
TEST_F(PersistentDispatcherTest, DeliveriesAnotherLeaderQueuedMeanwhileAreTakenFromTheStore) {
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(200); });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  Queue({Change(1, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 1; }));
  std::vector<storage::PendingDelivery> rows;
  for (int64_t seq : {2, 3}) {
    storage::PendingDelivery row;
    row.vault_key = "main";
    row.name_key = "hook";
    row.change = Change(seq, "db");
    row.due_ms = now_ms_.load();
    row.first_ms = now_ms_.load();
    rows.push_back(row);
  }
  ASSERT_TRUE(store_.QueueDeliveries("position", 3, rows).ok());
  Queue({Change(2, "db"), Change(3, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 3; }));
  EXPECT_TRUE(Eventually([&] { return Pending().empty(); }));
  // The same page handed on again (a pass that failed after its write) is
  // not sent twice: the next change is the only one more.
  Queue({Change(2, "db"), Change(3, "db")});
  Queue({Change(4, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 4; }));
  EXPECT_EQ(SentTo("/hook").size(), 4u);
}

// Rows a restarted leader loaded are not taken twice when it reads their
// page again (the position was stored, its own cursor was not).
TEST_F(PersistentDispatcherTest, ARestartedLeaderReadingItsLastPageAgainSendsItOnce) {
  options_.base_backoff_ms = 3'600'000;
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(500); });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  Queue({Change(1, "db"), Change(2, "db")});
  ASSERT_TRUE(Eventually([&] { return SentTo("/hook").size() == 2; }));
  dispatcher_.reset();
  now_ms_ += 3'600'000;
  Start([](const WebhookRequest&) -> StatusOr<http::Response> { return Answer(200); });
  ASSERT_TRUE(dispatcher_->Lead().ok());
  Queue({Change(1, "db"), Change(2, "db")});
  Queue({Change(3, "db")});
  ASSERT_TRUE(Eventually([&] { return dispatcher_->stats().delivered == 3; }));
  EXPECT_EQ(SentTo("/hook").size(), 5u) << "two failed attempts, then each change once";
}

}  // namespace
}  // namespace coffer::events
