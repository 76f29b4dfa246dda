#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace coffer::server {

struct TlsMaterial {
  std::string ca_path;                // PEM of the local CA, for clients to trust
  std::string certificate_chain_pem;  // server certificate followed by the CA
  std::string private_key_pem;
};

// LoadOrCreateTls keeps a local CA and a server certificate in `dir`
// (ca.pem, ca-key.pem, server.pem, server-key.pem; keys mode 0600). On first
// use it creates both; it reissues the server certificate when it lacks one
// of `dns_names`. kUnavailable on I/O errors, kDataLoss on corrupt files.
StatusOr<TlsMaterial> LoadOrCreateTls(const std::string& dir,
                                      const std::vector<std::string>& dns_names);

}  // namespace coffer::server
