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

 private:
  Directory& directory_;
  const Clock& clock_;
  Hooks hooks_;
};

}  // namespace coffer::auth
