#pragma once

// What the audit log's tests share: records to write, line helpers, and a
// fixture with a fresh directory and a FakeClock.

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "audit/layout.h"
#include "audit/log.h"
#include "audit/record.h"
#include "audit/verify.h"
#include "common/files.h"
#include "common/json.h"
#include "common/testing/temp_dir.h"

#include <sys/wait.h>

namespace coffer::audit {

namespace fs = std::filesystem;  // NOLINT: test-only header

inline constexpr int64_t kBaseSeconds = 1767576721;  // 2026-01-05T01:32:01Z
inline constexpr int64_t kBaseUs = kBaseSeconds * 1000000;

inline Entry MakeEntry(int i, const std::string& vault = "contoso",
                       const std::string& op = "SecretGet",
                       const std::string& oid = "11111111-2222-3333-4444-555555555555",
                       int status = 200) {
  Entry e;
  e.time_us = kBaseUs + int64_t{i} * 1000000;
  e.resource_id =
      "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + vault;
  e.operation_name = op;
  e.operation_version = "7.5";
  e.http_status = status;
  e.duration_ms = 3;
  e.caller_ip = "10.0.0.7";
  e.correlation_id = "corr-" + std::to_string(i);
  e.claims = {{"oid", oid}, {"appid", "app-" + std::to_string(i % 2)}};
  e.id = "https://" + vault + ".vault.azure.net/secrets/s" + std::to_string(i);
  e.request_uri = e.id + "?api-version=7.5";
  e.client_info = "azsdk-go/1.0";
  e.tls_version = "TLS1_3";
  e.is_rbac_authorized = true;
  return e;
}

inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(pos));
      break;
    }
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

inline Json Parse(const std::string& line) {
  auto j = ParseJson(line);
  EXPECT_TRUE(j.has_value()) << line.substr(0, 200);
  return j ? *j : Json();
}

inline uint64_t SeqOf(const std::string& line) {
  return Parse(line)["seq"].get<uint64_t>();
}

inline std::string Describe(const VerifyReport& r) {
  std::ostringstream out;
  out << "ok=" << r.ok << " records=" << r.records << " seq " << r.first_seq << ".." << r.last_seq
      << " checkpoints=" << r.checkpoints << "\n";
  for (const auto& p : r.problems) {
    out << "  PROBLEM " << p.file << ":" << p.line << " seq " << p.seq << ": " << p.what << "\n";
  }
  for (const auto& n : r.notes) {
    out << "  note: " << n << "\n";
  }
  return out.str();
}

inline bool HasProblem(const VerifyReport& r, const std::string& file, uint64_t seq,
                       const std::string& word) {
  for (const auto& p : r.problems) {
    if (p.file == file && p.seq == seq && p.what.find(word) != std::string::npos) {
      return true;
    }
  }
  return false;
}

inline bool HasNote(const VerifyReport& r, const std::string& word) {
  for (const auto& n : r.notes) {
    if (n.find(word) != std::string::npos) {
      return true;
    }
  }
  return false;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = test::TempDir::Create("coffer-audit-");
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    root_ = std::move(*root);
    dir_ = root_.Join("audit");  // the log makes it
  }

  LogOptions Options() const {
    LogOptions o;
    o.dir = dir_;
    o.flush_interval_ms = 5;
    o.checkpoint_every = 10;
    o.checkpoint_interval_seconds = 3600;
    return o;
  }

  std::unique_ptr<Log> OpenLog(const LogOptions& options) {
    auto log = Log::Open(options, clock_);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(log).value() : nullptr;
  }

  // Writes records 0..n-1 durably and closes the log.
  void WriteLog(const LogOptions& options, int n) {
    auto log = OpenLog(options);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(log->AppendDurable(MakeEntry(i)).ok());
    }
    log->Close();
  }

  // Writes records 0..n-1 durably in a child process that then dies without
  // closing the log: the lines after the newest checkpoint stay uncovered by
  // one, vouched for by the head alone.
  void WriteLogAndDie(const LogOptions& options, int n) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = Log::Open(options, clock_);
      if (!log.ok()) {
        ::_exit(2);
      }
      for (int i = 0; i < n; ++i) {
        if (!(*log)->AppendDurable(MakeEntry(i)).ok()) {
          ::_exit(3);
        }
      }
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
  }

  VerifyReport VerifyLog(const VerifyOptions& options = {}) {
    auto r = Verify(dir_, dir_ + "/checkpoint.pub", options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  // Rewrites the log as someone without the key would: `edit` changes each
  // line from seq `from` on, and every later prev is recomputed to match.
  void RewriteFrom(uint64_t from, const std::function<void(std::string&)>& edit) {
    std::string prev;
    for (const auto& name : Files()) {
      auto lines = Lines(name);
      for (auto& line : lines) {
        uint64_t seq = SeqOf(line);
        if (seq >= from) {
          if (Parse(line)["category"] != kCheckpointCategory) {
            edit(line);
          }
          size_t p = line.find("\"prev\":\"");
          line.replace(p + 8, 64, prev);
        }
        prev = LineHash(line);
      }
      WriteLines(name, lines);
    }
  }

  std::vector<std::string> Files() const {
    auto files = ListLogFiles(FileSystem::Default(), dir_);
    std::vector<std::string> names;
    if (files.ok()) {
      for (const auto& f : *files) {
        names.push_back(f.name);
      }
    }
    return names;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> Lines(const std::string& name) const {
    auto text = ReadFile(Path(name));
    return text.ok() ? SplitLines(*text) : std::vector<std::string>{};
  }
  std::vector<std::string> AllLines() const {
    std::vector<std::string> all;
    for (const auto& f : Files()) {
      for (auto& l : Lines(f)) {
        all.push_back(std::move(l));
      }
    }
    return all;
  }
  void WriteLines(const std::string& name, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) {
      text += l + "\n";
    }
    std::ofstream(Path(name), std::ios::binary | std::ios::trunc) << text;
  }
  // The file and 0-based index of the line with `seq`.
  std::pair<std::string, size_t> Find(uint64_t seq) const {
    for (const auto& f : Files()) {
      auto lines = Lines(f);
      for (size_t i = 0; i < lines.size(); ++i) {
        if (SeqOf(lines[i]) == seq) {
          return {f, i};
        }
      }
    }
    ADD_FAILURE() << "no line with seq " << seq;
    return {"", 0};
  }

  FakeClock clock_{kBaseSeconds};
  test::TempDir root_;
  std::string dir_;
};

}  // namespace coffer::audit
