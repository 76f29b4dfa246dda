#include "storage/postgres/pg_store.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>

#include "common/log.h"

#include <sys/eventfd.h>

namespace coffer::storage::postgres {
namespace {

constexpr int kSchemaVersion = 6;
constexpr size_t kMaxReaders = 16;
constexpr size_t kMaxGroup = 512;
// Attempts at a whole group before its writes run one by one, and at each
// write alone.
constexpr int kGroupAttempts = 2;
constexpr int kSingleAttempts = 5;
// Advisory lock keys (the two-int form, class 0x436f6666 = "Coff").
constexpr char kSchemaLock[] = "pg_advisory_xact_lock(1131374182, 1)";
constexpr char kWriterLock[] = "pg_advisory_xact_lock(1131374182, 3)";
constexpr char kLeaderLock[] = "SELECT pg_try_advisory_lock(1131374182, 4)";

// A serialization failure or deadlock: PostgreSQL aborted the transaction
// and it may run again (a write's own kAborted carries no SQLSTATE).
bool ConflictAborted(const Status& s) {
  return s.code() == StatusCode::kAborted && (s.reason() == "40001" || s.reason() == "40P01");
}

// SECURITY: what PostgreSQL and libpq say (host names, ports, socket paths,
// table and constraint names) is for the operator's log, not for clients:
// a status that came from PgConn leaves the store with the same code and a
// message of its own. The store's own statuses (not found, conflict with
// a reason of Key Vault's) pass unchanged.
Status ForClients(Status s) {
  if (s.ok() || s.message().rfind("PostgreSQL", 0) != 0) {
    return s;
  }
  COFFER_LOG(kWarning) << "storage: " << s.ToString();
  switch (s.code()) {
    case StatusCode::kUnavailable:
      return UnavailableError("storage is unavailable: the database cannot be reached; try again");
    case StatusCode::kAlreadyExists:
      return AlreadyExistsError("storage: the record exists already");
    case StatusCode::kAborted:
      return AbortedError("storage: a concurrent write conflicted; try again");
    default:
      return InternalError("storage: the database failed the request");
  }
}

// Pending webhook deliveries: in the schema since version 2, and what the
// migration from 1 adds.
#define COFFER_PG_DELIVERIES                                                                    \
  "CREATE TABLE webhook_deliveries("                                                            \
  "vault_key text COLLATE \"C\" NOT NULL, name_key text COLLATE \"C\" NOT NULL, "               \
  "seq bigint NOT NULL, event_id text NOT NULL, time_ms bigint NOT NULL, vault text NOT NULL, " \
  "type text NOT NULL, object_type text NOT NULL, name text NOT NULL, version text NOT NULL, "  \
  "nbf bigint, exp bigint, attempts bigint NOT NULL, due_ms bigint NOT NULL, "                  \
  "first_ms bigint NOT NULL, last_outcome text NOT NULL, last_status bigint NOT NULL, "         \
  "PRIMARY KEY(vault_key, name_key, seq));"                                                     \
  "CREATE INDEX webhook_deliveries_by_due ON webhook_deliveries(due_ms, vault_key, name_key, "  \
  "seq);"

// The schema: SQLite's (sqlite/sqlite_store.cc) in PostgreSQL's types. Text
// compares byte-wise (COLLATE "C") as SQLite's does, so listings page in the
// same order on both. Formats and decisions: docs/storage.md.
constexpr char kSchema[] = R"sql(
CREATE TABLE meta(
  key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE principals(
  object_id text COLLATE "C" PRIMARY KEY, app_id text COLLATE "C" NOT NULL UNIQUE,
  tenant_id text NOT NULL, display_name text NOT NULL, kind text NOT NULL,
  created bigint NOT NULL, resource_id text NOT NULL DEFAULT '',
  location text NOT NULL DEFAULT '', tags_json text NOT NULL DEFAULT '{}',
  version bigint NOT NULL DEFAULT 1);
CREATE TABLE client_secrets(
  key_id text COLLATE "C" PRIMARY KEY, principal_object_id text COLLATE "C" NOT NULL,
  salt bytea NOT NULL, hash bytea NOT NULL, iterations bigint NOT NULL, hint text NOT NULL,
  created bigint NOT NULL, expires bigint NOT NULL);
CREATE INDEX client_secrets_by_principal ON client_secrets(principal_object_id);
CREATE TABLE client_certificates(
  key_id text COLLATE "C" PRIMARY KEY, principal_object_id text COLLATE "C" NOT NULL,
  certificate_der bytea NOT NULL, sha1_thumbprint bytea NOT NULL,
  sha256_thumbprint bytea NOT NULL, created bigint NOT NULL, not_before bigint NOT NULL,
  not_after bigint NOT NULL, UNIQUE(principal_object_id, sha256_thumbprint));
CREATE TABLE federated_credentials(
  principal_object_id text COLLATE "C" NOT NULL, name_key text COLLATE "C" NOT NULL,
  name text NOT NULL, issuer text NOT NULL, subject text NOT NULL,
  audiences_json text NOT NULL, created bigint NOT NULL,
  PRIMARY KEY(principal_object_id, name_key));
CREATE TABLE workloads(
  uid text COLLATE "C" PRIMARY KEY, resource_key text COLLATE "C" NOT NULL UNIQUE,
  resource_id text NOT NULL, type text NOT NULL, location text NOT NULL,
  tags_json text NOT NULL, system_principal_id text NOT NULL,
  user_assigned_json text NOT NULL, header_generation bigint NOT NULL,
  created bigint NOT NULL, version bigint NOT NULL DEFAULT 1);
CREATE TABLE role_definitions(
  id text COLLATE "C" PRIMARY KEY, name_key text COLLATE "C" NOT NULL UNIQUE,
  role_name text NOT NULL, definition_json text NOT NULL, created bigint NOT NULL,
  updated bigint NOT NULL, version bigint NOT NULL DEFAULT 1);
CREATE TABLE role_assignments(
  id text COLLATE "C" PRIMARY KEY, scope text NOT NULL, scope_key text COLLATE "C" NOT NULL,
  role_definition_id text COLLATE "C" NOT NULL, principal_id text COLLATE "C" NOT NULL,
  principal_type text NOT NULL, description text NOT NULL, created_by text NOT NULL,
  created bigint NOT NULL, updated bigint NOT NULL,
  UNIQUE(scope_key, role_definition_id, principal_id));
CREATE INDEX role_assignments_by_role ON role_assignments(role_definition_id);
CREATE TABLE vaults(
  name_key text COLLATE "C" PRIMARY KEY, name text NOT NULL, subscription_id text NOT NULL,
  resource_group text NOT NULL, location text NOT NULL, tenant_id text NOT NULL,
  tags_json text NOT NULL, wrapped_data_key bytea NOT NULL,
  created bigint NOT NULL, updated bigint NOT NULL,
  deleted_date bigint NOT NULL DEFAULT 0, scheduled_purge_date bigint NOT NULL DEFAULT 0,
  sku text NOT NULL DEFAULT 'standard', retention_days bigint NOT NULL DEFAULT 90,
  purge_protection bigint NOT NULL DEFAULT 0, rbac_authorization bigint NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 1);
CREATE TABLE vault_access_policies(
  vault_key text COLLATE "C" NOT NULL, position bigint NOT NULL, tenant_id text NOT NULL,
  object_id text NOT NULL, application_id text NOT NULL, keys text, secrets text,
  certificates text, storage text, PRIMARY KEY(vault_key, position));
CREATE TABLE secrets(
  vault_key text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL,
  name_key text COLLATE "C" NOT NULL, name text NOT NULL,
  latest_version text NOT NULL, deleted bigint NOT NULL DEFAULT 0,
  deleted_date bigint, scheduled_purge_date bigint, policy_json text NOT NULL DEFAULT '',
  owner text COLLATE "C" NOT NULL DEFAULT '', PRIMARY KEY(vault_key, kind, name_key));
CREATE INDEX secrets_live ON secrets(vault_key, kind, name_key) WHERE deleted = 0;
CREATE INDEX secrets_deleted ON secrets(vault_key, kind, name_key) WHERE deleted = 1;
CREATE INDEX secrets_purge ON secrets(scheduled_purge_date) WHERE deleted = 1;
CREATE TABLE secret_versions(
  vault_key text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL,
  name_key text COLLATE "C" NOT NULL,
  version text COLLATE "C" NOT NULL, sealed_value bytea NOT NULL, content_type text NOT NULL,
  tags_json text NOT NULL, enabled bigint NOT NULL, nbf bigint, exp bigint,
  created bigint NOT NULL, updated bigint NOT NULL, key_json text NOT NULL DEFAULT '',
  PRIMARY KEY(vault_key, kind, name_key, version));
CREATE TABLE changes(
  id bigserial PRIMARY KEY, seq bigint UNIQUE, event_id text NOT NULL, time_ms bigint NOT NULL,
  vault text NOT NULL, type text NOT NULL, object_type text NOT NULL, name text NOT NULL,
  version text NOT NULL, nbf bigint, exp bigint);
CREATE INDEX changes_by_time ON changes(time_ms);
CREATE SEQUENCE change_seq;
CREATE TABLE changes_pruned(seq bigint NOT NULL);
INSERT INTO changes_pruned VALUES(0);
CREATE TABLE notices(
  vault_key text COLLATE "C" NOT NULL, name_key text COLLATE "C" NOT NULL,
  version text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,
  PRIMARY KEY(vault_key, name_key, version, type));
CREATE TABLE used_assertions(
  app_id text COLLATE "C" NOT NULL, jti text COLLATE "C" NOT NULL, expires bigint NOT NULL,
  PRIMARY KEY(app_id, jti));
CREATE INDEX used_assertions_by_expiry ON used_assertions(expires);
CREATE TABLE event_subscriptions(
  vault_key text COLLATE "C" NOT NULL, name_key text COLLATE "C" NOT NULL, vault text NOT NULL,
  name text NOT NULL, properties_json text NOT NULL, key_generation bigint NOT NULL,
  start_seq bigint NOT NULL, created bigint NOT NULL, updated bigint NOT NULL,
  version bigint NOT NULL DEFAULT 1, PRIMARY KEY(vault_key, name_key));
)sql" COFFER_PG_DELIVERIES;

// coffer_change() appends one change of an object to the feed. In PL/pgSQL,
// whose statements are planned once per session: a function in SQL is
// parsed and planned at every call, which took more time than the INSERT
// (schema 4 and before), while every server waited for the writer lock.
#define COFFER_PG_CHANGE_FUNCTION                                                                \
  "CREATE OR REPLACE FUNCTION coffer_change(p_vault_key text, p_type text, p_object_type text, " \
  "p_name text, p_version text, p_nbf bigint, p_exp bigint) RETURNS void LANGUAGE plpgsql "      \
  "AS $$ BEGIN "                                                                                 \
  "INSERT INTO changes(event_id, time_ms, vault, type, object_type, name, version, nbf, exp) "   \
  "SELECT gen_random_uuid()::text, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, "     \
  "v.name, p_type, p_object_type, p_name, p_version, p_nbf, p_exp "                              \
  "FROM vaults v WHERE v.name_key = p_vault_key; "                                               \
  "END $$;"

// The object tables' change triggers, apart so that the migration to 3 can
// make them anew. An object's events are named after its kind.
constexpr char kObjectTriggers[] = COFFER_PG_CHANGE_FUNCTION R"sql(
CREATE FUNCTION coffer_secret_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v record;
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM coffer_change(OLD.vault_key, OLD.kind || 'Purged', OLD.kind, OLD.name, '', NULL,
                          NULL);
    DELETE FROM notices WHERE vault_key = OLD.vault_key AND name_key = OLD.name_key
      AND starts_with(type, OLD.kind);
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.deleted <> OLD.deleted THEN
    PERFORM coffer_change(NEW.vault_key,
        NEW.kind || CASE NEW.deleted WHEN 0 THEN 'Recovered' ELSE 'Deleted' END, NEW.kind,
        NEW.name, NEW.latest_version, NULL, NULL);
  END IF;
  IF TG_OP = 'INSERT' OR NEW.latest_version <> OLD.latest_version THEN
    SELECT sv.nbf, sv.exp INTO v FROM secret_versions sv
      WHERE sv.vault_key = NEW.vault_key AND sv.kind = NEW.kind AND sv.name_key = NEW.name_key
        AND sv.version = NEW.latest_version;
    IF FOUND THEN
      PERFORM coffer_change(NEW.vault_key, NEW.kind || 'NewVersionCreated', NEW.kind, NEW.name,
                            NEW.latest_version, v.nbf, v.exp);
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER change_secret AFTER INSERT OR UPDATE OR DELETE ON secrets
  FOR EACH ROW EXECUTE FUNCTION coffer_secret_changed();
CREATE FUNCTION coffer_secret_version_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM coffer_change(NEW.vault_key, NEW.kind || 'Updated', NEW.kind, s.name, NEW.version,
                        NEW.nbf, NEW.exp)
    FROM secrets s WHERE s.vault_key = NEW.vault_key AND s.kind = NEW.kind
      AND s.name_key = NEW.name_key;
  RETURN NULL;
END $$;
CREATE TRIGGER change_secret_updated AFTER UPDATE ON secret_versions
  FOR EACH ROW EXECUTE FUNCTION coffer_secret_version_updated();
)sql";

// -> 3: secrets and keys share the object tables, told apart by `kind`,
// which joins their keys.
constexpr char kMigrateTo3[] = R"sql(
DROP TRIGGER IF EXISTS change_secret ON secrets;
DROP TRIGGER IF EXISTS change_secret_updated ON secret_versions;
DROP FUNCTION IF EXISTS coffer_secret_changed();
DROP FUNCTION IF EXISTS coffer_secret_version_updated();
DROP FUNCTION IF EXISTS coffer_change(text, text, text, text, bigint, bigint);
ALTER TABLE secrets ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'Secret';
ALTER TABLE secrets ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE secrets ADD COLUMN IF NOT EXISTS policy_json text NOT NULL DEFAULT '';
ALTER TABLE secrets DROP CONSTRAINT IF EXISTS secrets_pkey;
ALTER TABLE secrets ADD PRIMARY KEY(vault_key, kind, name_key);
DROP INDEX IF EXISTS secrets_listing;
CREATE INDEX secrets_listing ON secrets(vault_key, kind, deleted, name_key);
ALTER TABLE secret_versions ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'Secret';
ALTER TABLE secret_versions ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE secret_versions ADD COLUMN key_json text NOT NULL DEFAULT '';
ALTER TABLE secret_versions DROP CONSTRAINT IF EXISTS secret_versions_pkey;
ALTER TABLE secret_versions ADD PRIMARY KEY(vault_key, kind, name_key, version);
)sql";

// The change feed's numbering (see pg_store.h): a change takes its seq when
// it is inserted, and each statement that inserts changes announces the
// feed (a notification, delivered at COMMIT).
#define COFFER_PG_CHANGE_NUMBERING                                                            \
  "ALTER TABLE changes ALTER COLUMN seq SET DEFAULT nextval('change_seq'); "                  \
  "CREATE OR REPLACE FUNCTION coffer_changes_added() RETURNS trigger LANGUAGE plpgsql AS $$ " \
  "BEGIN "                                                                                    \
  "PERFORM pg_notify('coffer_changes', ''); RETURN NULL; END $$; "                            \
  "CREATE OR REPLACE TRIGGER change_added AFTER INSERT ON changes FOR EACH STATEMENT "        \
  "EXECUTE FUNCTION coffer_changes_added();"

// The change feed's triggers: the same changes as SQLite's, and the commit
// order numbering. coffer_change() appends one row.
constexpr char kTriggers[] = COFFER_PG_CHANGE_NUMBERING R"sql(
CREATE FUNCTION coffer_changes_pruned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE changes_pruned SET seq = GREATEST(seq, (SELECT COALESCE(MAX(seq), 0) FROM gone));
  RETURN NULL;
END $$;
CREATE TRIGGER change_pruned AFTER DELETE ON changes REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION coffer_changes_pruned();
CREATE FUNCTION coffer_record_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('coffer_records', TG_TABLE_NAME || ':' || TG_OP || ':' ||
      (to_jsonb(CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END) ->> TG_ARGV[0]));
  RETURN NULL;
END $$;
CREATE TRIGGER record_principal AFTER INSERT OR UPDATE OR DELETE ON principals
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('object_id');
CREATE TRIGGER record_client_secret AFTER INSERT OR UPDATE OR DELETE ON client_secrets
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('principal_object_id');
CREATE TRIGGER record_client_certificate AFTER INSERT OR UPDATE OR DELETE ON client_certificates
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('principal_object_id');
CREATE TRIGGER record_federated_credential AFTER INSERT OR UPDATE OR DELETE
  ON federated_credentials
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('principal_object_id');
CREATE TRIGGER record_role_definition AFTER INSERT OR UPDATE OR DELETE ON role_definitions
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('id');
CREATE TRIGGER record_role_assignment AFTER INSERT OR UPDATE OR DELETE ON role_assignments
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('id');
CREATE TRIGGER record_vault AFTER INSERT OR UPDATE OR DELETE ON vaults
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('name_key');
CREATE TRIGGER record_vault_access_policy AFTER INSERT OR UPDATE OR DELETE
  ON vault_access_policies
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('vault_key');
CREATE TRIGGER record_workload AFTER INSERT OR UPDATE OR DELETE ON workloads
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('uid');
CREATE TRIGGER record_event_subscription AFTER INSERT OR UPDATE OR DELETE
  ON event_subscriptions
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('vault_key');
)sql";

// -> 6: users (a principal of kind "User" has the rest of it here), and
// their changes told to the other servers as the principals' are.
constexpr char kUsers[] = R"sql(
CREATE TABLE users(
  object_id text COLLATE "C" PRIMARY KEY, upn_key text COLLATE "C" NOT NULL UNIQUE,
  user_principal_name text NOT NULL, mail_nickname text NOT NULL, given_name text NOT NULL,
  surname text NOT NULL, account_enabled bigint NOT NULL, password_hash text NOT NULL,
  password_changed bigint NOT NULL, force_change_password bigint NOT NULL,
  sessions_valid_from bigint NOT NULL, failed_sign_ins bigint NOT NULL,
  locked_until bigint NOT NULL, lockouts bigint NOT NULL, created bigint NOT NULL,
  version bigint NOT NULL);
CREATE TRIGGER record_user AFTER INSERT OR UPDATE OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION coffer_record_changed('object_id');
)sql";

constexpr char kVaultAccessChange[] =
    "INSERT INTO changes(event_id, time_ms, vault, type, object_type, name, version, nbf, exp) "
    "VALUES(gen_random_uuid()::text, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, "
    "?1, 'VaultAccessPolicyChanged', 'Vault', ?1, '', NULL, NULL)";

}  // namespace

PostgresStore::PostgresStore(std::string conninfo)
    : conninfo_(std::move(conninfo)),
      writes_([this](const auto& group, auto& results) { RunGroup(group, results); }, kMaxGroup,
              [this] { BeginGroup(); }) {}

StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& conninfo) {
  std::unique_ptr<PostgresStore> store(new PostgresStore(conninfo));
  RETURN_IF_ERROR(store->Init());
  return store;
}

Status PostgresStore::Init() {
  ASSIGN_OR_RETURN(writer_db_, PgDb::Connect(conninfo_));
  RETURN_IF_ERROR(writer_db_->ExecScript("BEGIN"));
  Status schema = ApplySchema(*writer_db_);
  if (!schema.ok()) {
    (void)writer_db_->ExecScript("ROLLBACK");
    return schema;
  }
  RETURN_IF_ERROR(writer_db_->ExecScript("COMMIT"));
  writes_.Start();
  return OkStatus();
}

Status PostgresStore::ApplySchema(Db& db) {
  // Servers starting together on a new database: one creates the schema,
  // the others wait for it and find it made.
  RETURN_IF_ERROR(db.ExecScript(std::string("SELECT ") + kSchemaLock));
  ASSIGN_OR_RETURN(Stmt * exists, db.Prepare("SELECT to_regclass('coffer_schema') IS NOT NULL, "
                                             "to_regclass('meta') IS NOT NULL"));
  ASSIGN_OR_RETURN(bool row, exists->Step());
  std::string has_version = row ? exists->Text(0) : "f";
  std::string has_tables = row ? exists->Text(1) : "f";
  exists->Reset();
  if (has_version != "t") {
    if (has_tables == "t") {
      return DataLossError("the database has tables but no Coffer schema version");
    }
    return db.ExecScript(std::string(kSchema) + kObjectTriggers + kTriggers + kUsers +
                         "CREATE TABLE coffer_schema(version bigint NOT NULL);"
                         "INSERT INTO coffer_schema VALUES(" +
                         std::to_string(kSchemaVersion) + ");");
  }
  ASSIGN_OR_RETURN(Stmt * version, db.Prepare("SELECT version FROM coffer_schema"));
  ASSIGN_OR_RETURN(bool has_row, version->Step());
  int64_t current = has_row ? version->Int(0) : 0;
  version->Reset();
  if (current > kSchemaVersion) {
    return DataLossError("database schema version " + std::to_string(current) +
                         " is newer than this server supports (" + std::to_string(kSchemaVersion) +
                         ")");
  }
  if (current < 1) {
    return DataLossError("database schema version " + std::to_string(current) + " is not valid");
  }
  // Migrations from older versions, in order, as for SQLite.
  std::string migrations;
  if (current < 2) {
    migrations += COFFER_PG_DELIVERIES;
  }
  if (current < 3) {
    migrations += std::string(kMigrateTo3) + kObjectTriggers;
  }
  if (current < 4) {
    // -> 4: objects owned by another (a certificate's key and secret).
    migrations +=
        "ALTER TABLE secrets ADD COLUMN IF NOT EXISTS owner text COLLATE \"C\" NOT NULL DEFAULT "
        "'';";
  }
  if (current < 5) {
    // -> 5: the listing index split by state. One index over (vault_key,
    // kind, deleted, name_key) also matched a lookup of one name, which it
    // answered by reading the vault's whole range (deleted lies between),
    // and a planner without statistics yet (a new installation) chose it.
    // And coffer_change() in PL/pgSQL; and a change's seq taken when it is
    // inserted, under the writer lock, instead of at COMMIT by a deferred
    // trigger per change (whose UPDATE wrote every change twice).
    migrations += COFFER_PG_CHANGE_FUNCTION;
    migrations +=
        "DROP TRIGGER IF EXISTS change_number ON changes; "
        "DROP FUNCTION IF EXISTS coffer_number_change(); " COFFER_PG_CHANGE_NUMBERING;
    migrations +=
        "DROP INDEX IF EXISTS secrets_listing; "
        "CREATE INDEX secrets_live ON secrets(vault_key, kind, name_key) WHERE deleted = 0; "
        "CREATE INDEX secrets_deleted ON secrets(vault_key, kind, name_key) WHERE deleted = 1;";
  }
  if (current < 6) {
    migrations += kUsers;
  }
  if (migrations.empty()) {
    return OkStatus();
  }
  return db.ExecScript(
      migrations + "UPDATE coffer_schema SET version = " + std::to_string(kSchemaVersion) + ";");
}

PostgresStore::~PostgresStore() {
  writes_.Stop();
  StopChanges();
  if (wake_fd_ >= 0) {
    close(wake_fd_);
  }
}

void PostgresStore::StopChanges() {
  stopping_ = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  std::thread listener;
  {
    std::lock_guard<std::mutex> lock(listen_mu_);
    listener = std::move(listener_);
  }
  if (listener.joinable()) {
    listener.join();
  }
}

void PostgresStore::RunGroup(const std::vector<const WriteFn*>& group,
                             std::vector<Status>& results) {
  // First without a savepoint per write (two round trips each, while every
  // server waits for the writer lock); only when a write of a larger group
  // fails is the group run again with them, so that the failure undoes that
  // write alone.
  bool savepoints = false;
  int conflicts = 0;
  while (conflicts < kGroupAttempts) {
    GroupOutcome outcome = TryGroup(group, results, savepoints);
    if (outcome == GroupOutcome::kDone) {
      return;
    }
    if (outcome == GroupOutcome::kWriteFailed) {
      savepoints = true;
    } else {
      ++conflicts;
    }
  }
  // Aborted twice together (another server's writes conflict with some of
  // these): each alone, so that one conflict does not hold up the rest.
  for (size_t i = 0; i < group.size(); ++i) {
    std::vector<const WriteFn*> one{group[i]};
    std::vector<Status> result(1);
    for (int attempt = 0; attempt < kSingleAttempts; ++attempt) {
      if (TryGroup(one, result, false) != GroupOutcome::kConflict) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2 << attempt));
    }
    results[i] = result[0];
  }
}

PostgresStore::GroupOutcome PostgresStore::TryGroup(const std::vector<const WriteFn*>& group,
                                                    std::vector<Status>& results, bool savepoints) {
  const auto started = std::chrono::steady_clock::now();
  auto fail_all = [&](const Status& s) {
    for (auto& r : results) {
      r = s;
    }
  };
  if (!begun_) {
    Status begin = Begin();
    if (!begin.ok()) {
      fail_all(begin);
      return GroupOutcome::kDone;
    }
  }
  begun_ = false;
  PgDb& db = *writer_db_;
  bool conflict = false;
  for (size_t i = 0; i < group.size() && !conflict; ++i) {
    if (savepoints) {
      Status sp = db.ExecScript("SAVEPOINT w");
      if (!sp.ok()) {
        results[i] = sp;
        conflict = ConflictAborted(sp);
        continue;
      }
    }
    results[i] = (*group[i])(db);
    db.ResetAll();
    if (results[i].ok()) {
      if (savepoints) {
        (void)db.ExecScript("RELEASE w");
      }
      continue;
    }
    // A serialization failure or deadlock dooms the transaction, not only
    // this write: the whole group runs again.
    if (ConflictAborted(results[i])) {
      conflict = true;
      break;
    }
    if (savepoints) {
      (void)db.ExecScript("ROLLBACK TO w");
      (void)db.ExecScript("RELEASE w");
      continue;
    }
    // Without savepoints the failed write's statements can be undone only
    // with the whole transaction: a write alone has failed, a larger group
    // runs again with savepoints.
    (void)db.ExecScript("ROLLBACK");
    if (group.size() == 1) {
      return GroupOutcome::kDone;
    }
    fail_all(AbortedError("storage: the group runs again"));
    return GroupOutcome::kWriteFailed;
  }
  if (conflict) {
    (void)db.ExecScript("ROLLBACK");
    fail_all(AbortedError("storage: a concurrent write conflicted; try again"));
    return GroupOutcome::kConflict;
  }
  Status commit = db.ExecScript("COMMIT");
  commit_latency_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (commit.ok()) {
    return GroupOutcome::kDone;
  }
  if (ConflictAborted(commit)) {
    (void)db.ExecScript("ROLLBACK");
    fail_all(AbortedError("storage: a concurrent write conflicted; try again"));
    return GroupOutcome::kConflict;
  }
  // SECURITY/durability: a commit whose answer was lost may have landed;
  // it is reported as failed, never retried here.
  COFFER_LOG(kError) << "storage commit failed: " << commit.ToString();
  (void)db.ExecScript("ROLLBACK");
  for (auto& r : results) {
    if (r.ok()) {
      r = commit;
    }
  }
  return GroupOutcome::kDone;
}

void PostgresStore::BeginGroup() {
  begun_ = Begin().ok();
}

Status PostgresStore::Begin() {
  if (writer_db_ == nullptr || writer_db_->conn().Broken()) {
    writer_db_.reset();
    ASSIGN_OR_RETURN(writer_db_, PgDb::Connect(conninfo_));
  }
  // One group at a time across all servers: the transaction-level lock is
  // taken first and held until the commit is visible, so groups run one
  // after the other, each seeing every commit before it (READ COMMITTED
  // takes a snapshot per statement, after the lock). Serial transactions
  // cannot lose each other's updates or skew each other's checks, and
  // nothing is aborted for a conflict, as SERIALIZABLE's false positives
  // on small tables would.
  Status begin = writer_db_->ExecScript(
      std::string("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT ") + kWriterLock);
  if (!begin.ok()) {
    (void)writer_db_->ExecScript("ROLLBACK");
  }
  return begin;
}

Status PostgresStore::Write(WriteFn fn) {
  return ForClients(writes_.Submit(std::move(fn)));
}

StatusOr<std::unique_ptr<PgDb>> PostgresStore::AcquireReader() {
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    while (!readers_.empty()) {
      auto db = std::move(readers_.back());
      readers_.pop_back();
      if (!db->conn().Broken()) {
        return db;
      }
    }
  }
  return PgDb::Connect(conninfo_);
}

void PostgresStore::ReleaseReader(std::unique_ptr<PgDb> db) {
  if (db->conn().Broken()) {
    return;
  }
  std::lock_guard<std::mutex> lock(read_mu_);
  if (readers_.size() < kMaxReaders) {
    readers_.push_back(std::move(db));
  }
}

Status PostgresStore::Read(const std::function<Status(Db&)>& fn) {
  auto acquired = AcquireReader();
  if (!acquired.ok()) {
    return ForClients(acquired.status());
  }
  std::unique_ptr<PgDb> db = std::move(acquired).value();
  Status s = db->ExecScript("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (s.ok()) {
    s = fn(*db);
    db->ResetAll();
    Status end = db->ExecScript(s.ok() ? "COMMIT" : "ROLLBACK");
    if (s.ok() && !end.ok()) {
      s = end;
    }
  }
  ReleaseReader(std::move(db));
  return ForClients(s);
}

const char* PostgresStore::VaultAccessChangeSql() const {
  return kVaultAccessChange;
}

const char* PostgresStore::AddSecretVersionSql() const {
  // The sub-statements share one snapshot, taken under the writer lock, so
  // `found` is the state they change. The secrets trigger (a new version's
  // change) fires at the end of the statement and sees the version row.
  return "WITH found AS (SELECT s.name, s.deleted, s.owner FROM vaults v LEFT JOIN secrets s "
         "ON s.vault_key = v.name_key AND s.kind = ?13 AND s.name_key = ?2 "
         "WHERE v.name_key = ?1), "
         "ok AS (SELECT 1 FROM found WHERE found.deleted IS DISTINCT FROM 1 "
         "AND coalesce(found.owner, '') = ''), "
         "version AS (INSERT INTO secret_versions(vault_key, kind, name_key, version, "
         "sealed_value, content_type, tags_json, enabled, nbf, exp, created, updated, key_json) "
         "SELECT ?1, ?13, ?2, ?4, ?5::bytea, ?6, ?7, ?8::bigint, ?9::bigint, ?10::bigint, "
         "?11::bigint, ?12::bigint, ?14 FROM ok), "
         "secret AS (INSERT INTO secrets(vault_key, kind, name_key, name, latest_version) "
         "SELECT ?1, ?13, ?2, ?3, ?4 FROM ok ON CONFLICT (vault_key, kind, name_key) "
         "DO UPDATE SET latest_version = EXCLUDED.latest_version) "
         "SELECT (SELECT count(*) FROM found), (SELECT name FROM found), "
         "(SELECT deleted FROM found), (SELECT owner FROM found)";
}

const char* PostgresStore::ChangeBoundsSql() const {
  // Pruning records the newest seq it removed, so the newest ever assigned
  // survives it.
  return "SELECT GREATEST((SELECT MAX(seq) FROM changes), (SELECT seq FROM changes_pruned)), "
         "(SELECT MIN(seq) FROM changes)";
}

const char* PostgresStore::MetaChangedSql() const {
  // Sent by the write rather than by a trigger, so that no schema change is
  // needed; delivered at COMMIT like the triggers' notifications.
  return "SELECT pg_notify('coffer_records', 'meta:UPDATE:' || CAST(? AS text))";
}

void PostgresStore::OnChange(std::function<void(const ExternalChange&)> fn) {
  std::lock_guard<std::mutex> lock(listen_mu_);
  on_change_.push_back(std::move(fn));
  if (!listener_.joinable()) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    listener_ = std::thread([this] { ListenLoop(); });
  }
}

void PostgresStore::ListenLoop() {
  auto tell = [this](const ExternalChange& change) {
    std::vector<std::function<void(const ExternalChange&)>> fns;
    {
      std::lock_guard<std::mutex> lock(listen_mu_);
      fns = on_change_;
    }
    for (auto& fn : fns) {
      fn(change);
    }
  };
  std::unique_ptr<PgConn> conn;
  int backoff_ms = 100;
  auto next_leader_try = std::chrono::steady_clock::now();
  while (!stopping_) {
    if (conn == nullptr || conn->Broken()) {
      // SECURITY/once-only work: the lock went with the session.
      leads_ = false;
      conn.reset();
      auto made = PgConn::Connect(conninfo_);
      // Named, so that an operator sees in pg_stat_activity which session
      // holds the leader's lock.
      Status listening = made.ok() ? (*made)->ExecScript(
                                         "SET application_name = 'coffer listener'; "
                                         "LISTEN coffer_changes; LISTEN coffer_records")
                                   : made.status();
      if (!listening.ok()) {
        COFFER_LOG(kWarning) << "storage: listening for changes failed: " << listening.ToString();
        pollfd wake{wake_fd_, POLLIN, 0};
        (void)poll(&wake, 1, backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, 2000);
        continue;
      }
      conn = std::move(made).value();
      backoff_ms = 100;
      // What was committed while nobody listened is unknown.
      tell(ExternalChange{});
    }
    const auto now = std::chrono::steady_clock::now();
    if (!leads_ && now >= next_leader_try) {
      next_leader_try = now + std::chrono::seconds(1);
      auto won = conn->Exec(kLeaderLock);
      if (won.ok() && won->size() == 1 && won->Text(0, 0) == "t") {
        leads_ = true;
        COFFER_LOG(kInfo) << "storage: this server now leads the installation's scheduled work";
      }
    }
    // Notifications that arrived during the statement above are already
    // read off the socket: take them before waiting on it.
    auto notifications = conn->TakeNotifications();
    if (!notifications.ok()) {
      leads_ = false;
      continue;  // the connection is broken; the next round reconnects
    }
    if (notifications->empty()) {
      pollfd fds[2] = {{conn->Socket(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      (void)poll(fds, 2, 1000);
      continue;
    }
    bool feed = false;
    for (const auto& n : *notifications) {
      if (n.channel == "coffer_changes") {
        feed = true;  // one read of the feed covers them all
        continue;
      }
      // "table:op:key"
      size_t first = n.payload.find(':');
      size_t second = first == std::string::npos ? first : n.payload.find(':', first + 1);
      if (second == std::string::npos) {
        tell(ExternalChange{});
        continue;
      }
      ExternalChange change;
      change.kind = ExternalChange::Kind::kRecord;
      change.table = n.payload.substr(0, first);
      change.deleted = n.payload.substr(first + 1, second - first - 1) == "DELETE";
      change.key = n.payload.substr(second + 1);
      tell(change);
    }
    if (feed) {
      ExternalChange change;
      change.kind = ExternalChange::Kind::kFeed;
      tell(change);
    }
  }
}

}  // namespace coffer::storage::postgres
