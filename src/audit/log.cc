// The writer of the audit log: the queue, the writer thread, batches,
// checkpoints, rotation and retention. Opening and resuming a log are in
// log_recovery.cc.

#include "audit/log.h"

#include <fcntl.h>

#include <algorithm>

#include "audit/layout.h"
#include "common/log.h"
#include "crypto/ed25519.h"

namespace coffer::audit {
namespace {

using SteadyClock = std::chrono::steady_clock;

// How often an idle writer looks at the Clock for checkpoints, age rotation
// and retention.
constexpr auto kIdlePoll = std::chrono::seconds(1);
// Bodies kept for reuse (about 1 KiB each).
constexpr size_t kMaxSpare = 4096;
// Room left in a file for its closing checkpoint line.
constexpr uint64_t kCheckpointReserve = 512;
constexpr int64_t kRetentionCheckSeconds = 3600;
// Writes tried after Close() began before what is still queued is given up.
constexpr int kCloseAttempts = 3;

}  // namespace

// The chain position, saved before a write so that a failed one can be
// undone and its records retried with the same seq numbers.
struct Log::ChainState {
  uint64_t next_seq;
  std::string last_hash;
  uint64_t since_checkpoint;
  int64_t first_uncovered_s;
  uint64_t retained_from;
};

Log::ChainState Log::SaveChain() const {
  return ChainState{next_seq_, last_hash_, since_checkpoint_, first_uncovered_s_, retained_from_};
}

void Log::RestoreChain(const ChainState& s) {
  next_seq_ = s.next_seq;
  last_hash_ = s.last_hash;
  since_checkpoint_ = s.since_checkpoint;
  first_uncovered_s_ = s.first_uncovered_s;
  retained_from_ = s.retained_from;
  buffer_.clear();
}

Log::Log(LogOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      fs_(options_.file_system != nullptr ? *options_.file_system : FileSystem::Default()),
      last_hash_(kGenesisHash) {
  if (!options_.server_id.empty()) {
    // A valid id (Open checked it) needs no escaping.
    server_id_field_ = std::string(",\"") + kServerIdField + "\":\"" + options_.server_id + "\"";
  }
}

Log::~Log() {
  Close();
}

namespace {
// The body being appended, formatted on the appending thread.
thread_local std::string t_body;
}  // namespace

template <class E>
uint64_t Log::FormatAndEnqueue(const E& entry, bool durable) {
  t_body.clear();
  if (entry.time_us == 0) {
    E stamped = entry;
    stamped.time_us = NowUs();
    AppendRecordBody(t_body, stamped);
  } else {
    AppendRecordBody(t_body, entry);
  }
  return Enqueue(t_body, durable, entry.operation_name);
}

void Log::Append(const Entry& entry) {
  (void)FormatAndEnqueue(entry, false);
}

void Log::Append(const EntryView& entry) {
  (void)FormatAndEnqueue(entry, false);
}

Status Log::AppendDurable(const Entry& entry) {
  return WaitFor(FormatAndEnqueue(entry, true));
}

Status Log::AppendDurable(const EntryView& entry) {
  return WaitFor(FormatAndEnqueue(entry, true));
}

Status Log::WaitFor(uint64_t ticket) {
  if (ticket == 0) {
    return FailedPreconditionError("audit log is closed");
  }
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return synced_ >= ticket || failed_through_ >= ticket || stopped_; });
  if (synced_ >= ticket) {
    return OkStatus();
  }
  return write_error_.ok() ? UnavailableError("audit log stopped before the record was written")
                           : write_error_;
}

uint64_t Log::Enqueue(std::string_view body, bool durable, std::string_view operation) {
  std::unique_lock lock(mu_);
  while (queue_.size() >= options_.max_queued && !closing_) {
    // SECURITY: an audit record is never dropped to keep up; the caller
    // waits for the writer instead.
    work_cv_.notify_one();
    done_cv_.wait(lock);
  }
  if (closing_) {
    lock.unlock();
    COFFER_LOG(kError) << "audit: " << operation << " record appended after Close() was discarded";
    return 0;
  }
  if (queue_.empty()) {
    first_queued_at_ = SteadyClock::now();
  }
  std::string slot;
  if (!spare_.empty()) {
    slot = std::move(spare_.back());
    spare_.pop_back();
  }
  slot.assign(body);
  queue_.push_back(std::move(slot));
  uint64_t ticket = ++enqueued_;
  if (durable) {
    sync_wanted_ = ticket;
  }
  // Reads do not wake the writer one by one: it polls every flush interval
  // (a read reaches the file within two), so that a busy read path costs no
  // context switch per record. Durable records and full batches wake it.
  bool wake = durable || queue_.size() == WakeBatch();
  lock.unlock();
  if (wake) {
    work_cv_.notify_one();
  }
  return ticket;
}

void Log::Close() {
  std::lock_guard close_lock(close_mu_);
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  file_.reset();
  head_.reset();  // releases the lock
}

Log::Health Log::health() {
  std::lock_guard<std::mutex> lock(mu_);
  return Health{enqueued_ - written_, write_error_};
}

void Log::Run() {
  const auto flush_interval = std::chrono::milliseconds(options_.flush_interval_ms);
  // Whether the queue should be written now. Called with mu_ held.
  auto batch_due = [&](SteadyClock::time_point now) {
    if (queue_.empty()) {
      return false;
    }
    if (closing_) {
      return true;
    }
    return now >= retry_after_ && (sync_wanted_ > written_ || queue_.size() >= WakeBatch() ||
                                   now >= first_queued_at_ + flush_interval);
  };
  std::vector<std::string> batch;
  std::unique_lock lock(mu_);
  while (true) {
    if (batch_due(SteadyClock::now())) {
      batch.swap(queue_);
      const uint64_t end = enqueued_;
      const uint64_t start = end - batch.size();
      const bool sync = closing_ || sync_wanted_ > written_;
      done_cv_.notify_all();  // room for callers blocked on a full queue
      lock.unlock();
      size_t committed = 0;
      const auto write_started = SteadyClock::now();
      Status s = WriteBatch(batch, sync, &committed);
      write_latency_.Observe(
          std::chrono::duration<double>(SteadyClock::now() - write_started).count());
      lock.lock();
      if (s.ok()) {
        written_ = end;
        if (sync) {
          synced_ = end;
        }
        write_error_ = OkStatus();
        for (std::string& b : batch) {
          if (spare_.size() >= kMaxSpare) {
            break;
          }
          b.clear();
          spare_.push_back(std::move(b));
        }
        batch.clear();
      } else {
        COFFER_LOG(kError) << "audit: writing " << (batch.size() - committed)
                           << " records failed, will retry: " << s.ToString();
        // What a rotation committed before the failure was also synced.
        written_ = start + committed;
        synced_ = std::max(synced_, written_);
        failed_through_ = end;
        write_error_ = s;
        retry_after_ = SteadyClock::now() + std::chrono::milliseconds(options_.retry_delay_ms);
        batch.erase(batch.begin(), batch.begin() + static_cast<ptrdiff_t>(committed));
        for (std::string& e : queue_) {
          batch.push_back(std::move(e));
        }
        queue_.swap(batch);
        batch.clear();
        if (closing_ && ++close_attempts_ >= kCloseAttempts) {
          COFFER_LOG(kError) << "audit: " << queue_.size()
                             << " records could not be written before close and are lost";
          written_ = enqueued_;
          failed_through_ = enqueued_;
          queue_.clear();
        }
      }
      done_cv_.notify_all();
      continue;
    }
    if (closing_) {
      break;
    }
    lock.unlock();
    Status m = Maintain(false);
    if (!m.ok()) {
      COFFER_LOG(kError) << "audit: " << m.ToString();
    }
    lock.lock();
    auto now = SteadyClock::now();
    if (closing_ || batch_due(now)) {
      continue;
    }
    work_cv_.wait_until(lock, queue_.empty()
                                  ? now + std::min<SteadyClock::duration>(kIdlePoll, flush_interval)
                                  : std::max(first_queued_at_ + flush_interval, retry_after_));
  }
  lock.unlock();
  for (int attempt = 1;; ++attempt) {
    ChainState before = SaveChain();
    if (since_checkpoint_ > 0) {
      AddCheckpoint();
    }
    Status s = FlushBuffer(true);
    if (s.ok()) {
      break;
    }
    RestoreChain(before);
    if (attempt == kCloseAttempts) {
      COFFER_LOG(kError) << "audit: final checkpoint failed: " << s.ToString();
      break;
    }
  }
  lock.lock();
  stopped_ = true;
  done_cv_.notify_all();
}

Status Log::WriteBatch(std::vector<std::string>& batch, bool sync, size_t* committed) {
  *committed = 0;
  ChainState saved = SaveChain();
  if (AgeExceeded()) {
    Status s = Rotate();
    if (!s.ok()) {
      RestoreChain(saved);
      return s;
    }
    saved = SaveChain();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    FormatBody(batch[i]);
    uint64_t in_file = file_bytes_ + buffer_.size();
    if (in_file > 0 && in_file + line_.size() + 1 + kCheckpointReserve > options_.max_file_bytes) {
      Status s = Rotate();
      if (!s.ok()) {
        RestoreChain(saved);
        return s;
      }
      saved = SaveChain();
      *committed = i;
      FormatBody(batch[i]);  // again, with the seq and prev after the checkpoint
    }
    CommitRecord();
    if (since_checkpoint_ >= options_.checkpoint_every) {
      AddCheckpoint();
    }
  }
  if (since_checkpoint_ > 0 &&
      clock_.NowSeconds() - first_uncovered_s_ >= options_.checkpoint_interval_seconds) {
    AddCheckpoint();
  }
  Status s = FlushBuffer(sync);
  if (!s.ok()) {
    RestoreChain(saved);
    return s;
  }
  *committed = batch.size();
  return OkStatus();
}

Status Log::Maintain(bool sync) {
  const int64_t now_s = clock_.NowSeconds();
  if (head_stale_) {
    WriteHead();
  }
  ChainState saved = SaveChain();
  Status s;
  if (AgeExceeded()) {
    s = Rotate();
  } else if (since_checkpoint_ > 0 &&
             now_s - first_uncovered_s_ >= options_.checkpoint_interval_seconds) {
    AddCheckpoint();
    s = FlushBuffer(sync);
  }
  if (!s.ok()) {
    RestoreChain(saved);
    return s;
  }
  if (now_s < next_retention_check_s_) {
    return OkStatus();
  }
  next_retention_check_s_ = now_s + kRetentionCheckSeconds;
  saved = SaveChain();
  uint64_t from = retained_from_;
  std::vector<std::string> doomed = PlanRetention(&from);
  if (doomed.empty()) {
    return OkStatus();
  }
  retained_from_ = from;
  AddCheckpoint();
  s = FlushBuffer(true);
  if (!s.ok()) {
    RestoreChain(saved);
    return s;
  }
  DeleteFiles(doomed);
  return OkStatus();
}

void Log::FormatRecord(const Entry& entry) {
  line_.clear();
  AppendOwnRecordBody(line_, entry);
  line_ += server_id_field_;
  AppendChainSuffix(line_, next_seq_, last_hash_);
}

void Log::FormatBody(std::string_view body) {
  line_.assign(body);
  line_ += server_id_field_;
  AppendChainSuffix(line_, next_seq_, last_hash_);
}

void Log::CommitLine() {
  if (buffer_.empty()) {
    buffer_first_seq_ = next_seq_;
  }
  last_hash_ = LineHash(line_);
  buffer_ += line_;
  buffer_ += '\n';
  ++next_seq_;
}

void Log::CommitRecord() {
  CommitLine();
  if (++since_checkpoint_ == 1) {
    first_uncovered_s_ = clock_.NowSeconds();
  }
}

void Log::AddCheckpoint() {
  const uint64_t covered = next_seq_ - 1;
  std::string signature = key_->Sign(CheckpointSigningInput(covered, last_hash_, retained_from_));
  line_.clear();
  AppendCheckpointLine(line_, NowUs(), next_seq_, last_hash_, retained_from_, key_id_, signature);
  CommitLine();
  since_checkpoint_ = 0;
}

Status Log::OpenNewFile(uint64_t first_seq) {
  std::string path = options_.dir + "/" + LogFileName(first_seq);
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs_.Open(path, O_WRONLY | O_CREAT | O_APPEND, 0600));
  ASSIGN_OR_RETURN(FileInfo info, file->Stat());
  if (info.size != 0) {
    return DataLossError("audit log file " + path + " already exists");
  }
  RETURN_IF_ERROR(file->Chmod(0600));
  // The new name must be durable before a record in it is acknowledged. A
  // failure leaves an empty file, which the retry opens again.
  RETURN_IF_ERROR(fs_.SyncDirectory(options_.dir));
  file_ = std::move(file);
  file_path_ = std::move(path);
  file_bytes_ = 0;
  file_started_s_ = clock_.NowSeconds();
  return OkStatus();
}

Status Log::FlushBuffer(bool sync) {
  if (needs_truncate_) {
    // An earlier failed write left part of its batch in the file and the
    // cut after it failed too: the chain must end at file_bytes_ before
    // anything more is written.
    Status cut = file_->Truncate(file_bytes_);
    if (!cut.ok()) {
      buffer_.clear();
      return cut;
    }
    needs_truncate_ = false;
  }
  if (buffer_.empty()) {
    if (sync && file_ != nullptr) {
      RETURN_IF_ERROR(file_->DataSync());
    }
    if (head_stale_) {
      WriteHead();
    }
    return OkStatus();
  }
  if (file_ == nullptr) {
    Status s = OpenNewFile(buffer_first_seq_);
    if (!s.ok()) {
      buffer_.clear();
      return s;
    }
  }
  Status s = WriteFully(*file_, buffer_);
  if (s.ok() && sync) {
    s = file_->DataSync();
  }
  if (!s.ok()) {
    // Cut what part of the batch did reach the file, so that the retry
    // writes the same records with the same seq numbers after the intact
    // chain. If the cut fails too, the next flush cuts first.
    Status cut = file_->Truncate(file_bytes_);
    if (!cut.ok()) {
      needs_truncate_ = true;
      COFFER_LOG(kError) << "audit: after a failed write: " << cut.ToString();
    }
    buffer_.clear();
    return s;
  }
  file_bytes_ += buffer_.size();
  buffer_.clear();
  last_seq_.store(next_seq_ - 1);
  WriteHead();
  return OkStatus();
}

Status Log::Rotate() {
  uint64_t from = retained_from_;
  std::vector<std::string> doomed = PlanRetention(&from);
  if (since_checkpoint_ > 0 || from != retained_from_) {
    retained_from_ = from;
    AddCheckpoint();
  }
  RETURN_IF_ERROR(FlushBuffer(true));
  // The checkpoint naming the new first seq is durable before any file
  // goes, so a crash in between leaves files retention meant to delete,
  // never a gap the checkpoints do not explain.
  DeleteFiles(doomed);
  file_.reset();
  file_bytes_ = 0;
  file_path_.clear();
  return OkStatus();
}

std::vector<std::string> Log::PlanRetention(uint64_t* retained_from) {
  std::vector<std::string> doomed;
  if (options_.retention_days <= 0) {
    return doomed;
  }
  auto files = ListLogFiles(fs_, options_.dir);
  if (!files.ok()) {
    COFFER_LOG(kError) << "audit: retention: " << files.status().ToString();
    return doomed;
  }
  const int64_t cutoff_us = NowUs() - options_.retention_days * 86400 * int64_t{1000000};
  // Never the newest file: it holds the end of the chain.
  for (size_t i = 0; i + 1 < files->size(); ++i) {
    const LogFile& f = (*files)[i];
    if (f.path == file_path_) {
      break;
    }
    auto tail = ReadTail(fs_, f.path);
    if (!tail.ok()) {
      break;
    }
    auto t = LineTimeUs(tail->last_line);
    if (!t || *t >= cutoff_us) {
      break;
    }
    doomed.push_back(f.path);
    *retained_from = (*files)[i + 1].first_seq;
  }
  return doomed;
}

void Log::DeleteFiles(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    Status s = fs_.Unlink(p);
    if (!s.ok()) {
      COFFER_LOG(kError) << "audit: retention: " << s.ToString();
    } else {
      COFFER_LOG(kInfo) << "audit: retention removed " << p;
    }
  }
  if (!paths.empty()) {
    Status s = fs_.SyncDirectory(options_.dir);
    if (!s.ok()) {
      COFFER_LOG(kError) << "audit: retention: " << s.ToString();
    }
  }
}

bool Log::AgeExceeded() const {
  return file_ != nullptr && file_bytes_ > 0 &&
         clock_.NowSeconds() - file_started_s_ >= options_.max_file_age_seconds;
}

void Log::WriteHead() {
  if (next_seq_ <= 1 || head_ == nullptr) {
    return;
  }
  // No fsync: the head guards against truncation after the fact, and a
  // pwrite that returned survives the process being killed.
  std::string head = FormatHead(next_seq_ - 1, last_hash_, *key_);
  auto wrote = head_->PWrite(head, 0);
  head_stale_ = !wrote.ok() || *wrote != head.size();
  if (head_stale_) {
    COFFER_LOG(kError) << "audit: cannot write the head file: "
                       << (wrote.ok() ? "short write" : wrote.status().ToString());
  }
}

}  // namespace coffer::audit
