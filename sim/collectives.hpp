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

#include "sim/platform_spec.hpp"

namespace dtsim::sim {

struct CollectiveHooks {
  std::function<void(int to, double bytes)> sent;                                      // a send started
  // A receive ended; returns the message's extra delivery delay (latency jitter), 0 for none.
  std::function<double(int from, double bytes, double start, double end)> received;
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

}  // namespace dtsim::sim
