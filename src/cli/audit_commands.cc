// coffer audit verify|acknowledge|query (docs/audit.md) and coffer eventgrid
// event-subscription ... (docs/events.md), as `az eventgrid`.

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "audit/layout.h"
#include "audit/log.h"
#include "audit/verify.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/encoding.h"
#include "common/strings.h"

namespace coffer::cli {
namespace {

constexpr char kEventGridApi[] = "2022-06-15";

// Where the audit log of --data-dir or --dir is.
struct AuditDir {
  std::string data_dir = ".coffer";
  std::string dir;

  void Add(CLI::App* cmd) {
    cmd->add_option("--data-dir", data_dir, "The server's data directory")->capture_default_str();
    cmd->add_option("--dir", dir, "The audit directory (default <data-dir>/audit)");
  }
  std::string Path() const { return dir.empty() ? data_dir + "/audit" : dir; }
};

void AddVerify(CLI::App& audit) {
  auto* cmd = audit.add_subcommand(
      "verify", "Check the audit log's hash chain, checkpoints and head; say where it breaks");
  auto where = std::make_shared<AuditDir>();
  auto key = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto without_head = std::make_shared<bool>(false);
  where->Add(cmd);
  cmd->add_option("--public-key", *key,
                  "The checkpoint public key (default <audit dir>/checkpoint.pub); a copy kept "
                  "apart from the log proves more than the one beside it");
  cmd->add_flag("--without-head", *without_head,
                "Accept a missing or unreadable head file: the end of the log is then unproven");
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([=] {
    std::string audit_dir = where->Path();
    std::string pub = key->empty() ? audit::PublicKeyPath(audit_dir) : *key;
    if (*without_head) {
      std::cerr << "WARNING: verifying without the head file: records cut from the end of the "
                   "log after its newest checkpoint cannot be detected.\n";
    }
    audit::VerifyOptions options;
    options.without_head = *without_head;
    auto report = audit::Verify(audit_dir, pub, options);
    if (!report.ok()) {
      Fail(report.status());
    }
    if (*json) {
      Json problems = Json::array();
      for (const auto& p : report->problems) {
        problems.push_back(
            {{"file", p.file}, {"line", p.line}, {"seq", p.seq}, {"problem", p.what}});
      }
      Print(Json{{"ok", report->ok},
                 {"records", report->records},
                 {"firstSeq", report->first_seq},
                 {"lastSeq", report->last_seq},
                 {"checkpoints", report->checkpoints},
                 {"withoutHead", *without_head},
                 {"problems", problems},
                 {"notes", report->notes}});
    } else {
      for (const auto& p : report->problems) {
        std::printf("TAMPERED: %s line %llu (seq %llu): %s\n", p.file.c_str(),
                    static_cast<unsigned long long>(p.line), static_cast<unsigned long long>(p.seq),
                    p.what.c_str());
      }
      for (const auto& n : report->notes) {
        std::printf("note: %s\n", n.c_str());
      }
      std::printf("%s: %llu records (seq %llu-%llu), %llu checkpoints%s\n",
                  report->ok ? "OK" : "FAILED", static_cast<unsigned long long>(report->records),
                  static_cast<unsigned long long>(report->first_seq),
                  static_cast<unsigned long long>(report->last_seq),
                  static_cast<unsigned long long>(report->checkpoints),
                  *without_head ? ", WITHOUT THE HEAD" : "");
    }
    std::fflush(stdout);
    if (!report->ok) {
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

void AddAcknowledge(CLI::App& audit) {
  auto* cmd = audit.add_subcommand(
      "acknowledge",
      "Acknowledge recovery records (what the server found amiss when it opened the log) after "
      "checking them; the acknowledgement is itself a signed record of the log. The server must "
      "be stopped");
  auto where = std::make_shared<AuditDir>();
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
    options.dir = where->Path();
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

void AddQuery(CLI::App& audit) {
  auto* cmd = audit.add_subcommand("query", "Read audit records you may read (newest last)");
  auto vault = std::make_shared<std::string>();
  auto operation = std::make_shared<std::string>();
  auto caller = std::make_shared<std::string>();
  auto result = std::make_shared<std::string>();
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto top = std::make_shared<int>(100);
  auto output = std::make_shared<std::string>("table");
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
  cmd->callback([=] {
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
    Json records = body.value("value", Json::array());
    if (*output == "json") {
      Print(records);
      return;
    }
    std::string out = Cell("time", 28) + Cell("operation", 24) + Cell("result", 8) +
                      Cell("status", 6) + Cell("caller (oid)", 36) + Cell("resource", 24) + "\n";
    for (const auto& r : records) {
      std::string rid = StringMember(r, "resourceId");
      Json claims = r.contains("identity") && r["identity"].is_object()
                        ? r["identity"].value("claim", Json::object())
                        : Json::object();
      out +=
          Cell(r.value("time", Json()), 28) + Cell(r.value("operationName", Json()), 24) +
          Cell(r.value("resultType", Json()), 8) +
          Cell(r.contains("properties") ? r["properties"].value("httpStatusCode", Json()) : Json(),
               6) +
          Cell(claims.value("oid", Json()), 36) + Cell(rid.substr(rid.rfind('/') + 1), 24) + "\n";
    }
    std::fputs(out.c_str(), stdout);
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
