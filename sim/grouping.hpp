// Identical workers simulated once: platform.workers.grouping "identical" (docs/platforms.md,
// "Identical workers simulated once").
//
// When N workers are alike (same host, NIC, compute time; no straggler, failure or jitter), start
// together and the algorithm treats them alike (Algorithm::interchangeable_workers: SSGD on a PS),
// every worker's flows get the same rates: SimGrid's max-min allocation is unique, so it is
// symmetric under any permutation of identical workers. On a star, a worker's NIC carries only its
// own flows and every other link (the shards' NICs, the backbone) carries the same number of flows
// of each worker. One worker on a platform whose shared links have 1/N of their bandwidth then
// gets exactly the rate each of the N gets: a shared link's constraint N·r <= C becomes r <= C/N,
// a worker NIC's is unchanged, and lv08's per-flow terms (latency and bandwidth factors, the TCP
// window bound, RTT weights, the 5 % reverse cross-traffic) are the same for every flow. The
// server counts the one worker's message as the N it stands for in its costs (an aggregation of N
// gradients), and the run's counters (samples, gradients, messages, bytes) count N.
// tests/sim/test_grouping.cpp checks the outputs against the ungrouped run in exact mode and lv08.
#pragma once
#include <string>

#include "sim/config.hpp"
#include "sim/runtime.hpp"

namespace dtsim::algo {
class Algorithm;
}

namespace dtsim::sim {

// Why `x`'s workers cannot be simulated as one ("" when they can): real compute, an algorithm
// whose workers are not interchangeable, a topology other than a star, co-located shards,
// worker groups that differ, stragglers, failures, checkpoints, or a single worker.
std::string grouping_unused(const Experiment& x, const algo::Algorithm& a);

// platform.workers.grouping "identical" asked for, and it applies: what `run` and the estimates follow.
inline bool grouping_applies(const Experiment& x, const algo::Algorithm& a) {
  return x.platform.group_identical && grouping_unused(x, a).empty();
}

// The experiment simulated instead of `x`: one worker standing for x's N, every shard's NIC and
// the star's backbone at 1/N of their bandwidth.
Experiment grouped_experiment(const Experiment& x);

// The grouped run's result as that of x's N workers: the representative's per-worker row, its
// NIC's link rows and its trace spans for every worker; the shared links' rows at their nominal
// bandwidth with the bytes and transfers of N workers.
void expand_grouped(RunResult& r, const Experiment& x);

}  // namespace dtsim::sim
