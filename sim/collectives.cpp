#include "sim/collectives.hpp"

#include <simgrid/s4u.hpp>

#include <algorithm>

#include "common/error.hpp"

namespace dtsim::sim {

namespace sg4 = simgrid::s4u;

namespace {

int token = 0;  // the payload of every collective message (only its simulated size matters)

// Bytes of chunk c when `count` elements are split into `parts` chunks of whole elements.
double chunk_elems(size_t count, int parts, int c) {
  const size_t lo = count * static_cast<size_t>(c) / static_cast<size_t>(parts);
  const size_t hi = count * static_cast<size_t>(c + 1) / static_cast<size_t>(parts);
  return static_cast<double>(hi - lo);
}

int mod(int a, int n) { return ((a % n) + n) % n; }

struct Xfer {
  int peer;
  double bytes;
};

// One rank's side of the transfers, with the runtime's accounting hooks.
class Rank {
 public:
  Rank(int rank, size_t count, double element_bytes, const CollectiveHooks& hooks, const std::vector<int>* real = nullptr)
      : me(rank), count(count), eb(element_bytes), hooks_(hooks), real_(real) {}
  // The real rank of pattern rank v (the identity unless the collective runs among a subset).
  int real(int v) const { return real_ ? (*real_)[static_cast<size_t>(v)] : v; }
  // Bytes of chunk c of the vector split `parts` ways, and of the whole vector.
  double chunk_bytes(int parts, int c) const { return eb * chunk_elems(count, parts, c); }
  double all() const { return eb * static_cast<double>(count); }

  // One step: these sends and receives run concurrently; returns when all have completed.
  // `reduce`: elements this rank adds into its own once the step's receives are in (0: none).
  void step(const std::vector<Xfer>& sends, const std::vector<Xfer>& recvs, const std::string& what, double reduce = 0) {
    if (sends.empty() && recvs.empty()) return;
    std::vector<sg4::CommPtr> out, in;
    for (const auto& s : sends) {
      if (hooks_.sent) hooks_.sent(real(s.peer), s.bytes, 1);
      out.push_back(box(s.peer, me)->put_async(&token, s.bytes));
    }
    std::vector<int*> got(recvs.size(), nullptr);
    for (size_t i = 0; i < recvs.size(); ++i) in.push_back(box(me, recvs[i].peer)->get_async<int>(&got[i]));
    if (hooks_.waiting) hooks_.waiting(what);
    double deliver = 0;  // the last delivery time, with latency jitter
    try {
      for (size_t i = 0; i < in.size(); ++i) {
        in[i]->wait();
        const double end = in[i]->get_finish_time();
        const double delay =
            hooks_.received ? hooks_.received(real(recvs[i].peer), recvs[i].bytes, in[i]->get_start_time(), end, 1) : 0;
        deliver = std::max(deliver, end + delay);
      }
      for (auto& c : out) c->wait();
    } catch (const simgrid::Exception& e) {  // a peer's host failed (platform.failures)
      if (!hooks_.survive_failures && !dynamic_cast<const simgrid::NetworkFailureException*>(&e)) throw;
      for (auto* v : {&in, &out})
        for (auto& c : *v) try {
            c->cancel();
          } catch (...) {
          }
      if (hooks_.survive_failures) throw CollectiveAbandoned{};  // on_failure "elastic": re-run among the survivors
      throw RuntimeError("rank " + std::to_string(real(me)) + " lost a peer during an all-reduce (" + what +
                         "): collectives do not survive a failed worker; use on_failure \"wait\" or a parameter server (docs/platforms.md, Failures)");
    }
    if (deliver > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(deliver);
    if (reduce > 0 && hooks_.reduced) hooks_.reduced(reduce);
    if (hooks_.waiting) hooks_.waiting("");
  }

  // Ring reduce-scatter among `members` (this rank is members[j]): m-1 steps; afterwards member j
  // holds the reduced chunk (j+1) mod m of `count` split m ways.
  // Steps are labelled "<phase> step <k>", k counting both halves of a ring all-reduce.
  void ring_reduce_scatter(const std::vector<int>& members, int j, const char* phase) {
    const int m = static_cast<int>(members.size());
    for (int s = 0; s < m - 1; ++s) {
      step({{members[static_cast<size_t>(mod(j + 1, m))], chunk_bytes(m, mod(j - s, m))}},
           {{members[static_cast<size_t>(mod(j - 1, m))], chunk_bytes(m, mod(j - s - 1, m))}},
           std::string(phase) + " step " + std::to_string(s) + " (reduce-scatter, a chunk from rank " +
               std::to_string(real(members[static_cast<size_t>(mod(j - 1, m))])) + ")",
           chunk_elems(count, m, mod(j - s - 1, m)));
    }
  }
  // Ring all-gather among `members` starting from member j holding chunk (j+1) mod m: m-1 steps.
  void ring_allgather(const std::vector<int>& members, int j, const char* phase) {
    const int m = static_cast<int>(members.size());
    for (int s = 0; s < m - 1; ++s) {
      step({{members[static_cast<size_t>(mod(j + 1, m))], chunk_bytes(m, mod(j + 1 - s, m))}},
           {{members[static_cast<size_t>(mod(j - 1, m))], chunk_bytes(m, mod(j - s, m))}},
           std::string(phase) + " step " + std::to_string(m - 1 + s) + " (all-gather, a chunk from rank " +
               std::to_string(real(members[static_cast<size_t>(mod(j - 1, m))])) + ")");
    }
  }

  int me;
  size_t count;
  double eb;

 private:
  sg4::Mailbox* box(int dst, int src) {
    dst = real(dst);
    src = real(src);
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(dst)) << 32) | static_cast<uint32_t>(src);
    for (auto& [k, m] : cache_)
      if (k == key) return m;
    sg4::Mailbox* m = sg4::Mailbox::by_name("allreduce-" + std::to_string(dst) + "-" + std::to_string(src));
    cache_.emplace_back(key, m);
    return m;
  }

  const CollectiveHooks& hooks_;
  const std::vector<int>* real_;
  std::vector<std::pair<uint64_t, sg4::Mailbox*>> cache_;
};

void ring(Rank& r, int N) {
  std::vector<int> all(static_cast<size_t>(N));
  for (int i = 0; i < N; ++i) all[static_cast<size_t>(i)] = i;
  r.ring_reduce_scatter(all, r.me, "ring");
  r.ring_allgather(all, r.me, "ring");
}

void hierarchical(Rank& r, int N, const std::vector<int>& groups) {
  const int g = groups.at(static_cast<size_t>(r.me));
  std::vector<int> members, leaders;
  for (int i = 0; i < N; ++i) {
    if (groups[static_cast<size_t>(i)] == g) members.push_back(i);
    if (i == 0 || groups[static_cast<size_t>(i)] != groups[static_cast<size_t>(i - 1)]) leaders.push_back(i);
  }
  const int m = static_cast<int>(members.size());
  const int j = static_cast<int>(std::find(members.begin(), members.end(), r.me) - members.begin());
  const int leader = members.front();
  if (m > 1) {
    // 1. Reduce inside the group: ring reduce-scatter, then every member sends its reduced chunk
    //    to the leader (concurrently: the leader's NIC carries (m-1)/m of the vector).
    r.ring_reduce_scatter(members, j, "group ring");
    if (r.me == leader) {
      std::vector<Xfer> in;
      for (int k = 1; k < m; ++k) in.push_back({members[static_cast<size_t>(k)], r.chunk_bytes(m, mod(k + 1, m))});
      r.step({}, in, "group gather");
    } else {
      r.step({{leader, r.chunk_bytes(m, mod(j + 1, m))}}, {}, "group gather");
    }
  }
  // 2. Ring all-reduce among the group leaders.
  const int R = static_cast<int>(leaders.size());
  if (r.me == leader && R > 1) {
    const int L = static_cast<int>(std::find(leaders.begin(), leaders.end(), r.me) - leaders.begin());
    r.ring_reduce_scatter(leaders, L, "leaders ring");
    r.ring_allgather(leaders, L, "leaders ring");
  }
  // 3. Broadcast back inside the group: the leader scatters chunk (k+1) mod m to member k, then a
  //    ring all-gather.
  if (m > 1) {
    if (r.me == leader) {
      std::vector<Xfer> out;
      for (int k = 1; k < m; ++k) out.push_back({members[static_cast<size_t>(k)], r.chunk_bytes(m, mod(k + 1, m))});
      r.step(out, {}, "group scatter");
    } else {
      r.step({}, {{leader, r.chunk_bytes(m, mod(j + 1, m))}}, "group scatter");
    }
    r.ring_allgather(members, j, "group ring");
  }
}

void recursive_doubling(Rank& r, int N) {
  const double S = r.all();
  int p = 1;
  while (p * 2 <= N) p *= 2;
  const int extra = N - p;
  if (r.me >= p) {  // fold in, then wait for the result
    r.step({{r.me - p, S}}, {}, "recursive-doubling fold");
    r.step({}, {{r.me - p, S}}, "recursive-doubling unfold");
    return;
  }
  const double n = static_cast<double>(r.count);
  if (r.me < extra) r.step({}, {{r.me + p, S}}, "recursive-doubling fold", n);
  for (int k = 1; k < p; k *= 2) r.step({{r.me ^ k, S}}, {{r.me ^ k, S}}, "recursive-doubling exchange " + std::to_string(k), n);
  if (r.me < extra) r.step({{r.me + p, S}}, {}, "recursive-doubling unfold");
}

void tree(Rank& r, int N) {
  const double S = r.all();
  int top = 1;
  while (top < N) top *= 2;
  // Binomial reduce to rank 0: at level k, rank i with i mod 2^(k+1) == 2^k sends to i - 2^k.
  for (int k = 1; k < top; k *= 2) {
    const int low = r.me % (2 * k);
    if (low == k) {
      r.step({{r.me - k, S}}, {}, "tree reduce");
      break;
    }
    if (low == 0 && r.me + k < N) r.step({}, {{r.me + k, S}}, "tree reduce", static_cast<double>(r.count));
  }
  // Binomial broadcast from rank 0, the reverse order.
  for (int k = top / 2; k >= 1; k /= 2) {
    const int low = r.me % (2 * k);
    if (low == 0 && r.me + k < N) r.step({{r.me + k, S}}, {}, "tree broadcast");
    else if (low == k) r.step({}, {{r.me - k, S}}, "tree broadcast");
  }
}

void run_pattern(CollectiveSpec::Algorithm algorithm, Rank& r, int N, const std::vector<int>& groups) {
  switch (algorithm) {
    case CollectiveSpec::Algorithm::Ring: ring(r, N); break;
    case CollectiveSpec::Algorithm::Hierarchical: hierarchical(r, N, groups); break;
    case CollectiveSpec::Algorithm::RecursiveDoubling: recursive_doubling(r, N); break;
    case CollectiveSpec::Algorithm::Tree: tree(r, N); break;
  }
}

}  // namespace

void allreduce_transfers(CollectiveSpec::Algorithm algorithm, int N, int rank, const std::vector<int>& groups, size_t count,
                         double element_bytes, const CollectiveHooks& hooks) {
  if (N <= 1 || count == 0) return;
  Rank r(rank, count, element_bytes, hooks);
  run_pattern(algorithm, r, N, groups);
}

void allreduce_transfers(CollectiveSpec::Algorithm algorithm, const std::vector<int>& members, int index,
                         const std::vector<int>& groups, size_t count, double element_bytes, const CollectiveHooks& hooks) {
  const int m = static_cast<int>(members.size());
  if (m <= 1 || count == 0) return;
  std::vector<int> sub_groups;  // the members' locality groups, still contiguous in pattern order
  if (algorithm == CollectiveSpec::Algorithm::Hierarchical)
    for (int r : members) sub_groups.push_back(groups.at(static_cast<size_t>(r)));
  Rank r(index, count, element_bytes, hooks, &members);
  run_pattern(algorithm, r, m, sub_groups);
}

void aggregated_ring(AggregatedRing& st, const std::vector<sg4::Host*>& hosts, int rank, size_t count, double element_bytes,
                     const CollectiveHooks& hooks) {
  const int N = static_cast<int>(hosts.size());
  if (N <= 1 || count == 0) return;
  auto chunk = [&](int c) { return element_bytes * chunk_elems(count, N, mod(c, N)); };
  if (hooks.waiting) hooks.waiting("the aggregated ring (every rank's arrival)");
  if (++st.arrived == N) {  // the last to arrive: the first step, all N transfers at once
    st.start = sg4::Engine::get_clock();
    std::vector<sg4::CommPtr> step;
    step.reserve(static_cast<size_t>(N));
    for (int j = 0; j < N; ++j)  // uint64_t bytes, as a mailbox put converts them
      step.push_back(sg4::Comm::sendto_async(hosts[static_cast<size_t>(j)], hosts[static_cast<size_t>((j + 1) % N)],
                                             static_cast<uint64_t>(chunk(j))));
    for (auto& c : step) c->wait();
    st.end = st.start + 2.0 * (N - 1) * (sg4::Engine::get_clock() - st.start);
  }
  st.measured->wait();
  if (st.end > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(st.end);
  // Rank j sends every chunk but j+1 (reduce-scatter) and every chunk but j+2 (all-gather), and
  // receives every chunk but j, then every chunk but j+1.
  const double total = element_bytes * static_cast<double>(count);  // the chunks add up to the vector
  const int messages = 2 * (N - 1);
  if (hooks.sent) hooks.sent((rank + 1) % N, 2 * total - chunk(rank + 1) - chunk(rank + 2), messages);
  if (hooks.received) hooks.received((rank + N - 1) % N, 2 * total - chunk(rank) - chunk(rank + 1), st.start, st.end, messages);
  if (hooks.waiting) hooks.waiting("");
}

}  // namespace dtsim::sim
