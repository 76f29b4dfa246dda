#include "exec/resolver.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "common/strings.h"
#include "common/time_format.h"

namespace coffer::exec {
namespace {

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// SplitHostPort splits "host[:port]".
std::pair<std::string, std::string> SplitHostPort(std::string_view authority) {
  size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    return {AsciiLower(authority), ""};
  }
  return {AsciiLower(authority.substr(0, colon)), std::string(authority.substr(colon + 1))};
}

}  // namespace

std::string ResolveStatusFor(const Status& failure, bool versioned) {
  std::string_view reason = failure.reason();
  switch (failure.code()) {
    case StatusCode::kInvalidArgument:
      return reason == "BadParameter" ? "InvalidSyntax" : "OtherReasons";
    case StatusCode::kNotFound:
      if (reason == "VaultNotFound") {
        return "VaultNotFound";
      }
      return versioned ? "SecretVersionNotFound" : "SecretNotFound";
    case StatusCode::kPermissionDenied:
      return "AccessToKeyVaultDenied";
    case StatusCode::kFailedPrecondition:
      // A credential with nothing to work with: no managed identity here.
      return reason.empty() ? "MSINotEnabled" : "OtherReasons";
    case StatusCode::kUnauthenticated:
      return "UnauthorizedClient";
    case StatusCode::kDeadlineExceeded:
      return "FetchTimedOut";
    default:
      return "OtherReasons";
  }
}

Resolver::Resolver(std::vector<std::string> environment, ResolverOptions options)
    : environment_(std::move(environment)), options_(std::move(options)) {
  auto [suffix_host, suffix_port] = SplitHostPort(options_.vault_dns_suffix);
  // A vault's URL in the canonical form of http::ParseUrl (the form
  // KeyVaultReference::vault_url has): lower-case, no default port.
  const std::string port_suffix =
      suffix_port.empty() || suffix_port == "443" ? "" : ":" + suffix_port;
  auto vault_url_of = [&](const std::string& vault) {
    return "https://" + AsciiLower(vault) + "." + suffix_host + port_suffix;
  };
  for (size_t i = 0; i < environment_.size(); ++i) {
    const std::string& entry = environment_[i];
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      continue;
    }
    auto parsed = client::ParseKeyVaultReference(std::string_view(entry).substr(eq + 1));
    if (parsed.ok() && !parsed->has_value()) {
      continue;  // not a reference
    }
    Ref ref;
    ref.env_index = i;
    ref.status.name = entry.substr(0, eq);
    if (!parsed.ok()) {
      ref.status.status = "InvalidSyntax";
      ref.status.details = std::string(parsed.status().message());
      refs_.push_back(std::move(ref));
      continue;
    }
    ref.status.reference = **parsed;
    const client::KeyVaultReference& r = ref.status.reference;
    if (r.vault_url.empty()) {
      ref.status.vault_url = vault_url_of(r.vault_name);
    } else {
      // SECURITY: a reference may only name a vault under the configured
      // suffix, so that an environment value cannot make exec send requests
      // (and, after a challenge, tokens) to a host of its choosing.
      if (r.vault_url != vault_url_of(r.vault_name)) {
        ref.status.status = "InvalidSyntax";
        ref.status.details = "the SecretUri's host is not a vault under " +
                             options_.vault_dns_suffix + " (set --vault-dns-suffix)";
        refs_.push_back(std::move(ref));
        continue;
      }
      ref.status.vault_url = r.vault_url;
    }
    auto& cache = caches_[ref.status.vault_url];
    if (cache == nullptr) {
      cache = std::make_unique<SecretCache>(
          std::make_shared<SecretClient>(ref.status.vault_url, options_.credential,
                                         options_.client),
          options_.cache);
    }
    ref.cache = cache.get();
    ref.status.status = "Initialized";
    refs_.push_back(std::move(ref));
  }
}

void Resolver::OnChange(std::function<void()> callback) {
  auto shared = std::make_shared<std::function<void()>>(std::move(callback));
  for (Ref& ref : refs_) {
    if (ref.cache != nullptr && ref.status.reference.version.empty()) {
      ref.cache->OnChange(ref.status.reference.secret_name,
                          [shared](const KeyVaultSecret&) { (*shared)(); });
    }
  }
}

std::vector<StatusOr<KeyVaultSecret>> Resolver::ReadAll() {
  std::vector<StatusOr<KeyVaultSecret>> results(refs_.size(), UnavailableError("not read"));
  auto read = [&](size_t i) {
    const client::KeyVaultReference& r = refs_[i].status.reference;
    results[i] = refs_[i].cache->GetSecret(r.secret_name, r.version);
  };
  // The first read of each vault goes alone: it learns the vault's challenge
  // and fetches the token that every other read then reuses. The rest run in
  // parallel, so start-up costs about one round trip per vault plus one per
  // kMaxParallelReads references rather than one per reference.
  std::set<SecretCache*> warmed;
  std::vector<size_t> rest;
  for (size_t i = 0; i < refs_.size(); ++i) {
    if (refs_[i].cache == nullptr) {
      continue;
    }
    if (warmed.insert(refs_[i].cache).second) {
      read(i);
    } else {
      rest.push_back(i);
    }
  }
  constexpr size_t kMaxParallelReads = 8;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t k = next++; k < rest.size(); k = next++) {
      read(rest[k]);
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(kMaxParallelReads, rest.size()); ++t) {
    threads.emplace_back(worker);
  }
  worker();
  for (std::thread& t : threads) {
    t.join();
  }
  return results;
}

std::vector<std::string> Resolver::Resolve() {
  std::vector<std::string> env = environment_;
  std::vector<StatusOr<KeyVaultSecret>> results = ReadAll();
  for (size_t i = 0; i < refs_.size(); ++i) {
    Ref& ref = refs_[i];
    if (ref.cache == nullptr) {
      continue;  // stays literal; its status says why
    }
    const client::KeyVaultReference& r = ref.status.reference;
    StatusOr<KeyVaultSecret>& secret = results[i];
    Status refresh = r.version.empty() ? ref.cache->LastError(r.secret_name) : OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    ReferenceStatus& st = ref.status;
    if (secret.ok()) {
      env[ref.env_index] = st.name + "=" + secret->value;
      if (st.resolved_version != secret->properties.version || st.status != "Resolved" ||
          !refresh.ok()) {
        st.last_resolved = NowSeconds();
      }
      st.resolved_version = secret->properties.version;
      st.status = refresh.ok() ? "Resolved" : ResolveStatusFor(refresh, false);
      st.details = refresh.ok() ? ""
                                : "serving the last value read; the latest read failed: " +
                                      std::string(refresh.message());
      continue;
    }
    Status failure = secret.status();
    bool versioned = !r.version.empty();
    if (versioned && failure.code() == StatusCode::kNotFound &&
        failure.reason() != "VaultNotFound") {
      // Tell a missing version of an existing secret from a missing secret.
      versioned = ref.cache->GetSecret(r.secret_name, "").ok();
    }
    st.status = ResolveStatusFor(failure, versioned);
    st.details = std::string(failure.message());
    st.resolved_version.clear();
  }
  return env;
}

std::vector<ReferenceStatus> Resolver::statuses() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ReferenceStatus> out;
  out.reserve(refs_.size());
  for (const Ref& ref : refs_) {
    out.push_back(ref.status);
  }
  return out;
}

Json Resolver::StatusJson(int64_t pid, int restarts) const {
  Json refs = Json::array();
  for (const ReferenceStatus& st : statuses()) {
    refs.push_back(
        {{"name", st.name},
         {"status", st.status},
         {"vaultName", st.reference.vault_name},
         {"secretName", st.reference.secret_name},
         {"secretVersion", st.reference.version},
         {"vaultUrl", st.vault_url},
         {"resolvedVersion", st.resolved_version},
         {"details", st.details},
         {"lastResolved",
          st.last_resolved == 0 ? Json(nullptr) : Json(FormatIsoTime(st.last_resolved))}});
  }
  return {{"updated", FormatIsoTime(NowSeconds())},
          {"pid", pid},
          {"restarts", restarts},
          {"references", refs}};
}

}  // namespace coffer::exec
