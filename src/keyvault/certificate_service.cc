#include "keyvault/certificate_service.h"

#include <algorithm>
#include <ctime>

#include "common/encoding.h"
#include "common/log.h"
#include "common/strings.h"
#include "crypto/certificate.h"
#include "crypto/primitives.h"
#include "keyvault/api_util.h"
#include "keyvault/names.h"

namespace coffer::keyvault {
namespace {

constexpr storage::ObjectKind kKind = storage::ObjectKind::kCertificate;
constexpr char kPkcs12[] = "application/x-pkcs12";
constexpr char kPem[] = "application/x-pem-file";
// An imported value's most bytes, as text: PFX and PEM bundles are at most
// 1 MiB (crypto/certificate.h), base64 adds a third.
constexpr size_t kMaxImportChars = 1400 * 1024;
constexpr size_t kMaxPasswordChars = 1024;

// `when` plus `months` calendar months, in UTC.
int64_t AddMonths(int64_t when, int months) {
  time_t t = static_cast<time_t>(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  tm.tm_mon += months;
  return static_cast<int64_t>(timegm(&tm));
}

std::vector<std::string> KeyOpsFor(const crypto::AsymKey& key) {
  if (key.type() == crypto::AsymKeyType::kRsa) {
    return {"sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"};
  }
  return {"sign", "verify"};
}

Json OperationJson(const CertificateOperation& op) {
  return {{"issuer", op.issuer},
          {"csr", Base64Encode(op.csr)},
          {"request_id", op.request_id},
          {"status", op.status},
          {"status_details", op.status_details}};
}

}  // namespace

// The certificate record's key_json: {"cer": base64 DER, "x5t": base64url,
// "policy": the policy it was made under, "operation": how it was made
// (absent for an import)}.
struct CertificateService::Stored {
  std::string cer;
  std::string x5t;
  std::optional<Json> policy;
  std::optional<Json> operation;

  static StatusOr<Stored> Read(const std::string& key_json) {
    auto json = ParseJson(key_json, 12);
    if (!json || !json->is_object()) {
      return DataLossError("a stored certificate version does not parse");
    }
    Stored s;
    auto cer = Base64Decode(json->value("cer", std::string()));
    auto x5t = Base64UrlDecode(json->value("x5t", std::string()));
    if (!cer || !x5t) {
      return DataLossError("a stored certificate version is corrupt");
    }
    s.cer = std::move(*cer);
    s.x5t = std::move(*x5t);
    if (auto it = json->find("policy"); it != json->end() && it->is_object()) {
      s.policy = *it;
    }
    if (auto it = json->find("operation"); it != json->end() && it->is_object()) {
      s.operation = *it;
    }
    return s;
  }
};

CertificateService::CertificateService(storage::Store& store, const Envelope& envelope,
                                       const Clock& clock, SecretService& secrets, KeyService& keys,
                                       CertificateIssuers& issuers)
    : store_(store),
      envelope_(envelope),
      clock_(clock),
      secrets_(secrets),
      keys_(keys),
      issuers_(issuers) {}

// The operation document (VaultDocumentKey "certificate-operation/<name>"):
// {"name", "issuer", "csr": base64 DER, "status": "inProgress", "merging"
// (a merge has claimed it) or "cancelled", "status_details",
// "cancellation_requested", "request_id", "version": the id the merged
// version gets, "key": base64 of the new private key sealed for that
// version, "policy", "tags", "enabled"}.
struct CertificateService::Pending {
  CertificateOperation op;
  std::string version;
  std::string sealed_key;
  Json policy;
  std::string tags_json = "{}";
  bool enabled = true;
  int64_t created = 0;

  static std::string Key(const OpenVault& vault, const std::string& name) {
    return VaultDocumentKey(vault.record, "certificate-operation/" + AsciiLower(name));
  }

  static StatusOr<std::optional<Pending>> Read(const std::optional<std::string>& doc) {
    if (!doc || doc->empty()) {
      return std::optional<Pending>();
    }
    auto json = ParseJson(*doc, 12);
    Status corrupt = DataLossError("a certificate's pending operation is corrupt");
    if (!json || !json->is_object()) {
      return corrupt;
    }
    Pending p;
    try {
      p.op.name = json->at("name").get<std::string>();
      p.op.issuer = json->at("issuer").get<std::string>();
      p.op.status = json->at("status").get<std::string>();
      p.op.status_details = json->value("status_details", std::string());
      p.op.cancellation_requested = json->value("cancellation_requested", false);
      p.op.request_id = json->at("request_id").get<std::string>();
      p.version = json->at("version").get<std::string>();
      p.policy = json->at("policy");
      p.tags_json = json->value("tags", std::string("{}"));
      p.enabled = json->value("enabled", true);
      p.created = json->value("created", int64_t{0});
      auto csr = Base64Decode(json->at("csr").get<std::string>());
      auto key = Base64Decode(json->at("key").get<std::string>());
      if (!csr || !key) {
        return corrupt;
      }
      p.op.csr = std::move(*csr);
      p.sealed_key = std::move(*key);
    } catch (const std::exception&) {
      return corrupt;
    }
    return std::optional<Pending>(std::move(p));
  }

  std::string Write() const {
    return ToJson(Json{{"name", op.name},
                       {"issuer", op.issuer},
                       {"csr", Base64Encode(op.csr)},
                       {"status", op.status},
                       {"status_details", op.status_details},
                       {"cancellation_requested", op.cancellation_requested},
                       {"request_id", op.request_id},
                       {"version", version},
                       {"key", Base64Encode(sealed_key)},
                       {"policy", policy},
                       {"tags", tags_json},
                       {"enabled", enabled},
                       {"created", created}});
  }

  // The operation as GET /pending shows it: a claimed one is still in
  // progress.
  CertificateOperation Shown() const {
    CertificateOperation shown = op;
    if (shown.status == "merging") {
      shown.status = "inProgress";
    }
    return shown;
  }
};

namespace {

// The error a store's UpdateMeta function returns to write nothing.
Status NoPendingOperation(const std::string& name) {
  return NotFoundError("Pending certificate not found: " + name, "PendingCertificateNotFound");
}

// A create or import while an operation is in progress, in Key Vault's words.
Status InProgressConflict() {
  return FailedPreconditionError(
      "A new key vault certificate can not be created or imported while a pending key vault "
      "certificate's status is inProgress. Merge, cancel or delete it (/pending) first.",
      "Conflict");
}

// The operation a version records (Stored::operation), as GET /pending
// shows it.
CertificateOperation RecordedOperation(const Json& o, const std::string& name) {
  CertificateOperation op;
  op.name = name;
  op.issuer = o.value("issuer", std::string("Self"));
  op.csr = Base64Decode(o.value("csr", std::string())).value_or("");
  op.request_id = o.value("request_id", std::string());
  op.status = o.value("status", std::string("completed"));
  op.status_details = o.value("status_details", std::string());
  return op;
}

// AAD name of a pending operation's sealed key: not a key's name, so that it
// never opens as a stored key version.
std::string PendingKeyName(const std::string& name) {
  return "pending-operation/" + AsciiLower(name);
}

}  // namespace

StatusOr<std::optional<CertificateService::Pending>> CertificateService::ReadPending(
    const OpenVault& vault, const std::string& name) {
  ASSIGN_OR_RETURN(auto doc, store_.GetMeta(Pending::Key(vault, name)));
  ASSIGN_OR_RETURN(std::optional<Pending> pending, Pending::Read(doc));
  if (pending && pending->op.status == "merging") {
    // A merge that wrote its version but stopped before dropping the
    // operation: the version tells.
    auto made = store_.GetObject(kKind, vault.record.name, name, pending->version, false);
    if (made.ok()) {
      RETURN_IF_ERROR(DropPending(vault, name, pending->op.request_id));
      return std::optional<Pending>();
    }
  }
  return pending;
}

Status CertificateService::DropPending(const OpenVault& vault, const std::string& name,
                                       const std::string& request_id) {
  // Read first: most certificates have no operation, and a delete should
  // not take the store's write lock for nothing.
  ASSIGN_OR_RETURN(auto doc, store_.GetMeta(Pending::Key(vault, name)));
  if (!doc || doc->empty()) {
    return OkStatus();
  }
  return ChangePending(vault, name,
                       [&](Pending& p) -> StatusOr<std::string> {
                         bool ours = request_id.empty() || p.op.request_id == request_id;
                         return ours ? std::string() : p.Write();
                       })
      .status();
}

Status CertificateService::SetCurrentPolicy(const OpenVault& vault, const std::string& name,
                                            const CertificatePolicy& policy) {
  std::string rendered = ToJson(RenderCertificatePolicy(policy, ""));
  return store_
      .UpdateObjectPolicy(
          kKind, vault.record.name, name,
          [&](const std::optional<std::string>&) -> StatusOr<std::string> { return rendered; })
      .status();
}

void CertificateService::Forget(const OpenVault& vault, const std::string& name) {
  secrets_.Invalidate(vault.record.name, name);
  keys_.Invalidate(vault.record.name, name);
}

StatusOr<Certificate> CertificateService::FromView(const storage::SecretView& view,
                                                   const OpenVault& vault) const {
  ASSIGN_OR_RETURN(Stored stored, Stored::Read(view.version.key_json));
  Certificate c;
  c.record = view.version;
  c.record.sealed_value.clear();
  c.cer = std::move(stored.cer);
  c.x5t = std::move(stored.x5t);
  c.deleted = view.deleted;
  c.deleted_date = view.deleted_date;
  c.scheduled_purge_date = view.scheduled_purge_date;
  c.recoverable_days = vault.settings.retention_days;
  c.recovery_level = RecoveryLevel(vault.settings);
  return c;
}

StatusOr<Certificate> CertificateService::Write(
    const Vault& vault, const std::string& name, const crypto::AsymKey& key,
    const std::vector<std::string>& chain_der, const CertificatePolicy& policy,
    const std::string& version, const std::optional<CertificateOperation>& operation,
    const std::string& tags_json, bool enabled) {
  ASSIGN_OR_RETURN(crypto::CertificateDetails leaf, crypto::ReadCertificateDer(chain_der.at(0)));
  const int64_t now = clock_.NowSeconds();
  auto attributes = [&](storage::SecretVersionRecord& rec) {
    rec.name = name;
    rec.version = version;
    rec.enabled = enabled;
    rec.nbf = leaf.not_before;
    rec.exp = leaf.not_after;
    rec.created = rec.updated = now;
    if (rec.tags_json.empty()) {
      rec.tags_json = "{}";
    }
  };
  // The certificate.
  storage::SecretVersionRecord cert;
  Json stored = {{"cer", Base64Encode(leaf.der)},
                 {"x5t", Base64UrlEncode(leaf.sha1_thumbprint)},
                 {"policy", RenderCertificatePolicy(policy, "")}};
  if (operation) {
    stored["operation"] = OperationJson(*operation);
  }
  cert.key_json = ToJson(stored);
  cert.tags_json = tags_json;
  attributes(cert);
  // Its key.
  storage::SecretVersionRecord key_rec =
      KeyService::SealedVersion(*vault, name, version, key, KeyOpsFor(key));
  attributes(key_rec);
  // Its secret: key and chain as the policy's content type says; without
  // the key when the policy says it is not exportable (as Key Vault's).
  const bool pem = policy.content_type == kPem;
  ASSIGN_OR_RETURN(crypto::SecureBytes bundle,
                   policy.exportable ? (pem ? crypto::WritePem(key, chain_der)
                                            : crypto::WritePkcs12(key, chain_der))
                                     : (pem ? crypto::WriteCertificatesPem(chain_der)
                                            : crypto::WriteCertificatesPkcs12(chain_der)));
  std::string value = pem ? std::string(bundle.view()) : Base64Encode(bundle.view());
  storage::SecretVersionRecord secret_rec;
  secret_rec.sealed_value =
      Envelope::SealValue(vault->data_key, vault->record.name, name, version, value);
  crypto::SecureWipe(value);
  secret_rec.content_type = policy.content_type;
  attributes(secret_rec);

  auto added = store_.AddObjectVersion(
      kKind, vault->record.name, cert,
      {{storage::ObjectKind::kKey, key_rec}, {storage::ObjectKind::kSecret, secret_rec}});
  Forget(*vault, name);
  if (!added.ok()) {
    if (added.status().code() == StatusCode::kFailedPrecondition &&
        added.status().message().find("deleted but not purged") != std::string::npos) {
      return DeletedButRecoverable(kKind, name);
    }
    return added.status();
  }
  cert.name = std::move(added).value();
  ASSIGN_OR_RETURN(Certificate c,
                   FromView(storage::SecretView{cert, false, 0, 0, std::nullopt}, *vault));
  c.policy = policy;
  return c;
}

StatusOr<std::unique_ptr<crypto::AsymKey>> CertificateService::LatestKey(
    const OpenVault& vault, const std::string& name, const CertificatePolicy& policy) {
  auto view = store_.GetObject(storage::ObjectKind::kKey, vault.record.name, name, "", false);
  if (view.status().code() == StatusCode::kNotFound || (view.ok() && !view->owner)) {
    return std::unique_ptr<crypto::AsymKey>();
  }
  RETURN_IF_ERROR(view.status());
  ASSIGN_OR_RETURN(std::string der,
                   Envelope::OpenKeyMaterial(vault.data_key, vault.record.name, name,
                                             view->version.version, view->version.sealed_value));
  auto key = crypto::AsymKey::FromPrivateDer(der);
  crypto::SecureWipe(der);
  RETURN_IF_ERROR(key.status());
  // A policy that now asks for another type, size or curve gets a new key.
  const crypto::AsymKey& k = **key;
  bool fits = k.kty() == policy.kty &&
              (policy.kty == "RSA" ? k.key_size() == policy.key_size
                                   : k.curve() && crypto::EcCurveName(*k.curve()) == policy.crv);
  if (!fits) {
    return std::unique_ptr<crypto::AsymKey>();
  }
  return std::move(key).value();
}

StatusOr<CertificatePolicy> CertificateService::CurrentPolicy(const OpenVault& vault,
                                                              const std::string& name,
                                                              const storage::SecretView& latest) {
  ASSIGN_OR_RETURN(std::string patched, store_.GetObjectPolicy(kKind, vault.record.name, name));
  if (!patched.empty()) {
    return LoadCertificatePolicy(patched);
  }
  ASSIGN_OR_RETURN(Stored stored, Stored::Read(latest.version.key_json));
  if (!stored.policy) {
    return DataLossError("a stored certificate version has no policy");
  }
  ASSIGN_OR_RETURN(CertificatePolicy policy, LoadCertificatePolicy(ToJson(*stored.policy)));
  return policy;
}

StatusOr<CertificateOperation> CertificateService::Create(const Vault& vault,
                                                          const std::string& name,
                                                          const CertificateCreateInput& in) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  RETURN_IF_ERROR(ValidateTagsJson(in.tags_json));
  const int64_t now = clock_.NowSeconds();
  auto latest = store_.GetObject(kKind, vault->record.name, name, "", false);
  if (!latest.ok() && latest.status().code() != StatusCode::kNotFound) {
    return latest.status();
  }
  const bool exists = latest.ok();
  ASSIGN_OR_RETURN(std::optional<Pending> pending, ReadPending(*vault, name));
  if (pending && pending->op.status != "cancelled") {
    return InProgressConflict();
  }
  std::optional<CertificatePolicy> policy;
  if (in.policy) {
    CertificatePolicy base;
    ASSIGN_OR_RETURN(policy, ParseCertificatePolicy(*in.policy, base));
    policy->created = policy->updated = now;
  } else if (exists) {
    ASSIGN_OR_RETURN(policy, CurrentPolicy(*vault, name, *latest));
  } else {
    return BadParameter("Property 'policy' is required to create a new certificate.");
  }
  std::unique_ptr<crypto::AsymKey> key;
  if (policy->reuse_key) {
    ASSIGN_OR_RETURN(key, LatestKey(*vault, name, *policy));
  }
  if (key == nullptr) {
    ASSIGN_OR_RETURN(key, crypto::AsymKey::Generate(policy->kty, policy->key_size,
                                                    policy->kty == "EC" ? policy->crv : ""));
  }
  crypto::CertificateProfile profile =
      ProfileOf(*policy, now, AddMonths(now, policy->validity_months));
  if (policy->issuer == "Unknown") {
    return StartPending(vault, name, *key, *policy, profile, in, exists);
  }
  std::vector<std::string> chain;
  if (policy->issuer == "Self") {
    ASSIGN_OR_RETURN(std::string der,
                     crypto::IssueCertificate(profile, key->PublicKeyDer(), *key, ""));
    chain.push_back(std::move(der));
  } else {
    ASSIGN_OR_RETURN(chain, issuers_.Issue(vault, policy->issuer, policy->validity_months, profile,
                                           key->PublicKeyDer()));
  }
  CertificateOperation op;
  ASSIGN_OR_RETURN(op.csr, crypto::CreateCsr(profile, *key));
  op.issuer = policy->issuer;
  op.status = "completed";
  op.request_id = crypto::RandomUuid();
  ASSIGN_OR_RETURN(Certificate c, Write(vault, name, *key, chain, *policy, crypto::RandomHex(16),
                                        op, in.tags_json, in.enabled));
  if (pending) {
    RETURN_IF_ERROR(DropPending(*vault, name, pending->op.request_id));
  }
  if (in.policy) {
    RETURN_IF_ERROR(SetCurrentPolicy(*vault, name, *policy));
  }
  op.name = c.record.name;
  return op;
}

StatusOr<CertificateOperation> CertificateService::StartPending(
    const Vault& vault, const std::string& name, const crypto::AsymKey& key,
    const CertificatePolicy& policy, const crypto::CertificateProfile& profile,
    const CertificateCreateInput& in, bool exists) {
  if (!exists) {
    auto deleted = store_.GetObject(kKind, vault->record.name, name, "", true);
    if (deleted.ok() && deleted->deleted) {
      return DeletedButRecoverable(kKind, name);
    }
  }
  Pending p;
  p.op.name = name;
  p.op.issuer = policy.issuer;
  ASSIGN_OR_RETURN(p.op.csr, crypto::CreateCsr(profile, key));
  p.op.status = "inProgress";
  p.op.status_details = "Pending certificate created. Merge the signed certificate to complete it.";
  p.op.request_id = crypto::RandomUuid();
  p.version = crypto::RandomHex(16);
  p.policy = RenderCertificatePolicy(policy, "");
  p.tags_json = in.tags_json;
  p.enabled = in.enabled;
  p.created = clock_.NowSeconds();
  {
    crypto::SecureBytes der = key.ToPrivateDer();
    std::string plain(der.view());
    p.sealed_key = Envelope::SealKeyMaterial(vault->data_key, vault->record.name,
                                             PendingKeyName(name), p.version, plain);
    crypto::SecureWipe(plain);
  }
  std::string doc = p.Write();
  auto written = store_.UpdateMeta(
      Pending::Key(*vault, name),
      [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
        ASSIGN_OR_RETURN(std::optional<Pending> other, Pending::Read(current));
        if (other && other->op.status != "cancelled") {
          return FailedPreconditionError("Certificate '" + name + "' has an operation in progress.",
                                         "Conflict");
        }
        return doc;
      });
  RETURN_IF_ERROR(written.status());
  if (exists && in.policy) {
    RETURN_IF_ERROR(SetCurrentPolicy(*vault, name, policy));
  }
  return p.op;
}

StatusOr<CertificateOperation> CertificateService::GetOperation(const Vault& vault,
                                                                const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  ASSIGN_OR_RETURN(std::optional<Pending> pending, ReadPending(*vault, name));
  if (pending) {
    return pending->Shown();
  }
  auto latest = store_.GetObject(kKind, vault->record.name, name, "", false);
  if (latest.status().code() == StatusCode::kNotFound) {
    return NoPendingOperation(name);
  }
  RETURN_IF_ERROR(latest.status());
  ASSIGN_OR_RETURN(Stored stored, Stored::Read(latest->version.key_json));
  if (!stored.operation) {
    return NoPendingOperation(name);
  }
  return RecordedOperation(*stored.operation, latest->version.name);
}

StatusOr<std::optional<CertificateOperation>> CertificateService::ChangePending(
    const OpenVault& vault, const std::string& name,
    const std::function<StatusOr<std::string>(Pending&)>& change) {
  std::optional<CertificateOperation> shown;
  auto written =
      store_.UpdateMeta(Pending::Key(vault, name),
                        [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                          ASSIGN_OR_RETURN(std::optional<Pending> p, Pending::Read(current));
                          if (!p) {
                            return NoPendingOperation(name);  // nothing to change: write nothing
                          }
                          ASSIGN_OR_RETURN(std::string next, change(*p));
                          shown = p->Shown();
                          return next;
                        });
  if (written.status().code() == StatusCode::kNotFound) {
    return std::optional<CertificateOperation>();
  }
  RETURN_IF_ERROR(written.status());
  return shown;
}

StatusOr<CertificateOperation> CertificateService::CancelOperation(const Vault& vault,
                                                                   const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  ASSIGN_OR_RETURN(auto cancelled,
                   ChangePending(*vault, name, [](Pending& p) -> StatusOr<std::string> {
                     if (p.op.status == "inProgress") {
                       p.op.status = "cancelled";
                       p.op.cancellation_requested = true;
                       p.op.status_details = "The certificate operation was cancelled.";
                     }
                     return p.Write();
                   }));
  if (cancelled) {
    return *cancelled;
  }
  // No operation in progress: a finished one stays as it is.
  return GetOperation(vault, name);
}

StatusOr<CertificateOperation> CertificateService::DeleteOperation(const Vault& vault,
                                                                   const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  ASSIGN_OR_RETURN(auto dropped, ChangePending(*vault, name, [](Pending&) -> StatusOr<std::string> {
                     return std::string();
                   }));
  if (dropped) {
    return *dropped;
  }
  // The latest version's record of how it was made.
  CertificateOperation op;
  auto view = store_.UpdateObjectVersion(
      kKind, vault->record.name, name, "", [&](storage::SecretVersionRecord& rec) -> Status {
        auto json = ParseJson(rec.key_json, 12);
        if (!json || !json->is_object() || !json->contains("operation")) {
          return NoPendingOperation(name);
        }
        op = RecordedOperation((*json)["operation"], rec.name);
        json->erase("operation");
        rec.key_json = ToJson(*json);
        return OkStatus();
      });
  if (!view.ok()) {
    return InKeyVaultWords(view.status(), kKind, name, false);
  }
  op.name = view->version.name;
  return op;
}

StatusOr<Certificate> CertificateService::Merge(const Vault& vault, const std::string& name,
                                                const CertificateMergeInput& in) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (in.tags_json) {
    RETURN_IF_ERROR(ValidateTagsJson(*in.tags_json));
  }
  if (in.x5c.empty() || in.x5c.size() > 10) {
    return BadParameter("Property 'x5c' must hold 1 to 10 certificates, the signed one first.");
  }
  // Claimed first, so that a cancel or another merge meanwhile is refused
  // rather than lost.
  std::optional<Pending> pending;
  ASSIGN_OR_RETURN(auto claimed,
                   ChangePending(*vault, name, [&](Pending& p) -> StatusOr<std::string> {
                     if (p.op.status != "inProgress") {
                       return FailedPreconditionError(
                           "The operation of certificate '" + name + "' is " +
                               (p.op.status == "merging" ? "being merged" : p.op.status) +
                               "; it cannot be merged.",
                           "Conflict");
                     }
                     p.op.status = "merging";
                     pending = p;
                     return p.Write();
                   }));
  if (!claimed) {
    return NoPendingOperation(name);
  }
  auto unclaim = [&]() {
    (void)ChangePending(*vault, name, [&](Pending& p) -> StatusOr<std::string> {
      if (p.op.request_id == pending->op.request_id && p.op.status == "merging") {
        p.op.status = "inProgress";
      }
      return p.Write();
    });
  };
  auto made = [&]() -> StatusOr<Certificate> {
    ASSIGN_OR_RETURN(crypto::CertificateDetails leaf, crypto::ReadCertificateDer(in.x5c[0]));
    ASSIGN_OR_RETURN(std::string der, Envelope::OpenKeyMaterial(
                                          vault->data_key, vault->record.name, PendingKeyName(name),
                                          pending->version, pending->sealed_key));
    auto key = crypto::AsymKey::FromPrivateDer(der);
    crypto::SecureWipe(der);
    RETURN_IF_ERROR(key.status());
    if (leaf.public_key_der != (*key)->PublicKeyDer()) {
      return BadParameter(
          "The certificate in x5c[0] does not carry the public key of the pending request.");
    }
    ASSIGN_OR_RETURN(CertificatePolicy policy, LoadCertificatePolicy(ToJson(pending->policy)));
    CertificateOperation op = pending->op;
    op.status = "completed";
    op.status_details = "";
    ASSIGN_OR_RETURN(Certificate c, Write(vault, name, **key, in.x5c, policy, pending->version, op,
                                          in.tags_json.value_or(pending->tags_json),
                                          in.enabled.value_or(pending->enabled)));
    c.policy = policy;
    return c;
  }();
  if (!made.ok()) {
    if (made.status().code() == StatusCode::kAlreadyExists) {
      RETURN_IF_ERROR(DropPending(*vault, name, pending->op.request_id));
      return FailedPreconditionError("The pending certificate '" + name + "' was merged already.",
                                     "Conflict");
    }
    unclaim();
    return made.status();
  }
  RETURN_IF_ERROR(DropPending(*vault, name, pending->op.request_id));
  RETURN_IF_ERROR(SetCurrentPolicy(*vault, name, *made->policy));
  return made;
}

StatusOr<Certificate> CertificateService::Import(const Vault& vault, const std::string& name,
                                                 const CertificateImportInput& in) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  RETURN_IF_ERROR(ValidateTagsJson(in.tags_json));
  ASSIGN_OR_RETURN(std::optional<Pending> pending, ReadPending(*vault, name));
  if (pending && pending->op.status != "cancelled") {
    return InProgressConflict();
  }
  if (in.value.empty() || in.value.size() > kMaxImportChars) {
    return BadParameter("Property 'value' must hold a PFX or PEM certificate of at most 1 MiB.");
  }
  if (in.password.size() > kMaxPasswordChars) {
    return BadParameter("Property 'pwd' is longer than 1024 characters.");
  }
  // PEM text as JS sends it with the PEM content type; otherwise base64 of
  // PEM text (Python) or of a PFX.
  constexpr std::string_view kBegin = "-----BEGIN";
  std::optional<crypto::KeyAndChain> bundle;
  std::string detected;
  if (std::string_view(in.value).substr(0, kBegin.size()) == kBegin) {
    ASSIGN_OR_RETURN(bundle, crypto::ReadPemBundle(in.value));
    detected = kPem;
  } else {
    std::string text = in.value;
    text.erase(std::remove_if(text.begin(), text.end(),
                              [](char ch) { return ch == '\r' || ch == '\n' || ch == ' '; }),
               text.end());
    auto bytes = Base64Decode(text);
    if (!bytes) {
      return BadParameter("Property 'value' must be PEM text or base64 of a PFX or PEM file.");
    }
    if (std::string_view(*bytes).substr(0, kBegin.size()) == kBegin) {
      ASSIGN_OR_RETURN(bundle, crypto::ReadPemBundle(*bytes));
      detected = kPem;
    } else {
      ASSIGN_OR_RETURN(bundle, crypto::ReadPkcs12(*bytes, in.password));
      detected = kPkcs12;
    }
    crypto::SecureWipe(*bytes);
  }
  ASSIGN_OR_RETURN(crypto::CertificateDetails leaf,
                   crypto::ReadCertificateDer(bundle->chain_der[0]));
  // The policy describes what was imported: the key's type, the leaf's
  // names and validity, the Unknown issuer; what the request's policy says
  // about the secret and renewal is kept.
  CertificatePolicy policy;
  policy.content_type = detected;
  policy.issuer = "Unknown";
  policy.subject = leaf.subject.empty() ? "CN=" : leaf.subject;
  policy.dns_names = leaf.sans.dns_names;
  policy.emails = leaf.sans.emails;
  policy.upns = leaf.sans.upns;
  policy.uris = leaf.sans.uris;
  policy.ip_addresses = leaf.sans.ip_addresses;
  policy.key_usage = leaf.key_usage;
  policy.ekus = leaf.ekus;
  policy.kty = std::string(bundle->key->kty());
  policy.key_size = bundle->key->key_size();
  policy.crv = bundle->key->curve() ? std::string(crypto::EcCurveName(*bundle->key->curve())) : "";
  int64_t months = (leaf.not_after - leaf.not_before) / (86400 * 30);
  policy.validity_months = static_cast<int>(std::clamp<int64_t>(months, 1, 1200));
  policy.lifetime_actions = {{80, std::nullopt, "EmailContacts"}};
  if (in.policy && in.policy->is_object()) {
    Json given = Json::object();
    for (const char* part : {"secret_props", "lifetime_actions", "attributes"}) {
      if (auto it = in.policy->find(part); it != in.policy->end()) {
        given[part] = *it;
      }
    }
    ASSIGN_OR_RETURN(policy, ParseCertificatePolicy(given, policy));
    // Of the key's properties only `exportable` is the request's: the rest
    // is the imported key's.
    if (auto props = in.policy->find("key_props");
        props != in.policy->end() && props->is_object()) {
      if (auto e = props->find("exportable"); e != props->end() && !e->is_null()) {
        if (!e->is_boolean()) {
          return BadParameter("Property 'key_props.exportable' must be a boolean.");
        }
        policy.exportable = e->get<bool>();
      }
    }
  }
  policy.created = policy.updated = clock_.NowSeconds();
  ASSIGN_OR_RETURN(Certificate c,
                   Write(vault, name, *bundle->key, bundle->chain_der, policy,
                         crypto::RandomHex(16), std::nullopt, in.tags_json, in.enabled));
  RETURN_IF_ERROR(SetCurrentPolicy(*vault, name, policy));
  return c;
}

StatusOr<Certificate> CertificateService::Get(const Vault& vault, const std::string& name,
                                              const std::string& version) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!version.empty()) {
    RETURN_IF_ERROR(ValidateVersion(version));
  }
  auto view = store_.GetObject(kKind, vault->record.name, name, AsciiLower(version), false);
  if (!version.empty()) {
    if (!view.ok()) {
      return InKeyVaultWords(view.status(), kKind, name, false);
    }
    return FromView(*view, *vault);
  }
  if (!view.ok() && view.status().code() != StatusCode::kNotFound) {
    return view.status();
  }
  ASSIGN_OR_RETURN(std::optional<Pending> pending, ReadPending(*vault, name));
  if (!view.ok()) {
    if (!pending) {
      return InKeyVaultWords(view.status(), kKind, name, false);
    }
    // The first version, waiting for its merge.
    Certificate c;
    c.record.name = pending->op.name;
    c.record.version = pending->version;
    c.record.enabled = false;
    c.record.created = c.record.updated = pending->created;
    c.record.tags_json = pending->tags_json;
    c.recoverable_days = vault->settings.retention_days;
    c.recovery_level = RecoveryLevel(vault->settings);
    ASSIGN_OR_RETURN(c.policy, LoadCertificatePolicy(ToJson(pending->policy)));
    c.pending = true;
    return c;
  }
  ASSIGN_OR_RETURN(Certificate c, FromView(*view, *vault));
  ASSIGN_OR_RETURN(c.policy, CurrentPolicy(*vault, name, *view));
  c.pending = pending.has_value();
  return c;
}

StatusOr<Certificate> CertificateService::Update(const Vault& vault, const std::string& name,
                                                 const std::string& version,
                                                 const CertificatePatch& patch) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  if (!version.empty()) {
    RETURN_IF_ERROR(ValidateVersion(version));
  }
  if (patch.tags_json) {
    RETURN_IF_ERROR(ValidateTagsJson(*patch.tags_json));
  }
  const int64_t now = clock_.NowSeconds();
  auto view = store_.UpdateObjectVersion(kKind, vault->record.name, name, AsciiLower(version),
                                         [&](storage::SecretVersionRecord& rec) -> Status {
                                           if (patch.enabled) {
                                             rec.enabled = *patch.enabled;
                                           }
                                           if (patch.tags_json) {
                                             rec.tags_json = *patch.tags_json;
                                           }
                                           rec.updated = now;
                                           return OkStatus();
                                         });
  Forget(*vault, name);
  if (!view.ok()) {
    return InKeyVaultWords(view.status(), kKind, name, false);
  }
  ASSIGN_OR_RETURN(Certificate c, FromView(*view, *vault));
  if (version.empty()) {
    ASSIGN_OR_RETURN(c.policy, CurrentPolicy(*vault, name, *view));
  }
  return c;
}

StatusOr<CertificateList> CertificateService::ListPage(const Vault& vault, bool deleted,
                                                       const std::string& cursor, int limit) {
  ASSIGN_OR_RETURN(storage::SecretPage page,
                   store_.ListObjects(kKind, vault->record.name, deleted, cursor, limit));
  CertificateList out;
  for (const auto& item : page.items) {
    ASSIGN_OR_RETURN(Certificate c, FromView(item, *vault));
    out.items.push_back(std::move(c));
  }
  out.next_cursor = std::move(page.next_cursor);
  return out;
}

StatusOr<CertificateList> CertificateService::List(const Vault& vault, const std::string& cursor,
                                                   int limit) {
  return ListPage(vault, false, cursor, limit);
}

StatusOr<CertificateList> CertificateService::ListVersions(const Vault& vault,
                                                           const std::string& name,
                                                           const std::string& cursor, int limit) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto page = store_.ListObjectVersions(kKind, vault->record.name, name, cursor, limit);
  if (!page.ok()) {
    return InKeyVaultWords(page.status(), kKind, name, false);
  }
  CertificateList out;
  for (const auto& rec : page->items) {
    ASSIGN_OR_RETURN(Certificate c,
                     FromView(storage::SecretView{rec, false, 0, 0, std::nullopt}, *vault));
    out.items.push_back(std::move(c));
  }
  out.next_cursor = std::move(page->next_cursor);
  return out;
}

StatusOr<Certificate> CertificateService::Delete(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  const int64_t now = clock_.NowSeconds();
  const int64_t purge_at = now + int64_t{vault->settings.retention_days} * 86400;
  Status marked = store_.MarkObjectDeleted(kKind, vault->record.name, name, now, purge_at);
  Forget(*vault, name);
  if (marked.code() == StatusCode::kNotFound) {
    // A certificate whose first version waits for its merge has nothing to
    // delete yet but its operation.
    ASSIGN_OR_RETURN(std::optional<Pending> pending, ReadPending(*vault, name));
    if (pending) {
      return FailedPreconditionError(
          "Certificate '" + name +
              "' has no version yet, only an operation in progress: delete the operation "
              "(DELETE /certificates/" +
              name + "/pending) instead.",
          "Conflict");
    }
  }
  if (!marked.ok()) {
    return InKeyVaultWords(marked, kKind, name, false);
  }
  // An operation in progress goes with the certificate.
  RETURN_IF_ERROR(DropPending(*vault, name, ""));
  ASSIGN_OR_RETURN(storage::SecretView view,
                   store_.GetObject(kKind, vault->record.name, name, "", true));
  ASSIGN_OR_RETURN(Certificate c, FromView(view, *vault));
  ASSIGN_OR_RETURN(Stored stored, Stored::Read(view.version.key_json));
  if (stored.policy) {
    ASSIGN_OR_RETURN(c.policy, LoadCertificatePolicy(ToJson(*stored.policy)));
  }
  return c;
}

StatusOr<Certificate> CertificateService::GetDeleted(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  ASSIGN_OR_RETURN(storage::SecretView view,
                   FindDeletedObject(store_, kKind, vault->record.name, name));
  return FromView(view, *vault);
}

StatusOr<CertificateList> CertificateService::ListDeleted(const Vault& vault,
                                                          const std::string& cursor, int limit) {
  return ListPage(vault, true, cursor, limit);
}

StatusOr<Certificate> CertificateService::Recover(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  Status recovered = store_.RecoverObject(kKind, vault->record.name, name);
  Forget(*vault, name);
  if (!recovered.ok()) {
    return InKeyVaultWords(recovered, kKind, name, true);
  }
  return Get(vault, name, "");
}

Status CertificateService::Purge(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  RETURN_IF_ERROR(FindDeletedObject(store_, kKind, vault->record.name, name).status());
  // SECURITY: purge protection holds until the scheduled purge, as for
  // secrets.
  if (vault->settings.purge_protection) {
    return PermissionDeniedError(
        "Operation \"purge\" is not allowed because purge protection is enabled for this "
        "vault. The certificate will be purged automatically on its scheduled purge date.",
        "Forbidden");
  }
  Status purged = store_.PurgeObject(kKind, vault->record.name, name);
  Forget(*vault, name);
  return InKeyVaultWords(purged, kKind, name, true);
}

namespace {

constexpr char kBackupFormat[] = "coffer-certificate-backup";

// One version in a backup: its record with the opened material (a key's
// PKCS#8 or a secret's value, base64; "" for the certificate's).
Json BackupVersion(const storage::SecretVersionRecord& r, const std::string& material) {
  Json v = {{"version", r.version},   {"content_type", r.content_type},
            {"tags", r.tags_json},    {"enabled", r.enabled},
            {"created", r.created},   {"updated", r.updated},
            {"key_json", r.key_json}, {"material", Base64Encode(material)}};
  if (r.nbf) {
    v["nbf"] = *r.nbf;
  }
  if (r.exp) {
    v["exp"] = *r.exp;
  }
  return v;
}

// Wipes the opened material of every version in a backup document.
void WipeMaterial(Json& doc) {
  for (const char* part : {"certificate", "key", "secret"}) {
    if (!doc.is_object() || !doc.contains(part) || !doc[part].is_array()) {
      continue;
    }
    for (auto& v : doc[part]) {
      if (v.is_object() && v.contains("material") && v["material"].is_string()) {
        crypto::SecureWipe(v["material"].get_ref<std::string&>());
      }
    }
  }
}

}  // namespace

StatusOr<std::string> CertificateService::Backup(const Vault& vault, const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string& v = vault->record.name;
  auto certs = store_.GetAllObjectVersions(kKind, v, name);
  if (!certs.ok()) {
    return InKeyVaultWords(certs.status(), kKind, name, false);
  }
  if (certs->size() > static_cast<size_t>(kMaxBackupVersions)) {
    return BadParameter("Backup is not allowed for a certificate with more than 500 versions.");
  }
  ASSIGN_OR_RETURN(auto keys, store_.GetAllObjectVersions(storage::ObjectKind::kKey, v, name));
  ASSIGN_OR_RETURN(auto secrets,
                   store_.GetAllObjectVersions(storage::ObjectKind::kSecret, v, name));
  ASSIGN_OR_RETURN(std::string policy, store_.GetObjectPolicy(kKind, v, name));
  Json doc = {{"format", kBackupFormat},      {"v", 1},
              {"name", certs->back().name},   {"policy", policy},
              {"certificate", Json::array()}, {"key", Json::array()},
              {"secret", Json::array()}};
  Status failed;
  for (const auto& r : *certs) {
    doc["certificate"].push_back(BackupVersion(r, ""));
  }
  for (const auto& r : keys) {
    auto der = Envelope::OpenKeyMaterial(vault->data_key, v, r.name, r.version, r.sealed_value);
    if (!der.ok()) {
      failed = der.status();
      break;
    }
    doc["key"].push_back(BackupVersion(r, *der));
    crypto::SecureWipe(*der);
  }
  for (const auto& r : secrets) {
    if (!failed.ok()) {
      break;
    }
    auto value = Envelope::OpenValue(vault->data_key, v, r.name, r.version, r.sealed_value);
    if (!value.ok()) {
      failed = value.status();
      break;
    }
    doc["secret"].push_back(BackupVersion(r, *value));
    crypto::SecureWipe(*value);
  }
  if (!failed.ok()) {
    WipeMaterial(doc);
    return failed;
  }
  std::string plain = ToJson(doc);
  // SECURITY: the blob holds private keys; it is sealed under the
  // installation's backup key, and every plaintext copy is wiped.
  WipeMaterial(doc);
  std::string blob = envelope_.SealBackup(plain);
  crypto::SecureWipe(plain);
  return blob;
}

StatusOr<Certificate> CertificateService::Restore(const Vault& vault, const std::string& blob) {
  ASSIGN_OR_RETURN(std::string plain, envelope_.OpenBackup(blob));
  auto doc = ParseJson(plain, 8);
  crypto::SecureWipe(plain);
  Status unknown =
      BadParameter("The backup blob is not a certificate backup of this installation.");
  if (!doc || !doc->is_object() || doc->value("format", "") != kBackupFormat ||
      !(*doc)["name"].is_string() || !(*doc)["certificate"].is_array() ||
      (*doc)["certificate"].empty()) {
    if (doc) {
      WipeMaterial(*doc);
    }
    return unknown;
  }
  const std::string name = (*doc)["name"].get<std::string>();
  const std::string& v = vault->record.name;
  // Each part's versions, resealed for this vault.
  auto read = [&](const char* part,
                  storage::ObjectKind kind) -> StatusOr<std::vector<storage::SecretVersionRecord>> {
    std::vector<storage::SecretVersionRecord> out;
    if (!(*doc)[part].is_array()) {
      return unknown;
    }
    for (auto& j : (*doc)[part]) {
      storage::SecretVersionRecord r;
      try {
        r.name = name;
        r.version = j.at("version").get<std::string>();
        r.content_type = j.at("content_type").get<std::string>();
        r.tags_json = j.at("tags").get<std::string>();
        r.enabled = j.at("enabled").get<bool>();
        r.created = j.at("created").get<int64_t>();
        r.updated = j.at("updated").get<int64_t>();
        r.key_json = j.at("key_json").get<std::string>();
        if (j.contains("nbf"))
          r.nbf = j["nbf"].get<int64_t>();
        if (j.contains("exp"))
          r.exp = j["exp"].get<int64_t>();
      } catch (const std::exception&) {
        return unknown;
      }
      RETURN_IF_ERROR(ValidateVersion(r.version));
      auto material = Base64Decode(j.value("material", std::string()));
      if (!material) {
        return unknown;
      }
      if (kind == storage::ObjectKind::kKey) {
        r.sealed_value = Envelope::SealKeyMaterial(vault->data_key, v, name, r.version, *material);
      } else if (kind == storage::ObjectKind::kSecret) {
        r.sealed_value = Envelope::SealValue(vault->data_key, v, name, r.version, *material);
      }
      crypto::SecureWipe(*material);
      out.push_back(std::move(r));
    }
    return out;
  };
  auto certs = read("certificate", kKind);
  auto keys = read("key", storage::ObjectKind::kKey);
  auto secrets = read("secret", storage::ObjectKind::kSecret);
  std::string policy = doc->value("policy", std::string());
  WipeMaterial(*doc);
  RETURN_IF_ERROR(ValidateObjectName(name));
  RETURN_IF_ERROR(certs.status());
  RETURN_IF_ERROR(keys.status());
  RETURN_IF_ERROR(secrets.status());
  Status restored = store_.RestoreObject(kKind, v, *certs,
                                         {{storage::ObjectKind::kKey, std::move(*keys)},
                                          {storage::ObjectKind::kSecret, std::move(*secrets)}});
  Forget(*vault, name);
  if (restored.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError(
        "There was a conflict restoring the certificate '" + name +
            "': a certificate, key or secret of that name exists (perhaps soft-deleted).",
        "Conflict");
  }
  RETURN_IF_ERROR(restored);
  if (!policy.empty()) {
    RETURN_IF_ERROR(
        store_
            .UpdateObjectPolicy(
                kKind, v, name,
                [&](const std::optional<std::string>&) -> StatusOr<std::string> { return policy; })
            .status());
  }
  return Get(vault, name, "");
}

namespace {

constexpr int kMaxPolicies = 10000;

// When `action` fires for a version created at `created` that expires at
// `exp`: a percentage of its lifetime from its creation, or days before its
// expiry.
std::optional<int64_t> FiresAt(const CertificatePolicy::LifetimeAction& action, int64_t created,
                               int64_t exp) {
  if (action.days_before_expiry) {
    return exp - int64_t{*action.days_before_expiry} * 86400;
  }
  if (action.lifetime_percentage) {
    return created + (exp - created) * *action.lifetime_percentage / 100;
  }
  return std::nullopt;
}

}  // namespace

StatusOr<int> CertificateService::RenewDue(VaultRegistry& registry) {
  ASSIGN_OR_RETURN(auto policies, store_.ListObjectPolicies(kKind, kMaxPolicies));
  const int64_t now = clock_.NowSeconds();
  int renewed = 0;
  for (const auto& p : policies) {
    auto policy = LoadCertificatePolicy(p.policy_json);
    if (!policy.ok() || !p.latest_exp) {
      continue;
    }
    bool due = false;
    for (const auto& action : policy->lifetime_actions) {
      auto at = FiresAt(action, p.latest_created, *p.latest_exp);
      due = due || (action.action_type == "AutoRenew" && at && *at <= now);
    }
    if (!due) {
      continue;
    }
    auto vault = registry.Get(p.vault);
    Status done = vault.status();
    if (vault.ok()) {
      // The new version keeps the latest one's tags.
      auto latest = store_.GetObject(kKind, p.vault, p.name, "", false);
      CertificateCreateInput in;
      if (latest.ok()) {
        in.tags_json = latest->version.tags_json;
      }
      done = Create(*vault, p.name, in).status();
    }
    if (!done.ok()) {
      COFFER_LOG(kWarning) << "scheduled renewal of certificate '" << p.name << "' in vault '"
                           << p.vault << "' failed: " << done.ToString();
      continue;
    }
    ++renewed;
  }
  return renewed;
}

StatusOr<std::map<std::string, int64_t>> CertificateService::NoticeLeads() {
  ASSIGN_OR_RETURN(auto policies, store_.ListObjectPolicies(kKind, kMaxPolicies));
  std::map<std::string, int64_t> out;
  for (const auto& p : policies) {
    auto policy = LoadCertificatePolicy(p.policy_json);
    if (!policy.ok() || !p.latest_exp) {
      continue;
    }
    for (const auto& action : policy->lifetime_actions) {
      auto at = FiresAt(action, p.latest_created, *p.latest_exp);
      if (action.action_type == "EmailContacts" && at) {
        out[AsciiLower(p.vault) + "/" + AsciiLower(p.name)] = *p.latest_exp - *at;
      }
    }
  }
  return out;
}

StatusOr<CertificatePolicy> CertificateService::GetPolicy(const Vault& vault,
                                                          const std::string& name) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto latest = store_.GetObject(kKind, vault->record.name, name, "", false);
  if (!latest.ok()) {
    return InKeyVaultWords(latest.status(), kKind, name, false);
  }
  return CurrentPolicy(*vault, name, *latest);
}

StatusOr<CertificatePolicy> CertificateService::UpdatePolicy(const Vault& vault,
                                                             const std::string& name,
                                                             const Json& patch) {
  RETURN_IF_ERROR(ValidateObjectName(name));
  auto latest = store_.GetObject(kKind, vault->record.name, name, "", false);
  if (!latest.ok()) {
    return InKeyVaultWords(latest.status(), kKind, name, false);
  }
  ASSIGN_OR_RETURN(Stored stored, Stored::Read(latest->version.key_json));
  const int64_t now = clock_.NowSeconds();
  CertificatePolicy result;
  auto written = store_.UpdateObjectPolicy(
      kKind, vault->record.name, name,
      [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
        CertificatePolicy base;
        if (current) {
          ASSIGN_OR_RETURN(base, LoadCertificatePolicy(*current));
        } else if (stored.policy) {
          ASSIGN_OR_RETURN(base, LoadCertificatePolicy(ToJson(*stored.policy)));
        }
        ASSIGN_OR_RETURN(result, ParseCertificatePolicy(patch, base));
        result.created = base.created;
        result.updated = now;
        return ToJson(RenderCertificatePolicy(result, ""));
      });
  if (!written.ok()) {
    return InKeyVaultWords(written.status(), kKind, name, false);
  }
  return result;
}

}  // namespace coffer::keyvault
