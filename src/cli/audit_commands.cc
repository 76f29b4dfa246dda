// coffer audit verify|query (docs/audit.md) and coffer eventgrid
// event-subscription ... (docs/events.md), as `az eventgrid`.

#include <cstdio>
#include <memory>

#include "audit/verify.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/encoding.h"
#include "common/strings.h"

namespace coffer::cli {
namespace {

constexpr char kEventGridApi[] = "2022-06-15";

void AddVerify(CLI::App& audit) {
  auto* cmd = audit.add_subcommand(
      "verify", "Check the audit log's hash chain, checkpoints and head; say where it breaks");
  auto data_dir = std::make_shared<std::string>(".coffer");
  auto dir = std::make_shared<std::string>();
  auto key = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--data-dir", *data_dir, "The server's data directory")->capture_default_str();
  cmd->add_option("--dir", *dir, "The audit directory (default <data-dir>/audit)");
  cmd->add_option("--public-key", *key,
                  "The checkpoint public key (default <audit dir>/checkpoint.pub)");
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([=] {
    std::string audit_dir = dir->empty() ? *data_dir + "/audit" : *dir;
    std::string pub = key->empty() ? audit_dir + "/checkpoint.pub" : *key;
    auto report = audit::Verify(audit_dir, pub);
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
      std::printf("%s: %llu records (seq %llu-%llu), %llu checkpoints\n",
                  report->ok ? "OK" : "FAILED", static_cast<unsigned long long>(report->records),
                  static_cast<unsigned long long>(report->first_seq),
                  static_cast<unsigned long long>(report->last_seq),
                  static_cast<unsigned long long>(report->checkpoints));
    }
    std::fflush(stdout);
    if (!report->ok) {
      std::exit(1);
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
  AddQuery(*audit);
  AddEventSubscriptionCommands(app);
}

}  // namespace coffer::cli
