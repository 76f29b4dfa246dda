#include "events/event_format.h"

#include <array>
#include <cstdio>
#include <ctime>

namespace coffer::events {

namespace {

constexpr std::array<std::string_view, 10> kKeyVaultTypes = {
    "SecretNewVersionCreated",      "SecretNearExpiry",      "SecretExpired",
    "KeyNewVersionCreated",         "KeyNearExpiry",         "KeyExpired",
    "CertificateNewVersionCreated", "CertificateNearExpiry", "CertificateExpired",
    "VaultAccessPolicyChanged"};

constexpr std::string_view kKeyVaultPrefix = "Microsoft.KeyVault.";

bool IsKeyVaultShortType(std::string_view type) {
  for (std::string_view t : kKeyVaultTypes) {
    if (t == type) {
      return true;
    }
  }
  return false;
}

Json OptionalSeconds(const std::optional<int64_t>& v) {
  return v ? Json(*v) : Json(nullptr);
}

std::string Subject(const storage::ChangeRecord& c) {
  return c.name.empty() ? c.vault : c.name;
}

}  // namespace

std::string EventType(const storage::ChangeRecord& change) {
  if (IsKeyVaultShortType(change.type)) {
    return std::string(kKeyVaultPrefix) + change.type;
  }
  return "Coffer.KeyVault." + change.type;
}

bool IsKeyVaultEventType(std::string_view type) {
  return type.size() > kKeyVaultPrefix.size() &&
         type.substr(0, kKeyVaultPrefix.size()) == kKeyVaultPrefix &&
         IsKeyVaultShortType(type.substr(kKeyVaultPrefix.size()));
}

std::string FormatEventTime(int64_t time_ms) {
  time_t secs = static_cast<time_t>(time_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d0000Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(time_ms % 1000));
  return buf;
}

Json EventData(const storage::ChangeRecord& c, const VaultNaming& naming) {
  std::string id = naming.vault_url(c.vault);
  if (auto kind = storage::ParseObjectKind(c.object_type)) {
    id += "/" + std::string(storage::ObjectCollectionName(*kind)) + "/" + c.name;
    if (!c.version.empty()) {
      id += "/" + c.version;
    }
  }
  return Json{{"Id", id},
              {"VaultName", c.vault},
              {"ObjectType", c.object_type},
              {"ObjectName", c.object_type == "Vault" ? c.vault : c.name},
              {"Version", c.version},
              {"NBF", OptionalSeconds(c.nbf)},
              {"EXP", OptionalSeconds(c.exp)}};
}

Json EventGridEvent(const storage::ChangeRecord& c, const VaultNaming& naming) {
  return Json{{"id", c.event_id},
              {"topic", naming.resource_id(c.vault)},
              {"subject", Subject(c)},
              {"eventType", EventType(c)},
              {"eventTime", FormatEventTime(c.time_ms)},
              {"data", EventData(c, naming)},
              {"dataVersion", "1"},
              {"metadataVersion", "1"}};
}

Json CloudEvent(const storage::ChangeRecord& c, const VaultNaming& naming) {
  return Json{{"specversion", "1.0"},
              {"id", c.event_id},
              {"source", naming.resource_id(c.vault)},
              {"subject", Subject(c)},
              {"type", EventType(c)},
              {"time", FormatEventTime(c.time_ms)},
              {"datacontenttype", "application/json"},
              {"data", EventData(c, naming)}};
}

}  // namespace coffer::events
