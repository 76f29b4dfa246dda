#include "cli/cli_util.h"

#include <cstdlib>
#include <iostream>

namespace coffer::cli {

void Fail(const Status& s) {
  std::string code(s.reason());
  std::cerr << "ERROR: " << (code.empty() ? "" : "(" + code + ") ") << s.message() << "\n";
  std::exit(1);
}

void Usage(const std::string& message) {
  std::cerr << "ERROR: " << message << "\n";
  std::exit(2);
}

void Print(const Json& j) {
  std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

client::ApiClient MakeClient() {
  auto config = client::ClientConfig::FromEnvironment();
  if (!config.ok()) {
    Fail(config.status());
  }
  return client::ApiClient(std::move(config).value());
}

Json Expect(const StatusOr<http::Response>& res, std::initializer_list<int> ok) {
  if (!res.ok()) {
    Fail(res.status());
  }
  for (int code : ok) {
    if (res->status == code) {
      if (res->body.empty()) {
        return Json();
      }
      auto j = ParseJson(res->body, 64);
      return j ? *j : Json();
    }
  }
  Fail(client::ErrorFromResponse(*res));
}

}  // namespace coffer::cli
