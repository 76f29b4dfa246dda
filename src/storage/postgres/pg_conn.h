#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct pg_conn;
struct pg_result;

namespace coffer::storage::postgres {

// PgParam is one query parameter ($1, $2, ...): text (integers are sent as
// their decimal text), raw bytes for a bytea column, or NULL.
struct PgParam {
  std::optional<std::string> value;
  bool binary = false;

  static PgParam Text(std::string_view text) { return {std::string(text), false}; }
  static PgParam Int(int64_t v) { return {std::to_string(v), false}; }
  static PgParam OptInt(std::optional<int64_t> v) {
    return v ? Int(*v) : PgParam{std::nullopt, false};
  }
  static PgParam Bytes(std::string_view bytes) { return {std::string(bytes), true}; }
  static PgParam Null() { return {std::nullopt, false}; }
};

// PgRows owns the rows one statement returned, in text format. Columns are
// indexed from 0. Reading a column of the wrong type returns its zero value:
// the schema decides the types, so a mismatch is a programming error that
// the store's tests catch.
class PgRows {
 public:
  explicit PgRows(pg_result* result);
  ~PgRows();
  PgRows(PgRows&& other) noexcept;
  PgRows& operator=(PgRows&& other) noexcept;
  PgRows(const PgRows&) = delete;
  PgRows& operator=(const PgRows&) = delete;

  int size() const;
  // The command's tag: "SELECT", "INSERT", "UPDATE", "DELETE", ...
  std::string command() const;
  // Rows an INSERT, UPDATE or DELETE changed.
  int64_t affected() const;
  bool IsNull(int row, int column) const;
  std::string Text(int row, int column) const;
  std::optional<std::string> OptText(int row, int column) const;
  int64_t Int(int row, int column) const;
  std::optional<int64_t> OptInt(int row, int column) const;
  // A bytea column's bytes (decoded from PostgreSQL's hex text form).
  std::string Bytes(int row, int column) const;

 private:
  pg_result* result_;
};

// PgConn is one libpq connection with a cache of prepared statements.
// Not thread-safe: a connection belongs to one thread at a time.
//
// Errors: a statement that fails returns the server's SQLSTATE as the
// status reason and its primary message only (never its DETAIL, which can
// quote the values of a unique key), mapped as
//   23505 unique_violation                 -> kAlreadyExists
//   40001 serialization_failure,
//   40P01 deadlock_detected                -> kAborted (the transaction may
//                                             be retried)
//   class 08 (connection), 57P01..57P03,
//   a connection lost                      -> kUnavailable
//   anything else                          -> kInternal
class PgConn {
 public:
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Connect opens a connection (`conninfo`: any libpq connection string or
  // URI). kUnavailable when the server cannot be reached or refuses; the
  // message never repeats the password.
  //
  // Options that `conninfo` does not set default to bounds a server needs
  // to notice a lost or partitioned database in seconds rather than the
  // kernel's hours: connect_timeout=5, TCP keepalives after 5 s idle, every
  // 2 s, 3 probes, and tcp_user_timeout=10000 (ms). Over a Unix socket
  // libpq ignores the TCP ones.
  static StatusOr<std::unique_ptr<PgConn>> Connect(const std::string& conninfo);
  // Option returns the value libpq uses for a connection option ("" when
  // unset).
  std::string Option(const std::string& keyword) const;

  // Exec runs one statement with parameters, prepared once per connection
  // and text of SQL.
  StatusOr<PgRows> Exec(const std::string& sql, const std::vector<PgParam>& params = {});
  // ExecScript runs semicolon-separated statements without parameters or
  // results (schema, BEGIN/COMMIT).
  Status ExecScript(const std::string& sql);
  // Broken is true once the connection is lost; the owner reconnects.
  bool Broken() const;

  // For a connection that LISTENs: its socket, to poll for input, and the
  // notifications received so far (reading what the socket holds without
  // blocking). kUnavailable once the connection is lost.
  struct Notification {
    std::string channel;
    std::string payload;
  };
  int Socket() const;
  StatusOr<std::vector<Notification>> TakeNotifications();

 private:
  explicit PgConn(pg_conn* conn) : conn_(conn) {}
  Status ErrorOf(pg_result* result, std::string_view what) const;

  pg_conn* conn_;
  std::map<std::string, std::string> prepared_;  // SQL -> statement name
};

}  // namespace coffer::storage::postgres
