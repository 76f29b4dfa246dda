#pragma once

// The node agent's YAML adapter: the one place that sees yaml-cpp
// (tools/check_layering.py). It turns YAML text into a small owned tree,
// YamlNode, so that the parsers of SecretProviderClass manifests, the Azure
// `objects` parameter, Kubernetes Secrets and the agent's config file work on
// plain C++ values and never on yaml-cpp types or its exceptions.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/strings.h"  // QuoteForError, for the parsers built on this

namespace coffer::agent {

struct YamlMember;

// One YAML node, copied out of the parser. Aliases are expanded (copied), so
// the tree is finite and owns everything; YamlLimits bound what that costs.
struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };

  Kind kind = Kind::kNull;
  // kScalar: the scalar's text, after YAML's quoting and folding rules.
  std::string scalar;
  // kScalar: true when written plain (no quotes, no block indicator `|`/`>`,
  // no tag), i.e. when a YAML schema would resolve `true`, `1` or `1.5` to a
  // non-string. The parsers built on this tree take plain scalars as text
  // anyway (see ScalarText below).
  bool plain = false;
  // Explicit tag, e.g. "tag:yaml.org,2002:str" for `!!str`; empty otherwise.
  std::string tag;
  // 1-based line of the node in the parsed text (0 when unknown).
  int line = 0;
  std::vector<YamlNode> items;      // kSequence
  std::vector<YamlMember> members;  // kMap, document order

  bool IsNull() const { return kind == Kind::kNull; }
  bool IsScalar() const { return kind == Kind::kScalar; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsMap() const { return kind == Kind::kMap; }

  // Find returns the member `key` of a map, or nullptr when this is not a map
  // or has no such member. Map keys are unique (ParseYamlDocuments refuses
  // duplicates), so there is at most one.
  const YamlNode* Find(std::string_view key) const;
};

// One member of a map. (Not a std::pair: a pair may not hold the incomplete
// YamlNode inside YamlNode's own definition, and clang refuses it.)
struct YamlMember {
  std::string key;
  YamlNode value;
};

// Bounds on what hostile YAML may cost. Exceeding one is kInvalidArgument.
struct YamlLimits {
  size_t max_bytes = 1 << 20;         // input text
  size_t max_documents = 64;          // `---` separated documents
  int max_depth = 32;                 // nesting of sequences and maps
  size_t max_nodes = 100000;          // all nodes of all documents, aliases expanded
  size_t max_scalar_bytes = 4 << 20;  // all scalar text, aliases expanded
};

// ParseYamlDocuments parses a multi-document YAML stream. Empty documents
// come back as kNull nodes; an empty text gives no documents. Map keys must
// be scalars and unique within their map.
//
// Returns kInvalidArgument for malformed YAML (the message names the line and
// the parser's complaint, never scalar text), for non-scalar, null or
// duplicate map keys, and when a limit is exceeded (including the parser's
// own recursion guard), and for a NUL byte anywhere in `text`. Every yaml-cpp
// exception is caught here; none leaves this function.
// Thread-safe (no shared state).
StatusOr<std::vector<YamlNode>> ParseYamlDocuments(std::string_view text, const YamlLimits& limits);

// Helpers shared by the parsers built on YamlNode.

// ScalarText returns the text of a scalar node, "" for a null node, and
// kInvalidArgument naming `what` for a sequence or a map. Plain scalars such
// as `true` or `42` are taken as their text: Kubernetes would refuse them in a
// map[string]string, but the meaning of `usePodIdentity: true` is not in doubt
// and refusing it would only make hand-written files fail.
StatusOr<std::string> ScalarText(const YamlNode& node, std::string_view what);

// KindName returns "null", "scalar", "sequence" or "map".
std::string_view KindName(YamlNode::Kind kind);

}  // namespace coffer::agent
