// `coffer admin ...`: the installation's administrator.

#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/files.h"
#include "server/admin_recovery.h"
#include "server/server.h"
#include "server/store_backend.h"
#include "server/store_migration.h"

namespace coffer::cli {
namespace {

// What the new credentials file holds besides the new identity: the
// settings of the environment the command ran in (the old file's), so that
// the new file is sourced the same way.
constexpr const char* kCarriedOver[] = {
    "AZURE_AUTHORITY_HOST",  "COFFER_VAULT_URL",        "COFFER_SUBSCRIPTION_ID",
    "COFFER_RESOURCE_GROUP", "COFFER_VAULT_DNS_SUFFIX", "COFFER_CA_FILE",
    "NODE_EXTRA_CA_CERTS",   "REQUESTS_CA_BUNDLE",
};

std::string CredentialsFile(const Json& issued) {
  std::ostringstream out;
  // As the server's own file: the tenant's alias for the SDKs, its id for
  // az login and ARM bodies (bootstrap.cc).
  out << "export AZURE_TENANT_ID=" << server::CofferServer::kClientTenant << "\n"
      << "export COFFER_TENANT_ID=" << issued.value("tenant", "") << "\n"
      << "export AZURE_CLIENT_ID=" << issued.value("appId", "") << "\n"
      << "export AZURE_CLIENT_SECRET=" << issued.value("password", "") << "\n";
  for (const char* name : kCarriedOver) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') {
      out << "export " << name << "=" << value << "\n";
    }
  }
  return out.str();
}

}  // namespace

void AddStorageCommands(CLI::App& app) {
  auto* storage = app.add_subcommand("storage", "The installation's store");
  storage->require_subcommand(1);
  auto* migrate = storage->add_subcommand(
      "migrate",
      "Copy a stopped SQLite installation into a PostgreSQL database, in one transaction, and "
      "verify every table (rows and digest); run it again after an interruption");
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  migrate->add_option("--from", *from, "The stopped server's data directory")->required();
  migrate
      ->add_option("--to", *to, "The PostgreSQL connection string the servers will take as --store")
      ->required();
  migrate->callback([from, to] {
    if (!server::IsPostgresStore(*to)) {
      Fail(
          InvalidArgumentError("--to: expected a PostgreSQL connection string "
                               "(postgresql://... or key=value)"));
    }
    auto migrated = server::MigrateToPostgres(*from, *to);
    if (!migrated.ok()) {
      Fail(migrated.status());
    }
    Json tables = Json::array();
    for (const auto& t : *migrated) {
      tables.push_back({{"table", t.table}, {"rows", t.rows}, {"digest", t.digest}});
    }
    Print(tables);
    std::exit(0);
  });
}

void AddAdminCommands(CLI::App& app) {
  auto* admin = app.add_subcommand("admin", "The installation's administrator");
  admin->require_subcommand(1);
  auto* credentials =
      admin->add_subcommand("credentials", "The administrator's client credentials");
  credentials->require_subcommand(1);
  auto* rotate = credentials->add_subcommand(
      "rotate",
      "Issue a new client secret for the administrator and revoke the one it replaces; run as "
      "the administrator (its credentials in the environment)");
  auto file = std::make_shared<std::string>();
  auto data_dir = std::make_shared<std::string>();
  rotate->add_option("--credentials-file", *file,
                     "Write the new credentials here (mode 0600, as admin.env) instead of "
                     "printing them");
  rotate->add_option("--data-dir", *data_dir,
                     "Rotate in the stopped server's data directory instead, as its operator: "
                     "for credentials that were lost");
  auto store = std::make_shared<std::string>();
  rotate->add_option("--store", *store,
                     "With --data-dir: the server's --store, when it is not SQLite in the data "
                     "directory");
  rotate->callback([file, data_dir, store] {
    Json issued;
    if (!data_dir->empty()) {
      auto offline = server::RotateAdministratorOffline(*data_dir, *store);
      if (!offline.ok()) {
        Fail(offline.status());
      }
      issued = Json{{"appId", offline->app_id},
                    {"tenant", offline->tenant_id},
                    {"password", offline->secret},
                    {"keyId", offline->key_id},
                    {"generation", offline->generation}};
    } else {
      auto c = MakeClient();
      issued = Expect(
          c.Call("POST", c.config().authority + "/coffer/v1/administrator/credentials/rotate",
                 c.config().authority),
          {200});
    }
    if (file->empty()) {
      // Shown this once, as az prints a reset password.
      Print(issued);
      std::exit(0);
    }
    // SECURITY: the file holds the secret: owner-only, replaced whole.
    Status written = WriteFileAtomic(*file, CredentialsFile(issued), 0600);
    if (!written.ok()) {
      // The old secret is revoked already: the new one must not be lost.
      std::cerr << "ERROR: cannot write " << *file << " (" << written.message()
                << "); the new credentials follow, keep them now\n";
      Print(issued);
      std::exit(1);
    }
    issued.erase("password");
    issued["credentialsFile"] = *file;
    Print(issued);
    std::exit(0);
  });
}

}  // namespace coffer::cli
