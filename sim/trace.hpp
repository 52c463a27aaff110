// Timeline recording: spans of compute, send, receive, waiting and server updates, per host, in
// simulated time, written as Chrome/Perfetto trace events (docs/timeline.md):
//   - one process per host (pid = host index, in Tracer::hosts order), plus a "network" process;
//   - one track per activity (compute, update, send, recv, wait); overlapping spans of one kind on
//     one host (e.g. a server receiving from many workers at once) go to extra tracks "send 2", ...
//     so every track holds properly nested slices;
//   - a flow arrow (ph "s" -> "f") from each transfer's Send span to its Recv span, for PS messages
//     and collective steps alike;
//   - counters (ph "C"): bytes in flight out of / into each host, and on the whole network.
// Times are microseconds of simulated time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dtsim::sim {

enum class SpanKind : uint8_t { Compute = 0, Send = 1, Recv = 2, Wait = 3, Update = 4 };

// What a Send/Recv pair carried.
enum class Transfer : uint8_t { None = 0, Message = 1, Collective = 2 };

struct Span {
  int host;      // index into Tracer::hosts
  SpanKind kind;
  double start;  // simulated seconds
  double end;
  double bytes;  // for transfers
  int peer;      // other host of a transfer, or -1
  int64_t step;  // a message's step, a collective's sequence number, a compute's minibatch number
  uint64_t flow = 0;                 // the Send and Recv spans of one transfer share it; 0: none
  Transfer transfer = Transfer::None;
  int tag = 0;                       // a PS message's tag (algo::Tag)
};

class Tracer {
 public:
  bool enabled = false;
  std::vector<std::string> hosts;  // names, indexed by Span::host
  // Layer-wise timing: the model's layer names. A Compute span with tag 1 / 2 is layer `peer`'s
  // forward / backward; tag 3 / 4 a whole forward / backward (docs/timeline.md).
  std::vector<std::string> layers;
  std::vector<Span> spans;

  void add(const Span& s) {
    if (enabled) spans.push_back(s);
  }
  // One transfer from host `src` to host `dst` over [start, end]: a Send span on src and a Recv
  // span on dst, joined by a flow arrow. `tag` names a PS message's kind (Transfer::Message).
  void add_transfer(int src, int dst, double start, double end, double bytes, int64_t step, Transfer what,
                    int tag = 0) {
    if (!enabled) return;
    const uint64_t id = ++flows_;
    spans.push_back({src, SpanKind::Send, start, end, bytes, dst, step, id, what, tag});
    spans.push_back({dst, SpanKind::Recv, start, end, bytes, src, step, id, what, tag});
  }
  // The trace as Chrome JSON text.
  std::string chrome_json() const;

 private:
  uint64_t flows_ = 0;
};

}  // namespace dtsim::sim
