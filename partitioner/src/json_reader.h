// Strict reading of JSON objects for the partitioner's input files (cluster
// spec, workload, plan): every field is typed, unknown fields are errors, and
// every message names the file and the dotted field path, e.g.
//   "spec.json: field 'chip.memory_bytes' must be an integer, got \"lots\"".
//
// Usage: construct on an object, call the getters (each records the first
// error and then does nothing), then Finish() returns the first error or the
// unknown-field error.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/base/status.h"

namespace lockstep::partitioner::internal {

class JsonReader {
 public:
  // `prefix` is the dotted path of `object` inside the file ("" at the top).
  JsonReader(const nlohmann::json& object, std::string_view source, std::string prefix = "");

  bool Has(std::string_view field) const;
  void Int(std::string_view field, int64_t* out, bool required = true);
  void Int(std::string_view field, int* out, bool required = true);
  void Double(std::string_view field, double* out, bool required = true);
  void Bool(std::string_view field, bool* out, bool required = true);
  void String(std::string_view field, std::string* out, bool required = true);
  void IntArray(std::string_view field, std::vector<int64_t>* out, bool required = true);
  // The raw value (marked as known); nullptr if absent (an error if required).
  const nlohmann::json* Raw(std::string_view field, bool required = true);
  // A reader for a nested object (marked as known). If absent or not an
  // object, records an error and returns a reader on an empty object.
  JsonReader Object(std::string_view field);

  // Records an error about `field` (for checks the getters cannot make).
  void Fail(std::string_view field, std::string_view what);
  void Fail(Status status);
  bool ok() const { return status_.ok(); }
  // The first error, or an error for the first field no getter asked for.
  Status Finish();

  std::string Path(std::string_view field) const;
  const std::string& source() const { return source_; }

 private:
  const nlohmann::json* Find(std::string_view field, bool required, const char* type);

  const nlohmann::json& object_;
  std::string source_;
  std::string prefix_;
  std::set<std::string, std::less<>> known_;
  Status status_;
};

}  // namespace lockstep::partitioner::internal
