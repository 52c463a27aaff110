// Timeline recording: spans of compute, send, receive and waiting, per host, in simulated time,
// written as Chrome/Perfetto trace events (pid = host, tid = activity track, microseconds).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dtsim::sim {

enum class SpanKind : uint8_t { Compute = 0, Send = 1, Recv = 2, Wait = 3, Update = 4 };

struct Span {
  int host;      // index into Tracer::hosts
  SpanKind kind;
  double start;  // simulated seconds
  double end;
  double bytes;  // for transfers
  int peer;      // other host of a transfer, or -1
  int64_t step;
};

class Tracer {
 public:
  bool enabled = false;
  std::vector<std::string> hosts;  // names, indexed by Span::host
  std::vector<Span> spans;

  void add(const Span& s) {
    if (enabled) spans.push_back(s);
  }
  // The trace as Chrome JSON text.
  std::string chrome_json() const;
};

}  // namespace dtsim::sim
