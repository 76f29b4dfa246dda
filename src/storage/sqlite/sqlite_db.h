#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace coffer::storage {

// Stmt is a prepared statement owned by its Db. Bind* indexes start at 1.
// Not thread-safe: a Db and its statements belong to one thread at a time.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int index, std::string_view text);
  Stmt& BindBlob(int index, std::string_view bytes);
  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, std::optional<int64_t> value);
  Stmt& BindNull(int index);

  // Step advances; returns true when a row is available, false when done.
  StatusOr<bool> Step();
  // Exec steps to completion.
  Status Exec();
  void Reset();

  std::string Text(int column) const;
  std::string Blob(int column) const;
  int64_t Int(int column) const;
  std::optional<int64_t> OptInt(int column) const;
  std::optional<std::string> OptText(int column) const;

 private:
  sqlite3_stmt* stmt_;
};

// Db is one SQLite connection with a statement cache.
class Db {
 public:
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Open opens (creating if asked) the database at `path`.
  static StatusOr<std::unique_ptr<Db>> Open(const std::string& path, bool read_only);

  // Prepare returns a cached statement for `sql`, reset and with bindings
  // cleared. kInternal if the SQL does not compile.
  StatusOr<Stmt*> Prepare(const std::string& sql);
  // ExecScript runs semicolon-separated statements without results.
  Status ExecScript(const std::string& sql);
  int Changes() const;
  // ResetAll resets every cached statement, ending any read they hold open.
  void ResetAll();

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<std::string, std::unique_ptr<Stmt>> cache_;
};

}  // namespace coffer::storage
