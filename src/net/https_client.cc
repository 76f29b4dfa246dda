#include "net/https_client.h"

#include <chrono>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace coffer::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Url {
  std::string host;
  std::string port = "443";
  std::string target = "/";
};

StatusOr<Url> ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return InvalidArgumentError("URL must start with https://: " + url);
  }
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Url out;
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) {
      return InvalidArgumentError("malformed IPv6 host in URL");
    }
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      out.port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      out.port = authority.substr(colon + 1);
    }
  }
  if (out.host.empty() || out.port.empty()) {
    return InvalidArgumentError("URL has no host or port: " + url);
  }
  return out;
}

}  // namespace

StatusOr<http::Response> HttpsRequest(const ClientRequest& request) {
  ASSIGN_OR_RETURN(Url url, ParseUrl(request.url));
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  if (request.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    ctx.load_verify_file(request.ca_file, ec);
  }
  if (ec) {
    return InvalidArgumentError("cannot load CA file '" + request.ca_file + "': " + ec.message());
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  // SSL_set_tlsext_host_name is a macro with a C cast; call what it expands to.
  if (SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(url.host.c_str())) != 1) {
    return InvalidArgumentError("cannot set SNI host name");
  }
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));

  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) {
    return UnavailableError("cannot resolve " + url.host + ": " + ec.message());
  }
  auto deadline = std::chrono::seconds(request.timeout_seconds);
  beast::get_lowest_layer(stream).expires_after(deadline);

  bhttp::response<bhttp::string_body> res;
  Status result = OkStatus();
  auto fail = [&](const char* what, beast::error_code e) {
    if (e == beast::error::timeout) {
      result = Status(StatusCode::kDeadlineExceeded, std::string(what) + " timed out");
    } else {
      result = UnavailableError(std::string(what) + " failed: " + e.message());
    }
  };
  beast::flat_buffer buffer;
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(url.target);
  req.version(11);
  req.set(bhttp::field::host, url.port == "443" ? url.host : url.host + ":" + url.port);
  req.set(bhttp::field::user_agent, "coffer-cli/0.1");
  for (const auto& [k, v] : request.headers) {
    req.set(k, v);
  }
  req.body() = request.body;
  req.prepare_payload();

  beast::get_lowest_layer(stream).async_connect(endpoints, [&](beast::error_code e, auto) {
    if (e) {
      return fail("connect", e);
    }
    stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e2) {
      if (e2) {
        return fail("TLS handshake", e2);
      }
      bhttp::async_write(stream, req, [&](beast::error_code e3, size_t) {
        if (e3) {
          return fail("write", e3);
        }
        bhttp::async_read(stream, buffer, res, [&](beast::error_code e4, size_t) {
          if (e4) {
            return fail("read", e4);
          }
        });
      });
    });
  });
  ioc.run();
  RETURN_IF_ERROR(result);
  http::Response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace coffer::net
