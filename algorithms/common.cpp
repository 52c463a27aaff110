#include "algorithms/common.hpp"

#include <algorithm>
#include <sstream>

#include "common/error.hpp"
#include "engine/optim.hpp"

namespace dtsim::algo {

Vec copy_of(const Node& n, ConstVecView src) {
  Vec v = n.new_buffer();
  if (!v.empty() && src.size) engine::ops::copy(v.view(), src);
  return v;
}

std::shared_ptr<const Vec> snapshot_of(const Node& n, ConstVecView v) {
  if (!n.real()) return nullptr;
  return std::make_shared<const Vec>(copy_of(n, v));
}

// ------------------------------------------------------------------ learning-rate schedules
double run_epochs(const Node& n) { return static_cast<double>(n.sample_budget()) / static_cast<double>(n.train_size()); }

double sync_epoch(const Node& n, int64_t t) {
  const double per_step = static_cast<double>(n.workers()) * n.configured_batch_size();
  return static_cast<double>(t) * per_step / static_cast<double>(n.train_size());
}

double async_epoch(const Node& n) { return static_cast<double>(n.samples_done()) / static_cast<double>(n.train_size()); }

double scheduled_lr(const engine::LrSchedule& s, double base, const Node& n, double e) {
  return s.is_constant() ? base : s.lr(base, e, run_epochs(n));
}

engine::LrSchedule read_schedule(ObjectReader& r) {
  if (!r.has("schedule")) return {};
  ObjectReader sr = r.object("schedule");
  engine::LrSchedule s = engine::LrSchedule::read(sr);
  sr.finish();
  return s;
}

ParamDoc schedule_doc(const std::string& whose) {
  return {"schedule", "constant",
          "learning-rate schedule of " + whose + " over training progress in epochs: {\"kind\": constant | step | poly | cosine | one-cycle, ...} (docs/config.md)"};
}

// ------------------------------------------------------------------ PS servers
std::vector<Message> gather_from_workers(Server& s, int tag) {
  const size_t N = static_cast<size_t>(s.workers());
  std::vector<Message> msgs(N);
  // platform.failures: workers whose loss is detected are left out (docs/platforms.md, Failures).
  std::vector<char> expected(N), have(N, 0);
  int missing = 0;
  for (size_t i = 0; i < N; ++i) missing += expected[i] = !s.worker_lost(static_cast<int>(i));
  while (missing > 0) {
    Message m = s.recv_or_lost(tag);  // = recv(tag) in a run without failures
    const size_t i = static_cast<size_t>(m.src);
    if (m.tag == kWorkerLost) {
      if (expected[i] && !have[i]) --missing;
      expected[i] = 0;
      continue;
    }
    if (!expected[i] || have[i] || s.worker_lost(m.src)) continue;  // from a lost worker: dropped
    have[i] = 1;
    msgs[i] = std::move(m);
    --missing;
  }
  if (std::find(have.begin(), have.end(), 0) != have.end())  // survivors only, still in rank order
    std::erase_if(msgs, [](const Message& m) { return m.src < 0; });
  return msgs;
}

void mean_in_rank_order(VecView out, const std::vector<Message>& msgs) {
  if (!out.size) return;
  std::vector<engine::ConstVecView> xs;
  xs.reserve(msgs.size());
  for (const auto& m : msgs) xs.push_back(m.data.view());
  auto host = [](const engine::ConstVecView& x) { return engine::is_host(x.device); };
  if (engine::is_host(out.device) && std::all_of(xs.begin(), xs.end(), host)) {
    engine::ops::sum_scaled(out, xs, 1.0f / static_cast<float>(msgs.size()));  // one pass, the same bits
    return;
  }
  engine::ops::copy(out, msgs[0].data.view());
  for (size_t i = 1; i < msgs.size(); ++i) engine::ops::add(out, msgs[i].data.view());
  engine::ops::scale(out, 1.0f / static_cast<float>(msgs.size()));
}

void broadcast_model(Server& s, int tag, int64_t step) {
  const auto W = s.snapshot();
  std::vector<Pending> sends;
  for (int i = 0; i < s.workers(); ++i)
    sends.push_back(s.send_to_worker(i, {.tag = tag, .step = step, .data = Payload::whole(W, s.size())}));
  for (auto& p : sends) p.wait();
}

void broadcast_ack(Server& s, int64_t step) {
  std::vector<Pending> sends;
  for (int i = 0; i < s.workers(); ++i) sends.push_back(s.send_to_worker(i, {.tag = kAck, .step = step, .data = {}}));
  for (auto& p : sends) p.wait();
}

void await_acks(Worker& w) {
  for (int k = 0; k < w.shards(); ++k) w.recv(kAck);
}

void Server::sync_step(int tag, int64_t reply_step, bool reply_model, VecView mean, const std::function<void()>& apply) {
  {
    const auto grads = gather_from_workers(*this, tag);  // released before the reply
    if (real()) {
      mean_in_rank_order(mean, grads);
      apply();
    }
  }
  update_cost(workers());
  committed();
  if (reply_model) broadcast_model(*this, kParams, reply_step);
  else broadcast_ack(*this, reply_step);
}

void sync_gradient_server(Server& s, const engine::SgdConfig& opt, int64_t steps,
                          const std::function<bool(int64_t)>& reply_model) {
  engine::Sgd sgd(opt, s.real() ? s.size() : 0, s.device());
  if (const State* st = s.resumed()) load_sgd(*st, sgd);
  Vec mean = new_vec(s, s.size());
  for (int64_t t = s.resume_step(); t < steps; ++t) {
    // W <- Opt(W, mean of the N gradients of step t): per tensor under per-tensor overlap (the runtime)
    s.sync_step(kGradient, t + 1, reply_model(t), mean.view(),
                [&] { sgd.step(s.global_range(), mean.view(), scheduled_lr(opt, s, sync_epoch(s, t))); });
    s.checkpoint(t + 1, [&sgd](State& st) { save_sgd(st, sgd); });
  }
}

void save_sgd(State& st, const engine::Sgd& sgd, const std::string& prefix) {
  st.put(prefix + ".v", sgd.momentum_buffer().view());
  st.put_int(prefix + ".first", sgd.first_step() ? 1 : 0);
}

Payload resumed_gradient(const Worker& w, const State& st) {
  std::shared_ptr<Vec> g;
  if (w.real()) {
    g = std::make_shared<Vec>(new_vec(w, w.num_params()));
    st.get("g", g->view());
  }
  return Payload::whole(g, w.num_params());
}

void save_acked(State& st, const std::vector<int64_t>& applied) {
  for (size_t i = 0; i < applied.size(); ++i) st.put_int("acked." + std::to_string(i), applied[i]);
}

std::vector<int64_t> load_acked(const State& st, int workers) {
  std::vector<int64_t> applied(static_cast<size_t>(workers));
  for (size_t i = 0; i < applied.size(); ++i) applied[i] = st.get_int("acked." + std::to_string(i));
  return applied;
}

void load_sgd(const State& st, engine::Sgd& sgd, const std::string& prefix) {
  st.get(prefix + ".v", sgd.momentum_buffer().view());
  sgd.set_first_step(st.get_int(prefix + ".first") != 0);
}

// ------------------------------------------------------------------ worker helpers
void asgd_worker(Worker& w) {
  std::shared_ptr<const Vec> W0 = w.initial_params();
  Incoming W;  // the reply to the last push, arriving while the next minibatch starts (layer-wise)
  while (w.claim_batch()) {
    const int64_t step = w.next_minibatch();
    Future<Gradient> g = W.valid() ? w.compute_async(W) : w.compute_async(view_of(W0));
    W0.reset();
    w.push(g, kGradient, step).wait();
    W = w.pull_async(kParams);
  }
  if (W.valid()) W.wait();  // the reply to the last push
}

std::shared_ptr<const Vec> ssgd_ps_steps(Worker& w, int64_t steps) {
  std::shared_ptr<const Vec> W0 = w.initial_params();
  Incoming W;  // as it arrives (layer-wise timing)
  for (int64_t t = std::min(w.resume_step(), steps); t < steps; ++t) {
    Future<Gradient> g = W.valid() ? w.compute_async(W) : w.compute_async(view_of(W0));
    W0.reset();
    w.push(g, kGradient, t).wait();
    W = w.pull_async(kParams);
    w.checkpoint(t + 1, {});  // W_{t+1} is the global model: nothing else to save
  }
  return W.valid() ? W.wait() : W0;
}

bool barrier(Worker& w, int64_t id, bool vote) {
  const int N = w.workers(), r = w.rank();
  int round = 0;
  bool all = vote;  // after round k: the AND of the votes of ranks r - (2^(k+1) - 1) .. r
  for (int d = 1; d < N; d *= 2, ++round) {
    // The vote rides in the empty payload's offset: no element, no byte on the wire.
    w.send_to_worker((r + d) % N, {.tag = kBarrier + round, .step = id, .data = {.buf = nullptr, .offset = all ? 1u : 0u}});
    // from (r - d) mod N; per round and sender, messages arrive in order. = recv without failures.
    const Message m = w.recv_or_lost(kBarrier + round);
    if (m.tag == kWorkerLost)  // platform.failures: a barrier of all workers cannot lose one
      throw RuntimeError("worker " + std::to_string(m.src) +
                         " was lost (platform.failures): a barrier of all workers does not survive a failed worker; "
                         "use a parameter-server algorithm (docs/platforms.md, Failures)");
    all = all && m.data.offset != 0;
  }
  return all;
}

void barrier(Worker& w, int64_t id) { barrier(w, id, true); }

// ------------------------------------------------------------------ local optimizers
namespace {

// Multiplies the gradient by grad_scale into a scratch buffer when it is not 1.
class Scaled {
 public:
  Scaled(double scale, const Node& n) : scale_(static_cast<float>(scale)) {
    if (scale_ != 1.0f) buf_ = n.new_buffer();
  }
  ConstVecView operator()(ConstVecView g) {
    if (scale_ == 1.0f || !g.size) return g;
    engine::ops::copy(buf_.view(), g);
    engine::ops::scale(buf_.view(), scale_);
    return buf_.view();
  }
  double buffers() const { return buf_.empty() ? 0 : 1; }

 private:
  float scale_;
  Vec buf_;
};

class SgdLocal final : public LocalOptimizer {
 public:
  SgdLocal(const LocalOptConfig& c, const Node& n)
      : sgd_({.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay, .nesterov = c.nesterov},
             n.real() ? n.num_params() : 0, n.device()),
        scaled_(c.grad_scale, n),
        lr_(c.lr) {}
  void step(VecView w, ConstVecView g) override {
    if (w.size) sgd_.step(w, scaled_(g), lr_);
  }
  void set_lr(double lr) override { lr_ = lr; }
  double buffers() const override { return (sgd_.config().momentum != 0) + scaled_.buffers(); }
  void save(State& st, const std::string& prefix) const override { save_sgd(st, sgd_, prefix); }
  void load(const State& st, const std::string& prefix) override { load_sgd(st, sgd_, prefix); }

 private:
  engine::Sgd sgd_;
  Scaled scaled_;
  double lr_;
};

// CADCASGD (OD-SGD's local optimizer), with the scalars the authors meant (docs/algorithms/od-sgd.md,
// "Scalar-argument bug not copied").
class DcLocal final : public LocalOptimizer {
 public:
  DcLocal(const LocalOptConfig& c, const Node& n)
      : dc_({.lambda = c.lambda, .adaptive = true, .mean_square = c.mean_square}, n.real() ? n.num_params() : 0,
            n.device()),
        sgd_({.lr = c.lr, .momentum = 0, .weight_decay = c.weight_decay, .nesterov = false},
             n.real() ? n.num_params() : 0, n.device()),
        scaled_(c.grad_scale, n),
        prev_(n.new_buffer()),
        u_(n.new_buffer()),
        lr_(c.lr) {}
  void step(VecView w, ConstVecView g) override {
    if (!w.size) return;
    if (first_) engine::ops::copy(prev_.view(), w);  // no previous step: no correction
    first_ = false;
    dc_.apply(u_.view(), scaled_(g), w, prev_.view());  // u = g + λ/√MS g g (w − w_prev)
    engine::ops::copy(prev_.view(), w);                  // w_prev <- w
    sgd_.step(w, u_.view(), lr_);                        // w -= lr (u + wd w)
  }
  void set_lr(double lr) override { lr_ = lr; }
  double buffers() const override { return 3 + scaled_.buffers(); }
  void save(State& st, const std::string& prefix) const override {
    st.put(prefix + ".ms", dc_.mean_square().view());
    st.put(prefix + ".prev", prev_.view());
    st.put_int(prefix + ".first", first_ ? 1 : 0);
  }
  void load(const State& st, const std::string& prefix) override {
    st.get(prefix + ".ms", dc_.mean_square().view());
    st.get(prefix + ".prev", prev_.view());
    first_ = st.get_int(prefix + ".first") != 0;
  }

 private:
  engine::DelayCompensation dc_;
  engine::Sgd sgd_;
  Scaled scaled_;
  Vec prev_, u_;
  double lr_;
  bool first_ = true;
};

class AdamWLocal final : public LocalOptimizer {
 public:
  AdamWLocal(const LocalOptConfig& c, const Node& n)
      : adam_({.lr = c.lr, .beta1 = c.beta1, .beta2 = c.beta2, .eps = c.eps, .weight_decay = c.weight_decay},
              n.real() ? n.num_params() : 0, n.device()),
        scaled_(c.grad_scale, n) {}
  void step(VecView w, ConstVecView g) override {
    if (w.size) adam_.step(w, scaled_(g));
  }
  void set_lr(double lr) override { adam_.set_lr(lr); }
  double buffers() const override { return 2 + scaled_.buffers(); }
  void save(State& st, const std::string& prefix) const override {
    st.put(prefix + ".m", adam_.first_moment().view());
    st.put(prefix + ".v", adam_.second_moment().view());
    st.put_int(prefix + ".t", adam_.steps());
  }
  void load(const State& st, const std::string& prefix) override {
    st.get(prefix + ".m", adam_.first_moment().view());
    st.get(prefix + ".v", adam_.second_moment().view());
    adam_.set_steps(st.get_int(prefix + ".t"));
  }

 private:
  engine::AdamW adam_;
  Scaled scaled_;
};

}  // namespace

void LocalOptimizer::save(State&, const std::string&) const {
  throw RuntimeError("checkpoint: this local optimizer's state cannot be saved");
}
void LocalOptimizer::load(const State&, const std::string&) {
  throw RuntimeError("checkpoint: this local optimizer's state cannot be restored");
}

std::unique_ptr<LocalOptimizer> make_local_optimizer(const LocalOptConfig& c, const Node& n) {
  if (c.kind == "sgd") return std::make_unique<SgdLocal>(c, n);
  if (c.kind == "dc-asgd-adaptive") return std::make_unique<DcLocal>(c, n);
  if (c.kind == "adamw") return std::make_unique<AdamWLocal>(c, n);
  throw RuntimeError("unknown local optimizer '" + c.kind + "'");
}

// ------------------------------------------------------------------ config
std::string read_comm(ObjectReader& r, const std::vector<std::string>& allowed, const std::string& def) {
  return r.choice("comm", allowed, def);
}

Algorithm::OnFailure read_on_failure(ObjectReader& r, std::vector<std::string> choices, bool allreduce, bool record_default) {
  if (!r.has("on_failure") && !record_default) return Algorithm::OnFailure::Drop;
  if (!allreduce) {
    std::erase(choices, "elastic");
    if (r.has("on_failure") && r.raw().at("on_failure") == "elastic") {
      std::string list;
      for (const auto& c : choices) list += (list.empty() ? "'" : ", '") + c + "'";
      r.fail("on_failure", "\"elastic\" re-forms an all-reduce ring among the survivors and needs comm \"allreduce\"; with comm \"ps\" "
                           "expected one of " + list + " (docs/platforms.md, Failures)");
    }
  }
  const std::string v = r.choice("on_failure", choices, "drop");
  return v == "elastic" ? Algorithm::OnFailure::Elastic : v == "wait" ? Algorithm::OnFailure::Wait : Algorithm::OnFailure::Drop;
}

ParamDoc on_failure_doc(const std::string& choices) {
  return {"on_failure", "drop", choices + " (docs/platforms.md, Failures)"};
}

int64_t read_count(ObjectReader& r, const std::string& key, int64_t def, int64_t min) {
  const int64_t v = r.integer(key, def);
  if (v < min) r.fail(key, "must be an integer >= " + std::to_string(min) + ", got " + std::to_string(v));
  return v;
}

LocalOptConfig read_local_opt(ObjectReader& r, const std::vector<std::string>& kinds, const LocalOptConfig& d,
                              const std::string& prefix) {
  LocalOptConfig c = d;
  const std::string lr = prefix + "lr", wd = prefix + "weight_decay", mom = prefix + "momentum",
                    nest = prefix + "nesterov";
  c.kind = kinds.size() == 1 ? r.choice("local_optimizer", kinds, kinds[0]) : r.choice("local_optimizer", kinds, d.kind);
  c.lr = r.number(lr, d.lr);
  r.require_non_negative(lr, c.lr);
  c.weight_decay = r.number(wd, d.weight_decay);
  r.require_non_negative(wd, c.weight_decay);
  auto only_with = [&](const std::string& key, const std::string& kind) {
    if (c.kind != kind && r.has(key)) r.fail(key, "only used with local_optimizer '" + kind + "'");
  };
  for (const auto& k : {mom, nest}) only_with(k, "sgd");
  for (const char* k : {"lambda", "mean_square"}) only_with(k, "dc-asgd-adaptive");
  for (const char* k : {"adam_beta1", "adam_beta2", "adam_eps"}) only_with(k, "adamw");
  if (c.kind == "sgd") {
    c.momentum = r.number(mom, d.momentum);
    r.require_range(mom, c.momentum, 0.0, 0.999999);
    c.nesterov = r.boolean(nest, d.nesterov);
    if (c.nesterov && c.momentum == 0) r.fail(nest, "Nesterov momentum needs " + mom + " > 0");
  } else {
    c.momentum = 0;
    c.nesterov = false;
  }
  if (c.kind == "dc-asgd-adaptive") {
    c.lambda = r.number("lambda", d.lambda);
    r.require_non_negative("lambda", c.lambda);
    c.mean_square = r.number("mean_square", d.mean_square);
    r.require_range("mean_square", c.mean_square, 0.0, 0.999999);
  }
  if (c.kind == "adamw") {
    c.beta1 = r.number("adam_beta1", d.beta1);
    r.require_range("adam_beta1", c.beta1, 0.0, 0.999999);
    c.beta2 = r.number("adam_beta2", d.beta2);
    r.require_range("adam_beta2", c.beta2, 0.0, 0.999999);
    c.eps = r.number("adam_eps", d.eps);
    r.require_positive("adam_eps", c.eps);
  }
  return c;
}

std::vector<ParamDoc> local_opt_docs(const std::vector<std::string>& kinds, const LocalOptConfig& d,
                                     const std::string& prefix) {
  std::string list;
  for (const auto& k : kinds) list += (list.empty() ? "" : " | ") + k;
  auto has = [&](const std::string& k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
  const std::string who = prefix.empty() ? "the workers' optimizer" : "the worker-side (local) optimizer";
  std::vector<ParamDoc> v;
  if (kinds.size() > 1) v.push_back({"local_optimizer", d.kind, "worker-side optimizer: " + list});
  v.push_back({prefix + "lr", number_text(d.lr), "learning rate of " + who});
  v.push_back({prefix + "weight_decay", number_text(d.weight_decay), "weight decay of " + who + (has("adamw") ? " (decoupled for adamw)" : "")});
  if (has("sgd") || has("glu")) {
    v.push_back({prefix + "momentum", number_text(d.momentum), "momentum of " + who + " when sgd (buffers stay on the worker)"});
    v.push_back({prefix + "nesterov", d.nesterov ? "true" : "false", "Nesterov momentum of " + who + " when sgd"});
  }
  if (has("dc-asgd-adaptive")) {
    v.push_back({"lambda", number_text(d.lambda), "dc-asgd-adaptive: delay-compensation strength lambda"});
    v.push_back({"mean_square", number_text(d.mean_square), "dc-asgd-adaptive: decay m of the gradients' mean square"});
  }
  if (has("adamw")) {
    v.push_back({"adam_beta1", number_text(d.beta1), "adamw: beta1"});
    v.push_back({"adam_beta2", number_text(d.beta2), "adamw: beta2"});
    v.push_back({"adam_eps", number_text(d.eps), "adamw: epsilon"});
  }
  return v;
}

std::vector<ParamDoc> docs(std::initializer_list<std::vector<ParamDoc>> parts) {
  std::vector<ParamDoc> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

DelayedPsConfig read_delayed_ps(ObjectReader& r, const engine::SgdConfig& g, const LocalOptConfig& l, int64_t warmup,
                                const std::vector<std::string>& kinds) {
  DelayedPsConfig c;
  read_comm(r, {"ps"}, "ps");
  c.global = read_sgd(r, g);
  c.local = read_local_opt(r, kinds, l);
  c.rescale_by_n = r.choice("local_rescale", {"1/N", "1"}, "1/N") == "1/N";
  c.warmup = read_count(r, "warmup_steps", warmup, 0);
  return c;
}

std::vector<ParamDoc> delayed_ps_docs(const engine::SgdConfig& g, const LocalOptConfig& l, int64_t warmup,
                                      const std::vector<std::string>& kinds) {
  auto global = sgd_param_docs(g);
  for (auto& p : global)
    if (p.key == "schedule") p = schedule_doc("the global optimizer; local_lr follows it by the same factor");
  return docs({global, local_opt_docs(kinds, l),
               {{"local_rescale", "1/N", "gradient scale of the local step: 1/N (as the server's; the authors' code) | 1"},
                {"warmup_steps", std::to_string(warmup), "iterations of plain SSGD first (the authors' code)"},
                {"comm", "ps", "ps only"}}});
}

}  // namespace dtsim::algo
