#include "auth/admin_credentials.h"

#include <algorithm>
#include <utility>

#include "common/json.h"
#include "common/log.h"

namespace coffer::auth {
namespace {

constexpr char kAdministratorsMeta[] = "admin_object_ids";
constexpr char kIssuedMeta[] = "admin_env_secret_key_ids";

std::vector<std::string> ParseIds(const std::optional<std::string>& json) {
  std::vector<std::string> out;
  if (!json) {
    return out;
  }
  auto parsed = ParseJson(*json);
  if (parsed && parsed->is_array()) {
    for (const auto& id : *parsed) {
      if (id.is_string()) {
        out.push_back(id.get<std::string>());
      }
    }
  }
  return out;
}

struct IssueRecord {
  int64_t generation = 0;
  std::string current;
  std::vector<std::string> key_ids;
};

IssueRecord ParseIssueRecord(const std::string& json) {
  IssueRecord r;
  auto parsed = ParseJson(json);
  if (!parsed) {
    return r;
  }
  if (parsed->is_array()) {  // an earlier release's list of key ids
    r.key_ids = ParseIds(json);
    return r;
  }
  if (parsed->is_object()) {
    if (parsed->contains("generation") && (*parsed)["generation"].is_number_integer()) {
      r.generation = (*parsed)["generation"].get<int64_t>();
    }
    if (parsed->contains("current") && (*parsed)["current"].is_string()) {
      r.current = (*parsed)["current"].get<std::string>();
    }
    if (parsed->contains("keyIds")) {
      r.key_ids = ParseIds(ToJson((*parsed)["keyIds"]));
    }
  }
  return r;
}

std::string IssueRecordJson(const IssueRecord& r) {
  return ToJson(Json{{"generation", r.generation}, {"current", r.current}, {"keyIds", r.key_ids}});
}

}  // namespace

StatusOr<AdministratorCredentials::Claim> AdministratorCredentials::ClaimAdministrator(
    const std::string& display_name) {
  Claim claim;
  ASSIGN_OR_RETURN(auto recorded, store_.GetMeta(kAdministratorsMeta));
  claim.administrators = ParseIds(recorded);
  if (!claim.administrators.empty()) {
    return claim;
  }
  if (claim_hook_) {
    claim_hook_();
  }
  ASSIGN_OR_RETURN(NewServicePrincipal made,
                   directory_.CreateServicePrincipal(display_name, lifetime_days_));
  const std::string mine = made.principal.object_id;
  // SECURITY: one administrator per installation, whoever starts first:
  // the store's compare-and-set decides, and only its winner holds a
  // secret to deliver.
  ASSIGN_OR_RETURN(
      std::string stored,
      store_.UpdateMeta(kAdministratorsMeta, [&](const std::optional<std::string>& current) {
        if (!ParseIds(current).empty()) {
          return StatusOr<std::string>(*current);
        }
        return StatusOr<std::string>(ToJson(Json::array({mine})));
      }));
  claim.administrators = ParseIds(stored);
  if (claim.administrators.empty() || claim.administrators.front() != mine) {
    Status deleted = directory_.DeleteServicePrincipal(mine);
    if (!deleted.ok()) {
      // Harmless: it is no administrator and nobody holds its secret.
      COFFER_LOG(kWarning) << "could not delete the service principal " << made.principal.app_id
                           << " made by a start that another one preceded: " << deleted.ToString();
    }
    return claim;
  }
  IssueRecord record{1, made.secret_key_id, {made.secret_key_id}};
  RETURN_IF_ERROR(store_.PutMeta(kIssuedMeta, IssueRecordJson(record)));
  claim.created = std::move(made);
  return claim;
}

Status AdministratorCredentials::AbandonClaim(const std::string& object_id) {
  ASSIGN_OR_RETURN(
      std::string stored,
      store_.UpdateMeta(kAdministratorsMeta, [&](const std::optional<std::string>& current) {
        auto ids = ParseIds(current);
        if (ids.size() != 1 || ids.front() != object_id) {
          return StatusOr<std::string>(AbortedError("the administrator is not the one abandoned"));
        }
        return StatusOr<std::string>("[]");
      }));
  (void)stored;
  Status deleted = directory_.DeleteServicePrincipal(object_id);
  if (!deleted.ok() && deleted.code() != StatusCode::kNotFound) {
    return deleted;
  }
  return OkStatus();
}

StatusOr<int64_t> AdministratorCredentials::MakeCurrent(const std::string& object_id,
                                                        const std::string& key_id,
                                                        bool unrecorded_are_issued) {
  // An installation of a release that recorded nothing cannot tell the
  // secrets it issued from ones added through the Graph API: every secret
  // of the administrator is taken as issued. Listed before the update,
  // which must not call the store.
  ASSIGN_OR_RETURN(auto existing, store_.ListClientSecrets(object_id));
  int64_t generation = 0;
  ASSIGN_OR_RETURN(std::string stored,
                   store_.UpdateMeta(kIssuedMeta, [&](const std::optional<std::string>& current) {
                     IssueRecord r;
                     if (current) {
                       r = ParseIssueRecord(*current);
                     } else if (unrecorded_are_issued) {
                       for (const auto& s : existing) {
                         r.key_ids.push_back(s.key_id);
                       }
                     }
                     if (std::find(r.key_ids.begin(), r.key_ids.end(), key_id) == r.key_ids.end()) {
                       r.key_ids.push_back(key_id);
                     }
                     r.current = key_id;
                     generation = ++r.generation;
                     return StatusOr<std::string>(IssueRecordJson(r));
                   }));
  (void)stored;
  return generation;
}

StatusOr<std::string> AdministratorCredentials::RevokeSuperseded(const std::string& object_id) {
  ASSIGN_OR_RETURN(auto json, store_.GetMeta(kIssuedMeta));
  IssueRecord seen = json ? ParseIssueRecord(*json) : IssueRecord{};
  std::vector<std::string> revoked;
  for (const auto& key_id : seen.key_ids) {
    if (key_id == seen.current) {
      continue;
    }
    Status removed = directory_.RemoveClientSecret(object_id, key_id);
    if (!removed.ok() && removed.code() != StatusCode::kNotFound) {
      return removed;
    }
    if (removed.ok()) {
      COFFER_LOG(kInfo) << "revoked the administrator's client secret " << key_id
                        << ", superseded by " << seen.current;
    }
    revoked.push_back(key_id);
  }
  if (!revoked.empty()) {
    // Only what was revoked leaves the record: a secret issued meanwhile
    // stays in it.
    ASSIGN_OR_RETURN(std::string stored,
                     store_.UpdateMeta(kIssuedMeta, [&](const std::optional<std::string>& current) {
                       IssueRecord r = current ? ParseIssueRecord(*current) : IssueRecord{};
                       std::erase_if(r.key_ids, [&](const std::string& k) {
                         return k != r.current &&
                                std::find(revoked.begin(), revoked.end(), k) != revoked.end();
                       });
                       return StatusOr<std::string>(IssueRecordJson(r));
                     }));
    (void)stored;
  }
  return seen.current;
}

StatusOr<AdministratorCredentials::Issued> AdministratorCredentials::Rotate(
    const std::string& object_id) {
  ASSIGN_OR_RETURN(NewClientSecret secret, directory_.AddClientSecret(object_id, lifetime_days_));
  // Recorded before anything is revoked or returned, so that a rotation
  // failing after this point leaves a secret the next one revokes.
  ASSIGN_OR_RETURN(int64_t generation, MakeCurrent(object_id, secret.info.key_id, true));
  RETURN_IF_ERROR(RevokeSuperseded(object_id).status());
  // Read again: a rotation recorded after this one's, but revoking before
  // it, has revoked this secret or is about to.
  ASSIGN_OR_RETURN(auto json, store_.GetMeta(kIssuedMeta));
  if (!json || ParseIssueRecord(*json).current != secret.info.key_id) {
    // Revoked here too, so that no secret outlives a rotation nobody was
    // told of.
    Status removed = directory_.RemoveClientSecret(object_id, secret.info.key_id);
    if (!removed.ok() && removed.code() != StatusCode::kNotFound) {
      return removed;
    }
    return AbortedError(
        "A concurrent rotation of the administrator's credentials superseded this "
        "one; the credentials it returned are the valid ones.");
  }
  COFFER_LOG(kInfo) << "issued the administrator's client secret " << secret.info.key_id
                    << " (generation " << generation << ")";
  return Issued{std::move(secret), generation};
}

Status AdministratorCredentials::Keep(const std::string& object_id, const std::string& key_id) {
  ASSIGN_OR_RETURN(int64_t generation, MakeCurrent(object_id, key_id, false));
  (void)generation;
  return RevokeSuperseded(object_id).status();
}

}  // namespace coffer::auth
