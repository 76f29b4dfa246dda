#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/layout.h"
#include "audit/record.h"
#include "common/clock.h"
#include "common/file_system.h"
#include "common/histogram.h"
#include "common/status.h"

namespace coffer::crypto {
class Ed25519Key;
}

namespace coffer::audit {

struct LogOptions {
  // Created 0700 if missing; log files are 0600.
  std::string dir;
  // The Ed25519 private key that signs checkpoints and the head (PKCS#8 PEM);
  // default dir/checkpoint.key. It may live outside `dir`, so that whoever
  // can write the log directory cannot re-sign the log (docs/audit.md). Open
  // creates it (0600) only while the log holds no files; otherwise a missing
  // key is kFailedPrecondition. The public key is written to
  // dir/checkpoint.pub (0644), where verifiers look for it.
  std::string signing_key_path;
  // The id of the server writing the log (servers.h ValidateServerId): every
  // record line carries it as "serverId" (docs/audit.md). "" writes none.
  std::string server_id;
  uint64_t max_file_bytes = 64 << 20;    // rotate by size
  int64_t max_file_age_seconds = 86400;  // rotate by age
  int64_t retention_days = 90;           // delete rotated files older than this; 0 = keep
  uint64_t checkpoint_every = 1000;      // records between signed checkpoints
  int checkpoint_interval_seconds = 60;  // or this long after an uncovered record
  int flush_interval_ms = 200;           // Append()ed records reach the file within twice this
  size_t max_queued = 100000;            // Append blocks while this many wait
  int retry_delay_ms = 1000;             // a failed write is tried again after this long
  // The operations on the log files, the head and the directory go through
  // this seam (the signing key is read and written with common/files).
  // nullptr means FileSystem::Default(). Not owned; must outlive the Log.
  FileSystem* file_system = nullptr;
};

// Log is the append-only, hash-chained, signed audit log of docs/audit.md.
//
// Callers format their records' bodies; one background thread chains,
// hashes and writes them in batches (one write(2) per batch). Every line carries "seq" (1, 2, ...
// across files) and "prev", the SHA-256 of the previous line; checkpoint lines sign the chain with
// the Ed25519 key, and the head file names the last line written.
//
// Thread-safe: any thread may Append / AppendDurable concurrently. The Clock
// is borrowed and must outlive the Log; it times rotation, checkpoints and
// retention and stamps the Log's own lines.
class Log {
 public:
  // Open creates or resumes the log in options.dir and holds it (an
  // exclusive lock on dir/head) until Close(). Whatever resuming finds
  // amiss is written as a record of its own (category CofferAuditRecovery,
  // docs/audit.md), which Verify reports until an operator acknowledges it:
  // a torn last line (a crash mid-write, truncated away); a head that is
  // missing, unreadable or not signed by the key, or that names records the
  // files no longer hold or not the last one; records that neither the head
  // nor a checkpoint vouches for; files missing before the first seq the
  // newest checkpoint keeps (retainedFrom).
  //
  // kInvalidArgument for bad options; kUnavailable for I/O errors;
  // kFailedPrecondition when another process holds the log, or for a
  // signing key that is missing while the log has files, unreadable, not a
  // regular file, readable by group or others, or owned by another user than
  // this process's or root; kDataLoss if the last line is not an audit
  // record (run Verify).
  static StatusOr<std::unique_ptr<Log>> Open(LogOptions options, const Clock& clock);
  ~Log();  // Close()s.
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Append queues a record and returns without touching the disk; it is
  // written within twice flush_interval_ms (the writer is not woken per
  // record; it polls). For reads. Blocks only while
  // max_queued records wait (a writer that cannot keep up, or a failing
  // disk): records are never dropped. After Close() the record is reported
  // to the error log and discarded.
  void Append(const Entry& entry);
  // The same for borrowed fields (formatted before it returns).
  void Append(const EntryView& entry);
  // AppendDurable queues a record and returns once it and every record
  // before it are written and fdatasync'ed. For writes: acknowledge a change
  // only after this returns OK. Concurrent callers share one write and one
  // fdatasync. kUnavailable if the write failed (the record stays queued and
  // is retried); kFailedPrecondition after Close().
  Status AppendDurable(const Entry& entry);
  Status AppendDurable(const EntryView& entry);
  // Acknowledge appends an acknowledgement of the recovery record with seq
  // `recovery_seq` (category CofferAuditAcknowledgement, docs/audit.md): it
  // names that record's seq and hash, `reason` and `operator_name`, and is
  // chained like every line; the next checkpoint (Close writes one) signs
  // it. Returns once it is durable. kInvalidArgument if `reason` is empty or
  // longer than 512 bytes, or the line is not a recovery record; kNotFound
  // if no log file holds that seq; kUnavailable on I/O errors.
  Status Acknowledge(uint64_t recovery_seq, std::string_view reason,
                     std::string_view operator_name);
  // Close writes everything queued and a final checkpoint, fsyncs, stops
  // the writer thread and releases the log. Idempotent.
  void Close();

  // What the writer reports, for readiness and metrics: records queued and
  // not yet written, and the last write's failure (OK when it succeeded).
  struct Health {
    uint64_t queued = 0;
    Status last_write;
  };
  Health health();
  // How long each batch took to write (write(2), the fdatasync when one was
  // due, and the head), failed attempts included.
  const LatencyHistogram& write_latency() const { return write_latency_; }

  // The seq of the last line written to the file (records and checkpoints).
  uint64_t last_seq() const { return last_seq_.load(); }
  const std::string& public_key_path() const { return public_key_path_; }
  // The seq of the recovery record Open wrote, 0 if it wrote none.
  uint64_t recovery_seq() const { return recovery_seq_; }

 private:
  Log(LogOptions options, const Clock& clock);

  struct ChainState;

  // Opening and resuming (log_recovery.cc). OpenHead opens dir/head and
  // takes the log's lock on it.
  struct HeadState;
  struct ScanResult;
  Status OpenHead();
  Status LoadOrCreateKey();
  Status Recover();
  StatusOr<HeadState> ReadHead();
  // ResumeFromFiles repairs a torn tail, drops an empty newest file and
  // takes the chain position from the last line (or the head); it removes
  // the dropped files from `files`.
  Status ResumeFromFiles(std::vector<LogFile>& files, const std::optional<Head>& head,
                         std::vector<std::string>& notes);
  // ScanBack reads lines backwards from the end to the newest checkpoint,
  // noting the hash of the head's line on the way.
  StatusOr<ScanResult> ScanBack(const std::vector<LogFile>& files, const std::optional<Head>& head);
  // Formats a record's body on the calling thread and queues it.
  template <class E>
  uint64_t FormatAndEnqueue(const E& entry, bool durable);
  // Returns the record's ticket, or 0 once closing.
  uint64_t Enqueue(std::string_view body, bool durable, std::string_view operation);
  // Waits until the record with this ticket is synced.
  Status WaitFor(uint64_t ticket);
  void Run();

  // The rest runs on the writer thread (or in Open before it starts and in
  // Close after it ends). A failed write undoes its changes to the chain
  // state (RestoreChain) so that the records are retried with the same seq.
  //
  // WriteBatch writes `batch`; on failure *committed counts the entries that
  // reached the file (a rotation part-way through) and need no retry.
  Status WriteBatch(std::vector<std::string>& batch, bool sync, size_t* committed);
  // Maintain does what falls due with time: age rotation, the checkpoint
  // interval, retention.
  Status Maintain(bool sync);
  ChainState SaveChain() const;
  void RestoreChain(const ChainState& state);
  void FormatRecord(const Entry& entry);   // into line_, as seq next_seq_
  void FormatBody(std::string_view body);  // likewise, from AppendRecordBody's output
  void CommitLine();                       // line_ into buffer_
  void CommitRecord();
  void AddCheckpoint();
  // FlushBuffer writes buffer_ (one write(2)), fdatasyncs if `sync`, then
  // rewrites the head. On failure the file is cut back to file_bytes_.
  Status FlushBuffer(bool sync);
  Status OpenNewFile(uint64_t first_seq);
  // Rotate ends the current file with a checkpoint, applies retention and
  // closes it; the next line opens audit-<its seq>.jsonl.
  Status Rotate();
  // PlanRetention lists the rotated files retention deletes and sets
  // *retained_from to the first seq that remains.
  std::vector<std::string> PlanRetention(uint64_t* retained_from);
  void DeleteFiles(const std::vector<std::string>& paths);
  bool AgeExceeded() const;
  // WriteHead rewrites the head; a failure is logged and the head retried
  // after the next batch or within a second.
  void WriteHead();
  int64_t NowUs() const { return clock_.NowMicros(); }
  // Queue length that wakes the writer before the flush interval is up.
  size_t WakeBatch() const { return std::min<size_t>(1024, options_.max_queued); }

  const LogOptions options_;
  const Clock& clock_;
  FileSystem& fs_;
  std::string public_key_path_;
  uint64_t recovery_seq_ = 0;
  std::unique_ptr<crypto::Ed25519Key> key_;
  std::string key_id_;
  std::string server_id_field_;  // ,"serverId":"<id>" or ""

  // Shared between callers and the writer thread. Guarded by mu_.
  std::mutex mu_;
  std::condition_variable work_cv_;  // wakes the writer
  std::condition_variable done_cv_;  // wakes AppendDurable and blocked Append
  // Record bodies (AppendRecordBody), formatted by the appending thread so
  // that the writer only chains, hashes and writes them.
  std::vector<std::string> queue_;
  // Written bodies, cleared, for Enqueue to reuse: the buffers stay with the
  // log instead of being allocated on one thread and freed on another.
  std::vector<std::string> spare_;
  std::chrono::steady_clock::time_point first_queued_at_;
  std::chrono::steady_clock::time_point retry_after_;
  // Tickets number the records in queue order: queue_ holds written_ + 1 ..
  // enqueued_.
  uint64_t enqueued_ = 0;
  uint64_t written_ = 0;         // write(2) done
  uint64_t synced_ = 0;          // fdatasync done
  uint64_t sync_wanted_ = 0;     // highest ticket an AppendDurable waits on
  uint64_t failed_through_ = 0;  // tickets whose last write attempt failed
  Status write_error_;
  int close_attempts_ = 0;  // writes tried after Close() began
  bool closing_ = false;
  bool stopped_ = false;  // the writer thread has exited
  std::mutex close_mu_;   // serialises Close()
  std::atomic<uint64_t> last_seq_{0};
  LatencyHistogram write_latency_;

  // Writer state: touched only by the writer thread, or by Open/Close when
  // the thread is not running.
  std::unique_ptr<File> file_;  // the newest log file, O_APPEND; null between files
  std::unique_ptr<File> head_;  // dir/head, locked
  std::string file_path_;
  uint64_t file_bytes_ = 0;  // bytes in the current file that belong to the chain
  // A failed write left bytes past file_bytes_ that could not be cut off
  // yet; the next flush cuts them before writing.
  bool needs_truncate_ = false;
  bool head_stale_ = false;     // the last head write failed
  int64_t file_started_s_ = 0;  // clock time of the current file's first line
  uint64_t next_seq_ = 1;
  std::string last_hash_;          // hash of line next_seq_ - 1
  uint64_t since_checkpoint_ = 0;  // lines after the last checkpoint
  int64_t first_uncovered_s_ = 0;  // when the oldest of those was written
  uint64_t retained_from_ = 1;
  int64_t next_retention_check_s_ = 0;
  std::string buffer_;  // formatted lines not yet written
  uint64_t buffer_first_seq_ = 0;
  std::string line_;  // scratch for one line

  std::thread thread_;
};

}  // namespace coffer::audit
