#include "keyvault/certificate_service.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/certificate.h"
#include "crypto/primitives.h"
#include "storage/memory/memory_store.h"

namespace coffer::keyvault {
namespace {

Json J(const char* text) {
  return ParseJson(text).value();
}

TEST(CertificatePolicyTest, AnEmptyPolicyGetsKeyVaultsDefaults) {
  auto p = ParseCertificatePolicy(J(R"({"x509_props":{"subject":"cn=Default"},"key_props":{},
                                       "secret_props":{},"issuer":{"name":"self"}})"),
                                  CertificatePolicy());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->kty, "RSA");
  EXPECT_EQ(p->key_size, 2048);
  EXPECT_TRUE(p->exportable);
  EXPECT_FALSE(p->reuse_key);
  EXPECT_EQ(p->content_type, "application/x-pkcs12");
  EXPECT_EQ(p->validity_months, 12);
  EXPECT_EQ(p->issuer, "Self");
  EXPECT_EQ(p->subject, "CN=Default");
  EXPECT_EQ(p->key_usage, (std::vector<std::string>{"digitalSignature", "keyEncipherment"}));
  ASSERT_EQ(p->lifetime_actions.size(), 1u);
  EXPECT_EQ(p->lifetime_actions[0].action_type, "AutoRenew");
  EXPECT_EQ(p->lifetime_actions[0].lifetime_percentage, 80);
}

TEST(CertificatePolicyTest, RendersAndReadsBackTheSamePolicy) {
  auto p = ParseCertificatePolicy(
      J(R"({"key_props":{"kty":"EC","crv":"P-384","exportable":false,"reuse_key":true},
            "secret_props":{"contentType":"application/x-pem-file"},
            "x509_props":{"subject":"CN=a, O=b","sans":{"dns_names":["a.example"],
              "emails":["x@example.com"],"upns":["u@example.com"]},
              "key_usage":["DIGITALSIGNATURE"],"ekus":["1.3.6.1.5.5.7.3.1"],"validity_months":3},
            "lifetime_actions":[{"trigger":{"days_before_expiry":10},
              "action":{"action_type":"emailcontacts"}}],
            "issuer":{"name":"Self","cty":"OV-SSL"}})"),
      CertificatePolicy());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->key_usage, std::vector<std::string>{"digitalSignature"});
  EXPECT_EQ(p->lifetime_actions[0].action_type, "EmailContacts");
  Json rendered = RenderCertificatePolicy(*p, "https://v/certificates/c/policy");
  EXPECT_EQ(rendered["id"], "https://v/certificates/c/policy");
  EXPECT_EQ(rendered["key_props"]["crv"], "P-384");
  EXPECT_FALSE(rendered["key_props"].contains("key_size"));
  auto again = LoadCertificatePolicy(ToJson(rendered));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(ToJson(RenderCertificatePolicy(*again, "")), ToJson(RenderCertificatePolicy(*p, "")));
}

TEST(CertificatePolicyTest, APatchKeepsWhatItDoesNotName) {
  auto base = ParseCertificatePolicy(
      J(R"({"key_props":{"kty":"EC","crv":"P-521"},"x509_props":{"subject":"CN=a"}})"),
      CertificatePolicy());
  ASSERT_TRUE(base.ok());
  auto patched = ParseCertificatePolicy(J(R"({"x509_props":{"validity_months":2}})"), *base);
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(patched->crv, "P-521");
  EXPECT_EQ(patched->subject, "CN=a");
  EXPECT_EQ(patched->validity_months, 2);
  // Switching the type starts from that type's default size.
  auto rsa = ParseCertificatePolicy(J(R"({"key_props":{"kty":"RSA"}})"), *base);
  ASSERT_TRUE(rsa.ok());
  EXPECT_EQ(rsa->key_size, 2048);
  EXPECT_EQ(rsa->crv, "");
}

TEST(CertificatePolicyTest, RefusesWhatKeyVaultRefuses) {
  const char* bad[] = {
      R"([])",
      R"({"x509_props":{}})",
      R"({"x509_props":{"subject":"CN=a"},"key_props":{"kty":"RSA","key_size":1024}})",
      R"({"x509_props":{"subject":"CN=a"},"key_props":{"kty":"RSA-HSM"}})",
      R"({"x509_props":{"subject":"CN=a"},"key_props":{"kty":"EC","crv":"P-192"}})",
      R"({"x509_props":{"subject":"CN=a"},"key_props":{"kty":"EC","key_size":256}})",
      R"({"x509_props":{"subject":"CN=a"},"key_props":"RSA"})",
      R"({"x509_props":{"subject":"CN=a"},"secret_props":{"contentType":"text/plain"}})",
      R"({"x509_props":{"subject":"CN=a","validity_months":0}})",
      R"({"x509_props":{"subject":"CN=a","validity_months":1201}})",
      R"({"x509_props":{"subject":"CN=a","key_usage":["everything"]}})",
      R"({"x509_props":{"subject":"CN=a","ekus":["serverAuth"]}})",
      R"({"x509_props":{"subject":"CN=a","sans":{"dns_names":["bad name"]}}})",
      R"({"x509_props":{"subject":"CN=a","sans":{"dns_names":"a.example"}}})",
      R"({"x509_props":{"subject":"nonsense"}})",
      R"({"x509_props":{"subject":"CN=a"},"lifetime_actions":[{"trigger":{},
          "action":{"action_type":"AutoRenew"}}]})",
      R"({"x509_props":{"subject":"CN=a"},"lifetime_actions":[{"trigger":
          {"lifetime_percentage":80,"days_before_expiry":3},"action":{"action_type":"AutoRenew"}}]})",
      R"({"x509_props":{"subject":"CN=a"},"lifetime_actions":[{"trigger":
          {"lifetime_percentage":100},"action":{"action_type":"AutoRenew"}}]})",
      R"({"x509_props":{"subject":"CN=a"},"lifetime_actions":[{"trigger":
          {"days_before_expiry":400},"action":{"action_type":"AutoRenew"}}]})",
      R"({"x509_props":{"subject":"CN=a"},"lifetime_actions":[{"trigger":
          {"days_before_expiry":4},"action":{"action_type":"Explode"}}]})",
      R"({"x509_props":{"subject":"CN=a"},"issuer":{"name":"Unknown"},"lifetime_actions":[
          {"trigger":{"days_before_expiry":4},"action":{"action_type":"AutoRenew"}}]})",
      R"({"x509_props":{"subject":"CN=a"},"issuer":{"name":""}})",
  };
  for (const char* text : bad) {
    auto p = ParseCertificatePolicy(J(text), CertificatePolicy());
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(p.status().reason(), "BadParameter") << text;
  }
}

class CertificateServiceTest : public ::testing::Test {
 protected:
  CertificateServiceTest()
      : clock_(1800000000),
        envelope_(Envelope::Create(crypto::RandomBytes(32)).value()),
        registry_(store_, *envelope_, clock_, 0),
        secrets_(store_, *envelope_, clock_, 0),
        keys_(store_, *envelope_, clock_, 0),
        service_(store_, clock_, secrets_, keys_) {
    for (auto [name, protect] : {std::pair{"kv", false}, std::pair{"protected", true}}) {
      storage::VaultRecord v;
      v.name = name;
      v.retention_days = 7;
      v.purge_protection = protect;
      v.tags_json = "{}";
      v.wrapped_data_key = envelope_->NewWrappedDataKey(name);
      EXPECT_TRUE(store_.CreateVault(v).ok());
    }
  }

  std::shared_ptr<const OpenVault> V(const std::string& name = "kv") {
    return registry_.Get(name).value();
  }

  static CertificateCreateInput Input(const char* policy) {
    CertificateCreateInput in;
    in.policy = J(policy);
    return in;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  std::unique_ptr<Envelope> envelope_;
  VaultRegistry registry_;
  SecretService secrets_;
  KeyService keys_;
  CertificateService service_;
};

TEST_F(CertificateServiceTest, CreateWritesTheCertificateItsKeyAndItsSecret) {
  auto op = service_.Create(V(), "Web",
                            Input(R"({"key_props":{"kty":"EC"},"x509_props":{"subject":"CN=web",
               "sans":{"dns_names":["web.example"]}},"secret_props":{"contentType":
               "application/x-pem-file"},"issuer":{"name":"Self"}})"));
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(op->status, "completed");
  EXPECT_EQ(op->name, "Web");
  auto csr = crypto::ReadCsr(op->csr);
  ASSERT_TRUE(csr.ok()) << csr.status().ToString();

  auto cert = service_.Get(V(), "web", "");
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  auto details = crypto::ReadCertificateDer(cert->cer);
  ASSERT_TRUE(details.ok());
  EXPECT_EQ(details->subject, "CN=web");
  EXPECT_EQ(details->sans.dns_names, std::vector<std::string>{"web.example"});
  EXPECT_EQ(details->public_key_der, csr->public_key_der);
  EXPECT_EQ(cert->x5t, details->sha1_thumbprint);
  EXPECT_EQ(cert->record.nbf, details->not_before);
  EXPECT_EQ(cert->record.exp, details->not_after);
  EXPECT_EQ(*cert->record.exp - *cert->record.nbf, int64_t{365} * 86400);
  ASSERT_TRUE(cert->policy.has_value());
  EXPECT_EQ(cert->policy->crv, "P-256");

  // The key is the certificate's, managed, with the same version.
  auto key = keys_.Get(V(), "web", cert->record.version);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->managed);
  auto spki = crypto::PublicKeyDerFromJwk(key->jwk);
  ASSERT_TRUE(spki.ok());
  EXPECT_EQ(*spki, details->public_key_der);
  // The secret holds the key and the certificate, as PEM.
  auto secret = secrets_.Get(V(), "web", "");
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_TRUE(secret->managed);
  EXPECT_EQ(secret->record.content_type, "application/x-pem-file");
  auto bundle = crypto::ReadPemBundle(*secret->value);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  EXPECT_EQ(bundle->chain_der, std::vector<std::string>{cert->cer});
  EXPECT_EQ(bundle->key->PublicKeyDer(), details->public_key_der);
  // The sealed value in the store is not the PEM.
  auto raw = store_.GetSecret("kv", "web", "", false);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->version.sealed_value.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(CertificateServiceTest, APkcs12SecretOpensWithoutAPassword) {
  ASSERT_TRUE(service_.Create(V(), "p", Input(R"({"x509_props":{"subject":"CN=p"}})")).ok());
  auto secret = secrets_.Get(V(), "p", "");
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->record.content_type, "application/x-pkcs12");
  auto pfx = Base64Decode(*secret->value);
  ASSERT_TRUE(pfx.has_value());
  auto bundle = crypto::ReadPkcs12(*pfx, "");
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  EXPECT_EQ(bundle->key->key_size(), 2048);
}

TEST_F(CertificateServiceTest, CreateWithoutAPolicyUsesTheCurrentOne) {
  EXPECT_EQ(service_.Create(V(), "np", CertificateCreateInput()).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(service_.Create(V(), "np", Input(R"({"x509_props":{"subject":"CN=one"}})")).ok());
  auto patched = service_.UpdatePolicy(V(), "np", J(R"({"x509_props":{"subject":"CN=two"}})"));
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(service_.GetPolicy(V(), "np")->subject, "CN=two");
  ASSERT_TRUE(service_.Create(V(), "np", CertificateCreateInput()).ok());
  auto latest = service_.Get(V(), "np", "");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(crypto::ReadCertificateDer(latest->cer)->subject, "CN=two");
  // A create with a policy makes that policy current again.
  ASSERT_TRUE(service_.Create(V(), "np", Input(R"({"x509_props":{"subject":"CN=three"}})")).ok());
  EXPECT_EQ(service_.GetPolicy(V(), "np")->subject, "CN=three");
}

TEST_F(CertificateServiceTest, ReuseKeyKeepsTheKeyOfTheLatestVersionWhileItFits) {
  auto public_key = [&] {
    return crypto::ReadCertificateDer(service_.Get(V(), "r", "")->cer)->public_key_der;
  };
  const char* reuse = R"({"x509_props":{"subject":"CN=r"},"key_props":{"kty":"EC",
                          "reuse_key":true}})";
  ASSERT_TRUE(service_.Create(V(), "r", Input(reuse)).ok());
  std::string first = public_key();
  ASSERT_TRUE(service_.Create(V(), "r", Input(reuse)).ok());
  EXPECT_EQ(public_key(), first);
  // Another curve cannot reuse it; without reuse_key every version is new.
  ASSERT_TRUE(service_
                  .Create(V(), "r", Input(R"({"x509_props":{"subject":"CN=r"},
                            "key_props":{"kty":"EC","crv":"P-384","reuse_key":true}})"))
                  .ok());
  std::string second = public_key();
  EXPECT_NE(second, first);
  ASSERT_TRUE(service_
                  .Create(V(), "r", Input(R"({"x509_props":{"subject":"CN=r"},
                            "key_props":{"kty":"EC","crv":"P-384"}})"))
                  .ok());
  EXPECT_NE(public_key(), second);
}

TEST_F(CertificateServiceTest, OnlyTheSelfIssuerSignsForNow) {
  auto op = service_.Create(V(), "u", Input(R"({"x509_props":{"subject":"CN=u"},
                                               "issuer":{"name":"Unknown"}})"));
  EXPECT_EQ(op.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_.Get(V(), "u", "").status().code(), StatusCode::kNotFound);
}

TEST_F(CertificateServiceTest, ImportsWhatAnExportedSecretHolds) {
  ASSERT_TRUE(service_.Create(V(), "src", Input(R"({"x509_props":{"subject":"CN=src"}})")).ok());
  auto secret = secrets_.Get(V(), "src", "");
  ASSERT_TRUE(secret.ok());
  CertificateImportInput in;
  in.value = *secret->value;
  auto imported = service_.Import(V(), "copy", in);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->cer, service_.Get(V(), "src", "")->cer);
  EXPECT_EQ(imported->policy->issuer, "Unknown");
  EXPECT_EQ(imported->policy->subject, "CN=src");
  EXPECT_EQ(service_.GetOperation(V(), "copy").status().code(), StatusCode::kNotFound);
  // Garbage and a wrong password leave nothing behind.
  in.value = "bm90IGEgY2VydA==";
  EXPECT_EQ(service_.Import(V(), "junk", in).status().code(), StatusCode::kInvalidArgument);
  in.value = *secret->value;
  in.password = "not-the-password";
  auto wrong = service_.Import(V(), "junk", in);
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message().find("not-the-password"), std::string::npos);
  EXPECT_EQ(service_.Get(V(), "junk", "").status().code(), StatusCode::kNotFound);
}

TEST_F(CertificateServiceTest, DeleteRecoverAndPurgeTakeTheKeyAndSecretAlong) {
  ASSERT_TRUE(service_.Create(V(), "life", Input(R"({"x509_props":{"subject":"CN=l"}})")).ok());
  auto deleted = service_.Delete(V(), "life");
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_TRUE(deleted->deleted);
  EXPECT_EQ(deleted->scheduled_purge_date, 1800000000 + 7 * 86400);
  EXPECT_EQ(secrets_.Get(V(), "life", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(keys_.Get(V(), "life", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_.ListDeleted(V(), "", 10)->items.size(), 1u);
  EXPECT_EQ(
      service_.Create(V(), "life", Input(R"({"x509_props":{"subject":"CN=l"}})")).status().reason(),
      "Conflict");
  ASSERT_TRUE(service_.Recover(V(), "life").ok());
  EXPECT_TRUE(secrets_.Get(V(), "life", "").ok());
  ASSERT_TRUE(service_.Delete(V(), "life").ok());
  ASSERT_TRUE(service_.Purge(V(), "life").ok());
  EXPECT_EQ(store_.GetSecret("kv", "life", "", true).status().code(), StatusCode::kNotFound);
  // Purge protection holds.
  ASSERT_TRUE(
      service_.Create(V("protected"), "kept", Input(R"({"x509_props":{"subject":"CN=k"}})")).ok());
  ASSERT_TRUE(service_.Delete(V("protected"), "kept").ok());
  EXPECT_EQ(service_.Purge(V("protected"), "kept").code(), StatusCode::kPermissionDenied);
}

TEST_F(CertificateServiceTest, UpdateDisablesTheKeyAndSecretVersionToo) {
  ASSERT_TRUE(service_.Create(V(), "d", Input(R"({"x509_props":{"subject":"CN=d"}})")).ok());
  CertificatePatch patch;
  patch.enabled = false;
  patch.tags_json = R"({"a":"b"})";
  auto updated = service_.Update(V(), "d", "", patch);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_FALSE(updated->record.enabled);
  EXPECT_EQ(secrets_.Get(V(), "d", "").status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(keys_.Get(V(), "d", "")->record.enabled);
  // The secret and key cannot be changed on their own.
  SecretInput set;
  set.value = "x";
  EXPECT_EQ(secrets_.Set(V(), "d", set).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(keys_.Delete(V(), "d").status().code(), StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace coffer::keyvault
