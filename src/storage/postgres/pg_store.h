#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/histogram.h"
#include "storage/postgres/pg_db.h"
#include "storage/sql/sql_store.h"
#include "storage/sql/write_queue.h"

namespace coffer::storage::postgres {

// PostgresStore is the Store that several servers share: one PostgreSQL
// database (any libpq connection string, several hosts with
// target_session_attrs=read-write included).
//
// Writes: one writer connection per store commits the waiting writes in
// groups, each write in its own savepoint, as SqliteStore does. A group's
// transaction first takes a transaction-level advisory lock that every
// server's writer takes, so the groups of all servers run one at a time
// (serially: no read-modify-write of one server can lose another's, and no
// check is made on data another is changing), while the group commit keeps
// the throughput. A group that PostgreSQL aborts anyway (a serialization
// failure or deadlock, from a writer outside Coffer) runs again (the
// writes' functions are deterministic, SqlStore's contract), and after that
// each write alone.
//
// The change feed's seq is commit order across servers: a row of `changes`
// takes its seq from a sequence when it is inserted, and only writers
// insert them, each holding the writer lock (released only once its commit
// is visible); every statement that inserts changes NOTIFYs
// `coffer_changes`. So a reader that sees seq N sees every seq below it
// (gaps are possible, from transactions that failed after numbering; out of
// order is not). `coffer storage migrate` copies rows with their seqs under
// the same lock.
//
// Reads use a pool of connections, each read a REPEATABLE READ READ ONLY
// transaction (one snapshot).
//
// A lost connection is replaced on its next use; the write or read that
// found it lost fails with kUnavailable and nothing half-written (a commit
// whose outcome was not heard is reported as failed: it may have landed,
// and a retry of the same write is safe only where the write is
// idempotent, which is the caller's knowledge).
//
// Thread-safe. Blocking: call from worker threads, never from I/O threads.
class PostgresStore final : public SqlStore {
 public:
  // Open connects, creates or migrates the schema (under an advisory lock,
  // so servers starting together do it once) and starts the writer.
  // kUnavailable if the database cannot be reached; kDataLoss if its schema
  // is newer than this server's or is not Coffer's.
  static StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& conninfo);
  ~PostgresStore() override;

  // OnChange (Store): NOTIFYs on coffer_changes (the feed) and
  // coffer_records ("table:op:key", written by the schema's triggers, and
  // "meta:UPDATE:<key>" by every meta write in its transaction), heard
  // on a listener connection of its own; kAll after that connection was
  // (re)made. The listener starts with the first OnChange.
  void OnChange(std::function<void(const ExternalChange&)> fn) override;
  void StopChanges() override;
  // Leads (Store): the listener's session holds a session-level advisory
  // lock, tried when it connects and every second while another holds it.
  // A leader that dies or loses that connection lets it go (PostgreSQL ends
  // the session), and stops leading the moment it finds the connection
  // lost. False until OnChange started the listener.
  bool Leads() override { return leads_.load(); }

  const LatencyHistogram& commit_latency() const { return commit_latency_; }

 private:
  explicit PostgresStore(std::string conninfo);
  Status Init();
  Status ApplySchema(Db& db);
  void RunGroup(const std::vector<const WriteFn*>& group, std::vector<Status>& results);
  // BeginGroup runs on the writer thread before it takes a group
  // (WriteQueue's before_group): it begins the group's transaction and waits
  // for the installation's writer lock, so that the writes arriving while
  // another server commits join this group. When it fails nothing is open,
  // and TryGroup begins again and reports why.
  void BeginGroup();
  // Connects if need be, begins a transaction and takes the writer lock.
  Status Begin();
  enum class GroupOutcome {
    kDone,         // committed, or failed for good: `results` hold the answers
    kConflict,     // aborted by PostgreSQL (serialization failure, deadlock): run it again
    kWriteFailed,  // a write failed without savepoints: run it again with them
  };
  // One attempt at a group in one transaction, with a savepoint around each
  // write or without (then a failed write of a group of several undoes the
  // whole transaction).
  GroupOutcome TryGroup(const std::vector<const WriteFn*>& group, std::vector<Status>& results,
                        bool savepoints);
  Status Write(WriteFn fn) override;
  Status Read(const std::function<Status(Db&)>& fn) override;
  const char* VaultAccessChangeSql() const override;
  const char* ChangeBoundsSql() const override;
  const char* AddSecretVersionSql() const override;
  const char* MetaChangedSql() const override;
  StatusOr<std::unique_ptr<PgDb>> AcquireReader();
  void ReleaseReader(std::unique_ptr<PgDb> db);
  void ListenLoop();

  const std::string conninfo_;
  std::unique_ptr<PgDb> writer_db_;  // writer thread only; replaced when lost
  bool begun_ = false;               // writer thread only: BeginGroup's transaction is open
  LatencyHistogram commit_latency_;
  WriteQueue writes_;

  std::mutex read_mu_;
  std::vector<std::unique_ptr<PgDb>> readers_;  // guarded by read_mu_

  std::mutex listen_mu_;
  std::vector<std::function<void(const ExternalChange&)>> on_change_;  // guarded by listen_mu_
  std::atomic<bool> stopping_{false};
  std::atomic<bool> leads_{false};
  int wake_fd_ = -1;  // eventfd that ends the listener's wait
  std::thread listener_;
};

}  // namespace coffer::storage::postgres
