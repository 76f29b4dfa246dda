#include "storage/sqlite/sqlite_store.h"

#include <chrono>

#include "common/log.h"
#include "common/strings.h"

namespace coffer::storage {
namespace {

constexpr int kSchemaVersion = 12;
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
CREATE TABLE IF NOT EXISTS users(
  object_id TEXT PRIMARY KEY, upn_key TEXT NOT NULL UNIQUE, user_principal_name TEXT NOT NULL,
  mail_nickname TEXT NOT NULL, given_name TEXT NOT NULL, surname TEXT NOT NULL,
  account_enabled INTEGER NOT NULL, password_hash TEXT NOT NULL,
  password_changed INTEGER NOT NULL, force_change_password INTEGER NOT NULL,
  sessions_valid_from INTEGER NOT NULL, failed_sign_ins INTEGER NOT NULL,
  locked_until INTEGER NOT NULL, lockouts INTEGER NOT NULL, created INTEGER NOT NULL,
  version INTEGER NOT NULL) WITHOUT ROWID;
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
  vault_key TEXT NOT NULL, kind TEXT NOT NULL, name_key TEXT NOT NULL, name TEXT NOT NULL,
  latest_version TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
  deleted_date INTEGER, scheduled_purge_date INTEGER, policy_json TEXT NOT NULL DEFAULT '',
  owner TEXT NOT NULL DEFAULT '', PRIMARY KEY(vault_key, kind, name_key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS secrets_listing ON secrets(vault_key, kind, deleted, name_key);
CREATE INDEX IF NOT EXISTS secrets_purge ON secrets(scheduled_purge_date) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS secret_versions(
  vault_key TEXT NOT NULL, kind TEXT NOT NULL, name_key TEXT NOT NULL, version TEXT NOT NULL,
  sealed_value BLOB NOT NULL, content_type TEXT NOT NULL, tags_json TEXT NOT NULL,
  enabled INTEGER NOT NULL, nbf INTEGER, exp INTEGER,
  created INTEGER NOT NULL, updated INTEGER NOT NULL, key_json TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(vault_key, kind, name_key, version)) WITHOUT ROWID;
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
CREATE TABLE IF NOT EXISTS webhook_deliveries(
  vault_key TEXT NOT NULL, name_key TEXT NOT NULL, seq INTEGER NOT NULL,
  event_id TEXT NOT NULL, time_ms INTEGER NOT NULL, vault TEXT NOT NULL, type TEXT NOT NULL,
  object_type TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, nbf INTEGER,
  exp INTEGER, attempts INTEGER NOT NULL, due_ms INTEGER NOT NULL, first_ms INTEGER NOT NULL,
  last_outcome TEXT NOT NULL, last_status INTEGER NOT NULL,
  PRIMARY KEY(vault_key, name_key, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_due
  ON webhook_deliveries(due_ms, vault_key, name_key, seq);
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

// An object's events are named after its kind ("Secret" + "NewVersionCreated").
constexpr char kTriggers[] =
    "CREATE TRIGGER IF NOT EXISTS change_secret_created AFTER INSERT ON secrets "
    "BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), NEW.kind || 'NewVersionCreated', "
    "NEW.kind, NEW.name, NEW.latest_version, v.nbf, v.exp FROM secret_versions v "
    "WHERE v.vault_key = NEW.vault_key AND v.kind = NEW.kind AND v.name_key = NEW.name_key "
    "AND v.version = NEW.latest_version; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_version AFTER UPDATE OF latest_version ON secrets "
    "WHEN NEW.latest_version <> OLD.latest_version BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), NEW.kind || 'NewVersionCreated', "
    "NEW.kind, NEW.name, NEW.latest_version, v.nbf, v.exp FROM secret_versions v "
    "WHERE v.vault_key = NEW.vault_key AND v.kind = NEW.kind AND v.name_key = NEW.name_key "
    "AND v.version = NEW.latest_version; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_deleted AFTER UPDATE OF deleted ON secrets "
    "WHEN NEW.deleted <> OLD.deleted BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), "
    "NEW.kind || CASE NEW.deleted WHEN 0 THEN 'Recovered' ELSE 'Deleted' END, NEW.kind, "
    "NEW.name, NEW.latest_version, NULL, NULL; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_purged AFTER DELETE ON secrets "
    "BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = OLD.vault_key), OLD.kind || 'Purged', OLD.kind, "
    "OLD.name, '', NULL, NULL; "
    "DELETE FROM notices WHERE vault_key = OLD.vault_key AND name_key = OLD.name_key "
    "AND substr(type, 1, length(OLD.kind)) = OLD.kind; END;"
    "CREATE TRIGGER IF NOT EXISTS change_secret_updated AFTER UPDATE ON secret_versions "
    "BEGIN " COFFER_CHANGE_INSERT
    "(SELECT name FROM vaults WHERE name_key = NEW.vault_key), NEW.kind || 'Updated', NEW.kind, "
    "s.name, NEW.version, NEW.nbf, NEW.exp FROM secrets s WHERE s.vault_key = NEW.vault_key "
    "AND s.kind = NEW.kind AND s.name_key = NEW.name_key; END;";

// A change to a vault's access model, written by UpdateVault (the rule is
// AccessModelChanged); the vault's name is bound.
constexpr char kVaultAccessChange[] =
    COFFER_CHANGE_INSERT "?1, 'VaultAccessPolicyChanged', 'Vault', ?1, '', NULL, NULL";

// Migrations from older schema versions, applied in order before kSchema.
// 8 -> 9 only adds webhook_deliveries, which kSchema creates.
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

// -> 10: secrets and keys share the object tables, told apart by `kind`,
// which joins their keys. SQLite cannot change a primary key, so the tables
// are set aside before kSchema makes them anew and filled after it
// (kMigrateTo10Data); the change triggers and indexes go with the old
// tables, and kTriggers makes them again.
constexpr char kMigrateTo10[] = R"sql(
DROP TRIGGER IF EXISTS change_secret_created;
DROP TRIGGER IF EXISTS change_secret_version;
DROP TRIGGER IF EXISTS change_secret_deleted;
DROP TRIGGER IF EXISTS change_secret_purged;
DROP TRIGGER IF EXISTS change_secret_updated;
DROP INDEX IF EXISTS secrets_listing;
DROP INDEX IF EXISTS secrets_purge;
ALTER TABLE secrets RENAME TO secrets_9;
ALTER TABLE secret_versions RENAME TO secret_versions_9;
)sql";

constexpr char kMigrateTo10Data[] = R"sql(
INSERT INTO secrets(vault_key, kind, name_key, name, latest_version, deleted, deleted_date,
  scheduled_purge_date)
  SELECT vault_key, 'Secret', name_key, name, latest_version, deleted, deleted_date,
  scheduled_purge_date FROM secrets_9;
INSERT INTO secret_versions(vault_key, kind, name_key, version, sealed_value, content_type,
  tags_json, enabled, nbf, exp, created, updated)
  SELECT vault_key, 'Secret', name_key, version, sealed_value, content_type, tags_json, enabled,
  nbf, exp, created, updated FROM secret_versions_9;
DROP TABLE secrets_9;
DROP TABLE secret_versions_9;
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

SqliteStore::SqliteStore(std::string path)
    : path_(std::move(path)),
      writes_([this](const auto& group, auto& results) { RunGroup(group, results); }, kMaxGroup) {}

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
  writes_.Start();
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
  if (user_version >= 1 && user_version < 10) {
    migrations += kMigrateTo10;
    data_migrations += kMigrateTo10Data;
  }
  if (user_version == 10) {
    // -> 11: objects owned by another (a certificate's key and secret).
    migrations += "ALTER TABLE secrets ADD COLUMN owner TEXT NOT NULL DEFAULT '';";
  }
  // -> 12: users, a table of their own (made by kSchema).
  return writer_db_->ExecScript(migrations + kSchema + data_migrations + kTriggers +
                                "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";");
}

SqliteStore::~SqliteStore() {
  writes_.Stop();
}

void SqliteStore::RunGroup(const std::vector<const WriteFn*>& group, std::vector<Status>& results) {
  const auto started = std::chrono::steady_clock::now();
  Status begin = writer_db_->ExecScript("BEGIN IMMEDIATE");
  if (begin.ok()) {
    for (size_t i = 0; i < group.size(); ++i) {
      Status sp = writer_db_->ExecScript("SAVEPOINT w");
      if (!sp.ok()) {
        results[i] = sp;
        continue;
      }
      results[i] = (*group[i])(*writer_db_);
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
}

Status SqliteStore::Write(WriteFn fn) {
  return writes_.Submit(std::move(fn));
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

const char* SqliteStore::VaultAccessChangeSql() const {
  return kVaultAccessChange;
}

const char* SqliteStore::ChangeBoundsSql() const {
  // AUTOINCREMENT keeps the newest seq in sqlite_sequence after its row is
  // pruned.
  return "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'changes'), "
         "(SELECT MIN(seq) FROM changes)";
}

}  // namespace coffer::storage
