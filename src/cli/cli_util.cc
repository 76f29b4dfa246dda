#include "cli/cli_util.h"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>

#include "http/url.h"

namespace coffer::cli {

void Fail(const Status& s) {
  std::string code(s.reason());
  std::cerr << "ERROR: " << (code.empty() ? "" : "(" + code + ") ") << s.message() << "\n";
  std::exit(1);
}

void Usage(const std::string& message) {
  std::cerr << "ERROR: " << message << "\n";
  std::exit(2);
}

namespace {
OutputFormat output_format = OutputFormat::kJson;
}  // namespace

void SetOutputFormat(OutputFormat format) {
  output_format = format;
}

void Print(const Json& j) {
  std::cout << FormatOutput(j, output_format);
}

client::ApiClient MakeClient() {
  auto config = client::ClientConfig::FromEnvironment();
  if (!config.ok()) {
    Fail(config.status());
  }
  return client::ApiClient(std::move(config).value());
}

namespace {
sigset_t TerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}
}  // namespace

void BlockTerminationSignals() {
  sigset_t signals = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

int WaitForTermination() {
  sigset_t signals = TerminationSignals();
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

client::ApiClient MakeArmClient() {
  client::ApiClient c = MakeClient();
  if (c.config().subscription_id.empty()) {
    Usage("COFFER_SUBSCRIPTION_ID is not set (source the server's dev.env)");
  }
  return c;
}

Json ArmCall(client::ApiClient& c, const std::string& method, const std::string& path,
             const std::string& api_version, std::initializer_list<int> ok,
             const std::string& body) {
  std::string url = c.config().authority + "/subscriptions/" + c.config().subscription_id + path +
                    (path.find('?') == std::string::npos ? "?" : "&") +
                    "api-version=" + api_version;
  return Expect(c.Call(method, url, c.config().authority, body), ok);
}

Json ParseTags(const std::vector<std::string>& tags) {
  Json out = Json::object();
  for (const auto& t : tags) {
    size_t eq = t.find('=');
    out[t.substr(0, eq)] = eq == std::string::npos ? "" : t.substr(eq + 1);
  }
  return out;
}

Json Expect(const StatusOr<http::Response>& res, std::initializer_list<int> ok) {
  if (!res.ok()) {
    Fail(res.status());
  }
  for (int code : ok) {
    if (res->status == code) {
      if (res->body.empty()) {
        return Json();
      }
      auto j = ParseJson(res->body, 64);
      return j ? *j : Json();
    }
  }
  Fail(client::ErrorFromResponse(*res));
}

std::string VaultSuffix(std::string suffix) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  if (suffix.empty()) {
    suffix = env("COFFER_VAULT_DNS_SUFFIX");
  }
  if (suffix.empty()) {
    suffix = "vault.localhost";
  }
  if (suffix.find(':') != std::string::npos) {
    return suffix;
  }
  StatusOr<http::Url> authority = http::ParseUrl(env("AZURE_AUTHORITY_HOST"));
  if (authority.ok() && !authority->default_port()) {
    suffix += ":" + std::to_string(authority->port);
  }
  return suffix;
}

std::string TenantOf(client::ApiClient& c) {
  auto tenant = c.TenantId();
  if (!tenant.ok()) {
    Fail(tenant.status());
  }
  return *tenant;
}

}  // namespace coffer::cli
