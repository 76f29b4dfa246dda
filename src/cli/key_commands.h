#pragma once

#include <string>
#include <utility>

#include <CLI/CLI.hpp>

#include "cli/vault_objects.h"
#include "client/api_client.h"
#include "common/json.h"

// Shared by the files of `coffer keyvault key ...`: key_commands.cc (create,
// import, reads, lifecycle, backup) and key_crypto_commands.cc (encrypt,
// decrypt, sign, verify, download). Failures exit as cli_util.h says.

namespace coffer::cli {

// AddKeyTarget adds --vault-name and --name, and with `with_version` also
// --version and --id (https://<vault>.../keys/<name>[/<version>]).
void AddKeyTarget(CLI::App* cmd, ObjectArgs& args, bool with_version);

// ResolveKey is ResolveObject for a command that names one key: a usage
// error without a name.
std::pair<std::string, std::string> ResolveKey(const client::ApiClient& c, ObjectArgs& args);

// VersionPath is "/keys/<name>/<version>[/<operation>]". An empty version
// ("/keys/k/", "/keys/k//sign") is the latest, as in Key Vault.
std::string VersionPath(const ObjectArgs& args, const std::string& operation = "");

// ResultBytes is the base64url `value` of a keys API result, decoded; fails
// (exit 1) if the server sent none.
std::string ResultBytes(const Json& result);

// AddKeyCryptoCommands registers encrypt, decrypt, sign, verify and download
// on the `key` group.
void AddKeyCryptoCommands(CLI::App* key);

}  // namespace coffer::cli
