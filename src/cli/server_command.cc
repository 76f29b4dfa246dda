#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <tuple>

#include "audit/servers.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/seed_apply.h"
#include "cli/server_config.h"
#include "cli/vault_objects.h"
#include "common/files.h"
#include "common/json.h"
#include "common/log.h"
#include "common/log_context.h"
#include "crypto/primitives.h"
#include "server/public_names.h"
#include "server/server.h"

#include <sys/stat.h>

namespace coffer::cli {

void AddServerCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("server",
                                 "Run the vault server (HTTPS: Key Vault data plane, "
                                 "token service, management plane)");
  auto config = std::make_shared<server::ServerConfig>();
  auto log_level = std::make_shared<std::string>("info");
  auto config_file = std::make_shared<std::string>();
  auto print_config = std::make_shared<bool>(false);
  // Read by ServerArguments before this parser runs (server_config.h).
  cmd->add_option("--config", *config_file,
                  "A YAML file of settings: each key a flag's name without dashes; the command "
                  "line, then COFFER_<FLAG> variables, override it");
  cmd->add_flag("--print-config", *print_config,
                "Print the effective configuration as --config takes it, and exit");
  cmd->add_flag("--dev", config->dev,
                "Development mode: create (once) a vault named 'dev' and an administrator "
                "service principal, and write DATA_DIR/dev.env");
  cmd->add_option("--data-dir", config->data_dir, "Data directory")->capture_default_str();
  cmd->add_option("--store", config->store,
                  "Where the data lives: SQLite in the data directory (the default), or a "
                  "PostgreSQL connection string (postgresql://... or key=value) that several "
                  "servers share (docs/ha.md); put its password in PGPASSFILE or PGPASSWORD");
  cmd->add_option("--admin-credentials-file", config->admin_credentials_file,
                  "Where the first start writes the administrator's credentials (mode 0600; "
                  "default DATA_DIR/admin.env, with --dev DATA_DIR/dev.env); '-' prints them "
                  "instead. Only the start that creates the administrator writes or prints them; "
                  "`coffer admin credentials rotate` issues new ones");
  cmd->add_option("--port", config->port, "HTTPS port (0 picks a free one)")->capture_default_str();
  cmd->add_option("--listen", config->listen, "Addresses to listen on")->capture_default_str();
  auto authority_host = std::make_shared<std::string>("localhost");
  auto dns_suffix = std::make_shared<std::string>("vault.localhost");
  cmd->add_option("--authority-host", *authority_host,
                  "NAME[:PORT] clients reach the token service and management plane at; every "
                  "URL the server writes uses it (PORT defaults to --port)")
      ->capture_default_str();
  cmd->add_option("--dns-suffix", *dns_suffix,
                  "SUFFIX[:PORT]: vaults are served at https://<vault>.<SUFFIX>:<PORT> (PORT "
                  "defaults to --port); a request for a host that is neither this nor the "
                  "authority is answered 421")
      ->capture_default_str();
  cmd->add_option("--tls-cert", config->tls_cert,
                  "The server's certificate chain (PEM file, server certificate first); it "
                  "must cover the authority host and *.<dns suffix>. Without it the built-in CA "
                  "issues one (DATA_DIR/tls) and renews it");
  cmd->add_option("--tls-key", config->tls_key, "The certificate's private key (PEM file)");
  cmd->add_option("--tls-reload-interval", config->tls_reload_seconds,
                  "Seconds between checks of the certificate files: a changed file is served "
                  "to new connections (SIGHUP reloads at once)")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--metrics-listen", config->metrics_listen,
                  "ADDR:PORT of a plain-HTTP listener for GET /metrics (Prometheus), /healthz "
                  "and /readyz; never the public port (PORT 0 picks a free one)");
  cmd->add_option("--io-threads", config->io_threads, "Network threads")->capture_default_str();
  cmd->add_option("--worker-threads", config->worker_threads, "Request worker threads")
      ->capture_default_str();
  cmd->add_option("--read-timeout", config->read_timeout_seconds,
                  "Seconds a client has to send each request")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--idle-timeout", config->idle_timeout_seconds,
                  "Seconds a kept-alive connection may wait for its next request")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--max-connections", config->max_connections,
                  "Connections open at once, streams included (0: as many as the open-file "
                  "limit allows)")
      ->capture_default_str();
  cmd->add_option("--max-connections-per-address", config->max_connections_per_address,
                  "Connections open at once from one client address, an IPv6 /64 counting as "
                  "one (0: no cap; raise it behind a load balancer that connects from one "
                  "address)")
      ->capture_default_str();
  cmd->add_option("--purge-interval", config->purge_interval_seconds,
                  "Seconds between scheduled purges of expired deleted secrets")
      ->capture_default_str();
  cmd->add_option("--service-limits", config->service_limits,
                  "off or azure: Key Vault's service limits, 429 with Retry-After beyond them, "
                  "until an administrator sets them (coffer limits set; "
                  "docs/service-limits.md)")
      ->check(CLI::IsMember({"off", "azure"}))
      ->capture_default_str();
  cmd->add_flag("--allow-time-shift", config->allow_time_shift,
                "Let administrators move vaults' clocks forward (coffer keyvault time-shift); "
                "always allowed with --dev");
  auto seed = std::make_shared<std::string>();
  cmd->add_option("--seed", *seed,
                  "With --dev: a seed file (YAML) of vaults, secrets, identities and access to "
                  "create at start, all or nothing (docs/testing-with-coffer.md)");
  auto audit = std::make_shared<std::string>("on");
  cmd->add_option("--audit", *audit, "on or off: the audit log (docs/audit.md)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd->add_option("--audit-max-file-bytes", config->audit_max_file_bytes,
                  "Rotate an audit file at this size")
      ->capture_default_str();
  cmd->add_option("--audit-max-file-age", config->audit_max_file_age_seconds,
                  "Rotate an audit file after this many seconds")
      ->capture_default_str();
  cmd->add_option("--audit-retention-days", config->audit_retention_days,
                  "Delete rotated audit files older than this (0 keeps them)")
      ->capture_default_str();
  cmd->add_option("--audit-signing-key", config->audit_signing_key,
                  "The audit checkpoint signing key (default "
                  "DATA_DIR/audit/SERVER_ID/checkpoint.key); keep it where whoever can write the "
                  "audit directory cannot");
  cmd->add_option("--server-id", config->server_id,
                  "This server's id, 1-63 of [a-z0-9-]: its audit log is "
                  "DATA_DIR/audit/SERVER_ID and every record names it (default: the id kept in "
                  "DATA_DIR/server-id, made once at random)");
  cmd->add_option("--event-retry-base-ms", config->event_retry_base_ms,
                  "First webhook retry delay; later ones follow Event Grid's schedule")
      ->capture_default_str();
  cmd->add_option("--expiry-scan-interval", config->expiry_scan_seconds,
                  "Seconds between scans for secrets near expiry or expired")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--stale-reads", config->stale_read_seconds,
                  "Seconds a cached vault or secret may still answer reads while the database "
                  "cannot be reached (0: such reads fail with 503)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  cmd->add_option("--change-retention-days", config->change_retention_days,
                  "Days the change feed keeps changes for watch streams to resume from")
      ->capture_default_str()
      ->check(CLI::Range(1, 365));
  cmd->add_option("--watch-heartbeat", config->watch_heartbeat_seconds,
                  "Seconds between heartbeats on watch streams")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--watch-streams-per-principal", config->watch_streams_per_principal,
                  "Watch streams one principal may hold open on this server")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  auto allow_loopback = std::make_shared<bool>(false);
  auto* loopback_flag = cmd->add_flag("--webhook-allow-loopback", *allow_loopback,
                                      "Deliver webhooks to loopback addresses (127.0.0.0/8, ::1); "
                                      "on with --dev unless given as "
                                      "--webhook-allow-loopback=false");
  cmd->add_flag("--webhook-allow-private", config->webhook_allow_private,
                "Deliver webhooks to private addresses (10/8, 172.16/12, 192.168/16, "
                "100.64/10, 198.18/15, fc00::/7)");
  cmd->add_flag("--webhook-allow-link-local", config->webhook_allow_link_local,
                "Deliver webhooks to link-local addresses (169.254/16, fe80::/10), cloud "
                "metadata endpoints included");
  cmd->add_option("--log-level", *log_level, "debug, info, warning or error")
      ->capture_default_str();
  auto log_format = std::make_shared<std::string>("text");
  cmd->add_option("--log-format", *log_format,
                  "text, or json: one object per line, with requestId (the x-ms-request-id the "
                  "response carries) and correlationId (the client's x-ms-client-request-id) on "
                  "the lines of a request")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([cmd, config, seed, log_level, audit, allow_loopback, loopback_flag, authority_host,
                 dns_suffix, print_config, config_file, log_format] {
    config->audit = *audit == "on";
    if (!config->server_id.empty()) {
      // Refused before the data directory is touched.
      if (Status valid = audit::ValidateServerId(config->server_id); !valid.ok()) {
        Usage("--server-id: " + std::string(valid.message()));
      }
    }
    for (auto [value, flag, name, port] :
         {std::tuple{authority_host.get(), "--authority-host", &config->authority_name,
                     &config->authority_port},
          std::tuple{dns_suffix.get(), "--dns-suffix", &config->dns_suffix, &config->vault_port}}) {
      auto parsed = server::ParsePublicName(*value, flag);
      if (!parsed.ok()) {
        std::cerr << "coffer server: " << parsed.status().message() << "\n";
        std::exit(2);
      }
      *name = parsed->name;
      *port = parsed->port;
    }
    if (config->dev && config->admin_credentials_file == "-") {
      std::cerr << "coffer server: --admin-credentials-file - (print) is for servers without "
                   "--dev; the dev server always writes its file\n";
      std::exit(2);
    }
    if (!seed->empty() && !config->dev) {
      std::cerr << "coffer server: --seed is for dev servers (--dev); elsewhere use coffer "
                   "keyvault import\n";
      std::exit(2);
    }
    if (config->tls_cert.empty() != config->tls_key.empty()) {
      std::cerr << "coffer server: --tls-cert and --tls-key go together\n";
      std::exit(2);
    }
    // Printed once every value has been checked.
    if (*print_config) {
      std::cout << EffectiveServerConfig(*cmd);
      std::exit(0);
    }
    if (loopback_flag->count() > 0) {
      config->webhook_allow_loopback = *allow_loopback;
    }
    SetLogFormat(*log_format == "json" ? LogFormat::kJson : LogFormat::kText);
    if (*log_level == "debug")
      SetLogLevel(LogLevel::kDebug);
    if (*log_level == "warning")
      SetLogLevel(LogLevel::kWarning);
    if (*log_level == "error")
      SetLogLevel(LogLevel::kError);
    // Before any thread starts, so that only the wait below sees them.
    BlockTerminationSignals();
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, nullptr);
    // SECURITY: everything the server creates (database, keys) is owner-only.
    ::umask(077);

    auto created = server::CofferServer::Create(*config);
    if (!created.ok()) {
      std::cerr << "coffer server: " << created.status().ToString() << "\n";
      std::exit(1);
    }
    auto& srv = **created;
    srv.SetSeeding(!seed->empty());
    srv.Start();
    const auto& info = srv.connection_info();
    if (!seed->empty()) {
      auto seeded = SeedServer(*seed, info, config->data_dir);
      if (!seeded.ok()) {
        const Status& failed = seeded.status();
        std::cerr << "coffer server: --seed "
                  << (failed.reason().empty() ? "" : "(" + std::string(failed.reason()) + ") ")
                  << failed.message() << "\n";
        srv.Stop();
        std::exit(1);
      }
      std::cout << *seeded << "\n";
      srv.SetSeeding(false);
    }
    std::cout << "Coffer is listening on port " << srv.port() << " as " << info.authority_host
              << "\n";
    if (!info.vault_url.empty()) {
      std::cout << "Dev vault: " << info.vault_url << "\n";
    }
    if (!info.ca_path.empty()) {
      std::cout << "CA certificate: " << info.ca_path << "\n";
    }
    if (srv.metrics_port() != 0) {
      std::cout << "Metrics on port " << srv.metrics_port() << "\n";
    }
    if (config->dev) {
      std::cout << "Credentials (source this file): " << info.env_file << "\n\n";
    } else if (info.credentials_issued && info.env_file.empty()) {
      // SECURITY: printed this once, as asked; no later start prints them.
      std::cout << "Administrator credentials (shown once; keep them now):\n"
                << info.credentials << "\n";
    } else if (info.credentials_issued) {
      std::cout << "Administrator credentials (written once, mode 0600): " << info.env_file << "\n";
    } else {
      std::cout << "Administrator " << info.client_id
                << ": credentials were delivered at the first start; `coffer admin credentials "
                   "rotate` issues new ones\n";
    }
    if (config->dev) {
      // The dev credentials are printed so a newcomer can paste them; the
      // same file is written with mode 0600.
      std::cout << "export AZURE_TENANT_ID=" << server::CofferServer::kClientTenant << "\n"
                << "export COFFER_TENANT_ID=" << info.tenant_id << "\n"
                << "export AZURE_CLIENT_ID=" << info.client_id << "\n"
                << "export AZURE_CLIENT_SECRET=" << info.client_secret << "\n"
                << "export AZURE_AUTHORITY_HOST=" << info.authority_host << "\n"
                << "export COFFER_VAULT_URL=" << info.vault_url << "\n";
      if (!info.ca_path.empty()) {
        std::cout << "export NODE_EXTRA_CA_CERTS=" << info.ca_path << "\n"
                  << "export REQUESTS_CA_BUNDLE=" << info.ca_path << "\n";
      }
    }
    std::cout.flush();
    COFFER_LOG(kInfo) << "ready on port " << srv.port();
    // SIGHUP reloads the TLS certificate; SIGINT and SIGTERM stop.
    sigset_t waited;
    sigemptyset(&waited);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) {
      sigaddset(&waited, s);
    }
    int sig = 0;
    while (sigwait(&waited, &sig) == 0 && sig == SIGHUP) {
      COFFER_LOG(kInfo) << "reloading the TLS certificate on SIGHUP";
      (void)srv.ReloadTls();
    }
    COFFER_LOG(kInfo) << "stopping on signal " << sig;
    srv.Stop();
    std::exit(0);
  });
}

void AddCaCommands(CLI::App& app) {
  auto* ca = app.add_subcommand(
      "ca", "The certificate authorities: the server's TLS CA, and the CA vault issuers sign with");
  ca->require_subcommand(1);
  auto* exp = ca->add_subcommand(
      "export",
      "Print the built-in TLS CA's certificate (PEM) from the data directory, for "
      "clients of the server to trust");
  auto data_dir = std::make_shared<std::string>(".coffer");
  exp->add_option("--data-dir", *data_dir, "The server's data directory")->capture_default_str();
  exp->callback([data_dir] {
    // Only the certificate: the CA's key never leaves DATA_DIR/tls.
    auto pem = ReadFile(*data_dir + "/tls/ca.pem");
    if (!pem.ok()) {
      std::cerr << "coffer ca export: " << pem.status().message()
                << " (the server makes its CA on first start, unless given --tls-cert)\n";
      std::exit(1);
    }
    std::cout << *pem;
    std::exit(0);
  });
  // The CA of the store (certificates.md), which the server serves.
  auto* show = ca->add_subcommand(
      "show",
      "Print the issuing CA that vault issuers of the Coffer provider sign certificates with "
      "(PEM, from the server), for trust stores");
  auto file = std::make_shared<std::string>();
  show->add_option("-f,--file", *file, "Write it to this file instead (refused if it exists)");
  show->callback([file] {
    auto c = MakeClient();
    auto response = c.Call("GET", c.config().authority + "/coffer/v1/ca", c.config().authority);
    if (!response.ok() || response->status != 200) {
      Expect(response, {200});
    }
    if (file->empty()) {
      std::cout << response->body;
      return;
    }
    RefuseExisting(*file);
    WriteFileOrUsage(*file, response->body);
  });
  auto* import = ca->add_subcommand(
      "import",
      "Make a CA of yours (an intermediate of your root) the issuing CA, from a PEM file with "
      "its unencrypted key and its certificate chain; administrators only");
  auto bundle = std::make_shared<std::string>();
  import->add_option("-f,--file", *bundle, "The PEM file")->required();
  import->callback([bundle] {
    std::string pem = ReadFileOrUsage(*bundle);
  auto c = MakeClient();
  auto response = c.Call("PUT", c.config().authority + "/coffer/v1/ca", c.config().authority,
                         ToJson(Json{{"value", pem}}));
  crypto::SecureWipe(pem);
  if (!response.ok() || response->status != 200) {
    Expect(response, {200});
  }
  std::cout << response->body;
});
}  // namespace coffer::cli

}  // namespace coffer::cli
