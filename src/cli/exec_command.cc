// `coffer exec`: @Microsoft.KeyVault(...) references in the environment of a
// command, resolved with the workload's identity (docs/exec.md).

#include <signal.h>

#include <cstdlib>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "coffer/credentials.h"
#include "common/files.h"
#include "common/strings.h"
#include "exec/resolver.h"
#include "exec/supervisor.h"

extern char** environ;

namespace coffer::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

int ParseSignal(const std::string& text) {
  std::string name = AsciiLower(text);
  if (StartsWith(name, "sig")) {
    name = name.substr(3);
  }
  static const std::pair<const char*, int> kNames[] = {
      {"hup", SIGHUP},   {"int", SIGINT},   {"quit", SIGQUIT},  {"term", SIGTERM},
      {"usr1", SIGUSR1}, {"usr2", SIGUSR2}, {"winch", SIGWINCH}};
  for (const auto& [n, s] : kNames) {
    if (name == n) {
      return s;
    }
  }
  Usage("--signal must be one of SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH");
}

struct ExecFlags {
  std::vector<std::string> command;
  std::string identity;
  int refresh_interval = 86400;
  bool no_watch = false;
  std::string on_change = "restart";
  std::string signal = "SIGHUP";
  double min_restart_interval = 10;
  std::string status_file;
  bool status = false;
  std::string vault_dns_suffix;
};

}  // namespace

void AddExecCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "exec",
      "Run a command with @Microsoft.KeyVault(...) references in its environment resolved, "
      "as App Service does; restart or signal it when a value changes");
  auto f = std::make_shared<ExecFlags>();
  cmd->add_option("--identity", f->identity,
                  "User-assigned identity for every reference (resource id or client id), as "
                  "keyVaultReferenceIdentity; default: the system-assigned identity");
  cmd->add_option("--refresh-interval", f->refresh_interval,
                  "Seconds between re-reads of versionless references")
      ->capture_default_str()
      ->check(CLI::Range(1, 365 * 86400));
  cmd->add_flag("--no-watch", f->no_watch, "Do not follow the vault's watch stream");
  cmd->add_option("--on-change", f->on_change, "restart, signal or none")
      ->capture_default_str()
      ->check(CLI::IsMember({"restart", "signal", "none"}));
  cmd->add_option("--signal", f->signal, "Signal for --on-change signal")->capture_default_str();
  cmd->add_option("--min-restart-interval", f->min_restart_interval,
                  "Seconds: changes closer together than this cause one restart")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--status-file", f->status_file,
                  "Write each reference's status here (JSON, mode 0600)");
  cmd->add_flag("--status", f->status, "Print the status file and exit");
  cmd->add_option("--vault-dns-suffix", f->vault_dns_suffix,
                  "DNS suffix (and port) of VaultName references "
                  "(default: $COFFER_VAULT_DNS_SUFFIX, the port of $AZURE_AUTHORITY_HOST)");
  cmd->add_option("command", f->command, "The command and its arguments, after --");
  cmd->callback([f] {
    if (f->status) {
      if (f->status_file.empty()) {
        Usage("--status needs --status-file");
      }
      auto text = ReadFile(f->status_file);
      if (!text.ok()) {
        Fail(text.status());
      }
      std::cout << *text;
      std::exit(0);
    }
    if (f->command.empty()) {
      Usage("no command: coffer exec [options] -- CMD ARGS...");
    }
    exec::SupervisorOptions sup;
    sup.argv = f->command;
    sup.on_change = f->on_change == "signal" ? exec::SupervisorOptions::OnChange::kSignal
                    : f->on_change == "none" ? exec::SupervisorOptions::OnChange::kNone
                                             : exec::SupervisorOptions::OnChange::kRestart;
    sup.change_signal = ParseSignal(f->signal);
    sup.min_restart_interval =
        std::chrono::milliseconds(static_cast<int64_t>(f->min_restart_interval * 1000));
    sup.status_file = f->status_file;

    // Before any thread exists, so that only the supervisor receives them.
    exec::BlockSupervisorSignals();
    signal(SIGPIPE, SIG_IGN);

    exec::ResolverOptions ro;
    ro.vault_dns_suffix = VaultSuffix(f->vault_dns_suffix);
    bool managed = !f->identity.empty() ||
                   (!Env("IDENTITY_ENDPOINT").empty() && !Env("IDENTITY_HEADER").empty()) ||
                   !Env("AZURE_POD_IDENTITY_AUTHORITY_HOST").empty();
    ro.credential =
        managed ? std::make_shared<ManagedIdentityCredential>(ManagedIdentityId::Parse(f->identity))
                : MakeDefaultAzureCredential();
    // The child waits for the first resolution: keep retries short.
    ro.client.retry.max_retries = 2;
    ro.client.retry.initial_delay = std::chrono::milliseconds(200);
    ro.client.transport_options.timeout_seconds = 10;
    ro.cache.ttl = std::chrono::seconds(f->refresh_interval);
    ro.cache.stale_while_revalidate = std::chrono::milliseconds(0);
    ro.cache.poll_interval = std::chrono::seconds(f->refresh_interval);
    ro.cache.watch = !f->no_watch;
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      environment.emplace_back(*e);
    }
    exec::Resolver resolver(std::move(environment), std::move(ro));
    int code = exec::RunSupervisor(sup, resolver);
    std::cout.flush();
    std::cerr.flush();
    // The caches' threads may be inside a request: leave without waiting.
    std::_Exit(code);
  });
}

}  // namespace coffer::cli
