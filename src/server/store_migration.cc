#include "server/store_migration.h"

#include <map>
#include <memory>

#include "audit/servers.h"
#include "common/encoding.h"
#include "common/file_system.h"
#include "crypto/primitives.h"
#include "storage/postgres/pg_db.h"
#include "storage/postgres/pg_store.h"
#include "storage/sqlite/sqlite_db.h"
#include "storage/sqlite/sqlite_store.h"

namespace coffer::server {
namespace {

using storage::Db;
using storage::Stmt;

enum class Kind { kInteger, kText, kBlob };

struct Column {
  std::string name;
  Kind kind = Kind::kText;
};

struct Table {
  std::string name;
  std::vector<Column> columns;
  std::vector<std::string> key;  // primary key columns, in key order
};

// The tables of the SQLite schema, read from the database itself so that
// the copy follows the schema rather than a list kept beside it.
StatusOr<std::vector<Table>> ReadTables(Db& sqlite) {
  std::vector<Table> tables;
  ASSIGN_OR_RETURN(Stmt * list, sqlite.Prepare("SELECT name FROM sqlite_master WHERE type = "
                                               "'table' AND name NOT LIKE 'sqlite_%' "
                                               "ORDER BY name"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, list->Step());
    if (!row) {
      break;
    }
    tables.push_back({list->Text(0), {}, {}});
  }
  list->Reset();
  for (Table& t : tables) {
    // The name comes from sqlite_master, not from input.
    ASSIGN_OR_RETURN(Stmt * info, sqlite.Prepare("SELECT name, upper(type), pk FROM "
                                                 "pragma_table_info(?) ORDER BY cid"));
    info->Bind(1, t.name);
    std::map<int64_t, std::string> key;
    while (true) {
      ASSIGN_OR_RETURN(bool row, info->Step());
      if (!row) {
        break;
      }
      std::string type = info->Text(1);
      Kind kind = type.find("INT") != std::string::npos    ? Kind::kInteger
                  : type.find("BLOB") != std::string::npos ? Kind::kBlob
                                                           : Kind::kText;
      t.columns.push_back({info->Text(0), kind});
      if (info->Int(2) > 0) {
        key[info->Int(2)] = info->Text(0);
      }
    }
    info->Reset();
    for (auto& [order, column] : key) {
      t.key.push_back(column);
    }
    if (t.key.empty()) {
      for (const Column& c : t.columns) {
        t.key.push_back(c.name);
      }
    }
  }
  return tables;
}

std::string ColumnList(const Table& t) {
  std::string out;
  for (const Column& c : t.columns) {
    out += (out.empty() ? "" : ", ") + c.name;
  }
  return out;
}

std::string OrderBy(const Table& t) {
  std::string out;
  for (const std::string& k : t.key) {
    out += (out.empty() ? "" : ", ") + k;
  }
  return out;
}

// Appends one value to a row's encoding: NULL and each type apart.
void Encode(const Stmt& st, int column, Kind kind, std::string& out) {
  std::string value;
  if (kind == Kind::kInteger) {
    auto v = st.OptInt(column);
    if (!v) {
      out += "N;";
      return;
    }
    value = std::to_string(*v);
  } else if (kind == Kind::kBlob) {
    value = st.Blob(column);
  } else {
    auto v = st.OptText(column);
    if (!v) {
      out += "N;";
      return;
    }
    value = *v;
  }
  out += "V" + std::to_string(value.size()) + ":" + value + ";";
}

// Count and digest of a table's rows in key order, as `db` sees them.
StatusOr<MigratedTable> Digest(Db& db, const Table& t) {
  MigratedTable out{t.name, 0, std::string(32, '\0')};
  ASSIGN_OR_RETURN(Stmt * st, db.Prepare("SELECT " + ColumnList(t) + " FROM " + t.name +
                                         " ORDER BY " + OrderBy(t)));
  std::string row;
  while (true) {
    ASSIGN_OR_RETURN(bool has, st->Step());
    if (!has) {
      break;
    }
    row = out.digest;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      Encode(*st, static_cast<int>(i), t.columns[i].kind, row);
    }
    out.digest = crypto::Sha256(row);
    ++out.rows;
  }
  st->Reset();
  out.digest = HexEncode(out.digest);
  return out;
}

Status CopyTable(Db& sqlite, Db& pg, const Table& t) {
  std::string placeholders;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    placeholders += (i == 0 ? "?" : ", ?");
  }
  ASSIGN_OR_RETURN(Stmt * insert,
                   pg.Prepare("INSERT INTO " + t.name + "(" + ColumnList(t) + ") VALUES(" +
                              placeholders + ") ON CONFLICT DO NOTHING"));
  ASSIGN_OR_RETURN(Stmt * read, sqlite.Prepare("SELECT " + ColumnList(t) + " FROM " + t.name +
                                               " ORDER BY " + OrderBy(t)));
  while (true) {
    ASSIGN_OR_RETURN(bool has, read->Step());
    if (!has) {
      break;
    }
    for (size_t i = 0; i < t.columns.size(); ++i) {
      int index = static_cast<int>(i) + 1;
      int column = static_cast<int>(i);
      switch (t.columns[i].kind) {
        case Kind::kInteger:
          insert->Bind(index, read->OptInt(column));
          break;
        case Kind::kBlob:
          insert->BindBlob(index, read->Blob(column));
          break;
        case Kind::kText: {
          auto v = read->OptText(column);
          if (v) {
            insert->Bind(index, *v);
          } else {
            insert->BindNull(index);
          }
          break;
        }
      }
    }
    RETURN_IF_ERROR(insert->Exec());
  }
  read->Reset();
  return OkStatus();
}

// The newest seq SQLite ever assigned (pruning does not lower it).
StatusOr<int64_t> NewestSeq(Db& sqlite) {
  ASSIGN_OR_RETURN(Stmt * st, sqlite.Prepare("SELECT max(coalesce((SELECT seq FROM "
                                             "sqlite_sequence WHERE name = 'changes'), 0), "
                                             "coalesce((SELECT max(seq) FROM changes), 0))"));
  ASSIGN_OR_RETURN(bool has, st->Step());
  int64_t newest = has ? st->Int(0) : 0;
  st->Reset();
  return newest;
}

Status CopyAndVerify(Db& sqlite, Db& pg, const std::vector<Table>& tables,
                     std::vector<MigratedTable>& report) {
  // Servers on the target wait for this transaction (their writers take
  // the same lock), and nothing the copy inserts fires a trigger: the
  // feed keeps its seqs, and no cache is told of rows it never held.
  RETURN_IF_ERROR(pg.ExecScript("SELECT pg_advisory_xact_lock(1131374182, 3)"));
  for (const Table& t : tables) {
    RETURN_IF_ERROR(pg.ExecScript("ALTER TABLE " + t.name + " DISABLE TRIGGER USER"));
  }
  for (const Table& t : tables) {
    RETURN_IF_ERROR(CopyTable(sqlite, pg, t));
  }
  ASSIGN_OR_RETURN(int64_t newest, NewestSeq(sqlite));
  ASSIGN_OR_RETURN(Stmt * seq, pg.Prepare("SELECT setval('change_seq', greatest(?, "
                                          "(SELECT coalesce(max(seq), 0) FROM changes), 1))"));
  seq->Bind(1, newest);
  RETURN_IF_ERROR(seq->Exec());
  ASSIGN_OR_RETURN(Stmt * pruned, pg.Prepare("UPDATE changes_pruned SET seq = greatest(seq, ?)"));
  pruned->Bind(1, newest);
  RETURN_IF_ERROR(pruned->Exec());
  for (const Table& t : tables) {
    RETURN_IF_ERROR(pg.ExecScript("ALTER TABLE " + t.name + " ENABLE TRIGGER USER"));
  }
  for (const Table& t : tables) {
    ASSIGN_OR_RETURN(MigratedTable source, Digest(sqlite, t));
    ASSIGN_OR_RETURN(MigratedTable target, Digest(pg, t));
    if (source.rows != target.rows || source.digest != target.digest) {
      return FailedPreconditionError(
          "table " + t.name + " differs after the copy (" + std::to_string(source.rows) +
          " rows in SQLite, " + std::to_string(target.rows) +
          " in PostgreSQL): the target holds other data; nothing was committed");
    }
    report.push_back(source);
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::vector<MigratedTable>> MigrateToPostgres(const std::string& data_dir,
                                                       const std::string& conninfo) {
  FileSystem& fs = FileSystem::Default();
  const std::string path = data_dir + "/coffer.db";
  if (!fs.Stat(path).ok()) {
    return NotFoundError("no Coffer installation in " + data_dir + " (no coffer.db)");
  }
  if (audit::AnyLogOpen(fs, data_dir + "/audit")) {
    return FailedPreconditionError("a coffer server is running on " + data_dir +
                                   "; stop it before migrating its store");
  }
  // Both schemas at this version first (the source's older versions are
  // migrated as a server would).
  {
    ASSIGN_OR_RETURN(auto source, storage::SqliteStore::Open(path));
    ASSIGN_OR_RETURN(auto target, storage::postgres::PostgresStore::Open(conninfo));
  }
  ASSIGN_OR_RETURN(auto sqlite, storage::SqliteDb::Open(path, true));
  ASSIGN_OR_RETURN(auto pg, storage::postgres::PgDb::Connect(conninfo));
  RETURN_IF_ERROR(sqlite->ExecScript("BEGIN"));  // one snapshot of the source
  ASSIGN_OR_RETURN(std::vector<Table> tables, ReadTables(*sqlite));
  RETURN_IF_ERROR(pg->ExecScript("BEGIN ISOLATION LEVEL READ COMMITTED"));
  std::vector<MigratedTable> report;
  Status copied = CopyAndVerify(*sqlite, *pg, tables, report);
  sqlite->ResetAll();
  pg->ResetAll();
  (void)sqlite->ExecScript("COMMIT");
  if (!copied.ok()) {
    (void)pg->ExecScript("ROLLBACK");
    return copied;
  }
  RETURN_IF_ERROR(pg->ExecScript("COMMIT"));
  return report;
}

}  // namespace coffer::server
