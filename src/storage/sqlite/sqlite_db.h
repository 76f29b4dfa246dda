#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/sql_db.h"

struct sqlite3;
struct sqlite3_stmt;

namespace coffer::storage {

// SqliteStmt and SqliteDb are Stmt and Db (sql_db.h) on one SQLite
// connection.
class SqliteStmt final : public Stmt {
 public:
  explicit SqliteStmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~SqliteStmt() override;
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;

  using Stmt::Bind;
  Stmt& Bind(int index, std::string_view text) override;
  Stmt& BindBlob(int index, std::string_view bytes) override;
  Stmt& Bind(int index, int64_t value) override;
  Stmt& BindNull(int index) override;

  StatusOr<bool> Step() override;
  Status Exec() override;
  void Reset() override;

  std::string Text(int column) const override;
  std::string Blob(int column) const override;
  int64_t Int(int column) const override;
  std::optional<int64_t> OptInt(int column) const override;
  std::optional<std::string> OptText(int column) const override;

 private:
  sqlite3_stmt* stmt_;
};

class SqliteDb final : public Db {
 public:
  ~SqliteDb() override;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Open opens (creating if asked) the database at `path`.
  static StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path, bool read_only);

  StatusOr<Stmt*> Prepare(const std::string& sql) override;
  Status ExecScript(const std::string& sql) override;
  int Changes() const override;
  void ResetAll() override;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<std::string, std::unique_ptr<SqliteStmt>> cache_;
};

}  // namespace coffer::storage
