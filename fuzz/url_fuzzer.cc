// ParseUrl on arbitrary bytes: no crash, and every URL it accepts
// - ends its authority where RFC 3986 does (at the first '/', '?' or '#'),
//   so a reader that follows the RFC sees the same host;
// - holds no userinfo, no fragment, no control or non-ASCII byte;
// - has a canonical form (ToString) that parses back to the same parts;
// - passes IsTrustworthyUrl only as https or to a loopback host.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/message.h"
#include "http/url.h"

namespace {

void Check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool Same(const coffer::http::Url& a, const coffer::http::Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.ipv6 == b.ipv6 && a.port == b.port &&
         a.path_and_query == b.path_and_query;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto url = coffer::http::ParseUrl(text);
  bool trusted = coffer::http::IsTrustworthyUrl(text);
  if (!url.ok()) {
    Check(!trusted);
    return 0;
  }
  size_t start = text.find("://");
  Check(start != std::string_view::npos);
  start += 3;
  Check(text.find_first_of("/?#", start) == text.find('/', start));
  std::string_view authority = text.substr(start, text.find('/', start) - start);
  Check(authority.find('@') == std::string_view::npos);
  Check(text.find('#') == std::string_view::npos);
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    Check(u > 0x20 && u < 0x7f);
  }
  Check(url->scheme == "https" || url->scheme == "http");
  Check(!url->host.empty() && url->port != 0);
  Check(url->ipv6 || url->host.find(':') == std::string::npos);
  Check(!url->path_and_query.empty() && url->path_and_query.front() == '/');
  auto again = coffer::http::ParseUrl(url->ToString());
  Check(again.ok() && Same(*url, *again));
  if (trusted) {
    Check(url->tls() || url->IsLoopback());
  }
  if (url->IsLoopback()) {
    Check(url->host == "localhost" || url->host == "127.0.0.1" || url->host == "::1");
  }
  return 0;
}
