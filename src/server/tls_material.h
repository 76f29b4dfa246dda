#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace coffer::server {

struct TlsMaterial {
  std::string ca_path;                // PEM of the local CA, for clients to trust ("" for files)
  std::string certificate_chain_pem;  // server certificate followed by its chain
  std::string private_key_pem;
  int64_t not_after = 0;  // the server certificate's expiry (Unix seconds)
};

// The built-in CA reissues the server certificate when less than this is
// left of it.
inline constexpr int64_t kRenewBeforeSeconds = 30 * 86400;

// LoadOrCreateTls keeps a local CA and a server certificate in `dir`
// (ca.pem, ca-key.pem, server.pem, server-key.pem; keys mode 0600). On first
// use it creates both; it reissues the server certificate when it lacks one
// of `dns_names` or expires within kRenewBeforeSeconds of `now`.
// kUnavailable on I/O errors, kDataLoss on corrupt files.
StatusOr<TlsMaterial> LoadOrCreateTls(const std::string& dir,
                                      const std::vector<std::string>& dns_names, int64_t now);

// LoadTlsFiles reads an operator's certificate chain and key (PEM files).
// The first certificate must cover every name of `required` (a DNS SAN equal
// to it, or a "*." SAN for its parent domain): kInvalidArgument names the
// first name it does not cover, and the names it has. kUnavailable when a
// file cannot be read.
StatusOr<TlsMaterial> LoadTlsFiles(const std::string& cert_path, const std::string& key_path,
                                   const std::vector<std::string>& required);

}  // namespace coffer::server
