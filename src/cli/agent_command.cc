// `coffer agent`: the node agent. Today it serves the IMDS token endpoint for
// its workload resource (`--imds`).

#include <cstdlib>
#include <iostream>

#include "agent/imds.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/files.h"
#include "common/log.h"
#include "common/strings.h"

namespace coffer::cli {

void AddAgentCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "agent",
      "Run the node agent: --imds serves Azure's IMDS token endpoint on loopback "
      "for this node's workload resource");
  auto imds = std::make_shared<bool>(false);
  auto options = std::make_shared<agent::ImdsOptions>();
  auto port = std::make_shared<int>(0);
  auto header_file = std::make_shared<std::string>();
  cmd->add_flag("--imds", *imds, "Serve /metadata/identity/oauth2/token (plain HTTP, loopback)");
  cmd->add_option("--address", options->address, "Loopback address to listen on")
      ->capture_default_str();
  cmd->add_option("--port", *port, "Port (0 picks a free one)")->capture_default_str();
  cmd->add_option("--identity-endpoint", options->identity_endpoint,
                  "The workload's IDENTITY_ENDPOINT (default: $IDENTITY_ENDPOINT)");
  cmd->add_option("--identity-header-file", *header_file,
                  "File holding the workload's identity header (default: $IDENTITY_HEADER)");
  cmd->callback([=] {
    if (!*imds) {
      Usage("nothing to do: pass --imds");
    }
    if (*port < 0 || *port > 65535) {
      Usage("--port must be 0-65535");
    }
    agent::ImdsOptions opts = *options;
    opts.port = static_cast<uint16_t>(*port);
    if (opts.identity_endpoint.empty() && std::getenv("IDENTITY_ENDPOINT") != nullptr) {
      opts.identity_endpoint = std::getenv("IDENTITY_ENDPOINT");
    }
    if (!header_file->empty()) {
      auto text = ReadFile(*header_file);
      if (!text.ok()) {
        Fail(text.status());
      }
      opts.identity_header = std::string(TrimWhitespace(*text));
    } else if (std::getenv("IDENTITY_HEADER") != nullptr) {
      opts.identity_header = std::getenv("IDENTITY_HEADER");
    }
    for (const char* var : {"COFFER_CA_FILE", "REQUESTS_CA_BUNDLE"}) {
      if (opts.ca_file.empty() && std::getenv(var) != nullptr) {
        opts.ca_file = std::getenv(var);
      }
    }
    BlockTerminationSignals();
    auto server = agent::ImdsServer::Create(std::move(opts));
    if (!server.ok()) {
      Fail(server.status());
    }
    (*server)->Start();
    std::cout << "IMDS endpoint: http://" << options->address << ":" << (*server)->port()
              << "/metadata/identity/oauth2/token\n"
              << "export AZURE_POD_IDENTITY_AUTHORITY_HOST=http://" << options->address << ":"
              << (*server)->port() << "\n";
    std::cout.flush();
    int sig = WaitForTermination();
    COFFER_LOG(kInfo) << "agent stopping on signal " << sig;
    (*server)->Stop();
    std::exit(0);
  });
}

}  // namespace coffer::cli
