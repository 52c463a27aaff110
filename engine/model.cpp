#include "engine/model.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <string>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/graph.hpp"
#include "engine/layer_timer.hpp"
#include "engine/layers.hpp"
#include "engine/ops.hpp"

namespace dtsim::engine {

namespace {

// Samples per forward pass in evaluate(): up to 1000, fewer when the activations of that many
// would exceed kEvalBytes (VGG-16 at 1000 samples would need several GB).
constexpr size_t kEvalChunk = 1000;
constexpr size_t kEvalBytes = size_t{256} << 20;
using Clock = std::chrono::steady_clock;

// The Model for a Graph.
//
// Tensors get "slots" (workspace buffers) once, at construction: a layer gets a new slot unless it
// aliases its input (Flatten) or may overwrite it (ReLU, Add) — allowed when the input feeds only
// this layer, is not the model input, and its producer's backward does not read it. Gradients use
// the same slot map. Where a tensor feeds several layers (a residual block's input), the first
// gradient written in backward order goes straight into its buffer and later ones are added via a
// scratch buffer, in a fixed order. On the cpu backend each tensor also gets a layout (plain or
// oneDNN's blocked ones), and Reorder layers are inserted where a consumer needs plain NCHW.
class GraphModel final : public Model {
 public:
  GraphModel(std::string kind, Graph graph, size_t classes, const ComputeOptions& opts)
      : kind_(std::move(kind)), classes_(classes), device_(opts.device), backend_(compute_backend(opts.device)),
        threads_(opts.threads) {
    auto& nodes = graph.nodes();
    if (nodes.empty()) throw RuntimeError("model '" + kind_ + "' has no layers");
    const SampleShape out = graph.shape(graph.last());
    positions_ = static_cast<size_t>(graph.positions());
    if (positions_ == 1 && out.size() != classes_)
      throw RuntimeError("model '" + kind_ + "': last layer has " + std::to_string(out.size()) + " outputs for " +
                         std::to_string(classes_) + " classes");
    if (positions_ > 1 && (static_cast<size_t>(out.c) != positions_ || static_cast<size_t>(out.h) != classes_ || out.w != 1))
      throw RuntimeError("model '" + kind_ + "': last layer's output is " + std::to_string(out.c) + "x" +
                         std::to_string(out.h) + "x" + std::to_string(out.w) + ", expected " +
                         std::to_string(positions_) + " positions x " + std::to_string(classes_) + " classes x 1");
    flops_ = graph.training_flops();
    tensors_.push_back({graph.shape(0), Layout::Plain, -1, 0, false, -1});
    std::vector<int> map{0};  // graph tensor -> model tensor
    size_t poff = 0, soff = 0;
    std::map<const Layer*, size_t> owner_poff;  // parameter offset of each layer (weight tying)
    for (auto& nd : nodes) {
      Layer* l = nd.layer.get();
      node_ = static_cast<size_t>(&nd - nodes.data());  // its steps, inserted Reorders included
      const size_t np = l->num_params(), ns = l->num_state();
      owner_poff[l] = poff;
      l->param_tensors(poff, param_tensors_);
      l->state_tensors(soff, state_tensors_);
      int in = map[static_cast<size_t>(nd.in)];
      int in2 = nd.in2 >= 0 ? map[static_cast<size_t>(nd.in2)] : -1;
      if (backend_ == Backend::OneDnn) {
        in = to_accepted(in, *l);
        if (in2 >= 0) in2 = to_layout(in2, tensor(in).layout);
        l->set_cpu_layouts(tensor(in).layout, l->cpu_out_layout(tensor(in).layout));
      }
      const Layout out_layout = backend_ == Backend::OneDnn ? l->cpu_out() : Layout::Plain;
      if (const Layer* owner = l->tied_to()) {  // weight tying: the owner's parameters, a gradient scratch
        const auto it = owner_poff.find(owner);
        if (it == owner_poff.end() || l->tied_offset() + l->tied_size() > owner->num_params() || np != 0)
          throw RuntimeError("model '" + kind_ + "': layer '" + l->name() + "' is tied to a layer it cannot use");
        add_step(l, in, in2, out_layout, it->second + l->tied_offset(), soff);
        steps_.back().tied = static_cast<int>(tied_grads_.size());
        tensor(last_tensor()).needs_grad = true;
        tied_grads_.emplace_back(l->tied_size(), device_);
      } else {
        add_step(l, in, in2, out_layout, poff, soff);
      }
      layers_.push_back(std::move(nd.layer));
      map.push_back(static_cast<int>(tensors_.size()) - 1);
      poff += np;
      soff += ns;
    }
    num_params_ = poff;
    num_state_ = soff;
    init_params_ = graph.initial_params();  // a model file's own values (ONNX init "onnx"); usually empty
    init_state_ = graph.initial_state();
    // The logits must be plain.
    if (!same_memory(tensor(last_tensor()).shape, tensor(last_tensor()).layout, Layout::Plain))
      to_layout(last_tensor(), Layout::Plain);
    assign_slots();
    own_state_ = Vec(num_state_, device_);
    init_state(own_state_.view());
  }

  std::string kind() const override { return kind_; }
  size_t num_params() const override { return num_params_; }
  size_t positions() const override { return positions_; }
  size_t num_state() const override { return num_state_; }
  // Training FLOPs per sample: every layer's forward, input-gradient and weight-gradient FLOPs
  // (3 x the forward FLOPs of convolutions and linear layers; attention's own split);
  // element-wise work (bias, ReLU, BatchNorm, pooling, softmax) is not counted, nor is the
  // skipped first-layer backward-data.
  double flops_per_sample() const override { return flops_; }
  std::vector<ParamTensor> param_tensors() const override { return param_tensors_; }
  std::vector<ParamTensor> state_tensors() const override { return state_tensors_; }
  Device device() const override { return device_; }
  VecView default_state() override { return own_state_.view(); }
  void enable_step_timing(bool on) override { timing_ = on; }
  StepTimes last_step_times() const override { return times_; }
  void set_layer_timer(LayerTimer* timer) override { layer_timer_ = timer; }

  void init_params(VecView params, uint64_t seed) const override {
    check_size(params, num_params_, "init_params", "parameters");
    if (params.device == Device::Cuda) return via_host(params, [&](VecView h) { init_params(h, seed); });
    if (!init_params_.empty()) return (void)std::copy(init_params_.begin(), init_params_.end(), params.ptr);
    uint64_t index = 0;
    for (const Step& s : steps_) {
      if (s.inserted) continue;
      s.layer->init_params(params.ptr + s.poff, seed, index++);
    }
  }

  void init_state(VecView state) const override {
    check_size(state, num_state_, "init_state", "state values");
    if (state.device == Device::Cuda) return via_host(state, [&](VecView h) { init_state(h); });
    if (!init_state_.empty()) return (void)std::copy(init_state_.begin(), init_state_.end(), state.ptr);
    for (const Step& s : steps_)
      if (s.layer->num_state()) s.layer->init_state(state.ptr + s.soff);
  }

  float forward_backward(ConstVecView params, const Batch& batch, VecView grads) override {
    return forward_backward(params, own_state_.view(), batch, grads);
  }

  EvalResult evaluate(ConstVecView params, const Split& split, size_t begin, size_t n) override {
    return evaluate(params, own_state_.view(), split, begin, n);
  }

  float forward_backward(ConstVecView params, VecView state, const Batch& batch, VecView grads) override {
    check_size(params, num_params_, "forward_backward", "parameters");
    check_size(grads, num_params_, "forward_backward (grads)", "parameters");
    check_size(state, num_state_, "forward_backward (state)", "state values");
    check_device({params, grads, state}, "forward_backward");
    const size_t n = batch.size();
    if (n == 0) throw RuntimeError("forward_backward: empty batch");
    if (batch.x.size() != n * input_size())
      throw RuntimeError("forward_backward: batch has " + std::to_string(batch.x.size()) + " floats for " +
                         std::to_string(n) + " samples of " + std::to_string(input_size()));
    if (batch.targets != positions_ || batch.y.size() != n * positions_)
      throw RuntimeError("forward_backward: batch has " + std::to_string(batch.targets) +
                         " labels per sample, the model predicts " + std::to_string(positions_));
    set_compute_threads(threads_);
    reserve(n, true);
    const auto t0 = timing_ ? Clock::now() : Clock::time_point{};
    const double c0 = timing_ ? thread_cpu_seconds() : 0.0;
    LayerTimer* const lt = layer_timer_;  // engine/layer_timer.hpp: per-layer laps (dtsim profile)
    if (lt) {
      if (device_ == Device::Cuda) cuda::synchronize();
      lt->begin(Pass::Forward);
    }
    const float* x0 = stage_input(batch.x.data(), batch.x.size());
    forward(params.ptr, state.ptr, x0, n, true, lt);
    if (timing_ && device_ == Device::Cuda) cuda::synchronize();
    const auto t1 = timing_ ? Clock::now() : Clock::time_point{};
    const double c1 = timing_ ? thread_cpu_seconds() : 0.0;
    if (lt) lt->begin(Pass::Backward);

    const int last = last_tensor();
    // Mean over every prediction: the n samples' positions (PyTorch's F.cross_entropy over
    // logits.view(-1, classes) for a sequence model).
    const double loss = xent(act(last), batch.y.data(), n * positions_, grad(last), nullptr);
    std::fill(written_.begin(), written_.end(), 0);
    written_[static_cast<size_t>(last)] = 1;
    for (size_t i = steps_.size(); i-- > 0;) {
      backward_step(steps_[i], params.ptr, state.ptr, grads.ptr, x0, n);
      if (lt) lap(lt, Pass::Backward, steps_[i].node);
    }
    // Tied layers' gradients join their owners' (written by the owners' backward), in step order.
    for (const Step& s : steps_)
      if (s.tied >= 0) add_into(grads.ptr + s.poff, tied_grads_[static_cast<size_t>(s.tied)]);
    if (lt) lap(lt, Pass::Backward, 0);  // after the first layer's backward, the last to run
    if (timing_ && device_ == Device::Cuda) cuda::synchronize();
    if (timing_)
      times_ = {std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(Clock::now() - t1).count(),
                c1 - c0, thread_cpu_seconds() - c1};
    return static_cast<float>(loss / static_cast<double>(n * positions_));
  }

  EvalResult evaluate(ConstVecView params, ConstVecView state, const Split& split, size_t begin, size_t n) override {
    check_size(params, num_params_, "evaluate", "parameters");
    check_size(state, num_state_, "evaluate (state)", "state values");
    check_device({params, state}, "evaluate");
    if (begin > split.size() || n > split.size() - begin)
      throw RuntimeError("evaluate: range [" + std::to_string(begin) + ", " + std::to_string(begin + n) +
                         ") outside a split of " + std::to_string(split.size()));
    if (split.x.size() != split.size() * input_size())
      throw RuntimeError("evaluate: split features do not match the model input size");
    if (split.targets != positions_)
      throw RuntimeError("evaluate: the split has " + std::to_string(split.targets) +
                         " labels per sample, the model predicts " + std::to_string(positions_));
    EvalResult r;
    r.per_sample = positions_;
    if (n == 0) return r;
    set_compute_threads(threads_);
    reserve(std::min(n, eval_chunk_), false);
    const int last = last_tensor();
    for (size_t done = 0; done < n;) {
      const size_t m = std::min(eval_chunk_, n - done);
      const size_t first = begin + done;
      forward(params.ptr, const_cast<float*>(state.ptr),
              stage_input(split.x.data() + first * input_size(), m * input_size()), m, false, nullptr);
      if (positions_ == 1) {
        r.loss_sum += xent(act(last), split.y.data() + first, m, nullptr, &r.correct);
      } else {  // per sample: the mean over its positions
        const double sum = xent(act(last), split.y.data() + first * positions_, m * positions_, nullptr, &r.correct);
        r.loss_sum += sum / static_cast<double>(positions_);
      }
      done += m;
    }
    r.count = n;
    return r;
  }

 private:
  struct Tensor {
    SampleShape shape;
    Layout layout = Layout::Plain;
    int slot = -1;       // -1: the caller's input
    int consumers = 0;
    bool needs_grad = false;
    int producer = -1;   // step index
  };
  struct Step {
    Layer* layer = nullptr;
    int in = -1, in2 = -1, out = -1;
    size_t poff = 0, soff = 0;
    bool pd = false, pd2 = false;  // compute dx / dx2
    bool alias = false;
    bool inserted = false;  // a Reorder the model added
    int tied = -1;          // weight tying: index of the gradient scratch in tied_grads_
    size_t node = 0;        // the graph node (Graph::layer_costs() index) whose work this is
  };

  Tensor& tensor(int t) { return tensors_[static_cast<size_t>(t)]; }
  const Tensor& tensor(int t) const { return tensors_[static_cast<size_t>(t)]; }
  int last_tensor() const { return static_cast<int>(tensors_.size()) - 1; }
  size_t input_size() const { return tensors_[0].shape.size(); }

  // Sizes everywhere; devices where the model computes (init_* accept a host or device buffer).
  static void check_size(ConstVecView v, size_t want, const char* where, const char* what) {
    if (v.size != want)
      throw RuntimeError(std::string(where) + ": buffer holds " + std::to_string(v.size) + " floats, model has " +
                         std::to_string(want) + " " + what);
  }

  int add_step(Layer* l, int in, int in2, Layout out_layout, size_t poff, size_t soff, bool inserted = false) {
    Step s;
    s.layer = l;
    s.in = in;
    s.in2 = in2;
    s.poff = poff;
    s.soff = soff;
    s.inserted = inserted;
    s.node = node_;
    s.alias = l->in_place() == InPlace::Alias;
    tensor(in).consumers++;
    if (in2 >= 0) tensor(in2).consumers++;
    Tensor t;
    t.shape = l->out_shape();
    t.layout = out_layout;
    t.producer = static_cast<int>(steps_.size());
    t.needs_grad = l->num_params() > 0 || tensor(in).needs_grad || (in2 >= 0 && tensor(in2).needs_grad);
    s.pd = tensor(in).needs_grad;
    s.pd2 = in2 >= 0 && tensor(in2).needs_grad;
    tensors_.push_back(t);
    s.out = last_tensor();
    steps_.push_back(s);
    return s.out;
  }

  // A tensor in `want` layout: t itself or a reordered copy (inserted Reorder layer).
  int to_layout(int t, Layout want) {
    const Tensor& x = tensor(t);
    if (same_memory(x.shape, x.layout, want)) return t;
    auto r = std::make_unique<Reorder>("reorder" + std::to_string(steps_.size()), x.shape, x.layout, want);
    r->set_cpu_layouts(x.layout, want);
    Layer* l = r.get();
    layers_.push_back(std::move(r));
    return add_step(l, t, -1, want, 0, 0, true);
  }

  int to_accepted(int t, const Layer& l) {
    const Tensor& x = tensor(t);
    if (l.cpu_accepts(x.layout)) return t;
    if (l.cpu_accepts(Layout::Plain)) {
      if (same_memory(x.shape, x.layout, Layout::Plain)) {
        tensor(t).layout = Layout::Plain;  // the same bytes: relabel (no reorder)
        return t;
      }
      return to_layout(t, Layout::Plain);
    }
    throw RuntimeError("layer '" + l.name() + "' accepts no available layout");
  }

  void assign_slots() {
    for (size_t i = 0; i < steps_.size(); ++i) {
      Step& s = steps_[i];
      Tensor& in = tensor(s.in);
      Tensor& out = tensor(s.out);
      if (s.alias) {
        if (in.consumers != 1) throw RuntimeError("model '" + kind_ + "': an aliasing layer's input feeds other layers");
        out.slot = in.slot;
        continue;
      }
      bool inplace = false;
      if (s.layer->in_place() == InPlace::Write && in.slot >= 0 && in.consumers == 1 && in.producer >= 0) {
        const Step& p = steps_[static_cast<size_t>(in.producer)];
        inplace = !p.alias && !p.layer->backward_needs_output() &&
                  layout_size(in.shape, in.layout) == layout_size(out.shape, out.layout);
      }
      if (inplace) {
        out.slot = in.slot;
      } else {
        out.slot = static_cast<int>(slot_floats_.size());
        slot_floats_.push_back(layout_size(out.shape, out.layout));
      }
    }
    for (size_t t = 1; t < tensors_.size(); ++t)
      if (tensors_[t].consumers == 0 && static_cast<int>(t) != last_tensor())
        throw RuntimeError("model '" + kind_ + "': a layer's output is never used");
    if (tensor(last_tensor()).slot < 0) throw RuntimeError("model '" + kind_ + "' computes nothing");
    max_floats_ = 0;
    for (const Tensor& t : tensors_) max_floats_ = std::max(max_floats_, layout_size(t.shape, t.layout));
    acts_.resize(slot_floats_.size());
    grads_.resize(slot_floats_.size());
    size_t per_sample = 0;
    for (size_t f : slot_floats_) per_sample += f * sizeof(float);
    eval_chunk_ = std::clamp<size_t>(kEvalBytes / std::max<size_t>(per_sample, 1), 1, kEvalChunk);
    written_.assign(tensors_.size(), 0);
  }

  float* act(int t) { return acts_[static_cast<size_t>(tensor(t).slot)].data(); }
  float* grad(int t) { return grads_[static_cast<size_t>(tensor(t).slot)].data(); }
  const float* input_ptr(int t, const float* x0) { return tensor(t).slot < 0 ? x0 : act(t); }

  void add_into(float* dst, const Vec& src) {
    if (device_ == Device::Cuda) return ops::add(VecView{dst, src.size(), device_}, src.view());
    const float* p = src.data();
    for (size_t i = 0; i < src.size(); ++i) dst[i] += p[i];
  }

  void accumulate(int t, const float* src, size_t n) {
    float* dst = grad(t);
    const size_t count = n * layout_size(tensor(t).shape, tensor(t).layout);
    if (device_ == Device::Cuda) return ops::add(VecView{dst, count, device_}, ConstVecView(src, count, device_));
    for (size_t i = 0; i < count; ++i) dst[i] += src[i];
  }

  void reserve(size_t n, bool training) {
    if (n > act_capacity_) {
      for (size_t s = 0; s < acts_.size(); ++s) {
        if (slot_floats_[s] > std::numeric_limits<size_t>::max() / 8 / n) throw RuntimeError("model workspace size overflow");
        acts_[s] = Vec(slot_floats_[s] * n, device_);
      }
      act_capacity_ = n;
    }
    if (training && n > grad_capacity_) {
      for (size_t s = 0; s < grads_.size(); ++s) grads_[s] = Vec(slot_floats_[s] * n, device_);
      tmp_ = Vec(max_floats_ * n, device_);
      tmp2_ = Vec(max_floats_ * n, device_);
      grad_capacity_ = n;
    }
  }

  // ---- cuda (engine/cuda): the model's buffers live on the device, host data is staged there.
  void check_device(std::initializer_list<ConstVecView> views, const char* where) const {
    for (const ConstVecView& v : views)
      if (v.size && is_host(v.device) != is_host(device_))
        throw RuntimeError(std::string(where) + ": a " + device_name(v.device) + " buffer for a model on " +
                           device_name(device_));
  }
  // The input features on the compute device (host: as given; cuda: copied to input_).
  const float* stage_input(const float* host, size_t count) {
    return device_ == Device::Cuda ? input_.upload(host, count) : host;
  }
  // Softmax cross-entropy of logits on the compute device; labels on the host.
  double xent(const float* logits, const int32_t* labels, size_t n, float* dlogits, size_t* correct) const {
    if (device_ == Device::Cuda) return cuda::softmax_cross_entropy(logits, labels, n, classes_, dlogits, correct);
    return softmax_cross_entropy(logits, labels, n, classes_, dlogits, correct);
  }
  // Runs a host initialiser on a host copy of a device buffer.
  template <class F>
  static void via_host(VecView dev, F init) {
    Vec h(dev.size, Device::Cpu);
    init(h.view());
    ops::copy(dev, h.view());
  }

  // One step of the backward pass (its layer's input and weight gradients), in reverse step order.
  void backward_step(const Step& s, const float* params, float* state, float* grads, const float* x0, size_t n) {
    if (s.alias) {
      written_[static_cast<size_t>(s.in)] = written_[static_cast<size_t>(s.out)];
      return;
    }
    if (!s.pd && !s.pd2 && s.layer->num_params() == 0 && s.tied < 0) return;
    BwdArgs a;
    a.params = params + s.poff;
    a.x = input_ptr(s.in, x0);
    a.x2 = s.in2 >= 0 ? input_ptr(s.in2, x0) : nullptr;
    a.y = act(s.out);
    a.dy = grad(s.out);
    a.dparams = s.tied >= 0 ? tied_grads_[static_cast<size_t>(s.tied)].data() : grads + s.poff;
    a.state = state ? state + s.soff : nullptr;
    a.propagate_down = s.pd;
    a.propagate_down2 = s.pd2;
    a.training = true;
    a.n = n;
    const bool acc = s.pd && written_[static_cast<size_t>(s.in)];
    const bool acc2 = s.pd2 && written_[static_cast<size_t>(s.in2)];
    if (s.pd) a.dx = acc ? tmp_.data() : grad(s.in);
    if (s.pd2) a.dx2 = acc2 ? tmp2_.data() : grad(s.in2);
    s.layer->backward(backend_, a);
    if (acc) accumulate(s.in, tmp_.data(), n);
    if (acc2) accumulate(s.in2, tmp2_.data(), n);
    if (s.pd) written_[static_cast<size_t>(s.in)] = 1;
    if (s.pd2) written_[static_cast<size_t>(s.in2)] = 1;
  }

  // A layer's work ends (LayerTimer): on cuda, once the device has done it.
  void lap(LayerTimer* timer, Pass pass, size_t node) const {
    if (device_ == Device::Cuda) cuda::synchronize();
    timer->lap(pass, node);
  }

  void forward(const float* params, float* state, const float* x0, size_t n, bool training, LayerTimer* timer) {
    for (const Step& s : steps_) {
      if (timer && s.alias) lap(timer, Pass::Forward, s.node);  // no work: a lap of (nearly) nothing
      if (s.alias) continue;
      FwdArgs a;
      a.params = params + s.poff;
      a.x = input_ptr(s.in, x0);
      a.x2 = s.in2 >= 0 ? input_ptr(s.in2, x0) : nullptr;
      a.y = act(s.out);
      a.state = state && s.layer->num_state() ? state + s.soff : nullptr;
      a.training = training;
      a.n = n;
      s.layer->forward(backend_, a);
      if (timer) lap(timer, Pass::Forward, s.node);
    }
  }

  std::string kind_;
  size_t classes_;
  size_t positions_ = 1;  // predictions per sample (Graph::positions)
  Device device_;
  Backend backend_;
  int threads_;
  size_t num_params_ = 0, num_state_ = 0;
  double flops_ = 0;
  std::vector<ParamTensor> param_tensors_, state_tensors_;
  std::vector<float> init_params_, init_state_;  // Graph::initial_params/state (empty: from the seed)
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<Tensor> tensors_;
  std::vector<Step> steps_;
  std::vector<size_t> slot_floats_;
  size_t max_floats_ = 0;
  std::vector<Vec> acts_, grads_;
  Vec tmp_, tmp2_;
  std::vector<Vec> tied_grads_;  // per tied step: its parameter gradient, added after backward
  std::vector<char> written_;
  size_t act_capacity_ = 0, grad_capacity_ = 0;
  size_t eval_chunk_ = kEvalChunk;
  Vec own_state_;
  cuda::Staging input_;
  bool timing_ = false;
  StepTimes times_;
  LayerTimer* layer_timer_ = nullptr;  // not owned; null: no per-layer laps
  size_t node_ = 0;                    // construction: the graph node being added
};

}  // namespace

std::unique_ptr<Model> make_graph_model(std::string kind, Graph graph, int classes, const ComputeOptions& opts) {
  if (classes < 2) throw RuntimeError("make_model: need at least 2 classes, got " + std::to_string(classes));
  if (opts.threads < 1)
    throw InputError("", "compute.threads", "must be >= 1 (got " + std::to_string(opts.threads) + ")");
  return std::make_unique<GraphModel>(std::move(kind), std::move(graph), static_cast<size_t>(classes), opts);
}

}  // namespace dtsim::engine
