#include "server/admin_recovery.h"

#include <cstdlib>
#include <memory>
#include <utility>

#include "audit/servers.h"
#include "auth/admin_credentials.h"
#include "auth/directory.h"
#include "common/clock.h"
#include "common/file_system.h"
#include "common/json.h"
#include "crypto/primitives.h"
#include "keyvault/envelope.h"
#include "server/store_backend.h"

namespace coffer::server {
namespace {

constexpr int kAdminSecretDays = 365;

}  // namespace

std::string ClientSecretHashKey(std::string_view master_key) {
  return crypto::HkdfSha256(master_key, "", "coffer client secret hash v1", 32);
}

StatusOr<OfflineRotation> RotateAdministratorOffline(const std::string& data_dir,
                                                     const std::string& store_spec) {
  FileSystem& fs = FileSystem::Default();
  const std::string db_path = data_dir + "/coffer.db";
  if (store_spec.empty() && !fs.Stat(db_path).ok()) {
    return NotFoundError("no Coffer installation in " + data_dir + " (no coffer.db)");
  }
  if (store_spec.empty() && audit::AnyLogOpen(fs, data_dir + "/audit")) {
    return FailedPreconditionError("a coffer server is running on " + data_dir +
                                   "; stop it first, or rotate through it as the administrator");
  }
  const char* env_key = std::getenv("COFFER_MASTER_KEY");
  if ((env_key == nullptr || *env_key == '\0') && !fs.Stat(data_dir + "/master.key").ok()) {
    return FailedPreconditionError("no master key: neither " + data_dir +
                                   "/master.key nor COFFER_MASTER_KEY");
  }
  ASSIGN_OR_RETURN(std::string master_key,
                   keyvault::Envelope::LoadMasterKey(data_dir + "/master.key"));
  auth::DirectoryOptions options;
  options.secret_hash_key = ClientSecretHashKey(master_key);
  crypto::SecureWipe(master_key);
  ASSIGN_OR_RETURN(OpenedStore opened, OpenStore(store_spec, data_dir));
  std::unique_ptr<storage::Store> store = std::move(opened.store);
  ASSIGN_OR_RETURN(auto tenant, store->GetMeta("tenant_id"));
  ASSIGN_OR_RETURN(auto admins_json, store->GetMeta("admin_object_ids"));
  auto admins = admins_json ? ParseJson(*admins_json) : std::nullopt;
  if (!tenant || !admins || !admins->is_array() || admins->empty() || !(*admins)[0].is_string()) {
    return NotFoundError("the installation in " + data_dir + " has no administrator yet");
  }
  const std::string admin_id = (*admins)[0].get<std::string>();
  auth::Directory directory(*store, SystemClock::Get(), *tenant, std::move(options));
  auth::AdministratorCredentials credentials(directory, *store, kAdminSecretDays);
  ASSIGN_OR_RETURN(auto principal, store->GetPrincipal(admin_id));
  ASSIGN_OR_RETURN(auto issued, credentials.Rotate(admin_id));
  return OfflineRotation{*tenant, principal.app_id, std::move(issued.secret.secret),
                         issued.secret.info.key_id, issued.generation};
}

}  // namespace coffer::server
