// Certificates in mounts against the fake vault of mounts_testing.h, as the
// Azure provider writes them (csi-driver.md §3.4): objectType cert as the
// certificate alone; a certificate's secret as PEM (a PFX converted, the key
// first and the chain from the leaf to the root), as the PFX, or as stored;
// the separate .crt and .key files; version history; and all or nothing.
// The real server is exercised in tests/integration/test_agent_certificates.py.

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/mount_builder.h"
#include "agent/mount_manager.h"
#include "agent/mounts_testing.h"
#include "agent/vault_reader.h"
#include "common/encoding.h"
#include "common/strings.h"
#include "crypto/asym_key.h"
#include "crypto/certificate.h"

namespace coffer::agent {
namespace {

using mounts_testing::ManagerTest;
using mounts_testing::MountsTest;

constexpr char kPfx[] = "application/x-pkcs12";
constexpr char kPem[] = "application/x-pem-file";

// A root CA, an intermediate CA and a leaf, each with a P-256 key of its own,
// made with crypto::IssueCertificate.
struct Chain {
  std::unique_ptr<crypto::AsymKey> root_key, intermediate_key, leaf_key;
  std::string root, intermediate, leaf;  // DER

  // The PFX the vault keeps for it, base64, with the certificates out of
  // order (the leaf, then the root before the intermediate).
  std::string Pfx() const {
    auto pfx = crypto::WritePkcs12(*leaf_key, {leaf, root, intermediate});
    EXPECT_TRUE(pfx.ok()) << pfx.status().ToString();
    return pfx.ok() ? Base64Encode(pfx->view()) : "";
  }
  // What the Azure provider writes for it: the key, then leaf to root.
  std::string Pem() const {
    auto pem = crypto::WritePem(*leaf_key, {leaf, intermediate, root});
    EXPECT_TRUE(pem.ok()) << pem.status().ToString();
    return pem.ok() ? std::string(pem->view()) : "";
  }
  std::string CertificatesPem() const {
    return *crypto::CertificatePem(leaf) + *crypto::CertificatePem(intermediate) +
           *crypto::CertificatePem(root);
  }
};

std::unique_ptr<crypto::AsymKey> NewKey() {
  auto key = crypto::AsymKey::GenerateEc(crypto::EcCurve::kP256);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

std::string Issue(const std::string& subject, bool ca, const crypto::AsymKey& subject_key,
                  const crypto::AsymKey& issuer_key, const std::string& issuer_der) {
  crypto::CertificateProfile profile;
  profile.subject = subject;
  profile.not_before = 1700000000;
  profile.not_after = 1700000000 + 365 * 86400;
  profile.is_ca = ca;
  if (!ca) {
    profile.key_usage = {"digitalSignature"};
    profile.sans.dns_names = {"www.example.com"};
  }
  auto der = crypto::IssueCertificate(profile, subject_key.PublicKeyDer(), issuer_key, issuer_der);
  EXPECT_TRUE(der.ok()) << der.status().ToString();
  return der.ok() ? *der : "";
}

Chain MakeChain(const std::string& cn) {
  Chain c;
  c.root_key = NewKey();
  c.intermediate_key = NewKey();
  c.leaf_key = NewKey();
  c.root = Issue("CN=" + cn + " Root", true, *c.root_key, *c.root_key, "");
  c.intermediate =
      Issue("CN=" + cn + " Intermediate", true, *c.intermediate_key, *c.root_key, c.root);
  c.leaf = Issue("CN=" + cn, false, *c.leaf_key, *c.intermediate_key, c.intermediate);
  return c;
}

AzureObject Object(ObjectType type, const std::string& name, const std::string& alias = "") {
  AzureObject o;
  o.name = name;
  o.type = type;
  o.format = "pem";
  o.alias = alias;
  return o;
}

TEST_F(MountsTest, ACertIsTheCertificateAloneWithTheCertificatesVersion) {
  Chain chain = MakeChain("tls");
  cloud_->PutCertificate("tls", MakeChain("old").leaf, chain.Pfx(), kPfx);
  std::string version = cloud_->PutCertificate("tls", chain.leaf, chain.Pfx(), kPfx);
  VaultReader reader(options_);
  auto round = reader.NewRound();
  // The certificate and its secret, of one name, are two objects.
  std::vector<AzureObject> objects = {Object(ObjectType::kCert, "tls", "tls.crt"),
                                      Object(ObjectType::kSecret, "tls", "tls.pem")};
  objects[0].file_permission = 0444;
  EXPECT_EQ(BuildAtOnce(20, Params(objects), Sp("app", "good-app"), *round, 2), 20);
  EXPECT_EQ(cloud_->certificate_reads(), 1) << "one read per certificate and round";
  EXPECT_EQ(cloud_->reads(), 2) << "and one of its secret";
  BuiltMount b = Build(Params(objects), Sp("app", "good-app"), *round);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 2u);
  EXPECT_EQ(b.files[0].path, "tls.crt");
  EXPECT_EQ(b.files[0].contents, *crypto::CertificatePem(chain.leaf));
  EXPECT_TRUE(StartsWith(b.files[0].contents, "-----BEGIN CERTIFICATE-----\n"));
  EXPECT_EQ(b.files[0].contents.find("-----BEGIN", 1), std::string::npos) << "one block";
  EXPECT_EQ(b.files[0].mode, 0444u);
  ASSERT_EQ(b.objects.size(), 2u);
  EXPECT_EQ(b.objects[0].id, "cert/tls");
  EXPECT_EQ(b.objects[0].version, version);
  EXPECT_EQ(b.objects[1].id, "secret/tls");
  EXPECT_EQ(b.objects[1].version, version);

  // Another identity reads nothing; a pinned version is that version.
  BuiltMount other =
      Build(Params({Object(ObjectType::kCert, "tls")}), Sp("other", "good-other"), *round);
  EXPECT_EQ(other.status.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(other.status.message().find("objectType:cert, objectName:tls"), std::string::npos)
      << other.status.ToString();
  AzureObject pinned = Object(ObjectType::kCert, "tls");
  pinned.version = version;
  BuiltMount p = Build(Params({pinned}), Sp("app", "good-app"), *reader.NewRound());
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.files[0].contents, *crypto::CertificatePem(chain.leaf));
}

TEST_F(MountsTest, APfxSecretIsWrittenAsPemKeyFirstThenTheChainFromLeafToRoot) {
  Chain chain = MakeChain("tls");
  std::string version = cloud_->PutCertificate("tls", chain.leaf, chain.Pfx(), kPfx);
  VaultReader reader(options_);
  BuiltMount b = Build(Params({Object(ObjectType::kSecret, "tls")}), Sp("app", "good-app"),
                       *reader.NewRound(), 0600);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 1u);
  const std::string& pem = b.files[0].contents;
  EXPECT_EQ(pem, chain.Pem());
  EXPECT_TRUE(StartsWith(pem, "-----BEGIN PRIVATE KEY-----\n")) << "PKCS#8, first";
  size_t leaf = pem.find(*crypto::CertificatePem(chain.leaf));
  size_t intermediate = pem.find(*crypto::CertificatePem(chain.intermediate));
  size_t root = pem.find(*crypto::CertificatePem(chain.root));
  ASSERT_NE(root, std::string::npos);
  EXPECT_LT(leaf, intermediate);
  EXPECT_LT(intermediate, root);
  // The key is the leaf's.
  auto key = crypto::AsymKey::FromPrivatePem(pem.substr(0, leaf));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ((*key)->PublicKeyDer(), chain.leaf_key->PublicKeyDer());
  EXPECT_EQ(b.files[0].mode, 0600u);
  ASSERT_EQ(b.objects.size(), 1u);
  EXPECT_EQ(b.objects[0].id, "secret/tls");
  EXPECT_EQ(b.objects[0].version, version);
}

TEST_F(MountsTest, PfxFormatIsTheStoredTextAndWithBase64EncodingThePfxItself) {
  Chain chain = MakeChain("tls");
  std::string pfx = chain.Pfx();
  cloud_->PutCertificate("tls", chain.leaf, pfx, kPfx);
  VaultReader reader(options_);
  AzureObject text = Object(ObjectType::kSecret, "tls", "tls.pfx.b64");
  text.format = "pfx";
  AzureObject binary = Object(ObjectType::kSecret, "tls", "tls.pfx");
  binary.format = "pfx";
  binary.encoding = ObjectEncoding::kBase64;
  BuiltMount b = Build(Params({text, binary}), Sp("app", "good-app"), *reader.NewRound());
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 2u);
  EXPECT_EQ(b.files[0].contents, pfx);
  EXPECT_EQ(b.files[1].contents, *Base64Decode(pfx));
  // What was written opens with the empty password, the chain in order.
  auto opened = crypto::ReadPkcs12(b.files[1].contents, "");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->chain_der,
            (std::vector<std::string>{chain.leaf, chain.intermediate, chain.root}));
}

TEST_F(MountsTest, APemSecretIsAsStoredAndAnUnknownContentTypeFailsTheMount) {
  Chain chain = MakeChain("tls");
  cloud_->PutCertificate("pem", chain.leaf, chain.Pem(), kPem);
  // As stored, even with objectFormat pfx, as the Azure provider does.
  AzureObject pfx_format = Object(ObjectType::kSecret, "pem", "pem.pfx");
  pfx_format.format = "pfx";
  cloud_->PutCertificate("odd", chain.leaf, chain.Pem(), "text/plain");
  cloud_->Put("plain", "not a certificate");
  VaultReader reader(options_);
  auto round = reader.NewRound();
  BuiltMount b = Build(Params({Object(ObjectType::kSecret, "pem"), pfx_format,
                               Object(ObjectType::kSecret, "plain")}),
                       Sp("app", "good-app"), *round);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 3u);
  EXPECT_EQ(b.files[0].contents, chain.Pem());
  EXPECT_EQ(b.files[1].contents, chain.Pem());
  EXPECT_EQ(b.files[2].contents, "not a certificate");

  BuiltMount odd =
      Build(Params({Object(ObjectType::kSecret, "plain"), Object(ObjectType::kSecret, "odd")}),
            Sp("app", "good-app"), *round);
  EXPECT_EQ(odd.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(odd.status.message().find("objectType:secret, objectName:odd"), std::string::npos);
  EXPECT_NE(odd.status.message().find("unknown content type \"text/plain\""), std::string::npos)
      << odd.status.ToString();
  EXPECT_EQ(odd.status.message().find("PRIVATE"), std::string::npos) << "no value in errors";
  EXPECT_TRUE(odd.files.empty()) << "all or nothing";

  // A PFX that is not one fails with a message that carries none of it.
  cloud_->PutCertificate("broken", chain.leaf, Base64Encode("not a pfx at all"), kPfx);
  BuiltMount broken =
      Build(Params({Object(ObjectType::kSecret, "broken")}), Sp("app", "good-app"), *round);
  EXPECT_EQ(broken.status.code(), StatusCode::kInvalidArgument) << broken.status.ToString();
  EXPECT_EQ(broken.status.message().find("not a pfx"), std::string::npos);
  EXPECT_TRUE(broken.files.empty());
}

TEST_F(MountsTest, SeparateCrtAndKeyFilesOfACertificatesSecret) {
  Chain chain = MakeChain("tls");
  std::string version = cloud_->PutCertificate("tls", chain.leaf, chain.Pfx(), kPfx);
  cloud_->PutCertificate("pem", chain.leaf, chain.Pem(), kPem);
  cloud_->Put("plain", "x");
  AzureObject pfx = Object(ObjectType::kSecret, "tls", "tls.pfx");
  pfx.format = "pfx";
  AzureObject pem = Object(ObjectType::kSecret, "pem", "dir/pem");
  pem.file_permission = 0400;
  std::vector<AzureObject> objects = {Object(ObjectType::kSecret, "tls"), pfx, pem,
                                      Object(ObjectType::kSecret, "plain"),
                                      Object(ObjectType::kCert, "tls", "cert")};
  VaultReader reader(options_);
  auto round = reader.NewRound();
  // Off by default, as the provider's flag.
  EXPECT_EQ(Build(Params(objects), Sp("app", "good-app"), *round).files.size(), 5u);

  BuildOptions bo;
  bo.vault_dns_suffix = mounts_testing::kSuffix;
  bo.write_cert_and_key_in_separate_files = true;
  BuiltMount b = BuildMount(Params(objects), Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  std::vector<std::string> paths;
  for (const PayloadFile& f : b.files) {
    paths.push_back(f.path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"tls", "tls.crt", "tls.key", "tls.pfx", "tls.pfx.crt",
                                             "tls.pfx.key", "dir/pem", "dir/pem.crt", "dir/pem.key",
                                             "plain", "cert"}));
  std::string key_pem = chain.Pem().substr(0, chain.Pem().find("-----BEGIN CERTIFICATE-----"));
  EXPECT_EQ(b.files[0].contents, chain.Pem());
  EXPECT_EQ(b.files[1].contents, chain.CertificatesPem());
  EXPECT_EQ(b.files[2].contents, key_pem);
  EXPECT_TRUE(StartsWith(key_pem, "-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_EQ(b.files[4].contents, "") << "a PFX is not PEM";
  EXPECT_EQ(b.files[5].contents, "");
  EXPECT_EQ(b.files[7].contents, chain.CertificatesPem());
  EXPECT_EQ(b.files[8].contents, key_pem);
  EXPECT_EQ(b.files[8].mode, 0400u) << "the object's mode";
  // The same object id and version as the combined file.
  ASSERT_EQ(b.objects.size(), b.files.size());
  for (size_t i : {0, 1, 2}) {
    EXPECT_EQ(b.objects[i].id, "secret/tls");
    EXPECT_EQ(b.objects[i].version, version);
    EXPECT_EQ(b.objects[i].file, paths[i]);
  }
}

// objectVersionHistory of a certificate: the newest enabled versions,
// newest first, each the certificate of its version; and of its secret.
TEST_F(MountsTest, ACertificatesVersionHistoryIsItsNewestEnabledVersions) {
  std::vector<Chain> chains;
  std::vector<std::string> versions;
  for (int i = 0; i < 4; ++i) {
    chains.push_back(MakeChain("v" + std::to_string(i)));
    versions.push_back(
        cloud_->PutCertificate("tls", chains.back().leaf, chains.back().Pfx(), kPfx));
  }
  cloud_->DisableCertificate("tls", 2);
  VaultReader reader(options_);
  AzureObject certs = Object(ObjectType::kCert, "tls", "certs");
  certs.version_history = 3;
  AzureObject secrets = Object(ObjectType::kSecret, "tls", "bundles");
  secrets.version_history = 2;
  BuiltMount b = Build(Params({certs, secrets}), Sp("app", "good-app"), *reader.NewRound());
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 5u);
  EXPECT_EQ(b.files[0].path, "certs/0");
  EXPECT_EQ(b.files[0].contents, *crypto::CertificatePem(chains[3].leaf));
  EXPECT_EQ(b.files[1].path, "certs/1");
  EXPECT_EQ(b.files[1].contents, *crypto::CertificatePem(chains[1].leaf));  // 2 is disabled
  EXPECT_EQ(b.files[2].path, "certs/2");
  EXPECT_EQ(b.files[2].contents, *crypto::CertificatePem(chains[0].leaf));
  EXPECT_EQ(b.objects[0].id, "cert/tls/0");
  EXPECT_EQ(b.objects[0].version, versions[3]);
  EXPECT_EQ(b.objects[2].id, "cert/tls/2");
  EXPECT_EQ(b.objects[2].version, versions[0]);
  EXPECT_EQ(b.files[3].path, "bundles/0");
  EXPECT_EQ(b.files[3].contents, chains[3].Pem());
  EXPECT_EQ(b.files[4].path, "bundles/1");
  EXPECT_EQ(b.files[4].contents, chains[1].Pem());
  EXPECT_EQ(b.objects[4].id, "secret/tls/1");
  EXPECT_EQ(b.objects[4].version, versions[1]);

  // From a pinned version back; a disabled one fails the mount.
  certs.version = versions[1];
  BuiltMount pinned = Build(Params({certs}), Sp("app", "good-app"), *reader.NewRound());
  ASSERT_TRUE(pinned.status.ok()) << pinned.status.ToString();
  ASSERT_EQ(pinned.files.size(), 2u);
  EXPECT_EQ(pinned.objects[0].version, versions[1]);
  certs.version = versions[2];
  EXPECT_EQ(Build(Params({certs}), Sp("app", "good-app"), *reader.NewRound()).status.code(),
            StatusCode::kNotFound);
}

// A standalone mount of a certificate: written with the mount's mode,
// rotated, and kept as it was when a new version cannot be written; neither
// the status record nor the error carries the key.
TEST_F(ManagerTest, ACertificateRotatesAndAFailureKeepsThePreviousFiles) {
  Chain v1 = MakeChain("v1");
  cloud_->PutCertificate("tls", v1.leaf, v1.Pfx(), kPfx);
  std::ofstream(dir_ / "spc.yaml")
      << SpcOf({{{"objectName", "tls"}, {"objectType", "cert"}, {"objectAlias", "tls.crt"}},
                {{"objectName", "tls"}, {"objectType", "secret"}, {"objectAlias", "tls.pem"}}});
  MountManagerOptions options = Options();
  options.config.mounts[0].permission = 0600;
  options.write_cert_and_key_in_separate_files = true;
  auto manager = MountManager::Create(options, nullptr);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  (*manager)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "tls.crt"), *crypto::CertificatePem(v1.leaf));
  EXPECT_EQ(Read(dir_ / "target" / "tls.pem"), v1.Pem());
  EXPECT_EQ(Read(dir_ / "target" / "tls.pem.crt"), v1.CertificatesPem());
  EXPECT_TRUE(StartsWith(Read(dir_ / "target" / "tls.pem.key"), "-----BEGIN PRIVATE KEY-----"));
  EXPECT_EQ(std::filesystem::status(dir_ / "target" / "tls.pem").permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  // A version whose secret has a content type the provider refuses: nothing
  // is written.
  Chain v2 = MakeChain("v2");
  cloud_->PutCertificate("tls", v2.leaf, v2.Pem(), "application/octet-stream");
  (*manager)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "tls.crt"), *crypto::CertificatePem(v1.leaf));
  EXPECT_EQ(Read(dir_ / "target" / "tls.pem"), v1.Pem());
  std::vector<MountStatus> st = (*manager)->Statuses();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_NE(st[0].last_error.find("unknown content type"), std::string::npos) << st[0].last_error;
  std::string record = Read(dir_ / "state" / "mounts" / "web.json");
  EXPECT_EQ(record.find("PRIVATE KEY"), std::string::npos) << record;
  EXPECT_EQ(record.find(v1.Pfx().substr(100, 40)), std::string::npos) << record;

  // The next good version is written whole.
  Chain v3 = MakeChain("v3");
  std::string version = cloud_->PutCertificate("tls", v3.leaf, v3.Pfx(), kPfx);
  (*manager)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "tls.crt"), *crypto::CertificatePem(v3.leaf));
  EXPECT_EQ(Read(dir_ / "target" / "tls.pem"), v3.Pem());
  st = (*manager)->Statuses();
  EXPECT_TRUE(st[0].last_error.empty()) << st[0].last_error;
  ASSERT_EQ(st[0].objects.size(), 4u);
  EXPECT_EQ(st[0].objects[0].id, "cert/tls");
  EXPECT_EQ(st[0].objects[0].version, version);
  (*manager)->Stop();
  EXPECT_EQ(Reloads(), 1) << "one reload for the rotation";
}

}  // namespace
}  // namespace coffer::agent
