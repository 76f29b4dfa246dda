#pragma once

// Applying and taking a seed (seed_file.h) through Coffer's public APIs, as
// any client would: ARM for vaults, identities and access, the vault data
// plane for secrets. `coffer keyvault import` and `coffer server --dev
// --seed` apply; `coffer keyvault export` takes.

#include <string>
#include <vector>

#include "cli/seed_file.h"
#include "client/api_client.h"
#include "common/json.h"
#include "common/status.h"
#include "server/server.h"

namespace coffer::cli {

// SeedContextFor gives the placeholders of a seed applied with `config`:
// the authority's host and port, and the time now.
SeedContext SeedContextFor(const client::ClientConfig& config);

// ImportSeed makes the installation hold what `seed` declares, or changes
// nothing:
//  1. It checks first, with reads only: a vault that exists must have the
//     settings the file gives it; a secret of the file must not exist in
//     its vault, live or deleted; a vault of the file must not be among the
//     deleted vaults; every access entry must name a vault that exists or
//     is declared, and a role that exists; versions need values.
//  2. Then it creates identities, vaults, secrets (versions in order) and
//     access, and last turns on purge protection where asked. If a step
//     fails, what it created is removed again (deleted and purged), newest
//     first.
// Errors name the entry (SeedVault::where, ...). Returns a summary of what
// was created and what existed already. The caller's credentials need the
// rights the steps need (the dev administrator has them).
// `file` names the seed in errors, as ParseSeed's do.
StatusOr<Json> ImportSeed(client::ApiClient& c, const Seed& seed, const std::string& file);

// ExportSeed reads the vaults named (every vault when `vaults` is empty;
// kNotFound for a name that is not a vault) with their secrets (every
// version, oldest first by `created` and the current one last; versions
// of one second are in no particular order; secrets a certificate manages
// are left out), every user-assigned
// identity, and each vault's access: the role assignments made at its
// scope, or its access policies. Values are read only when
// `include_values`; a disabled version's value cannot be read and is left
// out.
StatusOr<Seed> ExportSeed(client::ApiClient& c, const std::vector<std::string>& vaults,
                          bool include_values);

// SeedServer applies seed file `path` to a dev server that has just
// started, as its administrator (`info`, the dev.env variables). The file's
// SHA-256 is kept in <data_dir>/seed.sha256 once applied, so that starting
// again on the same data directory with the same file applies nothing; a
// different file is imported as `coffer keyvault import` would. Returns the
// line to print.
StatusOr<std::string> SeedServer(const std::string& path, const server::ConnectionInfo& info,
                                 const std::string& data_dir);

}  // namespace coffer::cli
