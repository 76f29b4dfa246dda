#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace coffer::storage {

// Stmt is a prepared statement owned by its Db; Db is one database
// connection with a statement cache. The SQL stores are written against
// these two, so that the same statements run on SQLite (sqlite/sqlite_db.h)
// and PostgreSQL (postgres/pg_db.h). Statements use `?` (or `?N`)
// placeholders and the SQL both dialects share (ON CONFLICT, not INSERT OR
// IGNORE).
//
// Bind* indexes start at 1, column indexes at 0. Not thread-safe: a Db and
// its statements belong to one thread at a time.
//
// Errors: a unique-key violation is kAlreadyExists; kAborted when the
// transaction must be retried; kUnavailable when the database cannot be
// reached; kInternal otherwise. Messages never quote bound values.
class Stmt {
 public:
  virtual ~Stmt() = default;

  virtual Stmt& Bind(int index, std::string_view text) = 0;
  virtual Stmt& BindBlob(int index, std::string_view bytes) = 0;
  virtual Stmt& Bind(int index, int64_t value) = 0;
  virtual Stmt& BindNull(int index) = 0;
  Stmt& Bind(int index, std::optional<int64_t> value) {
    return value ? Bind(index, *value) : BindNull(index);
  }

  // Step advances; returns true when a row is available, false when done.
  virtual StatusOr<bool> Step() = 0;
  // Exec steps to completion.
  virtual Status Exec() = 0;
  // Reset ends the statement's current execution and keeps its bindings.
  virtual void Reset() = 0;

  virtual std::string Text(int column) const = 0;
  virtual std::string Blob(int column) const = 0;
  virtual int64_t Int(int column) const = 0;
  virtual std::optional<int64_t> OptInt(int column) const = 0;
  virtual std::optional<std::string> OptText(int column) const = 0;
};

class Db {
 public:
  virtual ~Db() = default;

  // Prepare returns a cached statement for `sql`, reset and with bindings
  // cleared. kInternal if the SQL does not compile (on PostgreSQL, from the
  // statement's first run).
  virtual StatusOr<Stmt*> Prepare(const std::string& sql) = 0;
  // ExecScript runs semicolon-separated statements without parameters or
  // results.
  virtual Status ExecScript(const std::string& sql) = 0;
  // Rows the last INSERT, UPDATE or DELETE changed.
  virtual int Changes() const = 0;
  // ResetAll resets every cached statement, ending any read they hold open.
  virtual void ResetAll() = 0;
};

}  // namespace coffer::storage
