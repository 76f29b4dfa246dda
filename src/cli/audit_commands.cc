// coffer audit verify|acknowledge|query (docs/audit.md) and coffer eventgrid
// event-subscription ... (docs/events.md), as `az eventgrid`.

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>

#include "audit/layout.h"
#include "audit/log.h"
#include "audit/query.h"
#include "audit/record.h"
#include "audit/servers.h"
#include "audit/verify.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/encoding.h"
#include "common/file_system.h"
#include "common/strings.h"

namespace coffer::cli {
namespace {

constexpr char kEventGridApi[] = "2022-06-15";

// The audit logs of --data-dir (all its servers' logs) or of each --dir
// (one server's log, or a directory holding several), for the readers.
struct AuditDirs {
  std::string data_dir;
  std::vector<std::string> dirs;

  void Add(CLI::App* cmd) {
    cmd->add_option("--data-dir", data_dir,
                    "A server's data directory: the logs in DATA_DIR/audit (default .coffer)");
    cmd->add_option("--dir", dirs,
                    "An audit log directory, or a directory holding several servers' logs "
                    "(repeat it for more)");
  }
  bool Given() const { return !data_dir.empty() || !dirs.empty(); }
  std::vector<audit::ServerLog> Logs() const {
    std::vector<std::string> paths = dirs;
    if (!data_dir.empty() || paths.empty()) {
      paths.push_back((data_dir.empty() ? std::string(".coffer") : data_dir) + "/audit");
    }
    auto logs = audit::FindServerLogs(FileSystem::Default(), paths);
    if (!logs.ok()) {
      Fail(logs.status());
    }
    return std::move(logs).value();
  }
};

// --public-key PATH for every log, or SERVER_ID=PATH for one server's.
struct PublicKeys {
  std::string all;
  std::map<std::string, std::string> by_server;

  static PublicKeys Parse(const std::vector<std::string>& given) {
    PublicKeys keys;
    for (const std::string& g : given) {
      size_t eq = g.find('=');
      if (eq != std::string::npos && audit::ValidateServerId(g.substr(0, eq)).ok()) {
        keys.by_server[g.substr(0, eq)] = g.substr(eq + 1);
      } else if (keys.all.empty()) {
        keys.all = g;
      } else {
        Usage("--public-key PATH may be given once; name a server's own key as SERVER_ID=PATH");
      }
    }
    return keys;
  }
  std::string For(const audit::ServerLog& log) const {
    if (auto it = by_server.find(log.server_id); it != by_server.end()) {
      return it->second;
    }
    return all.empty() ? audit::PublicKeyPath(log.dir) : all;
  }
};

Json ProblemsJson(const audit::ServerVerifyReport& r) {
  Json problems = Json::array();
  for (const auto& p : r.report.problems) {
    problems.push_back({{"serverId", r.log.server_id},
                        {"file", p.file},
                        {"line", p.line},
                        {"seq", p.seq},
                        {"problem", p.what}});
  }
  return problems;
}

// One object per log under "servers"; the totals at the top, and with a
// single log its seq range, as the report of one log always had.
void PrintVerifyJson(const std::vector<audit::ServerVerifyReport>& reports, bool all_ok,
                     bool without_head) {
  Json servers = Json::array();
  Json problems = Json::array();
  Json notes = Json::array();
  uint64_t records = 0;
  uint64_t checkpoints = 0;
  for (const auto& r : reports) {
    Json one = {{"serverId", r.log.server_id}, {"dir", r.log.dir}, {"ok", r.ok()}};
    if (!r.status.ok()) {
      one["error"] = r.status.ToString();
      problems.push_back({{"serverId", r.log.server_id},
                          {"file", ""},
                          {"line", 0},
                          {"seq", 0},
                          {"problem", "cannot verify: " + r.status.ToString()}});
    } else {
      Json own = ProblemsJson(r);
      for (const auto& p : own) {
        problems.push_back(p);
      }
      for (const auto& n : r.report.notes) {
        notes.push_back(reports.size() == 1 ? n : r.log.Label() + ": " + n);
      }
      records += r.report.records;
      checkpoints += r.report.checkpoints;
      one.update({{"records", r.report.records},
                  {"firstSeq", r.report.first_seq},
                  {"lastSeq", r.report.last_seq},
                  {"checkpoints", r.report.checkpoints},
                  {"problems", own},
                  {"notes", r.report.notes}});
    }
    servers.push_back(std::move(one));
  }
  Json out = {{"ok", all_ok},
              {"records", records},
              {"checkpoints", checkpoints},
              {"withoutHead", without_head},
              {"problems", problems},
              {"notes", notes},
              {"servers", servers}};
  if (reports.size() == 1 && reports[0].status.ok()) {
    out["firstSeq"] = reports[0].report.first_seq;
    out["lastSeq"] = reports[0].report.last_seq;
  }
  Print(out);
}

// Per log: a "server" line, its findings, its summary; then, for several
// logs, one line over all of them.
void PrintVerifyText(const std::vector<audit::ServerVerifyReport>& reports, bool all_ok,
                     bool without_head) {
  size_t broken = 0;
  for (const auto& r : reports) {
    if (r.log.server_id.empty()) {
      std::printf("log %s (no server id):\n", r.log.dir.c_str());
    } else {
      std::printf("server %s (%s):\n", r.log.server_id.c_str(), r.log.dir.c_str());
    }
    if (!r.status.ok()) {
      std::printf("FAILED: cannot verify: %s\n", r.status.ToString().c_str());
      ++broken;
      continue;
    }
    const audit::VerifyReport& report = r.report;
    for (const auto& p : report.problems) {
      std::printf("TAMPERED: %s line %llu (seq %llu): %s\n", p.file.c_str(),
                  static_cast<unsigned long long>(p.line), static_cast<unsigned long long>(p.seq),
                  p.what.c_str());
    }
    for (const auto& n : report.notes) {
      std::printf("note: %s\n", n.c_str());
    }
    std::printf("%s: %llu records (seq %llu-%llu), %llu checkpoints%s\n",
                report.ok ? "OK" : "FAILED", static_cast<unsigned long long>(report.records),
                static_cast<unsigned long long>(report.first_seq),
                static_cast<unsigned long long>(report.last_seq),
                static_cast<unsigned long long>(report.checkpoints),
                without_head ? ", WITHOUT THE HEAD" : "");
    broken += report.ok ? 0 : 1;
  }
  if (reports.size() > 1) {
    std::printf("%s: %zu server logs, %zu broken\n", all_ok ? "OK" : "FAILED", reports.size(),
                broken);
  }
}

void AddVerify(CLI::App& audit) {
  auto* cmd = audit.add_subcommand(
      "verify",
      "Check audit logs' hash chains, checkpoints and heads, server by server; say where each "
      "breaks");
  auto where = std::make_shared<AuditDirs>();
  auto keys = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto without_head = std::make_shared<bool>(false);
  where->Add(cmd);
  cmd->add_option("--public-key", *keys,
                  "The checkpoint public key (default <log dir>/checkpoint.pub), or "
                  "SERVER_ID=PATH for one server's; a copy kept apart from the log proves more "
                  "than the one beside it");
  cmd->add_flag("--without-head", *without_head,
                "Accept a missing or unreadable head file: the end of the log is then unproven");
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([=] {
    PublicKeys public_keys = PublicKeys::Parse(*keys);
    std::vector<audit::ServerLog> logs = where->Logs();
    for (const auto& [id, path] : public_keys.by_server) {
      if (std::none_of(logs.begin(), logs.end(),
                       [&](const audit::ServerLog& l) { return l.server_id == id; })) {
        Usage("--public-key names server " + id + ", whose log is not among those verified");
      }
    }
    if (*without_head) {
      std::cerr << "WARNING: verifying without the head file: records cut from the end of the "
                   "log after its newest checkpoint cannot be detected.\n";
    }
    audit::VerifyOptions options;
    options.without_head = *without_head;
    auto reports = audit::VerifyServerLogs(
        logs, options, [&](const audit::ServerLog& l) { return public_keys.For(l); });
    bool all_ok = true;
    for (const auto& r : reports) {
      all_ok = all_ok && r.ok();
    }
    if (*json) {
      PrintVerifyJson(reports, all_ok, *without_head);
    } else {
      PrintVerifyText(reports, all_ok, *without_head);
    }
    std::fflush(stdout);
    if (!all_ok) {
      std::exit(1);
    }
  });
}

// Who runs the command, as the acknowledgement records it: the real uid and
// its name, and the user sudo ran it for.
std::string OperatorName() {
  uid_t uid = ::getuid();
  std::string out = "uid=" + std::to_string(uid);
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    out += "(" + std::string(found->pw_name) + ")";
  }
  if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0') {
    out += " sudo_user=" + std::string(sudo).substr(0, 64);
  }
  return out;
}

// The one log `coffer audit acknowledge` appends to: --dir itself, or under
// DATA_DIR/audit the log of --server-id, or the only one there is.
struct AckTarget {
  std::string data_dir = ".coffer";
  std::string dir;
  std::string server_id;

  void Add(CLI::App* cmd) {
    cmd->add_option("--data-dir", data_dir, "The server's data directory")->capture_default_str();
    cmd->add_option("--dir", dir, "The log's directory (default DATA_DIR/audit/SERVER_ID)");
    cmd->add_option("--server-id", server_id,
                    "Whose log under DATA_DIR/audit (needed when it holds several)");
  }
  audit::ServerLog Log() const {
    FileSystem& fs = FileSystem::Default();
    const std::string root = data_dir + "/audit";
    std::string path = dir;
    if (path.empty() && !server_id.empty()) {
      if (Status valid = audit::ValidateServerId(server_id); !valid.ok()) {
        Fail(valid);
      }
      path = audit::ServerLogDir(root, server_id);
    }
    // Acknowledging never starts a log: the one named must be there.
    auto logs = audit::FindServerLogs(fs, {path.empty() ? root : path});
    if (!logs.ok()) {
      Fail(logs.status());
    }
    if (logs->size() != 1) {
      Usage(root + " holds the logs of " + std::to_string(logs->size()) +
            " servers; name one with --server-id");
    }
    return (*logs)[0];
  }
};

void AddAcknowledge(CLI::App& audit) {
  auto* cmd = audit.add_subcommand(
      "acknowledge",
      "Acknowledge recovery records (what the server found amiss when it opened the log) after "
      "checking them; the acknowledgement is itself a signed record of the log. The server must "
      "be stopped");
  auto where = std::make_shared<AckTarget>();
  auto key = std::make_shared<std::string>();
  auto seqs = std::make_shared<std::vector<uint64_t>>();
  auto reason = std::make_shared<std::string>();
  where->Add(cmd);
  cmd->add_option("--audit-signing-key", *key,
                  "The checkpoint signing key, as given to coffer server (default <audit "
                  "dir>/checkpoint.key)");
  cmd->add_option("--seq", *seqs, "The seq of a recovery record (coffer audit verify names it)")
      ->required();
  cmd->add_option("--reason", *reason, "Why it is acceptable, up to 512 bytes")->required();
  cmd->callback([=] {
    audit::LogOptions options;
    audit::ServerLog target = where->Log();
    options.dir = target.dir;
    options.server_id = target.server_id;
    options.signing_key_path = *key;
    options.retention_days = 0;  // retention is the server's business
    auto opened = audit::Log::Open(options, SystemClock::Get());
    if (!opened.ok()) {
      Fail(opened.status());
    }
    auto& log = **opened;
    if (log.recovery_seq() != 0) {
      std::cout << "note: opening the log wrote a recovery record of its own, seq "
                << log.recovery_seq() << "; coffer audit verify shows it\n";
    }
    Status failed;
    for (uint64_t seq : *seqs) {
      Status s = log.Acknowledge(seq, *reason, OperatorName());
      if (!s.ok()) {
        failed = s;
        break;
      }
      std::cout << "acknowledged seq " << seq << " (the acknowledgement is seq " << log.last_seq()
                << ")\n";
    }
    log.Close();  // its final checkpoint signs the acknowledgements
    if (!failed.ok()) {
      Fail(failed);
    }
  });
}

std::string Cell(const Json& v, size_t width) {
  std::string s = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : ToJson(v);
  if (s.size() > width) {
    s = s.substr(0, width - 1) + "~";
  }
  return s + std::string(width + 2 - s.size(), ' ');
}

// An ISO 8601 UTC time as microseconds, as GET /coffer/v1/audit reads it:
// audit::ParseTimeFilter's forms; 0 for "".
int64_t TimeOption(const std::string& name, const std::string& text) {
  if (text.empty()) {
    return 0;
  }
  if (auto us = audit::ParseTimeFilter(text)) {
    return *us;
  }
  Usage(name + " '" + text.substr(0, 64) +
        "' is not an ISO 8601 UTC time such as 2026-11-28T10:00:00Z.");
}

void PrintRecordTable(const Json& records) {
  std::string out = Cell("time", 28) + Cell("server", 14) + Cell("operation", 24) +
                    Cell("result", 8) + Cell("status", 6) + Cell("caller (oid)", 36) +
                    Cell("resource", 24) + "\n";
  for (const auto& r : records) {
    std::string rid = StringMember(r, "resourceId");
    Json claims = r.contains("identity") && r["identity"].is_object()
                      ? r["identity"].value("claim", Json::object())
                      : Json::object();
    out += Cell(r.value("time", Json()), 28) + Cell(r.value(audit::kServerIdField, Json()), 14) +
           Cell(r.value("operationName", Json()), 24) + Cell(r.value("resultType", Json()), 8) +
           Cell(r.contains("properties") ? r["properties"].value("httpStatusCode", Json()) : Json(),
                6) +
           Cell(claims.value("oid", Json()), 36) + Cell(rid.substr(rid.rfind('/') + 1), 24) + "\n";
  }
  std::fputs(out.c_str(), stdout);
}

void AddQuery(CLI::App& audit) {
  auto* cmd = audit.add_subcommand(
      "query",
      "Read audit records (newest last): through the server's API, the records you may read; or "
      "with --data-dir/--dir, from the log files of one or several servers, merged by time");
  auto vault = std::make_shared<std::string>();
  auto operation = std::make_shared<std::string>();
  auto caller = std::make_shared<std::string>();
  auto result = std::make_shared<std::string>();
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto top = std::make_shared<int>(100);
  auto output = std::make_shared<std::string>("table");
  auto where = std::make_shared<AuditDirs>();
  cmd->add_option("--vault-name,--vault", *vault, "Only this vault's records");
  cmd->add_option("--operation", *operation, "operationName, e.g. SecretGet");
  cmd->add_option("--caller", *caller, "Object id or app id of the caller");
  cmd->add_option("--result", *result, "Success, Failure or an HTTP status code");
  cmd->add_option("--from", *from, "ISO 8601 UTC start time (inclusive)");
  cmd->add_option("--to", *to, "ISO 8601 UTC end time (exclusive)");
  cmd->add_option("--top", *top, "At most this many records (1-1000)")->capture_default_str();
  cmd->add_option("--output,-o", *output, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  where->Add(cmd);
  cmd->callback([=] {
    Json records = Json::array();
    if (where->Given()) {
      // The files themselves: whoever can read them reads every record, so
      // no authorization applies (the log files are 0600).
      if (*top < 1 || *top > 1000) {
        Usage("--top must be from 1 to 1000.");
      }
      audit::Filter filter;
      filter.vault = *vault;
      filter.operation = *operation;
      filter.caller = *caller;
      filter.result = *result;
      filter.from_us = TimeOption("--from", *from);
      filter.to_us = TimeOption("--to", *to);
      filter.top = static_cast<size_t>(*top);
      auto found = audit::QueryServerLogs(where->Logs(), filter);
      if (!found.ok()) {
        Fail(found.status());
      }
      for (auto& r : *found) {
        records.push_back(std::move(r));
      }
    } else {
      auto c = MakeArmClient();
      std::string query = "top=" + std::to_string(*top);
      for (auto [name, value] : {std::pair<const char*, std::string*>{"vault", vault.get()},
                                 {"operation", operation.get()},
                                 {"caller", caller.get()},
                                 {"result", result.get()},
                                 {"from", from.get()},
                                 {"to", to.get()}}) {
        if (!value->empty()) {
          query += std::string("&") + name + "=" + PercentEncode(*value);
        }
      }
      Json body = Expect(
          c.Call("GET", c.config().authority + "/coffer/v1/audit?" + query, c.config().authority),
          {200});
      records = body.value("value", Json::array());
    }
    if (*output == "json") {
      Print(records);
      return;
    }
    PrintRecordTable(records);
  });
}

// The ARM path of a vault's event subscriptions.
std::string SubscriptionsPath(const std::string& resource_group, const std::string& vault) {
  return "/resourceGroups/" + resource_group + "/providers/Microsoft.KeyVault/vaults/" + vault +
         "/providers/Microsoft.EventGrid/eventSubscriptions";
}

struct Target {
  std::string vault;
  std::string resource_group = "coffer-dev";
  std::string source_resource_id;

  void Add(CLI::App* cmd) {
    cmd->add_option("--vault-name", vault, "The vault whose events are subscribed to");
    cmd->add_option("--resource-group,-g", resource_group, "The vault's resource group")
        ->capture_default_str();
    cmd->add_option("--source-resource-id", source_resource_id,
                    "The vault's ARM id (instead of --vault-name and --resource-group)");
  }
  std::string Path() const {
    if (!source_resource_id.empty()) {
      // /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{v}
      std::vector<std::string> parts;
      size_t start = 1;
      while (start <= source_resource_id.size()) {
        size_t slash = source_resource_id.find('/', start);
        parts.push_back(source_resource_id.substr(start, slash - start));
        if (slash == std::string::npos) {
          break;
        }
        start = slash + 1;
      }
      if (parts.size() != 8 || !EqualsIgnoreCase(parts[6], "vaults")) {
        Usage("--source-resource-id must be a vault's ARM id.");
      }
      return SubscriptionsPath(parts[3], parts[7]);
    }
    if (vault.empty()) {
      Usage("Name the vault with --vault-name or --source-resource-id.");
    }
    return SubscriptionsPath(resource_group, vault);
  }
};

void AddEventSubscriptionCommands(CLI::App& app) {
  auto* eg = app.add_subcommand("eventgrid", "Key Vault events: webhook subscriptions");
  eg->require_subcommand(1);
  auto* es = eg->add_subcommand("event-subscription", "Event subscriptions on a vault");
  es->require_subcommand(1);

  auto* create = es->add_subcommand("create", "Create or replace a webhook subscription");
  auto t = std::make_shared<Target>();
  auto name = std::make_shared<std::string>();
  auto endpoint = std::make_shared<std::string>();
  auto types = std::make_shared<std::vector<std::string>>();
  auto schema = std::make_shared<std::string>("eventgridschema");
  auto begins = std::make_shared<std::string>();
  auto ends = std::make_shared<std::string>();
  auto attempts = std::make_shared<int>(30);
  auto ttl = std::make_shared<int>(1440);
  t->Add(create);
  create->add_option("--name,-n", *name, "Subscription name")->required();
  create->add_option("--endpoint", *endpoint, "Webhook URL (https://, or http:// on loopback)")
      ->required();
  create->add_option("--included-event-types", *types,
                     "Event types, e.g. Microsoft.KeyVault.SecretNewVersionCreated");
  create->add_option("--event-delivery-schema", *schema, "eventgridschema or cloudeventschemav1_0")
      ->check(CLI::IsMember({"eventgridschema", "cloudeventschemav1_0"}, CLI::ignore_case))
      ->capture_default_str();
  create->add_option("--subject-begins-with", *begins, "Only objects whose name starts so");
  create->add_option("--subject-ends-with", *ends, "Only objects whose name ends so");
  create->add_option("--max-delivery-attempts", *attempts, "1-30")->capture_default_str();
  create->add_option("--event-ttl", *ttl, "Minutes to keep retrying, 1-1440")
      ->capture_default_str();
  create->callback([=] {
    auto c = MakeArmClient();
    Json props = {
        {"destination",
         {{"endpointType", "WebHook"}, {"properties", {{"endpointUrl", *endpoint}}}}},
        {"filter",
         {{"includedEventTypes", types->empty() ? Json(nullptr) : Json(*types)},
          {"subjectBeginsWith", *begins},
          {"subjectEndsWith", *ends}}},
        {"eventDeliverySchema", EqualsIgnoreCase(*schema, "cloudeventschemav1_0")
                                    ? "CloudEventSchemaV1_0"
                                    : "EventGridSchema"},
        {"retryPolicy", {{"maxDeliveryAttempts", *attempts}, {"eventTimeToLiveInMinutes", *ttl}}}};
    Print(ArmCall(c, "PUT", t->Path() + "/" + PercentEncode(*name), kEventGridApi, {200, 201},
                  ToJson(Json{{"properties", props}})));
  });

  auto* list = es->add_subcommand("list", "List a vault's subscriptions");
  auto lt = std::make_shared<Target>();
  lt->Add(list);
  list->callback([=] {
    auto c = MakeArmClient();
    Print(ArmCall(c, "GET", lt->Path(), kEventGridApi, {200}).value("value", Json::array()));
  });

  for (const char* verb : {"show", "delete", "signing-key"}) {
    auto* cmd = es->add_subcommand(verb, std::string(verb) == "show" ? "Show a subscription"
                                         : std::string(verb) == "delete"
                                             ? "Delete a subscription"
                                             : "Show (or --regenerate) the HMAC key deliveries "
                                               "are signed with");
    auto vt = std::make_shared<Target>();
    auto n = std::make_shared<std::string>();
    auto regenerate = std::make_shared<bool>(false);
    vt->Add(cmd);
    cmd->add_option("--name,-n", *n, "Subscription name")->required();
    if (std::string(verb) == "signing-key") {
      cmd->add_flag("--regenerate", *regenerate, "Make a new key; the old one stops working");
    }
    std::string v = verb;
    cmd->callback([=] {
      auto c = MakeArmClient();
      std::string path = vt->Path() + "/" + PercentEncode(*n);
      if (v == "show") {
        Print(ArmCall(c, "GET", path, kEventGridApi, {200}));
      } else if (v == "delete") {
        ArmCall(c, "DELETE", path, kEventGridApi, {200, 204});
      } else {
        Print(ArmCall(c, "POST", path + (*regenerate ? "/regenerateSigningKey" : "/getSigningKey"),
                      kEventGridApi, {200}));
      }
    });
  }
}

}  // namespace

void AddAuditCommands(CLI::App& app) {
  auto* audit = app.add_subcommand("audit", "The tamper-evident audit log");
  audit->require_subcommand(1);
  AddVerify(*audit);
  AddAcknowledge(*audit);
  AddQuery(*audit);
  AddEventSubscriptionCommands(app);
}

}  // namespace coffer::cli
