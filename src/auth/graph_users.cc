#include "auth/graph_users.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "auth/odata_filter.h"
#include "common/encoding.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "crypto/primitives.h"

namespace coffer::auth {
namespace {

constexpr int kDefaultTop = 100;
constexpr int kMaxTop = 999;
constexpr char kSkipTokenPrefix[] = "u1:";

// Graph's default properties of a user, in its order.
constexpr std::string_view kDefaultProperties[] = {
    "businessPhones", "displayName",    "givenName",         "id",      "jobTitle",         "mail",
    "mobilePhone",    "officeLocation", "preferredLanguage", "surname", "userPrincipalName"};

Json OrNull(const std::string& s) {
  return s.empty() ? Json(nullptr) : Json(s);
}

// The value of one property, or nullopt if Coffer does not know it.
std::optional<Json> Property(const storage::UserRecord& u, std::string_view name) {
  if (name == "id")
    return Json(u.object_id);
  if (name == "displayName")
    return Json(u.display_name);
  if (name == "userPrincipalName")
    return Json(u.user_principal_name);
  if (name == "givenName")
    return OrNull(u.given_name);
  if (name == "surname")
    return OrNull(u.surname);
  if (name == "mailNickname")
    return Json(u.mail_nickname);
  if (name == "accountEnabled")
    return Json(u.account_enabled);
  if (name == "userType")
    return Json("Member");
  if (name == "createdDateTime")
    return Json(FormatIsoTime(u.created));
  if (name == "lastPasswordChangeDateTime")
    return Json(FormatIsoTime(u.password_changed));
  if (name == "signInSessionsValidFromDateTime") {
    return Json(FormatIsoTime(std::max(u.sessions_valid_from, u.created)));
  }
  if (name == "businessPhones")
    return Json::array();
  if (name == "jobTitle" || name == "mail" || name == "mobilePhone" || name == "officeLocation" ||
      name == "preferredLanguage") {
    return Json(nullptr);
  }
  return std::nullopt;
}

// The text property a clause compares, or nullptr for one it cannot.
const std::string* TextOf(const storage::UserRecord& u, const ODataClause& c) {
  if (c.property == "userPrincipalName")
    return &u.user_principal_name;
  if (c.property == "displayName")
    return &u.display_name;
  if (c.property == "mailNickname")
    return &u.mail_nickname;
  if (c.property == "givenName")
    return &u.given_name;
  if (c.property == "surname")
    return &u.surname;
  if (c.property == "id" && c.op == ODataClause::Op::kEq)
    return &u.object_id;
  return nullptr;
}

// CheckClauses refuses a clause on a property that cannot be filtered so,
// before any user is looked at (an empty directory refuses it too).
Status CheckClauses(const std::vector<ODataClause>& clauses) {
  storage::UserRecord none;
  for (const auto& c : clauses) {
    bool boolean = c.property == "accountEnabled" && c.op == ODataClause::Op::kEq;
    bool text = TextOf(none, c) != nullptr || c.property == "mail";
    if (boolean ? !c.boolean : (!text || c.boolean)) {
      return InvalidArgumentError("Coffer cannot filter users by '" + c.property.substr(0, 64) +
                                  "' that way.");
    }
  }
  return OkStatus();
}

// Whether `u` meets every clause (CheckClauses passed).
bool Matches(const storage::UserRecord& u, const std::vector<ODataClause>& clauses) {
  for (const auto& c : clauses) {
    if (c.property == "accountEnabled") {
      if (u.account_enabled != *c.boolean) {
        return false;
      }
      continue;
    }
    const std::string* value = TextOf(u, c);
    if (value == nullptr) {
      return false;  // mail: Coffer's users have no mailbox
    }
    bool ok = c.op == ODataClause::Op::kEq ? EqualsIgnoreCase(*value, c.text)
                                           : StartsWithIgnoreCase(*value, c.text);
    if (!ok) {
      return false;
    }
  }
  return true;
}

Status Unsupported(std::string message) {
  return InvalidArgumentError(std::move(message), "Request_UnsupportedQuery");
}

StatusOr<Json> Body(const http::Request& req) {
  auto j = ParseJson(req.body.empty() ? "{}" : req.body);
  if (!j || !j->is_object()) {
    return InvalidArgumentError("The request body is not a JSON object.");
  }
  return std::move(*j);
}

Status BadProperty(std::string_view property) {
  return InvalidArgumentError("Invalid value specified for property '" + std::string(property) +
                              "' of resource 'User'.");
}

// Reads the writable properties of a user from a POST or PATCH body.
// Unknown properties are refused by name: Coffer keeps only these.
Status ReadChange(const Json& body, UserChange& change) {
  auto text = [&](const char* name, std::optional<std::string>& out) -> Status {
    auto it = body.find(name);
    if (it == body.end()) {
      return OkStatus();
    }
    if (!it->is_string()) {
      return BadProperty(name);
    }
    out = it->get<std::string>();
    return OkStatus();
  };
  for (const auto& [name, value] : body.items()) {
    if (name != "displayName" && name != "userPrincipalName" && name != "mailNickname" &&
        name != "givenName" && name != "surname" && name != "accountEnabled" &&
        name != "passwordProfile") {
      return InvalidArgumentError("Property '" + name.substr(0, 64) +
                                  "' is not one Coffer keeps for a user.");
    }
  }
  RETURN_IF_ERROR(text("displayName", change.display_name));
  RETURN_IF_ERROR(text("userPrincipalName", change.user_principal_name));
  RETURN_IF_ERROR(text("mailNickname", change.mail_nickname));
  RETURN_IF_ERROR(text("givenName", change.given_name));
  RETURN_IF_ERROR(text("surname", change.surname));
  if (auto it = body.find("accountEnabled"); it != body.end()) {
    if (!it->is_boolean()) {
      return BadProperty("accountEnabled");
    }
    change.account_enabled = it->get<bool>();
  }
  if (auto it = body.find("passwordProfile"); it != body.end()) {
    if (!it->is_object()) {
      return BadProperty("passwordProfile");
    }
    auto password = it->find("password");
    if (password == it->end() || !password->is_string()) {
      return BadProperty("passwordProfile");
    }
    change.password = password->get<std::string>();
    auto force = it->find("forceChangePasswordNextSignIn");
    if (force != it->end() && !force->is_null()) {
      if (!force->is_boolean()) {
        return BadProperty("passwordProfile");
      }
      change.force_change_password = force->get<bool>();
    } else {
      change.force_change_password = false;
    }
  }
  return OkStatus();
}

// The wiping of a parsed body's password, which lives in the JSON too.
void WipePassword(Json& body) {
  auto it = body.find("passwordProfile");
  if (it != body.end() && it->is_object()) {
    auto password = it->find("password");
    if (password != it->end() && password->is_string()) {
      crypto::SecureWipe(password->get_ref<std::string&>());
    }
  }
}

}  // namespace

http::Response GraphUserError(const Status& s) {
  if (!s.reason().empty() && s.code() == StatusCode::kInvalidArgument) {
    return http::ErrorResponse(400, s.reason(), std::string(s.message()));
  }
  switch (s.code()) {
    case StatusCode::kNotFound:
      return http::ErrorResponse(404, "Request_ResourceNotFound",
                                 "Resource does not exist or one of its queried reference-property "
                                 "objects are not present.");
    case StatusCode::kInvalidArgument:
    case StatusCode::kAlreadyExists:
      // Graph answers a taken name with 400, not 409.
      return http::ErrorResponse(400, "Request_BadRequest", std::string(s.message()));
    default:
      return http::ErrorResponse(s);
  }
}

GraphUsers::GraphUsers(Users& users, Hooks hooks) : users_(users), hooks_(std::move(hooks)) {}

StatusOr<Json> GraphUsers::UserJson(const storage::UserRecord& user, std::string_view select) {
  Json out = Json::object();
  if (select.empty()) {
    for (std::string_view name : kDefaultProperties) {
      out[std::string(name)] = *Property(user, name);
    }
    return out;
  }
  for (std::string_view name : Split(select, ',')) {
    name = TrimWhitespace(name);
    auto value = Property(user, name);
    if (!value) {
      return InvalidArgumentError("Could not find a property named '" +
                                  std::string(name.substr(0, 64)) +
                                  "' on type 'microsoft.graph.user'.");
    }
    out[std::string(name)] = std::move(*value);
  }
  return out;
}

http::Response GraphUsers::Handle(const http::Request& req, const std::string& id,
                                  std::string_view verb) {
  if (id.empty()) {
    return req.method == "POST" ? Create(req) : List(req);
  }
  auto user = users_.Find(id);
  if (!user.ok()) {
    return GraphUserError(user.status());
  }
  const std::string oid = user->object_id;
  if (verb == "revokeSignInSessions") {
    auto revoked = users_.RevokeSessions(oid);
    if (!revoked.ok()) {
      return GraphUserError(revoked.status());
    }
    if (hooks_.on_sessions_ended) {
      hooks_.on_sessions_ended(oid);
    }
    return http::JsonResponse(
        200, ToJson(Json{{"@odata.context", "https://" + req.host + "/v1.0/$metadata#Edm.Boolean"},
                         {"value", true}}));
  }
  if (req.method == "GET") {
    auto json = UserJson(*user, req.Query("$select"));
    if (!json.ok()) {
      return GraphUserError(json.status());
    }
    (*json)["@odata.context"] = "https://" + req.host + "/v1.0/$metadata#users/$entity";
    return http::JsonResponse(200, ToJson(*json));
  }
  if (req.method == "PATCH") {
    return Patch(req, *user);
  }
  // DELETE. Entra keeps a deleted user 30 days; Coffer deletes at once.
  Status deleted = users_.Delete(oid);
  if (!deleted.ok()) {
    return GraphUserError(deleted);
  }
  if (hooks_.on_sessions_ended) {
    hooks_.on_sessions_ended(oid);
  }
  return http::EmptyResponse(204);
}

http::Response GraphUsers::List(const http::Request& req) {
  int top = kDefaultTop;
  if (std::string_view t = req.Query("$top"); !t.empty()) {
    int64_t n = 0;
    if (!ParseInt64(t, &n) || n < 1 || n > kMaxTop) {
      return GraphUserError(InvalidArgumentError("Invalid page size specified: '" +
                                                 std::string(t.substr(0, 16)) +
                                                 "'. Must be between 1 and 999 inclusive."));
    }
    top = static_cast<int>(n);
  }
  std::vector<ODataClause> clauses;
  std::string_view filter = req.Query("$filter");
  if (!filter.empty()) {
    auto parsed = ParseODataFilter(filter);
    if (!parsed.ok()) {
      // SECURITY: a filter not understood is refused, never ignored: a
      // client that takes value[0] would act on the wrong user.
      return GraphUserError(Unsupported(std::string(parsed.status().message())));
    }
    clauses = std::move(*parsed);
    if (Status checked = CheckClauses(clauses); !checked.ok()) {
      return GraphUserError(Unsupported(std::string(checked.message())));
    }
  }
  std::string after;
  if (std::string_view token = req.Query("$skiptoken"); !token.empty()) {
    auto decoded = Base64UrlDecode(token);
    if (!decoded || !StartsWith(*decoded, kSkipTokenPrefix)) {
      return GraphUserError(InvalidArgumentError("The $skiptoken is not valid."));
    }
    after = decoded->substr(sizeof(kSkipTokenPrefix) - 1);
  }
  std::string select(req.Query("$select"));
  auto all = users_.List();
  if (!all.ok()) {
    return GraphUserError(all.status());
  }
  Json items = Json::array();
  std::string last;
  bool more = false;
  for (const auto& u : *all) {
    std::string key = AsciiLower(u.user_principal_name);
    if (!after.empty() && key <= after) {
      continue;
    }
    if (!Matches(u, clauses)) {
      continue;
    }
    if (static_cast<int>(items.size()) == top) {
      more = true;
      break;
    }
    auto json = UserJson(u, select);
    if (!json.ok()) {
      return GraphUserError(json.status());
    }
    items.push_back(std::move(*json));
    last = std::move(key);
  }
  Json out{{"@odata.context", "https://" + req.host + "/v1.0/$metadata#users"}};
  if (more) {
    std::string next = "https://" + req.host + "/v1.0/users?$top=" + std::to_string(top);
    if (!filter.empty()) {
      next += "&$filter=" + PercentEncode(filter);
    }
    if (!select.empty()) {
      next += "&$select=" + PercentEncode(select);
    }
    next += "&$skiptoken=" + Base64UrlEncode(kSkipTokenPrefix + last);
    out["@odata.nextLink"] = next;
  }
  out["value"] = std::move(items);
  return http::JsonResponse(200, ToJson(out));
}

http::Response GraphUsers::Create(const http::Request& req) {
  auto body = Body(req);
  if (!body.ok()) {
    return GraphUserError(body.status());
  }
  UserChange change;
  Status read = ReadChange(*body, change);
  WipePassword(*body);
  if (!read.ok()) {
    return GraphUserError(read);
  }
  // Graph's required properties.
  NewUser user;
  if (!change.account_enabled) {
    return GraphUserError(BadProperty("accountEnabled"));
  }
  if (!change.display_name) {
    return GraphUserError(BadProperty("displayName"));
  }
  if (!change.mail_nickname) {
    return GraphUserError(BadProperty("mailNickname"));
  }
  if (!change.user_principal_name) {
    return GraphUserError(BadProperty("userPrincipalName"));
  }
  if (!change.password) {
    return GraphUserError(BadProperty("passwordProfile"));
  }
  user.account_enabled = *change.account_enabled;
  user.display_name = std::move(*change.display_name);
  user.mail_nickname = std::move(*change.mail_nickname);
  user.user_principal_name = std::move(*change.user_principal_name);
  user.given_name = change.given_name.value_or("");
  user.surname = change.surname.value_or("");
  user.password = std::move(*change.password);
  user.force_change_password = change.force_change_password.value_or(false);
  auto made = users_.Create(std::move(user));
  if (!made.ok()) {
    return GraphUserError(made.status());
  }
  Json out = *UserJson(*made, "");
  out["@odata.context"] = "https://" + req.host + "/v1.0/$metadata#users/$entity";
  http::Response r = http::JsonResponse(201, ToJson(out));
  r.SetHeader("Location", "https://" + req.host + "/v1.0/users/" + made->object_id);
  return r;
}

http::Response GraphUsers::Patch(const http::Request& req, const storage::UserRecord& user) {
  auto body = Body(req);
  if (!body.ok()) {
    return GraphUserError(body.status());
  }
  UserChange change;
  Status read = ReadChange(*body, change);
  WipePassword(*body);
  if (!read.ok()) {
    return GraphUserError(read);
  }
  bool ends_sessions = change.password || (change.account_enabled && !*change.account_enabled);
  auto updated = users_.Update(user.object_id, std::move(change));
  if (!updated.ok()) {
    return GraphUserError(updated.status());
  }
  if (ends_sessions && hooks_.on_sessions_ended) {
    hooks_.on_sessions_ended(user.object_id);
  }
  return http::EmptyResponse(204);
}

}  // namespace coffer::auth
