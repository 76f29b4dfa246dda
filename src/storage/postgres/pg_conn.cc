#include "storage/postgres/pg_conn.h"

#include <cstdlib>
#include <utility>

#include <libpq-fe.h>

namespace coffer::storage::postgres {

PgRows::PgRows(pg_result* result) : result_(result) {}

PgRows::~PgRows() {
  if (result_ != nullptr) {
    PQclear(result_);
  }
}

PgRows::PgRows(PgRows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

PgRows& PgRows::operator=(PgRows&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) {
      PQclear(result_);
    }
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

int PgRows::size() const {
  return result_ == nullptr ? 0 : PQntuples(result_);
}

std::string PgRows::command() const {
  std::string tag = result_ == nullptr ? "" : PQcmdStatus(result_);
  return tag.substr(0, tag.find(' '));
}

int64_t PgRows::affected() const {
  const char* n = result_ == nullptr ? "" : PQcmdTuples(result_);
  return *n == '\0' ? 0 : std::strtoll(n, nullptr, 10);
}

bool PgRows::IsNull(int row, int column) const {
  return row >= size() || column >= PQnfields(result_) || PQgetisnull(result_, row, column) != 0;
}

std::string PgRows::Text(int row, int column) const {
  if (IsNull(row, column)) {
    return "";
  }
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<size_t>(PQgetlength(result_, row, column)));
}

std::optional<std::string> PgRows::OptText(int row, int column) const {
  if (IsNull(row, column)) {
    return std::nullopt;
  }
  return Text(row, column);
}

int64_t PgRows::Int(int row, int column) const {
  return IsNull(row, column) ? 0 : std::strtoll(PQgetvalue(result_, row, column), nullptr, 10);
}

std::optional<int64_t> PgRows::OptInt(int row, int column) const {
  if (IsNull(row, column)) {
    return std::nullopt;
  }
  return Int(row, column);
}

std::string PgRows::Bytes(int row, int column) const {
  if (IsNull(row, column)) {
    return "";
  }
  size_t length = 0;
  unsigned char* bytes = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row, column)), &length);
  if (bytes == nullptr) {
    return "";
  }
  std::string out(reinterpret_cast<const char*>(bytes), length);
  PQfreemem(bytes);
  return out;
}

PgConn::~PgConn() {
  PQfinish(conn_);
}

StatusOr<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& conninfo) {
  // Later entries win, and `conninfo`, expanded in place of dbname, comes
  // last, so whatever it sets overrides these defaults.
  const char* const keywords[] = {
      "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
  const char* const values[] = {"5", "1", "5", "2", "3", "10000", conninfo.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return UnavailableError("PostgreSQL: out of memory making a connection");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    // libpq's message names the host and port, never the password.
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    return UnavailableError("PostgreSQL: cannot connect: " + message);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConn>(new PgConn(conn));
}

std::string PgConn::Option(const std::string& keyword) const {
  PQconninfoOption* options = PQconninfo(conn_);
  std::string value;
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (keyword == o->keyword && o->val != nullptr) {
      value = o->val;
    }
  }
  PQconninfoFree(options);
  return value;
}

bool PgConn::Broken() const {
  return PQstatus(conn_) != CONNECTION_OK;
}

int PgConn::Socket() const {
  return PQsocket(conn_);
}

StatusOr<std::vector<PgConn::Notification>> PgConn::TakeNotifications() {
  if (PQconsumeInput(conn_) == 0 || Broken()) {
    return UnavailableError("PostgreSQL: the listening connection was lost");
  }
  std::vector<Notification> out;
  while (PGnotify* n = PQnotifies(conn_)) {
    out.push_back({n->relname != nullptr ? n->relname : "", n->extra != nullptr ? n->extra : ""});
    PQfreemem(n);
  }
  return out;
}

Status PgConn::ErrorOf(pg_result* result, std::string_view what) const {
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary =
      result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  std::string code = state == nullptr ? "" : state;
  std::string message = "PostgreSQL: " + std::string(what) + ": " +
                        (primary != nullptr ? std::string(primary) : "connection lost");
  if (Broken() || code.rfind("08", 0) == 0 || code == "57P01" || code == "57P02" ||
      code == "57P03") {
    return UnavailableError(message, code);
  }
  if (code == "23505") {
    return AlreadyExistsError(message, code);
  }
  if (code == "40001" || code == "40P01") {
    return AbortedError(message, code);
  }
  return InternalError(message, code);
}

StatusOr<PgRows> PgConn::Exec(const std::string& sql, const std::vector<PgParam>& params) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size());
    pg_result* r = PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr);
    PgRows owner(r);  // frees it
    if (r == nullptr || PQresultStatus(r) != PGRES_COMMAND_OK) {
      return ErrorOf(r, "prepare");
    }
    it = prepared_.emplace(sql, name).first;
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const PgParam& p : params) {
    values.push_back(p.value ? p.value->data() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
  pg_result* r = PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(params.size()),
                                values.data(), lengths.data(), formats.data(), 0);
  PgRows rows(r);
  ExecStatusType status = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return ErrorOf(r, "statement failed");
  }
  return rows;
}

Status PgConn::ExecScript(const std::string& sql) {
  // With several statements PQexec stops at the first that fails and
  // returns its error.
  pg_result* r = PQexec(conn_, sql.c_str());
  PgRows owner(r);
  ExecStatusType status = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return ErrorOf(r, "script failed");
  }
  return OkStatus();
}

}  // namespace coffer::storage::postgres
