#include "cli/seed_apply.h"

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <set>

#include "cli/api_session.h"
#include "cli/vault_objects.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "http/url.h"

namespace coffer::cli {
namespace {

class Importer {
 public:
  Importer(client::ApiClient& c, const Seed& seed) : s_(c), seed_(seed) {}

  StatusOr<Json> Run() {
    RETURN_IF_ERROR(Check());
    Status applied = Apply();
    if (applied.ok()) {
      return summary_;
    }
    // Newest first: access before the secrets and vaults it names.
    std::string left;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      Status undone = (*it)();
      if (!undone.ok()) {
        left += std::string(left.empty() ? "" : "; ") + std::string(undone.message());
      }
    }
    if (!left.empty()) {
      return Status(
          applied.code(),
          std::string(applied.message()) + " (and undoing the import failed: " + left + ")",
          std::string(applied.reason()));
    }
    return Status(applied.code(),
                  std::string(applied.message()) + " (nothing of the import was kept)",
                  std::string(applied.reason()));
  }

 private:
  struct VaultState {
    bool exists = false;
    std::string resource_group;
    std::string id;
    bool rbac = true;
  };

  std::string DefaultGroup(const std::string& rg) {
    return rg.empty() ? s_.client().config().resource_group : rg;
  }

  Status Check() {
    if (s_.client().config().subscription_id.empty()) {
      return FailedPreconditionError(
          "COFFER_SUBSCRIPTION_ID is not set (source the server's "
          "dev.env)",
          "BadParameter");
    }
    auto listed =
        s_.Arm("GET", s_.Subscription() + "/providers/Microsoft.KeyVault/vaults", kVaultApi);
    ASSIGN_OR_RETURN(Json vaults, s_.All("vaults", listed, s_.client().config().authority));
    auto deleted_list =
        s_.Arm("GET", s_.Subscription() + "/providers/Microsoft.KeyVault/deletedVaults", kVaultApi);
    ASSIGN_OR_RETURN(Json deleted,
                     s_.All("deleted vaults", deleted_list, s_.client().config().authority));
    for (const auto& v : vaults) {
      VaultState st;
      st.exists = true;
      st.id = StringMember(v, "id");
      st.resource_group = ResourceGroupOf(st.id);
      Json props = v.value("properties", Json::object());
      st.rbac = props.value("enableRbacAuthorization", false);
      existing_[AsciiLower(StringMember(v, "name"))] = {st, props};
    }
    for (const SeedVault& v : seed_.vaults) {
      auto it = existing_.find(AsciiLower(v.name));
      if (it == existing_.end()) {
        for (const auto& d : deleted) {
          if (EqualsIgnoreCase(StringMember(d, "name"), v.name)) {
            return FailedPreconditionError(v.where +
                                               ": a deleted vault of this name exists; "
                                               "recover or purge it first",
                                           "Conflict");
          }
        }
        std::string rg = DefaultGroup(v.resource_group);
        if (rg.empty()) {
          return InvalidArgumentError(
              v.where + ": resourceGroup is required (COFFER_RESOURCE_GROUP is not set)",
              "BadParameter");
        }
        VaultState st;
        st.resource_group = rg;
        st.id = s_.Subscription() + VaultPath(rg, v.name);
        st.rbac = v.rbac.value_or(true);
        states_[AsciiLower(v.name)] = st;
        for (const SeedSecret& secret : v.secrets) {
          RETURN_IF_ERROR(CheckValues(secret));
        }
        continue;
      }
      const auto& [st, props] = it->second;
      if (!v.resource_group.empty() && !EqualsIgnoreCase(v.resource_group, st.resource_group)) {
        return FailedPreconditionError(v.where + ": the vault exists in resource group '" +
                                           st.resource_group + "', not '" + v.resource_group + "'",
                                       "Conflict");
      }
      if (v.rbac && *v.rbac != st.rbac) {
        return FailedPreconditionError(v.where +
                                           ": the vault exists with "
                                           "enableRbacAuthorization " +
                                           (st.rbac ? "true" : "false"),
                                       "Conflict");
      }
      if (v.retention_days && *v.retention_days != props.value("softDeleteRetentionInDays", 90)) {
        return FailedPreconditionError(
            v.where + ": the vault exists with softDeleteRetentionInDays " +
                std::to_string(props.value("softDeleteRetentionInDays", 90)),
            "Conflict");
      }
      if (v.purge_protection &&
          *v.purge_protection != props.value("enablePurgeProtection", false)) {
        return FailedPreconditionError(
            v.where + ": the vault exists with enablePurgeProtection " +
                (props.value("enablePurgeProtection", false) ? "true" : "false"),
            "Conflict");
      }
      states_[AsciiLower(v.name)] = st;
      for (const SeedSecret& secret : v.secrets) {
        RETURN_IF_ERROR(CheckValues(secret));
        for (const char* path : {"/secrets/", "/deletedsecrets/"}) {
          auto r = s_.Vault("GET", v.name, path + secret.name);
          if (r.ok() && r->status == 404) {
            continue;
          }
          if (r.ok() && r->status == 200) {
            return Status(StatusCode::kAlreadyExists,
                          secret.where +
                              (std::string(path) == "/secrets/"
                                   ? ": the secret exists already in vault '"
                                   : ": a deleted secret of this name is in vault '") +
                              v.name + "'",
                          "Conflict");
          }
          return Session::Failed(secret.where, "checking the vault", r);
        }
      }
    }
    for (const SeedIdentity& id : seed_.identities) {
      std::string rg = DefaultGroup(id.resource_group);
      if (rg.empty()) {
        return InvalidArgumentError(
            id.where + ": resourceGroup is required (COFFER_RESOURCE_GROUP is not set)",
            "BadParameter");
      }
      auto r = s_.Arm("GET", s_.Subscription() + IdentityPath(rg, id.name), kIdentityApi);
      if (r.ok() && r->status == 200) {
        principals_[id.name] =
            StringMember(Body(r).value("properties", Json::object()), "principalId");
        continue;
      }
      if (!r.ok() || r->status != 404) {
        return Session::Failed(id.where, "checking the identity", r);
      }
    }
    for (const SeedAccess& a : seed_.access) {
      auto it = states_.find(AsciiLower(a.vault));
      if (it == states_.end()) {
        auto ex = existing_.find(AsciiLower(a.vault));
        if (ex == existing_.end()) {
          return Status(
              StatusCode::kNotFound,
              a.where + ": vault '" + a.vault + "' does not exist and the file does not declare it",
              "VaultNotFound");
        }
        it = states_.emplace(AsciiLower(a.vault), ex->second.first).first;
      }
      if (!a.role.empty() && !it->second.rbac) {
        return FailedPreconditionError(a.where + ": vault '" + a.vault +
                                           "' uses access policies: give permissions, not a role",
                                       "BadParameter");
      }
      if (a.role.empty() && it->second.rbac) {
        return FailedPreconditionError(
            a.where + ": vault '" + a.vault + "' uses Azure RBAC: give a role, not permissions",
            "BadParameter");
      }
      if (!a.role.empty() && !roles_.count(a.role)) {
        ASSIGN_OR_RETURN(roles_[a.role], s_.RoleDefinitionId(a.where, a.role));
      }
    }
    return OkStatus();
  }

  static Status CheckValues(const SeedSecret& secret) {
    for (size_t i = 0; i < secret.versions.size(); ++i) {
      if (!secret.versions[i].value) {
        return InvalidArgumentError(secret.where + ": version " + std::to_string(i + 1) +
                                        " has no value (an export without --include-values, "
                                        "or a disabled version's)",
                                    "BadParameter");
      }
    }
    return OkStatus();
  }

  Status Apply() {
    int identities_created = 0;
    for (const SeedIdentity& id : seed_.identities) {
      if (principals_.count(id.name)) {
        continue;
      }
      std::string path = s_.Subscription() + IdentityPath(DefaultGroup(id.resource_group), id.name);
      Json body = {{"location", id.location}, {"tags", id.tags}};
      auto r = s_.Arm("PUT", path, kIdentityApi, ToJson(body));
      if (!r.ok() || (r->status != 200 && r->status != 201)) {
        return Session::Failed(id.where, "creating the identity", r);
      }
      principals_[id.name] =
          StringMember(Body(r).value("properties", Json::object()), "principalId");
      undo_.push_back([this, path, where = id.where]() -> Status {
        auto d = s_.Arm("DELETE", path, kIdentityApi);
        return d.ok() && (d->status == 200 || d->status == 204)
                   ? OkStatus()
                   : Session::Failed(where, "removing the identity", d);
      });
      ++identities_created;
    }
    Json created_vaults = Json::array();
    Json existing_vaults = Json::array();
    int secrets = 0;
    int versions = 0;
    for (const SeedVault& v : seed_.vaults) {
      const VaultState& st = states_[AsciiLower(v.name)];
      if (existing_.count(AsciiLower(v.name))) {
        existing_vaults.push_back(v.name);
      } else {
        RETURN_IF_ERROR(CreateVault(v, st));
        created_vaults.push_back(v.name);
      }
      for (const SeedSecret& secret : v.secrets) {
        RETURN_IF_ERROR(CreateSecret(v, secret, existing_.count(AsciiLower(v.name)) > 0));
        ++secrets;
        versions += static_cast<int>(secret.versions.size());
      }
    }
    int access = 0;
    for (const SeedAccess& a : seed_.access) {
      RETURN_IF_ERROR(Grant(a));
      ++access;
    }
    // Last: a vault with purge protection could not be undone.
    for (const SeedVault& v : seed_.vaults) {
      if (v.purge_protection.value_or(false) && !existing_.count(AsciiLower(v.name))) {
        const VaultState& st = states_[AsciiLower(v.name)];
        Json body = {{"properties", {{"enablePurgeProtection", true}}}};
        auto r = s_.Arm("PATCH", st.id, kVaultApi, ToJson(body));
        if (!r.ok() || r->status != 200) {
          return Session::Failed(v.where, "turning on purge protection", r);
        }
      }
    }
    summary_ = {{"vaults", {{"created", created_vaults}, {"existing", existing_vaults}}},
                {"secrets", secrets},
                {"versions", versions},
                {"identitiesCreated", identities_created},
                {"access", access}};
    return OkStatus();
  }

  Status CreateVault(const SeedVault& v, const VaultState& st) {
    ASSIGN_OR_RETURN(Json body, s_.NewVaultBody(v, st.rbac));
    auto r = s_.Arm("PUT", st.id, kVaultApi, ToJson(body));
    if (!r.ok() || (r->status != 200 && r->status != 201)) {
      return Session::Failed(v.where, "creating the vault", r);
    }
    undo_.push_back(
        [this, name = v.name, location = v.location, id = st.id, where = v.where]() -> Status {
          auto d = s_.Arm("DELETE", id, kVaultApi);
          if (!d.ok() || (d->status != 200 && d->status != 204)) {
            return Session::Failed(where, "removing the vault", d);
          }
          auto p = s_.Arm("POST",
                          s_.Subscription() + "/providers/Microsoft.KeyVault/locations/" +
                              location + "/deletedVaults/" + name + "/purge",
                          kVaultApi);
          return p.ok() && (p->status == 200 || p->status == 202)
                     ? OkStatus()
                     : Session::Failed(where, "purging the vault", p);
        });
    return OkStatus();
  }

  Status CreateSecret(const SeedVault& v, const SeedSecret& secret, bool vault_existed) {
    for (size_t i = 0; i < secret.versions.size(); ++i) {
      const SeedVersion& version = secret.versions[i];
      Json attributes = {{"enabled", version.enabled}};
      if (version.nbf) {
        attributes["nbf"] = *version.nbf;
      }
      if (version.exp) {
        attributes["exp"] = *version.exp;
      }
      Json body = {{"value", *version.value}, {"tags", version.tags}, {"attributes", attributes}};
      if (!version.content_type.empty()) {
        body["contentType"] = version.content_type;
      }
      std::string text = ToJson(body);
      auto r = s_.Vault("PUT", v.name, "/secrets/" + secret.name, text);
      // SECURITY: the request held the value; it is wiped with the body.
      body["value"] = "";
      std::fill(text.begin(), text.end(), '\0');
      if (!r.ok() || r->status != 200) {
        return Session::Failed(
            secret.where + (secret.versions.size() > 1 ? " version " + std::to_string(i + 1) : ""),
            "setting the secret", r);
      }
      if (i == 0 && vault_existed) {
        // In a vault that stays, the secret itself is undone.
        undo_.push_back([this, vault = v.name, name = secret.name, where = secret.where]() {
          auto d = s_.Vault("DELETE", vault, "/secrets/" + name);
          if (!d.ok() || d->status != 200) {
            return Session::Failed(where, "removing the secret", d);
          }
          auto p = s_.Vault("DELETE", vault, "/deletedsecrets/" + name);
          return p.ok() && p->status == 204 ? OkStatus()
                                            : Session::Failed(where, "purging the secret", p);
        });
      }
    }
    return OkStatus();
  }

  Status Grant(const SeedAccess& a) {
    const VaultState& st = states_[AsciiLower(a.vault)];
    std::string principal = a.principal;
    if (auto it = principals_.find(a.principal); it != principals_.end()) {
      principal = it->second;
    } else {
      principal = s_.ObjectIdOf(a.principal);
    }
    if (!a.role.empty()) {
      std::string path =
          st.id + "/providers/Microsoft.Authorization/roleAssignments/" + crypto::RandomUuid();
      Json body = {
          {"properties", {{"roleDefinitionId", roles_[a.role]}, {"principalId", principal}}}};
      auto r = s_.Arm("PUT", path, kAuthorizationApi, ToJson(body));
      if (r.ok() && r->status == 409 &&
          client::ErrorFromResponse(*r).reason() == "RoleAssignmentExists") {
        return OkStatus();  // granted already: nothing to add or undo
      }
      if (!r.ok() || (r->status != 200 && r->status != 201)) {
        return Session::Failed(a.where, "assigning the role", r);
      }
      undo_.push_back([this, path, where = a.where]() {
        auto d = s_.Arm("DELETE", path, kAuthorizationApi);
        return d.ok() && (d->status == 200 || d->status == 204)
                   ? OkStatus()
                   : Session::Failed(where, "removing the role assignment", d);
      });
      return OkStatus();
    }
    Json permissions = Json::object();
    for (const auto& [type, names] : a.permissions) {
      permissions[type] = names;
    }
    Json entry = {{"tenantId", s_.Tenant()}, {"objectId", principal}, {"permissions", permissions}};
    // The principal's entry as it is, so that an undo gives back exactly it
    // (a `remove` would also take permissions it held before).
    auto current = s_.Arm("GET", st.id, kVaultApi);
    if (!current.ok() || current->status != 200) {
      return Session::Failed(a.where, "reading the vault's access policies", current);
    }
    Json before;
    for (const auto& p :
         Body(current).value("properties", Json::object()).value("accessPolicies", Json::array())) {
      if (EqualsIgnoreCase(StringMember(p, "objectId"), principal)) {
        before = p;
      }
    }
    Json body = {{"properties", {{"accessPolicies", Json::array({entry})}}}};
    auto r = s_.Arm("PUT", st.id + "/accessPolicies/add", kVaultApi, ToJson(body));
    if (!r.ok() || (r->status != 200 && r->status != 201)) {
      return Session::Failed(a.where, "adding the access policy", r);
    }
    undo_.push_back([this, id = st.id, body, before, where = a.where]() {
      StatusOr<http::Response> d =
          before.is_null()
              ? s_.Arm("PUT", id + "/accessPolicies/remove", kVaultApi, ToJson(body))
              : s_.Arm("PUT", id + "/accessPolicies/replace", kVaultApi,
                       ToJson(Json{{"properties", {{"accessPolicies", Json::array({before})}}}}));
      return d.ok() && (d->status == 200 || d->status == 201)
                 ? OkStatus()
                 : Session::Failed(where, "undoing the access policy", d);
    });
    return OkStatus();
  }

  Session s_;
  const Seed& seed_;
  std::map<std::string, std::pair<VaultState, Json>> existing_;  // by lower-case name
  std::map<std::string, VaultState> states_;                     // the vaults the file touches
  std::map<std::string, std::string> principals_;                // identity name -> object id
  std::map<std::string, std::string> roles_;                     // role -> definition id
  std::vector<std::function<Status()>> undo_;
  Json summary_;
};

class Exporter {
 public:
  Exporter(client::ApiClient& c, bool include_values) : s_(c), include_values_(include_values) {}

  StatusOr<Seed> Run(const std::vector<std::string>& names) {
    const std::string authority = s_.client().config().authority;
    auto listed =
        s_.Arm("GET", s_.Subscription() + "/providers/Microsoft.KeyVault/vaults", kVaultApi);
    ASSIGN_OR_RETURN(Json vaults, s_.All("vaults", listed, authority));
    for (const auto& name : names) {
      bool found = std::any_of(vaults.begin(), vaults.end(), [&](const Json& v) {
        return EqualsIgnoreCase(StringMember(v, "name"), name);
      });
      if (!found) {
        return Status(StatusCode::kNotFound, "vault '" + name + "' not found", "VaultNotFound");
      }
    }
    auto identities_listed = s_.Arm("GET",
                                    s_.Subscription() +
                                        "/providers/Microsoft.ManagedIdentity/"
                                        "userAssignedIdentities",
                                    kIdentityApi);
    ASSIGN_OR_RETURN(Json identities, s_.All("identities", identities_listed, authority));
    std::map<std::string, std::string> names_of;  // principal id -> identity name
    for (const auto& id : identities) {
      SeedIdentity out;
      out.name = StringMember(id, "name");
      out.resource_group = ResourceGroupOf(StringMember(id, "id"));
      out.location = StringMember(id, "location");
      out.tags = id.value("tags", Json::object());
      names_of[StringMember(id.value("properties", Json::object()), "principalId")] = out.name;
      seed_.identities.push_back(std::move(out));
    }
    for (const auto& v : vaults) {
      std::string name = StringMember(v, "name");
      if (!names.empty() && std::none_of(names.begin(), names.end(), [&](const std::string& n) {
            return EqualsIgnoreCase(n, name);
          })) {
        continue;
      }
      RETURN_IF_ERROR(ExportVault(v, names_of));
    }
    return std::move(seed_);
  }

 private:
  Status ExportVault(const Json& v, const std::map<std::string, std::string>& names_of) {
    SeedVault out;
    out.name = StringMember(v, "name");
    std::string id = StringMember(v, "id");
    out.resource_group = ResourceGroupOf(id);
    out.location = StringMember(v, "location");
    out.tags = v.value("tags", Json::object());
    Json props = v.value("properties", Json::object());
    out.rbac = props.value("enableRbacAuthorization", false);
    out.retention_days = props.value("softDeleteRetentionInDays", 90);
    out.purge_protection = props.value("enablePurgeProtection", false);
    const std::string where = "vault '" + out.name + "'";
    ObjectArgs args;
    args.vault = out.name;
    auto [base, resource] = ResolveObject(s_.client(), args, "secrets");
    ASSIGN_OR_RETURN(
        Json secrets,
        s_.All(where, s_.client().Call("GET", KvUrl(base, "/secrets"), resource), resource));
    for (const auto& item : secrets) {
      if (item.value("managed", false)) {
        continue;  // a certificate's: it goes with the certificate
      }
      std::string secret_id = StringMember(item, "id");
      SeedSecret secret;
      secret.name = secret_id.substr(secret_id.rfind('/') + 1);
      ASSIGN_OR_RETURN(
          Json versions,
          s_.All(where,
                 s_.client().Call("GET", KvUrl(base, "/secrets/" + secret.name + "/versions"),
                                  resource),
                 resource));
      // The current version last, the others oldest first, as the file lists them.
      auto current = s_.client().Call("GET", KvUrl(base, "/secrets/" + secret.name), resource);
      Json current_body = current.ok() && current->status == 200 ? Body(current) : Json();
      const std::string current_id = StringMember(current_body, "id");
      auto order = [&](const Json& listed) {
        return std::pair{StringMember(listed, "id") == current_id,
                         listed.value("attributes", Json::object()).value("created", int64_t{0})};
      };
      std::stable_sort(versions.begin(), versions.end(),
                       [&](const Json& a, const Json& b) { return order(a) < order(b); });
      for (const auto& ver : versions) {
        SeedVersion out_version;
        Json attributes = ver.value("attributes", Json::object());
        out_version.enabled = attributes.value("enabled", true);
        if (attributes.contains("nbf") && attributes["nbf"].is_number_integer()) {
          out_version.nbf = attributes["nbf"].get<int64_t>();
        }
        if (attributes.contains("exp") && attributes["exp"].is_number_integer()) {
          out_version.exp = attributes["exp"].get<int64_t>();
        }
        out_version.content_type = StringMember(ver, "contentType");
        out_version.tags = ver.value("tags", Json::object());
        const std::string version_id = StringMember(ver, "id");
        if (include_values_ && out_version.enabled && version_id == current_id) {
          out_version.value = StringMember(current_body, "value");  // read above
        } else if (include_values_ && out_version.enabled) {
          std::string version = version_id.substr(version_id.rfind('/') + 1);
          auto got = s_.client().Call("GET", KvUrl(base, "/secrets/" + secret.name + "/" + version),
                                      resource);
          if (!got.ok() || got->status != 200) {
            return Session::Failed(where + " secret '" + secret.name + "'", "reading a version",
                                   got);
          }
          out_version.value = StringMember(Body(got), "value");
        }
        secret.versions.push_back(std::move(out_version));
      }
      out.secrets.push_back(std::move(secret));
    }
    RETURN_IF_ERROR(ExportAccess(out, id, props, names_of));
    seed_.vaults.push_back(std::move(out));
    return OkStatus();
  }

  Status ExportAccess(const SeedVault& vault, const std::string& id, const Json& props,
                      const std::map<std::string, std::string>& names_of) {
    auto principal = [&](const std::string& object_id) {
      auto it = names_of.find(object_id);
      return it == names_of.end() ? object_id : it->second;
    };
    if (!*vault.rbac) {
      for (const auto& p : props.value("accessPolicies", Json::array())) {
        SeedAccess a;
        a.vault = vault.name;
        a.principal = principal(StringMember(p, "objectId"));
        Json permissions = p.value("permissions", Json::object());
        for (const char* type : {"secrets", "keys", "certificates"}) {
          for (const auto& n : permissions.value(type, Json::array())) {
            if (n.is_string()) {
              a.permissions[type].push_back(AsciiLower(n.get<std::string>()));
            }
          }
        }
        seed_.access.push_back(std::move(a));
      }
      return OkStatus();
    }
    auto listed = s_.Arm("GET", id + "/providers/Microsoft.Authorization/roleAssignments",
                         kAuthorizationApi, "", "$filter=atScope()");
    ASSIGN_OR_RETURN(Json assignments, s_.All("vault '" + vault.name + "' role assignments", listed,
                                              s_.client().config().authority));
    for (const auto& ra : assignments) {
      Json p = ra.value("properties", Json::object());
      if (!EqualsIgnoreCase(StringMember(p, "scope"), id)) {
        continue;  // inherited from above the vault
      }
      SeedAccess a;
      a.vault = vault.name;
      a.principal = principal(StringMember(p, "principalId"));
      a.role = RoleName(StringMember(p, "roleDefinitionId"));
      seed_.access.push_back(std::move(a));
    }
    return OkStatus();
  }

  std::string RoleName(const std::string& definition_id) {
    auto it = role_names_.find(definition_id);
    if (it != role_names_.end()) {
      return it->second;
    }
    std::string name = definition_id;
    auto r = s_.Arm("GET", definition_id, kAuthorizationApi);
    if (r.ok() && r->status == 200) {
      std::string role = StringMember(Body(r).value("properties", Json::object()), "roleName");
      name = role.empty() ? name : role;
    }
    role_names_[definition_id] = name;
    return name;
  }

  Session s_;
  bool include_values_;
  Seed seed_;
  std::map<std::string, std::string> role_names_;
};

}  // namespace

SeedContext SeedContextFor(const client::ClientConfig& config) {
  SeedContext context;
  context.now = static_cast<int64_t>(std::time(nullptr));
  if (auto url = http::ParseUrl(config.authority); url.ok()) {
    context.host = url->host;
    context.port = url->port;
  }
  return context;
}

StatusOr<Json> ImportSeed(client::ApiClient& c, const Seed& seed, const std::string& file) {
  auto imported = Importer(c, seed).Run();
  if (imported.ok()) {
    return imported;
  }
  const Status& s = imported.status();
  return Status(s.code(), file + ": " + std::string(s.message()), std::string(s.reason()));
}

StatusOr<std::string> SeedServer(const std::string& path, const server::ConnectionInfo& info,
                                 const std::string& data_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const std::string digest = HexEncode(crypto::Sha256(text));
  const std::string marker = data_dir + "/seed.sha256";
  if (auto applied = ReadFile(marker); applied.ok() && TrimWhitespace(*applied) == digest) {
    return "Seed " + path + " was applied to this data directory before; nothing to do";
  }
  const std::map<std::string, std::string> variables = ParseEnvLines(info.credentials);
  ASSIGN_OR_RETURN(client::ClientConfig config,
                   client::ClientConfig::FromVariables([&](const char* name) {
                     auto it = variables.find(name);
                     return it == variables.end() ? std::string() : it->second;
                   }));
  ASSIGN_OR_RETURN(Seed seed, ParseSeed(text, path, SeedContextFor(config)));
  client::ApiClient c(std::move(config));
  ASSIGN_OR_RETURN(Json summary, ImportSeed(c, seed, path));
  RETURN_IF_ERROR(WriteFileAtomic(marker, digest + "\n", 0600));
  return "Seeded from " + path + ": " + summary.dump();
}

StatusOr<Seed> ExportSeed(client::ApiClient& c, const std::vector<std::string>& vaults,
                          bool include_values) {
  return Exporter(c, include_values).Run(vaults);
}

}  // namespace coffer::cli
