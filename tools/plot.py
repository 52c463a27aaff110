#!/usr/bin/python3
"""dtsim plots: the figures people expect from a study's results.csv (written by `dtsim sweep`).

  tools/plot.py all        RESULTS.csv [--out DIR] [options]   every plot the data supports + the table
  tools/plot.py speedup    RESULTS.csv ...   speedup vs workers per algorithm, against ideal linear
  tools/plot.py efficiency RESULTS.csv ...   scaling efficiency vs workers (needs a 1-worker run), against 1
  tools/plot.py accuracy   RESULTS.csv ...   test accuracy vs simulated time (each run's metrics.csv)
  tools/plot.py tta        RESULTS.csv ...   time-to-accuracy bars
  tools/plot.py loss       RESULTS.csv ...   validation loss vs simulated time (language models)
  tools/plot.py ttl        RESULTS.csv ...   time-to-loss bars per training.target_loss, with bytes on the wire
  tools/plot.py throughput RESULTS.csv ...   simulated throughput vs link bandwidth
  tools/plot.py regime     RESULTS.csv ...   regime map: best algorithm over two varied keys
  tools/plot.py table      RESULTS.csv ...   the summary table (stdout, and table.csv)
  tools/plot.py timeline   TRACE.json [TRACE.json ...] [--labels A B] [--out FILE.png]   (+ FILE.csv: the spans)

Every plot is written as PNG and SVG, with its data table next to it (same name, .csv): the values
drawn, computed from results.csv (means over repeated seeds). docs/plots.md explains each one.
Python 3 + matplotlib (Debian: python3-matplotlib); run with /usr/bin/python3.
"""
import argparse
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # plot_common.py, plot_timeline.py beside it
from plot_common import *  # noqa: E402,F401,F403
from plot_timeline import timeline, timelines  # noqa: E402



def speedup(res, out, args):
    """Speedup vs workers per algorithm, against ideal linear: by simulated time for the study's
    fixed sample budget, and by time to the target accuracy."""
    if "workers" not in res.columns:
        out.note("speedup: no 'workers' column; skipped")
        return
    xkeys = worker_keys(res)
    fkeys = [k for k in res.varied if k not in xkeys and k not in res.series_keys and k not in res.repeat_keys]
    worker_counts = ordered_unique(int(float(r["workers"])) for r in res.ok if to_float(r.get("workers")) is not None)
    if len(worker_counts) < 2:
        out.note("speedup: fewer than two worker counts; skipped")
        return
    metrics = []
    # the time of a sample budget compares worker counts only when the budget is the same for all
    # of them (strong scaling); a budget that grows with the workers (weak scaling) is efficiency's
    budgets = {}
    for r in res.ok:
        budgets.setdefault(facet_of(r, fkeys), set()).add(r.get("sample_budget", ""))
    if any(len(b) > 1 for b in budgets.values()):
        out.note("speedup (time): the sample budget changes with the worker count (weak scaling: see "
                 "efficiency); skipped")
    else:
        metrics.append(("time", "simulated_time_s", "completed", "simulated time for the sample budget"))
    tgt = pick_target(res, args)
    if tgt:
        metrics.append(("tta", tgt[1], None, f"simulated time to {tgt[0]:g} test accuracy"))
    for tag, col, status, what in metrics:
        groups = {}
        for r in res.ok:
            if status and r["status"] != status:
                continue
            v = to_float(r.get(col))
            key = (facet_of(r, fkeys), series_of(res, r), int(float(r["workers"])))
            groups.setdefault(key, []).append(v)
        if not any(v is not None for vs in groups.values() for v in vs):
            out.note(f"speedup ({tag}): no values of {col}; skipped")
            continue
        facets = ordered_unique(k[0] for k in groups)
        series = ordered_unique(k[1] for k in groups)
        color = colors_for(series)
        table = []
        fig, axes = panels(len(facets))
        for ax, fc in zip(axes, facets):
            pts = {}
            for (f, s, n), vs in groups.items():
                if f != fc:
                    continue
                # a run that never reached the target makes the point unknown
                m, sd = mean_std(vs) if all(v is not None for v in vs) else (float("nan"), float("nan"))
                pts[(s, n)] = (m, sd, len(vs))
            nmin = min(n for (_, n) in pts)
            base = resolve_baseline(args.baseline or "ssgd", [s for s in series if (s, nmin) in pts])
            base = base if (base, nmin) in pts else None
            for s in series:
                xs = sorted(n for (ss, n) in pts if ss == s)
                if not xs:
                    continue
                ref_series = base if base and (base, nmin) in pts and math.isfinite(pts[(base, nmin)][0]) else s
                ref_n = nmin if ref_series != s else xs[0]
                ref = pts.get((ref_series, ref_n), (float("nan"),))[0]
                ys = []
                for n in xs:
                    m, sd, cnt = pts[(s, n)]
                    sp = ref / m if (m > 0 and math.isfinite(ref)) else float("nan")
                    ideal = n / ref_n
                    ys.append(sp)
                    table.append([fc, s, n, m, sd, cnt, f"{ref_series}@{ref_n}", ref, sp, ideal])
                ax.plot(xs, ys, "o-", color=color[s], label=s)
            xs_all = sorted({n for (_, n) in pts})
            ax.plot(xs_all, [n / nmin for n in xs_all], "--", color="0.4", label="ideal linear")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log", base=2)
            ax.set_xticks(xs_all)
            ax.set_xticklabels([str(n) for n in xs_all])
            ax.yaxis.set_major_formatter(plt().FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(plt().NullLocator())
            ax.set_xlabel("workers")
            ax.set_ylabel("speedup (×)")
            ax.set_title(fc)
            ax.legend()
        ref_text = (f"vs {base} on {nmin} worker{'s' if nmin > 1 else ''}" if base
                    else "each algorithm vs its own smallest worker count")
        fig.suptitle(f"Speedup by {what} ({ref_text})", y=1.02)
        stem = f"speedup_{tag}"
        out.figure(fig, stem)
        out.table(stem, ["facet", "series", "workers", "metric_mean_s", "metric_std_s", "runs", "reference",
                         "reference_s", "speedup", "ideal"], table)


def worker_keys(res):
    """Varied keys that are a function of the worker count: the count itself (platform.workers.count,
    a platform file per count) and keys zipped with it, e.g. a training.samples that grows with the
    workers (weak scaling). They go with the workers axis, not into panels."""
    out = []
    for k in res.varied:
        if k in res.series_keys or k in res.repeat_keys:
            continue
        seen = {}
        if all(seen.setdefault(r.get("workers", ""), r.get(k, "")) == r.get(k, "") for r in res.ok) and \
                len({r.get(k, "") for r in res.ok}) > 1:
            out.append(k)
    return out


def efficiency(res, out, args):
    """Scaling efficiency vs workers per algorithm, against the ideal 1: each worker count's
    simulated throughput over N times one worker's, eff(s, N) = thr(s, N) / (N * thr(ref, 1)).
    With the same steps per worker (weak scaling) that is T(ref, 1) / T(s, N); with a fixed budget
    (strong scaling), speedup / N. The reference is the baseline's single-worker run in the same
    panel, else each series' own."""
    if "workers" not in res.columns:
        out.note("efficiency: no 'workers' column; skipped")
        return
    xkeys = worker_keys(res)
    fkeys = [k for k in res.varied if k not in xkeys and k not in res.series_keys and k not in res.repeat_keys]
    groups = {}
    for r in res.ok:
        n, v = to_float(r.get("workers")), to_float(r.get("samples_per_s_simulated"))
        if r["status"] != "completed" or n is None or v is None:
            continue
        groups.setdefault((facet_of(r, fkeys), series_of(res, r), int(n)), []).append(
            (v, to_float(r.get("simulated_time_s"))))
    counts = {k[2] for k in groups}
    if len(counts) < 2:
        out.note("efficiency: fewer than two worker counts; skipped")
        return
    if 1 not in counts:
        out.note("efficiency: no single-worker run (workers=1) to compare with; skipped")
        return
    facets = ordered_unique(k[0] for k in groups)
    series = ordered_unique(k[1] for k in groups)
    color = colors_for(series)
    fig, axes = panels(len(facets))
    table = []
    top = 1.0
    for ax, fc in zip(axes, facets):
        pts = {}
        for (f, s, n), vs in groups.items():
            if f == fc:
                thr = [v for v, _ in vs]
                tm = [t for _, t in vs if t is not None]
                pts[(s, n)] = mean_std(thr) + (mean_std(tm)[0] if len(tm) == len(vs) else float("nan"), len(vs))
        base = resolve_baseline(args.baseline or "ssgd", [s for s in series if (s, 1) in pts])
        base = base if (base, 1) in pts else None
        for s in series:
            ref_s = base or s
            if (ref_s, 1) not in pts:
                continue  # no single-worker run of its own in this panel
            ref = pts[(ref_s, 1)][0]
            xs = sorted(n for (ss, n) in pts if ss == s)
            ys = []
            for n in xs:
                m, sd, t, cnt = pts[(s, n)]
                e = m / (n * ref) if ref > 0 else float("nan")
                ys.append(e)
                table.append([fc, s, n, m, sd, t, cnt, f"{ref_s}@1", ref, e])
            top = max([top] + [y for y in ys if math.isfinite(y)])
            ax.plot(xs, ys, "o-", color=color[s], label=s)
        xs_all = sorted({n for (_, n) in pts})
        ax.axhline(1.0, ls="--", color="0.4", label="ideal")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs_all)
        ax.set_xticklabels([str(n) for n in xs_all])
        ax.xaxis.set_minor_locator(plt().NullLocator())
        ax.set_xlabel("workers")
        ax.set_ylabel("scaling efficiency")
        ax.set_title(fc)
        ax.legend(fontsize=8, loc="lower left")
    for ax in axes:
        ax.set_ylim(0, top * 1.05)
    fig.tight_layout()
    ref_text = f"vs {base} on 1 worker" if base else "each series vs its own single-worker run"
    fig.suptitle(f"Scaling efficiency: throughput / (N × one worker's) ({ref_text})", y=1.02)
    out.figure(fig, "efficiency")
    out.table("efficiency", ["facet", "series", "workers", "samples_per_s_mean", "samples_per_s_std",
                             "simulated_time_s_mean", "runs", "reference", "reference_samples_per_s", "efficiency"],
              table)


def same_target(t, target):
    """A column's target is --target also when they agree to %g's 6 digits (dtsim names the
    column, and `dtsim sweep --plot` writes --target, with %g)."""
    return abs(t - target) < 1e-12 or f"{t:g}" == f"{target:g}"


def pick_target(res, args):
    tg = res.targets()
    if args.target is not None:
        for t, c in tg:
            if same_target(t, args.target):
                return t, c
        return None  # main() refused it already
    for t, c in tg:  # the lowest target some run reached
        if any(to_float(r.get(c)) is not None for r in res.ok):
            return t, c
    return None


def accuracy(res, out, args):
    """Test accuracy vs simulated time, one curve per algorithm, from each run's metrics.csv."""
    fkeys = [k for k in res.varied if k not in res.series_keys and k not in res.repeat_keys]
    curves = []
    for r in res.ok:
        path = os.path.join(res.dir, r.get("run_dir", ""), "metrics.csv")
        if not os.path.isfile(path):
            continue
        pts = [(to_float(m.get("sim_time_s")), to_float(m.get("test_accuracy"))) for m in read_csv_rows(path)]
        pts = [(t, a) for t, a in pts if t is not None and a is not None]
        if pts:
            curves.append((facet_of(r, fkeys), series_of(res, r), r.get("seed", ""), r.get("run_dir", ""), pts))
    if not curves:
        out.note("accuracy: no run has test accuracy in its metrics.csv (timing-only?); skipped")
        return
    facets = ordered_unique(c[0] for c in curves)
    series = ordered_unique(c[1] for c in curves)
    color = colors_for(series)
    tgt = pick_target(res, args)
    fig, axes = panels(len(facets), 5.5, 3.8)
    table = []
    for ax, fc in zip(axes, facets):
        labelled = set()
        for f, s, seed, rd, pts in curves:
            if f != fc:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", marker=".", color=color[s],
                    label=None if s in labelled else s, alpha=0.9)
            labelled.add(s)
            table.extend([fc, s, seed, rd, t, a] for t, a in pts)
        if tgt:
            ax.axhline(tgt[0], color="0.5", ls=":", lw=1, label=f"target {tgt[0]:g}")
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("test accuracy")
        ax.set_title(fc)
        ax.legend(loc="lower right")
    fig.suptitle("Test accuracy vs simulated time", y=1.02)
    out.figure(fig, "accuracy_vs_time")
    out.table("accuracy_vs_time", ["facet", "series", "seed", "run_dir", "sim_time_s", "test_accuracy"], table)


def tta(res, out, args):
    """Time-to-accuracy bars: mean over seeds (error bar: standard deviation); runs that never
    reached the target are drawn as an empty bar marked 'not reached'."""
    tgt = pick_target(res, args)
    if not tgt:
        out.note("tta: no run reached a target accuracy (training.target_accuracy); skipped")
        return
    t, col = tgt
    fkeys = [k for k in res.varied if k not in res.series_keys and k not in res.repeat_keys]
    groups = {}
    for r in res.ok:
        groups.setdefault((facet_of(r, fkeys), series_of(res, r)), []).append(to_float(r.get(col)))
    facets = ordered_unique(k[0] for k in groups)
    series = ordered_unique(k[1] for k in groups)
    color = colors_for(series)
    width = 0.8 / max(1, len(series))
    fig, ax = plt().subplots(figsize=(max(5.0, 1.0 + 0.5 * len(facets) * len(series)), 4.0))
    table = []
    top = max([v for vs in groups.values() for v in vs if v is not None] or [1.0])
    for j, s in enumerate(series):
        for i, fc in enumerate(facets):
            vs = groups.get((fc, s))
            if vs is None:
                continue
            reached = [v for v in vs if v is not None]
            x = i + (j - (len(series) - 1) / 2) * width
            if len(reached) == len(vs):
                m, sd = mean_std(reached)
                ax.bar(x, m, width, yerr=sd if len(vs) > 1 else None, color=color[s], label=s if i == 0 else None,
                       capsize=3)
            else:
                m, sd = float("nan"), float("nan")
                ax.bar(x, top * 1.05, width, fill=False, hatch="//", edgecolor=color[s], label=s if i == 0 else None)
                ax.text(x, top * 1.06, "not\nreached", ha="center", va="bottom", fontsize=7)
            table.append([fc, s, t, m, sd, len(vs), len(reached)])
    ax.set_xticks(range(len(facets)))
    ax.set_xticklabels([(fc or "all runs").replace(", ", "\n") for fc in facets])
    ax.set_ylabel(f"simulated time to {t:g} accuracy (s)")
    ax.set_title(f"Time to {t:g} test accuracy (lower is better)")
    ax.legend()
    out.figure(fig, "tta_bars")
    out.table("tta_bars", ["facet", "series", "target", "tta_mean_s", "tta_std_s", "runs", "reached"], table)


def loss_targets(res):
    """Target losses with a time_to_loss_s column (training.target_loss), ascending."""
    out = []
    for c in res.columns:
        m = re.fullmatch(r"time_to_loss_s\.(.+)", c)
        if m and to_float(m.group(1)) is not None:
            out.append((float(m.group(1)), c))
    return sorted(out)


def loss(res, out, args):
    """Test (validation) loss vs simulated time, one curve per algorithm (language models), from
    each run's metrics.csv; the loss targets as dotted lines."""
    if not loss_targets(res):
        out.note("loss: no run has training.target_loss (time_to_loss_s columns); skipped")
        return
    fkeys = [k for k in res.varied if k not in res.series_keys and k not in res.repeat_keys]
    curves = []
    for r in res.ok:
        path = os.path.join(res.dir, r.get("run_dir", ""), "metrics.csv")
        if not os.path.isfile(path):
            continue
        pts = [(to_float(m.get("sim_time_s")), to_float(m.get("test_loss"))) for m in read_csv_rows(path)]
        pts = [(t, v) for t, v in pts if t is not None and v is not None]
        if pts:
            curves.append((facet_of(r, fkeys), series_of(res, r), r.get("seed", ""), r.get("run_dir", ""), pts))
    if not curves:
        out.note("loss: no run has a test loss in its metrics.csv (timing-only?); skipped")
        return
    facets = ordered_unique(c[0] for c in curves)
    color = colors_for(ordered_unique(c[1] for c in curves))
    fig, axes = panels(len(facets), 5.5, 3.8)
    table = []
    for ax, fc in zip(axes, facets):
        labelled = set()
        for f, s, seed, rd, pts in curves:
            if f != fc:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", marker=".", color=color[s],
                    label=None if s in labelled else s, alpha=0.9)
            labelled.add(s)
            table.extend([fc, s, seed, rd, t, v] for t, v in pts)
        for t, _ in loss_targets(res):
            ax.axhline(t, color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("simulated time (s, log)")
        ax.set_ylabel("validation loss (nats / token)")
        ax.set_title(fc)
        ax.legend(loc="upper right")
    fig.suptitle("Validation loss vs simulated time", y=1.02)
    out.figure(fig, "loss_vs_time")
    out.table("loss_vs_time", ["facet", "series", "seed", "run_dir", "sim_time_s", "test_loss"], table)


def ttl(res, out, args):
    """Time-to-loss bars per target loss (mean over seeds), with the bytes each run sent: the
    communication-light algorithms' trade (language models)."""
    targets = loss_targets(res)
    if not targets:
        out.note("ttl: no run has training.target_loss (time_to_loss_s columns); skipped")
        return
    fkeys = [k for k in res.varied if k not in res.series_keys and k not in res.repeat_keys]
    groups = {}
    for r in res.ok:
        groups.setdefault((facet_of(r, fkeys), series_of(res, r)), []).append(r)
    facets = ordered_unique(k[0] for k in groups)
    series = ordered_unique(k[1] for k in groups)
    color = colors_for(series)
    width = 0.8 / max(1, len(series))
    fig, axes = panels(len(targets), max(5.0, 1.0 + 0.5 * len(facets) * len(series)), 4.0)
    table = []
    for ax, (t, col) in zip(axes, targets):
        top = max([to_float(r.get(col)) or 0.0 for rs in groups.values() for r in rs] + [1e-9])
        for j, s in enumerate(series):
            for i, fc in enumerate(facets):
                rs = groups.get((fc, s))
                if not rs:
                    continue
                vals = [to_float(r.get(col)) for r in rs]
                sent = mean_std([to_float(r.get("bytes_on_wire")) or 0.0 for r in rs])[0]
                x = i + (j - (len(series) - 1) / 2) * width
                if all(v is not None for v in vals):
                    m = mean_std(vals)[0]
                    ax.bar(x, m, width, color=color[s], label=s if i == 0 else None)
                else:
                    m = float("nan")
                    ax.bar(x, top * 1.05, width, fill=False, hatch="//", edgecolor=color[s], label=s if i == 0 else None)
                    ax.text(x, top * 1.06, "not\nreached", ha="center", va="bottom", fontsize=7)
                table.append([fc, s, t, m, sent, len(rs)])
        ax.set_xticks(range(len(facets)))
        ax.set_xticklabels([(fc or "all runs").replace(", ", "\n") for fc in facets])
        ax.set_ylabel(f"simulated time to loss {t:g} (s)")
        ax.set_title(f"Time to validation loss {t:g} (lower is better)")
        ax.legend(fontsize=7)
    out.figure(fig, "ttl_bars")
    out.table("ttl_bars", ["facet", "series", "target_loss", "ttl_mean_s", "bytes_on_wire_mean", "runs"], table)


def bandwidth_column(res):
    """(column, parse) giving each run's worker link bandwidth in bytes/s."""
    for c in res.columns:
        if c.startswith("config.") and c.endswith("workers.link.bandwidth"):
            return c
    for k in res.varied:
        if "bandwidth" in k:
            return k
    return None


def throughput(res, out, args):
    """Simulated throughput (samples/s) vs the workers' link bandwidth, per algorithm."""
    col = bandwidth_column(res)
    if not col:
        out.note("throughput: no varied bandwidth (vary a *.link.bandwidth key or the platform); skipped")
        return
    # the keys that set the bandwidth (e.g. the link key, or the platform file) are the x axis
    bw_keys = [k for k in res.varied if k == col or "bandwidth" in k or varies_with(res, k, col)]
    fkeys = [k for k in res.varied if k not in bw_keys and k not in res.series_keys and k not in res.repeat_keys]
    groups = {}
    for r in res.ok:
        bw = parse_bandwidth(r.get(col, ""))
        v = to_float(r.get("samples_per_s_simulated"))
        if bw is None or v is None or r["status"] != "completed":
            continue
        groups.setdefault((facet_of(r, fkeys), series_of(res, r), bw), []).append(v)
    if len({k[2] for k in groups}) < 2:
        out.note("throughput: fewer than two bandwidths; skipped")
        return
    facets = ordered_unique(k[0] for k in groups)
    series = ordered_unique(k[1] for k in groups)
    color = colors_for(series)
    fig, axes = panels(len(facets))
    table = []
    for ax, fc in zip(axes, facets):
        for s in series:
            xs = sorted(b for (f, ss, b) in groups if f == fc and ss == s)
            if not xs:
                continue
            ms = []
            for b in xs:
                m, sd = mean_std(groups[(fc, s, b)])
                ms.append(m)
                table.append([fc, s, b * 8 / 1e9, m, sd, len(groups[(fc, s, b)])])
            ax.plot([b * 8 / 1e9 for b in xs], ms, "o-", color=color[s], label=s)
        ax.set_xscale("log")
        ax.set_xlabel("worker link bandwidth (Gb/s)")
        ax.set_ylabel("throughput (samples/s, simulated)")
        ax.set_title(fc)
        ax.legend()
    fig.suptitle("Throughput vs bandwidth", y=1.02)
    out.figure(fig, "throughput_vs_bandwidth")
    out.table("throughput_vs_bandwidth", ["facet", "series", "bandwidth_gbps", "samples_per_s_mean",
                                          "samples_per_s_std", "runs"], table)


def varies_with(res, key, col):
    """True when `key` determines `col` (each value of key has one value of col)."""
    seen = {}
    for r in res.ok:
        if seen.setdefault(r.get(key, ""), r.get(col, "")) != r.get(col, ""):
            return False
    return len(seen) > 1


def regime(res, out, args):
    """Regime map: over two varied keys, the algorithm with the best time to accuracy (else the
    shortest simulated time for the budget) in each cell, and by how much it beats the runner-up."""
    cands = [k for k in res.varied if k not in res.series_keys and k not in res.repeat_keys
             and len({r.get(k, "") for r in res.ok}) > 1]
    if args.regime:
        check_regime(res, args)  # main() did already
        xk, yk = args.regime
    elif len(cands) >= 2:
        xk, yk = cands[0], cands[1]
    else:
        out.note("regime: needs two varied keys besides the algorithm; skipped")
        return
    if len({series_of(res, r) for r in res.ok}) < 2:
        out.note("regime: needs at least two algorithms; skipped")
        return
    tgt = pick_target(res, args)
    col, what = (tgt[1], f"time to {tgt[0]:g} accuracy") if tgt else ("simulated_time_s", "simulated time for the budget")
    fkeys = [k for k in cands if k not in (xk, yk) and not TWINS.get(k, set()) & {xk, yk}]
    groups = {}
    for r in res.ok:
        if col == "simulated_time_s" and r["status"] != "completed":
            continue
        groups.setdefault((facet_of(r, fkeys), r.get(xk, ""), r.get(yk, ""), series_of(res, r)), []).append(
            to_float(r.get(col)))
    facets = ordered_unique(k[0] for k in groups)
    xs = ordered_unique(r.get(xk, "") for r in res.ok)
    ys = ordered_unique(r.get(yk, "") for r in res.ok)
    series = ordered_unique(k[3] for k in groups)
    color = colors_for(series)
    from matplotlib.colors import to_rgb
    fig, axes = panels(len(facets), max(4.5, 1.6 * len(xs) + 1.5), max(3.0, 0.9 * len(ys) + 1.5))
    table = []
    for ax, fc in zip(axes, facets):
        img = [[(1.0, 1.0, 1.0)] * len(xs) for _ in ys]
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                vals = []
                for s in series:
                    vs = groups.get((fc, x, y, s))
                    if vs:
                        m = mean_std(vs)[0] if all(v is not None for v in vs) else float("inf")
                        vals.append((m, s))
                if not vals:
                    continue
                vals.sort(key=lambda p: p[0])
                best_v, best = vals[0]
                if not math.isfinite(best_v):
                    table.append([fc, x, y, "", None, "", None, None])
                    ax.text(j, i, "none\nreached", ha="center", va="center", fontsize=8)
                    continue
                run_v, run = vals[1] if len(vals) > 1 else (float("nan"), "")
                margin = run_v / best_v if best_v > 0 and math.isfinite(run_v) else float("inf") if run else float("nan")
                table.append([fc, x, y, best, best_v, run, run_v if math.isfinite(run_v) else None,
                              margin if math.isfinite(margin) else None])
                # colour: the winner's hue, stronger the larger its lead (1x pale .. 2x+ full)
                strength = 0.35 + 0.65 * min(1.0, (margin - 1.0) if math.isfinite(margin) else 1.0)
                c = to_rgb(color[best])
                img[i][j] = tuple(1 - strength * (1 - ch) for ch in c)
                lead = f"×{margin:.2f}" if math.isfinite(margin) else ("only one\nreached" if run else "")
                ax.text(j, i, f"{best}\n{lead}" + (f"\nvs {run}" if run and math.isfinite(margin) else ""),
                        ha="center", va="center", fontsize=8)
        ax.imshow(img, aspect="auto", origin="lower")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([shorten(display(x)) for x in xs])
        ax.set_yticks(range(len(ys)))
        ax.set_yticklabels([shorten(display(y)) for y in ys])
        ax.set_xlabel(axis_label(xk))
        ax.set_ylabel(axis_label(yk))
        ax.grid(False)
        ax.set_title(fc or f"best {what}")
    fig.suptitle(f"Regime map: best algorithm by {what} (×: lead over the runner-up)", y=1.02)
    out.figure(fig, "regime_map")
    out.table("regime_map", ["facet", xk, yk, "best", "best_value_s", "runner_up", "runner_up_value_s", "margin"],
              table)


def check_regime(res, args):
    for k in args.regime or ():
        if k not in res.varied:
            raise PlotError(f"error: {res.path}: --regime: '{k}' is not a varied key "
                            f"(varied: {', '.join(res.varied) or 'none'})")


def check_target(res, args):
    """A --target needs its time_to_accuracy_s column: without it every time to accuracy would
    silently be missing (the study's plot.target_accuracy not among its training.target_accuracy)."""
    if args.target is None:
        return
    tg = res.targets()
    if not any(same_target(t, args.target) for t, _ in tg):
        have = ", ".join(f"{t:g}" for t, _ in tg) or "none: no run set training.target_accuracy"
        raise PlotError(f"error: {res.path}: --target {args.target:g}: no time_to_accuracy_s.{args.target:g} "
                        f"column (targets: {have})")


def shorten(v, n=22):
    return v if len(v) <= n else v[: n - 1] + "…"


def axis_label(key):
    return key  # the values are drawn as configured (e.g. "10Gbps"), so they carry their units


def table(res, out, args):
    """The summary table: per algorithm (and facet), time to the target, final accuracy, simulated
    time, throughput and speedup vs the baseline (by time to accuracy when reached, else by time)."""
    fkeys = [k for k in res.varied if k not in res.series_keys and k not in res.repeat_keys]
    tgt = pick_target(res, args)
    groups = {}
    for r in res.ok:
        groups.setdefault((facet_of(r, fkeys), series_of(res, r)), []).append(r)
    rows = []
    lines = []
    w = max([len(s) for (_, s) in groups] + [9])
    for fc in ordered_unique(k[0] for k in groups):
        ss = [s for (f, s) in groups if f == fc]
        stats = {}
        for s in ss:
            rs = groups[(fc, s)]
            tt = [to_float(r.get(tgt[1])) for r in rs] if tgt else []
            stats[s] = {
                "tta": mean_std(tt)[0] if tt and all(v is not None for v in tt) else float("nan"),
                "acc": mean_std([v for v in (to_float(r.get("final_test_accuracy")) for r in rs) if v is not None])[0],
                "time": mean_std([v for v in (to_float(r.get("simulated_time_s")) for r in rs) if v is not None])[0],
                "thr": mean_std([v for v in (to_float(r.get("samples_per_s_simulated")) for r in rs) if v is not None])[0],
                "runs": len(rs),
            }
        base = resolve_baseline(args.baseline or "ssgd", ss)
        base = base if base in stats else ss[0]
        b = stats.get(base)
        if fc:
            lines.append(f"\n{fc}")
        tname = f"time to {tgt[0]:g}" if tgt else "time to target"
        lines.append(f"  {'algorithm':<{w}} {tname:>14} {'final acc':>10} {'sim time':>12} {'samples/s':>11} "
                     f"{'speedup vs ' + base:>18}")
        # one basis per facet: time to the target when the baseline reached it, else simulated time
        # (a time of 0 -- the target met at the first evaluation -- gives no ratio either way)
        use_tta = b is not None and math.isfinite(b["tta"]) and b["tta"] > 0
        basis = "tta" if use_tta else "time"
        for s in ss:
            st = stats[s]
            if use_tta:
                sp = b["tta"] / st["tta"] if math.isfinite(st["tta"]) and st["tta"] > 0 else float("nan")
            else:
                sp = b["time"] / st["time"] if b and st["time"] > 0 else float("nan")
            rows.append([fc, s, tgt[0] if tgt else None, st["tta"], st["acc"], st["time"], st["thr"], sp, basis,
                         st["runs"]])
            lines.append(f"  {s:<{w}} {secs(st['tta']) if tgt else '-':>14} {num(st['acc'], 4):>10} "
                         f"{secs(st['time']):>12} {num(st['thr'], 0):>11} "
                         f"{(num(sp, 2) + '× (' + basis + ')') if math.isfinite(sp) else '-':>18}")
    if not rows:
        out.note("table: no completed runs")
        return
    print("\n".join(lines).lstrip("\n"))
    out.table("table", ["facet", "series", "target", "tta_s", "final_test_accuracy", "simulated_time_s",
                        "samples_per_s", "speedup", "speedup_basis", "runs"], rows)


def secs(v):
    if not math.isfinite(v):
        return "not reached"
    if v >= 100:
        return f"{v:.1f} s"
    if v >= 1:
        return f"{v:.3f} s"
    return f"{v * 1e3:.2f} ms"


def num(v, d):
    return f"{v:.{d}f}" if math.isfinite(v) else "-"


# --------------------------------------------------------------------------- timeline (trace.json)
PLOTS = {"speedup": speedup, "efficiency": efficiency, "accuracy": accuracy, "tta": tta, "loss": loss, "ttl": ttl, "throughput": throughput, "regime": regime,
         "timelines": timelines, "table": table}


# Which plots read each option (`all` draws every one of PLOTS, so it takes theirs).
OPTION_USERS = [
    ("--target", "target", ("all", "speedup", "accuracy", "tta", "regime", "table")),
    ("--baseline", "baseline", ("all", "speedup", "efficiency", "table")),
    ("--regime", "regime", ("all", "regime")),
    ("--labels", "labels", ("timeline",)),
    ("--from", "t_from", ("all", "timelines", "timeline")),
    ("--to", "t_to", ("all", "timelines", "timeline")),
    ("--hosts", "hosts", ("all", "timelines", "timeline")),
]


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # a usage error: one line and exit 2, like every other (docs/plots.md)
        raise PlotError(f"error: {message} (see plot.py --help)")


def main(argv=None):
    """Exit codes (docs/plots.md): 0 drawn; 2 bad input (a results.csv, metrics.csv or trace.json
    missing, unreadable or malformed) or a usage error (an unknown plot, a bad option value, an
    option that names nothing in results.csv); 1 nothing to plot (no completed run), or an
    output that cannot be written. Every error is one `error: ...` line on stderr."""
    try:
        return run(argv)
    except PlotError as e:
        print(e, file=sys.stderr)
        return e.code
    except OSError as e:  # the inputs are read behind PlotError: this is an output that cannot be written
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1


def run(argv):
    ap = ArgumentParser(prog="plot.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["all"] + list(PLOTS) + ["timeline"],
                    help="'timelines': one run per algorithm from results.csv; 'timeline': given trace.json files")
    ap.add_argument("inputs", nargs="+", help="results.csv (or trace.json files for 'timeline')")
    ap.add_argument("--out", help="output directory (default: plots/ beside results.csv); for 'timeline' the "
                                  "output file (default: timeline.png beside the first trace)")
    ap.add_argument("--target", type=float, help="target accuracy for time-to-accuracy (default: the lowest reached); "
                                                 "results.csv must have its time_to_accuracy_s column")
    ap.add_argument("--baseline", help="reference algorithm for speedups (default: ssgd when present)")
    ap.add_argument("--regime", nargs=2, metavar=("X_KEY", "Y_KEY"), help="the two varied keys of the regime map")
    ap.add_argument("--labels", nargs="+", help="timeline: one label per trace")
    ap.add_argument("--from", dest="t_from", type=float, help="timeline(s): start (simulated s)")
    ap.add_argument("--to", dest="t_to", type=float, help="timeline(s): end (simulated s)")
    ap.add_argument("--hosts", type=int, help="timeline(s): show at most this many hosts (0, the default: all)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    # An option the chosen plot does not read is a mistake (a --regime given to 'tta', --labels to a
    # results.csv plot), not something to ignore silently.
    for opt, dest, used_by in OPTION_USERS:
        if getattr(args, dest) is not None and args.what not in used_by:
            ap.error(f"{opt} does not apply to '{args.what}' (only to {', '.join(repr(w) for w in used_by)})")
    if args.hosts is None:
        args.hosts = 0
    if args.regime and args.regime[0] == args.regime[1]:
        ap.error(f"--regime needs two different keys, got '{args.regime[0]}' twice")
    for name, v in (("--target", args.target), ("--from", args.t_from), ("--to", args.t_to)):
        if v is not None and not math.isfinite(v):
            ap.error(f"argument {name}: expected a finite number, got {v}")
    if args.hosts < 0:
        ap.error(f"argument --hosts: expected 0 (all) or more, got {args.hosts}")
    if args.t_from is not None and args.t_to is not None and args.t_from >= args.t_to:
        ap.error(f"--from {args.t_from:g} must be before --to {args.t_to:g}")

    if args.what == "timeline":
        out_file = args.out or os.path.join(os.path.dirname(os.path.abspath(args.inputs[0])), "timeline.png")
        if args.labels and len(args.labels) != len(args.inputs):
            ap.error("--labels needs one label per trace")
        drawn = timeline(args.inputs, args.labels, out_file, args.t_from, args.t_to, args.hosts, args.quiet)
        # its data table, like every other plot's: one row per span drawn (beside the picture, .csv)
        out = Out(os.path.dirname(os.path.abspath(out_file)), True)
        out.table(os.path.splitext(os.path.basename(out_file))[0], ["run", "host", "track", "start_s", "end_s"], drawn)
        if not args.quiet:
            counts = {}
            for row in drawn:
                counts[row[0]] = counts.get(row[0], 0) + 1
            print("timeline: " + ", ".join(f"{k}: {v} spans" for k, v in counts.items()), file=sys.stderr)
        return 0
    if len(args.inputs) != 1:
        ap.error("give one results.csv")
    res = Results(args.inputs[0])
    if not res.ok:  # first: without a completed run results.csv has no time_to_accuracy_s column either
        raise PlotError(f"error: {res.path}: no completed runs; nothing to plot", code=1)
    # the options are checked before anything is drawn: a misspelt one would silently drop plots
    check_regime(res, args)
    check_target(res, args)
    if args.baseline is not None:  # a misspelt reference would silently drop every speedup
        names = sorted({series_of(res, r) for r in res.ok} | {series_of(res, r).split(" (")[0] for r in res.ok})
        if resolve_baseline(args.baseline, names) not in names:
            raise PlotError(f"error: {res.path}: --baseline '{args.baseline}': no completed run of that algorithm or "
                            f"series (have: {', '.join(names)})")
    out = Out(args.out or os.path.join(res.dir, "plots"), args.quiet, collect_skips=args.what == "all")
    todo = list(PLOTS) if args.what == "all" else [args.what]
    for name in todo:
        PLOTS[name](res, out, args)
    if not args.quiet:
        figs = sorted({os.path.splitext(p)[0] for p in out.written})
        print(f"plots: {len(figs)} in {out.dir}/ ({', '.join(os.path.basename(f) for f in figs)})", file=sys.stderr)
        if out.skipped:  # docs/plots.md: `all` says why it skipped the others
            print(f"plots skipped: {len(out.skipped)} (what this study's results.csv cannot show)", file=sys.stderr)
            for msg in out.skipped:
                print(f"  {msg}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
