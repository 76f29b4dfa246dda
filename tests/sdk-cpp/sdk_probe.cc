// sdk_probe: Coffer's C++ SDK driven from the command line, for the
// end-to-end tests in tests/integration/test_sdk_cpp.py.
//
//   sdk_probe token --credential KIND --scope SCOPE [credential flags]
//   sdk_probe get   --credential KIND --vault-url URL --name N [--version V]
//   sdk_probe cache --credential KIND --vault-url URL [cache flags]
//   sdk_probe keys  --credential KIND --vault-url URL
//
// Output is one JSON object per line on stdout. It never carries a secret
// value, a token or an identity header: a value is shown as its SHA-256 and
// length, a token as some of its (unverified) claims. Errors are values
// ({"ok":false,"code":"PERMISSION_DENIED",...}): the exit status is 0
// whenever the command ran, 2 for a usage error.
//
// KIND is one of
//   secret       ClientSecretCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID
//                and AZURE_CLIENT_SECRET (a secret is never an argument)
//   certificate  ClientCertificateCredential from AZURE_TENANT_ID,
//                AZURE_CLIENT_ID and --certificate (default
//                $AZURE_CLIENT_CERTIFICATE_PATH)
//   workload     WorkloadIdentityCredential, from the environment
//   managed      ManagedIdentityCredential for --identity (a client id or a
//                resource id; none: the system-assigned identity) or
//                --identity-object-id
//   default      MakeDefaultAzureCredential, with --identity as above
//
// `token` asks twice for a token of SCOPE and says how many requests each
// call made (the second should be served by the credential's cache).
//
// `cache` builds a SecretCache (--ttl-ms, --stale-ms, --no-watch, --poll-ms,
// --max-backoff-ms) and reads commands from stdin, one per line:
//   get NAME [VERSION]   watch NAME   unwatch ID   last-error NAME
//   refresh              stats        quit
// Each command is answered by one line whose "reply" is the command's 1-based
// number. Change callbacks print {"event":"change",...} and each watch-stream
// connection prints {"event":"stream","state":"open"} when its first bytes
// arrive (the server has registered it by then) and "ended" when it ends.
//
// `keys` runs KeyClient and CryptographyClient commands read from stdin, one
// per line, each answered by one line, until end of input. Bytes are
// base64url; VERSION "-" is the latest; OPS is a comma-separated list or "-".
//   create NAME KTY SIZE|CURVE|- OPS      import NAME JWK-FILE
//   get NAME [VERSION]                    update NAME VERSION enabled|disabled OPS
//   list      versions NAME               delete NAME     deleted NAME
//   list-deleted       recover NAME       purge NAME
//   backup NAME (kept by the probe)       restore NAME (the blob kept for NAME)
//   rotate NAME        policy-get NAME    policy-set NAME ROTATE-AFTER EXPIRY
//   rng COUNT
//   encrypt|decrypt|wrap|unwrap NAME VERSION ALG BYTES
//   sign|sign-data NAME VERSION ALG BYTES
//   verify|verify-data NAME VERSION ALG BYTES SIGNATURE
// Decrypted and unwrapped bytes are printed as their SHA-256 and length.
//
// --retries and --retry-delay-ms set the SecretClient's RetryOptions,
// --timeout-s the transport's timeout. Every request goes through a
// CountingTransport around the default transport, so that a test can tell a
// cache hit (no request at all) from a read.

#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coffer/credentials.h"
#include "coffer/cryptography_client.h"
#include "coffer/http_transport.h"
#include "coffer/key_client.h"
#include "coffer/secret_cache.h"
#include "coffer/secret_client.h"
#include "coffer/status.h"
#include "common/encoding.h"
#include "common/json.h"
#include "crypto/primitives.h"

namespace coffer {
namespace {

// ---- output ------------------------------------------------------------------------------

// Emit writes one JSON line; the cache's threads print too, hence the lock.
void Emit(const Json& line) {
  static std::mutex mu;
  std::string text = ToJson(line);
  text += '\n';
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int UsageError(const std::string& why) {
  std::fprintf(stderr, "sdk_probe: %s\n", why.c_str());
  return 2;
}

Json ErrorFields(const Status& status) {
  return {{"ok", false},
          {"code", std::string(StatusCodeName(status.code()))},
          {"code_number", static_cast<int>(status.code())},
          {"reason", std::string(status.reason())},
          {"message", std::string(status.message())}};
}

// SecretFields describes a secret without its value.
Json SecretFields(const KeyVaultSecret& secret) {
  const SecretProperties& p = secret.properties;
  return {{"ok", true},
          {"id", p.id},
          {"name", p.name},
          {"version", p.version},
          {"enabled", p.enabled},
          {"content_type", p.content_type},
          {"sha256", HexEncode(crypto::Sha256(secret.value))},
          {"length", secret.value.size()}};
}

// Claims returns some claims of a JWT access token, unverified; the token
// itself is never printed.
Json Claims(const std::string& token) {
  size_t first = token.find('.');
  size_t second = first == std::string::npos ? first : token.find('.', first + 1);
  if (second == std::string::npos) {
    return nullptr;
  }
  auto payload = Base64UrlDecode(std::string_view(token).substr(first + 1, second - first - 1));
  if (!payload) {
    return nullptr;
  }
  auto claims = ParseJson(*payload);
  if (!claims || !claims->is_object()) {
    return nullptr;
  }
  Json out = Json::object();
  for (const char* name :
       {"aud", "iss", "tid", "oid", "sub", "appid", "azp", "idtyp", "xms_mirid", "exp"}) {
    if (claims->contains(name)) {
      out[name] = (*claims)[name];
    }
  }
  return out;
}

// ---- the counting transport --------------------------------------------------------------

// CountingTransport counts what goes through the default transport, by kind:
// token requests (token service and managed-identity endpoints), challenge
// probes (vault requests without a token), vault requests and watch streams.
class CountingTransport : public HttpTransport {
 public:
  explicit CountingTransport(std::shared_ptr<HttpTransport> inner) : inner_(std::move(inner)) {}

  StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    sends_.fetch_add(1);
    if (IsTokenRequest(request.url)) {
      token_.fetch_add(1);
    } else if (HasAuthorization(request)) {
      vault_.fetch_add(1);
    } else {
      challenges_.fetch_add(1);
    }
    StatusOr<HttpResponse> response = inner_->Send(request);
    if (!response.ok()) {
      failed_.fetch_add(1);
    }
    return response;
  }

  StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                const std::function<bool(std::string_view)>& on_data,
                                const std::atomic<bool>* cancel) override {
    uint64_t number = streams_.fetch_add(1) + 1;
    bool opened = false;
    auto counted = [&](std::string_view piece) {
      if (!opened) {
        opened = true;
        stream_opens_.fetch_add(1);
        Emit({{"event", "stream"}, {"state", "open"}, {"stream", number}});
      }
      return on_data(piece);
    };
    StatusOr<HttpResponse> response = inner_->Stream(request, counted, cancel);
    Json ended = {{"event", "stream"}, {"state", "ended"}, {"stream", number}};
    if (response.ok()) {
      ended["ok"] = true;
      ended["http_status"] = response->status;
    } else {
      failed_.fetch_add(1);
      ended.update(ErrorFields(response.status()));
    }
    Emit(ended);
    return response;
  }

  uint64_t sends() const { return sends_.load(); }

  Json Counts() const {
    return {{"sends", sends_.load()},           {"token", token_.load()},
            {"challenges", challenges_.load()}, {"vault", vault_.load()},
            {"streams", streams_.load()},       {"stream_opens", stream_opens_.load()},
            {"failed", failed_.load()}};
  }

 private:
  static bool IsTokenRequest(std::string_view url) {
    url = url.substr(0, url.find('?'));
    return url.find("/oauth2/") != std::string_view::npos ||
           url.find("/msi/token") != std::string_view::npos ||
           url.find("/metadata/identity/") != std::string_view::npos;
  }

  static bool HasAuthorization(const HttpRequest& request) {
    for (const auto& [name, value] : request.headers) {
      if (name == "Authorization") {
        return true;
      }
    }
    return false;
  }

  std::shared_ptr<HttpTransport> inner_;
  std::atomic<uint64_t> sends_{0}, token_{0}, challenges_{0}, vault_{0}, streams_{0},
      stream_opens_{0}, failed_{0};
};

// ---- flags -------------------------------------------------------------------------------

class Flags {
 public:
  // Parse reads --name value pairs (and the bare --no-watch); false with
  // `*error` set for anything else.
  bool Parse(int argc, char** argv, int first, std::string* error) {
    static const std::set<std::string> kValued = {
        "credential",  "identity",       "identity-object-id",
        "certificate", "scope",          "vault-url",
        "name",        "version",        "ttl-ms",
        "stale-ms",    "poll-ms",        "max-backoff-ms",
        "retries",     "retry-delay-ms", "timeout-s"};
    for (int i = first; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--no-watch") {
        no_watch_ = true;
        continue;
      }
      if (arg.rfind("--", 0) != 0 || kValued.count(arg.substr(2)) == 0) {
        *error = "unknown argument " + arg;
        return false;
      }
      if (i + 1 >= argc) {
        *error = arg + " needs a value";
        return false;
      }
      values_[arg.substr(2)] = argv[++i];
    }
    return true;
  }

  bool Has(const std::string& name) const { return values_.count(name) != 0; }
  std::string Get(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? "" : it->second;
  }
  bool no_watch() const { return no_watch_; }

  // Number reads a non-negative integer flag into `*out` (unchanged when the
  // flag is absent); false when it is not a number.
  bool Number(const std::string& name, int64_t* out, std::string* error) const {
    if (!Has(name)) {
      return true;
    }
    std::string text = Get(name);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < 0) {
      *error = "--" + name + " takes a non-negative integer";
      return false;
    }
    *out = v;
    return true;
  }

 private:
  std::map<std::string, std::string> values_;
  bool no_watch_ = false;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::shared_ptr<TokenCredential> MakeCredential(const Flags& flags,
                                                const CredentialOptions& options,
                                                std::string* error) {
  std::string kind = flags.Get("credential");
  ManagedIdentityId identity = flags.Has("identity-object-id")
                                   ? ManagedIdentityId::ObjectId(flags.Get("identity-object-id"))
                                   : ManagedIdentityId::Parse(flags.Get("identity"));
  if (kind == "secret") {
    return std::make_shared<ClientSecretCredential>(Env("AZURE_TENANT_ID"), Env("AZURE_CLIENT_ID"),
                                                    Env("AZURE_CLIENT_SECRET"), options);
  }
  if (kind == "certificate") {
    std::string path =
        flags.Has("certificate") ? flags.Get("certificate") : Env("AZURE_CLIENT_CERTIFICATE_PATH");
    return std::make_shared<ClientCertificateCredential>(Env("AZURE_TENANT_ID"),
                                                         Env("AZURE_CLIENT_ID"), path, options);
  }
  if (kind == "workload") {
    return std::make_shared<WorkloadIdentityCredential>(options);
  }
  if (kind == "managed") {
    return std::make_shared<ManagedIdentityCredential>(identity, options);
  }
  if (kind == "default") {
    return MakeDefaultAzureCredential(options, identity);
  }
  *error = "--credential is one of secret, certificate, workload, managed, default";
  return nullptr;
}

// ---- commands ----------------------------------------------------------------------------

int RunToken(const Flags& flags, TokenCredential& credential, const CountingTransport& transport) {
  std::string scope = flags.Get("scope");
  if (scope.empty()) {
    return UsageError("token needs --scope");
  }
  Json out = {{"event", "token"}};
  StatusOr<AccessToken> first = credential.GetToken(scope);
  uint64_t after_first = transport.sends();
  if (!first.ok()) {
    out.update(ErrorFields(first.status()));
    out["requests"] = after_first;
    Emit(out);
    return 0;
  }
  StatusOr<AccessToken> second = credential.GetToken(scope);
  out["ok"] = true;
  out["expires_on"] =
      std::chrono::duration_cast<std::chrono::seconds>(first->expires_on.time_since_epoch())
          .count();
  out["claims"] = Claims(first->token);
  out["requests"] = after_first;
  out["second_ok"] = second.ok();
  out["second_same_token"] = second.ok() && second->token == first->token;
  out["second_requests"] = transport.sends() - after_first;
  Emit(out);
  return 0;
}

int RunGet(const Flags& flags, SecretClient& client, const CountingTransport& transport) {
  Json out = {{"event", "get"}};
  StatusOr<KeyVaultSecret> secret = client.GetSecret(flags.Get("name"), flags.Get("version"));
  out.update(secret.ok() ? SecretFields(*secret) : ErrorFields(secret.status()));
  out["requests"] = transport.Counts();
  Emit(out);
  return 0;
}

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) {
    words.push_back(w);
  }
  return words;
}

Json StatsFields(const SecretCacheStats& s) {
  return {{"hits", s.hits},           {"stale_hits", s.stale_hits}, {"misses", s.misses},
          {"refreshes", s.refreshes}, {"errors", s.errors},         {"changes", s.changes}};
}

int RunCache(const Flags& flags, std::shared_ptr<SecretClient> client,
             const CountingTransport& transport) {
  SecretCacheOptions options;
  options.watch = !flags.no_watch();
  std::string error;
  struct {
    const char* flag;
    std::chrono::milliseconds* field;
  } durations[] = {{"ttl-ms", &options.ttl},
                   {"stale-ms", &options.stale_while_revalidate},
                   {"poll-ms", &options.poll_interval},
                   {"max-backoff-ms", &options.max_backoff}};
  for (const auto& d : durations) {
    int64_t ms = d.field->count();
    if (!flags.Number(d.flag, &ms, &error)) {
      return UsageError(error);
    }
    *d.field = std::chrono::milliseconds(ms);
  }

  SecretCache cache(std::move(client), options);
  Emit({{"event", "ready"}, {"watch", options.watch}});
  uint64_t number = 0;
  for (std::string line; std::getline(std::cin, line);) {
    ++number;
    std::vector<std::string> words = Words(line);
    std::string command = words.empty() ? "" : words[0];
    Json out = {{"reply", number}, {"event", command}};
    if (command == "quit") {
      Emit(out);
      break;
    }
    if (command == "get" && (words.size() == 2 || words.size() == 3)) {
      StatusOr<KeyVaultSecret> secret =
          cache.GetSecret(words[1], words.size() == 3 ? words[2] : "");
      out.update(secret.ok() ? SecretFields(*secret) : ErrorFields(secret.status()));
      out["requests"] = transport.Counts();
    } else if (command == "watch" && words.size() == 2) {
      // The callback learns its id once OnChange returns; a change seen
      // before then is labelled 0.
      std::string name = words[1];
      auto label = std::make_shared<std::atomic<int>>(0);
      int id = cache.OnChange(name, [label, name](const KeyVaultSecret& secret) {
        Json change = {{"event", "change"}, {"watch", label->load()}, {"for", name}};
        change.update(SecretFields(secret));
        Emit(change);
      });
      label->store(id);
      out["ok"] = true;
      out["id"] = id;
      out["name"] = name;
    } else if (command == "unwatch" && words.size() == 2) {
      int64_t id = 0;
      auto [end, ec] = std::from_chars(words[1].data(), words[1].data() + words[1].size(), id);
      bool ok = ec == std::errc() && end == words[1].data() + words[1].size();
      if (ok) {
        cache.RemoveCallback(static_cast<int>(id));
      }
      out["ok"] = ok;
    } else if (command == "last-error" && words.size() == 2) {
      Status status = cache.LastError(words[1]);
      out.update(status.ok() ? Json{{"ok", true}} : ErrorFields(status));
    } else if (command == "refresh" && words.size() == 1) {
      cache.Refresh();
      out["ok"] = true;
    } else if (command == "stats" && words.size() == 1) {
      out["ok"] = true;
      out["cache"] = StatsFields(cache.stats());
      out["requests"] = transport.Counts();
    } else {
      out["event"] = "error";
      out["ok"] = false;
      out["message"] = "unknown command or wrong arguments: " + command;
    }
    Emit(out);
  }
  return 0;
}

Json KeyFields(const KeyVaultKey& key) {
  const KeyProperties& p = key.properties;
  return {{"ok", true},
          {"kid", key.key.kid},
          {"name", p.name},
          {"version", p.version},
          {"kty", key.key.kty},
          {"crv", key.key.crv},
          {"n", key.key.n},
          {"e", key.key.e},
          {"x", key.key.x},
          {"y", key.key.y},
          {"key_ops", key.key.key_ops},
          {"enabled", p.enabled},
          {"exportable", p.exportable},
          {"tags", p.tags},
          {"expires_on", p.expires_on.value_or(0)}};
}

std::vector<std::string> OpsList(const std::string& word) {
  std::vector<std::string> ops;
  if (word == "-") {
    return ops;
  }
  size_t start = 0;
  while (start <= word.size()) {
    size_t comma = word.find(',', start);
    ops.push_back(word.substr(start, comma - start));
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return ops;
}

std::vector<uint8_t> Decoded(const std::string& text) {
  std::string bytes = Base64UrlDecode(text).value_or("");
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::string Encoded(const std::vector<uint8_t>& bytes) {
  return Base64UrlEncode(std::string(bytes.begin(), bytes.end()));
}

Json Hidden(const std::vector<uint8_t>& bytes) {
  return {{"ok", true},
          {"sha256", HexEncode(crypto::Sha256(std::string(bytes.begin(), bytes.end())))},
          {"length", bytes.size()}};
}

// One `keys` command; the answer's fields, or an error for wrong arguments.
Json RunKeyCommand(const std::vector<std::string>& w, KeyClient& keys,
                   const std::shared_ptr<TokenCredential>& credential,
                   const SecretClientOptions& options,
                   std::map<std::string, std::string>& backups) {
  const std::string command = w.empty() ? "" : w[0];
  auto key = [](const StatusOr<KeyVaultKey>& k) {
    return k.ok() ? KeyFields(*k) : ErrorFields(k.status());
  };
  auto names = [](const StatusOr<std::vector<KeyProperties>>& list) {
    if (!list.ok()) {
      return ErrorFields(list.status());
    }
    Json out = {{"ok", true}, {"items", Json::array()}};
    for (const KeyProperties& p : *list) {
      out["items"].push_back({{"name", p.name}, {"version", p.version}, {"enabled", p.enabled}});
    }
    return out;
  };
  auto deleted = [&](const StatusOr<DeletedKey>& d) {
    if (!d.ok()) {
      return ErrorFields(d.status());
    }
    Json out = KeyFields(d->key);
    out["recovery_id"] = d->recovery_id;
    out["deleted_on"] = d->deleted_on;
    out["scheduled_purge_date"] = d->scheduled_purge_date;
    return out;
  };
  const size_t n = w.size();
  if (command == "create" && n == 5) {
    CreateKeyOptions o;
    o.kty = w[2];
    if (w[3] != "-") {
      if (std::isdigit(static_cast<unsigned char>(w[3][0]))) {
        o.key_size = std::atoi(w[3].c_str());
      } else {
        o.curve = w[3];
      }
    }
    o.key_ops = OpsList(w[4]);
    return key(keys.CreateKey(w[1], o));
  }
  if (command == "import" && n == 3) {
    std::ifstream in(w[2]);
    std::stringstream text;
    text << in.rdbuf();
    return key(keys.ImportKey(w[1], text.str()));
  }
  if (command == "get" && (n == 2 || n == 3)) {
    return key(keys.GetKey(w[1], n == 3 ? w[2] : ""));
  }
  if (command == "update" && n == 5) {
    KeyProperties p;
    p.name = w[1];
    p.version = w[2] == "-" ? "" : w[2];
    p.enabled = w[3] == "enabled";
    std::optional<std::vector<std::string>> ops;
    if (w[4] != "-") {
      ops = OpsList(w[4]);
    }
    return key(keys.UpdateKeyProperties(p, ops));
  }
  if (command == "list" && n == 1) {
    return names(keys.ListPropertiesOfKeys());
  }
  if (command == "versions" && n == 2) {
    return names(keys.ListPropertiesOfKeyVersions(w[1]));
  }
  if (command == "delete" && n == 2) {
    return deleted(keys.DeleteKey(w[1]));
  }
  if (command == "deleted" && n == 2) {
    return deleted(keys.GetDeletedKey(w[1]));
  }
  if (command == "list-deleted" && n == 1) {
    auto list = keys.ListDeletedKeys();
    if (!list.ok()) {
      return ErrorFields(list.status());
    }
    Json out = {{"ok", true}, {"items", Json::array()}};
    for (const DeletedKey& d : *list) {
      out["items"].push_back({{"name", d.key.properties.name}, {"recovery_id", d.recovery_id}});
    }
    return out;
  }
  if (command == "recover" && n == 2) {
    return key(keys.RecoverDeletedKey(w[1]));
  }
  if (command == "purge" && n == 2) {
    Status s = keys.PurgeDeletedKey(w[1]);
    return s.ok() ? Json{{"ok", true}} : ErrorFields(s);
  }
  if (command == "backup" && n == 2) {
    auto blob = keys.BackupKey(w[1]);
    if (!blob.ok()) {
      return ErrorFields(blob.status());
    }
    backups[w[1]] = *blob;
    return {{"ok", true}, {"length", blob->size()}};
  }
  if (command == "restore" && n == 2) {
    return key(keys.RestoreKeyBackup(backups[w[1]]));
  }
  if (command == "rotate" && n == 2) {
    return key(keys.RotateKey(w[1]));
  }
  if ((command == "policy-get" && n == 2) || (command == "policy-set" && n == 4)) {
    StatusOr<KeyRotationPolicy> policy = KeyRotationPolicy{};
    if (command == "policy-get") {
      policy = keys.GetKeyRotationPolicy(w[1]);
    } else {
      KeyRotationPolicy want;
      want.lifetime_actions = {{"Rotate", w[2], ""}};
      want.expires_in = w[3];
      policy = keys.UpdateKeyRotationPolicy(w[1], want);
    }
    if (!policy.ok()) {
      return ErrorFields(policy.status());
    }
    Json out = {{"ok", true},
                {"id", policy->id},
                {"expires_in", policy->expires_in},
                {"actions", Json::array()}};
    for (const auto& a : policy->lifetime_actions) {
      out["actions"].push_back({{"action", a.action},
                                {"time_after_create", a.time_after_create},
                                {"time_before_expiry", a.time_before_expiry}});
    }
    return out;
  }
  if (command == "rng" && n == 2) {
    auto bytes = keys.GetRandomBytes(std::atoi(w[1].c_str()));
    return bytes.ok() ? Json{{"ok", true}, {"value", Encoded(*bytes)}}
                      : ErrorFields(bytes.status());
  }
  const bool crypto_command = command == "encrypt" || command == "decrypt" || command == "wrap" ||
                              command == "unwrap" || command == "sign" || command == "sign-data";
  const bool verify_command = command == "verify" || command == "verify-data";
  if ((crypto_command && n == 5) || (verify_command && n == 6)) {
    std::string kid = keys.vault_url() + "/keys/" + w[1] + (w[2] == "-" ? "" : "/" + w[2]);
    CryptographyClient client(kid, credential, options);
    const std::string& alg = w[3];
    std::vector<uint8_t> bytes = Decoded(w[4]);
    auto result = [](const auto& r, auto field) -> Json {
      if (!r.ok()) {
        return ErrorFields(r.status());
      }
      return {{"ok", true}, {"kid", r->key_id}, {"alg", r->algorithm}, {"value", field(*r)}};
    };
    if (command == "encrypt") {
      return result(client.Encrypt(alg, bytes),
                    [](const EncryptResult& r) { return Encoded(r.ciphertext); });
    }
    if (command == "wrap") {
      return result(client.WrapKey(alg, bytes),
                    [](const WrapResult& r) { return Encoded(r.encrypted_key); });
    }
    if (command == "decrypt" || command == "unwrap") {
      StatusOr<std::vector<uint8_t>> out = std::vector<uint8_t>{};
      std::string kid_out;
      if (command == "decrypt") {
        auto r = client.Decrypt(alg, bytes);
        if (!r.ok()) {
          return ErrorFields(r.status());
        }
        kid_out = r->key_id;
        out = r->plaintext;
      } else {
        auto r = client.UnwrapKey(alg, bytes);
        if (!r.ok()) {
          return ErrorFields(r.status());
        }
        kid_out = r->key_id;
        out = r->key;
      }
      Json fields = Hidden(*out);
      fields["kid"] = kid_out;
      return fields;
    }
    if (command == "sign" || command == "sign-data") {
      auto r = command == "sign" ? client.Sign(alg, bytes) : client.SignData(alg, bytes);
      return result(r, [](const SignResult& s) { return Encoded(s.signature); });
    }
    std::vector<uint8_t> signature = Decoded(w[5]);
    auto r = command == "verify" ? client.Verify(alg, bytes, signature)
                                 : client.VerifyData(alg, bytes, signature);
    return result(r, [](const VerifyResult& v) { return v.is_valid; });
  }
  return {{"event", "error"},
          {"ok", false},
          {"message", "unknown command or wrong arguments: " + command}};
}

int RunKeys(KeyClient& keys, const std::shared_ptr<TokenCredential>& credential,
            const SecretClientOptions& options) {
  std::map<std::string, std::string> backups;
  uint64_t number = 0;
  for (std::string line; std::getline(std::cin, line);) {
    std::vector<std::string> words = Words(line);
    if (words.empty()) {
      continue;
    }
    Json out = {{"reply", ++number}, {"event", words[0]}};
    out.update(RunKeyCommand(words, keys, credential, options, backups));
    Emit(out);
  }
  return 0;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    return UsageError("usage: sdk_probe token|get|cache|keys --credential KIND [flags]");
  }
  std::string command = argv[1];
  Flags flags;
  std::string error;
  if (!flags.Parse(argc, argv, 2, &error)) {
    return UsageError(error);
  }
  int64_t retries = 3, retry_delay_ms = 800, timeout_s = 30;
  if (!flags.Number("retries", &retries, &error) ||
      !flags.Number("retry-delay-ms", &retry_delay_ms, &error) ||
      !flags.Number("timeout-s", &timeout_s, &error)) {
    return UsageError(error);
  }

  TransportOptions transport_options;
  transport_options.timeout_seconds = static_cast<int>(timeout_s);
  auto transport = std::make_shared<CountingTransport>(MakeDefaultTransport(transport_options));
  CredentialOptions credential_options;
  credential_options.transport = transport;
  std::shared_ptr<TokenCredential> credential = MakeCredential(flags, credential_options, &error);
  if (credential == nullptr) {
    return UsageError(error);
  }
  if (command == "token") {
    return RunToken(flags, *credential, *transport);
  }
  if (command != "get" && command != "cache" && command != "keys") {
    return UsageError("unknown command " + command);
  }
  if (flags.Get("vault-url").empty()) {
    return UsageError(command + " needs --vault-url");
  }
  SecretClientOptions client_options;
  client_options.transport = transport;
  client_options.retry.max_retries = static_cast<int>(retries);
  client_options.retry.initial_delay = std::chrono::milliseconds(retry_delay_ms);
  if (command == "keys") {
    KeyClient keys(flags.Get("vault-url"), credential, client_options);
    return RunKeys(keys, credential, client_options);
  }
  auto client = std::make_shared<SecretClient>(flags.Get("vault-url"), credential, client_options);
  if (command == "get") {
    if (flags.Get("name").empty()) {
      return UsageError("get needs --name");
    }
    return RunGet(flags, *client, *transport);
  }
  return RunCache(flags, std::move(client), *transport);
}

}  // namespace
}  // namespace coffer

int main(int argc, char** argv) {
  return coffer::Main(argc, argv);
}
