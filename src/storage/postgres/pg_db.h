#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/postgres/pg_conn.h"
#include "storage/sql_db.h"

namespace coffer::storage::postgres {

// PostgresPlaceholders rewrites SQLite's placeholders as PostgreSQL's: `?N`
// becomes `$N` and a bare `?` the next number after the highest so far (as
// SQLite numbers them). Text in quotes ('...' and "...") is left alone.
std::string PostgresPlaceholders(const std::string& sql);

class PgDb;

// PgStmt and PgDb are Stmt and Db (sql_db.h) on one PostgreSQL connection.
// A statement runs when first stepped (or by Exec) and keeps its rows until
// Reset, so the store's SQLite-style row loops work unchanged.
class PgStmt final : public Stmt {
 public:
  PgStmt(PgDb& db, std::string sql) : db_(db), sql_(std::move(sql)) {}

  using Stmt::Bind;
  Stmt& Bind(int index, std::string_view text) override;
  Stmt& BindBlob(int index, std::string_view bytes) override;
  Stmt& Bind(int index, int64_t value) override;
  Stmt& BindNull(int index) override;

  StatusOr<bool> Step() override;
  Status Exec() override;
  void Reset() override;
  void ClearBindings() { params_.clear(); }

  std::string Text(int column) const override;
  std::string Blob(int column) const override;
  int64_t Int(int column) const override;
  std::optional<int64_t> OptInt(int column) const override;
  std::optional<std::string> OptText(int column) const override;

 private:
  Stmt& Set(int index, PgParam param);
  Status Run();

  PgDb& db_;
  const std::string sql_;  // in PostgreSQL's placeholders
  std::vector<PgParam> params_;
  std::optional<PgRows> rows_;
  int row_ = -1;
};

class PgDb final : public Db {
 public:
  // Connect opens a connection (PgConn::Connect).
  static StatusOr<std::unique_ptr<PgDb>> Connect(const std::string& conninfo);

  StatusOr<Stmt*> Prepare(const std::string& sql) override;
  Status ExecScript(const std::string& sql) override;
  int Changes() const override { return changes_; }
  void ResetAll() override;

  PgConn& conn() { return *conn_; }

 private:
  friend class PgStmt;
  explicit PgDb(std::unique_ptr<PgConn> conn) : conn_(std::move(conn)) {}

  std::unique_ptr<PgConn> conn_;
  std::map<std::string, std::unique_ptr<PgStmt>> cache_;  // by the caller's SQL
  int changes_ = 0;
};

}  // namespace coffer::storage::postgres
