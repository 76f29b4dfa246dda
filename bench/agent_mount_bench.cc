// Mounting N secrets (issue target: 50 secrets in under 50 ms from request to
// files in place, on loopback), with the agent's own classes against a real
// server:
//   standalone, cold   a new VaultReader per mount: its own token request
//                      (the process's kept-alive connections are reused),
//                      then N reads and the atomic write (a mount from
//                      process start is bench/agent_bench.py's first figure);
//   standalone, warm   one VaultReader (token cached, connections kept), a new
//                      round per mount, so all N objects are read upstream;
//   CSI Mount + write  the upstream driver's path: Mount over the provider's
//                      Unix socket (gRPC, share window 0, so every call reads
//                      upstream), then the returned files written with the
//                      atomic writer as the driver writes them;
//   reference          N GetSecret calls one after another from one client
//                      (how a provider that reads object by object spends
//                      its time);
//   sharing            100 mounts of 10 shared secrets refreshed in one round
//                      (the agent's poll cycle) against one round per mount
//                      (reading per pod, as the driver with the Azure
//                      provider): upstream reads and the cycle's time.
// Every mount goes into a fresh target directory under --dir (put it on a
// tmpfs, as the driver's targets are), so every file is really written.
//
// Usage: agent_mount_bench --dir DIR [--objects 50] [--runs 30]
// Needs the dev server's environment (bench/run.sh sources dev.env):
// COFFER_VAULT_URL (the dev vault), AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
// AZURE_AUTHORITY_HOST, COFFER_CA_FILE or REQUESTS_CA_BUNDLE.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/atomic_writer.h"
#include "agent/csi/csi_server.h"
#include "agent/csi/provider.grpc.pb.h"
#include "agent/csi_provider.h"
#include "agent/mount_builder.h"
#include "agent/spc.h"
#include "agent/vault_reader.h"
#include "coffer/credentials.h"
#include "coffer/secret_client.h"
#include "common/json.h"

#include <grpcpp/grpcpp.h>

namespace {

using coffer::Status;
using coffer::StatusOr;
using Clock = std::chrono::steady_clock;
namespace agent = coffer::agent;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::fprintf(stderr, "agent_mount_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

// Runs `fn` `runs` times after one warm-up call and prints p50, p99 (the
// largest below 100 runs) and max in milliseconds.
void Measure(const std::string& label, int runs, const std::function<void(int)>& fn) {
  fn(-1);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    fn(i);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  size_t p99 = ms.size() >= 100 ? ms.size() * 99 / 100 - 1 : ms.size() - 1;
  std::printf("%s: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d mounts\n", label.c_str(),
              ms[ms.size() / 2], ms[p99], ms.back(), runs);
}

struct Bench {
  std::string dir;
  int objects = 50;
  int runs = 30;
  // https://dev.<suffix with port>, from dev.env.
  std::string vault_url = Env("COFFER_VAULT_URL");
  std::string suffix = vault_url.rfind("https://dev.", 0) == 0 ? vault_url.substr(12) : "";
  int target_seq = 0;

  std::string Name(int i) const { return "agent-bench-" + std::to_string(i); }

  // The attributes of a SecretProviderClass with the first `n` secrets, as
  // the driver sends them (service principal identity).
  std::map<std::string, std::string> Attributes(int n) const {
    std::string objs = "array:\n";
    for (int i = 0; i < n; ++i) {
      objs += "  - |\n    objectName: " + Name(i) + "\n    objectType: secret\n";
    }
    return {{"keyvaultName", "dev"},
            {"tenantID", Env("AZURE_TENANT_ID")},
            {"objects", objs},
            {"secretProviderClass", "bench-spc"},
            {"csi.storage.k8s.io/pod.name", "bench-0"},
            {"csi.storage.k8s.io/pod.namespace", "default"},
            {"csi.storage.k8s.io/pod.uid", "0b7b"},
            {"csi.storage.k8s.io/serviceAccount.name", "default"}};
  }
  std::map<std::string, std::string> Secrets() const {
    return {{"clientid", Env("AZURE_CLIENT_ID")}, {"clientsecret", Env("AZURE_CLIENT_SECRET")}};
  }

  // A standalone mount of the first `n` secrets, parsed and resolved.
  struct Mount {
    agent::AzureMountParameters params;
    agent::MountIdentity identity;
  };
  Mount Load(int n) const {
    agent::AzureParseOptions po;
    po.require_pod_info = false;
    auto params = agent::ParseAzureProviderParameters(Attributes(n), Secrets(), po);
    if (!params.ok()) {
      Die("parameters", params.status());
    }
    auto identity = agent::IdentityOf(*params);
    if (!identity.ok()) {
      Die("identity", identity.status());
    }
    return {*std::move(params), *std::move(identity)};
  }

  std::string NewTarget() { return dir + "/target-" + std::to_string(target_seq++); }

  void Write(const std::vector<agent::PayloadFile>& files) {
    StatusOr<agent::WriteResult> written = agent::WritePayload(NewTarget(), files, {});
    if (!written.ok()) {
      Die("write", written.status());
    }
  }

  void SetSecrets() {
    auto credential = std::make_shared<coffer::ClientSecretCredential>(
        Env("AZURE_TENANT_ID"), Env("AZURE_CLIENT_ID"), Env("AZURE_CLIENT_SECRET"));
    coffer::SecretClient client(vault_url, credential);
    for (int i = 0; i < objects; ++i) {
      auto set = client.SetSecret(Name(i), "value-" + std::to_string(i) + "-of-the-mount-bench");
      if (!set.ok()) {
        Die("set " + Name(i), set.status());
      }
    }
  }

  void Reference() {
    auto credential = std::make_shared<coffer::ClientSecretCredential>(
        Env("AZURE_TENANT_ID"), Env("AZURE_CLIENT_ID"), Env("AZURE_CLIENT_SECRET"));
    coffer::SecretClient client(vault_url, credential);
    Measure("reference: " + std::to_string(objects) + " GetSecret one after another", runs,
            [&](int) {
              for (int i = 0; i < objects; ++i) {
                auto got = client.GetSecret(Name(i));
                if (!got.ok()) {
                  Die("get " + Name(i), got.status());
                }
              }
            });
  }

  void Standalone() {
    const Mount m = Load(objects);
    agent::BuildOptions bo;
    bo.vault_dns_suffix = suffix;
    agent::VaultReaderOptions ro;
    auto mount = [&](agent::VaultReader& reader) {
      auto round = reader.NewRound();
      agent::BuiltMount built = agent::BuildMount(m.params, m.identity, *round, bo);
      if (!built.status.ok()) {
        Die("mount", built.status);
      }
      Write(built.files);
    };
    Measure("standalone, new reader (token request + reads + write)", runs, [&](int) {
      agent::VaultReader reader(ro);
      mount(reader);
    });
    agent::VaultReader warm(ro);
    Measure("standalone, warm (token cached, new round)", runs, [&](int) { mount(warm); });
  }

  void Sharing() {
    constexpr int kMounts = 100;
    constexpr int kShared = 10;
    const Mount m = Load(std::min(objects, kShared));
    agent::BuildOptions bo;
    bo.vault_dns_suffix = suffix;
    agent::VaultReader reader(agent::VaultReaderOptions{});
    for (bool shared : {true, false}) {
      uint64_t before = reader.upstream_reads();
      auto t0 = Clock::now();
      std::shared_ptr<agent::ReadRound> cycle = reader.NewRound();
      agent::ParallelFor(kMounts, 8, [&](size_t) {
        std::shared_ptr<agent::ReadRound> round = shared ? cycle : reader.NewRound();
        if (!agent::BuildMount(m.params, m.identity, *round, bo).status.ok()) {
          Die("mount", Status(coffer::StatusCode::kInternal, "a shared mount failed"));
        }
      });
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      std::printf("%d mounts x %d shared secrets, %s: %llu upstream reads, %.1f ms\n", kMounts,
                  static_cast<int>(m.params.objects.size()),
                  shared ? "one round (the agent's cycle)" : "one round per mount (per pod)",
                  static_cast<unsigned long long>(reader.upstream_reads() - before), ms);
    }
  }

  void Csi() {
    agent::VaultReader reader(agent::VaultReaderOptions{});
    agent::CsiProviderOptions po;
    po.vault_dns_suffix = suffix;
    po.share_window = std::chrono::milliseconds(0);
    auto server = agent::CsiProviderServer::Start(
        dir + "/coffer.sock", agent::MakeCsiMountHandler(reader, nullptr, po), "bench");
    if (!server.ok()) {
      Die("CSI server", server.status());
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(4 << 20);
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
    auto channel = grpc::CreateCustomChannel("unix:" + dir + "/coffer.sock",
                                             grpc::InsecureChannelCredentials(), args);
    auto stub = v1alpha1::CSIDriverProvider::NewStub(channel);
    v1alpha1::MountRequest request;
    request.set_attributes(coffer::ToJson(coffer::Json(Attributes(objects))));
    request.set_secrets(coffer::ToJson(coffer::Json(Secrets())));
    request.set_permission("420");
    request.set_target_path("/var/lib/kubelet/pods/0b7b/volumes/kubernetes.io~csi/v/mount");
    Measure("CSI Mount over the socket + the driver's write", runs, [&](int) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1alpha1::MountResponse response;
      grpc::Status status = stub->Mount(&context, request, &response);
      if (!status.ok() || !response.error().code().empty() || response.files_size() != objects) {
        Die("CSI Mount", Status(coffer::StatusCode::kInternal, status.error_message()));
      }
      std::vector<agent::PayloadFile> files;
      for (const auto& f : response.files()) {
        files.push_back({f.path(), f.contents(), static_cast<uint32_t>(f.mode())});
      }
      Write(files);
    });
    (*server)->Shutdown();
  }
};

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--dir") {
      b.dir = argv[i + 1];
    } else if (flag == "--objects") {
      b.objects = std::atoi(argv[i + 1]);
    } else if (flag == "--runs") {
      b.runs = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 64;
    }
  }
  if (b.dir.empty() || b.objects < 1 || b.runs < 1 || b.suffix.empty()) {
    std::fprintf(stderr,
                 "usage: agent_mount_bench --dir DIR [--objects 50] [--runs 30] "
                 "(with COFFER_VAULT_URL of the dev vault and the dev credentials set)\n");
    return 64;
  }
  b.SetSecrets();
  b.Reference();
  b.Standalone();
  b.Csi();
  b.Sharing();
  return 0;
}
