#include "keyvault/certificate_service.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/certificate.h"
#include "crypto/primitives.h"
#include "keyvault/names.h"
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
        authority_(store_, *envelope_, clock_),
        issuers_(store_, clock_, authority_),
        service_(store_, *envelope_, clock_, secrets_, keys_, issuers_) {
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
  CertificateAuthority authority_;
  CertificateIssuers issuers_;
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

// Signs a request as a CA outside Coffer would: a CA key of its own.
struct OutsideCa {
  std::unique_ptr<crypto::AsymKey> key = crypto::AsymKey::Generate("EC", 0, "P-256").value();
  std::string der;
  OutsideCa() {
    crypto::CertificateProfile ca;
    ca.subject = "CN=Outside CA";
    ca.not_before = 1700000000;
    ca.not_after = 1900000000;
    ca.is_ca = true;
    der = crypto::IssueCertificate(ca, key->PublicKeyDer(), *key, "").value();
  }
  std::string Sign(const std::string& csr_der) const {
    auto csr = crypto::ReadCsr(csr_der).value();
    csr.profile.not_before = 1800000000;
    csr.profile.not_after = 1810000000;
    return crypto::IssueCertificate(csr.profile, csr.public_key_der, *key, der).value();
  }
};

constexpr char kUnknown[] = R"({"x509_props":{"subject":"CN=u","sans":{"dns_names":
    ["u.example"]}},"key_props":{"kty":"EC"},"issuer":{"name":"Unknown"}})";

TEST_F(CertificateServiceTest, AnUnknownIssuerWaitsForTheMergeOfTheSignedCertificate) {
  auto op = service_.Create(V(), "U", Input(kUnknown));
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(op->status, "inProgress");
  EXPECT_EQ(op->issuer, "Unknown");
  // The certificate reads as its version-to-be, disabled, without a
  // certificate; there is no key or secret yet, and no version to list.
  auto waiting = service_.Get(V(), "u", "");
  ASSERT_TRUE(waiting.ok()) << waiting.status().ToString();
  EXPECT_TRUE(waiting->pending);
  EXPECT_TRUE(waiting->cer.empty());
  EXPECT_FALSE(waiting->record.enabled);
  EXPECT_EQ(waiting->policy->issuer, "Unknown");
  EXPECT_EQ(keys_.Get(V(), "u", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(secrets_.Get(V(), "u", "").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(service_.List(V(), "", 25)->items.empty());
  // It cannot be deleted as a certificate: only its operation can.
  EXPECT_EQ(service_.Delete(V(), "u").status().reason(), "Conflict");
  // Nor is anything imported under its name meanwhile.
  CertificateImportInput import;
  import.value = "-----BEGIN garbage";
  EXPECT_EQ(service_.Import(V(), "u", import).status().reason(), "Conflict");
  auto pending = service_.GetOperation(V(), "u");
  ASSERT_TRUE(pending.ok()) << pending.status().ToString();
  EXPECT_EQ(pending->status, "inProgress");
  EXPECT_EQ(pending->csr, op->csr);
  // A second create waits its turn.
  EXPECT_EQ(service_.Create(V(), "u", Input(kUnknown)).status().reason(), "Conflict");

  OutsideCa ca;
  // A certificate for another key is refused and changes nothing.
  auto other = crypto::AsymKey::Generate("EC", 0, "P-256").value();
  auto wrong_csr = crypto::CreateCsr(crypto::ReadCsr(op->csr)->profile, *other).value();
  CertificateMergeInput wrong;
  wrong.x5c = {ca.Sign(wrong_csr)};
  EXPECT_EQ(service_.Merge(V(), "u", wrong).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_.GetOperation(V(), "u")->status, "inProgress");

  CertificateMergeInput merge;
  merge.x5c = {ca.Sign(op->csr), ca.der};
  auto merged = service_.Merge(V(), "u", merge);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->cer, merge.x5c[0]);
  EXPECT_TRUE(merged->record.enabled);
  EXPECT_EQ(merged->record.version, waiting->record.version);
  EXPECT_FALSE(service_.Get(V(), "u", "")->pending);
  EXPECT_EQ(merged->record.exp, 1810000000);
  // The certificate, its key and its secret exist now, with the chain.
  auto secret = secrets_.Get(V(), "u", "");
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  auto pfx = crypto::ReadPkcs12(*Base64Decode(*secret->value), "");
  ASSERT_TRUE(pfx.ok()) << pfx.status().ToString();
  EXPECT_EQ(pfx->chain_der, merge.x5c);
  EXPECT_EQ(keys_.Get(V(), "u", "")->record.version, merged->record.version);
  auto done = service_.GetOperation(V(), "u");
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "completed");
  EXPECT_EQ(done->request_id, op->request_id);
  // It merges once.
  EXPECT_EQ(service_.Merge(V(), "u", merge).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_.GetPolicy(V(), "u")->issuer, "Unknown");
}

TEST_F(CertificateServiceTest, RacingMergesMakeOneVersionAndRacingIssuerWritesLoseNothing) {
  auto op = service_.Create(V(), "race", Input(kUnknown));
  ASSERT_TRUE(op.ok());
  OutsideCa ca;
  CertificateMergeInput merge;
  merge.x5c = {ca.Sign(op->csr)};
  constexpr int kThreads = 8;
  std::atomic<int> merged{0};
  std::atomic<int> refused{0};
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        auto r = service_.Merge(V(), "race", merge);
        (r.ok() ? merged : refused).fetch_add(1);
        if (!r.ok()) {
          // Refused in Key Vault's words: being merged, or no longer pending.
          EXPECT_TRUE(r.status().reason() == "Conflict" ||
                      r.status().reason() == "PendingCertificateNotFound")
              << r.status().ToString();
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
  }
  EXPECT_EQ(merged.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(service_.ListVersions(V(), "race", "", 25)->items.size(), 1u);
  EXPECT_EQ(service_.GetOperation(V(), "race")->status, "completed");

  // The vault's issuers are one document: writers of different issuers at
  // once all land.
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        auto r = issuers_.SetIssuer(V(), "racer-" + std::to_string(i),
                                    J(R"({"provider":"DigiCert"})"), true, false);
        EXPECT_TRUE(r.ok()) << r.status().ToString();
      });
    }
    for (auto& t : threads) {
      t.join();
    }
  }
  EXPECT_EQ(issuers_.ListIssuers(V())->size(), static_cast<size_t>(kThreads));
}

TEST_F(CertificateServiceTest, ACancelledOperationCannotBeMergedAndADeletedOneIsGone) {
  auto op = service_.Create(V(), "c", Input(kUnknown));
  ASSERT_TRUE(op.ok());
  auto cancelled = service_.CancelOperation(V(), "c");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status, "cancelled");
  EXPECT_TRUE(cancelled->cancellation_requested);
  OutsideCa ca;
  CertificateMergeInput merge;
  merge.x5c = {ca.Sign(op->csr)};
  EXPECT_EQ(service_.Merge(V(), "c", merge).status().reason(), "Conflict");
  auto dropped = service_.DeleteOperation(V(), "c");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(dropped->request_id, op->request_id);
  EXPECT_EQ(service_.GetOperation(V(), "c").status().reason(), "PendingCertificateNotFound");
  EXPECT_EQ(service_.Get(V(), "c", "").status().code(), StatusCode::kNotFound);

  // A completed operation's record can be dropped too; the version stays.
  ASSERT_TRUE(service_.Create(V(), "s", Input(R"({"x509_props":{"subject":"CN=s"}})")).ok());
  EXPECT_EQ(service_.CancelOperation(V(), "s")->status, "completed");
  ASSERT_TRUE(service_.DeleteOperation(V(), "s").ok());
  EXPECT_EQ(service_.GetOperation(V(), "s").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(service_.Get(V(), "s", "").ok());
}

TEST_F(CertificateServiceTest, APendingRenewalLeavesTheCurrentVersionInPlace) {
  ASSERT_TRUE(service_
                  .Create(V(), "r", Input(R"({"x509_props":{"subject":"CN=r"},
                                                  "key_props":{"kty":"EC"}})"))
                  .ok());
  auto first = service_.Get(V(), "r", "");
  ASSERT_TRUE(first.ok());
  auto op = service_.Create(V(), "r", Input(kUnknown));
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  // The certificate, key and secret still answer with the first version;
  // the policy is the new one.
  EXPECT_EQ(service_.Get(V(), "r", "")->record.version, first->record.version);
  EXPECT_TRUE(service_.Get(V(), "r", "")->pending);
  EXPECT_EQ(secrets_.Get(V(), "r", "")->record.version, first->record.version);
  EXPECT_EQ(service_.GetPolicy(V(), "r")->issuer, "Unknown");
  OutsideCa ca;
  CertificateMergeInput merge;
  merge.x5c = {ca.Sign(op->csr)};
  auto merged = service_.Merge(V(), "r", merge);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_NE(merged->record.version, first->record.version);
  EXPECT_EQ(service_.Get(V(), "r", "")->record.version, merged->record.version);
  // Deleting the certificate drops an operation in progress with it.
  ASSERT_TRUE(service_.Create(V(), "r", Input(kUnknown)).ok());
  ASSERT_TRUE(service_.Delete(V(), "r").ok());
  ASSERT_TRUE(service_.Recover(V(), "r").ok());
  EXPECT_EQ(service_.GetOperation(V(), "r")->status, "completed");
}

TEST_F(CertificateServiceTest, ACofferIssuerSignsWithinItsRules) {
  auto issuer = issuers_.SetIssuer(V(), "corp", J(R"({"provider":"Coffer","coffer":{
      "allowed_dns_suffixes":["corp.example"],"max_validity_months":3}})"),
                                   true, true);
  ASSERT_TRUE(issuer.ok()) << issuer.status().ToString();
  auto op = service_.Create(V(), "w", Input(R"({"x509_props":{"subject":"CN=w",
      "sans":{"dns_names":["w.corp.example"]},"validity_months":3},"key_props":{"kty":"EC"},
      "issuer":{"name":"corp"}})"));
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(op->status, "completed");
  auto cert = service_.Get(V(), "w", "");
  ASSERT_TRUE(cert.ok());
  auto chain = authority_.Chain();
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  ASSERT_EQ(chain->size(), 1u);
  const std::string* ca = &(*chain)[0];
  auto leaf = crypto::ReadCertificateDer(cert->cer);
  auto root = crypto::ReadCertificateDer(*ca);
  ASSERT_TRUE(leaf.ok() && root.ok());
  EXPECT_EQ(leaf->issuer, root->subject);
  EXPECT_TRUE(root->is_ca);
  // The secret carries the chain up to the CA.
  auto pfx = crypto::ReadPkcs12(*Base64Decode(*secrets_.Get(V(), "w", "")->value), "");
  ASSERT_TRUE(pfx.ok());
  EXPECT_EQ(pfx->chain_der, (std::vector<std::string>{cert->cer, *ca}));
  // Outside its rules, or disabled, it refuses and nothing is written.
  for (const char* bad : {
           R"({"x509_props":{"subject":"CN=x","sans":{"dns_names":["x.other.example"]},
               "validity_months":3},"issuer":{"name":"corp"}})",
           R"({"x509_props":{"subject":"CN=x","sans":{"dns_names":["evilcorp.example"]},
               "validity_months":3},"issuer":{"name":"corp"}})",
           R"({"x509_props":{"subject":"CN=x","sans":{"dns_names":["x.corp.example"]},
               "validity_months":4},"issuer":{"name":"corp"}})",
           R"({"x509_props":{"subject":"CN=x"},"issuer":{"name":"nobody"}})",
       }) {
    EXPECT_EQ(service_.Create(V(), "x", Input(bad)).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
  ASSERT_TRUE(
      issuers_.SetIssuer(V(), "corp", J(R"({"attributes":{"enabled":false}})"), false, true).ok());
  EXPECT_EQ(service_
                .Create(V(), "x", Input(R"({"x509_props":{"subject":"CN=x",
      "sans":{"dns_names":["x.corp.example"]},"validity_months":3},"issuer":{"name":"corp"}})"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_.Get(V(), "x", "").status().code(), StatusCode::kNotFound);
  // Only an installation administrator sets issuers of the Coffer provider:
  // not a new one, not a change to one, not another turned into one.
  for (auto [name, body] : {std::pair{"mine", R"({"provider":"Coffer"})"},
                            std::pair{"corp", R"({"attributes":{"enabled":true}})"}}) {
    auto refused = issuers_.SetIssuer(V(), name, J(body), std::string(name) == "mine", false);
    EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied) << name;
    EXPECT_EQ(refused.status().reason(), "Forbidden") << name;
  }
  EXPECT_EQ(issuers_.GetIssuer(V(), "mine").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(issuers_.GetIssuer(V(), "corp")->enabled);
  ASSERT_TRUE(issuers_.SetIssuer(V(), "other", J(R"({"provider":"DigiCert"})"), true, false).ok());
  EXPECT_EQ(
      issuers_.SetIssuer(V(), "other", J(R"({"provider":"Coffer"})"), false, false).status().code(),
      StatusCode::kPermissionDenied);
  EXPECT_EQ(issuers_.GetIssuer(V(), "other")->provider, "DigiCert");
  // Another provider is kept but cannot sign from here.
  ASSERT_TRUE(issuers_.SetIssuer(V(), "dc", J(R"({"provider":"DigiCert"})"), true, false).ok());
  EXPECT_EQ(service_
                .Create(V(), "x", Input(R"({"x509_props":{"subject":"CN=x"},
      "issuer":{"name":"dc"}})"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(CertificateServiceTest, AnImportedCaSignsWithItsChainFromThenOn) {
  ASSERT_TRUE(issuers_.SetIssuer(V(), "corp", J(R"({"provider":"Coffer"})"), true, true).ok());
  const char* policy = R"({"x509_props":{"subject":"CN=i","sans":{"dns_names":["i.example"]}},
      "key_props":{"kty":"EC"},"issuer":{"name":"corp"}})";
  ASSERT_TRUE(service_.Create(V(), "i", Input(policy)).ok());
  auto made = authority_.Chain();
  ASSERT_TRUE(made.ok());
  // The company's root and an intermediate under it, with the
  // intermediate's key.
  OutsideCa root;
  auto key = crypto::AsymKey::Generate("EC", 0, "P-256").value();
  crypto::CertificateProfile profile;
  profile.subject = "CN=Corp Intermediate";
  profile.not_before = 1700000000;
  profile.not_after = 1900000000;
  profile.is_ca = true;
  std::string intermediate =
      crypto::IssueCertificate(profile, key->PublicKeyDer(), *root.key, root.der).value();
  std::string pem(crypto::WritePem(*key, {intermediate, root.der}).value().view());
  ASSERT_TRUE(authority_.Import(pem).ok());
  EXPECT_EQ(authority_.Chain().value(), (std::vector<std::string>{intermediate, root.der}));
  ASSERT_TRUE(service_.Create(V(), "i", Input(policy)).ok());
  auto cert = service_.Get(V(), "i", "");
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(crypto::ReadCertificateDer(cert->cer)->issuer, "CN=Corp Intermediate");
  auto pfx = crypto::ReadPkcs12(*Base64Decode(*secrets_.Get(V(), "i", "")->value), "");
  ASSERT_TRUE(pfx.ok());
  EXPECT_EQ(pfx->chain_der, (std::vector<std::string>{cert->cer, intermediate, root.der}));
  // The earlier version keeps the chain it was made with.
  auto versions = service_.ListVersions(V(), "i", "", 25);
  ASSERT_EQ(versions->items.size(), 2u);
  // What is not a CA, or not valid now, is refused, and the CA stays.
  crypto::CertificateProfile leaf_profile = profile;
  leaf_profile.subject = "CN=not a ca";
  leaf_profile.is_ca = false;
  std::string leaf =
      crypto::IssueCertificate(leaf_profile, key->PublicKeyDer(), *root.key, root.der).value();
  crypto::CertificateProfile old_profile = profile;
  old_profile.not_after = 1750000000;
  std::string expired =
      crypto::IssueCertificate(old_profile, key->PublicKeyDer(), *root.key, root.der).value();
  for (const auto& bad : {std::string(crypto::WritePem(*key, {leaf}).value().view()),
                          std::string(crypto::WritePem(*key, {expired}).value().view()),
                          std::string("not pem"), crypto::CertificatePem(root.der).value()}) {
    EXPECT_EQ(authority_.Import(bad).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(authority_.Chain().value()[0], intermediate);
  // Another authority over the same store (another server) reads the
  // imported one.
  CertificateAuthority other(store_, *envelope_, clock_);
  EXPECT_EQ(other.Chain().value()[0], intermediate);
  EXPECT_NE((*made)[0], intermediate);
}

TEST_F(CertificateServiceTest, IssuersAndContactsAreKeptPerVaultWithTheirPasswordSealed) {
  auto set = issuers_.SetIssuer(V(), "Dc", J(R"({"provider":"DigiCert","credentials":{
      "account_id":"acct","pwd":"hunter2-issuer-password"},"org_details":{"id":"o1",
      "admin_details":[{"first_name":"A","email":"a@example.com"}]}})"),
                                true, false);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_TRUE(set->has_password);
  auto got = issuers_.GetIssuer(V(), "dc");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "Dc");
  EXPECT_EQ(got->account_id, "acct");
  EXPECT_EQ(got->org_details["admin_details"][0]["email"], "a@example.com");
  // The password is nowhere in the store in the clear.
  auto doc = store_.GetMeta(VaultDocumentKey(V()->record, "certificate-issuers"));
  ASSERT_TRUE(doc.ok() && doc->has_value());
  EXPECT_EQ((*doc)->find("hunter2"), std::string::npos);
  // A PATCH keeps what it does not name.
  auto patched = issuers_.SetIssuer(V(), "dc", J(R"({"org_details":{"id":"o2"}})"), false, false);
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(patched->account_id, "acct");
  EXPECT_EQ(patched->provider, "DigiCert");
  EXPECT_EQ(issuers_.SetIssuer(V(), "none", J(R"({"provider":"X"})"), false, false).status().code(),
            StatusCode::kNotFound);
  // Another vault does not see them.
  EXPECT_EQ(issuers_.GetIssuer(V("protected"), "dc").status().code(), StatusCode::kNotFound);
  for (const char* bad : {R"({})", R"({"provider":7})", R"({"provider":"X","credentials":[]})",
                          R"({"provider":"X","coffer":{"max_validity_months":3}})",
                          R"({"provider":"Coffer","coffer":{"allowed_dns_suffixes":["a b"]}})",
                          R"({"provider":"Coffer","coffer":{"max_validity_months":-1}})",
                          R"({"provider":"X","org_details":{"admin_details":[1]}})"}) {
    EXPECT_EQ(issuers_.SetIssuer(V(), "bad", J(bad), true, false).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(issuers_.SetIssuer(V(), "Self", J(R"({"provider":"X"})"), true, false).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_EQ(issuers_.ListIssuers(V())->size(), 1u);
  ASSERT_TRUE(issuers_.DeleteIssuer(V(), "DC").ok());
  EXPECT_EQ(issuers_.DeleteIssuer(V(), "dc").status().code(), StatusCode::kNotFound);

  EXPECT_EQ(issuers_.GetContacts(V()).status().code(), StatusCode::kNotFound);
  auto contacts = issuers_.SetContacts(
      V(), J(R"({"contacts":[{"email":"ops@example.com","name":"Ops"},{"phone":"1"}]})"));
  ASSERT_TRUE(contacts.ok()) << contacts.status().ToString();
  EXPECT_EQ(issuers_.GetContacts(V())->size(), 2u);
  for (const char* bad : {R"({})", R"({"contacts":[]})", R"({"contacts":[{}]})",
                          R"({"contacts":[{"email":"nope"}]})", R"({"contacts":[7]})"}) {
    EXPECT_EQ(issuers_.SetContacts(V(), J(bad)).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(issuers_.DeleteContacts(V())->size(), 2u);
  EXPECT_EQ(issuers_.GetContacts(V()).status().code(), StatusCode::kNotFound);
}

TEST_F(CertificateServiceTest, ABackupRestoresTheCertificateWithItsKeySecretAndPolicy) {
  ASSERT_TRUE(service_
                  .Create(V(), "b", Input(R"({"x509_props":{"subject":"CN=b"},
                                                  "key_props":{"kty":"EC"}})"))
                  .ok());
  ASSERT_TRUE(service_.Create(V(), "b", CertificateCreateInput()).ok());
  ASSERT_TRUE(service_.UpdatePolicy(V(), "b", J(R"({"x509_props":{"subject":"CN=b2"}})")).ok());
  auto before = service_.Get(V(), "b", "");
  auto secret_before = secrets_.Get(V(), "b", "");
  ASSERT_TRUE(before.ok() && secret_before.ok());
  auto blob = service_.Backup(V(), "b");
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  // The blob shows no private key.
  EXPECT_EQ(blob->find("PRIVATE"), std::string::npos);
  // Restoring over the live name is a conflict that writes nothing.
  EXPECT_EQ(service_.Restore(V(), *blob).status().reason(), "Conflict");
  ASSERT_TRUE(service_.Delete(V(), "b").ok());
  EXPECT_EQ(service_.Restore(V(), *blob).status().reason(), "Conflict");
  ASSERT_TRUE(service_.Purge(V(), "b").ok());
  // Into another vault as well as into this one.
  for (const char* vault : {"kv", "protected"}) {
    auto restored = service_.Restore(V(vault), *blob);
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    EXPECT_EQ(restored->cer, before->cer);
    EXPECT_EQ(restored->policy->subject, "CN=b2");
    EXPECT_EQ(service_.ListVersions(V(vault), "b", "", 25)->items.size(), 2u);
    auto secret = secrets_.Get(V(vault), "b", "");
    ASSERT_TRUE(secret.ok()) << secret.status().ToString();
    EXPECT_EQ(*secret->value, *secret_before->value);
    EXPECT_TRUE(secret->managed);
    EXPECT_TRUE(keys_.Get(V(vault), "b", "")->managed);
  }
  // A damaged blob is refused.
  std::string damaged = *blob;
  damaged[damaged.size() / 2] ^= 1;
  EXPECT_EQ(service_.Restore(V(), damaged).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CertificateServiceTest, AutoRenewMakesTheNextVersionWhenItIsDue) {
  ASSERT_TRUE(service_
                  .Create(V(), "auto", Input(R"({"x509_props":{"subject":"CN=auto",
      "validity_months":2},"key_props":{"kty":"EC"},"lifetime_actions":[
      {"trigger":{"days_before_expiry":20},"action":{"action_type":"AutoRenew"}},
      {"trigger":{"days_before_expiry":25},"action":{"action_type":"EmailContacts"}}]})"))
                  .ok());
  ASSERT_TRUE(service_
                  .Create(V(), "manual", Input(R"({"x509_props":{"subject":"CN=m",
      "validity_months":2},"key_props":{"kty":"EC"},"lifetime_actions":[
      {"trigger":{"lifetime_percentage":90},"action":{"action_type":"EmailContacts"}}]})"))
                  .ok());
  auto first = service_.Get(V(), "auto", "");
  ASSERT_TRUE(first.ok());
  auto leads = service_.NoticeLeads();
  ASSERT_TRUE(leads.ok());
  EXPECT_EQ(leads->at("kv/auto"), 25 * 86400);
  const int64_t lifetime = *first->record.exp - first->record.created;
  EXPECT_EQ(leads->at("kv/manual"), lifetime - lifetime * 90 / 100);
  EXPECT_EQ(service_.RenewDue(registry_).value(), 0);
  // Up to the day before the trigger nothing happens; on it, one renewal.
  clock_.Set(*first->record.exp - 21 * 86400);
  EXPECT_EQ(service_.RenewDue(registry_).value(), 0);
  clock_.Set(*first->record.exp - 20 * 86400);
  EXPECT_EQ(service_.RenewDue(registry_).value(), 1);
  auto second = service_.Get(V(), "auto", "");
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->record.version, first->record.version);
  EXPECT_GT(*second->record.exp, *first->record.exp);
  EXPECT_NE(crypto::ReadCertificateDer(second->cer)->public_key_der,
            crypto::ReadCertificateDer(first->cer)->public_key_der);
  EXPECT_EQ(secrets_.Get(V(), "auto", "")->record.version, second->record.version);
  // The new version is not due; the certificate without AutoRenew never is.
  EXPECT_EQ(service_.RenewDue(registry_).value(), 0);
  EXPECT_EQ(service_.ListVersions(V(), "manual", "", 25)->items.size(), 1u);
}

TEST_F(CertificateServiceTest, ANonExportableKeyStaysOutOfTheSecret) {
  for (const char* type : {"application/x-pkcs12", "application/x-pem-file"}) {
    SCOPED_TRACE(type);
    const bool pfx_type = std::string(type).find("pkcs12") != std::string::npos;
    std::string name = std::string("ne-") + (pfx_type ? "pfx" : "pem");
    ASSERT_TRUE(service_
                    .Create(V(), name,
                            Input((std::string(R"({"x509_props":{"subject":"CN=ne"},
                        "key_props":{"kty":"EC","exportable":false},"secret_props":{
                        "contentType":")") +
                                   type + R"("}})")
                                      .c_str()))
                    .ok());
    auto cert = service_.Get(V(), name, "");
    ASSERT_TRUE(cert.ok()) << cert.status().ToString();
    EXPECT_FALSE(cert->policy->exportable);
    auto secret = secrets_.Get(V(), name, "");
    ASSERT_TRUE(secret.ok()) << secret.status().ToString();
    EXPECT_EQ(secret->value->find("PRIVATE KEY"), std::string::npos);
    if (pfx_type) {
      // A PFX of the certificate alone: nothing to open as a key and chain.
      auto pfx = Base64Decode(*secret->value);
      ASSERT_TRUE(pfx.has_value());
      EXPECT_EQ(crypto::ReadPkcs12(*pfx, "").status().code(), StatusCode::kInvalidArgument);
    } else {
      auto certs = crypto::ReadPemCertificates(*secret->value);
      ASSERT_TRUE(certs.ok()) << certs.status().ToString();
      EXPECT_EQ(*certs, std::vector<std::string>{cert->cer});
    }
    // The key still signs in the vault.
    EXPECT_TRUE(keys_.Get(V(), name, "").ok());
  }
  // An import may say so too.
  ASSERT_TRUE(service_
                  .Create(V(), "src2", Input(R"({"x509_props":{"subject":"CN=s"},
      "secret_props":{"contentType":"application/x-pem-file"}})"))
                  .ok());
  CertificateImportInput in;
  auto source = secrets_.Get(V(), "src2", "");
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  in.value = *source->value;
  in.policy = J(R"({"key_props":{"exportable":false},
                    "secret_props":{"contentType":"application/x-pem-file"}})");
  auto imported = service_.Import(V(), "imported-ne", in);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto imported_secret = secrets_.Get(V(), "imported-ne", "");
  ASSERT_TRUE(imported_secret.ok()) << imported_secret.status().ToString();
  EXPECT_EQ(imported_secret->value->find("PRIVATE KEY"), std::string::npos);
  in.policy = J(R"({"key_props":{"exportable":"no"}})");
  EXPECT_EQ(service_.Import(V(), "imported-bad", in).status().code(), StatusCode::kInvalidArgument);
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
