#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

// Each Add* registers a command group on `app`. The callbacks exit the
// process with az's conventions: 0 on success, 1 on a service error (printed
// as "ERROR: (Code) message" on stderr), 2 on a usage error.
void AddServerCommand(CLI::App& app);
// coffer ca export: the built-in CA's certificate.
void AddCaCommands(CLI::App& app);
void AddKeyVaultCommands(CLI::App& app);
// `keyvault key ...` on the `keyvault` group `kv` (key_commands.cc).
void AddKeyCommands(CLI::App& kv);
// `keyvault certificate ...` on the `keyvault` group (certificate_commands.cc).
void AddCertificateCommands(CLI::App& kv);
void AddAdCommands(CLI::App& app);
// login_commands.cc: `coffer login` and `coffer logout`.
void AddLoginCommands(CLI::App& app);
void AddIdentityCommands(CLI::App& app);
void AddWorkloadCommands(CLI::App& app);
void AddAgentCommand(CLI::App& app);
// coffer exec: @Microsoft.KeyVault(...) references for a child process.
void AddExecCommand(CLI::App& app);
void AddTokenCommands(CLI::App& app);
void AddLimitsCommands(CLI::App& app);
// coffer admin credentials rotate: the administrator's client secret.
void AddAdminCommands(CLI::App& app);
// coffer storage migrate: a SQLite installation into PostgreSQL.
void AddStorageCommands(CLI::App& app);
// coffer role ... and coffer authz explain.
void AddRoleCommands(CLI::App& app);
// coffer audit ... and coffer eventgrid event-subscription ...
void AddAuditCommands(CLI::App& app);
// coffer env plan|apply|check|diff|promote (env_commands.cc).
void AddEnvCommands(CLI::App& app);
// coffer cloud az-config: the custom cloud for azure-cli.
void AddCloudCommands(CLI::App& app);

}  // namespace coffer::cli
