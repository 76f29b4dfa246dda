#include "agent/imds.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "http/url.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace coffer::agent {
namespace {

constexpr int64_t kRefreshBefore = 300;
constexpr size_t kMaxCached = 1024;

http::Response ImdsError(int status, const std::string& error, const std::string& description) {
  return http::JsonResponse(status,
                            ToJson(Json{{"error", error}, {"error_description", description}}));
}

bool IsTokenPath(const std::vector<std::string>& seg) {
  bool base = seg.size() >= 4 && seg[0] == "metadata" && seg[1] == "identity" &&
              seg[2] == "oauth2" && seg[3] == "token";
  // JS clients add a trailing slash.
  return base && (seg.size() == 4 || (seg.size() == 5 && seg[4].empty()));
}

// HostOf reads a Host header (host[:port]) with the URL parser, or "" when
// it is not one: the host lower-case, an IPv6 address without brackets.
std::string HostOf(std::string_view host_header) {
  if (host_header.empty() || host_header.find('/') != std::string_view::npos) {
    return "";
  }
  StatusOr<http::Url> url = http::ParseUrl("http://" + std::string(host_header));
  return url.ok() ? url->host : "";
}

}  // namespace

ImdsEndpoint::ImdsEndpoint(ImdsOptions options, Upstream upstream, const Clock& clock)
    : options_(std::move(options)),
      upstream_(std::move(upstream)),
      clock_(clock),
      hosts_{"127.0.0.1", "localhost", "169.254.169.254"} {
  // The address the endpoint listens on, when it is another IP literal
  // (127.0.0.2, ::1): that is the name `coffer agent` tells clients to use.
  std::string listen = options_.address.find(':') != std::string::npos
                           ? "[" + options_.address + "]"
                           : options_.address;
  std::string own = HostOf(listen);
  bool ip_literal = !own.empty() && (own.find(':') != std::string::npos ||
                                     own.find_first_not_of("0123456789.") == std::string::npos);
  if (ip_literal) {
    hosts_.insert(own);
  }
}

http::Response ImdsEndpoint::Handle(const http::Request& request) {
  // SECURITY: DNS rebinding. A web page whose name its owner points at
  // 127.0.0.1 can make a browser on the node send requests here, but the
  // Host header still names the page; only the names IMDS is reached by are
  // served, and nothing else is looked at before this check.
  if (hosts_.count(HostOf(request.host)) == 0) {
    return ImdsError(400, "invalid_request",
                     "The Host header must be 127.0.0.1, localhost or 169.254.169.254.");
  }
  if (!IsTokenPath(request.segments)) {
    return ImdsError(404, "not_found", "Only /metadata/identity/oauth2/token is served here.");
  }
  if (request.method != "GET") {
    return ImdsError(405, "invalid_request", "The token endpoint only accepts GET.");
  }
  // SECURITY: as Azure's IMDS, a request must carry Metadata: true (a browser
  // or a naive proxy cannot add it) and must not come through a proxy.
  if (!EqualsIgnoreCase(request.Header("metadata"), "true")) {
    return ImdsError(400, "invalid_request", "Required metadata header not specified");
  }
  if (!request.Header("x-forwarded-for").empty()) {
    return ImdsError(400, "invalid_request", "Requests through a proxy are refused.");
  }
  std::string_view api_version = request.Query("api-version");
  if (api_version.empty()) {
    return ImdsError(400, "invalid_request", "Required query variable 'api-version' is missing");
  }
  if (api_version.size() != 10 || api_version < "2018-02-01") {
    return ImdsError(400, "invalid_request", "Unsupported api-version; use 2018-02-01 or later.");
  }
  std::string_view resource = request.Query("resource");
  if (resource.empty()) {
    return ImdsError(400, "invalid_request", "Required query variable 'resource' is missing");
  }
  std::string query = "api-version=2019-08-01&resource=" + PercentEncode(resource);
  for (const auto& [name, upstream_name] :
       {std::pair{"client_id", "client_id"}, std::pair{"object_id", "object_id"},
        std::pair{"msi_res_id", "mi_res_id"}, std::pair{"mi_res_id", "mi_res_id"}}) {
    std::string_view v = request.Query(name);
    if (!v.empty()) {
      query += std::string("&") + upstream_name + "=" + PercentEncode(v);
    }
  }
  int64_t now = clock_.NowSeconds();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(query);
    if (it != cache_.end() && it->second.expires_on - kRefreshBefore > now) {
      return http::JsonResponse(200, it->second.body);
    }
  }
  std::string url = options_.identity_endpoint +
                    (options_.identity_endpoint.find('?') == std::string::npos ? "?" : "&") + query;
  auto res = upstream_(url, options_.identity_header);
  if (!res.ok()) {
    COFFER_LOG(kWarning) << "imds: the server is unreachable: " << res.status().ToString();
    return ImdsError(503, "service_unavailable",
                     "The managed identity service is unavailable; retry later.");
  }
  auto body = ParseJson(res->body, 8);
  if (!body || !body->is_object()) {
    return ImdsError(502, "bad_gateway", "The server's answer was not JSON.");
  }
  if (res->status != 200) {
    // The server's OAuth2 error (identity not assigned, ...) goes through.
    return http::JsonResponse(res->status, ToJson(*body));
  }
  std::string expires_text = StringMember(*body, "expires_on");
  int64_t expires_on = 0;
  if (expires_text.empty() || expires_text.size() > 12 ||
      !std::all_of(expires_text.begin(), expires_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return ImdsError(502, "bad_gateway", "The server's token has no expires_on.");
  }
  expires_on = std::stoll(expires_text);
  std::string text = ToJson(*body);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= kMaxCached) {
      cache_.clear();
    }
    cache_[query] = Cached{text, expires_on};
  }
  return http::JsonResponse(200, std::move(text));
}

StatusOr<std::unique_ptr<ImdsServer>> ImdsServer::Create(ImdsOptions options) {
  if (options.identity_endpoint.empty() || options.identity_header.empty()) {
    return InvalidArgumentError(
        "the IMDS endpoint needs the workload's IDENTITY_ENDPOINT and IDENTITY_HEADER");
  }
  if (!http::IsTrustworthyUrl(options.identity_endpoint)) {
    return InvalidArgumentError("IDENTITY_ENDPOINT must be an https URL (or http on loopback)");
  }
  std::string ca_file = options.ca_file;
  auto upstream = [ca_file](const std::string& url,
                            const std::string& header) -> StatusOr<http::Response> {
    net::ClientRequest req;
    req.url = url;
    req.ca_file = ca_file;
    req.timeout_seconds = 10;
    req.max_response_bytes = 256 * 1024;
    req.headers = {{"X-IDENTITY-HEADER", header}};
    return net::SendRequest(req);
  };
  net::ServerOptions server_options;
  server_options.tls = false;
  server_options.addresses = {options.address};
  server_options.port = options.port;
  server_options.io_threads = 1;
  server_options.worker_threads = 4;
  server_options.max_body_bytes = 4096;
  std::unique_ptr<ImdsServer> server(new ImdsServer(
      std::make_unique<ImdsEndpoint>(std::move(options), upstream, SystemClock::Get())));
  ImdsEndpoint* endpoint = server->endpoint_.get();
  ASSIGN_OR_RETURN(server->http_,
                   net::HttpServer::Create(
                       std::move(server_options),
                       [endpoint](http::Request& r) { return endpoint->Handle(r); }, nullptr));
  return server;
}

ImdsServer::ImdsServer(std::unique_ptr<ImdsEndpoint> endpoint) : endpoint_(std::move(endpoint)) {}

ImdsServer::~ImdsServer() {
  Stop();
}

uint16_t ImdsServer::port() const {
  return http_->port();
}

void ImdsServer::Start() {
  http_->Start();
}

void ImdsServer::Stop() {
  if (http_) {
    http_->Stop();
  }
}

}  // namespace coffer::agent
