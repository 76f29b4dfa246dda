// The server's certificate: loading it for the configured names, and
// replacing it while serving (docs/deployment.md).

#include <chrono>

#include "common/log.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "server/server.h"

#include <sys/stat.h>

namespace coffer::server {
namespace {

// FileStamp identifies the content of `paths` as the file system shows it
// (device, inode, size, modification time): a replaced or rewritten file
// gets a new stamp. "" for a file that cannot be read.
std::string FileStamp(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& path : paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return "";
    }
    out += std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
           std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return out;
}

}  // namespace

StatusOr<TlsMaterial> CofferServer::LoadTls() {
  const std::string authority = AsciiLower(config_.authority_name);
  const std::string suffix = AsciiLower(config_.dns_suffix);
  std::vector<std::string> paths;
  StatusOr<TlsMaterial> tls = InternalError("unreachable");
  if (!config_.tls_cert.empty()) {
    // An operator's certificate must cover the authority and every vault.
    paths = {config_.tls_cert, config_.tls_key};
    tls = LoadTlsFiles(config_.tls_cert, config_.tls_key, {authority, "*." + suffix});
  } else {
    // The built-in CA issues for every configured name, and for the
    // loopback names, for administration on the machine itself.
    std::vector<std::string> names = {authority, suffix, "*." + suffix};
    if (authority != "localhost") {
      names.push_back("localhost");
    }
    const std::string dir = config_.data_dir + "/tls";
    paths = {dir + "/server.pem", dir + "/server-key.pem"};
    tls = LoadOrCreateTls(dir, names, clock_.NowSeconds());
  }
  if (tls.ok()) {
    std::lock_guard<std::mutex> lock(tls_mu_);
    tls_stamp_ = FileStamp(paths);
    tls_not_after_ = tls->not_after;
  }
  return tls;
}

Status CofferServer::ReloadTls() {
  StatusOr<TlsMaterial> tls = LoadTls();
  Status set = tls.ok() ? https_->SetCertificate(tls->certificate_chain_pem, tls->private_key_pem)
                        : tls.status();
  if (tls.ok()) {
    crypto::SecureWipe(tls->private_key_pem);
  }
  if (!set.ok()) {
    COFFER_LOG(kError) << "the TLS certificate was not replaced; the one in use stays: "
                       << set.ToString();
    return set;
  }
  COFFER_LOG(kInfo) << "TLS certificate loaded for new connections (valid until " << tls->not_after
                    << ")";
  return OkStatus();
}

void CofferServer::TlsLoop() {
  const std::string dir = config_.data_dir + "/tls";
  const std::vector<std::string> paths =
      config_.tls_cert.empty()
          ? std::vector<std::string>{dir + "/server.pem", dir + "/server-key.pem"}
          : std::vector<std::string>{config_.tls_cert, config_.tls_key};
  std::unique_lock<std::mutex> lock(purge_mu_);
  while (!stopping_) {
    purge_cv_.wait_for(lock, std::chrono::seconds(config_.tls_reload_seconds));
    if (stopping_) {
      return;
    }
    lock.unlock();
    bool changed = false;
    bool due = false;
    {
      std::lock_guard<std::mutex> tls_lock(tls_mu_);
      std::string stamp = FileStamp(paths);
      // A file being replaced may be missing for a moment: wait for it.
      changed = !stamp.empty() && stamp != tls_stamp_;
      due = config_.tls_cert.empty() && tls_not_after_ - clock_.NowSeconds() < kRenewBeforeSeconds;
      if (changed) {
        // Tried once per change: a bad file is not retried until it changes again.
        tls_stamp_ = stamp;
      }
    }
    if (changed || due) {
      (void)ReloadTls();
    }
    lock.lock();
  }
}

}  // namespace coffer::server
