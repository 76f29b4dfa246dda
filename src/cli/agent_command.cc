// `coffer agent`: the node agent (docs/agent.md). It runs standalone mounts
// from a config file (--config), serves the Secrets Store CSI driver's
// provider protocol (--csi-provider-dir), Prometheus metrics
// (--metrics-port) and Azure's IMDS token endpoint (--imds), in any
// combination. `coffer agent status` prints the mounts' status records;
// `coffer doctor` checks a mount end to end.

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "agent/agent_config.h"
#include "agent/csi/csi_server.h"
#include "agent/csi_provider.h"
#include "agent/doctor.h"
#include "agent/imds.h"
#include "agent/metrics.h"
#include "agent/mount_manager.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/files.h"
#include "common/log.h"
#include "common/strings.h"

namespace coffer::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string DefaultStateDir() {
  std::string dir = Env("COFFER_AGENT_STATE_DIR");
  return dir.empty() ? "/var/lib/coffer/agent" : dir;
}

agent::AgentConfig LoadConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    Fail(Status(text.status().code(),
                "agent config " + path + ": " + std::string(text.status().message())));
  }
  std::string base = std::filesystem::absolute(path).parent_path().string();
  auto config = agent::ParseAgentConfig(*text, base);
  if (!config.ok()) {
    Fail(Status(config.status().code(),
                "agent config " + path + ": " + std::string(config.status().message())));
  }
  config->vault_dns_suffix = VaultSuffix(config->vault_dns_suffix);
  return *std::move(config);
}

struct AgentFlags {
  bool imds = false;
  agent::ImdsOptions imds_options;
  int imds_port = 0;
  std::string header_file;
  std::string config;
  std::string state_dir = DefaultStateDir();
  std::string csi_dir;
  std::string csi_name = "coffer";
  std::string vault_dns_suffix;
  int metrics_port = -1;
  bool no_watch = false;
  bool write_cert_and_key_in_separate_files = false;
};

void RunAgent(const AgentFlags& f) {
  if (!f.imds && f.config.empty() && f.csi_dir.empty()) {
    Usage("nothing to do: pass --config, --csi-provider-dir or --imds");
  }
  if (f.imds_port < 0 || f.imds_port > 65535 || f.metrics_port > 65535) {
    Usage("ports must be 0-65535");
  }
  std::optional<agent::AgentConfig> config;
  if (!f.config.empty()) {
    config = LoadConfig(f.config);
  }
  // A node agent runs on every node, so its footprint counts: two malloc
  // arenas instead of one per thread (each ParallelFor round starts threads)
  // keep freed memory from spreading over arenas. Before any thread starts.
  mallopt(M_ARENA_MAX, 2);
  BlockTerminationSignals();
  agent::AgentMetrics metrics;
  std::unique_ptr<agent::MetricsServer> metrics_server;
  if (f.metrics_port >= 0) {
    auto served = agent::MetricsServer::Start(metrics, static_cast<uint16_t>(f.metrics_port));
    if (!served.ok()) {
      Fail(served.status());
    }
    metrics_server = std::move(served).value();
    std::cout << "metrics: http://127.0.0.1:" << metrics_server->port() << "/metrics\n";
  }

  std::unique_ptr<agent::ImdsServer> imds;
  if (f.imds) {
    agent::ImdsOptions opts = f.imds_options;
    opts.port = static_cast<uint16_t>(f.imds_port);
    if (opts.identity_endpoint.empty()) {
      opts.identity_endpoint = Env("IDENTITY_ENDPOINT");
    }
    if (!f.header_file.empty()) {
      auto text = ReadFile(f.header_file);
      if (!text.ok()) {
        Fail(text.status());
      }
      opts.identity_header = std::string(TrimWhitespace(*text));
    } else {
      opts.identity_header = Env("IDENTITY_HEADER");
    }
    for (const char* var : {"COFFER_CA_FILE", "REQUESTS_CA_BUNDLE"}) {
      if (opts.ca_file.empty()) {
        opts.ca_file = Env(var);
      }
    }
    auto server = agent::ImdsServer::Create(std::move(opts));
    if (!server.ok()) {
      Fail(server.status());
    }
    imds = std::move(server).value();
    imds->Start();
    std::cout << "IMDS endpoint: http://" << f.imds_options.address << ":" << imds->port()
              << "/metadata/identity/oauth2/token\n"
              << "export AZURE_POD_IDENTITY_AUTHORITY_HOST=http://" << f.imds_options.address << ":"
              << imds->port() << "\n";
  }

  agent::VaultReaderOptions ro;
  ro.client.transport_options.timeout_seconds = 20;
  std::unique_ptr<agent::VaultReader> csi_reader;
  std::unique_ptr<agent::CsiProviderServer> csi;
  if (!f.csi_dir.empty()) {
    csi_reader = std::make_unique<agent::VaultReader>(ro);
    agent::CsiProviderOptions po;
    po.vault_dns_suffix = VaultSuffix(f.vault_dns_suffix);
    po.write_cert_and_key_in_separate_files = f.write_cert_and_key_in_separate_files;
    std::string socket = f.csi_dir + "/" + f.csi_name + ".sock";
    auto server = agent::CsiProviderServer::Start(
        socket, agent::MakeCsiMountHandler(*csi_reader, &metrics, po), "0.1.0");
    if (!server.ok()) {
      Fail(server.status());
    }
    csi = std::move(server).value();
    std::cout << "CSI provider: unix://" << socket << "\n";
  }

  std::unique_ptr<agent::MountManager> manager;
  if (config.has_value()) {
    agent::MountManagerOptions mo;
    mo.config = *config;
    mo.state_dir = f.state_dir;
    mo.reader = ro;
    mo.watch = !f.no_watch;
    mo.write_cert_and_key_in_separate_files = f.write_cert_and_key_in_separate_files;
    auto created = agent::MountManager::Create(std::move(mo), &metrics);
    if (!created.ok()) {
      Fail(created.status());
    }
    manager = std::move(created).value();
    manager->Start();
    size_t mounted = 0;
    for (const agent::MountStatus& s : manager->Statuses()) {
      mounted += s.mounted ? 1 : 0;
      if (!s.mounted) {
        std::cout << "mount " << s.name << ": not mounted yet: " << s.last_error << "\n";
      }
    }
    std::cout << "mounts: " << mounted << " of " << config->mounts.size() << " mounted\n";
  }
  std::cout << "agent ready\n";
  std::cout.flush();
  int sig = WaitForTermination();
  COFFER_LOG(kInfo) << "agent stopping on signal " << sig;
  if (csi != nullptr) {
    csi->Shutdown();
  }
  if (manager != nullptr) {
    manager->Stop();
  }
  if (imds != nullptr) {
    imds->Stop();
  }
  std::cout.flush();
  // Open requests of the metrics and IMDS servers need not finish.
  std::_Exit(0);
}

void PrintStatus(const std::string& state_dir, bool json) {
  std::string dir = state_dir + "/mounts";
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  if (ec) {
    Fail(NotFoundError("no status records in " + dir + " (is the agent running with --state-dir " +
                       state_dir + "?)"));
  }
  std::sort(files.begin(), files.end());
  Json all = Json::array();
  for (const auto& p : files) {
    auto text = ReadFile(p.string());
    std::optional<Json> record = text.ok() ? ParseJson(*text) : std::nullopt;
    if (record.has_value() && record->is_object()) {
      all.push_back(*std::move(record));
    }
  }
  if (json) {
    Print(all);
    return;
  }
  for (const Json& r : all) {
    std::string error = StringMember(r, "lastError");
    bool mounted = r.value("mounted", false);
    std::cout << StringMember(r, "name") << "  " << StringMember(r, "target") << "  "
              << (!mounted        ? "NOT MOUNTED"
                  : error.empty() ? "OK"
                                  : "STALE (last refresh failed)")
              << "\n";
    if (r.contains("objects") && r["objects"].is_array()) {
      for (const Json& o : r["objects"]) {
        std::string oe = StringMember(o, "error");
        std::cout << "  " << StringMember(o, "id") << "  "
                  << (oe.empty() ? StringMember(o, "version") : "error: " + oe) << "\n";
      }
    }
    if (r.contains("warnings") && r["warnings"].is_array()) {
      for (const Json& w : r["warnings"]) {
        if (w.is_string()) {
          std::cout << "  warning: " << w.get<std::string>() << "\n";
        }
      }
    }
    if (!error.empty()) {
      std::cout << "  last error: " << error << "\n";
    }
  }
}

}  // namespace

void AddAgentCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "agent",
      "Run the node agent: standalone SecretProviderClass mounts (--config), the CSI driver's "
      "provider socket (--csi-provider-dir), metrics, and an IMDS endpoint (--imds)");
  auto f = std::make_shared<AgentFlags>();
  cmd->add_option("--config", f->config, "The agent's config file (mounts, poll interval)");
  cmd->add_option("--state-dir", f->state_dir, "Where status records are kept")
      ->capture_default_str();
  cmd->add_option("--csi-provider-dir", f->csi_dir,
                  "Serve the CSI provider protocol on <dir>/<name>.sock, e.g. "
                  "/var/run/secrets-store-csi-providers");
  cmd->add_option("--csi-provider-name", f->csi_name,
                  "The provider name (SecretProviderClass spec.provider)")
      ->capture_default_str();
  cmd->add_option("--vault-dns-suffix", f->vault_dns_suffix,
                  "DNS suffix (and port) of vaults for CSI mounts (default: "
                  "$COFFER_VAULT_DNS_SUFFIX, then vault.localhost)");
  cmd->add_option("--metrics-port", f->metrics_port,
                  "Serve Prometheus metrics on 127.0.0.1:<port>/metrics (0 picks one)");
  cmd->add_flag("--no-watch", f->no_watch, "Poll only; do not follow the watch stream");
  cmd->add_flag("--write-cert-and-key-in-separate-files", f->write_cert_and_key_in_separate_files,
                "As the Azure provider's flag: a certificate's secret also gives <file>.crt "
                "(its certificates) and <file>.key (its private key), for CSI and standalone "
                "mounts");
  cmd->add_flag("--imds", f->imds, "Serve /metadata/identity/oauth2/token (plain HTTP, loopback)");
  cmd->add_option("--address", f->imds_options.address, "Loopback address of the IMDS endpoint")
      ->capture_default_str();
  cmd->add_option("--port", f->imds_port, "IMDS port (0 picks a free one)")->capture_default_str();
  cmd->add_option("--identity-endpoint", f->imds_options.identity_endpoint,
                  "The workload's IDENTITY_ENDPOINT (default: $IDENTITY_ENDPOINT)");
  cmd->add_option("--identity-header-file", f->header_file,
                  "File holding the workload's identity header (default: $IDENTITY_HEADER)");

  auto* status = cmd->add_subcommand("status", "Print the status record of each mount");
  auto status_dir = std::make_shared<std::string>(DefaultStateDir());
  auto status_json = std::make_shared<bool>(false);
  status->add_option("--state-dir", *status_dir, "The agent's state directory")
      ->capture_default_str();
  status->add_flag("--json", *status_json, "Print the records as JSON");
  status->callback([=] {
    PrintStatus(*status_dir, *status_json);
    std::exit(0);
  });
  cmd->callback([=] {
    if (cmd->got_subcommand(status)) {
      return;
    }
    RunAgent(*f);
  });

  auto* doctor = app.add_subcommand(
      "doctor",
      "Check a mount end to end: SecretProviderClass, identity, vault, token, each object");
  auto doctor_config = std::make_shared<std::string>();
  auto doctor_mount = std::make_shared<std::string>();
  doctor->add_option("--config", *doctor_config, "The agent's config file")->required();
  doctor->add_option("--mount", *doctor_mount, "The mount to check (default: every mount)");
  doctor->callback([=] {
    agent::AgentConfig config = LoadConfig(*doctor_config);
    agent::DoctorOptions opts;
    opts.vault_dns_suffix = config.vault_dns_suffix;
    opts.transport.timeout_seconds = 10;
    opts.expiry_warning_seconds = config.expiry_warning.count();
    bool all_ok = true;
    bool found = false;
    for (const agent::MountConfig& m : config.mounts) {
      if (!doctor_mount->empty() && m.name != *doctor_mount) {
        continue;
      }
      found = true;
      std::cout << "mount " << m.name << " (" << m.target << ")\n";
      for (const agent::DoctorCheck& c : agent::CheckMount(m, opts)) {
        std::cout << "  ["
                  << (!c.ok       ? "FAIL"
                      : c.warning ? "WARN"
                                  : "ok")
                  << "] " << c.what << ": " << c.detail << "\n";
        if (!c.fix.empty()) {
          std::cout << "         fix: " << c.fix << "\n";
        }
        all_ok = all_ok && c.ok;
      }
    }
    if (!found) {
      Usage("no mount named " + *doctor_mount + " in " + *doctor_config);
    }
    if (!all_ok) {
      std::cout << "Problems found. Also read the agent's log (its warnings name the mount and "
                   "object) and `coffer agent status`.\n";
    }
    std::cout.flush();
    std::exit(all_ok ? 0 : 1);
  });
}

}  // namespace coffer::cli
