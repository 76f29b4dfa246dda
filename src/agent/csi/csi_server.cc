#include "agent/csi/csi_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>

#include "agent/csi/provider.grpc.pb.h"
#include "common/unique_fd.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

namespace coffer::agent {
namespace {

namespace pb = ::v1alpha1;

constexpr char kProtocolVersion[] = "v1alpha1";
constexpr char kRuntimeName[] = "coffer";
constexpr char kServiceName[] = "v1alpha1.CSIDriverProvider";
// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
constexpr int kMaxPollers = 2;

// Our canonical codes to gRPC's. They are numbered alike, but the table
// keeps that an explicit decision rather than a cast.
grpc::StatusCode ToGrpcCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return grpc::StatusCode::OK;
    case StatusCode::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case StatusCode::kUnknown:
      return grpc::StatusCode::UNKNOWN;
    case StatusCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case StatusCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kAborted:
      return grpc::StatusCode::ABORTED;
    case StatusCode::kOutOfRange:
      return grpc::StatusCode::OUT_OF_RANGE;
    case StatusCode::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kInternal:
      return grpc::StatusCode::INTERNAL;
    case StatusCode::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case StatusCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
  }
  return grpc::StatusCode::UNKNOWN;
}

std::string ErrnoText(int error) {
  return std::strerror(error);
}

// HandlerSlots bounds how many handlers run at once. Calls beyond that wait
// here (on their gRPC thread) rather than being refused: the driver retries
// only UNAVAILABLE, so a refusal would fail a pod's mount outright.
class HandlerSlots {
 public:
  explicit HandlerSlots(int slots) : free_(slots) {}

  grpc::Status Acquire(grpc::ServerContext* context) {
    const auto deadline = context->deadline();
    std::unique_lock lock(mu_);
    while (free_ == 0 && !closed_) {
      if (std::chrono::system_clock::now() >= deadline) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "deadline exceeded waiting for a free Mount handler");
      }
      if (context->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
      }
      // Polls, so that a cancelled call or an unbounded deadline needs no
      // special case.
      cv_.wait_until(lock, std::min(deadline, std::chrono::system_clock::now() + kPollInterval));
    }
    if (closed_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the provider is shutting down");
    }
    --free_;
    return grpc::Status::OK;
  }

  void Release() {
    {
      std::lock_guard lock(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  static constexpr std::chrono::milliseconds kPollInterval{250};
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;             // GUARDED_BY(mu_)
  bool closed_ = false;  // GUARDED_BY(mu_)
};

class ProviderService final : public pb::CSIDriverProvider::Service {
 public:
  ProviderService(CsiMountHandler handler, std::string runtime_version, int max_threads)
      : handler_(std::move(handler)),
        runtime_version_(std::move(runtime_version)),
        slots_(max_threads) {}

  void Close() { slots_.Close(); }

  grpc::Status Version(grpc::ServerContext* /*context*/, const pb::VersionRequest* /*request*/,
                       pb::VersionResponse* response) override {
    response->set_version(kProtocolVersion);
    response->set_runtime_name(kRuntimeName);
    response->set_runtime_version(runtime_version_);
    return grpc::Status::OK;
  }

  grpc::Status Mount(grpc::ServerContext* context, const pb::MountRequest* request,
                     pb::MountResponse* response) override {
    grpc::Status acquired = slots_.Acquire(context);
    if (!acquired.ok()) {
      return acquired;
    }
    StatusOr<CsiMountResponse> result = handler_(ToCsi(*request));
    slots_.Release();
    if (!result.ok()) {
      const Status& status = result.status();
      return grpc::Status(ToGrpcCode(status.code()), std::string(status.message()));
    }
    FromCsi(std::move(*result), *response);
    return grpc::Status::OK;
  }

 private:
  static CsiMountRequest ToCsi(const pb::MountRequest& request) {
    CsiMountRequest out;
    out.attributes = request.attributes();
    out.secrets = request.secrets();
    out.target_path = request.target_path();
    out.permission = request.permission();
    out.current_object_version.reserve(request.current_object_version_size());
    for (const pb::ObjectVersion& version : request.current_object_version()) {
      out.current_object_version.push_back({version.id(), version.version()});
    }
    return out;
  }

  static void FromCsi(CsiMountResponse&& in, pb::MountResponse& out) {
    out.mutable_object_version()->Reserve(static_cast<int>(in.object_version.size()));
    for (CsiObjectVersion& version : in.object_version) {
      pb::ObjectVersion* added = out.add_object_version();
      added->set_id(std::move(version.id));
      added->set_version(std::move(version.version));
    }
    out.mutable_files()->Reserve(static_cast<int>(in.files.size()));
    for (CsiFile& file : in.files) {
      pb::File* added = out.add_files();
      added->set_path(std::move(file.path));
      added->set_mode(file.mode);
      added->set_contents(std::move(file.contents));
    }
    // proto3 sends an empty Error message as absent, which the driver reads
    // as "no error" just the same; only set it when there is a code.
    if (!in.error_code.empty()) {
      out.mutable_error()->set_code(std::move(in.error_code));
    }
  }

  const CsiMountHandler handler_;
  const std::string runtime_version_;
  HandlerSlots slots_;
};

Status CheckSocketPath(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return InvalidArgumentError("the provider socket path must be absolute: '" + path + "'");
  }
  if (path.find('\0') != std::string::npos) {
    return InvalidArgumentError("the provider socket path contains a NUL byte");
  }
  if (path.size() > kMaxSocketPath) {
    return InvalidArgumentError("the provider socket path is " + std::to_string(path.size()) +
                                " bytes, longer than a Unix socket allows (" +
                                std::to_string(kMaxSocketPath) + "): '" + path + "'");
  }
  if (path.back() == '/') {
    return InvalidArgumentError("the provider socket path names a directory: '" + path + "'");
  }
  const std::string dir = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return InvalidArgumentError("the provider socket's directory does not exist: '" + dir + "'");
  }
  // The effective ids decide whether bind may create the socket.
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    return PermissionDeniedError("cannot create the provider socket in '" + dir +
                                 "': " + ErrnoText(errno));
  }
  return OkStatus();
}

// RemoveStaleSocket clears the path for bind: nothing there, or a socket
// nobody accepts connections on (left by a provider that died).
Status RemoveStaleSocket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return OkStatus();
    }
    return FailedPreconditionError("cannot inspect '" + path + "': " + ErrnoText(errno));
  }
  // SECURITY: only ever remove a socket; a regular file, directory or
  // symlink at the path may be someone's data or a trap.
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPreconditionError("'" + path +
                                   "' exists and is not a socket; refusing to remove it");
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe.valid()) {
    return InternalError("socket(AF_UNIX): " + ErrnoText(errno));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int rc = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int connect_errno = errno;
  probe.reset();
  // A full backlog (EAGAIN) still means a live listener.
  if (rc == 0 || connect_errno == EAGAIN || connect_errno == EINPROGRESS) {
    return FailedPreconditionError("another server accepts connections on '" + path + "'");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return FailedPreconditionError("cannot remove the stale socket '" + path +
                                   "': " + ErrnoText(errno));
  }
  return OkStatus();
}

// Serialises Starts: umask is per process, and two Starts on one path must
// not both see it free.
std::mutex& StartMutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

struct CsiProviderServer::Impl {
  std::string socket_path;
  dev_t socket_dev = 0;
  ino_t socket_ino = 0;
  std::unique_ptr<ProviderService> service;
  std::unique_ptr<grpc::Server> server;
  std::mutex shutdown_mu;
};

CsiProviderServer::CsiProviderServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CsiProviderServer::~CsiProviderServer() {
  Shutdown();
}

const std::string& CsiProviderServer::socket_path() const {
  return impl_->socket_path;
}

StatusOr<std::unique_ptr<CsiProviderServer>> CsiProviderServer::Start(
    const std::string& socket_path, CsiMountHandler handler, std::string runtime_version,
    CsiServerOptions options) {
  if (!handler) {
    return InvalidArgumentError("the CSI provider needs a Mount handler");
  }
  if (options.max_threads < 1 || options.max_threads > 1024 || options.max_waiting < 0 ||
      options.max_waiting > 4096 || options.max_receive_bytes < 1 || options.max_send_bytes < 1) {
    return InvalidArgumentError(
        "CSI provider options out of range: max_threads 1..1024, max_waiting 0..4096, message "
        "limits positive");
  }
  RETURN_IF_ERROR(CheckSocketPath(socket_path));

  std::lock_guard start_lock(StartMutex());
  RETURN_IF_ERROR(RemoveStaleSocket(socket_path));

  auto impl = std::make_unique<Impl>();
  impl->socket_path = socket_path;
  impl->service = std::make_unique<ProviderService>(std::move(handler), std::move(runtime_version),
                                                    options.max_threads);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(impl->service.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_bytes);
  builder.SetMaxSendMessageSize(options.max_send_bytes);
  // gRPC's sync server keeps one thread polling: when a call takes the last
  // poller and no thread is left in the quota, gRPC answers that call
  // RESOURCE_EXHAUSTED at once. So max_threads + max_waiting calls hold a
  // thread each, plus the one that polls. (The health service runs on gRPC's
  // callback threads, outside this quota, and answers even when full.)
  grpc::ResourceQuota quota("coffer-csi-provider");
  quota.SetMaxThreads(options.max_threads + options.max_waiting + 1);
  builder.SetResourceQuota(quota);
  builder.SetSyncServerOption(grpc::ServerBuilder::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::MAX_POLLERS, kMaxPollers);

  // SECURITY: the driver connects without credentials, so the socket's mode
  // is the access control. Creating it under umask 0077 leaves no moment in
  // which others could connect; the chmod below only drops the owner's
  // meaningless execute bit.
  const mode_t old_umask = ::umask(0077);
  impl->server = builder.BuildAndStart();
  ::umask(old_umask);
  if (impl->server == nullptr) {
    return InternalError("gRPC could not listen on unix:" + socket_path);
  }
  // gRPC's own grpc.health.v1 service (part of libgrpc++, Debian 12's
  // 1.51 included) answers Check for "" and for the services marked here;
  // Watch works too, List is Unimplemented.
  if (grpc::HealthCheckServiceInterface* health = impl->server->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, true);
  }

  auto server = std::unique_ptr<CsiProviderServer>(new CsiProviderServer(std::move(impl)));
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
    return InternalError("the provider socket '" + socket_path +
                         "' is missing or not ours after bind");
  }
  server->impl_->socket_dev = st.st_dev;
  server->impl_->socket_ino = st.st_ino;
  if (::chmod(socket_path.c_str(), 0600) != 0 || ::lstat(socket_path.c_str(), &st) != 0 ||
      (st.st_mode & 07777 & ~mode_t{0600}) != 0) {
    return InternalError("the provider socket '" + socket_path +
                         "' could not be restricted to mode 0600");
  }
  return server;
}

void CsiProviderServer::Shutdown() {
  std::lock_guard lock(impl_->shutdown_mu);
  if (impl_->server == nullptr) {
    return;
  }
  impl_->service->Close();
  impl_->server->Shutdown();
  impl_->server->Wait();
  impl_->server.reset();
  struct stat st {};
  // Only our own socket: the path may have been replaced since Start.
  if (::lstat(impl_->socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      st.st_dev == impl_->socket_dev && st.st_ino == impl_->socket_ino) {
    ::unlink(impl_->socket_path.c_str());
  }
}

Status CheckDriverFilePath(std::string_view path) {
  constexpr size_t kMaxPath = 4096;
  constexpr size_t kMaxElement = 255;
  // Built only on failure, and by appends: GCC 12 at -O3 warns falsely
  // (-Wrestrict, GCC bug 105329) on "'" + std::string(...) here.
  auto invalid = [path](std::string_view why) {
    std::string message = "invalid file path: ";
    message.append(why);
    message.append(": '");
    message.append(path.substr(0, 300));
    message += '\'';
    return FailedPreconditionError(std::move(message));
  };
  if (path.empty()) {
    return FailedPreconditionError("invalid file path: must not be empty");
  }
  if (path.front() == '/') {
    return invalid("must be relative");
  }
  if (path.size() > kMaxPath) {
    return invalid("longer than 4096 bytes");
  }
  bool first = true;
  size_t start = 0;
  while (true) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view element = path.substr(start, end - start);
    if (element == "..") {
      return invalid("must not contain '..'");
    }
    if (element.size() > kMaxElement) {
      return invalid("an element is longer than 255 bytes");
    }
    if (first && element.size() > 2 && element.substr(0, 2) == "..") {
      return invalid("must not start with '..'");
    }
    // Go's filepath.Clean(path) == path, given no "..": no empty element
    // (a "//" or a trailing "/") and no "." element.
    if (element.empty() || element == ".") {
      return invalid("not in clean form");
    }
    first = false;
    if (end == path.size()) {
      break;
    }
    start = end + 1;
  }
  return OkStatus();
}

Status CheckDriverResponse(const CsiMountResponse& response) {
  if (response.object_version.empty()) {
    return FailedPreconditionError("missing object versions");
  }
  for (const CsiFile& file : response.files) {
    RETURN_IF_ERROR(CheckDriverFilePath(file.path));
  }
  return OkStatus();
}

}  // namespace coffer::agent
