// The plans behind layer-wise timing (docs/timing.md), as pure functions of a model's layers and
// the overlap settings: no SimGrid here, so every rule is unit-tested against its framework.
//   - how a step's compute time splits over the layers' forward and backward phases;
//   - in which order the parameter tensors' gradients become ready during backward;
//   - PyTorch DDP's buckets (the reducer's steady state, after its rebuild in iteration 1);
//   - Horovod's tensor fusion of one cycle's response;
//   - MXNet KVStore's placement of tensors on parameter-server shards.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model.hpp"

namespace dtsim::sim {

// algorithm.overlap: how a step's communication is scheduled against its compute.
struct OverlapSpec {
  enum class Kind { None, Ddp, Horovod, PerTensor };
  Kind kind = Kind::None;
  double bucket_cap_mb = 25;     // ddp: bucket cap in MiB (PyTorch's bucket_cap_mb)
  double first_bucket_mb = 1;    // ddp: the first bucket's cap in MiB (dist._DEFAULT_FIRST_BUCKET_BYTES)
  double fusion_mb = 64;         // horovod: HOROVOD_FUSION_THRESHOLD in MiB
  double cycle_ms = 5;           // horovod: HOROVOD_CYCLE_TIME in ms
  bool priority = true;          // per-tensor: input-side tensors first among those waiting to be sent
  uint64_t split_elements = 1000000;  // per-tensor: MXNET_KVSTORE_BIGARRAY_BOUND
  bool given = false;            // set in the config (else the algorithm's default)
  bool layerwise() const { return kind != Kind::None; }
  const char* name() const;
};

// A model's step as layer-wise timing sees it: its layers in execution order and its parameter
// tensors (engine::ModelInfo).
struct StepShape {
  std::vector<engine::LayerCost> layers;
  std::vector<engine::ParamTensor> tensors;
};

// The share of a minibatch's compute time each phase takes: forward[l] for layer l's forward,
// backward[l] for its backward (input and weight gradients). All shares sum to 1.
//   Flops (compute.time flops): each phase's FLOPs over the step's FLOPs (a layer with parameters
//     does twice its forward FLOPs in backward, one without them once);
//   Fixed (compute.time fixed): each layer's FLOPs (forward + backward) over the step's, of which
//     1/3 is its forward and 2/3 its backward;
//   Measured (a per-layer profile): the layers' measured seconds over their sum.
// A model without FLOPs and without measured times gets one share for the last layer's backward.
struct PhaseShares {
  std::vector<double> forward, backward;
};
enum class ShareBasis { Flops, Fixed, Measured };
PhaseShares phase_shares(const StepShape& s, ShareBasis basis);

// The order in which the tensors' gradients become ready: the layers' backward runs from the last
// layer to the first, and a layer's tensors are ready when its backward ends (within a layer, in
// reverse registration order: bias before weight, as autograd accumulates them).
std::vector<size_t> ready_order(const StepShape& s);
// For each tensor, the index of the layer that owns it.
std::vector<size_t> tensor_layers(const StepShape& s);

// PyTorch's compute_bucket_assignment_by_size with tensor indices given (c10d reducer.cpp), for
// tensors of one dtype in gradient-ready order: a bucket takes tensors until its size reaches
// (>=) its limit; the first bucket's limit is limits[0], each later one the next limit (the last
// repeats); the open bucket at the end is the last. Returns positions into `bytes`.
std::vector<std::vector<size_t>> bucket_assignment(const std::vector<uint64_t>& bytes, const std::vector<uint64_t>& limits);
// DDP's buckets in the steady state: the reducer rebuilds them after iteration 1 in the order the
// gradients became ready, with limits {first_bucket_mb, bucket_cap_mb} (so the first bucket, the
// output-side tensors, is the small one; DDP_SET_LAST_BUCKET_CAP unset). Tensor indices, in
// launch order.
std::vector<std::vector<size_t>> ddp_buckets(const StepShape& s, const OverlapSpec& o);

// Horovod's fusion of one cycle's response: consecutive tensors (in the given order) share a
// buffer until adding the next would exceed the threshold; a tensor larger than it goes alone.
std::vector<std::vector<size_t>> fuse(const std::vector<size_t>& tensors, const std::vector<uint64_t>& bytes_of_tensor,
                                      uint64_t threshold_bytes);

// MXNet KVStore (kvstore_dist.h): a tensor of fewer than split_elements elements goes whole to
// shard (key * 9973) % K, a bigger one is split evenly over all K shards (the remainder to the
// last). One piece per (tensor, shard).
struct Piece {
  size_t tensor = 0;
  size_t offset = 0;  // into the flat parameter vector
  size_t count = 0;
  int shard = 0;
};
std::vector<Piece> kvstore_pieces(const StepShape& s, int shards, uint64_t split_elements);

}  // namespace dtsim::sim
