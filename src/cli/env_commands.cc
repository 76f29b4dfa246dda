// `coffer env plan|apply|diff|check|promote` (docs/environments.md): a
// team's environments declared once in a file, and the differences between
// that file, the installation and the environments themselves.
//
// Exit codes: 0 when there is nothing to report; 2 when plan would change
// something, apply left secrets that need a value, diff found differences
// or check found something (as a usage error also does); 1 on a service
// error.

#include <cstdio>
#include <ctime>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/env_check.h"
#include "cli/env_file.h"
#include "cli/env_plan.h"
#include "cli/vault_objects.h"
#include "common/files.h"
#include "common/strings.h"
#include "common/time_format.h"

namespace coffer::cli {
namespace {

EnvFile LoadFile(const std::string& path) {
  std::string text = ReadFileOrUsage(path);
  std::string dir = path.rfind('/') == std::string::npos ? "" : path.substr(0, path.rfind('/') + 1);
  auto parsed = ParseEnvFile(text, path, [&](const std::string& name) -> StatusOr<std::string> {
    return ReadFile(name.empty() || name[0] == '/' ? name : dir + name);
  });
  if (!parsed.ok()) {
    Fail(parsed.status());
  }
  return std::move(*parsed);
}

// The environments to work on: those named, else all; a name the file
// does not have is a usage error.
std::vector<const Environment*> Selected(const EnvFile& file,
                                         const std::vector<std::string>& names) {
  std::vector<const Environment*> out;
  for (const auto& name : names) {
    const Environment* env = file.Find(name);
    if (env == nullptr) {
      Usage("--environment: the file has no environment '" + name + "'");
    }
    out.push_back(env);
  }
  if (names.empty()) {
    for (const auto& env : file.environments) {
      out.push_back(&env);
    }
  }
  return out;
}

struct FileArgs {
  std::string file;
  std::vector<std::string> environments;
  bool json = false;
};

void AddFileArgs(CLI::App* cmd, FileArgs& args) {
  cmd->add_option("--file,-f", args.file, "The environments file (YAML)")->required();
  cmd->add_option("--environment,-e", args.environments, "Only these environments (default: all)");
  cmd->add_flag("--json", args.json, "Print the result as JSON");
}

void PrintPlan(const EnvPlan& plan) {
  std::string out = "environment " + plan.environment + ":";
  if (plan.steps.empty() && plan.conflicts.empty()) {
    out += " no changes\n";
  } else {
    out += "\n";
  }
  for (const auto& c : plan.conflicts) {
    out += "  ! " + c + "\n";
  }
  for (const auto& s : plan.steps) {
    out += "  " + s.line + "\n";
  }
  std::fputs(out.c_str(), stdout);
}

Json PlanJson(const EnvPlan& plan) {
  Json steps = Json::array();
  for (const auto& s : plan.steps) {
    steps.push_back(s.line);
  }
  return {{"environment", plan.environment}, {"changes", steps}, {"conflicts", plan.conflicts}};
}

void AddPlanCommand(CLI::App& env) {
  auto* cmd = env.add_subcommand(
      "plan", "Show what apply would change to make the installation match the file");
  auto args = std::make_shared<FileArgs>();
  AddFileArgs(cmd, *args);
  cmd->callback([args] {
    EnvFile file = LoadFile(args->file);
    auto c = MakeArmClient();
    Session s(c);
    Installation inst(s);
    EnvValues none;
    bool changes = false;
    Json all = Json::array();
    for (const Environment* e : Selected(file, args->environments)) {
      auto plan = PlanEnvironment(inst, *e, none);
      if (!plan.ok()) {
        Fail(plan.status());
      }
      changes = changes || !plan->steps.empty() || !plan->conflicts.empty();
      if (args->json) {
        all.push_back(PlanJson(*plan));
      } else {
        PrintPlan(*plan);
      }
    }
    if (args->json) {
      Print(all);
    }
    std::fflush(stdout);
    std::exit(changes ? 2 : 0);
  });
}

// ReadValues reads the files of `--set [ENV:][VAULT/]NAME=FILE` ("-" is
// stdin, once) into the values of each environment.
std::map<std::string, EnvValues> ReadValues(const std::vector<std::string>& sets,
                                            const EnvFile& file) {
  std::map<std::string, EnvValues> out;
  bool stdin_used = false;
  for (const auto& set : sets) {
    size_t eq = set.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == set.size()) {
      Usage("--set must be [ENVIRONMENT:][VAULT/]NAME=FILE, not '" + set + "'");
    }
    std::string target = set.substr(0, eq);
    std::string path = set.substr(eq + 1);
    std::string only;
    if (size_t colon = target.find(':'); colon != std::string::npos) {
      only = target.substr(0, colon);
      target = target.substr(colon + 1);
      if (file.Find(only) == nullptr) {
        Usage("--set: the file has no environment '" + only + "'");
      }
    }
    std::string value;
    if (path == "-") {
      if (stdin_used) {
        Usage("--set: only one value may come from stdin");
      }
      stdin_used = true;
      value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      value = ReadFileOrUsage(path);
    }
    // A file ends with a newline that is not part of the value.
    if (!value.empty() && value.back() == '\n') {
      value.pop_back();
    }
    if (value.empty()) {
      Usage("--set " + target + ": the value is empty");
    }
    for (const auto& e : file.environments) {
      if (only.empty() || only == e.name) {
        out[e.name].values[AsciiLower(target)] = value;
      }
    }
    std::fill(value.begin(), value.end(), '\0');
  }
  return out;
}

void AddApplyCommand(CLI::App& env) {
  auto* cmd = env.add_subcommand(
      "apply",
      "Make the installation match the file, one environment at a time (values never come "
      "from the file)");
  auto args = std::make_shared<FileArgs>();
  auto sets = std::make_shared<std::vector<std::string>>();
  AddFileArgs(cmd, *args);
  cmd->add_option("--set", *sets,
                  "A value for a secret that must be created: [ENVIRONMENT:][VAULT/]NAME=FILE "
                  "(FILE - is stdin)");
  cmd->callback([args, sets] {
    EnvFile file = LoadFile(args->file);
    auto values = ReadValues(*sets, file);
    auto c = MakeArmClient();
    Session s(c);
    Installation inst(s);
    Json all = Json::array();
    bool failed = false;
    bool needs_values = false;
    std::string text;
    for (const Environment* e : Selected(file, args->environments)) {
      auto plan = PlanEnvironment(inst, *e, values[e->name]);
      if (!plan.ok()) {
        // What the environments before this one had done is said first.
        if (args->json) {
          Print(all);
        } else {
          std::fputs(text.c_str(), stdout);
        }
        std::fflush(stdout);
        Fail(plan.status());
      }
      Json result = ApplyPlan(*plan);
      text += "environment " + e->name + ":\n";
      for (const auto& line : result["done"]) {
        text += "  done " + line.get<std::string>() + "\n";
      }
      for (const auto& c2 : result.value("conflicts", Json::array())) {
        text += "  ! " + c2.get<std::string>() + "\n";
      }
      for (const auto& need : result["needsValue"]) {
        text += "  needs a value: " + need.get<std::string>() + " (apply --set " + e->name + ":" +
                need.get<std::string>() + "=FILE)\n";
        needs_values = true;
      }
      if (result.contains("failed")) {
        text += "  FAILED " + result["failed"].get<std::string>() + "\n";
        failed = true;
      } else if (result["done"].empty() && result["needsValue"].empty()) {
        text += "  no changes\n";
      }
      all.push_back(result);
      if (failed) {
        break;  // what follows would build on what failed
      }
    }
    if (args->json) {
      Print(all);
    } else {
      std::fputs(text.c_str(), stdout);
    }
    std::fflush(stdout);
    std::exit(failed ? 1 : needs_values ? 2 : 0);
  });
}

void AddCheckCommand(CLI::App& env) {
  auto* cmd = env.add_subcommand(
      "check",
      "Find what would break a deploy: missing, disabled or expired secrets, secrets an "
      "application's identity cannot read, other environments' identities that can, shared "
      "values");
  auto args = std::make_shared<FileArgs>();
  AddFileArgs(cmd, *args);
  cmd->callback([args] {
    EnvFile file = LoadFile(args->file);
    Selected(file, args->environments);  // names checked
    auto c = MakeArmClient();
    Session s(c);
    Installation inst(s);
    auto findings =
        CheckEnvironments(inst, file, args->environments, static_cast<int64_t>(std::time(nullptr)));
    if (!findings.ok()) {
      Fail(findings.status());
    }
    if (args->json) {
      Json all = Json::array();
      for (const auto& f : *findings) {
        all.push_back({{"kind", f.kind},
                       {"environment", f.environment},
                       {"subject", f.subject},
                       {"detail", f.detail}});
      }
      Print(all);
    } else {
      std::string text;
      for (const auto& f : *findings) {
        text += f.Line() + "\n";
      }
      if (findings->empty()) {
        text = "no findings\n";
      }
      std::fputs(text.c_str(), stdout);
    }
    std::fflush(stdout);
    std::exit(findings->empty() ? 0 : 2);
  });
}

std::string SideText(const Json& side) {
  if (side.is_null()) {
    return "-";
  }
  std::string out = side.value("enabled", true) ? "enabled" : "disabled";
  if (!StringMember(side, "contentType").empty()) {
    out += ", " + StringMember(side, "contentType");
  }
  out += side["exp"].is_string() ? ", exp " + side["exp"].get<std::string>() : ", no expiry";
  return out;
}

void AddDiffCommand(CLI::App& env) {
  auto* cmd = env.add_subcommand(
      "diff",
      "Two environments' (or vaults') secrets side by side; values are compared by keyed "
      "hashes the vaults compute, never read");
  auto left = std::make_shared<std::string>();
  auto right = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("left", *left, "An environment of --file, or a vault name")->required();
  cmd->add_option("right", *right, "An environment of --file, or a vault name")->required();
  cmd->add_option("--file,-f", *file,
                  "The environments file (then left and right name "
                  "environments)");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([=] {
    DiffSide sides[2] = {{*left, {}}, {*right, {}}};
    std::vector<std::string> shareable;
    if (!file->empty()) {
      EnvFile f = LoadFile(*file);
      for (DiffSide& side : sides) {
        const Environment* e = f.Find(side.label);
        if (e == nullptr) {
          Usage("the file has no environment '" + side.label + "'");
        }
        for (const auto& v : e->vaults) {
          side.vaults.push_back(v.name);
        }
        for (const auto& app : e->applications) {
          for (const auto& secret : app.secrets) {
            if (secret.shareable) {
              shareable.push_back(AsciiLower(secret.name));
            }
          }
        }
      }
    } else {
      sides[0].vaults = {*left};
      sides[1].vaults = {*right};
    }
    auto c = MakeArmClient();
    Session s(c);
    Installation inst(s);
    auto diff = DiffInventories(inst, sides[0], sides[1], shareable);
    if (!diff.ok()) {
      Fail(diff.status());
    }
    if (*json) {
      Print(*diff);
    } else {
      std::string text;
      for (const auto& row : (*diff)["rows"]) {
        std::string notes;
        for (const auto& n : row["notes"]) {
          notes += (notes.empty() ? "" : "; ") + n.get<std::string>();
        }
        text += StringMember(row, "name") + "\n  " + *left + ": " + SideText(row["left"]) + "\n  " +
                *right + ": " + SideText(row["right"]) +
                "\n  value: " + StringMember(row, "value") +
                (notes.empty() ? "" : "\n  ! " + notes) + "\n";
      }
      text += std::to_string((*diff)["differences"].get<int>()) + " of " +
              std::to_string((*diff)["rows"].size()) + " secrets differ\n";
      std::fputs(text.c_str(), stdout);
    }
    std::fflush(stdout);
    std::exit((*diff)["differences"].get<int>() > 0 ? 2 : 0);
  });
}

// The vault of secret `name` in environment `env`: the vault the file
// declares it in, else the environment's only vault.
std::pair<std::string, const EnvSecret*> VaultIn(const Environment& env, const std::string& name) {
  for (const auto& app : env.applications) {
    for (const auto& s : app.secrets) {
      if (EqualsIgnoreCase(s.name, name)) {
        return {s.vault, &s};
      }
    }
  }
  if (env.vaults.size() != 1) {
    Usage("environment '" + env.name + "' declares no secret '" + name +
          "' and has several vaults");
  }
  return {env.vaults.front().name, nullptr};
}

void AddPromoteCommand(CLI::App& env) {
  auto* cmd = env.add_subcommand(
      "promote",
      "Copy a secret's current value to another environment as a new version, tagged with "
      "its origin");
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  cmd->add_option("--from", *from, "Environment of --file (or a vault name) to copy from")
      ->required();
  cmd->add_option("--to", *to, "Environment of --file (or a vault name) to copy to")->required();
  cmd->add_option("--secret,--name,-n", *name, "The secret")->required();
  cmd->add_option("--file,-f", *file, "The environments file");
  cmd->callback([=] {
    std::string source = *from;
    std::string target = *to;
    const EnvSecret* rule = nullptr;
    EnvFile f;
    if (!file->empty()) {
      f = LoadFile(*file);
      const Environment* a = f.Find(*from);
      const Environment* b = f.Find(*to);
      if (a == nullptr || b == nullptr) {
        Usage("the file has no environment '" + (a == nullptr ? *from : *to) + "'");
      }
      auto [va, ra] = VaultIn(*a, *name);
      auto [vb, rb] = VaultIn(*b, *name);
      source = va;
      target = vb;
      for (const EnvSecret* r : {ra, rb}) {
        if (r != nullptr && !r->shareable) {
          Fail(FailedPreconditionError(
              r->where + ": the secret is not shareable (its values must differ between "
                         "environments); mark it shareable: true to promote it",
              "BadParameter"));
        }
      }
      rule = rb;
    }
    auto c = MakeArmClient();
    Session s(c);
    auto got = s.Vault("GET", source, "/secrets/" + *name);
    if (!got.ok() || got->status != 200) {
      Fail(Session::Failed(source + "/" + *name, "reading the secret", got));
    }
    Json secret = Body(got);
    std::string id = StringMember(secret, "id");
    Json tags = secret.value("tags", Json::object());
    tags["promotedFrom"] = id;
    Json attributes = {{"enabled", true}};
    Json source_attributes = secret.value("attributes", Json::object());
    if (rule != nullptr && rule->max_ahead) {
      attributes["exp"] = static_cast<int64_t>(std::time(nullptr)) + *rule->max_ahead;
    } else if (source_attributes.contains("exp")) {
      attributes["exp"] = source_attributes["exp"];
    }
    Json body = {
        {"value", StringMember(secret, "value")}, {"tags", tags}, {"attributes", attributes}};
    // The target's declared content type, else the source's.
    std::string content_type = rule != nullptr && !rule->content_type.empty()
                                   ? rule->content_type
                                   : StringMember(secret, "contentType");
    if (!content_type.empty()) {
      body["contentType"] = content_type;
    }
    std::string text = ToJson(body);
    // SECURITY: the value is wiped from every copy once sent.
    secret["value"] = "";
    body["value"] = "";
    std::fill(got->body.begin(), got->body.end(), '\0');
    auto put = s.Vault("PUT", target, "/secrets/" + *name, text);
    std::fill(text.begin(), text.end(), '\0');
    if (!put.ok() || put->status != 200) {
      Fail(Session::Failed(target + "/" + *name, "setting the secret", put));
    }
    Json made = Body(put);
    Print(Json{{"id", StringMember(made, "id")},
               {"promotedFrom", id},
               {"attributes", made.value("attributes", Json::object())}});
  });
}

}  // namespace

void AddEnvCommands(CLI::App& app) {
  auto* env = app.add_subcommand(
      "env", "Environments (dev, staging, prod, ...) declared in a file: plan, apply, check");
  env->require_subcommand(1);
  AddPlanCommand(*env);
  AddApplyCommand(*env);
  AddCheckCommand(*env);
  AddDiffCommand(*env);
  AddPromoteCommand(*env);
}

}  // namespace coffer::cli
