#include "agent/spc.h"

#include <csignal>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "agent/agent_config.h"
#include "agent/spc_yaml.h"
#include "common/strings.h"

namespace coffer::agent {
namespace {

using Map = std::map<std::string, std::string>;

constexpr char kToken[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
constexpr char kClientSecret[] = "s3cr3t-value-never-in-messages";

std::string TokensJson(std::string_view audience, std::string_view token) {
  return "{\"" + std::string(audience) + "\":{\"token\":\"" + std::string(token) +
         "\",\"expirationTimestamp\":\"2026-05-01T10:00:00Z\"}}";
}

// The objects parameter as SPCs write it: each entry a block string.
std::string Objects(const std::vector<std::string>& entries) {
  std::string out = "array:\n";
  for (const std::string& e : entries) {
    out += "  - |\n";
    for (std::string_view line : Split(e, '\n')) {
      out += "    ";
      out += line;
      out += "\n";
    }
  }
  return out;
}

Map BaseAttributes() {
  return Map{
      {"keyvaultName", "kv-prod"},
      {"tenantID", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
      {"objects", Objects({"objectName: db-pass\nobjectType: secret"})},
      {"csi.storage.k8s.io/pod.name", "app-7d9c"},
      {"csi.storage.k8s.io/pod.namespace", "prod"},
      {"csi.storage.k8s.io/pod.uid", "1b7b"},
      {"csi.storage.k8s.io/serviceAccount.name", "app"},
  };
}

Map SpSecrets() {
  return Map{{"clientid", "sp-client"}, {"clientsecret", kClientSecret}};
}

StatusOr<AzureMountParameters> Parse(const Map& attributes, const Map& secrets = SpSecrets(),
                                     const AzureParseOptions& opts = {}) {
  return ParseAzureProviderParameters(attributes, secrets, opts);
}

// Expects kInvalidArgument whose message contains `needle`, and never the
// client secret or the token.
void ExpectError(const Status& s, std::string_view needle,
                 StatusCode code = StatusCode::kInvalidArgument) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string_view::npos)
      << "message: " << s.message() << "\nwant: " << needle;
  EXPECT_EQ(s.message().find(kClientSecret), std::string_view::npos) << s.message();
  EXPECT_EQ(s.message().find(kToken), std::string_view::npos) << s.message();
}

StatusOr<std::vector<AzureObject>> ParseObjectsOnly(const std::string& objects) {
  Map a = BaseAttributes();
  a["objects"] = objects;
  auto p = Parse(a);
  if (!p.ok()) {
    return p.status();
  }
  return p->objects;
}

Status ObjectError(const std::string& entry) {
  auto p = ParseObjectsOnly(Objects({entry}));
  return p.ok() ? OkStatus() : p.status();
}

// ---------------------------------------------------------------- YAML adapter

TEST(YamlTest, ParsesScalarsSequencesMapsAndStyles) {
  auto docs = ParseYamlDocuments("a: true\nb: \"x\"\nc: |\n  hi\nd:\ne: [1, 2]\nf: !!str 5\n",
                                 YamlLimits());
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 1u);
  const YamlNode& d = docs->front();
  ASSERT_TRUE(d.IsMap());
  ASSERT_EQ(d.members.size(), 6u);
  EXPECT_EQ(d.members[0].key, "a");  // document order
  EXPECT_TRUE(d.Find("a")->plain);
  EXPECT_EQ(d.Find("a")->scalar, "true");
  EXPECT_FALSE(d.Find("b")->plain);
  EXPECT_EQ(d.Find("c")->scalar, "hi\n");
  EXPECT_FALSE(d.Find("c")->plain);
  EXPECT_TRUE(d.Find("d")->IsNull());
  ASSERT_TRUE(d.Find("e")->IsSequence());
  EXPECT_EQ(d.Find("e")->items[1].scalar, "2");
  EXPECT_EQ(d.Find("f")->tag, "tag:yaml.org,2002:str");
  EXPECT_EQ(d.Find("c")->line, 3);
  EXPECT_EQ(d.Find("missing"), nullptr);
  EXPECT_EQ(d.Find("e")->Find("x"), nullptr);  // not a map
}

TEST(YamlTest, MultipleAndEmptyDocuments) {
  auto docs = ParseYamlDocuments("---\n---\nx: 1\n...\n---\n- a\n", YamlLimits());
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_TRUE((*docs)[0].IsNull());
  EXPECT_TRUE((*docs)[1].IsMap());
  EXPECT_TRUE((*docs)[2].IsSequence());
  auto none = ParseYamlDocuments("", YamlLimits());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(YamlTest, MalformedYamlNamesTheLine) {
  auto r = ParseYamlDocuments("a: b\nc: [1, 2\n", YamlLimits());
  ASSERT_FALSE(r.ok());
  ExpectError(r.status(), "malformed YAML at line");
  ExpectError(ParseYamlDocuments("a: b: c\n", YamlLimits()).status(), "malformed YAML");
  ExpectError(ParseYamlDocuments("a: \"bad \\q escape\"\n", YamlLimits()).status(),
              "malformed YAML");
  ExpectError(ParseYamlDocuments("a: *nope\n", YamlLimits()).status(), "malformed YAML");
}

TEST(YamlTest, RefusesDuplicateAndNonScalarKeys) {
  ExpectError(ParseYamlDocuments("a: 1\nb: 2\na: 3\n", YamlLimits()).status(),
              "has the key \"a\" twice");
  ExpectError(ParseYamlDocuments("? [x]\n: 1\n", YamlLimits()).status(), "must be a string");
  ExpectError(ParseYamlDocuments("? \n: 1\n", YamlLimits()).status(), "must be a string");
}

TEST(YamlTest, RefusesNulBytes) {
  std::string text = "a: b";
  text += '\0';
  text += "c\n";
  ExpectError(ParseYamlDocuments(text, YamlLimits()).status(), "NUL");
}

TEST(YamlTest, EnforcesByteDocumentAndDepthLimits) {
  YamlLimits limits;
  limits.max_bytes = 10;
  ExpectError(ParseYamlDocuments("a: 0123456789", limits).status(), "more than the limit");
  limits = YamlLimits();
  limits.max_documents = 2;
  ExpectError(ParseYamlDocuments("a: 1\n---\nb: 2\n---\nc: 3\n", limits).status(), "documents");
  limits = YamlLimits();
  limits.max_depth = 3;
  EXPECT_TRUE(ParseYamlDocuments("[[[1]]]", limits).ok());
  ExpectError(ParseYamlDocuments("[[[[1]]]]", limits).status(), "nests deeper");
}

TEST(YamlTest, DeepNestingIsRefusedWithoutOverflowingTheStack) {
  // Far deeper than yaml-cpp's own recursion guard and than ours.
  ExpectError(ParseYamlDocuments(std::string(100000, '['), YamlLimits()).status(), "YAML");
  std::string block;
  for (int i = 0; i < 200; ++i) {
    block += std::string(static_cast<size_t>(i), ' ') + "a:\n";
  }
  ExpectError(ParseYamlDocuments(block, YamlLimits()).status(), "nests");
  std::string dashes;
  for (int i = 0; i < 5000; ++i) {
    dashes += "- ";
  }
  ExpectError(ParseYamlDocuments(dashes, YamlLimits()).status(), "nests");
}

TEST(YamlTest, AliasBombIsCountedExpanded) {
  // "Billion laughs": each level doubles... by nine; yaml-cpp shares the
  // nodes, so only our expanded count can stop it.
  std::string bomb =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) {
      bomb += std::string(i ? "," : "") + "*" + prev;
    }
    bomb += "]\n";
    prev = c;
  }
  ExpectError(ParseYamlDocuments(bomb, YamlLimits()).status(), "nodes (aliases expanded)");

  // A few aliases are fine and are copied.
  auto ok = ParseYamlDocuments("x: &x {k: v}\ny: *x\n", YamlLimits());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->front().Find("y")->Find("k")->scalar, "v");

  // Scalar bytes are counted expanded too.
  YamlLimits limits;
  limits.max_scalar_bytes = 1000;
  std::string big = "a: &a " + std::string(600, 'x') + "\nb: *a\n";
  ExpectError(ParseYamlDocuments(big, limits).status(), "bytes of scalar text");
}

TEST(YamlTest, SelfReferencingAnchorStops) {
  ExpectError(ParseYamlDocuments("a: &a [*a]\n", YamlLimits()).status(), "nests deeper");
  ExpectError(ParseYamlDocuments("a: &a {b: *a}\n", YamlLimits()).status(), "nests deeper");
}

// yaml-cpp 0.7 alone reads these as documents without end and grows until
// memory runs out (found by fuzz/spc_fuzzer); the limit stops them.
TEST(YamlTest, EndlessDocumentsStopAtTheLimit) {
  for (const char* text : {",", ",a: [*b]\n", "- a\n,", "---\n,", "\"a\"\n,", "&x ,"}) {
    ExpectError(ParseYamlDocuments(text, YamlLimits()).status(), "documents");
  }
  auto spc = ParseSecretProviderClasses(",aa,M!1: &c [*b,*d]\n");
  ASSERT_FALSE(spc.ok());
  EXPECT_EQ(spc.status().code(), StatusCode::kInvalidArgument);
}

TEST(YamlTest, HelpersQuoteAndConvert) {
  EXPECT_EQ(QuoteForError("a\"b\n"), "\"a\\\"b\\x0a\"");
  EXPECT_EQ(QuoteForError(std::string(100, 'x')), "\"" + std::string(64, 'x') + "\"...");
  YamlNode seq;
  seq.kind = YamlNode::Kind::kSequence;
  ExpectError(ScalarText(seq, "field").status(), "field must be a string, not a sequence");
  YamlNode null_node;
  ASSERT_TRUE(ScalarText(null_node, "f").ok());
  EXPECT_EQ(*ScalarText(null_node, "f"), "");
}

// ------------------------------------------------------------ JSON request fields

TEST(JsonTest, StringMap) {
  auto m = ParseStringMapJson("{\"a\":\"1\",\"b\":\"\"}", false);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(*m, (Map{{"a", "1"}, {"b", ""}}));
  auto null_ok = ParseStringMapJson("null", true);
  ASSERT_TRUE(null_ok.ok());
  EXPECT_TRUE(null_ok->empty());
  auto empty = ParseStringMapJson("{}", false);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto nul = ParseStringMapJson("{\"a\":\"x\\u0000y\"}", false);
  ASSERT_TRUE(nul.ok());
  EXPECT_EQ(nul->at("a"), std::string("x\0y", 3));
}

TEST(JsonTest, StringMapErrors) {
  ExpectError(ParseStringMapJson("null", false).status(), "object of strings, not null");
  ExpectError(ParseStringMapJson("{\"a\":1}", false).status(),
              "\"a\" must be a string, not number");
  ExpectError(ParseStringMapJson("{\"a\":null}", true).status(), "must be a string, not null");
  ExpectError(ParseStringMapJson("{\"a\":{\"b\":\"c\"}}", false).status(), "not object");
  ExpectError(ParseStringMapJson("[\"a\"]", false).status(), "not array");
  ExpectError(ParseStringMapJson("{\"a\":", false).status(), "not a valid JSON");
  ExpectError(ParseStringMapJson("", true).status(), "not a valid JSON");
  ExpectError(ParseStringMapJson(std::string(10000, '['), false).status(), "not a valid JSON");
  ExpectError(ParseStringMapJson("{\"a\":\"" + std::string(5 << 20, 'x') + "\"}", false).status(),
              "larger than 4 MiB");
}

TEST(JsonTest, Permission) {
  EXPECT_EQ(*ParsePermission("420"), 0644u);
  EXPECT_EQ(*ParsePermission(" 384 "), 0600u);
  EXPECT_EQ(*ParsePermission("0"), 0u);
  EXPECT_EQ(*ParsePermission("511"), 0777u);
  EXPECT_EQ(*ParsePermission("0640"), 0640u);
  EXPECT_EQ(*ParsePermission("0o600"), 0600u);
  ExpectError(ParsePermission("512").status(), "larger than 511");
  ExpectError(ParsePermission("01000").status(), "larger than 0777");
  ExpectError(ParsePermission("-1").status(), "not a file mode");
  ExpectError(ParsePermission("4.2").status(), "not a file mode");
  ExpectError(ParsePermission("").status(), "not a file mode");
  ExpectError(ParsePermission("99999999999999999999").status(), "not a file mode");
  ExpectError(ParsePermission("0648").status(), "not an octal number");
}

TEST(JsonTest, OctalMode) {
  EXPECT_EQ(*ParseOctalMode("600"), 0600u);
  EXPECT_EQ(*ParseOctalMode("0600"), 0600u);
  EXPECT_EQ(*ParseOctalMode("0777"), 0777u);
  ExpectError(ParseOctalMode("0o600").status(), "not an octal number");
  ExpectError(ParseOctalMode("1000").status(), "larger than 0777");
  ExpectError(ParseOctalMode("9").status(), "not an octal number");
  ExpectError(ParseOctalMode("").status(), "not an octal number");
}

TEST(JsonTest, ServiceAccountTokens) {
  std::string json = TokensJson("api://AzureADTokenExchange", kToken);
  auto t = ParseServiceAccountTokens(json, "api://AzureADTokenExchange");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, kToken);
  ExpectError(ParseServiceAccountTokens(json, "api://AKSIdentityBinding").status(),
              "no token for audience", StatusCode::kNotFound);
  ExpectError(ParseServiceAccountTokens("{\"x\":{}}", "x").status(), "no valid \"token\"");
  ExpectError(ParseServiceAccountTokens("{\"x\":{\"token\":5}}", "x").status(), "no valid");
  ExpectError(ParseServiceAccountTokens("{\"x\":\"tok\"}", "x").status(), "no valid");
  ExpectError(ParseServiceAccountTokens("{\"x\":{\"token\":\"a b\\r\\nX: y\"}}", "x").status(),
              "no valid");
  ExpectError(ParseServiceAccountTokens("[]", "x").status(), "not a JSON object");
  ExpectError(ParseServiceAccountTokens("{", "x").status(), "not a JSON object");
  // An empty audience is a legal key (the API server's audience).
  EXPECT_EQ(*ParseServiceAccountTokens(TokensJson("", "a.b.c"), ""), "a.b.c");
}

TEST(DurationTest, GoSyntax) {
  using std::chrono::milliseconds;
  EXPECT_EQ(*ParseGoDuration("2m"), milliseconds(120000));
  EXPECT_EQ(*ParseGoDuration("30s"), milliseconds(30000));
  EXPECT_EQ(*ParseGoDuration("1h30m"), milliseconds(5400000));
  EXPECT_EQ(*ParseGoDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseGoDuration("1.5h"), milliseconds(5400000));
  EXPECT_EQ(*ParseGoDuration(".5s"), milliseconds(500));
  EXPECT_EQ(*ParseGoDuration("1.s"), milliseconds(1000));
  EXPECT_EQ(*ParseGoDuration("0"), milliseconds(0));
  EXPECT_EQ(*ParseGoDuration("-1m"), milliseconds(-60000));
  EXPECT_EQ(*ParseGoDuration("+3s"), milliseconds(3000));
  EXPECT_EQ(*ParseGoDuration("1500us"), milliseconds(1));
  EXPECT_EQ(*ParseGoDuration("2000000ns"), milliseconds(2));
  EXPECT_EQ(*ParseGoDuration("3000\xc2\xb5s"), milliseconds(3));
  EXPECT_EQ(*ParseGoDuration("1h1m1s1ms"), milliseconds(3661001));
  EXPECT_EQ(*ParseGoDuration("2562047h"), milliseconds(int64_t{2562047} * 3600000));
}

TEST(DurationTest, Errors) {
  ExpectError(ParseGoDuration("").status(), "invalid duration");
  ExpectError(ParseGoDuration("5").status(), "missing unit");
  ExpectError(ParseGoDuration("5x").status(), "unknown unit \"x\"");
  ExpectError(ParseGoDuration("5 s").status(), "unknown unit");
  ExpectError(ParseGoDuration("s").status(), "invalid duration");
  ExpectError(ParseGoDuration(".s").status(), "invalid duration");
  ExpectError(ParseGoDuration("-").status(), "invalid duration");
  ExpectError(ParseGoDuration("2562048h").status(), "invalid duration");
  ExpectError(ParseGoDuration("99999999999999999999s").status(), "invalid duration");
  ExpectError(ParseGoDuration("1m-1s").status(), "unknown unit \"m-\"");  // as Go says
}

TEST(BoolTest, GoParseBool) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) {
    EXPECT_TRUE(*ParseGoBool(t, "f")) << t;
  }
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) {
    EXPECT_FALSE(*ParseGoBool(f, "f")) << f;
  }
  for (const char* bad : {"yes", "tRUE", "2", "", "on"}) {
    ExpectError(ParseGoBool(bad, "usePodIdentity").status(), "usePodIdentity");
  }
}

// --------------------------------------------------------- Azure parameters

TEST(AzureTest, ServicePrincipalDefaults) {
  auto p = Parse(BaseAttributes());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->keyvault_name, "kv-prod");
  EXPECT_EQ(p->tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
  EXPECT_EQ(p->identity_mode, IdentityMode::kServicePrincipal);
  EXPECT_EQ(p->sp_client_id, "sp-client");
  EXPECT_EQ(p->sp_client_secret, kClientSecret);
  EXPECT_EQ(p->pod_name, "app-7d9c");
  EXPECT_EQ(p->pod_namespace, "prod");
  EXPECT_EQ(p->pod_uid, "1b7b");
  EXPECT_EQ(p->service_account, "app");
  ASSERT_EQ(p->objects.size(), 1u);
  const AzureObject& o = p->objects[0];
  EXPECT_EQ(o.name, "db-pass");
  EXPECT_EQ(o.type, ObjectType::kSecret);
  EXPECT_EQ(o.version, "");
  EXPECT_EQ(o.version_history, 0);
  EXPECT_EQ(o.format, "pem");
  EXPECT_EQ(o.encoding, ObjectEncoding::kUtf8);
  EXPECT_FALSE(o.file_permission.has_value());
  EXPECT_EQ(o.FileName(), "db-pass");
  EXPECT_EQ(o.Id(), "secret/db-pass");
  EXPECT_EQ(o.TypeName(), "secret");
}

TEST(AzureTest, ValuesAreTrimmedAndSecretKeysCaseInsensitive) {
  Map a = BaseAttributes();
  a["keyvaultName"] = "  kv-prod\n";
  a["tenantID"] = " t1 ";
  auto p = Parse(a, Map{{"ClientID", " id \n"}, {"CLIENTSECRET", "sec\n"}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->keyvault_name, "kv-prod");
  EXPECT_EQ(p->tenant_id, "t1");
  EXPECT_EQ(p->sp_client_id, "id");
  EXPECT_EQ(p->sp_client_secret, "sec");
}

TEST(AzureTest, KeyvaultName) {
  Map a = BaseAttributes();
  for (const char* good : {"abc", "A-1", "abcdefghijklmnopqrstuvwx"}) {
    a["keyvaultName"] = good;
    EXPECT_TRUE(Parse(a).ok()) << good;
  }
  for (const char* bad : {"ab", "abcdefghijklmnopqrstuvwxy", "kv.prod", "kv_prod", "kv/x"}) {
    a["keyvaultName"] = bad;
    ExpectError(Parse(a).status(), "keyvaultName");
  }
  a.erase("keyvaultName");
  ExpectError(Parse(a).status(), "keyvaultName is not set");
  a["keyvaultName"] = "   ";
  ExpectError(Parse(a).status(), "keyvaultName is not set");
}

TEST(AzureTest, TenantIdPreferredOverDeprecatedSpelling) {
  Map a = BaseAttributes();
  a["tenantId"] = "old";
  EXPECT_EQ(Parse(a)->tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
  a["tenantID"] = " ";
  EXPECT_EQ(Parse(a)->tenant_id, "old");
  a.erase("tenantID");
  EXPECT_EQ(Parse(a)->tenant_id, "old");
  a.erase("tenantId");
  ExpectError(Parse(a).status(), "tenantID is not set");
  a["tenantID"] = "adfs";
  EXPECT_EQ(Parse(a)->tenant_id, "adfs");
  a["tenantID"] = "contoso.onmicrosoft.com";
  EXPECT_TRUE(Parse(a).ok());
  a["tenantID"] = "../evil";
  ExpectError(Parse(a).status(), "tenantID");
  a["tenantID"] = "a/b";
  ExpectError(Parse(a).status(), "tenantID");
}

TEST(AzureTest, PodInfoRequiredOnTheCsiPathOnly) {
  Map a = BaseAttributes();
  a.erase("csi.storage.k8s.io/pod.name");
  ExpectError(Parse(a).status(), "csi.storage.k8s.io/pod.name is not set");
  AzureParseOptions standalone;
  standalone.require_pod_info = false;
  EXPECT_TRUE(Parse(a, SpSecrets(), standalone).ok());
  a = BaseAttributes();
  a["csi.storage.k8s.io/pod.namespace"] = "";
  ExpectError(Parse(a).status(), "csi.storage.k8s.io/pod.namespace is not set");
}

TEST(AzureTest, PodFieldsMustBeKubernetesNames) {
  Map a = BaseAttributes();
  a["csi.storage.k8s.io/pod.name"] = "app\r\nEvil: 1";
  ExpectError(Parse(a).status(), "csi.storage.k8s.io/pod.name \"app\\x0d\\x0aEvil: 1\"");
  a = BaseAttributes();
  a["csi.storage.k8s.io/serviceAccount.name"] = "a/b";
  ExpectError(Parse(a).status(), "serviceAccount.name");
}

TEST(AzureTest, PodIdentity) {
  Map a = BaseAttributes();
  a["usePodIdentity"] = "true";
  auto p = Parse(a, Map{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kPodIdentity);
  EXPECT_TRUE(p->sp_client_secret.empty());
}

TEST(AzureTest, VmManagedIdentity) {
  Map a = BaseAttributes();
  a["useVMManagedIdentity"] = "T";
  a["userAssignedIdentityID"] = " 00000000-0000-0000-0000-000000000001 ";
  a["clientID"] = "ignored-when-vm";  // VM identity wins (resolution order)
  auto p = Parse(a, Map{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kVmManagedIdentity);
  EXPECT_EQ(p->user_assigned_identity_id, "00000000-0000-0000-0000-000000000001");
  a["userAssignedIdentityID"] = "x y";
  ExpectError(Parse(a, Map{}).status(), "userAssignedIdentityID");
}

TEST(AzureTest, FalseFlagsFallThrough) {
  Map a = BaseAttributes();
  a["usePodIdentity"] = "false";
  a["useVMManagedIdentity"] = "0";
  a["useAzureTokenProxy"] = "F";
  auto p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kServicePrincipal);
}

TEST(AzureTest, AtMostOneIdentityFlag) {
  Map a = BaseAttributes();
  a["usePodIdentity"] = "true";
  a["useVMManagedIdentity"] = "1";
  ExpectError(Parse(a).status(), "at most one of");
  a["useVMManagedIdentity"] = "false";
  a["useAzureTokenProxy"] = "True";
  ExpectError(Parse(a).status(), "at most one of");
}

TEST(AzureTest, BadBooleanIsAnError) {
  Map a = BaseAttributes();
  a["useVMManagedIdentity"] = "yes";
  ExpectError(Parse(a).status(), "useVMManagedIdentity \"yes\" is not a boolean");
}

TEST(AzureTest, WorkloadIdentityFromTokensAttribute) {
  Map a = BaseAttributes();
  a["clientID"] = "wi-client";
  a["csi.storage.k8s.io/serviceAccount.tokens"] = TokensJson("api://AzureADTokenExchange", kToken);
  auto p = Parse(a, Map{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kWorkloadIdentity);
  EXPECT_EQ(p->client_id, "wi-client");
  EXPECT_EQ(p->workload_identity_token, kToken);
  EXPECT_TRUE(p->workload_identity_token_file.empty());
}

TEST(AzureTest, WorkloadIdentityTokensInSecrets) {
  // Kubernetes >= 1.35 with serviceAccountTokenInSecrets.
  Map a = BaseAttributes();
  a["clientID"] = "wi-client";
  auto p = Parse(a, Map{{"csi.storage.k8s.io/serviceAccount.tokens",
                         TokensJson("api://AzureADTokenExchange", kToken)}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->workload_identity_token, kToken);
}

TEST(AzureTest, WorkloadIdentityNeedsTheToken) {
  Map a = BaseAttributes();
  a["clientID"] = "wi-client";
  ExpectError(Parse(a, Map{}).status(), "api://AzureADTokenExchange");
  a["csi.storage.k8s.io/serviceAccount.tokens"] = TokensJson("api://AKSIdentityBinding", kToken);
  ExpectError(Parse(a, Map{}).status(), "has none for it");
  a["csi.storage.k8s.io/serviceAccount.tokens"] = "{not json " + std::string(kToken);
  ExpectError(Parse(a, Map{}).status(), "not a JSON object");
  // Service-principal secrets do not stand in for the token.
  a.erase("csi.storage.k8s.io/serviceAccount.tokens");
  ExpectError(Parse(a, SpSecrets()).status(), "workload identity");
}

TEST(AzureTest, WorkloadIdentityStandaloneTokenFile) {
  Map a = BaseAttributes();
  a["clientID"] = "wi-client";
  AzureParseOptions opts;
  opts.require_pod_info = false;
  opts.service_account_token_file = "/var/run/token";
  auto p = Parse(a, Map{}, opts);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kWorkloadIdentity);
  EXPECT_EQ(p->workload_identity_token_file, "/var/run/token");
  EXPECT_TRUE(p->workload_identity_token.empty());
  // A token in the attributes is preferred over the file.
  a["csi.storage.k8s.io/serviceAccount.tokens"] = TokensJson("api://AzureADTokenExchange", kToken);
  p = Parse(a, Map{}, opts);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->workload_identity_token, kToken);
  EXPECT_TRUE(p->workload_identity_token_file.empty());
}

TEST(AzureTest, TokenProxy) {
  Map a = BaseAttributes();
  a["useAzureTokenProxy"] = "true";
  ExpectError(Parse(a, Map{}).status(), "useAzureTokenProxy needs clientID");
  a["clientID"] = "proxy-client";
  ExpectError(Parse(a, Map{}).status(), "api://AKSIdentityBinding");
  a["csi.storage.k8s.io/serviceAccount.tokens"] =
      "{\"api://AzureADTokenExchange\":{\"token\":\"x.y.z\"},\"api://AKSIdentityBinding\":{"
      "\"token\":\"" +
      std::string(kToken) + "\"}}";
  auto p = Parse(a, Map{});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kTokenProxy);
  EXPECT_EQ(p->workload_identity_token, kToken);
}

TEST(AzureTest, ServicePrincipalNeedsTheSecret) {
  Map a = BaseAttributes();
  ExpectError(Parse(a, Map{}).status(), "nodePublishSecretRef secret is not set");
  ExpectError(Parse(a, Map{{"clientsecret", kClientSecret}}).status(), "has no clientid");
  ExpectError(Parse(a, Map{{"clientid", "x"}}).status(), "has no clientsecret");
  ExpectError(Parse(a, Map{{"clientid", "x"}, {"clientsecret", "  "}}).status(),
              "has no clientsecret");
}

TEST(AzureTest, ClientIdValidated) {
  Map a = BaseAttributes();
  a["clientID"] = "a/b?c";
  ExpectError(Parse(a).status(), "clientID");
}

TEST(AzureTest, ObjectsRequired) {
  Map a = BaseAttributes();
  a.erase("objects");
  ExpectError(Parse(a).status(), "objects is not set");
  a["objects"] = " \n ";
  ExpectError(Parse(a).status(), "objects is not set");
}

TEST(AzureTest, FullObjectVocabulary) {
  auto objects = ParseObjectsOnly(Objects({
      "objectName: db-pass\nobjectType: secret\nobjectVersion: 0123abcd\nobjectAlias: db/pass\n"
      "objectEncoding: BASE64\nfilePermission: \"0600\"\nunknownField: ignored",
      "objectName: tls\nobjectType: secret\nobjectFormat: PFX\nobjectEncoding: hex",
      "objectName: signing\nobjectType: key\nobjectVersionHistory: 3\nobjectVersion: latest",
      "objectName: ca\nobjectType: cert\nobjectFormat: pem\nfilePermission: 444",
      "objectName: plain\nobjectType: secret\nobjectEncoding: utf-8\nobjectVersionHistory: -1",
  }));
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  ASSERT_EQ(objects->size(), 5u);
  const AzureObject& a = (*objects)[0];
  EXPECT_EQ(a.version, "0123abcd");
  EXPECT_EQ(a.alias, "db/pass");
  EXPECT_EQ(a.FileName(), "db/pass");
  EXPECT_EQ(a.Id(), "secret/db-pass");  // the alias does not change the id
  EXPECT_EQ(a.encoding, ObjectEncoding::kBase64);
  EXPECT_EQ(a.file_permission, 0600u);
  const AzureObject& b = (*objects)[1];
  EXPECT_EQ(b.format, "pfx");
  EXPECT_EQ(b.encoding, ObjectEncoding::kHex);
  const AzureObject& c = (*objects)[2];
  EXPECT_EQ(c.type, ObjectType::kKey);
  EXPECT_EQ(c.TypeName(), "key");
  EXPECT_EQ(c.Id(), "key/signing");
  EXPECT_EQ(c.version_history, 3);
  EXPECT_EQ(c.version, "latest");
  const AzureObject& d = (*objects)[3];
  EXPECT_EQ(d.type, ObjectType::kCert);
  EXPECT_EQ(d.Id(), "cert/ca");
  EXPECT_EQ(d.file_permission, 0444u);
  EXPECT_EQ((*objects)[4].version_history, -1);
}

TEST(AzureTest, ObjectFieldsAreTrimmedAndMayBeQuotedOrPlain) {
  auto objects = ParseObjectsOnly(
      "array:\n  - \"objectName: '  a  '\\nobjectType: \\\"secret \\\"\"\n"
      "  - 'objectName: b\n\n    objectType: key'\n");
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  ASSERT_EQ(objects->size(), 2u);
  EXPECT_EQ((*objects)[0].name, "a");
  EXPECT_EQ((*objects)[1].type, ObjectType::kKey);
}

TEST(AzureTest, EmptyArrayIsAllowed) {
  auto objects = ParseObjectsOnly("array:\n");
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  EXPECT_TRUE(objects->empty());
  objects = ParseObjectsOnly("array: []\n");
  ASSERT_TRUE(objects.ok());
  EXPECT_TRUE(objects->empty());
}

TEST(AzureTest, ObjectsShapeErrors) {
  ExpectError(ParseObjectsOnly("foo: bar\n").status(), "with the key \"array\"");
  ExpectError(ParseObjectsOnly("- a\n").status(), "with the key \"array\"");
  ExpectError(ParseObjectsOnly("array: x\n").status(), "must be a list, not a scalar");
  ExpectError(ParseObjectsOnly("array:\n  - objectName: a\n    objectType: secret\n").status(),
              "objects[0]: must be a string holding a YAML mapping");
  ExpectError(ParseObjectsOnly("array: [\n").status(), "objects: malformed YAML");
  ExpectError(ParseObjectsOnly("array: []\n---\narray: []\n").status(),
              "objects: YAML has more documents than the limit of 1");
  ExpectError(ParseObjectsOnly(Objects({"objectName: a\nobjectType: secret", "- x"})).status(),
              "objects[1]: must be a YAML mapping, not a sequence");
  ExpectError(ParseObjectsOnly("array:\n  - ''\n").status(), "objects[0]: is empty");
  ExpectError(ParseObjectsOnly("array:\n  - 'a: ['\n").status(), "objects[0]: malformed YAML");
}

TEST(AzureTest, ObjectFieldErrorsNameTheIndexAndField) {
  auto two = [](const std::string& second) {
    auto p = ParseObjectsOnly(Objects({"objectName: ok\nobjectType: secret", second}));
    return p.ok() ? OkStatus() : p.status();
  };
  ExpectError(two("objectType: secret"), "objects[1]: objectName is not set");
  ExpectError(two("objectName: a\nobjectType: Secret"),
              "objects[1]: Invalid vaultObjectTypes: objectType \"Secret\"");
  ExpectError(two("objectName: a"), "objects[1]: Invalid vaultObjectTypes: objectType \"\"");
  ExpectError(two("objectName: a\nobjectType: certificate"), "\"certificate\"");
  ExpectError(two("objectName: a\nobjectType: secret\nobjectFormat: der"),
              "objects[1]: invalid objectFormat \"der\"");
  ExpectError(two("objectName: a\nobjectType: cert\nobjectFormat: pfx"),
              "objects[1]: objectFormat pfx is only supported for objectType secret");
  ExpectError(two("objectName: a\nobjectType: key\nobjectEncoding: utf-8"),
              "objects[1]: objectEncoding is only supported for objectType secret");
  ExpectError(two("objectName: a\nobjectType: secret\nobjectEncoding: utf8"),
              "objects[1]: invalid objectEncoding \"utf8\"");
  ExpectError(two("objectName: a\nobjectType: secret\nfilePermission: 0abc"),
              "objects[1]: filePermission: file mode \"0abc\" is not an octal number");
  ExpectError(two("objectName: a\nobjectType: secret\nfilePermission: 1777"),
              "objects[1]: filePermission: file mode \"1777\" is larger than 0777");
  ExpectError(two("objectName: a\nobjectType: secret\nobjectVersionHistory: many"),
              "objects[1]: objectVersionHistory \"many\" is not an int32");
  ExpectError(two("objectName: a\nobjectType: secret\nobjectVersionHistory: 2147483648"),
              "is not an int32");
  ExpectError(two("objectName: a\nobjectType: secret\nobjectVersionHistory: 1.5"),
              "is not an int32");
  ExpectError(two("objectName: [a]\nobjectType: secret"),
              "objects[1]: objectName must be a string, not a sequence");
  ExpectError(two("objectName: a/b\nobjectType: secret"), "objects[1]: objectName \"a/b\"");
  ExpectError(two("objectName: a\nobjectType: secret\nobjectVersion: v/../x"),
              "objects[1]: objectVersion");
  ExpectError(two("objectName: a\nobjectType: secret\nobjectName: b"), "twice");
  EXPECT_TRUE(two("objectName: a\nobjectType: secret\nobjectVersionHistory: -2147483648").ok());
}

TEST(AzureTest, FileNameRules) {
  auto alias = [](const std::string& a) {
    return ObjectError("objectName: n\nobjectType: secret\nobjectAlias: '" + a + "'");
  };
  EXPECT_TRUE(alias("sub/dir/file.txt").ok());
  EXPECT_TRUE(alias("  spaced  ").ok());  // trimmed to "spaced"
  ExpectError(alias("/etc/passwd"), "objects[0]: file name \"/etc/passwd\" must be relative");
  ExpectError(alias("../x"), "must not contain \"..\"");
  ExpectError(alias("a/../b"), "must not contain \"..\"");
  ExpectError(alias("..data"), "must not contain \"..\"");
  ExpectError(alias("a..b"), "must not contain \"..\"");
  ExpectError(alias("a//b"), "not a clean path");
  ExpectError(alias("a/"), "not a clean path");
  ExpectError(alias("./a"), "not a clean path");
  ExpectError(alias("a/./b"), "not a clean path");
  ExpectError(alias(std::string(256, 'x')), "longer than 255");
  std::string long_path;
  for (int i = 0; i < 20; ++i) {
    long_path += std::string(250, 'x') + "/";
  }
  ExpectError(alias(long_path + "x"), "longer than 4096");
  ExpectError(ObjectError("objectName: n\nobjectType: secret\nobjectAlias: \"a\\tb\""),
              "control character");
}

TEST(AzureTest, DuplicateAndNestedFileNames) {
  ExpectError(ParseObjectsOnly(
                  Objects({"objectName: a\nobjectType: secret", "objectName: a\nobjectType: key"}))
                  .status(),
              "objects[1]: file name \"a\" is already used by objects[0]");
  ExpectError(ParseObjectsOnly(Objects({"objectName: a\nobjectType: secret",
                                        "objectName: b\nobjectType: key\nobjectAlias: a"}))
                  .status(),
              "already used by objects[0]");
  ExpectError(ParseObjectsOnly(Objects({"objectName: a\nobjectType: secret\nobjectAlias: x/y",
                                        "objectName: b\nobjectType: key\nobjectAlias: x"}))
                  .status(),
              "lies inside \"x\"");
  ExpectError(
      ParseObjectsOnly(Objects({"objectName: h\nobjectType: secret\nobjectVersionHistory: 3",
                                "objectName: b\nobjectType: key\nobjectAlias: h/0"}))
          .status(),
      "lies inside \"h\"");
  // Same name, different aliases: fine.
  EXPECT_TRUE(ParseObjectsOnly(Objects({"objectName: a\nobjectType: secret\nobjectAlias: a1",
                                        "objectName: a\nobjectType: secret\nobjectAlias: a2"}))
                  .ok());
  // "x-z" sorts between "x" and "x/y": still no false positive or miss.
  EXPECT_TRUE(ParseObjectsOnly(Objects({"objectName: x\nobjectType: secret\nobjectAlias: x-z",
                                        "objectName: y\nobjectType: secret\nobjectAlias: x/y"}))
                  .ok());
}

TEST(AzureTest, TooManyObjects) {
  std::vector<std::string> entries;
  for (size_t i = 0; i <= kMaxObjects; ++i) {
    entries.push_back("objectName: o" + std::to_string(i) + "\nobjectType: secret");
  }
  ExpectError(ParseObjectsOnly(Objects(entries)).status(), "more than 1000 objects");
  entries.pop_back();
  auto ok = ParseObjectsOnly(Objects(entries));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->size(), kMaxObjects);
}

TEST(AzureTest, HostileObjectsYaml) {
  ExpectError(ParseObjectsOnly("array: " + std::string(50000, '[')).status(), "objects:");
  ExpectError(ParseObjectsOnly("array: &a [*a]\n").status(), "objects:");
  std::string nul = "array:\n  - \"objectName: a\\0\"\n";
  ExpectError(ParseObjectsOnly(nul).status(), "objects[0]:");
  // An inner alias bomb is stopped by the per-object limits.
  std::string inner =
      "a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nobjectName: n\nobjectType: secret";
  ExpectError(ObjectError(inner), "objects[0]: YAML has more than 256 nodes");
}

TEST(AzureTest, AttributeLimits) {
  Map a = BaseAttributes();
  a["filler"] = std::string(kMaxAttributesBytes, 'x');
  ExpectError(Parse(a).status(), "larger than 1 MiB");
  a = BaseAttributes();
  for (size_t i = 0; i < kMaxAttributes; ++i) {
    a["k" + std::to_string(i)] = "v";
  }
  ExpectError(Parse(a).status(), "more than 1024 attributes");
  a = BaseAttributes();
  ExpectError(
      Parse(a, Map{{"clientid", "x"}, {"clientsecret", std::string(kMaxAttributesBytes, 'x')}})
          .status(),
      "larger than 1 MiB");
}

TEST(AzureTest, IllustrativeRequestFromTheReference) {
  // csi-driver.md §2.5, through the JSON fields of a MountRequest.
  std::string attributes_json =
      "{\"keyvaultName\":\"kv-prod\",\"tenantID\":\"tid\",\"clientID\":\"cid\","
      "\"objects\":\"array:\\n  - |\\n    objectName: db-pass\\n    objectType: secret\\n\","
      "\"secretProviderClass\":\"app-spc\",\"csi.storage.k8s.io/pod.name\":\"app-7d9c\","
      "\"csi.storage.k8s.io/pod.namespace\":\"prod\",\"csi.storage.k8s.io/pod.uid\":\"1b7b\","
      "\"csi.storage.k8s.io/serviceAccount.name\":\"app\",\"csi.storage.k8s.io/ephemeral\":"
      "\"true\",\"csi.storage.k8s.io/serviceAccount.tokens\":\"{\\\"api://"
      "AzureADTokenExchange\\\":{\\\"token\\\":\\\"" +
      std::string(kToken) + "\\\",\\\"expirationTimestamp\\\":\\\"2026-05-01T10:00:00Z\\\"}}\"}";
  auto attributes = ParseStringMapJson(attributes_json, false);
  ASSERT_TRUE(attributes.ok()) << attributes.status().ToString();
  auto secrets = ParseStringMapJson("null", true);
  ASSERT_TRUE(secrets.ok());
  auto p = ParseAzureProviderParameters(*attributes, *secrets, AzureParseOptions());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kWorkloadIdentity);
  EXPECT_EQ(p->workload_identity_token, kToken);
  ASSERT_EQ(p->objects.size(), 1u);
  EXPECT_EQ(p->objects[0].Id(), "secret/db-pass");
  EXPECT_EQ(*ParsePermission("420"), 0644u);
}

// ------------------------------------------------------ SecretProviderClass

constexpr char kSpcYaml[] = R"(apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: app-spc
  namespace: prod
spec:
  provider: azure
  secretObjects:
    - secretName: x
      type: Opaque
  parameters:
    usePodIdentity: "false"
    useVMManagedIdentity: false
    keyvaultName: kv-prod
    cloudName: ""
    tenantId:
    objects: |
      array:
        - |
          objectName: db-pass
          objectType: secret
    tenantID: "tid"
)";

TEST(SpcTest, ParsesAManifest) {
  auto classes = ParseSecretProviderClasses(kSpcYaml);
  ASSERT_TRUE(classes.ok()) << classes.status().ToString();
  ASSERT_EQ(classes->size(), 1u);
  const SecretProviderClass& spc = classes->front();
  EXPECT_EQ(spc.name, "app-spc");
  EXPECT_EQ(spc.namespace_name, "prod");
  EXPECT_EQ(spc.provider, "azure");
  EXPECT_EQ(spc.parameters.at("usePodIdentity"), "false");
  EXPECT_EQ(spc.parameters.at("useVMManagedIdentity"), "false");  // plain scalar taken as text
  EXPECT_EQ(spc.parameters.at("tenantId"), "");                   // null taken as ""
  EXPECT_EQ(spc.parameters.at("cloudName"), "");
  EXPECT_EQ(spc.parameters.size(), 7u);
  // The objects block parses as the provider would.
  Map a = spc.parameters;
  a["csi.storage.k8s.io/pod.name"] = "p";
  a["csi.storage.k8s.io/pod.namespace"] = "n";
  auto p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->objects.at(0).name, "db-pass");
}

TEST(SpcTest, MultiDocumentSkipsOtherKinds) {
  std::string yaml =
      std::string("---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n") + "---\n" +
      kSpcYaml +
      "---\n# comment only\n---\n"
      "apiVersion: secrets-store.csi.x-k8s.io/v1alpha1\nkind: SecretProviderClass\n"
      "metadata: {name: other}\nspec: {provider: coffer, parameters: {a: b}}\n";
  auto classes = ParseSecretProviderClasses(yaml);
  ASSERT_TRUE(classes.ok()) << classes.status().ToString();
  ASSERT_EQ(classes->size(), 2u);
  EXPECT_EQ((*classes)[1].name, "other");
  EXPECT_EQ((*classes)[1].namespace_name, "");
  EXPECT_EQ((*classes)[1].parameters, (Map{{"a", "b"}}));

  auto picked = SelectSecretProviderClass(*classes, "other");
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(picked->provider, "coffer");
  ExpectError(SelectSecretProviderClass(*classes, "").status(), "has 2 SecretProviderClasses");
  ExpectError(SelectSecretProviderClass(*classes, "nope").status(), "no SecretProviderClass named",
              StatusCode::kNotFound);
  auto only = SelectSecretProviderClass({classes->front()}, "");
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->name, "app-spc");
}

TEST(SpcTest, Errors) {
  ExpectError(ParseSecretProviderClasses("").status(), "no SecretProviderClass");
  ExpectError(ParseSecretProviderClasses("apiVersion: v1\nkind: Pod\n").status(),
              "no SecretProviderClass");
  ExpectError(ParseSecretProviderClasses("- a\n").status(), "document 1 (line 1): must be a map");
  ExpectError(ParseSecretProviderClasses("kind: [x]\n").status(), "kind must be a string");
  auto spc = [](const std::string& api, const std::string& metadata, const std::string& spec) {
    return ParseSecretProviderClasses("apiVersion: " + api + "\nkind: SecretProviderClass\n" +
                                      metadata + spec)
        .status();
  };
  const std::string api = "secrets-store.csi.x-k8s.io/v1";
  const std::string md = "metadata: {name: a}\n";
  ExpectError(spc("secrets-store.csi.x-k8s.io/v2", md, "spec: {provider: azure}\n"),
              "apiVersion \"secrets-store.csi.x-k8s.io/v2\"");
  ExpectError(spc(api, "", "spec: {provider: azure}\n"), "no metadata");
  ExpectError(spc(api, "metadata: {name: Bad_Name}\n", "spec: {provider: azure}\n"),
              "metadata.name \"Bad_Name\"");
  ExpectError(spc(api, "metadata: {name: a, namespace: a.b}\n", "spec: {provider: azure}\n"),
              "metadata.namespace");
  ExpectError(spc(api, md, ""), "has no spec");
  ExpectError(spc(api, md, "spec: {}\n"), "spec.provider \"\"");
  ExpectError(spc(api, md, "spec: {provider: " + std::string(31, 'a') + "}\n"), "1-30 characters");
  ExpectError(spc(api, md, "spec: {provider: a.b}\n"), "spec.provider \"a.b\"");
  ExpectError(spc(api, md, "spec: {provider: azure, parameters: [a]}\n"),
              "spec.parameters must be a map");
  ExpectError(spc(api, md, "spec: {provider: azure, parameters: {a: {b: c}}}\n"),
              "spec.parameters.a must be a string, not a map");
  ExpectError(spc(api, md, "spec: {provider: azure, parameters: {a: [1]}}\n"),
              "spec.parameters.a must be a string, not a sequence");
  std::string two = std::string(kSpcYaml) + "---\n" + kSpcYaml;
  ExpectError(ParseSecretProviderClasses(two).status(), "a second SecretProviderClass");
}

TEST(SpcTest, HostileInput) {
  ExpectError(ParseSecretProviderClasses(std::string(2 << 20, ' ')).status(), "bytes");
  std::string many;
  for (int i = 0; i < 100; ++i) {
    many += "---\na: 1\n";
  }
  ExpectError(ParseSecretProviderClasses(many).status(), "documents");
  ExpectError(ParseSecretProviderClasses("a: &a [*a, *a]\n").status(), "nests deeper");
}

// --------------------------------------------------------- Kubernetes Secret

TEST(K8sSecretTest, DataAndStringData) {
  auto s = ParseKubernetesSecret(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: sp}\ntype: Opaque\n"
      "data:\n  clientid: c3AtY2xpZW50\n  both: b2xk\n  empty:\n"
      "stringData:\n  clientsecret: plain text\n  both: new\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, (Map{{"clientid", "sp-client"},
                     {"clientsecret", "plain text"},
                     {"both", "new"},
                     {"empty", ""}}));
  auto only_data = ParseKubernetesSecret("---\napiVersion: v1\nkind: Secret\ndata: {a: YQ}\n---\n");
  ASSERT_TRUE(only_data.ok()) << only_data.status().ToString();
  EXPECT_EQ(only_data->at("a"), "a");
  auto none = ParseKubernetesSecret("apiVersion: v1\nkind: Secret\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(K8sSecretTest, Errors) {
  ExpectError(ParseKubernetesSecret("").status(), "not a Secret manifest");
  ExpectError(ParseKubernetesSecret("apiVersion: v1\nkind: ConfigMap\n").status(),
              "kind \"ConfigMap\"");
  ExpectError(ParseKubernetesSecret("apiVersion: v2\nkind: Secret\n").status(),
              "apiVersion \"v2\"");
  ExpectError(ParseKubernetesSecret("apiVersion: v1\nkind: Secret\n---\napiVersion: v1\n").status(),
              "one document");
  ExpectError(
      ParseKubernetesSecret(std::string("apiVersion: v1\nkind: Secret\ndata: {clientsecret: ") +
                            kClientSecret + "}\n")
          .status(),
      "data.clientsecret is not valid base64");
  ExpectError(ParseKubernetesSecret("apiVersion: v1\nkind: Secret\ndata: {\"a b\": YQ}\n").status(),
              "not a valid Secret key");
  ExpectError(
      ParseKubernetesSecret("apiVersion: v1\nkind: Secret\nstringData: {a: [x]}\n").status(),
      "stringData.a must be a string");
  ExpectError(ParseKubernetesSecret("apiVersion: v1\nkind: Secret\ndata: [x]\n").status(),
              "data must be a map");
}

// ------------------------------------------------------------- agent config

constexpr char kConfig[] = R"(pollInterval: 1h30m
jitter: 0.25
vaultDnsSuffix: .vault.coffer.localhost:8443
mounts:
  - name: web
    secretProviderClass: ./spc.yaml
    className: app-spc
    target: /run/secrets/web/
    permission: "0640"
    uid: 1000
    gid: 0
    nodePublishSecretRef: secrets/sp.yaml
    serviceAccountTokenFile: /var/run/token
    pod: {name: web-1, namespace: prod, uid: u-1, serviceAccount: web}
    reload: {signal: SIGHUP, pidFile: run/web.pid}
  - name: worker.2
    secretProviderClass: /etc/spc/worker.yaml
    target: relative/worker
    reload:
      command: [/usr/bin/systemctl, reload, worker]
  - name: bare
    secretProviderClass: spc.yaml
    target: /run/secrets/web-2
)";

TEST(ConfigTest, ParsesTheFullFormat) {
  auto c = ParseAgentConfig(kConfig, "/etc/coffer");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->poll_interval, std::chrono::milliseconds(5400000));
  EXPECT_DOUBLE_EQ(c->jitter, 0.25);
  EXPECT_EQ(c->vault_dns_suffix, "vault.coffer.localhost:8443");
  ASSERT_EQ(c->mounts.size(), 3u);
  const MountConfig& web = c->mounts[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.spc_file, "/etc/coffer/spc.yaml");
  EXPECT_EQ(web.class_name, "app-spc");
  EXPECT_EQ(web.target, "/run/secrets/web");
  EXPECT_EQ(web.permission, 0640u);
  EXPECT_EQ(web.uid, 1000u);
  EXPECT_EQ(web.gid, 0u);
  EXPECT_EQ(web.node_publish_secret_ref_file, "/etc/coffer/secrets/sp.yaml");
  EXPECT_EQ(web.service_account_token_file, "/var/run/token");
  EXPECT_EQ(web.pod_name, "web-1");
  EXPECT_EQ(web.pod_namespace, "prod");
  EXPECT_EQ(web.pod_uid, "u-1");
  EXPECT_EQ(web.service_account, "web");
  EXPECT_EQ(web.reload.kind, ReloadAction::Kind::kSignal);
  EXPECT_EQ(web.reload.signal, SIGHUP);
  EXPECT_EQ(web.reload.pid_file, "/etc/coffer/run/web.pid");
  const MountConfig& worker = c->mounts[1];
  EXPECT_EQ(worker.target, "/etc/coffer/relative/worker");
  EXPECT_EQ(worker.permission, 0644u);
  EXPECT_FALSE(worker.uid.has_value());
  EXPECT_EQ(worker.reload.kind, ReloadAction::Kind::kCommand);
  EXPECT_EQ(worker.reload.argv,
            (std::vector<std::string>{"/usr/bin/systemctl", "reload", "worker"}));
  EXPECT_EQ(c->mounts[2].reload.kind, ReloadAction::Kind::kNone);
  EXPECT_TRUE(c->mounts[2].node_publish_secret_ref_file.empty());
}

TEST(ConfigTest, Defaults) {
  auto c =
      ParseAgentConfig("mounts:\n  - {name: a, secretProviderClass: /s.yaml, target: /t}\n", "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->poll_interval, std::chrono::milliseconds(120000));
  EXPECT_DOUBLE_EQ(c->jitter, 0.1);
  EXPECT_EQ(c->vault_dns_suffix, "");
  EXPECT_EQ(c->mounts[0].permission, 0644u);
  // A plain (unquoted) octal scalar keeps its leading zero.
  c = ParseAgentConfig(
      "mounts:\n  - {name: a, secretProviderClass: /s.yaml, target: /t, permission: 0750}\n", "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->mounts[0].permission, 0750u);
}

TEST(ConfigTest, Signals) {
  auto signal_of = [](const std::string& name) -> StatusOr<int> {
    auto c = ParseAgentConfig(
        "mounts:\n  - {name: a, secretProviderClass: /s, target: /t, "
        "reload: {signal: " +
            name + ", pidFile: /p}}\n",
        "/");
    if (!c.ok()) {
      return c.status();
    }
    return c->mounts[0].reload.signal;
  };
  EXPECT_EQ(*signal_of("HUP"), SIGHUP);
  EXPECT_EQ(*signal_of("sigusr1"), SIGUSR1);
  EXPECT_EQ(*signal_of("USR2"), SIGUSR2);
  EXPECT_EQ(*signal_of("SIGTERM"), SIGTERM);
  EXPECT_EQ(*signal_of("int"), SIGINT);
  EXPECT_EQ(*signal_of("QUIT"), SIGQUIT);
  EXPECT_EQ(*signal_of("WINCH"), SIGWINCH);
  ExpectError(signal_of("FOO").status(), "\"FOO\" is not a known signal");
  ExpectError(signal_of("1").status(), "is not a known signal");
  ExpectError(signal_of("SIG").status(), "is not a known signal");
}

TEST(ConfigTest, Errors) {
  auto err = [](const std::string& yaml, const std::string& base = "/etc/coffer") {
    auto c = ParseAgentConfig(yaml, base);
    return c.ok() ? OkStatus() : c.status();
  };
  auto mount = [&err](const std::string& extra) {
    return err("mounts:\n  - name: m\n    secretProviderClass: s.yaml\n    target: /t\n" + extra);
  };
  ExpectError(err(""), "must be a YAML map");
  ExpectError(err("- a\n"), "must be a YAML map");
  ExpectError(err("mounts: []\n"), "mounts must be a non-empty list");
  ExpectError(err("pollInterval: 2m\n"), "mounts must be a non-empty list");
  ExpectError(err("polInterval: 2m\nmounts: []\n"), "unknown key \"polInterval\"");
  ExpectError(err("a: [\n"), "config: malformed YAML");
  ExpectError(err("a: 1\n---\nb: 2\n"), "documents");
  ExpectError(err("pollInterval: 2x\nmounts: [{}]\n"), "pollInterval: unknown unit");
  ExpectError(err("pollInterval: 500ms\nmounts: [{}]\n"), "at least 1s");
  ExpectError(err("pollInterval: -1m\nmounts: [{}]\n"), "at least 1s");
  ExpectError(err("jitter: 1.5\nmounts: [{}]\n"), "jitter \"1.5\"");
  ExpectError(err("jitter: -0.1\nmounts: [{}]\n"), "jitter");
  ExpectError(err("jitter: nan\nmounts: [{}]\n"), "jitter");
  ExpectError(err("jitter: lots\nmounts: [{}]\n"), "jitter");
  ExpectError(err("vaultDnsSuffix: a/b\nmounts: [{}]\n"), "vaultDnsSuffix");
  ExpectError(err("vaultDnsSuffix: host:99999\nmounts: [{}]\n"), "invalid port");
  ExpectError(err("vaultDnsSuffix: 'host:'\nmounts: [{}]\n"), "invalid port");
  ExpectError(err("mounts: [x]\n"), "mounts[0]: must be a map");
  ExpectError(err("mounts: [{}]\n"), "mounts[0]: name \"\"");
  ExpectError(err("mounts: [{name: a/b}]\n"), "name \"a/b\" must be 1-63");
  ExpectError(err("mounts: [{name: ..}]\n"), "name \"..\"");
  ExpectError(err("mounts: [{name: " + std::string(64, 'a') + "}]\n"), "must be 1-63");
  ExpectError(err("mounts: [{name: a, target: /t}]\n"),
              "mounts[0] (a): secretProviderClass (a manifest file) is not set");
  ExpectError(err("mounts: [{name: a, secretProviderClass: s}]\n"), "target is not set");
  ExpectError(err("mounts: [{name: a, secretProviderClass: s, target: rel}]\n", ""),
              "target \"rel\" must be an absolute path");
  ExpectError(err("mounts: [{name: a, secretProviderClass: s, target: /x/..}]\n"),
              "target must not be /");
  ExpectError(mount("    extra: 1\n"), "mounts[0] (m): unknown key \"extra\"");
  ExpectError(mount("    permission: 640\n"), "must be octal with a leading 0");
  ExpectError(mount("    permission: \"420\"\n"), "must be octal with a leading 0");
  ExpectError(mount("    permission: \"0999\"\n"), "not an octal number");
  ExpectError(mount("    permission: \"01777\"\n"), "larger than 0777");
  ExpectError(mount("    uid: -1\n"), "mounts[0] (m): uid \"-1\"");
  ExpectError(mount("    uid: 4294967295\n"), "uid \"4294967295\"");
  ExpectError(mount("    gid: 1.5\n"), "gid \"1.5\"");
  ExpectError(mount("    uid: [1]\n"), "uid must be a string, not a sequence");
  ExpectError(mount("    pod: [a]\n"), "pod must be a map");
  ExpectError(mount("    pod: {nam: x}\n"), "pod: unknown key \"nam\"");
  ExpectError(mount("    pod: {name: \"a\\r\\nX: y\"}\n"), "pod.name \"a\\x0d\\x0aX: y\" is not");
  ExpectError(mount("    pod: {namespace: a b}\n"), "pod.namespace \"a b\" is not");
  ExpectError(mount("    reload: x\n"), "reload: must be a map");
  ExpectError(mount("    reload: {}\n"), "reload: needs signal and pidFile, or command");
  ExpectError(mount("    reload: {signal: HUP}\n"), "signal needs pidFile");
  ExpectError(mount("    reload: {pidFile: /p}\n"), "pidFile needs signal");
  ExpectError(mount("    reload: {signal: HUP, pidFile: /p, command: [/bin/true]}\n"), "not both");
  ExpectError(mount("    reload: {command: []}\n"), "command must be a non-empty list");
  ExpectError(mount("    reload: {command: /bin/true}\n"), "command must be a non-empty list");
  ExpectError(mount("    reload: {command: [systemctl, reload]}\n"),
              "command[0] \"systemctl\" must be an absolute path");
  ExpectError(mount("    reload: {command: [/bin/x, [y]]}\n"), "command[1] must be a string");
  ExpectError(mount("    reload: {oops: 1}\n"), "reload: unknown key \"oops\"");
}

TEST(ConfigTest, MountNamesAndTargetsUniqueAndNotNested) {
  auto two = [](const std::string& a, const std::string& b, const std::string& name_b = "b") {
    auto c = ParseAgentConfig("mounts:\n  - {name: a, secretProviderClass: /s, target: " + a +
                                  "}\n  - {name: " + name_b +
                                  ", secretProviderClass: /s, target: " + b + "}\n",
                              "/base");
    return c.ok() ? OkStatus() : c.status();
  };
  EXPECT_TRUE(two("/run/a", "/run/b").ok());
  EXPECT_TRUE(two("/run/a", "/run/ab").ok());  // a prefix, not a parent
  ExpectError(two("/run/a", "/run/b", "a"), "mounts[1]: a second mount named \"a\"");
  ExpectError(two("/run/a", "/run/a/"), "is also the target of a");
  ExpectError(two("/run/a", "/run/x/../a"), "is also the target of a");
  ExpectError(two("/run/a", "/run/a/b"), "are nested");
  ExpectError(two("/run/a/b", "/run/a"), "are nested");
  ExpectError(two("/base/x", "x"), "is also the target of a");
}

TEST(ConfigTest, HostileConfig) {
  ExpectError(ParseAgentConfig("mounts: " + std::string(10000, '['), "/").status(), "config:");
  ExpectError(ParseAgentConfig("a: &a [*a]\n", "/").status(), "config:");
  std::string many = "mounts:\n";
  for (int i = 0; i < 300; ++i) {
    many += "  - {name: m" + std::to_string(i) + ", secretProviderClass: /s, target: /t" +
            std::to_string(i) + "}\n";
  }
  ExpectError(ParseAgentConfig(many, "/").status(), "more than 256 mounts");
}

TEST(ConfigTest, StandaloneAttributesFeedTheAzureParser) {
  auto classes = ParseSecretProviderClasses(kSpcYaml);
  ASSERT_TRUE(classes.ok());
  MountConfig mount;
  mount.pod_name = "web-1";
  mount.pod_namespace = "prod";
  mount.service_account = "web";
  Map a = StandaloneAttributes(mount, classes->front());
  EXPECT_EQ(a.at("secretProviderClass"), "app-spc");
  EXPECT_EQ(a.at("csi.storage.k8s.io/pod.name"), "web-1");
  EXPECT_EQ(a.at("csi.storage.k8s.io/pod.namespace"), "prod");
  EXPECT_EQ(a.at("csi.storage.k8s.io/serviceAccount.name"), "web");
  EXPECT_EQ(a.at("csi.storage.k8s.io/ephemeral"), "true");
  EXPECT_EQ(a.count("csi.storage.k8s.io/pod.uid"), 0u);  // not set in the mount
  EXPECT_EQ(a.at("keyvaultName"), "kv-prod");

  auto secret = ParseKubernetesSecret(
      "apiVersion: v1\nkind: Secret\nstringData: {clientid: c, clientsecret: s}\n");
  ASSERT_TRUE(secret.ok());
  AzureParseOptions opts;
  opts.require_pod_info = false;
  auto p = ParseAzureProviderParameters(a, *secret, opts);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->identity_mode, IdentityMode::kServicePrincipal);
  EXPECT_EQ(p->pod_name, "web-1");

  // The mount's pod block wins over a parameter of the same key.
  SecretProviderClass spc = classes->front();
  spc.parameters["csi.storage.k8s.io/pod.name"] = "from-spc";
  spc.parameters["secretProviderClass"] = "spoofed";
  Map b = StandaloneAttributes(mount, spc);
  EXPECT_EQ(b.at("csi.storage.k8s.io/pod.name"), "web-1");
  EXPECT_EQ(b.at("secretProviderClass"), "app-spc");
}

// Coffer's optional objects: `optional` and `optionalFallback`.
TEST(AzureTest, OptionalObjects) {
  auto objects = ParseObjectsOnly(Objects({
      "objectName: a\nobjectType: secret\noptional: \"true\"",
      "objectName: b\nobjectType: key\noptional: true\noptionalFallback: lastKnown",
      "objectName: c\nobjectType: secret\noptional: \"false\"",
      "objectName: d\nobjectType: cert\noptional: \"1\"\noptionalFallback: absent",
      "objectName: e\nobjectType: secret",
  }));
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  ASSERT_EQ(objects->size(), 5u);
  EXPECT_TRUE((*objects)[0].optional);
  EXPECT_FALSE((*objects)[0].keep_last_known);
  EXPECT_TRUE((*objects)[1].optional);
  EXPECT_TRUE((*objects)[1].keep_last_known);
  EXPECT_FALSE((*objects)[2].optional);
  EXPECT_TRUE((*objects)[3].optional);
  EXPECT_FALSE((*objects)[3].keep_last_known);
  EXPECT_FALSE((*objects)[4].optional);

  ExpectError(ObjectError("objectName: a\nobjectType: secret\noptional: maybe"),
              "objects[0]: optional \"maybe\" is not a boolean");
  ExpectError(ObjectError("objectName: a\nobjectType: secret\noptionalFallback: lastKnown"),
              "objects[0]: optionalFallback is set but the object is not optional");
  ExpectError(ObjectError("objectName: a\nobjectType: secret\noptional: true\n"
                          "optionalFallback: lastknown"),
              "objects[0]: invalid optionalFallback \"lastknown\", should be absent or lastKnown");
  ExpectError(ObjectError("objectName: a\nobjectType: secret\noptional: true\n"
                          "optionalFallback: lastKnown\nobjectVersionHistory: 3"),
              "cannot be combined with objectVersionHistory");
  ExpectError(ObjectError("objectName: a\nobjectType: secret\noptional: [true]"),
              "objects[0]: optional must be a string, not a sequence");
  ExpectError(ObjectError("objectName: a\nobjectType: secret\noptional: \"" +
                          std::string(70000, 't') + "\""),
              "objects[0]");
}

TEST(AzureTest, ObjectSelectors) {
  auto objects = ParseObjectsOnly(Objects({
      "objectSelector:\n  namePrefix: app-\n  tags:\n    app: web\n    tier: \"1\"\n"
      "objectType: secret\nobjectFileTemplate: \"env/{{suffix}}\"\nwriteTags: \"true\"\n"
      "filePermission: \"0600\"",
      "objectSelector: {}\nobjectType: secret",
      "objectName: app-db\nobjectType: secret\nobjectAlias: db",
  }));
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  ASSERT_EQ(objects->size(), 3u);
  const AzureObject& sel = (*objects)[0];
  ASSERT_TRUE(sel.selector.has_value());
  EXPECT_EQ(sel.selector->name_prefix, "app-");
  EXPECT_EQ(sel.selector->tags,
            (std::map<std::string, std::string>{{"app", "web"}, {"tier", "1"}}));
  EXPECT_EQ(sel.selector->file_template, "env/{{suffix}}");
  EXPECT_TRUE(sel.write_tags);
  EXPECT_EQ(sel.file_permission, 0600u);
  EXPECT_EQ(sel.Id(), "secret/app-*");
  EXPECT_EQ((*objects)[1].selector->file_template, "{{name}}");
  EXPECT_EQ((*objects)[1].Id(), "secret/*");

  auto selector = [](const std::string& body) {
    return ObjectError("objectSelector:\n" + body + "\nobjectType: secret");
  };
  ExpectError(selector("  namePrefix: a/b"), "objects[0]: objectSelector.namePrefix \"a/b\"");
  ExpectError(selector("  namePrefix: " + std::string(128, 'a')),
              "objects[0]: objectSelector.namePrefix");
  ExpectError(selector("  nameSuffix: x"), "objectSelector has an unknown key \"nameSuffix\"");
  ExpectError(selector("  tags: [a]"), "objectSelector.tags must be a mapping");
  ExpectError(selector("  tags:\n    a: [b]"), "objectSelector.tags.a must be a string");
  ExpectError(selector("  tags:\n    a: " + std::string(257, 'v')),
              "objectSelector.tags.a: a tag value has at most 256 characters");
  ExpectError(selector("  tags:\n    " + std::string(513, 'k') + ": v"),
              "a tag name must have 1 to 512 characters");
  std::string many = "  tags:\n";
  for (int i = 0; i < 16; ++i) {
    many += "    t" + std::to_string(i) + ": v\n";
  }
  ExpectError(selector(many), "objectSelector.tags has 16 tags; a secret has at most 15");
  ExpectError(ObjectError("objectSelector: app-\nobjectType: secret"),
              "objectSelector must be a mapping");
  ExpectError(ObjectError("objectSelector: {}\nobjectType: key"),
              "objectSelector selects secrets: objectType must be secret");
  ExpectError(ObjectError("objectSelector: {}\nobjectType: secret\nobjectName: a"),
              "objectSelector and objectName exclude each other");
  ExpectError(ObjectError("objectSelector: {}\nobjectType: secret\nobjectAlias: a"),
              "objectAlias cannot be used with objectSelector");
  ExpectError(ObjectError("objectSelector: {}\nobjectType: secret\nobjectVersionHistory: 2"),
              "objectVersionHistory cannot be used with objectSelector");
  ExpectError(ObjectError("objectSelector: {}\nobjectType: secret\noptional: true"),
              "optional does not apply to objectSelector");
  ExpectError(ObjectError("objectSelector: {}\nobjectType: secret\nobjectFileTemplate: x"),
              "objectFileTemplate \"x\" names every secret alike");
  ExpectError(ObjectError("objectSelector: {}\nobjectType: secret\n"
                          "objectFileTemplate: \"../{{name}}\""),
              "objectFileTemplate: ");
  ExpectError(ObjectError("objectName: a\nobjectType: secret\nobjectFileTemplate: \"{{name}}\""),
              "objectFileTemplate is for objectSelector entries");
  ExpectError(ObjectError("objectName: a\nobjectType: key\nwriteTags: true"),
              "writeTags is only supported for objectType secret");

  Map a = BaseAttributes();
  a["objects"] = Objects({"objectSelector: {}\nobjectType: secret"});
  a["objectSelectorLimit"] = "250";
  auto p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->selector_limit, 250);
  a.erase("objectSelectorLimit");
  EXPECT_EQ(Parse(a)->selector_limit, 100);
  for (const char* bad : {"0", "1001", "-1", "many"}) {
    a["objectSelectorLimit"] = bad;
    ExpectError(Parse(a).status(), "objectSelectorLimit");
  }
}

TEST(ConfigTest, ExpiryWarning) {
  const std::string mounts = "mounts:\n  - {name: a, secretProviderClass: /s.yaml, target: /t}\n";
  auto c = ParseAgentConfig(mounts, "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->expiry_warning, std::chrono::hours(168));
  c = ParseAgentConfig("expiryWarning: 36h\n" + mounts, "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->expiry_warning, std::chrono::hours(36));
  c = ParseAgentConfig("expiryWarning: 0s\n" + mounts, "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->expiry_warning.count(), 0);
  ExpectError(ParseAgentConfig("expiryWarning: -1h\n" + mounts, "").status(),
              "expiryWarning must be from 0 to 87840h");
  ExpectError(ParseAgentConfig("expiryWarning: 100000h\n" + mounts, "").status(),
              "expiryWarning must be from 0 to 87840h");
  ExpectError(ParseAgentConfig("expiryWarning: soon\n" + mounts, "").status(), "expiryWarning: ");
}

}  // namespace
}  // namespace coffer::agent
