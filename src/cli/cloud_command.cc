// coffer cloud az-config: the custom cloud that lets Debian's azure-cli
// (2.45, MSAL for Python 1.21) work against this server unmodified
// (docs/compatibility.md, "az").

#include <cstdlib>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/json.h"
#include "http/url.h"
#include "server/public_names.h"

namespace coffer::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// "https://name[:port]" for NAME[:PORT]; no port means 443.
std::string Origin(const server::PublicName& n) {
  return "https://" + n.name + (n.port == 0 || n.port == 443 ? "" : ":" + std::to_string(n.port));
}

Json AzCloudConfig(const std::string& authority_origin, const std::string& vault_suffix) {
  // One origin serves the token service, ARM and Graph. activeDirectory
  // ends in /adfs: MSAL 1.21, which az gives no instance_discovery setting,
  // then treats the authority as known to the developer and never calls
  // login.microsoftonline.com; az keeps the path as it is and names no
  // tenant in it (the token service's alias).
  const std::string& o = authority_origin;
  return Json{{"endpoints",
               {{"activeDirectory", o + "/adfs"},
                {"activeDirectoryResourceId", o},
                {"activeDirectoryGraphResourceId", o},
                {"microsoftGraphResourceId", o},
                {"resourceManager", o},
                {"management", o}}},
              {"suffixes", {{"keyvaultDns", "." + vault_suffix}}}};
}

}  // namespace

void AddCloudCommands(CLI::App& app) {
  auto* cloud = app.add_subcommand("cloud", "Settings for Azure tools that speak to this server");
  cloud->require_subcommand(1);
  auto* az = cloud->add_subcommand(
      "az-config",
      "Print the cloud configuration for `az cloud register --name Coffer --cloud-config @FILE`");
  auto authority = std::make_shared<std::string>();
  auto suffix = std::make_shared<std::string>();
  az->add_option("--authority-host", *authority,
                 "The server's --authority-host, NAME[:PORT] (default: the name and port of "
                 "$AZURE_AUTHORITY_HOST)");
  az->add_option("--dns-suffix", *suffix,
                 "The server's --dns-suffix, NAME[:PORT] (default: $COFFER_VAULT_DNS_SUFFIX; "
                 "without a port, the authority's)");
  az->callback([=] {
    std::string host = *authority;
    if (host.empty()) {
      std::string env = Env("AZURE_AUTHORITY_HOST");
      if (env.empty()) {
        Usage("give --authority-host, or set AZURE_AUTHORITY_HOST (source the server's dev.env)");
      }
      auto url = http::ParseUrl(env);
      if (!url.ok() || url->path_and_query != "/") {
        Usage("AZURE_AUTHORITY_HOST must be https://NAME[:PORT], as dev.env has it");
      }
      host = url->host + (url->default_port() ? "" : ":" + std::to_string(url->port));
    }
    auto name = server::ParsePublicName(host, "--authority-host");
    if (!name.ok()) {
      Usage(std::string(name.status().message()));
    }
    std::string vault = suffix->empty() ? Env("COFFER_VAULT_DNS_SUFFIX") : *suffix;
    if (vault.empty()) {
      vault = "vault.localhost";
    }
    auto vault_name = server::ParsePublicName(vault, "--dns-suffix");
    if (!vault_name.ok()) {
      Usage(std::string(vault_name.status().message()));
    }
    if (vault_name->port == 0) {
      vault_name->port = name->port;  // one server answers both
    }
    std::string origin = Origin(*name);
    std::string vault_host = Origin(*vault_name).substr(8);
    Print(AzCloudConfig(origin, vault_host));
    std::exit(0);
  });
}

}  // namespace coffer::cli
