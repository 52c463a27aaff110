"""The timeline plots of tools/plot.py: simulated time per host and track from trace.json files."""
import json
import os
import sys

from plot_common import *  # noqa: F401,F403 (plt, Out, display, ...)


TRACK_ORDER = ["compute", "update", "send", "recv", "wait"]
TRACK_COLOR = {"compute": "#2ca02c", "update": "#8c564b", "send": "#1f77b4", "recv": "#ff7f0e", "wait": "#d62728"}


def load_trace(path):
    """(process names, track names, "X" spans) of a Chrome trace; PlotError (exit 2) when the file
    cannot be read or is not a trace."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise input_error(path, e)
    except ValueError as e:
        raise PlotError(f"error: {path}: not JSON ({e})")
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        raise PlotError(f"error: {path}: not a Chrome trace (no traceEvents list): give a run's trace.json")
    procs, tracks, spans = {}, {}, []
    for i, e in enumerate(events):
        try:
            if not isinstance(e, dict):
                raise TypeError("not an object")
            if e.get("ph") == "M" and e.get("name") == "process_name":
                procs[e["pid"]] = e["args"]["name"]
            elif e.get("ph") == "M" and e.get("name") == "thread_name":
                tracks[(e["pid"], e["tid"])] = e["args"]["name"]
            elif e.get("ph") == "X":
                hash(e["pid"])  # a span needs its host
                if not all(isinstance(e[k], (int, float)) and not isinstance(e[k], bool) for k in ("ts", "dur")):
                    raise TypeError("'ts' and 'dur' must be numbers")
                spans.append(e)
        except (KeyError, TypeError) as err:
            what = f"no {err}" if isinstance(err, KeyError) else str(err)
            raise PlotError(f"error: {path}: traceEvents[{i}]: malformed event ({what})")
    for e in spans:
        e["kind"] = kind_of(e, tracks)
    return procs, tracks, spans


def kind_of(span, tracks):
    """The band a span belongs to: its track's kind ("compute", "send 2" -> send, ...; docs/timeline.md),
    else its name's first word. Layer-wise runs name their compute spans "forward <layer>" and
    "backward <layer>" on the compute track."""
    for name in (tracks.get((span.get("pid"), span.get("tid")), ""), span.get("name", "")):
        word = name.split(" ")[0] if name else ""
        if word in ("forward", "backward"):
            return "compute"
        if word in TRACK_BAND:
            return word
    return None


# Each host is one row; its activities are bands within the row (y offset, height).
TRACK_BAND = {"compute": (-0.44, 0.40), "update": (-0.44, 0.40), "send": (-0.01, 0.14), "recv": (0.14, 0.14),
              "wait": (0.29, 0.14)}


def timeline(paths, labels, out_file, t_from, t_to, max_hosts, quiet):
    """A static picture of one or more trace.json files on a common time axis: one row per host,
    with bands for compute (and server updates), send, recv and wait. Returns the spans drawn."""
    runs = [load_trace(p) for p in paths]
    labels = labels or [os.path.basename(os.path.dirname(os.path.abspath(p))) or p for p in paths]
    if t_to is None:
        t_to = max((e["ts"] + e["dur"]) / 1e6 for _, _, spans in runs for e in spans) if any(r[2] for r in runs) else 1
    t_from = t_from or 0.0
    hosts_per_run = []
    for procs, tracks, spans in runs:
        used = sorted({e["pid"] for e in spans if e["kind"]})
        hosts_per_run.append(used[:max_hosts] if max_hosts else used)
    height = sum(max(1, len(h)) for h in hosts_per_run) * 0.32 + 0.9 * len(runs)
    fig, axes = plt().subplots(len(runs), 1, figsize=(12, max(2.5, height)), squeeze=False, sharex=True,
                               gridspec_kw={"height_ratios": [max(1, len(h)) for h in hosts_per_run]})
    drawn = []
    for ax, (procs, tracks, spans), hosts, label in zip([a[0] for a in axes], runs, hosts_per_run, labels):
        index = {h: i for i, h in enumerate(hosts)}
        bars = {}
        for e in spans:
            if e["pid"] not in index or not e["kind"]:
                continue
            s, d = e["ts"] / 1e6, e["dur"] / 1e6
            if s + d < t_from or s > t_to:
                continue
            bars.setdefault((e["pid"], e["kind"]), []).append((s, max(d, (t_to - t_from) * 2e-4)))
            drawn.append([label, procs.get(e["pid"], e["pid"]), e["kind"], s, s + d])
        for (h, kind), b in sorted(bars.items()):
            off, hgt = TRACK_BAND[kind]
            ax.broken_barh(b, (index[h] + off, hgt), facecolors=TRACK_COLOR[kind], alpha=0.75, edgecolor="none")
        ax.set_yticks(range(len(hosts)))
        ax.set_yticklabels([procs.get(h, str(h)) for h in hosts], fontsize=8)
        ax.set_ylim(len(hosts) - 0.5, -0.5)
        ax.set_xlim(t_from, t_to)
        ax.set_title(label, loc="left")
        ax.grid(axis="x")
        ax.grid(axis="y", visible=False)
    axes[-1][0].set_xlabel("simulated time (s)")
    from matplotlib.patches import Patch
    axes[0][0].legend(handles=[Patch(color=TRACK_COLOR[k], alpha=0.75, label=k) for k in TRACK_ORDER],
                      loc="lower right", ncol=len(TRACK_ORDER), bbox_to_anchor=(1.0, 1.0), frameon=False)
    os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
    stem, ext = os.path.splitext(out_file)
    for e in FORMATS:
        fig.savefig(f"{stem}.{e}", dpi=150, bbox_inches="tight", metadata={"Date": None} if e == "svg" else None)
        if not quiet:
            print(f"wrote {stem}.{e}", file=sys.stderr)
    plt().close(fig)
    return drawn


def timelines(res, out, args):
    """One run per algorithm (the first panel, the first seed) on a common time axis: a window of
    about six steps at 70% of the shortest run (--from/--to override it)."""
    fkeys = [k for k in res.varied if k not in res.series_keys and k not in res.repeat_keys]
    chosen, facet = {}, None
    for r in res.ok:
        path = os.path.join(res.dir, r.get("run_dir", ""), "trace.json")
        if not os.path.isfile(path):
            continue
        fc = facet_of(r, fkeys)
        facet = fc if facet is None else facet
        s = series_of(res, r)
        if fc == facet and s not in chosen and len(chosen) < 4:
            chosen[s] = (path, r)
    if not chosen:
        out.note("timeline: no run wrote a trace.json (output.trace); skipped")
        return
    t_end = min(to_float(r.get("simulated_time_s")) or 0 for _, r in chosen.values())
    steps = []
    for _, r in chosen.values():
        g, n, t = to_float(r.get("gradients")), to_float(r.get("workers")), to_float(r.get("simulated_time_s"))
        if g and n and t:
            steps.append(t / max(1.0, g / n))
    t_from = args.t_from if args.t_from is not None else 0.7 * t_end
    t_to = args.t_to if args.t_to is not None else t_from + 6 * (max(steps) if steps else 0.02 * t_end)
    drawn = timeline([p for p, _ in chosen.values()], list(chosen), os.path.join(out.dir, "timeline.png"), t_from,
                     t_to, args.hosts, True)
    out.written.extend(os.path.join(out.dir, f"timeline.{e}") for e in FORMATS)
    out.table("timeline", ["run", "host", "track", "start_s", "end_s"], drawn)


# --------------------------------------------------------------------------- main
