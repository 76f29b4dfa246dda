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
constexpr char kOwnerRole[] = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
constexpr char kKeyVaultAdministratorRole[] = "00482a5a-887f-4fb3-b363-3b7fe8e74483";

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? ParseEnvLines(*text) : std::map<std::string, std::string>();
}

}  // namespace

Status CofferServer::Bootstrap() {
  const bool to_stdout = config_.admin_credentials_file == "-";
  if (!to_stdout) {
    info_.env_file = !config_.admin_credentials_file.empty()
                         ? config_.admin_credentials_file
                         : config_.data_dir + (config_.dev ? "/dev.env" : "/admin.env");
  }
  admin_credentials_ =
      std::make_unique<auth::AdministratorCredentials>(*directory_, *store_, kAdminSecretDays);
  ASSIGN_OR_RETURN(auto claim, admin_credentials_->ClaimAdministrator(
                                   config_.dev ? "coffer-dev" : "coffer-admin"));
  {
    std::lock_guard<std::mutex> lock(admin_mu_);
    admins_ = claim.administrators;
  }
  const std::string admin_id = claim.administrators.front();
  ASSIGN_OR_RETURN(auto admin, store_->GetPrincipal(admin_id));
  info_.client_id = admin.app_id;

  if (claim.created) {
    info_.client_secret = claim.created->client_secret;
    info_.credentials_issued = true;
    COFFER_LOG(kInfo) << "created administrator service principal " << admin.app_id;
  } else if (config_.dev) {
    // In dev mode the file is the credential's home, rewritten at every
    // start (its URLs follow --port): a file that holds one of the
    // administrator's secrets keeps it; a missing or stale one gets a new
    // secret.
    auto env = ReadEnvFile(info_.env_file);
    auto it = env.find("AZURE_CLIENT_SECRET");
    if (env["AZURE_CLIENT_ID"] == admin.app_id && it != env.end()) {
      auto found = directory_->FindClientSecret(admin_id, it->second);
      if (found.ok()) {
        info_.client_secret = it->second;
        RETURN_IF_ERROR(admin_credentials_->Keep(admin_id, found->key_id));
      } else if (found.status().code() != StatusCode::kUnauthenticated) {
        return found.status();
      }
    }
    if (info_.client_secret.empty()) {
      ASSIGN_OR_RETURN(auto issued, admin_credentials_->Rotate(admin_id));
      info_.client_secret = std::move(issued.secret.secret);
      COFFER_LOG(kInfo) << "issued a new client secret for " << admin.app_id
                        << " (credentials file was missing or stale)";
    }
    info_.credentials_issued = true;
  } else {
    // SECURITY: outside dev mode the credentials leave the server once, at
    // the first start; a later start (the file deleted or not) neither
    // writes nor prints them. `coffer admin credentials rotate` issues new
    // ones to the administrator.
    COFFER_LOG(kInfo) << "administrator " << admin.app_id
                      << ": its credentials were delivered at the first start";
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

  if (info_.credentials_issued) {
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
    // The vaults' port goes with the suffix when it is not the authority's:
    // clients take the authority's port for a suffix without one.
    std::string vault_port;
    if (vault_port_suffix_ != port_suffix_) {
      vault_port = vault_port_suffix_.empty() ? ":443" : vault_port_suffix_;
    }
    out << "export COFFER_VAULT_DNS_SUFFIX=" << AsciiLower(config_.dns_suffix) << vault_port
        << "\n";
    // With an operator's certificate, clients trust its issuer as they do
    // already (the system's store, or their own settings).
    if (!info_.ca_path.empty()) {
      out << "export NODE_EXTRA_CA_CERTS=" << info_.ca_path << "\n"
          << "export REQUESTS_CA_BUNDLE=" << info_.ca_path << "\n";
    }
    info_.credentials = out.str();
    if (!to_stdout) {
      // SECURITY: the file holds a client secret; owner-only, and written
      // whole or not at all.
      Status written = WriteFileAtomic(info_.env_file, info_.credentials, 0600);
      if (!written.ok()) {
        if (claim.created && !config_.dev) {
          // Nobody will ever hold this administrator's secret: the next
          // start creates the administrator again.
          Status abandoned = admin_credentials_->AbandonClaim(admin_id);
          if (!abandoned.ok()) {
            COFFER_LOG(kError) << "could not undo the administrator's creation: "
                               << abandoned.ToString();
          }
        }
        return FailedPreconditionError("cannot write the administrator's credentials to " +
                                       info_.env_file + ": " + std::string(written.message()));
      }
    }
  }
  return GrantAdministrators();
}

http::Response CofferServer::RotateAdministratorCredentials() {
  std::string admin_id;
  {
    std::lock_guard<std::mutex> lock(admin_mu_);
    admin_id = admins_.front();
  }
  auto admin = store_->GetPrincipal(admin_id);
  if (!admin.ok()) {
    return http::ErrorResponse(admin.status());
  }
  auto issued = admin_credentials_->Rotate(admin_id);
  if (!issued.ok()) {
    return http::ErrorResponse(issued.status());
  }
  // The one response that carries the new secret, as az's `ad sp
  // credential reset` shows its password once.
  return http::JsonResponse(200, ToJson(Json{{"appId", admin->app_id},
                                             {"tenant", info_.tenant_id},
                                             {"password", issued->secret.secret},
                                             {"keyId", issued->secret.info.key_id},
                                             {"generation", issued->generation}}));
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
