#pragma once

#include <atomic>
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
// Endpoint validation: a PUT or PATCH that creates a subscription, changes
// its endpoint URL or schema, or finds it not validated, first refuses an
// endpoint the server will not deliver to (Hooks::check_target: 400, nothing
// written), then stores the subscription as "Creating" and runs the
// handshake (Hooks::validate) before it answers: 201/200 "Succeeded" when
// the endpoint echoed, 201/200 "AwaitingManualAction" when it answered 200
// without the code (the validation URL it was given works once, for 10
// minutes), 400 when the handshake failed: a new subscription is then kept
// as "Failed" (it gets no events; PUT it again or delete it), a validated one
// whose URL was being changed is put back as it was. At most four
// handshakes run at once (429 otherwise). Only validated subscriptions
// receive events.
//
// Thread-safe.
class EventSubscriptionManager {
 public:
  struct Hooks {
    // The HMAC key deliveries are signed with.
    events::SigningKeyFor signing_key;
    // Called after a subscription was created, changed, validated or deleted.
    std::function<void()> changed;
    // Endpoint URLs are stored sealed.
    events::UrlSeal url_seal;
    // kInvalidArgument for an endpoint URL the server does not deliver to.
    std::function<Status(const std::string& url)> check_target;
    // The validation handshake with a subscription's endpoint (blocking,
    // bounded by the delivery timeout).
    std::function<events::HandshakeResult(const events::Subscription& subscription,
                                          const std::string& validation_url)>
        validate;
    // Where the validation URL points: "https://<authority host>[:port]".
    std::string validation_base;
  };
  EventSubscriptionManager(std::string subscription_id, storage::Store& store, const Clock& clock,
                           Hooks hooks);

  // The event subscription operations of the management plane's route
  // table.
  std::vector<ArmRoute> Routes();

  // The validation URL (no authentication: the token is the proof):
  //   GET|POST /eventsubscriptions/{vault}/{name}/validate?token=<token>
  // on the authority host. A valid token, used within 10 minutes of the
  // handshake and not used before, makes the subscription "Succeeded" (200);
  // anything else is one 404 that does not say which part was wrong.
  http::Response Validate(const http::Request& request, const std::string& vault,
                          const std::string& name);

 private:
  // One request: the collection ({name} empty), one subscription, or one of
  // its actions (`action`).
  http::Response Handle(const ArmCall& call, std::string_view action);
  Json ToArm(const storage::VaultRecord& vault, const storage::EventSubscriptionRecord& r) const;
  http::Response Put(const storage::VaultRecord& vault, const std::string& name,
                     const storage::EventSubscriptionRecord* found, const http::Request& request);
  // Runs the handshake for the record T1 wrote and stores its outcome.
  http::Response Finish(const storage::VaultRecord& vault,
                        const std::optional<storage::EventSubscriptionRecord>& before,
                        const storage::EventSubscriptionRecord& written,
                        const events::Subscription& target, const std::string& token, bool created);

  const std::string subscription_id_;
  storage::Store& store_;
  const Clock& clock_;
  const Hooks hooks_;
  std::atomic<int> handshakes_{0};
};

}  // namespace coffer::mgmt
