#include "cli/seed_file.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "agent/spc_yaml.h"
#include "authz/permissions.h"
#include "cli/yaml_fields.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "keyvault/names.h"
#include "keyvault/secret_service.h"

namespace coffer::cli {
namespace {

using agent::YamlNode;

// One parse: the file's name and the placeholders' values.
class Parser {
 public:
  Parser(const std::string& file, const SeedContext& context)
      : context_(context),
        f_(file, [this](const std::string& name, const std::string& where, const std::string& key) {
          return Placeholder(name, where, key);
        }) {}

  StatusOr<Seed> Parse(const YamlNode& root) {
    Seed seed;
    if (root.IsNull()) {
      return seed;  // an empty file seeds nothing
    }
    RETURN_IF_ERROR(f_.Keys(root, "line " + std::to_string(root.line) + ": the document",
                            {"vaults", "identities", "access"}));
    if (const YamlNode* vaults = root.Find("vaults")) {
      RETURN_IF_ERROR(f_.List(*vaults, "vaults", [&](const YamlNode& n, const std::string& at) {
        return ParseVault(n, at, seed);
      }));
    }
    if (const YamlNode* identities = root.Find("identities")) {
      RETURN_IF_ERROR(f_.List(
          *identities, "identities",
          [&](const YamlNode& n, const std::string& at) { return ParseIdentity(n, at, seed); }));
    }
    if (const YamlNode* access = root.Find("access")) {
      RETURN_IF_ERROR(f_.List(*access, "access", [&](const YamlNode& n, const std::string& at) {
        return ParseAccess(n, at, seed);
      }));
    }
    return seed;
  }

 private:
  static std::string At(const YamlNode& n, const std::string& path) {
    return FieldReader::At(n, path);
  }

  StatusOr<std::string> Placeholder(const std::string& name, const std::string& where,
                                    const std::string& key) const {
    if (name == "host") {
      return context_.host;
    }
    if (name == "port") {
      return std::to_string(context_.port);
    }
    if (name == "now") {
      return std::to_string(context_.now);
    }
    if (name.size() > 5 && name.compare(0, 3, "now") == 0 && (name[3] == '+' || name[3] == '-')) {
      if (auto seconds = ParseDuration(name.substr(4))) {
        return std::to_string(context_.now + (name[3] == '+' ? 1 : -1) * *seconds);
      }
    }
    return f_.Error(where, key + ": unknown placeholder " + QuoteForError("${" + name + "}") +
                               " (known: ${host}, ${port}, ${now}, ${now+30d}, ${now-2h}; units "
                               "s, m, h, d, w)");
  }

  StatusOr<int64_t> Time(const YamlNode& n, const std::string& where,
                         const std::string& key) const {
    ASSIGN_OR_RETURN(std::string t, f_.Text(n, where, key));
    int64_t value = 0;
    if (ParseInt64(t, &value)) {
      return value;
    }
    if (auto iso = ParseIsoTime(t)) {
      return *iso;
    }
    return f_.Error(where, key +
                               " must be a time: RFC 3339 UTC (2027-01-31T00:00:00Z), Unix "
                               "seconds or ${now+30d}");
  }

  Status ParseVault(const YamlNode& n, const std::string& path, Seed& seed) {
    std::string where = At(n, path);
    SeedVault v;
    ASSIGN_OR_RETURN(v.name, f_.Name(n, where));
    if (Status valid = keyvault::ValidateVaultName(v.name); !valid.ok()) {
      return f_.Error(where, std::string(valid.message()));
    }
    v.where = where + " (" + v.name + ")";
    RETURN_IF_ERROR(
        f_.Keys(n, v.where,
                {"name", "resourceGroup", "location", "enableRbacAuthorization",
                 "softDeleteRetentionInDays", "enablePurgeProtection", "tags", "secrets"}));
    for (const auto& other : seed.vaults) {
      if (EqualsIgnoreCase(other.name, v.name)) {
        return f_.Error(v.where, "the vault is named twice (also at " + other.where + ")");
      }
    }
    if (seed.vaults.size() >= kMaxSeedVaults) {
      return f_.Error(v.where,
                      "a seed holds at most " + std::to_string(kMaxSeedVaults) + " vaults");
    }
    RETURN_IF_ERROR(f_.VaultSettings(n, v));
    if (const YamlNode* secrets = n.Find("secrets")) {
      RETURN_IF_ERROR(
          f_.List(*secrets, path + ".secrets",
                  [&](const YamlNode& s, const std::string& at) { return ParseSecret(s, at, v); }));
    }
    seed.vaults.push_back(std::move(v));
    return OkStatus();
  }

  // The attributes of one version: of the secret itself (shorthand) or of
  // an entry of `versions`.
  Status ParseVersion(const YamlNode& n, const std::string& where, SeedVersion& out) const {
    if (const YamlNode* value = n.Find("value")) {
      if (!value->IsScalar()) {
        return f_.Error(where, "value must be a scalar");
      }
      ASSIGN_OR_RETURN(std::string text, f_.Text(*value, where, "value"));
      // SECURITY: the value itself is never in a message.
      if (!IsValidUtf8(text)) {
        return f_.Error(where, "value is not valid UTF-8");
      }
      if (text.size() > keyvault::kMaxSecretValueBytes) {
        return f_.Error(where, "value is longer than " +
                                   std::to_string(keyvault::kMaxSecretValueBytes) + " bytes");
      }
      out.value = std::move(text);
    }
    if (const YamlNode* ct = n.Find("contentType")) {
      ASSIGN_OR_RETURN(out.content_type, f_.Text(*ct, where, "contentType"));
      if (out.content_type.size() > 255) {
        return f_.Error(where, "contentType is longer than 255 characters");
      }
    }
    if (const YamlNode* tags = n.Find("tags")) {
      ASSIGN_OR_RETURN(out.tags, f_.Tags(*tags, where));
    }
    if (const YamlNode* enabled = n.Find("enabled")) {
      ASSIGN_OR_RETURN(out.enabled, f_.Bool(*enabled, where, "enabled"));
    }
    if (const YamlNode* nbf = n.Find("notBefore")) {
      ASSIGN_OR_RETURN(out.nbf, Time(*nbf, where, "notBefore"));
    }
    if (const YamlNode* exp = n.Find("expires")) {
      ASSIGN_OR_RETURN(out.exp, Time(*exp, where, "expires"));
    }
    return OkStatus();
  }

  Status ParseSecret(const YamlNode& n, const std::string& path, SeedVault& vault) {
    std::string where = At(n, path);
    SeedSecret s;
    ASSIGN_OR_RETURN(s.name, f_.Name(n, where));
    if (Status valid = keyvault::ValidateObjectName(s.name); !valid.ok()) {
      return f_.Error(where, std::string(valid.message()));
    }
    s.where = where + " (" + s.name + ")";
    RETURN_IF_ERROR(f_.Keys(
        n, s.where,
        {"name", "value", "contentType", "tags", "enabled", "notBefore", "expires", "versions"}));
    for (const auto& other : vault.secrets) {
      if (EqualsIgnoreCase(other.name, s.name)) {
        return f_.Error(s.where, "the secret is named twice in vault '" + vault.name +
                                     "' (also at " + other.where + ")");
      }
    }
    secrets_ += 1;
    if (secrets_ > kMaxSeedSecrets) {
      return f_.Error(s.where,
                      "a seed holds at most " + std::to_string(kMaxSeedSecrets) + " secrets");
    }
    const YamlNode* versions = n.Find("versions");
    if (versions != nullptr) {
      for (const char* own : {"value", "contentType", "tags", "enabled", "notBefore", "expires"}) {
        if (n.Find(own) != nullptr) {
          return f_.Error(s.where, std::string("give either versions or ") + own +
                                       " (the attributes of a single version), not both");
        }
      }
      if (!versions->IsSequence() || versions->items.empty()) {
        return f_.Error(s.where, "versions must be a list of at least one version");
      }
      if (versions->items.size() > kMaxSeedVersions) {
        return f_.Error(s.where, "a secret holds at most " + std::to_string(kMaxSeedVersions) +
                                     " versions in a seed");
      }
      for (size_t i = 0; i < versions->items.size(); ++i) {
        const YamlNode& item = versions->items[i];
        std::string at =
            At(item, path + ".versions[" + std::to_string(i) + "]") + " (" + s.name + ")";
        RETURN_IF_ERROR(
            f_.Keys(item, at, {"value", "contentType", "tags", "enabled", "notBefore", "expires"}));
        SeedVersion v;
        RETURN_IF_ERROR(ParseVersion(item, at, v));
        s.versions.push_back(std::move(v));
      }
    } else {
      SeedVersion v;
      RETURN_IF_ERROR(ParseVersion(n, s.where, v));
      s.versions.push_back(std::move(v));
    }
    vault.secrets.push_back(std::move(s));
    return OkStatus();
  }

  Status ParseIdentity(const YamlNode& n, const std::string& path, Seed& seed) const {
    std::string where = At(n, path);
    SeedIdentity id;
    ASSIGN_OR_RETURN(id.name, f_.Name(n, where));
    RETURN_IF_ERROR(f_.IdentityName(where, id.name));
    id.where = where + " (" + id.name + ")";
    RETURN_IF_ERROR(f_.Keys(n, id.where, {"name", "resourceGroup", "location", "tags"}));
    for (const auto& other : seed.identities) {
      if (EqualsIgnoreCase(other.name, id.name)) {
        return f_.Error(id.where, "the identity is named twice (also at " + other.where + ")");
      }
    }
    if (const YamlNode* rg = n.Find("resourceGroup")) {
      ASSIGN_OR_RETURN(id.resource_group, f_.Text(*rg, id.where, "resourceGroup"));
      RETURN_IF_ERROR(f_.ResourceGroup(id.where, id.resource_group));
    }
    if (const YamlNode* loc = n.Find("location")) {
      ASSIGN_OR_RETURN(id.location, f_.Text(*loc, id.where, "location"));
    }
    if (const YamlNode* tags = n.Find("tags")) {
      ASSIGN_OR_RETURN(id.tags, f_.Tags(*tags, id.where));
    }
    seed.identities.push_back(std::move(id));
    return OkStatus();
  }

  Status ParseAccess(const YamlNode& n, const std::string& path, Seed& seed) const {
    std::string where = At(n, path);
    RETURN_IF_ERROR(f_.Keys(n, where, {"vault", "principal", "role", "permissions"}));
    SeedAccess a;
    RETURN_IF_ERROR(f_.AccessTarget(n, where, a));
    std::optional<bool> rbac;
    for (const auto& v : seed.vaults) {
      if (EqualsIgnoreCase(v.name, a.vault)) {
        // A vault that does not say is decided on import: an existing one
        // has its model, a new one uses RBAC.
        rbac = v.rbac;
      }
    }
    bool named = std::any_of(seed.identities.begin(), seed.identities.end(),
                             [&](const SeedIdentity& id) { return id.name == a.principal; });
    if (!named && !FieldReader::IsGuid(a.principal)) {
      return f_.Error(where, "principal " + QuoteForError(a.principal) +
                                 " is neither an identity of this file nor an object id or app id");
    }
    RETURN_IF_ERROR(f_.AccessGrant(n, where, rbac, a));
    seed.access.push_back(std::move(a));
    return OkStatus();
  }

  const SeedContext& context_;
  FieldReader f_;
  size_t secrets_ = 0;
};

// YAML output: block style, every scalar written as a JSON string or
// literal (JSON's escapes are YAML's double-quoted escapes).
class Writer {
 public:
  void Line(int indent, const std::string& text) {
    out_.append(static_cast<size_t>(indent), ' ');
    out_ += text;
    out_ += '\n';
  }
  // Quoted, with "${" written "$${" so that reading it back expands nothing.
  static std::string Q(const std::string& s) {
    std::string escaped;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 2, "${") == 0) {
        escaped += '$';
      }
      escaped += s[i];
    }
    return Json(escaped).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  void Tags(int indent, const std::string& item, const Json& tags) {
    if (!tags.is_object() || tags.empty()) {
      return;
    }
    Line(indent, item + "tags:");
    for (const auto& [k, v] : tags.items()) {
      Line(indent + 2 + static_cast<int>(item.size()),
           Q(k) + ": " + Q(v.is_string() ? v.get<std::string>() : v.dump()));
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void WriteVersion(Writer& w, int indent, const SeedVersion& v, bool first_is_dash) {
  std::string lead = first_is_dash ? "- " : "";
  int pad = indent + static_cast<int>(lead.size());
  std::vector<std::string> lines;
  if (v.value) {
    lines.push_back("value: " + Writer::Q(*v.value));
  }
  if (!v.content_type.empty()) {
    lines.push_back("contentType: " + Writer::Q(v.content_type));
  }
  if (!v.enabled) {
    lines.push_back("enabled: false");
  }
  if (v.nbf) {
    lines.push_back("notBefore: " + Writer::Q(FormatIsoTime(*v.nbf)));
  }
  if (v.exp) {
    lines.push_back("expires: " + Writer::Q(FormatIsoTime(*v.exp)));
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    w.Line(i == 0 ? indent : pad, (i == 0 ? lead : "") + lines[i]);
  }
  if (lines.empty()) {
    w.Line(indent, lead + "enabled: true");
  }
  w.Tags(pad, "", v.tags);
}

}  // namespace

StatusOr<Seed> ParseSeed(std::string_view text, const std::string& file,
                         const SeedContext& context) {
  ASSIGN_OR_RETURN(YamlNode root, ReadYamlDocument(text, file, kMaxSeedBytes, 1000000));
  return Parser(file, context).Parse(root);
}

std::string RenderSeed(const Seed& seed) {
  Writer w;
  w.Line(0, "# A Coffer seed file (docs/testing-with-coffer.md).");
  if (!seed.vaults.empty()) {
    w.Line(0, "vaults:");
  }
  for (const SeedVault& v : seed.vaults) {
    w.Line(2, "- name: " + Writer::Q(v.name));
    if (!v.resource_group.empty()) {
      w.Line(4, "resourceGroup: " + Writer::Q(v.resource_group));
    }
    w.Line(4, "location: " + Writer::Q(v.location));
    if (v.rbac) {
      w.Line(4, std::string("enableRbacAuthorization: ") + (*v.rbac ? "true" : "false"));
    }
    if (v.retention_days) {
      w.Line(4, "softDeleteRetentionInDays: " + std::to_string(*v.retention_days));
    }
    if (v.purge_protection) {
      w.Line(4, std::string("enablePurgeProtection: ") + (*v.purge_protection ? "true" : "false"));
    }
    w.Tags(4, "", v.tags);
    if (!v.secrets.empty()) {
      w.Line(4, "secrets:");
    }
    for (const SeedSecret& s : v.secrets) {
      w.Line(6, "- name: " + Writer::Q(s.name));
      w.Line(8, "versions:");
      for (const SeedVersion& version : s.versions) {
        WriteVersion(w, 10, version, true);
      }
    }
  }
  if (!seed.identities.empty()) {
    w.Line(0, "identities:");
  }
  for (const SeedIdentity& id : seed.identities) {
    w.Line(2, "- name: " + Writer::Q(id.name));
    if (!id.resource_group.empty()) {
      w.Line(4, "resourceGroup: " + Writer::Q(id.resource_group));
    }
    w.Line(4, "location: " + Writer::Q(id.location));
    w.Tags(4, "", id.tags);
  }
  if (!seed.access.empty()) {
    w.Line(0, "access:");
  }
  for (const SeedAccess& a : seed.access) {
    w.Line(2, "- vault: " + Writer::Q(a.vault));
    w.Line(4, "principal: " + Writer::Q(a.principal));
    if (!a.role.empty()) {
      w.Line(4, "role: " + Writer::Q(a.role));
      continue;
    }
    w.Line(4, "permissions:");
    for (const auto& [type, names] : a.permissions) {
      std::string list;
      for (const auto& n : names) {
        list += (list.empty() ? "" : ", ") + Writer::Q(n);
      }
      w.Line(6, type + ": [" + list + "]");
    }
  }
  return w.Take();
}

}  // namespace coffer::cli
