#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace coffer::server {

// One table as the migration left it: its rows and a digest of them (the
// same on both sides when the copy is whole).
struct MigratedTable {
  std::string table;
  int64_t rows = 0;
  std::string digest;  // hex SHA-256 chain over the rows in key order
};

// MigrateToPostgres copies the SQLite installation in `data_dir` (its
// coffer.db) into the PostgreSQL database `conninfo` (`coffer storage
// migrate`, docs/ha.md): every table (vaults, secrets with all versions and
// the deleted ones, principals and credentials, identities and workloads,
// roles and assignments, event subscriptions and their pending webhook
// deliveries, notices, the change feed with its seqs, the installation's
// metadata), in one transaction, with the feed's triggers off so that
// nothing is renumbered or announced. Values stay
// sealed as they are. It then verifies, in the same transaction, that every
// table holds the same rows on both sides (count and digest, compared in key
// order) and commits only then.
//
// Rows the target has already are kept, so a run after an interrupted one
// (which left nothing: one transaction) or after a finished one copies what
// is missing and verifies again; a target holding other data fails the
// verification.
//
// The server must be stopped (as for the offline rotation): kFailedPrecondition
// when a server holds `data_dir`'s audit log, or when a table differs after
// the copy (naming it). kNotFound when `data_dir` holds no coffer.db. The
// stores' own errors otherwise (kUnavailable, kDataLoss for a newer schema).
StatusOr<std::vector<MigratedTable>> MigrateToPostgres(const std::string& data_dir,
                                                       const std::string& conninfo);

}  // namespace coffer::server
