// The backend-neutral part of the SQL store: every Store operation, written
// against Db (sql_db.h) and run through the backend's Write and Read.

#include "storage/sql/sql_store.h"

#include "common/strings.h"

namespace coffer::storage {

// ---------------------------------------------------------------- meta

StatusOr<std::optional<std::string>> SqlStore::ReadMeta(Db& db, const std::string& key) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT value FROM meta WHERE key = ?"));
  st->Bind(1, key);
  ASSIGN_OR_RETURN(bool row, st->Step());
  std::optional<std::string> out;
  if (row) {
    out = st->Text(0);
  }
  st->Reset();
  return out;
}

StatusOr<std::optional<std::string>> SqlStore::GetMeta(const std::string& key) {
  std::optional<std::string> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(out, ReadMeta(db, key));
    return OkStatus();
  }));
  return out;
}

Status SqlStore::WriteMeta(Db& db, const std::string& key, const std::string& value) const {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO meta(key, value) VALUES(?, ?) "
                                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  st->Bind(1, key).Bind(2, value);
  RETURN_IF_ERROR(st->Exec());
  if (const char* sql = MetaChangedSql(); sql != nullptr) {
    ASSIGN_OR_RETURN(Stmt * notify, db.Prepare(sql));
    notify->Bind(1, key);
    RETURN_IF_ERROR(notify->Exec());
  }
  return OkStatus();
}

Status SqlStore::PutMeta(const std::string& key, const std::string& value) {
  return Write([&](Db& db) -> Status { return WriteMeta(db, key, value); });
}

StatusOr<std::string> SqlStore::UpdateMeta(const std::string& key,
                                           const Upsert<std::string>& make) {
  std::string value;
  // Read and written inside the writer's BEGIN IMMEDIATE transaction, which
  // holds the database's write lock: other processes on the same file wait.
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(std::optional<std::string> current, ReadMeta(db, key));
    ASSIGN_OR_RETURN(value, make(current));
    if (current && *current == value) {
      return OkStatus();  // unchanged: nothing to write or announce
    }
    return WriteMeta(db, key, value);
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

Status SqlStore::InsertPrincipal(Db& db, const PrincipalRecord& p) {
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

Status SqlStore::CreatePrincipal(const PrincipalRecord& p) {
  return Write([&](Db& db) { return InsertPrincipal(db, p); });
}

StatusOr<PrincipalRecord> SqlStore::GetPrincipalByAppId(const std::string& app_id) {
  std::optional<PrincipalRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kPrincipalColumns) +
                                           "WHERE app_id = ? AND kind <> 'User'"));
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

StatusOr<PrincipalRecord> SqlStore::GetPrincipal(const std::string& object_id) {
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

StatusOr<std::vector<PrincipalRecord>> SqlStore::ListPrincipals() {
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

StatusOr<PrincipalRecord> SqlStore::UpdatePrincipal(const std::string& object_id,
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

Status SqlStore::RequirePrincipal(Db& db, const std::string& object_id) {
  ASSIGN_OR_RETURN(Stmt * chk, db.Prepare("SELECT 1 FROM principals WHERE object_id = ?"));
  chk->Bind(1, object_id);
  ASSIGN_OR_RETURN(bool exists, chk->Step());
  chk->Reset();
  if (!exists) {
    return NotFoundError("principal not found");
  }
  return OkStatus();
}

Status SqlStore::DeletePrincipalRows(Db& db, const std::string& object_id) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM principals WHERE object_id = ?"));
  st->Bind(1, object_id);
  RETURN_IF_ERROR(st->Exec());
  if (db.Changes() == 0) {
    return NotFoundError("principal not found");
  }
  for (const char* sql : {"DELETE FROM client_secrets WHERE principal_object_id = ?",
                          "DELETE FROM client_certificates WHERE principal_object_id = ?",
                          "DELETE FROM federated_credentials WHERE principal_object_id = ?",
                          "DELETE FROM users WHERE object_id = ?"}) {
    ASSIGN_OR_RETURN(Stmt * del, db.Prepare(sql));
    del->Bind(1, object_id);
    RETURN_IF_ERROR(del->Exec());
  }
  return OkStatus();
}

Status SqlStore::DeletePrincipal(const std::string& object_id) {
  return Write([&](Db& db) { return DeletePrincipalRows(db, object_id); });
}

// --------------------------------------------------------------------- users

namespace {

constexpr char kUserColumns[] =
    "SELECT u.object_id, u.user_principal_name, u.mail_nickname, u.given_name, u.surname, "
    "u.account_enabled, u.password_hash, u.password_changed, u.force_change_password, "
    "u.sessions_valid_from, u.failed_sign_ins, u.locked_until, u.lockouts, u.created, u.version, "
    "p.display_name FROM users u JOIN principals p ON p.object_id = u.object_id ";

UserRecord ReadUser(const Stmt& st) {
  UserRecord u;
  u.object_id = st.Text(0);
  u.user_principal_name = st.Text(1);
  u.mail_nickname = st.Text(2);
  u.given_name = st.Text(3);
  u.surname = st.Text(4);
  u.account_enabled = st.Int(5) != 0;
  u.password_hash = st.Text(6);
  u.password_changed = st.Int(7);
  u.force_change_password = st.Int(8) != 0;
  u.sessions_valid_from = st.Int(9);
  u.failed_sign_ins = st.Int(10);
  u.locked_until = st.Int(11);
  u.lockouts = st.Int(12);
  u.created = st.Int(13);
  u.version = st.Int(14);
  u.display_name = st.Text(15);
  return u;
}

// Binds what a write of `u` stores to ?1..?15: its columns in kUserColumns'
// order, with the lower-case name (the uniqueness key) in place of the id's.
void BindUser(Stmt& st, const UserRecord& u) {
  st.Bind(1, AsciiLower(u.user_principal_name)).Bind(2, u.user_principal_name);
  st.Bind(3, u.mail_nickname).Bind(4, u.given_name).Bind(5, u.surname);
  st.Bind(6, int64_t{u.account_enabled ? 1 : 0}).Bind(7, u.password_hash);
  st.Bind(8, u.password_changed).Bind(9, int64_t{u.force_change_password ? 1 : 0});
  st.Bind(10, u.sessions_valid_from).Bind(11, u.failed_sign_ins).Bind(12, u.locked_until);
  st.Bind(13, u.lockouts).Bind(14, u.version).Bind(15, u.object_id);
}

Status NameTaken(Status s) {
  if (s.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a user with this user principal name exists");
  }
  return s;
}

StatusOr<std::optional<UserRecord>> FindUser(Db& db, const std::string& where,
                                             const std::string& key) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kUserColumns) + where));
  st->Bind(1, key);
  ASSIGN_OR_RETURN(bool row, st->Step());
  std::optional<UserRecord> out;
  if (row) {
    out = ReadUser(*st);
  }
  st->Reset();
  return out;
}

}  // namespace

Status SqlStore::CreateUser(const PrincipalRecord& principal, const UserRecord& user) {
  return Write([&](Db& db) -> Status {
    RETURN_IF_ERROR(InsertPrincipal(db, principal));
    UserRecord u = user;
    u.object_id = principal.object_id;
    u.display_name = principal.display_name;
    u.version = 1;
    ASSIGN_OR_RETURN(
        Stmt * st,
        db.Prepare("INSERT INTO users(upn_key, user_principal_name, mail_nickname, given_name, "
                   "surname, account_enabled, password_hash, password_changed, "
                   "force_change_password, sessions_valid_from, failed_sign_ins, locked_until, "
                   "lockouts, version, object_id, created) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    BindUser(*st, u);
    st->Bind(16, u.created);
    return NameTaken(st->Exec());
  });
}

StatusOr<UserRecord> SqlStore::GetUser(const std::string& object_id) {
  std::optional<UserRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(out, FindUser(db, "WHERE u.object_id = ?", object_id));
    return OkStatus();
  }));
  if (!out) {
    return NotFoundError("user not found");
  }
  return *out;
}

StatusOr<UserRecord> SqlStore::GetUserByName(const std::string& user_principal_name) {
  std::optional<UserRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(out, FindUser(db, "WHERE u.upn_key = ?", AsciiLower(user_principal_name)));
    return OkStatus();
  }));
  if (!out) {
    return NotFoundError("user not found");
  }
  return *out;
}

StatusOr<std::vector<UserRecord>> SqlStore::ListUsers() {
  std::vector<UserRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kUserColumns) + "ORDER BY u.upn_key"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ReadUser(*st));
    }
  }));
  return out;
}

StatusOr<UserRecord> SqlStore::UpdateUser(const std::string& object_id,
                                          const Mutation<UserRecord>& mutate) {
  UserRecord u;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(std::optional<UserRecord> current,
                     FindUser(db, "WHERE u.object_id = ?", object_id));
    if (!current) {
      return NotFoundError("user not found");
    }
    u = *current;
    RETURN_IF_ERROR(mutate(u));
    u.object_id = current->object_id;
    u.created = current->created;
    u.version = current->version + 1;
    ASSIGN_OR_RETURN(
        Stmt * st,
        db.Prepare("UPDATE users SET upn_key = ?, user_principal_name = ?, mail_nickname = ?, "
                   "given_name = ?, surname = ?, account_enabled = ?, password_hash = ?, "
                   "password_changed = ?, force_change_password = ?, sessions_valid_from = ?, "
                   "failed_sign_ins = ?, locked_until = ?, lockouts = ?, version = ? "
                   "WHERE object_id = ?"));
    BindUser(*st, u);
    RETURN_IF_ERROR(NameTaken(st->Exec()));
    if (u.display_name == current->display_name) {
      return OkStatus();
    }
    ASSIGN_OR_RETURN(Stmt * named, db.Prepare("UPDATE principals SET display_name = ?, version = "
                                              "version + 1 WHERE object_id = ?"));
    named->Bind(1, u.display_name).Bind(2, u.object_id);
    return named->Exec();
  }));
  return u;
}

Status SqlStore::AddClientSecret(const ClientSecretRecord& c) {
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

StatusOr<std::vector<ClientSecretRecord>> SqlStore::ListClientSecrets(
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

Status SqlStore::RemoveClientSecret(const std::string& principal_object_id,
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

Status SqlStore::AddClientCertificate(const ClientCertificateRecord& c) {
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

StatusOr<std::vector<ClientCertificateRecord>> SqlStore::ListClientCertificates(
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

Status SqlStore::RemoveClientCertificate(const std::string& principal_object_id,
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

StatusOr<bool> SqlStore::RecordAssertionId(const std::string& app_id, const std::string& jti,
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

Status SqlStore::CreateVault(const VaultRecord& v) {
  return Write([&](Db& db) { return InsertVault(db, v); });
}

StatusOr<VaultRecord> SqlStore::UpdateVault(const std::string& name,
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
      ASSIGN_OR_RETURN(Stmt * change, db.Prepare(VaultAccessChangeSql()));
      change->Bind(1, updated.name);
      RETURN_IF_ERROR(change->Exec());
    }
    return OkStatus();
  }));
  return updated;
}

StatusOr<VaultRecord> SqlStore::GetVault(const std::string& name) {
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

StatusOr<std::vector<VaultRecord>> SqlStore::ListVaults() {
  std::vector<VaultRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string(kVaultColumns) + "ORDER BY name_key"));
    return ReadVaults(db, *st, out);
  }));
  return out;
}

Status SqlStore::MarkVaultDeleted(const std::string& name, int64_t deleted_date,
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

Status SqlStore::RecoverVault(const std::string& name) {
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

Status SqlStore::RemoveVault(Db& db, const std::string& key) {
  // A new vault of this name starts with its own clock.
  ASSIGN_OR_RETURN(std::optional<std::string> shifts, ReadMeta(db, kTimeShiftMetaKey));
  std::optional<std::string> rest;
  if (shifts.has_value()) {
    rest = RemoveTimeShift(*shifts, key);
  }
  if (rest.has_value()) {
    ASSIGN_OR_RETURN(Stmt * put, db.Prepare("UPDATE meta SET value = ? WHERE key = ?"));
    put->Bind(1, *rest).Bind(2, std::string(kTimeShiftMetaKey));
    RETURN_IF_ERROR(put->Exec());
  }
  for (const char* sql : {"DELETE FROM secret_versions WHERE vault_key = ?",
                          "DELETE FROM secrets WHERE vault_key = ?",
                          "DELETE FROM event_subscriptions WHERE vault_key = ?",
                          "DELETE FROM webhook_deliveries WHERE vault_key = ?",
                          "DELETE FROM vault_access_policies WHERE vault_key = ?",
                          "DELETE FROM vaults WHERE name_key = ?"}) {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(sql));
    st->Bind(1, key);
    RETURN_IF_ERROR(st->Exec());
  }
  return OkStatus();
}

Status SqlStore::PurgeVault(const std::string& name) {
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

StatusOr<int> SqlStore::PurgeExpiredVaults(int64_t now) {
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
