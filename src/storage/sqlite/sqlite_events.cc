// The change feed, expiry notices and event subscriptions (docs/events.md).
// The feed itself is written by the triggers in sqlite_store.cc.

#include "common/strings.h"
#include "storage/sqlite/sqlite_store.h"

namespace coffer::storage {

namespace {

ChangeRecord ChangeFromRow(const Stmt& st) {
  ChangeRecord c;
  c.seq = st.Int(0);
  c.event_id = st.Text(1);
  c.time_ms = st.Int(2);
  c.vault = st.Text(3);
  c.type = st.Text(4);
  c.object_type = st.Text(5);
  c.name = st.Text(6);
  c.version = st.Text(7);
  c.nbf = st.OptInt(8);
  c.exp = st.OptInt(9);
  return c;
}

}  // namespace

StatusOr<std::vector<ChangeRecord>> SqliteStore::ListChanges(int64_t after_seq, int limit) {
  std::vector<ChangeRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT seq, event_id, time_ms, vault, type, "
                                           "object_type, name, version, nbf, exp FROM changes "
                                           "WHERE seq > ? ORDER BY seq LIMIT ?"));
    st->Bind(1, after_seq).Bind(2, static_cast<int64_t>(limit));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ChangeFromRow(*st));
    }
  }));
  return out;
}

StatusOr<Store::ChangeBounds> SqliteStore::GetChangeBounds() {
  ChangeBounds bounds;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT (SELECT seq FROM sqlite_sequence WHERE "
                                           "name = 'changes'), (SELECT MIN(seq) FROM changes)"));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      bounds.newest = st->OptInt(0).value_or(0);
      bounds.oldest = st->OptInt(1).value_or(bounds.newest + 1);
    }
    st->Reset();
    return OkStatus();
  }));
  return bounds;
}

StatusOr<int> SqliteStore::PruneChanges(int64_t before_ms, int keep) {
  int removed = 0;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM changes WHERE time_ms < ? AND seq <= "
                                           "(SELECT COALESCE(MAX(seq), 0) FROM changes) - ?"));
    st->Bind(1, before_ms).Bind(2, static_cast<int64_t>(keep));
    RETURN_IF_ERROR(st->Exec());
    removed = db.Changes();
    return OkStatus();
  }));
  return removed;
}

StatusOr<std::vector<ExpiringSecret>> SqliteStore::ListExpiringSecrets(const std::string& type,
                                                                       int64_t exp_before,
                                                                       int limit) {
  std::vector<ExpiringSecret> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("SELECT vt.name, s.name, v.version, v.nbf, v.exp FROM secrets s "
                                "JOIN secret_versions v ON v.vault_key = s.vault_key AND "
                                "v.name_key = s.name_key AND v.version = s.latest_version "
                                "JOIN vaults vt ON vt.name_key = s.vault_key "
                                "WHERE s.deleted = 0 AND vt.deleted_date = 0 AND v.exp IS NOT NULL "
                                "AND v.exp <= ? AND NOT EXISTS (SELECT 1 FROM notices n WHERE "
                                "n.vault_key = s.vault_key AND n.name_key = s.name_key AND "
                                "n.version = v.version AND n.type = ?) ORDER BY v.exp LIMIT ?"));
    st->Bind(1, exp_before).Bind(2, type).Bind(3, static_cast<int64_t>(limit));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back({st->Text(0), st->Text(1), st->Text(2), st->OptInt(3), st->Int(4)});
    }
  }));
  return out;
}

StatusOr<bool> SqliteStore::RecordNotice(const ChangeRecord& c) {
  bool recorded = false;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    recorded = false;
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT OR IGNORE INTO notices(vault_key, name_key, "
                                           "version, type) VALUES(?, ?, ?, ?)"));
    st->Bind(1, AsciiLower(c.vault)).Bind(2, AsciiLower(c.name)).Bind(3, c.version);
    st->Bind(4, c.type);
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return OkStatus();
    }
    ASSIGN_OR_RETURN(Stmt * ins, db.Prepare("INSERT INTO changes(event_id, time_ms, vault, type, "
                                            "object_type, name, version, nbf, exp) "
                                            "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    ins->Bind(1, c.event_id).Bind(2, c.time_ms).Bind(3, c.vault).Bind(4, c.type);
    ins->Bind(5, c.object_type).Bind(6, c.name).Bind(7, c.version).Bind(8, c.nbf);
    ins->Bind(9, c.exp);
    RETURN_IF_ERROR(ins->Exec());
    recorded = true;
    return OkStatus();
  }));
  return recorded;
}

Status SqliteStore::PutEventSubscription(const EventSubscriptionRecord& r) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * vault, db.Prepare("SELECT 1 FROM vaults WHERE name_key = ? AND "
                                              "deleted_date = 0"));
    vault->Bind(1, AsciiLower(r.vault));
    ASSIGN_OR_RETURN(bool exists, vault->Step());
    vault->Reset();
    if (!exists) {
      return NotFoundError("vault '" + r.vault + "' not found", "ResourceNotFound");
    }
    ASSIGN_OR_RETURN(
        Stmt * st,
        db.Prepare("INSERT INTO event_subscriptions(vault_key, name_key, vault, name, "
                   "properties_json, key_generation, start_seq, created, updated) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(vault_key, name_key) DO "
                   "UPDATE SET properties_json = excluded.properties_json, "
                   "key_generation = excluded.key_generation, updated = excluded.updated"));
    st->Bind(1, AsciiLower(r.vault)).Bind(2, AsciiLower(r.name)).Bind(3, r.vault).Bind(4, r.name);
    st->Bind(5, r.properties_json).Bind(6, r.key_generation).Bind(7, r.start_seq);
    st->Bind(8, r.created).Bind(9, r.updated);
    return st->Exec();
  });
}

StatusOr<std::vector<EventSubscriptionRecord>> SqliteStore::ListEventSubscriptions(
    const std::string& vault) {
  std::vector<EventSubscriptionRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("SELECT vault, name, properties_json, key_generation, start_seq, "
                                "created, updated FROM event_subscriptions WHERE ? = '' OR "
                                "vault_key = ? ORDER BY vault_key, name_key"));
    st->Bind(1, vault).Bind(2, AsciiLower(vault));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(
          {st->Text(0), st->Text(1), st->Text(2), st->Int(3), st->Int(4), st->Int(5), st->Int(6)});
    }
  }));
  return out;
}

Status SqliteStore::DeleteEventSubscription(const std::string& vault, const std::string& name) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM event_subscriptions WHERE vault_key = ? "
                                           "AND name_key = ?"));
    st->Bind(1, AsciiLower(vault)).Bind(2, AsciiLower(name));
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("event subscription '" + name + "' not found", "ResourceNotFound");
    }
    return OkStatus();
  });
}

}  // namespace coffer::storage
