// The administrator: created once per store however many servers start
// together, and rotated so that exactly one issued secret stays valid.

#include "auth/admin_credentials.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "storage/memory/memory_store.h"

namespace coffer::auth {
namespace {

constexpr int kStarts = 4;

DirectoryOptions Options() {
  DirectoryOptions options;
  options.secret_hash_key = std::string(32, 'k');
  return options;
}

// Lets `n` threads through only together.
class Barrier {
 public:
  explicit Barrier(int n) : waiting_(n) {}
  void ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (--waiting_ == 0) {
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [this] { return waiting_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_;
};

class AdministratorCredentialsTest : public ::testing::Test {
 protected:
  AdministratorCredentialsTest()
      : clock_(1800000000),
        directory_(store_, clock_, "t1", Options()),
        admin_(directory_, store_, 365) {}

  bool Valid(const std::string& object_id, const std::string& secret) {
    return directory_.FindClientSecret(object_id, secret).ok();
  }

  storage::MemoryStore store_;
  FakeClock clock_;
  Directory directory_;
  AdministratorCredentials admin_;
};

TEST_F(AdministratorCredentialsTest, StartsThatOverlapCreateOneAdministrator) {
  // Every start has found no administrator before any creates one: the
  // race two servers starting on one store run.
  Barrier barrier(kStarts);
  admin_.SetClaimHookForTesting([&] { barrier.ArriveAndWait(); });
  std::vector<StatusOr<AdministratorCredentials::Claim>> claims(kStarts, InternalError("unset"));
  std::vector<std::thread> starts;
  for (int i = 0; i < kStarts; ++i) {
    starts.emplace_back([&, i] { claims[i] = admin_.ClaimAdministrator("coffer-admin"); });
  }
  for (auto& t : starts) {
    t.join();
  }
  int created = 0;
  std::string winner;
  for (const auto& claim : claims) {
    ASSERT_TRUE(claim.ok()) << claim.status().ToString();
    if (claim->created) {
      ++created;
      winner = claim->created->principal.object_id;
      EXPECT_TRUE(Valid(winner, claim->created->client_secret));
    }
  }
  ASSERT_EQ(created, 1);
  for (const auto& claim : claims) {
    ASSERT_EQ(claim->administrators.size(), 1u);
    EXPECT_EQ(claim->administrators.front(), winner);
  }
  auto principals = store_.ListPrincipals();
  ASSERT_TRUE(principals.ok());
  ASSERT_EQ(principals->size(), 1u) << "the losers' principals are deleted";
  EXPECT_EQ(principals->front().object_id, winner);
  // A later start finds it and issues nothing.
  auto later = admin_.ClaimAdministrator("coffer-admin");
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(later->created);
  EXPECT_EQ(later->administrators.front(), winner);
}

TEST_F(AdministratorCredentialsTest, AnAbandonedClaimLetsTheNextStartCreateAgain) {
  auto first = admin_.ClaimAdministrator("coffer-admin");
  ASSERT_TRUE(first.ok() && first->created);
  const std::string abandoned = first->created->principal.object_id;
  EXPECT_EQ(admin_.AbandonClaim("someone-else").code(), StatusCode::kAborted);
  ASSERT_TRUE(admin_.AbandonClaim(abandoned).ok());
  EXPECT_EQ(store_.GetPrincipal(abandoned).status().code(), StatusCode::kNotFound);
  auto again = admin_.ClaimAdministrator("coffer-admin");
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->created);
  EXPECT_NE(again->created->principal.object_id, abandoned);
}

TEST_F(AdministratorCredentialsTest, RotationRevokesTheIssuedSecretAndKeepsGraphAddedOnes) {
  auto claim = admin_.ClaimAdministrator("coffer-admin");
  ASSERT_TRUE(claim.ok() && claim->created);
  const std::string oid = claim->created->principal.object_id;
  const std::string first = claim->created->client_secret;
  auto added = directory_.AddClientSecret(oid, 30);  // as the Graph API adds one
  ASSERT_TRUE(added.ok());
  auto rotated = admin_.Rotate(oid);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(rotated->generation, 2);
  EXPECT_TRUE(Valid(oid, rotated->secret.secret));
  EXPECT_FALSE(Valid(oid, first));
  EXPECT_TRUE(Valid(oid, added->secret));
  auto again = admin_.Rotate(oid);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->generation, 3);
  EXPECT_FALSE(Valid(oid, rotated->secret.secret));
  EXPECT_TRUE(Valid(oid, again->secret.secret));
  EXPECT_EQ(admin_.Rotate("no-such-principal").status().code(), StatusCode::kNotFound);
}

TEST_F(AdministratorCredentialsTest, ConcurrentRotationsLeaveTheLastOneValid) {
  auto claim = admin_.ClaimAdministrator("coffer-admin");
  ASSERT_TRUE(claim.ok() && claim->created);
  const std::string oid = claim->created->principal.object_id;
  constexpr int kEach = 8;
  std::mutex mu;
  std::vector<AdministratorCredentials::Issued> answered;
  int aborted = 0;
  Barrier barrier(kStarts);
  std::vector<std::thread> callers;
  for (int i = 0; i < kStarts; ++i) {
    callers.emplace_back([&] {
      barrier.ArriveAndWait();
      for (int n = 0; n < kEach; ++n) {
        auto r = admin_.Rotate(oid);
        std::lock_guard<std::mutex> lock(mu);
        if (r.ok()) {
          answered.push_back(std::move(*r));
        } else {
          EXPECT_EQ(r.status().code(), StatusCode::kAborted) << r.status().ToString();
          ++aborted;
        }
      }
    });
  }
  for (auto& t : callers) {
    t.join();
  }
  ASSERT_FALSE(answered.empty());
  EXPECT_EQ(answered.size() + aborted, size_t{kStarts * kEach});
  const AdministratorCredentials::Issued* last = &answered.front();
  for (const auto& issued : answered) {
    if (issued.generation > last->generation) {
      last = &issued;
    }
  }
  for (const auto& issued : answered) {
    EXPECT_EQ(Valid(oid, issued.secret.secret), &issued == last) << issued.generation;
  }
  EXPECT_FALSE(Valid(oid, claim->created->client_secret));
  auto left = store_.ListClientSecrets(oid);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u) << "every secret of an aborted or superseded rotation is gone";
  EXPECT_EQ(left->front().key_id, last->secret.info.key_id);
}

TEST_F(AdministratorCredentialsTest, KeepRevokesAnEarlierReleasesRecordedSecrets) {
  auto sp = directory_.CreateServicePrincipal("coffer-admin", 365);
  ASSERT_TRUE(sp.ok());
  const std::string oid = sp->principal.object_id;
  auto kept = directory_.AddClientSecret(oid, 365);
  ASSERT_TRUE(kept.ok());
  // As an earlier release recorded what it issued: a list of key ids.
  ASSERT_TRUE(store_.PutMeta("admin_object_ids", "[\"" + oid + "\"]").ok());
  ASSERT_TRUE(store_
                  .PutMeta("admin_env_secret_key_ids",
                           "[\"" + sp->secret_key_id + "\",\"" + kept->info.key_id + "\"]")
                  .ok());
  ASSERT_TRUE(admin_.Keep(oid, kept->info.key_id).ok());
  EXPECT_TRUE(Valid(oid, kept->secret));
  EXPECT_FALSE(Valid(oid, sp->client_secret));
  auto rotated = admin_.Rotate(oid);
  ASSERT_TRUE(rotated.ok());
  EXPECT_FALSE(Valid(oid, kept->secret));
}

}  // namespace
}  // namespace coffer::auth
