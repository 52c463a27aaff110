#include "sim/layerwise.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace dtsim::sim::detail {

LayerPlan make_layer_plan(const engine::ModelInfo& model, const OverlapSpec& overlap, algo::Algorithm::LayerComm comm,
                          int shards, const std::vector<size_t>& shard_off, const std::vector<size_t>& shard_len,
                          ShareBasis basis) {
  LayerPlan p;
  p.overlap = overlap;
  p.comm = comm;
  p.shape.layers = model.layers;
  p.shape.tensors = model.param_tensors;
  // A model whose tensors do not cover every parameter (none of dtsim's) gets one more tensor, owned
  // by its last layer, so that every element travels.
  size_t covered = 0;
  for (const auto& t : p.shape.tensors) covered += t.size;
  if (covered < model.num_params) {
    p.shape.tensors.push_back({"rest", covered, model.num_params - covered});
    if (p.shape.layers.empty()) p.shape.layers.push_back(engine::LayerCost{"model", "model", 0, 0, 0, {}, -1, -1});
    p.shape.layers.back().tensors.push_back(p.shape.tensors.size() - 1);
  }
  if (p.shape.layers.empty()) p.shape.layers.push_back(engine::LayerCost{"model", "model", 0, 0, 0, {}, -1, -1});
  p.shares = phase_shares(p.shape, model.measured_batch > 0 ? ShareBasis::Measured : basis);
  p.ready = ready_order(p.shape);
  p.tensor_layer = tensor_layers(p.shape);
  for (const auto& t : p.shape.tensors) p.tensor_bytes.push_back(4 * static_cast<uint64_t>(t.size));
  if (overlap.kind == OverlapSpec::Kind::Ddp) {
    p.buckets = ddp_buckets(p.shape, overlap);
    p.bucket_of.assign(p.shape.tensors.size(), 0);
    for (size_t b = 0; b < p.buckets.size(); ++b)
      for (size_t t : p.buckets[b]) p.bucket_of[t] = b;
  }
  if (overlap.kind == OverlapSpec::Kind::PerTensor && shards > 0) {
    if (comm == algo::Algorithm::LayerComm::SyncServer) {
      p.pieces = kvstore_pieces(p.shape, shards, overlap.split_elements);
    } else {  // asynchronous servers: each tensor split at the shards' range boundaries
      for (size_t t = 0; t < p.shape.tensors.size(); ++t) {
        const auto& ten = p.shape.tensors[t];
        for (int k = 0; k < shards; ++k) {
          const size_t lo = std::max(ten.offset, shard_off[static_cast<size_t>(k)]);
          const size_t hi = std::min(ten.offset + ten.size, shard_off[static_cast<size_t>(k)] + shard_len[static_cast<size_t>(k)]);
          if (hi > lo) p.pieces.push_back({t, lo, hi - lo, k});
        }
      }
    }
    p.pieces_of_tensor.assign(p.shape.tensors.size(), {});
    p.pieces_on_shard.assign(static_cast<size_t>(shards), {});
    for (size_t i = 0; i < p.pieces.size(); ++i) {
      p.pieces_of_tensor[p.pieces[i].tensor].push_back(i);
      p.pieces_on_shard[static_cast<size_t>(p.pieces[i].shard)].push_back(i);
      p.piece_at[static_cast<int64_t>(p.pieces[i].offset)] = i;
    }
  }
  return p;
}

void StepChain::listen(std::function<void(size_t tensor)> f) {
  for (size_t t : plan->ready)
    if (ready_at[t] >= 0) f(t);
  if (ready_count < ready_at.size()) listeners.push_back(std::move(f));
}

void StepChain::mark_ready(size_t tensor, double now) {
  ready_at[tensor] = now;
  ++ready_count;
  for (size_t i = 0; i < listeners.size(); ++i) listeners[i](tensor);  // a listener may add listeners
  // All heard: a listener holds the state of its exchange, which holds this chain.
  if (ready_count == ready_at.size()) listeners.clear();
}

std::vector<size_t> IncomingParams::add(algo::Message m, size_t offset, size_t count) {
  std::vector<size_t> done;
  const size_t end = offset + count;
  // the first tensor that ends after `offset`
  auto it = std::upper_bound(tensor_offsets.begin(), tensor_offsets.end(), offset);
  size_t t = it == tensor_offsets.begin() ? 0 : static_cast<size_t>(it - tensor_offsets.begin()) - 1;
  for (; t < plan->shape.tensors.size(); ++t) {
    const auto& ten = plan->shape.tensors[t];
    if (ten.offset >= end) break;
    const size_t lo = std::max(offset, ten.offset), hi = std::min(end, ten.offset + ten.size);
    if (hi <= lo) continue;
    covered[t] += hi - lo;
    if (covered[t] == ten.size) done.push_back(t);
  }
  covered_total += count;
  parts.push_back(std::move(m));
  return done;
}

bool HorovodCollective::any_ready_everywhere(size_t N) const {
  for (size_t t = 0; t < answered.size(); ++t) {
    if (answered[t]) continue;
    bool all = true;
    for (size_t r = 0; r < N && all; ++r) all = ready_at[r][t] >= 0;
    if (all) return true;
  }
  return false;
}

}  // namespace dtsim::sim::detail
