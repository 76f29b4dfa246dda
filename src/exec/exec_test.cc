#include <signal.h>

#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "common/json.h"
#include "common/testing/temp_dir.h"
#include "exec/resolver.h"
#include "exec/supervisor.h"

#include <sys/stat.h>
#include <sys/wait.h>

namespace coffer::exec {
namespace {

// A vault that knows one secret, "db" = "pw" (version v1), and denies "locked".
// The resolver reads from several threads at once.
class OneSecretVault : public HttpTransport {
 public:
  StatusOr<HttpResponse> Send(const HttpRequest& r) override {
    ++requests;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hosts_.push_back(r.url.substr(0, r.url.find('/', 8)));
    }
    bool authorized = false;
    for (const auto& [k, v] : r.headers) {
      authorized |= k == "Authorization";
    }
    if (!authorized) {
      return HttpResponse{
          401, {{"WWW-Authenticate", "Bearer resource=\"https://vault.localhost:8443\""}}, ""};
    }
    if (r.url.find("/secrets/db/") != std::string::npos &&
        r.url.find("/secrets/db/?") == std::string::npos &&
        r.url.find("/secrets/db/v1?") == std::string::npos) {
      return HttpResponse{
          404, {}, "{\"error\":{\"code\":\"SecretNotFound\",\"message\":\"no such version\"}}"};
    }
    if (r.url.find("/secrets/db/") != std::string::npos) {
      return HttpResponse{
          200, {}, "{\"id\":\"https://dev.vault.localhost:8443/secrets/db/v1\",\"value\":\"pw\"}"};
    }
    if (r.url.find("/secrets/locked/") != std::string::npos) {
      return HttpResponse{403, {}, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"denied\"}}"};
    }
    return HttpResponse{
        404, {}, "{\"error\":{\"code\":\"SecretNotFound\",\"message\":\"missing\"}}"};
  }
  StatusOr<HttpResponse> Stream(const HttpRequest&, const std::function<bool(std::string_view)>&,
                                const std::atomic<bool>*) override {
    return UnavailableError("no stream");
  }
  std::vector<std::string> hosts() {
    std::lock_guard<std::mutex> lock(mu_);
    return hosts_;
  }
  std::atomic<int> requests{0};

 private:
  std::mutex mu_;
  std::vector<std::string> hosts_;  // GUARDED_BY(mu_)
};

class Token : public TokenCredential {
 public:
  StatusOr<AccessToken> GetToken(const std::string&) override {
    return AccessToken{"t", std::chrono::system_clock::now() + std::chrono::hours(1)};
  }
};

ResolverOptions Options(std::shared_ptr<OneSecretVault> vault) {
  ResolverOptions o;
  o.vault_dns_suffix = "vault.localhost:8443";
  o.credential = std::make_shared<Token>();
  o.client.transport = std::move(vault);
  o.client.retry.max_retries = 0;
  o.cache.watch = false;
  return o;
}

TEST(Resolver, ResolvesBothFormsAndLeavesEverythingElseAsItIs) {
  auto vault = std::make_shared<OneSecretVault>();
  Resolver r(
      {"PLAIN=x=y", "A=@Microsoft.KeyVault(SecretUri=https://dev.vault.localhost:8443/secrets/db)",
       "B=@Microsoft.KeyVault(VaultName=dev;SecretName=db;SecretVersion=v1)",
       "EMPTY=", "C=@Microsoft.KeyVault(SecretUri=HTTPS://Dev.Vault.LocalHost:8443/secrets/db)"},
      Options(vault));
  EXPECT_EQ(r.reference_count(), 3u);
  auto env = r.Resolve();
  EXPECT_EQ(env, (std::vector<std::string>{"PLAIN=x=y", "A=pw", "B=pw", "EMPTY=", "C=pw"}));
  for (const auto& st : r.statuses()) {
    EXPECT_EQ(st.status, "Resolved") << st.name;
    EXPECT_EQ(st.resolved_version, "v1");
  }
  Json status = r.StatusJson(42, 0);
  EXPECT_EQ(ToJson(status).find("\"pw\""), std::string::npos) << "no value in the status";
  EXPECT_EQ(status["pid"], 42);
}

TEST(Resolver, UnresolvableReferencesStayLiteralWithAppServicesStatus) {
  auto vault = std::make_shared<OneSecretVault>();
  std::vector<std::string> in = {
      "MISSING=@Microsoft.KeyVault(VaultName=dev;SecretName=nope)",
      "NOVERSION=@Microsoft.KeyVault(VaultName=dev;SecretName=db;SecretVersion=v9)",
      "DENIED=@Microsoft.KeyVault(VaultName=dev;SecretName=locked)",
      "BROKEN=@Microsoft.KeyVault(VaultName=dev;SecretName=",
      "ELSEWHERE=@Microsoft.KeyVault(SecretUri=https://dev.evil.example/secrets/db)",
      "OTHERPORT=@Microsoft.KeyVault(SecretUri=https://dev.vault.localhost:9999/secrets/db)",
      "NOPORT=@Microsoft.KeyVault(SecretUri=https://dev.vault.localhost/secrets/db)",
      "USERINFO=@Microsoft.KeyVault(SecretUri=https://dev.vault.localhost:8443@evil.example/"
      "secrets/db)"};
  Resolver r(in, Options(vault));
  EXPECT_EQ(r.Resolve(), in);
  std::map<std::string, std::string> by_name;
  for (const auto& st : r.statuses()) {
    by_name[st.name] = st.status;
    EXPECT_FALSE(st.details.empty()) << st.name;
  }
  EXPECT_EQ(by_name["MISSING"], "SecretNotFound");
  EXPECT_EQ(by_name["NOVERSION"], "SecretVersionNotFound");
  EXPECT_EQ(by_name["DENIED"], "AccessToKeyVaultDenied");
  EXPECT_EQ(by_name["BROKEN"], "InvalidSyntax");
  EXPECT_EQ(by_name["ELSEWHERE"], "InvalidSyntax");
  EXPECT_EQ(by_name["OTHERPORT"], "InvalidSyntax");
  EXPECT_EQ(by_name["NOPORT"], "InvalidSyntax");
  EXPECT_EQ(by_name["USERINFO"], "InvalidSyntax");
  for (const std::string& host : vault->hosts()) {
    EXPECT_EQ(host, "https://dev.vault.localhost:8443") << "nothing was sent elsewhere";
  }
}

TEST(Resolver, StatusNames) {
  EXPECT_EQ(ResolveStatusFor(FailedPreconditionError("no endpoint"), false), "MSINotEnabled");
  EXPECT_EQ(ResolveStatusFor(UnauthenticatedError("refused"), false), "UnauthorizedClient");
  EXPECT_EQ(ResolveStatusFor(NotFoundError("x", "VaultNotFound"), true), "VaultNotFound");
  EXPECT_EQ(ResolveStatusFor(Status(StatusCode::kDeadlineExceeded, "slow"), false),
            "FetchTimedOut");
  EXPECT_EQ(ResolveStatusFor(UnavailableError("down"), false), "OtherReasons");
}

TEST(Supervisor, SpawnReportsMissingAndUnrunnableCommands) {
  auto missing = SpawnChild({"/nonexistent/command"}, {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto dir = test::TempDir::Create("coffer-exec-test-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string plain = dir->Join("not_executable");
  std::ofstream(plain) << "#!/bin/sh\nexit 0\n";
  chmod(plain.c_str(), 0644);
  auto not_executable = SpawnChild({plain}, {});
  EXPECT_EQ(not_executable.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(SpawnChild({}, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(Supervisor, TheChildGetsTheGivenEnvironmentAndItsExitCodeIsKept) {
  auto pid = SpawnChild({"/bin/sh", "-c", "test \"$X\" = resolved && exit 7"}, {"X=resolved"});
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_EQ(ExitCodeOf(status), 7);
  pid = SpawnChild({"/bin/sh", "-c", "kill -KILL $$"}, {});
  ASSERT_TRUE(pid.ok());
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_EQ(ExitCodeOf(status), 128 + SIGKILL);
}

}  // namespace
}  // namespace coffer::exec
