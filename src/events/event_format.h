#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "storage/records.h"

namespace coffer::events {

// Where a vault's objects live, for the `Id` and `topic` of its events.
struct VaultNaming {
  // "https://<vault>.vault.localhost:8443" (no trailing '/').
  std::function<std::string(const std::string& vault)> vault_url;
  // The vault's ARM resource id: the Event Grid topic, the CloudEvents source.
  std::function<std::string(const std::string& vault)> resource_id;
};

// EventType gives a change's event type: "Microsoft.KeyVault.<type>" for
// Key Vault's own event types, "Coffer.KeyVault.<type>" for Coffer's
// (SecretUpdated, SecretDeleted, SecretRecovered, SecretPurged).
std::string EventType(const storage::ChangeRecord& change);

// IsKeyVaultEventType reports whether `type` (full name) is one of Key
// Vault's Event Grid event types.
bool IsKeyVaultEventType(std::string_view type);

// EventData is Key Vault's `data`: Id (the object's versioned URI), VaultName,
// ObjectType, ObjectName, Version, NBF, EXP (Unix seconds or null).
Json EventData(const storage::ChangeRecord& change, const VaultNaming& naming);

// EventGridEvent renders a change in the Event Grid schema (id, topic,
// subject, eventType, eventTime, data, dataVersion, metadataVersion).
Json EventGridEvent(const storage::ChangeRecord& change, const VaultNaming& naming);

// CloudEvent renders a change in CloudEvents 1.0 (specversion, id, source,
// subject, type, time, data).
Json CloudEvent(const storage::ChangeRecord& change, const VaultNaming& naming);

// FormatEventTime renders milliseconds since the epoch as ISO 8601 UTC with
// seven fractional digits, as Event Grid does.
std::string FormatEventTime(int64_t time_ms);

}  // namespace coffer::events
