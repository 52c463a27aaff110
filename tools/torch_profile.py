#!/usr/bin/python3
"""Profile a PyTorch model layer by layer for dtsim ("Simulate your own PyTorch model").

Usage:
  /usr/bin/python3 tools/torch_profile.py FILE.py:make_model --input 3,32,32 --batch 64[,128,...]
      --out mymodel.profile.json [--device cpu|cuda] [--threads T] [--steps N] [--warmup W]
      [--tokens VOCAB] [--args JSON] [--seed S]

FILE.py defines make_model() (any name after the colon) returning a torch.nn.Module. The input of a
step is a float tensor of shape batch x the --input dims (with --tokens VOCAB: integer tokens in
[0, VOCAB)). The loss is cross-entropy against random labels when the output is batch x classes,
else the mean square of the output. Writes one JSON file in the format "dtsim-model-profile/1"
(docs/profiles.md) that dtsim takes as a timing-only model:
  "model": {"kind": "profile", "path": "mymodel.profile.json"}

What is measured, per batch size (docs/profiles.md has the details):
  * the whole step without hooks: forward (model + loss), backward, optimizer update (SGD with
    momentum): medians over --steps steps after --warmup unmeasured ones;
  * the same steps again with hooks: every layer's forward and backward time. A layer is a leaf
    module or a module that owns parameters itself; the time between two layer events goes to the
    layer that began it, so the layers' times add up to the whole pass. The layers' medians are then
    scaled so that they sum exactly to the hook-free forward and backward medians (the factors are
    recorded as "hook_scale").
Needs only the standard library and torch (Debian's python3-torch; run with /usr/bin/python3).
"""
import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time

FORMAT = "dtsim-model-profile/1"


def keep_freed_memory():
    """glibc: serve every allocation below 32 MB from the heap and never trim it, so that a step's
    activations reuse the previous step's pages (as PyTorch's caching allocator does on a GPU).
    Without it, freed buffers go back to the kernel and the next step page-faults them in again,
    which made steps bimodal (16 vs 50-100 ms) on a loaded machine."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 2 ** 31 - 1)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def fail(msg):
    print(f"error: torch_profile: {msg}", file=sys.stderr)
    sys.exit(2)


def load_factory(spec):
    """'path/to/file.py:make_model' -> the callable."""
    path, sep, func = spec.rpartition(":")
    if not sep or not path:
        path, func = spec, "make_model"
    if not os.path.isfile(path):
        fail(f"{path}: no such file (expected FILE.py:FUNCTION)")
    mod_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    mod = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        mod_spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    if not hasattr(mod, func):
        fail(f"{path}: defines no function '{func}'")
    return getattr(mod, func), os.path.abspath(path), func


def find_layers(model):
    """The layers, in registration order: leaf modules and modules that own parameters directly.
    Returns [(name, module)]; the root is named '' (reported as its class name)."""
    out = []
    for name, m in model.named_modules():
        if len(list(m.children())) == 0 or len(list(m.parameters(recurse=False))) > 0:
            out.append((name, m))
    return out


def layer_type(m):
    import torch.nn as nn
    known = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.Conv3d: "conv3d", nn.Linear: "linear",
             nn.BatchNorm1d: "batchnorm1d", nn.BatchNorm2d: "batchnorm2d", nn.LayerNorm: "layernorm",
             nn.ReLU: "relu", nn.GELU: "gelu", nn.MaxPool2d: "maxpool2d", nn.AvgPool2d: "avgpool2d",
             nn.AdaptiveAvgPool2d: "avgpool2d", nn.Flatten: "flatten", nn.Dropout: "dropout",
             nn.Embedding: "embedding", nn.MultiheadAttention: "attention"}
    for cls, name in known.items():
        if type(m) is cls:
            return name
    return type(m).__name__.lower()


def forward_flops(m, inp, out, batch):
    """Forward FLOPs per sample (multiply-add = 2) of convolutions and linear layers, else 0."""
    import torch.nn as nn
    if not hasattr(out, "numel"):
        return 0.0
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        k = 1
        for d in m.kernel_size:
            k *= d
        # out: batch x C_out x spatial...; each output element costs C_in/groups * k multiply-adds.
        return 2.0 * (m.in_channels // m.groups) * k * out.numel() / batch
    if isinstance(m, nn.Linear):
        return 2.0 * m.in_features * out.numel() / batch
    return 0.0


class Recorder:
    """Hooks that timestamp every layer's forward start and the arrival of its output gradient."""

    def __init__(self, layers, sync):
        self.layers = layers
        self.sync = sync
        self.events = []  # (time, layer index, "f" | "b")
        self.handles = []
        self.flops = [0.0] * len(layers)
        self.calls = [0] * len(layers)
        self.batch = 1
        self.active = False
        self.counting = False
        self.input_nodes = {}
        for i, (_, m) in enumerate(layers):
            self.handles.append(m.register_forward_pre_hook(self._pre(i)))
            self.handles.append(m.register_forward_hook(self._post(i)))

    def now(self):
        self.sync()
        return time.perf_counter()

    def _pre(self, i):
        def hook(m, inp):
            if self.active:
                # The autograd nodes that produced the inputs: a module whose output comes from one of
                # them (Identity, Dropout(p=0)) adds no backward work of its own.
                self.input_nodes[i] = [x.grad_fn for x in inp if hasattr(x, "grad_fn") and x.grad_fn is not None]
                self.events.append((self.now(), i, "f"))
        return hook

    def _post(self, i):
        def hook(m, inp, out):
            if not self.active:
                return
            t = out
            if isinstance(t, (tuple, list)):
                t = next((x for x in t if hasattr(x, "requires_grad") and x.requires_grad), None)
            passthrough = t is not None and any(t.grad_fn is n for n in self.input_nodes.get(i, []))
            if t is not None and getattr(t, "requires_grad", False) and not passthrough:
                t.register_hook(self._grad(i))
            if self.counting:
                self.flops[i] += forward_flops(m, inp, out, self.batch)
                self.calls[i] += 1
        return hook

    def _grad(self, i):
        def hook(g):
            self.events.append((self.now(), i, "b"))
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def median(v):
    return statistics.median(v) if v else 0.0


def measure(model, make_batch, loss_fn, opt, batch, steps, warmup, sync, layers):
    """Returns (clean medians dict, per-layer forward/backward medians, flops, calls, raw hooked sums)."""
    x, y = make_batch(batch)

    def step(rec=None):
        opt.zero_grad(set_to_none=False)
        sync(); t0 = time.perf_counter()
        if rec:
            rec.events.clear()
            rec.t_start = t0
        out = model(x)
        sync(); t_model = time.perf_counter()
        loss = loss_fn(out, y)
        sync(); t1 = time.perf_counter()
        loss.backward()
        sync(); t2 = time.perf_counter()
        opt.step()
        sync(); t3 = time.perf_counter()
        return t0, t_model, t1, t2, t3

    n = len(layers)
    rec = Recorder(layers, sync)  # hooks stay registered; inactive they only return
    rec.batch = batch
    rec.active = True
    rec.counting = True
    step(rec)  # counts FLOPs and calls once
    rec.counting = False
    rec.active = False
    for _ in range(warmup):
        step()
        rec.active = True
        step(rec)
        rec.active = False
    # Clean and hooked steps alternate, so that both see the same machine state.
    fw, bw, up, st = [], [], [], []
    lf = [[] for _ in range(n + 1)]  # + the loss
    lb = [[] for _ in range(n + 1)]
    hooked_f, hooked_b = [], []
    for _ in range(steps):
        t0, _, t1, t2, t3 = step()
        fw.append(t1 - t0); bw.append(t2 - t1); up.append(t3 - t2); st.append(t3 - t0)
        rec.active = True
        t0, t_model, t1, t2, _ = step(rec)
        rec.active = False
        fwd = sorted(e for e in rec.events if e[2] == "f" and e[0] <= t_model)
        bwd = sorted(e for e in rec.events if e[2] == "b")
        f = [0.0] * (n + 1)
        b = [0.0] * (n + 1)
        # Forward: [t0, first event) goes to the first layer; each event's interval runs to the next
        # event or to the model's return; the loss is its own entry.
        if fwd:
            f[fwd[0][1]] += fwd[0][0] - t0
            for k, (t, i, _) in enumerate(fwd):
                end = fwd[k + 1][0] if k + 1 < len(fwd) else t_model
                f[i] += end - t
        f[n] += t1 - t_model
        # Backward: [t1, first gradient) is the loss's backward; then from each layer's output
        # gradient to the next event or the end of backward.
        b[n] += (bwd[0][0] if bwd else t2) - t1
        for k, (t, i, _) in enumerate(bwd):
            end = bwd[k + 1][0] if k + 1 < len(bwd) else t2
            b[i] += end - t
        for i in range(n + 1):
            lf[i].append(f[i]); lb[i].append(b[i])
        hooked_f.append(t1 - t0); hooked_b.append(t2 - t1)
    clean = {"forward_s": median(fw), "backward_s": median(bw), "update_s": median(up), "step_s": median(st)}
    rec.active = False
    rec.remove()
    mf = [median(v) for v in lf]
    mb = [median(v) for v in lb]
    # Scale the layer medians to the hook-free totals (hooks and timestamps cost time themselves).
    sf = clean["forward_s"] / sum(mf) if sum(mf) > 0 else 1.0
    sb = clean["backward_s"] / sum(mb) if sum(mb) > 0 else 1.0
    mf = [v * sf for v in mf]
    mb = [v * sb for v in mb]
    return clean, mf, mb, rec.flops, rec.calls, {"forward": sf, "backward": sb,
                                                 "hooked_forward_s": median(hooked_f),
                                                 "hooked_backward_s": median(hooked_b)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="FILE.py:FUNCTION returning a torch.nn.Module (default function make_model)")
    ap.add_argument("--input", required=True, help="per-sample input shape, e.g. 3,32,32")
    ap.add_argument("--batch", required=True, help="batch size, or a comma list of batch sizes")
    ap.add_argument("--out", required=True, help="the profile JSON to write")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads), default 1")
    ap.add_argument("--steps", type=int, default=30, help="measured steps per batch size (default 30)")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured steps first (default 10)")
    ap.add_argument("--tokens", type=int, default=0, help="integer token inputs in [0, VOCAB) instead of floats")
    ap.add_argument("--args", default="{}", help="keyword arguments for the function, as a JSON object")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    try:
        dims = [int(v) for v in a.input.split(",")]
        batches = sorted({int(v) for v in a.batch.split(",")})
    except ValueError:
        fail("--input and --batch take comma-separated integers")
    if not dims or min(dims) < 1 or not batches or batches[0] < 1:
        fail("--input and --batch must be positive")
    if a.steps < 3 or a.warmup < 0 or a.threads < 1:
        fail("--steps must be >= 3, --warmup >= 0, --threads >= 1")

    keep_freed_memory()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        fail(f"PyTorch is not installed ({e}); on Debian: apt-get install python3-torch")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no usable CUDA device")
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    factory, path, func = load_factory(a.model)
    try:
        kwargs = json.loads(a.args)
        assert isinstance(kwargs, dict)
    except (ValueError, AssertionError):
        fail("--args must be a JSON object")
    model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        fail(f"{path}:{func} returned {type(model).__name__}, not a torch.nn.Module")
    model = model.to(dev).train()

    out_shape = {}

    def make_batch(b):
        g = torch.Generator().manual_seed(a.seed + b)
        if a.tokens > 0:
            x = torch.randint(0, a.tokens, (b, *dims), generator=g)
        else:
            x = torch.randn((b, *dims), generator=g)
        with torch.no_grad():
            o = model(x.to(dev))
        o = o[0] if isinstance(o, (tuple, list)) else o
        out_shape["shape"] = list(o.shape[1:])
        if o.dim() == 2:
            y = torch.randint(0, o.shape[1], (b,), generator=g)
        else:
            y = None
        return x.to(dev), (y.to(dev) if y is not None else None)

    def loss_fn(o, y):
        o = o[0] if isinstance(o, (tuple, list)) else o
        return F.cross_entropy(o, y) if y is not None else o.float().pow(2).mean()

    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    layers = find_layers(model)
    params = list(model.named_parameters())
    index = {id(p): k for k, (_, p) in enumerate(params)}

    per_batch = []
    for b in batches:
        per_batch.append(measure(model, make_batch, loss_fn, opt, b, a.steps, a.warmup, sync, layers))

    # Execution order: the order of the layers' first forward events in one more step; layers never
    # called are merged into their nearest called ancestor.
    x, y = make_batch(batches[0])
    rec = Recorder(layers, sync)
    rec.active = True
    loss_fn(model(x), y).backward()
    order = []
    for _, i, kind in rec.events:
        if kind == "f" and i not in order:
            order.append(i)
    rec.active = False
    rec.remove()
    opt.zero_grad(set_to_none=True)

    owned = [[index[id(p)] for p in m.parameters(recurse=False) if id(p) in index] for _, m in layers]
    # A leaf's parameters include nothing of other layers; a parameter-owning container's own list
    # is its direct parameters only (its children are layers themselves).
    called = set(order)
    names = [n for n, _ in layers]
    assigned = set()
    for i, (n, _) in enumerate(layers):
        if i in called:
            continue
        # nearest called ancestor by name prefix
        anc = None
        for j in order:
            pj = names[j]
            if pj == "" or n.startswith(pj + "."):
                if anc is None or len(names[j]) > len(names[anc]):
                    anc = j
        if anc is not None:
            owned[anc].extend(owned[i])
            owned[i] = []
    for i in order:
        assigned.update(owned[i])
    uncalled = [i for i in range(len(layers)) if i not in called and owned[i]]

    out_layers = []
    for i in order + uncalled:
        n, m = layers[i]
        out_layers.append({
            "name": n if n else type(m).__name__,
            "type": layer_type(m),
            "tensors": sorted(owned[i]),
            "calls": per_batch[0][4][i] if i in called else 0,
            "forward_flops": per_batch[0][3][i],
            "backward_input_flops": per_batch[0][3][i],
            "backward_weight_flops": per_batch[0][3][i] if owned[i] and per_batch[0][3][i] > 0 else 0.0,
            "forward_s": [pb[1][i] for pb in per_batch],
            "backward_s": [pb[2][i] for pb in per_batch],
        })
    n = len(layers)
    out_layers.append({"name": "loss", "type": "loss", "tensors": [], "calls": 1, "forward_flops": 0.0,
                       "backward_input_flops": 0.0, "backward_weight_flops": 0.0,
                       "forward_s": [pb[1][n] for pb in per_batch], "backward_s": [pb[2][n] for pb in per_batch]})
    missing = [k for k in range(len(params)) if not any(k in l["tensors"] for l in out_layers)]
    if missing:  # parameters of modules that are never called: a layer of their own, no time
        out_layers.append({"name": "unused", "type": "unused", "tensors": missing, "calls": 0, "forward_flops": 0.0,
                           "backward_input_flops": 0.0, "backward_weight_flops": 0.0,
                           "forward_s": [0.0] * len(batches), "backward_s": [0.0] * len(batches)})

    tensors = [{"name": nm, "shape": list(p.shape), "elements": p.numel()} for nm, p in params]
    device_name = torch.cuda.get_device_name(0) if a.device == "cuda" else (platform.processor() or platform.machine())
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if a.device == "cpu" and line.startswith("model name"):
                    device_name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    doc = {
        "format": FORMAT,
        "name": os.path.splitext(os.path.basename(path))[0],
        "source": f"{os.path.relpath(path)}:{func}",
        "framework": f"torch {torch.__version__}",
        "device": a.device,
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "input": dims,
        "input_dtype": "int64" if a.tokens > 0 else "float32",
        "output": out_shape.get("shape", []),
        "dtype": str(params[0][1].dtype).replace("torch.", "") if params else "float32",
        "num_params": sum(t["elements"] for t in tensors),
        "tensors": tensors,
        "batches": batches,
        "layers": out_layers,
        "step": {key: [pb[0][key] for pb in per_batch] for key in ("forward_s", "backward_s", "update_s", "step_s")},
        "hook_scale": {"forward": [pb[5]["forward"] for pb in per_batch],
                       "backward": [pb[5]["backward"] for pb in per_batch]},
        "measurement": {"steps": a.steps, "warmup": a.warmup, "clock": "wall", "statistic": "median",
                        "optimizer": "SGD(momentum=0.9)", "loss": "cross_entropy" if out_shape.get("shape") and
                        len(out_shape["shape"]) == 1 else "mean_square"},
    }
    tmp = a.out + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, a.out)
    for k, b in enumerate(batches):
        s = doc["step"]
        print(f"{doc['name']}: batch {b}: forward {s['forward_s'][k] * 1e3:.1f} ms, backward "
              f"{s['backward_s'][k] * 1e3:.1f} ms, update {s['update_s'][k] * 1e3:.1f} ms, step "
              f"{s['step_s'][k] * 1e3:.1f} ms ({len(out_layers)} layers, {doc['num_params']} parameters, "
              f"{doc['threads']} thread(s))")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
