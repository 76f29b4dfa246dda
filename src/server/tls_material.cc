#include "server/tls_material.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/files.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "crypto/tls_key.h"
#include "crypto/x509.h"
#include "server/public_names.h"

#include <sys/file.h>

namespace coffer::server {
namespace {

constexpr int kCaDays = 3650;
constexpr int kServerDays = 397;

}  // namespace

StatusOr<TlsMaterial> LoadOrCreateTls(const std::string& dir,
                                      const std::vector<std::string>& dns_names, int64_t now) {
  RETURN_IF_ERROR(EnsurePrivateDirectory(dir));
  // Servers sharing a data directory make and renew the material one at a
  // time: without the lock two first starts each write a CA and a key, and
  // one reads the other's certificate with its own key.
  UniqueFd lock(::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX) != 0) {
    return UnavailableError("cannot lock " + dir + ": " + std::strerror(errno));
  }
  const std::string ca_path = dir + "/ca.pem";
  const std::string ca_key_path = dir + "/ca-key.pem";
  const std::string cert_path = dir + "/server.pem";
  const std::string key_path = dir + "/server-key.pem";

  // New keys are ECDSA P-256; an RSA CA of an earlier release stays in use.
  std::unique_ptr<crypto::TlsKey> ca_key;
  std::string ca_pem;
  if (!std::filesystem::exists(ca_path) || !std::filesystem::exists(ca_key_path)) {
    ASSIGN_OR_RETURN(ca_key, crypto::TlsKey::GenerateP256());
    ASSIGN_OR_RETURN(ca_pem, crypto::CreateCaCertificate(*ca_key, "Coffer local CA", kCaDays));
    RETURN_IF_ERROR(WriteFileAtomic(ca_key_path, ca_key->PrivatePem(), 0600));
    RETURN_IF_ERROR(WriteFileAtomic(ca_path, ca_pem, 0644));
    std::filesystem::remove(cert_path);
    COFFER_LOG(kInfo) << "created local CA " << ca_path;
  } else {
    ASSIGN_OR_RETURN(std::string ca_key_pem, ReadFile(ca_key_path));
    auto loaded = crypto::TlsKey::FromPrivatePem(ca_key_pem);
    if (!loaded.ok()) {
      return DataLossError("CA key " + ca_key_path + " is corrupt");
    }
    ca_key = std::move(loaded).value();
    ASSIGN_OR_RETURN(ca_pem, ReadFile(ca_path));
  }

  bool reissue = !std::filesystem::exists(cert_path) || !std::filesystem::exists(key_path);
  if (!reissue) {
    auto pem = ReadFile(cert_path);
    auto have = pem.ok() ? crypto::CertificateDnsNames(*pem) : std::vector<std::string>();
    for (const auto& want : dns_names) {
      if (std::find(have.begin(), have.end(), want) == have.end()) {
        reissue = true;
      }
    }
    // Renewed well before it expires (and whenever it cannot be read).
    int64_t not_after = pem.ok() ? crypto::CertificateNotAfter(*pem) : 0;
    if (not_after - now < kRenewBeforeSeconds) {
      reissue = true;
    }
  }
  if (reissue) {
    ASSIGN_OR_RETURN(auto server_key, crypto::TlsKey::GenerateP256());
    ASSIGN_OR_RETURN(std::string cert,
                     crypto::CreateServerCertificate(*server_key, ca_pem, *ca_key, dns_names,
                                                     {"127.0.0.1", "::1"}, kServerDays));
    RETURN_IF_ERROR(WriteFileAtomic(key_path, server_key->PrivatePem(), 0600));
    RETURN_IF_ERROR(WriteFileAtomic(cert_path, cert, 0644));
    COFFER_LOG(kInfo) << "issued server certificate " << cert_path;
  }
  TlsMaterial out;
  out.ca_path = std::filesystem::absolute(ca_path).string();
  ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(cert_path));
  out.certificate_chain_pem = cert_pem + ca_pem;
  out.not_after = crypto::CertificateNotAfter(cert_pem);
  ASSIGN_OR_RETURN(out.private_key_pem, ReadFile(key_path));
  return out;
}

StatusOr<TlsMaterial> LoadTlsFiles(const std::string& cert_path, const std::string& key_path,
                                   const std::vector<std::string>& required) {
  TlsMaterial out;
  ASSIGN_OR_RETURN(out.certificate_chain_pem, ReadFile(cert_path));
  ASSIGN_OR_RETURN(out.private_key_pem, ReadFile(key_path));
  // The first certificate of the chain is the server's.
  std::vector<std::string> sans = crypto::CertificateDnsNames(out.certificate_chain_pem);
  for (const auto& name : required) {
    if (!CoversName(sans, name)) {
      std::string have;
      for (const auto& san : sans) {
        have += (have.empty() ? "" : ", ") + san;
      }
      return InvalidArgumentError("the certificate " + cert_path + " does not cover " + name +
                                  " (its DNS names: " + (have.empty() ? "none" : have) + ")");
    }
  }
  out.not_after = crypto::CertificateNotAfter(out.certificate_chain_pem);
  return out;
}

}  // namespace coffer::server
