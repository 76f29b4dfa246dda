#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "cli/output.h"
#include "client/api_client.h"
#include "common/json.h"

namespace coffer::cli {

// Shared conventions of the commands, as az's: a service error prints
// "ERROR: (Code) message" on stderr and exits 1; a usage error exits 2.
[[noreturn]] void Fail(const Status& status);
[[noreturn]] void Usage(const std::string& message);

// VaultSuffix is the DNS suffix (with port) that vault names are completed
// with: `suffix`, else $COFFER_VAULT_DNS_SUFFIX, else "vault.localhost"; a
// suffix without a port takes the port of $AZURE_AUTHORITY_HOST, since one
// Coffer server answers the token service and its vaults on one port.
std::string VaultSuffix(std::string suffix);

// Print writes a command's result to stdout in the output format (`-o`,
// output.h; JSON indented by two spaces unless set otherwise).
void Print(const Json& value);
void SetOutputFormat(OutputFormat format);

// TenantOf is the tenant's id (ApiClient::TenantId), or fails.
std::string TenantOf(client::ApiClient& c);

// MakeClient reads the credentials from the environment (dev.env) or fails.
client::ApiClient MakeClient();

// BlockTerminationSignals blocks SIGINT and SIGTERM in this thread and every
// thread started after it (so that only WaitForTermination receives them)
// and ignores SIGPIPE. Call it before starting threads.
void BlockTerminationSignals();
// WaitForTermination waits for SIGINT or SIGTERM and returns its number.
int WaitForTermination();

// MakeArmClient is MakeClient for management commands: it also needs the
// subscription (COFFER_SUBSCRIPTION_ID).
client::ApiClient MakeArmClient();

// ArmCall sends a management request to
// {authority}/subscriptions/{subscription}{path}?api-version={api_version}
// and returns the body as Expect does.
Json ArmCall(client::ApiClient& c, const std::string& method, const std::string& path,
             const std::string& api_version, std::initializer_list<int> ok,
             const std::string& body = "");

// ParseTags turns az-style "key=value" arguments into a tags object.
Json ParseTags(const std::vector<std::string>& tags);

// Expect returns the parsed body when the response has one of the `ok`
// statuses (null JSON for an empty body), and fails otherwise.
Json Expect(const StatusOr<http::Response>& response, std::initializer_list<int> ok);

}  // namespace coffer::cli
