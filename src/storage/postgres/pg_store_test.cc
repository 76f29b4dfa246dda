// What PostgresStore adds to the Store contract (the contract itself is the
// conformance suite's): hearing other servers' commits, surviving lost
// connections, and refusing a schema it does not know.

#include "storage/postgres/pg_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/testing/wait.h"
#include "storage/postgres/testing/pg_test_server.h"

namespace coffer::storage::postgres {
namespace {

class PgStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = testing::PgTestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    static int n = 0;
    auto conninfo = server_->CreateDatabase("pg_store_" + std::to_string(n++));
    ASSERT_TRUE(conninfo.ok()) << conninfo.status().message();
    conninfo_ = *conninfo;
  }
  std::unique_ptr<PostgresStore> Open() {
    auto store = PostgresStore::Open(conninfo_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  // Runs `sql` on a connection of the test's own.
  void Admin(const std::string& sql) {
    auto conn = PgConn::Connect(conninfo_);
    ASSERT_TRUE(conn.ok()) << conn.status().message();
    Status s = (*conn)->ExecScript(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static VaultRecord Vault(const std::string& name) {
    VaultRecord v;
    v.name = name;
    v.tags_json = "{}";
    v.wrapped_data_key = "k";
    return v;
  }
  static SecretVersionRecord Version(const std::string& name, const std::string& version) {
    SecretVersionRecord r;
    r.name = name;
    r.version = version;
    r.sealed_value = "sealed";
    r.tags_json = "{}";
    return r;
  }

  static testing::PgTestServer* server_;
  std::string conninfo_;
};

testing::PgTestServer* PgStoreTest::server_ = nullptr;

TEST_F(PgStoreTest, AServerHearsTheOtherServersCommits) {
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::atomic<int> heard{0};
  b->OnChange([&](const Store::ExternalChange&) { ++heard; });
  // The listener reports once when it starts listening.
  ASSERT_TRUE(test::WaitUntil([&] { return heard.load() >= 1; }));
  int before = heard.load();
  ASSERT_TRUE(a->CreateVault(Vault("v")).ok());
  ASSERT_TRUE(a->AddSecretVersion("v", Version("s", "1")).ok());
  ASSERT_TRUE(test::WaitUntil([&] { return heard.load() > before; }));
  auto changes = b->ListChanges(0, 10);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ(changes->front().type, "SecretNewVersionCreated");
}

TEST_F(PgStoreTest, RecordChangesAreHeardWithTheirKey) {
  auto a = Open();
  auto b = Open();
  std::mutex mu;
  std::vector<std::string> heard;
  b->OnChange([&](const Store::ExternalChange& c) {
    std::lock_guard<std::mutex> lock(mu);
    if (c.kind == Store::ExternalChange::Kind::kRecord) {
      heard.push_back(c.table + (c.deleted ? " deleted " : " ") + c.key);
    } else if (c.kind == Store::ExternalChange::Kind::kAll) {
      heard.push_back("all");
    }
  });
  auto has = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    return std::find(heard.begin(), heard.end(), what) != heard.end();
  };
  ASSERT_TRUE(test::WaitUntil([&] { return has("all"); }));
  PrincipalRecord p;
  p.object_id = "oid-1";
  p.app_id = "app-1";
  p.kind = "ServicePrincipal";
  ASSERT_TRUE(a->CreatePrincipal(p).ok());
  ASSERT_TRUE(a->CreateVault(Vault("Main")).ok());
  RoleAssignmentRecord ra;
  ra.id = "ra-1";
  ra.scope = "/subscriptions/s";
  ra.role_definition_id = "role";
  ra.principal_id = "oid-1";
  ASSERT_TRUE(a->CreateRoleAssignment(ra).ok());
  ASSERT_TRUE(a->DeleteRoleAssignment("ra-1").ok());
  ASSERT_TRUE(a->DeletePrincipal("oid-1").ok());
  EXPECT_TRUE(test::WaitUntil([&] { return has("principals deleted oid-1"); }));
  EXPECT_TRUE(has("principals oid-1"));
  EXPECT_TRUE(has("vaults main"));
  EXPECT_TRUE(has("role_assignments ra-1"));
  EXPECT_TRUE(has("role_assignments deleted ra-1"));
}

TEST_F(PgStoreTest, MetaWritesAreHeardWithTheirKey) {
  auto a = Open();
  auto b = Open();
  std::mutex mu;
  std::vector<std::string> heard;
  b->OnChange([&](const Store::ExternalChange& c) {
    std::lock_guard<std::mutex> lock(mu);
    heard.push_back(c.kind == Store::ExternalChange::Kind::kRecord ? c.table + " " + c.key
                                                                   : "other");
  });
  auto has = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    return std::find(heard.begin(), heard.end(), what) != heard.end();
  };
  ASSERT_TRUE(test::WaitUntil([&] { return has("other"); }));  // listening
  ASSERT_TRUE(a->PutMeta("put_key", "1").ok());
  auto updated = a->UpdateMeta(
      "updated_key",
      [](const std::optional<std::string>&) -> StatusOr<std::string> { return std::string("2"); });
  ASSERT_TRUE(updated.ok());
  EXPECT_TRUE(test::WaitUntil([&] { return has("meta put_key") && has("meta updated_key"); }));
}

TEST_F(PgStoreTest, ListeningResumesAfterTheConnectionIsLostAndSaysSo) {
  auto a = Open();
  auto b = Open();
  std::atomic<int> heard{0};
  b->OnChange([&](const Store::ExternalChange&) { ++heard; });
  ASSERT_TRUE(test::WaitUntil([&] { return heard.load() >= 1; }));
  int before = heard.load();
  Admin(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE application_name = 'coffer listener' AND datname = current_database()");
  // Reconnected: the store reports the gap, then hears commits again.
  ASSERT_TRUE(test::WaitUntil([&] { return heard.load() > before; }));
  int reconnected = heard.load();
  ASSERT_TRUE(a->CreateVault(Vault("v")).ok());
  ASSERT_TRUE(a->AddSecretVersion("v", Version("s", "1")).ok());
  EXPECT_TRUE(test::WaitUntil([&] { return heard.load() > reconnected; }));
}

TEST_F(PgStoreTest, OneServerLeadsAndAnotherTakesOverWhenItGoes) {
  auto a = Open();
  auto b = Open();
  EXPECT_FALSE(a->Leads());  // not before it listens
  a->OnChange([](const Store::ExternalChange&) {});
  ASSERT_TRUE(test::WaitUntil([&] { return a->Leads(); }));
  b->OnChange([](const Store::ExternalChange&) {});
  // b is listening (it reported so) and tries the lock every second: it
  // must not get it while a holds it.
  std::atomic<int> heard{0};
  b->OnChange([&](const Store::ExternalChange&) { ++heard; });
  ASSERT_TRUE(a->CreateVault(Vault("v")).ok());
  ASSERT_TRUE(a->AddSecretVersion("v", Version("s", "1")).ok());
  ASSERT_TRUE(test::WaitUntil([&] { return heard.load() > 0; }));
  EXPECT_TRUE(a->Leads());
  EXPECT_FALSE(b->Leads());
  a.reset();  // the leader goes
  EXPECT_TRUE(test::WaitUntil([&] { return b->Leads(); }));
}

TEST_F(PgStoreTest, ALeaderWhoseSessionEndsLeadsAgainOnceItReconnects) {
  auto a = Open();
  std::atomic<int> gaps{0};
  a->OnChange([&](const Store::ExternalChange& c) {
    if (c.kind == Store::ExternalChange::Kind::kAll) {
      ++gaps;
    }
  });
  ASSERT_TRUE(test::WaitUntil([&] { return a->Leads(); }));
  int before = gaps.load();
  Admin(
      "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
      "WHERE l.locktype = 'advisory' AND l.objid = 4 AND l.granted");
  // It noticed (a new listening session reports the gap) and holds the
  // lock again in that session.
  ASSERT_TRUE(test::WaitUntil([&] { return gaps.load() > before; }));
  EXPECT_TRUE(test::WaitUntil([&] { return a->Leads(); }));
  auto conn = PgConn::Connect(conninfo_);
  ASSERT_TRUE(conn.ok());
  auto held = (*conn)->Exec(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4 AND granted");
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->Text(0, 0), "1");
}

TEST_F(PgStoreTest, LostConnectionsFailOneCallAndAreReplaced) {
  auto store = Open();
  ASSERT_TRUE(store->CreateVault(Vault("v")).ok());
  ASSERT_TRUE(store->GetVault("v").ok());
  Admin(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  // The write that finds its connection gone fails as unavailable; the
  // next one reconnects. Nothing of the failed one remains.
  auto failed = store->AddSecretVersion("v", Version("s", "1"));
  if (!failed.ok()) {
    EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status().ToString();
  }
  auto added = store->AddSecretVersion("v", Version("t", "1"));
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  // Reads: the pooled connection was lost too.
  auto read = store->GetVault("v");
  if (!read.ok()) {
    EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
    read = store->GetVault("v");
  }
  EXPECT_TRUE(read.ok()) << read.status().ToString();
  auto page = store->ListSecrets("v", false, "", 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), failed.ok() ? 2u : 1u);
}

TEST_F(PgStoreTest, WritesThatFailInAGroupUndoOnlyThemselves) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateVault(Vault("kv")).ok());
  ASSERT_TRUE(store->AddSecretVersion("kv", Version("gone", "1")).ok());
  ASSERT_TRUE(store->MarkSecretDeleted("kv", "gone", 1, 2).ok());
  auto before = store->GetChangeBounds();
  ASSERT_TRUE(before.ok());

  // Another session holds the writer lock, so the writes below wait
  // together and are taken as one group once it is let go.
  auto holder = PgConn::Connect(conninfo_);
  ASSERT_TRUE(holder.ok()) << holder.status().message();
  ASSERT_TRUE((*holder)->ExecScript("SELECT pg_advisory_lock(1131374182, 3)").ok());
  constexpr int kWrites = 12;
  std::vector<Status> results(kWrites);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWrites; ++i) {
    threads.emplace_back([&, i] {
      if (i % 3 == 0) {  // fails: the secret is deleted and not purged
        results[i] = store->AddSecretVersion("kv", Version("gone", std::to_string(i))).status();
      } else if (i % 3 == 1) {  // fails: no such secret
        results[i] = store
                         ->UpdateSecretVersion("kv", "absent", "1",
                                               [](SecretVersionRecord&) { return OkStatus(); })
                         .status();
      } else {
        results[i] = store->AddSecretVersion("kv", Version("s" + std::to_string(i), "1")).status();
      }
    });
  }
  auto watcher = PgConn::Connect(conninfo_);
  ASSERT_TRUE(watcher.ok());
  EXPECT_TRUE(test::WaitUntil([&] {
    auto waiting = (*watcher)->Exec(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
        "AND datname = current_database()");
    return waiting.ok() && waiting->Int(0, 0) >= 1;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the rest queue meanwhile
  ASSERT_TRUE((*holder)->ExecScript("SELECT pg_advisory_unlock(1131374182, 3)").ok());
  for (auto& t : threads) {
    t.join();
  }

  for (int i = 0; i < kWrites; ++i) {
    StatusCode want = i % 3 == 0   ? StatusCode::kFailedPrecondition
                      : i % 3 == 1 ? StatusCode::kNotFound
                                   : StatusCode::kOk;
    EXPECT_EQ(results[i].code(), want) << i << ": " << results[i].ToString();
  }
  auto live = store->ListSecrets("kv", false, "", 100);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->items.size(), 4u);
  auto gone = store->GetSecret("kv", "gone", "", /*include_deleted=*/true);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_TRUE(gone->deleted);
  EXPECT_EQ(gone->version.version, "1");
  // Each write that succeeded committed once: one change each, no more.
  auto changes = store->ListChanges(before->newest, 100);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->size(), 4u);
}

TEST_F(PgStoreTest, ClientsAreNotToldWhereTheDatabaseIs) {
  auto store = Open();
  ASSERT_TRUE(store->CreateVault(Vault("v")).ok());
  std::string db = conninfo_.substr(conninfo_.find("dbname=") + 7);
  std::string socket_dir = conninfo_.substr(5, conninfo_.find(' ') - 5);
  auto admin = PgConn::Connect(server_->conninfo());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->ExecScript("ALTER DATABASE " + db + " WITH ALLOW_CONNECTIONS false").ok());
  ASSERT_TRUE((*admin)
                  ->ExecScript("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = '" +
                               db + "'")
                  .ok());
  auto read = store->GetVault("v");
  auto write = store->AddSecretVersion("v", Version("s", "1"));
  ASSERT_TRUE((*admin)->ExecScript("ALTER DATABASE " + db + " WITH ALLOW_CONNECTIONS true").ok());
  for (const Status& s : {read.status(), write.status()}) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_EQ(s.ToString().find("PostgreSQL"), std::string::npos) << s.ToString();
    EXPECT_EQ(s.ToString().find(socket_dir), std::string::npos) << s.ToString();
    EXPECT_EQ(s.ToString().find(db), std::string::npos) << s.ToString();
    EXPECT_TRUE(s.reason().empty()) << s.ToString();
  }
  // And it serves again once the database does.
  EXPECT_TRUE(store->AddSecretVersion("v", Version("s", "1")).ok());
}

TEST_F(PgStoreTest, ANewerSchemaIsRefusedWithItsVersion) {
  ASSERT_NE(Open(), nullptr);
  Admin("UPDATE coffer_schema SET version = 99");
  auto store = PostgresStore::Open(conninfo_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(store.status().message().find("99"), std::string::npos);
}

// A schema-1 database (before pending webhook deliveries, and before keys
// shared the object tables) is brought to the current version at open,
// keeping its data: its secrets become secrets, and keys of the same names
// can be added.
TEST_F(PgStoreTest, ASchemaOneDatabaseIsMigrated) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateVault(Vault("kept")).ok());
  }
  // The object tables and their triggers as schema 1 and 2 had them, the
  // feed's numbering and listing index as schema 1 to 4 had them, and no
  // users (before 6).
  Admin(
      "DROP TRIGGER change_added ON changes; DROP FUNCTION coffer_changes_added(); "
      "ALTER TABLE changes ALTER COLUMN seq DROP DEFAULT; "
      "CREATE FUNCTION coffer_number_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
      "DECLARE n bigint; BEGIN PERFORM pg_advisory_xact_lock(1131374182, 2); "
      "n := nextval('change_seq'); UPDATE changes SET seq = n WHERE id = NEW.id; "
      "PERFORM pg_notify('coffer_changes', n::text); RETURN NULL; END $$; "
      "CREATE CONSTRAINT TRIGGER change_number AFTER INSERT ON changes DEFERRABLE INITIALLY "
      "DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_number_change(); "
      "DROP INDEX secrets_live; DROP INDEX secrets_deleted; "
      "DROP TABLE webhook_deliveries; DROP TABLE users; "
      "DROP TRIGGER change_secret ON secrets; "
      "DROP TRIGGER change_secret_updated ON secret_versions; "
      "DROP FUNCTION coffer_secret_changed(); DROP FUNCTION coffer_secret_version_updated(); "
      "DROP FUNCTION coffer_change(text, text, text, text, text, bigint, bigint); "
      "ALTER TABLE secrets DROP COLUMN kind; ALTER TABLE secrets DROP COLUMN owner; "
      "ALTER TABLE secrets ADD PRIMARY KEY(vault_key, "
      "name_key); ALTER TABLE secret_versions DROP COLUMN kind; "
      "ALTER TABLE secret_versions DROP COLUMN key_json; "
      "ALTER TABLE secret_versions ADD PRIMARY KEY(vault_key, name_key, version); "
      "INSERT INTO secrets(vault_key, name_key, name, latest_version) "
      "VALUES('kept', 'old', 'Old', 'v1'); "
      "INSERT INTO secret_versions(vault_key, name_key, version, sealed_value, content_type, "
      "tags_json, enabled, created, updated) VALUES('kept', 'old', 'v1', 'x', '', '{}', 1, 1, 1); "
      "UPDATE coffer_schema SET version = 1");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->GetVault("kept").ok());
  auto old = store->GetSecret("kept", "old", "", false);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->version.name, "Old");
  EXPECT_EQ(store->GetObject(ObjectKind::kKey, "kept", "old", "", false).status().code(),
            StatusCode::kNotFound);
  SecretVersionRecord key = Version("old", "k1");
  key.key_json = "{}";
  ASSERT_TRUE(store->AddObjectVersion(ObjectKind::kKey, "kept", key).ok());
  EXPECT_EQ(store->GetSecret("kept", "old", "", false)->version.version, "v1");
  auto changes = store->ListChanges(0, 100);
  ASSERT_TRUE(changes.ok());
  ASSERT_FALSE(changes->empty());
  EXPECT_EQ(changes->back().type, "KeyNewVersionCreated");
  {
    // Numbered when inserted, by the column's default; the old trigger is gone.
    auto conn = PgConn::Connect(conninfo_);
    ASSERT_TRUE(conn.ok());
    auto numbering = (*conn)->Exec(
        "SELECT (SELECT count(*) FROM changes WHERE seq IS NULL), "
        "(SELECT count(*) FROM pg_trigger WHERE tgname = 'change_number')");
    ASSERT_TRUE(numbering.ok());
    EXPECT_EQ(numbering->Text(0, 0), "0");
    EXPECT_EQ(numbering->Text(0, 1), "0");
  }
  PendingDelivery d;
  d.vault_key = "kept";
  d.name_key = "hook";
  d.change.seq = 7;
  auto queued = store->QueueDeliveries("position", 7, {d});
  ASSERT_TRUE(queued.ok()) << queued.status().ToString();
  auto pending = store->ListDeliveries(std::nullopt, 10);
  ASSERT_TRUE(pending.ok()) << pending.status().ToString();
  EXPECT_EQ(pending->size(), 1u);
  auto conn = PgConn::Connect(conninfo_);
  ASSERT_TRUE(conn.ok());
  auto version = (*conn)->Exec("SELECT version FROM coffer_schema");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->Text(0, 0), "6");
  // 5 -> 6: users have a table, and their changes are told.
  PrincipalRecord user{"u1", "user:u1", "t", "Ada", "User", 1, "", "", "{}"};
  UserRecord record;
  record.user_principal_name = "ada@example.test";
  EXPECT_TRUE(store->CreateUser(user, record).ok());
  EXPECT_EQ(store->GetUserByName("ADA@example.test")->object_id, "u1");
  auto told = (*conn)->Exec("SELECT count(*) FROM pg_trigger WHERE tgname = 'record_user'");
  ASSERT_TRUE(told.ok());
  EXPECT_EQ(told->Text(0, 0), "1");
  // 4 -> 5: the listing index is split by state.
  auto indexes = (*conn)->Exec(
      "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
      "WHERE tablename = 'secrets'");
  ASSERT_TRUE(indexes.ok());
  EXPECT_EQ(indexes->Text(0, 0), "secrets_deleted,secrets_live,secrets_pkey,secrets_purge");
}

// A lookup of one name reads the primary key's entries for that name, not the
// vault's range, also before the planner has statistics (a new installation:
// the table filled since the last ANALYZE, which has never run).
TEST_F(PgStoreTest, OneNameIsFoundThroughThePrimaryKeyInALargeVault) {
  auto store = PostgresStore::Open(conninfo_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->CreateVault(Vault("big")).ok());
  for (int i = 0; i < 300; ++i) {
    auto added = (*store)->AddSecretVersion("big", Version("s" + std::to_string(i), "v1"));
    ASSERT_TRUE(added.ok()) << added.status().ToString();
  }
  auto conn = PgConn::Connect(conninfo_);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)
                  ->ExecScript("SET plan_cache_mode = force_generic_plan; "
                               "PREPARE one(text, text, text) AS SELECT s.name FROM vaults v "
                               "LEFT JOIN secrets s ON s.vault_key = v.name_key AND s.kind = $3 "
                               "AND s.name_key = $2 WHERE v.name_key = $1")
                  .ok());
  auto plan = (*conn)->Exec("EXPLAIN EXECUTE one('big', 's7', 'Secret')");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::string text;
  for (int row = 0; row < plan->size(); ++row) {
    text += plan->Text(row, 0) + "\n";
  }
  EXPECT_NE(text.find("secrets_pkey"), std::string::npos) << text;
  EXPECT_EQ(text.find("secrets_live"), std::string::npos) << text;
}

TEST_F(PgStoreTest, ADatabaseWithOtherTablesIsNotTakenOver) {
  Admin("CREATE TABLE meta(x int)");
  auto store = PostgresStore::Open(conninfo_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss);
}

TEST_F(PgStoreTest, ServersStartingTogetherMakeTheSchemaOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto store = PostgresStore::Open(conninfo_);
      EXPECT_TRUE(store.ok()) << store.status().ToString();
      if (store.ok()) {
        ++opened;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(opened.load(), 4);
}

TEST_F(PgStoreTest, AnUnreachableDatabaseIsUnavailableWithoutThePassword) {
  auto store = PostgresStore::Open("host=/nonexistent port=1 user=u password=hunter2 dbname=x");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.status().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace coffer::storage::postgres
