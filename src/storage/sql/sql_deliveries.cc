// Pending webhook deliveries (docs/events.md): the leader's queue, kept in
// the store so that a restart or the next leader continues it.

#include <charconv>

#include "storage/sql/sql_store.h"

namespace coffer::storage {

namespace {

constexpr char kDeliveryColumns[] =
    "SELECT vault_key, name_key, seq, event_id, time_ms, vault, type, object_type, name, "
    "version, nbf, exp, attempts, due_ms, first_ms, last_outcome, last_status "
    "FROM webhook_deliveries ";

PendingDelivery DeliveryFromRow(const Stmt& st) {
  PendingDelivery d;
  d.vault_key = st.Text(0);
  d.name_key = st.Text(1);
  d.change.seq = st.Int(2);
  d.change.event_id = st.Text(3);
  d.change.time_ms = st.Int(4);
  d.change.vault = st.Text(5);
  d.change.type = st.Text(6);
  d.change.object_type = st.Text(7);
  d.change.name = st.Text(8);
  d.change.version = st.Text(9);
  d.change.nbf = st.OptInt(10);
  d.change.exp = st.OptInt(11);
  d.attempts = static_cast<int>(st.Int(12));
  d.due_ms = st.Int(13);
  d.first_ms = st.Int(14);
  d.last_outcome = st.Text(15);
  d.last_status = static_cast<int>(st.Int(16));
  return d;
}

// The stored position: a whole decimal number, else 0 (as a server that
// finds it unreadable starts over).
int64_t ParsePosition(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() ? value : 0;
}

}  // namespace

StatusOr<int64_t> SqlStore::QueueDeliveries(const std::string& position_key, int64_t position,
                                            const std::vector<PendingDelivery>& deliveries) {
  int64_t before = 0;
  RETURN_IF_ERROR(Write([&](Db& db) -> Status {
    before = 0;
    ASSIGN_OR_RETURN(std::optional<std::string> stored, ReadMeta(db, position_key));
    if (stored.has_value()) {
      before = ParsePosition(*stored);
    }
    ASSIGN_OR_RETURN(
        Stmt * ins,
        db.Prepare("INSERT INTO webhook_deliveries(vault_key, name_key, seq, event_id, time_ms, "
                   "vault, type, object_type, name, version, nbf, exp, attempts, due_ms, "
                   "first_ms, last_outcome, last_status) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT DO NOTHING"));
    for (const PendingDelivery& d : deliveries) {
      // SECURITY/once-only: at or below the stored position, another leader
      // queued it, and may have delivered and removed it since.
      if (d.change.seq <= before) {
        continue;
      }
      const ChangeRecord& c = d.change;
      ins->Bind(1, d.vault_key).Bind(2, d.name_key).Bind(3, c.seq).Bind(4, c.event_id);
      ins->Bind(5, c.time_ms).Bind(6, c.vault).Bind(7, c.type).Bind(8, c.object_type);
      ins->Bind(9, c.name).Bind(10, c.version).Bind(11, c.nbf).Bind(12, c.exp);
      ins->Bind(13, static_cast<int64_t>(d.attempts)).Bind(14, d.due_ms).Bind(15, d.first_ms);
      ins->Bind(16, d.last_outcome).Bind(17, static_cast<int64_t>(d.last_status));
      RETURN_IF_ERROR(ins->Exec());
      ins->Reset();  // to bind the next row
    }
    if (position <= before) {
      return OkStatus();
    }
    ASSIGN_OR_RETURN(Stmt * put,
                     db.Prepare("INSERT INTO meta(key, value) VALUES(?, ?) "
                                "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    put->Bind(1, position_key).Bind(2, std::to_string(position));
    return put->Exec();
  }));
  return before;
}

StatusOr<std::vector<PendingDelivery>> SqlStore::ListDeliveries(
    const std::optional<DeliveryCursor>& after, int limit) {
  std::vector<PendingDelivery> out;
  RETURN_IF_ERROR(Read([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(
        Stmt * st, db.Prepare(std::string(kDeliveryColumns) +
                              "WHERE ? = 0 OR due_ms > ? OR (due_ms = ? AND (vault_key > ? OR "
                              "(vault_key = ? AND (name_key > ? OR (name_key = ? AND seq > ?))))) "
                              "ORDER BY due_ms, vault_key, name_key, seq LIMIT ?"));
    DeliveryCursor c = after.value_or(DeliveryCursor{});
    st->Bind(1, int64_t{after.has_value() ? 1 : 0}).Bind(2, c.due_ms).Bind(3, c.due_ms);
    st->Bind(4, c.vault_key).Bind(5, c.vault_key).Bind(6, c.name_key).Bind(7, c.name_key);
    st->Bind(8, c.seq).Bind(9, static_cast<int64_t>(limit));
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) {
        return OkStatus();
      }
      out.push_back(DeliveryFromRow(*st));
    }
  }));
  return out;
}

Status SqlStore::UpdateDelivery(const PendingDelivery& d) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st,
                     db.Prepare("UPDATE webhook_deliveries SET attempts = ?, due_ms = ?, "
                                "last_outcome = ?, last_status = ? WHERE vault_key = ? AND "
                                "name_key = ? AND seq = ? AND attempts < ?"));
    st->Bind(1, static_cast<int64_t>(d.attempts)).Bind(2, d.due_ms).Bind(3, d.last_outcome);
    st->Bind(4, static_cast<int64_t>(d.last_status)).Bind(5, d.vault_key).Bind(6, d.name_key);
    st->Bind(7, d.change.seq).Bind(8, static_cast<int64_t>(d.attempts));
    RETURN_IF_ERROR(st->Exec());
    if (db.Changes() > 0) {
      return OkStatus();
    }
    // Not updated: gone, or already further along (kept as it is).
    ASSIGN_OR_RETURN(Stmt * find, db.Prepare("SELECT 1 FROM webhook_deliveries WHERE "
                                             "vault_key = ? AND name_key = ? AND seq = ?"));
    find->Bind(1, d.vault_key).Bind(2, d.name_key).Bind(3, d.change.seq);
    ASSIGN_OR_RETURN(bool row, find->Step());
    find->Reset();
    return row ? OkStatus() : NotFoundError("the delivery is no longer pending");
  });
}

Status SqlStore::DeleteDelivery(const std::string& vault_key, const std::string& name_key,
                                int64_t seq) {
  return Write([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Stmt * st, db.Prepare("DELETE FROM webhook_deliveries WHERE vault_key = ? "
                                           "AND name_key = ? AND seq = ?"));
    st->Bind(1, vault_key).Bind(2, name_key).Bind(3, seq);
    RETURN_IF_ERROR(st->Exec());
    return db.Changes() > 0 ? OkStatus() : NotFoundError("the delivery is no longer pending");
  });
}

}  // namespace coffer::storage
