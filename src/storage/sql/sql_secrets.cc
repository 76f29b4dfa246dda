// The object operations of SqlStore: secrets, keys and certificates, one
// kind at a time with the objects it owns.

#include "common/strings.h"
#include "storage/sql/sql_store.h"

namespace coffer::storage {
namespace {

// Columns of secret_versions in the order ReadVersion expects, prefixed "v.".
constexpr char kVersionColumns[] =
    "v.version, v.sealed_value, v.content_type, v.tags_json, v.enabled, v.nbf, v.exp, "
    "v.created, v.updated, v.key_json";

SecretVersionRecord ReadVersion(const Stmt& st, int first, const std::string& name) {
  SecretVersionRecord r;
  r.name = name;
  r.version = st.Text(first);
  r.sealed_value = st.Blob(first + 1);
  r.content_type = st.Text(first + 2);
  r.tags_json = st.Text(first + 3);
  r.enabled = st.Int(first + 4) != 0;
  r.nbf = st.OptInt(first + 5);
  r.exp = st.OptInt(first + 6);
  r.created = st.Int(first + 7);
  r.updated = st.Int(first + 8);
  r.key_json = st.Text(first + 9);
  return r;
}

// Every kind the object tables hold. A statement about one name of a vault,
// whatever its kind, says so: kind is the second column of the primary key,
// and without it the lookup would read the vault's whole range.
#define COFFER_ANY_KIND "kind IN ('Certificate', 'Key', 'Secret')"

// "secret", "key": how messages name the kind.
std::string KindWord(ObjectKind kind) {
  return AsciiLower(ObjectKindName(kind));
}
Status DeletedNotPurged(ObjectKind kind, const std::string& name) {
  return FailedPreconditionError(KindWord(kind) + " '" + name + "' is deleted but not purged",
                                 "Conflict");
}
// `owner` as stored: "" or the owner's ObjectKindName.
Status OwnedByAnother(ObjectKind kind, const std::string& name, const std::string& owner) {
  return PermissionDeniedError(KindWord(kind) + " '" + name + "' is managed by the " +
                                   AsciiLower(owner) + " of its name and changes only with it",
                               "Forbidden");
}
Status NotOwned(ObjectKind kind, const std::string& name, ObjectKind owner) {
  return FailedPreconditionError("a " + KindWord(kind) + " named '" + name +
                                     "' exists that is not managed by a " + KindWord(owner),
                                 "Conflict");
}

Status CheckVault(Db& db, const std::string& vault_key, const std::string& vault) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT 1 FROM vaults WHERE name_key = ?"));
  st->Bind(1, vault_key);
  ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    return NotFoundError("vault '" + vault + "' not found", "VaultNotFound");
  }
  return OkStatus();
}

Status InsertVersion(Db& db, const std::string& vault_key, ObjectKind kind,
                     const std::string& name_key, const SecretVersionRecord& r) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO secret_versions(vault_key, kind, name_key, "
                                         "version, sealed_value, content_type, tags_json, "
                                         "enabled, nbf, exp, created, updated, key_json) "
                                         "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st->Bind(1, vault_key).Bind(2, std::string(ObjectKindName(kind))).Bind(3, name_key);
  st->Bind(4, r.version).BindBlob(5, r.sealed_value).Bind(6, r.content_type);
  st->Bind(7, r.tags_json).Bind(8, static_cast<int64_t>(r.enabled)).Bind(9, r.nbf);
  st->Bind(10, r.exp).Bind(11, r.created).Bind(12, r.updated).Bind(13, r.key_json);
  Status s = st->Exec();
  if (s.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError(KindWord(kind) + " version already exists");
  }
  return s;
}

// Row of `secrets` for one name: nullopt if absent.
struct SecretRow {
  std::string name;
  std::string latest;
  bool deleted = false;
  int64_t deleted_date = 0;
  int64_t scheduled_purge_date = 0;
  std::string owner;  // "" or the owner's kind name
};

StatusOr<std::optional<SecretRow>> FindSecret(Db& db, const std::string& vault_key, ObjectKind kind,
                                              const std::string& name_key) {
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT name, latest_version, deleted, deleted_date, "
                                         "scheduled_purge_date, owner FROM secrets "
                                         "WHERE vault_key = ? AND kind = ? AND name_key = ?"));
  st->Bind(1, vault_key).Bind(2, std::string(ObjectKindName(kind))).Bind(3, name_key);
  ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    return std::optional<SecretRow>();
  }
  SecretRow r{st->Text(0),
              st->Text(1),
              st->Int(2) != 0,
              st->OptInt(3).value_or(0),
              st->OptInt(4).value_or(0),
              st->Text(5)};
  st->Reset();
  return std::optional<SecretRow>(r);
}

// The vault's and the secret's rows in one round trip (a new version is the
// hot write, and on PostgreSQL every statement of a group is a round trip
// made while other servers wait for the writer lock). kNotFound
// (VaultNotFound) if the vault is absent; nullopt if the secret is.
StatusOr<std::optional<SecretRow>> FindSecretInVault(Db& db, const std::string& vault,
                                                     const std::string& vault_key, ObjectKind kind,
                                                     const std::string& name_key) {
  ASSIGN_OR_RETURN(Stmt * st,
                   db.Prepare("SELECT s.name, s.latest_version, s.deleted, s.deleted_date, "
                              "s.scheduled_purge_date, s.owner FROM vaults v LEFT JOIN secrets s "
                              "ON s.vault_key = v.name_key AND s.kind = ? AND s.name_key = ? "
                              "WHERE v.name_key = ?"));
  st->Bind(1, std::string(ObjectKindName(kind))).Bind(2, name_key).Bind(3, vault_key);
  ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    return NotFoundError("vault '" + vault + "' not found", "VaultNotFound");
  }
  std::optional<std::string> name = st->OptText(0);
  if (!name) {
    st->Reset();
    return std::optional<SecretRow>();
  }
  SecretRow r{*name,
              st->Text(1),
              st->Int(2) != 0,
              st->OptInt(3).value_or(0),
              st->OptInt(4).value_or(0),
              st->Text(5)};
  st->Reset();
  return std::optional<SecretRow>(r);
}

// Makes `rec` the latest version of the object of `kind` that `owner`
// owns, creating the object when absent; the object's stored name when
// `stored_name` is given.
Status AddOwnedVersion(Db& db, const std::string& vault_key, ObjectKind owner, ObjectKind kind,
                       const std::string& name_key, const SecretVersionRecord& rec) {
  const std::string kind_name(ObjectKindName(kind));
  ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, kind, name_key));
  if (existing && existing->owner != ObjectKindName(owner)) {
    return NotOwned(kind, rec.name, owner);
  }
  if (existing && existing->deleted) {
    return DeletedNotPurged(kind, rec.name);
  }
  RETURN_IF_ERROR(InsertVersion(db, vault_key, kind, name_key, rec));
  if (existing) {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE secrets SET latest_version = ? "
                                           "WHERE vault_key = ? AND kind = ? AND name_key = ?"));
    st->Bind(1, rec.version).Bind(2, vault_key).Bind(3, kind_name).Bind(4, name_key);
    return st->Exec();
  }
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO secrets(vault_key, kind, name_key, name, "
                                         "latest_version, owner) VALUES(?, ?, ?, ?, ?, ?)"));
  st->Bind(1, vault_key).Bind(2, kind_name).Bind(3, name_key).Bind(4, rec.name);
  st->Bind(5, rec.version).Bind(6, std::string(ObjectKindName(owner)));
  return st->Exec();
}

// The kinds of the objects that the object of `kind` and `name_key` owns.
StatusOr<std::vector<std::string>> OwnedKinds(Db& db, const std::string& vault_key, ObjectKind kind,
                                              const std::string& name_key) {
  ASSIGN_OR_RETURN(Stmt * st,
                   db.Prepare("SELECT kind FROM secrets WHERE vault_key = ? AND " COFFER_ANY_KIND
                              " AND name_key = ? AND owner = ?"));
  st->Bind(1, vault_key).Bind(2, name_key).Bind(3, std::string(ObjectKindName(kind)));
  std::vector<std::string> kinds;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) {
      return kinds;
    }
    kinds.push_back(st->Text(0));
  }
}

}  // namespace

StatusOr<std::string> SqlStore::AddObjectVersion(ObjectKind kind, const std::string& vault,
                                                 const SecretVersionRecord& rec,
                                                 const std::vector<OwnedVersion>& owned) {
  const std::string kind_name(ObjectKindName(kind));
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(rec.name);
  std::string stored_name = rec.name;
  const char* one = owned.empty() ? AddSecretVersionSql() : nullptr;
  if (one != nullptr) {
    RETURN_IF_ERROR(Write([&](Db& db) -> Status {
      ASSIGN_OR_RETURN(Stmt * st, db.Prepare(one));
      st->Bind(1, vault_key).Bind(2, name_key).Bind(3, rec.name).Bind(4, rec.version);
      st->BindBlob(5, rec.sealed_value).Bind(6, rec.content_type).Bind(7, rec.tags_json);
      st->Bind(8, static_cast<int64_t>(rec.enabled)).Bind(9, rec.nbf).Bind(10, rec.exp);
      st->Bind(11, rec.created).Bind(12, rec.updated).Bind(13, kind_name).Bind(14, rec.key_json);
      auto row = st->Step();
      if (row.status().code() == StatusCode::kAlreadyExists) {
        return AlreadyExistsError(KindWord(kind) + " version already exists");
      }
      RETURN_IF_ERROR(row.status());
      if (!*row || st->Int(0) == 0) {
        return NotFoundError("vault '" + vault + "' not found", "VaultNotFound");
      }
      if (st->OptInt(2).value_or(0) != 0) {
        return DeletedNotPurged(kind, rec.name);
      }
      if (auto owner = st->OptText(3); owner && !owner->empty()) {
        return OwnedByAnother(kind, rec.name, *owner);
      }
      if (auto name = st->OptText(1)) {
        stored_name = *name;
      }
      st->Reset();
      return OkStatus();
    }));
    return stored_name;
  }
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(auto existing, FindSecretInVault(db, vault, vault_key, kind, name_key));
    if (existing && existing->deleted) {
      return DeletedNotPurged(kind, rec.name);
    }
    if (existing && !existing->owner.empty()) {
      return OwnedByAnother(kind, rec.name, existing->owner);
    }
    RETURN_IF_ERROR(InsertVersion(db, vault_key, kind, name_key, rec));
    if (existing) {
      stored_name = existing->name;
      ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE secrets SET latest_version = ? "
                                             "WHERE vault_key = ? AND kind = ? AND name_key = ?"));
      st->Bind(1, rec.version).Bind(2, vault_key).Bind(3, kind_name).Bind(4, name_key);
      RETURN_IF_ERROR(st->Exec());
    } else {
      ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO secrets(vault_key, kind, name_key, "
                                             "name, latest_version) VALUES(?, ?, ?, ?, ?)"));
      st->Bind(1, vault_key).Bind(2, kind_name).Bind(3, name_key).Bind(4, rec.name);
      st->Bind(5, rec.version);
      RETURN_IF_ERROR(st->Exec());
    }
    for (const OwnedVersion& o : owned) {
      SecretVersionRecord r = o.record;
      r.name = stored_name;
      RETURN_IF_ERROR(AddOwnedVersion(db, vault_key, kind, o.kind, name_key, r));
    }
    return OkStatus();
  }));
  return stored_name;
}

StatusOr<SecretView> SqlStore::UpdateObjectVersion(ObjectKind kind, const std::string& vault,
                                                   const std::string& name,
                                                   const std::string& version,
                                                   const Mutation<SecretVersionRecord>& mutate) {
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(name);
  const std::string kind_name(ObjectKindName(kind));
  SecretView out;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, kind, name_key));
    if (!existing || existing->deleted) {
      return ObjectNotFoundError(kind, name);
    }
    if (!existing->owner.empty()) {
      return OwnedByAnother(kind, name, existing->owner);
    }
    const std::string& target = version.empty() ? existing->latest : version;
    ASSIGN_OR_RETURN(Stmt * find,
                     db.Prepare(std::string("SELECT ") + kVersionColumns +
                                " FROM secret_versions v WHERE v.vault_key = ? AND v.kind = ? "
                                "AND v.name_key = ? AND v.version = ?"));
    find->Bind(1, vault_key).Bind(2, kind_name).Bind(3, name_key).Bind(4, target);
    ASSIGN_OR_RETURN(bool row, find->Step());
    if (!row) {
      return ObjectNotFoundError(kind, name);
    }
    SecretVersionRecord current = ReadVersion(*find, 0, existing->name);
    find->Reset();
    ASSIGN_OR_RETURN(SecretVersionRecord next, MutateVersion(current, mutate));
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE secret_versions SET content_type = ?, "
                                           "tags_json = ?, enabled = ?, nbf = ?, exp = ?, "
                                           "updated = ?, key_json = ? WHERE vault_key = ? AND "
                                           "kind = ? AND name_key = ? AND version = ?"));
    st->Bind(1, next.content_type).Bind(2, next.tags_json);
    st->Bind(3, static_cast<int64_t>(next.enabled)).Bind(4, next.nbf).Bind(5, next.exp);
    st->Bind(6, next.updated).Bind(7, next.key_json).Bind(8, vault_key).Bind(9, kind_name);
    st->Bind(10, name_key).Bind(11, next.version);
    RETURN_IF_ERROR(st->Exec());
    // The objects a certificate owns (its key and secret) follow its
    // attributes; nothing else owns objects.
    if (kind == ObjectKind::kCertificate) {
      ASSIGN_OR_RETURN(Stmt * follow,
                       db.Prepare("UPDATE secret_versions SET enabled = ?, nbf = ?, exp = ?, "
                                  "updated = ? WHERE vault_key = ? AND " COFFER_ANY_KIND
                                  " AND name_key = ? AND version = ? AND kind IN (SELECT kind "
                                  "FROM secrets WHERE vault_key = ? AND " COFFER_ANY_KIND
                                  " AND name_key = ? AND owner = ?)"));
      follow->Bind(1, static_cast<int64_t>(next.enabled)).Bind(2, next.nbf).Bind(3, next.exp);
      follow->Bind(4, next.updated).Bind(5, vault_key).Bind(6, name_key).Bind(7, next.version);
      follow->Bind(8, vault_key).Bind(9, name_key).Bind(10, kind_name);
      RETURN_IF_ERROR(follow->Exec());
    }
    out = SecretView{std::move(next), false, 0, 0, std::nullopt};
    return OkStatus();
  }));
  return out;
}

StatusOr<SecretView> SqlStore::GetObject(ObjectKind kind, const std::string& vault,
                                         const std::string& name, const std::string& version,
                                         bool include_deleted) {
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(name);
  std::optional<SecretView> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    // One statement serves both "latest" and "by version" so the hot read
    // path is a single index lookup.
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare(std::string("SELECT s.name, s.deleted, s.deleted_date, "
                                            "s.scheduled_purge_date, s.owner, ") +
                                kVersionColumns +
                                " FROM secrets s JOIN secret_versions v ON "
                                "v.vault_key = s.vault_key AND v.kind = s.kind AND "
                                "v.name_key = s.name_key AND "
                                "v.version = CASE WHEN ?3 = '' THEN s.latest_version ELSE ?3 END "
                                "WHERE s.vault_key = ?1 AND s.kind = ?4 AND s.name_key = ?2"));
    st->Bind(1, vault_key).Bind(2, name_key).Bind(3, version);
    st->Bind(4, std::string(ObjectKindName(kind)));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) {
      return OkStatus();
    }
    SecretView view;
    view.deleted = st->Int(1) != 0;
    view.deleted_date = st->OptInt(2).value_or(0);
    view.scheduled_purge_date = st->OptInt(3).value_or(0);
    view.owner = ParseObjectKind(st->Text(4));
    view.version = ReadVersion(*st, 5, st->Text(0));
    out = std::move(view);
    return OkStatus();
  }));
  if (!out) {
    // Distinguish a missing vault for a clearer error.
    RETURN_IF_ERROR(GetVault(vault).status());
    return ObjectNotFoundError(kind, name);
  }
  if (out->deleted && !include_deleted) {
    return ObjectNotFoundError(kind, name);
  }
  return *out;
}

StatusOr<SecretPage> SqlStore::ListObjects(ObjectKind kind, const std::string& vault, bool deleted,
                                           const std::string& cursor, int limit) {
  std::string vault_key = AsciiLower(vault);
  SecretPage page;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    RETURN_IF_ERROR(CheckVault(db, vault_key, vault));
    // `deleted` is written into the statement, not bound: PostgreSQL's
    // listing indexes are partial, one per state (pg_store.cc), and only a
    // constant matches their predicate. A deleted object owned by another
    // is listed only with its owner.
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare(std::string("SELECT s.name, s.deleted, s.deleted_date, "
                                            "s.scheduled_purge_date, s.name_key, s.owner, ") +
                                kVersionColumns +
                                " FROM secrets s JOIN secret_versions v ON "
                                "v.vault_key = s.vault_key AND v.kind = s.kind AND "
                                "v.name_key = s.name_key AND v.version = s.latest_version "
                                "WHERE s.vault_key = ?1 AND s.kind = ?2 AND " +
                                (deleted ? "s.deleted = 1 AND s.owner = ''" : "s.deleted = 0") +
                                " AND s.name_key > ?3 ORDER BY s.name_key LIMIT ?4"));
    st->Bind(1, vault_key).Bind(2, std::string(ObjectKindName(kind)));
    st->Bind(3, cursor).Bind(4, static_cast<int64_t>(limit) + 1);
    std::string last_key;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      if (static_cast<int>(page.items.size()) == limit) {
        page.next_cursor = last_key;
        return OkStatus();
      }
      SecretView view;
      view.deleted = st->Int(1) != 0;
      view.deleted_date = st->OptInt(2).value_or(0);
      view.scheduled_purge_date = st->OptInt(3).value_or(0);
      last_key = st->Text(4);
      view.owner = ParseObjectKind(st->Text(5));
      view.version = ReadVersion(*st, 6, st->Text(0));
      view.version.sealed_value.clear();  // listings never carry values
      page.items.push_back(std::move(view));
    }
  }));
  return page;
}

StatusOr<VersionPage> SqlStore::ListObjectVersions(ObjectKind kind, const std::string& vault,
                                                   const std::string& name,
                                                   const std::string& cursor, int limit) {
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(name);
  VersionPage page;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    RETURN_IF_ERROR(CheckVault(db, vault_key, vault));
    ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, kind, name_key));
    if (!existing || existing->deleted) {
      return ObjectNotFoundError(kind, name);
    }
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string("SELECT ") + kVersionColumns +
                                           " FROM secret_versions v WHERE v.vault_key = ? AND "
                                           "v.kind = ? AND v.name_key = ? AND v.version > ? "
                                           "ORDER BY v.version LIMIT ?"));
    st->Bind(1, vault_key).Bind(2, std::string(ObjectKindName(kind))).Bind(3, name_key);
    st->Bind(4, cursor).Bind(5, static_cast<int64_t>(limit) + 1);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      if (static_cast<int>(page.items.size()) == limit) {
        page.next_cursor = page.items.back().version;
        return OkStatus();
      }
      auto rec = ReadVersion(*st, 0, existing->name);
      rec.sealed_value.clear();
      page.items.push_back(std::move(rec));
    }
  }));
  return page;
}

StatusOr<std::vector<SecretVersionRecord>> SqlStore::GetAllObjectVersions(ObjectKind kind,
                                                                          const std::string& vault,
                                                                          const std::string& name) {
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(name);
  std::vector<SecretVersionRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    RETURN_IF_ERROR(CheckVault(db, vault_key, vault));
    ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, kind, name_key));
    if (!existing || existing->deleted) {
      return ObjectNotFoundError(kind, name);
    }
    // The latest version sorts last so that a restore makes it latest again.
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(std::string("SELECT ") + kVersionColumns +
                                           " FROM secret_versions v WHERE v.vault_key = ? AND "
                                           "v.kind = ? AND v.name_key = ? "
                                           "ORDER BY (v.version = ?), v.version"));
    st->Bind(1, vault_key).Bind(2, std::string(ObjectKindName(kind))).Bind(3, name_key);
    st->Bind(4, existing->latest);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ReadVersion(*st, 0, existing->name));
    }
  }));
  return out;
}

Status SqlStore::MarkObjectDeleted(ObjectKind kind, const std::string& vault,
                                   const std::string& name, int64_t deleted_date,
                                   int64_t scheduled_purge_date) {
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(name);
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, kind, name_key));
    if (!existing || existing->deleted) {
      return ObjectNotFoundError(kind, name);
    }
    if (!existing->owner.empty()) {
      return OwnedByAnother(kind, name, existing->owner);
    }
    const std::string kind_name(ObjectKindName(kind));
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE secrets SET deleted = 1, deleted_date = ?, "
                                           "scheduled_purge_date = ? WHERE vault_key = ? AND "
                                           "name_key = ? AND " COFFER_ANY_KIND
                                           " AND (kind = ? OR owner = ?) AND "
                                           "deleted = 0"));
    st->Bind(1, deleted_date).Bind(2, scheduled_purge_date).Bind(3, vault_key);
    st->Bind(4, name_key).Bind(5, kind_name).Bind(6, kind_name);
    return st->Exec();
  });
}

Status SqlStore::RecoverObject(ObjectKind kind, const std::string& vault, const std::string& name) {
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(name);
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, kind, name_key));
    if (!existing || !existing->deleted) {
      return DeletedObjectNotFoundError(kind, name);
    }
    if (!existing->owner.empty()) {
      return OwnedByAnother(kind, name, existing->owner);
    }
    const std::string kind_name(ObjectKindName(kind));
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("UPDATE secrets SET deleted = 0, deleted_date = NULL, "
                                           "scheduled_purge_date = NULL WHERE vault_key = ? AND "
                                           "name_key = ? AND " COFFER_ANY_KIND
                                           " AND (kind = ? OR owner = ?) AND "
                                           "deleted = 1"));
    st->Bind(1, vault_key).Bind(2, name_key).Bind(3, kind_name).Bind(4, kind_name);
    return st->Exec();
  });
}

namespace {

// `kind` as stored (ObjectKindName).
Status RemoveSecret(Db& db, const std::string& vault_key, const std::string& kind,
                    const std::string& name_key) {
  for (const char* sql :
       {"DELETE FROM secret_versions WHERE vault_key = ? AND kind = ? AND name_key = ?",
        "DELETE FROM secrets WHERE vault_key = ? AND kind = ? AND name_key = ?"}) {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(sql));
    st->Bind(1, vault_key).Bind(2, kind).Bind(3, name_key);
    RETURN_IF_ERROR(st->Exec());
  }
  return OkStatus();
}

}  // namespace

Status SqlStore::PurgeObject(ObjectKind kind, const std::string& vault, const std::string& name) {
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(name);
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, kind, name_key));
    if (!existing || !existing->deleted) {
      return DeletedObjectNotFoundError(kind, name);
    }
    if (!existing->owner.empty()) {
      return OwnedByAnother(kind, name, existing->owner);
    }
    ASSIGN_OR_RETURN(std::vector<std::string> owned, OwnedKinds(db, vault_key, kind, name_key));
    for (const std::string& owned_kind : owned) {
      RETURN_IF_ERROR(RemoveSecret(db, vault_key, owned_kind, name_key));
    }
    return RemoveSecret(db, vault_key, std::string(ObjectKindName(kind)), name_key);
  });
}

StatusOr<int> SqlStore::PurgeExpiredObjects(int64_t now) {
  int count = 0;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    count = 0;
    struct Due {
      std::string vault_key;
      std::string kind;
      std::string name_key;
    };
    std::vector<Due> due;
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT vault_key, kind, name_key FROM secrets WHERE "
                                           "deleted = 1 AND scheduled_purge_date <= ?"));
    st->Bind(1, now);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        break;
      }
      due.push_back({st->Text(0), st->Text(1), st->Text(2)});
    }
    st->Reset();
    for (const auto& d : due) {
      RETURN_IF_ERROR(RemoveSecret(db, d.vault_key, d.kind, d.name_key));
      ++count;
    }
    return OkStatus();
  }));
  return count;
}

StatusOr<int64_t> SqlStore::ShiftTime(const std::string& vault, int64_t seconds) {
  int64_t moved = 0;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    moved = 0;
    std::vector<std::string> vaults;
    ASSIGN_OR_RETURN(Stmt * find, db.Prepare(vault.empty() ? "SELECT name_key FROM vaults"
                                                           : "SELECT name_key FROM vaults "
                                                             "WHERE name_key = ?"));
    if (!vault.empty()) {
      find->Bind(1, AsciiLower(vault));
    }
    while (true) {
      ASSIGN_OR_RETURN(bool row, find->Step());
      if (!row) {
        break;
      }
      vaults.push_back(find->Text(0));
    }
    find->Reset();
    if (!vault.empty() && vaults.empty()) {
      return NotFoundError("vault '" + vault + "' not found", "VaultNotFound");
    }
    // The totals first: a shift past the limit moves nothing.
    ASSIGN_OR_RETURN(std::optional<std::string> current, ReadMeta(db, kTimeShiftMetaKey));
    ASSIGN_OR_RETURN(std::string totals, AddTimeShift(current, vaults, seconds));
    for (const std::string& key : vaults) {
      ASSIGN_OR_RETURN(Stmt * versions,
                       db.Prepare("UPDATE secret_versions SET created = created - ?, "
                                  "updated = updated - ?, nbf = nbf - ?, exp = exp - ? "
                                  "WHERE vault_key = ?"));
      versions->Bind(1, seconds).Bind(2, seconds).Bind(3, seconds).Bind(4, seconds).Bind(5, key);
      RETURN_IF_ERROR(versions->Exec());
      moved += db.Changes();
      ASSIGN_OR_RETURN(Stmt * deleted,
                       db.Prepare("UPDATE secrets SET deleted_date = deleted_date - ?, "
                                  "scheduled_purge_date = scheduled_purge_date - ? "
                                  "WHERE vault_key = ? AND deleted = 1"));
      deleted->Bind(1, seconds).Bind(2, seconds).Bind(3, key);
      RETURN_IF_ERROR(deleted->Exec());
      ASSIGN_OR_RETURN(Stmt * gone, db.Prepare("UPDATE vaults SET deleted_date = deleted_date - ?, "
                                               "scheduled_purge_date = scheduled_purge_date - ? "
                                               "WHERE name_key = ? AND deleted_date <> 0"));
      gone->Bind(1, seconds).Bind(2, seconds).Bind(3, key);
      RETURN_IF_ERROR(gone->Exec());
    }
    return WriteMeta(db, kTimeShiftMetaKey, totals);
  }));
  return moved;
}

Status SqlStore::RestoreObject(ObjectKind kind, const std::string& vault,
                               const std::vector<SecretVersionRecord>& versions,
                               const std::vector<OwnedVersions>& owned) {
  if (versions.empty()) {
    return InvalidArgumentError("backup holds no versions");
  }
  for (const OwnedVersions& o : owned) {
    if (o.versions.empty()) {
      return InvalidArgumentError("backup holds no versions of a managed object");
    }
  }
  std::string vault_key = AsciiLower(vault);
  std::string name_key = AsciiLower(versions.back().name);
  return Write([&](Db& db) -> Status {
    RETURN_IF_ERROR(CheckVault(db, vault_key, vault));
    // The owner first, then what it owns: each one's versions and row.
    auto restore = [&](ObjectKind k, const std::vector<SecretVersionRecord>& recs,
                       const std::string& owner) -> Status {
      ASSIGN_OR_RETURN(auto existing, FindSecret(db, vault_key, k, name_key));
      if (existing) {
        return AlreadyExistsError(KindWord(k) + " '" + recs.back().name + "' already exists");
      }
      for (const auto& rec : recs) {
        RETURN_IF_ERROR(InsertVersion(db, vault_key, k, name_key, rec));
      }
      ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO secrets(vault_key, kind, name_key, "
                                             "name, latest_version, owner) "
                                             "VALUES(?, ?, ?, ?, ?, ?)"));
      st->Bind(1, vault_key).Bind(2, std::string(ObjectKindName(k))).Bind(3, name_key);
      st->Bind(4, versions.back().name).Bind(5, recs.back().version).Bind(6, owner);
      return st->Exec();
    };
    RETURN_IF_ERROR(restore(kind, versions, ""));
    for (const OwnedVersions& o : owned) {
      RETURN_IF_ERROR(restore(o.kind, o.versions, std::string(ObjectKindName(kind))));
    }
    return OkStatus();
  });
}

}  // namespace coffer::storage

namespace coffer::storage {

StatusOr<std::string> SqlStore::GetObjectPolicy(ObjectKind kind, const std::string& vault,
                                                const std::string& name) {
  std::optional<std::string> policy;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT policy_json FROM secrets WHERE vault_key = ? "
                                           "AND kind = ? AND name_key = ? AND deleted = 0"));
    st->Bind(1, AsciiLower(vault)).Bind(2, std::string(ObjectKindName(kind)));
    st->Bind(3, AsciiLower(name));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      policy = st->Text(0);
    }
    st->Reset();
    return OkStatus();
  }));
  if (!policy) {
    return ObjectNotFoundError(kind, name);
  }
  return *policy;
}

StatusOr<std::string> SqlStore::UpdateObjectPolicy(ObjectKind kind, const std::string& vault,
                                                   const std::string& name,
                                                   const Upsert<std::string>& make) {
  std::string stored;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    const std::string kind_name(ObjectKindName(kind));
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT policy_json FROM secrets WHERE vault_key = ? "
                                           "AND kind = ? AND name_key = ? AND deleted = 0"));
    st->Bind(1, AsciiLower(vault)).Bind(2, kind_name).Bind(3, AsciiLower(name));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) {
      return ObjectNotFoundError(kind, name);
    }
    std::string current = st->Text(0);
    st->Reset();
    ASSIGN_OR_RETURN(stored,
                     make(current.empty() ? std::nullopt : std::optional<std::string>(current)));
    ASSIGN_OR_RETURN(Stmt * up, db.Prepare("UPDATE secrets SET policy_json = ? WHERE "
                                           "vault_key = ? AND kind = ? AND name_key = ?"));
    up->Bind(1, stored).Bind(2, AsciiLower(vault)).Bind(3, kind_name).Bind(4, AsciiLower(name));
    return up->Exec();
  }));
  return stored;
}

StatusOr<std::vector<ObjectPolicy>> SqlStore::ListObjectPolicies(ObjectKind kind, int limit) {
  std::vector<ObjectPolicy> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("SELECT vt.name, s.name, s.policy_json, v.version, v.created, "
                                "v.exp FROM secrets s JOIN secret_versions v ON "
                                "v.vault_key = s.vault_key AND v.kind = s.kind AND "
                                "v.name_key = s.name_key AND v.version = s.latest_version "
                                "JOIN vaults vt ON vt.name_key = s.vault_key "
                                "WHERE s.kind = ? AND s.deleted = 0 AND vt.deleted_date = 0 AND "
                                "s.policy_json <> '' ORDER BY s.vault_key, s.name_key LIMIT ?"));
    st->Bind(1, std::string(ObjectKindName(kind))).Bind(2, static_cast<int64_t>(limit));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(
          {st->Text(0), st->Text(1), st->Text(2), st->Text(3), st->Int(4), st->OptInt(5)});
    }
  }));
  return out;
}

}  // namespace coffer::storage
