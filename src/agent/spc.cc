#include "agent/spc.h"

#include <limits>
#include <set>
#include <utility>

#include "agent/spc_yaml.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"

namespace coffer::agent {
namespace {

bool IsAsciiDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsAsciiAlnum(char c) {
  return IsAsciiDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// True when `s` is 1..max_len characters, each alphanumeric or in `extra`.
bool IsToken(std::string_view s, size_t min_len, size_t max_len, std::string_view extra) {
  if (s.size() < min_len || s.size() > max_len) {
    return false;
  }
  for (char c : s) {
    if (!IsAsciiAlnum(c) && extra.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::string Trimmed(std::string_view s) {
  return std::string(TrimWhitespace(s));
}

std::string ObjectPrefix(size_t index) {
  return "objects[" + std::to_string(index) + "]: ";
}

// Parses an optionally signed decimal int32 (objectVersionHistory).
std::optional<int32_t> ParseInt32(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 10) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (char c : s) {
    if (!IsAsciiDigit(c)) {
      return std::nullopt;
    }
    v = v * 10 + (c - '0');
  }
  v = negative ? -v : v;
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    return std::nullopt;
  }
  return static_cast<int32_t>(v);
}

// The driver later insists on clean relative paths (csi-driver.md §1.5); the
// Azure provider is stricter still and refuses `..` anywhere. Checking here
// turns a late write failure into an error that names the object.
Status ValidateFileName(std::string_view path) {
  if (path.empty()) {
    return InvalidArgumentError("file name (objectAlias or objectName) is empty");
  }
  if (path.front() == '/') {
    return InvalidArgumentError("file name " + QuoteForError(path) + " must be relative");
  }
  if (path.find("..") != std::string_view::npos) {
    return InvalidArgumentError("file name " + QuoteForError(path) + " must not contain \"..\"");
  }
  if (path.size() > 4096) {
    return InvalidArgumentError("file name is longer than 4096 bytes");
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError("file name " + QuoteForError(path) +
                                  " contains a control character");
    }
  }
  for (std::string_view element : Split(path, '/')) {
    if (element.empty() || element == ".") {
      return InvalidArgumentError("file name " + QuoteForError(path) +
                                  " is not a clean path (empty or \".\" element)");
    }
    if (element.size() > 255) {
      return InvalidArgumentError("file name " + QuoteForError(path) +
                                  " has an element longer than 255 bytes");
    }
  }
  return OkStatus();
}

}  // namespace

// Two objects may not write the same path, and one object's file may not be
// a directory of another's (`a` and `a/b`, or `a` with version history and
// `a/0`).
Status CheckFileNameConflicts(const std::vector<AzureObject>& objects) {
  std::map<std::string, size_t> leaves;
  for (size_t i = 0; i < objects.size(); ++i) {
    if (objects[i].selector.has_value()) {
      continue;
    }
    auto [it, inserted] = leaves.emplace(objects[i].FileName(), i);
    if (!inserted) {
      return InvalidArgumentError(ObjectPrefix(i) + "file name " + QuoteForError(it->first) +
                                  " is already used by objects[" + std::to_string(it->second) +
                                  "]");
    }
  }
  for (const auto& [path, index] : leaves) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      auto it = leaves.find(path.substr(0, slash));
      if (it != leaves.end()) {
        return InvalidArgumentError(ObjectPrefix(index) + "file name " + QuoteForError(path) +
                                    " lies inside " + QuoteForError(it->first) +
                                    ", the file of objects[" + std::to_string(it->second) + "]");
      }
    }
  }
  return OkStatus();
}

namespace {

// Coffer's `objectSelector` of one objects entry (a map), validated.
StatusOr<ObjectSelector> ParseSelector(const YamlNode& node, const std::string& prefix) {
  if (!node.IsMap()) {
    return InvalidArgumentError(prefix + "objectSelector must be a mapping (namePrefix, tags)");
  }
  ObjectSelector selector;
  for (const YamlMember& m : node.members) {
    if (m.key == "namePrefix") {
      auto value = ScalarText(m.value, "objectSelector.namePrefix");
      if (!value.ok()) {
        return InvalidArgumentError(prefix + std::string(value.status().message()));
      }
      selector.name_prefix = Trimmed(*value);
      if (!IsToken(selector.name_prefix, 0, 127, "-")) {
        return InvalidArgumentError(prefix + "objectSelector.namePrefix " +
                                    QuoteForError(selector.name_prefix) +
                                    " is not the start of a Key Vault name (0-127 of "
                                    "[0-9A-Za-z-])");
      }
    } else if (m.key == "tags") {
      if (!m.value.IsMap()) {
        return InvalidArgumentError(prefix +
                                    "objectSelector.tags must be a mapping of tag "
                                    "names to values");
      }
      if (m.value.members.size() > kMaxSelectorTags) {
        return InvalidArgumentError(
            prefix + "objectSelector.tags has " + std::to_string(m.value.members.size()) +
            " tags; a secret has at most " + std::to_string(kMaxSelectorTags));
      }
      for (const YamlMember& tag : m.value.members) {
        auto value = ScalarText(tag.value, "objectSelector.tags." + tag.key);
        if (!value.ok()) {
          return InvalidArgumentError(prefix + std::string(value.status().message()));
        }
        if (tag.key.empty() || tag.key.size() > kMaxTagNameBytes) {
          return InvalidArgumentError(prefix + "objectSelector.tags: a tag name must have 1 to " +
                                      std::to_string(kMaxTagNameBytes) + " characters");
        }
        if (value->size() > kMaxTagValueBytes) {
          return InvalidArgumentError(prefix + "objectSelector.tags." + tag.key +
                                      ": a tag value has at most " +
                                      std::to_string(kMaxTagValueBytes) + " characters");
        }
        selector.tags[tag.key] = *value;
      }
    } else {
      return InvalidArgumentError(prefix + "objectSelector has an unknown key " +
                                  QuoteForError(m.key) + " (namePrefix, tags)");
    }
  }
  return selector;
}

// objectFormat, objectEncoding and filePermission, for an object whose
// type is known.
Status ParseOutputFields(AzureObject& object, std::map<std::string_view, std::string>& fields,
                         const std::string& prefix) {
  object.format = AsciiLower(fields["objectFormat"]);
  if (object.format.empty()) {
    object.format = "pem";
  } else if (object.format != "pem" && object.format != "pfx") {
    return InvalidArgumentError(prefix + "invalid objectFormat " +
                                QuoteForError(fields["objectFormat"]) + ", should be pem or pfx");
  } else if (object.format == "pfx" && object.type != ObjectType::kSecret) {
    return InvalidArgumentError(prefix +
                                "objectFormat pfx is only supported for objectType secret");
  }
  if (const std::string& encoding = fields["objectEncoding"]; !encoding.empty()) {
    // As in the Azure provider, even "utf-8" is refused for keys and certs.
    if (object.type != ObjectType::kSecret) {
      return InvalidArgumentError(prefix +
                                  "objectEncoding is only supported for objectType secret");
    }
    if (EqualsIgnoreCase(encoding, "utf-8")) {
      object.encoding = ObjectEncoding::kUtf8;
    } else if (EqualsIgnoreCase(encoding, "hex")) {
      object.encoding = ObjectEncoding::kHex;
    } else if (EqualsIgnoreCase(encoding, "base64")) {
      object.encoding = ObjectEncoding::kBase64;
    } else {
      return InvalidArgumentError(prefix + "invalid objectEncoding " + QuoteForError(encoding) +
                                  ", should be utf-8, hex or base64");
    }
  }
  if (const std::string& permission = fields["filePermission"]; !permission.empty()) {
    auto mode = ParseOctalMode(permission);
    if (!mode.ok()) {
      return InvalidArgumentError(prefix +
                                  "filePermission: " + std::string(mode.status().message()));
    }
    object.file_permission = *mode;
  }
  return OkStatus();
}

Status ParseWriteTags(AzureObject& object, std::map<std::string_view, std::string>& fields,
                      const std::string& prefix) {
  if (const std::string& write_tags = fields["writeTags"]; !write_tags.empty()) {
    auto parsed = ParseGoBool(write_tags, "writeTags");
    if (!parsed.ok()) {
      return InvalidArgumentError(prefix + std::string(parsed.status().message()));
    }
    if (*parsed && object.type != ObjectType::kSecret) {
      return InvalidArgumentError(prefix + "writeTags is only supported for objectType secret");
    }
    object.write_tags = *parsed;
  }
  return OkStatus();
}

// The rest of an objectSelector entry: a secret of no name, and only the
// fields that apply to each selected secret.
StatusOr<AzureObject> SelectorObject(AzureObject object,
                                     std::map<std::string_view, std::string>& fields,
                                     const std::string& prefix) {
  if (!object.name.empty()) {
    return InvalidArgumentError(prefix + "objectSelector and objectName exclude each other");
  }
  if (fields["objectType"] != "secret") {
    return InvalidArgumentError(prefix +
                                "objectSelector selects secrets: objectType must be "
                                "secret");
  }
  for (const char* field : {"objectVersion", "objectVersionHistory", "objectAlias"}) {
    if (!fields[field].empty()) {
      return InvalidArgumentError(prefix + field + " cannot be used with objectSelector (" +
                                  "it names one object)");
    }
  }
  object.type = ObjectType::kSecret;
  RETURN_IF_ERROR(ParseOutputFields(object, fields, prefix));
  if (!fields["optional"].empty() || !fields["optionalFallback"].empty()) {
    return InvalidArgumentError(prefix +
                                "optional does not apply to objectSelector (a selection "
                                "of nothing is not an error)");
  }
  if (const std::string& tmpl = fields["objectFileTemplate"]; !tmpl.empty()) {
    if (tmpl.find("{{name}}") == std::string::npos &&
        tmpl.find("{{suffix}}") == std::string::npos) {
      return InvalidArgumentError(prefix + "objectFileTemplate " + QuoteForError(tmpl) +
                                  " names every secret alike: use {{name}} or {{suffix}}");
    }
    object.selector->file_template = tmpl;
  }
  // The template with a name put in must make a file name.
  if (Status s = ValidateFileName(object.selector->FileNameFor(object.selector->name_prefix + "x"));
      !s.ok()) {
    return InvalidArgumentError(prefix + "objectFileTemplate: " + std::string(s.message()));
  }
  RETURN_IF_ERROR(ParseWriteTags(object, fields, prefix));
  return object;
}

StatusOr<AzureObject> ParseObject(const std::string& text, size_t index) {
  const std::string prefix = ObjectPrefix(index);
  YamlLimits limits;
  limits.max_bytes = 64 << 10;
  limits.max_documents = 1;
  limits.max_depth = 4;
  limits.max_nodes = 256;
  limits.max_scalar_bytes = 64 << 10;
  auto docs = ParseYamlDocuments(text, limits);
  if (!docs.ok()) {
    return InvalidArgumentError(prefix + std::string(docs.status().message()));
  }
  if (docs->empty() || docs->front().IsNull()) {
    return InvalidArgumentError(prefix + "is empty");
  }
  const YamlNode& doc = docs->front();
  if (!doc.IsMap()) {
    return InvalidArgumentError(prefix + "must be a YAML mapping, not a " +
                                std::string(KindName(doc.kind)));
  }
  // Go's yaml.Unmarshal ignores unknown fields, so the Azure provider does
  // too; so do we, for SPCs that carry newer fields.
  std::map<std::string_view, std::string> fields;
  for (const char* name : {"objectName", "objectType", "objectVersion", "objectVersionHistory",
                           "objectAlias", "objectFormat", "objectEncoding", "filePermission",
                           "optional", "optionalFallback", "objectFileTemplate", "writeTags"}) {
    const YamlNode* node = doc.Find(name);
    if (node == nullptr) {
      continue;
    }
    auto value = ScalarText(*node, name);
    if (!value.ok()) {
      return InvalidArgumentError(prefix + std::string(value.status().message()));
    }
    fields[name] = Trimmed(*value);
  }
  AzureObject object;
  object.name = fields["objectName"];
  if (const YamlNode* selector = doc.Find("objectSelector"); selector != nullptr) {
    ASSIGN_OR_RETURN(object.selector, ParseSelector(*selector, prefix));
    return SelectorObject(std::move(object), fields, prefix);
  }
  if (object.name.empty()) {
    return InvalidArgumentError(prefix + "objectName is not set");
  }
  // SECURITY: names and versions become URL path segments; Key Vault's own
  // alphabet leaves nothing to escape or traverse.
  if (!IsToken(object.name, 1, 127, "-")) {
    return InvalidArgumentError(prefix + "objectName " + QuoteForError(object.name) +
                                " is not a Key Vault name (1-127 of [0-9A-Za-z-])");
  }
  const std::string& type = fields["objectType"];
  if (type == "secret") {
    object.type = ObjectType::kSecret;
  } else if (type == "key") {
    object.type = ObjectType::kKey;
  } else if (type == "cert") {
    object.type = ObjectType::kCert;
  } else {
    return InvalidArgumentError(prefix + "Invalid vaultObjectTypes: objectType " +
                                QuoteForError(type) + " should be secret, key or cert");
  }
  object.version = fields["objectVersion"];
  if (!IsToken(object.version, 0, 127, "-")) {
    return InvalidArgumentError(prefix + "objectVersion " + QuoteForError(object.version) +
                                " is not a version id ([0-9A-Za-z-]{0,127})");
  }
  if (const std::string& history = fields["objectVersionHistory"]; !history.empty()) {
    std::optional<int32_t> n = ParseInt32(history);
    if (!n) {
      return InvalidArgumentError(prefix + "objectVersionHistory " + QuoteForError(history) +
                                  " is not an int32");
    }
    object.version_history = *n;
  }
  object.alias = fields["objectAlias"];
  RETURN_IF_ERROR(ParseOutputFields(object, fields, prefix));
  // Coffer's extensions (docs/agent.md); the Azure provider ignores them.
  if (const std::string& optional = fields["optional"]; !optional.empty()) {
    auto parsed = ParseGoBool(optional, "optional");
    if (!parsed.ok()) {
      return InvalidArgumentError(prefix + std::string(parsed.status().message()));
    }
    object.optional = *parsed;
  }
  if (const std::string& fallback = fields["optionalFallback"]; !fallback.empty()) {
    if (!object.optional) {
      return InvalidArgumentError(prefix +
                                  "optionalFallback is set but the object is not "
                                  "optional (optional: \"true\")");
    }
    if (fallback == "lastKnown") {
      object.keep_last_known = true;
    } else if (fallback != "absent") {
      return InvalidArgumentError(prefix + "invalid optionalFallback " + QuoteForError(fallback) +
                                  ", should be absent or lastKnown");
    }
    if (object.keep_last_known && object.version_history > 1) {
      return InvalidArgumentError(
          prefix + "optionalFallback lastKnown cannot be combined with objectVersionHistory");
    }
  }
  if (!fields["objectFileTemplate"].empty()) {
    return InvalidArgumentError(prefix +
                                "objectFileTemplate is for objectSelector entries; "
                                "name one object's file with objectAlias");
  }
  RETURN_IF_ERROR(ParseWriteTags(object, fields, prefix));
  if (Status s = ValidateFileName(object.FileName()); !s.ok()) {
    return InvalidArgumentError(prefix + std::string(s.message()));
  }
  return object;
}

// Finds the token for `audience` in the tokens attribute (or, with
// serviceAccountTokenInSecrets, in the secrets), else falls back to the
// standalone token file.
Status ResolveToken(const std::map<std::string, std::string>& attributes,
                    const std::map<std::string, std::string>& secrets,
                    const AzureParseOptions& opts, std::string_view audience, std::string_view mode,
                    AzureMountParameters& out) {
  std::string raw;
  if (auto it = attributes.find(std::string(kAttrTokens)); it != attributes.end()) {
    raw = Trimmed(it->second);
  }
  if (raw.empty()) {
    if (auto it = secrets.find(std::string(kAttrTokens)); it != secrets.end()) {
      raw = Trimmed(it->second);
    }
  }
  if (!raw.empty()) {
    auto token = ParseServiceAccountTokens(raw, audience);
    if (token.ok()) {
      out.workload_identity_token = std::move(token).value();
      return OkStatus();
    }
    if (token.status().code() != StatusCode::kNotFound) {
      return token.status();
    }
  }
  if (!opts.service_account_token_file.empty()) {
    out.workload_identity_token_file = opts.service_account_token_file;
    return OkStatus();
  }
  return InvalidArgumentError(
      std::string(mode) + " needs a service account token for audience " + std::string(audience) +
      ", and " + std::string(kAttrTokens) + (raw.empty() ? " is not set" : " has none for it") +
      " (configure tokenRequests on the CSIDriver, or serviceAccountTokenFile in standalone mode)");
}

std::string SecretLookup(const std::map<std::string, std::string>& secrets, std::string_view key) {
  for (const auto& [name, value] : secrets) {
    if (EqualsIgnoreCase(name, key)) {
      return Trimmed(value);
    }
  }
  return std::string();
}

}  // namespace

StatusOr<std::vector<AzureObject>> ParseAzureObjects(std::string_view text) {
  YamlLimits limits;
  limits.max_bytes = kMaxAttributesBytes;
  limits.max_documents = 1;
  limits.max_depth = 8;
  limits.max_nodes = 4 * kMaxObjects + 16;
  auto docs = ParseYamlDocuments(text, limits);
  if (!docs.ok()) {
    return InvalidArgumentError("objects: " + std::string(docs.status().message()));
  }
  const YamlNode* array = nullptr;
  if (!docs->empty() && docs->front().IsMap()) {
    array = docs->front().Find("array");
  }
  if (array == nullptr) {
    return InvalidArgumentError("objects must be a YAML mapping with the key \"array\"");
  }
  std::vector<AzureObject> objects;
  if (array->IsNull()) {
    return objects;
  }
  if (!array->IsSequence()) {
    return InvalidArgumentError("objects: \"array\" must be a list, not a " +
                                std::string(KindName(array->kind)));
  }
  if (array->items.size() > kMaxObjects) {
    return InvalidArgumentError("objects: more than " + std::to_string(kMaxObjects) + " objects");
  }
  for (size_t i = 0; i < array->items.size(); ++i) {
    const YamlNode& item = array->items[i];
    if (!item.IsScalar()) {
      return InvalidArgumentError(ObjectPrefix(i) + "must be a string holding a YAML mapping " +
                                  "(write `- |` before the mapping), not a " +
                                  std::string(KindName(item.kind)));
    }
    ASSIGN_OR_RETURN(AzureObject object, ParseObject(item.scalar, i));
    objects.push_back(std::move(object));
  }
  RETURN_IF_ERROR(CheckFileNameConflicts(objects));
  return objects;
}

std::string AzureObject::FileName() const {
  return alias.empty() ? name : alias;
}

std::string_view AzureObject::TypeName() const {
  switch (type) {
    case ObjectType::kSecret:
      return "secret";
    case ObjectType::kKey:
      return "key";
    case ObjectType::kCert:
      return "cert";
  }
  return "secret";
}

std::string AzureObject::Id() const {
  if (selector.has_value()) {
    return std::string(TypeName()) + "/" + selector->name_prefix + "*";
  }
  return std::string(TypeName()) + "/" + name;
}

std::string ObjectSelector::FileNameFor(std::string_view name) const {
  std::string suffix(name.substr(std::min(name.size(), name_prefix.size())));
  std::string out;
  for (size_t i = 0; i < file_template.size();) {
    if (file_template.compare(i, 8, "{{name}}") == 0) {
      out += name;
      i += 8;
    } else if (file_template.compare(i, 10, "{{suffix}}") == 0) {
      out += suffix;
      i += 10;
    } else {
      out += file_template[i++];
    }
  }
  return out;
}

bool ObjectSelector::Matches(std::string_view name,
                             const std::map<std::string, std::string>& object_tags) const {
  if (name.size() < name_prefix.size() ||
      !EqualsIgnoreCase(name.substr(0, name_prefix.size()), name_prefix)) {
    return false;
  }
  for (const auto& [tag, value] : tags) {
    auto it = object_tags.find(tag);
    if (it == object_tags.end() || it->second != value) {
      return false;
    }
  }
  return true;
}

StatusOr<bool> ParseGoBool(std::string_view text, std::string_view field) {
  if (text == "1" || text == "t" || text == "T" || text == "TRUE" || text == "true" ||
      text == "True") {
    return true;
  }
  if (text == "0" || text == "f" || text == "F" || text == "FALSE" || text == "false" ||
      text == "False") {
    return false;
  }
  return InvalidArgumentError(std::string(field) + " " + QuoteForError(text) +
                              " is not a boolean (true or false)");
}

StatusOr<uint32_t> ParseOctalMode(std::string_view text) {
  text = TrimWhitespace(text);
  if (text.empty() || text.size() > 12) {
    return InvalidArgumentError("file mode " + QuoteForError(text) + " is not an octal number");
  }
  uint32_t mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') {
      return InvalidArgumentError("file mode " + QuoteForError(text) + " is not an octal number");
    }
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  if (mode > 0777) {
    return InvalidArgumentError("file mode " + QuoteForError(text) + " is larger than 0777");
  }
  return mode;
}

StatusOr<uint32_t> ParsePermission(std::string_view text) {
  text = TrimWhitespace(text);
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'o' || text[1] == 'O')) {
    return ParseOctalMode(text.substr(2));
  }
  if (text.size() > 1 && text[0] == '0') {
    return ParseOctalMode(text);
  }
  if (text.empty() || text.size() > 10) {
    return InvalidArgumentError("permission " + QuoteForError(text) + " is not a file mode");
  }
  uint64_t mode = 0;
  for (char c : text) {
    if (!IsAsciiDigit(c)) {
      return InvalidArgumentError("permission " + QuoteForError(text) + " is not a file mode");
    }
    mode = mode * 10 + static_cast<uint64_t>(c - '0');
  }
  if (mode > 0777) {
    return InvalidArgumentError("permission " + QuoteForError(text) + " is larger than 511 (0777)");
  }
  return static_cast<uint32_t>(mode);
}

StatusOr<std::map<std::string, std::string>> ParseStringMapJson(std::string_view json,
                                                                bool allow_null) {
  static constexpr size_t kMaxBytes = 4 << 20;  // the driver's gRPC message limit
  if (json.size() > kMaxBytes) {
    return InvalidArgumentError("JSON object is larger than 4 MiB");
  }
  std::optional<Json> parsed = ParseJson(json, /*max_depth=*/2);
  if (!parsed) {
    return InvalidArgumentError("not a valid JSON object of strings");
  }
  std::map<std::string, std::string> out;
  if (parsed->is_null() && allow_null) {
    return out;
  }
  if (!parsed->is_object()) {
    return InvalidArgumentError("JSON must be an object of strings, not " +
                                std::string(parsed->type_name()));
  }
  for (const auto& [key, value] : parsed->items()) {
    if (!value.is_string()) {
      return InvalidArgumentError("JSON member " + QuoteForError(key) + " must be a string, not " +
                                  std::string(value.type_name()));
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

StatusOr<std::string> ParseServiceAccountTokens(std::string_view json, std::string_view audience) {
  std::optional<Json> parsed = ParseJson(json, /*max_depth=*/3);
  if (!parsed || !parsed->is_object()) {
    return InvalidArgumentError(std::string(kAttrTokens) + " is not a JSON object");
  }
  auto it = parsed->find(std::string(audience));
  if (it == parsed->end()) {
    return NotFoundError(std::string(kAttrTokens) + " has no token for audience " +
                         QuoteForError(audience));
  }
  std::string token = StringMember(*it, "token");
  // SECURITY: the token goes into a request body; a JWT is three base64url
  // parts, so anything else is refused rather than passed on.
  if (token.empty() || !IsToken(token, 1, 64 << 10, "-_.")) {
    return InvalidArgumentError(std::string(kAttrTokens) + " entry for audience " +
                                QuoteForError(audience) + " has no valid \"token\"");
  }
  return token;
}

StatusOr<std::chrono::milliseconds> ParseGoDuration(std::string_view text) {
  const std::string quoted = QuoteForError(text);
  auto invalid = [&quoted]() { return InvalidArgumentError("invalid duration " + quoted); };
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    return std::chrono::milliseconds(0);
  }
  if (s.empty()) {
    return invalid();
  }
  static constexpr uint64_t kMax = uint64_t{1} << 63;
  static const std::pair<std::string_view, uint64_t> kUnits[] = {
      {"ns", 1},
      {"us", 1000},
      {"\xc2\xb5s", 1000},  // U+00B5 micro sign
      {"\xce\xbcs", 1000},  // U+03BC Greek mu
      {"ms", 1000000},
      {"s", 1000000000},
      {"m", 60 * uint64_t{1000000000}},
      {"h", 3600 * uint64_t{1000000000}},
  };
  uint64_t total = 0;
  while (!s.empty()) {
    if (!(s.front() == '.' || IsAsciiDigit(s.front()))) {
      return invalid();
    }
    uint64_t whole = 0;
    size_t i = 0;
    for (; i < s.size() && IsAsciiDigit(s[i]); ++i) {
      if (whole > (kMax - 9) / 10) {
        return invalid();
      }
      whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
    }
    bool pre = i > 0;
    uint64_t fraction = 0;
    double scale = 1;
    bool post = false;
    if (i < s.size() && s[i] == '.') {
      size_t start = ++i;
      for (; i < s.size() && IsAsciiDigit(s[i]); ++i) {
        // As Go does, digits past what fits are dropped.
        if (fraction <= (kMax - 9) / 10) {
          fraction = fraction * 10 + static_cast<uint64_t>(s[i] - '0');
          scale *= 10;
        }
      }
      post = i > start;
    }
    if (!pre && !post) {
      return invalid();
    }
    s.remove_prefix(i);
    size_t unit_len = 0;
    while (unit_len < s.size() && s[unit_len] != '.' && !IsAsciiDigit(s[unit_len])) {
      ++unit_len;
    }
    if (unit_len == 0) {
      return InvalidArgumentError("missing unit in duration " + quoted);
    }
    std::string_view unit_name = s.substr(0, unit_len);
    s.remove_prefix(unit_len);
    uint64_t unit = 0;
    for (const auto& [name, ns] : kUnits) {
      if (name == unit_name) {
        unit = ns;
      }
    }
    if (unit == 0) {
      return InvalidArgumentError("unknown unit " + QuoteForError(unit_name) + " in duration " +
                                  quoted);
    }
    if (whole > kMax / unit) {
      return invalid();
    }
    uint64_t v = whole * unit;
    if (fraction > 0) {
      v += static_cast<uint64_t>(static_cast<double>(fraction) *
                                 (static_cast<double>(unit) / scale));
      if (v > kMax) {
        return invalid();
      }
    }
    if (v > kMax - total) {
      return invalid();
    }
    total += v;
  }
  if (!negative && total > kMax - 1) {
    return invalid();
  }
  auto ms = static_cast<int64_t>(total / 1000000);
  return std::chrono::milliseconds(negative ? -ms : ms);
}

StatusOr<AzureMountParameters> ParseAzureProviderParameters(
    const std::map<std::string, std::string>& attributes,
    const std::map<std::string, std::string>& secrets, const AzureParseOptions& opts) {
  if (attributes.size() > kMaxAttributes) {
    return InvalidArgumentError("more than " + std::to_string(kMaxAttributes) + " attributes");
  }
  size_t bytes = 0;
  for (const auto& [key, value] : attributes) {
    bytes += key.size() + value.size();
  }
  for (const auto& [key, value] : secrets) {
    bytes += key.size() + value.size();
  }
  if (bytes > kMaxAttributesBytes) {
    return InvalidArgumentError("attributes and secrets are larger than 1 MiB");
  }
  auto get = [&attributes](std::string_view key) {
    auto it = attributes.find(std::string(key));
    return it == attributes.end() ? std::string() : Trimmed(it->second);
  };
  auto get_bool = [&get](std::string_view key) -> StatusOr<bool> {
    std::string value = get(key);
    if (value.empty()) {
      return false;
    }
    return ParseGoBool(value, key);
  };

  AzureMountParameters out;
  out.keyvault_name = get("keyvaultName");
  if (out.keyvault_name.empty()) {
    return InvalidArgumentError("keyvaultName is not set");
  }
  if (!IsToken(out.keyvault_name, 3, 24, "-")) {
    return InvalidArgumentError("keyvaultName " + QuoteForError(out.keyvault_name) +
                                " must be 3-24 characters of [-A-Za-z0-9]");
  }
  out.tenant_id = get("tenantID");
  if (out.tenant_id.empty()) {
    out.tenant_id = get("tenantId");  // the deprecated spelling
  }
  if (out.tenant_id.empty()) {
    return InvalidArgumentError("tenantID is not set");
  }
  // SECURITY: the tenant becomes a path segment of the token endpoint.
  if (!IsToken(out.tenant_id, 1, 256, "._-")) {
    return InvalidArgumentError("tenantID " + QuoteForError(out.tenant_id) +
                                " must be a GUID, a domain name or \"adfs\"");
  }

  out.pod_name = get(kAttrPodName);
  out.pod_namespace = get(kAttrPodNamespace);
  out.pod_uid = get(kAttrPodUid);
  out.service_account = get(kAttrServiceAccount);
  // SECURITY: pod name and namespace become NMI request headers (pod
  // identity); Kubernetes names and UIDs never leave this alphabet.
  for (const auto& [key, value] :
       {std::pair{kAttrPodName, &out.pod_name}, std::pair{kAttrPodNamespace, &out.pod_namespace},
        std::pair{kAttrPodUid, &out.pod_uid},
        std::pair{kAttrServiceAccount, &out.service_account}}) {
    if (!IsToken(*value, 0, 253, "._-")) {
      return InvalidArgumentError(std::string(key) + " " + QuoteForError(*value) +
                                  " is not a Kubernetes name");
    }
  }
  if (opts.require_pod_info) {
    if (out.pod_name.empty()) {
      return InvalidArgumentError(std::string(kAttrPodName) + " is not set");
    }
    if (out.pod_namespace.empty()) {
      return InvalidArgumentError(std::string(kAttrPodNamespace) + " is not set");
    }
  }

  ASSIGN_OR_RETURN(bool pod_identity, get_bool("usePodIdentity"));
  ASSIGN_OR_RETURN(bool vm_identity, get_bool("useVMManagedIdentity"));
  ASSIGN_OR_RETURN(bool token_proxy, get_bool("useAzureTokenProxy"));
  if (int{pod_identity} + int{vm_identity} + int{token_proxy} > 1) {
    return InvalidArgumentError(
        "at most one of usePodIdentity, useVMManagedIdentity and useAzureTokenProxy may be true");
  }
  out.client_id = get("clientID");
  if (!out.client_id.empty() && !IsToken(out.client_id, 1, 128, "._-")) {
    return InvalidArgumentError("clientID " + QuoteForError(out.client_id) +
                                " must be a client id (GUID)");
  }
  out.user_assigned_identity_id = get("userAssignedIdentityID");
  if (!out.user_assigned_identity_id.empty() &&
      !IsToken(out.user_assigned_identity_id, 1, 128, "._-")) {
    return InvalidArgumentError("userAssignedIdentityID " +
                                QuoteForError(out.user_assigned_identity_id) +
                                " must be a client id (GUID)");
  }
  if (pod_identity) {
    out.identity_mode = IdentityMode::kPodIdentity;
  } else if (vm_identity) {
    out.identity_mode = IdentityMode::kVmManagedIdentity;
  } else if (token_proxy) {
    out.identity_mode = IdentityMode::kTokenProxy;
    if (out.client_id.empty()) {
      return InvalidArgumentError("useAzureTokenProxy needs clientID");
    }
    RETURN_IF_ERROR(
        ResolveToken(attributes, secrets, opts, kTokenProxyAudience, "useAzureTokenProxy", out));
  } else if (!out.client_id.empty()) {
    out.identity_mode = IdentityMode::kWorkloadIdentity;
    RETURN_IF_ERROR(ResolveToken(attributes, secrets, opts, kWorkloadIdentityAudience,
                                 "workload identity (clientID is set)", out));
  } else {
    out.identity_mode = IdentityMode::kServicePrincipal;
    out.sp_client_id = SecretLookup(secrets, "clientid");
    out.sp_client_secret = SecretLookup(secrets, "clientsecret");
    if (out.sp_client_id.empty() && out.sp_client_secret.empty()) {
      return InvalidArgumentError(
          "failed to get credentials, nodePublishSecretRef secret is not set (a service principal "
          "needs clientid and clientsecret; set clientID for workload identity)");
    }
    if (out.sp_client_id.empty()) {
      return InvalidArgumentError("nodePublishSecretRef secret has no clientid");
    }
    if (out.sp_client_secret.empty()) {
      return InvalidArgumentError("nodePublishSecretRef secret has no clientsecret");
    }
  }

  std::string objects = get("objects");
  if (objects.empty()) {
    return InvalidArgumentError("objects is not set");
  }
  ASSIGN_OR_RETURN(out.objects, ParseAzureObjects(objects));
  // Coffer's: how many secrets the mount's objectSelector entries may match.
  if (std::string limit = get("objectSelectorLimit"); !limit.empty()) {
    std::optional<int32_t> n = ParseInt32(limit);
    if (!n || *n < 1 || *n > kMaxSelectorLimit) {
      return InvalidArgumentError("objectSelectorLimit " + QuoteForError(limit) +
                                  " must be a number from 1 to " +
                                  std::to_string(kMaxSelectorLimit));
    }
    out.selector_limit = *n;
  }
  return out;
}

namespace {

// Kubernetes object names: DNS subdomain (RFC 1123), at most 253.
bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253 || !IsAsciiAlnum(s.front()) || !IsAsciiAlnum(s.back())) {
    return false;
  }
  for (char c : s) {
    if (!(IsAsciiDigit(c) || (c >= 'a' && c <= 'z') || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

std::string DocumentPrefix(size_t index, const YamlNode& doc) {
  return "document " + std::to_string(index + 1) +
         (doc.line > 0 ? " (line " + std::to_string(doc.line) + ")" : "") + ": ";
}

// Reads the scalar member `key` of `map`; "" when absent or null.
StatusOr<std::string> MemberText(const YamlNode& map, std::string_view key, std::string_view what) {
  const YamlNode* node = map.Find(key);
  if (node == nullptr) {
    return std::string();
  }
  return ScalarText(*node, what);
}

// Reads a map of scalars (spec.parameters, data, stringData): null or absent
// gives an empty map.
StatusOr<std::map<std::string, std::string>> StringMap(const YamlNode& parent, std::string_view key,
                                                       std::string_view what) {
  std::map<std::string, std::string> out;
  const YamlNode* node = parent.Find(key);
  if (node == nullptr || node->IsNull()) {
    return out;
  }
  if (!node->IsMap()) {
    return InvalidArgumentError(std::string(what) + " must be a map, not a " +
                                std::string(KindName(node->kind)));
  }
  for (const auto& [name, value] : node->members) {
    ASSIGN_OR_RETURN(out[name], ScalarText(value, std::string(what) + "." + name));
  }
  return out;
}

StatusOr<SecretProviderClass> ParseSecretProviderClass(const YamlNode& doc) {
  ASSIGN_OR_RETURN(std::string api_version, MemberText(doc, "apiVersion", "apiVersion"));
  if (api_version != "secrets-store.csi.x-k8s.io/v1" &&
      api_version != "secrets-store.csi.x-k8s.io/v1alpha1") {
    return InvalidArgumentError("SecretProviderClass has apiVersion " + QuoteForError(api_version) +
                                ", want secrets-store.csi.x-k8s.io/v1 (or v1alpha1)");
  }
  SecretProviderClass spc;
  const YamlNode* metadata = doc.Find("metadata");
  if (metadata == nullptr || !metadata->IsMap()) {
    return InvalidArgumentError("SecretProviderClass has no metadata map");
  }
  ASSIGN_OR_RETURN(spc.name, MemberText(*metadata, "name", "metadata.name"));
  if (!IsDnsSubdomain(spc.name)) {
    return InvalidArgumentError("metadata.name " + QuoteForError(spc.name) +
                                " is not a Kubernetes object name");
  }
  ASSIGN_OR_RETURN(spc.namespace_name, MemberText(*metadata, "namespace", "metadata.namespace"));
  if (!spc.namespace_name.empty() &&
      (spc.namespace_name.size() > 63 || !IsDnsSubdomain(spc.namespace_name) ||
       spc.namespace_name.find('.') != std::string::npos)) {
    return InvalidArgumentError("metadata.namespace " + QuoteForError(spc.namespace_name) +
                                " is not a Kubernetes namespace name");
  }
  const std::string prefix = "SecretProviderClass " + QuoteForError(spc.name) + ": ";
  const YamlNode* spec = doc.Find("spec");
  if (spec == nullptr || !spec->IsMap()) {
    return InvalidArgumentError(prefix + "has no spec map");
  }
  auto provider = MemberText(*spec, "provider", "spec.provider");
  if (!provider.ok()) {
    return InvalidArgumentError(prefix + std::string(provider.status().message()));
  }
  spc.provider = Trimmed(*provider);
  // The driver's rule for provider names (they become socket file names).
  if (!IsToken(spc.provider, 1, 30, "_-")) {
    return InvalidArgumentError(prefix + "spec.provider " + QuoteForError(spc.provider) +
                                " must be 1-30 characters of [a-zA-Z0-9_-]");
  }
  auto parameters = StringMap(*spec, "parameters", "spec.parameters");
  if (!parameters.ok()) {
    return InvalidArgumentError(prefix + std::string(parameters.status().message()));
  }
  spc.parameters = std::move(parameters).value();
  return spc;
}

}  // namespace

StatusOr<std::vector<SecretProviderClass>> ParseSecretProviderClasses(std::string_view yaml) {
  ASSIGN_OR_RETURN(std::vector<YamlNode> docs, ParseYamlDocuments(yaml, YamlLimits()));
  std::vector<SecretProviderClass> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; i < docs.size(); ++i) {
    const YamlNode& doc = docs[i];
    if (doc.IsNull()) {
      continue;
    }
    if (!doc.IsMap()) {
      return InvalidArgumentError(DocumentPrefix(i, doc) + "must be a map, not a " +
                                  std::string(KindName(doc.kind)));
    }
    auto kind = MemberText(doc, "kind", "kind");
    if (!kind.ok()) {
      return InvalidArgumentError(DocumentPrefix(i, doc) + std::string(kind.status().message()));
    }
    if (*kind != "SecretProviderClass") {
      continue;
    }
    auto spc = ParseSecretProviderClass(doc);
    if (!spc.ok()) {
      return InvalidArgumentError(DocumentPrefix(i, doc) + std::string(spc.status().message()));
    }
    if (!seen.emplace(spc->namespace_name, spc->name).second) {
      return InvalidArgumentError(DocumentPrefix(i, doc) + "a second SecretProviderClass named " +
                                  QuoteForError(spc->name));
    }
    out.push_back(std::move(spc).value());
  }
  if (out.empty()) {
    return InvalidArgumentError(
        "no SecretProviderClass (apiVersion secrets-store.csi.x-k8s.io/v1) in the file");
  }
  return out;
}

StatusOr<SecretProviderClass> SelectSecretProviderClass(std::vector<SecretProviderClass> classes,
                                                        std::string_view name) {
  if (name.empty()) {
    if (classes.size() == 1) {
      return std::move(classes.front());
    }
    return InvalidArgumentError("the file has " + std::to_string(classes.size()) +
                                " SecretProviderClasses; name the one to use (className)");
  }
  for (SecretProviderClass& spc : classes) {
    if (spc.name == name) {
      return std::move(spc);
    }
  }
  return NotFoundError("no SecretProviderClass named " + QuoteForError(name) + " in the file");
}

StatusOr<std::map<std::string, std::string>> ParseKubernetesSecret(std::string_view yaml) {
  ASSIGN_OR_RETURN(std::vector<YamlNode> docs, ParseYamlDocuments(yaml, YamlLimits()));
  const YamlNode* secret = nullptr;
  for (const YamlNode& doc : docs) {
    if (doc.IsNull()) {
      continue;
    }
    if (secret != nullptr) {
      return InvalidArgumentError("a Secret file must hold one document");
    }
    secret = &doc;
  }
  if (secret == nullptr || !secret->IsMap()) {
    return InvalidArgumentError("not a Secret manifest (want a map with kind: Secret)");
  }
  ASSIGN_OR_RETURN(std::string kind, MemberText(*secret, "kind", "kind"));
  ASSIGN_OR_RETURN(std::string api_version, MemberText(*secret, "apiVersion", "apiVersion"));
  if (kind != "Secret" || api_version != "v1") {
    return InvalidArgumentError("not a Secret manifest: kind " + QuoteForError(kind) +
                                ", apiVersion " + QuoteForError(api_version) +
                                " (want Secret, v1)");
  }
  ASSIGN_OR_RETURN(auto data, StringMap(*secret, "data", "data"));
  ASSIGN_OR_RETURN(auto string_data, StringMap(*secret, "stringData", "stringData"));
  std::map<std::string, std::string> out;
  auto check_key = [](const std::string& key, std::string_view field) {
    if (!IsToken(key, 1, 253, "-._")) {
      return InvalidArgumentError(std::string(field) + " key " + QuoteForError(key) +
                                  " is not a valid Secret key ([-._a-zA-Z0-9]{1,253})");
    }
    return OkStatus();
  };
  for (auto& [key, value] : data) {
    RETURN_IF_ERROR(check_key(key, "data"));
    std::optional<std::string> decoded = Base64Decode(TrimWhitespace(value));
    if (!decoded) {
      return InvalidArgumentError("data." + key + " is not valid base64");
    }
    out[key] = std::move(*decoded);
  }
  for (auto& [key, value] : string_data) {
    RETURN_IF_ERROR(check_key(key, "stringData"));
    out[key] = std::move(value);
  }
  return out;
}

}  // namespace coffer::agent
