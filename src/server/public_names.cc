#include "server/public_names.h"

#include "common/strings.h"
#include "http/url.h"

namespace coffer::server {

StatusOr<PublicName> ParsePublicName(std::string_view value, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(std::string(what) +
                                " must be NAME or NAME:PORT, NAME a DNS name: " + std::string(why));
  };
  if (value.empty() || value.size() > 260) {
    return bad("it is empty or longer than 253 characters and a port");
  }
  // The one URL parser checks the name and the port as it does any host.
  auto url = http::ParseUrl("https://" + std::string(value) + "/");
  if (!url.ok()) {
    return bad(url.status().message());
  }
  if (url->ipv6 || url->path_and_query != "/" || url->host.find('*') != std::string::npos) {
    return bad("an address, a path or a wildcard is not a name");
  }
  size_t last_dot = url->host.rfind('.');
  std::string_view top = std::string_view(url->host).substr(last_dot + 1);
  if (top.find_first_not_of("0123456789") == std::string_view::npos) {
    return bad("an IP address is not a name");
  }
  for (char c : url->host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) {
      return bad("only letters, digits, '-' and '.'");
    }
  }
  for (std::string_view label : Split(url->host, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-') {
      return bad("a label is empty or begins or ends with '-'");
    }
  }
  PublicName out;
  out.name = url->host;
  // An explicit port: what follows the name (ParseUrl gives 443 for none).
  if (value.find(':') != std::string_view::npos) {
    if (url->port == 0) {
      return bad("the port must be 1-65535");
    }
    out.port = url->port;
  }
  return out;
}

bool CoversName(const std::vector<std::string>& sans, const std::string& name) {
  const std::string host = AsciiLower(name);
  for (const auto& san : sans) {
    const std::string s = AsciiLower(san);
    if (s == host) {
      return true;
    }
    if (s.size() > 2 && s.compare(0, 2, "*.") == 0) {
      size_t dot = host.find('.');
      if (dot != std::string::npos && dot > 0 && host.substr(dot + 1) == s.substr(2)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace coffer::server
