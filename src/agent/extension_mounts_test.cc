// Coffer's extensions of the Azure provider's objects, against the fake
// vault of mounts_testing.h: optional objects (absent or keeping their last
// content), objectSelector and writeTags, and the expiry signals (status
// record, warnings, gauges). The
// real server is exercised in tests/integration/test_agent_extensions.py.

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/csi_provider.h"
#include "agent/metrics.h"
#include "agent/mount_builder.h"
#include "agent/mount_manager.h"
#include "agent/mounts_testing.h"
#include "agent/vault_reader.h"
#include "common/json.h"
#include "common/testing/temp_dir.h"

namespace coffer::agent {
namespace {

namespace fs = std::filesystem;
using mounts_testing::ManagerTest;
using mounts_testing::MountsTest;

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

AzureObject Optional(AzureObject o, bool keep = false) {
  o.optional = true;
  o.keep_last_known = keep;
  return o;
}

const ObjectResult* Find(const BuiltMount& b, const std::string& id) {
  for (const ObjectResult& o : b.objects) {
    if (o.id == id) {
      return &o;
    }
  }
  return nullptr;
}

TEST_F(MountsTest, OptionalObjectsMissingDisabledOrForbiddenLeaveTheMountGoingOn) {
  cloud_->Put("db", "v1");
  cloud_->Allow("missing", "app");  // may read it, but it does not exist: 404
  cloud_->Put("denied", "x", {"someone-else"});
  cloud_->Put("off", "zq-off-value");
  cloud_->Disable("off", 0);
  VaultReader reader(options_);
  auto round = reader.NewRound();
  BuiltMount b = Build(Params({Secret("db"), Optional(Secret("missing")),
                               Optional(Secret("denied")), Optional(Secret("off"))}),
                       Sp("app", "good-app"), *round);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 1u);
  EXPECT_EQ(b.files[0].path, "db");
  ASSERT_EQ(b.objects.size(), 4u);
  EXPECT_FALSE(b.objects[0].skipped);
  const ObjectResult* missing = Find(b, "secret/missing");
  ASSERT_NE(missing, nullptr);
  EXPECT_TRUE(missing->optional && missing->skipped && !missing->kept);
  EXPECT_EQ(missing->status.code(), StatusCode::kNotFound);
  const ObjectResult* denied = Find(b, "secret/denied");
  ASSERT_NE(denied, nullptr);
  EXPECT_EQ(denied->status.code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(IsDisabled(denied->status));
  const ObjectResult* off = Find(b, "secret/off");
  ASSERT_NE(off, nullptr);
  EXPECT_TRUE(off->skipped);
  EXPECT_TRUE(IsDisabled(off->status)) << off->status.ToString();
  EXPECT_EQ(off->status.message().find("zq-off-value"), std::string::npos) << "no value";

  // Without `optional` the same object fails the mount, all or nothing.
  BuiltMount strict =
      Build(Params({Secret("db"), Secret("missing")}), Sp("app", "good-app"), *round);
  EXPECT_EQ(strict.status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(strict.files.empty());

  // The vault down is no reason to leave an optional object out: the mount
  // fails and keeps what it has.
  cloud_->SetDown(true);
  auto down = reader.NewRound();
  BuiltMount unavailable = Build(Params({Optional(Secret("db"))}), Sp("app", "good-app"), *down);
  EXPECT_EQ(unavailable.status.code(), StatusCode::kUnavailable) << unavailable.status.ToString();
  EXPECT_TRUE(unavailable.files.empty());
}

TEST_F(MountsTest, AnOptionalObjectKeepsItsLastContentOnlyFromWhereTheMountIs) {
  auto tmp = test::TempDir::Create("coffer-agent-optional-");
  ASSERT_TRUE(tmp.ok());
  fs::path dir = tmp->path();
  std::ofstream(dir / "gone") << "last";
  cloud_->Put("db", "v1");
  cloud_->Allow("gone", "app");
  VaultReader reader(options_);
  auto round = reader.NewRound();
  BuildOptions bo;
  bo.vault_dns_suffix = mounts_testing::kSuffix;
  bo.previous_dir = dir.string();
  BuiltMount b = BuildMount(Params({Secret("db"), Optional(Secret("gone"), true)}),
                            Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 2u);
  EXPECT_EQ(b.files[1].path, "gone");
  EXPECT_EQ(b.files[1].contents, "last");
  const ObjectResult* gone = Find(b, "secret/gone");
  ASSERT_NE(gone, nullptr);
  EXPECT_TRUE(gone->skipped && gone->kept);

  // With writeTags its tags file stays too.
  std::ofstream(dir / "gone.tags.json") << "{\"a\":\"b\"}\n";
  AzureObject tagged = Optional(Secret("gone"), true);
  tagged.write_tags = true;
  BuiltMount with_tags = BuildMount(Params({tagged}), Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(with_tags.status.ok());
  ASSERT_EQ(with_tags.files.size(), 2u);
  EXPECT_EQ(with_tags.files[1].path, "gone.tags.json");
  EXPECT_EQ(with_tags.files[1].contents, "{\"a\":\"b\"}\n");

  // Nothing there yet (or no previous directory): absent.
  fs::remove(dir / "gone");
  fs::remove(dir / "gone.tags.json");
  BuiltMount none = BuildMount(Params({Secret("db"), Optional(Secret("gone"), true)}),
                               Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(none.status.ok());
  EXPECT_EQ(none.files.size(), 1u);
  EXPECT_FALSE(Find(none, "secret/gone")->kept);
  // A directory of that name is not content.
  fs::create_directory(dir / "gone");
  none = BuildMount(Params({Optional(Secret("gone"), true)}), Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(none.status.ok());
  EXPECT_TRUE(none.files.empty());
}

// The mount's files may belong to its consumer: a link it plants, to a file
// or a directory outside the mount, is never followed; the atomic writer's
// own ..data is.
TEST_F(MountsTest, AnOptionalObjectsLastContentIsNeverReadThroughALinkOutOfTheMount) {
  auto tmp = test::TempDir::Create("coffer-agent-optional-links-");
  ASSERT_TRUE(tmp.ok());
  fs::path root = tmp->path();
  std::ofstream(root / "outside") << "root only";
  fs::create_directory(root / "outdir");
  std::ofstream(root / "outdir" / "f") << "root only too";
  fs::path target = root / "target";
  fs::create_directories(target / "..2026_12_07");
  fs::create_directory_symlink("..2026_12_07", target / "..data");
  std::ofstream(target / "..2026_12_07" / "kept") << "last";
  fs::create_symlink("..data/kept", target / "kept");
  fs::create_symlink(root / "outside", target / "..2026_12_07" / "evil");
  fs::create_symlink("..data/evil", target / "evil");
  fs::create_directory_symlink(root / "outdir", target / "..2026_12_07" / "dir");
  for (const char* name : {"kept", "evil", "dir-file"}) {
    cloud_->Allow(name, "app");
  }
  VaultReader reader(options_);
  auto round = reader.NewRound();
  BuildOptions bo;
  bo.vault_dns_suffix = mounts_testing::kSuffix;
  bo.previous_dir = target.string();
  AzureObject in_dir = Optional(Secret("dir-file"), true);
  in_dir.alias = "dir/f";
  BuiltMount b =
      BuildMount(Params({Optional(Secret("kept"), true), Optional(Secret("evil"), true), in_dir}),
                 Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 1u);
  EXPECT_EQ(b.files[0].path, "kept");
  EXPECT_EQ(b.files[0].contents, "last");
  EXPECT_FALSE(Find(b, "secret/evil")->kept);
  EXPECT_FALSE(Find(b, "secret/dir-file")->kept);

  // ..data itself may not lead out of the mount either.
  fs::remove(target / "..data");
  fs::create_directory_symlink(root / "outdir", target / "..data");
  cloud_->Allow("f", "app");
  BuiltMount through =
      BuildMount(Params({Optional(Secret("f"), true)}), Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(through.status.ok());
  EXPECT_TRUE(through.files.empty());
  // Nor may a plain mount's top-level link.
  fs::remove(target / "..data");
  BuiltMount plain =
      BuildMount(Params({Optional(Secret("evil"), true)}), Sp("app", "good-app"), *round, bo);
  ASSERT_TRUE(plain.status.ok());
  EXPECT_TRUE(plain.files.empty());
}

TEST_F(MountsTest, CsiMountsKeepLastContentOnlyUnderAKubeletVolume) {
  cloud_->Put("db", "v1");
  cloud_->Allow("gone", "app");
  auto tmp = test::TempDir::Create("coffer-agent-csi-optional-");
  ASSERT_TRUE(tmp.ok());
  fs::path volume = fs::path(tmp->path()) / "pods/u1/volumes/kubernetes.io~csi/v/mount";
  fs::create_directories(volume);
  std::ofstream(volume / "gone") << "last";
  fs::path elsewhere = fs::path(tmp->path()) / "etc";
  fs::create_directories(elsewhere);
  std::ofstream(elsewhere / "gone") << "not for the caller";
  VaultReader reader(options_);
  Json attributes = {
      {"keyvaultName", "dev"},
      {"tenantID", "t1"},
      {"clientID", "app"},
      {"objects",
       "array:\n  - |\n    objectName: db\n    objectType: secret\n  - |\n    objectName: gone\n"
       "    objectType: secret\n    optional: \"true\"\n    optionalFallback: lastKnown\n"},
      {"csi.storage.k8s.io/pod.name", "web-1"},
      {"csi.storage.k8s.io/pod.namespace", "prod"},
      {"csi.storage.k8s.io/serviceAccount.tokens",
       ToJson({{"api://AzureADTokenExchange", {{"token", "jwt-app"}}}})}};
  CsiMountRequest req;
  req.attributes = ToJson(attributes);
  req.secrets = "null";
  req.permission = "420";
  CsiProviderOptions po;
  po.vault_dns_suffix = mounts_testing::kSuffix;
  po.share_window = std::chrono::milliseconds(0);
  AgentMetrics metrics;
  CsiMountHandler handler = MakeCsiMountHandler(reader, &metrics, po);
  for (const std::string& target :
       {volume.string(), elsewhere.string(), volume.string() + "/../../x/mount",
        std::string("relative/volumes/kubernetes.io~csi/v/mount")}) {
    req.target_path = target;
    StatusOr<CsiMountResponse> res = handler(req);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    bool kept = target == volume.string();
    ASSERT_EQ(res->files.size(), kept ? 2u : 1u) << target;
    if (kept) {
      EXPECT_EQ(res->files[1].contents, "last");
    }
  }
  std::string text = metrics.Render();
  EXPECT_NE(text.find("keyvault_object_optional_unavailable{mount=\"prod/web-1\",object_type="
                      "\"secret\",object_name=\"gone\",file=\"gone\",reason=\"SecretNotFound\""),
            std::string::npos)
      << text;
}

AzureObject Selector(const std::string& prefix, std::map<std::string, std::string> tags = {},
                     const std::string& tmpl = "{{name}}") {
  AzureObject o;
  o.type = ObjectType::kSecret;
  o.format = "pem";
  o.selector = ObjectSelector{prefix, std::move(tags), tmpl};
  return o;
}

std::vector<std::string> Paths(const BuiltMount& b) {
  std::vector<std::string> out;
  for (const PayloadFile& f : b.files) {
    out.push_back(f.path);
  }
  return out;
}

TEST_F(MountsTest, ASelectorMountsEveryEnabledSecretThatMatches) {
  cloud_->AllowList("app");
  cloud_->PutTagged("app-db", "d", {{"app", "web"}});
  cloud_->PutTagged("App-cache", "c", {{"app", "web"}, {"tier", "1"}});
  cloud_->PutTagged("app-other", "o", {{"app", "batch"}});
  cloud_->PutTagged("web-db", "w", {{"app", "web"}});
  cloud_->PutTagged("app-off", "x", {{"app", "web"}});
  cloud_->Disable("app-off", 0);
  VaultReader reader(options_);
  auto round = reader.NewRound();
  AzureObject sel = Selector("app-", {{"app", "web"}}, "cfg/{{suffix}}");
  sel.write_tags = true;
  BuiltMount b = Build(Params({sel}), Sp("app", "good-app"), *round);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  // Names compare ignoring case, as Key Vault's; in name order; tags after.
  EXPECT_EQ(Paths(b), (std::vector<std::string>{"cfg/cache", "cfg/cache.tags.json", "cfg/db",
                                                "cfg/db.tags.json"}));
  EXPECT_EQ(b.files[0].contents, "c");
  EXPECT_EQ(Json::parse(b.files[1].contents), Json({{"app", "web"}, {"tier", "1"}}));
  EXPECT_EQ(b.objects[0].id, "secret/App-cache");

  // Nothing matches: an empty selection is no error. And a second mount of
  // the round shares the listing.
  BuiltMount none = Build(Params({Selector("zzz")}), Sp("app", "good-app"), *round);
  ASSERT_TRUE(none.status.ok());
  EXPECT_TRUE(none.files.empty());
  EXPECT_EQ(cloud_->lists(), 1);

  // The cap: more matches than objectSelectorLimit fail the mount.
  AzureMountParameters capped = Params({Selector("app-"), Selector("web-")});
  capped.selector_limit = 3;
  BuiltMount over = Build(capped, Sp("app", "good-app"), *round);
  EXPECT_EQ(over.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(over.status.message().find("more than objectSelectorLimit (3)"), std::string::npos)
      << over.status.ToString();
  EXPECT_TRUE(over.files.empty());
  capped.selector_limit = 4;
  EXPECT_TRUE(Build(capped, Sp("app", "good-app"), *round).status.ok());

  // A selected file that a named object also writes.
  AzureObject named = Secret("web-db");
  named.alias = "app-db";
  BuiltMount clash =
      Build(Params({Selector("app-", {{"app", "web"}}), named}), Sp("app", "good-app"), *round);
  EXPECT_EQ(clash.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(clash.status.message().find("app-db"), std::string::npos) << clash.status.ToString();
}

TEST_F(MountsTest, ASelectionGetsOnlyWhatItsIdentityMayListAndRead) {
  cloud_->AllowList("app");
  cloud_->Put("s-open", "1");
  cloud_->Put("s-closed", "2", {"someone-else"});
  cloud_->Put("s-gone", "3");
  VaultReader reader(options_);
  auto round = reader.NewRound();
  // Listed, then deleted before it is read: left out as well.
  ASSERT_TRUE(round->ListSecrets(mounts_testing::kVault, Sp("app", "good-app")).ok());
  cloud_->Remove("s-gone");
  BuiltMount b = Build(Params({Selector("s-")}), Sp("app", "good-app"), *round);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  EXPECT_EQ(Paths(b), std::vector<std::string>{"s-open"});
  ASSERT_EQ(b.objects.size(), 3u);
  EXPECT_TRUE(Find(b, "secret/s-closed")->skipped);
  EXPECT_TRUE(Find(b, "secret/s-gone")->skipped);
  // An identity that may not list fails the mount, naming the selector.
  cloud_->Put("t", "x", {"other"});
  BuiltMount refused = Build(Params({Selector("s-")}), Sp("other", "good-other"), *round);
  EXPECT_EQ(refused.status.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status.message().find("objectSelector secret/s-*"), std::string::npos)
      << refused.status.ToString();
}

TEST(SelectorTest, TemplatesAndMatching) {
  ObjectSelector s{"app-", {{"team", "a"}}, "{{suffix}}.env"};
  EXPECT_EQ(s.FileNameFor("app-db"), "db.env");
  EXPECT_EQ(s.FileNameFor("APP-db"), "db.env");
  s.file_template = "x/{{name}}-{{suffix}}";
  EXPECT_EQ(s.FileNameFor("app-db"), "x/app-db-db");
  EXPECT_TRUE(s.Matches("App-X", {{"team", "a"}, {"other", "b"}}));
  EXPECT_FALSE(s.Matches("app-x", {{"team", "A"}}));
  EXPECT_FALSE(s.Matches("app-x", {}));
  EXPECT_FALSE(s.Matches("ap", {{"team", "a"}}));
  EXPECT_FALSE(s.Matches("web-x", {{"team", "a"}}));
}

TEST(ExpiryWarnings, SoonExpiredAndFar) {
  const int64_t now = 1'800'000'000;
  EXPECT_EQ(ExpiryWarning(now + 8 * 86400, now, 7 * 86400), "");
  EXPECT_NE(ExpiryWarning(now + 3 * 86400, now, 7 * 86400).find("expires in 3 days"),
            std::string::npos);
  EXPECT_NE(ExpiryWarning(now + 5 * 3600, now, 7 * 86400).find("expires in 5 hours"),
            std::string::npos);
  EXPECT_NE(ExpiryWarning(now + 30, now, 7 * 86400).find("expires in 1 minutes"),
            std::string::npos);
  EXPECT_NE(ExpiryWarning(now - 10, now, 0).find("expired at"), std::string::npos);
  EXPECT_NE(ExpiryWarning(now, now, 0).find("still mounted"), std::string::npos);
  // Once per object, though a certificate's secret may give three files.
  std::vector<ObjectResult> objects(3);
  for (ObjectResult& o : objects) {
    o.id = "secret/tls";
    o.version = "v1";
    o.expires_on = now + 60;
  }
  std::vector<std::string> warnings = ExpiryWarnings(objects, now, 3600);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("secret/tls (version v1) expires in"), std::string::npos);
}

TEST(AgentMetrics, ObjectGaugesAndStaleMounts) {
  AgentMetrics m;
  AgentMetrics::ObjectGauge g;
  g.file = "db";
  g.object_type = "secret";
  g.object_name = "db";
  g.version = "v1";
  g.expires_on = 1000 + 3600;
  m.ObserveMount("web", {g}, 1000, 0);
  AgentMetrics::ObjectGauge pod = g;
  m.ObserveMount("prod/web-1", {pod}, 1000, 60);
  std::string text = m.Render(1000);
  EXPECT_NE(text.find("keyvault_object_expiry_seconds{mount=\"web\",object_type=\"secret\","
                      "object_name=\"db\",file=\"db\",provider=\"coffer\",os_type=\"linux\"} 3600"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("keyvault_object_version_info{mount=\"web\",object_type=\"secret\","
                      "object_name=\"db\",file=\"db\",version=\"v1\""),
            std::string::npos);
  EXPECT_NE(text.find("keyvault_object_last_change_timestamp_seconds{mount=\"web\","
                      "object_type=\"secret\",object_name=\"db\",file=\"db\",provider=\"coffer\","
                      "os_type=\"linux\"} 1000"),
            std::string::npos);
  // The same version later: the last change stays; a new one moves it.
  m.ObserveMount("web", {g}, 2000, 0);
  EXPECT_NE(m.Render(2000).find("object_name=\"db\",file=\"db\",provider=\"coffer\","
                                "os_type=\"linux\"} 1000"),
            std::string::npos);
  g.version = "v2";
  g.expires_on.reset();
  g.disabled = true;
  m.ObserveMount("web", {g}, 3000, 0);
  text = m.Render(3000);
  EXPECT_EQ(text.find("keyvault_object_expiry_seconds{mount=\"web\""), std::string::npos)
      << "no expiry, no gauge";
  EXPECT_NE(text.find("keyvault_object_disabled{mount=\"web\",object_type=\"secret\","
                      "object_name=\"db\",file=\"db\",provider=\"coffer\",os_type=\"linux\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("os_type=\"linux\"} 3000"), std::string::npos);
  // The CSI mount was not seen again within its minute: gone.
  EXPECT_EQ(text.find("prod/web-1"), std::string::npos) << text;
}

TEST_F(ManagerTest, OptionalObjectsAppearAtTheNextRefreshAndExpiryIsWarnedOf) {
  cloud_->Put("db", "v1");
  cloud_->Allow("late", "app");
  cloud_->Allow("kept", "app");
  cloud_->Put("kept", "first");
  std::ofstream(dir_ / "spc.yaml")
      << SpcOf({{{"objectName", "db"}, {"objectType", "secret"}},
                {{"objectName", "late"}, {"objectType", "secret"}, {"optional", "\"true\""}},
                {{"objectName", "kept"},
                 {"objectType", "secret"},
                 {"optional", "\"true\""},
                 {"optionalFallback", "lastKnown"}}});
  AgentMetrics metrics;
  auto manager = MountManager::Create(Options(), &metrics);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  (*manager)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "db"), "v1");
  EXPECT_EQ(Read(dir_ / "target" / "kept"), "first");
  EXPECT_FALSE(fs::exists(dir_ / "target" / "late"));
  std::vector<MountStatus> st = (*manager)->Statuses();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_TRUE(st[0].mounted);
  ASSERT_EQ(st[0].warnings.size(), 1u);
  EXPECT_NE(st[0].warnings[0].find("secret/late is optional and is left out"), std::string::npos)
      << st[0].warnings[0];
  Json record = Json::parse(Read(dir_ / "state" / "mounts" / "web.json"));
  EXPECT_EQ(record["objects"][1]["state"], "absent");
  EXPECT_EQ(record["objects"][2]["state"], "present");
  EXPECT_FALSE(record["objects"][0].contains("optional"));

  // It appears: the next refresh writes it, with the rest, and fires the hook.
  cloud_->Put("late", "now");
  // `kept` is disabled: its file keeps what it had.
  cloud_->Disable("kept", 0);
  (*manager)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "late"), "now");
  EXPECT_EQ(Read(dir_ / "target" / "kept"), "first");
  record = Json::parse(Read(dir_ / "state" / "mounts" / "web.json"));
  EXPECT_EQ(record["objects"][1]["state"], "present");
  EXPECT_EQ(record["objects"][2]["state"], "kept");
  std::string text = metrics.Render();
  EXPECT_NE(text.find("keyvault_object_optional_unavailable{mount=\"web\",object_type=\"secret\","
                      "object_name=\"kept\",file=\"kept\",reason=\"Forbidden\""),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("keyvault_object_disabled{mount=\"web\",object_type=\"secret\","
                "object_name=\"kept\",file=\"kept\",provider=\"coffer\",os_type=\"linux\"} 1"),
      std::string::npos);

  // Expiry: within the horizon (7 days by default), and expired.
  cloud_->SetExpiry("db", 0, Now() + 2 * 86400);
  (*manager)->RunCycle();
  st = (*manager)->Statuses();
  ASSERT_FALSE(st[0].warnings.empty());
  EXPECT_NE(st[0].warnings[0].find("secret/db (version "), std::string::npos);
  EXPECT_NE(st[0].warnings[0].find("expires in"), std::string::npos) << st[0].warnings[0];
  text = metrics.Render();
  size_t at = text.find(
      "keyvault_object_expiry_seconds{mount=\"web\",object_type=\"secret\","
      "object_name=\"db\"");
  ASSERT_NE(at, std::string::npos) << text;
  int64_t seconds = std::stoll(text.substr(text.find("} ", at) + 2));
  EXPECT_GT(seconds, 2 * 86400 - 120);
  EXPECT_LE(seconds, 2 * 86400);
  cloud_->SetExpiry("db", 0, Now() - 60);
  (*manager)->RunCycle();
  st = (*manager)->Statuses();
  EXPECT_NE(st[0].warnings[0].find("expired at"), std::string::npos) << st[0].warnings[0];
  EXPECT_EQ(Read(dir_ / "target" / "db"), "v1") << "an expired secret stays mounted";
  (*manager)->Stop();
}

}  // namespace
}  // namespace coffer::agent
