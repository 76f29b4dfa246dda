#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "auth/users.h"
#include "common/json.h"
#include "http/message.h"

namespace coffer::auth {

// GraphUsers is Microsoft Graph's users API on the authority host
// (docs/users.md):
//   GET    /v1.0/users[?$filter&$top&$select&$skiptoken]  (paged by @odata.nextLink)
//   POST   /v1.0/users
//   GET    /v1.0/users/{id or userPrincipalName}
//   PATCH  /v1.0/users/{id or userPrincipalName}
//   DELETE /v1.0/users/{id or userPrincipalName}
//   POST   /v1.0/users/{id or userPrincipalName}/revokeSignInSessions
// Answers and errors have Graph's shapes; a password is never in either.
//
// Authentication and authorization are the caller's job.
// Thread-safe. `users` must outlive it.
class GraphUsers {
 public:
  struct Hooks {
    // Runs after a user is changed in a way that ends sessions (a reset, a
    // disable, a revocation) or is deleted, so that caches drop the user.
    std::function<void(const std::string& object_id)> on_sessions_ended;
  };
  GraphUsers(Users& users, Hooks hooks);

  // Handle answers the routes above; `id` is empty for /v1.0/users and
  // `verb` names the action after {id}.
  http::Response Handle(const http::Request& request, const std::string& id, std::string_view verb);
  // The user as Graph shows it (the default properties, or `select`'s).
  // kInvalidArgument for a property Coffer does not know.
  static StatusOr<Json> UserJson(const storage::UserRecord& user, std::string_view select);

 private:
  http::Response List(const http::Request& request);
  http::Response Create(const http::Request& request);
  http::Response Patch(const http::Request& request, const storage::UserRecord& user);

  Users& users_;
  Hooks hooks_;
};

// GraphUserError maps a Status to Graph's error shape.
http::Response GraphUserError(const Status& status);

}  // namespace coffer::auth
