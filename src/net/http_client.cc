#include "net/http_client.h"

#include <chrono>
#include <functional>
#include <type_traits>

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
  bool tls = true;
  std::string host;
  std::string port;
  std::string target = "/";
};

StatusOr<Url> ParseUrl(const std::string& url) {
  Url out;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    out.port = "443";
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    out.tls = false;
    out.port = "80";
  } else {
    return InvalidArgumentError("URL must start with https:// or http://");
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
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
    return InvalidArgumentError("URL has no host or port");
  }
  return out;
}

// Exchange connects, (for TLS) handshakes, writes `req` and reads the
// response, all under the stream's deadline. Returns the first failure.
template <class Stream>
Status Exchange(asio::io_context& ioc, Stream& stream, const tcp::resolver::results_type& endpoints,
                bhttp::request<bhttp::string_body>& req,
                bhttp::response_parser<bhttp::string_body>& parser) {
  Status result = OkStatus();
  auto fail = [&](const char* what, beast::error_code e) {
    if (e == beast::error::timeout) {
      result = Status(StatusCode::kDeadlineExceeded, std::string(what) + " timed out");
    } else {
      result = UnavailableError(std::string(what) + " failed: " + e.message());
    }
  };
  beast::flat_buffer buffer;
  auto write_and_read = [&] {
    bhttp::async_write(stream, req, [&](beast::error_code e, size_t) {
      if (e) {
        return fail("write", e);
      }
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code e2, size_t) {
        if (e2) {
          return fail("read", e2);
        }
      });
    });
  };
  beast::get_lowest_layer(stream).async_connect(endpoints, [&](beast::error_code e, auto) {
    if (e) {
      return fail("connect", e);
    }
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      write_and_read();
    } else {
      stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e2) {
        if (e2) {
          return fail("TLS handshake", e2);
        }
        write_and_read();
      });
    }
  });
  ioc.run();
  return result;
}

}  // namespace

StatusOr<http::Response> SendRequest(const ClientRequest& request) {
  ASSIGN_OR_RETURN(Url url, ParseUrl(request.url));
  asio::io_context ioc;
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) {
    return UnavailableError("cannot resolve " + url.host + ": " + ec.message());
  }
  bool default_port = url.port == (url.tls ? "443" : "80");
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(url.target);
  req.version(11);
  req.set(bhttp::field::host, default_port ? url.host : url.host + ":" + url.port);
  req.set(bhttp::field::user_agent, "coffer/0.1");
  for (const auto& [k, v] : request.headers) {
    req.set(k, v);
  }
  req.body() = request.body;
  req.prepare_payload();
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(request.max_response_bytes);
  auto deadline = std::chrono::seconds(request.timeout_seconds);

  if (!url.tls) {
    beast::tcp_stream stream(ioc);
    stream.expires_after(deadline);
    RETURN_IF_ERROR(Exchange(ioc, stream, endpoints, req, parser));
  } else {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
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
    beast::get_lowest_layer(stream).expires_after(deadline);
    RETURN_IF_ERROR(Exchange(ioc, stream, endpoints, req, parser));
  }
  auto& res = parser.get();
  http::Response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace coffer::net
