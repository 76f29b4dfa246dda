#include "authz/arm_action.h"

#include "common/strings.h"

namespace coffer::authz {

std::optional<ArmOperation> ArmOperationOf(std::string_view method,
                                           const std::vector<std::string>& seg) {
  std::vector<std::string_view> path;
  for (const auto& s : seg) {
    if (!s.empty()) {
      path.push_back(s);
    }
  }
  if (path.size() < 2 || !EqualsIgnoreCase(path[0], "subscriptions")) {
    return std::nullopt;
  }
  // The resource type starts after the last "providers/<namespace>"; a
  // scope below the subscription without one is a resource group.
  size_t provider = 0;
  for (size_t i = 2; i + 1 < path.size(); ++i) {
    if (EqualsIgnoreCase(path[i], "providers")) {
      provider = i;
    }
  }
  std::string type;
  std::vector<std::string_view> rest;
  if (provider != 0) {
    type = std::string(path[provider + 1]);
    rest.assign(path.begin() + static_cast<std::ptrdiff_t>(provider) + 2, path.end());
  } else {
    type = "Microsoft.Resources";
    rest.push_back("subscriptions");
    rest.insert(rest.end(), path.begin() + 1, path.end());
  }
  ArmOperation op;
  bool odd = rest.size() % 2 == 1;
  size_t types = rest.size();
  std::string verb;
  if (EqualsIgnoreCase(method, "POST") && odd && rest.size() >= 3) {
    // .../{type}/{name}/{verb}
    verb = std::string(rest.back()) + "/action";
    types = rest.size() - 1;
  } else if (EqualsIgnoreCase(method, "GET") || EqualsIgnoreCase(method, "HEAD")) {
    verb = "read";
    op.collection = odd;
  } else if (EqualsIgnoreCase(method, "PUT") || EqualsIgnoreCase(method, "PATCH")) {
    verb = "write";
  } else if (EqualsIgnoreCase(method, "DELETE")) {
    verb = "delete";
  } else if (EqualsIgnoreCase(method, "POST")) {
    verb = "action";
  } else {
    return std::nullopt;
  }
  for (size_t i = 0; i < types; i += 2) {
    type += "/";
    type += rest[i];
  }
  op.action = type + "/" + verb;
  // The scope is the resource itself; for a collection, its parent.
  bool action = types < rest.size();
  size_t keep = path.size() - (op.collection || action ? 1 : 0);
  if (op.collection && provider != 0 && keep == provider + 2) {
    keep = provider;  // "<parent>/providers/<ns>/<type>" is read at <parent>
  }
  for (size_t i = 0; i < keep; ++i) {
    op.scope += "/";
    op.scope += path[i];
  }
  return op;
}

}  // namespace coffer::authz
