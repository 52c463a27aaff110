// Horovod's tensor fusion (algorithm.overlap "horovod", docs/timing.md), after horovod/common/
// operations.cc (RunLoopOnce) and controller.cc (ComputeResponseList, FuseResponses):
//   every rank runs a background cycle: it waits until cycle_ms after its last cycle started, sends
//   rank 0 (the coordinator) the tensors it has ready, and waits for the response; rank 0 answers
//   with the tensors every rank had ready in its request, in gradient-ready order, fused into
//   buffers of at most fusion_mb; then every rank all-reduces those buffers one after another.
// RunLoopOnce sleeps only what is left of cycle_ms since the last cycle started: a cycle whose
// negotiation and all-reduces took longer than cycle_ms is followed at once by the next. Cycles in
// which no tensor is ready on every rank change nothing and are not simulated: the idle loop ticks
// every cycle_ms from the first cycle it could start, max(last start + cycle_ms, last cycle's end).
#include <algorithm>
#include <cmath>

#include "sim/worker_context.hpp"

namespace dtsim::sim::detail {

namespace {
int hvd_token = 0;  // the payload of negotiation messages (their content lives in HorovodCollective)
constexpr double kHeaderBytes = 64, kBytesPerTensor = 64;  // a request / response: a header, then one entry per tensor
}  // namespace

void WorkerCtx::horovod_allreduce(const std::shared_ptr<LayerAllreduce>& r) {
  const LayerPlan& p = s_.plan;
  // s_.hvd: made before the actors start (sim/runtime.cpp, start_actors)
  HorovodCollective& hc = s_.hvd->collectives[r->seq];
  if (hc.ready_at.empty()) {
    hc.ready_at.assign(static_cast<size_t>(s_.N), std::vector<double>(p.shape.tensors.size(), -1.0));
    hc.answered.assign(p.shape.tensors.size(), 0);
    hc.request_time.assign(static_cast<size_t>(s_.N), 0.0);
  }
  const uint64_t seq = r->seq;
  r->chain->listen([this, seq](size_t t) {
    s_.hvd->collectives.at(seq).ready_at[static_cast<size_t>(rank_)][t] = sg4::Engine::get_clock();
    s_.hvd->note.notify();
  });
  after(ring_seq_, "horovod-" + std::to_string(rank_) + "-" + std::to_string(seq), [this, r] { horovod_cycles(*r); },
        [r] {
          r->finished = true;
          r->note.notify();
        });
}

void WorkerCtx::negotiation_message(int from, int to, double bytes, double start, double end) {
  s_.result.bytes_on_wire += bytes;
  ++s_.result.messages;
  if (from == rank_) {
    sent_bytes_ += bytes;
    ++sent_messages_;
  }
  const sg4::Host* a = s_.hosts.workers[static_cast<size_t>(from)];
  const sg4::Host* b = s_.hosts.workers[static_cast<size_t>(to)];
  s_.links->record(a, b, bytes, start, end);
  s_.result.trace.add_transfer(s_.worker_host_index[static_cast<size_t>(from)], s_.worker_host_index[static_cast<size_t>(to)],
                               start, end, bytes, -1, Transfer::Message, kNegotiationTag);
}

void WorkerCtx::horovod_cycles(LayerAllreduce& r) {
  const LayerPlan& p = s_.plan;
  const size_t N = static_cast<size_t>(s_.N), T = p.shape.tensors.size();
  const double cycle = p.overlap.cycle_ms * 1e-3;
  const auto fusion = static_cast<uint64_t>(p.overlap.fusion_mb * 1024.0 * 1024.0);
  HorovodState& hv = *s_.hvd;
  HorovodCollective& hc = hv.collectives.at(r.seq);
  const std::string base = "horovod-" + std::to_string(r.seq);
  sg4::Mailbox* requests = sg4::Mailbox::by_name(base + "-requests");
  sg4::Mailbox* response = sg4::Mailbox::by_name(base + "-response-" + std::to_string(rank_));
  const std::string me = s_.actor_name();
  size_t done = 0, cycles_seen = 0;
  while (done < T) {
    s_.waiting[me] = "the next Horovod cycle of allreduce #" + std::to_string(r.seq);
    hv.note.wait_until([&] { return hc.any_ready_everywhere(N); });
    const double t = sg4::Engine::get_clock();  // this rank's next tick on its cycle grid
    const double first = std::max(hvd_last_cycle_ + cycle, hvd_loop_free_);
    double tick = first;
    if (tick < t) tick = first + cycle * std::ceil((t - first) / cycle);
    if (tick > t) sg4::this_actor::sleep_until(tick);
    hvd_last_cycle_ = tick;
    s_.check_stop();
    size_t mine = 0;  // tensors this rank reports ready
    for (size_t x = 0; x < T; ++x) mine += !hc.answered[x] && hc.ready_at[static_cast<size_t>(rank_)][x] >= 0;
    if (rank_ == 0) {
      hc.request_time[0] = tick;
      for (size_t i = 1; i < N; ++i) {  // every rank's request of this cycle
        int* tok = nullptr;
        sg4::CommPtr c = requests->get_async<int>(&tok);
        s_.waiting[me] = "the Horovod requests of allreduce #" + std::to_string(r.seq);
        c->wait();
      }
      std::vector<size_t> answer;  // ready on every rank at its request, in gradient-ready order
      for (size_t x : p.ready) {
        if (hc.answered[x]) continue;
        bool all = true;
        for (size_t i = 0; i < N && all; ++i) all = hc.ready_at[i][x] >= 0 && hc.ready_at[i][x] <= hc.request_time[i];
        if (!all) continue;
        answer.push_back(x);
        hc.answered[x] = 1;
        ++hc.answered_count;
      }
      hc.cycles.push_back(fuse(answer, p.tensor_bytes, fusion));
      const double bytes = kHeaderBytes + kBytesPerTensor * static_cast<double>(answer.size());
      std::vector<sg4::CommPtr> sends;
      std::vector<double> starts;
      for (size_t i = 1; i < N; ++i) {
        starts.push_back(sg4::Engine::get_clock());
        sends.push_back(sg4::Mailbox::by_name(base + "-response-" + std::to_string(i))->put_async(&hvd_token, bytes));
      }
      for (size_t i = 0; i < sends.size(); ++i) {
        sends[i]->wait();
        negotiation_message(0, static_cast<int>(i + 1), bytes, starts[i], sends[i]->get_finish_time());
      }
    } else {
      hc.request_time[static_cast<size_t>(rank_)] = tick;
      const double bytes = kHeaderBytes + kBytesPerTensor * static_cast<double>(mine);
      sg4::CommPtr c = requests->put_async(&hvd_token, bytes);
      s_.waiting[me] = "its Horovod request of allreduce #" + std::to_string(r.seq);
      c->wait();
      negotiation_message(rank_, 0, bytes, tick, c->get_finish_time());
      s_.waiting[me] = "the Horovod response of allreduce #" + std::to_string(r.seq);
      response->get<int>();
    }
    s_.waiting.erase(me);
    const std::vector<std::vector<size_t>> groups = hc.cycles.at(cycles_seen++);
    if (!r.contributed && !groups.empty()) {
      contribute(r.seq, r.chain->contribution(s_.P), r.op, r.weight, 0, s_.plan.math_to_first_reader());
      r.contributed = true;
    }
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      size_t count = 0;
      for (size_t x : groups[gi]) count += p.shape.tensors[x].size;
      layer_collective(count, 4.0, r.seq, static_cast<int>(1000 * cycles_seen + gi + 1));
      done += groups[gi].size();
    }
    hvd_loop_free_ = sg4::Engine::get_clock();
  }
  if (++hc.ranks_done == N) hv.collectives.erase(r.seq);
}

}  // namespace dtsim::sim::detail
