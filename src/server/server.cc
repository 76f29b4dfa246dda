#include "server/server.h"

#include <atomic>
#include <chrono>
#include <cstdio>

#include "audit/servers.h"
#include "common/file_system.h"
#include "common/files.h"
#include "common/json.h"
#include "common/log.h"
#include "common/log_context.h"
#include "common/strings.h"
#include "crypto/certificate.h"
#include "crypto/primitives.h"
#include "mgmt/arm.h"
#include "net/http_client.h"
#include "server/admin_recovery.h"
#include "server/server_id.h"
#include "server/store_backend.h"
#include "server/tls_material.h"

namespace coffer::server {
namespace {

// RequestId names one request in its x-ms-request-id header and in the log
// lines written while it is handled: a random prefix per process and a
// counter, in a UUID's form (cheap enough for the fast path).
std::string RequestId() {
  static const std::string prefix = [] {
    std::string r = crypto::RandomBytes(8);
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%02x%02x%02x%02x-%02x%02x-4%x%02x", r[0] & 0xff, r[1] & 0xff,
                  r[2] & 0xff, r[3] & 0xff, r[4] & 0xff, r[5] & 0xff, r[6] & 0x0f, r[7] & 0xff);
    return std::string(buf);
  }();
  static std::atomic<uint64_t> counter{0};
  uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s-%04x-%012llx", prefix.c_str(),
                static_cast<unsigned>(0x8000 | ((n >> 48) & 0x3fff)),
                static_cast<unsigned long long>(n & 0xffffffffffffULL));
  return buf;
}

}  // namespace

StatusOr<std::unique_ptr<CofferServer>> CofferServer::Create(ServerConfig config) {
  std::unique_ptr<CofferServer> server(new CofferServer(std::move(config)));
  RETURN_IF_ERROR(server->Init());
  return server;
}

CofferServer::~CofferServer() {
  Stop();
}

Status CofferServer::Init() {
  const std::string& dir = config_.data_dir;
  RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  std::string suffix = AsciiLower(config_.dns_suffix);
  std::string authority_name = AsciiLower(config_.authority_name);
  ASSIGN_OR_RETURN(TlsMaterial tls, LoadTls());

  net::ServerOptions options;
  options.addresses = config_.listen;
  options.port = config_.port;
  options.io_threads = config_.io_threads;
  options.worker_threads = config_.worker_threads;
  options.read_timeout_seconds = config_.read_timeout_seconds;
  options.idle_timeout_seconds = config_.idle_timeout_seconds;
  options.max_body_bytes = config_.max_body_bytes;
  options.max_connections = config_.max_connections;
  options.max_connections_per_address = config_.max_connections_per_address;
  options.body_limit = [this](const http::Request& r) -> size_t {
    // SECURITY: the token endpoint is open to anyone; its forms are small.
    return VaultFromHost(r.host).empty() && auth::TokenService::IsTokenRequest(r)
               ? auth::TokenService::kMaxRequestBytes
               : 0;
  };
  options.certificate_chain_pem = tls.certificate_chain_pem;
  options.private_key_pem = tls.private_key_pem;
  crypto::SecureWipe(tls.private_key_pem);
  ASSIGN_OR_RETURN(https_, net::HttpServer::Create(
                               std::move(options), [this](http::Request& r) { return Route(r); },
                               [this](const http::Request& r) { return Head(r); },
                               [this](http::Request& r) { return Fast(r); }));
  port_ = https_->port();
  // Bound now, so that a bad address stops the server before it creates
  // anything; it serves from Start().
  metrics_ = std::make_unique<ServerMetrics>(clock_);
  RETURN_IF_ERROR(StartMetricsListener());
  auto port_suffix = [this](uint16_t configured) {
    uint16_t p = configured != 0 ? configured : port_;
    return p == 443 ? std::string() : ":" + std::to_string(p);
  };
  port_suffix_ = port_suffix(config_.authority_port);
  vault_port_suffix_ = port_suffix(config_.vault_port);
  vault_resource_ = "https://" + suffix + vault_port_suffix_;
  vault_audiences_ = {vault_resource_, vault_resource_ + "/"};
  std::string authority = "https://" + authority_name + port_suffix_;
  arm_audiences_ = {authority, authority + "/", "https://management.azure.com",
                    "https://management.azure.com/", "https://management.core.windows.net/"};

  ASSIGN_OR_RETURN(std::string master_key, keyvault::Envelope::LoadMasterKey(dir + "/master.key"));
  // Workload identity headers are MACs under a key of their own, derived
  // from the master key (docs/encryption.md).
  identity_headers_ = std::make_unique<auth::IdentityHeaders>(
      crypto::HkdfSha256(master_key, "", "coffer identity header v1", 32));
  // Webhook deliveries are signed with keys derived from one of their own.
  webhook_root_key_ = crypto::HkdfSha256(master_key, "", "coffer webhook signing v1", 32);
  webhook_url_key_ = crypto::HkdfSha256(master_key, "", "coffer webhook url v1", 32);
  // The token signing keys are sealed in the store under a key of their own.
  std::string signing_keys_key = auth::SigningKeySet::SealingKeyFor(master_key);
  // Client secrets are stored as MACs under a key of their own.
  auth::DirectoryOptions directory_options;
  directory_options.secret_hash_key = ClientSecretHashKey(master_key);
  ASSIGN_OR_RETURN(envelope_, keyvault::Envelope::Create(std::move(master_key)));
  ASSIGN_OR_RETURN(OpenedStore opened, OpenStore(config_.store, dir));
  commit_latency_ = opened.commit_latency;
  store_ = std::move(opened.store);

  // Servers starting together on one store agree on the first tenant and
  // subscription chosen.
  auto first_chosen = [](const std::optional<std::string>& current) {
    return StatusOr<std::string>(current ? *current : crypto::RandomUuid());
  };
  ASSIGN_OR_RETURN(const std::string tenant, store_->UpdateMeta("tenant_id", first_chosen));
  ASSIGN_OR_RETURN(const std::string subscription,
                   store_->UpdateMeta("subscription_id", first_chosen));
  info_.tenant_id = tenant;
  info_.subscription_id = subscription;
  info_.authority_host = authority;
  info_.ca_path = tls.ca_path;

  // Every server sharing the store signs with the store's keys; `keys` in
  // the data directory is read only to adopt an older installation's keys.
  ASSIGN_OR_RETURN(keys_, auth::SigningKeySet::Open(*store_, std::move(signing_keys_key),
                                                    dir + "/keys", clock_));
  directory_ =
      std::make_unique<auth::Directory>(*store_, clock_, tenant, std::move(directory_options));
  auth::TokenServiceConfig ts;
  ts.tenant_id = tenant;
  ts.authority_hosts = {authority_name + port_suffix_};
  if (authority_name == "localhost") {
    ts.authority_hosts.push_back("127.0.0.1" + port_suffix_);
    ts.authority_hosts.push_back("[::1]" + port_suffix_);
  }
  ts.resources = {vault_resource_, authority, "https://management.azure.com",
                  "https://management.core.windows.net", "https://graph.microsoft.com"};
  directory_audiences_ = arm_audiences_;
  directory_audiences_.push_back("https://graph.microsoft.com");
  federation_ = std::make_unique<auth::FederatedTrust>(
      *store_, clock_, [](const std::string& url) -> StatusOr<std::string> {
        net::ClientRequest req;
        req.url = url;
        req.timeout_seconds = 5;
        req.max_response_bytes = 1024 * 1024;
        ASSIGN_OR_RETURN(http::Response res, net::SendRequest(req));
        if (res.status != 200) {
          return UnavailableError("HTTP " + std::to_string(res.status));
        }
        return std::move(res.body);
      });
  token_service_ =
      std::make_unique<auth::TokenService>(ts, *directory_, *keys_, clock_, federation_.get());
  managed_identity_ = std::make_unique<auth::ManagedIdentityEndpoint>(*store_, *identity_headers_,
                                                                      *token_service_, clock_);
  verifier_ =
      std::make_unique<auth::TokenVerifier>(*keys_, clock_, token_service_->Issuers(), tenant);
  authenticator_ = std::make_unique<Authenticator>(*verifier_, *store_, clock_);
  // SECURITY: tokens signed by a retired key must fail at once, not when
  // they expire, whichever server retired it.
  keys_->OnRetired([this] { authenticator_->ForgetAll(); });
  graph_api_ = std::make_unique<auth::GraphApi>(
      *directory_, clock_,
      auth::GraphApi::Hooks{
          [this](const std::string& oid) { authenticator_->ForgetPrincipal(oid); },
          [this](const std::string& oid) { return IsAdmin(oid); }});
  auth::UserOptions user_options;
  user_options.hash_slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  users_ = std::make_unique<auth::Users>(*store_, clock_, tenant, user_options);
  // SECURITY: a reset, a disable, a revocation or a deletion drops the
  // user's cached principal, so that its tokens are checked afresh.
  device_flows_ = std::make_unique<auth::DeviceFlows>(*store_, clock_);
  // Refresh tokens are sealed under a key derived from the master key, so
  // that any server of the installation opens them and none stores them.
  user_grants_ = std::make_unique<auth::UserGrants>(
      auth::UserGrantsConfig{tenant, ts.token_lifetime_seconds}, *keys_, *users_, *device_flows_,
      clock_, [this](std::string_view scope) { return token_service_->Resource(scope); },
      [this](const std::string& plain) {
        return envelope_->SealInstallationKey("refresh-token", plain);
      },
      [this](const std::string& sealed) {
        return envelope_->OpenInstallationKey("refresh-token", sealed);
      });
  token_service_->SetUserGrants(user_grants_.get());
  device_pages_ = std::make_unique<auth::DeviceLoginPages>(*users_, *device_flows_, clock_);
  graph_users_ = std::make_unique<auth::GraphUsers>(
      *users_, auth::GraphUsers::Hooks{
                   [this](const std::string& oid) { authenticator_->ForgetPrincipal(oid); }});

  authorizer_ = std::make_unique<authz::Authorizer>(*store_);
  RETURN_IF_ERROR(authorizer_->Reload());
  constexpr int64_t kCacheTtlSeconds = 5;
  registry_ = std::make_unique<keyvault::VaultRegistry>(
      *store_, *envelope_, clock_, kCacheTtlSeconds, config_.stale_read_seconds);
  secrets_ = std::make_unique<keyvault::SecretService>(
      *store_, *envelope_, clock_, kCacheTtlSeconds, config_.stale_read_seconds);
  secrets_api_ = std::make_unique<keyvault::SecretsApi>(*secrets_);
  vault_keys_ =
      std::make_unique<keyvault::KeyService>(*store_, *envelope_, clock_, kCacheTtlSeconds);
  keys_api_ = std::make_unique<keyvault::KeysApi>(*vault_keys_);
  certificate_authority_ =
      std::make_unique<keyvault::CertificateAuthority>(*store_, *envelope_, clock_);
  certificate_issuers_ =
      std::make_unique<keyvault::CertificateIssuers>(*store_, clock_, *certificate_authority_);
  certificates_ = std::make_unique<keyvault::CertificateService>(
      *store_, *envelope_, clock_, *secrets_, *vault_keys_, *certificate_issuers_);
  certificates_api_ = std::make_unique<keyvault::CertificatesApi>(
      *certificates_, *certificate_issuers_,
      [this](std::string_view object_id) { return IsAdmin(std::string(object_id)); });
  // The data plane's one route table: every vault API's operations and the
  // watch stream.
  std::vector<keyvault::VaultOperation> vault_operations = secrets_api_->Operations();
  for (auto& op : keys_api_->Operations()) {
    vault_operations.push_back(std::move(op));
  }
  for (auto& op : certificates_api_->Operations()) {
    vault_operations.push_back(std::move(op));
  }
  vault_operations.push_back(WatchOperation());
  service_limits_ = std::make_unique<ServiceLimits>(clock_);
  arm_limits_ = std::make_unique<ArmLimits>(clock_, *service_limits_);
  RETURN_IF_ERROR(LoadServiceLimits());
  vault_plane_ = std::make_unique<VaultPlane>(
      VaultPlane::Config{authority, tenant, vault_resource_, vault_audiences_,
                         token_service_->CanonicalIssuer(), subscription},
      *authenticator_, *registry_, *authorizer_, std::move(vault_operations),
      service_limits_.get());
  // Key Vault weighs a key's operations by its size (service-limits.md).
  vault_plane_->SetWeigher([this](const std::shared_ptr<const keyvault::OpenVault>& vault,
                                  const keyvault::VaultOperation& route,
                                  const http::PathParams& params, bool may_block) -> int64_t {
    if (ServiceLimits::ClassOf(route.operation) != LimitClass::kKeyOther ||
        route.object_param.empty() || vault == nullptr) {
      return 1;
    }
    // Only an operation that opens the key anyway may open it here.
    const bool opens = route.changes_nothing && route.method == "POST";
    auto bits = vault_keys_->KeySize(vault, std::string(params.Get(route.object_param)),
                                     std::string(params.Get("version")), may_block && opens);
    return ServiceLimits::KeyWeight(bits.value_or(0));
  });
  mgmt::ManagementConfig mc;
  mc.subscription_id = subscription;
  mc.tenant_id = tenant;
  mc.vault_host_suffix = "." + suffix + vault_port_suffix_ + "/";
  // A purged vault takes its event subscriptions with it; a vault created
  // again under its name must not inherit them.
  mc.on_vault_purged = [this] { ReloadEventSubscriptions(); };
  mc.on_assignments_changed = [this] { ReloadRoles(); };
  // The management plane owns its managers and serves from their routes.
  ArmPlane::Managers managers;
  managers.vaults =
      std::make_unique<mgmt::VaultManager>(mc, *store_, *envelope_, *registry_, clock_);
  managers.identities = std::make_unique<mgmt::IdentityManager>(
      subscription, tenant, *store_, clock_,
      [this](const std::string& oid) { authenticator_->ForgetPrincipal(oid); });
  mgmt::WorkloadConfig wc;
  wc.subscription_id = subscription;
  wc.tenant_id = tenant;
  wc.identity_endpoint = authority + "/msi/token";
  wc.identity_header = [this](const storage::WorkloadRecord& w) {
    return identity_headers_->For(w);
  };
  wc.on_principal_deleted = [this](const std::string& oid) {
    authenticator_->ForgetPrincipal(oid);
  };
  managers.workloads = std::make_unique<mgmt::WorkloadManager>(std::move(wc), *store_, clock_);
  managers.roles =
      std::make_unique<mgmt::RoleManager>(subscription, tenant, *store_, *authorizer_, clock_);
  // Its hooks reach the webhook dispatcher, which StartEvents makes, only
  // when a request runs.
  managers.event_subscriptions = std::make_unique<mgmt::EventSubscriptionManager>(
      subscription, *store_, clock_,
      mgmt::EventSubscriptionManager::Hooks{
          [this](const std::string& vault, const std::string& name, int64_t generation) {
            return WebhookSigningKey(vault, name, generation);
          },
          [this] { ReloadEventSubscriptions(); }, events::UrlSeal(webhook_url_key_),
          [this](const std::string& url) { return webhooks_->CheckTarget(url); },
          [this](const events::Subscription& s, const std::string& validation_url) {
            return webhooks_->Validate(s, validation_url);
          },
          authority});
  managers.tags = std::make_unique<mgmt::TagsApi>(subscription, *store_, *registry_);
  arm_plane_ = std::make_unique<ArmPlane>(
      ArmPlane::Config{subscription, arm_audiences_, authority, tenant}, *authenticator_,
      *authorizer_, std::move(managers), arm_limits_.get());

  if (config_.audit) {
    ASSIGN_OR_RETURN(server_id_, ResolveServerId(dir, config_.server_id));
    const std::string audit_root = dir + "/audit";
    // A log from before servers had ids becomes this server's, unbroken.
    RETURN_IF_ERROR(audit::MoveLegacyLog(FileSystem::Default(), audit_root, server_id_,
                                         config_.audit_signing_key));
    audit::LogOptions ao;
    audit_dir_ = audit::ServerLogDir(audit_root, server_id_);
    ao.dir = audit_dir_;
    ao.server_id = server_id_;
    ao.max_file_bytes = config_.audit_max_file_bytes;
    ao.max_file_age_seconds = config_.audit_max_file_age_seconds;
    ao.retention_days = config_.audit_retention_days;
    ao.signing_key_path = config_.audit_signing_key;
    // SECURITY: one writer per chain. Log::Open refuses a log another
    // process holds; this says why that happens to a second server.
    auto locked = FileSystem::Default().IsLocked(audit::HeadPath(audit_dir_));
    if (locked.ok() && *locked) {
      return FailedPreconditionError(
          "another running server writes the audit log of server id " + server_id_ + " (" +
          audit_dir_ + "); every server needs an id of its own: give each --server-id");
    }
    ASSIGN_OR_RETURN(audit_, audit::Log::Open(std::move(ao), clock_));
  }
  RETURN_IF_ERROR(Bootstrap());
  RETURN_IF_ERROR(StartEvents());
  authority_plane_ = std::make_unique<AuthorityPlane>(
      AuthorityPlane::Config{info_.subscription_id, info_.authority_host, info_.tenant_id,
                             arm_audiences_, directory_audiences_},
      *authenticator_, [this](const std::string& oid) { return IsAdmin(oid); }, AuthorityRoutes());
  return OkStatus();
}

std::string CofferServer::WebhookSigningKey(const std::string& vault, const std::string& name,
                                            int64_t generation) const {
  return crypto::HkdfSha256(
      webhook_root_key_, "",
      AsciiLower(vault) + "/" + AsciiLower(name) + "/" + std::to_string(generation), 32);
}

void CofferServer::ReloadRoles() {
  Status reloaded = authorizer_->Reload();
  if (!reloaded.ok()) {
    COFFER_LOG(kWarning) << "reloading role assignments failed: " << reloaded.ToString();
  }
}

void CofferServer::ReloadSigningKeys() {
  Status reloaded = keys_->Reload();
  if (!reloaded.ok()) {
    COFFER_LOG(kWarning) << "reloading signing keys failed: " << reloaded.ToString();
  }
}

void CofferServer::OnStoreChange(const storage::Store::ExternalChange& change) {
  using Kind = storage::Store::ExternalChange::Kind;
  std::lock_guard<std::mutex> lock(store_changes_mu_);
  if (!store_changes_open_) {
    return;
  }
  if (change.kind == Kind::kFeed) {
    hub_->Notify();  // its listeners drop the secrets it names (ForgetChanged)
    return;
  }
  const std::string& table = change.table;
  const bool all = change.kind == Kind::kAll;
  // SECURITY: a revoked permission or credential must stop working here as
  // soon as it is committed elsewhere; the caches below are the only places
  // it could outlive the commit.
  if (all || table == "principals" || table == "client_secrets" || table == "client_certificates" ||
      table == "federated_credentials" || table == "users") {
    if (all) {
      directory_->ForgetAll();
      authenticator_->ForgetAll();
    } else {
      directory_->Forget(change.key);
      // A user disabled or signed out elsewhere: its tokens stop here too.
      if ((table == "principals" && change.deleted) || table == "users") {
        authenticator_->ForgetPrincipal(change.key);
      }
    }
  }
  if (all || table == "role_definitions" || table == "role_assignments") {
    ReloadRoles();
  }
  if (all || table == "vaults" || table == "vault_access_policies") {
    if (all) {
      registry_->InvalidateAll();
    } else {
      registry_->Invalidate(change.key);
    }
  }
  if (all || table == "event_subscriptions") {
    ReloadEventSubscriptions();
  }
  // A rotation through another server: sign with its new key and publish
  // it now, not at the first token that names it.
  if (all || (table == "meta" && change.key == auth::SigningKeySet::kMetaKey)) {
    ReloadSigningKeys();
  }
  // Limits set through another server apply here too.
  if (all || (table == "meta" && change.key == kServiceLimitsMetaKey)) {
    Status loaded = LoadServiceLimits();
    if (!loaded.ok()) {
      COFFER_LOG(kWarning) << "service limits: " << loaded.ToString();
    }
  }
  // A vault's clock moved through another server.
  if (table == "meta" && change.key == storage::kTimeShiftMetaKey) {
    AfterTimeShift();
  }
  // A CA imported through another server signs from now on here too.
  if (all || (table == "meta" && change.key == keyvault::CertificateAuthority::kMetaKey)) {
    certificate_authority_->Forget();
  }
  if (all) {
    secrets_->InvalidateAll();
    vault_keys_->InvalidateAll();
    hub_->Notify();
  }
}

void CofferServer::ForgetChanged(const std::vector<storage::ChangeRecord>& changes) {
  for (const auto& c : changes) {
    if (c.object_type == "Secret") {
      secrets_->Invalidate(c.vault, c.name);
    } else if (c.object_type == "Key") {
      vault_keys_->Invalidate(c.vault, c.name);
    } else if (c.type == "VaultAccessPolicyChanged") {
      registry_->Invalidate(c.vault);
    }
  }
}

void CofferServer::ReloadEventSubscriptions() {
  Status reloaded = webhooks_->Reload();
  if (!reloaded.ok()) {
    COFFER_LOG(kWarning) << "reloading event subscriptions failed: " << reloaded.ToString();
  }
}

Status CofferServer::StartEvents() {
  std::string suffix = "." + AsciiLower(config_.dns_suffix) + vault_port_suffix_;
  events::VaultNaming naming;
  naming.vault_url = [suffix](const std::string& vault) {
    return "https://" + AsciiLower(vault) + suffix;
  };
  naming.resource_id = [this](const std::string& vault) {
    auto open = registry_->TryGetCached(vault);
    if (open != nullptr) {
      return open->resource_id;
    }
    auto record = store_->GetVault(vault);
    return record.ok() ? record->ResourceId()
                       : "/subscriptions/" + info_.subscription_id +
                             "/providers/Microsoft.KeyVault/vaults/" + vault;
  };
  events::SigningKeyFor key_for = [this](const std::string& vault, const std::string& name,
                                         int64_t generation) {
    return WebhookSigningKey(vault, name, generation);
  };
  events::WebhookOptions wo;
  wo.base_backoff_ms = config_.event_retry_base_ms;
  // Pending deliveries live in the store, so a restart or the next leader
  // continues them (docs/ha.md).
  wo.persist = true;
  RETURN_IF_ERROR(EnsurePrivateDirectory(config_.data_dir + "/events"));
  wo.dead_letter_path = config_.data_dir + "/events/deadletter.jsonl";
  // SECURITY: webhooks reach public addresses only, unless the operator
  // allows more; dev mode allows loopback (its receivers run on the laptop).
  wo.targets.allow_loopback = config_.webhook_allow_loopback.value_or(config_.dev);
  wo.targets.allow_private = config_.webhook_allow_private;
  wo.targets.allow_link_local = config_.webhook_allow_link_local;
  // The CloudEvents origin: the authority's host name, without scheme or port.
  std::string origin = info_.authority_host.substr(info_.authority_host.find("://") + 3);
  wo.origin = origin.substr(0, origin.rfind(':'));
  webhooks_ = std::make_unique<events::WebhookDispatcher>(
      *store_, naming,
      [](const events::WebhookRequest& w) -> StatusOr<http::Response> {
        net::ClientRequest req;
        req.method = w.method;
        req.url = w.url;
        req.connect_address = w.connect_address;
        req.headers = w.headers;
        req.body = w.body;
        req.timeout_seconds = w.timeout_seconds;
        req.max_response_bytes = 64 * 1024;
        return net::SendRequest(req);
      },
      key_for, events::UrlSeal(webhook_url_key_), wo);
  events::WatchLimits watch_limits;
  watch_limits.max_streams_per_principal = static_cast<size_t>(config_.watch_streams_per_principal);
  watches_ = std::make_unique<events::WatchRegistry>(*store_, naming, clock_, watch_limits);
  // A deleted principal's streams end with its tokens.
  authenticator_->OnForgetPrincipal(
      [this](const std::string& oid) { watches_->ClosePrincipal(oid); });
  expiry_ = std::make_unique<events::ExpiryScheduler>(
      *store_, clock_, 30 * 86400, [this](storage::ObjectKind kind) {
        return kind == storage::ObjectKind::kKey ? vault_keys_->NoticeLeads()
                                                 : certificates_->NoticeLeads();
      });
  hub_ = std::make_unique<events::ChangeHub>(*store_);
  hub_->AddListener([this](const auto& changes) { ForgetChanged(changes); });
  hub_->AddListener([this](const auto& changes) { watches_->OnChanges(changes); });
  // Webhooks and the audit of notifications: once per installation, by
  // the leader, from the feed position stored in the database.
  hub_->AddListener([this](const auto&) { PumpLeaderFeed(); });
  hub_->AddTicker(1000, [this] { PumpLeaderFeed(); });
  hub_->AddTicker(config_.watch_heartbeat_seconds * 1000, [this] { watches_->Tick(); });
  hub_->AddTicker(1000, [this] { watches_->Expire(); });
  // A backstop for a rotation whose notification was missed.
  hub_->AddTicker(30 * 1000, [this] { ReloadSigningKeys(); });
  hub_->AddTicker(config_.expiry_scan_seconds * 1000, [this] { RunSchedules(); });
  hub_->AddTicker(3600 * 1000, [this] {
    if (!store_->Leads()) {
      return;
    }
    int64_t keep_ms = int64_t{config_.change_retention_days} * 86400 * 1000;
    auto pruned = store_->PruneChanges(clock_.NowSeconds() * 1000 - keep_ms, 1000);
    if (!pruned.ok()) {
      COFFER_LOG(kWarning) << "pruning the change feed failed: " << pruned.status().ToString();
    }
  });
  return OkStatus();
}

void CofferServer::PumpLeaderFeed() {
  if (!store_->Leads()) {
    if (leader_cursor_) {
      // The rows stay for the next leader; this server attempts no more.
      webhooks_->Follow();
    }
    leader_cursor_.reset();  // read it again when this server leads again
    return;
  }
  if (!leader_cursor_) {
    // The deliveries the last leader (or this server before a restart) left
    // pending continue first.
    Status led = webhooks_->Lead();
    if (!led.ok()) {
      COFFER_LOG(kWarning) << "loading the pending webhook deliveries failed: " << led.ToString();
      return;
    }
    auto stored = store_->GetMeta(kLeaderCursorKey);
    if (!stored.ok()) {
      return;
    }
    int64_t seq = feed_start_seq_;
    if (stored->has_value() && !ParseInt64(**stored, &seq)) {
      COFFER_LOG(kWarning) << "the stored webhook position is not a number; starting at "
                           << feed_start_seq_;
      seq = feed_start_seq_;
    }
    leader_cursor_ = seq;
  }
  constexpr int kPage = 512;
  while (true) {
    auto changes = store_->ListChanges(*leader_cursor_, kPage);
    if (!changes.ok() || changes->empty()) {
      return;
    }
    int64_t reached = changes->back().seq;
    // The page's deliveries and its position are stored in one write
    // before any is attempted (never backwards: a leader that lost its lease
    // without knowing it yet cannot undo the new one's progress).
    auto queue = [this, reached](const std::vector<storage::PendingDelivery>& rows) {
      return store_->QueueDeliveries(kLeaderCursorKey, reached, rows);
    };
    // Audited first: a leader that dies before the write below leaves the
    // page to the next one, which audits it again (at least once).
    size_t audited = AuditNotifications(*changes);
    auto matched = webhooks_->OnChanges(*changes, queue);
    if (!matched.ok()) {
      COFFER_LOG(kWarning) << "queueing webhook deliveries failed: " << matched.status().ToString();
      return;  // the page is read again at the next round
    }
    leader_cursor_ = reached;
    if (*matched == 0 && audited > 0) {
      // Stored so that a successor does not audit the page again. A page
      // that made nothing is not: a successor that reads it again hands on
      // nothing either, and not storing keeps a write off every busy round.
      auto saved = queue({});
      if (!saved.ok()) {
        COFFER_LOG(kWarning) << "saving the webhook position failed: " << saved.status().ToString();
      }
    }
    if (changes->size() < static_cast<size_t>(kPage)) {
      return;
    }
  }
}

void CofferServer::Start() {
  auto bounds = store_->GetChangeBounds();
  feed_start_seq_ = bounds.ok() ? bounds->newest : 0;
  Status started = hub_->Start();
  if (!started.ok()) {
    COFFER_LOG(kError) << "the change feed could not start: " << started.ToString();
  }
  {
    std::lock_guard<std::mutex> lock(store_changes_mu_);
    store_changes_open_ = true;
  }
  store_->OnChange([this](const storage::Store::ExternalChange& c) { OnStoreChange(c); });
  started = webhooks_->Start();
  if (!started.ok()) {
    COFFER_LOG(kError) << "webhook delivery could not start: " << started.ToString();
  }
  https_->Start();
  if (metrics_http_) {
    metrics_http_->Start();
  }
  purge_thread_ = std::thread([this] { PurgeLoop(); });
  tls_thread_ = std::thread([this] { TlsLoop(); });
  shares_thread_ = std::thread([this] { ShareLoop(); });
}

void CofferServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(purge_mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(store_changes_mu_);
    store_changes_open_ = false;
  }
  if (store_) {
    store_->StopChanges();
  }
  purge_cv_.notify_all();
  if (purge_thread_.joinable()) {
    purge_thread_.join();
  }
  if (tls_thread_.joinable()) {
    tls_thread_.join();
  }
  if (shares_thread_.joinable()) {
    shares_thread_.join();
  }
  if (https_) {
    https_->Stop();
  }
  if (metrics_http_) {
    metrics_http_->Stop();
  }
  if (hub_) {
    hub_->Stop();
  }
  if (webhooks_) {
    webhooks_->Stop();
  }
  if (audit_) {
    audit_->Close();
  }
  crypto::SecureWipe(webhook_root_key_);
  crypto::SecureWipe(webhook_url_key_);
}

void CofferServer::RunSchedules() {
  if (!store_->Leads()) {
    return;
  }
  // The ticker and a time shift's wake-up may both call: one run at a time,
  // so that a due key is rotated once.
  std::lock_guard<std::mutex> lock(schedules_mu_);
  auto found = expiry_->RunOnce();
  if (!found.ok()) {
    COFFER_LOG(kWarning) << "expiry scan failed: " << found.status().ToString();
  } else if (*found > 0) {
    hub_->Notify();
  }
  // Keys whose rotation policy says they are due get a new version.
  auto rotated = vault_keys_->RotateDue(*registry_);
  if (!rotated.ok()) {
    COFFER_LOG(kWarning) << "scheduled key rotation failed: " << rotated.status().ToString();
  } else if (*rotated > 0) {
    COFFER_LOG(kInfo) << "scheduled key rotation made " << *rotated << " new version(s)";
    hub_->Notify();
  }
  // Certificates whose AutoRenew action is due get a new version.
  auto renewed = certificates_->RenewDue(*registry_);
  if (!renewed.ok()) {
    COFFER_LOG(kWarning) << "scheduled certificate renewal failed: " << renewed.status().ToString();
  } else if (*renewed > 0) {
    COFFER_LOG(kInfo) << "scheduled certificate renewal made " << *renewed << " new version(s)";
    hub_->Notify();
  }
}

void CofferServer::PurgeLoop() {
  std::unique_lock<std::mutex> lock(purge_mu_);
  while (!stopping_) {
    purge_cv_.wait_for(lock, std::chrono::seconds(config_.purge_interval_seconds),
                       [this] { return stopping_ || schedules_due_; });
    if (stopping_) {
      return;
    }
    const bool schedules_due = std::exchange(schedules_due_, false);
    if (!store_->Leads()) {
      continue;
    }
    lock.unlock();
    if (schedules_due) {
      RunSchedules();
    }
    // Secrets and keys alike.
    auto purged = secrets_->PurgeExpired();
    vault_keys_->InvalidateAll();
    if (!purged.ok()) {
      COFFER_LOG(kWarning) << "scheduled purge failed: " << purged.status().ToString();
    } else if (*purged > 0) {
      COFFER_LOG(kInfo) << "scheduled purge removed " << *purged << " secret(s) and key(s)";
    }
    auto vaults = arm_plane_->vaults().PurgeExpired();
    if (!vaults.ok()) {
      COFFER_LOG(kWarning) << "scheduled vault purge failed: " << vaults.status().ToString();
    } else if (*vaults > 0) {
      COFFER_LOG(kInfo) << "scheduled purge removed " << *vaults << " vault(s)";
      ReloadEventSubscriptions();
    }
    lock.lock();
  }
}

std::string CofferServer::VaultFromHost(const std::string& host) const {
  std::string h = AsciiLower(host);
  if (!h.empty() && h.front() == '[') {
    return "";
  }
  size_t colon = h.rfind(':');
  if (colon != std::string::npos) {
    h = h.substr(0, colon);
  }
  std::string suffix = "." + AsciiLower(config_.dns_suffix);
  if (!EndsWith(h, suffix) || h.size() == suffix.size()) {
    return "";
  }
  std::string vault = h.substr(0, h.size() - suffix.size());
  return vault.find('.') == std::string::npos ? vault : "";
}

bool CofferServer::IsAuthorityHost(const std::string& host) const {
  std::string h = AsciiLower(host);
  if (!h.empty() && h.front() == '[') {
    h = h.substr(0, h.find(']') + 1);
  } else if (size_t colon = h.rfind(':'); colon != std::string::npos) {
    h = h.substr(0, colon);
  }
  const std::string name = AsciiLower(config_.authority_name);
  if (h == name) {
    return true;
  }
  // localhost is also reached by its addresses.
  return name == "localhost" && (h == "127.0.0.1" || h == "[::1]");
}

std::optional<http::Response> CofferServer::Head(const http::Request& request) {
  std::string vault = VaultFromHost(request.host);
  if (vault.empty()) {
    return std::nullopt;
  }
  int64_t start = NowMicros();
  const std::string request_id = RequestId();
  LogContext log(request_id, request.Header("x-ms-client-request-id"));
  AuditNote note;
  auto r = vault_plane_->Head(vault, request, note);
  if (r) {
    r->SetHeader("x-ms-request-id", request_id);
    Audit(request, *r, note, start, false);
    Observe(request, *r, note, start);
  }
  return r;
}

std::optional<http::Response> CofferServer::Fast(http::Request& request) {
  // Only reads whose every input is already in memory are answered here;
  // anything that would touch storage goes to the worker pool.
  std::string vault = VaultFromHost(request.host);
  if (vault.empty()) {
    return std::nullopt;
  }
  int64_t start = NowMicros();
  const std::string request_id = RequestId();
  LogContext log(request_id, request.Header("x-ms-client-request-id"));
  AuditNote note;
  auto response = vault_plane_->Fast(vault, request, note);
  if (response) {
    response->SetHeader("x-ms-request-id", request_id);
    Audit(request, *response, note, start, false);
    Observe(request, *response, note, start);
  }
  return response;
}

bool CofferServer::IsAdmin(const std::string& object_id) {
  std::lock_guard<std::mutex> lock(admin_mu_);
  for (const auto& a : admins_) {
    if (a == object_id) {
      return true;
    }
  }
  return false;
}

Status CofferServer::LoadServiceLimits() {
  ASSIGN_OR_RETURN(std::optional<std::string> stored, store_->GetMeta(kServiceLimitsMetaKey));
  LimitSettings settings;
  if (stored.has_value()) {
    ASSIGN_OR_RETURN(settings, LimitSettings::Parse(*stored));
  } else {
    ASSIGN_OR_RETURN(settings.mode, LimitSettings::ParseMode(config_.service_limits));
  }
  service_limits_->Apply(settings);
  return OkStatus();
}

http::Response CofferServer::ServiceLimitsRequest(const http::Request& request) {
  if (request.method == "GET") {
    return http::JsonResponse(200, service_limits_->settings().ToJson());
  }
  // PUT replaces the settings, PATCH changes what it names; either is one
  // read-modify-write of the stored settings (UpdateMeta), so that two
  // administrators changing two vaults at once both land.
  std::lock_guard<std::mutex> lock(service_limits_write_mu_);
  auto stored = store_->UpdateMeta(
      kServiceLimitsMetaKey,
      [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
        if (request.method == "PUT") {
          ASSIGN_OR_RETURN(LimitSettings next, LimitSettings::Parse(request.body));
          return next.ToJson();
        }
        LimitSettings base;
        if (current.has_value()) {
          ASSIGN_OR_RETURN(base, LimitSettings::Parse(*current));
        } else {
          base = service_limits_->settings();
        }
        ASSIGN_OR_RETURN(LimitSettings next, LimitSettings::Patch(base, request.body));
        return next.ToJson();
      });
  if (!stored.ok()) {
    return http::ErrorResponse(stored.status());
  }
  auto settings = LimitSettings::Parse(*stored);
  if (!settings.ok()) {
    return http::ErrorResponse(settings.status());
  }
  service_limits_->Apply(*settings);
  COFFER_LOG(kInfo) << "service limits set: " << *stored;
  return http::JsonResponse(200, *stored);
}

http::Response CofferServer::Route(http::Request& request) {
  int64_t start = NowMicros();
  const std::string request_id = RequestId();
  LogContext log(request_id, request.Header("x-ms-client-request-id"));
  std::string vault = VaultFromHost(request.host);
  AuditNote note;
  http::Response response;
  if (!vault.empty()) {
    response = vault_plane_->Handle(vault, request, note);
  } else if (IsAuthorityHost(request.host) ||
             (request.method == "GET" &&
              (request.target == "/healthz" || request.target == "/readyz"))) {
    // Liveness and readiness are answered whatever the Host: probes name an
    // address.
    response = authority_plane_->Handle(request, note);
  } else {
    // A name this server does not serve: a client that resolved it here
    // must not get answers (or URLs) for another name.
    response = http::ErrorResponse(
        421, "MisdirectedRequest",
        "This server does not serve the host named in the request. It serves " +
            AsciiLower(config_.authority_name) + " and *." + AsciiLower(config_.dns_suffix) + ".");
  }
  bool write = request.method != "GET" && request.method != "HEAD" && !note.changes_nothing;
  if (write && response.status < 400 && !note.operation.empty()) {
    // A vault or management write may have committed a change: hand it on
    // now (token requests and the like change nothing the feed holds).
    hub_->Notify();
  }
  response.SetHeader("x-ms-request-id", request_id);
  Audit(request, response, note, start, write);
  Observe(request, response, note, start);
  COFFER_LOG(kDebug) << request.method << " " << request.host << " /"
                     << (request.segments.empty() ? "" : request.segments[0]) << " -> "
                     << response.status;
  return response;
}

std::vector<AuthorityRoute> CofferServer::AuthorityRoutes() {
  using Access = AuthorityRoute::Access;
  auto tenant = [](const AuthorityCall& call) { return std::string(call.params.Get("tenant")); };
  auto graph = [this](std::string_view verb) {
    return [this, verb](const AuthorityCall& call) {
      return graph_api_->Handle(call.request, std::string(call.params.Get("id")), verb);
    };
  };
  auto users = [this](std::string_view verb) {
    return [this, verb](const AuthorityCall& call) {
      return graph_users_->Handle(call.request, std::string(call.params.Get("id")), verb);
    };
  };
  auto arm = [this](const AuthorityCall& call) {
    return arm_plane_->Handle(call.request, call.note);
  };
  auto validate = [this](const AuthorityCall& call) {
    std::string vault(call.params.Get("vault"));
    call.note.operation = "EventSubscriptionValidate";
    call.note.resource_id = VaultResourceId(vault);
    return arm_plane_->event_subscriptions().Validate(call.request, vault,
                                                      std::string(call.params.Get("name")));
  };
  return {
      {"GET", "/healthz", Access::kPublic, "",
       [](const AuthorityCall&) { return http::JsonResponse(200, R"({"status":"ok"})"); }},
      {"GET", "/readyz", Access::kPublic, "", [this](const AuthorityCall&) { return Readiness(); }},
      // The token service (token-service.md).
      {"GET", "/{tenant}/v2.0/.well-known/openid-configuration", Access::kPublic, "",
       [this, tenant](const AuthorityCall& c) {
         return token_service_->Discovery(c.request, tenant(c));
       }},
      // The tenant's alias "adfs" (token-service.md): the authority form
      // MSAL and the SDKs use with no instance discovery.
      {"GET", "/{tenant}/.well-known/openid-configuration", Access::kPublic, "",
       [this, tenant](const AuthorityCall& c) {
         return token_service_->AdfsDiscovery(c.request, tenant(c));
       }},
      {"GET", "/{tenant}/discovery/v2.0/keys", Access::kPublic, "",
       [this, tenant](const AuthorityCall& c) { return token_service_->Keys(tenant(c)); }},
      {"*", "/{tenant}/oauth2/v2.0/token", Access::kPublic, "",
       [this, tenant](const AuthorityCall& c) {
         return token_service_->TokenEndpoint(c.request, tenant(c));
       }},
      // A person's sign-in from a device (users.md): the flow starts here and
      // is finished on the page.
      {"*", "/{tenant}/oauth2/v2.0/devicecode", Access::kPublic, "",
       [this, tenant](const AuthorityCall& c) {
         if (!token_service_->IsTenant(tenant(c))) {
           return token_service_->Keys(tenant(c));  // AADSTS90002, as every endpoint
         }
         return user_grants_->DeviceCode(
             c.request, "https://" + token_service_->HostFor(c.request) + "/devicelogin");
       }},
      {"GET", "/devicelogin", Access::kPublic, "",
       [this](const AuthorityCall& c) { return device_pages_->Handle(c.request); }},
      {"POST", "/devicelogin", Access::kPublic, "",
       [this](const AuthorityCall& c) { return device_pages_->Handle(c.request); }},
      // App Service's managed-identity endpoint: the identity header is its
      // credential (identities.md).
      {"*", "/msi/token", Access::kPublic, "",
       [this](const AuthorityCall& c) { return managed_identity_->Token(c.request); }},
      // The directory (directory.md): administrators only.
      {"GET", "/v1.0/servicePrincipals", Access::kDirectory, "", graph("")},
      {"POST", "/v1.0/servicePrincipals", Access::kDirectory, "", graph("")},
      {"GET", "/v1.0/servicePrincipals/{id}", Access::kDirectory, "", graph("")},
      {"DELETE", "/v1.0/servicePrincipals/{id}", Access::kDirectory, "", graph("")},
      {"POST", "/v1.0/servicePrincipals/{id}/addPassword", Access::kDirectory, "",
       graph("addPassword")},
      {"POST", "/v1.0/servicePrincipals/{id}/removePassword", Access::kDirectory, "",
       graph("removePassword")},
      {"POST", "/v1.0/servicePrincipals/{id}/addKey", Access::kDirectory, "", graph("addKey")},
      {"POST", "/v1.0/servicePrincipals/{id}/removeKey", Access::kDirectory, "",
       graph("removeKey")},
      // The directory's people (users.md): administrators only.
      {"GET", "/v1.0/users", Access::kDirectory, "", users("")},
      {"POST", "/v1.0/users", Access::kDirectory, "UserCreate", users("")},
      {"GET", "/v1.0/users/{id}", Access::kDirectory, "", users("")},
      {"PATCH", "/v1.0/users/{id}", Access::kDirectory, "UserUpdate", users("")},
      {"DELETE", "/v1.0/users/{id}", Access::kDirectory, "UserDelete", users("")},
      {"POST", "/v1.0/users/{id}/revokeSignInSessions", Access::kDirectory, "UserRevokeSessions",
       users("revokeSignInSessions")},
      {"POST", "/v1.0/directoryObjects/getByIds", Access::kDirectory, "",
       [this](const AuthorityCall& c) { return graph_api_->GetByIds(c.request); }},
      // A user's own record; Graph's 400 to an application's token (az tries
      // /me before it looks up a service principal).
      {"GET", "/v1.0/me", Access::kDirectoryCaller, "",
       [this](const AuthorityCall& c) {
         if (c.caller->identity_type != "user") {
           return auth::GraphApi::Me();
         }
         return graph_users_->Handle(c.request, c.caller->object_id, "");
       }},
      {"POST", "/v1.0/me/changePassword", Access::kDirectoryCaller, "UserChangePassword",
       [this](const AuthorityCall& c) { return ChangePasswordRequest(*c.caller, c.request); }},
      // ARM's account listings, which az login reads: each caller sees only
      // what it may (accounts.cc).
      {"GET", "/subscriptions", Access::kCaller, "",
       [this](const AuthorityCall& c) { return SubscriptionsRequest(*c.caller); }},
      {"GET", "/tenants", Access::kCaller, "",
       [this](const AuthorityCall&) { return TenantsRequest(); }},
      // Coffer's administration API (token-service.md, audit.md,
      // authorization.md, architecture.md).
      {"GET", "/coffer/v1/audit", Access::kCaller, "AuditQuery",
       [this](const AuthorityCall& c) { return AuditQueryRequest(*c.caller, c.request); }},
      {"GET", "/coffer/v1/authz/explain", Access::kCaller, "AuthorizationExplain",
       [this](const AuthorityCall& c) { return ExplainRequest(*c.caller, c.request); }},
      {"POST", "/coffer/v1/signing-keys/rotate", Access::kAdministrator, "CofferAdministration",
       [this](const AuthorityCall&) { return RotateSigningKeys(); }},
      // SECURITY: only an administrator replaces the administrator's
      // credentials, with a token it got with them; the old secret stops
      // working at once (directory.md).
      {"POST", "/coffer/v1/administrator/credentials/rotate", Access::kAdministrator,
       "CofferAdministration",
       [this](const AuthorityCall&) { return RotateAdministratorCredentials(); }},
      // The installation's CA certificate (with the chain above an imported
      // one), public like any trust anchor; an administrator replaces it
      // (certificates.md, "Coffer's own issuer").
      {"GET", "/coffer/v1/ca", Access::kPublic, "",
       [this](const AuthorityCall&) { return CaRequest(); }},
      {"PUT", "/coffer/v1/ca", Access::kAdministrator, "CofferAdministration",
       [this](const AuthorityCall& c) {
         auto body = ParseJson(c.request.body, 4);
         if (!body || !body->is_object() || !body->contains("value") ||
             !(*body)["value"].is_string()) {
           return http::ErrorResponse(InvalidArgumentError(
               "The body must be {\"value\": PEM text of the CA's key and certificate chain}.",
               "BadParameter"));
         }
         std::string& pem = (*body)["value"].get_ref<std::string&>();
         Status imported = certificate_authority_->Import(pem);
         // SECURITY: the request's copy of the CA's key is wiped.
         crypto::SecureWipe(pem);
         if (!imported.ok()) {
           return http::ErrorResponse(imported);
         }
         COFFER_LOG(kInfo) << "the installation's CA was replaced by an imported one";
         return CaRequest();
       }},
      // Key Vault's service limits (service-limits.md): anyone may read
      // them (a client's back-off is its own business); an administrator
      // sets them, for every server of the installation.
      {"GET", "/coffer/v1/service-limits", Access::kCaller, "",
       [this](const AuthorityCall& c) { return ServiceLimitsRequest(c.request); }},
      {"PUT", "/coffer/v1/service-limits", Access::kAdministrator, "CofferAdministration",
       [this](const AuthorityCall& c) { return ServiceLimitsRequest(c.request); }},
      {"PATCH", "/coffer/v1/service-limits", Access::kAdministrator, "CofferAdministration",
       [this](const AuthorityCall& c) { return ServiceLimitsRequest(c.request); }},
      // Time travel (testing-with-coffer.md): administrators only, and a
      // shift only where the server allows it.
      {"GET", "/coffer/v1/time-shift", Access::kAdministrator, "CofferAdministration",
       [this](const AuthorityCall& c) { return TimeShiftRequest(c.request, c.note); }},
      {"POST", "/coffer/v1/time-shift", Access::kAdministrator, "TimeShift",
       [this](const AuthorityCall& c) { return TimeShiftRequest(c.request, c.note); }},
      {"GET", "/coffer/v1/routes", Access::kAdministrator, "CofferAdministration",
       [this](const AuthorityCall&) { return RoutesRequest(); }},
      // Event Grid's manual validation URL: the token in it is the proof
      // (events.md); the token stays out of the audit log's requestUri.
      {"GET", "/eventsubscriptions/{vault}/{name}/validate", Access::kPublic,
       "EventSubscriptionValidate", validate, true},
      {"POST", "/eventsubscriptions/{vault}/{name}/validate", Access::kPublic,
       "EventSubscriptionValidate", validate, true},
      // The management plane, with its own table (ArmPlane).
      {"*", "/subscriptions/{rest...}", Access::kManagement, "", arm},
      {"*", "/providers/{rest...}", Access::kManagement, "", arm},
  };
}

http::Response CofferServer::CaRequest() {
  auto chain = certificate_authority_->Chain();
  if (!chain.ok()) {
    return http::ErrorResponse(chain.status());
  }
  http::Response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/x-pem-file");
  for (const auto& der : *chain) {
    auto pem = crypto::CertificatePem(der);
    if (!pem.ok()) {
      return http::ErrorResponse(pem.status());
    }
    r.body += *pem;
  }
  return r;
}

http::Response CofferServer::RotateSigningKeys() {
  // Stored before it answers; tokens of the retired key are forgotten
  // (OnRetired), and the other servers hear of it (OnStoreChange).
  Status rotated = keys_->Rotate();
  if (!rotated.ok()) {
    return http::ErrorResponse(rotated);
  }
  COFFER_LOG(kInfo) << "signing keys rotated; current kid " << keys_->current_kid();
  Json kids = Json::array();
  const Json jwks = keys_->Jwks();
  for (const auto& k : jwks["keys"]) {
    kids.push_back(k["kid"]);
  }
  return http::JsonResponse(200,
                            ToJson(Json{{"currentKid", keys_->current_kid()}, {"kids", kids}}));
}

http::Response CofferServer::RoutesRequest() const {
  // Every route of the vault and management planes and what it needs, so
  // that a test (and an operator) can walk them all.
  Json vault = Json::array();
  for (const auto& op : vault_plane_->routes().operations()) {
    Json item = {{"method", op.method}, {"pattern", op.pattern}, {"operation", op.operation}};
    if (op.anywhere_in_vault) {
      item["anywhereInVault"] = true;
    }
    if (!op.alternatives.empty()) {
      Json alternatives = Json::array();
      for (std::string_view a : op.alternatives) {
        alternatives.push_back(std::string(a));
      }
      item["alternatives"] = std::move(alternatives);
    }
    vault.push_back(std::move(item));
  }
  Json authority = Json::array();
  for (const auto& r : authority_plane_->routes()) {
    using Access = AuthorityRoute::Access;
    authority.push_back({{"method", r.method},
                         {"pattern", r.pattern},
                         {"access", r.access == Access::kPublic            ? "public"
                                    : r.access == Access::kCaller          ? "caller"
                                    : r.access == Access::kAdministrator   ? "administrator"
                                    : r.access == Access::kDirectory       ? "directory"
                                    : r.access == Access::kDirectoryCaller ? "directory-caller"
                                                                           : "management"}});
  }
  Json arm = Json::array();
  for (const auto& r : arm_plane_->routes()) {
    arm.push_back({{"method", r.method},
                   {"pattern", r.pattern},
                   {"action", r.action},
                   {"collection", r.collection}});
  }
  return http::JsonResponse(200,
                            ToJson(Json{{"vault", vault}, {"authority", authority}, {"arm", arm}}));
}

}  // namespace coffer::server
