#include "keyvault/envelope.h"

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "crypto/primitives.h"

#include <sys/stat.h>

namespace coffer::keyvault {
namespace {

TEST(Envelope, ValuesAreBoundToVaultNameAndVersion) {
  auto env = Envelope::Create(crypto::RandomBytes(32));
  ASSERT_TRUE(env.ok());
  auto dek = (*env)->UnwrapDataKey("v1", (*env)->NewWrappedDataKey("v1"));
  ASSERT_TRUE(dek.ok());
  std::string sealed = Envelope::SealValue(*dek, "v1", "Name", "ver1", "s3cret");
  EXPECT_EQ(*Envelope::OpenValue(*dek, "V1", "name", "ver1", sealed), "s3cret");
  EXPECT_FALSE(Envelope::OpenValue(*dek, "v2", "name", "ver1", sealed).ok());
  EXPECT_FALSE(Envelope::OpenValue(*dek, "v1", "other", "ver1", sealed).ok());
  EXPECT_FALSE(Envelope::OpenValue(*dek, "v1", "name", "ver2", sealed).ok());
}

TEST(Envelope, KeyMaterialIsBoundToItsKeyAndNeverOpensAsASecret) {
  auto env = Envelope::Create(crypto::RandomBytes(32));
  ASSERT_TRUE(env.ok());
  auto dek = (*env)->UnwrapDataKey("v1", (*env)->NewWrappedDataKey("v1"));
  ASSERT_TRUE(dek.ok());
  std::string sealed = Envelope::SealKeyMaterial(*dek, "v1", "Name", "ver1", "private");
  EXPECT_EQ(*Envelope::OpenKeyMaterial(*dek, "V1", "name", "ver1", sealed), "private");
  EXPECT_EQ(Envelope::OpenKeyMaterial(*dek, "v1", "name", "ver2", sealed).status().code(),
            StatusCode::kDataLoss);
  // A secret of the same name and version id: the rows differ only in kind.
  EXPECT_FALSE(Envelope::OpenValue(*dek, "v1", "name", "ver1", sealed).ok());
  std::string secret = Envelope::SealValue(*dek, "v1", "name", "ver1", "value");
  EXPECT_FALSE(Envelope::OpenKeyMaterial(*dek, "v1", "name", "ver1", secret).ok());
}

TEST(Envelope, DataKeysOpenOnlyForTheirVaultAndMasterKey) {
  auto env = Envelope::Create(crypto::RandomBytes(32));
  auto other = Envelope::Create(crypto::RandomBytes(32));
  std::string wrapped = (*env)->NewWrappedDataKey("v1");
  EXPECT_EQ((*env)->UnwrapDataKey("v2", wrapped).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ((*other)->UnwrapDataKey("v1", wrapped).status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(Envelope::Create("short").ok());
}

TEST(Envelope, BackupsOpenOnlyInTheSameInstallation) {
  auto env = Envelope::Create(crypto::RandomBytes(32));
  auto other = Envelope::Create(crypto::RandomBytes(32));
  std::string blob = (*env)->SealBackup("payload");
  EXPECT_EQ(*(*env)->OpenBackup(blob), "payload");
  EXPECT_EQ((*other)->OpenBackup(blob).status().reason(), "BadParameter");
  EXPECT_FALSE((*env)->OpenBackup("junk").ok());
  blob[10] = static_cast<char>(blob[10] ^ 1);
  EXPECT_FALSE((*env)->OpenBackup(blob).ok());
}

TEST(Envelope, MasterKeyFileIsCreatedPrivateAndRefusedWhenShared) {
  ::unsetenv("COFFER_MASTER_KEY");
  auto dir = test::TempDir::Create("coffer-mk-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  std::string path = dir->Join("master.key");
  auto key = Envelope::LoadMasterKey(path);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->size(), 32u);
  EXPECT_EQ(FileMode(path), 0600);
  EXPECT_EQ(*Envelope::LoadMasterKey(path), *key);
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(Envelope::LoadMasterKey(path).status().code(), StatusCode::kFailedPrecondition);
  ::setenv("COFFER_MASTER_KEY", "bm90LTMyLWJ5dGVz", 1);
  EXPECT_EQ(Envelope::LoadMasterKey(path).status().code(), StatusCode::kInvalidArgument);
  ::unsetenv("COFFER_MASTER_KEY");
}

}  // namespace
}  // namespace coffer::keyvault
