#include "http/url.h"

#include <string>

#include <gtest/gtest.h>

#include "http/message.h"

namespace coffer::http {
namespace {

Url MustParse(const std::string& text) {
  StatusOr<Url> url = ParseUrl(text);
  EXPECT_TRUE(url.ok()) << text << ": " << url.status().ToString();
  return url.ok() ? *url : Url{};
}

TEST(ParseUrl, TakesAnAbsoluteUrlApart) {
  Url u = MustParse("https://Dev.Vault.LocalHost:8443/secrets/a?api-version=7.5&x=%2F");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.host, "dev.vault.localhost");
  EXPECT_FALSE(u.ipv6);
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.path_and_query, "/secrets/a?api-version=7.5&x=%2F");
  EXPECT_EQ(u.Path(), "/secrets/a");
  EXPECT_EQ(u.Query(), "api-version=7.5&x=%2F");
  EXPECT_EQ(u.Authority(), "dev.vault.localhost:8443");
  EXPECT_EQ(u.Origin(), "https://dev.vault.localhost:8443");
  EXPECT_EQ(u.ToString(), "https://dev.vault.localhost:8443/secrets/a?api-version=7.5&x=%2F");
}

TEST(ParseUrl, DefaultsThePortAndThePath) {
  Url u = MustParse("HTTP://example.com");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.path_and_query, "/");
  EXPECT_EQ(u.Authority(), "example.com");
  Url t = MustParse("https://example.com:443/x");
  EXPECT_EQ(t.port, 443);
  EXPECT_EQ(t.Origin(), "https://example.com");  // the default port is not written
  EXPECT_EQ(MustParse("https://a.example/?q").Query(), "q");
  EXPECT_EQ(MustParse("https://a_b.example/").host, "a_b.example");
  // A last label that is not a number is a name ("1password", a container's id).
  EXPECT_EQ(MustParse("https://1password.example/").host, "1password.example");
  EXPECT_EQ(MustParse("http://3f4e5a6b7c8d:8080/").host, "3f4e5a6b7c8d");
  EXPECT_EQ(MustParse("http://10.0.0.1x/").host, "10.0.0.1x");
}

TEST(ParseUrl, ReadsIpv6OnlyInBracketsAndCanonicalises) {
  Url u = MustParse("http://[0:0:0:0:0:0:0:1]:8080/metadata");
  EXPECT_TRUE(u.ipv6);
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.Authority(), "[::1]:8080");
  EXPECT_TRUE(u.IsLoopback());
  EXPECT_EQ(MustParse("https://[2001:DB8::1]/").host, "2001:db8::1");
  for (const char* bad :
       {"http://::1/", "http://::1:80/", "http://fe80::1/", "http://[::1/", "http://[::1]x/",
        "http://[::1]:/", "http://[]/", "http://[fe80::1%25eth0]/", "http://[fe80::1%eth0]/",
        "http://[127.0.0.1]/", "http://[v1.x]/"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
}

TEST(ParseUrl, RefusesWhatCouldBeReadAsAnotherHost) {
  for (const char* bad : {
           // '?', '#', '@' and '\' in the authority: a checker and a client
           // that end it at different characters see different hosts.
           "http://localhost?.attacker.example/",
           "http://localhost?@attacker.example/",
           "http://localhost#.attacker.example/",
           "http://localhost#@attacker.example/x",
           "http://127.0.0.1@attacker.example/",
           "http://user:pass@localhost/",
           "http://@localhost/",
           "http://localhost\\.attacker.example/",
           "http://localhost\\@attacker.example/",
           // Numeric hosts the resolver reads as 127.0.0.1, written otherwise.
           "http://127.1/",
           "http://2130706433/",
           "http://0x7f.0.0.1/",
           "http://127.0.0.0x1/",
           "http://0x7f000001/",
           "http://0x/",
           "http://0177.0.0.1/",
           "http://127.000.000.001/",
           "http://127.0.0.1.5/",
           "http://127.0.0.256/",
           "http://1.2.3.04/",
           // Encoded or odd hosts.
           "http://local%68ost/",
           "http://localhost./",
           "http://.localhost/",
           "http://a..b/",
           "http://xn--bcher-kva.example\xc3\xa9/",
           "http://exa mple.com/",
       }) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
    EXPECT_FALSE(IsTrustworthyUrl(bad)) << bad;
  }
}

TEST(ParseUrl, RefusesBadSchemesPortsAndCharacters) {
  for (const char* bad : {"",
                          "localhost/x",
                          "//localhost/",
                          "ftp://localhost/",
                          "file:///etc/passwd",
                          "https:/localhost/",
                          "https//localhost/",
                          "javascript://localhost/",
                          "https://",
                          "https:///x",
                          "https://:443/",
                          "https://host:/",
                          "https://host:0/",
                          "https://host:65536/",
                          "https://host:99999999999/",
                          "https://host:08443/",
                          "https://host:-1/",
                          "https://host:+80/",
                          "https://host:80:80/",
                          "https://host: 80/",
                          "https://host/a b",
                          "https://host/a\tb",
                          "https://host/\r\nX-Injected: 1",
                          "https://host/a\x7f",
                          "https://host/\xc3\xa9",
                          "https://host/#frag",
                          "https://host/a?b#c",
                          " https://host/"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
  std::string label(64, 'a');
  EXPECT_FALSE(ParseUrl("https://" + label + ".example/").ok());
  std::string long_host;
  while (long_host.size() < 260) {
    long_host += "abcdefghi.";
  }
  EXPECT_FALSE(ParseUrl("https://" + long_host + "example/").ok());
  EXPECT_FALSE(ParseUrl("https://example.com/" + std::string(kMaxUrlLength, 'a')).ok());
}

TEST(ParseUrl, ErrorsDoNotQuoteTheUrl) {
  StatusOr<Url> u = ParseUrl("https://user:s3cr3t@host/");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(u.status().message()).find("s3cr3t"), std::string::npos);
}

TEST(IsTrustworthyUrl, HttpsAnywhereHttpOnlyToLoopback) {
  EXPECT_TRUE(IsTrustworthyUrl("https://issuer.example/tenant/.well-known/openid-configuration"));
  EXPECT_TRUE(IsTrustworthyUrl("http://localhost:8080/x"));
  EXPECT_TRUE(IsTrustworthyUrl("http://127.0.0.1:8080/x?y=z"));
  EXPECT_TRUE(IsTrustworthyUrl("http://[::1]:8080/x"));
  EXPECT_FALSE(IsTrustworthyUrl("http://issuer.example/x"));
  EXPECT_FALSE(IsTrustworthyUrl("http://127.0.0.2/x"));
  EXPECT_FALSE(IsTrustworthyUrl("http://localhost.attacker.example/x"));
  EXPECT_FALSE(IsTrustworthyUrl("https://issuer.example/" + std::string(2048, 'a')));
}

}  // namespace
}  // namespace coffer::http
