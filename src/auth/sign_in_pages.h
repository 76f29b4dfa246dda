#pragma once

#include <string>

#include "auth/device_flows.h"
#include "auth/failure_limiter.h"
#include "auth/users.h"
#include "common/clock.h"
#include "http/message.h"

namespace coffer::auth {

// DeviceLoginPages is the page a person opens to finish a device-code
// sign-in (https://<authority host>/devicelogin, docs/users.md):
//   GET  /devicelogin   a form asking for the code
//   POST /devicelogin   code                       -> the sign-in form, naming
//                                                     the app and the resource
//                       code, login, passwd, action (continue | cancel)
//                       [, newpasswd when the password must change]
// Plain HTML: no script, no style, no resource from anywhere; a strict
// Content-Security-Policy, no framing, no caching. A POST whose Origin is
// not the page's own is refused (403). Unknown codes are limited per client
// address (10 at once, one more every 6 s).
//
// Thread-safe. The referenced objects must outlive it.
class DeviceLoginPages {
 public:
  // The largest form accepted.
  static constexpr size_t kMaxFormBytes = 16 * 1024;

  DeviceLoginPages(Users& users, DeviceFlows& flows, const Clock& clock);

  http::Response Handle(const http::Request& request);

  // HtmlEscape makes `text` safe inside HTML text and quoted attributes.
  static std::string HtmlEscape(std::string_view text);

 private:
  http::Response Post(const http::Request& request);

  Users& users_;
  DeviceFlows& flows_;
  const Clock& clock_;
  FailureLimiter code_failures_;
};

}  // namespace coffer::auth
