#include "keyvault/key_service.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/primitives.h"
#include "keyvault/secret_service.h"
#include "storage/memory/memory_store.h"

namespace coffer::keyvault {
namespace {

class KeyServiceTest : public ::testing::Test {
 protected:
  KeyServiceTest()
      : clock_(1800000000),
        envelope_(Envelope::Create(crypto::RandomBytes(32)).value()),
        registry_(store_, *envelope_, clock_, 0),
        service_(store_, *envelope_, clock_, 0),
        secrets_(store_, *envelope_, clock_, 0) {
    AddVault("kv", 7, false, "standard");
    AddVault("protected", 90, true, "premium");
  }

  void AddVault(const std::string& name, int retention_days, bool purge_protection,
                const std::string& sku) {
    storage::VaultRecord v;
    v.name = name;
    v.retention_days = retention_days;
    v.purge_protection = purge_protection;
    v.sku = sku;
    v.tags_json = "{}";
    v.wrapped_data_key = envelope_->NewWrappedDataKey(name);
    ASSERT_TRUE(store_.CreateVault(v).ok());
  }

  std::shared_ptr<const OpenVault> V(const std::string& name) {
    return registry_.Get(name).value();
  }

  static KeyCreateInput Input(const std::string& kty, const std::string& crv = "") {
    KeyCreateInput in;
    in.kty = kty;
    in.crv = crv;
    return in;
  }

  static std::string Digest(int bytes) { return std::string(static_cast<size_t>(bytes), 'd'); }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<Envelope> envelope_;
  VaultRegistry registry_;
  KeyService service_;
  SecretService secrets_;
};

TEST_F(KeyServiceTest, CreatedKeysShowOnlyTheirPublicHalfWithDefaultOperations) {
  auto rsa = service_.Create(V("kv"), "Signer", Input("RSA"));
  ASSERT_TRUE(rsa.ok()) << rsa.status().ToString();
  EXPECT_EQ(rsa->jwk["kty"], "RSA");
  EXPECT_EQ(rsa->jwk["e"], "AQAB");
  EXPECT_EQ(Base64UrlDecode(rsa->jwk["n"].get<std::string>())->size(), 256u);
  EXPECT_EQ(rsa->jwk["key_ops"],
            Json({"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}));
  auto ec = service_.Create(V("kv"), "ec", Input("EC"));
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(ec->jwk["crv"], "P-256");
  EXPECT_EQ(ec->jwk["key_ops"], Json({"sign", "verify"}));
  for (const Key& k : {*rsa, *ec, *service_.Get(V("kv"), "signer", "")}) {
    for (const char* field : {"d", "p", "q", "dp", "dq", "qi"}) {
      EXPECT_FALSE(k.jwk.contains(field)) << field;
    }
  }
  // At rest the private half is sealed; nothing of it is in the key JSON.
  auto stored = store_.GetObject(storage::ObjectKind::kKey, "kv", "signer", "", false);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->version.sealed_value.empty());
  EXPECT_EQ(stored->version.key_json.find("\"d\""), std::string::npos);
  // A key is not a secret: the secrets API does not see it.
  EXPECT_EQ(secrets_.Get(V("kv"), "signer", "").status().reason(), "SecretNotFound");
}

TEST_F(KeyServiceTest, UnsupportedTypesAndSettingsAreRefused) {
  for (const char* kty : {"oct", "OKP", "", "rsa"}) {
    EXPECT_EQ(service_.Create(V("kv"), "k", Input(kty)).status().reason(), "BadParameter") << kty;
  }
  auto hsm = service_.Create(V("kv"), "k", Input("RSA-HSM"));
  EXPECT_NE(hsm.status().message().find("standard vault"), std::string::npos);
  EXPECT_EQ(service_.Create(V("protected"), "k", Input("EC-HSM")).status().reason(),
            "BadParameter");
  KeyCreateInput small = Input("RSA");
  small.key_size = 1024;
  EXPECT_EQ(service_.Create(V("kv"), "k", small).status().reason(), "BadParameter");
  KeyCreateInput exponent = Input("RSA");
  exponent.public_exponent = 3;
  EXPECT_EQ(service_.Create(V("kv"), "k", exponent).status().reason(), "BadParameter");
  KeyCreateInput released = Input("EC");
  released.has_release_policy = true;
  EXPECT_EQ(service_.Create(V("kv"), "k", released).status().reason(), "BadParameter");
  KeyCreateInput ops = Input("EC");
  ops.key_ops = std::vector<std::string>{"sign", "launch"};
  EXPECT_EQ(service_.Create(V("kv"), "k", ops).status().reason(), "BadParameter");
  EXPECT_EQ(service_.Create(V("kv"), "bad_name", Input("EC")).status().reason(), "BadParameter");
  // Nothing of the refused keys was stored.
  EXPECT_TRUE(service_.List(V("kv"), "", 25)->items.empty());
}

TEST_F(KeyServiceTest, EveryOperationIsCheckedAgainstKeyOpsEnabledAndTime) {
  KeyCreateInput in = Input("RSA");
  in.key_ops = std::vector<std::string>{"SIGN", "verify", "decrypt"};
  auto key = service_.Create(V("kv"), "k", in);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->jwk["key_ops"], Json({"sign", "verify", "decrypt"}));  // canonical spelling
  auto sig = service_.Operate(V("kv"), "k", "", KeyOperation::kSign, "RS256", Digest(32));
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_EQ(sig->value.size(), 256u);
  EXPECT_EQ(sig->kid_version, key->record.version);
  EXPECT_TRUE(service_
                  .Operate(V("kv"), "k", key->record.version, KeyOperation::kVerify, "RS256",
                           Digest(32), sig->value)
                  ->verified);
  EXPECT_FALSE(
      service_
          .Operate(V("kv"), "k", "", KeyOperation::kVerify, "RS256", Digest(32), sig->value + "x")
          ->verified);
  auto denied = service_.Operate(V("kv"), "k", "", KeyOperation::kEncrypt, "RSA-OAEP", "hi");
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.status().message(), "Operation encrypt is not permitted on this key.");
  EXPECT_EQ(service_.Operate(V("kv"), "k", "", KeyOperation::kSign, "ES256", Digest(32))
                .status()
                .reason(),
            "BadParameter");

  // Expired: signing stops, verifying and decrypting go on (Key Vault's
  // date-time controls).
  KeyPatch expire;
  expire.exp = std::optional<int64_t>(clock_.NowSeconds() - 1);
  ASSERT_TRUE(service_.Update(V("kv"), "k", "", expire).ok());
  EXPECT_EQ(
      service_.Operate(V("kv"), "k", "", KeyOperation::kSign, "RS256", Digest(32)).status().code(),
      StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      service_.Operate(V("kv"), "k", "", KeyOperation::kVerify, "RS256", Digest(32), sig->value)
          ->verified);

  // Disabled: everything stops, but the key can still be read.
  KeyPatch disable;
  disable.enabled = false;
  ASSERT_TRUE(service_.Update(V("kv"), "k", "", disable).ok());
  EXPECT_EQ(
      service_.Operate(V("kv"), "k", "", KeyOperation::kVerify, "RS256", Digest(32), sig->value)
          .status()
          .message(),
      "Operation verify is not allowed on a disabled key.");
  auto read = service_.Get(V("kv"), "k", "");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->record.enabled);
}

// The I/O thread's fast path answers only from a version already opened
// and cached, with the same checks as Operate, and never runs an RSA
// private-key operation.
TEST_F(KeyServiceTest, TheFastPathAnswersOnlyFromAnOpenedKeyAndNeverWithALargeRsaPrivateKey) {
  KeyService cached(store_, *envelope_, clock_, 5);
  auto kv = V("kv");  // one snapshot: the cache is per vault snapshot
  ASSERT_TRUE(cached.Create(kv, "ec", Input("EC", "P-256")).ok());
  KeyCreateInput large = Input("RSA");
  large.key_size = 3072;
  ASSERT_TRUE(cached.Create(kv, "rsa", large).ok());
  ASSERT_TRUE(cached.Create(kv, "rsa2048", Input("RSA")).ok());
  EXPECT_FALSE(cached.OperateCached(kv, "ec", "", KeyOperation::kSign, "ES256", Digest(32)));
  ASSERT_TRUE(cached.Operate(kv, "ec", "", KeyOperation::kSign, "ES256", Digest(32)).ok());
  auto fast = cached.OperateCached(kv, "ec", "", KeyOperation::kSign, "ES256", Digest(32));
  ASSERT_TRUE(fast.has_value());
  ASSERT_TRUE(fast->ok()) << fast->status().ToString();
  EXPECT_EQ(fast->value().value.size(), 64u);
  auto wrong = cached.OperateCached(kv, "ec", "", KeyOperation::kSign, "RS256", Digest(32));
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->status().reason(), "BadParameter");
  auto not_permitted = cached.OperateCached(kv, "ec", "", KeyOperation::kEncrypt, "RSA-OAEP", "x");
  ASSERT_TRUE(not_permitted.has_value());
  EXPECT_EQ(not_permitted->status().code(), StatusCode::kPermissionDenied);
  // A malformed name or version is the worker's to answer.
  EXPECT_FALSE(cached.OperateCached(kv, "e c", "", KeyOperation::kSign, "ES256", Digest(32)));
  EXPECT_FALSE(cached.OperateCached(kv, "ec", "zz", KeyOperation::kSign, "ES256", Digest(32)));

  // A change drops the opened key; once opened again, its new state holds.
  KeyPatch disable;
  disable.enabled = false;
  ASSERT_TRUE(cached.Update(kv, "ec", "", disable).ok());
  EXPECT_FALSE(cached.OperateCached(kv, "ec", "", KeyOperation::kSign, "ES256", Digest(32)));
  EXPECT_EQ(cached.Operate(kv, "ec", "", KeyOperation::kSign, "ES256", Digest(32)).status().code(),
            StatusCode::kPermissionDenied);
  auto refused = cached.OperateCached(kv, "ec", "", KeyOperation::kSign, "ES256", Digest(32));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status().code(), StatusCode::kPermissionDenied);

  // RSA above 2048 bits: signing, decrypting and unwrapping go to a
  // worker; verifying, encrypting and wrapping are answered here. RSA-2048
  // signs here too.
  ASSERT_TRUE(cached
                  .Operate(kv, "rsa2048", "", KeyOperation::kVerify, "RS256", Digest(32),
                           std::string(256, 's'))
                  .ok());
  auto small = cached.OperateCached(kv, "rsa2048", "", KeyOperation::kSign, "RS256", Digest(32));
  ASSERT_TRUE(small.has_value() && small->ok());
  EXPECT_EQ(small->value().value.size(), 256u);
  auto sig = cached.Operate(kv, "rsa", "", KeyOperation::kSign, "RS256", Digest(32));
  ASSERT_TRUE(sig.ok());
  EXPECT_FALSE(cached.OperateCached(kv, "rsa", "", KeyOperation::kSign, "RS256", Digest(32)));
  EXPECT_FALSE(cached.OperateCached(kv, "rsa", "", KeyOperation::kDecrypt, "RSA-OAEP",
                                    std::string(384, 'x')));
  EXPECT_FALSE(cached.OperateCached(kv, "rsa", "", KeyOperation::kUnwrapKey, "RSA-OAEP",
                                    std::string(384, 'x')));
  auto verified =
      cached.OperateCached(kv, "rsa", "", KeyOperation::kVerify, "RS256", Digest(32), sig->value);
  ASSERT_TRUE(verified.has_value() && verified->ok());
  EXPECT_TRUE(verified->value().verified);
  auto wrapped = cached.OperateCached(kv, "rsa", "", KeyOperation::kWrapKey, "RSA-OAEP", "dek");
  ASSERT_TRUE(wrapped.has_value() && wrapped->ok());
  auto unwrapped =
      cached.Operate(kv, "rsa", "", KeyOperation::kUnwrapKey, "RSA-OAEP", wrapped->value().value);
  ASSERT_TRUE(unwrapped.ok());
  EXPECT_EQ(unwrapped->value, "dek");

  // The opened key lasts the cache's lifetime.
  clock_.Advance(5);
  EXPECT_FALSE(
      cached.OperateCached(kv, "rsa", "", KeyOperation::kVerify, "RS256", Digest(32), sig->value));
}

TEST_F(KeyServiceTest, EncryptionAndWrappingRoundTrip) {
  ASSERT_TRUE(service_.Create(V("kv"), "k", Input("RSA")).ok());
  for (const char* alg : {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}) {
    auto sealed = service_.Operate(V("kv"), "k", "", KeyOperation::kWrapKey, alg, "data key 32 b");
    ASSERT_TRUE(sealed.ok()) << alg;
    auto opened = service_.Operate(V("kv"), "k", "", KeyOperation::kUnwrapKey, alg, sealed->value);
    ASSERT_TRUE(opened.ok()) << alg;
    EXPECT_EQ(opened->value, "data key 32 b");
  }
  auto garbage =
      service_.Operate(V("kv"), "k", "", KeyOperation::kDecrypt, "RSA-OAEP", std::string(256, 'x'));
  EXPECT_EQ(garbage.status().reason(), "BadParameter");
}

TEST_F(KeyServiceTest, ImportRefusesPublicOnlyAndHardwareKeys) {
  auto source = crypto::AsymKey::Generate("EC", 0, "P-384");
  ASSERT_TRUE(source.ok());
  KeyImportInput bad;
  bad.jwk = (*source)->PublicJwk();  // no private part
  EXPECT_EQ(service_.Import(V("kv"), "imported", bad).status().reason(), "BadParameter");
  bad.hsm = true;
  EXPECT_EQ(service_.Import(V("kv"), "imported", bad).status().reason(), "BadParameter");
  EXPECT_TRUE(service_.List(V("kv"), "", 25)->items.empty());
}

TEST_F(KeyServiceTest, DeleteRecoverPurgeAndPurgeProtection) {
  ASSERT_TRUE(service_.Create(V("kv"), "k", Input("EC")).ok());
  auto deleted = service_.Delete(V("kv"), "k");
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->deleted);
  EXPECT_EQ(deleted->scheduled_purge_date, clock_.NowSeconds() + 7 * 86400);
  EXPECT_EQ(service_.Get(V("kv"), "k", "").status().reason(), "KeyNotFound");
  EXPECT_EQ(service_.Create(V("kv"), "k", Input("EC")).status().reason(), "Conflict");
  EXPECT_EQ(service_.ListDeleted(V("kv"), "", 25)->items.size(), 1u);
  ASSERT_TRUE(service_.Recover(V("kv"), "k").ok());
  EXPECT_TRUE(service_.Get(V("kv"), "k", "").ok());
  ASSERT_TRUE(service_.Delete(V("kv"), "k").ok());
  ASSERT_TRUE(service_.Purge(V("kv"), "k").ok());
  EXPECT_EQ(service_.GetDeleted(V("kv"), "k").status().message(), "Deleted Key not found: k");

  ASSERT_TRUE(service_.Create(V("protected"), "k", Input("EC")).ok());
  ASSERT_TRUE(service_.Delete(V("protected"), "k").ok());
  EXPECT_EQ(service_.Purge(V("protected"), "k").code(), StatusCode::kPermissionDenied);
}

TEST_F(KeyServiceTest, BackupRestoresEveryVersionThatStillWorks) {
  auto v1 = service_.Create(V("kv"), "k", Input("RSA"));
  ASSERT_TRUE(v1.ok());
  auto wrapped = service_.Operate(V("kv"), "k", "", KeyOperation::kWrapKey, "RSA-OAEP-256", "dek");
  ASSERT_TRUE(wrapped.ok());
  auto v2 = service_.Rotate(V("kv"), "k");
  ASSERT_TRUE(v2.ok());
  EXPECT_NE(v2->record.version, v1->record.version);
  EXPECT_EQ(v2->jwk["key_ops"], v1->jwk["key_ops"]);
  EXPECT_NE(v2->jwk["n"], v1->jwk["n"]);
  auto blob = service_.Backup(V("kv"), "k");
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(blob->find("PRIVATE"), std::string::npos);
  EXPECT_EQ(service_.Restore(V("kv"), *blob).status().reason(), "Conflict");
  ASSERT_TRUE(service_.Delete(V("kv"), "k").ok());
  ASSERT_TRUE(service_.Purge(V("kv"), "k").ok());
  auto restored = service_.Restore(V("kv"), *blob);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->record.version, v2->record.version);
  EXPECT_EQ(restored->record.created, v2->record.created);
  // The first version unwraps what it wrapped before the backup.
  auto opened = service_.Operate(V("kv"), "k", v1->record.version, KeyOperation::kUnwrapKey,
                                 "RSA-OAEP-256", wrapped->value);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->value, "dek");
  EXPECT_EQ(service_.ListVersions(V("kv"), "k", "", 25)->items.size(), 2u);
  // A secret's backup is not a key's, and garbage is refused.
  ASSERT_TRUE(secrets_.Set(V("kv"), "s", SecretInput{"v", "", "{}", true, {}, {}}).ok());
  auto secret_blob = secrets_.Backup(V("kv"), "s");
  ASSERT_TRUE(secret_blob.ok());
  EXPECT_EQ(service_.Restore(V("kv"), *secret_blob).status().reason(), "BadParameter");
  EXPECT_FALSE(service_.Restore(V("kv"), "garbage").ok());
}

TEST_F(KeyServiceTest, TheSchedulerRotatesKeysWhosePolicySaysSo) {
  auto first = service_.Create(V("kv"), "k", Input("EC"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(service_.Create(V("kv"), "still", Input("EC")).ok());
  EXPECT_EQ(service_.GetRotationPolicy(V("kv"), "k")->at("lifetimeActions").size(), 1u);
  Json body = {{"lifetimeActions", Json::array({Json{{"trigger", {{"timeAfterCreate", "P7D"}}},
                                                     {"action", {{"type", "Rotate"}}}}})},
               {"attributes", {{"expiryTime", "P30D"}}}};
  ASSERT_TRUE(service_.SetRotationPolicy(V("kv"), "k", body).ok());
  EXPECT_EQ(service_.SetRotationPolicy(V("kv"), "missing", body).status().reason(), "KeyNotFound");
  EXPECT_EQ(*service_.RotateDue(registry_), 0);
  clock_.Advance(8 * 86400);
  EXPECT_EQ(*service_.RotateDue(registry_), 1);
  auto latest = service_.Get(V("kv"), "k", "");
  ASSERT_TRUE(latest.ok());
  EXPECT_NE(latest->record.version, first->record.version);
  EXPECT_EQ(latest->record.exp, clock_.NowSeconds() + 30 * 86400);
  EXPECT_EQ(latest->jwk["crv"], "P-256");
  // Not due again until its own seven days have passed.
  EXPECT_EQ(*service_.RotateDue(registry_), 0);
  EXPECT_EQ(service_.ListVersions(V("kv"), "still", "", 25)->items.size(), 1u);
}

}  // namespace
}  // namespace coffer::keyvault
