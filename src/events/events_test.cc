#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "crypto/primitives.h"
#include "events/change_hub.h"
#include "events/event_format.h"
#include "events/expiry.h"
#include "events/webhooks.h"
#include "storage/memory/memory_store.h"

namespace coffer::events {
namespace {

VaultNaming Naming() {
  return {[](const std::string& v) { return "https://" + v + ".vault.localhost:8443"; },
          [](const std::string& v) {
            return "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + v;
          }};
}

storage::ChangeRecord Change(int64_t seq, std::string type, std::string name,
                             std::string version = "v1", std::string vault = "Main") {
  storage::ChangeRecord c;
  c.seq = seq;
  c.event_id = "00000000-0000-4000-8000-00000000000" + std::to_string(seq % 10);
  c.time_ms = 1700000000123;
  c.vault = std::move(vault);
  c.type = std::move(type);
  c.object_type = "Secret";
  c.name = std::move(name);
  c.version = std::move(version);
  return c;
}

using test::WaitUntil;

TEST(EventFormat, EventGridAndCloudEventsCarryKeyVaultsData) {
  auto c = Change(7, "SecretNewVersionCreated", "db-password", "abc");
  c.nbf = 100;
  c.exp = 200;
  Json eg = EventGridEvent(c, Naming());
  EXPECT_EQ(eg["id"], c.event_id);
  EXPECT_EQ(eg["topic"],
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/Main");
  EXPECT_EQ(eg["subject"], "db-password");
  EXPECT_EQ(eg["eventType"], "Microsoft.KeyVault.SecretNewVersionCreated");
  EXPECT_EQ(eg["eventTime"], "2023-11-14T22:13:20.1230000Z");
  EXPECT_EQ(eg["dataVersion"], "1");
  EXPECT_EQ(eg["metadataVersion"], "1");
  const Json& d = eg["data"];
  EXPECT_EQ(d["Id"], "https://Main.vault.localhost:8443/secrets/db-password/abc");
  EXPECT_EQ(d["VaultName"], "Main");
  EXPECT_EQ(d["ObjectType"], "Secret");
  EXPECT_EQ(d["ObjectName"], "db-password");
  EXPECT_EQ(d["Version"], "abc");
  EXPECT_EQ(d["NBF"], 100);
  EXPECT_EQ(d["EXP"], 200);
  Json ce = CloudEvent(c, Naming());
  EXPECT_EQ(ce["specversion"], "1.0");
  EXPECT_EQ(ce["type"], "Microsoft.KeyVault.SecretNewVersionCreated");
  EXPECT_EQ(ce["source"], eg["topic"]);
  EXPECT_EQ(ce["subject"], "db-password");
  EXPECT_EQ(ce["time"], eg["eventTime"]);
  EXPECT_EQ(ce["data"], d);

  auto vault = Change(8, "VaultAccessPolicyChanged", "Main", "");
  vault.object_type = "Vault";
  Json ve = EventGridEvent(vault, Naming());
  EXPECT_EQ(ve["data"]["Id"], "https://Main.vault.localhost:8443");
  EXPECT_TRUE(ve["data"]["EXP"].is_null());
  EXPECT_EQ(EventType(Change(9, "SecretDeleted", "a")), "Coffer.KeyVault.SecretDeleted");
  EXPECT_TRUE(IsKeyVaultEventType("Microsoft.KeyVault.SecretExpired"));
  EXPECT_FALSE(IsKeyVaultEventType("Microsoft.KeyVault.SecretDeleted"));
  EXPECT_FALSE(IsKeyVaultEventType("Coffer.KeyVault.SecretDeleted"));
}

Json WebhookProps(std::string url = "https://hooks.example/x?code=1") {
  return Json{
      {"destination", {{"endpointType", "WebHook"}, {"properties", {{"endpointUrl", url}}}}}};
}

TEST(Subscriptions, ValidateLikeEventGrid) {
  Subscription s;
  ASSERT_TRUE(ParseSubscription(WebhookProps(), s).ok());
  EXPECT_FALSE(s.cloud_events);
  EXPECT_EQ(s.max_delivery_attempts, 30);
  EXPECT_EQ(s.event_ttl_minutes, 1440);
  Json p = WebhookProps("http://127.0.0.1:9/hook");
  p["filter"] = {{"includedEventTypes", {"Microsoft.KeyVault.SecretNewVersionCreated"}},
                 {"subjectBeginsWith", "db-"}};
  p["eventDeliverySchema"] = "CloudEventSchemaV1_0";
  p["retryPolicy"] = {{"maxDeliveryAttempts", 3}, {"eventTimeToLiveInMinutes", 5}};
  ASSERT_TRUE(ParseSubscription(p, s).ok());
  EXPECT_TRUE(s.cloud_events);
  EXPECT_EQ(s.max_delivery_attempts, 3);

  auto bad = [](Json props) -> std::string {
    Subscription out;
    Status st = ParseSubscription(props, out);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << ToJson(props);
    return std::string(st.message());
  };
  bad(Json::array());
  bad(Json::object());
  bad(WebhookProps("http://example.com/hook"));  // plain HTTP off loopback
  bad(WebhookProps("ftp://x"));
  bad(WebhookProps(std::string(3000, 'a')));
  Json q = WebhookProps();
  q["destination"]["endpointType"] = "EventHub";
  EXPECT_NE(bad(q).find("WebHook"), std::string::npos);
  q = WebhookProps();
  q["filter"] = {{"includedEventTypes", {"Microsoft.KeyVault.Nope"}}};
  EXPECT_NE(bad(q).find("Microsoft.KeyVault.Nope"), std::string::npos);
  q["filter"] = {{"includedEventTypes", "Microsoft.KeyVault.SecretExpired"}};
  bad(q);
  q["filter"] = {{"subjectBeginsWith", std::string(2000, 'x')}};
  bad(q);
  q = WebhookProps();
  q["eventDeliverySchema"] = "CustomInputSchema";
  bad(q);
  q = WebhookProps();
  q["retryPolicy"] = {{"maxDeliveryAttempts", 31}};
  bad(q);
  q["retryPolicy"] = {{"eventTimeToLiveInMinutes", "5"}};
  bad(q);
}

TEST(Subscriptions, MatchTypesSubjectsVaultAndStart) {
  Subscription s;
  s.vault = "Main";
  s.start_seq = 5;
  EXPECT_TRUE(s.Matches(Change(6, "SecretNewVersionCreated", "a")));
  EXPECT_FALSE(s.Matches(Change(5, "SecretNewVersionCreated", "a")));  // before it existed
  EXPECT_TRUE(s.Matches(Change(6, "SecretNewVersionCreated", "a", "v", "MAIN")));
  EXPECT_FALSE(s.Matches(Change(6, "SecretNewVersionCreated", "a", "v", "other")));
  // Without a filter, Key Vault's types only.
  EXPECT_FALSE(s.Matches(Change(6, "SecretDeleted", "a")));
  s.included_types = {"Coffer.KeyVault.SecretDeleted"};
  EXPECT_TRUE(s.Matches(Change(6, "SecretDeleted", "a")));
  EXPECT_FALSE(s.Matches(Change(6, "SecretNewVersionCreated", "a")));
  s.included_types.clear();
  s.subject_begins_with = "DB-";
  s.subject_ends_with = "-prod";
  EXPECT_TRUE(s.Matches(Change(6, "SecretExpired", "db-password-prod")));
  EXPECT_FALSE(s.Matches(Change(6, "SecretExpired", "db-password-test")));
  EXPECT_FALSE(s.Matches(Change(6, "SecretExpired", "api-prod")));
}

TEST(ChangeHubTest, HandsEachChangeOnceInOrder) {
  storage::MemoryStore store;
  storage::VaultRecord v;
  v.name = "Main";
  ASSERT_TRUE(store.CreateVault(v).ok());
  storage::SecretVersionRecord r;
  r.name = "before";
  r.version = "1";
  ASSERT_TRUE(store.AddSecretVersion("Main", r).ok());  // before Start: not handed on
  ChangeHub hub(store, 50);
  std::mutex mu;
  std::vector<int64_t> seen;
  std::atomic<int> ticks{0};
  hub.AddListener([&](const std::vector<storage::ChangeRecord>& changes) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& c : changes) {
      seen.push_back(c.seq);
    }
  });
  hub.AddTicker(10, [&] { ticks++; });
  ASSERT_TRUE(hub.Start().ok());
  for (int i = 0; i < 600; ++i) {  // more than one page
    r.name = "s" + std::to_string(i % 7);
    r.version = std::to_string(i);
    ASSERT_TRUE(store.AddSecretVersion("Main", r).ok());
    if (i % 100 == 0) {
      hub.Notify();
    }
  }
  hub.Notify();
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size() == 600;
  }));
  EXPECT_TRUE(WaitUntil([&] { return ticks.load() > 2; }));
  hub.Stop();
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i], static_cast<int64_t>(i + 2));
  }
}

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test::TempDir::Create("coffer-events-");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(*dir);
    storage::VaultRecord v;
    v.name = "Main";
    ASSERT_TRUE(store_.CreateVault(v).ok());
  }
  void Subscribe(const std::string& name, Json props) {
    storage::EventSubscriptionRecord r;
    r.vault = "Main";
    r.name = name;
    r.properties_json = ToJson(props);
    r.key_generation = 3;
    ASSERT_TRUE(store_
                    .PutEventSubscription(
                        "Main", name,
                        [&](const auto&, size_t) -> StatusOr<storage::EventSubscriptionRecord> {
                          return r;
                        })
                    .ok());
  }

  struct Sent {
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
  };
  std::string Header(const Sent& s, const std::string& name) {
    for (const auto& [k, v] : s.headers) {
      if (k == name) {
        return v;
      }
    }
    return "";
  }

  test::TempDir dir_;
  storage::MemoryStore store_;
  std::mutex mu_;
  std::vector<Sent> sent_;
};

TEST_F(WebhookTest, DeliversSignedRetriesAndDeadLetters) {
  // Stored as the management plane stores it: the URL sealed.
  Json ok_props = WebhookProps("https://hooks.example/ok");
  ok_props["destination"]["properties"] = {
      {"endpointUrlSealed",
       UrlSeal(std::string(32, 'k')).Seal("Main", "ok", "https://hooks.example/ok")}};
  Subscribe("ok", ok_props);
  Json flaky = WebhookProps("https://hooks.example/flaky");
  flaky["eventDeliverySchema"] = "CloudEventSchemaV1_0";
  Subscribe("flaky", flaky);
  Json down = WebhookProps("https://hooks.example/down");
  down["retryPolicy"] = {{"maxDeliveryAttempts", 3}};
  Subscribe("down", down);
  Subscribe("rejects", WebhookProps("https://hooks.example/rejects"));

  std::atomic<int> flaky_calls{0};
  WebhookOptions options;
  options.base_backoff_ms = 5;
  options.dead_letter_path = dir_.Join("deadletter.jsonl");
  options.resolver = [](const std::string&) -> StatusOr<std::vector<std::string>> {
    return std::vector<std::string>{"203.0.113.10"};
  };
  auto answer = [](int status) {
    http::Response r;
    r.status = status;
    return StatusOr<http::Response>(r);
  };
  WebhookDispatcher dispatcher(
      store_, Naming(),
      [&](const WebhookRequest& request) -> StatusOr<http::Response> {
        const std::string& url = request.url;
        {
          std::lock_guard<std::mutex> lock(mu_);
          sent_.push_back({url, request.headers, request.body});
        }
        if (url.find("/flaky") != std::string::npos) {
          return flaky_calls++ < 2
                     ? StatusOr<http::Response>(UnavailableError("connection refused"))
                     : answer(200);
        }
        if (url.find("/down") != std::string::npos) {
          return answer(503);
        }
        if (url.find("/rejects") != std::string::npos) {
          return answer(400);
        }
        return answer(200);
      },
      [](const std::string& vault, const std::string& name, int64_t gen) {
        return "key:" + vault + "/" + name + "/" + std::to_string(gen);
      },
      UrlSeal(std::string(32, 'k')), options);
  ASSERT_TRUE(dispatcher.Start().ok());
  dispatcher.OnChanges({Change(1, "SecretNewVersionCreated", "db")});
  ASSERT_TRUE(WaitUntil([&] {
    auto s = dispatcher.stats();
    return s.delivered == 2 && s.dead_lettered == 2;
  }));
  dispatcher.Stop();
  auto stats = dispatcher.stats();
  EXPECT_EQ(stats.failed_attempts, 2u + 3u + 1u);
  // By outcome: flaky's two went unanswered; down's three and rejects' one
  // were answered with an error.
  EXPECT_EQ(stats.unreachable, 2u);
  EXPECT_EQ(stats.rejected, 3u + 1u);
  EXPECT_EQ(stats.refused, 0u);
  EXPECT_EQ(stats.dead_letter_reasons,
            (std::map<std::string, uint64_t>{{"MaxDeliveryAttemptsExceeded", 1},
                                             {"NonRetryableResponse", 1}}));

  std::lock_guard<std::mutex> lock(mu_);
  int ok_seen = 0;
  for (const auto& s : sent_) {
    if (s.url != "https://hooks.example/ok") {
      continue;
    }
    ++ok_seen;
    EXPECT_EQ(Header(s, "aeg-event-type"), "Notification");
    EXPECT_EQ(Header(s, "aeg-subscription-name"), "OK");
    EXPECT_EQ(Header(s, "aeg-delivery-count"), "0");
    Json body = Json::parse(s.body);
    ASSERT_TRUE(body.is_array());
    EXPECT_EQ(body[0]["eventType"], "Microsoft.KeyVault.SecretNewVersionCreated");
    // The signature is an HMAC of "<t>.<body>" under the subscription's key.
    std::string sig = Header(s, "Coffer-Signature");
    std::string t = sig.substr(2, sig.find(',') - 2);
    EXPECT_EQ(sig,
              "t=" + t + ",v1=" + HexEncode(crypto::HmacSha256("key:Main/ok/3", t + "." + s.body)));
  }
  EXPECT_EQ(ok_seen, 1);
  std::vector<std::string> flaky_counts;
  for (const auto& s : sent_) {
    if (s.url == "https://hooks.example/flaky") {
      flaky_counts.push_back(Header(s, "aeg-delivery-count"));
      EXPECT_EQ(Header(s, "Content-Type"), "application/cloudevents+json; charset=utf-8");
      EXPECT_EQ(Json::parse(s.body)["specversion"], "1.0");
    }
  }
  EXPECT_EQ(flaky_counts, (std::vector<std::string>{"0", "1", "2"}));

  auto dead = ReadFile(options.dead_letter_path);
  ASSERT_TRUE(dead.ok());
  EXPECT_EQ(FileMode(options.dead_letter_path), 0600);
  std::vector<Json> lines;
  size_t start = 0;
  while (start < dead->size()) {
    size_t end = dead->find('\n', start);
    lines.push_back(Json::parse(dead->substr(start, end - start)));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 2u);
  std::map<std::string, Json> by_sub;
  for (const auto& l : lines) {
    by_sub[l["subscriptionName"].get<std::string>()] = l;
  }
  EXPECT_EQ(by_sub["down"]["deadLetterReason"], "MaxDeliveryAttemptsExceeded");
  EXPECT_EQ(by_sub["down"]["deliveryAttempts"], 3);
  EXPECT_EQ(by_sub["down"]["lastHttpStatusCode"], 503);
  EXPECT_EQ(by_sub["rejects"]["deadLetterReason"], "NonRetryableResponse");
  EXPECT_EQ(by_sub["rejects"]["deliveryAttempts"], 1);
  EXPECT_EQ(by_sub["rejects"]["event"]["data"]["ObjectName"], "db");
}

TEST(UrlSealTest, StoredUrlsAreSealedAndBoundToTheirSubscription) {
  UrlSeal seal(std::string(32, 'k'));
  std::string url = "https://hooks.example/x?code=s3cr3t";
  std::string sealed = seal.Seal("Main", "Hook", url);
  EXPECT_EQ(sealed.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(seal.Open("main", "hook", sealed).value(), url);
  EXPECT_EQ(seal.Open("main", "other", sealed).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(UrlSeal(std::string(32, 'x')).Open("main", "hook", sealed).status().code(),
            StatusCode::kDataLoss);
  EXPECT_FALSE(seal.Open("main", "hook", "not base64!").ok());
  storage::EventSubscriptionRecord r;
  r.vault = "Main";
  r.name = "Hook";
  r.properties_json = ToJson(
      Json{{"destination",
            {{"endpointType", "WebHook"}, {"properties", {{"endpointUrlSealed", sealed}}}}}});
  auto props = seal.Unseal(r);
  ASSERT_TRUE(props.ok());
  EXPECT_EQ((*props)["destination"]["properties"]["endpointUrl"], url);
  EXPECT_FALSE((*props)["destination"]["properties"].contains("endpointUrlSealed"));
  r.properties_json = "[]";
  EXPECT_EQ(seal.Unseal(r).status().code(), StatusCode::kDataLoss);
}

TEST(ExpiryTest, NearExpiryAndExpiryFireOnceEach) {
  storage::MemoryStore store;
  storage::VaultRecord v;
  v.name = "Main";
  ASSERT_TRUE(store.CreateVault(v).ok());
  FakeClock clock(1000000);
  storage::SecretVersionRecord r;
  r.name = "cert-password";
  r.version = "v1";
  r.exp = 1000000 + 40 * 86400;
  ASSERT_TRUE(store.AddSecretVersion("Main", r).ok());
  ExpiryScheduler scheduler(store, clock);
  int64_t after = store.GetChangeBounds()->newest;
  EXPECT_EQ(scheduler.RunOnce().value(), 0);
  clock.Advance(11 * 86400);  // 29 days before exp
  EXPECT_EQ(scheduler.RunOnce().value(), 1);
  EXPECT_EQ(scheduler.RunOnce().value(), 0);
  clock.Advance(30 * 86400);  // past exp
  EXPECT_EQ(scheduler.RunOnce().value(), 1);
  EXPECT_EQ(scheduler.RunOnce().value(), 0);
  auto changes = store.ListChanges(after, 10);
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[0].type, "SecretNearExpiry");
  EXPECT_EQ((*changes)[1].type, "SecretExpired");
  EXPECT_EQ((*changes)[1].exp, r.exp);
  EXPECT_EQ((*changes)[1].version, "v1");
}

// A key's notice comes when its policy's Notify lead is reached; keys
// without one keep the 30 days; a short lead does not hold up the others.
TEST(ExpiryTest, AKeysNoticeFollowsItsPolicysLead) {
  storage::MemoryStore store;
  storage::VaultRecord v;
  v.name = "Main";
  ASSERT_TRUE(store.CreateVault(v).ok());
  FakeClock clock(1000000);
  auto add = [&](const std::string& name, int64_t exp_days) {
    storage::SecretVersionRecord r;
    r.name = name;
    r.version = "v1";
    r.exp = 1000000 + exp_days * 86400;
    ASSERT_TRUE(store.AddObjectVersion(storage::ObjectKind::kKey, "Main", r).ok());
  };
  add("late", 50);     // lead 60 days: near at once
  add("early", 20);    // lead 7 days: near on day 13
  add("default", 25);  // no policy: 30 days, near at once
  std::map<std::string, int64_t> leads = {{"main/late", 60 * 86400}, {"main/early", 7 * 86400}};
  int asked = 0;
  ExpiryScheduler scheduler(
      store, clock, 30 * 86400,
      [&](storage::ObjectKind kind) -> StatusOr<std::map<std::string, int64_t>> {
        if (kind != storage::ObjectKind::kKey) {
          return std::map<std::string, int64_t>();
        }
        ++asked;
        return leads;
      });
  int64_t after = store.GetChangeBounds()->newest;
  EXPECT_EQ(scheduler.RunOnce().value(), 2);
  EXPECT_EQ(asked, 1);
  clock.Advance(12 * 86400);
  EXPECT_EQ(scheduler.RunOnce().value(), 0);
  clock.Advance(86400);
  EXPECT_EQ(scheduler.RunOnce().value(), 1);
  auto changes = store.ListChanges(after, 10);
  ASSERT_EQ(changes->size(), 3u);
  std::vector<std::string> near;
  for (const auto& c : *changes) {
    EXPECT_EQ(c.type, "KeyNearExpiry");
    near.push_back(c.name);
  }
  EXPECT_EQ(near, (std::vector<std::string>{"default", "late", "early"}));
  // A failure to read the policies is the run's error, not a silent skip.
  ExpiryScheduler failing(store, clock, 30 * 86400,
                          [](storage::ObjectKind) -> StatusOr<std::map<std::string, int64_t>> {
                            return UnavailableError("down");
                          });
  EXPECT_EQ(failing.RunOnce().status().code(), StatusCode::kUnavailable);
}

// A certificate has notices of its own, and its key and secret have
// theirs, each named after its kind.
TEST(ExpiryTest, ACertificateAndItsPartsEachGetTheirNotices) {
  storage::MemoryStore store;
  storage::VaultRecord v;
  v.name = "Main";
  ASSERT_TRUE(store.CreateVault(v).ok());
  FakeClock clock(1000000);
  storage::SecretVersionRecord r;
  r.name = "tls";
  r.version = "v1";
  r.exp = 1000000 + 10 * 86400;
  ASSERT_TRUE(
      store
          .AddObjectVersion(storage::ObjectKind::kCertificate, "Main", r,
                            {{storage::ObjectKind::kKey, r}, {storage::ObjectKind::kSecret, r}})
          .ok());
  ExpiryScheduler scheduler(store, clock);
  int64_t after = store.GetChangeBounds()->newest;
  EXPECT_EQ(scheduler.RunOnce().value(), 3);
  clock.Advance(11 * 86400);
  EXPECT_EQ(scheduler.RunOnce().value(), 3);
  auto changes = store.ListChanges(after, 10);
  ASSERT_TRUE(changes.ok());
  std::vector<std::string> types;
  for (const auto& c : *changes) {
    types.push_back(c.type);
  }
  std::sort(types.begin(), types.end());
  EXPECT_EQ(types,
            (std::vector<std::string>{"CertificateExpired", "CertificateNearExpiry", "KeyExpired",
                                      "KeyNearExpiry", "SecretExpired", "SecretNearExpiry"}));
}

}  // namespace
}  // namespace coffer::events
