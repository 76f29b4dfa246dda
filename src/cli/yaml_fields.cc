#include "cli/yaml_fields.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "authz/permissions.h"
#include "common/strings.h"
#include "keyvault/names.h"
#include "keyvault/secret_service.h"

namespace coffer::cli {

using agent::YamlNode;

std::optional<int64_t> ParseDuration(std::string_view text) {
  static constexpr std::pair<char, int64_t> kUnits[] = {
      {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
  if (text.size() < 2) {
    return std::nullopt;
  }
  for (auto [unit, seconds] : kUnits) {
    int64_t n = 0;
    const char* first = text.data();
    const char* last = text.data() + text.size() - 1;
    if (text.back() != unit) {
      continue;
    }
    auto [ptr, ec] = std::from_chars(first, last, n);
    if (ec == std::errc() && ptr == last && n >= 0 && n <= int64_t{100} * 366 * 86400 / seconds) {
      return n * seconds;
    }
  }
  return std::nullopt;
}

StatusOr<YamlNode> ReadYamlDocument(std::string_view text, const std::string& file,
                                    size_t max_bytes, size_t max_nodes) {
  agent::YamlLimits limits;
  limits.max_bytes = max_bytes;
  limits.max_documents = 1;
  limits.max_depth = 12;
  limits.max_nodes = max_nodes;
  limits.max_scalar_bytes = max_bytes;
  auto docs = agent::ParseYamlDocuments(text, limits);
  if (!docs.ok()) {
    return InvalidArgumentError(file + ": " + std::string(docs.status().message()), "BadParameter");
  }
  return docs->empty() ? YamlNode() : std::move(docs->front());
}

Status FieldReader::Error(const std::string& where, const std::string& message) const {
  return InvalidArgumentError(file_ + ": " + where + ": " + message, "BadParameter");
}

std::string FieldReader::At(const YamlNode& n, const std::string& path) {
  return "line " + std::to_string(n.line) + ": " + path;
}

Status FieldReader::Keys(const YamlNode& n, const std::string& where,
                         std::initializer_list<std::string_view> allowed) const {
  if (!n.IsMap()) {
    return Error(where, "must be a map, not a " + std::string(agent::KindName(n.kind)));
  }
  for (const auto& m : n.members) {
    if (std::find(allowed.begin(), allowed.end(), m.key) == allowed.end()) {
      std::string known;
      for (std::string_view k : allowed) {
        known += (known.empty() ? "" : ", ") + std::string(k);
      }
      return Error(where, "unknown key " + QuoteForError(m.key) + " (known: " + known + ")");
    }
  }
  return OkStatus();
}

StatusOr<std::string> FieldReader::Text(const YamlNode& n, const std::string& where,
                                        const std::string& key) const {
  if (!n.IsScalar()) {
    return Error(where, key + " must be a scalar, not a " + std::string(agent::KindName(n.kind)));
  }
  std::string out;
  const std::string& in = n.scalar;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 2;
      continue;
    }
    if (in.compare(i, 2, "${") != 0) {
      out += in[i];
      continue;
    }
    size_t end = in.find('}', i);
    if (end == std::string::npos) {
      return Error(where, key + ": a placeholder \"${\" is not closed (write $${ for \"${\")");
    }
    ASSIGN_OR_RETURN(std::string value, expand_(in.substr(i + 2, end - i - 2), where, key));
    out += value;
    i = end;
  }
  return out;
}

StatusOr<std::vector<std::string>> FieldReader::Strings(const YamlNode& n, const std::string& where,
                                                        const std::string& key) const {
  std::vector<std::string> out;
  if (n.IsScalar()) {
    ASSIGN_OR_RETURN(std::string one, Text(n, where, key));
    out.push_back(std::move(one));
    return out;
  }
  if (!n.IsSequence()) {
    return Error(where, key + " must be a list of text");
  }
  for (const auto& item : n.items) {
    ASSIGN_OR_RETURN(std::string one, Text(item, where, key));
    out.push_back(std::move(one));
  }
  return out;
}

StatusOr<bool> FieldReader::Bool(const YamlNode& n, const std::string& where,
                                 const std::string& key) const {
  ASSIGN_OR_RETURN(std::string t, Text(n, where, key));
  if (t == "true") {
    return true;
  }
  if (t == "false") {
    return false;
  }
  return Error(where, key + " must be true or false");
}

StatusOr<Json> FieldReader::Tags(const YamlNode& n, const std::string& where) const {
  if (n.IsNull()) {
    return Json::object();
  }
  if (!n.IsMap()) {
    return Error(where, "tags must be a map of names to text");
  }
  Json tags = Json::object();
  for (const auto& m : n.members) {
    ASSIGN_OR_RETURN(std::string v, Text(m.value, where, "tags." + m.key));
    tags[m.key] = v;
  }
  if (Status valid =
          keyvault::ValidateTagsJson(tags.dump(-1, ' ', false, Json::error_handler_t::replace));
      !valid.ok()) {
    return Error(where, "tags: " + std::string(valid.message()));
  }
  return tags;
}

StatusOr<std::string> FieldReader::Name(const YamlNode& n, const std::string& where) const {
  if (!n.IsMap()) {
    return Error(where, "must be a map, not a " + std::string(agent::KindName(n.kind)));
  }
  const YamlNode* name = n.Find("name");
  if (name == nullptr) {
    return Error(where, "name is required");
  }
  return Text(*name, where, "name");
}

Status FieldReader::ResourceGroup(const std::string& where, const std::string& rg) const {
  bool ok = !rg.empty() && rg.size() <= 90 && rg.back() != '.';
  for (char c : rg) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
                c == '(' || c == ')');
  }
  return ok ? OkStatus()
            : Error(where, "resourceGroup " + QuoteForError(rg) +
                               " is not a resource group name (1-90 letters, digits, - _ . ( ))");
}

Status FieldReader::IdentityName(const std::string& where, const std::string& name) const {
  bool ok =
      name.size() >= 3 && name.size() <= 128 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  }
  return ok ? OkStatus()
            : Error(where, "name " + QuoteForError(name) +
                               " is not an identity name (3-128 letters, digits, - and _, "
                               "starting with a letter or digit)");
}

bool FieldReader::IsGuid(const std::string& s) {
  if (s.size() != 36) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

Status FieldReader::VaultSettings(const YamlNode& n, SeedVault& v) const {
  if (const YamlNode* rg = n.Find("resourceGroup")) {
    ASSIGN_OR_RETURN(v.resource_group, Text(*rg, v.where, "resourceGroup"));
    RETURN_IF_ERROR(ResourceGroup(v.where, v.resource_group));
  }
  if (const YamlNode* loc = n.Find("location")) {
    ASSIGN_OR_RETURN(v.location, Text(*loc, v.where, "location"));
  }
  if (const YamlNode* rbac = n.Find("enableRbacAuthorization")) {
    ASSIGN_OR_RETURN(v.rbac, Bool(*rbac, v.where, "enableRbacAuthorization"));
  }
  if (const YamlNode* purge = n.Find("enablePurgeProtection")) {
    ASSIGN_OR_RETURN(v.purge_protection, Bool(*purge, v.where, "enablePurgeProtection"));
  }
  if (const YamlNode* days = n.Find("softDeleteRetentionInDays")) {
    ASSIGN_OR_RETURN(std::string t, Text(*days, v.where, "softDeleteRetentionInDays"));
    int64_t d = 0;
    if (!ParseInt64(t, &d) || d < 7 || d > 90) {
      return Error(v.where, "softDeleteRetentionInDays must be a whole number from 7 to 90");
    }
    v.retention_days = static_cast<int>(d);
  }
  if (const YamlNode* tags = n.Find("tags")) {
    ASSIGN_OR_RETURN(v.tags, Tags(*tags, v.where));
  }
  return OkStatus();
}

Status FieldReader::AccessTarget(const YamlNode& n, const std::string& where, SeedAccess& a) const {
  a.where = where;
  for (auto [key, out] : {std::pair{"vault", &a.vault}, std::pair{"principal", &a.principal}}) {
    const YamlNode* node = n.Find(key);
    if (node == nullptr) {
      return Error(where, std::string(key) + " is required");
    }
    ASSIGN_OR_RETURN(*out, Text(*node, where, key));
  }
  if (Status valid = keyvault::ValidateVaultName(a.vault); !valid.ok()) {
    return Error(where, std::string(valid.message()));
  }
  return OkStatus();
}

Status FieldReader::AccessGrant(const YamlNode& n, const std::string& where,
                                std::optional<bool> rbac, SeedAccess& a) const {
  const YamlNode* role = n.Find("role");
  const YamlNode* permissions = n.Find("permissions");
  if ((role == nullptr) == (permissions == nullptr)) {
    return Error(where,
                 "give a role (RBAC vaults) or permissions (access-policy vaults), one of them");
  }
  if (role != nullptr) {
    ASSIGN_OR_RETURN(a.role, Text(*role, where, "role"));
    if (a.role.empty() || a.role.size() > 256) {
      return Error(where, "role must name a role (its name or id)");
    }
    if (rbac == false) {
      return Error(where, "vault '" + a.vault +
                              "' uses access policies (enableRbacAuthorization: false): give "
                              "permissions, not a role");
    }
    return OkStatus();
  }
  if (rbac == true) {
    return Error(where, "vault '" + a.vault +
                            "' uses Azure RBAC (enableRbacAuthorization: true): give a role, "
                            "not permissions");
  }
  RETURN_IF_ERROR(Keys(*permissions, where + ".permissions", {"secrets", "keys", "certificates"}));
  for (const auto& m : permissions->members) {
    authz::ObjectType type = m.key == "secrets" ? authz::ObjectType::kSecrets
                             : m.key == "keys"  ? authz::ObjectType::kKeys
                                                : authz::ObjectType::kCertificates;
    if (!m.value.IsSequence()) {
      return Error(where, "permissions." + m.key + " must be a list");
    }
    std::vector<std::string>& names = a.permissions[m.key];
    for (const auto& item : m.value.items) {
      ASSIGN_OR_RETURN(std::string p, Text(item, where, "permissions." + m.key));
      if (!authz::ParsePermission(type, p)) {
        return Error(where,
                     "permissions." + m.key + ": Key Vault has no permission " + QuoteForError(p));
      }
      names.push_back(AsciiLower(p));
    }
    if (names.empty()) {
      a.permissions.erase(m.key);
    }
  }
  if (a.permissions.empty()) {
    return Error(where, "permissions grant nothing (list secrets, keys or certificates ones)");
  }
  return OkStatus();
}

}  // namespace coffer::cli
