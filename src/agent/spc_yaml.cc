#include "agent/spc_yaml.h"

#include <set>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace coffer::agent {

const YamlNode* YamlNode::Find(std::string_view key) const {
  if (kind != Kind::kMap) {
    return nullptr;
  }
  for (const auto& [name, value] : members) {
    if (name == key) {
      return &value;
    }
  }
  return nullptr;
}

std::string_view KindName(YamlNode::Kind kind) {
  switch (kind) {
    case YamlNode::Kind::kNull:
      return "null";
    case YamlNode::Kind::kScalar:
      return "scalar";
    case YamlNode::Kind::kSequence:
      return "sequence";
    case YamlNode::Kind::kMap:
      return "map";
  }
  return "unknown";
}

StatusOr<std::string> ScalarText(const YamlNode& node, std::string_view what) {
  if (node.IsNull()) {
    return std::string();
  }
  if (!node.IsScalar()) {
    return InvalidArgumentError(std::string(what) + " must be a string, not a " +
                                std::string(KindName(node.kind)) +
                                (node.line > 0 ? " (line " + std::to_string(node.line) + ")" : ""));
  }
  return node.scalar;
}

namespace {

// Copies yaml-cpp's node graph into YamlNode trees. yaml-cpp shares the node
// of an anchor between all its aliases, and an anchor may even be referenced
// from inside itself (`&a [*a]` is a cycle), so the copy is where the real
// size of the document appears.
class Copier {
 public:
  explicit Copier(const YamlLimits& limits) : limits_(limits) {}

  Status Copy(const YAML::Node& in, int depth, YamlNode& out) {
    // SECURITY: count every node as it is expanded, so that an alias bomb
    // (`b: [*a, *a, ...]` nested a few times) or a self-referencing anchor
    // stops at the limit instead of exhausting memory or the stack.
    if (++nodes_ > limits_.max_nodes) {
      return InvalidArgumentError("YAML has more than " + std::to_string(limits_.max_nodes) +
                                  " nodes (aliases expanded)");
    }
    const YAML::Mark mark = in.Mark();
    out.line = mark.line >= 0 ? mark.line + 1 : 0;
    switch (in.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out.kind = YamlNode::Kind::kNull;
        return OkStatus();
      case YAML::NodeType::Scalar:
        out.kind = YamlNode::Kind::kScalar;
        SetTag(in.Tag(), out);
        scalar_bytes_ += in.Scalar().size();
        if (scalar_bytes_ > limits_.max_scalar_bytes) {
          return InvalidArgumentError("YAML has more than " +
                                      std::to_string(limits_.max_scalar_bytes) +
                                      " bytes of scalar text (aliases expanded)");
        }
        out.scalar = in.Scalar();
        return OkStatus();
      case YAML::NodeType::Sequence:
      case YAML::NodeType::Map:
        break;
    }
    if (depth >= limits_.max_depth) {
      return InvalidArgumentError("YAML nests deeper than " + std::to_string(limits_.max_depth) +
                                  " levels (line " + std::to_string(out.line) + ")");
    }
    SetTag(in.Tag(), out);
    if (in.IsSequence()) {
      out.kind = YamlNode::Kind::kSequence;
      for (const YAML::Node& item : in) {
        out.items.emplace_back();
        RETURN_IF_ERROR(Copy(item, depth + 1, out.items.back()));
      }
      return OkStatus();
    }
    out.kind = YamlNode::Kind::kMap;
    std::set<std::string> seen;
    for (const auto& pair : in) {
      YamlNode key;
      RETURN_IF_ERROR(Copy(pair.first, depth + 1, key));
      if (!key.IsScalar()) {
        return InvalidArgumentError("YAML map key at line " + std::to_string(key.line) +
                                    " must be a string, not a " + std::string(KindName(key.kind)));
      }
      if (!seen.insert(key.scalar).second) {
        return InvalidArgumentError("YAML map at line " + std::to_string(out.line) +
                                    " has the key " + QuoteForError(key.scalar) + " twice");
      }
      out.members.push_back(YamlMember{std::move(key.scalar), YamlNode()});
      RETURN_IF_ERROR(Copy(pair.second, depth + 1, out.members.back().value));
    }
    return OkStatus();
  }

 private:
  // yaml-cpp reports "?" for an untagged plain node and "!" for an untagged
  // quoted or block scalar.
  static void SetTag(const std::string& tag, YamlNode& out) {
    if (tag == "?") {
      out.plain = out.kind == YamlNode::Kind::kScalar;
    } else if (tag != "!") {
      out.tag = tag;
    }
  }

  const YamlLimits& limits_;
  size_t nodes_ = 0;
  size_t scalar_bytes_ = 0;
};

// EventCounter counts the parser's events and keeps nothing.
class EventCounter : public YAML::EventHandler {
 public:
  size_t events = 0;
  void OnDocumentStart(const YAML::Mark&) override { ++events; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override { ++events; }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { ++events; }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    ++events;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    ++events;
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    ++events;
  }
  void OnMapEnd() override {}
};

// CheckDocuments runs the parser alone, one document at a time, before
// YAML::LoadAll builds anything. yaml-cpp 0.7 never ends on some short
// inputs: a `,` where a block node should start (",", "- a\n,") yields empty
// documents without end, and LoadAll keeps them all until memory runs out.
// Counting documents here stops that at the limit, holding nothing.
// yaml-cpp's exceptions propagate to the caller.
Status CheckDocuments(const std::string& text, const YamlLimits& limits) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  EventCounter counter;
  size_t documents = 0;
  while (parser.HandleNextDocument(counter)) {
    if (++documents > limits.max_documents) {
      return InvalidArgumentError("YAML has more documents than the limit of " +
                                  std::to_string(limits.max_documents));
    }
    if (counter.events > limits.max_nodes) {
      return InvalidArgumentError("YAML has more nodes than the limit of " +
                                  std::to_string(limits.max_nodes));
    }
  }
  return OkStatus();
}

std::string Where(const YAML::Mark& mark) {
  if (mark.line < 0) {
    return "";
  }
  return " at line " + std::to_string(mark.line + 1) + ", column " +
         std::to_string(mark.column + 1);
}

}  // namespace

StatusOr<std::vector<YamlNode>> ParseYamlDocuments(std::string_view text,
                                                   const YamlLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return InvalidArgumentError("YAML is " + std::to_string(text.size()) +
                                " bytes, more than the limit of " +
                                std::to_string(limits.max_bytes));
  }
  // YAML does not allow NUL, and yaml-cpp's scanner misreads it rather than
  // refusing it.
  if (text.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("YAML contains a NUL byte");
  }
  try {
    const std::string copy(text);
    RETURN_IF_ERROR(CheckDocuments(copy, limits));
    std::vector<YAML::Node> parsed = YAML::LoadAll(copy);
    Copier copier(limits);
    std::vector<YamlNode> docs(parsed.size());
    for (size_t i = 0; i < parsed.size(); ++i) {
      RETURN_IF_ERROR(copier.Copy(parsed[i], 0, docs[i]));
    }
    return docs;
  } catch (const YAML::DeepRecursion& e) {
    return InvalidArgumentError("YAML nests too deeply" + Where(e.mark));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("malformed YAML" + Where(e.mark) + ": " + e.msg);
  } catch (...) {
    return InvalidArgumentError("YAML could not be parsed");
  }
}

}  // namespace coffer::agent
