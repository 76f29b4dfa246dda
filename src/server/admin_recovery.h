#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace coffer::server {

// The key client secrets are stored under (as HMACs), derived from the
// master key; the server and the offline rotation derive the same.
std::string ClientSecretHashKey(std::string_view master_key);

struct OfflineRotation {
  std::string tenant_id;
  std::string app_id;
  std::string secret;  // in the clear, this once
  std::string key_id;
  int64_t generation = 0;
};

// RotateAdministratorOffline issues a new client secret for the
// installation's administrator directly in the store of `data_dir`, and
// revokes the ones issued before it, as the rotation API does
// (auth::AdministratorCredentials::Rotate). It is how an operator who lost
// the credentials gets new ones: the server delivers them only once.
//
// SECURITY: it needs what the server needs, the data directory and the
// master key (its file there, or COFFER_MASTER_KEY); whoever has those has
// every secret of the installation already, so it grants nothing new.
//
// The server must be stopped: kFailedPrecondition when the audit log of
// `data_dir` is held open by a running server, or the master key file is
// missing (a master key is never made here). kNotFound when `data_dir`
// holds no installation or no administrator.
//
// `store` is the server's --store (store_backend.h). On a shared PostgreSQL
// store other servers may be running: the rotation is one transaction there
// and they hear of it as of any change.
StatusOr<OfflineRotation> RotateAdministratorOffline(const std::string& data_dir,
                                                     const std::string& store = "");

}  // namespace coffer::server
