#include "storage/sqlite/sqlite_store.h"

#include <future>

#include "common/log.h"
#include "common/strings.h"

namespace coffer::storage {
namespace {

constexpr int kSchemaVersion = 7;
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
  tags_json TEXT NOT NULL DEFAULT '{}') WITHOUT ROWID;
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
  header_generation INTEGER NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS role_definitions(
  id TEXT PRIMARY KEY, name_key TEXT NOT NULL UNIQUE, role_name TEXT NOT NULL,
  definition_json TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS role_assignments(
  id TEXT PRIMARY KEY, scope TEXT NOT NULL, scope_key TEXT NOT NULL,
  role_definition_id TEXT NOT NULL, principal_id TEXT NOT NULL, principal_type TEXT NOT NULL,
  description TEXT NOT NULL, created_by TEXT NOT NULL, created INTEGER NOT NULL,
  updated INTEGER NOT NULL, UNIQUE(scope_key, role_definition_id, principal_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS role_assignments_by_role ON role_assignments(role_definition_id);
CREATE TABLE IF NOT EXISTS vaults(
  name_key TEXT PRIMARY KEY, name TEXT NOT NULL, subscription_id TEXT NOT NULL,
  resource_group TEXT NOT NULL, location TEXT NOT NULL, tenant_id TEXT NOT NULL,
  properties_json TEXT NOT NULL, tags_json TEXT NOT NULL, wrapped_data_key BLOB NOT NULL,
  created INTEGER NOT NULL, updated INTEGER NOT NULL,
  deleted_date INTEGER NOT NULL DEFAULT 0, scheduled_purge_date INTEGER NOT NULL DEFAULT 0)
  WITHOUT ROWID;
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
CREATE TABLE IF NOT EXISTS event_subscriptions(
  vault_key TEXT NOT NULL, name_key TEXT NOT NULL, vault TEXT NOT NULL, name TEXT NOT NULL,
  properties_json TEXT NOT NULL, key_generation INTEGER NOT NULL, start_seq INTEGER NOT NULL,
  created INTEGER NOT NULL, updated INTEGER NOT NULL,
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
    "AND s.name_key = NEW.name_key; END;"
    "CREATE TRIGGER IF NOT EXISTS change_vault_access AFTER UPDATE OF properties_json ON vaults "
    "WHEN json_extract(OLD.properties_json, '$.accessPolicies') IS NOT "
    "json_extract(NEW.properties_json, '$.accessPolicies') OR "
    "json_extract(OLD.properties_json, '$.enableRbacAuthorization') IS NOT "
    "json_extract(NEW.properties_json, '$.enableRbacAuthorization') BEGIN " COFFER_CHANGE_INSERT
    "NEW.name, 'VaultAccessPolicyChanged', 'Vault', NEW.name, '', NULL, NULL; END;";

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
  ASSIGN_OR_RETURN(writer_db_, Db::Open(path_, false));
  // SECURITY/durability: WAL with synchronous=FULL fsyncs the log on every
  // commit, so an acknowledged write survives a crash or power loss.
  RETURN_IF_ERROR(writer_db_->ExecScript(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  ASSIGN_OR_RETURN(Stmt * version, writer_db_->Prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool has_row, version->Step());
  int64_t user_version = has_row ? version->Int(0) : 0;
  version->Reset();
  if (user_version > kSchemaVersion) {
    return DataLossError("database schema version " + std::to_string(user_version) +
                         " is newer than this server supports");
  }
  std::string migrations;
  if (user_version >= 1 && user_version < 2) {
    migrations += kMigrateFrom1;
  }
  if (user_version >= 1 && user_version < 3) {
    migrations += kMigrateFrom2;
  }
  RETURN_IF_ERROR(writer_db_->ExecScript(std::string("BEGIN;") + migrations + kSchema + kTriggers +
                                         "PRAGMA user_version=" + std::to_string(kSchemaVersion) +
                                         ";COMMIT;"));
  writer_thread_ = std::thread([this] { WriterLoop(); });
  return OkStatus();
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
  ASSIGN_OR_RETURN(auto db, Db::Open(path_, true));
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

// ---------------------------------------------------------------- principals

namespace {

constexpr char kPrincipalColumns[] =
    "SELECT object_id, app_id, tenant_id, display_name, kind, created, resource_id, location, "
    "tags_json FROM principals ";

PrincipalRecord ReadPrincipal(const Stmt& st) {
  return PrincipalRecord{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4),
                         st.Int(5),  st.Text(6), st.Text(7), st.Text(8)};
}

}  // namespace

Status SqliteStore::InsertPrincipal(Db& db, const PrincipalRecord& p) {
  ASSIGN_OR_RETURN(Stmt * st,
                   db.Prepare("INSERT INTO principals(object_id, app_id, tenant_id, "
                              "display_name, kind, created, resource_id, location, tags_json) "
                              "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
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

Status SqliteStore::UpdatePrincipal(const PrincipalRecord& p) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE principals SET display_name = ?, location = ?, "
                                           "tags_json = ? WHERE object_id = ?"));
    st->Bind(1, p.display_name).Bind(2, p.location).Bind(3, p.tags_json).Bind(4, p.object_id);
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("principal not found");
    }
    return OkStatus();
  });
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

// ---------------------------------------------------------------- vaults

namespace {

constexpr char kVaultColumns[] =
    "SELECT name, subscription_id, resource_group, location, tenant_id, properties_json, "
    "tags_json, wrapped_data_key, created, updated, deleted_date, scheduled_purge_date "
    "FROM vaults ";

VaultRecord ReadVault(const Stmt& st) {
  return VaultRecord{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), st.Text(5),
                     st.Text(6), st.Blob(7), st.Int(8),  st.Int(9),  st.Int(10), st.Int(11)};
}

}  // namespace

Status SqliteStore::CreateVault(const VaultRecord& v) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("INSERT INTO vaults(name_key, name, subscription_id, "
                                "resource_group, location, tenant_id, properties_json, tags_json, "
                                "wrapped_data_key, created, updated) "
                                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st->Bind(1, AsciiLower(v.name)).Bind(2, v.name).Bind(3, v.subscription_id);
    st->Bind(4, v.resource_group).Bind(5, v.location).Bind(6, v.tenant_id);
    st->Bind(7, v.properties_json).Bind(8, v.tags_json).BindBlob(9, v.wrapped_data_key);
    st->Bind(10, v.created).Bind(11, v.updated);
    Status s = st->Exec();
    if (s.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("vault '" + v.name + "' already exists");
    }
    return s;
  });
}

Status SqliteStore::UpdateVault(const VaultRecord& v) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE vaults SET location = ?, tenant_id = ?, "
                                           "properties_json = ?, tags_json = ?, updated = ? "
                                           "WHERE name_key = ? AND deleted_date = 0"));
    st->Bind(1, v.location).Bind(2, v.tenant_id).Bind(3, v.properties_json);
    st->Bind(4, v.tags_json).Bind(5, v.updated).Bind(6, AsciiLower(v.name));
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("vault '" + v.name + "' not found", "VaultNotFound");
    }
    return OkStatus();
  });
}

StatusOr<VaultRecord> SqliteStore::GetVault(const std::string& name) {
  std::optional<VaultRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kVaultColumns) + "WHERE name_key = ?"));
    st->Bind(1, AsciiLower(name));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      out = ReadVault(*st);
    }
    return OkStatus();
  }));
  if (!out) {
    return NotFoundError("vault '" + name + "' not found", "VaultNotFound");
  }
  return *out;
}

StatusOr<std::vector<VaultRecord>> SqliteStore::ListVaults() {
  std::vector<VaultRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kVaultColumns) + "ORDER BY name_key"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ReadVault(*st));
    }
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
