#include "auth/device_flows.h"

#include "common/encoding.h"
#include "common/json.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

// RFC 8628 §6.1: consonants and digits that cannot be read as one another,
// 20 symbols of 8 characters (34 bits, with the page's failure limit).
constexpr std::string_view kUserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ";
constexpr size_t kUserCodeLength = 8;

std::string Key(std::string_view code) {
  return HexEncode(crypto::Sha256(code));
}

const char* StateName(DeviceFlow::State s) {
  switch (s) {
    case DeviceFlow::State::kPending:
      return "pending";
    case DeviceFlow::State::kApproved:
      return "approved";
    case DeviceFlow::State::kDeclined:
      return "declined";
    case DeviceFlow::State::kRedeemed:
      return "redeemed";
  }
  return "pending";
}

DeviceFlow::State StateOf(const std::string& name) {
  if (name == "approved")
    return DeviceFlow::State::kApproved;
  if (name == "declined")
    return DeviceFlow::State::kDeclined;
  if (name == "redeemed")
    return DeviceFlow::State::kRedeemed;
  return DeviceFlow::State::kPending;
}

DeviceFlow FlowOf(const Json& j) {
  DeviceFlow f;
  f.client_id = StringMember(j, "client");
  f.resource = StringMember(j, "resource");
  f.scope = StringMember(j, "scope");
  f.expires = j.value("expires", int64_t{0});
  f.state = StateOf(StringMember(j, "state"));
  f.object_id = StringMember(j, "oid");
  f.auth_time = j.value("authTime", int64_t{0});
  f.sessions_valid_from = j.value("svf", int64_t{0});
  return f;
}

Json JsonOf(const DeviceFlow& f, const std::string& user_key) {
  return Json{{"user", user_key},   {"client", f.client_id},   {"resource", f.resource},
              {"scope", f.scope},   {"expires", f.expires},    {"state", StateName(f.state)},
              {"oid", f.object_id}, {"authTime", f.auth_time}, {"svf", f.sessions_valid_from}};
}

// The document's flows (by device-code key), without the expired ones. A
// document that does not parse counts as empty: it holds nothing a user
// could not start again.
Json LiveFlows(const std::optional<std::string>& current, int64_t now) {
  Json flows = Json::object();
  if (!current) {
    return flows;
  }
  auto doc = ParseJson(*current);
  if (!doc || !doc->is_object() || !doc->contains("flows") || !(*doc)["flows"].is_object()) {
    return flows;
  }
  for (auto& [key, flow] : (*doc)["flows"].items()) {
    if (flow.is_object() && flow.value("expires", int64_t{0}) > now) {
      flows[key] = flow;
    }
  }
  return flows;
}

std::string Document(Json flows) {
  return ToJson(Json{{"flows", std::move(flows)}});
}

}  // namespace

DeviceFlows::DeviceFlows(storage::Store& store, const Clock& clock, size_t max_flows)
    : store_(store), clock_(clock), max_flows_(max_flows) {}

std::string DeviceFlows::NormalizeUserCode(std::string_view typed) {
  std::string out;
  for (char c : typed) {
    if (c == '-' || c == ' ') {
      continue;
    }
    char upper = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    if (kUserCodeAlphabet.find(upper) == std::string_view::npos || out.size() == kUserCodeLength) {
      return "";
    }
    out.push_back(upper);
  }
  return out.size() == kUserCodeLength ? out : "";
}

StatusOr<NewDeviceFlow> DeviceFlows::Start(const std::string& client_id,
                                           const std::string& resource, const std::string& scope) {
  NewDeviceFlow out;
  out.device_code = Base64UrlEncode(crypto::RandomBytes(32));
  std::string bytes = crypto::RandomBytes(kUserCodeLength);
  std::string code;
  for (unsigned char b : bytes) {
    // 256 % 20 = 16: a bias of under 1 in 16 per symbol, which costs the
    // code less than half a bit.
    code.push_back(kUserCodeAlphabet[b % kUserCodeAlphabet.size()]);
  }
  out.user_code = code.substr(0, 4) + "-" + code.substr(4);
  out.expires_in = kLifetimeSeconds;
  out.interval = kIntervalSeconds;
  int64_t now = clock_.NowSeconds();
  DeviceFlow flow;
  flow.client_id = client_id;
  flow.resource = resource;
  flow.scope = scope;
  flow.expires = now + kLifetimeSeconds;
  std::string device_key = Key(out.device_code);
  std::string user_key = Key(code);
  RETURN_IF_ERROR(
      store_
          .UpdateMeta(kMetaKey,
                      [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                        Json flows = LiveFlows(current, now);
                        if (flows.size() >= max_flows_) {
                          return ResourceExhaustedError(
                              "Too many device sign-ins are pending; try again "
                              "in a few minutes.");
                        }
                        for (const auto& [key, f] : flows.items()) {
                          if (StringMember(f, "user") == user_key) {
                            return AbortedError("user code collision");
                          }
                        }
                        flows[device_key] = JsonOf(flow, user_key);
                        return Document(std::move(flows));
                      })
          .status());
  return out;
}

StatusOr<DeviceFlow> DeviceFlows::Find(std::string_view user_code) {
  std::string code = NormalizeUserCode(user_code);
  if (code.empty()) {
    return NotFoundError("no such code");
  }
  std::string user_key = Key(code);
  ASSIGN_OR_RETURN(std::optional<std::string> current, store_.GetMeta(kMetaKey));
  Json flows = LiveFlows(current, clock_.NowSeconds());
  for (const auto& [key, f] : flows.items()) {
    if (StringMember(f, "user") == user_key) {
      DeviceFlow flow = FlowOf(f);
      if (flow.state == DeviceFlow::State::kPending) {
        return flow;
      }
    }
  }
  return NotFoundError("no such code");
}

Status DeviceFlows::Decide(std::string_view user_code, bool approved, const std::string& object_id,
                           int64_t auth_time, int64_t sessions_valid_from) {
  std::string code = NormalizeUserCode(user_code);
  if (code.empty()) {
    return NotFoundError("no such code");
  }
  std::string user_key = Key(code);
  int64_t now = clock_.NowSeconds();
  return store_
      .UpdateMeta(kMetaKey,
                  [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                    Json flows = LiveFlows(current, now);
                    for (auto& [key, f] : flows.items()) {
                      if (StringMember(f, "user") != user_key) {
                        continue;
                      }
                      DeviceFlow flow = FlowOf(f);
                      if (flow.state != DeviceFlow::State::kPending) {
                        break;
                      }
                      flow.state =
                          approved ? DeviceFlow::State::kApproved : DeviceFlow::State::kDeclined;
                      flow.object_id = approved ? object_id : "";
                      flow.auth_time = approved ? auth_time : 0;
                      flow.sessions_valid_from = approved ? sessions_valid_from : 0;
                      f = JsonOf(flow, user_key);
                      return Document(std::move(flows));
                    }
                    return NotFoundError("no such code");
                  })
      .status();
}

StatusOr<DeviceFlow> DeviceFlows::Redeem(const std::string& device_code,
                                         const std::string& client_id) {
  std::string device_key = Key(device_code);
  int64_t now = clock_.NowSeconds();
  // An expired flow is read, not written: the write would drop it.
  ASSIGN_OR_RETURN(std::optional<std::string> seen, store_.GetMeta(kMetaKey));
  if (seen) {
    auto doc = ParseJson(*seen);
    if (doc && doc->is_object() && doc->contains("flows") && (*doc)["flows"].is_object() &&
        (*doc)["flows"].contains(device_key)) {
      DeviceFlow flow = FlowOf((*doc)["flows"][device_key]);
      if (flow.client_id != client_id || flow.state == DeviceFlow::State::kRedeemed) {
        return NotFoundError("no such code");
      }
      if (flow.expires <= now || flow.state != DeviceFlow::State::kApproved) {
        return flow;
      }
    } else {
      return NotFoundError("no such code");
    }
  } else {
    return NotFoundError("no such code");
  }
  DeviceFlow out;
  RETURN_IF_ERROR(
      store_
          .UpdateMeta(kMetaKey,
                      [&](const std::optional<std::string>& current) -> StatusOr<std::string> {
                        Json flows = LiveFlows(current, now);
                        if (!flows.contains(device_key)) {
                          return NotFoundError("no such code");
                        }
                        Json& f = flows[device_key];
                        out = FlowOf(f);
                        if (out.client_id != client_id ||
                            out.state != DeviceFlow::State::kApproved) {
                          return NotFoundError("no such code");
                        }
                        DeviceFlow redeemed = out;
                        redeemed.state = DeviceFlow::State::kRedeemed;
                        f = JsonOf(redeemed, StringMember(f, "user"));
                        return Document(std::move(flows));
                      })
          .status());
  return out;
}

}  // namespace coffer::auth
