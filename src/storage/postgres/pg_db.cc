#include "storage/postgres/pg_db.h"

#include <algorithm>

namespace coffer::storage::postgres {

std::string PostgresPlaceholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 8);
  int highest = 0;
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (quote != 0) {
      out.push_back(c);
      if (c == quote) {
        quote = 0;  // a doubled quote reopens at once: same result
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      out.push_back(c);
      continue;
    }
    if (c != '?') {
      out.push_back(c);
      continue;
    }
    size_t j = i + 1;
    int number = 0;
    while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') {
      number = number * 10 + (sql[j] - '0');
      ++j;
    }
    if (j == i + 1) {
      number = highest + 1;
    }
    highest = std::max(highest, number);
    out += "$" + std::to_string(number);
    i = j - 1;
  }
  return out;
}

Stmt& PgStmt::Set(int index, PgParam param) {
  if (index >= 1) {
    if (params_.size() < static_cast<size_t>(index)) {
      params_.resize(static_cast<size_t>(index), PgParam::Null());
    }
    params_[static_cast<size_t>(index) - 1] = std::move(param);
  }
  return *this;
}

Stmt& PgStmt::Bind(int index, std::string_view text) {
  return Set(index, PgParam::Text(text));
}
Stmt& PgStmt::BindBlob(int index, std::string_view bytes) {
  return Set(index, PgParam::Bytes(bytes));
}
Stmt& PgStmt::Bind(int index, int64_t value) {
  return Set(index, PgParam::Int(value));
}
Stmt& PgStmt::BindNull(int index) {
  return Set(index, PgParam::Null());
}

Status PgStmt::Run() {
  auto rows = db_.conn_->Exec(sql_, params_);
  if (!rows.ok()) {
    return rows.status();
  }
  std::string command = rows->command();
  if (command == "INSERT" || command == "UPDATE" || command == "DELETE") {
    db_.changes_ = static_cast<int>(rows->affected());
  }
  rows_.emplace(std::move(rows).value());
  row_ = -1;
  return OkStatus();
}

StatusOr<bool> PgStmt::Step() {
  if (!rows_) {
    RETURN_IF_ERROR(Run());
  }
  if (row_ < rows_->size()) {
    ++row_;
  }
  return row_ < rows_->size();
}

Status PgStmt::Exec() {
  Status s = Run();
  Reset();
  return s;
}

void PgStmt::Reset() {
  rows_.reset();
  row_ = -1;
}

std::string PgStmt::Text(int column) const {
  return rows_ ? rows_->Text(row_, column) : "";
}
std::string PgStmt::Blob(int column) const {
  return rows_ ? rows_->Bytes(row_, column) : "";
}
int64_t PgStmt::Int(int column) const {
  return rows_ ? rows_->Int(row_, column) : 0;
}
std::optional<int64_t> PgStmt::OptInt(int column) const {
  return rows_ ? rows_->OptInt(row_, column) : std::nullopt;
}
std::optional<std::string> PgStmt::OptText(int column) const {
  return rows_ ? rows_->OptText(row_, column) : std::nullopt;
}

StatusOr<std::unique_ptr<PgDb>> PgDb::Connect(const std::string& conninfo) {
  auto conn = PgConn::Connect(conninfo);
  if (!conn.ok()) {
    return conn.status();
  }
  return std::unique_ptr<PgDb>(new PgDb(std::move(conn).value()));
}

StatusOr<Stmt*> PgDb::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(sql, std::make_unique<PgStmt>(*this, PostgresPlaceholders(sql))).first;
  }
  it->second->Reset();
  it->second->ClearBindings();
  return it->second.get();
}

Status PgDb::ExecScript(const std::string& sql) {
  return conn_->ExecScript(sql);
}

void PgDb::ResetAll() {
  for (auto& [sql, stmt] : cache_) {
    stmt->Reset();
  }
}

}  // namespace coffer::storage::postgres
