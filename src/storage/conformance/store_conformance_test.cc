// One behavioural suite run against every Store backend.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/strings.h"
#include "common/testing/temp_dir.h"
#include "storage/memory/memory_store.h"
#include "storage/postgres/pg_store.h"
#include "storage/postgres/testing/pg_test_server.h"
#include "storage/sqlite/sqlite_db.h"
#include "storage/sqlite/sqlite_store.h"

namespace coffer::storage {
namespace {

using Factory = std::function<std::unique_ptr<Store>(const std::string& dir)>;

struct Backend {
  std::string name;
  Factory make;
  // Opens another handle on the store `make` made for `dir`, as a second
  // server sharing it would; null when the backend cannot be shared.
  Factory open_again;
};

std::string AsciiLowerForTest(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

// One real PostgreSQL for the binary, started by the first test that needs
// it and stopped at exit; each store gets a database of its own.
std::unique_ptr<Store> OpenPostgresStore(const std::string& conninfo) {
  auto store = postgres::PostgresStore::Open(conninfo);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(store).value() : nullptr;
}

// The database made for each test directory.
std::map<std::string, std::string>& PostgresDatabases() {
  static std::map<std::string, std::string> databases;
  return databases;
}

std::unique_ptr<Store> MakePostgresStore(const std::string& dir) {
  static std::unique_ptr<postgres::testing::PgTestServer> server = [] {
    auto started = postgres::testing::PgTestServer::Start();
    EXPECT_TRUE(started.ok()) << started.status().message();
    return started.ok() ? std::move(started).value() : nullptr;
  }();
  static std::atomic<int> databases{0};
  if (server == nullptr) {
    return nullptr;
  }
  auto conninfo = server->CreateDatabase("store_" + std::to_string(databases++));
  EXPECT_TRUE(conninfo.ok()) << conninfo.status().message();
  if (!conninfo.ok()) {
    return nullptr;
  }
  PostgresDatabases()[dir] = *conninfo;
  return OpenPostgresStore(*conninfo);
}

std::unique_ptr<Store> OpenSqliteStore(const std::string& dir) {
  auto s = SqliteStore::Open(dir + "/coffer.db");
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

void PrintTo(const Backend& b, std::ostream* os) {
  *os << b.name;
}

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto dir = test::TempDir::Create("coffer-store-");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(*dir);
    store_ = GetParam().make(dir_.path());
    ASSERT_NE(store_, nullptr);
    VaultRecord v;
    v.name = "Main";
    v.subscription_id = "sub";
    v.resource_group = "rg";
    v.location = "local";
    v.tenant_id = "t";
    v.tags_json = "{}";
    v.wrapped_data_key = std::string("\x00\x01key", 5);
    ASSERT_TRUE(store_->CreateVault(v).ok());
  }
  void TearDown() override { store_.reset(); }

  static SecretVersionRecord Version(const std::string& name, const std::string& version,
                                     int64_t t = 100) {
    SecretVersionRecord r;
    r.name = name;
    r.version = version;
    r.sealed_value = "sealed:" + version;
    r.content_type = "text/plain";
    r.tags_json = "{}";
    r.created = t;
    r.updated = t;
    return r;
  }

  test::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformance, MetaRoundTripsAndOverwrites) {
  EXPECT_FALSE(store_->GetMeta("k")->has_value());
  ASSERT_TRUE(store_->PutMeta("k", "1").ok());
  ASSERT_TRUE(store_->PutMeta("k", "2").ok());
  EXPECT_EQ(**store_->GetMeta("k"), "2");
}

TEST_P(StoreConformance, UpdateMetaIsACompareAndSet) {
  auto first = store_->UpdateMeta("owner", [](const std::optional<std::string>& current) {
    EXPECT_FALSE(current.has_value());
    return StatusOr<std::string>(current.value_or("a"));
  });
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, "a");
  // A second claimant finds the first one's value and keeps it.
  auto second = store_->UpdateMeta("owner", [](const std::optional<std::string>& current) {
    return StatusOr<std::string>(current.value_or("b"));
  });
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "a");
  // A failing function writes nothing.
  auto refused = store_->UpdateMeta("owner", [](const std::optional<std::string>&) {
    return StatusOr<std::string>(AbortedError("no"));
  });
  EXPECT_EQ(refused.status().code(), StatusCode::kAborted);
  EXPECT_EQ(**store_->GetMeta("owner"), "a");
}

TEST_P(StoreConformance, ConcurrentMetaUpdatesLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < kEach; ++i) {
        auto updated = store_->UpdateMeta("n", [](const std::optional<std::string>& current) {
          return StatusOr<std::string>(std::to_string(current ? std::stoi(*current) + 1 : 1));
        });
        EXPECT_TRUE(updated.ok()) << updated.status().ToString();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(**store_->GetMeta("n"), std::to_string(kThreads * kEach));
}

TEST_P(StoreConformance, VaultsAreCaseInsensitiveAndUnique) {
  auto v = store_->GetVault("MAIN");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->name, "Main");
  EXPECT_EQ(v->wrapped_data_key, std::string("\x00\x01key", 5));
  EXPECT_EQ(v->version, 1);
  VaultRecord dup = *v;
  dup.name = "main";
  EXPECT_EQ(store_->CreateVault(dup).code(), StatusCode::kAlreadyExists);
  auto updated = store_->UpdateVault("mAIN", [](VaultRecord& r) {
    r.sku = "premium";
    r.updated = 5;
    r.name = "renamed";  // not the mutation's to change
    return OkStatus();
  });
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(store_->GetVault("main")->sku, "premium");
  EXPECT_EQ(store_->GetVault("main")->name, "Main");
  EXPECT_EQ(store_->GetVault("main")->version, 2);
  EXPECT_EQ(store_->ListVaults()->size(), 1u);
  EXPECT_EQ(store_->GetVault("other").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformance, PurgingAVaultRemovesItsSecrets) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1")).ok());
  ASSERT_TRUE(store_->PurgeVault("main").ok());
  EXPECT_EQ(store_->PurgeVault("main").code(), StatusCode::kNotFound);
  VaultRecord v;
  v.name = "main";
  ASSERT_TRUE(store_->CreateVault(v).ok());
  EXPECT_EQ(store_->GetSecret("main", "a", "", false).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformance, SoftDeletedVaultKeepsItsNameAndSecrets) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1")).ok());
  ASSERT_TRUE(store_->MarkVaultDeleted("main", 10, 20).ok());
  EXPECT_EQ(store_->MarkVaultDeleted("main", 10, 20).code(), StatusCode::kNotFound);
  auto v = store_->GetVault("main");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->deleted());
  EXPECT_EQ(v->scheduled_purge_date, 20);
  VaultRecord again = *v;
  EXPECT_EQ(store_->CreateVault(again).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->UpdateVault("main", [](VaultRecord&) { return OkStatus(); }).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(*store_->PurgeExpiredVaults(19), 0);
  ASSERT_TRUE(store_->RecoverVault("main").ok());
  EXPECT_EQ(store_->RecoverVault("main").code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->GetVault("main")->deleted());
  EXPECT_TRUE(store_->GetSecret("main", "a", "", false).ok());
  ASSERT_TRUE(store_->MarkVaultDeleted("main", 10, 20).ok());
  EXPECT_EQ(*store_->PurgeExpiredVaults(20), 1);
  EXPECT_EQ(store_->GetVault("main").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformance, LatestVersionFollowsTheLastWrite) {
  EXPECT_EQ(*store_->AddSecretVersion("main", Version("Db-Pass", "aa")), "Db-Pass");
  EXPECT_EQ(*store_->AddSecretVersion("main", Version("db-pass", "bb")), "Db-Pass");
  auto latest = store_->GetSecret("main", "DB-PASS", "", false);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version.version, "bb");
  EXPECT_EQ(latest->version.name, "Db-Pass");  // case of first creation
  EXPECT_EQ(latest->version.sealed_value, "sealed:bb");
  EXPECT_EQ(store_->GetSecret("main", "db-pass", "aa", false)->version.sealed_value, "sealed:aa");
  EXPECT_EQ(store_->GetSecret("main", "db-pass", "cc", false).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->AddSecretVersion("main", Version("db-pass", "bb")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->AddSecretVersion("nope", Version("x", "aa")).status().code(),
            StatusCode::kNotFound);
}

TEST_P(StoreConformance, UpdateChangesAttributesOnly) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1")).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v2")).ok());
  auto updated = store_->UpdateSecretVersion("main", "A", "v1", [](SecretVersionRecord& rec) {
    rec.sealed_value = "must-not-change";
    rec.version = "must-not-change";
    rec.created = 1;
    rec.enabled = false;
    rec.exp = 999;
    rec.tags_json = R"({"k":"v"})";
    rec.updated = 200;
    return OkStatus();
  });
  ASSERT_TRUE(updated.ok()) << updated.status().message();
  EXPECT_EQ(updated->version.version, "v1");
  EXPECT_EQ(updated->version.name, "a");
  EXPECT_FALSE(updated->version.enabled);
  auto got = store_->GetSecret("main", "a", "v1", false);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->version.enabled);
  EXPECT_EQ(got->version.exp, 999);
  EXPECT_FALSE(got->version.nbf.has_value());
  EXPECT_EQ(got->version.tags_json, R"({"k":"v"})");
  EXPECT_EQ(got->version.sealed_value, "sealed:v1");
  EXPECT_EQ(got->version.created, Version("a", "v1").created);
  EXPECT_EQ(got->version.updated, 200);
  EXPECT_TRUE(store_->GetSecret("main", "a", "v2", false)->version.enabled);
  // An empty version is the latest.
  auto latest = store_->UpdateSecretVersion("main", "a", "", [](SecretVersionRecord& rec) {
    rec.content_type = "application/json";
    return OkStatus();
  });
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version.version, "v2");
  EXPECT_EQ(store_->GetSecret("main", "a", "v2", false)->version.content_type, "application/json");
  auto unchanged = [](SecretVersionRecord&) { return OkStatus(); };
  EXPECT_EQ(store_->UpdateSecretVersion("main", "a", "zz", unchanged).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateSecretVersion("main", "b", "", unchanged).status().code(),
            StatusCode::kNotFound);
}

TEST_P(StoreConformance, AFailedVersionMutationWritesNothing) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1")).ok());
  size_t before = store_->ListChanges(0, 1000)->size();
  auto refused = store_->UpdateSecretVersion("main", "a", "v1", [](SecretVersionRecord& rec) {
    rec.enabled = false;
    return InvalidArgumentError("no");
  });
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->GetSecret("main", "a", "v1", false)->version.enabled);
  EXPECT_EQ(store_->ListChanges(0, 1000)->size(), before);
  // A deleted object is not changed.
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "a", 10, 20).ok());
  auto deleted = store_->UpdateSecretVersion("main", "a", "", [](SecretVersionRecord& rec) {
    rec.enabled = false;
    return OkStatus();
  });
  EXPECT_EQ(deleted.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetSecret("main", "a", "v1", true)->version.enabled);
}

// Two writers that each count in an attribute of their own on the same
// version both reach their count: each mutation sees the other's committed
// change, so neither writes back a stale copy of the other's attribute.
TEST_P(StoreConformance, ConcurrentVersionUpdatesLoseNothing) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1")).ok());
  constexpr int kRounds = 40;
  std::atomic<int> failures{0};
  auto count_in_content_type = [](SecretVersionRecord& rec) {
    // "text/plain" at first: atoi reads 0.
    rec.content_type = std::to_string(std::atoi(rec.content_type.c_str()) + 1);
    return OkStatus();
  };
  auto count_in_nbf = [](SecretVersionRecord& rec) {
    rec.nbf = rec.nbf.value_or(0) + 1;
    return OkStatus();
  };
  auto writer = [&](const Mutation<SecretVersionRecord>& mutate) {
    for (int i = 0; i < kRounds; ++i) {
      if (!store_->UpdateSecretVersion("main", "a", "v1", mutate).ok()) {
        ++failures;
      }
    }
  };
  std::thread a(writer, count_in_content_type);
  std::thread b(writer, count_in_nbf);
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  auto got = store_->GetSecret("main", "a", "v1", false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version.content_type, std::to_string(kRounds));
  EXPECT_EQ(got->version.nbf, kRounds);
}

TEST_P(StoreConformance, ListingPagesInNameOrderWithoutValues) {
  for (int i = 0; i < 25; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "s%02d", 24 - i);
    ASSERT_TRUE(store_->AddSecretVersion("main", Version(name, "v" + std::to_string(i))).ok());
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = store_->ListSecrets("main", false, cursor, 10);
    ASSERT_TRUE(page.ok());
    for (const auto& item : page->items) {
      seen.push_back(item.version.name);
      EXPECT_TRUE(item.version.sealed_value.empty());
    }
    cursor = page->next_cursor;
    ++pages;
  } while (!cursor.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "s00");
  EXPECT_EQ(seen.back(), "s24");
  // An exactly full last page reports no further cursor.
  auto exact = store_->ListSecrets("main", false, "", 25);
  EXPECT_TRUE(exact->next_cursor.empty());
}

TEST_P(StoreConformance, VersionListingPages) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v" + std::to_string(i))).ok());
  }
  auto p1 = store_->ListSecretVersions("main", "A", "", 3);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->items.size(), 3u);
  ASSERT_FALSE(p1->next_cursor.empty());
  auto p2 = store_->ListSecretVersions("main", "a", p1->next_cursor, 3);
  EXPECT_EQ(p2->items.size(), 2u);
  EXPECT_TRUE(p2->next_cursor.empty());
  EXPECT_EQ(store_->ListSecretVersions("main", "b", "", 3).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformance, SoftDeleteRecoverAndPurge) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1")).ok());
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "a", 10, 20).ok());
  EXPECT_EQ(store_->MarkSecretDeleted("main", "a", 10, 20).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetSecret("main", "a", "", false).status().code(), StatusCode::kNotFound);
  auto deleted = store_->GetSecret("main", "a", "", true);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->deleted);
  EXPECT_EQ(deleted->scheduled_purge_date, 20);
  EXPECT_EQ(store_->AddSecretVersion("main", Version("a", "v2")).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ListSecrets("main", false, "", 10)->items.size(), 0u);
  EXPECT_EQ(store_->ListSecrets("main", true, "", 10)->items.size(), 1u);
  ASSERT_TRUE(store_->RecoverSecret("main", "a").ok());
  EXPECT_EQ(store_->RecoverSecret("main", "a").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->PurgeSecret("main", "a").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "a", 10, 20).ok());
  ASSERT_TRUE(store_->PurgeSecret("main", "a").ok());
  EXPECT_EQ(store_->GetSecret("main", "a", "", true).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v3")).ok());
}

TEST_P(StoreConformance, PurgeExpiredTakesOnlyDueSecrets) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1")).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("b", "v1")).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("c", "v1")).ok());
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "a", 1, 50).ok());
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "b", 1, 150).ok());
  EXPECT_EQ(*store_->PurgeExpiredObjects(100), 1);
  EXPECT_EQ(store_->GetSecret("main", "a", "", true).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetSecret("main", "b", "", true).ok());
  EXPECT_TRUE(store_->GetSecret("main", "c", "", false).ok());
}

TEST_P(StoreConformance, ShiftTimeMovesOneVaultsTimesIntoThePastAtomically) {
  VaultRecord other;
  other.name = "Other";
  other.subscription_id = "sub";
  other.resource_group = "rg";
  other.location = "local";
  other.tenant_id = "t";
  other.tags_json = "{}";
  other.wrapped_data_key = "k";
  ASSERT_TRUE(store_->CreateVault(other).ok());
  SecretVersionRecord a = Version("a", "v1", 1000);
  a.nbf = 1100;
  a.exp = 5000;
  ASSERT_TRUE(store_->AddSecretVersion("main", a).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v2", 1200)).ok());
  ASSERT_TRUE(store_->AddObjectVersion(ObjectKind::kKey, "main", Version("k", "v1", 1000)).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("gone", "v1", 1000)).ok());
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "gone", 2000, 9000).ok());
  ASSERT_TRUE(store_->AddSecretVersion("other", Version("a", "v1", 1000)).ok());
  const int64_t before = store_->GetChangeBounds()->newest;

  auto moved = store_->ShiftTime("MAIN", 600);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 4);
  auto v1 = store_->GetSecret("main", "a", "v1", false);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->version.created, 400);
  EXPECT_EQ(v1->version.updated, 400);
  EXPECT_EQ(v1->version.nbf, 500);
  EXPECT_EQ(v1->version.exp, 4400);
  EXPECT_EQ(store_->GetSecret("main", "a", "v2", false)->version.nbf, std::nullopt);
  EXPECT_EQ(store_->GetObject(ObjectKind::kKey, "main", "k", "", false)->version.created, 400);
  auto gone = store_->GetSecret("main", "gone", "", true);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->deleted_date, 1400);
  EXPECT_EQ(gone->scheduled_purge_date, 8400);
  EXPECT_EQ(store_->GetSecret("other", "a", "", false)->version.created, 1000);
  // Each moved version is an update in the feed.
  auto changes = store_->ListChanges(before, 100);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->size(), 4u);
  for (const auto& c : *changes) {
    EXPECT_TRUE(c.type == "SecretUpdated" || c.type == "KeyUpdated") << c.type;
  }
  // What is due after the shift is purged by the ordinary rule.
  EXPECT_EQ(*store_->PurgeExpiredObjects(8500), 1);
  EXPECT_EQ(**store_->GetMeta(kTimeShiftMetaKey), R"({"main":600})");

  // Every vault, a deleted one too, and the totals add up.
  ASSERT_TRUE(store_->MarkVaultDeleted("other", 3000, 7000).ok());
  ASSERT_TRUE(store_->ShiftTime("", 100).ok());
  EXPECT_EQ(store_->GetSecret("main", "a", "v1", false)->version.created, 300);
  auto deleted_vault = store_->GetVault("other");
  ASSERT_TRUE(deleted_vault.ok());
  EXPECT_EQ(deleted_vault->deleted_date, 2900);
  EXPECT_EQ(deleted_vault->scheduled_purge_date, 6900);
  EXPECT_EQ(**store_->GetMeta(kTimeShiftMetaKey), R"({"main":700,"other":100})");
  // A purged vault's total goes with it: a new vault of its name starts at 0.
  EXPECT_EQ(*store_->PurgeExpiredVaults(7000), 1);
  EXPECT_EQ(**store_->GetMeta(kTimeShiftMetaKey), R"({"main":700})");
  ASSERT_TRUE(store_->CreateVault(other).ok());
  ASSERT_TRUE(store_->ShiftTime("other", 5).ok());
  ASSERT_TRUE(store_->MarkVaultDeleted("other", 3000, 7000).ok());
  ASSERT_TRUE(store_->PurgeVault("other").ok());
  EXPECT_EQ(**store_->GetMeta(kTimeShiftMetaKey), R"({"main":700})");
}

TEST_P(StoreConformance, ShiftTimeRefusesWithoutMovingAnything) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1", 1000)).ok());
  EXPECT_EQ(store_->ShiftTime("nowhere", 10).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ShiftTime("main", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ShiftTime("main", -5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ShiftTime("main", kMaxTimeShiftSeconds + 1).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->ShiftTime("main", kMaxTimeShiftSeconds - 10).ok());
  // A total past the limit: refused whole.
  EXPECT_EQ(store_->ShiftTime("main", 11).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetSecret("main", "a", "", false)->version.created,
            1000 - (kMaxTimeShiftSeconds - 10));
}

TEST_P(StoreConformance, BackupVersionsRestoreWithTheSameLatest) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "zz")).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "aa")).ok());
  auto all = store_->GetAllSecretVersions("main", "a");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(all->back().version, "aa");
  EXPECT_EQ(store_->RestoreSecret("main", *all).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "a", 1, 2).ok());
  EXPECT_EQ(store_->RestoreSecret("main", *all).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->PurgeSecret("main", "a").ok());
  ASSERT_TRUE(store_->RestoreSecret("main", *all).ok());
  EXPECT_EQ(store_->GetSecret("main", "a", "", false)->version.version, "aa");
  EXPECT_EQ(store_->GetSecret("main", "a", "zz", false)->version.sealed_value, "sealed:zz");
}

TEST_P(StoreConformance, PrincipalsAndClientSecrets) {
  PrincipalRecord p{"oid-1", "app-1", "t", "ci", "ServicePrincipal", 5, "", "", "{}"};
  ASSERT_TRUE(store_->CreatePrincipal(p).ok());
  PrincipalRecord same_app{"oid-2", "app-1", "t", "x", "ServicePrincipal", 6, "", "", "{}"};
  EXPECT_EQ(store_->CreatePrincipal(same_app).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetPrincipalByAppId("app-1")->object_id, "oid-1");
  PrincipalRecord mi{
      "oid-9",  "app-9",       "t", "mi", "UserAssignedIdentity", 7, "/subscriptions/s/x",
      "westus", R"({"a":"b"})"};
  ASSERT_TRUE(store_->CreatePrincipal(mi).ok());
  auto change = [](PrincipalRecord& r) {
    r.tags_json = R"({"c":"d"})";
    r.location = "eastus";
    r.resource_id = "/elsewhere";  // not the mutation's to change
    return OkStatus();
  };
  ASSERT_TRUE(store_->UpdatePrincipal("oid-9", change).ok());
  auto got_mi = store_->GetPrincipal("oid-9");
  EXPECT_EQ(got_mi->resource_id, "/subscriptions/s/x");
  EXPECT_EQ(got_mi->location, "eastus");
  EXPECT_EQ(got_mi->tags_json, R"({"c":"d"})");
  EXPECT_EQ(got_mi->version, 2);
  EXPECT_EQ(store_->UpdatePrincipal("missing", change).status().code(), StatusCode::kNotFound);
  ClientSecretRecord c{"k1", "oid-1", "salt", std::string("h\0sh", 4), 1000, "abc", 5, 99};
  ASSERT_TRUE(store_->AddClientSecret(c).ok());
  c.principal_object_id = "missing";
  EXPECT_EQ(store_->AddClientSecret(c).code(), StatusCode::kNotFound);
  auto secrets = store_->ListClientSecrets("oid-1");
  ASSERT_EQ(secrets->size(), 1u);
  EXPECT_EQ((*secrets)[0].hash, std::string("h\0sh", 4));
  EXPECT_EQ(store_->RemoveClientSecret("oid-1", "nope").code(), StatusCode::kNotFound);
  ClientSecretRecord second{"k2", "oid-1", "s", "h", 1000, "def", 6, 99};
  ASSERT_TRUE(store_->AddClientSecret(second).ok());
  ASSERT_TRUE(store_->RemoveClientSecret("oid-1", "k1").ok());
  ASSERT_EQ(store_->ListClientSecrets("oid-1")->size(), 1u);
  EXPECT_EQ((*store_->ListClientSecrets("oid-1"))[0].key_id, "k2");
  ClientCertificateRecord cert{"c1", "oid-1", std::string("d\0er", 4), "sha1", "sha256", 1, 2, 3};
  ASSERT_TRUE(store_->AddClientCertificate(cert).ok());
  cert.key_id = "c2";
  EXPECT_EQ(store_->AddClientCertificate(cert).code(), StatusCode::kAlreadyExists);
  cert.principal_object_id = "missing";
  EXPECT_EQ(store_->AddClientCertificate(cert).code(), StatusCode::kNotFound);
  auto certs = store_->ListClientCertificates("oid-1");
  ASSERT_EQ(certs->size(), 1u);
  EXPECT_EQ((*certs)[0].certificate_der, std::string("d\0er", 4));
  EXPECT_EQ((*certs)[0].not_after, 3);
  EXPECT_EQ(store_->RemoveClientCertificate("oid-1", "c2").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeletePrincipal("oid-1").ok());
  EXPECT_TRUE(store_->ListClientCertificates("oid-1")->empty());
  EXPECT_EQ(store_->GetPrincipal("oid-1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListClientSecrets("oid-1")->empty());
}

TEST_P(StoreConformance, AnAssertionIdIsAcceptedOnceUntilItExpires) {
  EXPECT_TRUE(*store_->RecordAssertionId("app", "j1", 100, 10));
  EXPECT_FALSE(*store_->RecordAssertionId("app", "j1", 100, 20));
  EXPECT_TRUE(*store_->RecordAssertionId("other-app", "j1", 100, 20));
  EXPECT_TRUE(*store_->RecordAssertionId("app", "j2", 50, 20));
  // Once expired it is forgotten (an expired assertion is refused anyway).
  EXPECT_TRUE(*store_->RecordAssertionId("app", "j1", 300, 100));
  EXPECT_FALSE(*store_->RecordAssertionId("app", "j1", 300, 299));
}

TEST_P(StoreConformance, OneUserAssignedIdentityPerResourceId) {
  PrincipalRecord a{"oid-a", "app-a", "t", "id", "UserAssignedIdentity", 1, "/rg/X/id", "l", "{}"};
  ASSERT_TRUE(store_->CreatePrincipal(a).ok());
  PrincipalRecord b{"oid-b", "app-b", "t", "id", "UserAssignedIdentity", 2, "/RG/x/ID", "l", "{}"};
  EXPECT_EQ(store_->CreatePrincipal(b).code(), StatusCode::kAlreadyExists);
  // A system-assigned identity carries its workload's id; it is not counted.
  PrincipalRecord c{"oid-c", "app-c", "t", "id", "SystemAssignedIdentity", 3, "/rg/X/id", "", "{}"};
  EXPECT_TRUE(store_->CreatePrincipal(c).ok());
}

TEST_P(StoreConformance, FederatedCredentialsBelongToTheirIdentity) {
  PrincipalRecord mi{"oid-m", "app-m", "t", "mi", "UserAssignedIdentity", 1, "/x", "l", "{}"};
  ASSERT_TRUE(store_->CreatePrincipal(mi).ok());
  FederatedCredentialRecord fic{
      "oid-m", "Kube", "https://issuer", "system:sa:ns:app", {"api://AzureADTokenExchange"}, 3};
  auto put = [&](const std::string& owner, const FederatedCredentialRecord& c) {
    return store_
        ->PutFederatedCredential(
            owner, c.name, [&](const auto&) -> StatusOr<FederatedCredentialRecord> { return c; })
        .status();
  };
  ASSERT_TRUE(put("oid-m", fic).ok());
  fic.subject = "system:sa:ns:other";
  fic.name = "kube";  // same name, other case: replaces
  size_t seen = 99;
  ASSERT_TRUE(store_
                  ->PutFederatedCredential(
                      "oid-m", "KUBE",
                      [&](const auto& existing) -> StatusOr<FederatedCredentialRecord> {
                        seen = existing.size();
                        return fic;
                      })
                  .ok());
  EXPECT_EQ(seen, 1u);
  auto list = store_->ListFederatedCredentials("oid-m");
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].subject, "system:sa:ns:other");
  EXPECT_EQ((*list)[0].audiences, std::vector<std::string>{"api://AzureADTokenExchange"});
  EXPECT_EQ(put("missing", fic).code(), StatusCode::kNotFound);
  // A refusal from the function writes nothing.
  EXPECT_EQ(store_
                ->PutFederatedCredential("oid-m", "third",
                                         [](const auto&) -> StatusOr<FederatedCredentialRecord> {
                                           return InvalidArgumentError("no");
                                         })
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListFederatedCredentials("oid-m")->size(), 1u);
  EXPECT_EQ(store_->DeleteFederatedCredential("oid-m", "nope").code(), StatusCode::kNotFound);
  FederatedCredentialRecord other{"oid-m", "second", "https://i2", "s", {"a", "b"}, 4};
  ASSERT_TRUE(put("oid-m", other).ok());
  ASSERT_TRUE(store_->DeleteFederatedCredential("oid-m", "KUBE").ok());
  ASSERT_EQ(store_->ListFederatedCredentials("oid-m")->size(), 1u);
  ASSERT_TRUE(store_->DeletePrincipal("oid-m").ok());
  EXPECT_TRUE(store_->ListFederatedCredentials("oid-m")->empty());
}

TEST_P(StoreConformance, WorkloadsOwnTheirSystemAssignedIdentity) {
  PrincipalRecord uai{"oid-u", "app-u", "t", "u", "UserAssignedIdentity", 1, "/uai", "l", "{}"};
  ASSERT_TRUE(store_->CreatePrincipal(uai).ok());
  const std::string id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/App";
  WorkloadRecord w;
  w.uid = "w1";
  w.type = "Microsoft.Web/sites";
  w.location = "local";
  w.system_principal_id = "oid-s";
  w.user_assigned = {"/uai"};
  w.created = 5;
  PrincipalRecord sys{"oid-s", "app-s", "t", "App", "SystemAssignedIdentity", 5, id, "", "{}"};
  // `write` is what the function returns; `seen` what it was given.
  std::optional<WorkloadWrite> seen;
  auto put = [&](const std::string& resource_id, WorkloadWrite write) {
    return store_->PutWorkload(
        resource_id, [&](const std::optional<WorkloadWrite>& current) -> StatusOr<WorkloadWrite> {
          seen = current;
          return write;
        });
  };
  auto made = put(id, {w, sys, ""});
  ASSERT_TRUE(made.ok());
  EXPECT_FALSE(seen.has_value());
  EXPECT_EQ(made->version, 1);
  auto got = store_->GetWorkload("w1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->resource_id, id);
  EXPECT_EQ(got->user_assigned, std::vector<std::string>{"/uai"});
  EXPECT_EQ(got->header_generation, 1);
  EXPECT_EQ(store_->GetPrincipal("oid-s")->kind, "SystemAssignedIdentity");

  // The same resource id in another case is the same workload: its uid and
  // id are kept.
  WorkloadRecord again = w;
  again.uid = "w2";
  again.location = "elsewhere";
  auto changed = put(AsciiLowerForTest(id), {again, std::nullopt, ""});
  ASSERT_TRUE(changed.ok());
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->workload.uid, "w1");
  EXPECT_EQ(changed->uid, "w1");
  EXPECT_EQ(changed->resource_id, id);
  EXPECT_EQ(changed->version, 2);
  EXPECT_EQ(store_->ListWorkloads()->size(), 1u);
  // A failed put changes nothing: the principal to drop is still there.
  WorkloadRecord bad = w;
  bad.system_principal_id = "oid-x";
  PrincipalRecord taken{"oid-x", "app-u", "t", "x", "SystemAssignedIdentity", 6, "", "", "{}"};
  EXPECT_EQ(put(id, {bad, taken, "oid-s"}).status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(store_->GetPrincipal("oid-s").ok());
  EXPECT_EQ(store_->GetWorkload("w1")->system_principal_id, "oid-s");
  EXPECT_EQ(store_->GetWorkload("w1")->version, 2);
  // So does a refusal from the function.
  EXPECT_EQ(store_
                ->PutWorkload(id,
                              [](const auto&) -> StatusOr<WorkloadWrite> {
                                return PermissionDeniedError("no");
                              })
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->GetWorkload("w1")->version, 2);

  // Dropping the system-assigned identity deletes its principal.
  w.system_principal_id = "";
  w.header_generation = 2;
  ASSERT_TRUE(put(id, {w, std::nullopt, "oid-s"}).ok());
  EXPECT_EQ(store_->GetPrincipal("oid-s").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetWorkload("w1")->header_generation, 2);
  EXPECT_EQ(store_->ListWorkloads()->size(), 1u);

  // Deleting the workload deletes a system-assigned identity, never a
  // user-assigned one.
  w.system_principal_id = "oid-s2";
  PrincipalRecord sys2{"oid-s2", "app-s2", "t", "App", "SystemAssignedIdentity", 7, "", "", "{}"};
  ASSERT_TRUE(put(id, {w, sys2, ""}).ok());
  ASSERT_TRUE(store_->DeleteWorkload("w1").ok());
  EXPECT_EQ(store_->GetPrincipal("oid-s2").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetPrincipal("oid-u").ok());
  EXPECT_EQ(store_->GetWorkload("w1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteWorkload("w1").code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListWorkloads()->empty());
}

TEST_P(StoreConformance, CustomRolesHaveUniqueNamesAndCannotBeDeletedWhileAssigned) {
  auto put = [&](const RoleDefinitionRecord& r) {
    return store_->PutRoleDefinition(
        r.id, [&](const auto&) -> StatusOr<RoleDefinitionRecord> { return r; });
  };
  RoleDefinitionRecord role{"r1", "Secret Reader", R"({"roleName":"Secret Reader"})", 5, 5};
  ASSERT_TRUE(put(role).ok());
  RoleDefinitionRecord clash{"r2", "SECRET reader", "{}", 6, 6};
  Status s = put(clash).status();
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.reason(), "RoleDefinitionWithSameNameExists");
  role.definition_json = R"({"roleName":"Secret Reader","description":"x"})";
  role.updated = 9;
  role.created = 1;  // kept from creation
  std::optional<RoleDefinitionRecord> seen;
  auto replaced = store_->PutRoleDefinition(
      "r1",
      [&](const std::optional<RoleDefinitionRecord>& current) -> StatusOr<RoleDefinitionRecord> {
        seen = current;
        return role;
      });
  ASSERT_TRUE(replaced.ok());  // replace by id keeps one row
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->definition_json, R"({"roleName":"Secret Reader"})");
  EXPECT_EQ(replaced->version, 2);
  auto roles = store_->ListRoleDefinitions();
  ASSERT_EQ(roles->size(), 1u);
  EXPECT_EQ((*roles)[0].updated, 9);
  EXPECT_EQ((*roles)[0].created, 5);
  EXPECT_EQ((*roles)[0].version, 2);
  EXPECT_EQ((*roles)[0].definition_json, role.definition_json);

  RoleAssignmentRecord a{
      "a1", "/subscriptions/sub/resourceGroups/rg", "r1", "p1", "ServicePrincipal", "", "admin", 7,
      7};
  ASSERT_TRUE(store_->CreateRoleAssignment(a).ok());
  auto any = [](const RoleDefinitionRecord&) { return OkStatus(); };
  s = store_->DeleteRoleDefinition("r1", any);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.reason(), "RoleDefinitionHasAssignments");
  ASSERT_TRUE(store_->DeleteRoleAssignment("a1").ok());
  EXPECT_EQ(store_->DeleteRoleAssignment("a1").code(), StatusCode::kNotFound);
  // The check sees the stored definition and may refuse.
  std::string checked;
  s = store_->DeleteRoleDefinition("r1", [&](const RoleDefinitionRecord& r) {
    checked = r.definition_json;
    return PermissionDeniedError("no");
  });
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(checked, role.definition_json);
  EXPECT_EQ(store_->ListRoleDefinitions()->size(), 1u);
  ASSERT_TRUE(store_->DeleteRoleDefinition("r1", any).ok());
  EXPECT_EQ(store_->DeleteRoleDefinition("r1", any).code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListRoleDefinitions()->empty());
}

TEST_P(StoreConformance, AccessPoliciesRoundTripAsWritten) {
  AccessPolicyRecord a;
  a.tenant_id = "T";
  a.object_id = "Oid-1";
  a.secrets = std::vector<std::string>{"Get", "list"};
  a.keys = std::vector<std::string>{};
  AccessPolicyRecord b;
  b.tenant_id = "t";
  b.object_id = "oid-2";
  b.application_id = "app";
  b.certificates = std::vector<std::string>{"all"};
  ASSERT_TRUE(store_
                  ->UpdateVault("main",
                                [&](VaultRecord& v) {
                                  v.access_policies = {a, b};
                                  v.rbac_authorization = false;
                                  v.retention_days = 7;
                                  v.purge_protection = true;
                                  return OkStatus();
                                })
                  .ok());
  auto got = store_->GetVault("main");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->access_policies.size(), 2u);
  EXPECT_EQ(got->access_policies[0], a);
  EXPECT_EQ(got->access_policies[1], b);
  EXPECT_FALSE(got->access_policies[0].storage.has_value());
  ASSERT_TRUE(got->access_policies[0].keys.has_value());
  EXPECT_TRUE(got->access_policies[0].keys->empty());
  EXPECT_EQ(got->retention_days, 7);
  EXPECT_TRUE(got->purge_protection);
  EXPECT_EQ(store_->ListVaults()->front().access_policies, got->access_policies);
  // Removing one keeps the other, in order.
  ASSERT_TRUE(store_
                  ->UpdateVault("main",
                                [&](VaultRecord& v) {
                                  v.access_policies.erase(v.access_policies.begin());
                                  return OkStatus();
                                })
                  .ok());
  ASSERT_EQ(store_->GetVault("main")->access_policies.size(), 1u);
  EXPECT_EQ(store_->GetVault("main")->access_policies[0], b);
  // A refusal writes nothing.
  EXPECT_EQ(store_
                ->UpdateVault("main",
                              [&](VaultRecord& v) {
                                v.access_policies.clear();
                                return InvalidArgumentError("no");
                              })
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetVault("main")->access_policies.size(), 1u);
  ASSERT_TRUE(store_->MarkVaultDeleted("main", 10, 20).ok());
  ASSERT_TRUE(store_->PurgeVault("main").ok());
  VaultRecord fresh;
  fresh.name = "main";
  ASSERT_TRUE(store_->CreateVault(fresh).ok());
  EXPECT_TRUE(store_->GetVault("main")->access_policies.empty());
}

TEST_P(StoreConformance, ConcurrentMutationsOfOneRecordAllLand) {
  // Read-modify-write under contention: each thread adds its own entry (and
  // its own tag) to the same vault; none may be lost.
  constexpr int kThreads = 24;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->UpdateVault("main", [t](VaultRecord& v) {
        AccessPolicyRecord p;
        p.tenant_id = "t";
        p.object_id = "oid-" + std::to_string(t);
        p.secrets = std::vector<std::string>{"get"};
        v.access_policies.push_back(p);
        v.tags_json = v.tags_json.substr(0, v.tags_json.size() - 1) +
                      (v.tags_json == "{}" ? "" : ",") + "\"k" + std::to_string(t) + "\":\"v\"}";
        return OkStatus();
      });
      if (!r.ok()) {
        failures++;
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0);
  auto v = store_->GetVault("main");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->access_policies.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(v->version, 1 + kThreads);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_NE(v->tags_json.find("\"k" + std::to_string(t) + "\""), std::string::npos) << t;
  }
}

PrincipalRecord UserPrincipal(const std::string& oid, const std::string& name) {
  return {oid, "user:" + oid, "t", name, "User", 10, "", "", "{}"};
}

UserRecord User(const std::string& upn) {
  UserRecord u;
  u.user_principal_name = upn;
  u.mail_nickname = upn.substr(0, upn.find('@'));
  u.given_name = "Ada";
  u.surname = "Lovelace";
  u.password_hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
  u.password_changed = 10;
  u.created = 10;
  return u;
}

TEST_P(StoreConformance, AUserIsAPrincipalAndARecordWrittenTogether) {
  ASSERT_TRUE(store_->CreateUser(UserPrincipal("u1", "Ada"), User("Ada@Example.test")).ok());
  auto user = store_->GetUser("u1");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->object_id, "u1");
  EXPECT_EQ(user->user_principal_name, "Ada@Example.test");
  EXPECT_EQ(user->mail_nickname, "Ada");
  EXPECT_EQ(user->password_hash, User("x").password_hash);
  EXPECT_TRUE(user->account_enabled);
  EXPECT_EQ(user->version, 1);
  EXPECT_EQ(user->display_name, "Ada") << "the principal's name";
  EXPECT_EQ(store_->GetUserByName("ada@EXAMPLE.test")->object_id, "u1");
  EXPECT_EQ(store_->GetPrincipal("u1")->kind, "User");
  EXPECT_EQ(store_->GetPrincipalByAppId("user:u1").status().code(), StatusCode::kNotFound)
      << "no client authenticates as a person";
  // A name taken in another case, or an object id taken by any principal:
  // neither half is written.
  Status taken = store_->CreateUser(UserPrincipal("u2", "Ada 2"), User("ADA@example.TEST"));
  EXPECT_EQ(taken.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetPrincipal("u2").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(
      store_->CreatePrincipal({"sp", "app-sp", "t", "sp", "ServicePrincipal", 1, "", "", "{}"})
          .ok());
  EXPECT_EQ(store_->CreateUser(UserPrincipal("sp", "x"), User("x@example.test")).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUserByName("x@example.test").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUser("sp").status().code(), StatusCode::kNotFound);
  // Listed by name, in any case.
  ASSERT_TRUE(store_->CreateUser(UserPrincipal("u3", "Bob"), User("bob@example.test")).ok());
  ASSERT_TRUE(store_->CreateUser(UserPrincipal("u4", "Al"), User("AL@example.test")).ok());
  auto all = store_->ListUsers();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].object_id, "u1");  // "ada@" < "al@" < "bob@"
  EXPECT_EQ((*all)[1].object_id, "u4");
  EXPECT_EQ((*all)[2].object_id, "u3");
  // Deleting the principal deletes the user; the name is free again.
  ASSERT_TRUE(store_->DeletePrincipal("u1").ok());
  EXPECT_EQ(store_->GetUser("u1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUserByName("ada@example.test").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->CreateUser(UserPrincipal("u5", "Ada"), User("ada@example.test")).ok());
}

TEST_P(StoreConformance, AUserChangesAsItsMutationSaysOrNotAtAll) {
  ASSERT_TRUE(store_->CreateUser(UserPrincipal("u1", "Ada"), User("ada@example.test")).ok());
  ASSERT_TRUE(store_->CreateUser(UserPrincipal("u2", "Bob"), User("bob@example.test")).ok());
  auto changed = store_->UpdateUser("u1", [](UserRecord& u) {
    u.user_principal_name = "ada.l@example.test";
    u.account_enabled = false;
    u.force_change_password = true;
    u.sessions_valid_from = 77;
    u.failed_sign_ins = 3;
    u.locked_until = 99;
    u.lockouts = 2;
    u.display_name = "Ada L.";
    u.object_id = "elsewhere";  // not the mutation's to change
    u.created = 1;
    return OkStatus();
  });
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  auto got = store_->GetUser("u1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->user_principal_name, "ada.l@example.test");
  EXPECT_FALSE(got->account_enabled);
  EXPECT_TRUE(got->force_change_password);
  EXPECT_EQ(got->sessions_valid_from, 77);
  EXPECT_EQ(got->failed_sign_ins, 3);
  EXPECT_EQ(got->locked_until, 99);
  EXPECT_EQ(got->lockouts, 2);
  EXPECT_EQ(got->object_id, "u1");
  EXPECT_EQ(got->created, 10);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->display_name, "Ada L.");
  EXPECT_EQ(store_->GetPrincipal("u1")->display_name, "Ada L.") << "written with the user";
  EXPECT_EQ(store_->GetUserByName("ada@example.test").status().code(), StatusCode::kNotFound);
  // Another user's name, or a mutation that fails: nothing changes.
  auto rename = [](UserRecord& u) {
    u.user_principal_name = "BOB@example.test";
    u.surname = "changed";
    u.display_name = "changed";
    return OkStatus();
  };
  EXPECT_EQ(store_->UpdateUser("u1", rename).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_
                ->UpdateUser("u1",
                             [](UserRecord& u) {
                               u.surname = "changed";
                               return InvalidArgumentError("no");
                             })
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetUser("u1")->surname, "Lovelace");
  EXPECT_EQ(store_->GetPrincipal("u1")->display_name, "Ada L.");
  EXPECT_EQ(store_->GetUser("u1")->version, 2);
  EXPECT_EQ(store_->UpdateUser("missing", rename).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformance, ConcurrentSignInCountsOfAUserAreAllKept) {
  ASSERT_TRUE(store_->CreateUser(UserPrincipal("u1", "Ada"), User("ada@example.test")).ok());
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = store_->UpdateUser("u1", [](UserRecord& u) {
          ++u.failed_sign_ins;
          return OkStatus();
        });
        if (!r.ok()) {
          failed.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(store_->GetUser("u1")->failed_sign_ins, 60);
  EXPECT_EQ(store_->GetUser("u1")->version, 61);
}

TEST_P(StoreConformance, RoleAssignmentsAreUniquePerScopeRoleAndPrincipal) {
  RoleAssignmentRecord a{"a1",
                         "/subscriptions/sub/resourceGroups/RG/",
                         "role",
                         "p1",
                         "ServicePrincipal",
                         "d",
                         "admin",
                         7,
                         7};
  ASSERT_TRUE(store_->CreateRoleAssignment(a).ok());
  RoleAssignmentRecord same_id = a;
  same_id.principal_id = "p2";
  EXPECT_EQ(store_->CreateRoleAssignment(same_id).code(), StatusCode::kAlreadyExists);
  RoleAssignmentRecord same_grant = a;
  same_grant.id = "a2";
  same_grant.scope = "/SUBSCRIPTIONS/sub/resourcegroups/rg";  // the same scope, spelled otherwise
  Status s = store_->CreateRoleAssignment(same_grant);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.reason(), "RoleAssignmentExists");
  RoleAssignmentRecord other = a;
  other.id = "a3";
  other.principal_id = "p2";
  other.created = 8;
  ASSERT_TRUE(store_->CreateRoleAssignment(other).ok());
  auto all = store_->ListRoleAssignments();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "a1");
  EXPECT_EQ((*all)[0].scope, a.scope);
  EXPECT_EQ((*all)[0].description, "d");
  EXPECT_EQ((*all)[1].id, "a3");
}

TEST_P(StoreConformance, DeletingAVaultDeletesTheAssignmentsAtAndBelowIt) {
  const std::string vault =
      "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/Main";
  auto add = [&](const std::string& id, const std::string& scope) {
    RoleAssignmentRecord a{id, scope, "role", "p", "ServicePrincipal", "", "admin", 1, 1};
    ASSERT_TRUE(store_->CreateRoleAssignment(a).ok());
  };
  add("at", vault);
  add("below", AsciiLower(vault) + "/secrets/db");
  add("above", "/subscriptions/sub/resourceGroups/rg");
  add("sibling", vault + "2");
  ASSERT_TRUE(store_->MarkVaultDeleted("main", 10, 20).ok());
  auto listed = store_->ListRoleAssignments();
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> left;
  for (size_t i = 0; i < listed->size(); ++i) {
    left.push_back((*listed)[i].id);
  }
  EXPECT_EQ(left, (std::vector<std::string>{"above", "sibling"}));
  ASSERT_TRUE(store_->RecoverVault("main").ok());
  EXPECT_EQ(store_->ListRoleAssignments()->size(), 2u);  // recovery does not bring them back
}

// Type, name and version of every change after `after`, as one string each.
std::vector<std::string> ChangeSummary(Store& store, int64_t after = 0) {
  std::vector<std::string> out;
  auto changes = store.ListChanges(after, 1000);
  EXPECT_TRUE(changes.ok());
  int64_t last = after;
  for (const auto& c : *changes) {
    EXPECT_GT(c.seq, last);
    last = c.seq;
    EXPECT_EQ(c.event_id.size(), 36u);
    EXPECT_GT(c.time_ms, 1600000000000);
    out.push_back(c.type + " " + c.vault + "/" + c.name + "/" + c.version);
  }
  return out;
}

TEST_P(StoreConformance, EveryCommittedChangeIsInTheFeedInOrder) {
  auto v1 = Version("Db-Password", "v1");
  v1.exp = 5000;
  ASSERT_TRUE(store_->AddSecretVersion("main", v1).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("db-password", "v2")).ok());
  // A refused write changes nothing, so it records nothing.
  ASSERT_FALSE(store_->AddSecretVersion("main", Version("db-password", "v2")).ok());
  ASSERT_TRUE(store_
                  ->UpdateSecretVersion("main", "db-password", "v2",
                                        [](SecretVersionRecord& rec) {
                                          rec.enabled = false;
                                          return OkStatus();
                                        })
                  .ok());
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "db-password", 10, 20).ok());
  ASSERT_TRUE(store_->RecoverSecret("main", "db-password").ok());
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "db-password", 10, 20).ok());
  ASSERT_TRUE(store_->PurgeSecret("main", "db-password").ok());
  ASSERT_TRUE(store_->RestoreSecret("main", {Version("r", "a1"), Version("r", "a2")}).ok());

  auto update = [&](const std::function<void(VaultRecord&)>& change) {
    return store_
        ->UpdateVault("main",
                      [&](VaultRecord& v) {
                        change(v);
                        return OkStatus();
                      })
        .ok();
  };
  // Not the access model: no event.
  ASSERT_TRUE(update([](VaultRecord& v) { v.tags_json = R"({"team":"x"})"; }));
  ASSERT_TRUE(update([](VaultRecord& v) { v.rbac_authorization = true; }));
  ASSERT_TRUE(update([](VaultRecord& v) { v.sku = "premium"; }));
  ASSERT_TRUE(update([](VaultRecord& v) {
    AccessPolicyRecord p;
    p.object_id = "o";
    v.access_policies.push_back(p);
  }));

  std::vector<std::string> want = {"SecretNewVersionCreated Main/Db-Password/v1",
                                   "SecretNewVersionCreated Main/Db-Password/v2",
                                   "SecretUpdated Main/Db-Password/v2",
                                   "SecretDeleted Main/Db-Password/v2",
                                   "SecretRecovered Main/Db-Password/v2",
                                   "SecretDeleted Main/Db-Password/v2",
                                   "SecretPurged Main/Db-Password/",
                                   "SecretNewVersionCreated Main/r/a2",
                                   "VaultAccessPolicyChanged Main/Main/",
                                   "VaultAccessPolicyChanged Main/Main/"};
  EXPECT_EQ(ChangeSummary(*store_), want);
  auto first = store_->ListChanges(0, 1);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->front().exp, std::optional<int64_t>(5000));
  EXPECT_EQ(first->front().object_type, "Secret");
  // Paging from a seq gives exactly the rest.
  auto rest = ChangeSummary(*store_, first->front().seq);
  EXPECT_EQ(rest, std::vector<std::string>(want.begin() + 1, want.end()));

  auto bounds = store_->GetChangeBounds();
  ASSERT_TRUE(bounds.ok());
  EXPECT_EQ(bounds->newest - bounds->oldest + 1, static_cast<int64_t>(want.size()));
  // Pruning keeps the newest and never reuses a seq.
  auto pruned = store_->PruneChanges(int64_t{1} << 62, 3);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, static_cast<int>(want.size()) - 3);
  auto after = store_->GetChangeBounds();
  EXPECT_EQ(after->newest, bounds->newest);
  EXPECT_EQ(after->oldest, bounds->newest - 2);
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("n", "x")).ok());
  EXPECT_EQ(store_->GetChangeBounds()->newest, bounds->newest + 1);
}

TEST_P(StoreConformance, NoticesFireOncePerVersionAndGoWithThePurge) {
  auto a = Version("a", "v1");
  a.exp = 1000;
  auto b = Version("b", "v1");
  b.exp = 3000;
  ASSERT_TRUE(store_->AddSecretVersion("main", a).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", b).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("c", "v1")).ok());  // no exp
  auto due = store_->ListExpiringSecrets("SecretNearExpiry", 2000, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(due->front().vault, "Main");
  EXPECT_EQ(due->front().name, "a");
  EXPECT_EQ(due->front().exp, 1000);
  ChangeRecord c;
  c.event_id = "00000000-0000-4000-8000-000000000001";
  c.time_ms = 1700000000000;
  c.vault = "Main";
  c.type = "SecretNearExpiry";
  c.object_type = "Secret";
  c.name = "a";
  c.version = "v1";
  c.exp = 1000;
  int64_t before = store_->GetChangeBounds()->newest;
  EXPECT_TRUE(*store_->RecordNotice(c));
  EXPECT_FALSE(*store_->RecordNotice(c));
  EXPECT_EQ(store_->GetChangeBounds()->newest, before + 1);
  EXPECT_TRUE(store_->ListExpiringSecrets("SecretNearExpiry", 2000, 10)->empty());
  // Another kind of notice is separate; a new version needs its own.
  EXPECT_EQ(store_->ListExpiringSecrets("SecretExpired", 2000, 10)->size(), 1u);
  auto a2 = Version("a", "v2");
  a2.exp = 1500;
  ASSERT_TRUE(store_->AddSecretVersion("main", a2).ok());
  EXPECT_EQ(store_->ListExpiringSecrets("SecretNearExpiry", 2000, 10)->front().version, "v2");
  // Purging forgets the notices: a secret of the same name starts afresh.
  c.version = "v2";
  EXPECT_TRUE(*store_->RecordNotice(c));
  ASSERT_TRUE(store_->MarkSecretDeleted("main", "a", 10, 20).ok());
  EXPECT_TRUE(store_->ListExpiringSecrets("SecretExpired", 2000, 10)->empty());
  ASSERT_TRUE(store_->PurgeSecret("main", "a").ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", a2).ok());
  EXPECT_TRUE(*store_->RecordNotice(c));
}

// A certificate's version with the key and secret versions it owns.
std::vector<OwnedVersion> CertificateParts(const SecretVersionRecord& cert) {
  SecretVersionRecord key = cert;
  key.key_json = R"({"kty":"EC"})";
  key.sealed_value = "sealed-key-" + cert.version;
  SecretVersionRecord secret = cert;
  secret.content_type = "application/x-pem-file";
  secret.sealed_value = "sealed-pem-" + cert.version;
  return {{ObjectKind::kKey, key}, {ObjectKind::kSecret, secret}};
}

TEST_P(StoreConformance, ACertificateWritesItsKeyAndSecretWithIt) {
  const ObjectKind kCert = ObjectKind::kCertificate;
  auto c1 = Version("Web", "c1");
  ASSERT_EQ(*store_->AddObjectVersion(kCert, "main", c1, CertificateParts(c1)), "Web");
  auto c2 = Version("web", "c2");
  ASSERT_TRUE(store_->AddObjectVersion(kCert, "main", c2, CertificateParts(c2)).ok());
  // The owned objects carry the certificate's name and versions, and say who
  // owns them; the certificate itself has no owner.
  auto key = store_->GetObject(ObjectKind::kKey, "main", "WEB", "", false);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->version.version, "c2");
  EXPECT_EQ(key->version.name, "Web");
  EXPECT_EQ(key->owner, kCert);
  auto secret = store_->GetSecret("main", "web", "c1", false);
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->version.sealed_value, "sealed-pem-c1");
  EXPECT_EQ(secret->owner, kCert);
  EXPECT_FALSE(store_->GetObject(kCert, "main", "web", "", false)->owner.has_value());
  EXPECT_EQ(store_->ListSecrets("main", false, "", 10)->items.at(0).owner, kCert);
  EXPECT_EQ(store_->ListObjectVersions(ObjectKind::kKey, "main", "web", "", 10)->items.size(), 2u);
  // The feed has each kind's new versions.
  auto changes = store_->ListChanges(0, 100);
  int created = 0;
  for (const auto& c : *changes) {
    created += c.type.ends_with("NewVersionCreated") && c.name == "Web";
  }
  EXPECT_EQ(created, 6);
}

TEST_P(StoreConformance, OwnedObjectsAreReadOnlyOnTheirOwn) {
  const ObjectKind kCert = ObjectKind::kCertificate;
  auto c1 = Version("web", "c1");
  ASSERT_TRUE(store_->AddObjectVersion(kCert, "main", c1, CertificateParts(c1)).ok());
  int64_t before = store_->GetChangeBounds()->newest;
  for (ObjectKind kind : {ObjectKind::kKey, ObjectKind::kSecret}) {
    auto refused = [&](const Status& s) {
      EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
      EXPECT_EQ(s.reason(), "Forbidden");
    };
    refused(store_->AddObjectVersion(kind, "main", Version("web", "x1")).status());
    refused(store_
                ->UpdateObjectVersion(kind, "main", "web", "",
                                      [](SecretVersionRecord& rec) {
                                        rec.enabled = false;
                                        return OkStatus();
                                      })
                .status());
    refused(store_->MarkObjectDeleted(kind, "main", "web", 10, 20));
  }
  EXPECT_EQ(store_->GetChangeBounds()->newest, before);
  EXPECT_TRUE(store_->GetSecret("main", "web", "", false)->version.enabled);
  // A certificate may not take over a key or secret it does not own.
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("api", "s1")).ok());
  auto c2 = Version("api", "c1");
  auto taken = store_->AddObjectVersion(kCert, "main", c2, CertificateParts(c2));
  EXPECT_EQ(taken.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(taken.status().reason(), "Conflict");
  // ... and nothing of it was written: not the certificate, not its key.
  EXPECT_EQ(store_->GetObject(kCert, "main", "api", "", false).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetObject(ObjectKind::kKey, "main", "api", "", false).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetSecret("main", "api", "", false)->version.version, "s1");
}

TEST_P(StoreConformance, OwnedObjectsFollowTheirOwner) {
  const ObjectKind kCert = ObjectKind::kCertificate;
  auto c1 = Version("web", "c1");
  ASSERT_TRUE(store_->AddObjectVersion(kCert, "main", c1, CertificateParts(c1)).ok());
  auto c2 = Version("web", "c2");
  ASSERT_TRUE(store_->AddObjectVersion(kCert, "main", c2, CertificateParts(c2)).ok());
  // An update of the certificate's version sets the same version's enabled
  // flag, nbf and exp on the key and the secret, and only that version.
  auto updated =
      store_->UpdateObjectVersion(kCert, "main", "web", "c1", [](SecretVersionRecord& rec) {
        rec.enabled = false;
        rec.exp = 5000;
        rec.updated = 400;
        rec.tags_json = R"({"a":"b"})";
        return OkStatus();
      });
  ASSERT_TRUE(updated.ok());
  for (ObjectKind kind : {ObjectKind::kKey, ObjectKind::kSecret}) {
    auto v1 = store_->GetObject(kind, "main", "web", "c1", false);
    ASSERT_TRUE(v1.ok());
    EXPECT_FALSE(v1->version.enabled);
    EXPECT_EQ(v1->version.exp, 5000);
    EXPECT_EQ(v1->version.updated, 400);
    EXPECT_EQ(v1->version.tags_json, "{}");
    EXPECT_TRUE(store_->GetObject(kind, "main", "web", "c2", false)->version.enabled);
  }
  // Deleting the certificate deletes them; they are not listed as deleted
  // objects of their own kinds, but can be read as deleted.
  ASSERT_TRUE(store_->MarkObjectDeleted(kCert, "main", "web", 10, 20).ok());
  for (ObjectKind kind : {ObjectKind::kKey, ObjectKind::kSecret}) {
    EXPECT_EQ(store_->GetObject(kind, "main", "web", "", false).status().code(),
              StatusCode::kNotFound);
    auto deleted = store_->GetObject(kind, "main", "web", "", true);
    ASSERT_TRUE(deleted.ok());
    EXPECT_TRUE(deleted->deleted);
    EXPECT_EQ(deleted->scheduled_purge_date, 20);
    EXPECT_TRUE(store_->ListObjects(kind, "main", true, "", 10)->items.empty());
    EXPECT_EQ(store_->RecoverObject(kind, "main", "web").code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(store_->PurgeObject(kind, "main", "web").code(), StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(store_->ListObjects(kCert, "main", true, "", 10)->items.size(), 1u);
  // A new certificate version cannot be added while its key is deleted.
  auto c3 = Version("web", "c3");
  EXPECT_EQ(store_->AddObjectVersion(kCert, "main", c3, CertificateParts(c3)).status().reason(),
            "Conflict");
  // Recovering brings all three back; purging removes all three.
  ASSERT_TRUE(store_->RecoverObject(kCert, "main", "web").ok());
  EXPECT_EQ(store_->GetSecret("main", "web", "", false)->version.version, "c2");
  EXPECT_EQ(store_->GetObject(ObjectKind::kKey, "main", "web", "", false)->version.version, "c2");
  ASSERT_TRUE(store_->MarkObjectDeleted(kCert, "main", "web", 10, 20).ok());
  ASSERT_TRUE(store_->PurgeObject(kCert, "main", "web").ok());
  for (ObjectKind kind : {ObjectKind::kKey, ObjectKind::kSecret, kCert}) {
    EXPECT_EQ(store_->GetObject(kind, "main", "web", "", true).status().code(),
              StatusCode::kNotFound);
  }
  // The name is free for a plain secret again.
  EXPECT_TRUE(store_->AddSecretVersion("main", Version("web", "s1")).ok());
  EXPECT_FALSE(store_->GetSecret("main", "web", "", false)->owner.has_value());
}

TEST_P(StoreConformance, ARestoredCertificateBringsItsKeyAndSecret) {
  const ObjectKind kCert = ObjectKind::kCertificate;
  auto parts = CertificateParts(Version("web", "c1"));
  std::vector<OwnedVersions> owned = {{ObjectKind::kKey, {parts[0].record}},
                                      {ObjectKind::kSecret, {parts[1].record}}};
  ASSERT_TRUE(store_->RestoreObject(kCert, "main", {Version("web", "c1")}, owned).ok());
  EXPECT_EQ(store_->GetSecret("main", "web", "", false)->owner, kCert);
  EXPECT_EQ(store_->GetObject(ObjectKind::kKey, "main", "web", "", false)->version.sealed_value,
            "sealed-key-c1");
  // A name taken by any of the three refuses the whole restore.
  ASSERT_TRUE(store_->AddObjectVersion(ObjectKind::kKey, "main", Version("api", "k1")).ok());
  auto api = CertificateParts(Version("api", "c1"));
  EXPECT_EQ(store_
                ->RestoreObject(
                    kCert, "main", {Version("api", "c1")},
                    {{ObjectKind::kKey, {api[0].record}}, {ObjectKind::kSecret, {api[1].record}}})
                .code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetObject(kCert, "main", "api", "", true).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetSecret("main", "api", "", true).status().code(), StatusCode::kNotFound);
  // Purge by schedule takes the three together.
  ASSERT_TRUE(store_->MarkObjectDeleted(kCert, "main", "web", 10, 20).ok());
  EXPECT_EQ(*store_->PurgeExpiredObjects(100), 3);
  EXPECT_EQ(store_->GetSecret("main", "web", "", true).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformance, SecretsAndKeysHaveNamesOfTheirOwn) {
  const ObjectKind kKey = ObjectKind::kKey;
  auto secret = Version("Shared", "s1");
  auto key = Version("shared", "k1");
  key.content_type = "";
  key.key_json = R"({"kty":"EC"})";
  key.exp = 1000;
  ASSERT_TRUE(store_->AddSecretVersion("main", secret).ok());
  EXPECT_EQ(*store_->AddObjectVersion(kKey, "main", key), "shared");
  // Each kind finds its own object, and lists only its own.
  EXPECT_EQ(store_->GetSecret("main", "shared", "", false)->version.version, "s1");
  auto got = store_->GetObject(kKey, "main", "SHARED", "", false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version.version, "k1");
  EXPECT_EQ(got->version.name, "shared");
  EXPECT_EQ(got->version.key_json, R"({"kty":"EC"})");
  EXPECT_EQ(store_->GetObject(kKey, "main", "shared", "s1", false).status().reason(),
            "KeyNotFound");
  EXPECT_EQ(store_->GetObject(kKey, "main", "other", "", false).status().reason(), "KeyNotFound");
  ASSERT_EQ(store_->ListSecrets("main", false, "", 10)->items.size(), 1u);
  auto keys = store_->ListObjects(kKey, "main", false, "", 10);
  ASSERT_EQ(keys->items.size(), 1u);
  EXPECT_EQ(keys->items[0].version.version, "k1");
  EXPECT_TRUE(keys->items[0].version.sealed_value.empty());
  EXPECT_EQ(store_->ListObjectVersions(kKey, "main", "shared", "", 10)->items.size(), 1u);
  // The key JSON is one of the attributes an update replaces.
  key.key_json = R"({"kty":"EC","key_ops":["sign"]})";
  ASSERT_TRUE(store_
                  ->UpdateObjectVersion(kKey, "main", "shared", "k1",
                                        [&](SecretVersionRecord& rec) {
                                          rec.key_json = key.key_json;
                                          rec.updated = 300;
                                          return OkStatus();
                                        })
                  .ok());
  EXPECT_EQ(store_->GetObject(kKey, "main", "shared", "k1", false)->version.key_json, key.key_json);
  EXPECT_EQ(store_->GetSecret("main", "shared", "s1", false)->version.key_json, "");
  // Expiry notices are per kind.
  EXPECT_TRUE(store_->ListExpiringSecrets("SecretNearExpiry", 2000, 10)->empty());
  auto due = store_->ListExpiringObjects(kKey, "KeyNearExpiry", 2000, 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(due->front().kind, kKey);
  EXPECT_EQ(due->front().name, "shared");
  // Deleting, recovering and purging the key leaves the secret alone, and
  // the feed names the key's events after its kind.
  int64_t before = store_->GetChangeBounds()->newest;
  ASSERT_TRUE(store_->MarkObjectDeleted(kKey, "main", "shared", 10, 20).ok());
  EXPECT_TRUE(store_->GetObject(kKey, "main", "shared", "", false).status().code() ==
              StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetSecret("main", "shared", "", false).ok());
  EXPECT_EQ(store_->ListObjects(kKey, "main", true, "", 10)->items.size(), 1u);
  EXPECT_TRUE(store_->ListSecrets("main", true, "", 10)->items.empty());
  EXPECT_EQ(store_->AddObjectVersion(kKey, "main", Version("shared", "k2")).status().reason(),
            "Conflict");
  EXPECT_EQ(store_->PurgeSecret("main", "shared").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->RecoverObject(kKey, "main", "shared").ok());
  ASSERT_TRUE(store_->MarkObjectDeleted(kKey, "main", "shared", 10, 20).ok());
  ASSERT_TRUE(store_->PurgeObject(kKey, "main", "shared").ok());
  EXPECT_EQ(store_->GetSecret("main", "shared", "", false)->version.version, "s1");
  auto changes = store_->ListChanges(before, 10);
  ASSERT_EQ(changes->size(), 4u);
  std::vector<std::string> types;
  for (const auto& c : *changes) {
    EXPECT_EQ(c.object_type, "Key");
    EXPECT_EQ(c.name, "shared");
    types.push_back(c.type);
  }
  EXPECT_EQ(types,
            (std::vector<std::string>{"KeyDeleted", "KeyRecovered", "KeyDeleted", "KeyPurged"}));
  // Restore and purge-by-schedule work per kind too.
  ASSERT_TRUE(store_->RestoreObject(kKey, "main", {Version("shared", "k3")}).ok());
  EXPECT_EQ(store_->RestoreObject(kKey, "main", {Version("shared", "k3")}).code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->MarkObjectDeleted(kKey, "main", "shared", 10, 20).ok());
  EXPECT_EQ(*store_->PurgeExpiredObjects(100), 1);
  EXPECT_TRUE(store_->GetSecret("main", "shared", "", false).ok());
}

TEST_P(StoreConformance, APolicyBelongsToItsLiveObjectAndGoesWithThePurge) {
  const ObjectKind kKey = ObjectKind::kKey;
  EXPECT_EQ(store_->GetObjectPolicy(kKey, "main", "k").status().code(), StatusCode::kNotFound);
  auto set = [&](const std::string& policy) {
    return store_->UpdateObjectPolicy(
        kKey, "main", "k",
        [&](const std::optional<std::string>&) -> StatusOr<std::string> { return policy; });
  };
  EXPECT_EQ(set("{}").status().code(), StatusCode::kNotFound);
  auto key = Version("K", "v1", 500);
  key.exp = 900;
  ASSERT_TRUE(store_->AddObjectVersion(kKey, "main", key).ok());
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("k", "s1")).ok());
  EXPECT_EQ(*store_->GetObjectPolicy(kKey, "main", "k"), "");
  EXPECT_TRUE(store_->ListObjectPolicies(kKey, 10)->empty());
  // The function sees the current policy; its error writes nothing.
  ASSERT_TRUE(set(R"({"p":1})").ok());
  auto refused = store_->UpdateObjectPolicy(
      kKey, "main", "k", [](const std::optional<std::string>& current) -> StatusOr<std::string> {
        EXPECT_EQ(current.value_or(""), R"({"p":1})");
        return InvalidArgumentError("no");
      });
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->GetObjectPolicy(kKey, "main", "K"), R"({"p":1})");
  EXPECT_EQ(*store_->GetObjectPolicy(ObjectKind::kSecret, "main", "k"), "");
  // The listing carries what a schedule needs of the latest version.
  ASSERT_TRUE(store_->AddObjectVersion(kKey, "main", Version("k", "v2", 700)).ok());
  auto listed = store_->ListObjectPolicies(kKey, 10);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().vault, "Main");
  EXPECT_EQ(listed->front().name, "K");
  EXPECT_EQ(listed->front().latest_version, "v2");
  EXPECT_EQ(listed->front().latest_created, 700);
  EXPECT_FALSE(listed->front().latest_exp.has_value());
  EXPECT_TRUE(store_->ListObjectPolicies(ObjectKind::kSecret, 10)->empty());
  // Deleted objects have none to show; purged ones keep none.
  ASSERT_TRUE(store_->MarkObjectDeleted(kKey, "main", "k", 1, 2).ok());
  EXPECT_TRUE(store_->ListObjectPolicies(kKey, 10)->empty());
  EXPECT_EQ(store_->GetObjectPolicy(kKey, "main", "k").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->RecoverObject(kKey, "main", "k").ok());
  EXPECT_EQ(*store_->GetObjectPolicy(kKey, "main", "k"), R"({"p":1})");
  ASSERT_TRUE(store_->MarkObjectDeleted(kKey, "main", "k", 1, 2).ok());
  ASSERT_TRUE(store_->PurgeObject(kKey, "main", "k").ok());
  ASSERT_TRUE(store_->AddObjectVersion(kKey, "main", key).ok());
  EXPECT_EQ(*store_->GetObjectPolicy(kKey, "main", "k"), "");
}

// Two writers that each append to the policy their own marks: every mark of
// both is there at the end, so no update was made from a stale policy.
TEST_P(StoreConformance, ConcurrentPolicyUpdatesLoseNothing) {
  const ObjectKind kKey = ObjectKind::kKey;
  ASSERT_TRUE(store_->AddObjectVersion(kKey, "main", Version("k", "v1")).ok());
  constexpr int kRounds = 30;
  std::atomic<int> failures{0};
  auto writer = [&](char mark) {
    for (int i = 0; i < kRounds; ++i) {
      auto r = store_->UpdateObjectPolicy(
          kKey, "main", "k",
          [mark](const std::optional<std::string>& current) -> StatusOr<std::string> {
            return current.value_or("") + mark;
          });
      if (!r.ok()) {
        ++failures;
      }
    }
  };
  std::thread a(writer, 'a');
  std::thread b(writer, 'b');
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  std::string policy = *store_->GetObjectPolicy(kKey, "main", "k");
  EXPECT_EQ(std::count(policy.begin(), policy.end(), 'a'), kRounds);
  EXPECT_EQ(std::count(policy.begin(), policy.end(), 'b'), kRounds);
}

TEST_P(StoreConformance, KeyNoticesGoWithTheKeyAndSecretNoticesStay) {
  auto secret = Version("a", "v1");
  secret.exp = 1000;
  ASSERT_TRUE(store_->AddSecretVersion("main", secret).ok());
  ASSERT_TRUE(store_->AddObjectVersion(ObjectKind::kKey, "main", secret).ok());
  ChangeRecord c;
  c.event_id = "00000000-0000-4000-8000-000000000002";
  c.time_ms = 1700000000000;
  c.vault = "Main";
  c.name = "a";
  c.version = "v1";
  c.type = "SecretNearExpiry";
  c.object_type = "Secret";
  ASSERT_TRUE(*store_->RecordNotice(c));
  c.type = "KeyNearExpiry";
  c.object_type = "Key";
  ASSERT_TRUE(*store_->RecordNotice(c));
  ASSERT_TRUE(store_->MarkObjectDeleted(ObjectKind::kKey, "main", "a", 10, 20).ok());
  ASSERT_TRUE(store_->PurgeObject(ObjectKind::kKey, "main", "a").ok());
  // The secret's notice stays; the key's went with the key.
  EXPECT_TRUE(store_->ListExpiringSecrets("SecretNearExpiry", 2000, 10)->empty());
  ASSERT_TRUE(store_->AddObjectVersion(ObjectKind::kKey, "main", secret).ok());
  EXPECT_EQ(store_->ListExpiringObjects(ObjectKind::kKey, "KeyNearExpiry", 2000, 10)->size(), 1u);
}

TEST_P(StoreConformance, EventSubscriptionsBelongToTheirVault) {
  EventSubscriptionRecord s;
  s.properties_json = R"({"a":1})";
  s.start_seq = 7;
  s.created = s.updated = 100;
  size_t count = 99;
  std::optional<EventSubscriptionRecord> seen;
  auto put = [&](const std::string& vault, const std::string& name) {
    return store_->PutEventSubscription(vault, name,
                                        [&](const std::optional<EventSubscriptionRecord>& current,
                                            size_t existing) -> StatusOr<EventSubscriptionRecord> {
                                          seen = current;
                                          count = existing;
                                          return s;
                                        });
  };
  auto made = put("mAIN", "Hook");
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->vault, "Main");
  EXPECT_EQ(made->version, 1);
  EXPECT_FALSE(seen.has_value());
  EXPECT_EQ(count, 0u);
  s.properties_json = R"({"a":2})";
  s.key_generation = 2;
  s.updated = 200;
  ASSERT_TRUE(put("Main", "hook").ok());  // same subscription, any case
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->properties_json, R"({"a":1})");
  EXPECT_EQ(count, 1u);
  auto all = store_->ListEventSubscriptions("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().name, "Hook");
  EXPECT_EQ(all->front().properties_json, R"({"a":2})");
  EXPECT_EQ(all->front().key_generation, 2);
  EXPECT_EQ(all->front().start_seq, 7);
  EXPECT_EQ(all->front().created, 100);
  EXPECT_EQ(all->front().updated, 200);
  EXPECT_EQ(all->front().version, 2);
  EXPECT_EQ(store_->ListEventSubscriptions("MAIN")->size(), 1u);
  EXPECT_TRUE(store_->ListEventSubscriptions("other")->empty());
  EXPECT_EQ(put("nope", "hook").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteEventSubscription("main", "other").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteEventSubscription("main", "HOOK").ok());
  EXPECT_TRUE(store_->ListEventSubscriptions("")->empty());
  ASSERT_TRUE(put("Main", "Hook").ok());
  ASSERT_TRUE(store_->MarkVaultDeleted("main", 10, 20).ok());
  ASSERT_TRUE(store_->PurgeVault("main").ok());
  EXPECT_TRUE(store_->ListEventSubscriptions("")->empty());
}

TEST_P(StoreConformance, ConcurrentWritersAllLand) {
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!store_->AddSecretVersion("main", Version(name, "v")).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(failures.load(), 0);
  auto page = store_->ListSecrets("main", false, "", 1000);
  EXPECT_EQ(page->items.size(), static_cast<size_t>(kThreads * kEach));
}

// Servers sharing one store (two handles on it): read-modify-writes made
// through both at once all land.
TEST_P(StoreConformance, TwoServersOnOneStoreLoseNoUpdate) {
  if (!GetParam().open_again) {
    GTEST_SKIP() << GetParam().name << " cannot be shared";
  }
  std::unique_ptr<Store> other = GetParam().open_again(dir_.path());
  ASSERT_NE(other, nullptr);
  constexpr int kEach = 30;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (Store* s : {store_.get(), store_.get(), other.get(), other.get()}) {
    threads.emplace_back([s, &failures] {
      for (int i = 0; i < kEach; ++i) {
        auto updated = s->UpdateMeta("n", [](const std::optional<std::string>& current) {
          return StatusOr<std::string>(std::to_string(current ? std::stoi(*current) + 1 : 1));
        });
        if (!updated.ok()) {
          ADD_FAILURE() << updated.status().ToString();
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(**other->GetMeta("n"), std::to_string(4 * kEach));
}

// Shifts racing each other, from one handle or two, all land: the times
// and the total each move by the sum.
TEST_P(StoreConformance, RacingTimeShiftsAllLand) {
  ASSERT_TRUE(store_->AddSecretVersion("main", Version("a", "v1", 100000)).ok());
  std::unique_ptr<Store> other =
      GetParam().open_again ? GetParam().open_again(dir_.path()) : nullptr;
  Store* second = other ? other.get() : store_.get();
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  for (Store* s : {store_.get(), store_.get(), second, second}) {
    threads.emplace_back([s] {
      for (int i = 0; i < kEach; ++i) {
        auto shifted = s->ShiftTime("main", 1);
        EXPECT_TRUE(shifted.ok()) << shifted.status().ToString();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(store_->GetSecret("main", "a", "", false)->version.created, 100000 - 4 * kEach);
  EXPECT_EQ(**store_->GetMeta(kTimeShiftMetaKey), R"({"main":40})");
}

// Two servers writing while a third tails the feed: the tail, which moves
// its cursor to the last seq it saw, must end up with exactly the feed read
// afterwards; a change that became visible after a higher seq would be
// missing from it.
TEST_P(StoreConformance, TheFeedIsInCommitOrderAcrossServers) {
  if (!GetParam().open_again) {
    GTEST_SKIP() << GetParam().name << " cannot be shared";
  }
  std::unique_ptr<Store> second = GetParam().open_again(dir_.path());
  std::unique_ptr<Store> reader = GetParam().open_again(dir_.path());
  ASSERT_NE(second, nullptr);
  ASSERT_NE(reader, nullptr);
  int64_t start = reader->GetChangeBounds()->newest;
  constexpr int kEach = 120;
  std::atomic<int> writing{0};
  std::vector<std::thread> writers;
  int w = 0;
  for (Store* s : {store_.get(), store_.get(), second.get(), second.get()}) {
    ++writing;
    writers.emplace_back([s, w, &writing] {
      for (int i = 0; i < kEach; ++i) {
        auto added = s->AddSecretVersion(
            "main", Version("w" + std::to_string(w) + "-" + std::to_string(i % 7),
                            "v" + std::to_string(i)));
        EXPECT_TRUE(added.ok()) << added.status().ToString();
      }
      --writing;
    });
    ++w;
  }
  std::vector<int64_t> tailed;
  int64_t cursor = start;
  bool last_round = false;
  while (true) {
    bool done = writing.load() == 0;
    auto page = reader->ListChanges(cursor, 50);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& c : *page) {
      tailed.push_back(c.seq);
      cursor = c.seq;
    }
    if (page->empty() && last_round) {
      break;
    }
    last_round = done;
  }
  for (auto& t : writers) {
    t.join();
  }
  std::vector<int64_t> all;
  for (int64_t after = start;;) {
    auto page = reader->ListChanges(after, 500);
    ASSERT_TRUE(page.ok());
    if (page->empty()) {
      break;
    }
    for (const auto& c : *page) {
      all.push_back(c.seq);
    }
    after = page->back().seq;
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(4 * kEach));
  EXPECT_EQ(tailed, all);
}

PendingDelivery Pending(const std::string& name_key, int64_t seq, int64_t due_ms) {
  PendingDelivery d;
  d.vault_key = "main";
  d.name_key = name_key;
  d.change.seq = seq;
  d.change.event_id = "event-" + std::to_string(seq);
  d.change.time_ms = 1000 + seq;
  d.change.vault = "Main";
  d.change.type = "SecretNewVersionCreated";
  d.change.object_type = "Secret";
  d.change.name = "s" + std::to_string(seq);
  d.change.version = "v" + std::to_string(seq);
  d.change.exp = seq % 2 == 0 ? std::optional<int64_t>(5000 + seq) : std::nullopt;
  d.due_ms = due_ms;
  d.first_ms = due_ms;
  return d;
}

std::vector<std::string> Keys(const std::vector<PendingDelivery>& list) {
  std::vector<std::string> out;
  for (const auto& d : list) {
    out.push_back(d.name_key + "/" + std::to_string(d.change.seq));
  }
  return out;
}

TEST_P(StoreConformance, PendingDeliveriesAreQueuedWithThePositionAndListedByDueTime) {
  auto before = store_->QueueDeliveries(
      "hooks", 12, {Pending("b", 11, 300), Pending("a", 11, 300), Pending("a", 12, 100)});
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(*before, 0);
  EXPECT_EQ(**store_->GetMeta("hooks"), "12");
  auto all = store_->ListDeliveries(std::nullopt, 10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(Keys(*all), (std::vector<std::string>{"a/12", "a/11", "b/11"}));
  // The change is kept whole: the feed may be pruned before it is delivered.
  const PendingDelivery& first = all->front();
  EXPECT_EQ(first.change.event_id, "event-12");
  EXPECT_EQ(first.change.time_ms, 1012);
  EXPECT_EQ(first.change.vault, "Main");
  EXPECT_EQ(first.change.type, "SecretNewVersionCreated");
  EXPECT_EQ(first.change.object_type, "Secret");
  EXPECT_EQ(first.change.name, "s12");
  EXPECT_EQ(first.change.version, "v12");
  EXPECT_EQ(first.change.exp, std::optional<int64_t>(5012));
  EXPECT_EQ((*all)[1].change.exp, std::nullopt);
  EXPECT_EQ(first.due_ms, 100);
  EXPECT_EQ(first.first_ms, 100);
  EXPECT_EQ(first.attempts, 0);

  // Pages continue after the cursor.
  auto page = store_->ListDeliveries(std::nullopt, 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"a/12", "a/11"}));
  const PendingDelivery& last = page->back();
  auto rest = store_->ListDeliveries(
      Store::DeliveryCursor{last.due_ms, last.vault_key, last.name_key, last.change.seq}, 2);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(Keys(*rest), (std::vector<std::string>{"b/11"}));

  // An empty queue moves the position alone.
  before = store_->QueueDeliveries("hooks", 20, {});
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, 12);
  EXPECT_EQ(**store_->GetMeta("hooks"), "20");
}

// A writer that no longer leads (it read the feed before the new leader
// stored its position) cannot bring back what the new leader delivered,
// nor move the position back.
TEST_P(StoreConformance, ALateQueueWriteUndoesNothing) {
  ASSERT_TRUE(store_->QueueDeliveries("hooks", 5, {Pending("a", 4, 10), Pending("a", 5, 10)}).ok());
  ASSERT_TRUE(store_->DeleteDelivery("main", "a", 4).ok());  // delivered
  auto before = store_->QueueDeliveries("hooks", 6, {Pending("a", 4, 10), Pending("a", 6, 10)});
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, 5);
  EXPECT_EQ(Keys(*store_->ListDeliveries(std::nullopt, 10)),
            (std::vector<std::string>{"a/5", "a/6"}));
  before = store_->QueueDeliveries("hooks", 3, {Pending("a", 2, 10), Pending("a", 3, 10)});
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, 6);
  EXPECT_EQ(**store_->GetMeta("hooks"), "6");
  EXPECT_EQ(store_->ListDeliveries(std::nullopt, 10)->size(), 2u);
}

TEST_P(StoreConformance, AttemptsMoveADeliveryForwardOnlyAndItsEndRemovesIt) {
  ASSERT_TRUE(store_->QueueDeliveries("hooks", 2, {Pending("a", 1, 10), Pending("a", 2, 20)}).ok());
  PendingDelivery retry = Pending("a", 1, 10);
  retry.attempts = 2;
  retry.due_ms = 500;
  retry.last_outcome = "HTTP 500";
  retry.last_status = 500;
  ASSERT_TRUE(store_->UpdateDelivery(retry).ok());
  PendingDelivery late = retry;  // an older attempt's report, arriving after
  late.attempts = 1;
  late.due_ms = 50;
  late.last_outcome = "HTTP 503";
  late.last_status = 503;
  ASSERT_TRUE(store_->UpdateDelivery(late).ok());
  auto all = store_->ListDeliveries(std::nullopt, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(Keys(*all), (std::vector<std::string>{"a/2", "a/1"}));
  EXPECT_EQ(all->back().attempts, 2);
  EXPECT_EQ(all->back().due_ms, 500);
  EXPECT_EQ(all->back().first_ms, 10);
  EXPECT_EQ(all->back().last_outcome, "HTTP 500");
  EXPECT_EQ(all->back().last_status, 500);

  ASSERT_TRUE(store_->DeleteDelivery("main", "a", 1).ok());
  EXPECT_EQ(store_->DeleteDelivery("main", "a", 1).code(), StatusCode::kNotFound);
  retry.attempts = 3;
  EXPECT_EQ(store_->UpdateDelivery(retry).code(), StatusCode::kNotFound);
  EXPECT_EQ(Keys(*store_->ListDeliveries(std::nullopt, 10)), (std::vector<std::string>{"a/2"}));
}

TEST_P(StoreConformance, ASubscriptionsPendingDeliveriesGoWithIt) {
  VaultRecord other;
  other.name = "Other";
  other.tags_json = "{}";
  other.wrapped_data_key = "k";
  ASSERT_TRUE(store_->CreateVault(other).ok());
  for (const char* vault : {"Main", "Other"}) {
    for (const char* name : {"Hook", "Kept"}) {
      ASSERT_TRUE(
          store_
              ->PutEventSubscription(vault, name,
                                     [&](const auto&, size_t) -> StatusOr<EventSubscriptionRecord> {
                                       EventSubscriptionRecord r;
                                       r.properties_json = "{}";
                                       return r;
                                     })
              .ok());
    }
  }
  PendingDelivery in_other = Pending("hook", 3, 10);
  in_other.vault_key = "other";
  ASSERT_TRUE(
      store_
          ->QueueDeliveries("hooks", 3, {Pending("hook", 1, 10), Pending("kept", 2, 10), in_other})
          .ok());
  ASSERT_TRUE(store_->DeleteEventSubscription("MAIN", "HOOK").ok());
  EXPECT_EQ(Keys(*store_->ListDeliveries(std::nullopt, 10)),
            (std::vector<std::string>{"kept/2", "hook/3"}));
  ASSERT_TRUE(store_->MarkVaultDeleted("Other", 1, 2).ok());
  ASSERT_TRUE(store_->PurgeVault("Other").ok());
  EXPECT_EQ(Keys(*store_->ListDeliveries(std::nullopt, 10)), (std::vector<std::string>{"kept/2"}));
}

// Two servers queueing the same pages (a leader and one that no longer
// knows it lost the lead): every delivery is one row, and the position is
// the furthest either stored.
TEST_P(StoreConformance, TwoServersQueueingTheSamePagesMakeOneRowEach) {
  if (!GetParam().open_again) {
    GTEST_SKIP() << GetParam().name << " cannot be shared";
  }
  std::unique_ptr<Store> other = GetParam().open_again(dir_.path());
  ASSERT_NE(other, nullptr);
  constexpr int kPages = 40;
  std::vector<std::thread> threads;
  for (Store* s : {store_.get(), other.get()}) {
    threads.emplace_back([s] {
      for (int page = 1; page <= kPages; ++page) {
        std::vector<PendingDelivery> rows;
        for (int64_t seq = (page - 1) * 3 + 1; seq <= page * 3; ++seq) {
          rows.push_back(Pending("hook", seq, seq));
        }
        auto queued = s->QueueDeliveries("hooks", page * 3, rows);
        EXPECT_TRUE(queued.ok()) << queued.status().ToString();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  auto all = store_->ListDeliveries(std::nullopt, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<size_t>(kPages * 3));
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].change.seq, static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(**other->GetMeta("hooks"), std::to_string(kPages * 3));
}

INSTANTIATE_TEST_SUITE_P(
    Backends, StoreConformance,
    ::testing::Values(Backend{"Memory",
                              [](const std::string&) { return std::make_unique<MemoryStore>(); },
                              nullptr},
                      Backend{"Sqlite", OpenSqliteStore, OpenSqliteStore},
                      Backend{"Postgres", MakePostgresStore,
                              [](const std::string& dir) {
                                return OpenPostgresStore(PostgresDatabases()[dir]);
                              }}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(SqliteStore, DataSurvivesReopen) {
  auto dir = test::TempDir::Create("coffer-reopen-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string path = dir->Join("coffer.db");
  {
    auto s = SqliteStore::Open(path);
    ASSERT_TRUE(s.ok());
    VaultRecord v;
    v.name = "keep";
    ASSERT_TRUE((*s)->CreateVault(v).ok());
  }
  {
    auto s = SqliteStore::Open(path);
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE((*s)->GetVault("keep").ok());
  }
}

// A schema-8 database (before pending webhook deliveries) is brought to
// version 9 at open, keeping its data.
TEST(SqliteStore, ASchemaEightDatabaseIsMigrated) {
  auto dir = test::TempDir::Create("coffer-schema8-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string path = dir->Join("coffer.db");
  {
    auto s = SqliteStore::Open(path);
    ASSERT_TRUE(s.ok());
    VaultRecord v;
    v.name = "keep";
    ASSERT_TRUE((*s)->CreateVault(v).ok());
    SecretVersionRecord secret;
    secret.name = "Old";
    secret.version = "v1";
    secret.sealed_value = "x";
    secret.tags_json = "{}";
    ASSERT_TRUE((*s)->AddSecretVersion("keep", secret).ok());
  }
  {
    auto db = SqliteDb::Open(path, false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(
        (*db)
            ->ExecScript("DROP TABLE webhook_deliveries; DROP TABLE users; PRAGMA user_version=8;")
            .ok());
  }
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->GetVault("keep").ok());
  // Its secrets stay secrets, and their events come back with the triggers.
  EXPECT_EQ((*s)->GetSecret("keep", "old", "", false)->version.name, "Old");
  EXPECT_EQ((*s)->GetObject(ObjectKind::kKey, "keep", "old", "", false).status().code(),
            StatusCode::kNotFound);
  int64_t before = (*s)->GetChangeBounds()->newest;
  ASSERT_TRUE((*s)->MarkSecretDeleted("keep", "old", 1, 2).ok());
  EXPECT_EQ((*s)->ListChanges(before, 10)->front().type, "SecretDeleted");
  PendingDelivery d;
  d.vault_key = "keep";
  d.name_key = "hook";
  d.change.seq = 3;
  ASSERT_TRUE((*s)->QueueDeliveries("position", 3, {d}).ok());
  EXPECT_EQ((*s)->ListDeliveries(std::nullopt, 10)->size(), 1u);
  auto db = SqliteDb::Open(path, true);
  ASSERT_TRUE(db.ok());
  auto version = (*db)->Prepare("PRAGMA user_version");
  ASSERT_TRUE(version.ok());
  ASSERT_TRUE(*(*version)->Step());
  EXPECT_EQ((*version)->Int(0), 12);
  (*version)->Reset();
  // 11 -> 12: users have a table.
  PrincipalRecord user{"u1", "user:u1", "t", "Ada", "User", 1, "", "", "{}"};
  UserRecord record;
  record.user_principal_name = "ada@example.test";
  EXPECT_TRUE((*s)->CreateUser(user, record).ok());
  EXPECT_EQ((*s)->GetUserByName("ADA@example.test")->object_id, "u1");
}

TEST(SqliteStore, RejectsAFileThatIsNotADatabase) {
  auto dir = test::TempDir::Create("coffer-garbage-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string path = dir->Join("coffer.db");
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fputs("this is definitely not an sqlite database, just some text......", f);
  std::fclose(f);
  auto s = SqliteStore::Open(path);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace coffer::storage
