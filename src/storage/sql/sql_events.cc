// The change feed, expiry notices and event subscriptions (docs/events.md).
// The feed itself is written by the backend's triggers (sqlite_store.cc).

#include "common/strings.h"
#include "storage/sql/sql_store.h"

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

StatusOr<std::vector<ChangeRecord>> SqlStore::ListChanges(int64_t after_seq, int limit) {
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

StatusOr<Store::ChangeBounds> SqlStore::GetChangeBounds() {
  ChangeBounds bounds;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare(ChangeBoundsSql()));
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

StatusOr<int> SqlStore::PruneChanges(int64_t before_ms, int keep) {
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

StatusOr<std::vector<ExpiringSecret>> SqlStore::ListExpiringObjects(ObjectKind kind,
                                                                    const std::string& type,
                                                                    int64_t exp_before, int limit) {
  std::vector<ExpiringSecret> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("SELECT vt.name, s.name, v.version, v.nbf, v.exp FROM secrets s "
                                "JOIN secret_versions v ON v.vault_key = s.vault_key AND "
                                "v.kind = s.kind AND v.name_key = s.name_key AND "
                                "v.version = s.latest_version "
                                "JOIN vaults vt ON vt.name_key = s.vault_key "
                                "WHERE s.kind = ? AND s.deleted = 0 AND vt.deleted_date = 0 AND "
                                "v.exp IS NOT NULL AND v.exp <= ? AND NOT EXISTS (SELECT 1 FROM "
                                "notices n WHERE n.vault_key = s.vault_key AND "
                                "n.name_key = s.name_key AND n.version = v.version AND "
                                "n.type = ?) ORDER BY v.exp LIMIT ?"));
    st->Bind(1, std::string(ObjectKindName(kind))).Bind(2, exp_before).Bind(3, type);
    st->Bind(4, static_cast<int64_t>(limit));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back({kind, st->Text(0), st->Text(1), st->Text(2), st->OptInt(3), st->Int(4)});
    }
  }));
  return out;
}

StatusOr<bool> SqlStore::RecordNotice(const ChangeRecord& c) {
  bool recorded = false;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    recorded = false;
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("INSERT INTO notices(vault_key, name_key, version, "
                                           "type) VALUES(?, ?, ?, ?) ON CONFLICT DO NOTHING"));
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

namespace {

constexpr char kSubscriptionColumns[] =
    "SELECT vault, name, properties_json, key_generation, start_seq, created, updated, version "
    "FROM event_subscriptions ";

EventSubscriptionRecord ReadSubscription(const Stmt& st) {
  return {st.Text(0), st.Text(1), st.Text(2), st.Int(3),
          st.Int(4),  st.Int(5),  st.Int(6),  st.Int(7)};
}

}  // namespace

StatusOr<EventSubscriptionRecord> SqlStore::PutEventSubscription(
    const std::string& vault, const std::string& name, const EventSubscriptionUpsert& make) {
  EventSubscriptionRecord r;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * live, db.Prepare("SELECT name FROM vaults WHERE name_key = ? AND "
                                             "deleted_date = 0"));
    live->Bind(1, AsciiLower(vault));
    ASSIGN_OR_RETURN(bool exists, live->Step());
    std::string vault_name = exists ? live->Text(0) : "";
    live->Reset();
    if (!exists) {
      return NotFoundError("vault '" + vault + "' not found", "ResourceNotFound");
    }
    ASSIGN_OR_RETURN(Stmt * count,
                     db.Prepare("SELECT count(*) FROM event_subscriptions WHERE vault_key = ?"));
    count->Bind(1, AsciiLower(vault));
    ASSIGN_OR_RETURN(bool counted, count->Step());
    size_t existing = counted ? static_cast<size_t>(count->Int(0)) : 0;
    count->Reset();
    ASSIGN_OR_RETURN(Stmt * find, db.Prepare(std::string(kSubscriptionColumns) +
                                             "WHERE vault_key = ? AND name_key = ?"));
    find->Bind(1, AsciiLower(vault)).Bind(2, AsciiLower(name));
    ASSIGN_OR_RETURN(bool row, find->Step());
    std::optional<EventSubscriptionRecord> current;
    if (row) {
      current = ReadSubscription(*find);
    }
    find->Reset();
    ASSIGN_OR_RETURN(r, make(current, existing));
    r.vault = vault_name;
    r.name = current ? current->name : name;
    r.version = current ? current->version + 1 : 1;
    ASSIGN_OR_RETURN(
        Stmt * st,
        db.Prepare("INSERT INTO event_subscriptions(vault_key, name_key, vault, name, "
                   "properties_json, key_generation, start_seq, created, updated, version) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(vault_key, name_key) DO "
                   "UPDATE SET vault = excluded.vault, name = excluded.name, "
                   "properties_json = excluded.properties_json, "
                   "key_generation = excluded.key_generation, start_seq = excluded.start_seq, "
                   "created = excluded.created, updated = excluded.updated, "
                   "version = excluded.version"));
    st->Bind(1, AsciiLower(r.vault)).Bind(2, AsciiLower(r.name)).Bind(3, r.vault).Bind(4, r.name);
    st->Bind(5, r.properties_json).Bind(6, r.key_generation).Bind(7, r.start_seq);
    st->Bind(8, r.created).Bind(9, r.updated).Bind(10, r.version);
    return st->Exec();
  }));
  return r;
}

StatusOr<std::vector<EventSubscriptionRecord>> SqlStore::ListEventSubscriptions(
    const std::string& vault) {
  std::vector<EventSubscriptionRecord> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(
        Stmt * st, db.Prepare(std::string(kSubscriptionColumns) + "WHERE ? = '' OR vault_key = ? "
                                                                  "ORDER BY vault_key, name_key"));
    st->Bind(1, vault).Bind(2, AsciiLower(vault));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(ReadSubscription(*st));
    }
  }));
  return out;
}

Status SqlStore::DeleteEventSubscription(const std::string& vault, const std::string& name) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM event_subscriptions WHERE vault_key = ? "
                                           "AND name_key = ?"));
    st->Bind(1, AsciiLower(vault)).Bind(2, AsciiLower(name));
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() == 0) {
      return NotFoundError("event subscription '" + name + "' not found", "ResourceNotFound");
    }
    // Its pending deliveries go with it.
    ASSIGN_OR_RETURN(Stmt * pending, db.Prepare("DELETE FROM webhook_deliveries WHERE "
                                                "vault_key = ? AND name_key = ?"));
    pending->Bind(1, AsciiLower(vault)).Bind(2, AsciiLower(name));
    return pending->Exec();
  });
}

}  // namespace coffer::storage
