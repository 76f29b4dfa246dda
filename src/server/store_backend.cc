#include "server/store_backend.h"

#include "storage/postgres/pg_store.h"
#include "storage/sqlite/sqlite_store.h"

namespace coffer::server {

bool IsPostgresStore(const std::string& store) {
  return store.rfind("postgresql://", 0) == 0 || store.rfind("postgres://", 0) == 0 ||
         store.find('=') != std::string::npos;
}

StatusOr<OpenedStore> OpenStore(const std::string& store, const std::string& data_dir) {
  OpenedStore opened;
  if (store.empty()) {
    ASSIGN_OR_RETURN(auto sqlite, storage::SqliteStore::Open(data_dir + "/coffer.db"));
    opened.commit_latency = &sqlite->commit_latency();
    opened.store = std::move(sqlite);
    return opened;
  }
  if (!IsPostgresStore(store)) {
    return InvalidArgumentError(
        "--store: expected a PostgreSQL connection string (postgresql://... or libpq's "
        "key=value form), or nothing for SQLite in the data directory");
  }
  ASSIGN_OR_RETURN(auto pg, storage::postgres::PostgresStore::Open(store));
  opened.commit_latency = &pg->commit_latency();
  opened.store = std::move(pg);
  return opened;
}

std::string RedactStore(const std::string& store) {
  std::string out = store;
  // URI: scheme://user:password@host...
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t at = out.find('@', start);
    size_t slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // password=... as a key=value pair or a URI query parameter.
  for (size_t pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    size_t value = pos + 9;
    size_t end = value;
    if (end < out.size() && out[end] == '\'') {
      ++end;
      while (end < out.size() && out[end] != '\'') {
        end += out[end] == '\\' ? 2 : 1;
      }
      end = std::min(end + 1, out.size());
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '&') {
        ++end;
      }
    }
    out.replace(value, end - value, "***");
  }
  return out;
}

}  // namespace coffer::server
