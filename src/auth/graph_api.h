#pragma once

#include <functional>
#include <optional>
#include <string>

#include "auth/directory.h"
#include "common/clock.h"
#include "http/message.h"

namespace coffer::auth {

// GraphApi is the Microsoft Graph-shaped directory API for service
// principals, on the authority host:
//   POST   /v1.0/servicePrincipals                    {"displayName"}
//   GET    /v1.0/servicePrincipals
//   GET    /v1.0/servicePrincipals/{id}
//   DELETE /v1.0/servicePrincipals/{id}
//   POST   /v1.0/servicePrincipals/{id}/addPassword   {"passwordCredential":{...}}
//   POST   /v1.0/servicePrincipals/{id}/removePassword {"keyId"}
//   GET    /v1.0/servicePrincipals?$filter=servicePrincipalNames/any(c:c eq '<appId>')
//          (or appId eq '<appId>'): the principal of any kind, a managed
//          identity included, whose client id that is (az resolves an
//          assignee so); any other $filter is 400 Request_UnsupportedQuery
//   POST   /v1.0/directoryObjects/getByIds          {"ids":[...],"types":[...]}
//   GET    /v1.0/me                                 400: app tokens have no user
// `{id}` is the object id. In Coffer an app registration and its service
// principal are one object, so `appId` is also the client id. Secrets are
// returned once, by the call that creates them (docs/directory.md).
//
// Authentication and authorization are the caller's job.
// Thread-safe. `directory` and `clock` must outlive it.
class GraphApi {
 public:
  struct Hooks {
    // Runs after a principal is deleted, so that caches holding its tokens
    // can drop them at once.
    std::function<void(const std::string& object_id)> on_deleted;
    // Principals that may not be deleted (the installation's administrators).
    std::function<bool(const std::string& object_id)> is_protected;
  };
  GraphApi(Directory& directory, const Clock& clock, Hooks hooks);

  // Handle answers the directory's routes: /v1.0/servicePrincipals (GET,
  // POST: `id` empty), /v1.0/servicePrincipals/{id} (GET, DELETE: `verb`
  // empty) and POST .../{id}/{verb} for addPassword, removePassword, addKey
  // and removeKey. The authority plane has matched the route and checked
  // the caller.
  http::Response Handle(const http::Request& request, const std::string& id, std::string_view verb);
  // POST /v1.0/directoryObjects/getByIds: the principals among `ids` (at
  // most 1000), each with its @odata.type; unknown ids are left out.
  http::Response GetByIds(const http::Request& request);
  // GET /v1.0/me: Graph's 400 for a token that names no user.
  static http::Response Me();

 private:
  // GET /v1.0/servicePrincipals with a $filter.
  http::Response Filtered(std::string_view filter);

  Directory& directory_;
  const Clock& clock_;
  Hooks hooks_;
};

}  // namespace coffer::auth
