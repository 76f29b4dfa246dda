#include "keyvault/keys_api.h"

#include "common/encoding.h"
#include "common/json.h"
#include "common/strings.h"
#include "crypto/primitives.h"
#include "keyvault/api_util.h"

namespace coffer::keyvault {
namespace {

constexpr int kMaxRandomBytes = 128;

http::Response Error(const Status& s) {
  return http::ErrorResponse(s);
}

std::string Kid(const http::Request& req, const std::string& name, const std::string& version) {
  return BaseUrl(req) + "/keys/" + name + (version.empty() ? "" : "/" + version);
}

// A KeyBundle (with the key) or a KeyItem (kid only), with Key Vault's
// deletion fields for deleted keys.
Json Render(const Key& k, const http::Request& req, bool bundle, bool versioned) {
  const auto& r = k.record;
  Json attrs = {{"enabled", r.enabled},
                {"created", r.created},
                {"updated", r.updated},
                {"recoverableDays", k.recoverable_days},
                {"recoveryLevel", k.recovery_level},
                {"exportable", false}};
  if (r.nbf) {
    attrs["nbf"] = *r.nbf;
  }
  if (r.exp) {
    attrs["exp"] = *r.exp;
  }
  Json out = Json::object();
  std::string kid = Kid(req, r.name, versioned ? r.version : "");
  if (bundle) {
    Json key = {{"kid", kid}};
    for (const auto& [field, value] : k.jwk.items()) {
      key[field] = value;
    }
    out["key"] = std::move(key);
  } else {
    out["kid"] = kid;
  }
  out["attributes"] = std::move(attrs);
  auto tags = ParseJson(r.tags_json, 2);
  if (tags && tags->is_object() && !tags->empty()) {
    out["tags"] = *tags;
  }
  if (k.managed) {
    out["managed"] = true;
  }
  if (k.deleted) {
    out["recoveryId"] = BaseUrl(req) + "/deletedkeys/" + r.name;
    out["deletedDate"] = k.deleted_date;
    out["scheduledPurgeDate"] = k.scheduled_purge_date;
  }
  return out;
}

http::Response Answer(const StatusOr<Key>& k, const http::Request& req) {
  if (!k.ok()) {
    return Error(k.status());
  }
  return http::JsonResponse(200, ToJson(Render(*k, req, true, true)));
}

http::Response ListResponse(const KeyList& list, const http::Request& req, const std::string& path,
                            int limit, bool versioned) {
  Json items = Json::array();
  for (const auto& k : list.items) {
    items.push_back(Render(k, req, false, versioned));
  }
  std::string body = "{\"value\":" + ToJson(items) +
                     ",\"nextLink\":" + NextLink(req, path, list.next_cursor, limit) + "}";
  return http::JsonResponse(200, std::move(body));
}

StatusOr<std::vector<std::string>> ReadStrings(const Json& value, const std::string& field) {
  if (!value.is_array()) {
    return TypeError(field, "an array of strings");
  }
  std::vector<std::string> out;
  for (const auto& v : value) {
    if (!v.is_string()) {
      return TypeError(field, "an array of strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

// The settings create, import and update share: attributes, tags,
// release_policy.
struct Common {
  std::optional<bool> enabled;
  std::optional<std::optional<int64_t>> nbf;
  std::optional<std::optional<int64_t>> exp;
  bool exportable = false;
  std::optional<std::string> tags_json;
  bool has_release_policy = false;
};

StatusOr<Common> ReadCommon(const Json& body) {
  Common c;
  if (auto it = body.find("tags"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return TypeError("tags", "an object of strings");
    }
    c.tags_json = ToJson(*it);
  }
  if (auto it = body.find("release_policy"); it != body.end() && !it->is_null()) {
    c.has_release_policy = true;
  }
  if (auto it = body.find("attributes"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return TypeError("attributes", "an object");
    }
    if (auto e = it->find("enabled"); e != it->end() && !e->is_null()) {
      if (!e->is_boolean()) {
        return TypeError("attributes.enabled", "a boolean");
      }
      c.enabled = e->get<bool>();
    }
    if (auto e = it->find("exportable"); e != it->end() && !e->is_null()) {
      if (!e->is_boolean()) {
        return TypeError("attributes.exportable", "a boolean");
      }
      c.exportable = e->get<bool>();
    }
    RETURN_IF_ERROR(ReadTime(*it, "nbf", c.nbf));
    RETURN_IF_ERROR(ReadTime(*it, "exp", c.exp));
  }
  return c;
}

std::string Name(const VaultCall& call) {
  return std::string(call.params.Get("name"));
}

}  // namespace

http::Response KeysApi::List(const VaultCall& call) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  auto list = service_.List(call.vault, paging->cursor, paging->limit);
  return list.ok() ? ListResponse(*list, call.request, "/keys", paging->limit, false)
                   : Error(list.status());
}

http::Response KeysApi::ListDeleted(const VaultCall& call) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  auto list = service_.ListDeleted(call.vault, paging->cursor, paging->limit);
  return list.ok() ? ListResponse(*list, call.request, "/deletedkeys", paging->limit, false)
                   : Error(list.status());
}

http::Response KeysApi::ListVersions(const VaultCall& call) {
  auto paging = ReadPaging(call.request);
  if (!paging.ok()) {
    return Error(paging.status());
  }
  std::string name = Name(call);
  auto list = service_.ListVersions(call.vault, name, paging->cursor, paging->limit);
  return list.ok()
             ? ListResponse(*list, call.request, "/keys/" + name + "/versions", paging->limit, true)
             : Error(list.status());
}

http::Response KeysApi::Create(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  KeyCreateInput in;
  auto kty = body->find("kty");
  if (kty == body->end() || !kty->is_string()) {
    return Error(BadParameter("Property 'kty' is required: RSA or EC."));
  }
  in.kty = kty->get<std::string>();
  if (auto it = body->find("key_size"); it != body->end() && !it->is_null()) {
    if (!it->is_number_integer()) {
      return Error(TypeError("key_size", "an integer"));
    }
    int64_t size = it->get<int64_t>();
    if (size < 0 || size > 65536) {
      return Error(BadParameter("Unsupported key size."));
    }
    in.key_size = static_cast<int>(size);
  }
  if (auto it = body->find("public_exponent"); it != body->end() && !it->is_null()) {
    if (!it->is_number_integer()) {
      return Error(TypeError("public_exponent", "an integer"));
    }
    in.public_exponent = it->get<int64_t>();
  }
  if (auto it = body->find("crv"); it != body->end() && !it->is_null()) {
    if (!it->is_string()) {
      return Error(TypeError("crv", "a string"));
    }
    in.crv = it->get<std::string>();
  }
  if (auto it = body->find("key_ops"); it != body->end() && !it->is_null()) {
    auto ops = ReadStrings(*it, "key_ops");
    if (!ops.ok()) {
      return Error(ops.status());
    }
    in.key_ops = *ops;
  }
  auto common = ReadCommon(*body);
  if (!common.ok()) {
    return Error(common.status());
  }
  in.tags_json = common->tags_json.value_or("{}");
  in.enabled = common->enabled.value_or(true);
  in.nbf = common->nbf.value_or(std::nullopt);
  in.exp = common->exp.value_or(std::nullopt);
  in.exportable = common->exportable;
  in.has_release_policy = common->has_release_policy;
  return Answer(service_.Create(call.vault, Name(call), in), call.request);
}

http::Response KeysApi::Import(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  KeyImportInput in;
  auto key = body->find("key");
  if (key == body->end() || !key->is_object()) {
    return Error(BadParameter("Property 'key' is required: a JSON Web Key with its private part."));
  }
  // Moved, not copied: the one copy of the private key is wiped below.
  in.jwk = std::move(*key);
  if (auto it = body->find("Hsm"); it != body->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return Error(TypeError("Hsm", "a boolean"));
    }
    in.hsm = it->get<bool>();
  }
  auto common = ReadCommon(*body);
  if (!common.ok()) {
    return Error(common.status());
  }
  in.tags_json = common->tags_json.value_or("{}");
  in.enabled = common->enabled.value_or(true);
  in.nbf = common->nbf.value_or(std::nullopt);
  in.exp = common->exp.value_or(std::nullopt);
  in.exportable = common->exportable;
  in.has_release_policy = common->has_release_policy;
  auto made = service_.Import(call.vault, Name(call), in);
  // SECURITY: the request's private key is wiped from the parsed body.
  for (const char* field : {"d", "p", "q", "dp", "dq", "qi", "k"}) {
    if (auto it = in.jwk.find(field); it != in.jwk.end() && it->is_string()) {
      crypto::SecureWipe(it->get_ref<std::string&>());
    }
  }
  return Answer(made, call.request);
}

http::Response KeysApi::Get(const VaultCall& call) {
  return Answer(service_.Get(call.vault, Name(call), std::string(call.params.Get("version"))),
                call.request);
}

http::Response KeysApi::Update(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  KeyPatch patch;
  if (auto it = body->find("key_ops"); it != body->end() && !it->is_null()) {
    auto ops = ReadStrings(*it, "key_ops");
    if (!ops.ok()) {
      return Error(ops.status());
    }
    patch.key_ops = *ops;
  }
  auto common = ReadCommon(*body);
  if (!common.ok()) {
    return Error(common.status());
  }
  if (common->exportable) {
    return Error(BadParameter("AKV.SKR.1004: Exportable keys must have release policy."));
  }
  patch.tags_json = common->tags_json;
  patch.enabled = common->enabled;
  patch.nbf = common->nbf;
  patch.exp = common->exp;
  patch.has_release_policy = common->has_release_policy;
  return Answer(
      service_.Update(call.vault, Name(call), std::string(call.params.Get("version")), patch),
      call.request);
}

http::Response KeysApi::Delete(const VaultCall& call) {
  return Answer(service_.Delete(call.vault, Name(call)), call.request);
}

http::Response KeysApi::GetDeleted(const VaultCall& call) {
  return Answer(service_.GetDeleted(call.vault, Name(call)), call.request);
}

http::Response KeysApi::Recover(const VaultCall& call) {
  return Answer(service_.Recover(call.vault, Name(call)), call.request);
}

http::Response KeysApi::Purge(const VaultCall& call) {
  Status s = service_.Purge(call.vault, Name(call));
  return s.ok() ? http::EmptyResponse(204) : Error(s);
}

http::Response KeysApi::Backup(const VaultCall& call) {
  return BackupAnswer(service_.Backup(call.vault, Name(call)));
}

http::Response KeysApi::Restore(const VaultCall& call) {
  auto blob = ReadBackupBlob(call.request);
  if (!blob.ok()) {
    return Error(blob.status());
  }
  return Answer(service_.Restore(call.vault, *blob), call.request);
}

http::Response KeysApi::Rotate(const VaultCall& call) {
  return Answer(service_.Rotate(call.vault, Name(call)), call.request);
}

namespace {

http::Response PolicyAnswer(const StatusOr<Json>& policy, const VaultCall& call) {
  if (!policy.ok()) {
    return Error(policy.status());
  }
  Json out = *policy;
  out["id"] = BaseUrl(call.request) + "/keys/" + Name(call) + "/rotationpolicy";
  return http::JsonResponse(200, ToJson(out));
}

}  // namespace

http::Response KeysApi::GetRotationPolicy(const VaultCall& call) {
  return PolicyAnswer(service_.GetRotationPolicy(call.vault, Name(call)), call);
}

http::Response KeysApi::SetRotationPolicy(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  return PolicyAnswer(service_.SetRotationPolicy(call.vault, Name(call), *body), call);
}

StatusOr<KeysApi::OperationRequest> KeysApi::ReadOperation(const http::Request& request,
                                                           KeyOperation op) {
  ASSIGN_OR_RETURN(Json body, ParseBody(request));
  auto alg = body.find("alg");
  if (alg == body.end() || !alg->is_string()) {
    return BadParameter("Property 'alg' is required.");
  }
  for (const char* aes_only : {"iv", "aad", "tag"}) {
    if (auto it = body.find(aes_only); it != body.end() && !it->is_null()) {
      return BadParameter(std::string("Property '") + aes_only +
                          "' applies to AES keys, which this vault does not hold.");
    }
  }
  OperationRequest out;
  out.alg = alg->get<std::string>();
  bool verify = op == KeyOperation::kVerify;
  ASSIGN_OR_RETURN(out.value, ReadBinary(body, verify ? "digest" : "value"));
  if (verify) {
    ASSIGN_OR_RETURN(out.signature, ReadBinary(body, "value"));
  }
  return out;
}

http::Response KeysApi::Operate(const VaultCall& call, KeyOperation op) {
  auto in = ReadOperation(call.request, op);
  if (!in.ok()) {
    return Error(in.status());
  }
  std::string name = Name(call);
  auto result = service_.Operate(call.vault, name, std::string(call.params.Get("version")), op,
                                 in->alg, in->value, in->signature);
  crypto::SecureWipe(in->value);
  return OperationAnswer(call, name, op, std::move(result));
}

std::optional<http::Response> KeysApi::OperateCached(const VaultCall& call, KeyOperation op) {
  if (call.request.Query("api-version").empty()) {
    return std::nullopt;
  }
  auto in = ReadOperation(call.request, op);
  if (!in.ok()) {
    return std::nullopt;  // the worker answers with the error
  }
  std::string name = Name(call);
  auto result = service_.OperateCached(call.vault, name, std::string(call.params.Get("version")),
                                       op, in->alg, in->value, in->signature);
  crypto::SecureWipe(in->value);
  if (!result) {
    return std::nullopt;
  }
  return OperationAnswer(call, name, op, *std::move(result));
}

http::Response KeysApi::OperationAnswer(const VaultCall& call, const std::string& name,
                                        KeyOperation op, StatusOr<KeyOperationResult> result) {
  if (!result.ok()) {
    return Error(result.status());
  }
  if (op == KeyOperation::kVerify) {
    return http::JsonResponse(200, ToJson(Json{{"value", result->verified}}));
  }
  std::string body_text = ToJson(Json{{"kid", Kid(call.request, name, result->kid_version)},
                                      {"value", Base64UrlEncode(result->value)}});
  crypto::SecureWipe(result->value);
  return http::JsonResponse(200, std::move(body_text));
}

http::Response KeysApi::RandomBytes(const VaultCall& call) {
  auto body = ParseBody(call.request);
  if (!body.ok()) {
    return Error(body.status());
  }
  auto count = body->find("count");
  if (count == body->end() || !count->is_number_integer() || count->get<int64_t>() < 1 ||
      count->get<int64_t>() > kMaxRandomBytes) {
    return Error(
        BadParameter("GetRandomBytesRequest: count cannot be greater than 128 or less than 1."));
  }
  std::string bytes = crypto::RandomBytes(static_cast<size_t>(count->get<int64_t>()));
  return http::JsonResponse(200, ToJson(Json{{"value", Base64UrlEncode(bytes)}}));
}

std::vector<VaultOperation> KeysApi::Operations() {
  using Handler = std::function<http::Response(const VaultCall&)>;
  auto route = [](std::string_view method, std::string_view pattern, std::string_view operation,
                  std::string_view object, Handler handler, bool changes_nothing) {
    VaultOperation o = ApiRoute(method, pattern, operation, object, std::move(handler));
    o.changes_nothing = changes_nothing;
    return o;
  };
  using Handle = http::Response (KeysApi::*)(const VaultCall&);
  auto op = [this, route](std::string_view method, std::string_view pattern,
                          std::string_view operation, std::string_view object, Handle handle,
                          bool changes_nothing = false) {
    return route(
        method, pattern, operation, object,
        [this, handle](const VaultCall& call) { return (this->*handle)(call); }, changes_nothing);
  };
  // The operations with a key version: they change nothing, and are
  // answered on the I/O thread when the key is opened and cheap to use.
  auto crypto = [this, route](std::string_view path, std::string_view operation,
                              KeyOperation kind) {
    VaultOperation o = route(
        "POST", path, operation, "name",
        [this, kind](const VaultCall& call) { return Operate(call, kind); }, true);
    o.fast = [this, kind](const VaultCall& call) { return OperateCached(call, kind); };
    return o;
  };
  // Key Vault's keys REST surface (docs/keys.md). An empty version
  // ("/keys/{name}/", "/keys/{name}//sign") names the latest.
  return {
      op("GET", "/keys", "KeyList", "", &KeysApi::List),
      op("POST", "/keys/restore", "KeyRestore", "", &KeysApi::Restore),
      op("POST", "/keys/{name}/create", "KeyCreate", "name", &KeysApi::Create),
      op("PUT", "/keys/{name}", "KeyImport", "name", &KeysApi::Import),
      op("GET", "/keys/{name}", "KeyGet", "name", &KeysApi::Get),
      op("GET", "/keys/{name}/versions", "KeyListVersions", "name", &KeysApi::ListVersions),
      op("GET", "/keys/{name}/{version?}", "KeyGet", "name", &KeysApi::Get),
      op("PATCH", "/keys/{name}", "KeyUpdate", "name", &KeysApi::Update),
      op("PATCH", "/keys/{name}/{version?}", "KeyUpdate", "name", &KeysApi::Update),
      op("DELETE", "/keys/{name}", "KeyDelete", "name", &KeysApi::Delete),
      op("POST", "/keys/{name}/backup", "KeyBackup", "name", &KeysApi::Backup),
      op("POST", "/keys/{name}/rotate", "KeyRotate", "name", &KeysApi::Rotate),
      op("GET", "/keys/{name}/rotationpolicy", "KeyRotationPolicyGet", "name",
         &KeysApi::GetRotationPolicy),
      op("PUT", "/keys/{name}/rotationpolicy", "KeyRotationPolicySet", "name",
         &KeysApi::SetRotationPolicy),
      crypto("/keys/{name}/{version?}/encrypt", "KeyEncrypt", KeyOperation::kEncrypt),
      crypto("/keys/{name}/{version?}/decrypt", "KeyDecrypt", KeyOperation::kDecrypt),
      crypto("/keys/{name}/{version?}/wrapkey", "KeyWrap", KeyOperation::kWrapKey),
      crypto("/keys/{name}/{version?}/unwrapkey", "KeyUnwrap", KeyOperation::kUnwrapKey),
      crypto("/keys/{name}/{version?}/sign", "KeySign", KeyOperation::kSign),
      crypto("/keys/{name}/{version?}/verify", "KeyVerify", KeyOperation::kVerify),
      op("GET", "/deletedkeys", "KeyListDeleted", "", &KeysApi::ListDeleted),
      op("GET", "/deletedkeys/{name}", "KeyGetDeleted", "name", &KeysApi::GetDeleted),
      op("DELETE", "/deletedkeys/{name}", "KeyPurge", "name", &KeysApi::Purge),
      op("POST", "/deletedkeys/{name}/recover", "KeyRecover", "name", &KeysApi::Recover),
      op("POST", "/rng", "GetRandomBytes", "", &KeysApi::RandomBytes, true),
  };
}

}  // namespace coffer::keyvault
