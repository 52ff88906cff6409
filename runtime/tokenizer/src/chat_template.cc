// The Jinja subset of chat templates (chat_template.h): a lexer with
// transformers' whitespace rules, a recursive-descent parser following
// Jinja's grammar and precedence, and a tree-walking interpreter whose
// value semantics follow @huggingface/jinja (the reference the tests
// compare with), which itself follows Python's Jinja.
#include "lockstep/tokenizer/chat_template.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <variant>

#include "utf8.h"

namespace lockstep::runtime {
namespace {

// ---------------------------------------------------------------- errors

struct TemplateError {
  int line;
  std::string message;
};

[[noreturn]] void Throw(int line, std::string message) {
  throw TemplateError{line, std::move(message)};
}

// ---------------------------------------------------------------- values

struct Value;
using Array = std::vector<Value>;
struct Object;
struct Macro;
using Builtin = std::function<Value(std::vector<Value>&,
                                    std::vector<std::pair<std::string, Value>>&, int line)>;

struct Value {
  enum class Type { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kFunction };
  Type type = Type::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<Array> array;
  std::shared_ptr<Object> object;  // also namespaces (is_namespace)
  std::shared_ptr<Builtin> function;

  static Value None() { return Of(Type::kNone); }
  static Value Bool(bool v) {
    Value x = Of(Type::kBool);
    x.b = v;
    return x;
  }
  static Value Int(int64_t v) {
    Value x = Of(Type::kInt);
    x.i = v;
    return x;
  }
  static Value Float(double v) {
    Value x = Of(Type::kFloat);
    x.f = v;
    return x;
  }
  static Value Str(std::string v) {
    Value x = Of(Type::kString);
    x.s = std::move(v);
    return x;
  }
  static Value List(Array items = {}) {
    Value x = Of(Type::kArray);
    x.array = std::make_shared<Array>(std::move(items));
    return x;
  }
  static Value Dict();
  static Value Function(Builtin fn) {
    Value x = Of(Type::kFunction);
    x.function = std::make_shared<Builtin>(std::move(fn));
    return x;
  }
  static Value Of(Type t) {
    Value x;
    x.type = t;
    return x;
  }
  bool is(Type t) const { return type == t; }
  bool undefined() const { return type == Type::kUndefined; }
  bool numeric() const { return type == Type::kInt || type == Type::kFloat; }
  double number() const { return type == Type::kInt ? static_cast<double>(i) : f; }
};

struct Object {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;
  const Value* Find(std::string_view key) const {
    for (const auto& [k, v] : items) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  void Set(const std::string& key, Value v) {
    for (auto& [k, old] : items) {
      if (k == key) {
        old = std::move(v);
        return;
      }
    }
    items.emplace_back(key, std::move(v));
  }
};

Value Value::Dict() {
  Value x = Of(Type::kObject);
  x.object = std::make_shared<Object>();
  return x;
}

const char* TypeName(const Value& v) {
  switch (v.type) {
    case Value::Type::kUndefined:
      return "undefined";
    case Value::Type::kNone:
      return "none";
    case Value::Type::kBool:
      return "boolean";
    case Value::Type::kInt:
      return "integer";
    case Value::Type::kFloat:
      return "float";
    case Value::Type::kString:
      return "string";
    case Value::Type::kArray:
      return "list";
    case Value::Type::kObject:
      return v.object->is_namespace ? "namespace" : "dict";
    case Value::Type::kFunction:
      return "function";
  }
  return "?";
}

bool Truthy(const Value& v) {
  switch (v.type) {
    case Value::Type::kUndefined:
    case Value::Type::kNone:
      return false;
    case Value::Type::kBool:
      return v.b;
    case Value::Type::kInt:
      return v.i != 0;
    case Value::Type::kFloat:
      return v.f != 0;
    case Value::Type::kString:
      return !v.s.empty();
    case Value::Type::kArray:
      return !v.array->empty();
    case Value::Type::kObject:
      return !v.object->items.empty();
    case Value::Type::kFunction:
      return true;
  }
  return false;
}

std::string FormatFloat(double f) {
  if (f == 0 && std::signbit(f)) return "-0.0";
  if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 1e16) {
    return fmt::format("{:.1f}", f);
  }
  return fmt::format("{}", f);  // shortest round-trip, as JavaScript's
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += "\"";
  return out;
}

std::string ToJson(const Value& v, int indent, int depth, int line) {
  const std::string item_sep = indent > 0 ? "," : ", ";
  switch (v.type) {
    case Value::Type::kUndefined:
    case Value::Type::kNone:
      return "null";
    case Value::Type::kBool:
      return v.b ? "true" : "false";
    case Value::Type::kInt:
      return std::to_string(v.i);
    case Value::Type::kFloat:
      return std::isfinite(v.f) && v.f == std::floor(v.f) && std::fabs(v.f) < 1e16
                 ? fmt::format("{:.0f}", v.f)
                 : fmt::format("{}", v.f);
    case Value::Type::kString:
      return JsonString(v.s);
    case Value::Type::kArray:
    case Value::Type::kObject: {
      const std::string base = "\n" + std::string(static_cast<size_t>(indent * depth), ' ');
      const std::string child = base + std::string(static_cast<size_t>(indent), ' ');
      std::vector<std::string> parts;
      if (v.is(Value::Type::kArray)) {
        for (const Value& x : *v.array) parts.push_back(ToJson(x, indent, depth + 1, line));
      } else {
        for (const auto& [k, x] : v.object->items) {
          parts.push_back(JsonString(k) + ": " + ToJson(x, indent, depth + 1, line));
        }
      }
      const char open = v.is(Value::Type::kArray) ? '[' : '{';
      const char close = v.is(Value::Type::kArray) ? ']' : '}';
      std::string out(1, open);
      if (indent > 0 && !parts.empty()) {
        for (size_t k = 0; k < parts.size(); ++k) out += (k ? item_sep : "") + child + parts[k];
        out += base;
      } else {
        for (size_t k = 0; k < parts.size(); ++k) out += (k ? item_sep : "") + parts[k];
      }
      out.push_back(close);
      return out;
    }
    case Value::Type::kFunction:
      Throw(line, "tojson: a function is not JSON");
  }
  return "";
}

std::string Repr(const Value& v, int line);

// {{ value }}: what Jinja prints.
std::string Str(const Value& v, int line) {
  switch (v.type) {
    case Value::Type::kUndefined:
      return "";
    case Value::Type::kNone:
      return "None";
    case Value::Type::kBool:
      return v.b ? "True" : "False";
    case Value::Type::kInt:
      return std::to_string(v.i);
    case Value::Type::kFloat:
      return FormatFloat(v.f);
    case Value::Type::kString:
      return v.s;
    case Value::Type::kArray:
    case Value::Type::kObject:
      return Repr(v, line);
    case Value::Type::kFunction:
      Throw(line, "a function cannot be printed");
  }
  return "";
}

// Python's repr of lists and dicts ('a', ['x', 1], {'k': 'v'}).
std::string Repr(const Value& v, int line) {
  if (v.is(Value::Type::kString)) {
    const char quote =
        v.s.find('\'') != std::string::npos && v.s.find('"') == std::string::npos ? '"' : '\'';
    std::string out(1, quote);
    for (char c : v.s) {
      if (c == quote || c == '\\') out.push_back('\\');
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out.push_back(c);
    }
    out.push_back(quote);
    return out;
  }
  if (v.is(Value::Type::kArray)) {
    std::string out = "[";
    for (size_t k = 0; k < v.array->size(); ++k) {
      out += (k ? ", " : "") + Repr((*v.array)[k], line);
    }
    return out + "]";
  }
  if (v.is(Value::Type::kObject)) {
    std::string out = "{";
    size_t k = 0;
    for (const auto& [key, x] : v.object->items) {
      out += (k++ ? ", " : "") + Repr(Value::Str(key), line) + ": " + Repr(x, line);
    }
    return out + "}";
  }
  return Str(v, line);
}

bool Equal(const Value& a, const Value& b) {
  if (a.numeric() && b.numeric()) return a.number() == b.number();
  if (a.is(Value::Type::kBool) && b.numeric()) return (a.b ? 1.0 : 0.0) == b.number();
  if (b.is(Value::Type::kBool) && a.numeric()) return (b.b ? 1.0 : 0.0) == a.number();
  if (a.type != b.type) {
    // undefined == none, as JavaScript's loose equality in the reference.
    return (a.undefined() || a.is(Value::Type::kNone)) &&
           (b.undefined() || b.is(Value::Type::kNone));
  }
  switch (a.type) {
    case Value::Type::kUndefined:
    case Value::Type::kNone:
      return true;
    case Value::Type::kBool:
      return a.b == b.b;
    case Value::Type::kString:
      return a.s == b.s;
    case Value::Type::kArray:
      return a.array == b.array;  // identity, as the reference
    case Value::Type::kObject:
      return a.object == b.object;
    case Value::Type::kFunction:
      return a.function == b.function;
    default:
      return false;
  }
}

Value FromJson(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::None();
    case nlohmann::json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return Value::Int(j.get<int64_t>());
    case nlohmann::json::value_t::number_float:
      return Value::Float(j.get<double>());
    case nlohmann::json::value_t::string:
      return Value::Str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      Value v = Value::List();
      for (const auto& x : j) v.array->push_back(FromJson(x));
      return v;
    }
    case nlohmann::json::value_t::object: {
      Value v = Value::Dict();
      for (auto it = j.begin(); it != j.end(); ++it) v.object->Set(it.key(), FromJson(it.value()));
      return v;
    }
    default:
      return Value();
  }
}

// ---------------------------------------------------------------- lexer

enum class Tok {
  kText,
  kOpenStmt,
  kCloseStmt,
  kOpenExpr,
  kCloseExpr,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEnd
};

struct Token {
  Tok kind;
  std::string text;
  int line;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::vector<Token> Lex(std::string_view src) {
  // A single trailing newline is not part of the template (Jinja's
  // keep_trailing_newline = False).
  if (!src.empty() && src.back() == '\n') src.remove_suffix(1);
  std::vector<Token> tokens;
  size_t pos = 0;
  int line = 1;
  auto advance = [&](size_t n) {
    for (size_t k = 0; k < n && pos < src.size(); ++k) line += src[pos++] == '\n';
  };
  auto strip_last_text = [&](bool all_whitespace) {
    if (tokens.empty() || tokens.back().kind != Tok::kText) return;
    std::string& t = tokens.back().text;
    if (all_whitespace) {
      while (!t.empty() && IsSpace(t.back())) t.pop_back();
    }
    if (t.empty()) tokens.pop_back();
  };
  // lstrip_blocks: spaces and tabs from the start of a line to a block or
  // comment tag are dropped.
  auto lstrip_block = [&]() {
    if (tokens.empty() || tokens.back().kind != Tok::kText) return;
    std::string& t = tokens.back().text;
    size_t k = t.size();
    while (k > 0 && (t[k - 1] == ' ' || t[k - 1] == '\t')) --k;
    // The text before the spaces must end a line, or the spaces start the
    // template or follow the newline a trim_blocks tag ate.
    const bool line_start = k > 0 ? t[k - 1] == '\n' : tokens.back().line != 0;
    if (line_start) t.resize(k);
    if (t.empty()) tokens.pop_back();
  };
  auto skip_whitespace = [&]() {
    while (pos < src.size() && IsSpace(src[pos])) advance(1);
  };
  while (pos < src.size()) {
    // Text up to the next tag.
    size_t next = pos;
    while (next < src.size() &&
           !(src[next] == '{' && next + 1 < src.size() &&
             (src[next + 1] == '{' || src[next + 1] == '%' || src[next + 1] == '#'))) {
      ++next;
    }
    if (next > pos) {
      const int text_line = line;
      // Mark whether the text begins a line (for lstrip_blocks): line 0
      // means "starts at a line start" in the check above.
      const bool at_line_start = pos == 0 || src[pos - 1] == '\n';
      tokens.push_back(
          {Tok::kText, std::string(src.substr(pos, next - pos)), at_line_start ? 1 : 0});
      (void)text_line;
      advance(next - pos);
      if (pos >= src.size()) break;
    }
    const char kind = src[pos + 1];
    const int tag_line = line;
    const bool strip_before = pos + 2 < src.size() && src[pos + 2] == '-';
    if (kind == '#') {
      const size_t end = src.find("#}", pos + 2);
      if (end == std::string_view::npos) Throw(tag_line, "comment {# is not closed");
      const bool strip_after = end > pos + 2 && src[end - 1] == '-';
      if (strip_before) {
        strip_last_text(true);
      } else {
        lstrip_block();
      }
      advance(end + 2 - pos);
      if (strip_after) {
        skip_whitespace();
      } else if (pos < src.size() && src[pos] == '\n') {
        advance(1);  // trim_blocks
      }
      continue;
    }
    const bool statement = kind == '%';
    if (strip_before) {
      strip_last_text(true);
    } else if (statement) {
      lstrip_block();
    }
    tokens.push_back({statement ? Tok::kOpenStmt : Tok::kOpenExpr, "", tag_line});
    advance(strip_before ? 3 : 2);
    // Tokens inside the tag.
    const std::string_view close = statement ? "%}" : "}}";
    int brace_depth = 0;
    while (true) {
      skip_whitespace();
      if (pos >= src.size()) Throw(tag_line, fmt::format("tag is not closed with '{}'", close));
      const bool dash_close = src[pos] == '-' && src.substr(pos + 1, 2) == close;
      if ((src.substr(pos, 2) == close && brace_depth == 0) || dash_close) {
        tokens.push_back({statement ? Tok::kCloseStmt : Tok::kCloseExpr, "", line});
        advance(dash_close ? 3 : 2);
        if (dash_close) {
          skip_whitespace();
        } else if (statement && pos < src.size() && src[pos] == '\n') {
          advance(1);  // trim_blocks
        }
        break;
      }
      const char c = src[pos];
      const int tok_line = line;
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t end = pos;
        while (end < src.size() &&
               (std::isalnum(static_cast<unsigned char>(src[end])) || src[end] == '_')) {
          ++end;
        }
        tokens.push_back({Tok::kName, std::string(src.substr(pos, end - pos)), tok_line});
        advance(end - pos);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t end = pos;
        bool is_float = false;
        while (end < src.size() &&
               (std::isdigit(static_cast<unsigned char>(src[end])) || src[end] == '_')) {
          ++end;
        }
        if (end + 1 < src.size() && src[end] == '.' &&
            std::isdigit(static_cast<unsigned char>(src[end + 1]))) {
          is_float = true;
          ++end;
          while (end < src.size() && std::isdigit(static_cast<unsigned char>(src[end]))) ++end;
        }
        std::string digits;
        for (char d : src.substr(pos, end - pos)) {
          if (d != '_') digits.push_back(d);
        }
        tokens.push_back({is_float ? Tok::kFloat : Tok::kInt, digits, tok_line});
        advance(end - pos);
      } else if (c == '\'' || c == '"') {
        std::string value;
        size_t k = pos + 1;
        while (true) {
          if (k >= src.size()) Throw(tok_line, "string literal is not closed");
          if (src[k] == c) break;
          if (src[k] == '\\' && k + 1 < src.size()) {
            const char e = src[k + 1];
            k += 2;
            switch (e) {
              case 'n':
                value.push_back('\n');
                break;
              case 't':
                value.push_back('\t');
                break;
              case 'r':
                value.push_back('\r');
                break;
              case 'b':
                value.push_back('\b');
                break;
              case 'f':
                value.push_back('\f');
                break;
              case 'v':
                value.push_back('\v');
                break;
              case '\'':
              case '"':
              case '\\':
                value.push_back(e);
                break;
              case 'x':
              case 'u': {
                const size_t n = e == 'x' ? 2 : 4;
                if (k + n > src.size()) Throw(tok_line, "bad escape in a string literal");
                const std::string hex(src.substr(k, n));
                if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
                  Throw(tok_line, fmt::format("bad escape \\{}{} in a string literal", e, hex));
                }
                AppendUtf8(static_cast<char32_t>(std::stoul(hex, nullptr, 16)), &value);
                k += n;
                break;
              }
              default:
                Throw(tok_line, fmt::format("escape \\{} in a string literal is not supported", e));
            }
            continue;
          }
          value.push_back(src[k++]);
        }
        tokens.push_back({Tok::kString, std::move(value), tok_line});
        advance(k + 1 - pos);
      } else {
        static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                     "/",  "%",  "~",  "<",  ">",  "(",  ")", "[", "]",
                                     "{",  "}",  ",",  ".",  ":",  "|",  "="};
        bool found = false;
        for (const char* op : kOps) {
          const std::string_view o(op);
          if (src.substr(pos, o.size()) == o) {
            if (o == "{") ++brace_depth;
            if (o == "}") --brace_depth;
            tokens.push_back({Tok::kOp, std::string(o), tok_line});
            advance(o.size());
            found = true;
            break;
          }
        }
        if (!found) Throw(tok_line, fmt::format("unexpected character '{}' in a tag", c));
      }
    }
  }
  // Text tokens used `line` as a flag; give every token a real line.
  tokens.push_back({Tok::kEnd, "", line});
  return tokens;
}

// ---------------------------------------------------------------- AST

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;
struct Node;
using Body = std::vector<std::shared_ptr<Node>>;

struct Arg {
  std::string name;  // "" positional
  ExprPtr value;
};

struct Expr {
  enum class Kind {
    kLiteral,
    kName,
    kList,
    kDict,
    kAttr,
    kItem,
    kSlice,
    kCall,
    kFilter,
    kTest,
    kUnary,
    kBinary,
    kCond
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;  // kName, kAttr attribute, kFilter/kTest name, kUnary/kBinary operator
  ExprPtr a, b, c;   // operands (kSlice: a[b:c:d] with d in extra)
  ExprPtr d;
  std::vector<ExprPtr> items;   // kList; kDict keys
  std::vector<ExprPtr> values;  // kDict values
  std::vector<Arg> args;        // kCall, kFilter, kTest
  bool negate = false;          // kTest: "is not"
};

struct Node {
  enum class Kind {
    kText,
    kOutput,
    kIf,
    kFor,
    kSet,
    kSetBlock,
    kMacro,
    kBreak,
    kContinue,
    kCallBlock
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  // kIf: conditions[k] guards bodies[k]; a final body without condition is else.
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  // kFor: targets in iterable [if filter] body [else else_body]
  std::vector<std::string> targets;
  ExprPtr filter;
  Body body, else_body;
  // kSet: target name or ns.attr
  std::string attr;
  // kMacro: name(params = defaults)
  std::vector<std::pair<std::string, ExprPtr>> params;
};

}  // namespace

struct ChatTemplate::Program {
  std::string source;
  Body body;
};

namespace {

// ---------------------------------------------------------------- parser

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body ParseAll() {
    Body body = ParseBody({});
    if (Peek().kind != Tok::kEnd) Throw(Peek().line, "unexpected tag");
    return body;
  }

 private:
  const Token& Peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  const Token& Next() { return t_[std::min(p_++, t_.size() - 1)]; }
  bool IsOp(std::string_view op, size_t k = 0) const {
    return Peek(k).kind == Tok::kOp && Peek(k).text == op;
  }
  bool IsName(std::string_view name, size_t k = 0) const {
    return Peek(k).kind == Tok::kName && Peek(k).text == name;
  }
  void ExpectOp(std::string_view op) {
    if (!IsOp(op)) Throw(Peek().line, fmt::format("expected '{}', found {}", op, Describe(Peek())));
    Next();
  }
  std::string ExpectName() {
    if (Peek().kind != Tok::kName)
      Throw(Peek().line, fmt::format("expected a name, found {}", Describe(Peek())));
    return Next().text;
  }
  void ExpectClose() {
    if (Peek().kind != Tok::kCloseStmt) {
      Throw(Peek().line, fmt::format("expected '%}}', found {}", Describe(Peek())));
    }
    Next();
  }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "the end of the template";
      case Tok::kCloseStmt:
        return "'%}'";
      case Tok::kCloseExpr:
        return "'}}'";
      case Tok::kString:
        return "a string";
      default:
        return fmt::format("'{}'", t.text);
    }
  }

  // Statements until one of `ends` (the name after "{%"), which is left
  // unconsumed (positioned at the name).
  Body ParseBody(const std::vector<std::string_view>& ends) {
    Body body;
    while (true) {
      const Token& tok = Peek();
      if (tok.kind == Tok::kEnd) {
        if (!ends.empty()) Throw(tok.line, fmt::format("'{{% {} %}}' is missing", ends.back()));
        return body;
      }
      if (tok.kind == Tok::kText) {
        auto node = std::make_shared<Node>();
        node->kind = Node::Kind::kText;
        node->text = Next().text;
        body.push_back(node);
        continue;
      }
      if (tok.kind == Tok::kOpenExpr) {
        const int line = Next().line;
        auto node = std::make_shared<Node>();
        node->kind = Node::Kind::kOutput;
        node->line = line;
        node->expr = ParseExpression();
        if (Peek().kind != Tok::kCloseExpr) {
          Throw(Peek().line, fmt::format("expected '}}}}', found {}", Describe(Peek())));
        }
        Next();
        body.push_back(node);
        continue;
      }
      if (tok.kind != Tok::kOpenStmt) Throw(tok.line, "unexpected token");
      const Token& name = Peek(1);
      if (name.kind == Tok::kName && std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
        Next();  // {%
        return body;
      }
      Next();  // {%
      body.push_back(ParseStatement());
    }
  }

  std::shared_ptr<Node> ParseStatement() {
    const int line = Peek().line;
    const std::string keyword = ExpectName();
    auto node = std::make_shared<Node>();
    node->line = line;
    if (keyword == "if") {
      node->kind = Node::Kind::kIf;
      node->conditions.push_back(ParseExpression());
      ExpectClose();
      while (true) {
        node->bodies.push_back(ParseBody({"elif", "else", "endif"}));
        const std::string end = Next().text;
        if (end == "elif") {
          node->conditions.push_back(ParseExpression());
          ExpectClose();
        } else if (end == "else") {
          ExpectClose();
          node->bodies.push_back(ParseBody({"endif"}));
          Next();
          ExpectClose();
          break;
        } else {
          ExpectClose();
          break;
        }
      }
    } else if (keyword == "for") {
      node->kind = Node::Kind::kFor;
      node->targets.push_back(ExpectName());
      while (IsOp(",")) {
        Next();
        node->targets.push_back(ExpectName());
      }
      if (!IsName("in")) Throw(Peek().line, "expected 'in' in a for statement");
      Next();
      node->expr = ParseTernary(/*allow_if=*/false);
      if (IsName("if")) {
        Next();
        node->filter = ParseTernary(false);
      }
      if (IsName("recursive")) Throw(Peek().line, "recursive for loops are not supported");
      ExpectClose();
      node->body = ParseBody({"else", "endfor"});
      if (Next().text == "else") {
        ExpectClose();
        node->else_body = ParseBody({"endfor"});
        Next();
      }
      ExpectClose();
    } else if (keyword == "set") {
      std::string target = ExpectName();
      if (IsOp(".")) {
        Next();
        node->attr = ExpectName();
      }
      if (IsOp(",")) Throw(Peek().line, "'set' with several targets is not supported");
      node->text = target;
      if (Peek().kind == Tok::kCloseStmt) {
        if (!node->attr.empty()) Throw(line, "a 'set' block cannot assign an attribute");
        Next();
        node->kind = Node::Kind::kSetBlock;
        node->body = ParseBody({"endset"});
        Next();
        ExpectClose();
      } else {
        node->kind = Node::Kind::kSet;
        ExpectOp("=");
        node->expr = ParseExpression();
        ExpectClose();
      }
    } else if (keyword == "macro") {
      node->kind = Node::Kind::kMacro;
      node->text = ExpectName();
      ExpectOp("(");
      while (!IsOp(")")) {
        std::string param = ExpectName();
        ExprPtr fallback;
        if (IsOp("=")) {
          Next();
          fallback = ParseExpression();
        }
        node->params.emplace_back(std::move(param), fallback);
        if (!IsOp(",")) break;
        Next();
      }
      ExpectOp(")");
      ExpectClose();
      node->body = ParseBody({"endmacro"});
      Next();
      ExpectClose();
    } else if (keyword == "break" || keyword == "continue") {
      node->kind = keyword == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      ExpectClose();
    } else if (keyword == "generation" || keyword == "endgeneration") {
      // transformers' assistant-mask markers: no output.
      node->kind = Node::Kind::kText;
      ExpectClose();
    } else {
      Throw(line, fmt::format("statement '{}' is not supported", keyword));
    }
    return node;
  }

  ExprPtr Make(Expr::Kind kind, int line) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  ExprPtr ParseExpression() { return ParseTernary(true); }

  ExprPtr ParseTernary(bool allow_if) {
    ExprPtr value = ParseOr();
    if (allow_if && IsName("if")) {
      const int line = Next().line;
      auto e = Make(Expr::Kind::kCond, line);
      e->a = value;
      e->b = ParseOr();
      if (IsName("else")) {
        Next();
        e->c = ParseTernary(true);
      }
      return e;
    }
    return value;
  }

  ExprPtr Binary(std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = Make(Expr::Kind::kBinary, line);
    e->name = std::move(op);
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      const int line = Next().line;
      left = Binary("or", left, ParseAnd(), line);
    }
    return left;
  }
  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      const int line = Next().line;
      left = Binary("and", left, ParseNot(), line);
    }
    return left;
  }
  ExprPtr ParseNot() {
    if (IsName("not")) {
      const int line = Next().line;
      auto e = Make(Expr::Kind::kUnary, line);
      e->name = "not";
      e->a = ParseNot();
      return e;
    }
    return ParseCompare();
  }
  ExprPtr ParseCompare() {
    ExprPtr left = ParseMath1();
    while (true) {
      const int line = Peek().line;
      std::string op;
      for (const char* candidate : {"==", "!=", "<", ">", "<=", ">="}) {
        if (IsOp(candidate)) op = candidate;
      }
      if (!op.empty()) {
        Next();
      } else if (IsName("in")) {
        Next();
        op = "in";
      } else if (IsName("not") && IsName("in", 1)) {
        Next();
        Next();
        op = "not in";
      } else {
        return left;
      }
      left = Binary(op, left, ParseMath1(), line);
    }
  }
  ExprPtr ParseMath1() {
    ExprPtr left = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      const Token& op = Next();
      left = Binary(op.text, left, ParseConcat(), op.line);
    }
    return left;
  }
  ExprPtr ParseConcat() {
    ExprPtr left = ParseMath2();
    while (IsOp("~")) {
      const int line = Next().line;
      left = Binary("~", left, ParseMath2(), line);
    }
    return left;
  }
  ExprPtr ParseMath2() {
    ExprPtr left = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const Token& op = Next();
      left = Binary(op.text, left, ParsePow(), op.line);
    }
    return left;
  }
  ExprPtr ParsePow() {
    ExprPtr left = ParseUnary();
    while (IsOp("**")) {
      const int line = Next().line;
      left = Binary("**", left, ParseUnary(), line);
    }
    return left;
  }
  ExprPtr ParseUnary() {
    if (IsOp("-") || IsOp("+")) {
      const Token& op = Next();
      auto e = Make(Expr::Kind::kUnary, op.line);
      e->name = op.text;
      e->a = ParseUnary();
      return ParseFilters(e);
    }
    return ParseFilters(ParsePostfix(ParsePrimary()));
  }

  ExprPtr ParsePrimary() {
    const Token tok = Next();
    switch (tok.kind) {
      case Tok::kString: {
        std::string s = tok.text;
        while (Peek().kind == Tok::kString) s += Next().text;  // adjacent literals
        auto e = Make(Expr::Kind::kLiteral, tok.line);
        e->literal = Value::Str(std::move(s));
        return e;
      }
      case Tok::kInt: {
        auto e = Make(Expr::Kind::kLiteral, tok.line);
        e->literal = Value::Int(std::stoll(tok.text));
        return e;
      }
      case Tok::kFloat: {
        auto e = Make(Expr::Kind::kLiteral, tok.line);
        e->literal = Value::Float(std::stod(tok.text));
        return e;
      }
      case Tok::kName: {
        auto e = Make(Expr::Kind::kLiteral, tok.line);
        if (tok.text == "true" || tok.text == "True") {
          e->literal = Value::Bool(true);
        } else if (tok.text == "false" || tok.text == "False") {
          e->literal = Value::Bool(false);
        } else if (tok.text == "none" || tok.text == "None") {
          e->literal = Value::None();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = tok.text;
        }
        return e;
      }
      case Tok::kOp:
        if (tok.text == "(") {
          ExprPtr inner = ParseExpression();
          if (IsOp(",")) Throw(tok.line, "tuples are not supported");
          ExpectOp(")");
          return inner;
        }
        if (tok.text == "[") {
          auto e = Make(Expr::Kind::kList, tok.line);
          while (!IsOp("]")) {
            e->items.push_back(ParseExpression());
            if (!IsOp(",")) break;
            Next();
          }
          ExpectOp("]");
          return e;
        }
        if (tok.text == "{") {
          auto e = Make(Expr::Kind::kDict, tok.line);
          while (!IsOp("}")) {
            e->items.push_back(ParseExpression());
            ExpectOp(":");
            e->values.push_back(ParseExpression());
            if (!IsOp(",")) break;
            Next();
          }
          ExpectOp("}");
          return e;
        }
        break;
      default:
        break;
    }
    Throw(tok.line, fmt::format("unexpected {} in an expression", Describe(tok)));
  }

  std::vector<Arg> ParseArgs() {
    std::vector<Arg> args;
    ExpectOp("(");
    while (!IsOp(")")) {
      if (IsOp("*") || IsOp("**")) Throw(Peek().line, "argument unpacking is not supported");
      Arg arg;
      if (Peek().kind == Tok::kName && IsOp("=", 1)) {
        arg.name = Next().text;
        Next();
      }
      arg.value = ParseExpression();
      args.push_back(std::move(arg));
      if (!IsOp(",")) break;
      Next();
    }
    ExpectOp(")");
    return args;
  }

  ExprPtr ParsePostfix(ExprPtr e) {
    while (true) {
      if (IsOp(".")) {
        const int line = Next().line;
        auto attr = Make(Expr::Kind::kAttr, line);
        attr->a = e;
        if (Peek().kind == Tok::kInt) {
          attr->kind = Expr::Kind::kItem;
          attr->b = Make(Expr::Kind::kLiteral, line);
          attr->b->literal = Value::Int(std::stoll(Next().text));
        } else {
          attr->name = ExpectName();
        }
        e = attr;
      } else if (IsOp("[")) {
        const int line = Next().line;
        ExprPtr start, stop, step;
        bool slice = false;
        if (!IsOp(":")) start = ParseExpression();
        if (IsOp(":")) {
          slice = true;
          Next();
          if (!IsOp(":") && !IsOp("]")) stop = ParseExpression();
          if (IsOp(":")) {
            Next();
            if (!IsOp("]")) step = ParseExpression();
          }
        }
        ExpectOp("]");
        auto item = Make(slice ? Expr::Kind::kSlice : Expr::Kind::kItem, line);
        item->a = e;
        item->b = start;
        item->c = stop;
        item->d = step;
        e = item;
      } else if (IsOp("(")) {
        const int line = Peek().line;
        auto call = Make(Expr::Kind::kCall, line);
        call->a = e;
        call->args = ParseArgs();
        e = call;
      } else {
        return e;
      }
    }
  }

  ExprPtr ParseFilters(ExprPtr e) {
    while (true) {
      if (IsOp("|")) {
        const int line = Next().line;
        auto f = Make(Expr::Kind::kFilter, line);
        f->a = e;
        f->name = ExpectName();
        if (IsOp("(")) f->args = ParseArgs();
        e = f;
      } else if (IsName("is")) {
        const int line = Next().line;
        auto t = Make(Expr::Kind::kTest, line);
        t->a = e;
        if (IsName("not")) {
          Next();
          t->negate = true;
        }
        // "none", "true", "false" are names of tests here.
        t->name = ExpectName();
        if (IsOp("(")) {
          t->args = ParseArgs();
        } else if (Peek().kind == Tok::kString || Peek().kind == Tok::kInt ||
                   Peek().kind == Tok::kFloat ||
                   (Peek().kind == Tok::kName && !IsName("and") && !IsName("or") && !IsName("if") &&
                    !IsName("else") && !IsName("in") && !IsName("is") && !IsName("not"))) {
          t->args.push_back({"", ParsePostfix(ParsePrimary())});
        }
        e = t;
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
};

// ---------------------------------------------------------------- interpreter

struct BreakSignal {};
struct ContinueSignal {};

class Interpreter {
 public:
  explicit Interpreter(std::map<std::string, Value> globals) {
    scopes_.push_back(std::move(globals));
  }

  void Run(const Body& body, std::string* out) { Exec(body, out); }

 private:
  using Scope = std::map<std::string, Value>;

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value();
  }

  void Exec(const Body& body, std::string* out) {
    for (const auto& node : body) ExecNode(*node, out);
  }

  void ExecNode(const Node& node, std::string* out) {
    switch (node.kind) {
      case Node::Kind::kText:
        *out += node.text;
        return;
      case Node::Kind::kOutput:
        *out += Str(Eval(*node.expr), node.line);
        return;
      case Node::Kind::kIf:
        for (size_t k = 0; k < node.bodies.size(); ++k) {
          if (k >= node.conditions.size() || Truthy(Eval(*node.conditions[k]))) {
            Exec(node.bodies[k], out);
            return;
          }
        }
        return;
      case Node::Kind::kFor:
        ExecFor(node, out);
        return;
      case Node::Kind::kSet: {
        Value v = Eval(*node.expr);
        if (node.attr.empty()) {
          scopes_.back()[node.text] = std::move(v);
        } else {
          Value target = Lookup(node.text);
          if (!target.is(Value::Type::kObject) || !target.object->is_namespace) {
            Throw(node.line,
                  fmt::format("cannot set attribute '{}' of '{}', which is not a namespace",
                              node.attr, node.text));
          }
          target.object->Set(node.attr, std::move(v));
        }
        return;
      }
      case Node::Kind::kSetBlock: {
        std::string captured;
        Exec(node.body, &captured);
        scopes_.back()[node.text] = Value::Str(std::move(captured));
        return;
      }
      case Node::Kind::kMacro: {
        const Node* macro = &node;
        scopes_.back()[node.text] = Value::Function(
            [this, macro](std::vector<Value>& args,
                          std::vector<std::pair<std::string, Value>>& kwargs, int line) {
              Scope scope;
              if (args.size() > macro->params.size()) {
                Throw(line, fmt::format("macro '{}' takes {} arguments", macro->text,
                                        macro->params.size()));
              }
              for (size_t k = 0; k < macro->params.size(); ++k) {
                const auto& [param, fallback] = macro->params[k];
                if (k < args.size()) {
                  scope[param] = args[k];
                } else {
                  scope[param] = fallback ? Eval(*fallback) : Value();
                }
              }
              for (auto& [key, v] : kwargs) {
                bool known = false;
                for (const auto& p : macro->params) known = known || p.first == key;
                if (!known)
                  Throw(line, fmt::format("macro '{}' has no argument '{}'", macro->text, key));
                scope[key] = v;
              }
              scopes_.push_back(std::move(scope));
              std::string text;
              Exec(macro->body, &text);
              scopes_.pop_back();
              return Value::Str(std::move(text));
            });
        return;
      }
      case Node::Kind::kBreak:
        throw BreakSignal{};
      case Node::Kind::kContinue:
        throw ContinueSignal{};
      case Node::Kind::kCallBlock:
        return;
    }
  }

  void ExecFor(const Node& node, std::string* out) {
    const Value iterable = Eval(*node.expr);
    Array items;
    if (iterable.is(Value::Type::kArray)) {
      items = *iterable.array;
    } else if (iterable.is(Value::Type::kObject)) {
      for (const auto& [k, v] : iterable.object->items) items.push_back(Value::Str(k));
    } else if (iterable.is(Value::Type::kString)) {
      for (auto [offset, cp] : CodePoints(iterable.s)) {
        std::string ch;
        AppendUtf8(cp, &ch);
        items.push_back(Value::Str(std::move(ch)));
      }
    } else if (iterable.undefined()) {
      // Jinja iterates nothing over an undefined value.
    } else {
      Throw(node.line, fmt::format("cannot iterate over a {}", TypeName(iterable)));
    }
    auto bind = [&](Scope* scope, const Value& item) {
      if (node.targets.size() == 1) {
        (*scope)[node.targets[0]] = item;
        return;
      }
      if (!item.is(Value::Type::kArray) || item.array->size() != node.targets.size()) {
        Throw(node.line,
              fmt::format("cannot unpack a {} into {} names", TypeName(item), node.targets.size()));
      }
      for (size_t k = 0; k < node.targets.size(); ++k) (*scope)[node.targets[k]] = (*item.array)[k];
    };
    // The `if` filter decides which items the loop sees (and loop.length).
    if (node.filter) {
      Array kept;
      for (const Value& item : items) {
        Scope scope;
        bind(&scope, item);
        scopes_.push_back(std::move(scope));
        const bool keep = Truthy(Eval(*node.filter));
        scopes_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Exec(node.else_body, out);
      return;
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      Scope scope;
      bind(&scope, items[k]);
      Value loop = Value::Dict();
      loop.object->Set("index", Value::Int(k + 1));
      loop.object->Set("index0", Value::Int(k));
      loop.object->Set("revindex", Value::Int(n - k));
      loop.object->Set("revindex0", Value::Int(n - k - 1));
      loop.object->Set("first", Value::Bool(k == 0));
      loop.object->Set("last", Value::Bool(k == n - 1));
      loop.object->Set("length", Value::Int(n));
      loop.object->Set("previtem", k > 0 ? items[k - 1] : Value());
      loop.object->Set("nextitem", k + 1 < n ? items[k + 1] : Value());
      scope["loop"] = loop;
      scopes_.push_back(std::move(scope));
      bool stop = false;
      try {
        Exec(node.body, out);
      } catch (const BreakSignal&) {
        stop = true;
      } catch (const ContinueSignal&) {
      }
      scopes_.pop_back();
      if (stop) break;
    }
  }

  static int64_t Index(int64_t k, size_t size) {
    return k < 0 ? k + static_cast<int64_t>(size) : k;
  }

  Value GetAttr(const Value& base, const std::string& name, int line) {
    if (base.is(Value::Type::kObject)) {
      if (const Value* v = base.object->Find(name)) return *v;
      return Method(base, name, line);
    }
    if (base.is(Value::Type::kString) || base.is(Value::Type::kArray))
      return Method(base, name, line);
    if (base.undefined()) Throw(line, fmt::format("'{}' of an undefined value", name));
    if (base.is(Value::Type::kNone)) Throw(line, fmt::format("'{}' of none", name));
    return Value();
  }

  Value GetItem(const Value& base, const Value& key, int line) {
    if (base.is(Value::Type::kObject)) {
      if (!key.is(Value::Type::kString)) return Value();
      if (const Value* v = base.object->Find(key.s)) return *v;
      return Value();
    }
    if (base.is(Value::Type::kArray) || base.is(Value::Type::kString)) {
      if (!key.is(Value::Type::kInt)) {
        Throw(line, fmt::format("a {} index must be an integer, not a {}", TypeName(base),
                                TypeName(key)));
      }
      if (base.is(Value::Type::kArray)) {
        const int64_t k = Index(key.i, base.array->size());
        if (k < 0 || k >= static_cast<int64_t>(base.array->size())) return Value();
        return (*base.array)[k];
      }
      auto cps = CodePoints(base.s);
      const int64_t k = Index(key.i, cps.size());
      if (k < 0 || k >= static_cast<int64_t>(cps.size())) return Value();
      std::string ch;
      AppendUtf8(cps[k].second, &ch);
      return Value::Str(std::move(ch));
    }
    if (base.undefined()) Throw(line, "an item of an undefined value");
    Throw(line, fmt::format("a {} has no items", TypeName(base)));
  }

  Value Slice(const Value& base, const Expr& e) {
    auto bound = [&](const ExprPtr& x) -> std::optional<int64_t> {
      if (!x) return std::nullopt;
      Value v = Eval(*x);
      if (v.is(Value::Type::kNone) || v.undefined()) return std::nullopt;
      if (!v.is(Value::Type::kInt)) Throw(e.line, "slice bounds must be integers");
      return v.i;
    };
    const std::optional<int64_t> start = bound(e.b), stop = bound(e.c), step_opt = bound(e.d);
    const int64_t step = step_opt.value_or(1);
    if (step == 0) Throw(e.line, "slice step cannot be zero");
    std::vector<Value> items;
    std::vector<std::pair<size_t, char32_t>> cps;
    size_t size = 0;
    if (base.is(Value::Type::kArray)) {
      size = base.array->size();
    } else if (base.is(Value::Type::kString)) {
      cps = CodePoints(base.s);
      size = cps.size();
    } else {
      Throw(e.line, fmt::format("a {} cannot be sliced", TypeName(base)));
    }
    const auto n = static_cast<int64_t>(size);
    auto clamp = [&](std::optional<int64_t> v, int64_t fallback, int64_t lo, int64_t hi) {
      if (!v) return fallback;
      int64_t x = *v < 0 ? *v + n : *v;
      return std::clamp(x, lo, hi);
    };
    std::vector<int64_t> picks;
    if (step > 0) {
      const int64_t a = clamp(start, 0, 0, n), b = clamp(stop, n, 0, n);
      for (int64_t k = a; k < b; k += step) picks.push_back(k);
    } else {
      const int64_t a = clamp(start, n - 1, -1, n - 1), b = clamp(stop, -1, -1, n - 1);
      for (int64_t k = a; k > b; k += step) picks.push_back(k);
    }
    if (base.is(Value::Type::kArray)) {
      Value out = Value::List();
      for (int64_t k : picks) out.array->push_back((*base.array)[k]);
      return out;
    }
    std::string s;
    for (int64_t k : picks) AppendUtf8(cps[k].second, &s);
    return Value::Str(std::move(s));
  }

  // Methods of strings, dicts and lists, as bound functions.
  Value Method(const Value& base, const std::string& name, int line) {
    if (base.is(Value::Type::kString)) {
      static const char* kStringMethods[] = {"strip",    "lstrip", "rstrip", "split", "startswith",
                                             "endswith", "lower",  "upper",  "title", "capitalize",
                                             "replace",  "join",   "find",   "count"};
      if (std::find_if(std::begin(kStringMethods), std::end(kStringMethods),
                       [&](const char* m) { return name == m; }) == std::end(kStringMethods)) {
        Throw(line, fmt::format("string method '{}' is not supported", name));
      }
    } else if (base.is(Value::Type::kObject)) {
      if (name != "items" && name != "keys" && name != "values" && name != "get") return Value();
    } else if (base.is(Value::Type::kArray)) {
      if (name != "append" && name != "index" && name != "count") {
        Throw(line, fmt::format("list method '{}' is not supported", name));
      }
    }
    Value self = base;
    return Value::Function([this, self, name](std::vector<Value>& args,
                                              std::vector<std::pair<std::string, Value>>& kwargs,
                                              int call_line) {
      if (!kwargs.empty())
        Throw(call_line, fmt::format("method '{}' with keyword arguments is not supported", name));
      return CallMethod(self, name, args, call_line);
    });
  }

  // What strip() and |trim remove without an argument: JavaScript's
  // String.prototype.trim set (WhiteSpace and LineTerminator), as the
  // reference does. (Python's str.strip differs only on U+001C..U+001F,
  // U+0085, which it strips, and U+FEFF, which it keeps.)
  static bool IsTrimSpace(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000 || c == 0xFEFF;
  }

  static std::string Strip(const std::string& s, const std::string& how,
                           const std::vector<Value>& args, int line) {
    std::vector<char32_t> chars;
    const bool custom = !args.empty() && !args[0].is(Value::Type::kNone);
    if (custom) {
      if (!args[0].is(Value::Type::kString)) Throw(line, "strip characters must be a string");
      for (auto [offset, cp] : CodePoints(args[0].s)) chars.push_back(cp);
    }
    auto strip = [&](char32_t c) {
      return custom ? std::find(chars.begin(), chars.end(), c) != chars.end() : IsTrimSpace(c);
    };
    const auto cps = CodePoints(s);
    size_t a = 0, b = cps.size();
    if (how != "rstrip") {
      while (a < b && strip(cps[a].second)) ++a;
    }
    if (how != "lstrip") {
      while (b > a && strip(cps[b - 1].second)) --b;
    }
    const size_t begin = a < cps.size() ? cps[a].first : s.size();
    const size_t end = b < cps.size() ? cps[b].first : s.size();
    return s.substr(begin, end - begin);
  }

  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  static std::string Upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }
  static std::string Title(const std::string& s) {
    std::string out;
    bool word_start = true;
    for (char c : s) {
      const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
      out.push_back(alpha ? static_cast<char>(word_start
                                                  ? std::toupper(static_cast<unsigned char>(c))
                                                  : std::tolower(static_cast<unsigned char>(c)))
                          : c);
      word_start = !alpha && !std::isdigit(static_cast<unsigned char>(c));
    }
    return out;
  }

  Value CallMethod(const Value& self, const std::string& name, std::vector<Value>& args, int line) {
    auto need_string = [&](size_t k) -> const std::string& {
      if (k >= args.size() || !args[k].is(Value::Type::kString)) {
        Throw(line, fmt::format("method '{}' needs a string argument", name));
      }
      return args[k].s;
    };
    if (self.is(Value::Type::kString)) {
      const std::string& s = self.s;
      if (name == "strip" || name == "lstrip" || name == "rstrip") {
        return Value::Str(Strip(s, name, args, line));
      }
      if (name == "lower") return Value::Str(Lower(s));
      if (name == "upper") return Value::Str(Upper(s));
      if (name == "title") return Value::Str(Title(s));
      if (name == "capitalize") {
        std::string out = Lower(s);
        if (!out.empty())
          out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
        return Value::Str(out);
      }
      if (name == "startswith") return Value::Bool(s.starts_with(need_string(0)));
      if (name == "endswith") return Value::Bool(s.ends_with(need_string(0)));
      if (name == "find") {
        const size_t at = s.find(need_string(0));
        return Value::Int(at == std::string::npos
                              ? -1
                              : static_cast<int64_t>(CodePoints(s.substr(0, at)).size()));
      }
      if (name == "count") {
        const std::string& needle = need_string(0);
        if (needle.empty()) return Value::Int(static_cast<int64_t>(CodePoints(s).size()) + 1);
        int64_t count = 0;
        for (size_t at = s.find(needle); at != std::string::npos;
             at = s.find(needle, at + needle.size()))
          ++count;
        return Value::Int(count);
      }
      if (name == "replace") {
        const std::string& from = need_string(0);
        const std::string& to = need_string(1);
        return Value::Str(ReplaceAllCopy(s, from, to));
      }
      if (name == "join") {
        if (args.empty() || !args[0].is(Value::Type::kArray)) Throw(line, "join needs a list");
        std::string out;
        for (size_t k = 0; k < args[0].array->size(); ++k) {
          if (k) out += s;
          out += Str((*args[0].array)[k], line);
        }
        return Value::Str(out);
      }
      if (name == "split") {
        Value out = Value::List();
        const int64_t max_split = args.size() > 1 && args[1].is(Value::Type::kInt) ? args[1].i : -1;
        if (args.empty() || args[0].is(Value::Type::kNone)) {
          // Runs of whitespace, leading/trailing ignored.
          size_t k = 0;
          int64_t splits = 0;
          while (true) {
            while (k < s.size() && IsSpace(s[k])) ++k;
            if (k >= s.size()) break;
            if (max_split >= 0 && splits == max_split) {
              size_t end = s.size();
              while (end > k && IsSpace(s[end - 1])) --end;
              out.array->push_back(Value::Str(s.substr(k, end - k)));
              break;
            }
            size_t end = k;
            while (end < s.size() && !IsSpace(s[end])) ++end;
            out.array->push_back(Value::Str(s.substr(k, end - k)));
            ++splits;
            k = end;
          }
          return out;
        }
        const std::string& sep = need_string(0);
        if (sep.empty()) Throw(line, "split: empty separator");
        size_t k = 0;
        int64_t splits = 0;
        while (true) {
          const size_t at =
              (max_split >= 0 && splits == max_split) ? std::string::npos : s.find(sep, k);
          if (at == std::string::npos) {
            out.array->push_back(Value::Str(s.substr(k)));
            break;
          }
          out.array->push_back(Value::Str(s.substr(k, at - k)));
          k = at + sep.size();
          ++splits;
        }
        return out;
      }
    }
    if (self.is(Value::Type::kObject)) {
      if (name == "items") {
        Value out = Value::List();
        for (const auto& [k, v] : self.object->items) {
          out.array->push_back(Value::List({Value::Str(k), v}));
        }
        return out;
      }
      if (name == "keys" || name == "values") {
        Value out = Value::List();
        for (const auto& [k, v] : self.object->items) {
          out.array->push_back(name == "keys" ? Value::Str(k) : v);
        }
        return out;
      }
      if (name == "get") {
        const Value* v = args.empty() || !args[0].is(Value::Type::kString)
                             ? nullptr
                             : self.object->Find(args[0].s);
        if (v) return *v;
        return args.size() > 1 ? args[1] : Value::None();
      }
    }
    if (self.is(Value::Type::kArray)) {
      if (name == "append") {
        if (args.size() != 1) Throw(line, "append takes one argument");
        self.array->push_back(args[0]);
        return Value::None();
      }
      if (name == "index" || name == "count") {
        if (args.size() != 1) Throw(line, fmt::format("{} takes one argument", name));
        int64_t count = 0;
        for (size_t k = 0; k < self.array->size(); ++k) {
          if (Equal((*self.array)[k], args[0])) {
            if (name == "index") return Value::Int(static_cast<int64_t>(k));
            ++count;
          }
        }
        if (name == "index") Throw(line, "index: the value is not in the list");
        return Value::Int(count);
      }
    }
    Throw(line, fmt::format("method '{}' of a {} is not supported", name, TypeName(self)));
  }

  static std::string ReplaceAllCopy(const std::string& s, const std::string& from,
                                    const std::string& to) {
    if (from.empty()) {
      // Python: "ab".replace("", "-") == "-a-b-"
      std::string out = to;
      for (auto [offset, cp] : CodePoints(s)) {
        AppendUtf8(cp, &out);
        out += to;
      }
      return out;
    }
    std::string out;
    size_t k = 0;
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, k)) {
      out.append(s, k, at - k);
      out += to;
      k = at + from.size();
    }
    out.append(s, k, std::string::npos);
    return out;
  }

  bool RunTest(const std::string& name, const Value& v, const std::vector<Value>& args, int line) {
    using T = Value::Type;
    if (name == "defined") return !v.undefined();
    if (name == "undefined") return v.undefined();
    if (name == "none") return v.is(T::kNone);
    if (name == "string") return v.is(T::kString);
    if (name == "number") return v.numeric();
    if (name == "integer") return v.is(T::kInt);
    if (name == "float") return v.is(T::kFloat);
    if (name == "boolean") return v.is(T::kBool);
    if (name == "true") return v.is(T::kBool) && v.b;
    if (name == "false") return v.is(T::kBool) && !v.b;
    if (name == "mapping") return v.is(T::kObject);
    if (name == "iterable") return v.is(T::kArray) || v.is(T::kObject) || v.is(T::kString);
    if (name == "sequence") return v.is(T::kArray) || v.is(T::kString);
    if (name == "callable") return v.is(T::kFunction);
    if (name == "lower") return v.is(T::kString) && Lower(v.s) == v.s;
    if (name == "upper") return v.is(T::kString) && Upper(v.s) == v.s;
    if (name == "odd" || name == "even") {
      if (!v.is(T::kInt)) Throw(line, fmt::format("test '{}' needs an integer", name));
      return (v.i % 2 != 0) == (name == "odd");
    }
    if (name == "divisibleby") {
      if (!v.is(T::kInt) || args.size() != 1 || !args[0].is(T::kInt) || args[0].i == 0) {
        Throw(line, "test 'divisibleby' needs integers");
      }
      return v.i % args[0].i == 0;
    }
    if (name == "equalto" || name == "eq" || name == "sameas" || name == "==") {
      if (args.size() != 1) Throw(line, fmt::format("test '{}' takes one argument", name));
      return Equal(v, args[0]);
    }
    if (name == "ne" || name == "!=") {
      if (args.size() != 1) Throw(line, fmt::format("test '{}' takes one argument", name));
      return !Equal(v, args[0]);
    }
    if (name == "in") {
      if (args.size() != 1) Throw(line, "test 'in' takes one argument");
      return Contains(args[0], v, line);
    }
    Throw(line, fmt::format("test '{}' is not supported", name));
  }

  bool Contains(const Value& container, const Value& item, int line) {
    if (container.is(Value::Type::kArray)) {
      for (const Value& x : *container.array) {
        if (Equal(x, item)) return true;
      }
      return false;
    }
    if (container.is(Value::Type::kString) && item.is(Value::Type::kString)) {
      return container.s.find(item.s) != std::string::npos;
    }
    if (container.is(Value::Type::kObject) && item.is(Value::Type::kString)) {
      return container.object->Find(item.s) != nullptr;
    }
    if (container.undefined()) return false;
    Throw(line, fmt::format("'in' between a {} and a {}", TypeName(item), TypeName(container)));
  }

  Value Binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value left = Eval(*e.a);
      return Truthy(left) ? Eval(*e.b) : left;
    }
    if (op == "or") {
      Value left = Eval(*e.a);
      return Truthy(left) ? left : Eval(*e.b);
    }
    const Value a = Eval(*e.a);
    const Value b = Eval(*e.b);
    if (op == "==") return Value::Bool(Equal(a, b));
    if (op == "!=") return Value::Bool(!Equal(a, b));
    if (op == "in" || op == "not in") return Value::Bool(Contains(b, a, e.line) == (op == "in"));
    if (a.undefined() || b.undefined()) {
      Throw(e.line, fmt::format("operator '{}' on an undefined value", op));
    }
    if (op == "~") return Value::Str(Str(a, e.line) + Str(b, e.line));
    if (a.numeric() && b.numeric()) {
      const bool is_float = a.is(Value::Type::kFloat) || b.is(Value::Type::kFloat);
      const double x = a.number(), y = b.number();
      if (op == "+" || op == "-" || op == "*") {
        if (!is_float) {
          return Value::Int(op == "+" ? a.i + b.i : op == "-" ? a.i - b.i : a.i * b.i);
        }
        return Value::Float(op == "+" ? x + y : op == "-" ? x - y : x * y);
      }
      if (op == "/") {
        if (y == 0) Throw(e.line, "division by zero");
        return Value::Float(x / y);
      }
      if (op == "//" || op == "%") {
        if (y == 0) Throw(e.line, "division by zero");
        if (!is_float) {
          int64_t q = a.i / b.i, r = a.i % b.i;
          if (r != 0 && ((r < 0) != (b.i < 0))) {
            --q;
            r += b.i;
          }
          return Value::Int(op == "//" ? q : r);
        }
        const double q = std::floor(x / y);
        return Value::Float(op == "//" ? q : x - q * y);
      }
      if (op == "**") {
        const double r = std::pow(x, y);
        if (!is_float && b.i >= 0) return Value::Int(static_cast<int64_t>(r));
        return Value::Float(r);
      }
      if (op == "<") return Value::Bool(x < y);
      if (op == ">") return Value::Bool(x > y);
      if (op == "<=") return Value::Bool(x <= y);
      if (op == ">=") return Value::Bool(x >= y);
    }
    if (a.is(Value::Type::kString) && b.is(Value::Type::kString)) {
      if (op == "+") return Value::Str(a.s + b.s);
      if (op == "<") return Value::Bool(a.s < b.s);
      if (op == ">") return Value::Bool(a.s > b.s);
      if (op == "<=") return Value::Bool(a.s <= b.s);
      if (op == ">=") return Value::Bool(a.s >= b.s);
    }
    if (a.is(Value::Type::kArray) && b.is(Value::Type::kArray) && op == "+") {
      Array items = *a.array;
      items.insert(items.end(), b.array->begin(), b.array->end());
      return Value::List(std::move(items));
    }
    if (op == "+" && (a.is(Value::Type::kString) || b.is(Value::Type::kString)) &&
        !a.is(Value::Type::kNone) && !b.is(Value::Type::kNone)) {
      // The reference concatenates a string with anything printable.
      return Value::Str(Str(a, e.line) + Str(b, e.line));
    }
    if (op == "*" && ((a.is(Value::Type::kString) && b.is(Value::Type::kInt)) ||
                      (b.is(Value::Type::kString) && a.is(Value::Type::kInt)))) {
      const std::string& s = a.is(Value::Type::kString) ? a.s : b.s;
      const int64_t n = a.is(Value::Type::kInt) ? a.i : b.i;
      std::string out;
      for (int64_t k = 0; k < n; ++k) out += s;
      return Value::Str(out);
    }
    Throw(e.line, fmt::format("operator '{}' between a {} and a {} is not supported", op,
                              TypeName(a), TypeName(b)));
  }

  struct Args {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> named;
  };
  Args EvalArgs(const std::vector<Arg>& args) {
    Args out;
    for (const Arg& a : args) {
      if (a.name.empty()) {
        out.positional.push_back(Eval(*a.value));
      } else {
        out.named.emplace_back(a.name, Eval(*a.value));
      }
    }
    return out;
  }

  // A filter or test argument: positional k or keyword `name`.
  static const Value* ArgAt(const Args& args, size_t k, std::string_view name) {
    for (const auto& [n, v] : args.named) {
      if (n == name) return &v;
    }
    return k < args.positional.size() ? &args.positional[k] : nullptr;
  }

  static void OnlyArgs(const Args& args, const std::string& filter, size_t max_positional,
                       std::initializer_list<std::string_view> names, int line) {
    if (args.positional.size() > max_positional) {
      Throw(line, fmt::format("filter '{}' takes at most {} arguments", filter, max_positional));
    }
    for (const auto& [n, v] : args.named) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        Throw(line, fmt::format("filter '{}' with argument '{}' is not supported", filter, n));
      }
    }
  }

  Array Items(const Value& v, const std::string& filter, int line) {
    if (v.is(Value::Type::kArray)) return *v.array;
    if (v.is(Value::Type::kObject)) {
      Array keys;
      for (const auto& [k, x] : v.object->items) keys.push_back(Value::Str(k));
      return keys;
    }
    if (v.is(Value::Type::kString)) {
      Array chars;
      for (auto [offset, cp] : CodePoints(v.s)) {
        std::string ch;
        AppendUtf8(cp, &ch);
        chars.push_back(Value::Str(std::move(ch)));
      }
      return chars;
    }
    if (v.undefined()) return {};
    Throw(line, fmt::format("filter '{}' needs a list, not a {}", filter, TypeName(v)));
  }

  Value Filter(const Expr& e) {
    const Value v = Eval(*e.a);
    const Args args = EvalArgs(e.args);
    const std::string& f = e.name;
    const int line = e.line;
    using T = Value::Type;
    auto need_string = [&]() -> const std::string& {
      if (!v.is(T::kString))
        Throw(line, fmt::format("filter '{}' needs a string, not a {}", f, TypeName(v)));
      return v.s;
    };
    if (f == "trim") {
      OnlyArgs(args, f, 1, {"chars"}, line);
      std::vector<Value> a;
      if (const Value* chars = ArgAt(args, 0, "chars")) a.push_back(*chars);
      return CallMethod(Value::Str(need_string()), "strip", a, line);
    }
    if (f == "upper" || f == "lower" || f == "title" || f == "capitalize") {
      OnlyArgs(args, f, 0, {}, line);
      std::vector<Value> none;
      return CallMethod(Value::Str(need_string()), f, none, line);
    }
    if (f == "length" || f == "count") {
      OnlyArgs(args, f, 0, {}, line);
      if (v.is(T::kString)) return Value::Int(static_cast<int64_t>(CodePoints(v.s).size()));
      if (v.is(T::kArray)) return Value::Int(static_cast<int64_t>(v.array->size()));
      if (v.is(T::kObject)) return Value::Int(static_cast<int64_t>(v.object->items.size()));
      if (v.undefined()) return Value::Int(0);
      Throw(line, fmt::format("filter '{}' of a {}", f, TypeName(v)));
    }
    if (f == "list") {
      OnlyArgs(args, f, 0, {}, line);
      return Value::List(Items(v, f, line));
    }
    if (f == "first" || f == "last") {
      OnlyArgs(args, f, 0, {}, line);
      Array items = Items(v, f, line);
      if (items.empty()) return Value();
      return f == "first" ? items.front() : items.back();
    }
    if (f == "reverse") {
      OnlyArgs(args, f, 0, {}, line);
      if (v.is(T::kString)) {
        auto cps = CodePoints(v.s);
        std::string out;
        for (auto it = cps.rbegin(); it != cps.rend(); ++it) AppendUtf8(it->second, &out);
        return Value::Str(out);
      }
      Array items = Items(v, f, line);
      std::reverse(items.begin(), items.end());
      return Value::List(std::move(items));
    }
    if (f == "join") {
      OnlyArgs(args, f, 1, {"d"}, line);
      const Value* sep = ArgAt(args, 0, "d");
      std::string out;
      Array items = Items(v, f, line);
      for (size_t k = 0; k < items.size(); ++k) {
        if (k && sep) out += Str(*sep, line);
        out += Str(items[k], line);
      }
      return Value::Str(out);
    }
    if (f == "tojson") {
      OnlyArgs(args, f, 1, {"indent"}, line);
      int indent = 0;
      if (const Value* i = ArgAt(args, 0, "indent"); i && !i->is(T::kNone)) {
        if (!i->is(T::kInt)) Throw(line, "filter 'tojson': indent must be an integer");
        indent = static_cast<int>(i->i);
      }
      return Value::Str(ToJson(v, indent, 0, line));
    }
    if (f == "string") {
      OnlyArgs(args, f, 0, {}, line);
      return Value::Str(Str(v, line));
    }
    if (f == "int") {
      OnlyArgs(args, f, 1, {"default"}, line);
      if (v.is(T::kInt)) return v;
      if (v.is(T::kFloat)) return Value::Int(static_cast<int64_t>(v.f));
      if (v.is(T::kBool)) return Value::Int(v.b ? 1 : 0);
      if (v.is(T::kString)) {
        try {
          size_t used = 0;
          const int64_t n = std::stoll(v.s, &used);
          if (used == v.s.size()) return Value::Int(n);
        } catch (...) {
        }
      }
      const Value* fallback = ArgAt(args, 0, "default");
      return fallback ? *fallback : Value::Int(0);
    }
    if (f == "float") {
      OnlyArgs(args, f, 1, {"default"}, line);
      if (v.numeric()) return Value::Float(v.number());
      if (v.is(T::kString)) {
        try {
          size_t used = 0;
          const double n = std::stod(v.s, &used);
          if (used == v.s.size()) return Value::Float(n);
        } catch (...) {
        }
      }
      const Value* fallback = ArgAt(args, 0, "default");
      return fallback ? *fallback : Value::Float(0);
    }
    if (f == "abs") {
      OnlyArgs(args, f, 0, {}, line);
      if (v.is(T::kInt)) return Value::Int(v.i < 0 ? -v.i : v.i);
      if (v.is(T::kFloat)) return Value::Float(std::fabs(v.f));
      Throw(line, fmt::format("filter 'abs' of a {}", TypeName(v)));
    }
    if (f == "default" || f == "d") {
      OnlyArgs(args, f, 2, {"default_value", "boolean"}, line);
      const Value* fallback = ArgAt(args, 0, "default_value");
      const Value* boolean = ArgAt(args, 1, "boolean");
      const bool use = v.undefined() || (boolean && Truthy(*boolean) && !Truthy(v));
      if (!use) return v;
      return fallback ? *fallback : Value::Str("");
    }
    if (f == "replace") {
      OnlyArgs(args, f, 2, {}, line);
      if (args.positional.size() != 2 || !args.positional[0].is(T::kString) ||
          !args.positional[1].is(T::kString)) {
        Throw(line, "filter 'replace' takes two strings");
      }
      return Value::Str(ReplaceAllCopy(need_string(), args.positional[0].s, args.positional[1].s));
    }
    if (f == "items") {
      OnlyArgs(args, f, 0, {}, line);
      if (v.undefined()) return Value::List();
      if (!v.is(T::kObject)) Throw(line, fmt::format("filter 'items' of a {}", TypeName(v)));
      std::vector<Value> none;
      return CallMethod(v, "items", none, line);
    }
    if (f == "safe") return v;
    if (f == "unique") {
      OnlyArgs(args, f, 0, {}, line);
      Array out;
      for (const Value& x : Items(v, f, line)) {
        bool seen = false;
        for (const Value& y : out) seen = seen || Equal(x, y);
        if (!seen) out.push_back(x);
      }
      return Value::List(std::move(out));
    }
    if (f == "selectattr" || f == "rejectattr" || f == "select" || f == "reject") {
      const bool by_attr = f == "selectattr" || f == "rejectattr";
      const bool keep_if = f == "selectattr" || f == "select";
      if (!args.named.empty())
        Throw(line, fmt::format("filter '{}' with keyword arguments is not supported", f));
      size_t k = 0;
      std::string attr;
      if (by_attr) {
        if (args.positional.empty() || !args.positional[0].is(T::kString)) {
          Throw(line, fmt::format("filter '{}' needs an attribute name", f));
        }
        attr = args.positional[k++].s;
      }
      std::string test;
      std::vector<Value> test_args;
      if (k < args.positional.size()) {
        if (!args.positional[k].is(T::kString))
          Throw(line, fmt::format("filter '{}': the test must be a name", f));
        test = args.positional[k++].s;
        test_args.assign(args.positional.begin() + static_cast<long>(k), args.positional.end());
      }
      Array out;
      for (const Value& item : Items(v, f, line)) {
        Value subject = item;
        if (by_attr) {
          subject = item.is(T::kObject) ? GetItem(item, Value::Str(attr), line) : Value();
        }
        const bool pass = test.empty() ? Truthy(subject) : RunTest(test, subject, test_args, line);
        if (pass == keep_if) out.push_back(item);
      }
      return Value::List(std::move(out));
    }
    if (f == "map") {
      OnlyArgs(args, f, 1, {"attribute", "default"}, line);
      Array out;
      const Value* attribute = nullptr;
      for (const auto& [n, x] : args.named) {
        if (n == "attribute") attribute = &x;
      }
      if (attribute) {
        if (!attribute->is(T::kString)) Throw(line, "filter 'map': attribute must be a string");
        const Value* fallback = nullptr;
        for (const auto& [n, x] : args.named) {
          if (n == "default") fallback = &x;
        }
        for (const Value& item : Items(v, f, line)) {
          Value x = item.is(T::kObject) ? GetItem(item, Value::Str(attribute->s), line) : Value();
          out.push_back(x.undefined() && fallback ? *fallback : x);
        }
        return Value::List(std::move(out));
      }
      if (args.positional.empty() || !args.positional[0].is(T::kString)) {
        Throw(line, "filter 'map' needs a filter name or attribute=");
      }
      for (const Value& item : Items(v, f, line)) {
        auto inner = std::make_shared<Expr>();
        inner->kind = Expr::Kind::kLiteral;
        inner->literal = item;
        Expr call;
        call.kind = Expr::Kind::kFilter;
        call.line = line;
        call.a = inner;
        call.name = args.positional[0].s;
        out.push_back(Filter(call));
      }
      return Value::List(std::move(out));
    }
    if (f == "indent") {
      OnlyArgs(args, f, 3, {"width", "first", "blank"}, line);
      const Value* width = ArgAt(args, 0, "width");
      const Value* first = ArgAt(args, 1, "first");
      const Value* blank = ArgAt(args, 2, "blank");
      std::string pad = width == nullptr        ? std::string(4, ' ')
                        : width->is(T::kString) ? width->s
                        : width->is(T::kInt)
                            ? std::string(static_cast<size_t>(std::max<int64_t>(0, width->i)), ' ')
                            : std::string(4, ' ');
      const std::string& s = need_string();
      std::string out;
      size_t k = 0;
      bool first_line = true;
      while (k <= s.size()) {
        size_t end = s.find('\n', k);
        const bool last = end == std::string::npos;
        if (last) end = s.size();
        const std::string text = s.substr(k, end - k);
        const bool do_pad =
            first_line ? (first && Truthy(*first)) : (!text.empty() || (blank && Truthy(*blank)));
        if (do_pad) out += pad;
        out += text;
        if (last) break;
        out += "\n";
        k = end + 1;
        first_line = false;
      }
      return Value::Str(out);
    }
    Throw(line, fmt::format("filter '{}' is not supported", f));
  }

  Value Call(const Expr& e) {
    // Globals with names, so errors can say which.
    if (e.a->kind == Expr::Kind::kName) {
      const std::string& name = e.a->name;
      Value fn = Lookup(name);
      if (fn.undefined()) {
        if (name == "strftime_now") {
          Throw(e.line,
                "function 'strftime_now' is not defined (a prompt must not depend on the clock)");
        }
        Throw(e.line, fmt::format("function '{}' is not supported", name));
      }
    }
    Value fn = Eval(*e.a);
    if (!fn.is(Value::Type::kFunction))
      Throw(e.line, fmt::format("a {} is not callable", TypeName(fn)));
    Args args = EvalArgs(e.args);
    return (*fn.function)(args.positional, args.named, e.line);
  }

  Value Eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kList: {
        Value out = Value::List();
        for (const ExprPtr& x : e.items) out.array->push_back(Eval(*x));
        return out;
      }
      case Expr::Kind::kDict: {
        Value out = Value::Dict();
        for (size_t k = 0; k < e.items.size(); ++k) {
          Value key = Eval(*e.items[k]);
          if (!key.is(Value::Type::kString)) Throw(e.line, "dict keys must be strings");
          out.object->Set(key.s, Eval(*e.values[k]));
        }
        return out;
      }
      case Expr::Kind::kAttr:
        return GetAttr(Eval(*e.a), e.name, e.line);
      case Expr::Kind::kItem: {
        Value base = Eval(*e.a);
        Value key = Eval(*e.b);
        if (base.is(Value::Type::kObject) && key.is(Value::Type::kString) &&
            base.object->Find(key.s) == nullptr) {
          return Value();
        }
        return GetItem(base, key, e.line);
      }
      case Expr::Kind::kSlice:
        return Slice(Eval(*e.a), e);
      case Expr::Kind::kCall:
        return Call(e);
      case Expr::Kind::kFilter:
        return Filter(e);
      case Expr::Kind::kTest: {
        Value v = Eval(*e.a);
        Args args = EvalArgs(e.args);
        return Value::Bool(RunTest(e.name, v, args.positional, e.line) != e.negate);
      }
      case Expr::Kind::kUnary: {
        Value v = Eval(*e.a);
        if (e.name == "not") return Value::Bool(!Truthy(v));
        if (v.is(Value::Type::kInt)) return Value::Int(e.name == "-" ? -v.i : v.i);
        if (v.is(Value::Type::kFloat)) return Value::Float(e.name == "-" ? -v.f : v.f);
        Throw(e.line, fmt::format("unary '{}' of a {}", e.name, TypeName(v)));
      }
      case Expr::Kind::kBinary:
        return Binary(e);
      case Expr::Kind::kCond:
        if (Truthy(Eval(*e.b))) return Eval(*e.a);
        return e.c ? Eval(*e.c) : Value();
    }
    return Value();
  }

  std::vector<Scope> scopes_;
};

std::map<std::string, Value> Globals() {
  std::map<std::string, Value> g;
  g["raise_exception"] = Value::Function(
      [](std::vector<Value>& args, std::vector<std::pair<std::string, Value>>&, int line) -> Value {
        Throw(line, "raise_exception: " + (args.empty() ? std::string() : Str(args[0], line)));
      });
  g["namespace"] = Value::Function(
      [](std::vector<Value>& args, std::vector<std::pair<std::string, Value>>& kwargs, int line) {
        Value ns = Value::Dict();
        ns.object->is_namespace = true;
        if (!args.empty()) {
          if (args.size() > 1 || !args[0].is(Value::Type::kObject)) {
            Throw(line, "namespace() takes a dict or keyword arguments");
          }
          for (const auto& [k, v] : args[0].object->items) ns.object->Set(k, v);
        }
        for (auto& [k, v] : kwargs) ns.object->Set(k, v);
        return ns;
      });
  g["range"] = Value::Function(
      [](std::vector<Value>& args, std::vector<std::pair<std::string, Value>>&, int line) {
        for (const Value& a : args) {
          if (!a.is(Value::Type::kInt)) Throw(line, "range() takes integers");
        }
        int64_t start = 0, stop = 0, step = 1;
        if (args.size() == 1) {
          stop = args[0].i;
        } else if (args.size() == 2 || args.size() == 3) {
          start = args[0].i;
          stop = args[1].i;
          if (args.size() == 3) step = args[2].i;
        } else {
          Throw(line, "range() takes 1 to 3 arguments");
        }
        if (step == 0) Throw(line, "range() step cannot be zero");
        Value out = Value::List();
        for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
          if (out.array->size() > 1000000) Throw(line, "range() is too long");
          out.array->push_back(Value::Int(k));
        }
        return out;
      });
  return g;
}

Result<std::string> RenderWith(const ChatTemplate::Program& program,
                               std::map<std::string, Value> variables) {
  std::map<std::string, Value> globals = Globals();
  for (auto& [k, v] : variables) globals[k] = std::move(v);
  Interpreter interpreter(std::move(globals));
  std::string out;
  try {
    interpreter.Run(program.body, &out);
  } catch (const TemplateError& e) {
    return InvalidArgument("chat_template: line {}: {}", e.line, e.message);
  } catch (const BreakSignal&) {
    return InvalidArgument("chat_template: 'break' outside a loop");
  } catch (const ContinueSignal&) {
    return InvalidArgument("chat_template: 'continue' outside a loop");
  }
  return out;
}

}  // namespace

ChatTemplate::ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::ChatTemplate(const ChatTemplate&) = default;
ChatTemplate& ChatTemplate::operator=(const ChatTemplate&) = default;
ChatTemplate::~ChatTemplate() = default;

const std::string& ChatTemplate::source() const {
  return program_->source;
}

Result<ChatTemplate> ChatTemplate::Parse(std::string_view source) {
  if (std::optional<size_t> bad = FindInvalidUtf8(source)) {
    return InvalidArgument("chat_template: not valid UTF-8 (byte {})", *bad);
  }
  auto program = std::make_shared<Program>();
  program->source = std::string(source);
  try {
    Parser parser(Lex(source));
    program->body = parser.ParseAll();
  } catch (const TemplateError& e) {
    return InvalidArgument("chat_template: line {}: {}", e.line, e.message);
  }
  return ChatTemplate(std::move(program));
}

Result<std::string> ChatTemplate::Render(const ChatTemplateInputs& inputs) const {
  std::map<std::string, Value> v;
  Value messages = Value::List();
  for (const ChatMessage& m : inputs.messages) {
    Value message = Value::Dict();
    message.object->Set("role", Value::Str(m.role));
    message.object->Set("content", Value::Str(m.content));
    messages.array->push_back(message);
  }
  v["messages"] = messages;
  v["add_generation_prompt"] = Value::Bool(inputs.add_generation_prompt);
  v["bos_token"] = Value::Str(inputs.bos_token);
  v["eos_token"] = Value::Str(inputs.eos_token);
  return RenderWith(*program_, std::move(v));
}

Result<std::string> ChatTemplate::RenderJson(std::string_view context_json) const {
  const nlohmann::json context = nlohmann::json::parse(context_json, nullptr, false);
  if (!context.is_object()) return InvalidArgument("chat template context: not a JSON object");
  std::map<std::string, Value> v;
  for (auto it = context.begin(); it != context.end(); ++it) v[it.key()] = FromJson(it.value());
  return RenderWith(*program_, std::move(v));
}

}  // namespace lockstep::runtime
