// The mounts layer against an in-process fake of the token service and one
// vault (HttpTransport seam): shared reads, authorization per identity, the
// Azure provider's output rules, the CSI Mount, standalone mounts with
// last-known-good files and reload hooks. The real server is exercised in
// tests/integration/test_agent.py.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "agent/csi_provider.h"
#include "agent/metrics.h"
#include "agent/mount_builder.h"
#include "agent/mount_manager.h"
#include "agent/mounts_testing.h"
#include "agent/vault_reader.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "common/testing/temp_dir.h"

#include <sys/wait.h>

namespace coffer::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mounts_testing::kSuffix;
using mounts_testing::ManagerTest;
using mounts_testing::MountsTest;

TEST_F(MountsTest, OneReadPerObjectAndPrincipalPerRoundHoweverManyMounts) {
  std::vector<AzureObject> objects;
  for (int i = 0; i < 10; ++i) {
    cloud_->Put("s" + std::to_string(i), "v" + std::to_string(i));
    objects.push_back(Secret("s" + std::to_string(i)));
  }
  VaultReader reader(options_);
  auto round = reader.NewRound();
  std::vector<std::thread> mounts;
  std::atomic<int> complete{0};
  for (int m = 0; m < 100; ++m) {
    mounts.emplace_back([&] {
      BuiltMount b = Build(Params(objects), Sp("app", "good-app"), *round);
      if (b.status.ok() && b.files.size() == 10 && b.files[3].contents == "v3") {
        ++complete;
      }
    });
  }
  for (auto& t : mounts) {
    t.join();
  }
  EXPECT_EQ(complete.load(), 100);
  EXPECT_EQ(cloud_->reads(), 10);
  EXPECT_EQ(reader.upstream_reads(), 10u);
  // A new round reads again.
  auto next = reader.NewRound();
  ASSERT_TRUE(Build(Params(objects), Sp("app", "good-app"), *next).status.ok());
  EXPECT_EQ(cloud_->reads(), 20);
}

// A throttled or failing vault gets no more reads from a round than a
// healthy one: the round's failure is shared, not retried per mount.
TEST_F(MountsTest, AThrottledOrFailingVaultIsReadOncePerObjectPerRound) {
  std::vector<AzureObject> objects;
  for (int i = 0; i < 10; ++i) {
    cloud_->Put("s" + std::to_string(i), "v" + std::to_string(i));
    objects.push_back(Secret("s" + std::to_string(i)));
  }
  VaultReader reader(options_);
  for (bool throttled : {true, false}) {
    SCOPED_TRACE(throttled ? "throttled" : "down");
    cloud_->SetThrottled(throttled);
    cloud_->SetDown(!throttled);
    const int before = cloud_->attempts();
    auto round = reader.NewRound();
    std::vector<std::thread> mounts;
    std::atomic<int> failed{0};
    for (int m = 0; m < 100; ++m) {
      mounts.emplace_back([&] {
        BuiltMount b = Build(Params(objects), Sp("app", "good-app"), *round);
        if (b.status.code() ==
                (throttled ? StatusCode::kResourceExhausted : StatusCode::kUnavailable) &&
            b.files.empty()) {
          ++failed;
        }
      });
    }
    for (auto& t : mounts) {
      t.join();
    }
    EXPECT_EQ(failed.load(), 100);
    // Throttled: the token was accepted, so each object is read once and
    // its 429 shared. Down: the first read's failure is the round's.
    EXPECT_LE(cloud_->attempts() - before, throttled ? 10 : 1);
  }
  // Once the vault answers, the next round reads and mounts.
  cloud_->SetDown(false);
  cloud_->SetThrottled(false);
  auto round = reader.NewRound();
  EXPECT_TRUE(Build(Params(objects), Sp("app", "good-app"), *round).status.ok());
}

TEST_F(MountsTest, AuthorizationStaysPerIdentity) {
  cloud_->Put("db", "hunter2", {"app"});
  VaultReader reader(options_);
  auto round = reader.NewRound();
  ASSERT_TRUE(Build(Params({Secret("db")}), Sp("app", "good-app"), *round).status.ok());
  // Another principal is refused by the vault, not served from the round.
  BuiltMount other = Build(Params({Secret("db")}), Sp("other", "good-other"), *round);
  EXPECT_EQ(other.status.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(other.files.empty());
  // The same principal with a wrong secret does not share the round's read.
  BuiltMount forged = Build(Params({Secret("db")}), Sp("app", "guess"), *round);
  EXPECT_EQ(forged.status.code(), StatusCode::kUnauthenticated) << forged.status.ToString();
  EXPECT_TRUE(forged.files.empty());
  EXPECT_EQ(forged.status.message().find("hunter2"), std::string::npos);
  EXPECT_EQ(forged.status.message().find("guess"), std::string::npos);
  // The same principal with its proof shares it after its own first read.
  int before = cloud_->reads();
  ASSERT_TRUE(Build(Params({Secret("db")}), Sp("app", "good-app"), *round).status.ok());
  EXPECT_EQ(cloud_->reads(), before);
}

TEST_F(MountsTest, OutputRulesOfTheAzureProvider) {
  cloud_->Put("hexed", "00ff41");
  cloud_->Put("b64", Base64Encode(std::string("\x01\x00\x02", 3)));
  cloud_->Put("plain", "text\n");
  cloud_->Put("hist", "one");
  cloud_->Put("hist", "two");
  cloud_->Put("hist", "three");
  cloud_->Put("hist", "four");
  cloud_->Disable("hist", 2);  // "three"
  VaultReader reader(options_);
  auto round = reader.NewRound();
  AzureObject hexed = Secret("hexed");
  hexed.encoding = ObjectEncoding::kHex;
  AzureObject b64 = Secret("b64");
  b64.encoding = ObjectEncoding::kBase64;
  b64.alias = "sub/dir/b64.bin";
  AzureObject plain = Secret("plain");
  plain.file_permission = 0600;
  AzureObject hist = Secret("hist");
  hist.version_history = 2;
  BuiltMount b = Build(Params({hexed, b64, plain, hist}), Sp("app", "good-app"), *round, 0640);
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  ASSERT_EQ(b.files.size(), 5u);
  EXPECT_EQ(b.files[0].path, "hexed");
  EXPECT_EQ(b.files[0].contents, std::string("\x00\xff\x41", 3));
  EXPECT_EQ(b.files[0].mode, 0640u);
  EXPECT_EQ(b.files[1].path, "sub/dir/b64.bin");
  EXPECT_EQ(b.files[1].contents, std::string("\x01\x00\x02", 3));
  EXPECT_EQ(b.files[2].contents, "text\n");
  EXPECT_EQ(b.files[2].mode, 0600u);
  // Newest enabled first: four, then two (three is disabled).
  EXPECT_EQ(b.files[3].path, "hist/0");
  EXPECT_EQ(b.files[3].contents, "four");
  EXPECT_EQ(b.files[4].path, "hist/1");
  EXPECT_EQ(b.files[4].contents, "two");
  ASSERT_EQ(b.objects.size(), 5u);
  EXPECT_EQ(b.objects[0].id, "secret/hexed");
  EXPECT_EQ(b.objects[3].id, "secret/hist/0");
  EXPECT_EQ(b.objects[4].id, "secret/hist/1");
  EXPECT_FALSE(b.objects[4].version.empty());
  EXPECT_NE(b.objects[3].version, b.objects[4].version);

  // A value that is not what objectEncoding says fails the mount.
  AzureObject bad = Secret("plain");
  bad.encoding = ObjectEncoding::kHex;
  BuiltMount failed = Build(Params({Secret("hexed"), bad}), Sp("app", "good-app"), *round);
  EXPECT_EQ(failed.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(failed.status.message().find("objectName:plain"), std::string::npos);
  EXPECT_EQ(failed.status.message().find("text"), std::string::npos) << "no value in errors";
  EXPECT_TRUE(failed.files.empty()) << "all or nothing";
}

TEST_F(MountsTest, MissingOrDeniedObjectsFailTheWholeMount) {
  cloud_->Put("ok", "fine");
  cloud_->Put("denied", "x", {"someone-else"});
  VaultReader reader(options_);
  auto round = reader.NewRound();
  AzureObject cert = Secret("tls");
  cert.type = ObjectType::kCert;
  BuiltMount c = Build(Params({Secret("ok"), cert}), Sp("app", "good-app"), *round);
  EXPECT_EQ(c.status.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(c.status.message().find("objectType:cert, objectName:tls"), std::string::npos)
      << c.status.ToString();
  EXPECT_TRUE(c.files.empty());
  BuiltMount d = Build(Params({Secret("ok"), Secret("denied")}), Sp("app", "good-app"), *round);
  EXPECT_EQ(d.status.code(), StatusCode::kPermissionDenied);
  ASSERT_EQ(d.objects.size(), 2u);
  EXPECT_TRUE(d.objects[0].status.ok());
  EXPECT_FALSE(d.objects[1].status.ok());
  BuiltMount m = Build(Params({Secret("missing")}), Sp("app", "good-app"), *round);
  EXPECT_EQ(m.status.code(), StatusCode::kPermissionDenied);  // no reader listed for it
}

TEST_F(MountsTest, CsiMountAsTheDriverSendsIt) {
  cloud_->Put("db-pass", "s3cret");
  VaultReader reader(options_);
  Json attributes = {
      {"keyvaultName", "dev"},
      {"tenantID", "t1"},
      {"clientID", "app"},
      {"objects", "array:\n  - |\n    objectName: db-pass\n    objectType: secret\n"},
      {"secretProviderClass", "app-spc"},
      {"csi.storage.k8s.io/pod.name", "web-1"},
      {"csi.storage.k8s.io/pod.namespace", "prod"},
      {"csi.storage.k8s.io/pod.uid", "1b7b"},
      {"csi.storage.k8s.io/serviceAccount.name", "web"},
      {"csi.storage.k8s.io/ephemeral", "true"},
      {"csi.storage.k8s.io/serviceAccount.tokens",
       ToJson({{"api://AzureADTokenExchange",
                {{"token", "jwt-app"}, {"expirationTimestamp", "2030-01-01T00:00:00Z"}}}})}};
  CsiMountRequest req;
  req.attributes = ToJson(attributes);
  req.secrets = "null";
  req.permission = "420";
  req.target_path = "/var/lib/kubelet/pods/1b7b/volumes/kubernetes.io~csi/v/mount";
  CsiProviderOptions po;
  po.vault_dns_suffix = kSuffix;
  AgentMetrics metrics;
  CsiMountHandler handler = MakeCsiMountHandler(reader, &metrics, po);
  StatusOr<CsiMountResponse> res = handler(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_EQ(res->files.size(), 1u);
  EXPECT_EQ(res->files[0].path, "db-pass");
  EXPECT_EQ(res->files[0].mode, 420);
  EXPECT_EQ(res->files[0].contents, "s3cret");
  ASSERT_EQ(res->object_version.size(), 1u);
  EXPECT_EQ(res->object_version[0].id, "secret/db-pass");
  EXPECT_TRUE(CheckDriverResponse(*res).ok());

  // A forged workload token is refused by the token service.
  Json forged = attributes;
  forged["csi.storage.k8s.io/serviceAccount.tokens"] =
      ToJson({{"api://AzureADTokenExchange", {{"token", "jwt-forged"}}}});
  req.attributes = ToJson(forged);
  StatusOr<CsiMountResponse> refused = handler(req);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("prod/web-1"), std::string::npos);

  for (const char* bad : {"", "[]", "{\"keyvaultName\":1}", "{", "null"}) {
    req.attributes = bad;
    EXPECT_EQ(handler(req).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  req.attributes = ToJson(attributes);
  req.permission = "0x1ff";
  EXPECT_EQ(handler(req).status().code(), StatusCode::kInvalidArgument);
  std::string text = metrics.Render();
  EXPECT_NE(text.find("node_publish_total{provider=\"coffer\",os_type=\"linux\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("node_publish_error_total{"), std::string::npos);
}

TEST(AgentMetrics, DriverNamesAndBuckets) {
  AgentMetrics m;
  m.RotationReconcile(true, "", 0.15);
  m.RotationReconcile(false, "Forbidden", 3.0);
  m.KeyvaultRequest("secret", "db\"x", "", 0.05);
  std::string text = m.Render();
  EXPECT_NE(text.find("rotation_reconcile_total{provider=\"coffer\",os_type=\"linux\","
                      "rotated=\"true\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("rotation_reconcile_error_total{provider=\"coffer\",os_type=\"linux\","
                      "error_type=\"Forbidden\""),
            std::string::npos);
  EXPECT_NE(text.find("rotation_reconcile_duration_sec_bucket{os_type=\"linux\",le=\"0.1\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("rotation_reconcile_duration_sec_bucket{os_type=\"linux\",le=\"2\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("rotation_reconcile_duration_sec_bucket{os_type=\"linux\",le=\"+Inf\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("object_name=\"db\\\"x\""), std::string::npos) << "label escaped";
}

// ---- standalone mounts ------------------------------------------------------------------

TEST_F(ManagerTest, MountsRotatesKeepsLastKnownGoodAndReloadsOncePerChange) {
  cloud_->Put("db", "v1");
  AgentMetrics metrics;
  auto manager = MountManager::Create(Options(), &metrics);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  (*manager)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "db"), "v1");
  EXPECT_EQ(fs::read_symlink(dir_ / "target" / "db"), "..data/db");
  EXPECT_EQ(Reloads(), 0) << "no reload for the first mount";

  (*manager)->RunCycle();  // unchanged: nothing written, no reload
  EXPECT_EQ(Reloads(), 0);

  cloud_->Put("db", "v2");
  (*manager)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "db"), "v2");
  (*manager)->Stop();  // reaps the reload command
  EXPECT_EQ(Reloads(), 1);

  auto again = MountManager::Create(Options(), &metrics);
  ASSERT_TRUE(again.ok());
  cloud_->SetDown(true);
  (*again)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "db"), "v2") << "old files kept while the vault is down";
  std::vector<MountStatus> st = (*again)->Statuses();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_FALSE(st[0].last_error.empty());
  EXPECT_EQ(st[0].consecutive_failures, 1);
  std::string record = Read(dir_ / "state" / "mounts" / "web.json");
  EXPECT_NE(record.find("\"lastError\""), std::string::npos);
  EXPECT_EQ(record.find("v2"), std::string::npos) << "no value in the status record";

  cloud_->SetDown(false);
  (*again)->RunCycle();
  st = (*again)->Statuses();
  EXPECT_TRUE(st[0].last_error.empty());
  EXPECT_TRUE(st[0].mounted);
  ASSERT_EQ(st[0].objects.size(), 1u);
  EXPECT_EQ(st[0].objects[0].id, "secret/db");

  // A denied object and a malformed SPC leave the files as they were.
  cloud_->Put("denied", "x", {"someone-else"});
  std::ofstream(dir_ / "spc.yaml") << Spc({"db", "denied"});
  (*again)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "db"), "v2");
  EXPECT_FALSE(fs::exists(dir_ / "target" / "denied"));
  st = (*again)->Statuses();
  EXPECT_NE(st[0].last_error.find("objectName:denied"), std::string::npos) << st[0].last_error;
  std::ofstream(dir_ / "spc.yaml") << "kind: [";
  (*again)->RunCycle();
  EXPECT_EQ(Read(dir_ / "target" / "db"), "v2");
  st = (*again)->Statuses();
  EXPECT_NE(st[0].last_error.find("spc.yaml"), std::string::npos) << st[0].last_error;
  (*again)->Stop();
  EXPECT_EQ(Reloads(), 1);
  std::string text = metrics.Render();
  EXPECT_NE(text.find("node_publish_total{provider=\"coffer\",os_type=\"linux\"} 2"),
            std::string::npos)
      << text;
}

// ---- reload hooks -------------------------------------------------------------------------

// BlockedChild is a process that blocks SIGHUP: a SIGHUP sent to it stays
// pending and shows in /proc/<pid>/status, so a test can tell whether the
// agent sent one without waiting for anything.
class BlockedChild {
 public:
  BlockedChild() {
    sigset_t hup;
    sigset_t old;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, &old);  // inherited by the child
    pid_ = ::fork();
    if (pid_ == 0) {
      for (;;) {
        ::pause();
      }
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~BlockedChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

  bool HupPending() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (StartsWith(line, "ShdPnd:")) {
        return (std::stoull(std::string(TrimWhitespace(line.substr(7))), nullptr, 16) &
                (1ull << (SIGHUP - 1))) != 0;
      }
    }
    ADD_FAILURE() << "no ShdPnd for process " << pid_;
    return false;
  }

 private:
  pid_t pid_ = -1;
};

TEST_F(ManagerTest, ASignalGoesOnlyToTheProcessOfATrustedPidFile) {
  BlockedChild child;
  ASSERT_GT(child.pid(), 0);
  fs::path pid_file = dir_ / "app.pid";
  std::ofstream(pid_file) << child.pid() << "\n";
  ASSERT_EQ(::chmod(pid_file.c_str(), 0666), 0);
  MountManagerOptions o = Options();
  o.config.mounts[0].reload =
      ReloadAction{ReloadAction::Kind::kSignal, SIGHUP, pid_file.string(), {}};
  cloud_->Put("db", "v1");
  AgentMetrics metrics;
  auto manager = MountManager::Create(o, &metrics);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  (*manager)->RunCycle();
  int version = 1;
  auto rotate = [&] {
    cloud_->Put("db", "v" + std::to_string(++version));
    (*manager)->RunCycle();
    EXPECT_EQ(Read(dir_ / "target" / "db"), "v" + std::to_string(version));
  };
  // Anyone could have written the pid file: whoever did chose the process.
  rotate();
  EXPECT_FALSE(child.HupPending()) << "a pid file everyone can write is not trusted";
  if (::geteuid() == 0) {
    ASSERT_EQ(::chmod(pid_file.c_str(), 0644), 0);
    ASSERT_EQ(::chown(pid_file.c_str(), 4242, 4242), 0);
    rotate();
    EXPECT_FALSE(child.HupPending()) << "a pid file of another user is not trusted";
    ASSERT_EQ(::chown(pid_file.c_str(), 0, 0), 0);
  }
  ASSERT_EQ(::chmod(pid_file.c_str(), 0644), 0);
  rotate();
  EXPECT_TRUE(child.HupPending()) << "the agent's own pid file is";
  (*manager)->Stop();
}

TEST_F(ManagerTest, AReloadCommandGetsNoneOfTheAgentsEnvironment) {
  const std::vector<std::pair<const char*, const char*>> planted = {
      {"AZURE_CLIENT_SECRET", "s3cr3t-client"},
      {"IDENTITY_HEADER", "s3cr3t-header"},
      {"COFFER_MASTER_KEY", "s3cr3t-master"},
      {"SOME_OTHER_SETTING", "s3cr3t-other"}};
  for (const auto& [name, value] : planted) {
    ::setenv(name, value, 1);
  }
  MountManagerOptions o = Options();
  o.config.mounts[0].reload.argv = {"/bin/sh", "-c", "env > " + (dir_ / "env").string()};
  cloud_->Put("db", "v1");
  AgentMetrics metrics;
  auto manager = MountManager::Create(o, &metrics);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  (*manager)->RunCycle();
  cloud_->Put("db", "v2");
  (*manager)->RunCycle();
  (*manager)->Stop();  // reaps the command
  for (const auto& entry : planted) {
    ::unsetenv(entry.first);
  }
  std::string env = Read(dir_ / "env");
  EXPECT_EQ(env.find("s3cr3t"), std::string::npos) << env;
  std::set<std::string> names;
  for (std::string_view line : Split(env, '\n')) {
    if (!line.empty()) {
      names.insert(std::string(line.substr(0, line.find('='))));
    }
  }
  names.erase("PWD");  // the shell's own
  EXPECT_EQ(names, (std::set<std::string>{"PATH", "COFFER_MOUNT", "COFFER_MOUNT_TARGET"})) << env;
  EXPECT_NE(env.find("COFFER_MOUNT=web\n"), std::string::npos) << env;
  EXPECT_NE(env.find("COFFER_MOUNT_TARGET=" + (dir_ / "target").string() + "\n"), std::string::npos)
      << env;
}

}  // namespace
}  // namespace coffer::agent
