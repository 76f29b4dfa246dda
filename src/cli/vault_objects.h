#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <CLI/CLI.hpp>

#include "client/api_client.h"
#include "common/json.h"

namespace coffer::cli {

// What the data-plane commands (`coffer keyvault secret|key ...`) share: how
// they name a vault object, build its URL and read their common flags. Every
// failure exits the process with cli_util.h's conventions.

// The api-version the commands send on the vault data plane.
inline constexpr char kKvApiVersion[] = "7.5";

// ObjectArgs are the flags that name one object: --vault-name and --name,
// or --id (its full URL), and optionally --version.
struct ObjectArgs {
  std::string vault;
  std::string name;
  std::string version;
  std::string id;
};

// AddObjectTarget adds --vault-name and --name,-n to `cmd`, and with
// `with_version` also --version,-v and --id. `noun` names the object in
// the help ("Secret", "Key"); `collection` is its path segment ("secrets",
// "keys"). The structure must outlive the command.
void AddObjectTarget(CLI::App* cmd, ObjectArgs& args, std::string_view noun,
                     std::string_view collection, bool with_version);

// ResolveObject returns (the vault's base URL, the token resource for it)
// and fills name and version from --id when it is given. A usage error when
// neither --vault-name nor a well-formed --id under /<collection>/ is given.
std::pair<std::string, std::string> ResolveObject(const client::ApiClient& c, ObjectArgs& args,
                                                  std::string_view collection);

// RequireName is a usage error when --name (or --id) named no object.
void RequireName(const ObjectArgs& args);

// KvUrl is `base` + `path` with the api-version and `query` ("&k=v...").
std::string KvUrl(const std::string& base, const std::string& path, const std::string& query = "");

// ListAll GETs `url` and every nextLink after it and returns the items of
// all pages as one array.
Json ListAll(client::ApiClient& c, const std::string& url, const std::string& resource);

// A listing command of an object group: `verb` prints every page of `path`
// ("{name}" stands for --name, which it then requires), with --maxresults.
struct ListCommand {
  const char* verb;
  const char* help;
  const char* path;
};
// A command that sends `method` to path_prefix + name + path_suffix, expects
// `ok` and prints the answer (nothing for an empty one).
struct ObjectCommand {
  const char* verb;
  const char* help;
  const char* method;
  const char* path_prefix;
  const char* path_suffix;
  int ok;
};
// AddObjectCommands registers `lists` and `commands` on `group`, whose
// objects are named as AddObjectTarget says for `noun` and `collection`.
void AddObjectCommands(CLI::App* group, std::string_view noun, std::string_view collection,
                       std::initializer_list<ListCommand> lists,
                       std::initializer_list<ObjectCommand> commands);

// AddBackupCommands registers `backup` (every version of an object to
// --file) and `restore` (an object from --file) on `group`, as az's.
void AddBackupCommands(CLI::App* group, std::string_view noun, std::string_view collection);

// ParseTime reads --expires/--not-before: Unix seconds or ISO 8601 UTC
// (2027-01-31T00:00:00Z). A usage error naming `flag` otherwise.
int64_t ParseTime(const std::string& text, const char* flag);

// ParseBool reads a true/false flag value; a usage error naming `flag`
// otherwise.
bool ParseBool(const std::string& text, const char* flag);

// ReadFileOrUsage returns the bytes of `path`, or is a usage error naming it.
std::string ReadFileOrUsage(const std::string& path);

// RefuseExisting fails (exit 1, as az's downloads) when `path` exists.
void RefuseExisting(const std::string& path);
// WriteFileOrUsage writes `bytes` to `path`; a usage error, the file
// removed, when it cannot.
void WriteFileOrUsage(const std::string& path, std::string_view bytes);

// ReadJsonArg reads a flag that takes a JSON object as az does: the JSON
// itself, or a file holding it (a leading @ is allowed). A usage error
// naming `flag` when it is not a JSON object.
Json ReadJsonArg(const std::string& value, const char* flag);

}  // namespace coffer::cli
