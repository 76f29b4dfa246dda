// `coffer login` and `coffer logout`: a person signs in from a terminal as
// `az login --use-device-code` does (docs/users.md). The sign-in is kept in
// the login file (ClientConfig::LoginFile, mode 0600), which the other
// commands use when no client secret is set.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "client/api_client.h"
#include "coffer/credentials.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::cli {
namespace {

std::string Variable(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string Claim(const std::string& token, const char* name) {
  auto parts = Split(token, '.');
  if (parts.size() != 3) {
    return "";
  }
  auto payload = Base64UrlDecode(parts[1]);
  auto claims = payload ? ParseJson(*payload) : std::nullopt;
  return claims && claims->is_object() ? StringMember(*claims, name) : "";
}

}  // namespace

void AddLoginCommands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand(
        "login", "Sign in as a person with a device code (as az login --use-device-code)");
    auto device_code = std::make_shared<bool>(false);
    auto tenant = std::make_shared<std::string>();
    cmd->add_flag("--use-device-code", *device_code,
                  "Sign in with a device code (the only way Coffer signs people in from a "
                  "terminal; accepted for az's sake)");
    cmd->add_option("--tenant,-t", *tenant, "The tenant (default: $AZURE_TENANT_ID, or adfs)");
    // The flag's storage lives as long as the callback that holds it.
    cmd->callback([device_code, tenant] {
      std::string authority = Variable("AZURE_AUTHORITY_HOST");
      while (!authority.empty() && authority.back() == '/') {
        authority.pop_back();
      }
      if (authority.empty()) {
        Usage("AZURE_AUTHORITY_HOST is not set: the server's address, e.g. https://localhost:8443");
      }
      std::string tenant_id = !tenant->empty() ? *tenant : Variable("AZURE_TENANT_ID");
      if (tenant_id.empty()) {
        tenant_id = "adfs";
      }
      std::string ca_file = Variable("COFFER_CA_FILE");
      if (ca_file.empty()) {
        ca_file = Variable("REQUESTS_CA_BUNDLE");
      }
      CredentialOptions options;
      options.authority_host = authority;
      options.transport_options.ca_file = ca_file;
      DeviceCodeCredential credential(
          tenant_id,
          [](const DeviceCodeInfo& info) {
            // On stderr, as az prints it, so stdout stays the result.
            std::cerr << info.message << std::endl;
          },
          options);
      auto token = credential.GetToken(authority + "/.default");
      if (!token.ok()) {
        Fail(token.status());
      }
      Json login = {{"authority", authority},
                    {"tenantId", Claim(token->token, "tid")},
                    {"clientId", DeviceCodeCredential::kAzureCliClientId},
                    {"caFile", ca_file},
                    {"user", Claim(token->token, "upn")},
                    {"refreshToken", credential.refresh_token()}};
      std::string path =
          client::ClientConfig::LoginFile([](const char* name) { return Variable(name); });
      if (size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
        Status made = EnsurePrivateDirectory(path.substr(0, slash));
        if (!made.ok()) {
          Fail(made);
        }
      }
      // SECURITY: the refresh token is a credential: only its owner reads it.
      Status written = WriteFileAtomic(path, ToJson(login) + "\n", 0600);
      if (!written.ok()) {
        Fail(written);
      }
      Print(Json::array({Json{{"cloudName", "Coffer"},
                              {"tenantId", login["tenantId"]},
                              {"user", {{"name", login["user"]}, {"type", "user"}}}}}));
    });
  }
  {
    auto* cmd = app.add_subcommand("logout", "Forget the person signed in with coffer login");
    cmd->callback([] {
      std::string path =
          client::ClientConfig::LoginFile([](const char* name) { return Variable(name); });
      if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
        Fail(UnavailableError("cannot remove " + path));
      }
    });
  }
}

}  // namespace coffer::cli
