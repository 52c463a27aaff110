#include "common/json_reader.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "common/units.hpp"

namespace dtsim {

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment: insertions, deletions, substitutions and adjacent transpositions,
  // each costing 1, case-insensitive ("rnu" -> "run" is 1).
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  auto lc = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lc(a[i - 1]) == lc(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lc(a[i - 1]) == lc(b[j - 2]) && lc(a[i - 2]) == lc(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

std::optional<std::string> nearest_key(const std::string& key, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(key, c);
    if (d < best_d) { best_d = d; best = c; }
  }
  if (!best) return best;
  // A plausible typo: 1 edit for names of up to 3 letters, 2 up to 8, then a quarter of the length.
  const size_t len = std::max(key.size(), best->size());
  const size_t max_d = len <= 3 ? 1 : len <= 8 ? 2 : len / 4 + 1;
  if (best_d <= max_d && best_d < key.size()) return best;
  return std::nullopt;
}

std::string json_error_detail(const json::exception& e) {
  const std::string what = e.what();
  const auto close = what.find("] ");
  return what.rfind("[json.exception.", 0) == 0 && close != std::string::npos ? what.substr(close + 2) : what;
}

namespace {

// A SAX pass that stops at the first key an object holds twice and knows its dotted path
// (nlohmann's parser keeps the last of the two values without a word).
class DuplicateKeyFinder : public nlohmann::json_sax<json> {
 public:
  std::optional<std::string> duplicate;  // the path of the second occurrence

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return push(false); }
  bool end_object() override { return pop(); }
  bool start_array(std::size_t) override { return push(true); }
  bool end_array() override { return pop(); }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    f.key = k;
    if (f.keys.insert(k).second) return true;
    duplicate = path();
    return false;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;  // an array's element being read
    std::string key;   // an object's key being read
    std::set<std::string> keys;
  };
  std::vector<Frame> frames_;

  bool value() {  // a value ended: the enclosing array moves to its next element
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  bool push(bool array) {
    frames_.emplace_back();
    frames_.back().array = array;
    return true;
  }
  bool pop() {
    frames_.pop_back();
    return value();
  }
  std::string path() const {
    JsonOrigin o;
    for (const Frame& f : frames_) o = f.array ? o.index(f.index) : o.child(f.key);
    return o.path;
  }
};

}  // namespace

json parse_json_document(const std::string& text, const std::string& file) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    size_t line = 1, col = 1;  // of the byte before e.byte, where nlohmann stopped
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    // nlohmann: "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while ..."
    const std::string what = e.what();
    const auto colon = what.find(": ", what.find("parse error"));
    throw InputError(file, "", "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
                                   (colon == std::string::npos ? what : what.substr(colon + 2)));
  } catch (const json::exception& e) {  // valid syntax, impossible value: a number too large for a double
    throw InputError(file, "", "invalid JSON: " + json_error_detail(e));
  }
  if (auto dup = duplicate_key(text)) throw InputError(file, *dup, kDuplicateKey);
  return doc;
}

std::optional<std::string> duplicate_key(const std::string& text) {
  DuplicateKeyFinder dup;
  json::sax_parse(text, &dup);
  return dup.duplicate;
}

std::string printable_excerpt(const std::string& s, size_t max) {
  std::string out;
  for (const char ch : s) {
    if (out.size() >= max) return out + "...";
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) out += ch;
    else append_hex_escape(out, c);
  }
  return out;
}

std::string json_type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

namespace {
std::string quote(const std::string& s) { return "'" + s + "'"; }
std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + quote(v[i]);
  return s;
}
}  // namespace

ObjectReader::ObjectReader(const json& value, JsonOrigin origin, json* resolved)
    : value_(&value), origin_(std::move(origin)), resolved_(resolved) {
  if (!value.is_object()) origin_.fail("expected an object, got " + json_type_name(value));
  if (resolved_ && !resolved_->is_object()) *resolved_ = json::object();
}

bool ObjectReader::has(const std::string& key) const {
  if (std::find(asked_.begin(), asked_.end(), key) == asked_.end()) asked_.push_back(key);
  return value_->contains(key);
}

void ObjectReader::accept(const std::string& key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
}

const json& ObjectReader::require(const std::string& key) const {
  auto it = value_->find(key);
  if (it == value_->end()) origin_.child(key).fail("missing required key");
  return *it;
}

void ObjectReader::fail(const std::string& key, const std::string& reason) const {
  origin_.child(key).fail(reason);
}

void ObjectReader::set_resolved(const std::string& key, json v) {
  if (resolved_) (*resolved_)[key] = std::move(v);
}

double ObjectReader::number(const std::string& key, std::optional<double> def) {
  accept(key);
  if (!has(key)) {
    if (!def) require(key);
    set_resolved(key, *def);
    return *def;
  }
  const json& v = (*value_)[key];
  if (!v.is_number()) fail(key, "expected a number, got " + json_type_name(v));
  const double d = v.get<double>();
  if (!std::isfinite(d)) fail(key, "expected a finite number");
  set_resolved(key, v);
  return d;
}

std::optional<double> ObjectReader::opt_number(const std::string& key) {
  accept(key);
  if (!has(key)) return std::nullopt;
  return number(key);
}

int64_t ObjectReader::integer(const std::string& key, std::optional<int64_t> def) {
  accept(key);
  if (!has(key)) {
    if (!def) require(key);
    set_resolved(key, *def);
    return *def;
  }
  const json& v = (*value_)[key];
  if (v.is_number_integer() || v.is_number_unsigned()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) fail(key, "integer too large");
    set_resolved(key, v);
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // A whole number written as a float (1e6, 2.0) is that integer: every double this whole and
    // below 2^63 is exactly an int64.
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9223372036854775808.0) {
      set_resolved(key, static_cast<int64_t>(d));
      return static_cast<int64_t>(d);
    }
    fail(key, "expected an integer, got " + v.dump());
  }
  fail(key, "expected an integer, got " + json_type_name(v));
}

std::optional<int64_t> ObjectReader::opt_integer(const std::string& key) {
  accept(key);
  if (!has(key)) return std::nullopt;
  return integer(key);
}

bool ObjectReader::boolean(const std::string& key, std::optional<bool> def) {
  accept(key);
  if (!has(key)) {
    if (!def) require(key);
    set_resolved(key, *def);
    return *def;
  }
  const json& v = (*value_)[key];
  if (!v.is_boolean()) fail(key, "expected true or false, got " + json_type_name(v));
  set_resolved(key, v);
  return v.get<bool>();
}

std::string ObjectReader::string(const std::string& key, std::optional<std::string> def) {
  accept(key);
  if (!has(key)) {
    if (!def) require(key);
    set_resolved(key, *def);
    return *def;
  }
  const json& v = (*value_)[key];
  if (!v.is_string()) fail(key, "expected a string, got " + json_type_name(v));
  set_resolved(key, v);
  return v.get<std::string>();
}

std::optional<std::string> ObjectReader::opt_string(const std::string& key) {
  accept(key);
  if (!has(key)) return std::nullopt;
  return string(key);
}

std::string ObjectReader::choice(const std::string& key, const std::vector<std::string>& choices,
                                 std::optional<std::string> def) {
  const std::string s = string(key, std::move(def));
  if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  std::string reason = "unknown value '" + s + "'";
  if (auto near = nearest_key(s, choices)) reason += " (did you mean '" + *near + "'?)";
  reason += "; expected one of " + join(choices);
  fail(key, reason);
}

std::vector<double> ObjectReader::number_list(const std::string& key, std::optional<std::vector<double>> def) {
  accept(key);
  if (!has(key)) {
    if (!def) require(key);
    set_resolved(key, *def);
    return *def;
  }
  const json& v = (*value_)[key];
  std::vector<double> out;
  if (v.is_number()) {  // a single number is a list of one
    out.push_back(number(key));
    set_resolved(key, out);
    return out;
  }
  if (!v.is_array()) fail(key, "expected a list of numbers, got " + json_type_name(v));
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number()) origin_.child(key).index(i).fail("expected a number, got " + json_type_name(v[i]));
    out.push_back(v[i].get<double>());
  }
  set_resolved(key, v);
  return out;
}

std::vector<int64_t> ObjectReader::integer_list(const std::string& key, std::optional<std::vector<int64_t>> def) {
  accept(key);
  if (!has(key)) {
    if (!def) require(key);
    set_resolved(key, *def);
    return *def;
  }
  const json& v = (*value_)[key];
  if (!v.is_array()) fail(key, "expected a list of integers, got " + json_type_name(v));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    if (e.is_number_unsigned() && e.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      origin_.child(key).index(i).fail("integer too large");
    if (e.is_number_integer() || e.is_number_unsigned()) {
      out.push_back(e.get<int64_t>());
    } else if (e.is_number_float() && std::isfinite(e.get<double>()) && e.get<double>() == std::floor(e.get<double>()) &&
               std::fabs(e.get<double>()) < 9223372036854775808.0) {
      out.push_back(static_cast<int64_t>(e.get<double>()));  // as integer() above
    } else {
      origin_.child(key).index(i).fail("expected an integer, got " + (e.is_number() ? e.dump() : json_type_name(e)));
    }
  }
  set_resolved(key, out);
  return out;
}

namespace {
template <class Parse>
double unit_value(ObjectReader& r, const std::string& key, std::optional<double> def, const char* what,
                  Parse parse) {
  r.accept(key);
  if (!r.has(key)) {
    if (!def) r.fail(key, "missing required key");
    r.set_resolved(key, *def);
    return *def;
  }
  const json& v = r.raw()[key];
  double d = 0;
  if (v.is_number()) {
    d = v.get<double>();
  } else if (v.is_string()) {
    try {
      d = parse(v.get<std::string>());
    } catch (const std::invalid_argument& e) {
      r.fail(key, std::string("invalid ") + what + " " + v.dump() + ": " + e.what());
    }
  } else {
    r.fail(key, std::string("expected a ") + what + " (number or string with unit), got " + json_type_name(v));
  }
  if (!std::isfinite(d)) r.fail(key, std::string("the ") + what + " must be finite");
  if (d < 0) r.fail(key, std::string("the ") + what + " must not be negative, got " + v.dump());
  r.set_resolved(key, d);
  return d;
}
}  // namespace

double ObjectReader::bandwidth(const std::string& key, std::optional<double> def) {
  const double v = unit_value(*this, key, def, "bandwidth", units::parse_bandwidth);
  if (v <= 0) fail(key, "the bandwidth must be positive");
  return v;
}
double ObjectReader::duration(const std::string& key, std::optional<double> def) {
  return unit_value(*this, key, def, "duration", units::parse_duration);
}
double ObjectReader::speed(const std::string& key, std::optional<double> def) {
  const double v = unit_value(*this, key, def, "speed", units::parse_speed);
  if (v <= 0) fail(key, "the speed must be positive");
  return v;
}
std::optional<double> ObjectReader::opt_bandwidth(const std::string& key) {
  accept(key);
  if (!has(key)) return std::nullopt;
  return bandwidth(key);
}
std::optional<double> ObjectReader::opt_duration(const std::string& key) {
  accept(key);
  if (!has(key)) return std::nullopt;
  return duration(key);
}

ObjectReader ObjectReader::object(const std::string& key, bool required) {
  static const json empty = json::object();
  accept(key);
  json* sub = nullptr;
  if (resolved_) {
    if (!resolved_->contains(key) || !(*resolved_)[key].is_object()) (*resolved_)[key] = json::object();
    sub = &(*resolved_)[key];
  }
  if (!has(key)) {
    if (required) require(key);
    return ObjectReader(empty, origin_.child(key), sub);
  }
  return ObjectReader((*value_)[key], origin_.child(key), sub);
}

std::optional<std::pair<const json*, JsonOrigin>> ObjectReader::child(const std::string& key) {
  accept(key);
  if (!has(key)) return std::nullopt;
  set_resolved(key, (*value_)[key]);
  return std::make_pair(&(*value_)[key], origin_.child(key));
}

void ObjectReader::finish() const {
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    if (std::find(known_.begin(), known_.end(), it.key()) != known_.end()) continue;
    std::vector<std::string> keys = known_;  // the keys read, then those only asked about
    for (const auto& k : asked_)
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    std::string reason = "unknown key '" + it.key() + "'";
    if (auto near = nearest_key(it.key(), keys)) reason += " (did you mean '" + *near + "'?)";
    else if (!keys.empty()) reason += "; known keys: " + join(keys);
    origin_.child(it.key()).fail(reason);
  }
}

void ObjectReader::only_keys(const std::vector<std::string>& allowed, const std::string& what) const {
  for (auto it = value_->begin(); it != value_->end(); ++it)
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      std::string reason = quote(it.key()) + " does not apply to " + what;
      if (auto near = nearest_key(it.key(), allowed)) reason += " (did you mean '" + *near + "'?)";
      else reason += "; its keys are " + join(allowed);
      fail(it.key(), reason);
    }
}

void ObjectReader::require_positive(const std::string& key, double v) const {
  if (!(v > 0)) fail(key, "must be positive, got " + json(v).dump());
}
void ObjectReader::require_non_negative(const std::string& key, double v) const {
  if (!(v >= 0)) fail(key, "must not be negative, got " + json(v).dump());
}
void ObjectReader::require_range(const std::string& key, double v, double lo, double hi) const {
  if (!(v >= lo && v <= hi)) {
    std::ostringstream os;
    os << "must be in [" << lo << ", " << hi << "], got " << v;
    fail(key, os.str());
  }
}

}  // namespace dtsim
