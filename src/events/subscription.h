#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "storage/records.h"

namespace coffer::events {

// An event subscription as the dispatcher uses it, parsed from
// EventSubscriptionRecord::properties_json (docs/events.md).
struct Subscription {
  std::string vault;
  std::string name;
  std::string endpoint_url;
  std::vector<std::string> included_types;  // full names; empty: every Key Vault type
  std::string subject_begins_with;
  std::string subject_ends_with;
  bool cloud_events = false;  // CloudEventSchemaV1_0 instead of EventGridSchema
  int max_delivery_attempts = 30;
  int event_ttl_minutes = 1440;
  int64_t start_seq = 0;
  int64_t key_generation = 1;

  bool Matches(const storage::ChangeRecord& change) const;
};

// ParseSubscription validates ARM `properties` of an event subscription and
// fills `out` (vault, name and seq fields are left alone). kInvalidArgument
// names the bad field.
Status ParseSubscription(const Json& properties, Subscription& out);

// UrlSeal keeps webhook URLs sealed in the store (they often carry a code,
// which Event Grid also never shows): AES-256-GCM under a key derived from
// the master key, bound to the vault and subscription names.
class UrlSeal {
 public:
  explicit UrlSeal(std::string key) : key_(std::move(key)) {}
  // base64 of the sealed URL.
  std::string Seal(const std::string& vault, const std::string& name, const std::string& url) const;
  // kDataLoss when the text was not sealed by this key for this subscription.
  StatusOr<std::string> Open(const std::string& vault, const std::string& name,
                             const std::string& sealed) const;
  // The stored properties with destination.properties.endpointUrl restored.
  StatusOr<Json> Unseal(const storage::EventSubscriptionRecord& record) const;

 private:
  std::string key_;
};

}  // namespace coffer::events
