#include "cli/env_plan.h"

#include <algorithm>
#include <ctime>
#include <memory>
#include <set>

#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::cli {
namespace {

const char* WorkloadProvider(EnvIdentityKind kind) {
  return kind == EnvIdentityKind::kWebApp ? "Microsoft.Web/sites"
                                          : "Microsoft.Compute/virtualMachines";
}
const char* WorkloadApi(EnvIdentityKind kind) {
  return kind == EnvIdentityKind::kWebApp ? "2023-12-01" : "2024-07-01";
}
std::string WorkloadPath(const std::string& rg, const EnvIdentity& id) {
  return "/resourceGroups/" + rg + "/providers/" + WorkloadProvider(id.kind) + "/" + id.name;
}

std::optional<int64_t> TimeMember(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) {
    return std::nullopt;
  }
  return it->get<int64_t>();
}

bool Ok(const StatusOr<http::Response>& r, std::initializer_list<int> statuses) {
  return r.ok() && std::find(statuses.begin(), statuses.end(), r->status) != statuses.end();
}

}  // namespace

EnvValues::~EnvValues() {
  for (auto& [name, value] : values) {
    std::fill(value.begin(), value.end(), '\0');
  }
}

std::string Installation::Group(const std::string& rg) const {
  return rg.empty() ? s_.client().config().resource_group : rg;
}

Status Installation::LoadVaults() {
  if (loaded_) {
    return OkStatus();
  }
  const std::string authority = s_.client().config().authority;
  ASSIGN_OR_RETURN(
      vaults_,
      s_.All("vaults",
             s_.Arm("GET", s_.Subscription() + "/providers/Microsoft.KeyVault/vaults", kVaultApi),
             authority));
  ASSIGN_OR_RETURN(
      deleted_vaults_,
      s_.All("deleted vaults",
             s_.Arm("GET", s_.Subscription() + "/providers/Microsoft.KeyVault/deletedVaults",
                    kVaultApi),
             authority));
  loaded_ = true;
  return OkStatus();
}

void Installation::Forget(const std::string& vault) {
  loaded_ = false;
  vault_states_.erase(AsciiLower(vault));
  secrets_.erase(AsciiLower(vault));
}

StatusOr<VaultState> Installation::Vault(const std::string& name, const std::string& rg) {
  if (auto it = vault_states_.find(AsciiLower(name)); it != vault_states_.end()) {
    return it->second;
  }
  ASSIGN_OR_RETURN(VaultState st, ReadVault(name, rg));
  if (st.exists) {
    vault_states_[AsciiLower(name)] = st;  // one that does not exist depends on `rg`
  }
  return st;
}

StatusOr<VaultState> Installation::ReadVault(const std::string& name, const std::string& rg) {
  RETURN_IF_ERROR(LoadVaults());
  VaultState st;
  for (const auto& v : vaults_) {
    if (!EqualsIgnoreCase(StringMember(v, "name"), name)) {
      continue;
    }
    st.exists = true;
    st.id = StringMember(v, "id");
    st.resource_group = ResourceGroupOf(st.id);
    // The list leaves access policies out; the vault itself has them.
    auto r = s_.Arm("GET", st.id, kVaultApi);
    if (!Ok(r, {200})) {
      return Session::Failed("vault '" + name + "'", "reading the vault", r);
    }
    Json body = Body(r);
    Json props = body.value("properties", Json::object());
    st.rbac = props.value("enableRbacAuthorization", false);
    st.retention_days = props.value("softDeleteRetentionInDays", 90);
    st.purge_protection = props.value("enablePurgeProtection", false);
    st.tags = body.value("tags", Json::object());
    st.access_policies = props.value("accessPolicies", Json::array());
    return st;
  }
  st.resource_group = Group(rg);
  st.id = s_.Subscription() + VaultPath(st.resource_group, name);
  return st;
}

StatusOr<bool> Installation::DeletedVault(const std::string& name) {
  RETURN_IF_ERROR(LoadVaults());
  return std::any_of(deleted_vaults_.begin(), deleted_vaults_.end(), [&](const Json& d) {
    return EqualsIgnoreCase(StringMember(d, "name"), name);
  });
}

StatusOr<const std::map<std::string, SecretState>*> Installation::Secrets(
    const std::string& vault) {
  auto cached = secrets_.find(AsciiLower(vault));
  if (cached != secrets_.end()) {
    return &cached->second;
  }
  std::map<std::string, SecretState> out;
  for (const char* path : {"/deletedsecrets", "/secrets"}) {
    ASSIGN_OR_RETURN(Json items, s_.All("vault '" + vault + "'", s_.Vault("GET", vault, path),
                                        s_.VaultResource(vault)));
    for (const auto& item : items) {
      SecretState st;
      std::string id = StringMember(item, "id");
      st.name = id.substr(id.rfind('/') + 1);
      st.deleted = std::string(path) == "/deletedsecrets";
      Json attributes = item.value("attributes", Json::object());
      st.enabled = attributes.value("enabled", true);
      st.nbf = TimeMember(attributes, "nbf");
      st.exp = TimeMember(attributes, "exp");
      st.content_type = StringMember(item, "contentType");
      st.managed = item.value("managed", false);
      out[AsciiLower(st.name)] = st;  // live secrets come second and win
    }
  }
  return &(secrets_[AsciiLower(vault)] = std::move(out));
}

StatusOr<std::optional<std::string>> Installation::Identity(const EnvIdentity& id,
                                                            bool* exists_without_principal) {
  auto it = identities_.find(AsciiLower(id.name));
  if (it == identities_.end()) {
    bool bare = false;
    ASSIGN_OR_RETURN(auto found, ReadIdentity(id, &bare));
    it = identities_.emplace(AsciiLower(id.name), KnownIdentity{found, bare}).first;
  }
  if (exists_without_principal != nullptr) {
    *exists_without_principal = it->second.bare;
  }
  return it->second.object_id;
}

StatusOr<std::optional<std::string>> Installation::ReadIdentity(const EnvIdentity& id,
                                                                bool* exists_without_principal) {
  std::string rg = Group(id.resource_group);
  switch (id.kind) {
    case EnvIdentityKind::kServicePrincipal: {
      ASSIGN_OR_RETURN(Json principals, s_.ServicePrincipals());
      for (const auto& sp : principals) {
        if (StringMember(sp, "displayName") == id.name) {
          return std::optional<std::string>(StringMember(sp, "id"));
        }
      }
      return std::optional<std::string>();
    }
    case EnvIdentityKind::kUserAssigned: {
      auto r = s_.Arm("GET", s_.Subscription() + IdentityPath(rg, id.name), kIdentityApi);
      if (Ok(r, {200})) {
        return std::optional<std::string>(
            StringMember(Body(r).value("properties", Json::object()), "principalId"));
      }
      if (Ok(r, {404})) {
        return std::optional<std::string>();
      }
      return Session::Failed(id.where, "reading the identity", r);
    }
    case EnvIdentityKind::kWebApp:
    case EnvIdentityKind::kVm: {
      auto r = s_.Arm("GET", s_.Subscription() + WorkloadPath(rg, id), WorkloadApi(id.kind));
      if (Ok(r, {200})) {
        std::string principal =
            StringMember(Body(r).value("identity", Json::object()), "principalId");
        if (principal.empty()) {
          if (exists_without_principal != nullptr) {
            *exists_without_principal = true;
          }
          return std::optional<std::string>();
        }
        return std::optional<std::string>(principal);
      }
      if (Ok(r, {404})) {
        return std::optional<std::string>();
      }
      return Session::Failed(id.where, "reading the workload", r);
    }
  }
  return std::optional<std::string>();
}

StatusOr<std::optional<std::string>> Installation::Principal(const Environment& env,
                                                             const std::string& who,
                                                             const std::string& where) {
  for (const auto& id : env.identities) {
    if (EqualsIgnoreCase(id.name, who)) {
      return Identity(id);
    }
  }
  std::string object_id = s_.ObjectIdOf(who);
  if (!DisplayName(object_id).empty()) {
    return std::optional<std::string>(object_id);
  }
  return Status(StatusCode::kNotFound,
                where + ": principal '" + who +
                    "' is neither an identity of the environment nor a principal of the "
                    "directory",
                "PrincipalNotFound");
}

std::string Installation::DisplayName(const std::string& object_id) {
  if (auto it = names_.find(AsciiLower(object_id)); it != names_.end()) {
    return it->second;
  }
  auto r = s_.Graph("POST", "/v1.0/directoryObjects/getByIds",
                    ToJson(Json{{"ids", Json::array({object_id})}}));
  std::string name;
  if (Ok(r, {200})) {
    for (const auto& o : Body(r).value("value", Json::array())) {
      name = StringMember(o, "displayName");
      if (name.empty()) {
        name = StringMember(o, "id");
      }
    }
  }
  names_[AsciiLower(object_id)] = name;
  return name;
}

namespace {

// One environment's planner: reads, then steps whose closures run against
// the same installation (so that a grant finds the identity made before
// it).
class Planner {
 public:
  Planner(Installation& inst, const Environment& env, const EnvValues& values)
      : inst_(inst), s_(inst.session()), env_(env), values_(values) {
    plan_.environment = env.name;
  }

  StatusOr<EnvPlan> Run() {
    RETURN_IF_ERROR(PlanIdentities());
    RETURN_IF_ERROR(PlanVaults());
    RETURN_IF_ERROR(PlanSecrets());
    RETURN_IF_ERROR(PlanAccess());
    // Last: purge protection cannot be taken back.
    for (auto& step : purge_protection_) {
      plan_.steps.push_back(std::move(step));
    }
    return std::move(plan_);
  }

 private:
  void Step(std::string line, std::function<Status()> run) {
    plan_.steps.push_back(EnvStep{std::move(line), "", std::move(run)});
  }

  Status PlanIdentities() {
    for (const EnvIdentity& id : env_.identities) {
      bool bare = false;
      ASSIGN_OR_RETURN(auto principal, inst_.Identity(id, &bare));
      if (principal) {
        continue;
      }
      std::string rg = inst_.Group(id.resource_group);
      if (id.kind != EnvIdentityKind::kServicePrincipal && rg.empty()) {
        return InvalidArgumentError(
            id.where + ": resourceGroup is required (COFFER_RESOURCE_GROUP is not set)",
            "BadParameter");
      }
      switch (id.kind) {
        case EnvIdentityKind::kServicePrincipal:
          Step("+ service principal " + id.name, [this, id]() -> Status {
            auto r =
                s_.Graph("POST", "/v1.0/servicePrincipals", ToJson(Json{{"displayName", id.name}}));
            if (!Ok(r, {200, 201})) {
              return Session::Failed(id.where, "creating the service principal", r);
            }
            s_.Forget();
            inst_.Remember(id.name, StringMember(Body(r), "id"));
            return OkStatus();
          });
          break;
        case EnvIdentityKind::kUserAssigned:
          Step("+ identity " + id.name + " (user-assigned, group " + rg + ")",
               [this, id, rg]() -> Status {
                 auto r = s_.Arm("PUT", s_.Subscription() + IdentityPath(rg, id.name), kIdentityApi,
                                 ToJson(Json{{"location", id.location}}));
                 if (!Ok(r, {200, 201})) {
                   return Session::Failed(id.where, "creating the identity", r);
                 }
                 inst_.Remember(id.name, StringMember(Body(r).value("properties", Json::object()),
                                                      "principalId"));
                 return OkStatus();
               });
          break;
        case EnvIdentityKind::kWebApp:
        case EnvIdentityKind::kVm: {
          const char* noun = id.kind == EnvIdentityKind::kWebApp ? "web app" : "virtual machine";
          Step(std::string(bare ? "~ " : "+ ") + noun + " " + id.name +
                   (bare ? ": assign a system-assigned identity" : " (system-assigned identity") +
                   (bare ? "" : ", group " + rg + ")"),
               [this, id, rg, bare]() -> Status {
                 Json identity = {{"type", "SystemAssigned"}};
                 std::string path = s_.Subscription() + WorkloadPath(rg, id);
                 auto r =
                     bare ? s_.Arm("PATCH", path, WorkloadApi(id.kind),
                                   ToJson(Json{{"identity", identity}}))
                          : s_.Arm("PUT", path, WorkloadApi(id.kind),
                                   ToJson(Json{{"location", id.location}, {"identity", identity}}));
                 if (!Ok(r, {200, 201})) {
                   return Session::Failed(id.where, "making the workload's identity", r);
                 }
                 inst_.Remember(id.name, StringMember(Body(r).value("identity", Json::object()),
                                                      "principalId"));
                 return OkStatus();
               });
          break;
        }
      }
    }
    return OkStatus();
  }

  Status PlanVaults() {
    for (const SeedVault& v : env_.vaults) {
      ASSIGN_OR_RETURN(VaultState st, inst_.Vault(v.name, v.resource_group));
      if (!st.exists) {
        st.rbac = v.rbac.value_or(true);
      }
      states_[AsciiLower(v.name)] = st;
      if (!st.exists) {
        ASSIGN_OR_RETURN(bool deleted, inst_.DeletedVault(v.name));
        if (deleted) {
          plan_.conflicts.push_back(v.where + ": a deleted vault '" + v.name +
                                    "' waits for its purge; recover it (coffer keyvault recover) "
                                    "or purge it first");
          continue;
        }
        if (st.resource_group.empty()) {
          return InvalidArgumentError(
              v.where + ": resourceGroup is required (COFFER_RESOURCE_GROUP is not set)",
              "BadParameter");
        }
        bool rbac = st.rbac;
        Step("+ vault " + v.name + " (group " + st.resource_group + ", " +
                 (rbac ? "Azure RBAC" : "access policies") + ", retention " +
                 std::to_string(v.retention_days.value_or(90)) + " days)",
             [this, v, st, rbac]() { return CreateVault(v, st, rbac); });
        if (v.purge_protection.value_or(false)) {
          purge_protection_.push_back(
              EnvStep{"+ vault " + v.name + ": enable purge protection", "",
                      [this, v, st]() { return EnablePurgeProtection(v, st); }});
        }
        continue;
      }
      if (!v.resource_group.empty() && !EqualsIgnoreCase(v.resource_group, st.resource_group)) {
        plan_.conflicts.push_back(v.where + ": the vault exists in resource group '" +
                                  st.resource_group + "', not '" + v.resource_group + "'");
      }
      if (v.retention_days && *v.retention_days != st.retention_days) {
        plan_.conflicts.push_back(v.where + ": softDeleteRetentionInDays is " +
                                  std::to_string(st.retention_days) +
                                  " and cannot change once a vault exists");
      }
      if (v.purge_protection == false && st.purge_protection) {
        plan_.conflicts.push_back(v.where + ": purge protection is on and cannot be turned off");
      }
      if (v.purge_protection == true && !st.purge_protection) {
        purge_protection_.push_back(
            EnvStep{"~ vault " + v.name + ": enable purge protection", "",
                    [this, v, st]() { return EnablePurgeProtection(v, st); }});
      }
      if (v.rbac && *v.rbac != st.rbac) {
        Json patch = {{"properties", {{"enableRbacAuthorization", *v.rbac}}}};
        Step("~ vault " + v.name + ": enableRbacAuthorization " + (st.rbac ? "true" : "false") +
                 " -> " + (*v.rbac ? "true" : "false"),
             [this, v, st, patch]() { return Patch(v, st, patch, "changing the model"); });
        states_[AsciiLower(v.name)].rbac = *v.rbac;
        states_[AsciiLower(v.name)].access_policies = Json::array();
      }
      if (!v.tags.empty() && v.tags != st.tags) {
        Step("~ vault " + v.name + ": tags " + ToJson(st.tags) + " -> " + ToJson(v.tags),
             [this, v, st]() {
               return Patch(v, st, Json{{"tags", v.tags}}, "setting tags");
             });
      }
    }
    return OkStatus();
  }

  Status CreateVault(const SeedVault& v, const VaultState& st, bool rbac) {
    // An access-policy vault gives its creator every permission (and
    // coffer env keeps that entry; docs/environments.md).
    ASSIGN_OR_RETURN(Json body, s_.NewVaultBody(v, rbac));
    auto r = s_.Arm("PUT", st.id, kVaultApi, ToJson(body));
    if (!Ok(r, {200, 201})) {
      return Session::Failed(v.where, "creating the vault", r);
    }
    inst_.Forget(v.name);
    return OkStatus();
  }

  Status Patch(const SeedVault& v, const VaultState& st, const Json& body, const char* what) {
    auto r = s_.Arm("PATCH", st.id, kVaultApi, ToJson(body));
    inst_.Forget(v.name);
    return Ok(r, {200}) ? OkStatus() : Session::Failed(v.where, what, r);
  }

  Status EnablePurgeProtection(const SeedVault& v, const VaultState& st) {
    return Patch(v, st, Json{{"properties", {{"enablePurgeProtection", true}}}},
                 "turning on purge protection");
  }

  // The value given for `vault`/`name`, by "vault/name" or by "name".
  const std::string* ValueFor(const std::string& vault, const std::string& name) const {
    for (const std::string& key : {AsciiLower(vault + "/" + name), AsciiLower(name)}) {
      if (auto it = values_.values.find(key); it != values_.values.end()) {
        return &it->second;
      }
    }
    return nullptr;
  }

  Status PlanSecrets() {
    std::set<std::string> seen;
    for (const EnvApplication& app : env_.applications) {
      for (const EnvSecret& secret : app.secrets) {
        std::string key = AsciiLower(secret.vault + "/" + secret.name);
        if (!seen.insert(key).second) {
          continue;
        }
        const VaultState& st = states_[AsciiLower(secret.vault)];
        const SecretState* found = nullptr;
        if (st.exists) {
          ASSIGN_OR_RETURN(auto secrets, inst_.Secrets(secret.vault));
          if (auto it = secrets->find(AsciiLower(secret.name)); it != secrets->end()) {
            found = &it->second;
          }
        }
        std::string target = secret.vault + "/" + secret.name;
        if (found != nullptr && !found->deleted) {
          continue;
        }
        if (found != nullptr && found->deleted) {
          Step("~ secret " + target + ": recover the deleted secret", [this, secret]() -> Status {
            auto r = s_.Vault("POST", secret.vault, "/deletedsecrets/" + secret.name + "/recover");
            return Ok(r, {200}) ? OkStatus()
                                : Session::Failed(secret.where, "recovering the secret", r);
          });
          continue;
        }
        const std::string* value = ValueFor(secret.vault, secret.name);
        if (value == nullptr) {
          plan_.steps.push_back(EnvStep{"+ secret " + target + ": needs a value (apply --set " +
                                            env_.name + ":" + secret.name + "=FILE)",
                                        target, nullptr});
          continue;
        }
        Step("+ secret " + target + " (value from --set)",
             [this, secret, value]() { return SetValue(secret, *value); });
      }
    }
    return OkStatus();
  }

  Status SetValue(const EnvSecret& secret, const std::string& value) {
    Json attributes = {{"enabled", true}};
    if (secret.max_ahead) {
      attributes["exp"] = static_cast<int64_t>(std::time(nullptr)) + *secret.max_ahead;
    }
    Json body = {{"value", value}, {"attributes", attributes}};
    if (!secret.content_type.empty()) {
      body["contentType"] = secret.content_type;
    }
    std::string text = ToJson(body);
    auto r = s_.Vault("PUT", secret.vault, "/secrets/" + secret.name, text);
    // SECURITY: the request held the value.
    body["value"] = "";
    std::fill(text.begin(), text.end(), '\0');
    return Ok(r, {200}) ? OkStatus() : Session::Failed(secret.where, "setting the secret", r);
  }

  // Who an access entry names: its object id now (lower case; "" for an
  // identity still to be made), and a function that finds it when the step
  // runs.
  struct Grantee {
    std::string now;
    std::function<StatusOr<std::string>()> resolve;
  };
  StatusOr<Grantee> Resolve(const std::string& who, const std::string& where) {
    ASSIGN_OR_RETURN(auto id, inst_.Principal(env_, who, where));
    if (id) {
      return Grantee{AsciiLower(*id), [id]() -> StatusOr<std::string> { return *id; }};
    }
    return Grantee{"", [this, who, where]() -> StatusOr<std::string> {
                     ASSIGN_OR_RETURN(auto later, inst_.Principal(env_, who, where));
                     if (!later) {
                       return NotFoundError(where + ": identity '" + who + "' was not made");
                     }
                     return *later;
                   }};
  }

  std::string Who(const std::string& object_id) {
    std::string name = inst_.DisplayName(object_id);
    return name.empty() ? object_id : name + " (" + object_id + ")";
  }

  Status PlanAccess() {
    for (const SeedVault& v : env_.vaults) {
      const VaultState& st = states_[AsciiLower(v.name)];
      std::vector<const SeedAccess*> entries;
      for (const SeedAccess& a : env_.access) {
        if (EqualsIgnoreCase(a.vault, v.name)) {
          entries.push_back(&a);
        }
      }
      bool conflicting = false;
      for (const SeedAccess* a : entries) {
        if (!a->role.empty() != st.rbac) {
          plan_.conflicts.push_back(a->where + ": vault '" + v.name + "' uses " +
                                    (st.rbac ? "Azure RBAC: give a role, not permissions"
                                             : "access policies: give permissions, not a role"));
          conflicting = true;
        }
      }
      if (conflicting) {
        continue;
      }
      if (st.rbac) {
        RETURN_IF_ERROR(PlanRoleAssignments(v, st, entries));
      } else {
        RETURN_IF_ERROR(PlanAccessPolicies(v, st, entries));
      }
    }
    return OkStatus();
  }

  Status PlanRoleAssignments(const SeedVault& v, const VaultState& st,
                             const std::vector<const SeedAccess*>& entries) {
    // (principal object id, role definition id) of the assignments at the
    // vault's own scope.
    std::vector<std::pair<std::string, std::pair<std::string, std::string>>> existing;
    if (st.exists) {
      auto listed = s_.Arm("GET", st.id + "/providers/Microsoft.Authorization/roleAssignments",
                           kAuthorizationApi, "", "$filter=atScope()");
      ASSIGN_OR_RETURN(Json all, s_.All(v.where, listed, s_.client().config().authority));
      for (const auto& a : all) {
        Json p = a.value("properties", Json::object());
        if (!EqualsIgnoreCase(StringMember(p, "scope"), st.id)) {
          continue;
        }
        existing.push_back({StringMember(a, "id"),
                            {AsciiLower(StringMember(p, "principalId")),
                             AsciiLower(StringMember(p, "roleDefinitionId"))}});
      }
    }
    std::set<std::pair<std::string, std::string>> wanted;
    for (const SeedAccess* a : entries) {
      ASSIGN_OR_RETURN(std::string role, RoleId(a->where, a->role));
      ASSIGN_OR_RETURN(Grantee grantee, Resolve(a->principal, a->where));
      const std::string& principal = grantee.now;
      if (!principal.empty()) {
        if (!wanted.insert({principal, AsciiLower(role)}).second) {
          continue;
        }
        bool has = std::any_of(existing.begin(), existing.end(), [&](const auto& e) {
          return e.second.first == principal && e.second.second == AsciiLower(role);
        });
        if (has) {
          continue;
        }
      }
      Step("+ role assignment '" + a->role + "' to " + a->principal + " on vault " + v.name,
           [this, a, st, role, resolve = grantee.resolve]() -> Status {
             ASSIGN_OR_RETURN(std::string object_id, resolve());
             std::string path = st.id + "/providers/Microsoft.Authorization/roleAssignments/" +
                                crypto::RandomUuid();
             auto r =
                 s_.Arm("PUT", path, kAuthorizationApi,
                        ToJson(Json{{"properties",
                                     {{"roleDefinitionId", role}, {"principalId", object_id}}}}));
             if (Ok(r, {409}) && client::ErrorFromResponse(*r).reason() == "RoleAssignmentExists") {
               return OkStatus();
             }
             return Ok(r, {200, 201}) ? OkStatus()
                                      : Session::Failed(a->where, "assigning the role", r);
           });
    }
    std::string caller;
    if (!existing.empty()) {
      ASSIGN_OR_RETURN(caller, s_.Caller());
    }
    for (const auto& [id, key] : existing) {
      // The caller's own grants are how coffer env works in the vault.
      if (wanted.count(key) || EqualsIgnoreCase(key.first, caller)) {
        continue;
      }
      Step("- role assignment '" + RoleName(key.second) + "' of " + Who(key.first) + " on vault " +
               v.name + " (not in the file)",
           [this, id = id, where = v.where]() -> Status {
             auto r = s_.Arm("DELETE", id, kAuthorizationApi);
             return Ok(r, {200, 204}) ? OkStatus()
                                      : Session::Failed(where, "removing a role assignment", r);
           });
    }
    return OkStatus();
  }

  StatusOr<std::string> RoleId(const std::string& where, const std::string& role) {
    if (auto it = roles_.find(role); it != roles_.end()) {
      return it->second;
    }
    ASSIGN_OR_RETURN(std::string id, s_.RoleDefinitionId(where, role));
    return roles_[role] = id;
  }

  std::string RoleName(const std::string& definition_id) {
    auto r = s_.Arm("GET", definition_id, kAuthorizationApi);
    std::string name =
        Ok(r, {200}) ? StringMember(Body(r).value("properties", Json::object()), "roleName") : "";
    return name.empty() ? definition_id.substr(definition_id.rfind('/') + 1) : name;
  }

  static Json SortedPermissions(const Json& permissions) {
    Json out = Json::object();
    for (const char* type : {"secrets", "keys", "certificates"}) {
      std::set<std::string> names;
      for (const auto& p : permissions.value(type, Json::array())) {
        if (p.is_string()) {
          names.insert(AsciiLower(p.get<std::string>()));
        }
      }
      if (!names.empty()) {
        out[type] = Json(std::vector<std::string>(names.begin(), names.end()));
      }
    }
    return out;
  }

  Status PlanAccessPolicies(const SeedVault& v, const VaultState& st,
                            const std::vector<const SeedAccess*>& entries) {
    // The wanted permissions of each principal, merged.
    std::map<std::string, Json> wanted;  // principal as written -> permissions
    std::map<std::string, std::string> where;
    for (const SeedAccess* a : entries) {
      Json& p = wanted[a->principal];
      if (p.is_null()) {
        p = Json::object();
      }
      for (const auto& [type, names] : a->permissions) {
        for (const auto& n : names) {
          p[type].push_back(n);
        }
      }
      where[a->principal] = a->where;
    }
    std::string caller;
    if (st.exists) {
      ASSIGN_OR_RETURN(caller, s_.Caller());
    }
    std::set<std::string> declared;
    for (const auto& [who, permissions] : wanted) {
      Json want = SortedPermissions(permissions);
      ASSIGN_OR_RETURN(Grantee grantee, Resolve(who, where[who]));
      const std::string& principal = grantee.now;
      Json have;
      for (const auto& p : st.access_policies) {
        if (!principal.empty() && EqualsIgnoreCase(StringMember(p, "objectId"), principal)) {
          have = SortedPermissions(p.value("permissions", Json::object()));
        }
      }
      if (!principal.empty()) {
        declared.insert(principal);
      }
      if (have == want) {
        continue;
      }
      std::string line = (have.is_null() ? "+ access policy for " : "~ access policy for ") + who +
                         " on vault " + v.name + ": " + ToJson(want);
      if (!have.is_null()) {
        line += " (now " + ToJson(have) + ")";
      }
      Step(line, [this, st, want, resolve = grantee.resolve, w = where[who]]() -> Status {
        ASSIGN_OR_RETURN(std::string object_id, resolve());
        // Every list, empty ones too: `replace` keeps a list it is not given.
        Json lists = want;
        for (const char* type : {"secrets", "keys", "certificates"}) {
          if (!lists.contains(type)) {
            lists[type] = Json::array();
          }
        }
        Json entry = {{"tenantId", s_.Tenant()}, {"objectId", object_id}, {"permissions", lists}};
        auto r = s_.Arm("PUT", st.id + "/accessPolicies/replace", kVaultApi,
                        ToJson(Json{{"properties", {{"accessPolicies", Json::array({entry})}}}}));
        return Ok(r, {200, 201}) ? OkStatus() : Session::Failed(w, "setting the access policy", r);
      });
    }
    for (const auto& p : st.access_policies) {
      std::string oid = AsciiLower(StringMember(p, "objectId"));
      if (declared.count(oid) || EqualsIgnoreCase(oid, caller)) {
        continue;
      }
      Step("- access policy of " + Who(oid) + " on vault " + v.name + " (not in the file)",
           [this, st, p, w = v.where]() -> Status {
             auto r = s_.Arm("PUT", st.id + "/accessPolicies/remove", kVaultApi,
                             ToJson(Json{{"properties", {{"accessPolicies", Json::array({p})}}}}));
             return Ok(r, {200, 201}) ? OkStatus()
                                      : Session::Failed(w, "removing an access policy", r);
           });
    }
    return OkStatus();
  }

  Installation& inst_;
  Session& s_;
  const Environment& env_;
  const EnvValues& values_;
  EnvPlan plan_;
  std::map<std::string, VaultState> states_;  // by lower-case vault name
  std::map<std::string, std::string> roles_;
  std::vector<EnvStep> purge_protection_;
};

}  // namespace

StatusOr<EnvPlan> PlanEnvironment(Installation& inst, const Environment& env,
                                  const EnvValues& values) {
  // The planner's steps call back into it: it lives as long as the plan's
  // closures may run, i.e. with the plan.
  auto planner = std::make_shared<Planner>(inst, env, values);
  ASSIGN_OR_RETURN(EnvPlan plan, planner->Run());
  for (EnvStep& step : plan.steps) {
    if (step.run) {
      step.run = [planner, run = std::move(step.run)]() { return run(); };
    }
  }
  return plan;
}

Json ApplyPlan(const EnvPlan& plan) {
  Json out = {
      {"environment", plan.environment}, {"done", Json::array()}, {"needsValue", Json::array()}};
  if (!plan.conflicts.empty()) {
    out["conflicts"] = plan.conflicts;
    out["failed"] = "nothing applied: the environment has conflicts apply cannot repair";
    return out;
  }
  for (const EnvStep& step : plan.steps) {
    if (!step.run) {
      out["needsValue"].push_back(step.needs_value);
      continue;
    }
    Status done = step.run();
    if (!done.ok()) {
      out["failed"] = step.line + ": " + std::string(done.message());
      return out;
    }
    out["done"].push_back(step.line);
  }
  return out;
}

}  // namespace coffer::cli
