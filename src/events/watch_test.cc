// The watch registry (docs/events.md, "The watch stream"): resuming without
// gap or duplicate, filters, tokens, the resync for a backlog too large to
// send, the cap of streams per principal, and the final event of a stream
// whose token expired or whose principal was deleted.

#include "events/watch.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/memory/memory_store.h"

namespace coffer::events {
namespace {

VaultNaming Naming() {
  return {[](const std::string& v) { return "https://" + v + ".vault.localhost:8443"; },
          [](const std::string& v) {
            return "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + v;
          }};
}

class FakeWriter : public http::StreamWriter {
 public:
  bool Write(std::string data) override {
    std::lock_guard<std::mutex> lock(mu);
    if (closed_) {
      return false;
    }
    text += data;
    return true;
  }
  bool closed() const override { return closed_; }
  void Close() override { closed_ = true; }
  std::string Text() {
    std::lock_guard<std::mutex> lock(mu);
    return text;
  }

  std::mutex mu;
  std::string text;
  std::atomic<bool> closed_{false};
};

// LimitedWriter refuses, as the HTTP server's stream does, a chunk that
// would put more than `limit` bytes in its unsent backlog, and then counts
// as closed (nothing is ever sent here: every byte stays unsent).
class LimitedWriter : public FakeWriter {
 public:
  // The server's default (net::ServerOptions::max_stream_backlog_bytes).
  explicit LimitedWriter(size_t limit = 1024 * 1024) : limit_(limit) {}
  bool Write(std::string data) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!closed_ && text.size() + data.size() > limit_) {
        closed_ = true;
        overflowed = true;
      }
    }
    return FakeWriter::Write(std::move(data));
  }
  std::atomic<bool> overflowed{false};

 private:
  const size_t limit_;
};

// Opens a stream as the server does: the body is the first chunk, then the
// stream attaches.
std::shared_ptr<LimitedWriter> Serve(http::Response& r) {
  auto w = std::make_shared<LimitedWriter>();
  w->Write(r.body);
  r.stream(w);
  return w;
}

// The ids of the events (not the ready marker) in a server-sent event text.
std::vector<std::string> EventIds(const std::string& text) {
  std::vector<std::string> ids;
  size_t pos = 0;
  while ((pos = text.find("id: ", pos)) != std::string::npos) {
    size_t end = text.find('\n', pos);
    std::string id = text.substr(pos + 4, end - pos - 4);
    size_t ev = text.find("event: ", end);
    if (text.compare(ev + 7, 12, "coffer.ready") != 0) {
      ids.push_back(id);
    }
    pos = end;
  }
  return ids;
}

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::VaultRecord v;
    v.name = "Main";
    v.tags_json = "{}";
    ASSERT_TRUE(store_.CreateVault(v).ok());
    v.name = "Other";
    ASSERT_TRUE(store_.CreateVault(v).ok());
  }
  void Set(const std::string& vault, const std::string& name, const std::string& version) {
    storage::SecretVersionRecord r;
    r.name = name;
    r.version = version;
    r.tags_json = "{}";
    ASSERT_TRUE(store_.AddSecretVersion(vault, r).ok());
  }
  // Hands the feed after `after` to the registry, as the hub does, a page
  // at a time; returns the last seq handed over.
  int64_t Publish(WatchRegistry& reg, int64_t after) {
    while (true) {
      auto changes = store_.ListChanges(after, 1000);
      if (changes->empty()) {
        return after;
      }
      reg.OnChanges(*changes);
      after = changes->back().seq;
    }
  }

  storage::MemoryStore store_;
};

TEST_F(WatchTest, ResumesWithNoGapAndNoDuplicate) {
  WatchRegistry reg(store_, Naming());
  Set("Main", "a", "1");  // seq 1
  Set("Main", "b", "1");  // seq 2
  int64_t published = Publish(reg, 0);
  WatchRequest req;
  req.vault = "main";
  req.after_seq = 1;
  http::Response r = reg.Open(req);
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(r.stream);
  // Changes between Open and Attach: one already in the backlog is not sent
  // twice.
  Set("Main", "c", "1");   // seq 3
  Set("Other", "x", "1");  // seq 4: another vault
  published = Publish(reg, published);
  auto w = std::make_shared<FakeWriter>();
  r.stream(w);
  Set("Main", "d", "1");  // seq 5, live
  Publish(reg, published);
  std::string all = r.body + w->Text();
  EXPECT_EQ(EventIds(all), (std::vector<std::string>{"2", "3", "5"}));
  EXPECT_NE(r.body.find("event: Microsoft.KeyVault.SecretNewVersionCreated\ndata: {"),
            std::string::npos);
  EXPECT_NE(r.body.find("event: coffer.ready"), std::string::npos);
}

TEST_F(WatchTest, FiltersByPermissionNamesAndTypes) {
  WatchRegistry reg(store_, Naming());
  WatchRequest req;
  req.vault = "Main";
  req.may_read = [](const storage::ChangeRecord& c) { return c.name != "hidden"; };
  http::Response all = reg.Open(req);
  req.names = {"b"};
  http::Response only_b = reg.Open(req);
  req.names.clear();
  req.types = {"Coffer.KeyVault.SecretDeleted"};
  http::Response deletes = reg.Open(req);
  auto w1 = std::make_shared<FakeWriter>();
  auto w2 = std::make_shared<FakeWriter>();
  auto w3 = std::make_shared<FakeWriter>();
  all.stream(w1);
  only_b.stream(w2);
  deletes.stream(w3);
  Set("Main", "hidden", "1");
  Set("Main", "b", "1");
  ASSERT_TRUE(store_.MarkSecretDeleted("Main", "b", 1, 2).ok());
  Publish(reg, 0);
  EXPECT_EQ(EventIds(w1->Text()), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(w1->Text().find("hidden"), std::string::npos);
  EXPECT_EQ(EventIds(w2->Text()), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(EventIds(w3->Text()), (std::vector<std::string>{"3"}));
}

TEST_F(WatchTest, TokensAreCheckedAndClosedStreamsReaped) {
  WatchRegistry reg(store_, Naming());
  EXPECT_EQ(WatchRegistry::ParseToken("").value(), -1);
  EXPECT_EQ(WatchRegistry::ParseToken("42").value(), 42);
  for (const char* bad : {"-1", "abc", "1 ", "99999999999999999999", "0x10"}) {
    EXPECT_FALSE(WatchRegistry::ParseToken(bad).ok()) << bad;
  }
  Set("Main", "a", "1");
  WatchRequest req;
  req.vault = "Main";
  req.after_seq = 5;  // beyond the newest
  EXPECT_EQ(reg.Open(req).status, 400);
  Set("Main", "a", "2");
  Set("Main", "a", "3");
  ASSERT_TRUE(store_.PruneChanges(int64_t{1} << 62, 1).ok());
  req.after_seq = 0;  // changes 1 and 2 are gone
  http::Response gone = reg.Open(req);
  EXPECT_EQ(gone.status, 410);
  EXPECT_NE(gone.body.find("ResumeTokenExpired"), std::string::npos);
  req.after_seq = 2;
  http::Response ok = reg.Open(req);
  EXPECT_EQ(ok.status, 200);
  auto w = std::make_shared<FakeWriter>();
  ok.stream(w);
  EXPECT_EQ(reg.size(), 1u);
  reg.Tick();
  EXPECT_NE(w->Text().find(": keep-alive"), std::string::npos);
  w->Close();
  reg.Tick();
  EXPECT_EQ(reg.size(), 0u);
  // A stream whose connection never attached goes after a while.
  http::Response never = reg.Open(req);
  EXPECT_EQ(reg.size(), 1u);
  for (int i = 0; i < 20; ++i) {
    reg.Tick();
  }
  EXPECT_EQ(reg.size(), 0u);
}

// The frames of one event type, each as text.
std::vector<std::string> FramesOf(const std::string& text, const std::string& type) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = text.find("event: " + type + "\n", pos)) != std::string::npos) {
    size_t start = text.rfind("id: ", pos);
    size_t end = text.find("\n\n", pos);
    out.push_back(text.substr(start, end - start));
    pos = end;
  }
  return out;
}

TEST_F(WatchTest, ResumingAfterTenThousandChangesGetsThemAllOrAResync) {
  WatchRegistry reg(store_, Naming());
  Set("Main", "s", "0");  // seq 1: the token the client holds
  for (int i = 1; i <= 10000; ++i) {
    Set("Main", "s-" + std::to_string(i % 7), std::to_string(i));
  }
  int64_t published = Publish(reg, 0);
  WatchRequest req;
  req.vault = "Main";
  req.after_seq = 1;
  http::Response r = reg.Open(req);
  ASSERT_EQ(r.status, 200);
  auto w = Serve(r);
  Set("Main", "after", "1");  // seq 10002, live
  Publish(reg, published);
  ASSERT_FALSE(w->overflowed) << "the stream was closed for its backlog";
  ASSERT_FALSE(w->closed());
  std::string text = w->Text();
  auto resyncs = FramesOf(text, "coffer.resync");
  std::vector<std::string> ids = EventIds(text);
  if (resyncs.empty()) {
    ASSERT_EQ(ids.size(), 10001u);
    for (int i = 0; i < 10001; ++i) {
      ASSERT_EQ(ids[i], std::to_string(i + 2));
    }
    return;
  }
  // One resync naming the newest change, then only what came after it.
  ASSERT_EQ(resyncs.size(), 1u);
  EXPECT_EQ(resyncs[0],
            "id: 10001\nevent: coffer.resync\n"
            "data: {\"token\":\"10001\",\"reason\":\"BacklogTooLarge\"}");
  EXPECT_EQ(ids, (std::vector<std::string>{"10001", "10002"}));  // the resync, the live change
  EXPECT_LT(text.find("coffer.resync"), text.find("event: coffer.ready"));
  EXPECT_EQ(
      FramesOf(text, "coffer.ready"),
      (std::vector<std::string>{"id: 10001\nevent: coffer.ready\ndata: {\"token\":\"10001\"}"}));
}

TEST_F(WatchTest, AFilteredBacklogUnderTheLimitIsSentWhole) {
  WatchRegistry reg(store_, Naming());
  for (int i = 1; i <= 3000; ++i) {
    Set("Main", i % 100 == 0 ? "rare" : "busy", std::to_string(i));
  }
  WatchRequest req;
  req.vault = "Main";
  req.after_seq = 0;
  req.names = {"rare"};
  http::Response r = reg.Open(req);
  auto w = Serve(r);
  std::string text = w->Text();
  EXPECT_TRUE(FramesOf(text, "coffer.resync").empty());
  EXPECT_EQ(EventIds(text).size(), 30u);
  EXPECT_EQ(FramesOf(text, "coffer.ready").size(), 1u);
  EXPECT_NE(text.find("id: 3000\nevent: coffer.ready"), std::string::npos);
}

TEST_F(WatchTest, TooManyChangesToReadOrBeforeAttachGiveAResync) {
  WatchLimits limits;
  limits.max_backlog_changes = 50;
  limits.max_backlog_bytes = 8 * 1024;
  WatchRegistry reg(store_, Naming(), SystemClock::Get(), limits);
  for (int i = 1; i <= 60; ++i) {
    Set("Main", "a", std::to_string(i));
  }
  int64_t published = Publish(reg, 0);
  WatchRequest req;
  req.vault = "Main";
  req.after_seq = 5;  // 55 changes behind: not read at all
  http::Response behind = reg.Open(req);
  auto w1 = Serve(behind);
  EXPECT_EQ(FramesOf(w1->Text(), "coffer.resync").size(), 1u);
  EXPECT_NE(w1->Text().find("id: 60\nevent: coffer.resync"), std::string::npos);
  EXPECT_EQ(EventIds(w1->Text()), (std::vector<std::string>{"60"}));

  // Opened near the head, but many changes arrive before it attaches.
  req.after_seq = 60;
  http::Response late = reg.Open(req);
  for (int i = 61; i <= 120; ++i) {
    Set("Main", "a", std::to_string(i));
  }
  published = Publish(reg, published);
  auto w2 = Serve(late);
  Set("Main", "a", "121");
  Publish(reg, published);
  std::string text = w2->Text();
  EXPECT_EQ(EventIds(text), (std::vector<std::string>{"120", "121"}));
  EXPECT_NE(text.find("id: 120\nevent: coffer.resync"), std::string::npos);
  EXPECT_FALSE(w2->closed());
}

TEST_F(WatchTest, StreamsPerPrincipalAreCapped) {
  WatchLimits limits;
  limits.max_streams_per_principal = 2;
  WatchRegistry reg(store_, Naming(), SystemClock::Get(), limits);
  WatchRequest req;
  req.vault = "Main";
  req.principal = "P";
  http::Response a = reg.Open(req);
  http::Response b = reg.Open(req);
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  req.principal = "p";  // object ids compare in any case
  http::Response c = reg.Open(req);
  EXPECT_EQ(c.status, 429);
  EXPECT_NE(c.body.find("Throttled"), std::string::npos);
  bool retry_after = false;
  for (const auto& [k, v] : c.headers) {
    retry_after = retry_after || (k == "Retry-After" && v == "30");
  }
  EXPECT_TRUE(retry_after);
  EXPECT_FALSE(c.stream);
  req.principal = "Q";
  EXPECT_EQ(reg.Open(req).status, 200) << "another principal is not held back";
  // A stream whose peer left frees its place at once, not at the next tick.
  auto wa = Serve(a);
  auto wb = Serve(b);
  wa->Close();
  req.principal = "P";
  http::Response d = reg.Open(req);
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(reg.Open(req).status, 429);
}

TEST_F(WatchTest, AStreamEndsWhenItsTokenExpires) {
  FakeClock clock(1000);
  WatchRegistry reg(store_, Naming(), clock);
  WatchRequest req;
  req.vault = "Main";
  req.principal = "p";
  req.expires = 1010;
  http::Response live = reg.Open(req);
  http::Response unattached = reg.Open(req);
  req.expires = 2000;
  http::Response longer = reg.Open(req);
  auto w = Serve(live);
  auto w_longer = Serve(longer);
  reg.Expire();
  EXPECT_FALSE(w->closed());
  Set("Main", "a", "1");  // seq 1
  Publish(reg, 0);
  clock.Set(1010);
  reg.Expire();
  EXPECT_TRUE(w->closed());
  EXPECT_EQ(
      FramesOf(w->Text(), "coffer.closed"),
      (std::vector<std::string>{
          "id: 1\nevent: coffer.closed\ndata: {\"token\":\"1\",\"reason\":\"TokenExpired\"}"}));
  EXPECT_EQ(w->Text().rfind("event: coffer.closed"), w->Text().rfind("event: "))
      << "the final event is the last";
  EXPECT_FALSE(w_longer->closed());
  EXPECT_EQ(reg.size(), 1u);
  // A stream that expired before it attached ends as it attaches.
  auto w2 = Serve(unattached);
  EXPECT_TRUE(w2->closed());
  EXPECT_NE(w2->Text().find("\"reason\":\"TokenExpired\""), std::string::npos);
}

TEST_F(WatchTest, ClosingAPrincipalEndsItsStreamsAtOnce) {
  WatchRegistry reg(store_, Naming());
  WatchRequest req;
  req.vault = "Main";
  req.principal = "AbC";
  http::Response p1 = reg.Open(req);
  req.vault = "Other";
  http::Response p2 = reg.Open(req);
  req.principal = "other";
  http::Response q = reg.Open(req);
  auto w1 = Serve(p1);
  auto w2 = Serve(p2);
  auto wq = Serve(q);
  reg.ClosePrincipal("abc");
  EXPECT_TRUE(w1->closed());
  EXPECT_TRUE(w2->closed());
  EXPECT_NE(w1->Text().find("\"reason\":\"PrincipalDeleted\""), std::string::npos);
  EXPECT_NE(w2->Text().find("\"reason\":\"PrincipalDeleted\""), std::string::npos);
  EXPECT_FALSE(wq->closed());
  EXPECT_EQ(reg.size(), 1u);
  Set("Other", "x", "1");
  Publish(reg, 0);
  EXPECT_EQ(EventIds(wq->Text()), (std::vector<std::string>{"1"}));
  // Its places are free again.
  req.principal = "ABC";
  EXPECT_EQ(reg.Open(req).status, 200);
}

}  // namespace
}  // namespace coffer::events
