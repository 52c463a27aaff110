// Validating reader over nlohmann::json with file + dotted-path error messages.
//
// Every config section is read through an ObjectReader: each accessor type-checks the value,
// applies a default when the key is absent, and records the value it used into a "resolved"
// JSON tree (which becomes config.resolved.json). finish() rejects every key that no accessor
// asked for, suggesting the nearest known key ("did you mean 'lr'?").
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace dtsim {

using json = nlohmann::json;

// Where a JSON value came from: the file it was read from and its dotted path in that file.
struct JsonOrigin {
  std::string file;
  std::string path;  // "" for the document root
  JsonOrigin child(const std::string& key) const {
    return {file, path.empty() ? key : path + "." + key};
  }
  JsonOrigin index(size_t i) const { return {file, path + "[" + std::to_string(i) + "]"}; }
  [[noreturn]] void fail(const std::string& reason) const { throw InputError(file, path, reason); }
};

// Levenshtein distance; used for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `key`, if it is close enough to be a plausible typo.
std::optional<std::string> nearest_key(const std::string& key, const std::vector<std::string>& candidates);
// Parses the JSON document `text` read from `file`. Bad syntax is an InputError at its line and
// column; a key that one object holds twice an InputError at its dotted path.
json parse_json_document(const std::string& text, const std::string& file);
// The dotted path of the first key that an object of the JSON text `text` holds twice.
std::optional<std::string> duplicate_key(const std::string& text);
inline constexpr const char* kDuplicateKey = "key given twice in one object (JSON would keep only the later value)";
// Short human name of a JSON value's type ("a string", "an array", ...).
std::string json_type_name(const json& j);
// nlohmann's message without its "[json.exception.<kind>.<id>] " prefix, e.g.
// "number overflow parsing '1e999'".
std::string json_error_detail(const json::exception& e);
// `s` as an error message may quote it: bytes outside printable ASCII as \xNN, and at most `max`
// characters of it, then "...". For text read from a user's file, which may not be text at all.
std::string printable_excerpt(const std::string& s, size_t max = 60);
// A number as messages show it (the stream's default form: "0.5", "1e+06").
std::string number_text(double v);

class ObjectReader {
 public:
  // `value` must be an object (else InputError at `origin`). `resolved` (may be null) receives
  // every value used, defaults included.
  ObjectReader(const json& value, JsonOrigin origin, json* resolved = nullptr);

  const JsonOrigin& origin() const { return origin_; }
  const json& raw() const { return *value_; }
  // Whether the key is present. A key asked about counts as one this object may hold: finish()
  // suggests it for a typo and lists it among the known keys (it is not thereby accepted).
  bool has(const std::string& key) const;
  // Marks a key as known without reading it (e.g. a key handled elsewhere).
  void accept(const std::string& key);

  // Typed accessors. The "opt" variants return nullopt when absent (and record nothing).
  double number(const std::string& key, std::optional<double> def = std::nullopt);
  std::optional<double> opt_number(const std::string& key);
  int64_t integer(const std::string& key, std::optional<int64_t> def = std::nullopt);
  std::optional<int64_t> opt_integer(const std::string& key);
  bool boolean(const std::string& key, std::optional<bool> def = std::nullopt);
  std::string string(const std::string& key, std::optional<std::string> def = std::nullopt);
  std::optional<std::string> opt_string(const std::string& key);
  // A string that must be one of `choices`.
  std::string choice(const std::string& key, const std::vector<std::string>& choices,
                     std::optional<std::string> def = std::nullopt);
  std::vector<double> number_list(const std::string& key, std::optional<std::vector<double>> def = std::nullopt);
  std::vector<int64_t> integer_list(const std::string& key, std::optional<std::vector<int64_t>> def = std::nullopt);
  // Quantities with SimGrid-style units or plain SI numbers (B/s, s, flop/s, B).
  double bandwidth(const std::string& key, std::optional<double> def = std::nullopt);
  double duration(const std::string& key, std::optional<double> def = std::nullopt);
  double speed(const std::string& key, std::optional<double> def = std::nullopt);
  std::optional<double> opt_bandwidth(const std::string& key);
  std::optional<double> opt_duration(const std::string& key);

  // Nested object. With `required == false` an absent key yields an empty object.
  ObjectReader object(const std::string& key, bool required = false);
  // Raw child value (caller validates); marks the key as known. Records it as-is in resolved.
  std::optional<std::pair<const json*, JsonOrigin>> child(const std::string& key);
  // Stores a value in the resolved tree (e.g. a derived default).
  void set_resolved(const std::string& key, json v);
  json* resolved() { return resolved_; }

  // Rejects unknown keys: "unknown key 'lrr' (did you mean 'lr'?)".
  void finish() const;
  // Rejects every key outside `allowed` as one that belongs to another kind of entry:
  // "'p' does not apply to a persistent straggler (did you mean ...?)", or "...; its keys are ...".
  void only_keys(const std::vector<std::string>& allowed, const std::string& what) const;

  // Constraint helpers: throw InputError at origin().child(key).
  [[noreturn]] void fail(const std::string& key, const std::string& reason) const;
  void require_positive(const std::string& key, double v) const;
  void require_non_negative(const std::string& key, double v) const;
  void require_range(const std::string& key, double v, double lo, double hi) const;

 private:
  const json& require(const std::string& key) const;
  const json* value_;
  JsonOrigin origin_;
  json* resolved_;
  std::vector<std::string> known_;
  mutable std::vector<std::string> asked_;  // keys has() was asked about (for finish()'s messages)
};

}  // namespace dtsim
