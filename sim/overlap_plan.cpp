#include "sim/overlap_plan.hpp"

#include <algorithm>
#include <cmath>

namespace dtsim::sim {

const char* OverlapSpec::name() const {
  switch (kind) {
    case OverlapSpec::Kind::None: return "none";
    case OverlapSpec::Kind::Ddp: return "ddp";
    case OverlapSpec::Kind::Horovod: return "horovod";
    case OverlapSpec::Kind::PerTensor: return "per-tensor";
  }
  return "?";
}

PhaseShares phase_shares(const StepShape& s, ShareBasis basis) {
  const size_t L = s.layers.size();
  PhaseShares p;
  p.forward.assign(L, 0.0);
  p.backward.assign(L, 0.0);
  double total = 0;
  for (size_t l = 0; l < L; ++l) {
    const auto& c = s.layers[l];
    if (basis == ShareBasis::Measured) {
      p.forward[l] = std::max(0.0, c.forward_s);
      p.backward[l] = std::max(0.0, c.backward_s);
    } else if (basis == ShareBasis::Fixed) {
      const double w = c.forward_flops + c.backward_input_flops + c.backward_weight_flops;
      p.forward[l] = w / 3;
      p.backward[l] = w - w / 3;
    } else {
      p.forward[l] = c.forward_flops;
      p.backward[l] = c.backward_input_flops + c.backward_weight_flops;
    }
    total += p.forward[l] + p.backward[l];
  }
  if (!(total > 0)) {  // nothing to split by: the whole step is the last layer's backward
    if (L) p.backward[L - 1] = 1.0;
    return p;
  }
  for (size_t l = 0; l < L; ++l) {
    p.forward[l] /= total;
    p.backward[l] /= total;
  }
  return p;
}

std::vector<size_t> tensor_layers(const StepShape& s) {
  std::vector<size_t> owner(s.tensors.size(), 0);
  for (size_t l = 0; l < s.layers.size(); ++l)
    for (size_t t : s.layers[l].tensors)
      if (t < owner.size()) owner[t] = l;
  return owner;
}

std::vector<size_t> ready_order(const StepShape& s) {
  std::vector<size_t> order;
  order.reserve(s.tensors.size());
  for (size_t l = s.layers.size(); l-- > 0;)
    for (auto it = s.layers[l].tensors.rbegin(); it != s.layers[l].tensors.rend(); ++it) order.push_back(*it);
  return order;
}

std::vector<std::vector<size_t>> bucket_assignment(const std::vector<uint64_t>& bytes, const std::vector<uint64_t>& limits) {
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> open;
  uint64_t size = 0;
  size_t limit = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    open.push_back(i);
    size += bytes[i];
    if (size >= limits[limit]) {
      buckets.push_back(std::move(open));
      open.clear();
      size = 0;
      if (limit + 1 < limits.size()) ++limit;
    }
  }
  if (!open.empty()) buckets.push_back(std::move(open));
  return buckets;
}

std::vector<std::vector<size_t>> ddp_buckets(const StepShape& s, const OverlapSpec& o) {
  const std::vector<size_t> order = ready_order(s);
  std::vector<uint64_t> bytes;
  for (size_t t : order) bytes.push_back(4 * static_cast<uint64_t>(s.tensors[t].size));
  const auto mib = [](double m) { return static_cast<uint64_t>(m * 1024.0 * 1024.0); };  // int(mb * 1024 * 1024)
  auto pos = bucket_assignment(bytes, {mib(o.first_bucket_mb), mib(o.bucket_cap_mb)});
  for (auto& b : pos)
    for (auto& p : b) p = order[p];
  return pos;
}

std::vector<std::vector<size_t>> fuse(const std::vector<size_t>& tensors, const std::vector<uint64_t>& bytes_of_tensor,
                                      uint64_t threshold_bytes) {
  std::vector<std::vector<size_t>> groups;
  uint64_t size = 0;
  for (size_t t : tensors) {
    const uint64_t b = bytes_of_tensor[t];
    if (groups.empty() || size + b > threshold_bytes) {
      groups.push_back({t});
      size = b;
    } else {
      groups.back().push_back(t);
      size += b;
    }
  }
  return groups;
}

std::vector<Piece> kvstore_pieces(const StepShape& s, int shards, uint64_t split_elements) {
  std::vector<Piece> pieces;
  const int K = std::max(1, shards);
  for (size_t t = 0; t < s.tensors.size(); ++t) {
    const auto& ten = s.tensors[t];
    if (ten.size < split_elements || K == 1) {
      pieces.push_back({t, ten.offset, ten.size, static_cast<int>((t * 9973) % static_cast<size_t>(K))});
      continue;
    }
    const double n = static_cast<double>(ten.size);
    for (int k = 0; k < K; ++k) {  // MXNet: round(n / K * (k + 1)) - round(n / K * k)
      const size_t lo = static_cast<size_t>(std::round(n / K * k)), hi = static_cast<size_t>(std::round(n / K * (k + 1)));
      if (hi > lo) pieces.push_back({t, ten.offset + lo, hi - lo, k});
    }
  }
  return pieces;
}

}  // namespace dtsim::sim
