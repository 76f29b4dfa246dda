// The watch stream on a vault host (docs/events.md):
//   GET /coffer/watch[?names=a,b][&types=T1,T2][&from=<token>]
// (or the token in Last-Event-ID, as EventSource clients resend it).

#include "authz/authorizer.h"
#include "common/strings.h"
#include "server/server.h"

namespace coffer::server {

namespace {

constexpr size_t kMaxNames = 100;
constexpr size_t kMaxListParam = 8192;

// Splits a comma-separated parameter; false if it is too long or holds too
// many items.
bool SplitList(std::string_view text, std::set<std::string>& out, bool lower) {
  if (text.size() > kMaxListParam) {
    return false;
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = TrimWhitespace(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (!item.empty()) {
      out.insert(lower ? AsciiLower(item) : std::string(item));
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  return out.size() <= kMaxNames;
}

}  // namespace

http::Response CofferServer::WatchRequest(const Caller& caller, const std::string& vault,
                                          const http::Request& request) {
  if (request.method != "GET") {
    return http::ErrorResponse(405, "BadParameter", "Open a watch stream with GET.");
  }
  events::WatchRequest watch;
  watch.vault = vault;
  if (!SplitList(request.Query("names"), watch.names, true) ||
      !SplitList(request.Query("types"), watch.types, false)) {
    return http::ErrorResponse(400, "BadParameter",
                               "names and types are comma-separated lists of at most 100 items.");
  }
  std::string_view token = request.Query("from");
  if (token.empty()) {
    token = request.Header("last-event-id");
  }
  auto after = events::WatchRegistry::ParseToken(token);
  if (!after.ok()) {
    return http::ErrorResponse(after.status());
  }
  watch.after_seq = *after;
  const authz::DataOperation* get = authz::FindOperation("SecretGet");
  const authz::DataOperation* list = authz::FindOperation("SecretList");
  auto opened = registry_->Get(vault);
  if (!opened.ok()) {
    return http::ErrorResponse(opened.status());
  }
  {
    // SECURITY: a stream is a connection held open for as long as the
    // caller likes; only a caller who may read or list something in the
    // vault gets one. Under RBAC a role on a single secret is enough: the
    // stream then shows that secret's changes only.
    const keyvault::OpenVault& v = **opened;
    authz::VaultContext ctx{v.settings.rbac_authorization, &v.settings.access_policies,
                            v.resource_id};
    authz::Principal who{caller.object_id, caller.app_id, caller.tenant_id};
    authz::Decision listing = authorizer_->CheckDataInVault(who, ctx, *list);
    if (!listing.allowed && !authorizer_->CheckDataInVault(who, ctx, *get).allowed) {
      return DataDenial(caller, v, *list, "", listing);
    }
  }
  watch.principal = caller.object_id;
  watch.expires = caller.expires;
  // Each change is shown only to a caller who may read it now: get on the
  // secret, list for changes of the vault itself.
  watch.may_read = [this, caller, get, list](const storage::ChangeRecord& c) {
    auto open = registry_->Get(c.vault);
    if (!open.ok()) {
      return false;
    }
    const keyvault::OpenVault& v = **open;
    authz::VaultContext ctx{v.settings.rbac_authorization, &v.settings.access_policies,
                            v.resource_id};
    authz::Principal who{caller.object_id, caller.app_id, caller.tenant_id};
    if (c.object_type == "Vault") {
      return authorizer_->CheckData(who, ctx, *list, "").allowed;
    }
    return authorizer_->CheckData(who, ctx, *get, c.name).allowed;
  };
  return watches_->Open(std::move(watch));
}

}  // namespace coffer::server
