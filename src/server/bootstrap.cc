// First-start initialisation of an installation: the administrator service
// principal, its credentials file, and in dev mode the `dev` vault.

#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "common/files.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "server/server.h"

namespace coffer::server {
namespace {

constexpr char kDevVault[] = "dev";
constexpr char kDevResourceGroup[] = "coffer-dev";
constexpr int kAdminSecretDays = 365;
// The key ids of the administrator's client secrets that bootstrap issued
// and has not revoked yet: after a start, only the one in the credentials
// file.
constexpr char kIssuedSecretsMeta[] = "admin_env_secret_key_ids";
constexpr char kOwnerRole[] = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
constexpr char kKeyVaultAdministratorRole[] = "00482a5a-887f-4fb3-b363-3b7fe8e74483";

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> out;
  auto text = ReadFile(path);
  if (!text.ok()) {
    return out;
  }
  for (std::string_view line : Split(*text, '\n')) {
    line = TrimWhitespace(line);
    if (StartsWith(line, "export ")) {
      line.remove_prefix(7);
    }
    size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      out.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    }
  }
  return out;
}

// The key ids bootstrap recorded as issued; nullopt for an installation of a
// release that did not record them.
StatusOr<std::optional<std::vector<std::string>>> IssuedSecrets(storage::Store& store) {
  ASSIGN_OR_RETURN(auto json, store.GetMeta(kIssuedSecretsMeta));
  if (!json) {
    return std::optional<std::vector<std::string>>();
  }
  std::vector<std::string> out;
  auto parsed = ParseJson(*json);
  if (parsed && parsed->is_array()) {
    for (const auto& id : *parsed) {
      if (id.is_string()) {
        out.push_back(id.get<std::string>());
      }
    }
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Status RecordIssuedSecrets(storage::Store& store, const std::vector<std::string>& key_ids) {
  return store.PutMeta(kIssuedSecretsMeta, ToJson(Json(key_ids)));
}

// RevokeSupersededSecrets removes the administrator's client secrets that
// the one in the credentials file (`kept`) supersedes: those bootstrap
// recorded as issued before it. It leaves secrets added through the Graph API
// alone.
Status RevokeSupersededSecrets(auth::Directory& directory, storage::Store& store,
                               const std::string& admin_object_id, const std::string& kept) {
  ASSIGN_OR_RETURN(auto issued, IssuedSecrets(store));
  for (const auto& key_id : issued.value_or(std::vector<std::string>())) {
    if (key_id == kept) {
      continue;
    }
    Status removed = directory.RemoveClientSecret(admin_object_id, key_id);
    if (!removed.ok() && removed.code() != StatusCode::kNotFound) {
      return removed;
    }
    if (removed.ok()) {
      COFFER_LOG(kInfo) << "revoked the administrator's client secret " << key_id
                        << ", superseded by the one in the credentials file";
    }
  }
  return RecordIssuedSecrets(store, {kept});
}

}  // namespace

Status CofferServer::Bootstrap() {
  ASSIGN_OR_RETURN(auto admins_json, store_->GetMeta("admin_object_ids"));
  if (admins_json) {
    auto parsed = ParseJson(*admins_json);
    if (parsed && parsed->is_array()) {
      for (const auto& a : *parsed) {
        if (a.is_string()) {
          admins_.push_back(a.get<std::string>());
        }
      }
    }
  }
  info_.env_file = config_.data_dir + (config_.dev ? "/dev.env" : "/admin.env");
  auto env = ReadEnvFile(info_.env_file);

  // The key id of the secret the credentials file holds.
  std::string kept_key_id;
  if (admins_.empty()) {
    ASSIGN_OR_RETURN(auto sp, directory_->CreateServicePrincipal(
                                  config_.dev ? "coffer-dev" : "coffer-admin", kAdminSecretDays));
    admins_.push_back(sp.principal.object_id);
    RETURN_IF_ERROR(RecordIssuedSecrets(*store_, {sp.secret_key_id}));
    RETURN_IF_ERROR(store_->PutMeta("admin_object_ids", ToJson(Json(admins_))));
    info_.client_id = sp.principal.app_id;
    info_.client_secret = sp.client_secret;
    kept_key_id = sp.secret_key_id;
    COFFER_LOG(kInfo) << "created administrator service principal " << sp.principal.app_id;
  } else {
    ASSIGN_OR_RETURN(auto admin, store_->GetPrincipal(admins_.front()));
    info_.client_id = admin.app_id;
    auto it = env.find("AZURE_CLIENT_SECRET");
    if (env["AZURE_CLIENT_ID"] == admin.app_id && it != env.end()) {
      auto found = directory_->FindClientSecret(admin.object_id, it->second);
      if (found.ok()) {
        info_.client_secret = it->second;
        kept_key_id = found->key_id;
      } else if (found.status().code() != StatusCode::kUnauthenticated) {
        return found.status();
      }
    }
    if (kept_key_id.empty()) {
      ASSIGN_OR_RETURN(auto secret, directory_->AddClientSecret(admin.object_id, kAdminSecretDays));
      // Recorded before the file is written, so that a start failing after
      // this point still revokes what the new secret supersedes next time.
      ASSIGN_OR_RETURN(auto issued, IssuedSecrets(*store_));
      if (!issued) {
        // An installation of a release that did not record what it issued
        // cannot tell its secrets from ones added through the Graph API:
        // every secret of the administrator is taken as superseded.
        issued.emplace();
        ASSIGN_OR_RETURN(auto all, store_->ListClientSecrets(admin.object_id));
        for (const auto& existing : all) {
          issued->push_back(existing.key_id);
        }
      } else {
        issued->push_back(secret.info.key_id);
      }
      RETURN_IF_ERROR(RecordIssuedSecrets(*store_, *issued));
      info_.client_secret = std::move(secret.secret);
      kept_key_id = secret.info.key_id;
      COFFER_LOG(kInfo) << "issued a new client secret for " << admin.app_id
                        << " (credentials file was missing or stale)";
    }
  }

  if (config_.dev) {
    info_.resource_group = kDevResourceGroup;
    auto existing = store_->GetVault(kDevVault);
    if (!existing.ok()) {
      if (existing.status().code() != StatusCode::kNotFound) {
        return existing.status();
      }
      Json body = {{"location", "local"}, {"properties", {{"softDeleteRetentionInDays", 7}}}};
      auto created =
          arm_plane_->vaults().CreateOrUpdate(kDevResourceGroup, kDevVault, body, "2023-07-01");
      if (!created.ok()) {
        return created.status();
      }
      COFFER_LOG(kInfo) << "created vault '" << kDevVault << "'";
    }
    info_.vault_url = "https://" + std::string(kDevVault) + "." + AsciiLower(config_.dns_suffix) +
                      vault_port_suffix_;
  }

  RETURN_IF_ERROR(GrantAdministrators());

  std::ostringstream out;
  // AZURE_TENANT_ID is the tenant's alias "adfs": with it the Azure SDKs'
  // DefaultAzureCredential reaches this authority from these variables
  // alone (token-service.md); COFFER_TENANT_ID is the tenant's id, which
  // az login --tenant and ARM bodies name.
  out << "export AZURE_TENANT_ID=" << kClientTenant << "\n"
      << "export COFFER_TENANT_ID=" << info_.tenant_id << "\n"
      << "export AZURE_CLIENT_ID=" << info_.client_id << "\n"
      << "export AZURE_CLIENT_SECRET=" << info_.client_secret << "\n"
      << "export AZURE_AUTHORITY_HOST=" << info_.authority_host << "\n";
  if (!info_.vault_url.empty()) {
    out << "export COFFER_VAULT_URL=" << info_.vault_url << "\n";
  }
  out << "export COFFER_SUBSCRIPTION_ID=" << info_.subscription_id << "\n";
  if (!info_.resource_group.empty()) {
    out << "export COFFER_RESOURCE_GROUP=" << info_.resource_group << "\n";
  }
  out << "export COFFER_VAULT_DNS_SUFFIX=" << AsciiLower(config_.dns_suffix) << "\n";
  // With an operator's certificate, clients trust its issuer as they do
  // already (the system's store, or their own settings).
  if (!info_.ca_path.empty()) {
    out << "export NODE_EXTRA_CA_CERTS=" << info_.ca_path << "\n"
        << "export REQUESTS_CA_BUNDLE=" << info_.ca_path << "\n";
  }
  // SECURITY: the file holds a client secret; owner-only.
  RETURN_IF_ERROR(WriteFileAtomic(info_.env_file, out.str(), 0600));
  // SECURITY: once the file holds the new secret, the ones it held before
  // stop working: deleting the file and restarting is how an operator
  // replaces a credential that leaked.
  return RevokeSupersededSecrets(*directory_, *store_, admins_.front(), kept_key_id);
}

Status CofferServer::GrantAdministrators() {
  ASSIGN_OR_RETURN(auto done, store_->GetMeta("administrator_grants"));
  if (done) {
    return OkStatus();
  }
  // The administrators own the subscription and administer the data of
  // every RBAC vault, through ordinary role assignments anyone can list
  // and remove (docs/authorization.md).
  std::vector<std::string> admins;
  {
    std::lock_guard<std::mutex> lock(admin_mu_);
    admins = admins_;
  }
  const std::string scope = "/subscriptions/" + info_.subscription_id;
  for (const auto& admin : admins) {
    for (const char* role : {kOwnerRole, kKeyVaultAdministratorRole}) {
      auto assigned = arm_plane_->roles().Assign(scope, role, admin, admin);
      if (!assigned.ok() && assigned.status().code() != StatusCode::kAlreadyExists) {
        return assigned.status();
      }
    }
  }
  // The dev vault uses access policies, as vaults created before
  // api-version 2026-02-01 do: the administrators get every permission.
  if (config_.dev) {
    auto updated = store_->UpdateVault(kDevVault, [&](storage::VaultRecord& v) {
      for (const auto& admin : admins) {
        storage::AccessPolicyRecord p;
        p.tenant_id = info_.tenant_id;
        p.object_id = admin;
        p.secrets = p.keys = p.certificates = p.storage = std::vector<std::string>{"all"};
        v.access_policies.push_back(std::move(p));
      }
      return OkStatus();
    });
    registry_->Invalidate(kDevVault);
    if (!updated.ok() && updated.status().code() != StatusCode::kNotFound) {
      return updated.status();
    }
  }
  return store_->PutMeta("administrator_grants", "1");
}

}  // namespace coffer::server
