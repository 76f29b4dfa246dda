#include "client/keyvault_reference.h"

#include <vector>

#include "common/strings.h"
#include "http/url.h"

namespace coffer::client {

namespace {

constexpr std::string_view kPrefix = "@Microsoft.KeyVault(";
constexpr size_t kMaxLength = 4096;

Status Bad(const std::string& why) {
  return InvalidArgumentError("Key Vault reference: " + why, "InvalidReference");
}

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Key Vault's names: vaults 3-24 letters, digits and '-', starting with a
// letter; secrets 1-127 letters, digits and '-'; versions letters and
// digits (Key Vault's are 32 hex digits).
bool ValidVaultName(std::string_view v) {
  if (v.size() < 3 || v.size() > 24 ||
      !((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= 'A' && v[0] <= 'Z'))) {
    return false;
  }
  for (char c : v) {
    if (!IsAlnum(c) && c != '-') {
      return false;
    }
  }
  return v.back() != '-';
}

bool ValidSecretName(std::string_view v) {
  if (v.empty() || v.size() > 127) {
    return false;
  }
  for (char c : v) {
    if (!IsAlnum(c) && c != '-') {
      return false;
    }
  }
  return true;
}

bool ValidVersion(std::string_view v) {
  if (v.empty() || v.size() > 64) {
    return false;
  }
  for (char c : v) {
    if (!IsAlnum(c)) {
      return false;
    }
  }
  return true;
}

Status ParseSecretUri(std::string_view uri, KeyVaultReference& out) {
  // SECURITY: read by the parser the HTTP client uses (http/url.h), so the
  // vault this reference names is the host a request goes to.
  StatusOr<http::Url> url = http::ParseUrl(uri);
  if (!url.ok() || !url->tls()) {
    return Bad("SecretUri must be an https:// URL without user information or a fragment.");
  }
  if (url->path_and_query.find('?') != std::string::npos) {
    return Bad("SecretUri must not hold a query.");
  }
  size_t dot = url->host.find('.');
  if (url->ipv6 || dot == std::string::npos) {
    return Bad("SecretUri's host must be <vault>.<suffix>.");
  }
  // The name as written (status output shows it): the first label of the
  // authority, which the parser only lower-cased.
  out.vault_name = std::string(uri.substr(uri.find("://") + 3, dot));
  out.vault_url = url->Origin();
  std::string_view path = std::string_view(url->path_and_query).substr(1);
  if (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);  // a trailing slash on a versionless URI still means the latest
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t next = path.find('/', start);
    parts.push_back(path.substr(start, next == std::string_view::npos ? next : next - start));
    if (next == std::string_view::npos) {
      break;
    }
    start = next + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || !EqualsIgnoreCase(parts[0], "secrets")) {
    return Bad("SecretUri must look like https://<vault>.<suffix>/secrets/<name>[/<version>].");
  }
  out.secret_name = std::string(parts[1]);
  out.version = parts.size() == 3 ? std::string(parts[2]) : "";
  return OkStatus();
}

}  // namespace

StatusOr<std::optional<KeyVaultReference>> ParseKeyVaultReference(std::string_view value) {
  std::string_view v = TrimWhitespace(value);
  if (v.size() < kPrefix.size() || !EqualsIgnoreCase(v.substr(0, kPrefix.size()), kPrefix)) {
    return std::optional<KeyVaultReference>();
  }
  if (v.size() > kMaxLength) {
    return Bad("longer than 4,096 characters.");
  }
  for (char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Bad("control characters are not allowed.");
    }
  }
  if (v.back() != ')') {
    return Bad("it must end with ')'.");
  }
  std::string_view inner = v.substr(kPrefix.size(), v.size() - kPrefix.size() - 1);
  if (inner.find_first_of("()") != std::string_view::npos) {
    return Bad("parentheses are not allowed inside the reference.");
  }
  KeyVaultReference ref;
  bool have_uri = false;
  bool have_vault = false;
  bool have_name = false;
  bool have_version = false;
  size_t start = 0;
  while (start <= inner.size()) {
    size_t semi = inner.find(';', start);
    std::string_view item =
        TrimWhitespace(inner.substr(start, semi == std::string_view::npos ? semi : semi - start));
    start = semi == std::string_view::npos ? inner.size() + 1 : semi + 1;
    if (item.empty()) {
      continue;  // "a=b;" has an empty last item
    }
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Bad("'" + std::string(item.substr(0, 64)) + "' is not Name=Value.");
    }
    std::string_view key = TrimWhitespace(item.substr(0, eq));
    std::string_view val = TrimWhitespace(item.substr(eq + 1));
    auto once = [&](bool& seen) -> Status {
      if (seen) {
        return Bad(std::string(key) + " is given twice.");
      }
      seen = true;
      return val.empty() ? Bad(std::string(key) + " is empty.") : OkStatus();
    };
    if (EqualsIgnoreCase(key, "SecretUri")) {
      RETURN_IF_ERROR(once(have_uri));
      RETURN_IF_ERROR(ParseSecretUri(val, ref));
    } else if (EqualsIgnoreCase(key, "VaultName")) {
      RETURN_IF_ERROR(once(have_vault));
      ref.vault_name = std::string(val);
    } else if (EqualsIgnoreCase(key, "SecretName")) {
      RETURN_IF_ERROR(once(have_name));
      ref.secret_name = std::string(val);
    } else if (EqualsIgnoreCase(key, "SecretVersion")) {
      RETURN_IF_ERROR(once(have_version));
      ref.version = std::string(val);
    } else {
      return Bad("unknown parameter '" + std::string(key.substr(0, 64)) +
                 "'; use SecretUri, or VaultName, SecretName and SecretVersion.");
    }
  }
  if (have_uri && (have_vault || have_name || have_version)) {
    return Bad("give either SecretUri or VaultName and SecretName, not both.");
  }
  if (!have_uri && !(have_vault && have_name)) {
    return Bad("give SecretUri, or VaultName and SecretName.");
  }
  if (!ValidVaultName(ref.vault_name)) {
    return Bad("'" + ref.vault_name.substr(0, 64) +
               "' is not a vault name (3-24 letters, digits and '-', starting with a letter).");
  }
  if (!ValidSecretName(ref.secret_name)) {
    return Bad("'" + ref.secret_name.substr(0, 64) +
               "' is not a secret name (1-127 letters, digits and '-').");
  }
  if (!ref.version.empty() && !ValidVersion(ref.version)) {
    return Bad("'" + ref.version.substr(0, 64) + "' is not a secret version.");
  }
  return std::optional<KeyVaultReference>(std::move(ref));
}

}  // namespace coffer::client
