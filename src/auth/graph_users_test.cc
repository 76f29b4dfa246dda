// Graph's users API: shapes, paging, filters, and refusals that change
// nothing.

#include "auth/graph_users.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/json.h"
#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

constexpr char kPassword[] = "Correct-Horse-1";

http::Request Req(std::string method, std::map<std::string, std::string> query = {},
                  std::string body = "") {
  http::Request r;
  r.method = std::move(method);
  r.query = std::move(query);
  r.body = std::move(body);
  r.host = "localhost:8443";
  r.remote_address = "127.0.0.1";
  return r;
}

Json BodyOf(const http::Response& r) {
  auto j = ParseJson(r.body);
  return j ? *j : Json();
}

std::string CreateBody(const std::string& upn, const std::string& name = "Someone") {
  return ToJson(Json{
      {"accountEnabled", true},
      {"displayName", name},
      {"mailNickname", upn.substr(0, upn.find('@'))},
      {"userPrincipalName", upn},
      {"passwordProfile", {{"password", kPassword}, {"forceChangePasswordNextSignIn", false}}}});
}

class GraphUsersTest : public ::testing::Test {
 protected:
  GraphUsersTest()
      : clock_(1800000000),
        users_(store_, clock_, "t1",
               [] {
                 UserOptions o;
                 o.cost = crypto::LeastCost();
                 return o;
               }()),
        api_(users_, {[this](const std::string& oid) { ended_.insert(oid); }}) {}

  http::Response Create(const std::string& upn, const std::string& name = "Someone") {
    return api_.Handle(Req("POST", {}, CreateBody(upn, name)), "", "");
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  Users users_;
  std::set<std::string> ended_;
  GraphUsers api_;
};

TEST_F(GraphUsersTest, CreateAnswersTheUserWithoutItsPassword) {
  http::Response r = Create("ada@example.test", "Ada");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body.find(kPassword), std::string::npos);
  EXPECT_EQ(r.body.find("argon2"), std::string::npos);
  Json j = BodyOf(r);
  EXPECT_EQ(j["userPrincipalName"], "ada@example.test");
  EXPECT_EQ(j["displayName"], "Ada");
  EXPECT_TRUE(j["businessPhones"].is_array());
  EXPECT_TRUE(j["mail"].is_null());
  EXPECT_EQ(j["@odata.context"], "https://localhost:8443/v1.0/$metadata#users/$entity");
  std::string id = j["id"];
  bool located = false;
  for (const auto& [name, value] : r.headers) {
    located = located || (name == "Location" && value == "https://localhost:8443/v1.0/users/" + id);
  }
  EXPECT_TRUE(located);

  http::Response got = api_.Handle(Req("GET"), "ADA@example.test", "");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(BodyOf(got)["id"], id);
  http::Response selected =
      api_.Handle(Req("GET", {{"$select", "id,accountEnabled,userType,mailNickname"}}), id, "");
  Json s = BodyOf(selected);
  EXPECT_EQ(s["accountEnabled"], true);
  EXPECT_EQ(s["userType"], "Member");
  EXPECT_EQ(s["mailNickname"], "ada");
  EXPECT_FALSE(s.contains("displayName"));
  EXPECT_EQ(api_.Handle(Req("GET", {{"$select", "passwordHash"}}), id, "").status, 400);
  EXPECT_EQ(api_.Handle(Req("GET"), "missing@example.test", "").status, 404);
}

TEST_F(GraphUsersTest, MalformedCreatesAreRefusedAndWriteNothing) {
  Json good = *ParseJson(CreateBody("ada@example.test"));
  std::vector<std::pair<std::string, std::string>> bad = {
      {"not json", "{"},
      {"not an object", "[1]"},
  };
  for (const char* required :
       {"accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"}) {
    Json j = good;
    j.erase(required);
    bad.push_back({std::string("missing ") + required, ToJson(j)});
  }
  Json wrong_type = good;
  wrong_type["accountEnabled"] = "yes";
  bad.push_back({"accountEnabled as a string", ToJson(wrong_type)});
  Json weak = good;
  weak["passwordProfile"]["password"] = "weak";
  bad.push_back({"weak password", ToJson(weak)});
  Json unknown = good;
  unknown["employeeId"] = "1";
  bad.push_back({"unknown property", ToJson(unknown)});
  Json upn = good;
  upn["userPrincipalName"] = "no-domain";
  bad.push_back({"bad name", ToJson(upn)});
  for (const auto& [what, body] : bad) {
    http::Response r = api_.Handle(Req("POST", {}, body), "", "");
    EXPECT_EQ(r.status, 400) << what << ": " << r.body;
    EXPECT_EQ(BodyOf(r)["error"]["code"], "Request_BadRequest") << what;
    EXPECT_EQ(r.body.find(kPassword), std::string::npos) << what;
    EXPECT_EQ(r.body.find("weak\""), std::string::npos) << what;
  }
  EXPECT_TRUE(users_.List()->empty());
  ASSERT_EQ(Create("ada@example.test").status, 201);
  http::Response taken = Create("ADA@EXAMPLE.TEST");
  EXPECT_EQ(taken.status, 400);
  EXPECT_NE(taken.body.find("already exists"), std::string::npos);
}

TEST_F(GraphUsersTest, ListsArePagedByNextLinkInNameOrder) {
  for (int i = 0; i < 250; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "u%03d@example.test", i);
    ASSERT_EQ(Create(name, i % 2 ? "Odd" : "Even").status, 201);
  }
  std::set<std::string> seen;
  std::map<std::string, std::string> query = {{"$top", "100"}};
  int pages = 0;
  std::string previous;
  while (true) {
    http::Response r = api_.Handle(Req("GET", query), "", "");
    ASSERT_EQ(r.status, 200) << r.body;
    Json j = BodyOf(r);
    ++pages;
    for (const auto& u : j["value"]) {
      std::string upn = u["userPrincipalName"];
      EXPECT_GT(upn, previous);
      previous = upn;
      seen.insert(upn);
    }
    if (!j.contains("@odata.nextLink")) {
      break;
    }
    std::string next = j["@odata.nextLink"];
    ASSERT_EQ(next.rfind("https://localhost:8443/v1.0/users?$top=100&$skiptoken=", 0), 0u) << next;
    query["$skiptoken"] = next.substr(next.find("$skiptoken=") + 11);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 250u);
  EXPECT_EQ(BodyOf(api_.Handle(Req("GET"), "", ""))["value"].size(), 100u) << "default $top";
  for (const char* top : {"0", "1000", "x", "-1"}) {
    EXPECT_EQ(api_.Handle(Req("GET", {{"$top", top}}), "", "").status, 400) << top;
  }
  EXPECT_EQ(api_.Handle(Req("GET", {{"$skiptoken", "garbage!"}}), "", "").status, 400);
}

TEST_F(GraphUsersTest, FiltersSelectAndTheRestIsRefused) {
  EXPECT_EQ(api_.Handle(Req("GET", {{"$filter", "jobTitle eq 'x'"}}), "", "").status, 400)
      << "refused before any user is looked at";
  ASSERT_EQ(Create("ada@example.test", "Ada Lovelace").status, 201);
  ASSERT_EQ(Create("alan@example.test", "Alan Turing").status, 201);
  ASSERT_EQ(Create("grace@example.test", "Grace Hopper").status, 201);
  auto names = [&](const std::string& filter) {
    std::vector<std::string> out;
    http::Response r = api_.Handle(Req("GET", {{"$filter", filter}}), "", "");
    EXPECT_EQ(r.status, 200) << filter << ": " << r.body;
    Json page = BodyOf(r);
    for (const auto& u : page["value"]) {
      out.push_back(u["userPrincipalName"]);
    }
    return out;
  };
  EXPECT_EQ(names("userPrincipalName eq 'ADA@example.test'"),
            std::vector<std::string>{"ada@example.test"});
  EXPECT_EQ(names("startswith(displayName,'a')"),
            (std::vector<std::string>{"ada@example.test", "alan@example.test"}));
  EXPECT_EQ(names("startswith(displayName,'a') and startswith(userPrincipalName,'al')"),
            std::vector<std::string>{"alan@example.test"});
  EXPECT_EQ(names("accountEnabled eq false"), std::vector<std::string>{});
  EXPECT_EQ(names("mail eq 'ada@example.test'"), std::vector<std::string>{});
  for (const char* bad :
       {"displayName ne 'x'", "jobTitle eq 'x'", "accountEnabled eq 'true'", "displayName eq true",
        "startswith(id,'x')", "displayName eq 'a' or displayName eq 'b'"}) {
    http::Response r = api_.Handle(Req("GET", {{"$filter", bad}}), "", "");
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(BodyOf(r)["error"]["code"], "Request_UnsupportedQuery") << bad;
  }
}

TEST_F(GraphUsersTest, PatchChangesWhatItNamesAndResetsEndSessions) {
  std::string id = BodyOf(Create("ada@example.test", "Ada"))["id"];
  ASSERT_EQ(Create("bob@example.test").status, 201);
  http::Response renamed =
      api_.Handle(Req("PATCH", {}, R"({"displayName":"Countess","surname":"King"})"), id, "");
  EXPECT_EQ(renamed.status, 204) << renamed.body;
  EXPECT_EQ(users_.Find(id)->display_name, "Countess");
  EXPECT_TRUE(ended_.empty()) << "a rename ends no session";

  http::Response taken = api_.Handle(
      Req("PATCH", {}, R"({"displayName":"X","userPrincipalName":"BOB@example.test"})"), id, "");
  EXPECT_EQ(taken.status, 400);
  EXPECT_EQ(users_.Find(id)->display_name, "Countess") << "nothing half applied";
  EXPECT_EQ(api_.Handle(Req("PATCH", {}, R"({"id":"other"})"), id, "").status, 400);

  clock_.Advance(3);
  http::Response reset = api_.Handle(
      Req("PATCH", {}, R"({"passwordProfile":{"password":"Brand-New-Pass2"}})"), id, "");
  EXPECT_EQ(reset.status, 204) << reset.body;
  EXPECT_EQ(ended_.count(id), 1u);
  EXPECT_EQ(users_.Find(id)->sessions_valid_from, 1800000003);
  EXPECT_EQ(users_.SignIn("ada@example.test", "Brand-New-Pass2", "a")->failure,
            SignInFailure::kNone);

  ended_.clear();
  http::Response revoked = api_.Handle(Req("POST"), id, "revokeSignInSessions");
  EXPECT_EQ(revoked.status, 200);
  EXPECT_EQ(BodyOf(revoked)["value"], true);
  EXPECT_EQ(ended_.count(id), 1u);

  http::Response deleted = api_.Handle(Req("DELETE"), "ada@example.test", "");
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(api_.Handle(Req("GET"), id, "").status, 404);
  EXPECT_EQ(api_.Handle(Req("DELETE"), id, "").status, 404);
}

}  // namespace
}  // namespace coffer::auth
