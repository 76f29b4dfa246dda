#include "http/message.h"

#include <gtest/gtest.h>

namespace coffer::http {
namespace {

TEST(ParseTarget, DecodesEncodedQueryNamesAndKeepsEmptySegments) {
  Request r;
  ASSERT_TRUE(ParseTarget("/secrets/a%2Db/?api%2Dversion=2025-07-01&maxresults=5", r).ok());
  ASSERT_EQ(r.segments.size(), 3u);
  EXPECT_EQ(r.segments[1], "a-b");
  EXPECT_EQ(r.segments[2], "");
  EXPECT_EQ(r.Query("api-version"), "2025-07-01");
  EXPECT_EQ(r.Query("maxresults"), "5");
}

TEST(ParseTarget, KeepsDoubleSlashAsEmptyVersion) {
  Request r;
  ASSERT_TRUE(ParseTarget("/keys/k//decrypt", r).ok());
  ASSERT_EQ(r.segments.size(), 4u);
  EXPECT_EQ(r.segments[2], "");
}

TEST(ParseTarget, RejectsMalformedTargets) {
  Request r;
  EXPECT_FALSE(ParseTarget("secrets", r).ok());
  EXPECT_FALSE(ParseTarget("/secrets/%zz", r).ok());
  EXPECT_FALSE(ParseTarget("/s?x=%4", r).ok());
}

TEST(ErrorResponse, UsesReasonAsCodeAndMapsStatus) {
  Response r = ErrorResponse(NotFoundError("secret 'x' not found", "SecretNotFound"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":{"code":"SecretNotFound","message":"secret 'x' not found"}})");
  EXPECT_EQ(ErrorResponse(InvalidArgumentError("bad")).status, 400);
  EXPECT_EQ(ErrorResponse(AlreadyExistsError("dup")).status, 409);
  EXPECT_EQ(ErrorResponse(UnauthenticatedError("no")).status, 401);
}

TEST(ErrorResponse, AReasonWithASlashCarriesAnInnerError) {
  Response r = ErrorResponse(PermissionDeniedError("no", "Forbidden/KeyOperationForbidden"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, R"({"error":{"code":"Forbidden","innererror":{"code":"KeyOperationForbidden"},)"
                    R"("message":"no"}})");
}

}  // namespace
}  // namespace coffer::http
