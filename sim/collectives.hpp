// The simulated transfers of one all-reduce, step by step (docs/platforms.md "Collectives").
// The real reduction happens once in the runtime; this only moves bytes, so that the network model
// sees every message of the algorithm and contention is modelled:
//   ring                2(N-1) steps of |x|/N to the next rank (reduce-scatter, then all-gather)
//   hierarchical        per locality group (rack): ring reduce-scatter + gather to the group's
//                       leader; ring all-reduce among the R leaders; scatter + ring all-gather back
//   recursive-doubling  ceil(log2 N) exchanges of |x| with rank XOR 2^k (non-powers of two fold the
//                       extra ranks in first and out last)
//   tree                binomial-tree reduce to rank 0, then binomial-tree broadcast (|x| per hop)
// Each rank runs this in its own communication actor; messages between two ranks use the mailbox
// "allreduce-<dst>-<src>" (rendezvous: both sides post in the same step). Under on_failure
// "elastic" (sim/elastic.hpp) a collective runs among a subset of the workers: the pattern numbers
// them 0..m-1 in rank order and the messages use their real ranks' mailboxes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <simgrid/s4u/Barrier.hpp>
#include <simgrid/s4u/Host.hpp>

#include "sim/platform_spec.hpp"

namespace dtsim::sim {

struct CollectiveHooks {
  // `messages` sends of `bytes` in all to `to` started (1 step by step; the aggregated ring
  // reports a rank's whole part at once).
  std::function<void(int to, double bytes, int messages)> sent;
  // `messages` receives of `bytes` in all, from `start` to `end`, ended; returns the extra delivery
  // delay (latency jitter), 0 for none.
  std::function<double(int from, double bytes, double start, double end, int messages)> received;
  std::function<void(const std::string& what)> waiting;  // what this rank waits for; "" once done
  // Layer-wise timing on CPU workers (docs/timing.md): called after a step whose received data this
  // rank adds into its own, with the number of elements reduced (the runtime charges the host's CPU).
  std::function<void(double elements)> reduced;
  // on_failure "elastic": a transfer that fails (a peer's host failed, or a peer abandoned the
  // collective) cancels this rank's transfers of the step and throws CollectiveAbandoned instead of
  // ending the run.
  bool survive_failures = false;
};

// Thrown by allreduce_transfers under CollectiveHooks::survive_failures.
struct CollectiveAbandoned {};

// The transfers of rank `rank`'s part of one all-reduce of `count` elements of `element_bytes` bytes
// each among N ranks. `groups[i]` is rank i's locality group (hierarchical only; contiguous ranks).
void allreduce_transfers(CollectiveSpec::Algorithm algorithm, int N, int rank, const std::vector<int>& groups,
                         size_t count, double element_bytes, const CollectiveHooks& hooks);
// The same among `members` (real ranks, ascending; this rank is members[index]): the algorithm's
// pattern over m = members.size() ranks, its messages between the real ranks (hooks name real ranks).
void allreduce_transfers(CollectiveSpec::Algorithm algorithm, const std::vector<int>& members, int index,
                         const std::vector<int>& groups, size_t count, double element_bytes, const CollectiveHooks& hooks);

// The ring all-reduce as one batched event (platform.collective.transfers "aggregated",
// docs/platforms.md "Collectives"). Each step of the ring moves the same N chunk sizes over the
// same N routes (rank j to rank j+1): step s sends chunk (j - s) mod N, a permutation of the
// chunks. So the last rank to arrive posts the first step's N transfers at once (host to host,
// the same sizes, routes and network model as step by step, contention included) and waits for
// them; every rank then ends 2(N-1) steps of that duration after the first step began. This is the
// step-by-step ring exactly when the ranks arrive together and the N transfers of a step end
// together (alike routes: tests/sim/test_aggregated_ring.cpp); otherwise the step-by-step ring lets
// early ranks start and lets a step's fast transfers run ahead, which this does not (a barrier at
// the start and one step time for all: bench/README.md measures the difference). It simulates N
// transfers per all-reduce instead of 2N(N-1). Not for collectives whose steps load the CPU
// (layer-wise CPU workers), Horovod's fused all-reduces (its negotiation starts the ranks at
// different times, and a late end moves the next cycle), latency jitter, failures or elastic
// groups: those run step by step.
struct AggregatedRing {
  int arrived = 0;
  simgrid::s4u::BarrierPtr measured;  // every rank waits here for the first step's duration
  double start = 0, end = 0;
};
// Rank `rank`'s part (hosts[i] is rank i's host); `st` is shared by the collective's N ranks.
void aggregated_ring(AggregatedRing& st, const std::vector<simgrid::s4u::Host*>& hosts, int rank, size_t count,
                     double element_bytes, const CollectiveHooks& hooks);

}  // namespace dtsim::sim
