#include "cli/env_file.h"

#include <algorithm>
#include <set>

#include "agent/spc.h"
#include "agent/spc_yaml.h"
#include "cli/yaml_fields.h"
#include "client/keyvault_reference.h"
#include "common/strings.h"
#include "keyvault/names.h"

namespace coffer::cli {

const Environment* EnvFile::Find(std::string_view name) const {
  for (const auto& e : environments) {
    if (e.name == name) {
      return &e;
    }
  }
  return nullptr;
}

namespace {

using agent::YamlNode;

const std::initializer_list<std::string_view> kVaultKeys = {"name",
                                                            "resourceGroup",
                                                            "location",
                                                            "enableRbacAuthorization",
                                                            "softDeleteRetentionInDays",
                                                            "enablePurgeProtection",
                                                            "tags",
                                                            "environments"};
const std::initializer_list<std::string_view> kIdentityKeys = {"name", "kind", "resourceGroup",
                                                               "location", "environments"};

// The name of an environment: what ${env} becomes in names of vaults,
// groups and identities, so letters, digits and '-'.
bool IsEnvironmentName(const std::string& name) {
  if (name.empty() || name.size() > 24 || name.front() == '-' || name.back() == '-') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

class Parser {
 public:
  Parser(const std::string& file, const ReadFileFn& read)
      : read_(read),
        f_(file, [this](const std::string& name, const std::string& where, const std::string& key) {
          return Expand(name, where, key);
        }) {}

  StatusOr<EnvFile> Parse(const YamlNode& root) {
    EnvFile out;
    envs_ = &out;
    RETURN_IF_ERROR(f_.Keys(root, "line " + std::to_string(root.line) + ": the document",
                            {"environments", "vaults", "identities", "applications", "access"}));
    const YamlNode* envs = root.Find("environments");
    if (envs == nullptr || !envs->IsSequence() || envs->items.empty()) {
      return f_.Error("line " + std::to_string(root.line) + ": the document",
                      "environments must list at least one environment");
    }
    // Names first, so that `environments: [..]` of any entry can be checked.
    no_env_ = true;
    RETURN_IF_ERROR(f_.List(*envs, "environments", [&](const YamlNode& n, const std::string& at) {
      return ParseEnvironmentHead(n, at, out);
    }));
    no_env_ = false;
    for (size_t i = 0; i < out.environments.size(); ++i) {
      Environment& env = out.environments[i];
      env_ = &env;
      const YamlNode& n = envs->items[i];
      std::string path = "environments[" + std::to_string(i) + "]";
      for (const char* list : {"vaults", "identities"}) {
        if (const YamlNode* entries = n.Find(list); entries != nullptr && entries->IsSequence()) {
          for (const auto& entry : entries->items) {
            if (entry.IsMap() && entry.Find("environments") != nullptr) {
              return f_.Error(FieldReader::At(entry, path + "." + list),
                              "an environment's own entry takes no environments");
            }
          }
        }
      }
      if (const YamlNode* vaults = n.Find("vaults")) {
        RETURN_IF_ERROR(f_.List(
            *vaults, path + ".vaults",
            [&](const YamlNode& v, const std::string& at) { return ParseVault(v, at, env); }));
      }
      if (const YamlNode* ids = n.Find("identities")) {
        RETURN_IF_ERROR(f_.List(
            *ids, path + ".identities",
            [&](const YamlNode& v, const std::string& at) { return ParseIdentity(v, at, env); }));
      }
    }
    // Entries written once, for the environments they name (all by default).
    struct Section {
      const char* key;
      Status (Parser::*parse)(const YamlNode&, const std::string&, Environment&);
    };
    for (const Section& section :
         {Section{"vaults", &Parser::ParseVault}, Section{"identities", &Parser::ParseIdentity},
          Section{"applications", &Parser::ParseApplication},
          Section{"access", &Parser::ParseAccess}}) {
      const YamlNode* list = root.Find(section.key);
      if (list == nullptr) {
        continue;
      }
      RETURN_IF_ERROR(f_.List(*list, section.key, [&](const YamlNode& n, const std::string& at) {
        ASSIGN_OR_RETURN(std::vector<std::string> names, AppliesTo(n, at, out));
        for (Environment& env : out.environments) {
          if (std::find(names.begin(), names.end(), env.name) == names.end()) {
            continue;
          }
          env_ = &env;
          RETURN_IF_ERROR((this->*section.parse)(n, at, env));
        }
        return OkStatus();
      }));
    }
    RETURN_IF_ERROR(CheckAcrossEnvironments(out));
    return out;
  }

 private:
  StatusOr<std::string> Expand(const std::string& name, const std::string& where,
                               const std::string& key) const {
    if (env_ != nullptr && !no_env_) {
      if (auto it = env_->variables.find(name); it != env_->variables.end()) {
        return it->second;
      }
    }
    std::string known = "${env}";
    if (env_ != nullptr && !no_env_) {
      for (const auto& [k, v] : env_->variables) {
        if (k != "env") {
          known += ", ${" + k + "}";
        }
      }
    }
    return f_.Error(where, key + ": unknown placeholder " + QuoteForError("${" + name + "}") +
                               (no_env_ ? " (no placeholders here)" : " (known: " + known + ")"));
  }

  // " [env]" after an entry, so that an error says which expansion failed.
  std::string In(const std::string& where) const { return where + " [" + env_->name + "]"; }

  Status Count() {
    if (++entries_ > kMaxEnvEntries) {
      return f_.Error("the document", "more than " + std::to_string(kMaxEnvEntries) +
                                          " entries once expanded for every environment");
    }
    return OkStatus();
  }

  Status ParseEnvironmentHead(const YamlNode& n, const std::string& path, EnvFile& out) {
    std::string where = FieldReader::At(n, path);
    Environment env;
    ASSIGN_OR_RETURN(env.name, f_.Name(n, where));
    if (!IsEnvironmentName(env.name)) {
      return f_.Error(where, "name " + QuoteForError(env.name) +
                                 " is not an environment name (1-24 letters, digits and '-')");
    }
    env.where = where + " (" + env.name + ")";
    RETURN_IF_ERROR(f_.Keys(n, env.where, {"name", "variables", "vaults", "identities"}));
    if (out.Find(env.name) != nullptr) {
      return f_.Error(env.where, "the environment is named twice");
    }
    if (out.environments.size() >= kMaxEnvironments) {
      return f_.Error(env.where, "at most " + std::to_string(kMaxEnvironments) + " environments");
    }
    env.variables["env"] = env.name;
    if (const YamlNode* vars = n.Find("variables")) {
      if (!vars->IsMap()) {
        return f_.Error(env.where, "variables must be a map of names to text");
      }
      for (const auto& m : vars->members) {
        bool ok = !m.key.empty() && m.key.size() <= 64 && m.key != "env";
        for (char c : m.key) {
          ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
        }
        if (!ok) {
          return f_.Error(env.where, "variables: " + QuoteForError(m.key) +
                                         " is not a variable name (letters, digits, _ and -; "
                                         "not 'env')");
        }
        ASSIGN_OR_RETURN(env.variables[m.key], f_.Text(m.value, env.where, "variables." + m.key));
      }
    }
    out.environments.push_back(std::move(env));
    return OkStatus();
  }

  // The environments an entry applies to: its `environments`, else all.
  StatusOr<std::vector<std::string>> AppliesTo(const YamlNode& n, const std::string& path,
                                               const EnvFile& file) {
    std::vector<std::string> names;
    const YamlNode* only = n.IsMap() ? n.Find("environments") : nullptr;
    if (only == nullptr) {
      for (const auto& e : file.environments) {
        names.push_back(e.name);
      }
      return names;
    }
    no_env_ = true;
    auto listed = f_.Strings(*only, FieldReader::At(n, path), "environments");
    no_env_ = false;
    if (!listed.ok()) {
      return listed.status();
    }
    for (const auto& name : *listed) {
      if (file.Find(name) == nullptr) {
        return f_.Error(FieldReader::At(n, path),
                        "environments: " + QuoteForError(name) + " is not an environment");
      }
    }
    return *listed;
  }

  const SeedVault* FindVault(const Environment& env, const std::string& name) const {
    for (const auto& v : env.vaults) {
      if (EqualsIgnoreCase(v.name, name)) {
        return &v;
      }
    }
    return nullptr;
  }

  bool IsIdentity(const Environment& env, const std::string& name) const {
    // Azure resource names ignore case.
    return std::any_of(env.identities.begin(), env.identities.end(),
                       [&](const EnvIdentity& id) { return EqualsIgnoreCase(id.name, name); });
  }

  Status ParseVault(const YamlNode& n, const std::string& path, Environment& env) {
    RETURN_IF_ERROR(Count());
    std::string where = In(FieldReader::At(n, path));
    SeedVault v;
    ASSIGN_OR_RETURN(v.name, f_.Name(n, where));
    if (Status valid = keyvault::ValidateVaultName(v.name); !valid.ok()) {
      return f_.Error(where, std::string(valid.message()));
    }
    v.where = where + " (" + v.name + ")";
    RETURN_IF_ERROR(f_.Keys(n, v.where, kVaultKeys));
    if (const SeedVault* other = FindVault(env, v.name)) {
      return f_.Error(v.where, "the vault is named twice (also at " + other->where + ")");
    }
    RETURN_IF_ERROR(f_.VaultSettings(n, v));
    env.vaults.push_back(std::move(v));
    return OkStatus();
  }

  Status ParseIdentity(const YamlNode& n, const std::string& path, Environment& env) {
    RETURN_IF_ERROR(Count());
    std::string where = In(FieldReader::At(n, path));
    EnvIdentity id;
    ASSIGN_OR_RETURN(id.name, f_.Name(n, where));
    RETURN_IF_ERROR(f_.IdentityName(where, id.name));
    id.where = where + " (" + id.name + ")";
    RETURN_IF_ERROR(f_.Keys(n, id.where, kIdentityKeys));
    if (IsIdentity(env, id.name)) {
      return f_.Error(id.where, "the identity is named twice in the environment");
    }
    if (const YamlNode* kind = n.Find("kind")) {
      ASSIGN_OR_RETURN(std::string k, f_.Text(*kind, id.where, "kind"));
      static const std::pair<const char*, EnvIdentityKind> kKinds[] = {
          {"userAssigned", EnvIdentityKind::kUserAssigned},
          {"servicePrincipal", EnvIdentityKind::kServicePrincipal},
          {"webapp", EnvIdentityKind::kWebApp},
          {"vm", EnvIdentityKind::kVm}};
      auto it = std::find_if(std::begin(kKinds), std::end(kKinds),
                             [&](const auto& p) { return k == p.first; });
      if (it == std::end(kKinds)) {
        return f_.Error(id.where, "kind " + QuoteForError(k) +
                                      " is not an identity kind (userAssigned, servicePrincipal, "
                                      "webapp, vm)");
      }
      id.kind = it->second;
    }
    if (const YamlNode* rg = n.Find("resourceGroup")) {
      if (id.kind == EnvIdentityKind::kServicePrincipal) {
        return f_.Error(id.where, "a service principal has no resourceGroup");
      }
      ASSIGN_OR_RETURN(id.resource_group, f_.Text(*rg, id.where, "resourceGroup"));
      RETURN_IF_ERROR(f_.ResourceGroup(id.where, id.resource_group));
    }
    if (const YamlNode* loc = n.Find("location")) {
      ASSIGN_OR_RETURN(id.location, f_.Text(*loc, id.where, "location"));
    }
    env.identities.push_back(std::move(id));
    return OkStatus();
  }

  Status Principal(const Environment& env, const std::string& where, const std::string& key,
                   const std::string& principal) const {
    if (IsIdentity(env, principal) || FieldReader::IsGuid(principal)) {
      return OkStatus();
    }
    return f_.Error(where, key + " " + QuoteForError(principal) + " is neither an identity of " +
                               "environment '" + env.name + "' nor an object id or app id");
  }

  StatusOr<std::string> VaultOf(const Environment& env, const YamlNode* node,
                                const std::string& fallback, const std::string& where) const {
    std::string name = fallback;
    if (node != nullptr) {
      ASSIGN_OR_RETURN(name, f_.Text(*node, where, "vault"));
    }
    if (name.empty()) {
      if (env.vaults.size() == 1) {
        return env.vaults.front().name;
      }
      return f_.Error(where, "vault is required (the environment has " +
                                 std::to_string(env.vaults.size()) + " vaults)");
    }
    if (FindVault(env, name) == nullptr) {
      return f_.Error(where, "vault " + QuoteForError(name) + " is not a vault of environment '" +
                                 env.name + "'");
    }
    return name;
  }

  StatusOr<int64_t> Duration(const YamlNode& n, const std::string& where,
                             const std::string& key) const {
    ASSIGN_OR_RETURN(std::string t, f_.Text(n, where, key));
    auto seconds = ParseDuration(t);
    if (!seconds || *seconds == 0) {
      return f_.Error(where, key + " must be a duration such as 90d, 12h or 2w");
    }
    return *seconds;
  }

  Status ParseSecret(const YamlNode& n, const std::string& path, const std::string& app_vault,
                     Environment& env, EnvApplication& app) {
    RETURN_IF_ERROR(Count());
    std::string where = In(FieldReader::At(n, path));
    EnvSecret s;
    ASSIGN_OR_RETURN(s.name, f_.Name(n, where));
    if (Status valid = keyvault::ValidateObjectName(s.name); !valid.ok()) {
      return f_.Error(where, std::string(valid.message()));
    }
    s.where = where + " (" + s.name + ")";
    RETURN_IF_ERROR(f_.Keys(
        n, s.where, {"name", "vault", "contentType", "shareable", "expiry", "environments"}));
    ASSIGN_OR_RETURN(s.vault, VaultOf(env, n.Find("vault"), app_vault, s.where));
    for (const auto& other : app.secrets) {
      if (EqualsIgnoreCase(other.name, s.name) && EqualsIgnoreCase(other.vault, s.vault)) {
        return f_.Error(s.where, "the secret is named twice (also at " + other.where + ")");
      }
    }
    if (const YamlNode* ct = n.Find("contentType")) {
      ASSIGN_OR_RETURN(s.content_type, f_.Text(*ct, s.where, "contentType"));
      if (s.content_type.size() > 255) {
        return f_.Error(s.where, "contentType is longer than 255 characters");
      }
    }
    if (const YamlNode* shareable = n.Find("shareable")) {
      ASSIGN_OR_RETURN(s.shareable, f_.Bool(*shareable, s.where, "shareable"));
    }
    if (const YamlNode* expiry = n.Find("expiry")) {
      RETURN_IF_ERROR(
          f_.Keys(*expiry, s.where + ".expiry", {"required", "maxAhead", "minRemaining"}));
      if (const YamlNode* required = expiry->Find("required")) {
        ASSIGN_OR_RETURN(s.expiry_required, f_.Bool(*required, s.where, "expiry.required"));
      }
      if (const YamlNode* ahead = expiry->Find("maxAhead")) {
        ASSIGN_OR_RETURN(s.max_ahead, Duration(*ahead, s.where, "expiry.maxAhead"));
      }
      if (const YamlNode* remaining = expiry->Find("minRemaining")) {
        ASSIGN_OR_RETURN(s.min_remaining, Duration(*remaining, s.where, "expiry.minRemaining"));
      }
      if (s.expiry_required && !s.max_ahead) {
        return f_.Error(s.where,
                        "expiry.required needs expiry.maxAhead (how far ahead a new value of "
                        "the secret expires)");
      }
      if (s.max_ahead && s.min_remaining && *s.min_remaining >= *s.max_ahead) {
        return f_.Error(s.where, "expiry.minRemaining must be shorter than expiry.maxAhead");
      }
    }
    // Two applications may need one secret, but it is one secret: what
    // they say of it must agree.
    for (const auto& other_app : env.applications) {
      for (const auto& other : other_app.secrets) {
        if (EqualsIgnoreCase(other.name, s.name) && EqualsIgnoreCase(other.vault, s.vault) &&
            (other.content_type != s.content_type || other.shareable != s.shareable ||
             other.expiry_required != s.expiry_required || other.max_ahead != s.max_ahead ||
             other.min_remaining != s.min_remaining)) {
          return f_.Error(s.where, "application '" + other_app.name +
                                       "' declares this secret differently (at " + other.where +
                                       "): contentType, shareable and expiry must agree");
        }
      }
    }
    app.secrets.push_back(std::move(s));
    return OkStatus();
  }

  // The objects a SecretProviderClass manifest reads.
  Status ParseManifest(const std::string& path, const std::string& where, EnvApplication& app) {
    auto text = read_(path);
    if (!text.ok()) {
      return f_.Error(where, "secretProviderClasses: " + QuoteForError(path) + ": " +
                                 std::string(text.status().message()));
    }
    auto classes = agent::ParseSecretProviderClasses(*text);
    if (!classes.ok()) {
      return f_.Error(where, "secretProviderClasses: " + QuoteForError(path) + ": " +
                                 std::string(classes.status().message()));
    }
    for (const auto& spc : *classes) {
      std::string at = where + ": " + path + " (" + spc.name + ")";
      if (spc.provider != "azure" && spc.provider != "coffer") {
        continue;  // another provider's class reads nothing of ours
      }
      auto param = [&](const char* key) {
        auto it = spc.parameters.find(key);
        return it == spc.parameters.end() ? std::string() : std::string(TrimWhitespace(it->second));
      };
      std::string vault = param("keyvaultName");
      if (vault.empty()) {
        return f_.Error(where, "secretProviderClasses: " + QuoteForError(path) + ": class '" +
                                   spc.name + "' has no keyvaultName");
      }
      auto objects = agent::ParseAzureObjects(param("objects"));
      if (!objects.ok()) {
        return f_.Error(where, "secretProviderClasses: " + QuoteForError(path) + ": class '" +
                                   spc.name + "': " + std::string(objects.status().message()));
      }
      std::string client_id = param("clientID");
      if (client_id.empty()) {
        client_id = param("userAssignedIdentityID");
      }
      for (const auto& o : *objects) {
        if (o.selector) {
          continue;  // a selector names no object to look for
        }
        RETURN_IF_ERROR(Count());
        app.reads.push_back(EnvReadObject{vault, std::string(o.TypeName()), o.name, o.version,
                                          client_id, at + " " + o.Id()});
      }
    }
    return OkStatus();
  }

  Status AddReference(const std::string& value, const std::string& where, EnvApplication& app) {
    auto ref = client::ParseKeyVaultReference(value);
    if (!ref.ok()) {
      return f_.Error(where, std::string(ref.status().message()));
    }
    if (!ref->has_value()) {
      return f_.Error(where, "is not a @Microsoft.KeyVault(...) reference");
    }
    const client::KeyVaultReference& r = **ref;
    std::string vault = r.vault_name;
    if (vault.empty()) {
      // https://<vault>.<suffix>[:port]
      std::string host = r.vault_url.substr(r.vault_url.find("://") + 3);
      vault = host.substr(0, host.find('.'));
    }
    RETURN_IF_ERROR(Count());
    app.reads.push_back(EnvReadObject{vault, "secret", r.secret_name, r.version, "", where});
    return OkStatus();
  }

  Status ParseApplication(const YamlNode& n, const std::string& path, Environment& env) {
    RETURN_IF_ERROR(Count());
    std::string where = In(FieldReader::At(n, path));
    EnvApplication app;
    ASSIGN_OR_RETURN(app.name, f_.Name(n, where));
    if (app.name.empty() || app.name.size() > 128) {
      return f_.Error(where, "name must be 1-128 characters");
    }
    app.where = where + " (" + app.name + ")";
    RETURN_IF_ERROR(f_.Keys(n, app.where,
                            {"name", "identity", "vault", "environments", "secrets",
                             "secretProviderClasses", "references", "referenceFiles"}));
    for (const auto& other : env.applications) {
      if (other.name == app.name) {
        return f_.Error(app.where, "the application is named twice");
      }
    }
    if (const YamlNode* identity = n.Find("identity")) {
      ASSIGN_OR_RETURN(app.identity, f_.Text(*identity, app.where, "identity"));
      RETURN_IF_ERROR(Principal(env, app.where, "identity", app.identity));
    }
    std::string vault;
    if (const YamlNode* v = n.Find("vault")) {
      ASSIGN_OR_RETURN(vault, VaultOf(env, v, "", app.where));
    }
    if (const YamlNode* secrets = n.Find("secrets")) {
      RETURN_IF_ERROR(
          f_.List(*secrets, path + ".secrets", [&](const YamlNode& s, const std::string& at) {
            ASSIGN_OR_RETURN(std::vector<std::string> names, AppliesTo(s, at, *envs_));
            if (std::find(names.begin(), names.end(), env.name) == names.end()) {
              return OkStatus();
            }
            return ParseSecret(s, at, vault, env, app);
          }));
    }
    if (const YamlNode* spcs = n.Find("secretProviderClasses")) {
      ASSIGN_OR_RETURN(auto paths, f_.Strings(*spcs, app.where, "secretProviderClasses"));
      for (const auto& p : paths) {
        RETURN_IF_ERROR(ParseManifest(p, app.where, app));
      }
    }
    if (const YamlNode* refs = n.Find("references")) {
      ASSIGN_OR_RETURN(auto values, f_.Strings(*refs, app.where, "references"));
      for (size_t i = 0; i < values.size(); ++i) {
        RETURN_IF_ERROR(
            AddReference(values[i], app.where + ".references[" + std::to_string(i) + "]", app));
      }
    }
    if (const YamlNode* files = n.Find("referenceFiles")) {
      ASSIGN_OR_RETURN(auto paths, f_.Strings(*files, app.where, "referenceFiles"));
      for (const auto& p : paths) {
        auto text = read_(p);
        if (!text.ok()) {
          return f_.Error(app.where, "referenceFiles: " + QuoteForError(p) + ": " +
                                         std::string(text.status().message()));
        }
        for (auto [key, value] : ParseEnvLines(*text)) {
          // A quoted value (KEY="@Microsoft.KeyVault(...)") as a shell reads it.
          if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
              value.back() == value.front()) {
            value = value.substr(1, value.size() - 2);
          }
          if (value.rfind("@Microsoft.KeyVault(", 0) == 0) {
            RETURN_IF_ERROR(AddReference(value, app.where + ": " + p + " " + key, app));
          }
        }
      }
    }
    env.applications.push_back(std::move(app));
    return OkStatus();
  }

  Status ParseAccess(const YamlNode& n, const std::string& path, Environment& env) {
    RETURN_IF_ERROR(Count());
    std::string where = In(FieldReader::At(n, path));
    RETURN_IF_ERROR(
        f_.Keys(n, where, {"vault", "principal", "role", "permissions", "environments"}));
    SeedAccess a;
    RETURN_IF_ERROR(f_.AccessTarget(n, where, a));
    const SeedVault* vault = FindVault(env, a.vault);
    if (vault == nullptr) {
      return f_.Error(where, "vault " + QuoteForError(a.vault) +
                                 " is not a vault of environment '" + env.name + "'");
    }
    a.vault = vault->name;
    RETURN_IF_ERROR(Principal(env, where, "principal", a.principal));
    // A vault that does not say is created with RBAC; an existing one is
    // checked by plan.
    RETURN_IF_ERROR(f_.AccessGrant(n, where, vault->rbac, a));
    env.access.push_back(std::move(a));
    return OkStatus();
  }

  // A vault or a named identity belongs to one environment.
  Status CheckAcrossEnvironments(const EnvFile& out) const {
    std::map<std::string, const Environment*> vaults;
    for (const auto& env : out.environments) {
      for (const auto& v : env.vaults) {
        auto [it, added] = vaults.emplace(AsciiLower(v.name), &env);
        if (!added) {
          return f_.Error(v.where, "vault '" + v.name + "' is also declared by environment '" +
                                       it->second->name +
                                       "' (each environment has vaults of its own)");
        }
      }
      if (env.vaults.empty()) {
        return f_.Error(env.where, "the environment declares no vault");
      }
    }
    std::map<std::string, const Environment*> identities;
    for (const auto& env : out.environments) {
      for (const auto& id : env.identities) {
        auto [it, added] = identities.emplace(id.name, &env);
        if (!added) {
          return f_.Error(id.where, "identity '" + id.name + "' is also declared by environment '" +
                                        it->second->name + "'");
        }
      }
    }
    return OkStatus();
  }

  const ReadFileFn& read_;
  FieldReader f_;
  const EnvFile* envs_ = nullptr;  // the file being parsed
  Environment* env_ = nullptr;     // the environment being expanded
  bool no_env_ = false;            // reading names of environments: no placeholders
  size_t entries_ = 0;
};

}  // namespace

StatusOr<EnvFile> ParseEnvFile(std::string_view text, const std::string& file,
                               const ReadFileFn& read) {
  ASSIGN_OR_RETURN(YamlNode root, ReadYamlDocument(text, file, kMaxEnvFileBytes, 200000));
  if (root.IsNull()) {
    return InvalidArgumentError(file + ": the file is empty (it must list environments)",
                                "BadParameter");
  }
  return Parser(file, read).Parse(root);
}

}  // namespace coffer::cli
