#include "storage/memory/memory_store.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "common/json.h"
#include "common/strings.h"

namespace coffer::storage {
namespace {

Status VaultNotFound(const std::string& name) {
  return NotFoundError("vault '" + name + "' not found", "VaultNotFound");
}
// "secret", "key": how messages name the kind.
std::string KindWord(ObjectKind kind) {
  return AsciiLower(ObjectKindName(kind));
}

Status OwnedByAnother(ObjectKind kind, const std::string& name, ObjectKind owner) {
  return PermissionDeniedError(KindWord(kind) + " '" + name + "' is managed by the " +
                                   KindWord(owner) + " of its name and changes only with it",
                               "Forbidden");
}
Status NotOwned(ObjectKind kind, const std::string& name, ObjectKind owner) {
  return FailedPreconditionError("a " + KindWord(kind) + " named '" + name +
                                     "' exists that is not managed by a " + KindWord(owner),
                                 "Conflict");
}

std::string FakeUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng();
  uint64_t b = rng();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

}  // namespace

void MemoryStore::AppendChangeLocked(const std::string& vault, std::string type,
                                     std::string object_type, std::string name, std::string version,
                                     std::optional<int64_t> nbf, std::optional<int64_t> exp) {
  ChangeRecord c;
  c.seq = ++last_change_seq_;
  c.event_id = FakeUuid();
  c.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  c.vault = vault;
  c.type = std::move(type);
  c.object_type = std::move(object_type);
  c.name = std::move(name);
  c.version = std::move(version);
  c.nbf = nbf;
  c.exp = exp;
  changes_.push_back(std::move(c));
}

void MemoryStore::SecretPurgedLocked(const Vault& v, ObjectKind kind, const std::string& key,
                                     const Secret& s) {
  std::string name = s.versions.empty() ? key : s.versions.begin()->second.name;
  const std::string kind_name(ObjectKindName(kind));
  AppendChangeLocked(v.record.name, kind_name + "Purged", kind_name, name, "", std::nullopt,
                     std::nullopt);
  std::string prefix = AsciiLower(v.record.name) + "/" + key + "/";
  for (auto it = notices_.lower_bound(prefix);
       it != notices_.end() && it->compare(0, prefix.size(), prefix) == 0;) {
    // The notice's type ends its key and starts with its object's kind.
    bool of_kind = it->compare(it->rfind('/') + 1, kind_name.size(), kind_name) == 0;
    it = of_kind ? notices_.erase(it) : std::next(it);
  }
}

MemoryStore::Vault* MemoryStore::FindVault(const std::string& name) {
  auto it = vaults_.find(AsciiLower(name));
  return it == vaults_.end() ? nullptr : &it->second;
}

StatusOr<std::optional<std::string>> MemoryStore::GetMeta(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(key);
  if (it == meta_.end()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->second);
}

Status MemoryStore::PutMeta(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  meta_[key] = value;
  return OkStatus();
}

StatusOr<std::string> MemoryStore::UpdateMeta(const std::string& key,
                                              const Upsert<std::string>& make) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(key);
  ASSIGN_OR_RETURN(std::string value,
                   make(it == meta_.end() ? std::optional<std::string>()
                                          : std::optional<std::string>(it->second)));
  meta_[key] = value;
  return value;
}

Status MemoryStore::CreatePrincipal(const PrincipalRecord& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, p] : principals_) {
    if (id == principal.object_id || p.app_id == principal.app_id) {
      return AlreadyExistsError("principal already exists");
    }
    if (principal.kind == "UserAssignedIdentity" && p.kind == principal.kind &&
        EqualsIgnoreCase(p.resource_id, principal.resource_id)) {
      return AlreadyExistsError("an identity with this resource id exists");
    }
  }
  principals_[principal.object_id] = principal;
  principals_[principal.object_id].version = 1;
  return OkStatus();
}

StatusOr<PrincipalRecord> MemoryStore::GetPrincipalByAppId(const std::string& app_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, p] : principals_) {
    if (p.app_id == app_id && p.kind != "User") {
      return p;
    }
  }
  return NotFoundError("principal not found");
}

StatusOr<PrincipalRecord> MemoryStore::GetPrincipal(const std::string& object_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = principals_.find(object_id);
  if (it == principals_.end()) {
    return NotFoundError("principal not found");
  }
  return it->second;
}

StatusOr<std::vector<PrincipalRecord>> MemoryStore::ListPrincipals() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PrincipalRecord> out;
  for (const auto& [id, p] : principals_) {
    out.push_back(p);
  }
  return out;
}

StatusOr<PrincipalRecord> MemoryStore::UpdatePrincipal(const std::string& object_id,
                                                       const Mutation<PrincipalRecord>& mutate) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = principals_.find(object_id);
  if (it == principals_.end()) {
    return NotFoundError("principal not found");
  }
  PrincipalRecord changed = it->second;
  RETURN_IF_ERROR(mutate(changed));
  it->second.display_name = changed.display_name;
  it->second.location = changed.location;
  it->second.tags_json = changed.tags_json;
  ++it->second.version;
  return it->second;
}

bool MemoryStore::ErasePrincipalLocked(const std::string& object_id) {
  if (principals_.erase(object_id) == 0) {
    return false;
  }
  client_secrets_.erase(object_id);
  client_certificates_.erase(object_id);
  federated_.erase(object_id);
  users_.erase(object_id);
  return true;
}

Status MemoryStore::DeletePrincipal(const std::string& object_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ErasePrincipalLocked(object_id)) {
    return NotFoundError("principal not found");
  }
  return OkStatus();
}

Status MemoryStore::CreateUser(const PrincipalRecord& principal, const UserRecord& user) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, p] : principals_) {
    if (id == principal.object_id || p.app_id == principal.app_id) {
      return AlreadyExistsError("principal already exists");
    }
  }
  for (const auto& [id, u] : users_) {
    if (EqualsIgnoreCase(u.user_principal_name, user.user_principal_name)) {
      return AlreadyExistsError("a user with this user principal name exists");
    }
  }
  principals_[principal.object_id] = principal;
  principals_[principal.object_id].version = 1;
  UserRecord& stored = users_[principal.object_id] = user;
  stored.object_id = principal.object_id;
  stored.display_name.clear();  // the principal's is the one
  stored.version = 1;
  return OkStatus();
}

UserRecord MemoryStore::NamedLocked(const UserRecord& user) const {
  UserRecord out = user;
  auto p = principals_.find(user.object_id);
  out.display_name = p == principals_.end() ? std::string() : p->second.display_name;
  return out;
}

StatusOr<UserRecord> MemoryStore::GetUser(const std::string& object_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = users_.find(object_id);
  if (it == users_.end()) {
    return NotFoundError("user not found");
  }
  return NamedLocked(it->second);
}

StatusOr<UserRecord> MemoryStore::GetUserByName(const std::string& user_principal_name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, u] : users_) {
    if (EqualsIgnoreCase(u.user_principal_name, user_principal_name)) {
      return NamedLocked(u);
    }
  }
  return NotFoundError("user not found");
}

StatusOr<std::vector<UserRecord>> MemoryStore::ListUsers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<UserRecord> out;
  for (const auto& [id, u] : users_) {
    out.push_back(NamedLocked(u));
  }
  std::sort(out.begin(), out.end(), [](const UserRecord& a, const UserRecord& b) {
    return AsciiLower(a.user_principal_name) < AsciiLower(b.user_principal_name);
  });
  return out;
}

StatusOr<UserRecord> MemoryStore::UpdateUser(const std::string& object_id,
                                             const Mutation<UserRecord>& mutate) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = users_.find(object_id);
  if (it == users_.end()) {
    return NotFoundError("user not found");
  }
  UserRecord changed = NamedLocked(it->second);
  RETURN_IF_ERROR(mutate(changed));
  for (const auto& [id, u] : users_) {
    if (id != object_id && EqualsIgnoreCase(u.user_principal_name, changed.user_principal_name)) {
      return AlreadyExistsError("a user with this user principal name exists");
    }
  }
  changed.object_id = it->second.object_id;
  changed.created = it->second.created;
  changed.version = it->second.version + 1;
  PrincipalRecord& principal = principals_[object_id];
  if (principal.display_name != changed.display_name) {
    principal.display_name = changed.display_name;
    ++principal.version;
  }
  it->second = changed;
  it->second.display_name.clear();
  return changed;
}

StatusOr<FederatedCredentialRecord> MemoryStore::PutFederatedCredential(
    const std::string& principal_object_id, const std::string& name,
    const FederatedCredentialsUpsert& make) {
  std::lock_guard<std::mutex> lock(mu_);
  if (principals_.count(principal_object_id) == 0) {
    return NotFoundError("principal not found");
  }
  auto& mine = federated_[principal_object_id];
  std::vector<FederatedCredentialRecord> existing;
  for (const auto& [key, c] : mine) {
    existing.push_back(c);
  }
  ASSIGN_OR_RETURN(FederatedCredentialRecord made, make(existing));
  made.principal_object_id = principal_object_id;
  if (!EqualsIgnoreCase(made.name, name)) {
    return InvalidArgumentError("a federated credential keeps its name");
  }
  mine[AsciiLower(name)] = made;
  return made;
}

StatusOr<std::vector<FederatedCredentialRecord>> MemoryStore::ListFederatedCredentials(
    const std::string& principal_object_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FederatedCredentialRecord> out;
  auto it = federated_.find(principal_object_id);
  if (it != federated_.end()) {
    for (const auto& [key, c] : it->second) {
      out.push_back(c);
    }
  }
  return out;
}

Status MemoryStore::DeleteFederatedCredential(const std::string& principal_object_id,
                                              const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = federated_.find(principal_object_id);
  if (it == federated_.end() || it->second.erase(AsciiLower(name)) == 0) {
    return NotFoundError("federated identity credential '" + name + "' not found");
  }
  return OkStatus();
}

StatusOr<RoleDefinitionRecord> MemoryStore::PutRoleDefinition(
    const std::string& id, const Upsert<RoleDefinitionRecord>& make) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = role_definitions_.find(id);
  std::optional<RoleDefinitionRecord> current;
  if (it != role_definitions_.end()) {
    current = it->second;
  }
  ASSIGN_OR_RETURN(RoleDefinitionRecord role, make(current));
  role.id = id;
  for (const auto& [other, r] : role_definitions_) {
    if (other != id && EqualsIgnoreCase(r.role_name, role.role_name)) {
      return AlreadyExistsError("A custom role named '" + role.role_name + "' already exists.",
                                "RoleDefinitionWithSameNameExists");
    }
  }
  if (current) {
    role.created = current->created;
    role.version = current->version + 1;
  } else {
    role.version = 1;
  }
  role_definitions_[id] = role;
  return role;
}

StatusOr<std::vector<RoleDefinitionRecord>> MemoryStore::ListRoleDefinitions() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RoleDefinitionRecord> out;
  for (const auto& [id, r] : role_definitions_) {
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return AsciiLower(a.role_name) < AsciiLower(b.role_name);
  });
  return out;
}

Status MemoryStore::DeleteRoleDefinition(
    const std::string& id, const std::function<Status(const RoleDefinitionRecord&)>& check) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = role_definitions_.find(id);
  if (it == role_definitions_.end()) {
    return NotFoundError("role definition '" + id + "' not found", "RoleDefinitionDoesNotExist");
  }
  RETURN_IF_ERROR(check(it->second));
  for (const auto& a : role_assignments_) {
    if (a.role_definition_id == id) {
      return FailedPreconditionError(
          "There are existing role assignments referencing role '" + id + "'.",
          "RoleDefinitionHasAssignments");
    }
  }
  role_definitions_.erase(it);
  return OkStatus();
}

Status MemoryStore::CreateRoleAssignment(const RoleAssignmentRecord& assignment) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = RoleScopeKey(assignment.scope);
  for (const auto& a : role_assignments_) {
    if (a.id == assignment.id ||
        (RoleScopeKey(a.scope) == key && a.role_definition_id == assignment.role_definition_id &&
         a.principal_id == assignment.principal_id)) {
      return AlreadyExistsError("The role assignment already exists.", "RoleAssignmentExists");
    }
  }
  role_assignments_.push_back(assignment);
  return OkStatus();
}

StatusOr<std::vector<RoleAssignmentRecord>> MemoryStore::ListRoleAssignments() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RoleAssignmentRecord> out = role_assignments_;
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return out;
}

Status MemoryStore::DeleteRoleAssignment(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (std::erase_if(role_assignments_, [&](const auto& a) { return a.id == id; }) == 0) {
    return NotFoundError("role assignment '" + id + "' not found", "RoleAssignmentNotFound");
  }
  return OkStatus();
}

StatusOr<WorkloadRecord> MemoryStore::PutWorkload(const std::string& resource_id,
                                                  const Upsert<WorkloadWrite>& make) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<WorkloadWrite> current;
  for (const auto& [uid, w] : workloads_) {
    if (EqualsIgnoreCase(w.resource_id, resource_id)) {
      current = WorkloadWrite{w, std::nullopt, ""};
    }
  }
  ASSIGN_OR_RETURN(WorkloadWrite write, make(current));
  WorkloadRecord& workload = write.workload;
  const auto& add_principal = write.add_principal;
  const std::string& remove_principal_id = write.remove_principal_id;
  if (current) {
    workload.uid = current->workload.uid;
    workload.resource_id = current->workload.resource_id;
    workload.version = current->workload.version + 1;
  } else {
    workload.resource_id = resource_id;
    workload.version = 1;
    if (workload.uid.empty() || workloads_.count(workload.uid) != 0) {
      return AlreadyExistsError("a workload with this uid exists");
    }
  }
  if (add_principal) {
    for (const auto& [id, p] : principals_) {
      if (id == add_principal->object_id || p.app_id == add_principal->app_id) {
        return AlreadyExistsError("principal already exists");
      }
    }
  }
  if (!remove_principal_id.empty() && principals_.count(remove_principal_id) == 0) {
    return NotFoundError("principal not found");
  }
  if (!remove_principal_id.empty()) {
    ErasePrincipalLocked(remove_principal_id);
  }
  if (add_principal) {
    principals_[add_principal->object_id] = *add_principal;
  }
  workloads_[workload.uid] = workload;
  return workload;
}

StatusOr<WorkloadRecord> MemoryStore::GetWorkload(const std::string& uid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workloads_.find(uid);
  if (it == workloads_.end()) {
    return NotFoundError("workload not found");
  }
  return it->second;
}

StatusOr<std::vector<WorkloadRecord>> MemoryStore::ListWorkloads() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkloadRecord> out;
  for (const auto& [uid, w] : workloads_) {
    out.push_back(w);
  }
  return out;
}

Status MemoryStore::DeleteWorkload(const std::string& uid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workloads_.find(uid);
  if (it == workloads_.end()) {
    return NotFoundError("workload not found");
  }
  if (!it->second.system_principal_id.empty()) {
    ErasePrincipalLocked(it->second.system_principal_id);
  }
  workloads_.erase(it);
  return OkStatus();
}

Status MemoryStore::AddClientSecret(const ClientSecretRecord& secret) {
  std::lock_guard<std::mutex> lock(mu_);
  if (principals_.count(secret.principal_object_id) == 0) {
    return NotFoundError("principal not found");
  }
  client_secrets_[secret.principal_object_id].push_back(secret);
  return OkStatus();
}

StatusOr<std::vector<ClientSecretRecord>> MemoryStore::ListClientSecrets(
    const std::string& principal_object_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = client_secrets_.find(principal_object_id);
  if (it == client_secrets_.end()) {
    return std::vector<ClientSecretRecord>();
  }
  return it->second;
}

Status MemoryStore::RemoveClientSecret(const std::string& principal_object_id,
                                       const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = client_secrets_.find(principal_object_id);
  if (it != client_secrets_.end()) {
    auto& list = it->second;
    for (auto c = list.begin(); c != list.end(); ++c) {
      if (c->key_id == key_id) {
        list.erase(c);
        return OkStatus();
      }
    }
  }
  return NotFoundError("client secret '" + key_id + "' not found");
}

Status MemoryStore::AddClientCertificate(const ClientCertificateRecord& certificate) {
  std::lock_guard<std::mutex> lock(mu_);
  if (principals_.count(certificate.principal_object_id) == 0) {
    return NotFoundError("principal not found");
  }
  auto& list = client_certificates_[certificate.principal_object_id];
  for (const auto& c : list) {
    if (c.sha256_thumbprint == certificate.sha256_thumbprint) {
      return AlreadyExistsError("the principal already has this certificate");
    }
  }
  list.push_back(certificate);
  return OkStatus();
}

StatusOr<std::vector<ClientCertificateRecord>> MemoryStore::ListClientCertificates(
    const std::string& principal_object_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = client_certificates_.find(principal_object_id);
  if (it == client_certificates_.end()) {
    return std::vector<ClientCertificateRecord>();
  }
  return it->second;
}

Status MemoryStore::RemoveClientCertificate(const std::string& principal_object_id,
                                            const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = client_certificates_.find(principal_object_id);
  if (it != client_certificates_.end()) {
    for (auto c = it->second.begin(); c != it->second.end(); ++c) {
      if (c->key_id == key_id) {
        it->second.erase(c);
        return OkStatus();
      }
    }
  }
  return NotFoundError("client certificate '" + key_id + "' not found");
}

StatusOr<bool> MemoryStore::RecordAssertionId(const std::string& app_id, const std::string& jti,
                                              int64_t expires, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(assertion_ids_, [now](const auto& entry) { return entry.second <= now; });
  return assertion_ids_.emplace(app_id + '\0' + jti, expires).second;
}

Status MemoryStore::CreateVault(const VaultRecord& vault) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = AsciiLower(vault.name);
  if (vaults_.count(key) != 0) {
    return AlreadyExistsError("vault '" + vault.name + "' already exists");
  }
  vaults_[key].record = vault;
  vaults_[key].record.version = 1;
  return OkStatus();
}

StatusOr<VaultRecord> MemoryStore::UpdateVault(const std::string& name,
                                               const Mutation<VaultRecord>& mutate) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(name);
  if (v == nullptr || v->record.deleted()) {
    return VaultNotFound(name);
  }
  VaultRecord updated = v->record;
  RETURN_IF_ERROR(mutate(updated));
  // Identity, key and deletion state are not the mutation's to change.
  const VaultRecord& old = v->record;
  updated.name = old.name;
  updated.subscription_id = old.subscription_id;
  updated.resource_group = old.resource_group;
  updated.wrapped_data_key = old.wrapped_data_key;
  updated.created = old.created;
  updated.deleted_date = old.deleted_date;
  updated.scheduled_purge_date = old.scheduled_purge_date;
  updated.version = old.version + 1;
  bool access_changed = AccessModelChanged(old, updated);
  v->record = updated;
  if (access_changed) {
    AppendChangeLocked(updated.name, "VaultAccessPolicyChanged", "Vault", updated.name, "",
                       std::nullopt, std::nullopt);
  }
  return updated;
}

void MemoryStore::SetUnreachable(bool unreachable) {
  std::lock_guard<std::mutex> lock(mu_);
  unreachable_ = unreachable;
}

StatusOr<VaultRecord> MemoryStore::GetVault(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unreachable_) {
    return UnavailableError("storage is unavailable: the database cannot be reached");
  }
  Vault* v = FindVault(name);
  if (v == nullptr) {
    return VaultNotFound(name);
  }
  return v->record;
}

StatusOr<std::vector<VaultRecord>> MemoryStore::ListVaults() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VaultRecord> out;
  for (const auto& [k, v] : vaults_) {
    out.push_back(v.record);
  }
  return out;
}

Status MemoryStore::MarkVaultDeleted(const std::string& name, int64_t deleted_date,
                                     int64_t scheduled_purge_date) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(name);
  if (v == nullptr || v->record.deleted()) {
    return VaultNotFound(name);
  }
  v->record.deleted_date = deleted_date;
  v->record.scheduled_purge_date = scheduled_purge_date;
  std::string key = RoleScopeKey(v->record.ResourceId());
  std::erase_if(role_assignments_, [&](const RoleAssignmentRecord& a) {
    std::string scope = RoleScopeKey(a.scope);
    return scope == key || StartsWith(scope, key + "/");
  });
  return OkStatus();
}

Status MemoryStore::RecoverVault(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(name);
  if (v == nullptr || !v->record.deleted()) {
    return NotFoundError("deleted vault '" + name + "' not found", "VaultNotFound");
  }
  v->record.deleted_date = 0;
  v->record.scheduled_purge_date = 0;
  return OkStatus();
}

Status MemoryStore::PurgeVault(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = vaults_.find(AsciiLower(name));
  if (it == vaults_.end()) {
    return VaultNotFound(name);
  }
  EraseVaultLocked(it);
  return OkStatus();
}

std::map<std::string, MemoryStore::Vault>::iterator MemoryStore::EraseVaultLocked(
    std::map<std::string, Vault>::iterator it) {
  for (const auto& [kind, objects] : it->second.objects) {
    for (const auto& [key, secret] : objects) {
      SecretPurgedLocked(it->second, kind, key, secret);
    }
  }
  event_subscriptions_.erase(it->first);
  if (auto shifts = meta_.find(kTimeShiftMetaKey); shifts != meta_.end()) {
    if (auto rest = RemoveTimeShift(shifts->second, it->first)) {
      shifts->second = *rest;
    }
  }
  for (auto d = deliveries_.begin(); d != deliveries_.end();) {
    d = std::get<0>(d->first) == it->first ? deliveries_.erase(d) : std::next(d);
  }
  return vaults_.erase(it);
}

StatusOr<int> MemoryStore::PurgeExpiredVaults(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  int count = 0;
  for (auto it = vaults_.begin(); it != vaults_.end();) {
    if (it->second.record.deleted() && it->second.record.scheduled_purge_date <= now) {
      it = EraseVaultLocked(it);
      ++count;
    } else {
      ++it;
    }
  }
  return count;
}

StatusOr<std::string> MemoryStore::AddObjectVersion(ObjectKind kind, const std::string& vault,
                                                    const SecretVersionRecord& rec,
                                                    const std::vector<OwnedVersion>& owned) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  const std::string key = AsciiLower(rec.name);
  // Everything is checked before anything changes: the call is atomic.
  auto check = [&](ObjectKind k, const std::string& version,
                   std::optional<ObjectKind> owner) -> Status {
    auto& objects = v->objects[k];
    auto it = objects.find(key);
    if (it == objects.end()) {
      return OkStatus();
    }
    if (it->second.owner != owner) {
      return owner ? NotOwned(k, rec.name, *owner) : OwnedByAnother(k, rec.name, *it->second.owner);
    }
    if (it->second.deleted) {
      return FailedPreconditionError(KindWord(k) + " '" + rec.name + "' is deleted but not purged",
                                     "Conflict");
    }
    if (it->second.versions.count(version) != 0) {
      return AlreadyExistsError(KindWord(k) + " version already exists");
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(check(kind, rec.version, std::nullopt));
  for (const OwnedVersion& o : owned) {
    RETURN_IF_ERROR(check(o.kind, o.record.version, kind));
  }
  std::string name = PutVersionLocked(*v, kind, key, rec, std::nullopt);
  for (const OwnedVersion& o : owned) {
    SecretVersionRecord r = o.record;
    r.name = name;
    PutVersionLocked(*v, o.kind, key, r, kind);
  }
  return name;
}

std::string MemoryStore::PutVersionLocked(Vault& v, ObjectKind kind, const std::string& key,
                                          const SecretVersionRecord& rec,
                                          std::optional<ObjectKind> owner) {
  auto& s = v.objects[kind][key];
  SecretVersionRecord copy = rec;
  if (!s.versions.empty()) {
    copy.name = s.versions.begin()->second.name;
  } else {
    s.owner = owner;
  }
  s.versions[rec.version] = copy;
  s.latest = rec.version;
  const std::string kind_name(ObjectKindName(kind));
  AppendChangeLocked(v.record.name, kind_name + "NewVersionCreated", kind_name, copy.name,
                     rec.version, rec.nbf, rec.exp);
  return copy.name;
}

std::vector<std::pair<ObjectKind, MemoryStore::Secret*>> MemoryStore::OwnedLocked(
    Vault& v, ObjectKind kind, const std::string& key) {
  std::vector<std::pair<ObjectKind, Secret*>> out;
  for (auto& [k, objects] : v.objects) {
    auto it = objects.find(key);
    if (it != objects.end() && it->second.owner == kind) {
      out.emplace_back(k, &it->second);
    }
  }
  return out;
}

StatusOr<SecretView> MemoryStore::UpdateObjectVersion(ObjectKind kind, const std::string& vault,
                                                      const std::string& name,
                                                      const std::string& version,
                                                      const Mutation<SecretVersionRecord>& mutate) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  auto& objects = v->objects[kind];
  const std::string key = AsciiLower(name);
  auto it = objects.find(key);
  if (it == objects.end() || it->second.deleted) {
    return ObjectNotFoundError(kind, name);
  }
  if (it->second.owner) {
    return OwnedByAnother(kind, name, *it->second.owner);
  }
  auto vit = it->second.versions.find(version.empty() ? it->second.latest : version);
  if (vit == it->second.versions.end()) {
    return ObjectNotFoundError(kind, name);
  }
  ASSIGN_OR_RETURN(SecretVersionRecord next, MutateVersion(vit->second, mutate));
  vit->second = next;
  const std::string kind_name(ObjectKindName(kind));
  AppendChangeLocked(v->record.name, kind_name + "Updated", kind_name, next.name, next.version,
                     next.nbf, next.exp);
  for (auto& [k, owned] : OwnedLocked(*v, kind, key)) {
    auto ovit = owned->versions.find(next.version);
    if (ovit == owned->versions.end()) {
      continue;
    }
    SecretVersionRecord& o = ovit->second;
    o.enabled = next.enabled;
    o.nbf = next.nbf;
    o.exp = next.exp;
    o.updated = next.updated;
    const std::string owned_kind(ObjectKindName(k));
    AppendChangeLocked(v->record.name, owned_kind + "Updated", owned_kind, o.name, o.version, o.nbf,
                       o.exp);
  }
  return SecretView{std::move(next), false, 0, 0, std::nullopt};
}

StatusOr<SecretView> MemoryStore::GetObject(ObjectKind kind, const std::string& vault,
                                            const std::string& name, const std::string& version,
                                            bool include_deleted) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unreachable_) {
    return UnavailableError("storage is unavailable: the database cannot be reached");
  }
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  auto& objects = v->objects[kind];
  auto it = objects.find(AsciiLower(name));
  if (it == objects.end() || (it->second.deleted && !include_deleted)) {
    return ObjectNotFoundError(kind, name);
  }
  const Secret& s = it->second;
  auto vit = s.versions.find(version.empty() ? s.latest : version);
  if (vit == s.versions.end()) {
    return ObjectNotFoundError(kind, name);
  }
  return SecretView{vit->second, s.deleted, s.deleted_date, s.scheduled_purge_date, s.owner};
}

StatusOr<SecretPage> MemoryStore::ListObjects(ObjectKind kind, const std::string& vault,
                                              bool deleted, const std::string& cursor, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  SecretPage page;
  auto& objects = v->objects[kind];
  for (auto it = objects.upper_bound(cursor); it != objects.end(); ++it) {
    const Secret& s = it->second;
    if (s.deleted != deleted || s.versions.empty() || (deleted && s.owner)) {
      continue;
    }
    if (static_cast<int>(page.items.size()) == limit) {
      page.next_cursor = AsciiLower(page.items.back().version.name);
      break;
    }
    page.items.push_back(SecretView{s.versions.at(s.latest), s.deleted, s.deleted_date,
                                    s.scheduled_purge_date, s.owner});
    page.items.back().version.sealed_value.clear();
  }
  return page;
}

StatusOr<VersionPage> MemoryStore::ListObjectVersions(ObjectKind kind, const std::string& vault,
                                                      const std::string& name,
                                                      const std::string& cursor, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  auto& objects = v->objects[kind];
  auto it = objects.find(AsciiLower(name));
  if (it == objects.end() || it->second.deleted) {
    return ObjectNotFoundError(kind, name);
  }
  VersionPage page;
  const auto& versions = it->second.versions;
  for (auto vit = versions.upper_bound(cursor); vit != versions.end(); ++vit) {
    if (static_cast<int>(page.items.size()) == limit) {
      page.next_cursor = page.items.back().version;
      break;
    }
    page.items.push_back(vit->second);
    page.items.back().sealed_value.clear();
  }
  return page;
}

StatusOr<std::vector<SecretVersionRecord>> MemoryStore::GetAllObjectVersions(
    ObjectKind kind, const std::string& vault, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  auto& objects = v->objects[kind];
  auto it = objects.find(AsciiLower(name));
  if (it == objects.end() || it->second.deleted) {
    return ObjectNotFoundError(kind, name);
  }
  std::vector<SecretVersionRecord> out;
  for (const auto& [ver, rec] : it->second.versions) {
    if (ver != it->second.latest) {
      out.push_back(rec);
    }
  }
  out.push_back(it->second.versions.at(it->second.latest));
  return out;
}

Status MemoryStore::MarkObjectDeleted(ObjectKind kind, const std::string& vault,
                                      const std::string& name, int64_t deleted_date,
                                      int64_t scheduled_purge_date) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  auto& objects = v->objects[kind];
  const std::string key = AsciiLower(name);
  auto it = objects.find(key);
  if (it == objects.end() || it->second.deleted) {
    return ObjectNotFoundError(kind, name);
  }
  if (it->second.owner) {
    return OwnedByAnother(kind, name, *it->second.owner);
  }
  auto all = OwnedLocked(*v, kind, key);
  all.emplace(all.begin(), kind, &it->second);
  for (auto& [k, object] : all) {
    if (object->deleted) {
      continue;
    }
    object->deleted = true;
    object->deleted_date = deleted_date;
    object->scheduled_purge_date = scheduled_purge_date;
    const std::string kind_name(ObjectKindName(k));
    AppendChangeLocked(v->record.name, kind_name + "Deleted", kind_name,
                       object->versions.begin()->second.name, object->latest, std::nullopt,
                       std::nullopt);
  }
  return OkStatus();
}

Status MemoryStore::RecoverObject(ObjectKind kind, const std::string& vault,
                                  const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  auto& objects = v->objects[kind];
  const std::string key = AsciiLower(name);
  auto it = objects.find(key);
  if (it == objects.end() || !it->second.deleted) {
    return DeletedObjectNotFoundError(kind, name);
  }
  if (it->second.owner) {
    return OwnedByAnother(kind, name, *it->second.owner);
  }
  auto all = OwnedLocked(*v, kind, key);
  all.emplace(all.begin(), kind, &it->second);
  for (auto& [k, object] : all) {
    if (!object->deleted) {
      continue;
    }
    object->deleted = false;
    object->deleted_date = 0;
    object->scheduled_purge_date = 0;
    const std::string kind_name(ObjectKindName(k));
    AppendChangeLocked(v->record.name, kind_name + "Recovered", kind_name,
                       object->versions.begin()->second.name, object->latest, std::nullopt,
                       std::nullopt);
  }
  return OkStatus();
}

Status MemoryStore::PurgeObject(ObjectKind kind, const std::string& vault,
                                const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  auto& objects = v->objects[kind];
  const std::string key = AsciiLower(name);
  auto it = objects.find(key);
  if (it == objects.end() || !it->second.deleted) {
    return DeletedObjectNotFoundError(kind, name);
  }
  if (it->second.owner) {
    return OwnedByAnother(kind, name, *it->second.owner);
  }
  for (auto& [k, object] : OwnedLocked(*v, kind, key)) {
    SecretPurgedLocked(*v, k, key, *object);
    v->objects[k].erase(key);
  }
  SecretPurgedLocked(*v, kind, it->first, it->second);
  objects.erase(it);
  return OkStatus();
}

StatusOr<int> MemoryStore::PurgeExpiredObjects(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  int count = 0;
  for (auto& [vk, v] : vaults_) {
    for (auto& [kind, objects] : v.objects) {
      for (auto it = objects.begin(); it != objects.end();) {
        if (it->second.deleted && it->second.scheduled_purge_date <= now) {
          SecretPurgedLocked(v, kind, it->first, it->second);
          it = objects.erase(it);
          ++count;
        } else {
          ++it;
        }
      }
    }
  }
  return count;
}

StatusOr<int64_t> MemoryStore::ShiftTime(const std::string& vault, int64_t seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [vk, v] : vaults_) {
    if (vault.empty() || vk == AsciiLower(vault)) {
      keys.push_back(vk);
    }
  }
  if (!vault.empty() && keys.empty()) {
    return VaultNotFound(vault);
  }
  auto it = meta_.find(kTimeShiftMetaKey);
  ASSIGN_OR_RETURN(std::string totals,
                   AddTimeShift(it == meta_.end() ? std::optional<std::string>()
                                                  : std::optional<std::string>(it->second),
                                keys, seconds));
  auto earlier = [seconds](std::optional<int64_t>& t) {
    if (t.has_value()) {
      *t -= seconds;
    }
  };
  int64_t moved = 0;
  for (const std::string& key : keys) {
    Vault& v = vaults_[key];
    if (v.record.deleted()) {
      v.record.deleted_date -= seconds;
      v.record.scheduled_purge_date -= seconds;
    }
    for (auto& [kind, objects] : v.objects) {
      const std::string kind_name(ObjectKindName(kind));
      for (auto& [name_key, object] : objects) {
        if (object.deleted) {
          object.deleted_date -= seconds;
          object.scheduled_purge_date -= seconds;
        }
        for (auto& [version, rec] : object.versions) {
          rec.created -= seconds;
          rec.updated -= seconds;
          earlier(rec.nbf);
          earlier(rec.exp);
          AppendChangeLocked(v.record.name, kind_name + "Updated", kind_name, rec.name, rec.version,
                             rec.nbf, rec.exp);
          ++moved;
        }
      }
    }
  }
  meta_[kTimeShiftMetaKey] = std::move(totals);
  return moved;
}

Status MemoryStore::RestoreObject(ObjectKind kind, const std::string& vault,
                                  const std::vector<SecretVersionRecord>& versions,
                                  const std::vector<OwnedVersions>& owned) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return VaultNotFound(vault);
  }
  if (versions.empty()) {
    return InvalidArgumentError("backup holds no versions");
  }
  const std::string key = AsciiLower(versions.back().name);
  for (const OwnedVersions& o : owned) {
    if (o.versions.empty()) {
      return InvalidArgumentError("backup holds no versions of a managed object");
    }
    if (v->objects[o.kind].count(key) != 0) {
      return AlreadyExistsError(KindWord(o.kind) + " '" + versions.back().name +
                                "' already exists");
    }
  }
  if (v->objects[kind].count(key) != 0) {
    return AlreadyExistsError(KindWord(kind) + " '" + versions.back().name + "' already exists");
  }
  auto restore = [&](ObjectKind k, const std::vector<SecretVersionRecord>& recs,
                     std::optional<ObjectKind> owner) {
    Secret s;
    for (const auto& rec : recs) {
      s.versions[rec.version] = rec;
      s.versions[rec.version].name = versions.back().name;
    }
    s.latest = recs.back().version;
    s.owner = owner;
    const SecretVersionRecord& latest = s.versions.at(s.latest);
    const std::string kind_name(ObjectKindName(k));
    AppendChangeLocked(v->record.name, kind_name + "NewVersionCreated", kind_name, latest.name,
                       latest.version, latest.nbf, latest.exp);
    v->objects[k][key] = std::move(s);
  };
  restore(kind, versions, std::nullopt);
  for (const OwnedVersions& o : owned) {
    restore(o.kind, o.versions, kind);
  }
  return OkStatus();
}

StatusOr<std::vector<ChangeRecord>> MemoryStore::ListChanges(int64_t after_seq, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ChangeRecord> out;
  for (const auto& c : changes_) {
    if (c.seq > after_seq && static_cast<int>(out.size()) < limit) {
      out.push_back(c);
    }
  }
  return out;
}

StatusOr<Store::ChangeBounds> MemoryStore::GetChangeBounds() {
  std::lock_guard<std::mutex> lock(mu_);
  ChangeBounds b;
  b.newest = last_change_seq_;
  b.oldest = changes_.empty() ? last_change_seq_ + 1 : changes_.front().seq;
  return b;
}

StatusOr<int> MemoryStore::PruneChanges(int64_t before_ms, int keep) {
  std::lock_guard<std::mutex> lock(mu_);
  int removed = 0;
  while (!changes_.empty() && changes_.front().time_ms < before_ms &&
         changes_.front().seq <= last_change_seq_ - keep) {
    changes_.pop_front();
    ++removed;
  }
  return removed;
}

StatusOr<std::vector<ExpiringSecret>> MemoryStore::ListExpiringObjects(ObjectKind kind,
                                                                       const std::string& type,
                                                                       int64_t exp_before,
                                                                       int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ExpiringSecret> out;
  for (const auto& [vk, v] : vaults_) {
    if (v.record.deleted()) {
      continue;
    }
    auto objects = v.objects.find(kind);
    if (objects == v.objects.end()) {
      continue;
    }
    for (const auto& [key, s] : objects->second) {
      const SecretVersionRecord& latest = s.versions.at(s.latest);
      if (s.deleted || !latest.exp || *latest.exp > exp_before ||
          notices_.count(vk + "/" + key + "/" + s.latest + "/" + type) != 0) {
        continue;
      }
      out.push_back({kind, v.record.name, latest.name, latest.version, latest.nbf, *latest.exp});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ExpiringSecret& a, const ExpiringSecret& b) { return a.exp < b.exp; });
  if (static_cast<int>(out.size()) > limit) {
    out.resize(static_cast<size_t>(limit));
  }
  return out;
}

StatusOr<bool> MemoryStore::RecordNotice(const ChangeRecord& change) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = AsciiLower(change.vault) + "/" + AsciiLower(change.name) + "/" +
                    change.version + "/" + change.type;
  if (!notices_.insert(key).second) {
    return false;
  }
  ChangeRecord c = change;
  c.seq = ++last_change_seq_;
  changes_.push_back(std::move(c));
  return true;
}

StatusOr<EventSubscriptionRecord> MemoryStore::PutEventSubscription(
    const std::string& vault, const std::string& name, const EventSubscriptionUpsert& make) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr || v->record.deleted()) {
    return NotFoundError("vault '" + vault + "' not found", "ResourceNotFound");
  }
  auto& subs = event_subscriptions_[AsciiLower(vault)];
  auto it = subs.find(AsciiLower(name));
  std::optional<EventSubscriptionRecord> current;
  if (it != subs.end()) {
    current = it->second;
  }
  ASSIGN_OR_RETURN(EventSubscriptionRecord made, make(current, subs.size()));
  made.vault = v->record.name;
  made.name = current ? current->name : name;
  made.version = current ? current->version + 1 : 1;
  subs[AsciiLower(name)] = made;
  return made;
}

StatusOr<std::vector<EventSubscriptionRecord>> MemoryStore::ListEventSubscriptions(
    const std::string& vault) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EventSubscriptionRecord> out;
  for (const auto& [vk, subs] : event_subscriptions_) {
    if (!vault.empty() && vk != AsciiLower(vault)) {
      continue;
    }
    for (const auto& [nk, sub] : subs) {
      out.push_back(sub);
    }
  }
  return out;
}

Status MemoryStore::DeleteEventSubscription(const std::string& vault, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = event_subscriptions_.find(AsciiLower(vault));
  if (it == event_subscriptions_.end() || it->second.erase(AsciiLower(name)) == 0) {
    return NotFoundError("event subscription '" + name + "' not found", "ResourceNotFound");
  }
  for (auto d = deliveries_.begin(); d != deliveries_.end();) {
    bool its =
        std::get<0>(d->first) == AsciiLower(vault) && std::get<1>(d->first) == AsciiLower(name);
    d = its ? deliveries_.erase(d) : std::next(d);
  }
  return OkStatus();
}

}  // namespace coffer::storage

namespace coffer::storage {

StatusOr<std::string> MemoryStore::GetObjectPolicy(ObjectKind kind, const std::string& vault,
                                                   const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return ObjectNotFoundError(kind, name);
  }
  auto& objects = v->objects[kind];
  auto it = objects.find(AsciiLower(name));
  if (it == objects.end() || it->second.deleted) {
    return ObjectNotFoundError(kind, name);
  }
  return it->second.policy_json;
}

StatusOr<std::string> MemoryStore::UpdateObjectPolicy(ObjectKind kind, const std::string& vault,
                                                      const std::string& name,
                                                      const Upsert<std::string>& make) {
  std::lock_guard<std::mutex> lock(mu_);
  Vault* v = FindVault(vault);
  if (v == nullptr) {
    return ObjectNotFoundError(kind, name);
  }
  auto& objects = v->objects[kind];
  auto it = objects.find(AsciiLower(name));
  if (it == objects.end() || it->second.deleted) {
    return ObjectNotFoundError(kind, name);
  }
  const std::string& current = it->second.policy_json;
  ASSIGN_OR_RETURN(std::string made,
                   make(current.empty() ? std::nullopt : std::optional<std::string>(current)));
  it->second.policy_json = made;
  return made;
}

StatusOr<std::vector<ObjectPolicy>> MemoryStore::ListObjectPolicies(ObjectKind kind, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPolicy> out;
  for (auto& [vk, v] : vaults_) {
    if (v.record.deleted()) {
      continue;
    }
    for (const auto& [key, s] : v.objects[kind]) {
      if (s.deleted || s.policy_json.empty() || static_cast<int>(out.size()) >= limit) {
        continue;
      }
      const SecretVersionRecord& latest = s.versions.at(s.latest);
      out.push_back(
          {v.record.name, latest.name, s.policy_json, s.latest, latest.created, latest.exp});
    }
  }
  return out;
}

}  // namespace coffer::storage
