// oneDNN 2.6 kernels of the cpu backend (convolution, pooling, batch normalisation), on the 2.x
// op-descriptor C++ API. See onednn_kernels.hpp for the contract.
//
// Per layer and batch size a Plan holds the primitives, the user-memory objects whose data handles
// are re-pointed at every call (no allocation), the argument maps, and the library-owned scratch
// (reordered inputs and weights, pooling workspace, batch statistics). Primitive descriptors are
// created with the tensors' own layouts for src/dst and "any" for the weights; should that pick
// oneDNN's slow reference implementation, they are re-created with "any" everywhere plus reorders.
// Backward-data may want a different weights layout than forward (measured on oneDNN 2.6: passing
// the forward layout gave garbage, 50x slower; docs/engine.md, "Backends"): each primitive gets
// its own weights reorder.
#include "engine/onednn_kernels.hpp"

#include <map>
#include <tuple>
#include <string>

#include "common/error.hpp"

#ifdef DTSIM_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace dtsim::engine::onednn {

#ifdef DTSIM_HAVE_ONEDNN

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& strm() {
  static dnnl::stream s(eng());
  return s;
}

tag layout_tag(Layout l) {
  switch (l) {
    case Layout::Plain: return tag::nchw;
    case Layout::Block8: return tag::nChw8c;
    case Layout::Block16: return tag::nChw16c;
  }
  return tag::nchw;
}

memory::dims d4(size_t n, int c, int h, int w) {
  return {static_cast<memory::dim>(n), static_cast<memory::dim>(c), static_cast<memory::dim>(h),
          static_cast<memory::dim>(w)};
}

memory::desc act_md(size_t n, int c, int h, int w, Layout l) { return memory::desc(d4(n, c, h, w), dt::f32, layout_tag(l)); }

// A memory object without a buffer, pointed at caller memory at each call.
memory user_mem(const memory::desc& md) { return memory(md, eng(), DNNL_MEMORY_NONE); }
// A library-owned buffer.
memory own_mem(const memory::desc& md) { return memory(md, eng()); }

void point(const memory& m, const void* p) { m.set_data_handle(const_cast<void*>(p)); }

bool is_ref(const char* impl) { return std::string(impl).find("ref") != std::string::npos; }

// Right padding that makes oneDNN's output size exactly PyTorch's floor-mode size.
memory::dim pad_r(int in, int out, int k, int s, int pl) {
  const int r = (out - 1) * s + k - in - pl;
  return r > 0 ? r : 0;
}

// Memory in the layout a primitive wants: the user memory itself, or an owned buffer + reorder.
struct Staged {
  struct Re {
    bool needed = false;
    dnnl::reorder prim;
  };
  memory user, prim;
  Re re;
  void init(const memory::desc& user_md, const memory::desc& want) {
    user = user_mem(user_md);
    prim = user_md == want ? user : own_mem(want);
  }
  void init_in(const memory::desc& user_md, const memory::desc& want) {
    init(user_md, want);
    re.needed = !(user_md == want);
    if (re.needed) re.prim = dnnl::reorder(user, prim);
  }
  void init_out(const memory::desc& user_md, const memory::desc& want) {
    init(user_md, want);
    re.needed = !(user_md == want);
    if (re.needed) re.prim = dnnl::reorder(prim, user);
  }
  void in(const void* p) {
    point(user, p);
    if (re.needed) re.prim.execute(strm(), user, prim);
  }
  void bind_out(void* p) { point(user, p); }
  void out() {
    if (re.needed) re.prim.execute(strm(), prim, user);
  }
};

// ------------------------------------------------------------------------ convolution

struct ConvPlan {
  // forward
  dnnl::convolution_forward::primitive_desc fpd;
  dnnl::convolution_forward fwd;
  Staged x, y, w;
  memory b;
  std::unordered_map<int, memory> fargs;
  // backward (created on first use)
  bool bwd_ready = false;
  dnnl::convolution_backward_data::primitive_desc dpd;
  dnnl::convolution_backward_data bwd_data;
  Staged dx, dy_d, w_d;
  std::unordered_map<int, memory> dargs;
  dnnl::convolution_backward_weights::primitive_desc wpd;
  dnnl::convolution_backward_weights bwd_weights;
  Staged x_w, dy_w, dw;
  memory db;
  std::unordered_map<int, memory> wargs;
  bool x_w_from_fwd = false;  // bwd-weights reads the forward's (reordered) src
  bool dy_w_from_d = false;   // bwd-weights reads bwd-data's (reordered) diff_dst
};

// Plans are keyed by batch size and layouts (a model fixes the layouts; tests vary them).
using PlanKey = std::tuple<size_t, Layout, Layout>;

struct ConvKernel final : CpuKernel {
  std::map<PlanKey, std::unique_ptr<ConvPlan>> plans;
};

struct ConvDims {
  memory::dims strides, pl, pr;
};

ConvDims conv_dims(const ref::Geom& g) {
  return {{g.sh, g.sw}, {g.ph, g.pw}, {pad_r(g.h, g.oh, g.kh, g.sh, g.ph), pad_r(g.w, g.ow, g.kw, g.sw, g.pw)}};
}

ConvPlan& conv_plan(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool bias, Layout in, Layout out, size_t n) {
  if (!k) k = std::make_unique<ConvKernel>();
  auto& plans = static_cast<ConvKernel&>(*k).plans;
  const PlanKey key{n, in, out};
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  auto p = std::make_unique<ConvPlan>();
  const ConvDims cd = conv_dims(g);
  const memory::desc x_md = act_md(n, g.c, g.h, g.w, in), y_md = act_md(n, g.oc, g.oh, g.ow, out);
  const memory::desc w_md({g.oc, g.c, g.kh, g.kw}, dt::f32, tag::oihw);
  const memory::desc w_any({g.oc, g.c, g.kh, g.kw}, dt::f32, tag::any);
  const memory::desc b_md = bias ? memory::desc({g.oc}, dt::f32, tag::x) : memory::desc();
  auto make_fpd = [&](const memory::desc& src, const memory::desc& dst) {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
                                      w_any, b_md, dst, cd.strides, cd.pl, cd.pr);
    return dnnl::convolution_forward::primitive_desc(d, eng());
  };
  p->fpd = make_fpd(x_md, y_md);
  if (is_ref(p->fpd.impl_info_str())) {
    const memory::desc x_any(d4(n, g.c, g.h, g.w), dt::f32, tag::any), y_any(d4(n, g.oc, g.oh, g.ow), dt::f32, tag::any);
    p->fpd = make_fpd(x_any, y_any);
  }
  p->fwd = dnnl::convolution_forward(p->fpd);
  p->x.init_in(x_md, p->fpd.src_desc());
  p->w.init_in(w_md, p->fpd.weights_desc());
  p->y.init_out(y_md, p->fpd.dst_desc());
  if (bias) p->b = user_mem(b_md);
  p->fargs = {{DNNL_ARG_SRC, p->x.prim}, {DNNL_ARG_WEIGHTS, p->w.prim}, {DNNL_ARG_DST, p->y.prim}};
  if (bias) p->fargs[DNNL_ARG_BIAS] = p->b;
  return *(plans[key] = std::move(p));
}

void conv_bwd_init(ConvPlan& p, const ref::Geom& g, bool bias, Layout in, Layout out, size_t n) {
  const ConvDims cd = conv_dims(g);
  const memory::desc x_md = act_md(n, g.c, g.h, g.w, in), y_md = act_md(n, g.oc, g.oh, g.ow, out);
  const memory::desc x_any(d4(n, g.c, g.h, g.w), dt::f32, tag::any), y_any(d4(n, g.oc, g.oh, g.ow), dt::f32, tag::any);
  const memory::desc w_md({g.oc, g.c, g.kh, g.kw}, dt::f32, tag::oihw);
  const memory::desc w_any({g.oc, g.c, g.kh, g.kw}, dt::f32, tag::any);
  const memory::desc b_md = bias ? memory::desc({g.oc}, dt::f32, tag::x) : memory::desc();

  // backward data: diff_src in x's layout, diff_dst in y's, weights as it likes
  auto make_dpd = [&](const memory::desc& dsrc, const memory::desc& ddst) {
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, dsrc, w_any, ddst, cd.strides, cd.pl,
                                            cd.pr);
    return dnnl::convolution_backward_data::primitive_desc(d, eng(), p.fpd);
  };
  p.dpd = make_dpd(x_md, y_md);
  if (is_ref(p.dpd.impl_info_str())) p.dpd = make_dpd(x_any, y_any);
  p.bwd_data = dnnl::convolution_backward_data(p.dpd);
  p.dx.init_out(x_md, p.dpd.diff_src_desc());
  p.dy_d.init_in(y_md, p.dpd.diff_dst_desc());
  p.w_d.init_in(w_md, p.dpd.weights_desc());
  p.dargs = {{DNNL_ARG_DIFF_SRC, p.dx.prim}, {DNNL_ARG_WEIGHTS, p.w_d.prim}, {DNNL_ARG_DIFF_DST, p.dy_d.prim}};

  // backward weights
  auto make_wpd = [&](const memory::desc& src, const memory::desc& ddst) {
    dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, src, w_any, b_md, ddst,
                                               cd.strides, cd.pl, cd.pr);
    return dnnl::convolution_backward_weights::primitive_desc(d, eng(), p.fpd);
  };
  p.wpd = make_wpd(p.fpd.src_desc(), y_md);
  if (is_ref(p.wpd.impl_info_str())) p.wpd = make_wpd(x_any, y_any);
  p.bwd_weights = dnnl::convolution_backward_weights(p.wpd);
  p.x_w_from_fwd = p.wpd.src_desc() == p.fpd.src_desc();
  if (p.x_w_from_fwd) p.x_w.prim = p.x.prim;
  else p.x_w.init_in(x_md, p.wpd.src_desc());
  p.dy_w_from_d = p.wpd.diff_dst_desc() == p.dpd.diff_dst_desc();
  if (p.dy_w_from_d) p.dy_w.prim = p.dy_d.prim;
  else p.dy_w.init_in(y_md, p.wpd.diff_dst_desc());
  p.dw.init_out(w_md, p.wpd.diff_weights_desc());
  if (bias) p.db = user_mem(b_md);
  p.wargs = {{DNNL_ARG_SRC, p.x_w.prim}, {DNNL_ARG_DIFF_DST, p.dy_w.prim}, {DNNL_ARG_DIFF_WEIGHTS, p.dw.prim}};
  if (bias) p.wargs[DNNL_ARG_DIFF_BIAS] = p.db;
  p.bwd_ready = true;
}

// ---------------------------------------------------------------------------- pooling

struct PoolPlan {
  dnnl::pooling_forward::primitive_desc fpd;
  dnnl::pooling_forward fwd;
  memory x, y, ws;
  std::unordered_map<int, memory> fargs;
  bool bwd_ready = false;
  dnnl::pooling_backward::primitive_desc bpd;
  dnnl::pooling_backward bwd;
  memory dx, dy;
  std::unordered_map<int, memory> bargs;
};

struct PoolKernel final : CpuKernel {
  std::map<PlanKey, std::unique_ptr<PoolPlan>> plans;
};

struct PoolDesc {
  dnnl::algorithm alg;
  memory::dims strides, kernel, pl, pr;
};

PoolDesc pool_desc(const ref::Geom& g, bool max) {
  return {max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_include_padding,
          {g.sh, g.sw},
          {g.kh, g.kw},
          {g.ph, g.pw},
          {pad_r(g.h, g.oh, g.kh, g.sh, g.ph), pad_r(g.w, g.ow, g.kw, g.sw, g.pw)}};
}

// Pooling sees a blocked layout's padded channels as channels (C rounded up to the block): the
// bytes are the same, and oneDNN's avx2 pooling then runs without its channel-tail masks, whose
// masked loads and stores cost ~4 ms per call on LeNet-5's 6-of-8 first pooling on an Intel
// avx512_core_amx machine (bench/README.md). The padded channels hold zeros (oneDNN writes them so in
// every blocked output), so they pool to zeros: the real channels' results are unchanged, bit for
// bit (tests/engine: cpu == reference on LeNet-5).
ref::Geom pool_geom(ref::Geom g, Layout l) {
  const int block = static_cast<int>(l);
  if (block > 1) g.c = (g.c + block - 1) / block * block;
  return g;
}

PoolPlan& pool_plan(std::unique_ptr<CpuKernel>& k, const ref::Geom& geom, bool max, Layout l, size_t n) {
  const ref::Geom g = pool_geom(geom, l);
  if (!k) k = std::make_unique<PoolKernel>();
  auto& plans = static_cast<PoolKernel&>(*k).plans;
  const PlanKey key{n, l, l};
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  auto p = std::make_unique<PoolPlan>();
  const PoolDesc pd = pool_desc(g, max);
  const memory::desc x_md = act_md(n, g.c, g.h, g.w, l), y_md = act_md(n, g.c, g.oh, g.ow, l);
  dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_training, pd.alg, x_md, y_md, pd.strides, pd.kernel, pd.pl,
                                pd.pr);
  p->fpd = dnnl::pooling_forward::primitive_desc(d, eng());
  p->fwd = dnnl::pooling_forward(p->fpd);
  p->x = user_mem(x_md);
  p->y = user_mem(y_md);
  p->fargs = {{DNNL_ARG_SRC, p->x}, {DNNL_ARG_DST, p->y}};
  if (max) {
    p->ws = own_mem(p->fpd.workspace_desc());
    p->fargs[DNNL_ARG_WORKSPACE] = p->ws;
  }
  return *(plans[key] = std::move(p));
}

// ------------------------------------------------------------------------- batch norm

struct BnPlan {
  // training forward
  dnnl::batch_normalization_forward::primitive_desc tpd;
  dnnl::batch_normalization_forward tfwd;
  memory x, y, scale, shift, mean, var;  // mean/var: owned (training) batch statistics
  std::unordered_map<int, memory> targs;
  // eval forward (running statistics)
  bool eval_ready = false;
  dnnl::batch_normalization_forward::primitive_desc epd;
  dnnl::batch_normalization_forward efwd;
  memory rmean, rvar;
  std::unordered_map<int, memory> eargs;
  // backward (training / eval)
  bool bwd_ready = false, ebwd_ready = false;
  dnnl::batch_normalization_backward bwd, ebwd;
  memory dx, dy, dscale, dshift, dx_scratch;
  std::unordered_map<int, memory> bargs, ebargs;
};

struct BnKernel final : CpuKernel {
  std::map<PlanKey, std::unique_ptr<BnPlan>> plans;
};

const auto kBnFlags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;

BnPlan& bn_plan(std::unique_ptr<CpuKernel>& k, const SampleShape& s, Layout l, float eps, size_t n) {
  if (!k) k = std::make_unique<BnKernel>();
  auto& plans = static_cast<BnKernel&>(*k).plans;
  const PlanKey key{n, l, l};
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  auto p = std::make_unique<BnPlan>();
  const memory::desc md = act_md(n, s.c, s.h, s.w, l);
  dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_training, md, eps, kBnFlags);
  p->tpd = dnnl::batch_normalization_forward::primitive_desc(d, eng());
  p->tfwd = dnnl::batch_normalization_forward(p->tpd);
  p->x = user_mem(md);
  p->y = user_mem(md);
  const memory::desc c_md({s.c}, dt::f32, tag::x);
  p->scale = user_mem(c_md);
  p->shift = user_mem(c_md);
  p->mean = own_mem(p->tpd.mean_desc());
  p->var = own_mem(p->tpd.variance_desc());
  p->targs = {{DNNL_ARG_SRC, p->x},       {DNNL_ARG_DST, p->y},      {DNNL_ARG_SCALE, p->scale},
              {DNNL_ARG_SHIFT, p->shift}, {DNNL_ARG_MEAN, p->mean}, {DNNL_ARG_VARIANCE, p->var}};
  return *(plans[key] = std::move(p));
}

}  // namespace

void conv_forward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool bias, Layout in, Layout out,
                  const float* w, const float* b, const float* x, float* y, size_t n) {
  ConvPlan& p = conv_plan(k, g, bias, in, out, n);
  p.x.in(x);
  p.w.in(w);
  p.y.bind_out(y);
  if (bias) point(p.b, b);
  p.fwd.execute(strm(), p.fargs);
  p.y.out();
}

void conv_backward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool bias, Layout in, Layout out,
                   const float* w, const float* x, const float* dy, float* dx, float* dw, float* db, size_t n) {
  ConvPlan& p = conv_plan(k, g, bias, in, out, n);
  if (!p.bwd_ready) conv_bwd_init(p, g, bias, in, out, n);
  // diff_dst: reordered once when both primitives want the same layout
  bool dy_staged = false;
  if (dx) {
    p.dy_d.in(dy);
    dy_staged = true;
    p.w_d.in(w);
    p.dx.bind_out(dx);
    p.bwd_data.execute(strm(), p.dargs);
    p.dx.out();
  }
  if (!p.x_w_from_fwd) p.x_w.in(x);
  (void)x;  // with x_w_from_fwd, the forward's staged src (same x, by contract) is reused
  if (p.dy_w_from_d) {
    if (!dy_staged) p.dy_d.in(dy);
  } else {
    p.dy_w.in(dy);
  }
  p.dw.bind_out(dw);
  if (bias) point(p.db, db);
  p.bwd_weights.execute(strm(), p.wargs);
  p.dw.out();
}

void pool_forward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool max, Layout l, const float* x, float* y,
                  size_t n) {
  PoolPlan& p = pool_plan(k, g, max, l, n);
  point(p.x, x);
  point(p.y, y);
  p.fwd.execute(strm(), p.fargs);
}

void pool_backward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool max, Layout l, const float* dy, float* dx,
                   size_t n) {
  PoolPlan& p = pool_plan(k, g, max, l, n);
  if (!p.bwd_ready) {
    const PoolDesc pd = pool_desc(g, max);
    const int c = pool_geom(g, l).c;
    const memory::desc x_md = act_md(n, c, g.h, g.w, l), y_md = act_md(n, c, g.oh, g.ow, l);
    dnnl::pooling_backward::desc d(pd.alg, x_md, y_md, pd.strides, pd.kernel, pd.pl, pd.pr);
    p.bpd = dnnl::pooling_backward::primitive_desc(d, eng(), p.fpd);
    p.bwd = dnnl::pooling_backward(p.bpd);
    p.dx = user_mem(x_md);
    p.dy = user_mem(y_md);
    p.bargs = {{DNNL_ARG_DIFF_SRC, p.dx}, {DNNL_ARG_DIFF_DST, p.dy}};
    if (max) p.bargs[DNNL_ARG_WORKSPACE] = p.ws;
    p.bwd_ready = true;
  }
  point(p.dx, dx);
  point(p.dy, dy);
  p.bwd.execute(strm(), p.bargs);
}

BnStats bn_forward(std::unique_ptr<CpuKernel>& k, const SampleShape& s, Layout l, float eps, const float* scale_shift,
                   const float* x, float* y, size_t n, bool training, const float* mean, const float* var) {
  BnPlan& p = bn_plan(k, s, l, eps, n);
  point(p.x, x);
  point(p.y, y);
  point(p.scale, scale_shift);
  point(p.shift, scale_shift + s.c);
  if (training) {
    p.tfwd.execute(strm(), p.targs);
    return {static_cast<const float*>(p.mean.get_data_handle()), static_cast<const float*>(p.var.get_data_handle())};
  }
  if (!p.eval_ready) {
    const memory::desc md = act_md(n, s.c, s.h, s.w, l);
    dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_training, md, eps,
                                              kBnFlags | dnnl::normalization_flags::use_global_stats);
    p.epd = dnnl::batch_normalization_forward::primitive_desc(d, eng());
    p.efwd = dnnl::batch_normalization_forward(p.epd);
    p.rmean = user_mem(p.epd.mean_desc());
    p.rvar = user_mem(p.epd.variance_desc());
    p.eargs = {{DNNL_ARG_SRC, p.x},       {DNNL_ARG_DST, p.y},       {DNNL_ARG_SCALE, p.scale},
               {DNNL_ARG_SHIFT, p.shift}, {DNNL_ARG_MEAN, p.rmean}, {DNNL_ARG_VARIANCE, p.rvar}};
    p.eval_ready = true;
  }
  point(p.rmean, mean);
  point(p.rvar, var);
  p.efwd.execute(strm(), p.eargs);
  return {};
}

void bn_backward(std::unique_ptr<CpuKernel>& k, const SampleShape& s, Layout l, float eps, const float* scale_shift,
                 const float* x, const float* dy, float* dx, float* dscale_shift, size_t n, bool training,
                 const float* mean, const float* var) {
  BnPlan& p = bn_plan(k, s, l, eps, n);
  const memory::desc md = act_md(n, s.c, s.h, s.w, l);
  if (!p.dx) {
    p.dx = user_mem(md);
    p.dy = user_mem(md);
    const memory::desc c_md({s.c}, dt::f32, tag::x);
    p.dscale = user_mem(c_md);
    p.dshift = user_mem(c_md);
  }
  if (training && !p.bwd_ready) {
    dnnl::batch_normalization_backward::desc d(dnnl::prop_kind::backward, md, md, eps, kBnFlags);
    dnnl::batch_normalization_backward::primitive_desc bpd(d, eng(), p.tpd);
    p.bwd = dnnl::batch_normalization_backward(bpd);
    p.bargs = {{DNNL_ARG_SRC, p.x},         {DNNL_ARG_MEAN, p.mean},           {DNNL_ARG_VARIANCE, p.var},
               {DNNL_ARG_DIFF_DST, p.dy},   {DNNL_ARG_SCALE, p.scale},         {DNNL_ARG_DIFF_SRC, p.dx},
               {DNNL_ARG_DIFF_SCALE, p.dscale}, {DNNL_ARG_DIFF_SHIFT, p.dshift}, {DNNL_ARG_SHIFT, p.shift}};
    p.bwd_ready = true;
  }
  if (!training && !p.ebwd_ready) {
    if (!p.eval_ready) throw RuntimeError("bn_backward (eval) without an eval forward");
    dnnl::batch_normalization_backward::desc d(dnnl::prop_kind::backward, md, md, eps,
                                               kBnFlags | dnnl::normalization_flags::use_global_stats);
    dnnl::batch_normalization_backward::primitive_desc bpd(d, eng(), p.epd);
    p.ebwd = dnnl::batch_normalization_backward(bpd);
    p.ebargs = {{DNNL_ARG_SRC, p.x},         {DNNL_ARG_MEAN, p.rmean},          {DNNL_ARG_VARIANCE, p.rvar},
                {DNNL_ARG_DIFF_DST, p.dy},   {DNNL_ARG_SCALE, p.scale},         {DNNL_ARG_DIFF_SRC, p.dx},
                {DNNL_ARG_DIFF_SCALE, p.dscale}, {DNNL_ARG_DIFF_SHIFT, p.dshift}, {DNNL_ARG_SHIFT, p.shift}};
    p.ebwd_ready = true;
  }
  if (!dx) {  // oneDNN always computes diff_src: give it scratch
    if (!p.dx_scratch) p.dx_scratch = own_mem(md);
    dx = static_cast<float*>(p.dx_scratch.get_data_handle());
  }
  point(p.x, x);
  point(p.dy, dy);
  point(p.dx, dx);
  point(p.scale, scale_shift);
  point(p.shift, scale_shift + s.c);
  point(p.dscale, dscale_shift);
  point(p.dshift, dscale_shift + s.c);
  if (training) {
    p.bwd.execute(strm(), p.bargs);
  } else {
    point(p.rmean, mean);
    point(p.rvar, var);
    p.ebwd.execute(strm(), p.ebargs);
  }
}

const char* effective_isa() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
  }
}

#else  // no oneDNN: the cpu backend is the reference one and never calls these

namespace {
[[noreturn]] void not_built() { throw RuntimeError("oneDNN kernels called in a build without oneDNN"); }
}  // namespace

void conv_forward(std::unique_ptr<CpuKernel>&, const ref::Geom&, bool, Layout, Layout, const float*, const float*,
                  const float*, float*, size_t) {
  not_built();
}
void conv_backward(std::unique_ptr<CpuKernel>&, const ref::Geom&, bool, Layout, Layout, const float*, const float*,
                   const float*, float*, float*, float*, size_t) {
  not_built();
}
void pool_forward(std::unique_ptr<CpuKernel>&, const ref::Geom&, bool, Layout, const float*, float*, size_t) {
  not_built();
}
void pool_backward(std::unique_ptr<CpuKernel>&, const ref::Geom&, bool, Layout, const float*, float*, size_t) {
  not_built();
}
BnStats bn_forward(std::unique_ptr<CpuKernel>&, const SampleShape&, Layout, float, const float*, const float*, float*,
                   size_t, bool, const float*, const float*) {
  not_built();
}
void bn_backward(std::unique_ptr<CpuKernel>&, const SampleShape&, Layout, float, const float*, const float*,
                 const float*, float*, float*, size_t, bool, const float*, const float*) {
  not_built();
}
const char* effective_isa() { return "none"; }

#endif

}  // namespace dtsim::engine::onednn
