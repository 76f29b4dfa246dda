#pragma once

// The provider side of the Secrets Store CSI driver's protocol
// (provider/v1alpha1, docs' reference csi-driver.md §1): a gRPC server on a
// Unix socket that answers the driver's Version and Mount calls. This header
// is free of gRPC and protobuf types; only csi_server.cc sees them.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace coffer::agent {

// One object and the version of it that is (to be) mounted, e.g.
// {"secret/db-pass", "3f2a…"}.
struct CsiObjectVersion {
  std::string id;
  std::string version;
};

// One file of the volume, written by the driver (not by us) under the mount.
struct CsiFile {
  std::string path;      // relative and clean, see CheckDriverResponse
  int32_t mode = 0;      // permission bits, 0..0777 (420 is 0644)
  std::string contents;  // raw bytes, may contain NULs
};

// What the driver sends, verbatim (csi-driver.md §2).
struct CsiMountRequest {
  std::string attributes;   // JSON object of strings
  std::string secrets;      // JSON object of strings, or the literal `null`
  std::string target_path;  // deprecated upstream; a provider should ignore it
  std::string permission;   // JSON number of the default mode, e.g. "420"
  std::vector<CsiObjectVersion> current_object_version;  // empty since driver v1.6.0
};

// What the driver gets back. The driver fails the mount when `error_code` is
// not empty, when `object_version` is empty (return at least one entry even
// for a volume of no objects), or when a file path is not clean and relative.
struct CsiMountResponse {
  std::vector<CsiObjectVersion> object_version;
  std::vector<CsiFile> files;  // the whole volume
  std::string error_code;      // free form; the driver's metric label error_type
};

// Serves one Mount. It is called from several gRPC threads at once, so it
// must be thread-safe. A non-OK status fails the mount: the driver sees a
// gRPC status with the same canonical code and the status message (not the
// reason), and puts that message in the pod's FailedMount event, so it must
// carry context and never a secret.
using CsiMountHandler = std::function<StatusOr<CsiMountResponse>(const CsiMountRequest&)>;

struct CsiServerOptions {
  // At most this many Mount handlers run at once.
  int max_threads = 4;
  // Calls beyond max_threads wait for a free handler, at most this many at a
  // time and never past their deadline (DEADLINE_EXCEEDED); calls beyond
  // that (Version calls included) are refused by gRPC with
  // RESOURCE_EXHAUSTED, which the driver does not retry: the pod's mount
  // fails and kubelet tries again later. Each waiting call holds a gRPC
  // thread, so max_threads + max_waiting + 1 (the poller) bounds the
  // server's request threads. The health service is served outside this
  // bound.
  int max_waiting = 60;
  // A larger request is refused by gRPC with RESOURCE_EXHAUSTED.
  int max_receive_bytes = 4 << 20;
  // A larger response fails with RESOURCE_EXHAUSTED. The driver itself
  // accepts only 4 MiB unless its --max-call-recv-msg-size is raised.
  int max_send_bytes = 16 << 20;
};

// CsiProviderServer serves v1alpha1.CSIDriverProvider (Version, Mount) and
// grpc.health.v1.Health/Check (SERVING) on a Unix socket that only its
// owner (root, in a node deployment) can connect to. The driver connects
// without credentials: the socket's permissions are the only access control.
class CsiProviderServer {
 public:
  // Start listens on `socket_path`, conventionally
  // /var/run/secrets-store-csi-providers/<name>.sock, and serves `handler`.
  // Version answers version "v1alpha1", runtime_name "coffer" and
  // `runtime_version` (semver).
  //
  // Errors:
  //  - InvalidArgument: the path is not absolute, is longer than 107 bytes
  //    (sun_path), contains a NUL, or its directory does not exist; no
  //    handler; options out of range.
  //  - PermissionDenied: the directory is not writable by this process.
  //  - FailedPrecondition: something other than a socket is at the path
  //    (it is never removed), or another server accepts connections on it.
  //  - Internal: gRPC could not listen, or the socket came out with group
  //    or other permissions.
  // A stale socket (nobody listening) at the path is removed first.
  //
  // SECURITY: the socket is created under umask 0077 and then set to 0600.
  // umask is per process: files that other threads create during Start get
  // no group or other bits either. Start holds a process-wide lock for
  // this, so concurrent Starts are safe.
  static StatusOr<std::unique_ptr<CsiProviderServer>> Start(const std::string& socket_path,
                                                            CsiMountHandler handler,
                                                            std::string runtime_version,
                                                            CsiServerOptions options = {});

  CsiProviderServer(const CsiProviderServer&) = delete;
  CsiProviderServer& operator=(const CsiProviderServer&) = delete;

  // Shutdown stops accepting calls, cancels waiting ones, blocks until the
  // running handlers have returned, and removes the socket (only if it is
  // still the one Start created). Idempotent; not to be called from a
  // handler.
  void Shutdown();
  ~CsiProviderServer();  // Shutdown()

  const std::string& socket_path() const;

 private:
  struct Impl;
  explicit CsiProviderServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// CheckDriverResponse applies the checks the upstream driver makes to a
// Mount response after its error code (csi-driver.md §1.5; a non-empty
// error_code fails the mount before these, and is the caller's to report).
// Returns FailedPrecondition with the driver's reason:
//  - object_version empty: "missing object versions";
//  - a file path that is empty, absolute, longer than 4096 bytes, has an
//    element ".." or longer than 255 bytes, starts with "..", or is not in
//    clean form (no "." elements, "//" or trailing "/"): "invalid file
//    path ...". The path "." alone is refused too: it names no file.
Status CheckDriverResponse(const CsiMountResponse& response);

// CheckDriverFilePath is the file path check of CheckDriverResponse.
Status CheckDriverFilePath(std::string_view path);

}  // namespace coffer::agent
