#include "agent/mount_builder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <thread>
#include <utility>

#include "agent/spc_yaml.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "common/unique_fd.h"
#include "crypto/asym_key.h"
#include "crypto/certificate.h"
#include "crypto/primitives.h"

#include <sys/stat.h>

namespace coffer::agent {
namespace {

std::string Describe(const AzureObject& object) {
  return "objectType:" + std::string(object.TypeName()) + ", objectName:" + object.name +
         ", objectVersion:" + object.version;
}

Status Named(const AzureObject& object, const Status& s) {
  return Status(s.code(), "failed to get " + Describe(object) + ": " + std::string(s.message()),
                std::string(s.reason()));
}

StatusOr<std::string> Decode(const AzureObject& object, std::string value) {
  switch (object.encoding) {
    case ObjectEncoding::kUtf8:
      return value;
    case ObjectEncoding::kHex: {
      auto bytes = HexDecode(TrimWhitespace(value));
      crypto::SecureWipe(value);
      if (!bytes.has_value()) {
        return InvalidArgumentError("objectEncoding is hex but the value is not hex");
      }
      return *std::move(bytes);
    }
    case ObjectEncoding::kBase64: {
      auto bytes = Base64Decode(TrimWhitespace(value));
      crypto::SecureWipe(value);
      if (!bytes.has_value()) {
        return InvalidArgumentError("objectEncoding is base64 but the value is not base64");
      }
      return *std::move(bytes);
    }
  }
  return InvalidArgumentError("unknown objectEncoding");
}

// PublicKeyPem converts what the vault sent to PEM. As the Azure provider:
// RSA and RSA-HSM from n and e, EC and EC-HSM on P-256, P-384 and P-521 from
// x and y; anything else is refused, so that a SecretProviderClass that
// mounts here mounts on Azure too.
StatusOr<std::string> PublicKeyPem(const JsonWebKey& jwk) {
  Json j;
  if (jwk.kty == "RSA" || jwk.kty == "RSA-HSM") {
    j = {{"kty", "RSA"}, {"n", jwk.n}, {"e", jwk.e}};
  } else if (jwk.kty == "EC" || jwk.kty == "EC-HSM") {
    if (jwk.crv != "P-256" && jwk.crv != "P-384" && jwk.crv != "P-521") {
      return InvalidArgumentError("unsupported curve " + QuoteForError(jwk.crv) +
                                  ": a key is written for P-256, P-384 or P-521");
    }
    j = {{"kty", "EC"}, {"crv", jwk.crv}, {"x", jwk.x}, {"y", jwk.y}};
  } else {
    return InvalidArgumentError("unsupported key type " + QuoteForError(jwk.kty) +
                                ": a key is written for RSA or EC");
  }
  return crypto::PublicKeyPemFromJwk(j);
}

// The content types of a certificate's secret (docs/certificates.md).
constexpr std::string_view kPkcs12 = "application/x-pkcs12";
constexpr std::string_view kPemFile = "application/x-pem-file";

// CertificateSecretContent is what the Azure provider writes for a
// certificate's secret: PEM as stored; a PFX as it is for objectFormat pfx,
// else opened with the empty password and written as PEM, the key (PKCS#8
// "PRIVATE KEY") first and then the certificates from the leaf to the root
// (crypto::ReadPkcs12 orders them as the provider's --construct-pem-chain
// does). Any other content type is refused, as the provider refuses it.
// SECURITY: the PFX, as text and decoded, is wiped once converted; errors
// are the crypto layer's, which never carry key material.
StatusOr<std::string> CertificateSecretContent(const AzureObject& object,
                                               const SecretProperties& properties,
                                               std::string value) {
  const std::string& content_type = properties.content_type;
  if (content_type == kPemFile || (content_type == kPkcs12 && object.format == "pfx")) {
    return value;
  }
  if (content_type != kPkcs12) {
    crypto::SecureWipe(value);
    return InvalidArgumentError("failed to get certificate. unknown content type " +
                                QuoteForError(content_type));
  }
  std::optional<std::string> pfx = Base64Decode(TrimWhitespace(value));
  crypto::SecureWipe(value);
  if (!pfx.has_value()) {
    return InvalidArgumentError("the certificate's secret is not the base64 of a PFX");
  }
  StatusOr<crypto::KeyAndChain> bundle = crypto::ReadPkcs12(*pfx, "");
  crypto::SecureWipe(*pfx);
  if (!bundle.ok()) {
    return Status(bundle.status().code(), "the certificate's PFX cannot be read: " +
                                              std::string(bundle.status().message()));
  }
  ASSIGN_OR_RETURN(crypto::SecureBytes pem, crypto::WritePem(*bundle->key, bundle->chain_der));
  return std::string(pem.view());
}

// SplitCertificatesAndKey splits PEM text as the Azure provider splits a
// certificate's secret for --write-cert-and-key-in-separate-files: the
// CERTIFICATE blocks, and every other block, each as written with a final
// newline. What is not PEM (a PFX) gives two empty strings.
std::pair<std::string, std::string> SplitCertificatesAndKey(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  std::string certificates;
  std::string others;
  // SECURITY: sized once, so that no reallocation leaves a copy of the key
  // behind in freed memory.
  others.reserve(text.size() + 1);
  for (size_t pos = text.find(kBegin); pos != std::string_view::npos;
       pos = text.find(kBegin, pos)) {
    size_t label_start = pos + kBegin.size();
    size_t label_end = text.find("-----", label_start);
    size_t line_end = text.find('\n', label_start);
    if (label_end == std::string_view::npos || label_end > line_end) {
      break;
    }
    std::string_view label = text.substr(label_start, label_end - label_start);
    std::string end_line = "-----END " + std::string(label) + "-----";
    size_t end = text.find(end_line, line_end);
    if (end == std::string_view::npos) {
      break;
    }
    end += end_line.size();
    std::string& into = label == "CERTIFICATE" ? certificates : others;
    into.append(text.substr(pos, end - pos));
    into += '\n';
    pos = end;
  }
  return {std::move(certificates), std::move(others)};
}

ObjectResult Result(std::string id, std::string version, std::string file, Status status) {
  ObjectResult r;
  r.id = std::move(id);
  r.version = std::move(version);
  r.file = std::move(file);
  r.status = std::move(status);
  return r;
}

struct Rendered {
  Status status;
  std::vector<PayloadFile> files;
  std::vector<ObjectResult> objects;
};

class Renderer {
 public:
  Renderer(const std::string& vault_url, const MountIdentity& identity, ReadRound& round,
           const BuildOptions& options)
      : vault_url_(vault_url), identity_(identity), round_(round), options_(options) {}

  Rendered Render(const AzureObject& object) {
    Rendered out;
    auto render = [&](const std::string& version, const std::string& file, const std::string& id) {
      switch (object.type) {
        case ObjectType::kSecret:
          RenderSecret(object, version, file, id, out);
          return;
        case ObjectType::kKey:
          RenderKey(object, version, file, id, out);
          return;
        case ObjectType::kCert:
          RenderCertificate(object, version, file, id, out);
          return;
      }
    };
    if (object.version_history <= 1) {
      render(object.version, object.FileName(), object.Id());
    } else {
      RenderAllVersions(object, render, out);
    }
    if (object.optional) {
      Optional(object, out);
    }
    return out;
  }

 private:
  void RenderAllVersions(
      const AzureObject& object,
      const std::function<void(const std::string&, const std::string&, const std::string&)>& render,
      Rendered& out) {
    switch (object.type) {
      case ObjectType::kSecret:
        RenderHistory(object, round_.ListVersions(vault_url_, identity_, object.name), render, out);
        break;
      case ObjectType::kKey:
        RenderHistory(object, round_.ListKeyVersions(vault_url_, identity_, object.name), render,
                      out);
        break;
      case ObjectType::kCert:
        RenderHistory(object, round_.ListCertificateVersions(vault_url_, identity_, object.name),
                      render, out);
        break;
    }
  }

  // Optional makes an optional object that is missing, disabled or
  // forbidden one result that says so, with no file or with the file's
  // content read back from where the mount is now.
  void Optional(const AzureObject& object, Rendered& out) {
    for (ObjectResult& o : out.objects) {
      o.optional = true;
    }
    if (out.status.ok() || !IsUnavailable(out.status)) {
      return;
    }
    for (PayloadFile& f : out.files) {
      crypto::SecureWipe(f.contents);
    }
    out.files.clear();
    ObjectResult result = Result(object.Id(), "", object.FileName(), out.status);
    result.optional = true;
    result.skipped = true;
    out.status = OkStatus();
    out.objects.clear();
    if (object.keep_last_known && !options_.previous_dir.empty()) {
      std::vector<std::string> names{object.FileName()};
      if (object.type == ObjectType::kSecret && options_.write_cert_and_key_in_separate_files) {
        names.push_back(object.FileName() + ".crt");
        names.push_back(object.FileName() + ".key");
      }
      if (object.write_tags) {
        names.push_back(object.FileName() + ".tags.json");
      }
      for (const std::string& name : names) {
        std::optional<std::string> contents = ReadPrevious(name);
        if (contents.has_value()) {
          out.files.push_back({name, *std::move(contents), Mode(object)});
          result.kept = true;
        }
      }
    }
    out.objects.push_back(std::move(result));
  }

  // ReadPrevious reads a file of the mount as it is now; nullopt when it is
  // not there, not a regular file, or larger than any object can be.
  // SECURITY: the agent runs as root and the mount's files may belong to
  // its consumer, who could plant links in them: no link is followed but
  // the atomic-writer layout's own "..data" (read with readlinkat, one
  // name starting with ".."); every other component is opened with
  // O_NOFOLLOW below the mount, so nothing outside it is ever read.
  std::optional<std::string> ReadPrevious(const std::string& name) const {
    if (!ValidatePayloadPath(name).ok()) {
      return std::nullopt;
    }
    UniqueFd dir(open(options_.previous_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) {
      return std::nullopt;
    }
    char link[256];
    ssize_t n = readlinkat(dir.get(), "..data", link, sizeof(link));
    if (n > 0 && static_cast<size_t>(n) < sizeof(link)) {
      std::string target(link, static_cast<size_t>(n));
      if (target.find('/') != std::string::npos || target.rfind("..", 0) != 0 || target == "..") {
        return std::nullopt;
      }
      dir = UniqueFd(
          openat(dir.get(), target.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    std::vector<std::string_view> parts = Split(name, '/');
    for (size_t i = 0; dir.get() >= 0 && i + 1 < parts.size(); ++i) {
      dir = UniqueFd(openat(dir.get(), std::string(parts[i]).c_str(),
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (dir.get() < 0) {
      return std::nullopt;
    }
    // O_NONBLOCK: a FIFO planted there must not hold the refresh.
    UniqueFd file(openat(dir.get(), std::string(parts.back()).c_str(),
                         O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    constexpr off_t kMaxPrevious = 4 << 20;
    struct stat st;
    if (file.get() < 0 || fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > kMaxPrevious) {
      return std::nullopt;
    }
    std::string contents(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < contents.size()) {
      ssize_t r = read(file.get(), contents.data() + got, contents.size() - got);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) {
          continue;
        }
        crypto::SecureWipe(contents);
        return std::nullopt;
      }
      got += static_cast<size_t>(r);
    }
    return contents;
  }

  uint32_t Mode(const AzureObject& object) const {
    return object.file_permission.value_or(options_.default_mode);
  }

  // RenderSecret writes a secret's value, decoded as objectEncoding says.
  // A certificate's secret (the Azure provider tells one by its kid) is
  // CertificateSecretContent first, and with
  // write_cert_and_key_in_separate_files also <file>.crt and <file>.key.
  void RenderSecret(const AzureObject& object, const std::string& version, const std::string& file,
                    const std::string& id, Rendered& out) {
    StatusOr<KeyVaultSecret> secret = round_.GetSecret(vault_url_, identity_, object.name, version);
    if (!secret.ok()) {
      Fail(object, file, id, secret.status(), out);
      return;
    }
    const bool certificate = !secret->properties.key_id.empty();
    StatusOr<std::string> contents =
        certificate ? CertificateSecretContent(object, secret->properties, std::move(secret->value))
                    : StatusOr<std::string>(std::move(secret->value));
    if (contents.ok()) {
      contents = Decode(object, std::move(contents).value());
    }
    // Coffer's writeTags: the version's tags, as a JSON object, after its
    // other files.
    auto add_tags = [&] {
      if (!object.write_tags || !out.status.ok()) {
        return;
      }
      Json tags = Json::object();
      for (const auto& [k, v] : secret->properties.tags) {
        tags[k] = v;
      }
      Add(object, file + ".tags.json", id, secret->properties.version,
          secret->properties.expires_on, tags.dump() + "\n", out);
    };
    if (!contents.ok() || !certificate || !options_.write_cert_and_key_in_separate_files) {
      Add(object, file, id, secret->properties.version, secret->properties.expires_on,
          std::move(contents), out);
      add_tags();
      return;
    }
    auto [certificates, key] = SplitCertificatesAndKey(*contents);
    Add(object, file, id, secret->properties.version, secret->properties.expires_on,
        std::move(contents), out);
    Add(object, file + ".crt", id, secret->properties.version, secret->properties.expires_on,
        std::move(certificates), out);
    Add(object, file + ".key", id, secret->properties.version, secret->properties.expires_on,
        std::move(key), out);
    add_tags();
  }

  // RenderKey writes a key's public half as PEM "PUBLIC KEY"
  // (SubjectPublicKeyInfo), as the Azure provider does.
  void RenderKey(const AzureObject& object, const std::string& version, const std::string& file,
                 const std::string& id, Rendered& out) {
    StatusOr<KeyVaultKey> key = round_.GetKey(vault_url_, identity_, object.name, version);
    if (!key.ok()) {
      Fail(object, file, id, key.status(), out);
      return;
    }
    Add(object, file, id, key->properties.version, key->properties.expires_on,
        PublicKeyPem(key->key), out);
  }

  // RenderCertificate writes the certificate alone, as one PEM
  // "CERTIFICATE", as the Azure provider does: no key, no chain.
  void RenderCertificate(const AzureObject& object, const std::string& version,
                         const std::string& file, const std::string& id, Rendered& out) {
    StatusOr<KeyVaultCertificate> certificate =
        round_.GetCertificate(vault_url_, identity_, object.name, version);
    if (!certificate.ok()) {
      Fail(object, file, id, certificate.status(), out);
      return;
    }
    Add(object, file, id, certificate->properties.version, certificate->properties.expires_on,
        crypto::CertificatePem(certificate->cer), out);
  }

  // RenderHistory writes the newest objectVersionHistory enabled versions,
  // from the object's version (or the latest) back, as <file>/0, <file>/1,
  // ... with `render`, as the Azure provider does.
  template <typename Properties>
  void RenderHistory(
      const AzureObject& object, StatusOr<std::vector<Properties>> listed,
      const std::function<void(const std::string&, const std::string&, const std::string&)>& render,
      Rendered& out) {
    if (!listed.ok()) {
      Fail(object, object.FileName(), object.Id(), listed.status(), out);
      return;
    }
    std::vector<Properties> versions;
    for (Properties& p : *listed) {
      if (p.enabled) {
        versions.push_back(std::move(p));
      }
    }
    std::stable_sort(
        versions.begin(), versions.end(),
        [](const Properties& a, const Properties& b) { return a.created_on > b.created_on; });
    size_t start = 0;
    if (!object.version.empty() && object.version != "latest") {
      auto it = std::find_if(versions.begin(), versions.end(), [&](const Properties& p) {
        return EqualsIgnoreCase(p.version, object.version);
      });
      if (it == versions.end()) {
        Fail(object, object.FileName(), object.Id(),
             NotFoundError("version " + object.version + " is not among the enabled versions"),
             out);
        return;
      }
      start = static_cast<size_t>(it - versions.begin());
    }
    if (start >= versions.size()) {
      Fail(object, object.FileName(), object.Id(),
           NotFoundError("the object has no enabled version"), out);
      return;
    }
    size_t end = std::min(versions.size(), start + static_cast<size_t>(object.version_history));
    for (size_t i = start; i < end; ++i) {
      std::string index = std::to_string(i - start);
      render(versions[i].version, object.FileName() + "/" + index, object.Id() + "/" + index);
      if (!out.status.ok()) {
        return;
      }
    }
  }

  // Add writes one file of the object, or fails the object when its
  // contents could not be made.
  void Add(const AzureObject& object, const std::string& file, const std::string& id,
           const std::string& version, std::optional<int64_t> expires_on,
           StatusOr<std::string> contents, Rendered& out) {
    if (!contents.ok()) {
      Fail(object, file, id, contents.status(), out);
      return;
    }
    out.files.push_back({file, std::move(contents).value(), Mode(object)});
    ObjectResult result = Result(id, version, file, OkStatus());
    result.expires_on = expires_on;
    out.objects.push_back(std::move(result));
  }

  void Fail(const AzureObject& object, const std::string& file, const std::string& id,
            const Status& s, Rendered& out) {
    Status named = Named(object, s);
    out.objects.push_back(Result(id, "", file, named));
    if (out.status.ok()) {
      out.status = named;
    }
  }

  const std::string& vault_url_;
  const MountIdentity& identity_;
  ReadRound& round_;
  const BuildOptions& options_;
};

}  // namespace

std::string ExpiryWarning(int64_t expires_on, int64_t now, int64_t horizon_seconds) {
  const std::string when = FormatIsoTime(expires_on);
  if (expires_on <= now) {
    return "expired at " + when + " and is still mounted";
  }
  if (expires_on - now > horizon_seconds) {
    return "";
  }
  int64_t left = expires_on - now;
  // Rounded to the nearest unit: 2 days and 23 hours read as 3 days.
  std::string in = left >= 2 * 86400 ? std::to_string((left + 43200) / 86400) + " days"
                   : left >= 7200
                       ? std::to_string((left + 1800) / 3600) + " hours"
                       : std::to_string(std::max<int64_t>((left + 30) / 60, 1)) + " minutes";
  return "expires in " + in + " (" + when + ")";
}

std::vector<std::string> ExpiryWarnings(const std::vector<ObjectResult>& objects, int64_t now,
                                        int64_t horizon_seconds) {
  std::vector<std::string> out;
  std::string last_id;
  for (const ObjectResult& o : objects) {
    if (!o.expires_on.has_value() || o.id == last_id) {
      continue;
    }
    std::string warning = ExpiryWarning(*o.expires_on, now, horizon_seconds);
    if (!warning.empty()) {
      out.push_back(o.id + " (version " + o.version + ") " + warning);
      last_id = o.id;
    }
  }
  return out;
}

std::vector<AgentMetrics::ObjectGauge> GaugesOf(const std::vector<ObjectResult>& objects) {
  std::vector<AgentMetrics::ObjectGauge> out;
  for (const ObjectResult& o : objects) {
    AgentMetrics::ObjectGauge g;
    g.file = o.file;
    // ids are "<type>/<name>[/<index>]"
    size_t slash = o.id.find('/');
    g.object_type = o.id.substr(0, slash);
    if (slash != std::string::npos) {
      g.object_name = o.id.substr(slash + 1, o.id.find('/', slash + 1) - slash - 1);
    }
    g.version = o.version;
    g.expires_on = o.expires_on;
    g.disabled = IsDisabled(o.status);
    g.optional = o.optional;
    if (o.skipped) {
      g.unavailable = ErrorType(o.status);
    }
    out.push_back(std::move(g));
  }
  return out;
}

bool IsDisabled(const Status& status) {
  // Key Vault's words for a read of a disabled version ("Operation get is
  // not allowed on a disabled secret."), under a 403 like any refusal.
  return status.code() == StatusCode::kPermissionDenied &&
         status.message().find("on a disabled ") != std::string_view::npos;
}

bool IsUnavailable(const Status& status) {
  return status.code() == StatusCode::kNotFound || status.code() == StatusCode::kPermissionDenied;
}

void ParallelFor(size_t n, size_t max_threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) {
      fn(i);
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(max_threads, n); ++t) {
    pool.emplace_back(work);
  }
  work();
  for (std::thread& t : pool) {
    t.join();
  }
}

std::string VaultUrlFor(std::string_view keyvault_name, std::string_view vault_dns_suffix) {
  return "https://" + AsciiLower(keyvault_name) + "." + std::string(vault_dns_suffix);
}

namespace {

// Expand replaces each objectSelector entry of `params` with a secret entry
// per enabled secret it matches (in name order, each named by the entry's
// template), read from the round's listing of the vault. The selections of
// a mount together may match at most params.selector_limit secrets.
// Selected secrets are optional: one that vanished since the listing, or
// that the identity may list but not read, is left out.
StatusOr<std::vector<AzureObject>> Expand(const AzureMountParameters& params,
                                          const MountIdentity& identity, ReadRound& round,
                                          const std::string& vault_url) {
  std::vector<AzureObject> out;
  size_t selected = 0;
  std::optional<StatusOr<std::vector<SecretProperties>>> listed;
  for (const AzureObject& object : params.objects) {
    if (!object.selector.has_value()) {
      out.push_back(object);
      continue;
    }
    if (!listed.has_value()) {
      listed = round.ListSecrets(vault_url, identity);
    }
    if (!listed->ok()) {
      const Status& s = listed->status();
      return Status(s.code(),
                    "failed to list the secrets for objectSelector " + object.Id() + ": " +
                        std::string(s.message()),
                    std::string(s.reason()));
    }
    std::vector<const SecretProperties*> matches;
    for (const SecretProperties& p : **listed) {
      if (p.enabled && object.selector->Matches(p.name, p.tags)) {
        matches.push_back(&p);
      }
    }
    std::sort(
        matches.begin(), matches.end(),
        [](const SecretProperties* a, const SecretProperties* b) { return a->name < b->name; });
    selected += matches.size();
    if (selected > static_cast<size_t>(params.selector_limit)) {
      return FailedPreconditionError(
          "objectSelector " + object.Id() + " brings the secrets selected for this mount to " +
          std::to_string(selected) + ", more than objectSelectorLimit (" +
          std::to_string(params.selector_limit) +
          "): narrow the selection or raise objectSelectorLimit");
    }
    for (const SecretProperties* p : matches) {
      AzureObject one = object;
      one.selector.reset();
      one.name = p->name;
      one.alias = object.selector->FileNameFor(p->name);
      one.optional = true;
      if (Status valid = ValidatePayloadPath(one.alias); !valid.ok()) {
        return InvalidArgumentError("objectSelector " + object.Id() + ": secret " + p->name + ": " +
                                    std::string(valid.message()));
      }
      out.push_back(std::move(one));
    }
  }
  if (selected > 0) {
    if (Status conflicts = CheckFileNameConflicts(out); !conflicts.ok()) {
      return InvalidArgumentError("objectSelector: " + std::string(conflicts.message()));
    }
  }
  return out;
}

}  // namespace

BuiltMount BuildMount(const AzureMountParameters& params, const MountIdentity& identity,
                      ReadRound& round, const BuildOptions& options) {
  std::string vault_url = VaultUrlFor(params.keyvault_name, options.vault_dns_suffix);
  StatusOr<std::vector<AzureObject>> objects = Expand(params, identity, round, vault_url);
  if (!objects.ok()) {
    BuiltMount failed;
    failed.status = objects.status();
    return failed;
  }
  Renderer renderer(vault_url, identity, round, options);
  std::vector<Rendered> rendered(objects->size());
  ParallelFor(objects->size(), static_cast<size_t>(std::max(options.max_parallel, 1)),
              [&](size_t i) { rendered[i] = renderer.Render((*objects)[i]); });
  BuiltMount out;
  for (Rendered& r : rendered) {
    if (out.status.ok() && !r.status.ok()) {
      out.status = r.status;
    }
    for (PayloadFile& f : r.files) {
      out.files.push_back(std::move(f));
    }
    for (ObjectResult& o : r.objects) {
      out.objects.push_back(std::move(o));
    }
  }
  if (out.status.ok()) {
    for (const PayloadFile& f : out.files) {
      Status valid = ValidatePayloadPath(f.path);
      if (!valid.ok()) {
        out.status = valid;
        break;
      }
    }
  }
  if (!out.status.ok()) {
    out.files.clear();  // all or nothing
  }
  return out;
}

}  // namespace coffer::agent
