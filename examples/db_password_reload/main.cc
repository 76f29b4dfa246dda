// db_password_reload: reads a database password from a vault and "reconnects"
// whenever it is rotated, the way a long-running service would.
//
//   COFFER_VAULT_URL=https://dev.vault.localhost:8443 ./db_password_reload [secret-name]
//
// Credentials come from the environment, as DefaultAzureCredential reads them
// (AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE,
// IDENTITY_ENDPOINT + IDENTITY_HEADER or AZURE_POD_IDENTITY_AUTHORITY_HOST).
// The password itself is never printed: only which version is in use.

#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>

#include "coffer/credentials.h"
#include "coffer/secret_cache.h"
#include "coffer/secret_client.h"

namespace {

// A stand-in for a connection pool that must be rebuilt with a new password.
class Database {
 public:
  void Connect(const coffer::KeyVaultSecret& password) {
    std::lock_guard<std::mutex> lock(mu_);
    password_ = password.value;  // a real program would open its pool with it
    std::cout << "connected with " << password.properties.name << " version "
              << password.properties.version << std::endl;
  }

 private:
  std::mutex mu_;
  std::string password_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* vault_url = std::getenv("COFFER_VAULT_URL");
  if (vault_url == nullptr) {
    std::cerr << "set COFFER_VAULT_URL (source the server's dev.env)\n";
    return 2;
  }
  std::string name = argc > 1 ? argv[1] : "db-password";

  // The cache's threads must not take SIGINT/SIGTERM: block them first.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto client =
      std::make_shared<coffer::SecretClient>(vault_url, coffer::MakeDefaultAzureCredential());
  coffer::SecretCache cache(client);  // watch stream on, polling as the fallback

  Database db;
  coffer::StatusOr<coffer::KeyVaultSecret> password = cache.GetSecret(name);
  if (!password.ok()) {
    std::cerr << "cannot read " << name << ": " << password.status().ToString() << "\n";
    return 1;
  }
  db.Connect(*password);
  cache.OnChange(name, [&db](const coffer::KeyVaultSecret& rotated) { db.Connect(rotated); });

  int sig = 0;
  sigwait(&stop, &sig);
  std::cout << "stopping" << std::endl;
  return 0;
}
