#include "json_reader.h"

namespace lockstep::partitioner::internal {
namespace {
const nlohmann::json& EmptyObject() {
  static const nlohmann::json* empty = new nlohmann::json(nlohmann::json::object());
  return *empty;
}
}  // namespace

JsonReader::JsonReader(const nlohmann::json& object, std::string_view source, std::string prefix)
    : object_(object.is_object() ? object : EmptyObject()),
      source_(source),
      prefix_(std::move(prefix)) {
  if (!object.is_object()) {
    status_ = InvalidArgument(
        "{}: {} must be a JSON object, got {}", source_,
        prefix_.empty() ? std::string("the top level") : "field '" + prefix_ + "'", object.dump());
  }
}

std::string JsonReader::Path(std::string_view field) const {
  return prefix_.empty() ? std::string(field) : prefix_ + "." + std::string(field);
}

bool JsonReader::Has(std::string_view field) const {
  auto it = object_.find(field);
  return it != object_.end() && !it->is_null();
}

void JsonReader::Fail(std::string_view field, std::string_view what) {
  if (!status_.ok()) return;
  status_ = InvalidArgument("{}: field '{}' {}", source_, Path(field), what);
}

void JsonReader::Fail(Status status) {
  if (status_.ok() && !status.ok()) status_ = std::move(status);
}

const nlohmann::json* JsonReader::Find(std::string_view field, bool required, const char* type) {
  known_.emplace(field);
  if (!status_.ok()) return nullptr;
  auto it = object_.find(field);
  if (it == object_.end() || it->is_null()) {
    if (required) Fail(field, fmt::format("is missing (expected {})", type));
    return nullptr;
  }
  return &*it;
}

void JsonReader::Int(std::string_view field, int64_t* out, bool required) {
  const nlohmann::json* v = Find(field, required, "an integer");
  if (v == nullptr) return;
  if (v->is_number_integer()) {
    *out = v->get<int64_t>();
  } else if (v->is_number_float() &&
             v->get<double>() == static_cast<double>(static_cast<int64_t>(v->get<double>())) &&
             std::abs(v->get<double>()) < 9.0e15) {
    *out = static_cast<int64_t>(v->get<double>());  // 2.4e11 written in exponent form
  } else {
    Fail(field, "must be an integer, got " + v->dump());
  }
}

void JsonReader::Int(std::string_view field, int* out, bool required) {
  int64_t value = *out;
  Int(field, &value, required);
  if (!status_.ok()) return;
  if (value < INT32_MIN || value > INT32_MAX) {
    Fail(field, fmt::format("is out of range, got {}", value));
    return;
  }
  *out = static_cast<int>(value);
}

void JsonReader::Double(std::string_view field, double* out, bool required) {
  const nlohmann::json* v = Find(field, required, "a number");
  if (v == nullptr) return;
  if (!v->is_number()) {
    Fail(field, "must be a number, got " + v->dump());
    return;
  }
  *out = v->get<double>();
}

void JsonReader::Bool(std::string_view field, bool* out, bool required) {
  const nlohmann::json* v = Find(field, required, "true or false");
  if (v == nullptr) return;
  if (!v->is_boolean()) {
    Fail(field, "must be true or false, got " + v->dump());
    return;
  }
  *out = v->get<bool>();
}

void JsonReader::String(std::string_view field, std::string* out, bool required) {
  const nlohmann::json* v = Find(field, required, "a string");
  if (v == nullptr) return;
  if (!v->is_string()) {
    Fail(field, "must be a string, got " + v->dump());
    return;
  }
  *out = v->get<std::string>();
}

void JsonReader::IntArray(std::string_view field, std::vector<int64_t>* out, bool required) {
  const nlohmann::json* v = Find(field, required, "an array of integers");
  if (v == nullptr) return;
  if (!v->is_array()) {
    Fail(field, "must be an array of integers, got " + v->dump());
    return;
  }
  out->clear();
  for (const nlohmann::json& e : *v) {
    if (!e.is_number_integer()) {
      Fail(field, "must be an array of integers, got " + v->dump());
      return;
    }
    out->push_back(e.get<int64_t>());
  }
}

const nlohmann::json* JsonReader::Raw(std::string_view field, bool required) {
  return Find(field, required, "a value");
}

JsonReader JsonReader::Object(std::string_view field) {
  const nlohmann::json* v = Find(field, true, "an object");
  if (v == nullptr) {
    JsonReader r(EmptyObject(), source_, Path(field));
    r.status_ = status_;
    return r;
  }
  JsonReader r(*v, source_, Path(field));
  if (!r.ok()) Fail(r.status_);
  return r;
}

Status JsonReader::Finish() {
  if (!status_.ok()) return status_;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (!known_.contains(it.key())) {
      return InvalidArgument("{}: unknown field '{}'", source_, Path(it.key()));
    }
  }
  return Status::Ok();
}

}  // namespace lockstep::partitioner::internal
