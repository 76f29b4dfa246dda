#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace coffer::client {

// A Key Vault reference as App Service reads it from an app setting
// (reference/anchors.md §1.9):
//   @Microsoft.KeyVault(SecretUri=https://<vault>.<suffix>/secrets/<name>[/<version>])
//   @Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>[;SecretVersion=<version>])
struct KeyVaultReference {
  // The vault's URL ("https://host[:port]") when the reference names it by
  // SecretUri; "" for the VaultName form (the resolver builds it).
  std::string vault_url;
  std::string vault_name;
  std::string secret_name;
  std::string version;  // "" means the latest version
};

// ParseKeyVaultReference reads one environment value. nullopt when the value
// is not a reference at all (it passes through unchanged). A value that is
// a reference but malformed is kInvalidArgument with a message naming the
// fault; as on App Service, the caller then leaves the value literal and
// reports it. At most 4,096 characters; no control characters.
StatusOr<std::optional<KeyVaultReference>> ParseKeyVaultReference(std::string_view value);

}  // namespace coffer::client
