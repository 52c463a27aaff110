#!/usr/bin/python3
"""One rank of an emulated-cluster job (run by run.py inside the rank's network namespace), or the
single-process compute reference. Writes its measurements to --out as JSON.

  worker.py ddp       --rank R --world N --master ADDR --bucket-mb B ...   DDP over gloo
  worker.py single    ...                                                   no DDP, one process
  worker.py allreduce --rank R --world N --master ADDR --sizes S1,S2,...    gloo all-reduce alone
  worker.py interference ... --sizes S1,... --work-ms W     compute alone / with an all-reduce in flight
  worker.py copies --master 127.0.0.1 --out F               DDP's own backward cost, one rank, no network

Compute is real (the PyTorch model of a dtsim spec, models.py) or emulated (--profile P): the model
is a chain of SleepLayer autograd functions, one per profiled layer, holding that layer's parameter
tensors; forward and backward sleep the profiled times (x --scale), so DDP's gradient hooks and
buckets fire as they would on an accelerator while the CPU stays free for 4-8 ranks on 2 cores.
"""
import argparse
import ctypes
import json
import os
import signal
import statistics
import sys
import threading
import time
from datetime import timedelta

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from torch_profile import keep_freed_memory  # noqa: E402

keep_freed_memory()  # the same allocator behaviour as the profile's measurement
import torch  # noqa: E402
import torch.distributed as dist
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def die_with_parent():
    """SIGKILL this process when the harness dies (also when it is SIGKILLed)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    want = int(os.environ.get("DTSR_PARENT", "0"))
    if want and os.getppid() != want:
        os._exit(3)


# ------------------------------------------------------------------ emulated compute
class Clock:
    """The emulated accelerator's time line: layer i of a pass ends at start + t_1 + ... + t_i, so
    the CPU's own per-layer overhead (autograd, hooks) overlaps the emulated compute as on a GPU."""

    def __init__(self):
        self.end = 0.0
        self.log = None  # [(layer, "fwd"|"bwd", start, end)] when recording

    def reset(self):
        self.end = time.perf_counter()

    def run(self, t, name=None, kind=None):
        start = self.end
        self.end = start + t
        now = time.perf_counter()
        if self.end > now:
            time.sleep(self.end - now)
        if self.log is not None:
            self.log.append((name, kind, start, max(self.end, now)))


class SleepLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, layer, *params):
        ctx.layer = layer
        ctx.shapes = [p.shape for p in params]
        layer.clock.run(layer.fwd, layer.name, "fwd")
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        layer = ctx.layer
        layer.clock.run(layer.bwd, layer.name, "bwd")
        return (g, None) + tuple(torch.zeros(s) for s in ctx.shapes)


class EmulatedLayer:
    def __init__(self, name, fwd, bwd, clock):
        self.name, self.fwd, self.bwd, self.clock = name, fwd, bwd, clock


class EmulatedModel(nn.Module):
    """The profile's parameter tensors (registration order) and layers (execution order)."""

    def __init__(self, profile, batch, scale):
        super().__init__()
        self.clock = Clock()
        self.params = nn.ParameterList([nn.Parameter(torch.zeros(t["shape"])) for t in profile["tensors"]])
        self.layers = []
        for l in profile["layers"]:
            fwd = interpolate(profile["batches"], l["forward_s"], batch) * scale
            bwd = interpolate(profile["batches"], l["backward_s"], batch) * scale
            self.layers.append((EmulatedLayer(l["name"], fwd, bwd, self.clock), l["tensors"]))

    def forward(self, x):
        self.clock.reset()
        for layer, tensors in self.layers:
            x = SleepLayer.apply(x, layer, *[self.params[i] for i in tensors])
        return x


def interpolate(batches, values, b):
    """As engine/profile_model.cpp's interpolate_batch."""
    if len(batches) == 1 or b <= batches[0]:
        return values[0] * b / batches[0]
    for i in range(1, len(batches)):
        if b <= batches[i]:
            return values[i - 1] + (values[i] - values[i - 1]) * (b - batches[i - 1]) / (batches[i] - batches[i - 1])
    slope = (values[-1] - values[-2]) / (batches[-1] - batches[-2])
    return values[-1] + slope * (b - batches[-1]) if slope > 0 else values[-1] * b / batches[-1]


# ------------------------------------------------------------------ timeline (real compute)
class LayerTimeline:
    """Per-layer backward start/end of a real model: a layer's backward starts when the gradient of
    its output arrives and ends at the next such event (the profiler's rule)."""

    def __init__(self, model):
        self.events = []
        self.on = False
        for name, m in model.named_modules():
            if len(list(m.children())) == 0 or len(list(m.parameters(recurse=False))) > 0:
                m.register_forward_hook(self._hook(name))

    def _hook(self, name):
        def fwd(m, inp, out):
            if self.on and isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(lambda g: self.events.append((name, time.perf_counter())))
        return fwd


def add_comm_timeline(ddp, world, log):
    """DDP's default all-reduce (average), with each bucket's start and end recorded."""
    def hook(state, bucket):
        t0 = time.perf_counter()
        fut = dist.all_reduce(bucket.buffer().div_(world), async_op=True).get_future()

        def done(f):
            log.append((bucket.index(), bucket.buffer().numel() * 4, t0, time.perf_counter()))
            return f.value()[0]
        return fut.then(done)
    ddp.register_comm_hook(None, hook)


# ------------------------------------------------------------------ jobs
def setup(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})


def comm_threads_first():
    """With $DTSR_COMM_FIRST=1 (run.py's default) and this rank at SCHED_FIFO: every thread but this
    one — gloo's, started by the process group and the first collective — at FIFO priority 2, above
    the compute thread's 1. At equal FIFO priority a woken gloo thread waits until the compute
    thread blocks: on a rank's one core an all-reduce then makes no progress during backward
    (interference.py measured a 4 MB all-reduce started before 46 ms of convolutions end 33 ms after
    them), which no cluster does. Communication first is what an idle core's scheduler does with a
    thread woken by the network, and its CPU time is taken from the computing thread."""
    if os.environ.get("DTSR_COMM_FIRST") != "1" or os.sched_getscheduler(0) != os.SCHED_FIFO:
        return
    me = threading.get_native_id()
    for t in os.listdir("/proc/self/task"):
        if int(t) != me:
            try:
                os.sched_setscheduler(int(t), os.SCHED_FIFO, os.sched_param(2))
            except OSError:
                pass


def thread_priorities():
    """[policy name, FIFO/RR priority] of every thread of this process, this one first (what
    comm_threads_first left: results a test can check)."""
    me = threading.get_native_id()
    names = {os.SCHED_OTHER: "other", os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}
    out = []
    for t in sorted(os.listdir("/proc/self/task"), key=lambda t: int(t) != me):
        try:
            out.append([names.get(os.sched_getscheduler(int(t)), "?"), os.sched_getparam(int(t)).sched_priority])
        except OSError:  # the thread ended meanwhile
            pass
    return out


def init_dist(a):
    os.environ["MASTER_ADDR"] = a.master
    os.environ["MASTER_PORT"] = str(a.port)
    dist.init_process_group("gloo", rank=a.rank, world_size=a.world, timeout=timedelta(seconds=a.timeout))


def build_model(a):
    if a.profile:
        with open(a.profile) as f:
            prof = json.load(f)
        return EmulatedModel(prof, a.batch, a.scale), prof
    return models.build(json.loads(a.model), tuple(a.input), a.classes), None


def train(a, distributed):
    model, prof = build_model(a)
    emulated = prof is not None
    net = model
    comm_log, layer_tl = [], None
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=a.bucket_mb)
        if a.timeline:
            add_comm_timeline(net, a.world, comm_log)
    if a.timeline:
        if emulated:
            model.clock.log = []
        else:
            layer_tl = LayerTimeline(model)
    if emulated:
        x = torch.zeros(1, requires_grad=True)
        update_s = interpolate(prof["batches"], prof["step"]["update_s"], a.batch) * a.scale if "step" in prof else 0.0
        opt = None
    else:
        g = torch.Generator().manual_seed(a.seed + a.rank)
        x = torch.randn((a.batch, *a.input), generator=g)
        y = torch.randint(0, a.classes, (a.batch,), generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    times, marks = [], []
    for k in range(a.warmup + a.steps):
        last = k == a.warmup + a.steps - 1
        if distributed:
            if k == 1:
                comm_threads_first()
            dist.barrier()
        if a.timeline and last:
            comm_log.clear()
            if emulated:
                model.clock.log = []
            else:
                layer_tl.events.clear()
                layer_tl.on = True
        t0 = time.perf_counter()
        if emulated:
            for p in model.parameters():
                p.grad = None
            out = net(x)
            t_f = time.perf_counter()
            out.sum().backward()
            t_b = time.perf_counter()
            if update_s > 0:
                time.sleep(update_s)
        else:
            opt.zero_grad(set_to_none=False)
            loss = F.cross_entropy(net(x), y)
            t_f = time.perf_counter()
            loss.backward()
            t_b = time.perf_counter()
            opt.step()
        t1 = time.perf_counter()
        if k >= a.warmup:
            times.append(t1 - t0)
            marks.append((t_f - t0, t_b - t0))
        if a.timeline and last:
            tl = {"t0": t0, "forward_end": t_f, "backward_end": t_b, "end": t1, "comm": comm_log[:]}
            if emulated:
                tl["layers"] = model.clock.log[:]
            else:
                layer_tl.on = False
                tl["layer_events"] = layer_tl.events[:]
    res = {"rank": a.rank, "times": times, "median_s": statistics.median(times),
           "forward_s": statistics.median(m[0] for m in marks),
           "backward_end_s": statistics.median(m[1] for m in marks), "threads": thread_priorities()}
    if a.timeline:
        res["timeline"] = tl
    return res


def allreduce(a):
    res = {"rank": a.rank, "sizes": [], "times": []}
    for s in [int(v) for v in a.sizes.split(",")]:
        t = torch.ones(max(1, s // 4))
        for _ in range(a.warmup):
            dist.all_reduce(t)
        ts = []
        for _ in range(a.steps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            ts.append(time.perf_counter() - t0)
        res["sizes"].append(s)
        res["times"].append(ts)
    return res


def interference(a):
    """A fixed amount of real compute (convolutions, ~--work-ms) alone, and again with an all-reduce of
    each size started just before it on every rank (gloo's threads then share this rank's core):
    how much communication slows computing on the same core (bench/reality/interference.py)."""
    x, w = torch.randn(32, 16, 32, 32), torch.randn(16, 16, 3, 3)

    def work(n):
        for _ in range(n):
            F.conv2d(x, w, padding=1)
    work(20)
    t0 = time.perf_counter()
    work(20)
    one = (time.perf_counter() - t0) / 20
    n = torch.tensor([max(1, round(a.work_ms / 1e3 / one))])
    dist.broadcast(n, 0)  # every rank the same work
    n = int(n)
    dist.all_reduce(torch.ones(1024))  # gloo's threads exist before the priorities are set
    comm_threads_first()
    res = {"rank": a.rank, "iterations": n, "sizes": [], "alone_s": [], "with_s": [], "both_done_s": [], "comm_s": []}
    for s in [int(v) for v in a.sizes.split(",")]:
        t = torch.ones(max(1, s // 4))
        for _ in range(2):
            dist.all_reduce(t)
        alone, with_, both, comm = [], [], [], []
        for _ in range(a.steps):
            dist.barrier()
            t0 = time.perf_counter()
            work(n)
            alone.append(time.perf_counter() - t0)
            dist.barrier()
            t0 = time.perf_counter()
            h = dist.all_reduce(t, async_op=True)
            work(n)
            t1 = time.perf_counter()
            h.wait()
            with_.append(t1 - t0)
            both.append(time.perf_counter() - t0)
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            comm.append(time.perf_counter() - t0)
        res["sizes"].append(s)
        for k, v in (("alone_s", alone), ("with_s", with_), ("both_done_s", both), ("comm_s", comm)):
            res[k].append(statistics.median(v))
    return res


COPY_MODELS = [[512, 512], [4096], [1024] * 6, [2048, 2048, 2048]]


def copies(a):
    """The backward of MLPs of 0.7-10 M parameters without and with DDP in a world of one (gloo, no
    peer): DDP's gradient copies into and out of its buckets and its division by the world size,
    i.e. the CPU cost per gradient element of its collectives' memory passes
    (bench/reality/interference.py fits memory_bandwidth to it)."""
    res = {"models": [], "elements": [], "plain_s": [], "ddp_s": []}
    for hidden in COPY_MODELS:
        spec = {"kind": "mlp", "hidden": hidden}
        row = {}
        for mode in ("plain", "ddp"):
            torch.manual_seed(0)
            model = models.build(spec, (1, 28, 28), 10)
            net = model if mode == "plain" else nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
            times = []
            for k in range(a.warmup + a.steps):
                opt.zero_grad(set_to_none=False)
                loss = F.cross_entropy(net(x), y)
                t0 = time.perf_counter()
                loss.backward()
                times.append(time.perf_counter() - t0)
                opt.step()
            row[mode] = statistics.median(times[a.warmup:])
        res["models"].append(spec)
        res["elements"].append(sum(p.numel() for p in model.parameters()))
        res["plain_s"].append(row["plain"])
        res["ddp_s"].append(row["ddp"])
    return res


def main():
    die_with_parent()
    ap = argparse.ArgumentParser()
    ap.add_argument("job", choices=["ddp", "single", "allreduce", "interference", "copies"])
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--world", type=int, default=1)
    ap.add_argument("--master", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=29500)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--model", default='{"kind": "mlp"}', help="dtsim model spec (real compute)")
    ap.add_argument("--profile", help="model profile: emulated compute (sleep layers)")
    ap.add_argument("--scale", type=float, default=1.0, help="emulated times x this")
    ap.add_argument("--input", type=lambda s: [int(v) for v in s.split(",")], default=[1, 28, 28])
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bucket-mb", type=float, default=25.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu", type=int, help="pin to this core")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default="1048576")
    ap.add_argument("--work-ms", type=float, default=100.0)
    ap.add_argument("--timeline", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    setup(a)
    if a.job == "single":
        res = train(a, False)
    else:
        init_dist(a)
        res = {"ddp": lambda: train(a, True), "allreduce": lambda: allreduce(a),
               "interference": lambda: interference(a), "copies": lambda: copies(a)}[a.job]()
    with open(a.out + ".tmp", "w") as f:
        json.dump(res, f)
    os.replace(a.out + ".tmp", a.out)
    # No process-group teardown: every collective is complete, and gloo's connection shutdown is
    # where ranks were seen spinning (the harness waits for the files, then for the exits).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
