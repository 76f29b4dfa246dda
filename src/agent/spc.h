#pragma once

// Parsers for what a Secrets Store CSI mount is made of: SecretProviderClass
// manifests, the Azure Key Vault provider's parameters (keyvaultName,
// tenantID, clientID, objects, ...), the JSON fields of a provider MountRequest
// and Kubernetes Secret manifests. docs: ../shared/reference/csi-driver.md
// §2 and §3; the rules below follow the Azure provider so that SPCs written for
// it work unchanged.
//
// Every function is pure (no I/O, no shared state) and thread-safe. Errors are
// kInvalidArgument unless stated otherwise; messages name the field (and the
// object index for `objects`) and never contain a client secret or a token.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace coffer::agent {

enum class ObjectType { kSecret, kKey, kCert };
enum class ObjectEncoding { kUtf8, kHex, kBase64 };
enum class IdentityMode {
  kServicePrincipal,
  kVmManagedIdentity,
  kWorkloadIdentity,
  kPodIdentity,
  kTokenProxy
};

// Coffer's extension `objectSelector`: the enabled secrets of the vault whose
// names start with `name_prefix` (ignoring case, as Key Vault names do) and
// that carry every tag of `tags` (name and value equal).
struct ObjectSelector {
  std::string name_prefix;
  std::map<std::string, std::string> tags;
  // `objectFileTemplate`: each selected secret's file name, with
  // "{{name}}" (the secret's name) and "{{suffix}}" (its name without the
  // prefix) replaced.
  std::string file_template = "{{name}}";

  // FileNameFor is the file of the selected secret `name`.
  std::string FileNameFor(std::string_view name) const;
  bool Matches(std::string_view name, const std::map<std::string, std::string>& tags) const;
};

// Limits of a selector (Key Vault's own limits on tags: 15 per object,
// names of 512 and values of 256 characters).
inline constexpr size_t kMaxSelectorTags = 15;
inline constexpr size_t kMaxTagNameBytes = 512;
inline constexpr size_t kMaxTagValueBytes = 256;
// How many secrets the selectors of one mount may match: the default of
// the SPC parameter `objectSelectorLimit`, and its largest value.
inline constexpr int kDefaultSelectorLimit = 100;
inline constexpr int kMaxSelectorLimit = 1000;

// One entry of the `objects` parameter, validated.
struct AzureObject {
  std::string name;  // objectName: 1-127 of [0-9A-Za-z-], as Key Vault names
  ObjectType type = ObjectType::kSecret;
  std::string version;  // objectVersion; "" = latest
  int32_t version_history = 0;
  std::string alias;   // objectAlias; "" = use name
  std::string format;  // "pem" (default) or "pfx", lower-cased
  ObjectEncoding encoding = ObjectEncoding::kUtf8;
  std::optional<uint32_t> file_permission;  // filePermission; nullopt = request default
  // Coffer's extension `optional: "true"`: when the object is missing,
  // disabled or forbidden, the mount goes on without it (docs/agent.md).
  bool optional = false;
  // Coffer's extension `optionalFallback: lastKnown` (with `optional`): such
  // an object keeps the content last written for it instead of being
  // absent. The default, `absent`, leaves its file out.
  bool keep_last_known = false;
  // Coffer's extension `objectSelector` (then `name` is empty and the type
  // a secret): the entry stands for every secret it matches, each written
  // as a secret entry of that name would be.
  std::optional<ObjectSelector> selector;
  // Coffer's extension `writeTags: "true"` (secrets): the version's tags
  // also as <file>.tags.json, a JSON object.
  bool write_tags = false;

  // The file (or, with version_history > 1, the directory) written for this
  // object, relative to the mount: the alias when set, else the name.
  std::string FileName() const;
  // "secret", "key" or "cert".
  std::string_view TypeName() const;
  // The ObjectVersion id, "<type>/<name>" (e.g. "secret/db-pass"); version
  // history entries append "/<index>" to it.
  std::string Id() const;
};

struct AzureMountParameters {
  std::string keyvault_name;
  std::string tenant_id;
  IdentityMode identity_mode = IdentityMode::kServicePrincipal;
  std::string user_assigned_identity_id;  // kVmManagedIdentity; "" = system-assigned
  std::string client_id;                  // kWorkloadIdentity, kTokenProxy
  // kWorkloadIdentity: the JWT for audience api://AzureADTokenExchange;
  // kTokenProxy: the JWT for audience api://AKSIdentityBinding. Taken from
  // csi.storage.k8s.io/serviceAccount.tokens; empty when only the file is set.
  std::string workload_identity_token;
  // The standalone alternative: a file the caller reads at token time (it
  // rotates). Set from AzureParseOptions::service_account_token_file when no
  // token came in the attributes.
  std::string workload_identity_token_file;
  // kServicePrincipal: from the secrets map, keys matched case-insensitively
  // `clientid` / `clientsecret`, trimmed.
  std::string sp_client_id;
  std::string sp_client_secret;
  std::string pod_name;
  std::string pod_namespace;
  std::string pod_uid;
  std::string service_account;
  std::vector<AzureObject> objects;
  // Coffer's `objectSelectorLimit`: at most this many secrets matched by the
  // mount's selectors together (1 to kMaxSelectorLimit).
  int selector_limit = kDefaultSelectorLimit;
};

// CheckFileNameConflicts: no two objects write the same path, and no
// object's file is a directory of another's. Selector entries are skipped
// (their files are known once they are expanded).
Status CheckFileNameConflicts(const std::vector<AzureObject>& objects);

struct AzureParseOptions {
  // The CSI path requires csi.storage.k8s.io/pod.name and pod.namespace (the
  // Azure provider refuses the mount without them); standalone does not.
  bool require_pod_info = true;
  // Standalone: a projected service-account token for workload identity and
  // the token proxy, used when the attributes carry no tokens.
  std::string service_account_token_file;
};

// ParseAzureObjects reads the `objects` parameter (a YAML mapping whose
// "array" lists one YAML mapping per object, as text), with the rules of
// ParseAzureProviderParameters.
StatusOr<std::vector<AzureObject>> ParseAzureObjects(std::string_view text);

// Limits that make hostile input cheap to refuse.
inline constexpr size_t kMaxAttributesBytes = 1 << 20;  // keys + values
inline constexpr size_t kMaxAttributes = 1024;
inline constexpr size_t kMaxObjects = 1000;

// Well-known attribute keys (set by kubelet / the driver, §2.1).
inline constexpr std::string_view kAttrPodName = "csi.storage.k8s.io/pod.name";
inline constexpr std::string_view kAttrPodNamespace = "csi.storage.k8s.io/pod.namespace";
inline constexpr std::string_view kAttrPodUid = "csi.storage.k8s.io/pod.uid";
inline constexpr std::string_view kAttrServiceAccount = "csi.storage.k8s.io/serviceAccount.name";
inline constexpr std::string_view kAttrTokens = "csi.storage.k8s.io/serviceAccount.tokens";
inline constexpr std::string_view kAttrEphemeral = "csi.storage.k8s.io/ephemeral";
inline constexpr std::string_view kAttrSecretProviderClass = "secretProviderClass";
inline constexpr std::string_view kWorkloadIdentityAudience = "api://AzureADTokenExchange";
inline constexpr std::string_view kTokenProxyAudience = "api://AKSIdentityBinding";

// ParseAzureProviderParameters validates a mount's attributes (SPC parameters
// merged with the volume context) and secrets (nodePublishSecretRef data) and
// resolves the identity mode in the order of the Azure provider:
// usePodIdentity, useVMManagedIdentity, useAzureTokenProxy (at most one may
// be true), then clientID (workload identity), then a service principal from
// the secrets. All values are whitespace-trimmed. Booleans are Go
// strconv.ParseBool spellings. Duplicate file names (or a file that is also
// another object's directory) are refused. Besides the Azure rules, objectName
// must be a Key Vault name, objectVersion [0-9A-Za-z-]{0,127}, tenantID
// [0-9A-Za-z._-]{1,256} and filePermission at most 0777, since all of them end
// up in URLs or file modes. Unknown parameters (cloudName, ...) are ignored.
StatusOr<AzureMountParameters> ParseAzureProviderParameters(
    const std::map<std::string, std::string>& attributes,
    const std::map<std::string, std::string>& secrets, const AzureParseOptions& opts);

// ParseStringMapJson parses a JSON object whose values are all strings (the
// MountRequest `attributes` and `secrets` fields). The literal `null` gives an
// empty map when `allow_null`, else an error. At most 4 MiB of text.
StatusOr<std::map<std::string, std::string>> ParseStringMapJson(std::string_view json,
                                                                bool allow_null);

// ParsePermission parses a file mode: a JSON decimal number as the
// MountRequest `permission` field carries it ("420" -> 0644), or an octal
// string with a leading zero ("0640", "0o640"). Must be <= 0777.
StatusOr<uint32_t> ParsePermission(std::string_view json_number_or_octal);

// ParseOctalMode parses base 8 with optional leading zeros, as the Azure
// provider parses `filePermission` ("600" and "0600" are both 0600). Must be
// <= 0777.
StatusOr<uint32_t> ParseOctalMode(std::string_view text);

// ParseServiceAccountTokens returns the `token` of `audience` from the
// csi.storage.k8s.io/serviceAccount.tokens JSON (§2.2). kNotFound when the
// audience is absent; kInvalidArgument for malformed JSON or an entry without
// a non-empty, JWT-charset `token`.
StatusOr<std::string> ParseServiceAccountTokens(std::string_view json, std::string_view audience);

// ParseGoDuration parses Go time.ParseDuration syntax ("2m", "30s", "1h30m",
// "1.5h", "500ms", "0"; units ns us µs ms s m h; optional sign), truncated to
// milliseconds.
StatusOr<std::chrono::milliseconds> ParseGoDuration(std::string_view text);

// ParseGoBool parses Go strconv.ParseBool spellings: 1 t T TRUE true True and
// 0 f F FALSE false False. `field` names the value in the error.
StatusOr<bool> ParseGoBool(std::string_view text, std::string_view field);

struct SecretProviderClass {
  std::string name;
  std::string namespace_name;  // metadata.namespace; "" when not set
  std::string provider;        // spec.provider, ^[a-zA-Z0-9_-]{1,30}$
  std::map<std::string, std::string> parameters;
};

// ParseSecretProviderClasses reads every SecretProviderClass (apiVersion
// secrets-store.csi.x-k8s.io/v1 or v1alpha1) of a multi-document YAML file.
// Documents of other kinds are skipped; a SecretProviderClass with another
// apiVersion is an error, and so is a file without any, or two with the same
// namespace/name. Parameter values must be scalars; plain scalars (`true`,
// `1`) are taken as text, null as "". spec.secretObjects is ignored.
StatusOr<std::vector<SecretProviderClass>> ParseSecretProviderClasses(std::string_view yaml);

// SelectSecretProviderClass picks `name` from `classes` (kNotFound when it is
// not there), or with an empty name the only one (kInvalidArgument when there
// are several).
StatusOr<SecretProviderClass> SelectSecretProviderClass(std::vector<SecretProviderClass> classes,
                                                        std::string_view name);

// ParseKubernetesSecret reads a v1 Secret manifest (one document): `data`
// values are base64-decoded, `stringData` values taken as they are and win on
// a key clash, as the API server does. Keys must be [-._a-zA-Z0-9]{1,253}.
// Errors name the key, never the value.
StatusOr<std::map<std::string, std::string>> ParseKubernetesSecret(std::string_view yaml);

}  // namespace coffer::agent
