#include "common/units.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <utility>
#include <vector>

namespace dtsim::units {
namespace {

// Splits "10.5Gbps" into 10.5 and "Gbps". Rejects empty numbers, trailing garbage, negatives.
std::pair<double, std::string> split(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  const size_t start = i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  bool digits = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) { digits = true; ++i; }
  if (digits && i < s.size() && (s[i] == 'e' || s[i] == 'E') && i + 1 < s.size() &&
      (std::isdigit(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '-' || s[i + 1] == '+')) {
    ++i;
    if (s[i] == '-' || s[i] == '+') ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  if (!digits) throw std::invalid_argument("no number");
  const std::string num = s.substr(start, i - start);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(num, &used);
  } catch (...) {
    throw std::invalid_argument("bad number '" + num + "'");
  }
  if (used != num.size()) throw std::invalid_argument("bad number '" + num + "'");
  if (v < 0) throw std::invalid_argument("negative value");
  if (!std::isfinite(v)) throw std::invalid_argument("not finite");
  std::string unit = s.substr(i);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.erase(unit.begin());
  return {v, unit};
}

struct Prefix {
  const char* p;
  double f;
};
const std::vector<Prefix>& prefixes() {
  static const std::vector<Prefix> v = {
      {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0}, {"Pi", 1125899906842624.0},
      {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18}, {"", 1.0}};
  return v;
}

// unit = <prefix><base>; returns factor or throws, listing the accepted bases.
double with_prefix(const std::string& unit, const std::vector<std::pair<std::string, double>>& bases,
                   const char* expected) {
  for (const auto& [base, bf] : bases) {
    if (unit.size() < base.size() || unit.compare(unit.size() - base.size(), base.size(), base) != 0) continue;
    const std::string pre = unit.substr(0, unit.size() - base.size());
    for (const auto& p : prefixes())
      if (pre == p.p) return p.f * bf;
  }
  throw std::invalid_argument("unknown unit '" + unit + "' (expected " + expected + ")");
}

}  // namespace

double parse_bandwidth(const std::string& s) {
  auto [v, unit] = split(s);
  if (unit.empty()) return v;
  static const std::vector<std::pair<std::string, double>> bases = {{"Bps", 1.0}, {"bps", 0.125}};
  return v * with_prefix(unit, bases, "e.g. 10Gbps, 1.25GBps, 100Mbps, 1GiBps");
}

double parse_duration(const std::string& s) {
  auto [v, unit] = split(s);
  if (unit.empty()) return v;
  static const std::vector<std::pair<std::string, double>> table = {
      {"w", 604800.0}, {"d", 86400.0}, {"h", 3600.0}, {"m", 60.0}, {"s", 1.0},
      {"ms", 1e-3},   {"us", 1e-6},   {"ns", 1e-9},  {"ps", 1e-12}};
  for (const auto& [u, f] : table)
    if (unit == u) return v * f;
  throw std::invalid_argument("unknown unit '" + unit + "' (expected s, ms, us, ns, ps, m, h, d or w)");
}

double parse_speed(const std::string& s) {
  auto [v, unit] = split(s);
  if (unit.empty()) return v;
  static const std::vector<std::pair<std::string, double>> bases = {{"f", 1.0}, {"flops", 1.0}};
  return v * with_prefix(unit, bases, "e.g. 10Tf, 2.5Gf, 100Mf");
}

double parse_size(const std::string& s) {
  auto [v, unit] = split(s);
  if (unit.empty()) return v;
  static const std::vector<std::pair<std::string, double>> bases = {{"B", 1.0}, {"b", 0.125}};
  return v * with_prefix(unit, bases, "e.g. 1MB, 4KiB, 8b");
}

namespace {
std::string fmt(double v, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g %s", v, unit);
  return buf;
}
}  // namespace

std::string format_bandwidth(double Bps) {
  const double bps = Bps * 8;
  if (bps >= 1e12) return fmt(bps / 1e12, "Tb/s");
  if (bps >= 1e9) return fmt(bps / 1e9, "Gb/s");
  if (bps >= 1e6) return fmt(bps / 1e6, "Mb/s");
  if (bps >= 1e3) return fmt(bps / 1e3, "kb/s");
  return fmt(bps, "b/s");
}

std::string format_duration(double s) {
  if (s >= 3600) return fmt(s / 3600, "h");
  if (s >= 60) return fmt(s / 60, "min");
  if (s >= 1) return fmt(s, "s");
  if (s >= 1e-3) return fmt(s * 1e3, "ms");
  if (s >= 1e-6) return fmt(s * 1e6, "us");
  return fmt(s * 1e9, "ns");
}

std::string format_speed(double f) {
  if (f >= 1e15) return fmt(f / 1e15, "Pflop/s");
  if (f >= 1e12) return fmt(f / 1e12, "Tflop/s");
  if (f >= 1e9) return fmt(f / 1e9, "Gflop/s");
  if (f >= 1e6) return fmt(f / 1e6, "Mflop/s");
  if (f >= 1e3) return fmt(f / 1e3, "kflop/s");
  return fmt(f, "flop/s");
}

namespace {
std::string plain(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

std::string implausible_plain_bandwidth(double Bps) {
  if (!(Bps < 1e6)) return "";
  return plain(Bps) + " without a unit is taken as " + plain(Bps) + " bytes/s (" + format_bandwidth(Bps) +
         "): write the unit, e.g. \"" + plain(Bps) + "Gbps\" or \"" + plain(Bps) + "MBps\"";
}

std::string implausible_plain_latency(double s) {
  if (!(s > 1)) return "";
  return plain(s) + " without a unit is taken as " + plain(s) + " seconds: write the unit, e.g. \"" + plain(s) + "us\" or \"" +
         plain(s) + "ms\"";
}

std::string format_bytes(double b) {
  if (b >= 1e12) return fmt(b / 1e12, "TB");
  if (b >= 1e9) return fmt(b / 1e9, "GB");
  if (b >= 1e6) return fmt(b / 1e6, "MB");
  if (b >= 1e3) return fmt(b / 1e3, "kB");
  return fmt(b, "B");
}

}  // namespace dtsim::units
