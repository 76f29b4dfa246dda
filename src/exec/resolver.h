#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "client/keyvault_reference.h"
#include "coffer/secret_cache.h"
#include "common/json.h"
#include "common/status.h"

namespace coffer::exec {

// The outcome of one reference, as App Service's config-reference status.
struct ReferenceStatus {
  std::string name;     // the environment variable
  std::string status;   // ResolveStatus: "Resolved", "SecretNotFound", … (docs/exec.md)
  std::string details;  // why, in words; never a value
  client::KeyVaultReference reference;
  std::string vault_url;
  std::string resolved_version;
  int64_t last_resolved = 0;  // Unix seconds of the last successful read
};

// ResolveStatusFor names App Service's status for a failed read.
std::string ResolveStatusFor(const Status& failure, bool versioned);

struct ResolverOptions {
  // Where VaultName references live: "<suffix>[:port]" (docs/exec.md).
  std::string vault_dns_suffix = "vault.localhost";
  std::shared_ptr<TokenCredential> credential;
  SecretClientOptions client;
  SecretCacheOptions cache;
};

// Resolver finds the references in an environment and resolves them through
// one SecretCache per vault, so that refreshes (poll and watch) are the
// cache's. Thread-safe.
class Resolver {
 public:
  // `environment` holds NAME=value strings; order is kept.
  Resolver(std::vector<std::string> environment, ResolverOptions options);

  // Resolve reads every reference (from the caches once read; up to eight
  // reads in parallel) and returns the child's environment: resolved
  // references replaced by their values, everything else as given. Updates
  // statuses().
  std::vector<std::string> Resolve();

  std::vector<ReferenceStatus> statuses() const;
  size_t reference_count() const { return refs_.size(); }

  // OnChange registers `callback`, called (on a cache thread) whenever the
  // value of a versionless reference changes. Call before Resolve().
  void OnChange(std::function<void()> callback);

  // StatusJson renders the status file of docs/exec.md.
  Json StatusJson(int64_t pid, int restarts) const;

 private:
  struct Ref {
    size_t env_index;
    ReferenceStatus status;
    SecretCache* cache = nullptr;  // null when the reference is unusable
  };

  // ReadAll reads every usable reference through its cache, in parallel;
  // results are indexed like refs_.
  std::vector<StatusOr<KeyVaultSecret>> ReadAll();

  std::vector<std::string> environment_;
  ResolverOptions options_;
  std::vector<Ref> refs_;
  std::map<std::string, std::unique_ptr<SecretCache>> caches_;  // by vault URL
  mutable std::mutex mu_;                                       // guards refs_[*].status
};

}  // namespace coffer::exec
