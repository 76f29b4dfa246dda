#include "server/limit_shares.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/json.h"
#include "server/arm_limits.h"
#include "server/service_limits.h"
#include "storage/memory/memory_store.h"

namespace coffer::server {
namespace {

// 1,800,000,000 s is the start of a window.
constexpr int64_t kStart = 1'800'000'000;

LimitSettings Reads(int64_t per_window) {
  LimitSettings s;
  s.mode = LimitSettings::Mode::kCustom;
  s.custom.secret_other = per_window;
  return s;
}

// One server of an installation: its limits and its id, on a shared store.
struct Server {
  Server(const FakeClock& clock, storage::Store& shared, std::string name, const LimitSettings& s)
      : limits(clock), store(shared), id(std::move(name)) {
    limits.Apply(s);
  }
  void Sync() { ASSERT_TRUE(limits.Sync(store, id, written_ms).ok()); }
  // Reads of `vault` until one is refused: how many passed, and the
  // refusal's Retry-After.
  std::pair<int, int64_t> Flood(const std::string& vault = "dev") {
    int passed = 0;
    while (true) {
      if (auto wait = limits.Charge(vault, "SecretGet")) {
        return {passed, *wait};
      }
      ++passed;
    }
  }

  ServiceLimits limits;
  storage::Store& store;
  std::string id;
  int64_t written_ms = 0;
};

// Two servers that both began the current window as its members.
class TwoServers : public ::testing::Test {
 protected:
  void SetUp() override {
    // Both say they are live in one window; the one after the next is
    // split between them from its start.
    for (int i = 0; i < 2; ++i) {
      a.Sync();
      b.Sync();
      clock.Advance(10);
    }
    a.Sync();
    b.Sync();
  }
  FakeClock clock{kStart};
  storage::MemoryStore store;
  Server a{clock, store, "a", Reads(50)};
  Server b{clock, store, "b", Reads(50)};
};

TEST(LimitShares, OneServerHoldsTheWholeBudget) {
  FakeClock clock(kStart);
  storage::MemoryStore store;
  Server a(clock, store, "a", Reads(50));
  a.Sync();
  auto [passed, wait] = a.Flood();
  EXPECT_EQ(passed, 50);
  EXPECT_EQ(wait, 10) << "alone, a refusal waits for the window's end";
}

TEST_F(TwoServers, FloodedTogetherTheyAdmitTheBudgetOnce) {
  auto [at_a, wait_a] = a.Flood();
  auto [at_b, wait_b] = b.Flood();
  EXPECT_EQ(at_a, 25);
  EXPECT_EQ(at_b, 25);
  EXPECT_EQ(wait_a, 1) << "the other server might spare some";
  // Both hungry: each claims, neither has any to spare, and the refusals
  // then wait for the window's end.
  for (int round = 0; round < 3; ++round) {
    a.Sync();
    b.Sync();
    at_a += a.Flood().first;
    at_b += b.Flood().first;
  }
  EXPECT_EQ(at_a + at_b, 50);
  EXPECT_EQ(a.Flood().second, 10);
  EXPECT_EQ(b.Flood().second, 10);
  // The next window is split evenly again.
  clock.Advance(10);
  a.Sync();
  b.Sync();
  EXPECT_EQ(a.Flood().first, 25);
}

TEST_F(TwoServers, ABusyServerGetsWhatTheIdleOneSpares) {
  int at_a = a.Flood().first;
  EXPECT_EQ(at_a, 25);
  a.Sync();                 // hungry: claims what no one holds (nothing yet)
  b.Sync();                 // sees a hungry, spares all but a reserve of its even share
  at_a += a.Flood().first;  // refused again: still hungry
  a.Sync();                 // takes what b spared
  at_a += a.Flood().first;
  EXPECT_EQ(at_a, 48) << "b keeps a tenth of its even share";
  auto [at_b, wait_b] = b.Flood();
  EXPECT_EQ(at_b, 2);
  EXPECT_EQ(at_a + at_b, 50);
  a.Sync();
  b.Sync();
  EXPECT_EQ(a.Flood(), std::make_pair(0, int64_t{10})) << "nothing is left in the window";
}

TEST_F(TwoServers, AServerThatSparesKeepsItsPaceAsAReserve) {
  // b reads 5 a round; a wants everything.
  for (int i = 0; i < 5; ++i) {
    ASSERT_FALSE(b.limits.Charge("dev", "SecretGet").has_value());
  }
  int at_a = a.Flood().first;
  a.Sync();
  b.Sync();  // spares all but what it used and its last round's 5
  for (int i = 0; i < 5; ++i) {
    ASSERT_FALSE(b.limits.Charge("dev", "SecretGet").has_value()) << i;
  }
  at_a += a.Flood().first;
  a.Sync();
  at_a += a.Flood().first;
  EXPECT_EQ(at_a, 40);
  EXPECT_EQ(b.Flood().first, 0);
}

TEST_F(TwoServers, TheInstallationsBudgetIsSharedToo) {
  // Vaults of 10 reads, the installation's 50: a's even share is 25.
  LimitSettings s = Reads(10);
  a.limits.Apply(s);
  b.limits.Apply(s);
  int passed = 0;
  for (int v = 0; v < 10; ++v) {
    passed += a.Flood("v" + std::to_string(v)).first;
  }
  EXPECT_EQ(passed, 25);
}

TEST_F(TwoServers, AServerThatLeavesGivesItsShareBack) {
  EXPECT_EQ(a.Flood().first, 25);
  ASSERT_TRUE(b.limits.Leave(store, "b").ok());
  a.Sync();  // hungry: b's share is no one's now
  EXPECT_EQ(a.Flood().first, 25);
}

TEST_F(TwoServers, ADeadServersShareIsFreeOnceItsHeartbeatIsOld) {
  EXPECT_EQ(a.Flood().first, 25);
  a.Sync();
  EXPECT_EQ(a.Flood().first, 0) << "b is live and holds its share";
  // b stops without a word; a goes on alone.
  for (int i = 0; i < 4; ++i) {
    clock.Advance(5);
    a.Sync();
  }
  EXPECT_EQ(a.Flood().first, 50);
}

TEST_F(TwoServers, AServerThatJoinsClaimsWhatTheOthersSpare) {
  Server c(clock, store, "c", Reads(50));
  c.Sync();  // live now, but no member of this window or the next
  EXPECT_EQ(c.Flood(), std::make_pair(0, int64_t{1}));
  EXPECT_EQ(a.Flood().first, 25) << "the members' shares are as they were";
  // c claims, the others spare, c takes: of the vault's budget, then of
  // the installation's (each refusal says which it wants).
  int at_c = 0;
  for (int round = 0; round < 5; ++round) {
    c.Sync();
    a.Sync();
    b.Sync();
    at_c += c.Flood().first;
  }
  EXPECT_GT(at_c, 0);
  EXPECT_LE(25 + at_c + b.Flood().first, 50);
  // Two windows on, it is a member with an even share.
  for (int i = 0; i < 2; ++i) {
    clock.Advance(10);
    a.Sync();
    b.Sync();
    c.Sync();
  }
  EXPECT_EQ(c.Flood().first, 16);
}

TEST_F(TwoServers, ConcurrentRequestsAndSyncsNeverAdmitMoreThanTheBudget) {
  std::atomic<int> passed{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (Server* s : {&a, &b}) {
    threads.emplace_back([&, s] {
      while (!done.load()) {
        if (!s->limits.Charge("dev", "SecretGet").has_value()) {
          passed.fetch_add(1);
        }
      }
    });
  }
  for (int round = 0; round < 200; ++round) {
    a.Sync();
    b.Sync();
  }
  done.store(true);
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_LE(passed.load(), 50);
  EXPECT_GE(passed.load(), 50 - 2) << "no more than an idle reserve goes unused";
}

TEST(LimitShares, ADocumentThatCannotBeReadIsStartedAnew) {
  for (const char* stored :
       {"{", "[]", "null", R"({"window":"x","servers":[],"claims":{"dev/1":{"a":["x",1]}}})",
        R"({"window":1e300,"servers":{"z":"y"},"members":[1,2],"claims":{"dev/1":[5]}})",
        R"({"window":-5,"servers":{"z":99999999999999},"members":["z"],"next":["z"]})"}) {
    FakeClock clock(kStart);
    storage::MemoryStore store;
    ASSERT_TRUE(store.PutMeta(kLimitSharesMetaKey, stored).ok());
    Server a(clock, store, "a", Reads(50));
    a.Sync();
    std::optional<Json> doc = ParseJson(*store.GetMeta(kLimitSharesMetaKey).value());
    ASSERT_TRUE(doc.has_value()) << stored;
    EXPECT_EQ((*doc)["window"], ServiceLimits::WindowAt(clock.NowMicros())) << stored;
    EXPECT_GT(a.Flood().first, 0) << stored;
  }
}

TEST(LimitShares, MergeKeepsTheSharesWithinTheBudget) {
  // A document written by hand in which z holds a claim beyond its even
  // share: a hungry claimant gets only what is left.
  const int64_t w = 100;
  std::string doc = R"({"window":100,"servers":{"y":1000,"z":1000},"members":["x","y","z"],)"
                    R"("next":["x","y","z"],"claims":{"dev/1":{"z":[40,0]}}})";
  ShareView view;
  std::string out = MergeShares(doc, "x", 1000, w, {{"dev/1", 60, 20, true}}, &view);
  ASSERT_EQ(view.granted.size(), 1u);
  // y holds its even 20, z 40: nothing is free for x beyond its 20.
  EXPECT_EQ(view.granted[0], 20);
  EXPECT_FALSE(view.exhausted[0]) << "y has not said yet";
  EXPECT_EQ(view.live, 3);
  EXPECT_EQ(view.now.members, 3);
  // A claim with a larger budget than the shares hold gets the difference,
  // split among the hungry (z is not): y's even 40 and z's 40 leave 20.
  out = MergeShares(out, "x", 1000, w, {{"dev/1", 120, 20, true}}, &view);
  EXPECT_EQ(view.granted[0], 40);
  // A later window drops every claim, and y and z, 15 s silent, are dead.
  out = MergeShares(out, "x", 16'000, w + 1, {}, &view);
  EXPECT_EQ(ParseJson(out)->at("claims").size(), 0u);
  EXPECT_EQ(view.live, 1);
  EXPECT_EQ(view.now.members, 1) << "the window's members are the live ones it was to have";
}

TEST(ArmLimits, ServersDivideTheBuckets) {
  FakeClock clock(kStart);
  ServiceLimits limits(clock);
  LimitSettings azure;
  azure.mode = LimitSettings::Mode::kAzure;
  limits.Apply(azure);
  limits.SetServers(2);
  ArmLimits arm(clock, limits);
  int passed = 0;
  while (!arm.Take("p", ArmKind::kRead)->retry_after.has_value()) {
    ++passed;
  }
  EXPECT_EQ(passed, 125);
}

}  // namespace
}  // namespace coffer::server
