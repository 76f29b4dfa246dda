#include "audit/verify.h"

#include <fcntl.h>

#include <charconv>
#include <chrono>
#include <limits>
#include <map>
#include <optional>
#include <thread>

#include "audit/layout.h"
#include "audit/record.h"
#include "common/encoding.h"
#include "common/file_system.h"
#include "common/json.h"
#include "crypto/ed25519.h"

namespace coffer::audit {
namespace {

// Lines read ahead of their turn before a missing seq is declared deleted.
constexpr size_t kReorderWindow = 4096;
constexpr int kAttempts = 3;
constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

struct LineInfo {
  std::string file;
  uint64_t line = 0;
  uint64_t seq = 0;
  std::string hash;
  std::string prev;
  bool malformed = false;
};

// A recovery record, and an acknowledgement of one.
struct Recovery {
  LineInfo at;
  std::string what;
};
struct Acknowledgement {
  uint64_t seq = 0;  // the acknowledgement's own
  std::string hash;  // of the recovery line it names
  std::string by;
  std::string reason;
};

std::string Range(uint64_t from, uint64_t to) {
  return from == to ? std::to_string(from) : std::to_string(from) + ".." + std::to_string(to);
}

bool IsHash(const std::string& s) {
  if (s.size() != kGenesisHash.size()) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::optional<uint64_t> SeqOf(const std::optional<Json>& json) {
  if (!json || !json->is_object() || !json->contains("seq") ||
      !(*json)["seq"].is_number_unsigned()) {
    return std::nullopt;
  }
  return (*json)["seq"].get<uint64_t>();
}

// One pass over the directory. Lines are fed in file order; the chain is
// checked in seq order, so that two swapped lines read as one reordering
// rather than as a deletion and an insertion.
class Verifier {
 public:
  Verifier(const std::string& dir, const crypto::Ed25519Key& key, const VerifyOptions& options)
      : dir_(dir), key_(key), options_(options) {}

  Status Run();
  VerifyReport& report() { return report_; }
  bool raced() const { return raced_; }

 private:
  // Where reading stopped in the newest file read so far.
  struct Cursor {
    std::string name;
    uint64_t first_seq = 0;
    uint64_t offset = 0;      // just past the last line fed
    uint64_t lines = 0;       // lines fed
    bool incomplete = false;  // bytes follow that end no line
    bool stopped = false;     // a line past the limit follows
  };

  void Problem(const std::string& file, uint64_t line, uint64_t seq, std::string what) {
    report_.problems.push_back(VerifyProblem{file, line, seq, std::move(what)});
  }
  // What reading the head file found.
  struct HeadRead {
    std::optional<Head> head;  // set when it parses and the key signed it
    std::string problem;       // else why not
    bool empty = false;        // the file is there but empty: a log's first batch is on its way
    bool forged = false;       // it parses, but the key did not sign it
  };
  HeadRead ReadHead();
  // WriterIsLive reports whether a process holds the log (Log's lock).
  bool WriterIsLive();
  // ScanFile feeds the complete lines of `f` from the cursor (or its start)
  // on, and stops before a line whose seq is past `stop_after`. kNotFound if
  // the file is gone.
  Status ScanFile(const LogFile& f, bool newest, uint64_t stop_after);
  void OnLine(const std::string& file, uint64_t line_no, std::string_view line);
  void OnCheckpoint(const LineInfo& info, const Json& json);
  void OnAcknowledgement(const LineInfo& info, const Json& json);
  void Vouch(uint64_t seq);
  void Place(LineInfo info);
  void Consume(const LineInfo& info);
  void DrainPending();
  void ResolveGap();
  // CatchUp waits, within options_.live_writer_wait_ms, for a live writer's
  // head to vouch for the lines read past the first head.
  Status CatchUp();
  void Finish(const std::vector<LogFile>& files);

  const std::string& dir_;
  const crypto::Ed25519Key& key_;
  const VerifyOptions& options_;
  FileSystem& fs_ = FileSystem::Default();
  VerifyReport report_;
  bool raced_ = false;
  uint64_t foreign_ids_ = 0;   // records naming another server id
  std::string first_foreign_;  // the first of them

  std::optional<Head> head_;      // the head read first
  std::string head_problem_;      // why there is none (missing or unreadable)
  bool head_empty_ = false;       // the head file is there, but empty
  std::optional<LineInfo> last_;  // the last line consumed in seq order
  uint64_t expected_ = 0;         // next seq in order; 0 before the first line
  std::map<uint64_t, LineInfo> pending_;
  uint64_t vouched_through_ = 0;            // the head's seq, or the newest valid checkpoint's
  std::map<uint64_t, LineInfo> unvouched_;  // lines consumed past vouched_through_
  uint64_t latest_checkpoint_seq_ = 0;
  uint64_t retained_from_ = 0;  // of the newest valid checkpoint
  std::vector<Recovery> recoveries_;
  std::map<uint64_t, Acknowledgement> acknowledgements_;  // by the seq acknowledged
  Cursor cursor_;
};

Verifier::HeadRead Verifier::ReadHead() {
  HeadRead out;
  auto text = ReadWholeFile(fs_, HeadPath(dir_));
  if (!text.ok() && text.status().code() != StatusCode::kNotFound) {
    out.problem = "the head file cannot be read (" + std::string(text.status().message()) + ")";
  } else if (!text.ok() || text->empty()) {
    out.empty = text.ok();
    out.problem = "the head file is missing";
  } else if (auto head = ParseHead(*text); !head) {
    out.problem = "the head file is unreadable (garbled)";
  } else if (!VerifyHead(*head, key_)) {
    out.forged = true;
    out.problem = "the head's signature does not verify (forged, or signed by another key)";
    out.head = std::move(head);  // for its seq only
  } else {
    out.head = std::move(head);
  }
  return out;
}

bool Verifier::WriterIsLive() {
  auto live = fs_.IsLocked(HeadPath(dir_));
  return live.ok() && *live;
}

Status Verifier::Run() {
  // The head first: the writer updates it after the lines it names, so
  // whatever it says is already in the files read next.
  HeadRead read = ReadHead();
  // A head being rewritten as it is read can come out torn: a live writer
  // gets two more reads.
  for (int i = 0; i < 2 && !read.problem.empty() && !read.empty && WriterIsLive(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    read = ReadHead();
  }
  if (read.forged) {
    Problem("head", 0, read.head->seq, read.problem);
  } else if (read.head) {
    head_ = std::move(read.head);
    vouched_through_ = head_->seq;
  } else {
    head_problem_ = read.problem;
    head_empty_ = read.empty;
  }
  ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(fs_, dir_));
  for (size_t i = 0; i < files.size(); ++i) {
    Status s = ScanFile(files[i], i + 1 == files.size(), kNoLimit);
    if (s.code() == StatusCode::kNotFound) {
      raced_ = true;  // retention removed it after the listing
      return OkStatus();
    }
    RETURN_IF_ERROR(s);
  }
  ResolveGap();
  RETURN_IF_ERROR(CatchUp());
  Finish(files);
  return OkStatus();
}

Status Verifier::ScanFile(const LogFile& f, bool newest, uint64_t stop_after) {
  const bool resume = f.name == cursor_.name;
  uint64_t offset = resume ? cursor_.offset : 0;
  uint64_t line_no = resume ? cursor_.lines : 0;
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs_.Open(f.path, O_RDONLY));
  ASSIGN_OR_RETURN(FileInfo info, file->Stat());
  std::string text(info.size > offset ? info.size - offset : 0, '\0');
  RETURN_IF_ERROR(PReadFully(*file, text.data(), text.size(), offset));
  size_t pos = 0;
  bool stopped = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      break;
    }
    std::string_view line(text.data() + pos, nl - pos);
    if (stop_after != kNoLimit) {
      auto seq = SeqOf(ParseJson(line, 8));
      if (seq && *seq > stop_after) {
        stopped = true;
        break;
      }
    }
    ++line_no;
    if (line_no == 1) {
      auto seq = SeqOf(ParseJson(line, 8));
      if (seq && *seq != f.first_seq) {
        Problem(f.name, 1, *seq,
                "the file name says it begins at seq " + std::to_string(f.first_seq));
      }
    }
    OnLine(f.name, line_no, line);
    pos = nl + 1;
  }
  const bool incomplete = !stopped && pos < text.size();
  if (incomplete && !newest) {
    Problem(f.name, line_no + 1, expected_, "the file ends with an incomplete line");
  }
  if (line_no == 0 && !newest) {
    Problem(f.name, 0, f.first_seq, "the log file is empty");
  }
  cursor_ = Cursor{f.name, f.first_seq, offset + pos, line_no, incomplete, stopped};
  return OkStatus();
}

void Verifier::OnLine(const std::string& file, uint64_t line_no, std::string_view line) {
  LineInfo info;
  info.file = file;
  info.line = line_no;
  info.hash = LineHash(line);
  auto json = ParseJson(line, 8);
  if (!SeqOf(json) || !IsHash(StringMember(*json, "prev"))) {
    info.malformed = true;
    info.seq = expected_;
    ++report_.records;
    Problem(file, line_no, expected_, "malformed line: not an audit record");
    if (expected_ != 0) {
      Consume(info);
      DrainPending();
    }
    return;
  }
  info.seq = *SeqOf(json);
  info.prev = StringMember(*json, "prev");
  std::string category = StringMember(*json, "category");
  if (category == kCheckpointCategory) {
    ++report_.checkpoints;
    OnCheckpoint(info, *json);
  } else {
    ++report_.records;
    if (!options_.server_id.empty()) {
      std::string id = StringMember(*json, kServerIdField);
      if (!id.empty() && id != options_.server_id && foreign_ids_++ == 0) {
        first_foreign_ = "seq " + std::to_string(info.seq) + " names " + id;
      }
    }
    if (category == kRecoveryCategory) {
      recoveries_.push_back(Recovery{info, StringMember(*json, "resultDescription")});
    } else if (category == kAcknowledgementCategory) {
      OnAcknowledgement(info, *json);
    }
  }
  if (head_ && info.seq == head_->seq && info.hash != head_->hash) {
    Problem(file, line_no, info.seq, "the record differs from the one the head signed (altered)");
  }
  Place(std::move(info));
}

void Verifier::OnCheckpoint(const LineInfo& info, const Json& json) {
  auto cp = ParseCheckpoint(json);
  if (!cp) {
    Problem(info.file, info.line, info.seq, "malformed checkpoint");
    return;
  }
  std::string wrong = CheckCheckpoint(*cp, key_);
  if (!wrong.empty()) {
    Problem(info.file, info.line, info.seq, wrong);
    return;
  }
  // Everything the checkpoint signs is the chain up to it, and the line
  // itself: its seq and prev are what it signs.
  Vouch(info.seq);
  if (info.seq > latest_checkpoint_seq_) {
    latest_checkpoint_seq_ = info.seq;
    retained_from_ = cp->retained_from;
  }
}

void Verifier::OnAcknowledgement(const LineInfo& info, const Json& json) {
  const Json* props =
      json.contains("properties") && json["properties"].is_object() ? &json["properties"] : nullptr;
  std::string acknowledged = props != nullptr ? StringMember(*props, kAcknowledgedSeqProperty) : "";
  uint64_t seq = 0;
  auto [end, ec] =
      std::from_chars(acknowledged.data(), acknowledged.data() + acknowledged.size(), seq);
  if (acknowledged.empty() || ec != std::errc() ||
      end != acknowledged.data() + acknowledged.size()) {
    Problem(info.file, info.line, info.seq, "malformed acknowledgement");
    return;
  }
  acknowledgements_[seq] = Acknowledgement{
      info.seq, StringMember(*props, kAcknowledgedHashProperty),
      StringMember(*props, kOperatorProperty), StringMember(json, "resultDescription")};
}

void Verifier::Vouch(uint64_t seq) {
  vouched_through_ = std::max(vouched_through_, seq);
  unvouched_.erase(unvouched_.begin(), unvouched_.upper_bound(vouched_through_));
}

void Verifier::Place(LineInfo info) {
  if (expected_ == 0) {
    report_.first_seq = info.seq;
    if (info.seq == 1 && info.prev != kGenesisHash) {
      Problem(info.file, info.line, info.seq, "the first record's prev is not the genesis hash");
    }
    Consume(info);
    return;
  }
  if (info.seq == expected_) {
    if (!pending_.empty()) {
      Problem(info.file, info.line, info.seq,
              "records out of order: seq " + std::to_string(info.seq) + " comes after seq " +
                  std::to_string(pending_.rbegin()->first));
    }
    Consume(info);
    DrainPending();
    return;
  }
  if (info.seq > expected_) {
    if (pending_.count(info.seq) != 0) {
      Problem(info.file, info.line, info.seq, "seq " + std::to_string(info.seq) + " appears twice");
      return;
    }
    uint64_t seq = info.seq;
    pending_.emplace(seq, std::move(info));
    if (pending_.size() > kReorderWindow) {
      ResolveGap();
    }
    return;
  }
  Problem(info.file, info.line, info.seq,
          "seq " + std::to_string(info.seq) + " appears again, or out of order, after seq " +
              std::to_string(expected_ - 1));
}

void Verifier::Consume(const LineInfo& info) {
  if (last_ && !last_->malformed && !info.malformed && info.prev != last_->hash) {
    Problem(last_->file, last_->line, last_->seq,
            "record " + std::to_string(last_->seq) + " was altered: its hash does not match " +
                "the prev of seq " + std::to_string(info.seq) + " (or that prev was altered)");
  }
  last_ = info;
  expected_ = info.seq + 1;
  report_.last_seq = info.seq;
  if (info.seq > vouched_through_) {
    unvouched_[info.seq] = info;
  }
}

void Verifier::DrainPending() {
  for (auto it = pending_.find(expected_); it != pending_.end(); it = pending_.find(expected_)) {
    LineInfo info = std::move(it->second);
    pending_.erase(it);
    Consume(info);
  }
}

void Verifier::ResolveGap() {
  while (!pending_.empty()) {
    auto it = pending_.begin();
    LineInfo info = std::move(it->second);
    pending_.erase(it);
    Problem(info.file, info.line, expected_,
            "records " + Range(expected_, info.seq - 1) + " are missing (deleted)");
    last_.reset();  // nothing to link across the gap
    Consume(info);
    DrainPending();
  }
}

Status Verifier::CatchUp() {
  if (unvouched_.empty() || (!head_ && !head_empty_) || !WriterIsLive()) {
    return OkStatus();  // nobody writes: what is not vouched for now never will be
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.live_writer_wait_ms);
  auto delay = std::chrono::milliseconds(1);
  while (!unvouched_.empty() && std::chrono::steady_clock::now() < deadline) {
    HeadRead read = ReadHead();
    if (read.empty) {
      std::this_thread::sleep_for(delay);  // the first head is on its way
      delay = std::min(delay * 2, std::chrono::milliseconds(100));
      continue;
    }
    if (!read.head || read.forged) {
      return OkStatus();  // Finish reports the unvouched lines
    }
    const Head& head = *read.head;
    if (!head_) {
      head_ = head;
      head_problem_.clear();
    }
    if (head.seq > report_.last_seq) {
      // The writer went on: read up to the line this head names, no
      // further (later lines are past this verification's snapshot).
      ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(fs_, dir_));
      for (size_t i = 0; i < files.size(); ++i) {
        if (files[i].first_seq < cursor_.first_seq) {
          continue;
        }
        RETURN_IF_ERROR(ScanFile(files[i], i + 1 == files.size(), head.seq));
        if (cursor_.stopped) {
          break;
        }
      }
      ResolveGap();
    }
    auto it = unvouched_.find(head.seq);
    if (it != unvouched_.end()) {
      if (it->second.hash != head.hash) {
        Problem(it->second.file, it->second.line, head.seq,
                "the record differs from the one the head signed (altered)");
        return OkStatus();
      }
      Vouch(head.seq);
    }
    if (!unvouched_.empty()) {
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(100));
    }
  }
  return OkStatus();
}

void Verifier::Finish(const std::vector<LogFile>& files) {
  if (foreign_ids_ > 0) {
    report_.notes.push_back(
        std::to_string(foreign_ids_) + " records name another server than " + options_.server_id +
        ", whose log this directory is named as (the first: " + first_foreign_ + ")");
  }
  if (cursor_.incomplete) {
    report_.notes.push_back(cursor_.name +
                            " ends with an incomplete line (being written now, or torn by a "
                            "crash and not yet repaired)");
  }
  if (expected_ == 0) {
    if (head_ && head_->seq > 0) {
      Problem("head", 0, head_->seq,
              "no log records remain but the head names seq " + std::to_string(head_->seq));
    } else {
      report_.notes.push_back("the log is empty");
    }
    return;
  }
  const uint64_t last = report_.last_seq;
  if (!head_problem_.empty() && !options_.without_head) {
    Problem("head", 0, 0,
            head_problem_ +
                ": where the log ends cannot be proven, and records after the newest "
                "checkpoint may have been cut or rewritten");
  } else if (!head_problem_.empty()) {
    report_.notes.push_back("WITHOUT THE HEAD: " + head_problem_ +
                            "; records cut after the newest checkpoint cannot be detected");
  }
  if (head_ && head_->seq > last) {
    Problem(cursor_.name, cursor_.lines + 1, last + 1,
            "the log ends at seq " + std::to_string(last) + " but the head names seq " +
                std::to_string(head_->seq) + ": the tail was truncated (records " +
                Range(last + 1, head_->seq) + " are missing)");
  }
  if (!unvouched_.empty()) {
    const LineInfo& first = unvouched_.begin()->second;
    Problem(first.file, first.line, first.seq,
            "records " + Range(first.seq, last) +
                " are vouched for by neither the head nor a checkpoint: added or rewritten by "
                "someone without the key, or written just before the writer stopped");
  }
  for (const Recovery& r : recoveries_) {
    auto a = acknowledgements_.find(r.at.seq);
    std::string where = r.at.file + ":" + std::to_string(r.at.line) + " seq " +
                        std::to_string(r.at.seq) + ": the writer recovered: " + r.what;
    if (a != acknowledgements_.end() && a->second.hash == r.at.hash && a->second.seq > r.at.seq) {
      report_.notes.push_back(where + "; acknowledged at seq " + std::to_string(a->second.seq) +
                              " by " + a->second.by + ": " + a->second.reason);
    } else {
      Problem(r.at.file, r.at.line, r.at.seq,
              "the writer recovered: " + r.what +
                  "; not acknowledged (coffer audit acknowledge --seq " + std::to_string(r.at.seq) +
                  " --reason ...)");
    }
  }
  const uint64_t first = report_.first_seq;
  if (retained_from_ == 0) {
    if (first > 1) {
      Problem(files.front().name, 1, 1,
              "the log begins at seq " + std::to_string(first) +
                  " but no checkpoint records a retention: records " + Range(1, first - 1) +
                  " were removed");
    }
  } else if (first > retained_from_) {
    Problem(files.front().name, 1, retained_from_,
            "records " + Range(retained_from_, first - 1) +
                " are missing: log files were removed other than by retention (the newest "
                "checkpoint says the log is kept from seq " +
                std::to_string(retained_from_) + ")");
  } else if (first < retained_from_) {
    report_.notes.push_back("records " + Range(first, retained_from_ - 1) +
                            " are due for removal by retention");
  }
}

}  // namespace

StatusOr<VerifyReport> Verify(const std::string& dir, const std::string& public_key_path,
                              const VerifyOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::Ed25519Key> key,
                   crypto::LoadEd25519PublicKey(public_key_path));
  for (int attempt = 1;; ++attempt) {
    Verifier verifier(dir, *key, options);
    RETURN_IF_ERROR(verifier.Run());
    if (!verifier.raced() || attempt == kAttempts) {
      VerifyReport report = std::move(verifier.report());
      if (verifier.raced()) {
        report.problems.push_back(
            VerifyProblem{"", 0, 0, "log files kept disappearing while being verified; try again"});
      }
      report.ok = report.problems.empty();
      return report;
    }
  }
}

}  // namespace coffer::audit
