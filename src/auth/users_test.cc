// The directory's people: validation, password policy, updates, and
// sign-in checks with lockout.

#include "auth/users.h"

#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

constexpr char kPassword[] = "Correct-Horse-1";

UserOptions Options() {
  UserOptions o;
  o.cost = crypto::LeastCost();
  o.per_address = {1000, 1};
  return o;
}

NewUser Ada() {
  NewUser u;
  u.display_name = "Ada Lovelace";
  u.user_principal_name = "ada@example.test";
  u.mail_nickname = "ada";
  u.given_name = "Ada";
  u.surname = "Lovelace";
  u.password = kPassword;
  return u;
}

class UsersTest : public ::testing::Test {
 protected:
  UsersTest() : clock_(1800000000), users_(store_, clock_, "t1", Options()) {}

  std::string CreateAda() {
    auto made = users_.Create(Ada());
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? made->object_id : "";
  }
  SignInFailure SignIn(const std::string& upn, const std::string& password,
                       const std::string& address = "a1") {
    auto r = users_.SignIn(upn, password, address);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->failure : SignInFailure::kNone;
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  Users users_;
};

TEST_F(UsersTest, ACreatedUserIsAPrincipalWithAHashNeverThePassword) {
  auto made = users_.Create(Ada());
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->display_name, "Ada Lovelace");
  EXPECT_EQ(made->user_principal_name, "ada@example.test");
  EXPECT_EQ(made->password_hash.rfind("$argon2id$", 0), 0u);
  EXPECT_EQ(made->password_hash.find(kPassword), std::string::npos);
  EXPECT_EQ(made->password_changed, 1800000000);
  auto principal = store_.GetPrincipal(made->object_id);
  ASSERT_TRUE(principal.ok());
  EXPECT_EQ(principal->kind, "User");
  EXPECT_EQ(principal->tenant_id, "t1");
  EXPECT_EQ(users_.Find("ADA@example.test")->object_id, made->object_id);
  EXPECT_EQ(users_.Find(made->object_id)->user_principal_name, "ada@example.test");
  EXPECT_EQ(users_.Find("nobody@example.test").status().code(), StatusCode::kNotFound);

  NewUser again = Ada();
  again.user_principal_name = "Ada@Example.TEST";
  Status taken = users_.Create(again).status();
  EXPECT_EQ(taken.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(taken.message().find("userPrincipalName"), std::string::npos);
  EXPECT_EQ(users_.List()->size(), 1u);
}

TEST_F(UsersTest, MalformedPropertiesAreRefusedByName) {
  struct Case {
    std::string property;
    void (*spoil)(NewUser&);
  };
  const std::vector<Case> cases = {
      {"displayName", [](NewUser& u) { u.display_name = ""; }},
      {"displayName", [](NewUser& u) { u.display_name = std::string(257, 'x'); }},
      {"displayName", [](NewUser& u) { u.display_name = "bad\nname"; }},
      {"displayName", [](NewUser& u) { u.display_name = "\xff\xfe"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "no-at-sign"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "@example.test"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "a@b@example.test"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = ".ada@example.test"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "ada.@example.test"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "a da@example.test"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "ada@exa_mple.test"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "ada@example..test"; }},
      {"userPrincipalName", [](NewUser& u) { u.user_principal_name = "ada@-example.test"; }},
      {"userPrincipalName",
       [](NewUser& u) { u.user_principal_name = std::string(65, 'a') + "@example.test"; }},
      {"userPrincipalName",
       [](NewUser& u) {
         u.user_principal_name = "a@" + std::string(60, 'b') + "." + std::string(60, 'c');
       }},
      {"mailNickname", [](NewUser& u) { u.mail_nickname = ""; }},
      {"mailNickname", [](NewUser& u) { u.mail_nickname = "a b"; }},
      {"mailNickname", [](NewUser& u) { u.mail_nickname = "a@b"; }},
      {"givenName", [](NewUser& u) { u.given_name = std::string(65, 'g'); }},
      {"surname", [](NewUser& u) { u.surname = "\x01"; }},
  };
  for (const auto& c : cases) {
    NewUser u = Ada();
    c.spoil(u);
    Status s = users_.Create(u).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.property;
    EXPECT_NE(s.message().find("'" + c.property + "'"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(users_.List()->empty()) << "nothing half written";
  NewUser odd = Ada();
  odd.user_principal_name = "o'neil.x-y_z!#^~@sub.example-1.test";
  EXPECT_TRUE(users_.Create(odd).ok()) << "Entra's alias characters";
}

TEST_F(UsersTest, PasswordsMeetThePolicy) {
  for (const std::string& weak :
       std::vector<std::string>{"Ab1!", "alllowercase", "ALLUPPER123", "lower123456",
                                "Tab\tinside1", std::string(257, 'a') + "A1"}) {
    NewUser u = Ada();
    u.password = weak;
    Status s = users_.Create(u).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << weak;
    EXPECT_NE(s.message().find("password complexity"), std::string::npos);
    EXPECT_EQ(s.message().find(weak), std::string::npos) << "never echoed";
  }
  for (const char* good : {"Lower-and-UPPER", "lower123!", "UPPER123x", "Пароль-Secret1"}) {
    EXPECT_TRUE(Users::PasswordPolicy(good).ok()) << good;
  }
}

TEST_F(UsersTest, UpdatesChangeWhatTheyNameInOneWrite) {
  std::string id = CreateAda();
  NewUser bob = Ada();
  bob.user_principal_name = "bob@example.test";
  ASSERT_TRUE(users_.Create(bob).ok());

  UserChange rename;
  rename.display_name = "Countess";
  rename.surname = "King";
  auto changed = users_.Update(id, rename);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ(changed->display_name, "Countess");
  EXPECT_EQ(store_.GetPrincipal(id)->display_name, "Countess");
  EXPECT_EQ(changed->given_name, "Ada") << "kept";
  EXPECT_EQ(changed->sessions_valid_from, 0) << "a rename ends no session";

  UserChange taken;
  taken.user_principal_name = "BOB@example.test";
  taken.display_name = "x";
  EXPECT_EQ(users_.Update(id, taken).status().code(), StatusCode::kAlreadyExists);
  UserChange weak;
  weak.display_name = "y";
  weak.password = "weak";
  EXPECT_EQ(users_.Update(id, weak).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(users_.Find(id)->display_name, "Countess") << "a refused change changes nothing";

  clock_.Advance(10);
  UserChange disable;
  disable.account_enabled = false;
  EXPECT_EQ(users_.Update(id, disable)->sessions_valid_from, 1800000010);
  EXPECT_EQ(users_.Update("missing", rename).status().code(), StatusCode::kNotFound);
}

TEST_F(UsersTest, TheRightPasswordSignsInAndAWrongOneDoesNot) {
  std::string id = CreateAda();
  auto ok = users_.SignIn("ADA@example.test", kPassword, "a1");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->failure, SignInFailure::kNone);
  EXPECT_EQ(ok->user.object_id, id);
  EXPECT_FALSE(ok->must_change);
  EXPECT_EQ(SignIn("ada@example.test", "Wrong-Horse-1"), SignInFailure::kBadCredentials);
  EXPECT_EQ(SignIn("ada@example.test", std::string(300, 'x')), SignInFailure::kBadCredentials);
  EXPECT_EQ(SignIn("ada@example.test", ""), SignInFailure::kBadCredentials);
  EXPECT_EQ(users_.Find(id)->failed_sign_ins, 3);
  EXPECT_EQ(SignIn("ada@example.test", kPassword), SignInFailure::kNone);
  EXPECT_EQ(users_.Find(id)->failed_sign_ins, 0) << "a success resets the count";
}

TEST_F(UsersTest, TenFailuresLockTheUserOutWithoutAnyCheckAndLockoutsGrow) {
  std::string id = CreateAda();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(SignIn("ada@example.test", "Wrong-" + std::to_string(i)),
              SignInFailure::kBadCredentials);
  }
  uint64_t checks = users_.password_checks();
  auto locked = users_.SignIn("ada@example.test", kPassword, "a1");
  ASSERT_TRUE(locked.ok());
  EXPECT_EQ(locked->failure, SignInFailure::kLocked) << "even with the right password";
  EXPECT_EQ(locked->retry_after, 60);
  EXPECT_EQ(users_.password_checks(), checks) << "a locked user's password is not checked";

  clock_.Advance(60);
  EXPECT_EQ(SignIn("ada@example.test", "Wrong-again"), SignInFailure::kBadCredentials);
  for (int i = 0; i < 9; ++i) {
    SignIn("ada@example.test", "Wrong-" + std::to_string(i));
  }
  auto second = users_.SignIn("ada@example.test", kPassword, "a1");
  EXPECT_EQ(second->failure, SignInFailure::kLocked);
  EXPECT_EQ(second->retry_after, 120) << "the second lockout in a row lasts twice as long";
  clock_.Advance(120);
  EXPECT_EQ(SignIn("ada@example.test", kPassword), SignInFailure::kNone);
  EXPECT_EQ(users_.Find(id)->lockouts, 0) << "a success ends the run of lockouts";
}

TEST_F(UsersTest, LockoutsStopAtTheirLongest) {
  UserOptions o = Options();
  o.lockout_threshold = 1;
  o.lockout_seconds = 600;
  o.max_lockout_seconds = 1800;
  Users users(store_, clock_, "t1", o);
  ASSERT_TRUE(users.Create(Ada()).ok());
  int64_t waits[4];
  for (int64_t& wait : waits) {
    EXPECT_EQ(users.SignIn("ada@example.test", "Wrong-1", "a1")->failure,
              SignInFailure::kBadCredentials);
    wait = users.SignIn("ada@example.test", kPassword, "a1")->retry_after;
    clock_.Advance(wait);
  }
  EXPECT_EQ(waits[0], 600);
  EXPECT_EQ(waits[1], 1200);
  EXPECT_EQ(waits[2], 1800);
  EXPECT_EQ(waits[3], 1800);
}

TEST_F(UsersTest, UnknownUsersAreAnsweredAsAWrongPasswordAndLockedAlike) {
  CreateAda();
  uint64_t before = users_.password_checks();
  EXPECT_EQ(SignIn("nobody@example.test", kPassword), SignInFailure::kBadCredentials);
  EXPECT_EQ(users_.password_checks(), before + 1) << "the same hash is checked";
  for (int i = 1; i < 10; ++i) {
    EXPECT_EQ(SignIn("NOBODY@example.test", "x"), SignInFailure::kBadCredentials);
  }
  EXPECT_EQ(SignIn("nobody@example.test", "x"), SignInFailure::kLocked);
  EXPECT_EQ(SignIn(std::string(5000, 'n'), "x"), SignInFailure::kBadCredentials)
      << "an oversized name is just unknown";
  EXPECT_EQ(SignIn("ada@example.test", kPassword), SignInFailure::kNone) << "others unaffected";
}

TEST_F(UsersTest, ADisabledUserIsToldOnlyAfterTheRightPassword) {
  std::string id = CreateAda();
  UserChange disable;
  disable.account_enabled = false;
  ASSERT_TRUE(users_.Update(id, disable).ok());
  EXPECT_EQ(SignIn("ada@example.test", "Wrong-Horse-1"), SignInFailure::kBadCredentials);
  EXPECT_EQ(SignIn("ada@example.test", kPassword), SignInFailure::kDisabled);
}

TEST_F(UsersTest, AForcedChangeIsFlaggedAfterTheRightPassword) {
  NewUser u = Ada();
  u.force_change_password = true;
  ASSERT_TRUE(users_.Create(u).ok());
  auto r = users_.SignIn("ada@example.test", kPassword, "a1");
  EXPECT_EQ(r->failure, SignInFailure::kNone);
  EXPECT_TRUE(r->must_change);
}

TEST_F(UsersTest, AnAddressFailingTooOftenIsThrottledAcrossUsers) {
  UserOptions o = Options();
  o.per_address = {3, 60};
  Users users(store_, clock_, "t1", o);
  ASSERT_TRUE(users.Create(Ada()).ok());
  for (const char* name : {"x@example.test", "y@example.test", "ada@example.test"}) {
    EXPECT_EQ(users.SignIn(name, "Wrong-1", "10.0.0.1")->failure, SignInFailure::kBadCredentials);
  }
  auto throttled = users.SignIn("ada@example.test", kPassword, "10.0.0.1");
  EXPECT_EQ(throttled->failure, SignInFailure::kThrottled);
  EXPECT_GT(throttled->retry_after, 0);
  EXPECT_EQ(users.SignIn("ada@example.test", kPassword, "10.0.0.2")->failure, SignInFailure::kNone);
}

TEST_F(UsersTest, AResetLiftsALockoutAndEndsSessions) {
  std::string id = CreateAda();
  for (int i = 0; i < 10; ++i) {
    SignIn("ada@example.test", "Wrong-1");
  }
  clock_.Advance(5);
  UserChange reset;
  reset.password = "Brand-New-Pass2";
  reset.force_change_password = true;
  auto changed = users_.Update(id, reset);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->locked_until, 0);
  EXPECT_EQ(changed->sessions_valid_from, 1800000005);
  EXPECT_EQ(SignIn("ada@example.test", kPassword), SignInFailure::kBadCredentials);
  auto r = users_.SignIn("ada@example.test", "Brand-New-Pass2", "a1");
  EXPECT_EQ(r->failure, SignInFailure::kNone);
  EXPECT_TRUE(r->must_change);
}

TEST_F(UsersTest, AUserChangesTheirPasswordWithTheCurrentOne) {
  NewUser u = Ada();
  u.force_change_password = true;
  std::string id = users_.Create(u)->object_id;
  auto wrong = users_.ChangePassword(id, "Wrong-Horse-1", "Brand-New-Pass2", "a1");
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->failure, SignInFailure::kBadCredentials);
  EXPECT_EQ(users_.Find(id)->failed_sign_ins, 1) << "counts toward lockout";
  EXPECT_EQ(users_.ChangePassword(id, kPassword, "weak", "a1").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(users_.ChangePassword(id, kPassword, kPassword, "a1").status().code(),
            StatusCode::kInvalidArgument);
  clock_.Advance(7);
  auto changed = users_.ChangePassword(id, kPassword, "Brand-New-Pass2", "a1");
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ(changed->failure, SignInFailure::kNone);
  EXPECT_FALSE(changed->user.force_change_password);
  EXPECT_EQ(changed->user.sessions_valid_from, 1800000007);
  EXPECT_EQ(SignIn("ada@example.test", kPassword), SignInFailure::kBadCredentials);
  EXPECT_EQ(SignIn("ada@example.test", "Brand-New-Pass2"), SignInFailure::kNone);
}

TEST_F(UsersTest, ConcurrentFailuresLockOnceAndLoseNoCount) {
  std::string id = CreateAda();
  std::vector<std::thread> threads;
  for (int t = 0; t < 24; ++t) {
    threads.emplace_back(
        [&] { EXPECT_TRUE(users_.SignIn("ada@example.test", "Wrong-1", "a1").ok()); });
  }
  for (auto& t : threads) {
    t.join();
  }
  auto u = users_.Find(id);
  // Ten failures lock; the rest find the lockout and are not counted.
  EXPECT_EQ(u->lockouts, 1);
  EXPECT_EQ(u->failed_sign_ins, 0);
  EXPECT_EQ(u->locked_until, 1800000060);
}

TEST_F(UsersTest, DeleteRemovesOnlyUsers) {
  std::string id = CreateAda();
  ASSERT_TRUE(
      store_.CreatePrincipal({"sp", "app", "t1", "sp", "ServicePrincipal", 1, "", "", "{}"}).ok());
  EXPECT_EQ(users_.Delete("sp").code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_.GetPrincipal("sp").ok());
  EXPECT_TRUE(users_.Delete(id).ok());
  EXPECT_EQ(store_.GetPrincipal(id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(SignIn("ada@example.test", kPassword), SignInFailure::kBadCredentials);
}

TEST(WorkSlotsTest, WorkBeyondTheSlotsAndQueueIsRefusedAndQueuedWorkRuns) {
  for (int queue : {0, 1}) {
    WorkSlots slots(1, queue);
    std::promise<void> started, release;
    std::shared_future<void> released = release.get_future().share();
    std::thread holder([&] {
      slots.Run([&] {
        started.set_value();
        released.wait();
      });
    });
    started.get_future().wait();
    if (queue == 0) {
      EXPECT_FALSE(slots.Run([] {})) << "no slot and no queue place";
      release.set_value();
    } else {
      std::atomic<bool> ran{false};
      std::thread waiter([&] { EXPECT_TRUE(slots.Run([&] { ran = true; })); });
      release.set_value();
      waiter.join();
      EXPECT_TRUE(ran) << "the queued work ran once a slot was free";
    }
    holder.join();
    EXPECT_TRUE(slots.Run([] {}));
  }
}

}  // namespace
}  // namespace coffer::auth
