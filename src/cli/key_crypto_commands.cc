// `coffer keyvault key encrypt|decrypt|sign|verify|download`: a key's
// operations, flagged as az's and printing what az prints for them
// (docs/cli.md). The private key never leaves the vault; download writes
// only the public key.

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/key_commands.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/asym_key.h"
#include "crypto/primitives.h"

#include <sys/stat.h>

namespace coffer::cli {
namespace {

const std::vector<std::string> kEncryptionAlgorithms = {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"};
const std::vector<std::string> kSignatureAlgorithms = {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "ES256K"};

// DecodeBase64Flag reads a binary flag value as az does (standard base64),
// also accepting base64url; a usage error naming `flag` otherwise.
std::string DecodeBase64Flag(const std::string& text, const char* flag) {
  auto bytes = Base64Decode(text);
  if (!bytes) {
    bytes = Base64UrlDecode(text);
  }
  if (!bytes) {
    Usage(std::string("argument ") + flag + ": the value is not base64");
  }
  return *bytes;
}

// The key id an operation ran with: the versioned kid the service answered
// with, else the id the command named.
std::string KeyIdOf(const Json& result, const std::string& base, const ObjectArgs& a) {
  if (result.is_object() && result.contains("kid") && result["kid"].is_string()) {
    return result["kid"].get<std::string>();
  }
  return base + "/keys/" + a.name + (a.version.empty() ? "" : "/" + a.version);
}

void AddEncryptDecrypt(CLI::App* key) {
  for (const char* verb : {"encrypt", "decrypt"}) {
    const bool encrypt = std::string(verb) == "encrypt";
    auto* cmd = key->add_subcommand(
        verb, encrypt ? "Encrypt a value with a key (RSA)" : "Decrypt a value with a key (RSA)");
    auto a = std::make_shared<ObjectArgs>();
    auto alg = std::make_shared<std::string>();
    auto value = std::make_shared<std::string>();
    auto data_type = std::make_shared<std::string>("base64");
    AddKeyTarget(cmd, *a, true);
    cmd->add_option("--algorithm,-a", *alg, "Algorithm")
        ->required()
        ->check(CLI::IsMember(kEncryptionAlgorithms));
    cmd->add_option("--value", *value,
                    encrypt ? "The value to encrypt, base64 (or text with --data-type plaintext)"
                            : "The ciphertext, base64")
        ->required();
    cmd->add_option("--data-type", *data_type,
                    encrypt ? "How --value is given: base64 or plaintext"
                            : "How the result is printed: base64 or plaintext")
        ->check(CLI::IsMember({"base64", "plaintext"}))
        ->capture_default_str();
    cmd->callback([=] {
      std::string input =
          encrypt && *data_type == "plaintext" ? *value : DecodeBase64Flag(*value, "--value");
      Json body = {{"alg", *alg}, {"value", Base64UrlEncode(input)}};
      crypto::SecureWipe(input);
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      Json result =
          Expect(c.Call("POST", KvUrl(base, VersionPath(*a, verb)), resource, ToJson(body)), {200});
      std::string bytes = ResultBytes(result);
      // As az: {kid, result, algorithm}, encrypt adding AES's null iv, tag
      // and aad; result is standard base64 unless decrypt was asked for text.
      Json out = {{"kid", KeyIdOf(result, base, *a)}, {"algorithm", *alg}};
      if (encrypt) {
        out["result"] = Base64Encode(bytes);
        out["iv"] = nullptr;
        out["tag"] = nullptr;
        out["aad"] = nullptr;
      } else if (*data_type == "plaintext") {
        if (!IsValidUtf8(bytes)) {
          crypto::SecureWipe(bytes);
          Fail(InvalidArgumentError(
              "The decrypted value is not UTF-8 text; use --data-type base64."));
        }
        // SECURITY: the plaintext is this command's answer, printed on its
        // stdout as az prints it, and nowhere else.
        out["result"] = bytes;
      } else {
        out["result"] = Base64Encode(bytes);
      }
      crypto::SecureWipe(bytes);
      Print(out);
    });
  }
}

void AddSignVerify(CLI::App* key) {
  for (const char* verb : {"sign", "verify"}) {
    const bool sign = std::string(verb) == "sign";
    auto* cmd = key->add_subcommand(
        verb, sign ? "Sign a digest with a key" : "Verify a signature of a digest with a key");
    auto a = std::make_shared<ObjectArgs>();
    auto alg = std::make_shared<std::string>();
    auto digest = std::make_shared<std::string>();
    auto signature = std::make_shared<std::string>();
    AddKeyTarget(cmd, *a, true);
    cmd->add_option("--algorithm,-a", *alg, "Algorithm")
        ->required()
        ->check(CLI::IsMember(kSignatureAlgorithms));
    cmd->add_option("--digest", *digest,
                    "The digest (hash) of the data, base64: 32, 48 or 64 bytes as the algorithm "
                    "hashes")
        ->required();
    if (!sign) {
      cmd->add_option("--signature", *signature, "The signature, base64")->required();
    }
    cmd->callback([=] {
      Json body = {
          {"alg", *alg},
          {sign ? "value" : "digest", Base64UrlEncode(DecodeBase64Flag(*digest, "--digest"))}};
      if (!sign) {
        body["value"] = Base64UrlEncode(DecodeBase64Flag(*signature, "--signature"));
      }
      auto c = MakeClient();
      auto [base, resource] = ResolveKey(c, *a);
      Json result =
          Expect(c.Call("POST", KvUrl(base, VersionPath(*a, verb)), resource, ToJson(body)), {200});
      // As az: SignResult {algorithm, keyId, signature} and VerifyResult
      // {algorithm, isValid, keyId}; a signature that does not verify is
      // isValid false, not an error.
      Json out = {{"algorithm", *alg}, {"keyId", KeyIdOf(result, base, *a)}};
      if (sign) {
        out["signature"] = Base64Encode(ResultBytes(result));
      } else {
        if (!result.is_object() || !result.contains("value") || !result["value"].is_boolean()) {
          Fail(InternalError("the server returned a malformed result"));
        }
        out["isValid"] = result["value"];
      }
      Print(out);
    });
  }
}

void AddDownload(CLI::App* key) {
  auto* cmd = key->add_subcommand("download", "Write a key's public key to a file (PEM or DER)");
  auto a = std::make_shared<ObjectArgs>();
  auto file = std::make_shared<std::string>();
  auto encoding = std::make_shared<std::string>("PEM");
  AddKeyTarget(cmd, *a, true);
  cmd->add_option("--file,-f", *file, "Output file (must not exist)")->required();
  cmd->add_option("--encoding,-e", *encoding, "PEM or DER (SubjectPublicKeyInfo)")
      ->check(CLI::IsMember({"PEM", "DER"}))
      ->capture_default_str();
  cmd->callback([=] {
    RefuseExisting(*file);
    auto c = MakeClient();
    auto [base, resource] = ResolveKey(c, *a);
    Json bundle = Expect(c.Call("GET", KvUrl(base, VersionPath(*a)), resource), {200});
    Json jwk = bundle.is_object() ? bundle.value("key", Json()) : Json();
    auto written =
        *encoding == "DER" ? crypto::PublicKeyDerFromJwk(jwk) : crypto::PublicKeyPemFromJwk(jwk);
    if (!written.ok()) {
      Fail(written.status());
    }
    WriteFileOrUsage(*file, *written);
  });
}

}  // namespace

void AddKeyCryptoCommands(CLI::App* key) {
  AddEncryptDecrypt(key);
  AddSignVerify(key);
  AddDownload(key);
}

}  // namespace coffer::cli
