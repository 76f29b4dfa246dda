#include "cli/vault_objects.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/cli_util.h"
#include "common/encoding.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "http/url.h"

#include <sys/stat.h>

namespace coffer::cli {

void AddObjectTarget(CLI::App* cmd, ObjectArgs& a, std::string_view noun,
                     std::string_view collection, bool with_version) {
  std::string n(noun);
  std::string lower = n;
  for (char& ch : lower) {
    ch = AsciiToLower(ch);
  }
  cmd->add_option("--vault-name", a.vault, "Vault name");
  cmd->add_option("--name,-n", a.name, n + " name");
  if (with_version) {
    cmd->add_option("--version,-v", a.version, n + " version (default: latest)");
    cmd->add_option("--id", a.id,
                    "Full " + lower + " id https://<vault>.../" + std::string(collection) +
                        "/<name>[/<version>]");
  }
}

std::pair<std::string, std::string> ResolveObject(const client::ApiClient& c, ObjectArgs& a,
                                                  std::string_view collection) {
  std::string base;
  std::string host;
  if (!a.id.empty()) {
    std::string prefix = "/" + std::string(collection) + "/";
    StatusOr<http::Url> id = http::ParseUrl(a.id);
    std::string_view path = id.ok() ? id->Path() : "";
    if (!id.ok() || !id->tls() || id->ipv6 || !StartsWith(path, prefix) ||
        path.size() != id->path_and_query.size()) {
      Usage("--id must look like https://<vault>.<suffix>" + prefix + "<name>[/<version>]");
    }
    base = id->Origin();
    host = id->Authority();
    auto rest = Split(path.substr(prefix.size()), '/');
    a.name = std::string(rest[0]);
    if (rest.size() > 1) {
      a.version = std::string(rest[1]);
    }
  } else {
    if (a.vault.empty()) {
      Usage("--vault-name or --id is required");
    }
    base = c.config().VaultUrl(a.vault);
    host = base.substr(8);
  }
  // The resource is the vault host without its first label.
  size_t dot = host.find('.');
  return {base, "https://" + (dot == std::string::npos ? host : host.substr(dot + 1))};
}

void RequireName(const ObjectArgs& a) {
  if (a.name.empty()) {
    Usage("--name is required");
  }
}

std::string KvUrl(const std::string& base, const std::string& path, const std::string& query) {
  return base + path + "?api-version=" + kKvApiVersion + query;
}

Json ListAll(client::ApiClient& c, const std::string& url, const std::string& resource) {
  Json all = Json::array();
  std::string next = url;
  while (!next.empty()) {
    Json page = Expect(c.Call("GET", next, resource), {200});
    for (const auto& item : page.value("value", Json::array())) {
      all.push_back(item);
    }
    next = page.contains("nextLink") && page["nextLink"].is_string()
               ? page["nextLink"].get<std::string>()
               : "";
  }
  return all;
}

int64_t ParseTime(const std::string& text, const char* flag) {
  if (!text.empty() && text.size() < 12 &&
      text.find_first_not_of("0123456789") == std::string::npos) {
    return std::stoll(text);
  }
  auto t = ParseIsoTime(text);
  if (!t) {
    Usage(std::string("argument ") + flag +
          ": expected ISO 8601 UTC time, e.g. 2027-01-31T00:00:00Z");
  }
  return *t;
}

bool ParseBool(const std::string& text, const char* flag) {
  if (text != "true" && text != "false") {
    Usage(std::string(flag) + " must be true or false");
  }
  return text == "true";
}

std::string ReadFileOrUsage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Usage("cannot read " + path);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Json ReadJsonArg(const std::string& value, const char* flag) {
  std::string text = value;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') {
    text = ReadFileOrUsage(!text.empty() && text[0] == '@' ? text.substr(1) : text);
  }
  auto json = ParseJson(text, 16);
  if (!json || !json->is_object()) {
    Usage(std::string(flag) + " is not a JSON object");
  }
  return *json;
}

void RefuseExisting(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    Fail(AlreadyExistsError("File or directory named '" + path + "' already exists."));
  }
}

void WriteFileOrUsage(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  f.close();
  if (!f) {
    std::remove(path.c_str());
    Usage("cannot write " + path);
  }
}

void AddObjectCommands(CLI::App* group, std::string_view noun, std::string_view collection,
                       std::initializer_list<ListCommand> lists,
                       std::initializer_list<ObjectCommand> commands) {
  const std::string kind(collection);
  for (const ListCommand& l : lists) {
    auto* cmd = group->add_subcommand(l.verb, l.help);
    auto a = std::make_shared<ObjectArgs>();
    auto max = std::make_shared<int>(0);
    AddObjectTarget(cmd, *a, noun, collection, false);
    cmd->add_option("--maxresults", *max, "Page size, 1-25");
    std::string pattern = l.path;
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveObject(c, *a, kind);
      std::string path = pattern;
      if (size_t at = path.find("{name}"); at != std::string::npos) {
        RequireName(*a);
        path.replace(at, 6, a->name);
      }
      std::string q = *max > 0 ? "&maxresults=" + std::to_string(*max) : "";
      Print(ListAll(c, KvUrl(base, path, q), resource));
    });
  }
  for (const ObjectCommand& o : commands) {
    auto* cmd = group->add_subcommand(o.verb, o.help);
    auto a = std::make_shared<ObjectArgs>();
    AddObjectTarget(cmd, *a, noun, collection, false);
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveObject(c, *a, kind);
      RequireName(*a);
      Json out = Expect(
          c.Call(o.method, KvUrl(base, o.path_prefix + a->name + o.path_suffix), resource), {o.ok});
      if (!out.is_null()) {
        Print(out);
      }
    });
  }
}

void AddBackupCommands(CLI::App* group, std::string_view noun, std::string_view collection) {
  const std::string kind(collection);
  {
    auto* cmd = group->add_subcommand(
        "backup", "Back up a " + AsciiLower(std::string(noun)) + " (every version) to a file");
    auto a = std::make_shared<ObjectArgs>();
    auto file = std::make_shared<std::string>();
    AddObjectTarget(cmd, *a, noun, collection, false);
    cmd->add_option("--file,-f", *file, "Output file")->required();
    cmd->callback([=] {
      auto c = MakeClient();
      auto [base, resource] = ResolveObject(c, *a, kind);
      RequireName(*a);
      Json out = Expect(
          c.Call("POST", KvUrl(base, "/" + kind + "/" + a->name + "/backup"), resource), {200});
      auto blob = Base64UrlDecode(out.value("value", ""));
      if (!blob) {
        Fail(InternalError("the server returned a malformed backup"));
      }
      WriteFileOrUsage(*file, *blob);
    });
  }
  {
    auto* cmd = group->add_subcommand(
        "restore", "Restore a " + AsciiLower(std::string(noun)) + " from a backup file");
    auto a = std::make_shared<ObjectArgs>();
    auto file = std::make_shared<std::string>();
    AddObjectTarget(cmd, *a, noun, collection, false);
    cmd->add_option("--file,-f", *file, "Backup file")->required();
    cmd->callback([=] {
      Json body = {{"value", Base64UrlEncode(ReadFileOrUsage(*file))}};
      auto c = MakeClient();
      auto [base, resource] = ResolveObject(c, *a, kind);
      Print(Expect(c.Call("POST", KvUrl(base, "/" + kind + "/restore"), resource, ToJson(body)),
                   {200}));
    });
  }
}

}  // namespace coffer::cli
