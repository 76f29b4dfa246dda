#pragma once

#include <memory>
#include <string>

#include "common/histogram.h"
#include "common/status.h"
#include "storage/store.h"

namespace coffer::server {

// Which store a server runs on (`coffer server --store`, docs/ha.md):
//   ""                  SQLite, DATA_DIR/coffer.db (one machine);
//   a PostgreSQL connection string, as libpq takes it: a postgresql:// or
//   postgres:// URI, or the key=value form ("host=db1,db2 dbname=coffer
//   target_session_attrs=read-write")
//                       the store several servers share.
// IsPostgresStore says which; anything else is refused by OpenStore.
bool IsPostgresStore(const std::string& store);

struct OpenedStore {
  std::unique_ptr<storage::Store> store;
  const LatencyHistogram* commit_latency = nullptr;  // owned by `store`
};

// OpenStore opens (and creates or migrates) the store. kInvalidArgument for
// a `store` that is neither; otherwise the backend's errors (kUnavailable:
// cannot be reached; kDataLoss: not a Coffer database, or a newer schema).
StatusOr<OpenedStore> OpenStore(const std::string& store, const std::string& data_dir);

// RedactStore returns `store` with any password in it replaced by "***"
// (the URI's user:password@ and password=...), for --print-config and logs.
// SECURITY: a password belongs in PGPASSFILE or PGPASSWORD, not the flag;
// this is for those who put it there anyway.
std::string RedactStore(const std::string& store);

}  // namespace coffer::server
