#include "audit/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "audit/layout.h"
#include "common/files.h"
#include "common/json.h"
#include "common/log.h"
#include "crypto/ed25519.h"

#include <sys/stat.h>

namespace coffer::audit {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr auto kRetryDelay = std::chrono::seconds(1);
// How often an idle writer looks at the Clock for checkpoints, age rotation
// and retention.
constexpr auto kIdlePoll = std::chrono::seconds(1);
// Bodies kept for reuse (about 1 KiB each).
constexpr size_t kMaxSpare = 4096;
// Room left in a file for its closing checkpoint line.
constexpr uint64_t kCheckpointReserve = 512;
constexpr int64_t kRetentionCheckSeconds = 3600;

Status Errno(const std::string& what, const std::string& path) {
  return UnavailableError(what + " " + path + ": " + std::strerror(errno));
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Errno("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

void FsyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

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
    : options_(std::move(options)), clock_(clock), last_hash_(kGenesisHash) {}

Log::~Log() {
  Close();
}

StatusOr<std::unique_ptr<Log>> Log::Open(LogOptions options, const Clock& clock) {
  if (options.dir.empty()) {
    return InvalidArgumentError("audit log directory not set");
  }
  if (options.max_file_bytes < 4096 || options.max_file_age_seconds <= 0 ||
      options.retention_days < 0 || options.checkpoint_every == 0 ||
      options.checkpoint_interval_seconds <= 0 || options.flush_interval_ms < 0 ||
      options.max_queued == 0) {
    return InvalidArgumentError("audit log options out of range");
  }
  if (options.signing_key_path.empty()) {
    options.signing_key_path = DefaultSigningKeyPath(options.dir);
  }
  RETURN_IF_ERROR(EnsurePrivateDirectory(options.dir));
  std::unique_ptr<Log> log(new Log(std::move(options), clock));
  RETURN_IF_ERROR(log->LoadOrCreateKey());
  RETURN_IF_ERROR(log->Recover());
  log->thread_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

Status Log::LoadOrCreateKey() {
  const std::string& path = options_.signing_key_path;
  public_key_path_ = PublicKeyPathFor(path);
  auto loaded = crypto::LoadEd25519PrivateKey(path);
  if (loaded.ok()) {
    key_ = std::move(loaded).value();
  } else if (loaded.status().code() == StatusCode::kNotFound) {
    ASSIGN_OR_RETURN(key_, crypto::Ed25519Key::Generate());
    RETURN_IF_ERROR(crypto::SaveEd25519PrivateKey(*key_, path));
    COFFER_LOG(kInfo) << "audit: created checkpoint signing key " << path;
  } else {
    return loaded.status();
  }
  std::string public_pem = key_->PublicPem();
  auto existing = ReadFile(public_key_path_);
  if (!existing.ok() || *existing != public_pem) {
    RETURN_IF_ERROR(crypto::SaveEd25519PublicKey(*key_, public_key_path_));
  }
  key_id_ = KeyId(*key_);
  return OkStatus();
}

Status Log::Recover() {
  const int64_t now_s = clock_.NowSeconds();
  std::vector<std::string> notes;

  std::string head_path = HeadPath(options_.dir);
  head_fd_ = ::open(head_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (head_fd_ < 0) {
    return Errno("cannot open", head_path);
  }
  std::optional<Head> head;
  char head_buf[kHeadSize];
  ssize_t head_len = ::pread(head_fd_, head_buf, sizeof(head_buf), 0);
  if (head_len > 0) {
    head = ParseHead(std::string_view(head_buf, static_cast<size_t>(head_len)));
    if (head && !VerifyHead(*head, *key_)) {
      notes.push_back("the head file's signature did not verify; it was replaced");
      head.reset();
    }
  }

  ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(options_.dir));
  std::optional<std::string> last_line;
  bool resumed_from_head = false;
  while (!files.empty()) {
    const LogFile& f = files.back();
    ASSIGN_OR_RETURN(Tail tail, ReadTail(f.path));
    if (tail.complete_end < tail.size) {
      // A crash stopped a write(2) part-way; the partial line was never
      // acknowledged to anyone, and leaving it would break the chain.
      int fd = ::open(f.path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(tail.complete_end)) != 0 ||
          ::fsync(fd) != 0) {
        Status s = Errno("cannot truncate the torn tail of", f.path);
        if (fd >= 0) {
          ::close(fd);
        }
        return s;
      }
      ::close(fd);
      notes.push_back("truncated a partial last line of " +
                      std::to_string(tail.size - tail.complete_end) + " bytes from " + f.name +
                      " (the writer stopped mid-write)");
    }
    if (tail.complete_end > 0) {
      last_line = std::move(tail.last_line);
      file_bytes_ = tail.complete_end;
      file_path_ = f.path;
      break;
    }
    // An empty file: a rotation created it and nothing reached it.
    if (files.size() == 1 && f.first_seq != 1) {
      if (!head || head->seq + 1 != f.first_seq) {
        return DataLossError("cannot resume the audit log: " + f.path +
                             " is empty and nothing names the record before it");
      }
      next_seq_ = f.first_seq;
      last_hash_ = head->hash;
      resumed_from_head = true;
    }
    if (::unlink(f.path.c_str()) != 0) {
      return Errno("cannot remove empty", f.path);
    }
    files.pop_back();
  }

  if (last_line) {
    auto json = ParseJson(*last_line);
    const Json* seq = nullptr;
    if (json && json->is_object() && json->contains("seq") && (*json)["seq"].is_number_unsigned()) {
      seq = &(*json)["seq"];
    }
    if (seq == nullptr) {
      return DataLossError("the last line of " + file_path_ +
                           " is not an audit record; run `coffer audit verify`");
    }
    next_seq_ = seq->get<uint64_t>() + 1;
    last_hash_ = LineHash(*last_line);
    since_checkpoint_ = StringMember(*json, "category") == kCheckpointCategory ? 0 : 1;
    fd_ = ::open(file_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) {
      return Errno("cannot open", file_path_);
    }
    file_started_s_ = now_s;
    ASSIGN_OR_RETURN(std::optional<std::string> first, ReadFirstLine(file_path_));
    if (first) {
      if (auto t = LineTimeUs(*first)) {
        file_started_s_ = *t / 1000000;
      }
    }
  } else if (head && !resumed_from_head && head->seq > 0) {
    notes.push_back("no log files remain but the head names seq " + std::to_string(head->seq) +
                    "; the chain continues after it");
    next_seq_ = head->seq + 1;
    last_hash_ = head->hash;
  }
  const uint64_t last = next_seq_ - 1;
  if (head && head->seq > last) {
    notes.push_back("the head names seq " + std::to_string(head->seq) +
                    " but the log ends at seq " + std::to_string(last) + ": records " +
                    std::to_string(last + 1) + ".." + std::to_string(head->seq) +
                    " were lost (power failure or truncation)");
  } else if (head && head->seq == last && head->hash != last_hash_) {
    notes.push_back("the last line (seq " + std::to_string(last) +
                    ") differs from the one the head signed");
  }
  retained_from_ = files.empty() ? next_seq_ : files.front().first_seq;
  last_seq_.store(last);

  if (!notes.empty()) {
    Entry e;
    e.time_us = NowUs();
    e.category = std::string(kRecoveryCategory);
    e.operation_name = "AuditLogRecovery";
    for (const std::string& n : notes) {
      e.result_description += (e.result_description.empty() ? "" : "; ") + n;
    }
    COFFER_LOG(kWarning) << "audit: " << e.result_description;
    FormatRecord(e);
    CommitRecord();
    RETURN_IF_ERROR(FlushBuffer(true));
  }
  next_retention_check_s_ = now_s;
  RETURN_IF_ERROR(Maintain(true));
  WriteHead();
  return OkStatus();
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

uint64_t Log::Enqueue(const std::string& body, bool durable, std::string_view operation) {
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
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (head_fd_ >= 0) {
    ::close(head_fd_);
    head_fd_ = -1;
  }
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
      Status s = WriteBatch(batch, sync, &committed);
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
        retry_after_ = SteadyClock::now() + kRetryDelay;
        batch.erase(batch.begin(), batch.begin() + static_cast<ptrdiff_t>(committed));
        for (std::string& e : queue_) {
          batch.push_back(std::move(e));
        }
        queue_.swap(batch);
        batch.clear();
        if (closing_) {
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
  ChainState before = SaveChain();
  if (since_checkpoint_ > 0) {
    AddCheckpoint();
  }
  Status s = FlushBuffer(true);
  if (!s.ok()) {
    RestoreChain(before);
    COFFER_LOG(kError) << "audit: final checkpoint failed: " << s.ToString();
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
  AppendRecordLine(line_, entry, next_seq_, last_hash_);
}

void Log::FormatBody(std::string_view body) {
  line_.assign(body);
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
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Errno("cannot create", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size != 0) {
    ::close(fd);
    return DataLossError("audit log file " + path + " already exists");
  }
  ::fchmod(fd, 0600);
  FsyncDirectory(options_.dir);
  fd_ = fd;
  file_path_ = std::move(path);
  file_bytes_ = 0;
  file_started_s_ = clock_.NowSeconds();
  return OkStatus();
}

Status Log::FlushBuffer(bool sync) {
  if (buffer_.empty()) {
    if (sync && fd_ >= 0 && ::fdatasync(fd_) != 0) {
      return Errno("cannot fdatasync", file_path_);
    }
    return OkStatus();
  }
  if (fd_ < 0) {
    Status s = OpenNewFile(buffer_first_seq_);
    if (!s.ok()) {
      buffer_.clear();
      return s;
    }
  }
  Status s = WriteAll(fd_, buffer_, file_path_);
  if (s.ok() && sync && ::fdatasync(fd_) != 0) {
    s = Errno("cannot fdatasync", file_path_);
  }
  if (!s.ok()) {
    // Cut what part of the batch did reach the file, so that the retry
    // writes the same records with the same seq numbers after the intact
    // chain.
    if (::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
      COFFER_LOG(kError) << "audit: cannot truncate " << file_path_
                         << " after a failed write: " << std::strerror(errno);
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
  ::close(fd_);
  fd_ = -1;
  file_bytes_ = 0;
  file_path_.clear();
  return OkStatus();
}

std::vector<std::string> Log::PlanRetention(uint64_t* retained_from) {
  std::vector<std::string> doomed;
  if (options_.retention_days <= 0) {
    return doomed;
  }
  auto files = ListLogFiles(options_.dir);
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
    auto tail = ReadTail(f.path);
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
    if (::unlink(p.c_str()) != 0) {
      COFFER_LOG(kError) << "audit: retention cannot remove " << p << ": " << std::strerror(errno);
    } else {
      COFFER_LOG(kInfo) << "audit: retention removed " << p;
    }
  }
  if (!paths.empty()) {
    FsyncDirectory(options_.dir);
  }
}

bool Log::AgeExceeded() const {
  return fd_ >= 0 && file_bytes_ > 0 &&
         clock_.NowSeconds() - file_started_s_ >= options_.max_file_age_seconds;
}

void Log::WriteHead() {
  if (next_seq_ <= 1 || head_fd_ < 0) {
    return;
  }
  // No fsync: the head guards against truncation after the fact, and a
  // pwrite that returned survives the process being killed.
  std::string head = FormatHead(next_seq_ - 1, last_hash_, *key_);
  if (::pwrite(head_fd_, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size())) {
    COFFER_LOG(kError) << "audit: cannot write the head file: " << std::strerror(errno);
  }
}

}  // namespace coffer::audit
