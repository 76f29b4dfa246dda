// coffer-csi-client: calls a CSI provider's Mount the way the Secrets Store
// CSI driver does (docs' reference csi-driver.md §1.3, §1.5), for tests and
// for operators checking a provider by hand.
//
//   coffer-csi-client --socket PATH (--attributes JSON | --attributes-file F)
//       [--secrets JSON] [--permission N] [--target-path DIR]
//       [--timeout-ms N] [--max-recv-bytes N] [--write-dir DIR]
//
// Prints one JSON object on stdout:
//   {"version":{"version","runtime_name","runtime_version"},
//    "object_version":[{"id","version"}...],
//    "files":[{"path","mode","contents_base64"}...],"error_code":"..."}
// plus "driver_error" when the driver would fail the mount. A gRPC error
// prints {"call","grpc_code","message"} instead.
//
// Exit codes: 0 mounted; 2 gRPC error; 3 the driver would fail the mount
// (provider error code, missing object versions, an invalid file path, an
// incompatible version, or --write-dir could not be written); 64 usage.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "agent/csi/csi_server.h"
#include "agent/csi/provider.grpc.pb.h"
#include "common/encoding.h"
#include "common/files.h"
#include "common/json.h"
#include "common/status.h"
#include "common/unique_fd.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

namespace coffer::agent {
namespace {

namespace pb = ::v1alpha1;

constexpr int kExitOk = 0;
constexpr int kExitGrpc = 2;
constexpr int kExitDriver = 3;
constexpr int kExitUsage = 64;

// The driver's service config (pkg/secrets-store/provider_client.go): wait
// for the socket to accept, three attempts, retry on UNAVAILABLE only.
constexpr char kServiceConfig[] = R"({
  "methodConfig": [{
    "name": [{"service": "v1alpha1.CSIDriverProvider"}],
    "waitForReady": true,
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "1s",
      "maxBackoff": "10s",
      "backoffMultiplier": 1.1,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})";

constexpr char kUsage[] =
    "usage: coffer-csi-client --socket PATH (--attributes JSON | --attributes-file FILE)\n"
    "         [--secrets JSON] [--permission N] [--target-path DIR] [--timeout-ms N]\n"
    "         [--max-recv-bytes N] [--write-dir DIR]\n"
    "Calls Version and Mount on a Secrets Store CSI provider as the driver does.\n"
    "Defaults: --secrets null, --permission 420, --timeout-ms 120000 (kubelet's),\n"
    "--max-recv-bytes 4194304 (the driver's --max-call-recv-msg-size).\n"
    "Exit: 0 ok, 2 gRPC error, 3 the driver would fail the mount, 64 usage.\n";

struct Options {
  std::string socket;
  std::optional<std::string> attributes;
  std::optional<std::string> attributes_file;
  std::string secrets = "null";
  std::string permission = "420";
  std::string target_path;
  int64_t timeout_ms = 120000;
  int max_recv_bytes = 4 << 20;
  std::string write_dir;
};

std::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::DO_NOT_USE:
      break;
  }
  return "UNKNOWN";
}

template <typename Int>
bool ParseInt(std::string_view text, Int min, Int max, Int& out) {
  Int value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return false;
  }
  out = value;
  return true;
}

// ParseArgs accepts "--flag value" and "--flag=value". Returns an error
// message, empty when the arguments are good.
std::string ParseArgs(int argc, char** argv, Options& options, bool& help) {
  std::map<std::string_view, std::string*> strings = {
      {"--socket", &options.socket},         {"--secrets", &options.secrets},
      {"--permission", &options.permission}, {"--target-path", &options.target_path},
      {"--write-dir", &options.write_dir},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return {};
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const bool known = strings.count(name) != 0 || name == "--attributes" ||
                       name == "--attributes-file" || name == "--timeout-ms" ||
                       name == "--max-recv-bytes";
    if (!known) {
      return "unknown argument '" + std::string(arg) + "'";
    }
    if (!value) {
      if (i + 1 >= argc) {
        return std::string(name) + " needs a value";
      }
      value = argv[++i];
    }
    if (auto it = strings.find(name); it != strings.end()) {
      *it->second = std::string(*value);
    } else if (name == "--attributes") {
      options.attributes = std::string(*value);
    } else if (name == "--attributes-file") {
      options.attributes_file = std::string(*value);
    } else if (name == "--timeout-ms") {
      if (!ParseInt<int64_t>(*value, 1, int64_t{24} * 3600 * 1000, options.timeout_ms)) {
        return "--timeout-ms must be a number of milliseconds, 1 to one day";
      }
    } else if (!ParseInt<int>(*value, 1, 1 << 30, options.max_recv_bytes)) {
      return "--max-recv-bytes must be a number of bytes, 1 to 1 GiB";
    }
  }
  if (options.socket.empty()) {
    return "--socket is required";
  }
  if (options.attributes.has_value() == options.attributes_file.has_value()) {
    return "give exactly one of --attributes and --attributes-file";
  }
  return {};
}

void AppendMember(std::string& out, std::string_view name) {
  if (out.back() != '{') {
    out += ',';
  }
  AppendJsonString(out, name);
  out += ':';
}

std::string GrpcErrorJson(std::string_view call, const grpc::Status& status) {
  std::string out = "{";
  AppendMember(out, "call");
  AppendJsonString(out, call);
  AppendMember(out, "grpc_code");
  AppendJsonString(out, GrpcCodeName(status.error_code()));
  AppendMember(out, "message");
  AppendJsonString(out, status.error_message());
  out += '}';
  return out;
}

std::string ResultJson(const pb::VersionResponse& version, const pb::MountResponse& mount,
                       const std::string& driver_error) {
  std::string out = "{";
  AppendMember(out, "version");
  out += '{';
  AppendMember(out, "version");
  AppendJsonString(out, version.version());
  AppendMember(out, "runtime_name");
  AppendJsonString(out, version.runtime_name());
  AppendMember(out, "runtime_version");
  AppendJsonString(out, version.runtime_version());
  out += '}';
  AppendMember(out, "object_version");
  out += '[';
  for (const pb::ObjectVersion& object : mount.object_version()) {
    out += out.back() == '[' ? "{" : ",{";
    AppendMember(out, "id");
    AppendJsonString(out, object.id());
    AppendMember(out, "version");
    AppendJsonString(out, object.version());
    out += '}';
  }
  out += ']';
  AppendMember(out, "files");
  out += '[';
  for (const pb::File& file : mount.files()) {
    out += out.back() == '[' ? "{" : ",{";
    AppendMember(out, "path");
    AppendJsonString(out, file.path());
    AppendMember(out, "mode");
    out += std::to_string(file.mode());
    AppendMember(out, "contents_base64");
    AppendJsonString(out, Base64Encode(file.contents()));
    out += '}';
  }
  out += ']';
  AppendMember(out, "error_code");
  AppendJsonString(out, mount.error().code());
  if (!driver_error.empty()) {
    AppendMember(out, "driver_error");
    AppendJsonString(out, driver_error);
  }
  out += '}';
  return out;
}

CsiMountResponse ToCsi(const pb::MountResponse& mount) {
  CsiMountResponse out;
  for (const pb::ObjectVersion& object : mount.object_version()) {
    out.object_version.push_back({object.id(), object.version()});
  }
  for (const pb::File& file : mount.files()) {
    out.files.push_back({file.path(), file.mode(), file.contents()});
  }
  out.error_code = mount.error().code();
  return out;
}

std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

Status MakeDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return UnavailableError(ErrnoText("cannot create", prefix));
    }
    if (slash == std::string::npos) {
      return OkStatus();
    }
  }
}

// WriteFiles writes plain files (not the driver's atomic layout) under `dir`.
// The paths passed CheckDriverResponse, so none leaves `dir`.
Status WriteFiles(const std::string& dir, const pb::MountResponse& mount) {
  RETURN_IF_ERROR(MakeDirs(dir));
  for (const pb::File& file : mount.files()) {
    const std::string path = dir + "/" + file.path();
    if (const size_t slash = path.rfind('/'); slash > dir.size()) {
      RETURN_IF_ERROR(MakeDirs(path.substr(0, slash)));
    }
    const mode_t mode = static_cast<mode_t>(file.mode()) & 0777;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd.valid()) {
      return UnavailableError(ErrnoText("cannot create", path));
    }
    const std::string& contents = file.contents();
    size_t done = 0;
    while (done < contents.size()) {
      const ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return UnavailableError(ErrnoText("cannot write", path));
      }
      done += static_cast<size_t>(n);
    }
    // The umask must not narrow the mode the provider asked for.
    const bool chmod_ok = ::fchmod(fd.get(), mode) == 0;
    if (fd.Close() != 0 || !chmod_ok) {
      return UnavailableError(ErrnoText("cannot finish", path));
    }
  }
  return OkStatus();
}

int Run(int argc, char** argv) {
  Options options;
  bool help = false;
  if (const std::string error = ParseArgs(argc, argv, options, help); !error.empty() || help) {
    if (!help) {
      std::cerr << "coffer-csi-client: " << error << "\n";
    }
    std::cerr << kUsage;
    return help ? kExitOk : kExitUsage;
  }
  std::string attributes;
  if (options.attributes_file) {
    StatusOr<std::string> read = ReadFile(*options.attributes_file);
    if (!read.ok()) {
      std::cerr << "coffer-csi-client: cannot read --attributes-file '" << *options.attributes_file
                << "': " << read.status().message() << "\n";
      return kExitUsage;
    }
    attributes = std::move(*read);
  } else {
    attributes = *options.attributes;
  }

  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kServiceConfig);
  args.SetMaxReceiveMessageSize(options.max_recv_bytes);
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
  // SECURITY: no credentials, as the driver: the socket's mode is the only
  // access control.
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel("unix:" + options.socket, grpc::InsecureChannelCredentials(), args);
  std::unique_ptr<pb::CSIDriverProvider::Stub> stub = pb::CSIDriverProvider::NewStub(channel);
  // One budget for the whole mount, as kubelet gives NodePublishVolume.
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(options.timeout_ms);

  pb::VersionRequest version_request;
  version_request.set_version("v1alpha1");
  pb::VersionResponse version;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    const grpc::Status status = stub->Version(&context, version_request, &version);
    if (!status.ok()) {
      std::cout << GrpcErrorJson("Version", status) << "\n";
      return kExitGrpc;
    }
  }

  pb::MountRequest request;
  request.set_attributes(attributes);
  request.set_secrets(options.secrets);
  request.set_target_path(options.target_path);
  request.set_permission(options.permission);
  pb::MountResponse mount;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    const grpc::Status status = stub->Mount(&context, request, &mount);
    if (!status.ok()) {
      std::cout << GrpcErrorJson("Mount", status) << "\n";
      return kExitGrpc;
    }
  }

  // The driver's order: the provider's error code, then the versions and
  // the paths, then writing.
  std::string driver_error;
  if (version.version() != "v1alpha1") {
    driver_error = "incompatible provider version '" + version.version() + "'";
  } else if (!mount.error().code().empty()) {
    driver_error = "mount request failed with provider error code " + mount.error().code();
  } else if (const Status check = CheckDriverResponse(ToCsi(mount)); !check.ok()) {
    driver_error = std::string(check.message());
  } else if (!options.write_dir.empty()) {
    if (const Status written = WriteFiles(options.write_dir, mount); !written.ok()) {
      driver_error = "failed to write files: " + std::string(written.message());
    }
  }
  std::cout << ResultJson(version, mount, driver_error) << "\n";
  return driver_error.empty() ? kExitOk : kExitDriver;
}

}  // namespace
}  // namespace coffer::agent

int main(int argc, char** argv) {
  return coffer::agent::Run(argc, argv);
}
