#include "storage/sqlite/sqlite_db.h"

#include <sqlite3.h>

namespace coffer::storage {

SqliteStmt::~SqliteStmt() {
  sqlite3_finalize(stmt_);
}

Stmt& SqliteStmt::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& SqliteStmt::BindBlob(int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& SqliteStmt::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& SqliteStmt::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

StatusOr<bool> SqliteStmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT) {
    return AlreadyExistsError("constraint violated");
  }
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_FULL || rc == SQLITE_IOERR ||
      (rc & 0xff) == SQLITE_IOERR) {
    return UnavailableError(std::string("storage unavailable: ") + sqlite3_errstr(rc));
  }
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
    return DataLossError(std::string("storage corrupt: ") + sqlite3_errstr(rc));
  }
  return InternalError(std::string("storage error: ") + sqlite3_errstr(rc));
}

Status SqliteStmt::Exec() {
  while (true) {
    auto r = Step();
    if (!r.ok()) {
      return r.status();
    }
    if (!*r) {
      return OkStatus();
    }
  }
}

void SqliteStmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string SqliteStmt::Text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::string SqliteStmt::Blob(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

int64_t SqliteStmt::Int(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::optional<std::string> SqliteStmt::OptText(int column) const {
  if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) {
    return std::nullopt;
  }
  return Text(column);
}

std::optional<int64_t> SqliteStmt::OptInt(int column) const {
  if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) {
    return std::nullopt;
  }
  return sqlite3_column_int64(stmt_, column);
}

SqliteDb::~SqliteDb() {
  cache_.clear();
  sqlite3_close(db_);
}

StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return UnavailableError("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 10000);
  return std::unique_ptr<SqliteDb>(new SqliteDb(db));
}

StatusOr<Stmt*> SqliteDb::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return InternalError(std::string("cannot prepare statement: ") + sqlite3_errmsg(db_));
  }
  auto owned = std::make_unique<SqliteStmt>(stmt);
  SqliteStmt* raw = owned.get();
  cache_.emplace(sql, std::move(owned));
  return raw;
}

Status SqliteDb::ExecScript(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
      return DataLossError("database is corrupt: " + msg);
    }
    return UnavailableError("storage error: " + msg);
  }
  return OkStatus();
}

int SqliteDb::Changes() const {
  return sqlite3_changes(db_);
}

void SqliteDb::ResetAll() {
  for (auto& [sql, stmt] : cache_) {
    stmt->Reset();
  }
}

}  // namespace coffer::storage
