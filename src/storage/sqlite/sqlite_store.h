#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/histogram.h"
#include "storage/sql/sql_store.h"
#include "storage/sql/write_queue.h"
#include "storage/sqlite/sqlite_db.h"

namespace coffer::storage {

// SqliteStore is the embedded default Store: one SQLite file in WAL mode with
// synchronous=FULL.
//
// Writes go through a single writer thread that commits them in groups: every
// write waiting when a transaction starts joins it, each inside its own
// savepoint, and all are acknowledged after the one fsync'd COMMIT. A failed
// write rolls back to its savepoint and leaves the others intact. Reads use a
// small pool of read-only connections and run concurrently with the writer.
//
// Thread-safe. Blocking: call from worker threads, never from I/O threads.
// The Store operations are SqlStore's (sql/sql_store.h); this class is the
// SQLite backend: the schema and its migrations, the group commit and the
// readers.
class SqliteStore final : public SqlStore {
 public:
  // Open opens or creates the database at `path` and applies the schema.
  // kUnavailable if the file cannot be opened; kDataLoss if it is not a
  // Coffer database or is corrupt.
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  ~SqliteStore() override;

  // How long each write transaction took, from BEGIN to the fsync'd COMMIT
  // (one per group of writes; failed ones included).
  const LatencyHistogram& commit_latency() const { return commit_latency_; }

 private:
  explicit SqliteStore(std::string path);
  Status Init();
  // Reads the schema version and migrates, inside Init's transaction.
  Status ApplySchema();
  // Commits one group of writes (WriteQueue::RunGroup), on the writer thread.
  void RunGroup(const std::vector<const WriteFn*>& group, std::vector<Status>& results);
  // Write runs `fn` inside the next group commit and waits for it.
  Status Write(WriteFn fn) override;
  // Read runs `fn` on a pooled read-only connection.
  Status Read(const std::function<Status(Db&)>& fn) override;
  const char* VaultAccessChangeSql() const override;
  const char* ChangeBoundsSql() const override;
  StatusOr<std::unique_ptr<Db>> AcquireReader();
  void ReleaseReader(std::unique_ptr<Db> db);

  const std::string path_;
  std::unique_ptr<Db> writer_db_;  // used only by the writer thread
  LatencyHistogram commit_latency_;
  WriteQueue writes_;

  std::mutex read_mu_;
  std::vector<std::unique_ptr<Db>> readers_;  // guarded by read_mu_
};

}  // namespace coffer::storage
