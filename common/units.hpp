// SimGrid-style unit strings -> SI base units.
//   bandwidth: "10Gbps" (bits/s) or "1.25GBps" (bytes/s), k/M/G/T/P and Ki/Mi/Gi/Ti -> bytes/s
//   duration : "10us", "2ms", "1.5s", "3m", "1h", "5ns", "1ps", "1d", "1w"    -> seconds
//   speed    : "10Tf", "2.5Gf", "100f", "1kf"                                 -> flop/s
//   size     : "1MB", "4KiB", "8b" (bits)                                      -> bytes
// A plain JSON number is taken as already in SI base units (bytes/s, seconds, flop/s, bytes).
// Each parser throws std::invalid_argument with a one-line reason on a malformed string.
#pragma once
#include <string>

namespace dtsim::units {

double parse_bandwidth(const std::string& s);
double parse_duration(const std::string& s);
double parse_speed(const std::string& s);
double parse_size(const std::string& s);

// Human-readable formatting, for summaries and tables.
std::string format_bandwidth(double bytes_per_s);  // "10 Gb/s"
std::string format_duration(double s);              // "1.234 ms"
std::string format_bytes(double bytes);             // "2.5 MB"
std::string format_speed(double flops);             // "10 Gflop/s"

// A plain number is taken in SI base units, so a forgotten unit goes unnoticed ("bandwidth": 10 is
// 10 bytes/s, "latency": 10 is 10 s). These name the unit assumed for an implausible plain value
// (a bandwidth below 1 MB/s, a latency above 1 s) and suggest a unit string; "" when plausible.
std::string implausible_plain_bandwidth(double bytes_per_s);
std::string implausible_plain_latency(double s);

}  // namespace dtsim::units
