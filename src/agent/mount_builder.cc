#include "agent/mount_builder.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <utility>

#include "agent/spc_yaml.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/asym_key.h"

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
      if (!bytes.has_value()) {
        return InvalidArgumentError("objectEncoding is hex but the value is not hex");
      }
      return *std::move(bytes);
    }
    case ObjectEncoding::kBase64: {
      auto bytes = Base64Decode(TrimWhitespace(value));
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

struct Rendered {
  Status status;
  std::vector<PayloadFile> files;
  std::vector<ObjectResult> objects;
};

class Renderer {
 public:
  Renderer(const std::string& vault_url, const MountIdentity& identity, ReadRound& round,
           uint32_t default_mode)
      : vault_url_(vault_url), identity_(identity), round_(round), default_mode_(default_mode) {}

  Rendered Render(const AzureObject& object) {
    Rendered out;
    if (object.type == ObjectType::kCert) {
      out.status = UnimplementedError(
          "objectType cert is not supported yet (object " + object.name +
          "): Coffer serves secrets and keys; certificates follow with their API");
      out.objects.push_back({object.Id(), "", object.FileName(), out.status});
      return out;
    }
    const bool key = object.type == ObjectType::kKey;
    auto render = [&](const std::string& version, const std::string& file, const std::string& id) {
      if (key) {
        RenderKey(object, version, file, id, out);
      } else {
        RenderOne(object, version, file, id, out);
      }
    };
    if (object.version_history <= 1) {
      render(object.version, object.FileName(), object.Id());
    } else if (key) {
      RenderHistory(object, round_.ListKeyVersions(vault_url_, identity_, object.name), render,
                    out);
    } else {
      RenderHistory(object, round_.ListVersions(vault_url_, identity_, object.name), render, out);
    }
    return out;
  }

 private:
  uint32_t Mode(const AzureObject& object) const {
    return object.file_permission.value_or(default_mode_);
  }

  void RenderOne(const AzureObject& object, const std::string& version, const std::string& file,
                 const std::string& id, Rendered& out) {
    StatusOr<KeyVaultSecret> secret = round_.GetSecret(vault_url_, identity_, object.name, version);
    if (!secret.ok()) {
      Fail(object, file, id, secret.status(), out);
      return;
    }
    StatusOr<std::string> contents = Decode(object, std::move(secret->value));
    if (!contents.ok()) {
      Fail(object, file, id, contents.status(), out);
      return;
    }
    out.files.push_back({file, *std::move(contents), Mode(object)});
    out.objects.push_back({id, secret->properties.version, file, OkStatus()});
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
    StatusOr<std::string> pem = PublicKeyPem(key->key);
    if (!pem.ok()) {
      Fail(object, file, id, pem.status(), out);
      return;
    }
    out.files.push_back({file, *std::move(pem), Mode(object)});
    out.objects.push_back({id, key->properties.version, file, OkStatus()});
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

  void Fail(const AzureObject& object, const std::string& file, const std::string& id,
            const Status& s, Rendered& out) {
    Status named = Named(object, s);
    out.objects.push_back({id, "", file, named});
    if (out.status.ok()) {
      out.status = named;
    }
  }

  const std::string& vault_url_;
  const MountIdentity& identity_;
  ReadRound& round_;
  const uint32_t default_mode_;
};

}  // namespace

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

BuiltMount BuildMount(const AzureMountParameters& params, const MountIdentity& identity,
                      ReadRound& round, const BuildOptions& options) {
  std::string vault_url = VaultUrlFor(params.keyvault_name, options.vault_dns_suffix);
  Renderer renderer(vault_url, identity, round, options.default_mode);
  std::vector<Rendered> rendered(params.objects.size());
  ParallelFor(params.objects.size(), static_cast<size_t>(std::max(options.max_parallel, 1)),
              [&](size_t i) { rendered[i] = renderer.Render(params.objects[i]); });
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
