#pragma once

#include <vector>

#include "http/message.h"
#include "keyvault/key_service.h"
#include "keyvault/vault_api.h"

namespace coffer::keyvault {

// KeysApi maps Key Vault's keys REST surface (docs/keys.md; reference
// azure-sdk-compat.md §4.3) onto KeyService: paths under /keys,
// /deletedkeys and /rng on a vault host, JSON bodies, ids built from the
// request's Host, status codes exactly as Key Vault's (purge 204, all else
// 200).
//
// Operations() is its route table; the server's vault plane matches,
// authenticates and authorizes each request before a handler runs.
// Thread-safe. `service` must outlive it.
class KeysApi {
 public:
  explicit KeysApi(KeyService& service) : service_(service) {}

  std::vector<VaultOperation> Operations();

 private:
  http::Response List(const VaultCall& call);
  http::Response ListDeleted(const VaultCall& call);
  http::Response ListVersions(const VaultCall& call);
  http::Response Create(const VaultCall& call);
  http::Response Import(const VaultCall& call);
  http::Response Get(const VaultCall& call);
  http::Response Update(const VaultCall& call);
  http::Response Delete(const VaultCall& call);
  http::Response GetDeleted(const VaultCall& call);
  http::Response Recover(const VaultCall& call);
  http::Response Purge(const VaultCall& call);
  http::Response Backup(const VaultCall& call);
  http::Response Restore(const VaultCall& call);
  http::Response Rotate(const VaultCall& call);
  http::Response GetRotationPolicy(const VaultCall& call);
  http::Response SetRotationPolicy(const VaultCall& call);
  http::Response RandomBytes(const VaultCall& call);
  // A key operation's request: alg, value (for verify, the digest) and
  // signature.
  struct OperationRequest {
    std::string alg;
    std::string value;
    std::string signature;
  };
  static StatusOr<OperationRequest> ReadOperation(const http::Request& request, KeyOperation op);
  http::Response Operate(const VaultCall& call, KeyOperation op);
  // The I/O thread's fast path of Operate (KeyService::OperateCached).
  std::optional<http::Response> OperateCached(const VaultCall& call, KeyOperation op);
  http::Response OperationAnswer(const VaultCall& call, const std::string& name, KeyOperation op,
                                 StatusOr<KeyOperationResult> result);

  KeyService& service_;
};

}  // namespace coffer::keyvault
