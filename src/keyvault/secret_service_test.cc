#include "keyvault/secret_service.h"

#include <gtest/gtest.h>

#include "crypto/primitives.h"
#include "storage/memory/memory_store.h"

namespace coffer::keyvault {
namespace {

class SecretServiceTest : public ::testing::Test {
 protected:
  SecretServiceTest()
      : clock_(1800000000),
        envelope_(Envelope::Create(crypto::RandomBytes(32)).value()),
        registry_(store_, *envelope_, clock_, 0),
        service_(store_, *envelope_, clock_) {
    AddVault("kv", 7, false);
    AddVault("protected", 90, true);
  }

  void AddVault(const std::string& name, int retention_days, bool purge_protection) {
    storage::VaultRecord v;
    v.name = name;
    v.retention_days = retention_days;
    v.purge_protection = purge_protection;
    v.tags_json = "{}";
    v.wrapped_data_key = envelope_->NewWrappedDataKey(name);
    ASSERT_TRUE(store_.CreateVault(v).ok());
  }

  // The open vault, as the data plane resolves it once per request.
  std::shared_ptr<const OpenVault> V(const std::string& name) {
    return registry_.Get(name).value();
  }

  static SecretInput Input(const std::string& value) {
    SecretInput in;
    in.value = value;
    return in;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<Envelope> envelope_;
  VaultRegistry registry_;
  SecretService service_;
};

TEST_F(SecretServiceTest, SetGetAndVersions) {
  auto v1 = service_.Set(V("kv"), "db", Input("one"));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->record.version.size(), 32u);
  EXPECT_EQ(*v1->value, "one");
  EXPECT_EQ(v1->recovery_level, "CustomizedRecoverable+Purgeable");
  EXPECT_EQ(v1->recoverable_days, 7);
  auto v2 = service_.Set(V("kv"), "DB", Input("two"));
  EXPECT_EQ(*service_.Get(V("kv"), "db", "")->value, "two");
  EXPECT_EQ(*service_.Get(V("kv"), "db", v1->record.version)->value, "one");
  EXPECT_EQ(service_.Get(V("kv"), "db", "")->record.name, "db");
  auto missing = service_.Get(V("kv"), "nope", "");
  EXPECT_EQ(missing.status().reason(), "SecretNotFound");
  EXPECT_EQ(registry_.Get("nokv").status().code(), StatusCode::kNotFound);
}

TEST_F(SecretServiceTest, StoresOnlyCiphertext) {
  ASSERT_TRUE(service_.Set(V("kv"), "db", Input("plain-marker-value")).ok());
  auto view = store_.GetSecret("kv", "db", "", false);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->version.sealed_value.find("plain-marker-value"), std::string::npos);
}

TEST_F(SecretServiceTest, EnforcesKeyVaultLimits) {
  EXPECT_TRUE(service_.Set(V("kv"), "big", Input(std::string(kMaxSecretValueBytes, 'x'))).ok());
  EXPECT_EQ(service_.Set(V("kv"), "big", Input(std::string(kMaxSecretValueBytes + 1, 'x')))
                .status()
                .reason(),
            "BadParameter");
  SecretInput tags = Input("v");
  tags.tags_json = "{";
  for (int i = 0; i < 16; ++i) {
    tags.tags_json += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":\"v\"";
  }
  tags.tags_json += "}";
  EXPECT_FALSE(service_.Set(V("kv"), "t", tags).ok());
  SecretInput ct = Input("v");
  ct.content_type = std::string(256, 'c');
  EXPECT_FALSE(service_.Set(V("kv"), "t", ct).ok());
  EXPECT_FALSE(service_.Set(V("kv"), "bad_name", Input("v")).ok());
  EXPECT_FALSE(store_.GetSecret("kv", "t", "", true).ok());
}

TEST_F(SecretServiceTest, UpdateAndDisable) {
  auto v1 = service_.Set(V("kv"), "db", Input("one"));
  SecretPatch patch;
  patch.enabled = false;
  patch.exp = std::optional<int64_t>(1900000000);
  patch.tags_json = R"({"k":"v"})";
  clock_.Advance(5);
  auto updated = service_.Update(V("kv"), "db", "", patch);
  ASSERT_TRUE(updated.ok());
  EXPECT_FALSE(updated->record.enabled);
  EXPECT_EQ(updated->record.exp, 1900000000);
  EXPECT_EQ(updated->record.updated, v1->record.created + 5);
  EXPECT_FALSE(updated->value.has_value());
  auto get = service_.Get(V("kv"), "db", "");
  EXPECT_EQ(get.status().code(), StatusCode::kPermissionDenied);
  SecretPatch clear;
  clear.exp = std::optional<int64_t>();
  clear.enabled = true;
  auto cleared = service_.Update(V("kv"), "db", v1->record.version, clear);
  EXPECT_FALSE(cleared->record.exp.has_value());
  EXPECT_EQ(*service_.Get(V("kv"), "db", "")->value, "one");
}

TEST_F(SecretServiceTest, SoftDeleteLifecycle) {
  ASSERT_TRUE(service_.Set(V("kv"), "db", Input("one")).ok());
  auto deleted = service_.Delete(V("kv"), "db");
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->deleted);
  EXPECT_EQ(deleted->scheduled_purge_date - deleted->deleted_date, 7 * 86400);
  EXPECT_EQ(service_.Get(V("kv"), "db", "").status().reason(), "SecretNotFound");
  EXPECT_EQ(service_.Set(V("kv"), "db", Input("x")).status().reason(), "Conflict");
  EXPECT_EQ(service_.ListDeleted(V("kv"), "", 25)->items.size(), 1u);
  ASSERT_TRUE(service_.Recover(V("kv"), "db").ok());
  EXPECT_EQ(*service_.Get(V("kv"), "db", "")->value, "one");
  EXPECT_EQ(service_.Purge(V("kv"), "db").reason(), "SecretNotFound");
  ASSERT_TRUE(service_.Delete(V("kv"), "db").ok());
  ASSERT_TRUE(service_.Purge(V("kv"), "db").ok());
  EXPECT_EQ(service_.GetDeleted(V("kv"), "db").status().code(), StatusCode::kNotFound);
}

TEST_F(SecretServiceTest, PurgeProtectionHoldsUntilRetentionEnds) {
  ASSERT_TRUE(service_.Set(V("protected"), "db", Input("one")).ok());
  auto deleted = service_.Delete(V("protected"), "db");
  EXPECT_EQ(deleted->recovery_level, "Recoverable");
  Status purge = service_.Purge(V("protected"), "db");
  EXPECT_EQ(purge.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(service_.GetDeleted(V("protected"), "db").ok());
  clock_.Advance(89 * 86400);
  EXPECT_EQ(*service_.PurgeExpired(), 0);
  clock_.Advance(86400);
  EXPECT_EQ(*service_.PurgeExpired(), 1);
  EXPECT_FALSE(service_.GetDeleted(V("protected"), "db").ok());
}

TEST_F(SecretServiceTest, BackupRestoresEveryVersionIntoAnotherVault) {
  auto v1 = service_.Set(V("kv"), "db", Input("one"));
  auto v2 = service_.Set(V("kv"), "db", Input("two"));
  auto blob = service_.Backup(V("kv"), "db");
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(blob->find("two"), std::string::npos);
  EXPECT_EQ(service_.Restore(V("kv"), *blob).status().reason(), "Conflict");
  auto restored = service_.Restore(V("protected"), *blob);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->record.version, v2->record.version);
  EXPECT_EQ(*service_.Get(V("protected"), "db", "")->value, "two");
  EXPECT_EQ(*service_.Get(V("protected"), "db", v1->record.version)->value, "one");
  std::string tampered = *blob;
  tampered[tampered.size() / 2] ^= 1;
  EXPECT_EQ(service_.Restore(V("kv"), tampered).status().reason(), "BadParameter");
}

TEST_F(SecretServiceTest, ListingPages) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(service_.Set(V("kv"), "s" + std::to_string(100 + i), Input("v")).ok());
  }
  auto p1 = service_.List(V("kv"), "", 25);
  ASSERT_EQ(p1->items.size(), 25u);
  EXPECT_FALSE(p1->items[0].value.has_value());
  auto p2 = service_.List(V("kv"), p1->next_cursor, 25);
  EXPECT_EQ(p2->items.size(), 5u);
  EXPECT_TRUE(p2->next_cursor.empty());
}

}  // namespace
}  // namespace coffer::keyvault

namespace coffer::keyvault {
namespace {

// A server whose database cannot be reached answers reads from what it read
// before, up to the stale limit, and fails with kUnavailable past it.
class StaleReadsTest : public ::testing::Test {
 protected:
  static constexpr int64_t kTtl = 5;
  static constexpr int64_t kStale = 60;

  StaleReadsTest()
      : clock_(1800000000),
        envelope_(Envelope::Create(crypto::RandomBytes(32)).value()),
        registry_(store_, *envelope_, clock_, kTtl, kStale),
        service_(store_, *envelope_, clock_, kTtl, kStale),
        strict_(store_, *envelope_, clock_, kTtl, 0) {
    storage::VaultRecord v;
    v.name = "kv";
    v.retention_days = 7;
    v.tags_json = "{}";
    v.wrapped_data_key = envelope_->NewWrappedDataKey("kv");
    EXPECT_TRUE(store_.CreateVault(v).ok());
  }

  SecretInput Input(const std::string& value) {
    SecretInput in;
    in.value = value;
    return in;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<Envelope> envelope_;
  VaultRegistry registry_;
  SecretService service_;
  SecretService strict_;  // no stale reads
};

TEST_F(StaleReadsTest, CachedReadsOutliveTheTtlUpToTheStaleLimit) {
  auto vault = registry_.Get("kv").value();
  auto first = service_.Set(vault, "db", Input("one"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(service_.Set(vault, "never-read", Input("x")).ok());
  ASSERT_EQ(*service_.Get(vault, "db", "")->value, "one");
  ASSERT_EQ(*service_.Get(vault, "db", first->record.version)->value, "one");
  ASSERT_EQ(*strict_.Get(vault, "db", "")->value, "one");

  store_.SetUnreachable(true);
  clock_.Advance(kTtl + 25);
  // Past the TTL: not fresh, so TryGetCached declines and Get asks the store.
  EXPECT_FALSE(service_.TryGetCached(vault, "db", "").has_value());
  auto stale_vault = registry_.Get("kv");
  ASSERT_TRUE(stale_vault.ok()) << stale_vault.status().ToString();
  EXPECT_EQ(*stale_vault, vault);
  auto got = service_.Get(vault, "db", "");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got->value, "one");
  EXPECT_EQ(*service_.Get(vault, "db", first->record.version)->value, "one");
  // What was never read, and a service that serves nothing stale, fail.
  EXPECT_EQ(service_.Get(vault, "never-read", "").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(strict_.Get(vault, "db", "").status().code(), StatusCode::kUnavailable);
  // A name this server never read is a 503, not a 404: the store cannot say.
  EXPECT_EQ(service_.Get(vault, "absent", "").status().code(), StatusCode::kUnavailable);

  // Past the stale limit every read fails.
  clock_.Advance(kStale);
  EXPECT_EQ(registry_.Get("kv").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(service_.Get(vault, "db", "").status().code(), StatusCode::kUnavailable);

  // Reachable again: fresh reads, and the cache is refilled.
  store_.SetUnreachable(false);
  EXPECT_EQ(*service_.Get(vault, "db", "")->value, "one");
}

TEST_F(StaleReadsTest, AnInvalidatedEntryIsNeverServedStale) {
  auto vault = registry_.Get("kv").value();
  ASSERT_TRUE(service_.Set(vault, "db", Input("one")).ok());
  ASSERT_TRUE(service_.Get(vault, "db", "").ok());
  // Another server changed it (the change feed said so), then the database went away.
  service_.Invalidate("kv", "db");
  store_.SetUnreachable(true);
  EXPECT_EQ(service_.Get(vault, "db", "").status().code(), StatusCode::kUnavailable);
  registry_.Invalidate("kv");
  EXPECT_EQ(registry_.Get("kv").status().code(), StatusCode::kUnavailable);
}

TEST_F(StaleReadsTest, ADisabledVersionStaysRefusedWhenServedStale) {
  auto vault = registry_.Get("kv").value();
  auto made = service_.Set(vault, "db", Input("one"));
  ASSERT_TRUE(made.ok());
  SecretPatch patch;
  patch.enabled = false;
  ASSERT_TRUE(service_.Update(vault, "db", made->record.version, patch).ok());
  EXPECT_EQ(service_.Get(vault, "db", "").status().code(), StatusCode::kPermissionDenied);
  store_.SetUnreachable(true);
  clock_.Advance(kTtl + 1);
  EXPECT_EQ(service_.Get(vault, "db", "").status().code(), StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace coffer::keyvault

namespace coffer::keyvault {
namespace {

// An expired entry is refreshed by one caller while the others are answered
// from it, so an expiry under load is one read of the store.
using RefreshTest = StaleReadsTest;

TEST_F(RefreshTest, OneCallerRefreshesAnExpiredSecretWhileTheOthersAreAnswered) {
  auto vault = registry_.Get("kv").value();
  ASSERT_TRUE(service_.Set(vault, "db", Input("one")).ok());
  ASSERT_TRUE(service_.Get(vault, "db", "").ok());
  EXPECT_TRUE(service_.TryGetCached(vault, "db", "").has_value());

  clock_.Advance(kTtl);
  EXPECT_FALSE(service_.TryGetCached(vault, "db", ""));  // the first refreshes
  for (int i = 0; i < 3; ++i) {
    auto again = service_.TryGetCached(vault, "db", "");
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*(*again)->value, "one");
  }
  // Nobody refreshed it within the grace: the next caller is asked to.
  clock_.Advance(2);
  EXPECT_FALSE(service_.TryGetCached(vault, "db", ""));
  ASSERT_TRUE(service_.Get(vault, "db", "").ok());
  EXPECT_TRUE(service_.TryGetCached(vault, "db", "").has_value());
  // A change still drops it at once.
  service_.Invalidate("kv", "db");
  EXPECT_FALSE(service_.TryGetCached(vault, "db", ""));
  EXPECT_FALSE(service_.TryGetCached(vault, "db", ""));
}

TEST_F(RefreshTest, AnUnchangedVaultKeepsItsEntryAndTheSecretsCachedUnderIt) {
  auto vault = registry_.Get("kv").value();
  ASSERT_TRUE(service_.Set(vault, "db", Input("one")).ok());
  ASSERT_TRUE(service_.Get(vault, "db", "").ok());
  clock_.Advance(kTtl);
  EXPECT_EQ(registry_.TryGetCached("kv"), nullptr);  // the first refreshes
  EXPECT_EQ(registry_.TryGetCached("kv"), vault);    // the others get the entry meanwhile
  auto refreshed = registry_.Get("kv");
  ASSERT_TRUE(refreshed.ok());
  EXPECT_EQ(*refreshed, vault);  // unchanged: the same open vault
  EXPECT_EQ(registry_.TryGetCached("kv"), vault);
  // So the secret read under it is still the vault's: one refresh, then answered.
  EXPECT_FALSE(service_.TryGetCached(vault, "db", ""));
  EXPECT_TRUE(service_.TryGetCached(vault, "db", "").has_value());

  // A vault that changed is opened again, and what was cached under the old
  // one is not answered under the new.
  ASSERT_TRUE(store_
                  .UpdateVault("kv",
                               [](storage::VaultRecord& v) -> Status {
                                 v.tags_json = R"({"changed":"yes"})";
                                 return OkStatus();
                               })
                  .ok());
  clock_.Advance(kTtl);
  auto changed = registry_.Get("kv");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(*changed, vault);
  EXPECT_FALSE(service_.TryGetCached(*changed, "db", ""));
  EXPECT_FALSE(service_.TryGetCached(*changed, "db", ""));
}

}  // namespace
}  // namespace coffer::keyvault
