#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "audit/log.h"
#include "auth/admin_credentials.h"
#include "auth/directory.h"
#include "auth/federation.h"
#include "auth/graph_api.h"
#include "auth/graph_users.h"
#include "auth/managed_identity.h"
#include "auth/sign_in_pages.h"
#include "auth/signing_keys.h"
#include "auth/token_service.h"
#include "auth/token_verifier.h"
#include "auth/user_grants.h"
#include "auth/users.h"
#include "authz/authorizer.h"
#include "common/clock.h"
#include "events/change_hub.h"
#include "events/expiry.h"
#include "events/watch.h"
#include "events/webhooks.h"
#include "keyvault/certificates_api.h"
#include "keyvault/keys_api.h"
#include "keyvault/secret_service.h"
#include "keyvault/secrets_api.h"
#include "net/http_server.h"
#include "server/arm_plane.h"
#include "server/authenticator.h"
#include "server/authority_plane.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/service_limits.h"
#include "server/tls_material.h"
#include "server/vault_plane.h"
#include "storage/store.h"

namespace coffer::server {

struct ServerConfig {
  std::string data_dir = ".coffer";
  // The store (store_backend.h): "" for SQLite in data_dir, or a PostgreSQL
  // connection string that several servers share.
  std::string store;
  std::vector<std::string> listen = {"127.0.0.1", "::1"};
  uint16_t port = 8443;  // 0: any free port
  // The public names (docs/deployment.md): the authority host (token
  // service, management plane) and the vault DNS suffix, each with the port
  // clients use (0: the port the server listens on). Vaults are served at
  // https://<vault>.<dns_suffix>[:<vault_port>]. Every URL the server writes
  // uses them, and a request for any other host is answered 421. The
  // default authority, localhost, is also reached as 127.0.0.1 and [::1].
  std::string authority_name = "localhost";
  uint16_t authority_port = 0;
  std::string dns_suffix = "vault.localhost";
  uint16_t vault_port = 0;
  // The TLS certificate chain and key (PEM files; both or neither). Without
  // them the built-in CA issues one for the names above and renews it. The
  // files are read again on ReloadTls (SIGHUP) and when they change, checked
  // every tls_reload_seconds.
  std::string tls_cert;
  std::string tls_key;
  int tls_reload_seconds = 10;
  // The metrics listener, "ADDR:PORT" (plain HTTP: GET /metrics, /healthz,
  // /readyz); "" for none. Never the public port.
  std::string metrics_listen;
  bool dev = false;
  // Where the first start writes the administrator's credentials (mode
  // 0600): "" for <data_dir>/admin.env (dev.env with `dev`), "-" to print
  // them on standard output instead. Outside dev mode they are delivered
  // once, by the start that creates the administrator, and never again.
  std::string admin_credentials_file;
  int io_threads = 2;
  int worker_threads = 16;
  int read_timeout_seconds = 30;
  int idle_timeout_seconds = 120;
  size_t max_body_bytes = 2 * 1024 * 1024;
  // Connection caps (net::ServerOptions); 0 means no cap.
  size_t max_connections = 16384;
  size_t max_connections_per_address = 4096;
  int purge_interval_seconds = 60;
  // How long a cached vault or secret may still answer reads while the
  // database cannot be reached (docs/ha.md); 0: such reads fail with 503.
  int stale_read_seconds = 300;
  // Key Vault's service limits (docs/service-limits.md): "off" or "azure",
  // until an administrator sets them (GET/PUT /coffer/v1/service-limits,
  // kept in the store for every server).
  std::string service_limits = "off";
  // Time travel (docs/testing-with-coffer.md): an administrator may move a
  // vault's clock forward. On in dev mode; elsewhere only when allowed.
  bool allow_time_shift = false;
  // Audit log (docs/audit.md): on unless turned off.
  bool audit = true;
  uint64_t audit_max_file_bytes = 64ull << 20;
  int64_t audit_max_file_age_seconds = 86400;
  int64_t audit_retention_days = 90;
  // The checkpoint signing key; "" = <data_dir>/audit/<server id>/checkpoint.key.
  std::string audit_signing_key;
  // The server's id (server_id.h): names its audit log, <data_dir>/audit/<id>/,
  // and is in every record it writes. "" = the one kept in <data_dir>/server-id.
  std::string server_id;
  // Events (docs/events.md).
  int64_t event_retry_base_ms = 10000;
  int expiry_scan_seconds = 60;
  int watch_heartbeat_seconds = 15;
  int watch_streams_per_principal = 16;
  int change_retention_days = 7;
  // Webhook targets (docs/events.md): public addresses always; loopback when
  // allowed (unset: in dev mode only); private and link-local when allowed.
  std::optional<bool> webhook_allow_loopback;
  bool webhook_allow_private = false;
  bool webhook_allow_link_local = false;
};

// What a client needs to connect, as written to dev.env / admin.env.
struct ConnectionInfo {
  std::string tenant_id;
  std::string subscription_id;
  std::string client_id;
  std::string client_secret;
  std::string authority_host;  // https://<authority name>[:<port>]
  std::string vault_url;       // dev vault (dev mode only)
  std::string resource_group;
  std::string ca_path;
  std::string env_file;  // "" when the credentials go to standard output
  // Whether this start issued the administrator's credentials (always in
  // dev mode; outside it, only the start that created the administrator):
  // then `credentials` holds them, as the file holds them, to print when
  // there is no file.
  bool credentials_issued = false;
  std::string credentials;
};

// Helpers of the request pipeline (audit_trail.cc).
int64_t NowMicros();

// CofferServer wires the layers together: TLS listener, token service,
// management plane and the Key Vault data plane, on one port, routed by
// Host (docs/architecture.md).
class CofferServer {
 public:
  // The tenant clients name in AZURE_TENANT_ID (dev.env): the alias "adfs"
  // of the one tenant (auth::TokenService).
  static constexpr const char* kClientTenant = "adfs";

  // Create opens (or initialises) the data directory and binds the port.
  static StatusOr<std::unique_ptr<CofferServer>> Create(ServerConfig config);
  ~CofferServer();

  void Start();
  void Stop();
  // ReloadTls reads the certificate and key again (the operator's files, or
  // the built-in CA's, renewed if due) and serves them to new connections;
  // established ones keep theirs. On failure the certificate in use stays
  // and the error is logged and returned.
  Status ReloadTls();
  // SetSeeding(true) makes /readyz answer 503 ("seed": "applying") until
  // SetSeeding(false): `coffer server --seed` applies its file through the
  // server's own API after Start.
  void SetSeeding(bool seeding) { seeding_.store(seeding); }
  // The metrics listener's port (0 when there is none).
  uint16_t metrics_port() const;
  uint16_t port() const { return port_; }
  const ConnectionInfo& connection_info() const { return info_; }

 private:
  explicit CofferServer(ServerConfig config) : config_(std::move(config)) {}
  Status Init();
  Status Bootstrap();
  // bootstrap.cc: POST /coffer/v1/administrator/credentials/rotate.
  http::Response RotateAdministratorCredentials();
  Status StartEvents();
  void ReloadEventSubscriptions();
  void ReloadRoles();
  // Makes the store's signing keys this server's (another server rotated).
  void ReloadSigningKeys();
  // What another server sharing the store changed (docs/ha.md): drops the
  // caches it touches. On the store's listener thread.
  void OnStoreChange(const storage::Store::ExternalChange& change);
  // Drops the cached secrets and vaults the feed's changes touch.
  void ForgetChanged(const std::vector<storage::ChangeRecord>& changes);
  // On the leader: hands the feed's changes after the stored position
  // (meta kLeaderCursorKey) to the webhooks and the audit of
  // notifications, and stores the new position. On the hub's thread.
  void PumpLeaderFeed();
  static constexpr char kLeaderCursorKey[] = "webhook_feed_seq";
  // The key that signs one event subscription's deliveries (derived from
  // the webhook root key; a new generation is a new key).
  std::string WebhookSigningKey(const std::string& vault, const std::string& name,
                                int64_t generation) const;
  http::Response Route(http::Request& request);
  std::optional<http::Response> Head(const http::Request& request);
  std::optional<http::Response> Fast(http::Request& request);
  // GET /coffer/v1/routes: the planes' route tables (administrators only).
  http::Response RoutesRequest() const;
  // The authority host's routes (AuthorityPlane).
  std::vector<AuthorityRoute> AuthorityRoutes();
  http::Response RotateSigningKeys();
  // GET /coffer/v1/ca: the installation's CA chain as PEM.
  http::Response CaRequest();
  // The service limits as the store holds them (the config's mode while it
  // holds none), applied; and GET/PUT /coffer/v1/service-limits.
  Status LoadServiceLimits();
  http::Response ServiceLimitsRequest(const http::Request& request);
  // A change of the limits is one UpdateMeta, then applied here; held
  // across both, so that this server applies its changes in their order.
  std::mutex service_limits_write_mu_;
  // time_travel.cc: GET/POST /coffer/v1/time-shift, and what a shift
  // through any server means here (caches dropped, schedules run now).
  http::Response TimeShiftRequest(const http::Request& request, AuditNote& note);
  void AfterTimeShift();
  // The scheduled work on expiry: notices, key rotations, certificate
  // renewals (once per installation, by the leader). One run at a time.
  void RunSchedules();
  std::mutex schedules_mu_;
  // audit_trail.cc: the audit record of one request. `durable` waits until
  // it is on disk (writes are acknowledged only then); a failure to write it
  // turns the response into a 503.
  void Audit(const http::Request& request, http::Response& response, const AuditNote& note,
             int64_t start_us, bool durable);
  // The audit of a change notification (SecretNearExpiry, ...).
  // Returns how many it audited.
  size_t AuditNotifications(const std::vector<storage::ChangeRecord>& changes);
  http::Response AuditQueryRequest(const Caller& caller, const http::Request& request);
  // accounts.cc: ARM's GET /subscriptions (the subscription, when the
  // caller holds a role in it) and GET /tenants (the tenant), which
  // az login reads.
  http::Response SubscriptionsRequest(const Caller& caller) const;
  http::Response TenantsRequest() const;
  // POST /v1.0/me/changePassword: a user changes their own password
  // (users.md); Graph's 400 for an application's token.
  http::Response ChangePasswordRequest(const Caller& caller, const http::Request& request);
  // watch_endpoint.cc: the watch stream's route of the vault plane.
  keyvault::VaultOperation WatchOperation();
  http::Response WatchRequest(const keyvault::VaultCall& call);
  // The ARM id of a vault, from the cache or the store, or a best guess
  // without its resource group when it does not exist.
  std::string VaultResourceId(const std::string& vault) const;
  // Returns the vault name when `host` is a vault host; "" otherwise.
  std::string VaultFromHost(const std::string& host) const;
  // Whether `host` (a Host header, port ignored) names the authority.
  bool IsAuthorityHost(const std::string& host) const;
  bool IsAdmin(const std::string& object_id);
  // authorization.cc: the explanation API behind `coffer authz explain`.
  http::Response ExplainRequest(const Caller& caller, const http::Request& request);
  // Gives the administrators their role assignments and the dev vault's
  // access policy, once per installation.
  Status GrantAdministrators();
  void PurgeLoop();
  // tls.cc: the certificate for the configured names, and the loop that
  // reloads it when its files change or it is due for renewal.
  StatusOr<TlsMaterial> LoadTls();
  void TlsLoop();
  // shared_limits.cc: every half second, this server's share of the
  // service limits agreed with the other servers (limit_shares.h), and its
  // heartbeat; on stopping, its shares given back.
  void ShareLoop();
  void SyncShares();
  // metrics_endpoint.cc: what a request adds to the metrics, the /readyz
  // answer, and the metrics listener.
  void Observe(const http::Request& request, const http::Response& response, const AuditNote& note,
               int64_t start_us);
  http::Response Readiness();
  Status StartMetricsListener();

  const ServerConfig config_;
  uint16_t port_ = 0;
  std::string port_suffix_;        // the authority's ":<port>", or "" for 443
  std::string vault_port_suffix_;  // the vaults' ":<port>", or "" for 443
  std::string vault_resource_;
  std::vector<std::string> vault_audiences_;
  std::vector<std::string> arm_audiences_;
  std::vector<std::string> directory_audiences_;
  ConnectionInfo info_;

  SystemClock& clock_ = SystemClock::Get();
  std::unique_ptr<net::HttpServer> https_;
  std::unique_ptr<storage::Store> store_;
  const LatencyHistogram* commit_latency_ = nullptr;  // store_'s
  std::unique_ptr<keyvault::Envelope> envelope_;
  std::unique_ptr<keyvault::VaultRegistry> registry_;
  std::unique_ptr<auth::SigningKeySet> keys_;
  std::unique_ptr<auth::Directory> directory_;
  std::unique_ptr<auth::IdentityHeaders> identity_headers_;
  std::unique_ptr<auth::FederatedTrust> federation_;
  std::unique_ptr<auth::TokenService> token_service_;
  std::unique_ptr<auth::ManagedIdentityEndpoint> managed_identity_;
  std::unique_ptr<auth::GraphApi> graph_api_;
  std::unique_ptr<auth::Users> users_;
  std::unique_ptr<auth::GraphUsers> graph_users_;
  std::unique_ptr<auth::DeviceFlows> device_flows_;
  std::unique_ptr<auth::UserGrants> user_grants_;
  std::unique_ptr<auth::DeviceLoginPages> device_pages_;
  std::unique_ptr<auth::TokenVerifier> verifier_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<keyvault::SecretService> secrets_;
  std::unique_ptr<keyvault::SecretsApi> secrets_api_;
  std::unique_ptr<keyvault::KeyService> vault_keys_;
  std::unique_ptr<keyvault::KeysApi> keys_api_;
  std::unique_ptr<keyvault::CertificateAuthority> certificate_authority_;
  std::unique_ptr<keyvault::CertificateIssuers> certificate_issuers_;
  std::unique_ptr<keyvault::CertificateService> certificates_;
  std::unique_ptr<keyvault::CertificatesApi> certificates_api_;
  std::unique_ptr<ServiceLimits> service_limits_;
  std::unique_ptr<ArmLimits> arm_limits_;  // Resource Manager's (reads service_limits_)
  std::unique_ptr<VaultPlane> vault_plane_;
  std::unique_ptr<ArmPlane> arm_plane_;
  std::unique_ptr<AuthorityPlane> authority_plane_;
  std::unique_ptr<authz::Authorizer> authorizer_;

  std::unique_ptr<audit::Log> audit_;
  std::string audit_dir_;  // this server's own log: <data_dir>/audit/<server id>
  std::string server_id_;
  std::string webhook_root_key_;
  std::string webhook_url_key_;
  std::unique_ptr<events::ChangeHub> hub_;
  std::unique_ptr<events::WatchRegistry> watches_;
  std::unique_ptr<events::WebhookDispatcher> webhooks_;
  std::unique_ptr<events::ExpiryScheduler> expiry_;

  std::mutex admin_mu_;
  std::vector<std::string> admins_;  // guarded by admin_mu_
  std::unique_ptr<auth::AdministratorCredentials> admin_credentials_;

  std::mutex purge_mu_;
  std::condition_variable purge_cv_;
  bool stopping_ = false;  // guarded by purge_mu_
  // A time shift asks the purge thread for a purge and a run of the
  // schedules now. Guarded by purge_mu_.
  bool schedules_due_ = false;
  // Whether OnStoreChange may run: from Start to Stop. Held while it runs,
  // so that Stop waits for a call in progress.
  // The feed's newest seq when this server started: where the first leader
  // of an installation starts delivering. Then the hub's thread only.
  int64_t feed_start_seq_ = 0;
  std::optional<int64_t> leader_cursor_;  // hub thread only; set while leading
  std::mutex store_changes_mu_;
  bool store_changes_open_ = false;  // guarded by store_changes_mu_
  std::thread purge_thread_;

  std::vector<std::string> tls_names_;  // what the certificate must cover
  std::mutex tls_mu_;                   // one reload at a time
  std::string tls_stamp_;               // GUARDED_BY(tls_mu_): the files as last loaded
  int64_t tls_not_after_ = 0;           // GUARDED_BY(tls_mu_)
  std::thread tls_thread_;
  std::thread shares_thread_;
  int64_t shares_written_ms_ = 0;  // the share thread's only
  bool shares_failing_ = false;    // the share thread's only

  std::atomic<bool> seeding_{false};
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<net::HttpServer> metrics_http_;
};

}  // namespace coffer::server
