#include "cli/env_check.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/encoding.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "crypto/primitives.h"

namespace coffer::cli {

std::string EnvFinding::Line() const {
  return kind + " [" + environment + "] " + subject + ": " + detail;
}

std::string NewHashKey() {
  return Base64UrlEncode(crypto::RandomBytes(32));
}

StatusOr<std::string> SecretHash(Session& s, const std::string& vault, const std::string& name,
                                 const std::string& key) {
  auto r = s.Vault("POST", vault, "/secrets/" + name + "/hash", ToJson(Json{{"key", key}}));
  if (!r.ok() || r->status != 200) {
    return Session::Failed(vault + "/" + name, "hashing the value", r);
  }
  std::string hash = StringMember(Body(r), "value");
  if (hash.empty()) {
    return InternalError(vault + "/" + name + ": the vault's hash answer has no value");
  }
  return hash;
}

namespace {

// A duration as the file would write it: whole days, else hours, minutes
// or seconds.
std::string FormatDuration(int64_t seconds) {
  for (auto [unit, n] : {std::pair{"d", 86400}, {"h", 3600}, {"m", 60}}) {
    if (seconds % n == 0) {
      return std::to_string(seconds / n) + unit;
    }
  }
  return std::to_string(seconds) + "s";
}

class Checker {
 public:
  Checker(Installation& inst, const EnvFile& file, int64_t now)
      : inst_(inst), s_(inst.session()), file_(file), now_(now) {}

  StatusOr<std::vector<EnvFinding>> Run(const std::vector<std::string>& only) {
    for (const Environment& env : file_.environments) {
      if (!only.empty() && std::find(only.begin(), only.end(), env.name) == only.end()) {
        continue;
      }
      RETURN_IF_ERROR(CheckApplications(env));
      RETURN_IF_ERROR(CheckCrossEnvironment(env));
      RETURN_IF_ERROR(CheckSharedValues(env));
    }
    return std::move(findings_);
  }

 private:
  void Find(const std::string& kind, const Environment& env, const std::string& subject,
            const std::string& detail) {
    findings_.push_back(EnvFinding{kind, env.name, subject, detail});
  }

  // The environment that declares vault `name` ("" for none).
  std::string OwnerOf(const std::string& vault) const {
    for (const auto& env : file_.environments) {
      for (const auto& v : env.vaults) {
        if (EqualsIgnoreCase(v.name, vault)) {
          return env.name;
        }
      }
    }
    return "";
  }

  // The decision of the server's authorization engine (authz explain).
  StatusOr<Json> Explain(const std::string& principal, const std::string& vault,
                         const std::string& action, const std::string& object) {
    std::string url = s_.client().config().authority +
                      "/coffer/v1/authz/explain?assignee=" + PercentEncode(principal) +
                      "&vault=" + PercentEncode(vault) + "&action=" + PercentEncode(action) +
                      (object.empty() ? "" : "&object=" + PercentEncode(object));
    auto r = s_.client().Call("GET", url, s_.client().config().authority);
    if (!r.ok() || r->status != 200) {
      return Session::Failed(vault, "asking who may read it", r);
    }
    return Body(r);
  }

  // Whether the secret's listing entry is fit to be read by a deploy.
  void CheckSecretState(const Environment& env, const EnvSecret& want, const SecretState& st,
                        const std::string& subject) {
    if (!st.enabled) {
      Find("DISABLED", env, subject, "the secret is disabled; enable it or set a new version");
    }
    if (st.exp && *st.exp <= now_) {
      Find("EXPIRED", env, subject,
           "the secret expired " + FormatIsoTime(*st.exp) + "; set a new value");
    } else if (st.exp && want.min_remaining && *st.exp - now_ < *want.min_remaining) {
      Find("EXPIRES-SOON", env, subject,
           "the secret expires " + FormatIsoTime(*st.exp) + ", within expiry.minRemaining (" +
               FormatDuration(*want.min_remaining) + "); set a new value");
    }
    if (st.nbf && *st.nbf > now_) {
      Find("NOT-YET-VALID", env, subject,
           "the secret is not valid before " + FormatIsoTime(*st.nbf));
    }
    if (want.expiry_required && !st.exp) {
      Find("NO-EXPIRY", env, subject,
           "the secret must have an expiry (expiry.required); set one within " +
               FormatDuration(*want.max_ahead));
    }
    if (st.exp && want.max_ahead && *st.exp - now_ > *want.max_ahead) {
      Find("EXPIRY-TOO-FAR", env, subject,
           "the secret expires " + FormatIsoTime(*st.exp) + ", more than expiry.maxAhead (" +
               FormatDuration(*want.max_ahead) + ") ahead");
    }
    if (!want.content_type.empty() && want.content_type != st.content_type) {
      Find("CONTENT-TYPE", env, subject,
           "the content type is '" + st.content_type + "', not '" + want.content_type + "'");
    }
  }

  // Who reads for an application: its identity, else the SPC's client id.
  StatusOr<std::optional<std::string>> Reader(const Environment& env, const std::string& who,
                                              const std::string& where) {
    auto principal = inst_.Principal(env, who, where);
    if (!principal.ok() && principal.status().code() == StatusCode::kNotFound) {
      return std::optional<std::string>();
    }
    return principal;
  }

  Status CheckReadable(const Environment& env, const std::string& who, const std::string& where,
                       const std::string& vault, const std::string& action,
                       const std::string& object, const std::string& subject) {
    if (who.empty()) {
      return OkStatus();
    }
    ASSIGN_OR_RETURN(auto principal, Reader(env, who, where));
    if (!principal) {
      Find("NO-IDENTITY", env, subject,
           "identity '" + who + "' does not exist; run coffer env apply");
      return OkStatus();
    }
    ASSIGN_OR_RETURN(Json d, Explain(*principal, vault, action, object));
    if (!d.value("allowed", false)) {
      Find("NOT-READABLE", env, subject,
           who + " may not read it (" + StringMember(d, "decisionReason") +
               "); grant it in the file's access and run coffer env apply");
    }
    return OkStatus();
  }

  Status CheckApplications(const Environment& env) {
    std::set<std::string> reported;  // vault/name already found missing
    for (const EnvApplication& app : env.applications) {
      for (const EnvSecret& secret : app.secrets) {
        std::string subject = app.name + ": " + secret.vault + "/" + secret.name;
        ASSIGN_OR_RETURN(VaultState vault, inst_.Vault(secret.vault));
        if (!vault.exists) {
          Find("MISSING-VAULT", env, subject,
               "vault '" + secret.vault + "' does not exist; run coffer env apply");
          continue;
        }
        ASSIGN_OR_RETURN(auto secrets, inst_.Secrets(secret.vault));
        auto it = secrets->find(AsciiLower(secret.name));
        if (it == secrets->end() || it->second.deleted) {
          Find("MISSING", env, subject,
               std::string(it == secrets->end() ? "the secret does not exist"
                                                : "the secret is deleted") +
                   (it == secrets->end() ? "; create it (coffer env apply -f FILE --set " +
                                               env.name + ":" + secret.name + "=FILE)"
                                         : "; recover it (coffer env apply -f FILE)"));
          reported.insert(AsciiLower(secret.vault + "/" + secret.name));
          continue;
        }
        CheckSecretState(env, secret, it->second, subject);
        RETURN_IF_ERROR(CheckReadable(env, app.identity, app.where, secret.vault, "SecretGet",
                                      secret.name, subject));
      }
      for (const EnvReadObject& read : app.reads) {
        RETURN_IF_ERROR(CheckRead(env, app, read, reported));
      }
    }
    return OkStatus();
  }

  Status CheckRead(const Environment& env, const EnvApplication& app, const EnvReadObject& read,
                   std::set<std::string>& reported) {
    std::string subject = app.name + ": " + read.vault + "/" + read.name + " (" + read.where + ")";
    std::string owner = OwnerOf(read.vault);
    if (owner != env.name) {
      Find("WRONG-VAULT", env, subject,
           owner.empty()
               ? "vault '" + read.vault + "' is not a vault of environment '" + env.name + "'"
               : "vault '" + read.vault + "' belongs to environment '" + owner +
                     "'; point it at this environment's vault");
      return OkStatus();
    }
    ASSIGN_OR_RETURN(VaultState vault, inst_.Vault(read.vault));
    if (!vault.exists) {
      Find("MISSING-VAULT", env, subject,
           "vault '" + read.vault + "' does not exist; run coffer env apply");
      return OkStatus();
    }
    std::string collection = read.type == "key"    ? "keys"
                             : read.type == "cert" ? "certificates"
                                                   : "secrets";
    std::string key = AsciiLower(read.vault + "/" + read.name);
    if (read.type == "secret" && read.version.empty()) {
      ASSIGN_OR_RETURN(auto secrets, inst_.Secrets(read.vault));
      auto it = secrets->find(AsciiLower(read.name));
      if (it == secrets->end() || it->second.deleted) {
        if (reported.insert(key).second) {
          Find("MISSING", env, subject,
               "the secret does not exist; create it (coffer env apply -f FILE --set " + env.name +
                   ":" + read.name + "=FILE)");
        }
        return OkStatus();
      }
      EnvSecret plain;
      CheckSecretState(env, plain, it->second, subject);
    } else {
      // A pinned version is looked for in the versions' list, which holds
      // no value (a secret's GET would return it).
      ASSIGN_OR_RETURN(std::optional<Json> found, Attributes(read, collection));
      if (!found) {
        Find("MISSING", env, subject,
             "the " + read.type + (read.version.empty() ? "" : " version " + read.version) +
                 " does not exist");
        return OkStatus();
      }
      if (!found->value("enabled", true)) {
        Find("DISABLED", env, subject, "the " + read.type + " is disabled");
      }
    }
    std::string who = app.identity.empty() ? read.client_id : app.identity;
    return CheckReadable(env, who, app.where, read.vault,
                         read.type == "key"    ? "KeyGet"
                         : read.type == "cert" ? "CertificateGet"
                                               : "SecretGet",
                         read.name, subject);
  }

  // The attributes of the object (or its pinned version) `read` names;
  // nothing when it does not exist.
  StatusOr<std::optional<Json>> Attributes(const EnvReadObject& read,
                                           const std::string& collection) {
    std::string base = "/" + collection + "/" + read.name;
    if (read.version.empty()) {
      auto r = s_.Vault("GET", read.vault, base);
      if (r.ok() && r->status == 404) {
        return std::optional<Json>();
      }
      if (!r.ok() || r->status != 200) {
        return Session::Failed(read.where, "reading the object", r);
      }
      return std::optional<Json>(Body(r).value("attributes", Json::object()));
    }
    auto first = s_.Vault("GET", read.vault, base + "/versions");
    if (first.ok() && first->status == 404) {
      return std::optional<Json>();
    }
    ASSIGN_OR_RETURN(Json versions, s_.All(read.where, first, s_.VaultResource(read.vault)));
    for (const auto& v : versions) {
      std::string id = StringMember(v, "id");
      if (EqualsIgnoreCase(id.substr(id.rfind('/') + 1), read.version)) {
        return std::optional<Json>(v.value("attributes", Json::object()));
      }
    }
    return std::optional<Json>();
  }

  // Every identity of another environment that can read this one's vaults.
  Status CheckCrossEnvironment(const Environment& env) {
    for (const Environment& other : file_.environments) {
      if (other.name == env.name) {
        continue;
      }
      for (const EnvIdentity& id : other.identities) {
        ASSIGN_OR_RETURN(auto principal, inst_.Identity(id));
        if (!principal) {
          continue;
        }
        for (const SeedVault& v : env.vaults) {
          ASSIGN_OR_RETURN(VaultState vault, inst_.Vault(v.name));
          if (!vault.exists) {
            continue;
          }
          RETURN_IF_ERROR(CheckCrossRead(env, other, id, *principal, v.name));
        }
      }
    }
    return OkStatus();
  }

  Status CheckCrossRead(const Environment& env, const Environment& other, const EnvIdentity& id,
                        const std::string& principal, const std::string& vault) {
    // The vault as a whole, then each secret the file names in it (a grant
    // may be scoped to one secret).
    std::vector<std::string> objects = {""};
    for (const auto& app : env.applications) {
      for (const auto& s : app.secrets) {
        if (EqualsIgnoreCase(s.vault, vault)) {
          objects.push_back(s.name);
        }
      }
    }
    for (const auto& object : objects) {
      ASSIGN_OR_RETURN(Json d, Explain(principal, vault, "SecretGet", object));
      if (d.value("allowed", false)) {
        std::string via = d["applied"].is_string() ? d["applied"].get<std::string>() : "";
        Find("CROSS-ENVIRONMENT", env, vault + (object.empty() ? "" : "/" + object),
             other.name + " identity '" + id.name + "' can read it" +
                 (via.empty() ? "" : " (granted by " + via + ")") + "; remove that grant");
        return OkStatus();
      }
    }
    return OkStatus();
  }

  // A value that is equal in this and another environment, not shareable.
  Status CheckSharedValues(const Environment& env) {
    if (key_.empty()) {
      key_ = NewHashKey();
    }
    for (const auto& app : env.applications) {
      for (const auto& secret : app.secrets) {
        if (secret.shareable) {
          continue;
        }
        ASSIGN_OR_RETURN(auto mine, Hash(secret.vault, secret.name));
        if (!mine) {
          continue;
        }
        for (const Environment& other : file_.environments) {
          if (other.name == env.name) {
            continue;
          }
          for (const auto& other_app : other.applications) {
            for (const auto& theirs : other_app.secrets) {
              if (!EqualsIgnoreCase(theirs.name, secret.name) || theirs.shareable) {
                continue;
              }
              ASSIGN_OR_RETURN(auto hash, Hash(theirs.vault, theirs.name));
              if (hash && *hash == *mine) {
                Find("SHARED-VALUE", env, secret.vault + "/" + secret.name,
                     "the value equals " + other.name + "'s (" + theirs.vault + "/" + theirs.name +
                         "); set a new value in one of them, or mark it shareable: true");
              }
            }
          }
        }
      }
    }
    return OkStatus();
  }

  // The keyed hash of a secret's current value; nothing when it cannot be
  // had (a missing or disabled secret, reported on its own).
  StatusOr<std::optional<std::string>> Hash(const std::string& vault, const std::string& name) {
    std::string key = AsciiLower(vault + "/" + name);
    if (auto it = hashes_.find(key); it != hashes_.end()) {
      return it->second;
    }
    ASSIGN_OR_RETURN(VaultState st, inst_.Vault(vault));
    std::optional<std::string> hash;
    if (st.exists) {
      ASSIGN_OR_RETURN(auto secrets, inst_.Secrets(vault));
      auto it = secrets->find(AsciiLower(name));
      if (it != secrets->end() && !it->second.deleted && it->second.enabled) {
        ASSIGN_OR_RETURN(hash, SecretHash(s_, vault, name, key_));
      }
    }
    return hashes_[key] = hash;
  }

  Installation& inst_;
  Session& s_;
  const EnvFile& file_;
  int64_t now_;
  std::string key_;
  std::map<std::string, std::optional<std::string>> hashes_;
  std::vector<EnvFinding> findings_;
};

Json SideJson(const std::string& vault, const SecretState& st) {
  Json j = {{"vault", vault}, {"enabled", st.enabled}, {"contentType", st.content_type}};
  j["exp"] = st.exp ? Json(FormatIsoTime(*st.exp)) : Json();
  return j;
}

}  // namespace

StatusOr<std::vector<EnvFinding>> CheckEnvironments(Installation& inst, const EnvFile& file,
                                                    const std::vector<std::string>& only,
                                                    int64_t now) {
  return Checker(inst, file, now).Run(only);
}

StatusOr<Json> DiffInventories(Installation& inst, const DiffSide& left, const DiffSide& right,
                               const std::vector<std::string>& shareable) {
  // name (lower case) -> (vault, state) on each side
  std::map<std::string, std::pair<std::string, SecretState>> sides[2];
  const DiffSide* both[2] = {&left, &right};
  for (int i = 0; i < 2; ++i) {
    for (const std::string& vault : both[i]->vaults) {
      ASSIGN_OR_RETURN(VaultState st, inst.Vault(vault));
      if (!st.exists) {
        return Status(StatusCode::kNotFound, "vault '" + vault + "' does not exist",
                      "VaultNotFound");
      }
      ASSIGN_OR_RETURN(auto secrets, inst.Secrets(vault));
      for (const auto& [name, secret] : *secrets) {
        if (!secret.deleted && !secret.managed) {
          sides[i].emplace(name, std::make_pair(vault, secret));
        }
      }
    }
  }
  std::set<std::string> names;
  for (const auto& side : sides) {
    for (const auto& [name, entry] : side) {
      names.insert(name);
    }
  }
  std::string key = NewHashKey();
  Json rows = Json::array();
  int differences = 0;
  for (const std::string& name : names) {
    auto l = sides[0].find(name);
    auto r = sides[1].find(name);
    Json row = {{"name", l != sides[0].end() ? l->second.second.name : r->second.second.name}};
    row["left"] = l != sides[0].end() ? SideJson(l->second.first, l->second.second) : Json();
    row["right"] = r != sides[1].end() ? SideJson(r->second.first, r->second.second) : Json();
    Json notes = Json::array();
    row["value"] = "unknown";
    if (l == sides[0].end() || r == sides[1].end()) {
      notes.push_back("only in " + (l == sides[0].end() ? right.label : left.label));
    } else {
      const SecretState& a = l->second.second;
      const SecretState& b = r->second.second;
      if (a.enabled != b.enabled) {
        notes.push_back(std::string("disabled in ") + (a.enabled ? right.label : left.label));
      }
      if (a.content_type != b.content_type) {
        notes.push_back("content type differs");
      }
      if (a.exp.has_value() != b.exp.has_value()) {
        notes.push_back("expiry only in " + (a.exp ? left.label : right.label));
      }
      if (a.enabled && b.enabled) {
        ASSIGN_OR_RETURN(std::string ha, SecretHash(inst.session(), l->second.first, a.name, key));
        ASSIGN_OR_RETURN(std::string hb, SecretHash(inst.session(), r->second.first, b.name, key));
        row["value"] = ha == hb ? "equal" : "different";
        if (ha == hb && std::find(shareable.begin(), shareable.end(), name) == shareable.end()) {
          notes.push_back("same value, not marked shareable");
        }
      }
    }
    if (!notes.empty()) {
      ++differences;
    }
    row["notes"] = notes;
    rows.push_back(std::move(row));
  }
  return Json{
      {"left", left.label}, {"right", right.label}, {"rows", rows}, {"differences", differences}};
}

}  // namespace coffer::cli
