#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "events/webhooks.h"
#include "http/message.h"
#include "mgmt/arm_routes.h"
#include "storage/store.h"

namespace coffer::mgmt {

// EventSubscriptionManager is Event Grid's management plane for a vault's
// system topic, in ARM's shape (docs/events.md):
//   GET    .../vaults/{v}/providers/Microsoft.EventGrid/eventSubscriptions
//   GET|PUT|PATCH|DELETE .../eventSubscriptions/{name}
//   POST   .../eventSubscriptions/{name}/getFullUrl
//   POST   .../eventSubscriptions/{name}/getSigningKey         (Coffer)
//   POST   .../eventSubscriptions/{name}/regenerateSigningKey  (Coffer)
// where ... is /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.KeyVault.
// Reads never show the endpoint's query string (it often holds a code),
// as Event Grid returns only endpointBaseUrl. The plane authenticates and
// authorizes each request before a handler runs.
//
// Thread-safe.
class EventSubscriptionManager {
 public:
  struct Hooks {
    // The HMAC key deliveries are signed with.
    events::SigningKeyFor signing_key;
    // Called after a subscription was created, changed or deleted.
    std::function<void()> changed;
    // Endpoint URLs are stored sealed.
    events::UrlSeal url_seal;
  };
  EventSubscriptionManager(std::string subscription_id, storage::Store& store, const Clock& clock,
                           Hooks hooks);

  // The event subscription operations of the management plane's route
  // table.
  std::vector<ArmRoute> Routes();

 private:
  // One request: the collection ({name} empty), one subscription, or one of
  // its actions (`action`).
  http::Response Handle(const ArmCall& call, std::string_view action);
  Json ToArm(const storage::VaultRecord& vault, const storage::EventSubscriptionRecord& r) const;
  http::Response Put(const storage::VaultRecord& vault, const std::string& name,
                     const http::Request& request);

  const std::string subscription_id_;
  storage::Store& store_;
  const Clock& clock_;
  const Hooks hooks_;
};

}  // namespace coffer::mgmt
