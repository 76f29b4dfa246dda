#include "storage/sqlite/sqlite_store.h"

#include <chrono>
#include <future>

#include "common/log.h"
#include "common/strings.h"

namespace coffer::storage {
namespace {

constexpr int kSchemaVersion = 8;
constexpr size_t kMaxReaders = 16;
constexpr size_t kMaxGroup = 512;

// The schema. Formats and decisions: docs/storage.md.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS principals(
  object_id TEXT PRIMARY KEY, app_id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
  display_name TEXT NOT NULL, kind TEXT NOT NULL, created INTEGER NOT NULL,
  resource_id TEXT NOT NULL DEFAULT '', location TEXT NOT NULL DEFAULT '',
  tags_json TEXT NOT NULL DEFAULT '{}', version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS client_secrets(
  key_id TEXT PRIMARY KEY, principal_object_id TEXT NOT NULL, salt BLOB NOT NULL,
  hash BLOB NOT NULL, iterations INTEGER NOT NULL, hint TEXT NOT NULL,
  created INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS client_secrets_by_principal ON client_secrets(principal_object_id);
CREATE TABLE IF NOT EXISTS client_certificates(
  key_id TEXT PRIMARY KEY, principal_object_id TEXT NOT NULL, certificate_der BLOB NOT NULL,
  sha1_thumbprint BLOB NOT NULL, sha256_thumbprint BLOB NOT NULL, created INTEGER NOT NULL,
  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
  UNIQUE(principal_object_id, sha256_thumbprint)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS federated_credentials(
  principal_object_id TEXT NOT NULL, name_key TEXT NOT NULL, name TEXT NOT NULL,
  issuer TEXT NOT NULL, subject TEXT NOT NULL, audiences_json TEXT NOT NULL,
  created INTEGER NOT NULL, PRIMARY KEY(principal_object_id, name_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workloads(
  uid TEXT PRIMARY KEY, resource_key TEXT NOT NULL UNIQUE, resource_id TEXT NOT NULL,
  type TEXT NOT NULL, location TEXT NOT NULL, tags_json TEXT NOT NULL,
  system_principal_id TEXT NOT NULL, user_assigned_json TEXT NOT NULL,
  header_generation INTEGER NOT NULL, created INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS role_definitions(
  id TEXT PRIMARY KEY, name_key TEXT NOT NULL UNIQUE, role_name TEXT NOT NULL,
  definition_json TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS role_assignments(
  id TEXT PRIMARY KEY, scope TEXT NOT NULL, scope_key TEXT NOT NULL,
  role_definition_id TEXT NOT NULL, principal_id TEXT NOT NULL, principal_type TEXT NOT NULL,
  description TEXT NOT NULL, created_by TEXT NOT NULL, created INTEGER NOT NULL,
  updated INTEGER NOT NULL, UNIQUE(scope_key, role_definition_id, principal_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS role_assignments_by_role ON role_assignments(role_definition_id);
CREATE TABLE IF NOT EXISTS vaults(
  name_key TEXT PRIMARY KEY, name TEXT NOT NULL, subscription_id TEXT NOT NULL,
  resource_group TEXT NOT NULL, location TEXT NOT NULL, tenant_id TEXT NOT NULL,
  tags_json TEXT NOT NULL, wrapped_data_key BLOB NOT NULL,
  created INTEGER NOT NULL, updated INTEGER NOT NULL,
  deleted_date INTEGER NOT NULL DEFAULT 0, scheduled_purge_date INTEGER NOT NULL DEFAULT 0,
  sku TEXT NOT NULL DEFAULT 'standard', retention_days INTEGER NOT NULL DEFAULT 90,
  purge_protection INTEGER NOT NULL DEFAULT 0, rbac_authorization INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vault_access_policies(
  vault_key TEXT NOT NULL, position INTEGER NOT NULL, tenant_id TEXT NOT NULL,
  object_id TEXT NOT NULL, application_id TEXT NOT NULL, keys TEXT, secrets TEXT,
  certificates TEXT, storage TEXT, PRIMARY KEY(vault_key, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS secrets(
  vault_key TEXT NOT NULL, name_key TEXT NOT NULL, name TEXT NOT NULL,
  latest_version TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
  deleted_date INTEGER, scheduled_purge_date INTEGER,
  PRIMARY KEY(vault_key, name_key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS secrets_listing ON secrets(vault_key, deleted, name_key);
CREATE INDEX IF NOT EXISTS secrets_purge ON secrets(scheduled_purge_date) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS secret_versions(
  vault_key TEXT NOT NULL, name_key TEXT NOT NULL, version TEXT NOT NULL,
  sealed_value BLOB NOT NULL, content_type TEXT NOT NULL, tags_json TEXT NOT NULL,
  enabled INTEGER NOT NULL, nbf INTEGER, exp INTEGER,
  created INTEGER NOT NULL, updated INTEGER NOT NULL,
  PRIMARY KEY(vault_key, name_key, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, time_ms INTEGER NOT NULL,
  vault TEXT NOT NULL, type TEXT NOT NULL, object_type TEXT NOT NULL, name TEXT NOT NULL,
  version TEXT NOT NULL, nbf INTEGER, exp INTEGER);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes(time_ms);
CREATE TABLE IF NOT EXISTS notices(
  vault_key TEXT NOT NULL, name_key TEXT NOT NULL, version TEXT NOT NULL, type TEXT NOT NULL,
  PRIMARY KEY(vault_key, name_key, version, type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS used_assertions(
  app_id TEXT NOT NULL, jti TEXT NOT NULL, expires INTEGER NOT NULL,
  PRIMARY KEY(app_id, jti)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS used_assertions_by_expiry ON used_assertions(expires);
CREATE TABLE IF NOT EXISTS event_subscriptions(
  vault_key TEXT NOT NULL, name_key TEXT NOT NULL, vault TEXT NOT NULL, name TEXT NOT NULL,
  properties_json TEXT NOT NULL, key_generation INTEGER NOT NULL, start_seq INTEGER NOT NULL,
  created INTEGER NOT NULL, updated INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY(vault_key, name_key)) WITHOUT ROWID;
)sql";

// The change feed is written by triggers, so that every path that changes a
// secret or a vault's access model records it in the same transaction
// (docs/events.md). NEW_CHANGE(...) expands to an INSERT into `changes`.
#define COFFER_UUID_SQL                                                                  \
  "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || "                    \
  "substr(hex(randomblob(2)), 2) || '-' || substr('89AB', 1 + abs(random() % 4), 1) || " \
  "substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
#define COFFER_NOW_MS_SQL "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
#define COFFER_CHANGE_INSERT                                                              \
  "INSERT INTO changes(event_id, time_ms, vault, type, object_type, name, version, nbf, " \
  "exp) SELECT " COFFER_UUID_SQL ", " COFFER_NOW_MS_SQL ", "

constexpr char kTriggers[] =
    "CREATE TRIGGER IF NOT EXISTS change_secret_created AFTER INSERT ON secrets "
    "BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), 'SecretNewVersionCreated', "
    "'Secret', NEW.name, NEW.latest_version, v.nbf, v.exp FROM secret_versions v "
    "WHERE v.vault_key = NEW.vault_key AND v.name_key = NEW.name_key "
    "AND v.version = NEW.latest_version; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_version AFTER UPDATE OF latest_version ON secrets "
    "WHEN NEW.latest_version <> OLD.latest_version BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), 'SecretNewVersionCreated', "
    "'Secret', NEW.name, NEW.latest_version, v.nbf, v.exp FROM secret_versions v "
    "WHERE v.vault_key = NEW.vault_key AND v.name_key = NEW.name_key "
    "AND v.version = NEW.latest_version; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_deleted AFTER UPDATE OF deleted ON secrets "
    "WHEN NEW.deleted <> OLD.deleted BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), "
    "CASE NEW.deleted WHEN 0 THEN 'SecretRecovered' ELSE 'SecretDeleted' END, 'Secret', "
    "NEW.name, NEW.latest_version, NULL, NULL; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_purged AFTER DELETE ON secrets "
    "BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = OLD.vault_key), 'SecretPurged', 'Secret', "
    "OLD.name, '', NULL, NULL; "
    "DELETE FROM notices WHERE vault_key = OLD.vault_key AND name_key = OLD.name_key; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_updated AFTER UPDATE ON secret_versions "
    "BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), 'SecretUpdated', 'Secret', "
    "s.name, NEW.version, NEW.nbf, NEW.exp FROM secrets s WHERE s.vault_key = NEW.vault_key "
    "AND s.name_key = NEW.name_key; END;";

// A change to a vault's access model, written by UpdateVault (the rule is
// AccessModelChanged); the vault's name is bound.
constexpr char kVaultAccessChange[] =
    COFFER_CHANGE_INSERT "?1, 'VaultAccessPolicyChanged', 'Vault', ?1, '', NULL, NULL";

// Migrations from older schema versions, applied in order before kSchema.
constexpr char kMigrateFrom1[] = R"sql(
ALTER TABLE vaults ADD COLUMN deleted_date INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vaults ADD COLUMN scheduled_purge_date INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr char kMigrateFrom2[] = R"sql(
ALTER TABLE principals ADD COLUMN resource_id TEXT NOT NULL DEFAULT '';
ALTER TABLE principals ADD COLUMN location TEXT NOT NULL DEFAULT '';
ALTER TABLE principals ADD COLUMN tags_json TEXT NOT NULL DEFAULT '{}';
)sql";

// -> 8: version columns (the ARM etag), and vault settings as typed columns
// and rows instead of ARM properties JSON. The columns are added before
// kSchema and the data moved after it (kMigrateTo8Data), once the access
// policy table exists. Tables younger than the database get the columns
// from kSchema.
constexpr char kMigrateTo8[] = R"sql(
DROP TRIGGER IF EXISTS change_vault_access;
ALTER TABLE principals ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE vaults ADD COLUMN sku TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE vaults ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 90;
ALTER TABLE vaults ADD COLUMN purge_protection INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vaults ADD COLUMN rbac_authorization INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vaults ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
)sql";

#define COFFER_PERMISSIONS_SQL(type)                                     \
  "CASE json_type(e.value, '$.permissions." type                         \
  "') WHEN 'array' THEN "                                                \
  "coalesce((SELECT group_concat(p.value, ',') FROM json_each(e.value, " \
  "'$.permissions." type "') p), '') END"

constexpr char kMigrateTo8Data[] =
    "UPDATE vaults SET "
    "sku = CASE json_extract(properties_json, '$.sku.name') WHEN 'premium' THEN 'premium' "
    "ELSE 'standard' END, "
    "retention_days = coalesce(json_extract(properties_json, '$.softDeleteRetentionInDays'), 90), "
    "purge_protection = coalesce(json_extract(properties_json, '$.enablePurgeProtection'), 0), "
    "rbac_authorization = "
    "coalesce(json_extract(properties_json, '$.enableRbacAuthorization'), 0);"
    "INSERT INTO vault_access_policies(vault_key, position, tenant_id, object_id, "
    "application_id, keys, secrets, certificates, storage) "
    "SELECT v.name_key, e.key, coalesce(json_extract(e.value, '$.tenantId'), ''), "
    "coalesce(json_extract(e.value, '$.objectId'), ''), "
    "coalesce(json_extract(e.value, '$.applicationId'), ''), " COFFER_PERMISSIONS_SQL(
        "keys") ", " COFFER_PERMISSIONS_SQL("secrets") ", " COFFER_PERMISSIONS_SQL("certificates") ", " COFFER_PERMISSIONS_SQL("storage") " FROM vaults v, "
                                                                                                                                         "json_each(v.properties_json, '$.accessPolicies') e;"
    "ALTER TABLE vaults DROP COLUMN properties_json;";

}  // namespace

struct SqliteStore::PendingWrite {
  WriteFn fn;
  std::promise<Status> done;
};

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  RETURN_IF_ERROR(store->Init());
  return store;
}

Status SqliteStore::Init() {
  ASSIGN_OR_RETURN(writer_db_, SqliteDb::Open(path_, false));
  // SECURITY/durability: WAL with synchronous=FULL fsyncs the log on every
  // commit, so an acknowledged write survives a crash or power loss.
  RETURN_IF_ERROR(writer_db_->ExecScript(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  // The schema is read and changed in one write transaction, taken at once
  // (IMMEDIATE): a deferred one that reads first and then writes gets
  // SQLITE_BUSY without waiting when another process (a second server on
  // the same file) is writing, and its migrations would be computed from a
  // version that process is changing.
  RETURN_IF_ERROR(writer_db_->ExecScript("BEGIN IMMEDIATE"));
  Status schema = ApplySchema();
  if (!schema.ok()) {
    (void)writer_db_->ExecScript("ROLLBACK");
    return schema;
  }
  RETURN_IF_ERROR(writer_db_->ExecScript("COMMIT"));
  writer_thread_ = std::thread([this] { WriterLoop(); });
  return OkStatus();
}

Status SqliteStore::ApplySchema() {
  ASSIGN_OR_RETURN(Stmt * version, writer_db_->Prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool has_row, version->Step());
  int64_t user_version = has_row ? version->Int(0) : 0;
  version->Reset();
  if (user_version > kSchemaVersion) {
    return DataLossError("database schema version " + std::to_string(user_version) +
                         " is newer than this server supports");
  }
  std::string migrations;
  std::string data_migrations;
  if (user_version >= 1 && user_version < 2) {
    migrations += kMigrateFrom1;
  }
  if (user_version >= 1 && user_version < 3) {
    migrations += kMigrateFrom2;
  }
  if (user_version >= 1 && user_version < 8) {
    migrations += kMigrateTo8;
    data_migrations += kMigrateTo8Data;
  }
  if (user_version >= 5 && user_version < 8) {
    migrations += "ALTER TABLE workloads ADD COLUMN version INTEGER NOT NULL DEFAULT 1;";
  }
  if (user_version >= 6 && user_version < 8) {
    migrations += "ALTER TABLE role_definitions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;";
  }
  if (user_version == 7) {
    migrations += "ALTER TABLE event_subscriptions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;";
  }
  return writer_db_->ExecScript(migrations + kSchema + data_migrations + kTriggers +
                                "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";");
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    stopping_ = true;
  }
  write_cv_.notify_all();
  if (writer_thread_.joinable()) {
    writer_thread_.join();
  }
}

void SqliteStore::WriterLoop() {
  std::vector<PendingWrite*> group;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(write_mu_);
      write_cv_.wait(lock, [this] { return stopping_ || !write_queue_.empty(); });
      if (write_queue_.empty()) {
        return;  // stopping and drained
      }
      while (!write_queue_.empty() && group.size() < kMaxGroup) {
        group.push_back(write_queue_.front());
        write_queue_.pop_front();
      }
    }
    std::vector<Status> results(group.size());
    const auto started = std::chrono::steady_clock::now();
    Status begin = writer_db_->ExecScript("BEGIN IMMEDIATE");
    if (begin.ok()) {
      for (size_t i = 0; i < group.size(); ++i) {
        Status sp = writer_db_->ExecScript("SAVEPOINT w");
        if (!sp.ok()) {
          results[i] = sp;
          continue;
        }
        results[i] = group[i]->fn(*writer_db_);
        writer_db_->ResetAll();
        if (!results[i].ok()) {
          (void)writer_db_->ExecScript("ROLLBACK TO w");
        }
        (void)writer_db_->ExecScript("RELEASE w");
      }
      Status commit = writer_db_->ExecScript("COMMIT");
      if (!commit.ok()) {
        COFFER_LOG(kError) << "storage commit failed: " << commit.ToString();
        (void)writer_db_->ExecScript("ROLLBACK");
        for (auto& r : results) {
          if (r.ok()) {
            r = commit;
          }
        }
      }
    } else {
      for (auto& r : results) {
        r = begin;
      }
    }
    commit_latency_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    for (size_t i = 0; i < group.size(); ++i) {
      group[i]->done.set_value(results[i]);
    }
    group.clear();
  }
}

Status SqliteStore::Write(WriteFn fn) {
  PendingWrite op{std::move(fn), {}};
  std::future<Status> done = op.done.get_future();
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (stopping_) {
      return UnavailableError("storage is shutting down");
    }
    write_queue_.push_back(&op);
  }
  write_cv_.notify_one();
  return done.get();
}

StatusOr<std::unique_ptr<Db>> SqliteStore::AcquireReader() {
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    if (!readers_.empty()) {
      auto db = std::move(readers_.back());
      readers_.pop_back();
      return db;
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Db> db, SqliteDb::Open(path_, true));
  return db;
}

void SqliteStore::ReleaseReader(std::unique_ptr<Db> db) {
  std::lock_guard<std::mutex> lock(read_mu_);
  if (readers_.size() < kMaxReaders) {
    readers_.push_back(std::move(db));
  }
}

Status SqliteStore::Read(const std::function<Status(Db&)>& fn) {
  ASSIGN_OR_RETURN(auto db, AcquireReader());
  // Each read is its own implicit transaction: a consistent snapshot.
  Status s = db->ExecScript("BEGIN");
  if (s.ok()) {
    s = fn(*db);
    db->ResetAll();
    (void)db->ExecScript("COMMIT");
  }
  ReleaseReader(std::move(db));
  return s;
}

// ---------------------------------------------------------------- meta

StatusOr<std::optional<std::string>> SqliteStore::GetMeta(const std::string& key) {
  std::optional<std::string> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT value FROM meta WHERE key = ?"));
    st->Bind(1, key);
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      out = st->Text(0);
    }
    return OkStatus();
  }));
  return out;
}

Status SqliteStore::PutMeta(const std::string& key, const std::string& value) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("INSERT INTO meta(key, value) VALUES(?, ?) "
                                "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    st->Bind(1, key).Bind(2, value);
    return st->Exec();
  });
}

StatusOr<std::string> SqliteStore::UpdateMeta(const std::string& key,
                                              const Upsert<std::string>& make) {
  std::string value;
  // Read and written inside the writer's BEGIN IMMEDIATE transaction, which
  // holds the database's write lock: other processes on the same file wait.
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * find, db.Prepare("SELECT value FROM meta WHERE key = ?"));
    find->Bind(1, key);
    ASSIGN_OR_RETURN(bool row, find->Step());
    std::optional<std::string> current;
    if (row) {
      current = find->Text(0);
    }
    find->Reset();
    ASSIGN_OR_RETURN(value, make(current));
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("INSERT INTO meta(key, value) VALUES(?, ?) "
                                "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    st->Bind(1, key).Bind(2, value);
    return st->Exec();
  }));
  return value;
}

// ---------------------------------------------------------------- principals

namespace {

constexpr char kPrincipalColumns[] =
    "SELECT object_id, app_id, tenant_id, display_name, kind, created, resource_id, location, "
    "tags_json, version FROM principals ";

PrincipalRecord ReadPrincipal(const Stmt& st) {
  return PrincipalRecord{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4),
                         st.Int(5),  st.Text(6), st.Text(7), st.Text(8), st.Int(9)};
}

}  // namespace

Status SqliteStore::InsertPrincipal(Db& db, const PrincipalRecord& p) {
  if (p.kind == "UserAssignedIdentity") {
    // One identity per resource id: a create that raced another fails here,
    // inside the writer's transaction.
    ASSIGN_OR_RETURN(Stmt * same, db.Prepare("SELECT 1 FROM principals WHERE kind = ? AND "
                                             "lower(resource_id) = lower(?)"));
    same->Bind(1, p.kind).Bind(2, p.resource_id);
    ASSIGN_OR_RETURN(bool taken, same->Step());
    same->Reset();
    if (taken) {
      return AlreadyExistsError("an identity with this resource id exists");
    }
  }
  ASSIGN_OR_RETURN(Stmt * st,
                   db.Prepare("INSERT INTO principals(object_id, app_id, tenant_id, "
                              "display_name, kind, created, resource_id, location, tags_json, "
                              "version) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"));
  st->Bind(1, p.object_id).Bind(2, p.app_id).Bind(3, p.tenant_id).Bind(4, p.display_name);
  st->Bind(5, p.kind).Bind(6, p.created).Bind(7, p.resource_id).Bind(8, p.location);
  st->Bind(9, p.tags_json);
  Status s = st->Exec();
  if (s.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("principal already exists");
  }
  return s;
}

Status SqliteStore::CreatePrincipal(const PrincipalRecord& p) {
  return Write([&](Db& db) { return InsertPrincipal(db, p); });
}

StatusOr<PrincipalRecord> SqliteStore::GetPrincipalByAppId(const std::string& app_id) {
  std::optional<PrincipalRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kPrincipalColumns) + "WHERE app_id = ?"));
    st->Bind(1, app_id);
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      out = ReadPrincipal(*st);
    }
    return OkStatus();
  }));
  if (!out) {
    return NotFoundError("principal not found");
  }
  return *out;
}

StatusOr<PrincipalRecord> SqliteStore::GetPrincipal(const std::string& object_id) {
  std::optional<PrincipalRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kPrincipalColumns) + "WHERE object_id = ?"));
    st->Bind(1, object_id);
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      out = ReadPrincipal(*st);
    }
    return OkStatus();
  }));
  if (!out) {
    return NotFoundError("principal not found");
  }
  return *out;
}

StatusOr<std::vector<PrincipalRecord>> SqliteStore::ListPrincipals() {
  std::vector<PrincipalRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kPrincipalColumns) + "ORDER BY created"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ReadPrincipal(*st));
    }
  }));
  return out;
}

StatusOr<PrincipalRecord> SqliteStore::UpdatePrincipal(const std::string& object_id,
                                                       const Mutation<PrincipalRecord>& mutate) {
  PrincipalRecord p;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * find,
                     db.Prepare(std::string(kPrincipalColumns) + "WHERE object_id = ?"));
    find->Bind(1, object_id);
    ASSIGN_OR_RETURN(bool row, find->Step());
    if (!row) {
      find->Reset();
      return NotFoundError("principal not found");
    }
    PrincipalRecord current = ReadPrincipal(*find);
    find->Reset();
    p = current;
    RETURN_IF_ERROR(mutate(p));
    PrincipalRecord stored = current;
    stored.display_name = p.display_name;
    stored.location = p.location;
    stored.tags_json = p.tags_json;
    stored.version = current.version + 1;
    p = stored;
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE principals SET display_name = ?, location = ?, "
                                           "tags_json = ?, version = ? WHERE object_id = ?"));
    st->Bind(1, p.display_name).Bind(2, p.location).Bind(3, p.tags_json).Bind(4, p.version);
    st->Bind(5, p.object_id);
    return st->Exec();
  }));
  return p;
}

Status SqliteStore::RequirePrincipal(Db& db, const std::string& object_id) {
  ASSIGN_OR_RETURN(Stmt * chk, db.Prepare("SELECT 1 FROM principals WHERE object_id = ?"));
  chk->Bind(1, object_id);
  ASSIGN_OR_RETURN(bool exists, chk->Step());
  chk->Reset();
  if (!exists) {
    return NotFoundError("principal not found");
  }
  return OkStatus();
}

Status SqliteStore::DeletePrincipalRows(Db& db, const std::string& object_id) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM principals WHERE object_id = ?"));
  st->Bind(1, object_id);
  RETURN_IF_ERROR(st->Exec());
  if (db.Changes() == 0) {
    return NotFoundError("principal not found");
  }
  for (const char* sql : {"DELETE FROM client_secrets WHERE principal_object_id = ?",
                          "DELETE FROM client_certificates WHERE principal_object_id = ?",
                          "DELETE FROM federated_credentials WHERE principal_object_id = ?"}) {
    ASSIGN_OR_RETURN(Stmt * del, db.Prepare(sql));
    del->Bind(1, object_id);
    RETURN_IF_ERROR(del->Exec());
  }
  return OkStatus();
}

Status SqliteStore::DeletePrincipal(const std::string& object_id) {
  return Write([&](Db& db) { return DeletePrincipalRows(db, object_id); });
}

Status SqliteStore::AddClientSecret(const ClientSecretRecord& c) {
  return Write([&](Db& db) -> Status {
    RETURN_IF_ERROR(RequirePrincipal(db, c.principal_object_id));
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO client_secrets(key_id, "
                                           "principal_object_id, salt, hash, iterations, hint, "
                                           "created, expires) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, c.key_id).Bind(2, c.principal_object_id).BindBlob(3, c.salt).BindBlob(4, c.hash);
    st->Bind(5, static_cast<int64_t>(c.iterations)).Bind(6, c.hint).Bind(7, c.created);
    st->Bind(8, c.expires);
    return st->Exec();
  });
}

StatusOr<std::vector<ClientSecretRecord>> SqliteStore::ListClientSecrets(
    const std::string& principal_object_id) {
  std::vector<ClientSecretRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT key_id, principal_object_id, salt, hash, "
                                           "iterations, hint, created, expires FROM "
                                           "client_secrets WHERE principal_object_id = ? "
                                           "ORDER BY created"));
    st->Bind(1, principal_object_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ClientSecretRecord{st->Text(0), st->Text(1), st->Blob(2), st->Blob(3),
                                       static_cast<int>(st->Int(4)), st->Text(5), st->Int(6),
                                       st->Int(7)});
    }
  }));
  return out;
}

Status SqliteStore::RemoveClientSecret(const std::string& principal_object_id,
                                       const std::string& key_id) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM client_secrets WHERE "
                                           "principal_object_id = ? AND key_id = ?"));
    st->Bind(1, principal_object_id).Bind(2, key_id);
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("client secret '" + key_id + "' not found");
    }
    return OkStatus();
  });
}

Status SqliteStore::AddClientCertificate(const ClientCertificateRecord& c) {
  return Write([&](Db& db) -> Status {
    RETURN_IF_ERROR(RequirePrincipal(db, c.principal_object_id));
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("INSERT INTO client_certificates(key_id, principal_object_id, "
                                "certificate_der, sha1_thumbprint, sha256_thumbprint, created, "
                                "not_before, not_after) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, c.key_id).Bind(2, c.principal_object_id).BindBlob(3, c.certificate_der);
    st->BindBlob(4, c.sha1_thumbprint).BindBlob(5, c.sha256_thumbprint).Bind(6, c.created);
    st->Bind(7, c.not_before).Bind(8, c.not_after);
    Status s = st->Exec();
    if (s.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("the principal already has this certificate");
    }
    return s;
  });
}

StatusOr<std::vector<ClientCertificateRecord>> SqliteStore::ListClientCertificates(
    const std::string& principal_object_id) {
  std::vector<ClientCertificateRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT key_id, principal_object_id, certificate_der, "
                                           "sha1_thumbprint, sha256_thumbprint, created, "
                                           "not_before, not_after FROM client_certificates "
                                           "WHERE principal_object_id = ? ORDER BY created"));
    st->Bind(1, principal_object_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ClientCertificateRecord{st->Text(0), st->Text(1), st->Blob(2), st->Blob(3),
                                            st->Blob(4), st->Int(5), st->Int(6), st->Int(7)});
    }
  }));
  return out;
}

Status SqliteStore::RemoveClientCertificate(const std::string& principal_object_id,
                                            const std::string& key_id) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM client_certificates WHERE "
                                           "principal_object_id = ? AND key_id = ?"));
    st->Bind(1, principal_object_id).Bind(2, key_id);
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("client certificate '" + key_id + "' not found");
    }
    return OkStatus();
  });
}

StatusOr<bool> SqliteStore::RecordAssertionId(const std::string& app_id, const std::string& jti,
                                              int64_t expires, int64_t now) {
  bool recorded = false;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * prune, db.Prepare("DELETE FROM used_assertions WHERE expires <= ?"));
    prune->Bind(1, now);
    RETURN_IF_ERROR(prune->Exec());
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO used_assertions(app_id, jti, expires) "
                                           "VALUES(?, ?, ?) ON CONFLICT DO NOTHING"));
    st->Bind(1, app_id).Bind(2, jti).Bind(3, expires);
    RETURN_IF_ERROR(st->Exec());
    recorded = db.Changes() == 1;
    return OkStatus();
  }));
  return recorded;
}

// ---------------------------------------------------------------- vaults

namespace {

constexpr char kVaultColumns[] =
    "SELECT name, subscription_id, resource_group, location, tenant_id, sku, retention_days, "
    "purge_protection, rbac_authorization, tags_json, wrapped_data_key, created, updated, "
    "deleted_date, scheduled_purge_date, version, name_key FROM vaults ";

VaultRecord ReadVault(const Stmt& st) {
  VaultRecord v;
  v.name = st.Text(0);
  v.subscription_id = st.Text(1);
  v.resource_group = st.Text(2);
  v.location = st.Text(3);
  v.tenant_id = st.Text(4);
  v.sku = st.Text(5);
  v.retention_days = static_cast<int>(st.Int(6));
  v.purge_protection = st.Int(7) != 0;
  v.rbac_authorization = st.Int(8) != 0;
  v.tags_json = st.Text(9);
  v.wrapped_data_key = st.Blob(10);
  v.created = st.Int(11);
  v.updated = st.Int(12);
  v.deleted_date = st.Int(13);
  v.scheduled_purge_date = st.Int(14);
  v.version = st.Int(15);
  return v;
}

// Permission names are stored joined by ',' (Key Vault's names hold none);
// NULL when the entry does not mention the object type.
std::optional<std::string> JoinPermissions(const std::optional<std::vector<std::string>>& list) {
  if (!list) {
    return std::nullopt;
  }
  std::string out;
  for (const auto& name : *list) {
    out += (out.empty() ? "" : ",") + name;
  }
  return out;
}

std::optional<std::vector<std::string>> SplitPermissions(const std::optional<std::string>& text) {
  if (!text) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  if (!text->empty()) {
    for (auto piece : Split(*text, ',')) {
      out.emplace_back(piece);
    }
  }
  return out;
}

void BindOptional(Stmt& st, int index, const std::optional<std::string>& value) {
  if (value) {
    st.Bind(index, *value);
  } else {
    st.BindNull(index);
  }
}

// The access policies of the vault `key`, in order.
Status ReadAccessPolicies(Db& db, const std::string& key, std::vector<AccessPolicyRecord>& out) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT tenant_id, object_id, application_id, keys, "
                                         "secrets, certificates, storage FROM "
                                         "vault_access_policies WHERE vault_key = ? "
                                         "ORDER BY position"));
  st->Bind(1, key);
  out.clear();
  while (true) {
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) {
      return OkStatus();
    }
    AccessPolicyRecord p;
    p.tenant_id = st->Text(0);
    p.object_id = st->Text(1);
    p.application_id = st->Text(2);
    p.keys = SplitPermissions(st->OptText(3));
    p.secrets = SplitPermissions(st->OptText(4));
    p.certificates = SplitPermissions(st->OptText(5));
    p.storage = SplitPermissions(st->OptText(6));
    out.push_back(std::move(p));
  }
}

Status WriteAccessPolicies(Db& db, const std::string& key,
                           const std::vector<AccessPolicyRecord>& policies) {
  ASSIGN_OR_RETURN(Stmt * del, db.Prepare("DELETE FROM vault_access_policies WHERE vault_key = ?"));
  del->Bind(1, key);
  RETURN_IF_ERROR(del->Exec());
  for (size_t i = 0; i < policies.size(); ++i) {
    const AccessPolicyRecord& p = policies[i];
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO vault_access_policies(vault_key, "
                                           "position, tenant_id, object_id, application_id, "
                                           "keys, secrets, certificates, storage) "
                                           "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, key).Bind(2, static_cast<int64_t>(i)).Bind(3, p.tenant_id).Bind(4, p.object_id);
    st->Bind(5, p.application_id);
    BindOptional(*st, 6, JoinPermissions(p.keys));
    BindOptional(*st, 7, JoinPermissions(p.secrets));
    BindOptional(*st, 8, JoinPermissions(p.certificates));
    BindOptional(*st, 9, JoinPermissions(p.storage));
    RETURN_IF_ERROR(st->Exec());
  }
  return OkStatus();
}

// Reads the vault rows `st` yields, with their access policies.
Status ReadVaults(Db& db, Stmt& st, std::vector<VaultRecord>& out) {
  std::vector<std::string> keys;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) {
      break;
    }
    out.push_back(ReadVault(st));
    keys.push_back(st.Text(16));
  }
  st.Reset();
  for (size_t i = 0; i < out.size(); ++i) {
    RETURN_IF_ERROR(ReadAccessPolicies(db, keys[i], out[i].access_policies));
  }
  return OkStatus();
}

Status InsertVault(Db& db, const VaultRecord& v) {
  ASSIGN_OR_RETURN(
      Stmt * st,
      db.Prepare("INSERT INTO vaults(name_key, name, subscription_id, resource_group, location, "
                 "tenant_id, sku, retention_days, purge_protection, rbac_authorization, "
                 "tags_json, wrapped_data_key, created, updated, version) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"));
  st->Bind(1, AsciiLower(v.name)).Bind(2, v.name).Bind(3, v.subscription_id);
  st->Bind(4, v.resource_group).Bind(5, v.location).Bind(6, v.tenant_id).Bind(7, v.sku);
  st->Bind(8, int64_t{v.retention_days}).Bind(9, int64_t{v.purge_protection});
  st->Bind(10, int64_t{v.rbac_authorization}).Bind(11, v.tags_json);
  st->BindBlob(12, v.wrapped_data_key).Bind(13, v.created).Bind(14, v.updated);
  Status s = st->Exec();
  if (s.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("vault '" + v.name + "' already exists");
  }
  RETURN_IF_ERROR(s);
  return WriteAccessPolicies(db, AsciiLower(v.name), v.access_policies);
}

}  // namespace

Status SqliteStore::CreateVault(const VaultRecord& v) {
  return Write([&](Db& db) { return InsertVault(db, v); });
}

StatusOr<VaultRecord> SqliteStore::UpdateVault(const std::string& name,
                                               const Mutation<VaultRecord>& mutate) {
  VaultRecord updated;
  std::string key = AsciiLower(name);
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * find, db.Prepare(std::string(kVaultColumns) +
                                             "WHERE name_key = ? AND deleted_date = 0"));
    find->Bind(1, key);
    std::vector<VaultRecord> found;
    RETURN_IF_ERROR(ReadVaults(db, *find, found));
    if (found.empty()) {
      return NotFoundError("vault '" + name + "' not found", "VaultNotFound");
    }
    const VaultRecord& old = found.front();
    updated = old;
    RETURN_IF_ERROR(mutate(updated));
    // Identity, key and deletion state are not the mutation's to change.
    updated.name = old.name;
    updated.subscription_id = old.subscription_id;
    updated.resource_group = old.resource_group;
    updated.wrapped_data_key = old.wrapped_data_key;
    updated.created = old.created;
    updated.deleted_date = old.deleted_date;
    updated.scheduled_purge_date = old.scheduled_purge_date;
    updated.version = old.version + 1;
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE vaults SET location = ?, tenant_id = ?, "
                                           "sku = ?, retention_days = ?, purge_protection = ?, "
                                           "rbac_authorization = ?, tags_json = ?, updated = ?, "
                                           "version = ? WHERE name_key = ?"));
    st->Bind(1, updated.location).Bind(2, updated.tenant_id).Bind(3, updated.sku);
    st->Bind(4, int64_t{updated.retention_days}).Bind(5, int64_t{updated.purge_protection});
    st->Bind(6, int64_t{updated.rbac_authorization}).Bind(7, updated.tags_json);
    st->Bind(8, updated.updated).Bind(9, updated.version).Bind(10, key);
    RETURN_IF_ERROR(st->Exec());
    if (updated.access_policies != old.access_policies) {
      RETURN_IF_ERROR(WriteAccessPolicies(db, key, updated.access_policies));
    }
    if (AccessModelChanged(old, updated)) {
      ASSIGN_OR_RETURN(Stmt * change, db.Prepare(kVaultAccessChange));
      change->Bind(1, updated.name);
      RETURN_IF_ERROR(change->Exec());
    }
    return OkStatus();
  }));
  return updated;
}

StatusOr<VaultRecord> SqliteStore::GetVault(const std::string& name) {
  std::vector<VaultRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kVaultColumns) + "WHERE name_key = ?"));
    st->Bind(1, AsciiLower(name));
    return ReadVaults(db, *st, out);
  }));
  if (out.empty()) {
    return NotFoundError("vault '" + name + "' not found", "VaultNotFound");
  }
  return std::move(out.front());
}

StatusOr<std::vector<VaultRecord>> SqliteStore::ListVaults() {
  std::vector<VaultRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kVaultColumns) + "ORDER BY name_key"));
    return ReadVaults(db, *st, out);
  }));
  return out;
}

Status SqliteStore::MarkVaultDeleted(const std::string& name, int64_t deleted_date,
                                     int64_t scheduled_purge_date) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE vaults SET deleted_date = ?, "
                                           "scheduled_purge_date = ? WHERE name_key = ? AND "
                                           "deleted_date = 0"));
    st->Bind(1, deleted_date).Bind(2, scheduled_purge_date).Bind(3, AsciiLower(name));
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("vault '" + name + "' not found", "VaultNotFound");
    }
    ASSIGN_OR_RETURN(Stmt * scope, db.Prepare("SELECT subscription_id, resource_group, name "
                                              "FROM vaults WHERE name_key = ?"));
    scope->Bind(1, AsciiLower(name));
    ASSIGN_OR_RETURN(bool row, scope->Step());
    if (!row) {
      return InternalError("vault row vanished inside its transaction");
    }
    VaultRecord v;
    v.subscription_id = scope->Text(0);
    v.resource_group = scope->Text(1);
    v.name = scope->Text(2);
    return DeleteRoleAssignmentsUnder(db, v.ResourceId());
  });
}

Status SqliteStore::RecoverVault(const std::string& name) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE vaults SET deleted_date = 0, "
                                           "scheduled_purge_date = 0 WHERE name_key = ? AND "
                                           "deleted_date <> 0"));
    st->Bind(1, AsciiLower(name));
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("deleted vault '" + name + "' not found", "VaultNotFound");
    }
    return OkStatus();
  });
}

namespace {

Status RemoveVault(Db& db, const std::string& key) {
  for (const char* sql : {"DELETE FROM secret_versions WHERE vault_key = ?",
                          "DELETE FROM secrets WHERE vault_key = ?",
                          "DELETE FROM event_subscriptions WHERE vault_key = ?",
                          "DELETE FROM vault_access_policies WHERE vault_key = ?",
                          "DELETE FROM vaults WHERE name_key = ?"}) {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(sql));
    st->Bind(1, key);
    RETURN_IF_ERROR(st->Exec());
  }
  return OkStatus();
}

}  // namespace

Status SqliteStore::PurgeVault(const std::string& name) {
  std::string key = AsciiLower(name);
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT 1 FROM vaults WHERE name_key = ?"));
    st->Bind(1, key);
    ASSIGN_OR_RETURN(bool exists, st->Step());
    st->Reset();
    if (!exists) {
      return NotFoundError("vault '" + name + "' not found", "VaultNotFound");
    }
    return RemoveVault(db, key);
  });
}

StatusOr<int> SqliteStore::PurgeExpiredVaults(int64_t now) {
  int count = 0;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    count = 0;
    std::vector<std::string> due;
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT name_key FROM vaults WHERE deleted_date <> 0 "
                                           "AND scheduled_purge_date <= ?"));
    st->Bind(1, now);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        break;
      }
      due.push_back(st->Text(0));
    }
    st->Reset();
    for (const auto& key : due) {
      RETURN_IF_ERROR(RemoveVault(db, key));
      ++count;
    }
    return OkStatus();
  }));
  return count;
}

}  // namespace coffer::storage
