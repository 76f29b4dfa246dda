// Opening an audit log: its lock, its signing key, and resuming after
// whatever happened while it was closed (docs/audit.md, "Resuming"); and the
// acknowledgement of a recovery record.

#include <fcntl.h>
#include <unistd.h>

#include "audit/layout.h"
#include "audit/log.h"
#include "audit/servers.h"
#include "common/files.h"
#include "common/json.h"
#include "common/log.h"
#include "crypto/ed25519.h"

namespace coffer::audit {
namespace {

constexpr size_t kMaxReasonBytes = 512;

std::string Range(uint64_t from, uint64_t to) {
  return from == to ? std::to_string(from) : std::to_string(from) + ".." + std::to_string(to);
}

// The seq and category of a line, if it is a record at all.
struct LineFacts {
  uint64_t seq = 0;
  std::string category;
};

std::optional<LineFacts> FactsOf(const std::optional<Json>& json) {
  if (!json || !json->is_object() || !json->contains("seq") ||
      !(*json)["seq"].is_number_unsigned()) {
    return std::nullopt;
  }
  return LineFacts{(*json)["seq"].get<uint64_t>(), StringMember(*json, "category")};
}

}  // namespace

// What the head file held when the log was opened.
struct Log::HeadState {
  std::optional<Head> head;  // set only when it parses and the key signed it
  std::string problem;       // why there is no head, "" when there is one
  bool empty = false;        // no bytes at all: a new log (or a deleted head)
};

// What reading the newest lines backwards found (ScanBack).
struct Log::ScanResult {
  bool found_checkpoint = false;  // a checkpoint this key signed
  uint64_t checkpoint_seq = 0;
  uint64_t retained_from = 0;
  std::string unverified;                     // why the newest checkpoint did not verify
  std::optional<std::string> head_line_hash;  // hash of the line with the head's seq
};

StatusOr<std::unique_ptr<Log>> Log::Open(LogOptions options, const Clock& clock) {
  if (options.dir.empty()) {
    return InvalidArgumentError("audit log directory not set");
  }
  if (options.max_file_bytes < 4096 || options.max_file_age_seconds <= 0 ||
      options.retention_days < 0 || options.checkpoint_every == 0 ||
      options.checkpoint_interval_seconds <= 0 || options.flush_interval_ms < 0 ||
      options.max_queued == 0 || options.retry_delay_ms < 0) {
    return InvalidArgumentError("audit log options out of range");
  }
  if (!options.server_id.empty()) {
    RETURN_IF_ERROR(ValidateServerId(options.server_id));
  }
  if (options.signing_key_path.empty()) {
    options.signing_key_path = DefaultSigningKeyPath(options.dir);
  }
  std::unique_ptr<Log> log(new Log(std::move(options), clock));
  RETURN_IF_ERROR(log->fs_.CreateDirectories(log->options_.dir, 0700));
  RETURN_IF_ERROR(log->OpenHead());
  RETURN_IF_ERROR(log->LoadOrCreateKey());
  RETURN_IF_ERROR(log->Recover());
  log->thread_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

Status Log::OpenHead() {
  std::string path = HeadPath(options_.dir);
  ASSIGN_OR_RETURN(head_, fs_.Open(path, O_RDWR | O_CREAT, 0600));
  Status locked = head_->TryLockExclusive();
  if (locked.code() == StatusCode::kFailedPrecondition) {
    // SECURITY: one writer per log; a second would fork the chain.
    return FailedPreconditionError("the audit log in " + options_.dir +
                                   " is open in another process (a running coffer server?)");
  }
  return locked;
}

Status Log::LoadOrCreateKey() {
  const std::string& path = options_.signing_key_path;
  public_key_path_ = PublicKeyPath(options_.dir);
  auto info = fs_.Stat(path);
  if (!info.ok() && info.status().code() != StatusCode::kNotFound) {
    return FailedPreconditionError("cannot read the audit signing key: " +
                                   std::string(info.status().message()));
  }
  if (!info.ok()) {
    ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(fs_, options_.dir));
    if (!files.empty()) {
      // SECURITY: a new key would sign on after a history nobody can check
      // with it; the operator restores the key instead.
      return FailedPreconditionError(
          "the audit signing key " + path + " does not exist, but " + options_.dir +
          " already holds a log signed with a key (its public half is checkpoint.pub there); "
          "restore the key file, or name it with --audit-signing-key");
    }
    ASSIGN_OR_RETURN(key_, crypto::Ed25519Key::Generate());
    Status saved = crypto::SaveEd25519PrivateKey(*key_, path);
    if (!saved.ok()) {
      return FailedPreconditionError("cannot create the audit signing key: " +
                                     std::string(saved.message()));
    }
    COFFER_LOG(kInfo) << "audit: created checkpoint signing key " << path;
  } else {
    if (!info->is_regular) {
      return FailedPreconditionError("the audit signing key " + path + " is not a regular file");
    }
    // SECURITY: whoever owns the key file can replace the key; only this
    // process's user and root may.
    if (info->uid != ::geteuid() && info->uid != 0) {
      return FailedPreconditionError("the audit signing key " + path + " is owned by uid " +
                                     std::to_string(info->uid) + ", not by this user (uid " +
                                     std::to_string(::geteuid()) + ") or root");
    }
    auto loaded = crypto::LoadEd25519PrivateKey(path);
    if (!loaded.ok()) {
      StatusCode code = loaded.status().code() == StatusCode::kUnavailable
                            ? StatusCode::kFailedPrecondition
                            : loaded.status().code();
      return Status(
          code, "the audit signing key cannot be used: " + std::string(loaded.status().message()));
    }
    key_ = std::move(loaded).value();
  }
  std::string public_pem = key_->PublicPem();
  auto existing = ReadFile(public_key_path_);
  if (!existing.ok() || *existing != public_pem) {
    RETURN_IF_ERROR(crypto::SaveEd25519PublicKey(*key_, public_key_path_));
  }
  key_id_ = KeyId(*key_);
  return OkStatus();
}

StatusOr<Log::HeadState> Log::ReadHead() {
  HeadState state;
  std::string buf(kHeadSize, '\0');
  ASSIGN_OR_RETURN(size_t n, head_->PRead(buf.data(), buf.size(), 0));
  buf.resize(n);
  if (buf.empty()) {
    state.empty = true;
    state.problem = "the head file was missing or empty";
    return state;
  }
  auto head = ParseHead(buf);
  if (!head) {
    state.problem = "the head file was unreadable (garbled)";
  } else if (!VerifyHead(*head, *key_)) {
    state.problem = "the head file's signature did not verify (forged, or signed by another key)";
  } else {
    state.head = std::move(head);
  }
  return state;
}

Status Log::ResumeFromFiles(std::vector<LogFile>& files, const std::optional<Head>& head,
                            std::vector<std::string>& notes) {
  std::optional<std::string> last_line;
  while (!files.empty()) {
    const LogFile& f = files.back();
    ASSIGN_OR_RETURN(Tail tail, ReadTail(fs_, f.path));
    if (tail.complete_end < tail.size) {
      // A crash stopped a write(2) part-way; the partial line was never
      // acknowledged to anyone, and leaving it would break the chain.
      ASSIGN_OR_RETURN(std::unique_ptr<File> torn, fs_.Open(f.path, O_WRONLY));
      RETURN_IF_ERROR(torn->Truncate(tail.complete_end));
      RETURN_IF_ERROR(torn->Sync());
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
    }
    RETURN_IF_ERROR(fs_.Unlink(f.path));
    files.pop_back();
  }
  if (!last_line) {
    if (head && head->seq > 0) {
      notes.push_back("no log file holds a record, but the head names seq " +
                      std::to_string(head->seq) + ": records up to it are gone; the chain " +
                      "continues after it");
      next_seq_ = head->seq + 1;
      last_hash_ = head->hash;
    }
    return OkStatus();
  }
  auto facts = FactsOf(ParseJson(*last_line, 8));
  if (!facts) {
    return DataLossError("the last line of " + file_path_ +
                         " is not an audit record; run `coffer audit verify`");
  }
  next_seq_ = facts->seq + 1;
  last_hash_ = LineHash(*last_line);
  since_checkpoint_ = facts->category == kCheckpointCategory ? 0 : 1;
  ASSIGN_OR_RETURN(file_, fs_.Open(file_path_, O_WRONLY | O_APPEND));
  file_started_s_ = clock_.NowSeconds();
  ASSIGN_OR_RETURN(std::optional<std::string> first, ReadFirstLine(fs_, file_path_));
  if (first) {
    if (auto t = LineTimeUs(*first)) {
      file_started_s_ = *t / 1000000;
    }
  }
  return OkStatus();
}

StatusOr<Log::ScanResult> Log::ScanBack(const std::vector<LogFile>& files,
                                        const std::optional<Head>& head) {
  ScanResult out;
  for (auto f = files.rbegin(); f != files.rend(); ++f) {
    ASSIGN_OR_RETURN(ReverseLineReader reader, ReverseLineReader::Open(fs_, f->path));
    while (true) {
      ASSIGN_OR_RETURN(std::optional<std::string> line, reader.Next());
      if (!line) {
        break;
      }
      auto json = ParseJson(*line, 8);
      auto facts = FactsOf(json);
      if (!facts) {
        continue;  // Verify names it
      }
      if (head && facts->seq == head->seq) {
        out.head_line_hash = LineHash(*line);
      }
      if (facts->category != kCheckpointCategory) {
        continue;
      }
      // The newest checkpoint decides, valid or not: an older one says
      // nothing about what came after it.
      auto cp = ParseCheckpoint(*json);
      std::string wrong = cp ? CheckCheckpoint(*cp, *key_) : "malformed checkpoint";
      if (!wrong.empty()) {
        out.unverified = "the newest checkpoint (seq " + std::to_string(facts->seq) +
                         ") does not verify with this log's signing key (keyId " + key_id_ +
                         "): " + wrong;
      } else {
        out.found_checkpoint = true;
        out.checkpoint_seq = cp->seq;
        out.retained_from = cp->retained_from;
      }
      return out;
    }
  }
  return out;
}

Status Log::Recover() {
  const int64_t now_s = clock_.NowSeconds();
  std::vector<std::string> notes;
  ASSIGN_OR_RETURN(HeadState head_state, ReadHead());
  const std::optional<Head>& head = head_state.head;

  ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(fs_, options_.dir));
  RETURN_IF_ERROR(ResumeFromFiles(files, head, notes));
  const uint64_t last = next_seq_ - 1;
  if (last > 0 || !head_state.empty) {
    // The end of the log: the head should name its last line, and every
    // line after the newest checkpoint should be one the head names or
    // precedes. What is not vouched for was written just before a crash
    // (between a batch and its head) or by someone without the key.
    ScanResult scan;
    if (!files.empty()) {
      ASSIGN_OR_RETURN(scan, ScanBack(files, head));
    }
    uint64_t vouched = scan.found_checkpoint ? scan.checkpoint_seq : 0;
    if (!head) {
      notes.push_back(head_state.problem + ": the end of the log cannot be proven");
    } else if (head->seq > last) {
      notes.push_back("the head names seq " + std::to_string(head->seq) +
                      " but the log ends at seq " + std::to_string(last) + ": records " +
                      Range(last + 1, head->seq) + " were lost (power failure or truncation)");
    } else if (head->seq == last && head->hash != last_hash_) {
      notes.push_back("the last line (seq " + std::to_string(last) +
                      ") differs from the one the head signed");
    } else if (head->seq < last && head->seq > vouched && scan.head_line_hash &&
               *scan.head_line_hash != head->hash) {
      notes.push_back("the line with seq " + std::to_string(head->seq) +
                      " differs from the one the head signed");
    } else if (head->seq == last || scan.head_line_hash == head->hash) {
      vouched = std::max(vouched, head->seq);
    }
    if (!scan.unverified.empty()) {
      notes.push_back(scan.unverified);
    }
    if (last > vouched && files.size() > 0) {
      notes.push_back("records " + Range(vouched + 1, last) +
                      " are vouched for by neither the head nor a checkpoint (written just "
                      "before a crash, or by someone without the key)");
    }
    // Files removed before the first seq the newest checkpoint keeps: the
    // next checkpoint states the new first seq, so the gap is said here.
    if (!files.empty()) {
      const uint64_t first = files.front().first_seq;
      if (scan.found_checkpoint && first > scan.retained_from) {
        notes.push_back("records " + Range(scan.retained_from, first - 1) +
                        " are missing: log files were removed other than by retention (the "
                        "newest checkpoint keeps the log from seq " +
                        std::to_string(scan.retained_from) + ")");
      } else if (!scan.found_checkpoint && scan.unverified.empty() && first > 1) {
        notes.push_back("records " + Range(1, first - 1) +
                        " are missing: log files were removed and no checkpoint records a "
                        "retention");
      }
    }
  }
  retained_from_ = files.empty() ? next_seq_ : files.front().first_seq;
  last_seq_.store(last);

  if (!notes.empty()) {
    Entry e;
    e.time_us = NowUs();
    e.category = std::string(kRecoveryCategory);
    e.operation_name = "AuditLogRecovery";
    e.http_status = 200;
    for (const std::string& n : notes) {
      e.result_description += (e.result_description.empty() ? "" : "; ") + n;
    }
    COFFER_LOG(kWarning) << "audit: recovery record at seq " << next_seq_ << ": "
                         << e.result_description
                         << " (coffer audit verify fails until it is acknowledged)";
    recovery_seq_ = next_seq_;
    FormatRecord(e);
    CommitRecord();
    RETURN_IF_ERROR(FlushBuffer(true));
  }
  next_retention_check_s_ = now_s;
  RETURN_IF_ERROR(Maintain(true));
  WriteHead();
  return OkStatus();
}

Status Log::Acknowledge(uint64_t recovery_seq, std::string_view reason,
                        std::string_view operator_name) {
  if (reason.empty() || reason.size() > kMaxReasonBytes) {
    return InvalidArgumentError("the reason of an acknowledgement must be 1 to 512 bytes");
  }
  ASSIGN_OR_RETURN(std::string line, FindLine(fs_, options_.dir, recovery_seq));
  auto facts = FactsOf(ParseJson(line, 8));
  if (!facts || facts->category != kRecoveryCategory) {
    return InvalidArgumentError("seq " + std::to_string(recovery_seq) +
                                " is not a recovery record" +
                                (facts ? " (its category is " + facts->category + ")" : ""));
  }
  Entry e;
  e.time_us = NowUs();
  e.category = std::string(kAcknowledgementCategory);
  e.operation_name = "AuditLogAcknowledge";
  e.http_status = 200;
  e.result_description = std::string(reason);
  e.extra = {{std::string(kAcknowledgedSeqProperty), std::to_string(recovery_seq)},
             {std::string(kAcknowledgedHashProperty), LineHash(line)},
             {std::string(kOperatorProperty), std::string(operator_name)}};
  std::string body;
  AppendOwnRecordBody(body, e);
  return WaitFor(Enqueue(body, true, e.operation_name));
}

}  // namespace coffer::audit
