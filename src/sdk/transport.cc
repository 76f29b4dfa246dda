// The SDK's default transport: net::SendRequest (kept-alive connections,
// shared by every client of the process) and net::StreamRequest (a
// connection of its own per stream).

#include <cstdlib>

#include "coffer/http_transport.h"
#include "common/strings.h"
#include "net/http_client.h"

namespace coffer {
namespace {

std::string DefaultCaFile() {
  for (const char* name : {"COFFER_CA_FILE", "REQUESTS_CA_BUNDLE"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') {
      return v;
    }
  }
  return "";
}

HttpResponse FromNet(http::Response r) {
  HttpResponse out;
  out.status = r.status;
  out.headers = std::move(r.headers);
  out.body = std::move(r.body);
  return out;
}

class NetTransport : public HttpTransport {
 public:
  explicit NetTransport(TransportOptions options) : options_(std::move(options)) {
    if (options_.ca_file.empty()) {
      options_.ca_file = DefaultCaFile();
    }
  }

  StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    ASSIGN_OR_RETURN(http::Response r, net::SendRequest(ToNet(request)));
    return FromNet(std::move(r));
  }

  StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                const std::function<bool(std::string_view)>& on_data,
                                const std::atomic<bool>* cancel) override {
    ASSIGN_OR_RETURN(http::Response r, net::StreamRequest(ToNet(request), on_data, cancel));
    return FromNet(std::move(r));
  }

 private:
  net::ClientRequest ToNet(const HttpRequest& request) const {
    net::ClientRequest req;
    req.method = request.method;
    req.url = request.url;
    req.headers = request.headers;
    req.body = request.body;
    req.ca_file = options_.ca_file;
    req.timeout_seconds = options_.timeout_seconds;
    return req;
  }

  TransportOptions options_;
};

}  // namespace

std::string_view HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) {
      return v;
    }
  }
  return {};
}

std::shared_ptr<HttpTransport> MakeDefaultTransport(TransportOptions options) {
  return std::make_shared<NetTransport>(std::move(options));
}

}  // namespace coffer
