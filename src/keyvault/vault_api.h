#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authz/authorizer.h"
#include "http/message.h"
#include "http/router.h"
#include "keyvault/vault_registry.h"

namespace coffer::keyvault {

// One request to a vault's data plane, as a handler sees it: the open
// vault (resolved once for the request, the same snapshot that authorized
// it), the request, the parameters of its route and who made it.
struct VaultCall {
  const std::shared_ptr<const OpenVault>& vault;
  const http::Request& request;
  const http::PathParams& params;
  const authz::Principal& principal;
  int64_t token_expires = 0;  // when the caller's token expires (Unix seconds)
};

// VaultOperation is one row of the vault data plane's route table: the
// method and path pattern (http::RouteTable), the data-plane operation that
// decides who may call it (authz::DataOperations(): its access-policy
// permission and RBAC data action; its name is the audit operationName),
// the route parameter naming the object it acts on ("" for vault-wide
// operations), and its handlers. The plane authenticates and authorizes
// the request before a handler runs.
struct VaultOperation {
  std::string_view method;
  std::string_view pattern;
  std::string_view operation;
  std::string_view object_param;
  // The audit operationName when it is not `operation` (the watch stream
  // is "SecretWatch").
  std::string_view audit_operation;
  // Authorized when the caller may perform `operation`, or else one of the
  // `alternatives`, on the vault or on any object in it
  // (authz::Authorizer::CheckDataInVault) rather than on one object: for
  // requests that gate a connection, not an object.
  bool anywhere_in_vault = false;
  std::vector<std::string_view> alternatives;
  // A POST that changes nothing (a key's cryptographic operations, random
  // bytes): the server audits it as a read, without waiting for the record
  // to reach the disk, as it does for a GET that returns a secret's value.
  bool changes_nothing = false;
  // Runs on a worker thread; may block on storage.
  std::function<http::Response(const VaultCall&)> handle;
  // Answers from memory without blocking (the I/O thread's fast path), or
  // nullopt to go to `handle`. Empty for operations that always touch
  // storage.
  std::function<std::optional<http::Response>(const VaultCall&)> fast;
};

// VaultRoutes is the data plane's one route table: the operations of every
// vault API, matched by method and path.
//
// Immutable after construction; thread-safe.
class VaultRoutes {
 public:
  explicit VaultRoutes(std::vector<VaultOperation> operations);

  struct Found {
    const VaultOperation* operation = nullptr;  // nullptr: see status
    http::PathParams params;
    int status = 404;     // 200, 404 or 405
    std::string allowed;  // for 405
  };
  Found Find(const http::Request& request) const;
  // Key Vault's answer to a request that matched no operation.
  static http::Response Unmatched(const Found& found);

  const std::vector<VaultOperation>& operations() const { return operations_; }

 private:
  std::vector<VaultOperation> operations_;
  http::RouteTable table_;
};

}  // namespace coffer::keyvault
