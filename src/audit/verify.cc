#include "audit/verify.h"

#include <map>
#include <optional>

#include "audit/layout.h"
#include "audit/record.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "crypto/ed25519.h"

namespace coffer::audit {
namespace {

// Lines read ahead of their turn before a missing seq is declared deleted.
constexpr size_t kReorderWindow = 4096;
constexpr int kAttempts = 3;

struct LineInfo {
  std::string file;
  uint64_t line = 0;
  uint64_t seq = 0;
  std::string hash;
  std::string prev;
  bool malformed = false;
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

// One pass over the directory. Lines are fed in file order; the chain is
// checked in seq order, so that two swapped lines read as one reordering
// rather than as a deletion and an insertion.
class Verifier {
 public:
  Verifier(const std::string& dir, const crypto::Ed25519Key& key)
      : dir_(dir), key_(key), key_id_(KeyId(key)) {}

  Status Run();
  VerifyReport& report() { return report_; }
  bool raced() const { return raced_; }

 private:
  void Problem(const std::string& file, uint64_t line, uint64_t seq, std::string what) {
    report_.problems.push_back(VerifyProblem{file, line, seq, std::move(what)});
  }
  void ReadHead();
  void OnLine(const std::string& file, uint64_t line_no, std::string_view line);
  void CheckCheckpoint(const LineInfo& info, const Json& json);
  void Place(LineInfo info);
  void Consume(const LineInfo& info);
  void DrainPending();
  void ResolveGap();
  void Finish(const std::vector<LogFile>& files, uint64_t lines_in_newest);

  const std::string& dir_;
  const crypto::Ed25519Key& key_;
  const std::string key_id_;
  VerifyReport report_;
  bool raced_ = false;

  std::optional<Head> head_;
  std::optional<LineInfo> last_;  // the last line consumed in seq order
  uint64_t expected_ = 0;         // next seq in order; 0 before the first line
  std::map<uint64_t, LineInfo> pending_;
  uint64_t signed_through_ = 0;
  uint64_t latest_checkpoint_seq_ = 0;
  uint64_t retained_from_ = 0;  // of the newest valid checkpoint
};

void Verifier::ReadHead() {
  auto text = ReadFile(HeadPath(dir_));
  if (!text.ok()) {
    report_.notes.push_back("no head file: the end of the log cannot be proven");
    return;
  }
  auto head = ParseHead(*text);
  if (!head) {
    report_.notes.push_back("the head file is unreadable: the end of the log cannot be proven");
    return;
  }
  if (!VerifyHead(*head, key_)) {
    Problem("head", 0, head->seq,
            "the head's signature does not verify (forged, or signed by another key)");
    return;
  }
  head_ = std::move(head);
  signed_through_ = head_->seq;
}

Status Verifier::Run() {
  // The head first: the writer updates it after the lines it names, so
  // whatever it says is already in the files read next.
  ReadHead();
  ASSIGN_OR_RETURN(std::vector<LogFile> files, ListLogFiles(dir_));
  uint64_t lines_in_newest = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const LogFile& f = files[i];
    const bool newest = i + 1 == files.size();
    auto content = ReadFile(f.path);
    if (!content.ok()) {
      if (content.status().code() == StatusCode::kNotFound) {
        raced_ = true;  // retention removed it after the listing
        return OkStatus();
      }
      return content.status();
    }
    std::string_view text = *content;
    uint64_t line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) {
        break;
      }
      ++line_no;
      std::string_view line = text.substr(pos, nl - pos);
      if (line_no == 1) {
        auto json = ParseJson(line, 8);
        if (json && json->is_object() && json->contains("seq") &&
            (*json)["seq"].is_number_unsigned() && (*json)["seq"].get<uint64_t>() != f.first_seq) {
          Problem(f.name, 1, (*json)["seq"].get<uint64_t>(),
                  "the file name says it begins at seq " + std::to_string(f.first_seq));
        }
      }
      OnLine(f.name, line_no, line);
      pos = nl + 1;
    }
    if (pos < text.size()) {
      if (newest) {
        report_.notes.push_back(f.name +
                                " ends with an incomplete line (being written now, or "
                                "torn by a crash and not yet repaired)");
      } else {
        Problem(f.name, line_no + 1, expected_, "the file ends with an incomplete line");
      }
    }
    if (line_no == 0 && !newest) {
      Problem(f.name, 0, f.first_seq, "the log file is empty");
    }
    if (newest) {
      lines_in_newest = line_no;
    }
  }
  ResolveGap();
  Finish(files, lines_in_newest);
  return OkStatus();
}

void Verifier::OnLine(const std::string& file, uint64_t line_no, std::string_view line) {
  LineInfo info;
  info.file = file;
  info.line = line_no;
  info.hash = LineHash(line);
  auto json = ParseJson(line, 8);
  if (!json || !json->is_object() || !json->contains("seq") ||
      !(*json)["seq"].is_number_unsigned() || !IsHash(StringMember(*json, "prev"))) {
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
  info.seq = (*json)["seq"].get<uint64_t>();
  info.prev = StringMember(*json, "prev");
  std::string category = StringMember(*json, "category");
  if (category == kCheckpointCategory) {
    ++report_.checkpoints;
    CheckCheckpoint(info, *json);
  } else {
    ++report_.records;
    if (category == kRecoveryCategory) {
      report_.notes.push_back(
          file + ":" + std::to_string(line_no) + " seq " + std::to_string(info.seq) +
          ": the writer recovered: " + StringMember(*json, "resultDescription"));
    }
  }
  if (head_ && info.seq == head_->seq && info.hash != head_->hash) {
    Problem(file, line_no, info.seq, "the record differs from the one the head signed (altered)");
  }
  Place(std::move(info));
}

void Verifier::CheckCheckpoint(const LineInfo& info, const Json& json) {
  auto it = json.find("checkpoint");
  const Json* cp = it != json.end() && it->is_object() ? &*it : nullptr;
  auto uint_member = [&](const char* name) -> std::optional<uint64_t> {
    if (cp == nullptr || !cp->contains(name) || !(*cp)[name].is_number_unsigned()) {
      return std::nullopt;
    }
    return (*cp)[name].get<uint64_t>();
  };
  auto covered = uint_member("seq");
  auto retained_from = uint_member("retainedFrom");
  std::string hash = cp != nullptr ? StringMember(*cp, "hash") : "";
  std::string key_id = cp != nullptr ? StringMember(*cp, "keyId") : "";
  auto signature = Base64Decode(cp != nullptr ? StringMember(*cp, "signature") : "");
  if (!covered || !retained_from || hash.empty() || !signature) {
    Problem(info.file, info.line, info.seq, "malformed checkpoint");
    return;
  }
  if (*covered + 1 != info.seq || hash != info.prev) {
    Problem(info.file, info.line, info.seq,
            "the checkpoint does not cover the record before it (seq or hash altered)");
    return;
  }
  if (key_id != key_id_) {
    Problem(info.file, info.line, info.seq,
            "the checkpoint is signed by another key (keyId " + key_id + ")");
    return;
  }
  if (!key_.Verify(CheckpointSigningInput(*covered, hash, *retained_from), *signature)) {
    Problem(info.file, info.line, info.seq,
            "the checkpoint's signature does not verify (forged or altered)");
    return;
  }
  signed_through_ = std::max(signed_through_, *covered);
  if (info.seq > latest_checkpoint_seq_) {
    latest_checkpoint_seq_ = info.seq;
    retained_from_ = *retained_from;
  }
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

void Verifier::Finish(const std::vector<LogFile>& files, uint64_t lines_in_newest) {
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
  if (head_ && head_->seq > last) {
    Problem(files.back().name, lines_in_newest + 1, last + 1,
            "the log ends at seq " + std::to_string(last) + " but the head names seq " +
                std::to_string(head_->seq) + ": the tail was truncated (records " +
                Range(last + 1, head_->seq) + " are missing)");
  }
  if (signed_through_ < last) {
    report_.notes.push_back("records " + Range(signed_through_ + 1, last) +
                            " are not covered by a signature (written after the head was read, "
                            "or added by someone without the key)");
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

StatusOr<VerifyReport> Verify(const std::string& dir, const std::string& public_key_path) {
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::Ed25519Key> key,
                   crypto::LoadEd25519PublicKey(public_key_path));
  for (int attempt = 1;; ++attempt) {
    Verifier verifier(dir, *key);
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
