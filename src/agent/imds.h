#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "http/message.h"

namespace coffer::net {
class HttpServer;
}

namespace coffer::agent {

struct ImdsOptions {
  // Plain HTTP on loopback, as Azure's IMDS; 127.0.0.1 and port 0 (any).
  std::string address = "127.0.0.1";
  uint16_t port = 0;
  // The workload's App Service style endpoint and header, from
  // `coffer vm identity endpoint` (IDENTITY_ENDPOINT, IDENTITY_HEADER).
  std::string identity_endpoint;
  std::string identity_header;
  std::string ca_file;  // CA to trust for the server; empty: the system's
};

// Upstream sends one request to the server (net::SendRequest in
// production; a fake in unit tests).
using Upstream = std::function<StatusOr<http::Response>(const std::string& url,
                                                        const std::string& identity_header)>;

// ImdsEndpoint answers Azure's IMDS token protocol for one workload
// resource (docs/identities.md):
//   GET /metadata/identity/oauth2/token[/]?api-version=2018-02-01&resource=<r>
//       [&client_id=|&object_id=|&msi_res_id=]
//   Metadata: true
// It authenticates to the server as its workload, with the workload's
// identity header, through the App Service style endpoint, so the server
// decides which identities the workload may use. Tokens are cached per
// (resource, identity) until five minutes before they expire.
//
// SECURITY: a request whose Host header (with any port) is not 127.0.0.1,
// localhost, 169.254.169.254 or the IP address the endpoint listens on
// (ImdsOptions::address) is answered 400 before anything else is looked at:
// a page of another name that DNS rebinding points at loopback gets nothing.
// Thread-safe.
class ImdsEndpoint {
 public:
  ImdsEndpoint(ImdsOptions options, Upstream upstream, const Clock& clock);

  http::Response Handle(const http::Request& request);

 private:
  struct Cached {
    std::string body;
    int64_t expires_on = 0;
  };
  const ImdsOptions options_;
  Upstream upstream_;
  const Clock& clock_;
  std::set<std::string> hosts_;  // accepted Host names, as http::ParseUrl writes them
  std::mutex mu_;
  std::map<std::string, Cached> cache_;  // guarded by mu_
};

// ImdsServer serves an ImdsEndpoint over plain HTTP on loopback.
class ImdsServer {
 public:
  // kInvalidArgument for a non-loopback address or missing endpoint/header;
  // kUnavailable if the port cannot be bound.
  static StatusOr<std::unique_ptr<ImdsServer>> Create(ImdsOptions options);
  ~ImdsServer();

  uint16_t port() const;
  void Start();
  void Stop();

 private:
  explicit ImdsServer(std::unique_ptr<ImdsEndpoint> endpoint);
  std::unique_ptr<ImdsEndpoint> endpoint_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace coffer::agent
