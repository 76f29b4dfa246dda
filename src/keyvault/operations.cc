#include "keyvault/operations.h"

namespace coffer::keyvault {
namespace {

RequestedOperation Op(std::string_view name, std::string_view object = {}) {
  return {authz::FindOperation(name), object};
}

}  // namespace

RequestedOperation ClassifyRequest(const http::Request& req) {
  const auto& seg = req.segments;
  const std::string& m = req.method;
  bool secrets = !seg.empty() && seg[0] == "secrets";
  bool deleted = !seg.empty() && seg[0] == "deletedsecrets";
  if (!secrets && !deleted) {
    return {};
  }
  if (seg.size() == 1 || (seg.size() == 2 && seg[1].empty())) {
    return m != "GET" ? RequestedOperation{} : Op(deleted ? "SecretListDeleted" : "SecretList");
  }
  const std::string& name = seg[1];
  if (deleted) {
    if (seg.size() == 2) {
      return m == "GET"      ? Op("SecretGetDeleted", name)
             : m == "DELETE" ? Op("SecretPurge", name)
                             : RequestedOperation{};
    }
    return seg.size() == 3 && seg[2] == "recover" && m == "POST" ? Op("SecretRecover", name)
                                                                 : RequestedOperation{};
  }
  if (seg.size() == 2) {
    if (name == "restore") {
      return m == "POST" ? Op("SecretRestore") : RequestedOperation{};
    }
    return m == "PUT"      ? Op("SecretSet", name)
           : m == "GET"    ? Op("SecretGet", name)
           : m == "DELETE" ? Op("SecretDelete", name)
                           : RequestedOperation{};
  }
  if (seg.size() == 3) {
    if (seg[2] == "versions") {
      return m == "GET" ? Op("SecretListVersions", name) : RequestedOperation{};
    }
    if (seg[2] == "backup") {
      return m == "POST" ? Op("SecretBackup", name) : RequestedOperation{};
    }
    return m == "GET"     ? Op("SecretGet", name)
           : m == "PATCH" ? Op("SecretUpdate", name)
                          : RequestedOperation{};
  }
  return {};
}

}  // namespace coffer::keyvault
