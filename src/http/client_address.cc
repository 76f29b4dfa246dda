#include "http/client_address.h"

#include <cstdint>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace coffer::http {

std::string ClientAddressKey(std::string_view address) {
  // inet_pton needs a terminated string; no address is longer than this.
  char text[INET6_ADDRSTRLEN + 1] = {};
  if (address.size() < sizeof(text)) {
    std::memcpy(text, address.data(), address.size());
    in_addr v4{};
    if (inet_pton(AF_INET, text, &v4) == 1) {
      return std::string(address);
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, text, &v6) == 1) {
      if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        std::memcpy(&v4, v6.s6_addr + 12, 4);
        char out[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &v4, out, sizeof(out));
        return out;
      }
      std::memset(v6.s6_addr + 8, 0, 8);
      char out[INET6_ADDRSTRLEN] = {};
      inet_ntop(AF_INET6, &v6, out, sizeof(out));
      return std::string(out) + "/64";
    }
  }
  return "?" + std::string(address.substr(0, 64));
}

}  // namespace coffer::http
