// The watch stream on a vault host (docs/events.md), a route of the vault
// plane:
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

keyvault::VaultOperation CofferServer::WatchOperation() {
  keyvault::VaultOperation op;
  op.method = "GET";
  op.pattern = "/coffer/watch";
  // SECURITY: a stream is a connection held open for as long as the caller
  // likes; only a caller who may list or read something in the vault gets
  // one. Under RBAC a role on a single secret or key is enough: the stream
  // then shows that object's changes only (may_read below).
  op.operation = "SecretList";
  op.alternatives = {"SecretGet", "KeyList", "KeyGet"};
  op.anywhere_in_vault = true;
  op.audit_operation = "SecretWatch";
  op.handle = [this](const keyvault::VaultCall& call) { return WatchRequest(call); };
  return op;
}

http::Response CofferServer::WatchRequest(const keyvault::VaultCall& call) {
  const http::Request& request = call.request;
  events::WatchRequest watch;
  watch.vault = call.vault->record.name;
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
  watch.principal = std::string(call.principal.object_id);
  watch.expires = call.token_expires;
  // Each change is shown only to a caller who may read it now: get on the
  // secret or key, list of secrets or keys for changes of the vault itself.
  const authz::DataOperation* get = authz::FindOperation("SecretGet");
  const authz::DataOperation* get_key = authz::FindOperation("KeyGet");
  const authz::DataOperation* list = authz::FindOperation("SecretList");
  const authz::DataOperation* list_keys = authz::FindOperation("KeyList");
  watch.may_read = [this, oid = std::string(call.principal.object_id),
                    app = std::string(call.principal.app_id),
                    tenant = std::string(call.principal.tenant_id), get, get_key, list,
                    list_keys](const storage::ChangeRecord& c) {
    auto open = registry_->Get(c.vault);
    if (!open.ok()) {
      return false;
    }
    const keyvault::OpenVault& v = **open;
    authz::VaultContext ctx{v.settings.rbac_authorization, &v.settings.access_policies,
                            v.resource_id};
    authz::Principal who{oid, app, tenant};
    if (c.object_type == "Vault") {
      return authorizer_->CheckData(who, ctx, *list, "").allowed ||
             authorizer_->CheckData(who, ctx, *list_keys, "").allowed;
    }
    // SECURITY: a key's changes need a right to read keys; a secret of
    // the same name says nothing about them.
    if (c.object_type == "Key") {
      return authorizer_->CheckData(who, ctx, *get_key, c.name).allowed;
    }
    if (c.object_type != "Secret") {
      return false;
    }
    return authorizer_->CheckData(who, ctx, *get, c.name).allowed;
  };
  return watches_->Open(std::move(watch));
}

}  // namespace coffer::server
