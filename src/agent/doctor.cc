#include "agent/doctor.h"

#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include "agent/mount_builder.h"
#include "agent/mount_manager.h"
#include "agent/vault_reader.h"
#include "coffer/secret_client.h"
#include "common/strings.h"
#include "crypto/primitives.h"

namespace coffer::agent {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// ChallengeResource reads resource="…" (or scope="…") from Key Vault's
// WWW-Authenticate challenge.
std::string ChallengeResource(std::string_view header) {
  for (const char* key : {"resource=\"", "scope=\""}) {
    size_t at = header.find(key);
    if (at != std::string_view::npos) {
      size_t begin = at + std::string_view(key).size();
      size_t end = header.find('"', begin);
      if (end != std::string_view::npos) {
        return std::string(header.substr(begin, end - begin));
      }
    }
  }
  return "";
}

std::string GrantHint(const std::string& vault, const MountIdentity& identity,
                      const AzureObject& object) {
  if (object.type == ObjectType::kKey) {
    return "grant the identity read access to key " + object.name +
           ": an access policy with the key permission get, or the role \"Key Vault Crypto "
           "User\" on the vault (coffer role assignment create); identity: " +
           identity.Describe();
  }
  if (object.type == ObjectType::kCert) {
    return "grant the identity read access to certificate " + object.name +
           ": an access policy with the certificate permission get, or the role \"Key Vault "
           "Certificate User\" on the vault (coffer role assignment create); identity: " +
           identity.Describe();
  }
  const std::string what = object.selector.has_value()
                               ? "list and read the secrets of vault " + vault
                               : "read access to secret " + object.name;
  return "grant the identity " + what + ": an access policy " +
         "(coffer keyvault set-policy --name " + vault + " --spn|--object-id … " +
         "--secret-permissions get list) or the role \"Key Vault Secrets User\" on the vault " +
         "(coffer role assignment create); identity: " + identity.Describe();
}

}  // namespace

std::vector<DoctorCheck> CheckMount(const MountConfig& mount, const DoctorOptions& options) {
  std::vector<DoctorCheck> checks;
  // 1. The SecretProviderClass and the mount's files.
  StatusOr<LoadedMount> loaded = LoadMount(mount);
  if (!loaded.ok()) {
    bool unsupported = loaded.status().code() == StatusCode::kUnimplemented;
    checks.push_back({unsupported ? "identity" : "SecretProviderClass", false,
                      std::string(loaded.status().message()),
                      unsupported ? "choose useVMManagedIdentity, clientID (workload identity) or "
                                    "a nodePublishSecretRef with clientid/clientsecret"
                                  : "fix the SecretProviderClass (parameters keyvaultName, "
                                    "tenantID, objects as the Azure provider documents them)"});
    return checks;
  }
  const AzureMountParameters& params = loaded->params;
  const MountIdentity& identity = loaded->identity;
  checks.push_back({"SecretProviderClass", true,
                    mount.spc_file + ": vault " + params.keyvault_name + ", " +
                        std::to_string(params.objects.size()) + " object(s)",
                    ""});

  // 2. The identity and what it needs locally.
  DoctorCheck id{"identity", true, identity.Describe(), ""};
  if (identity.mode == IdentityMode::kVmManagedIdentity) {
    bool app_service = !Env("IDENTITY_ENDPOINT").empty() && !Env("IDENTITY_HEADER").empty();
    if (!app_service && Env("AZURE_POD_IDENTITY_AUTHORITY_HOST").empty()) {
      id.ok = false;
      id.detail += ": no managed-identity endpoint in the agent's environment";
      id.fix =
          "give the agent the node's identity: IDENTITY_ENDPOINT and IDENTITY_HEADER "
          "(coffer vm identity endpoint) or AZURE_POD_IDENTITY_AUTHORITY_HOST "
          "(coffer agent --imds)";
    }
  } else if (identity.mode == IdentityMode::kWorkloadIdentity && !identity.token_file.empty() &&
             access(identity.token_file.c_str(), R_OK) != 0) {
    id.ok = false;
    id.detail += ": cannot read the service-account token " + identity.token_file;
    id.fix = "point serviceAccountTokenFile at a readable projected token";
  }
  checks.push_back(id);
  if (!id.ok) {
    return checks;
  }

  // 3. The network path: an unauthenticated request must come back as
  // Key Vault's 401 challenge.
  std::string vault_url = VaultUrlFor(params.keyvault_name, options.vault_dns_suffix);
  auto transport = MakeDefaultTransport(options.transport);
  HttpRequest probe;
  probe.url = vault_url + "/secrets?api-version=7.5&maxresults=1";
  StatusOr<HttpResponse> answer = transport->Send(probe);
  std::string resource;
  if (!answer.ok()) {
    checks.push_back({"vault", false,
                      "cannot reach " + vault_url + ": " + std::string(answer.status().message()),
                      "check that the server runs and that vaultDnsSuffix (or "
                      "COFFER_VAULT_DNS_SUFFIX) and the CA (COFFER_CA_FILE) are right"});
    return checks;
  }
  resource = ChallengeResource(answer->Header("WWW-Authenticate"));
  if (answer->status != 401 || resource.empty()) {
    checks.push_back({"vault", false,
                      vault_url + " answered " + std::to_string(answer->status) +
                          " without a Key Vault challenge",
                      "keyvaultName " + params.keyvault_name +
                          " may not exist: create it (coffer keyvault create --name " +
                          params.keyvault_name + ")"});
    return checks;
  }
  checks.push_back({"vault", true, vault_url + " reachable", ""});

  // 4. The token.
  VaultReaderOptions ro;
  ro.client.transport = transport;
  ro.client.retry.max_retries = 1;
  ro.credential = options.credential;
  ro.credential.transport = transport;
  VaultReader reader(ro);
  auto client = reader.Client(vault_url, identity);
  if (!client.ok()) {
    checks.push_back({"token", false, std::string(client.status().message()), ""});
    return checks;
  }
  std::shared_ptr<ReadRound> round = reader.NewRound();
  // 5. Each object (the first read also proves the token).
  bool token_checked = false;
  size_t selected = 0;  // by the mount's selectors so far
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const AzureObject& object : params.objects) {
    Status s;
    std::optional<int64_t> expires_on;  // of the version read (not in history mode)
    std::string readable = "readable";
    bool over_limit = false;
    if (object.selector.has_value()) {
      auto listed = round->ListSecrets(vault_url, identity);
      s = listed.status();
      if (listed.ok()) {
        size_t n = 0;
        for (const SecretProperties& p : *listed) {
          n += p.enabled && object.selector->Matches(p.name, p.tags) ? 1 : 0;
        }
        selected += n;
        readable = "listable; selects " + std::to_string(n) + " enabled secrets (at most " +
                   std::to_string(params.selector_limit) + " for the mount)";
        over_limit = selected > static_cast<size_t>(params.selector_limit);
      }
    } else if (object.type == ObjectType::kCert && object.version_history > 1) {
      s = round->ListCertificateVersions(vault_url, identity, object.name).status();
    } else if (object.type == ObjectType::kCert) {
      auto read = round->GetCertificate(vault_url, identity, object.name, object.version);
      s = read.status();
      expires_on = read.ok() ? read->properties.expires_on : std::nullopt;
    } else if (object.type == ObjectType::kKey && object.version_history > 1) {
      s = round->ListKeyVersions(vault_url, identity, object.name).status();
    } else if (object.type == ObjectType::kKey) {
      auto read = round->GetKey(vault_url, identity, object.name, object.version);
      s = read.status();
      expires_on = read.ok() ? read->properties.expires_on : std::nullopt;
    } else if (object.version_history > 1) {
      s = round->ListVersions(vault_url, identity, object.name).status();
    } else {
      auto read = round->GetSecret(vault_url, identity, object.name, object.version);
      s = read.status();
      if (read.ok()) {
        expires_on = read->properties.expires_on;
        crypto::SecureWipe(read->value);
      }
    }
    if (!token_checked) {
      bool token_refused = s.code() == StatusCode::kUnauthenticated ||
                           s.code() == StatusCode::kFailedPrecondition ||
                           (s.code() == StatusCode::kUnavailable && !s.reason().empty());
      if (token_refused) {
        checks.push_back({"token", false, std::string(s.message()),
                          "check tenantID and the client id, and for workload identity the "
                          "federated credential's issuer and subject (coffer identity "
                          "federated-credential list)"});
        return checks;
      }
      checks.push_back(
          {"token", true, "the vault accepted the token of " + identity.Describe(), ""});
      token_checked = true;
    }
    DoctorCheck c{object.selector.has_value() ? "objectSelector " + object.Id()
                                              : std::string(object.TypeName()) + " " + object.name,
                  s.ok(), s.ok() ? readable : std::string(s.message()), ""};
    if (s.ok() && expires_on.has_value()) {
      std::string warning = ExpiryWarning(*expires_on, now, options.expiry_warning_seconds);
      if (!warning.empty()) {
        c.detail += "; " + warning;
        c.warning = true;
        c.fix = "set a new version (or a later expiry) before it expires";
      }
    }
    if (!s.ok() && object.optional && IsUnavailable(s)) {
      // Coffer's optional objects: the mount goes on without it.
      c.ok = true;
      c.warning = true;
      c.detail = "optional, and the mount goes without it: " + c.detail;
    }
    if (IsDisabled(s)) {
      c.fix = "enable it, or point objectVersion at an enabled version (coffer keyvault " +
              std::string(object.type == ObjectType::kKey    ? "key"
                          : object.type == ObjectType::kCert ? "certificate"
                                                             : "secret") +
              " set-attributes --vault-name " + params.keyvault_name + " --name " + object.name +
              " --enabled true)";
    } else if (over_limit) {
      c.ok = false;
      c.detail = "the mount's selectors select " + std::to_string(selected) +
                 " secrets, more than objectSelectorLimit (" +
                 std::to_string(params.selector_limit) + ")";
      c.fix =
          "narrow the selection (namePrefix, tags) or raise the SPC parameter "
          "objectSelectorLimit (at most " +
          std::to_string(kMaxSelectorLimit) + ")";
    } else if (s.code() == StatusCode::kPermissionDenied) {
      c.fix = GrantHint(params.keyvault_name, identity, object);
    } else if (s.code() == StatusCode::kNotFound) {
      const char* create = object.type == ObjectType::kKey    ? "key create"
                           : object.type == ObjectType::kCert ? "certificate create"
                                                              : "secret set";
      c.fix = std::string("create it (coffer keyvault ") + create + " --vault-name " +
              params.keyvault_name + " --name " + object.name + ") or fix objectName/objectVersion";
    } else if (!s.ok()) {
      c.fix = "look at the server's log and the agent's log for this request";
    }
    checks.push_back(std::move(c));
  }
  return checks;
}

}  // namespace coffer::agent
