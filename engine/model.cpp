#include "engine/model.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/layers.hpp"

namespace dtsim::engine {

namespace {

constexpr size_t kEvalChunk = 1000;  // samples per forward pass in evaluate()

// A sequential stack of layers ending in softmax cross-entropy.
//
// Workspace: activation "slots" are assigned once at construction. Slot -1 is the caller's
// input; a layer gets a new slot unless it aliases its input (Flatten) or may overwrite it
// (ReLU after a layer whose backward does not need its output). Gradients use the same slot
// map. Buffers hold `capacity` samples and only grow, so steady-state steps allocate nothing.
class SequentialModel final : public Model {
 public:
  SequentialModel(std::string kind, std::vector<std::unique_ptr<Layer>> layers, size_t classes,
                  const ComputeOptions& opts)
      : kind_(std::move(kind)), layers_(std::move(layers)), classes_(classes), device_(opts.device),
        backend_(host_backend(opts.device)), threads_(opts.threads) {
    if (layers_.empty()) throw RuntimeError("model '" + kind_ + "' has no layers");
    if (layers_.back()->out_size() != classes_)
      throw RuntimeError("model '" + kind_ + "': last layer has " + std::to_string(layers_.back()->out_size()) +
                         " outputs for " + std::to_string(classes_) + " classes");
    size_t offset = 0;
    bool params_below = false;
    int prev_slot = -1;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = *layers_[i];
      if (i > 0 && layers_[i - 1]->out_size() != l.in_size())
        throw RuntimeError("model '" + kind_ + "': layer '" + l.name() + "' input size mismatch");
      param_offset_.push_back(offset);
      offset += l.num_params();
      l.param_tensors(param_offset_.back(), tensors_);
      propagate_down_.push_back(params_below);  // dx only if some earlier layer has parameters
      params_below = params_below || l.num_params() > 0;
      flops_ += l.forward_flops();
      in_slot_.push_back(prev_slot);
      int slot;
      if (l.in_place() == InPlace::Alias) {
        slot = prev_slot;
      } else if (l.in_place() == InPlace::Write && prev_slot >= 0 && !layers_[i - 1]->backward_needs_output() &&
                 layers_[i - 1]->in_place() == InPlace::No) {
        slot = prev_slot;
      } else {
        slot = static_cast<int>(slot_size_.size());
        slot_size_.push_back(l.out_size());
      }
      out_slot_.push_back(slot);
      prev_slot = slot;
    }
    num_params_ = offset;
    if (out_slot_.back() < 0) throw RuntimeError("model '" + kind_ + "' computes nothing");
    acts_.resize(slot_size_.size());
    grads_.resize(slot_size_.size());
  }

  std::string kind() const override { return kind_; }
  size_t num_params() const override { return num_params_; }
  // Training FLOPs per sample = 3 x the forward GEMM FLOPs (2*in*out per Linear): the forward
  // GEMM, plus two GEMMs of the same size in backward (dW and dx). Element-wise work (bias,
  // ReLU, softmax) is not counted; the first layer's dx, which is skipped, is counted anyway,
  // matching the usual "fwd+bwd = 3x fwd" convention.
  double flops_per_sample() const override { return 3.0 * flops_; }
  std::vector<ParamTensor> param_tensors() const override { return tensors_; }
  Device device() const override { return device_; }

  void init_params(VecView params, uint64_t seed) const override {
    check_params(params, "init_params");
    for (size_t i = 0; i < layers_.size(); ++i)
      layers_[i]->init_params(params.ptr + param_offset_[i], seed, static_cast<uint64_t>(i));
  }

  float forward_backward(ConstVecView params, const Batch& batch, VecView grads) override {
    check_params(params, "forward_backward");
    check_params(grads, "forward_backward (grads)");
    const size_t n = batch.size();
    if (n == 0) throw RuntimeError("forward_backward: empty batch");
    if (batch.x.size() != n * input_size())
      throw RuntimeError("forward_backward: batch has " + std::to_string(batch.x.size()) + " floats for " +
                         std::to_string(n) + " samples of " + std::to_string(input_size()));
    set_compute_threads(threads_);
    reserve(acts_, act_capacity_, n);
    reserve(grads_, grad_capacity_, n);
    forward(params.ptr, batch.x.data(), n);

    const size_t last = layers_.size() - 1;
    const double loss = softmax_cross_entropy(act(out_slot_[last]), batch.y.data(), n, classes_,
                                              grad(out_slot_[last]), nullptr);
    for (size_t i = layers_.size(); i-- > 0;) {
      const Layer& l = *layers_[i];
      const int in = in_slot_[i], out = out_slot_[i];
      const float* x = in < 0 ? batch.x.data() : act(in);
      const bool pd = propagate_down_[i];
      if (l.in_place() == InPlace::Alias) continue;
      l.backward(backend_, params.ptr + param_offset_[i], x, act(out), grad(out), pd ? grad(in) : nullptr,
                 grads.ptr + param_offset_[i], pd, n);
    }
    return static_cast<float>(loss / static_cast<double>(n));
  }

  EvalResult evaluate(ConstVecView params, const Split& split, size_t begin, size_t n) override {
    check_params(params, "evaluate");
    if (begin > split.size() || n > split.size() - begin)
      throw RuntimeError("evaluate: range [" + std::to_string(begin) + ", " + std::to_string(begin + n) +
                         ") outside a split of " + std::to_string(split.size()));
    if (split.x.size() != split.size() * input_size())
      throw RuntimeError("evaluate: split features do not match the model input size");
    EvalResult r;
    if (n == 0) return r;
    set_compute_threads(threads_);
    reserve(acts_, act_capacity_, std::min(n, kEvalChunk));
    const size_t last = layers_.size() - 1;
    for (size_t done = 0; done < n;) {
      const size_t m = std::min(kEvalChunk, n - done);
      const size_t first = begin + done;
      forward(params.ptr, split.x.data() + first * input_size(), m);
      r.loss_sum += softmax_cross_entropy(act(out_slot_[last]), split.y.data() + first, m, classes_, nullptr,
                                          &r.correct);
      done += m;
    }
    r.count = n;
    return r;
  }

 private:
  size_t input_size() const { return layers_.front()->in_size(); }
  float* act(int slot) { return acts_[static_cast<size_t>(slot)].data(); }
  float* grad(int slot) { return grads_[static_cast<size_t>(slot)].data(); }

  void check_params(ConstVecView v, const char* where) const {
    if (!is_host(v.device)) throw RuntimeError(std::string(where) + ": buffer is not in host memory");
    if (v.size != num_params_)
      throw RuntimeError(std::string(where) + ": buffer holds " + std::to_string(v.size) + " floats, model has " +
                         std::to_string(num_params_) + " parameters");
  }

  void reserve(std::vector<Vec>& bufs, size_t& capacity, size_t n) {
    if (n <= capacity) return;
    for (size_t s = 0; s < bufs.size(); ++s) {
      if (slot_size_[s] > std::numeric_limits<size_t>::max() / 4 / n)
        throw RuntimeError("model workspace size overflow");
      bufs[s] = Vec(slot_size_[s] * n, Device::Cpu);
    }
    capacity = n;
  }

  void forward(const float* params, const float* x0, size_t n) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = *layers_[i];
      if (l.in_place() == InPlace::Alias) continue;
      const float* x = in_slot_[i] < 0 ? x0 : act(in_slot_[i]);
      l.forward(backend_, params + param_offset_[i], x, act(out_slot_[i]), n);
    }
  }

  std::string kind_;
  std::vector<std::unique_ptr<Layer>> layers_;
  size_t classes_;
  Device device_;
  Backend backend_;
  int threads_;
  size_t num_params_ = 0;
  double flops_ = 0;
  std::vector<ParamTensor> tensors_;
  std::vector<size_t> param_offset_;
  std::vector<bool> propagate_down_;
  std::vector<int> in_slot_, out_slot_;
  std::vector<size_t> slot_size_;
  std::vector<Vec> acts_, grads_;
  size_t act_capacity_ = 0, grad_capacity_ = 0;
};

const std::vector<std::string>& model_kinds() {
  static const std::vector<std::string> kinds{"mlp"};
  return kinds;
}

// Reads the spec and builds the layer stack (no buffers).
std::vector<std::unique_ptr<Layer>> build_layers(ObjectReader& spec, const SampleShape& input, int classes,
                                                 std::string& kind) {
  if (input.c < 1 || input.h < 1 || input.w < 1) throw RuntimeError("make_model: bad input shape");
  if (classes < 2) throw RuntimeError("make_model: need at least 2 classes, got " + std::to_string(classes));
  // Unknown kinds: InputError at "<origin>.kind" with a nearest-name suggestion (nearest_key).
  kind = spec.choice("kind", model_kinds());

  std::vector<std::unique_ptr<Layer>> layers;
  // kind == "mlp": Flatten, then Linear+ReLU per hidden width, then Linear to the classes.
  const std::vector<int64_t> hidden = spec.integer_list("hidden", std::vector<int64_t>{256, 128});
  for (size_t i = 0; i < hidden.size(); ++i)
    if (hidden[i] < 1 || hidden[i] > (int64_t{1} << 20))
      spec.fail("hidden", "entry " + std::to_string(i) + " is " + std::to_string(hidden[i]) +
                              "; widths must be in 1..1048576");
  SampleShape shape = input;
  layers.push_back(std::make_unique<Flatten>("flatten", shape));
  shape = layers.back()->out_shape();
  for (size_t i = 0; i < hidden.size(); ++i) {
    const std::string idx = std::to_string(i + 1);
    if (shape.size() > (size_t{1} << 30) / static_cast<size_t>(hidden[i]))
      spec.fail("hidden", "layer fc" + idx + " would have " + std::to_string(shape.size()) + " x " +
                              std::to_string(hidden[i]) + " weights; at most 2^30 per layer");
    layers.push_back(std::make_unique<Linear>("fc" + idx, shape, static_cast<size_t>(hidden[i])));
    shape = layers.back()->out_shape();
    layers.push_back(std::make_unique<ReLU>("relu" + idx, shape));
  }
  layers.push_back(
      std::make_unique<Linear>("fc" + std::to_string(hidden.size() + 1), shape, static_cast<size_t>(classes)));
  return layers;
}

}  // namespace

std::unique_ptr<Model> make_model(ObjectReader& spec, const SampleShape& input, int classes,
                                  const ComputeOptions& opts) {
  if (opts.threads < 1)
    throw InputError("", "compute.threads", "must be >= 1 (got " + std::to_string(opts.threads) + ")");
  host_backend(opts.device);  // rejects devices this build lacks before reading the spec
  std::string kind;
  auto layers = build_layers(spec, input, classes, kind);
  return std::make_unique<SequentialModel>(kind, std::move(layers), static_cast<size_t>(classes), opts);
}

ModelInfo model_info(ObjectReader& spec, const SampleShape& input, int classes) {
  std::string kind;
  auto layers = build_layers(spec, input, classes, kind);
  ModelInfo info;
  double fwd = 0;
  for (const auto& l : layers) {
    info.num_params += l->num_params();
    fwd += l->forward_flops();
  }
  info.flops_per_sample = 3.0 * fwd;
  return info;
}

}  // namespace dtsim::engine
