#include "keyvault/access_policy.h"

#include "common/json.h"
#include "common/strings.h"

namespace coffer::keyvault {

std::string SecretPermission(const http::Request& req) {
  const auto& seg = req.segments;
  const std::string& m = req.method;
  bool secrets = !seg.empty() && seg[0] == "secrets";
  bool deleted = !seg.empty() && seg[0] == "deletedsecrets";
  if (!secrets && !deleted) {
    return "";
  }
  if (seg.size() == 1 || (seg.size() == 2 && seg[1].empty())) {
    return m == "GET" ? "list" : "";
  }
  if (deleted) {
    // Reading a deleted secret needs "list", as in Key Vault.
    if (seg.size() == 2) {
      return m == "GET" ? "list" : m == "DELETE" ? "purge" : "";
    }
    return seg.size() == 3 && seg[2] == "recover" && m == "POST" ? "recover" : "";
  }
  if (seg.size() == 2) {
    if (seg[1] == "restore") {
      return m == "POST" ? "restore" : "";
    }
    return m == "PUT" ? "set" : m == "GET" ? "get" : m == "DELETE" ? "delete" : "";
  }
  if (seg.size() == 3) {
    if (seg[2] == "versions") {
      return m == "GET" ? "list" : "";
    }
    if (seg[2] == "backup") {
      return m == "POST" ? "backup" : "";
    }
    return m == "GET" ? "get" : m == "PATCH" ? "set" : "";
  }
  return "";
}

bool AccessPolicyAllows(const Json& policies, const std::string& tenant_id,
                        const std::string& object_id, const std::string& permission) {
  if (!policies.is_array() || permission.empty()) {
    return false;
  }
  for (const auto& p : policies) {
    if (!p.is_object() || !EqualsIgnoreCase(StringMember(p, "objectId"), object_id) ||
        !EqualsIgnoreCase(StringMember(p, "tenantId"), tenant_id)) {
      continue;
    }
    const Json perms = p.value("permissions", Json::object());
    const Json list = perms.is_object() ? perms.value("secrets", Json::array()) : Json::array();
    if (!list.is_array()) {
      continue;
    }
    for (const auto& granted : list) {
      if (granted.is_string() && (EqualsIgnoreCase(granted.get<std::string>(), permission) ||
                                  EqualsIgnoreCase(granted.get<std::string>(), "all"))) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace coffer::keyvault
