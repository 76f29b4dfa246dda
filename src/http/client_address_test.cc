#include "http/client_address.h"

#include <gtest/gtest.h>

namespace coffer::http {
namespace {

TEST(ClientAddressKey, Ipv4AddressesCountApart) {
  EXPECT_EQ(ClientAddressKey("127.0.0.1"), "127.0.0.1");
  EXPECT_NE(ClientAddressKey("127.0.0.1"), ClientAddressKey("127.0.0.2"));
}

TEST(ClientAddressKey, Ipv6AddressesCountByTheirSlash64) {
  EXPECT_EQ(ClientAddressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(ClientAddressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
  EXPECT_NE(ClientAddressKey("2001:db8:1:2::1"), ClientAddressKey("2001:db8:1:3::1"));
  EXPECT_EQ(ClientAddressKey("::1"), "::/64");
}

TEST(ClientAddressKey, MappedIpv4CountsAsIpv4) {
  EXPECT_EQ(ClientAddressKey("::ffff:192.0.2.7"), "192.0.2.7");
}

TEST(ClientAddressKey, OtherTextIsBoundedAndCannotPassForAnAddress) {
  EXPECT_EQ(ClientAddressKey(""), "?");
  EXPECT_EQ(ClientAddressKey("not an address"), "?not an address");
  EXPECT_EQ(ClientAddressKey(std::string(1000, 'x')).size(), 65u);
}

}  // namespace
}  // namespace coffer::http
