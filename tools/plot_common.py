"""Shared by tools/plot.py and tools/plot_timeline.py: results.csv as runs and series, labels,
the output writer (each figure in every format + its data table) and matplotlib loaded on first use."""
import csv
import json
import math
import os
import re
import sys


OK_STATUSES = ("completed", "time_limit")
FORMATS = ("png", "svg")


class PlotError(Exception):
    """One `error: ...` line on stderr and the exit code (docs/plots.md, "Exit codes"): 2 for bad
    input (a missing, unreadable or malformed file) and usage (an option value that matches
    nothing in the data), 1 for anything else (e.g. an output that cannot be written)."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


def input_error(path, e):
    """A PlotError for an input file that cannot be read (OSError) or decoded."""
    if isinstance(e, OSError):
        why = e.strerror or str(e)
    elif isinstance(e, UnicodeDecodeError):
        why = f"not a text file ({e.reason} at byte {e.start})"
    else:
        why = str(e)
    return PlotError(f"error: {path}: {why}")


# --------------------------------------------------------------------------- reading results.csv
class Results:
    """results.csv: columns left of "status" are the study's varied keys (dtsim sweep's layout)."""

    def __init__(self, path):
        self.path = path
        self.dir = os.path.dirname(os.path.abspath(path))
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = []
                for r in reader:  # dtsim sweep writes every row with the header's fields
                    if None in r or None in r.values():
                        n = len(self.columns) + len(r.get(None, [])) - sum(v is None for v in r.values())
                        raise PlotError(f"error: {path}: line {reader.line_num}: {n} field{'s' if n != 1 else ''}, "
                                        f"the header has {len(self.columns)}")
                    self.rows.append(r)
        except (OSError, UnicodeDecodeError) as e:
            raise input_error(path, e)
        except csv.Error as e:
            raise PlotError(f"error: {path}: not a valid CSV ({e})")
        if "status" not in self.columns:
            raise PlotError(f"error: {path}: not a dtsim results.csv (no 'status' column)")
        self.varied = self.columns[: self.columns.index("status")]
        SHORT.clear()
        SHORT.update(short_labels(self.varied))
        self.ok = [r for r in self.rows if r.get("status") in OK_STATUSES]
        # Twins: varied keys that take the same value in every run (a zip group such as the workers'
        # and the servers' link bandwidth): a panel title names only the first of them.
        TWINS.clear()
        for k in self.varied:
            TWINS[k] = {k2 for k2 in self.varied if k2 != k and self.ok
                        and all(r.get(k, "") == r.get(k2, "") for r in self.ok)}
        # Keys that name the series (the algorithm and its own varied options) and the repeat axis.
        self.series_keys = [k for k in self.varied if k == "algorithm" or k.startswith("algorithm.")]
        self.repeat_keys = [k for k in self.varied if k == "seed"]
        # A whole "algorithm" section varied: two sections with the same name are told apart by
        # the fields in which they differ ("od-sgd (local_lr=0.5)").
        self.algo_extra = {}
        if "algorithm" in self.varied:
            objs = {}
            for r in self.rows:
                try:
                    o = json.loads(r.get("algorithm", ""))
                except ValueError:
                    continue
                if isinstance(o, dict):
                    objs[r["algorithm"]] = o
            by_name = {}
            for text, o in objs.items():
                by_name.setdefault(o.get("name", "?"), []).append((text, o))
            for group in by_name.values():
                if len(group) < 2:
                    continue
                keys = sorted({k for _, o in group for k in o if k != "name"})
                diff = [k for k in keys if len({json.dumps(o.get(k), sort_keys=True) for _, o in group}) > 1]
                for text, o in group:
                    self.algo_extra[text] = ", ".join(
                        f"{k}={json.dumps(o[k]).strip(chr(34))}" if k in o else f"{k}=default" for k in diff)

    def targets(self):
        """Target accuracies with a time_to_accuracy_s column, ascending."""
        out = []
        for c in self.columns:
            m = re.fullmatch(r"time_to_accuracy_s\.(.+)", c)
            if m:
                try:
                    out.append((float(m.group(1)), c))
                except ValueError:
                    pass
        return sorted(out)

    def derived(self, column):
        """Varied keys whose value equals `column` in every row (e.g. platform.workers.count ↔ workers)."""
        out = []
        for k in self.varied:
            if self.ok and all(same_value(r.get(k, ""), r.get(column, "")) for r in self.ok):
                out.append(k)
        return out


def read_csv_rows(path):
    """The rows of an input CSV (a run's metrics.csv) as dicts; PlotError (exit 2) when it cannot
    be read or is not a CSV."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise input_error(path, e)
    except csv.Error as e:
        raise PlotError(f"error: {path}: not a valid CSV ({e})")


def same_value(a, b):
    if a == b:
        return True
    fa, fb = to_float(a), to_float(b)
    return fa is not None and fb is not None and fa == fb


def to_float(s):
    if s is None or s == "":
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


SHORT = {}  # varied key -> its label (set by Results: the last two components, longer if ambiguous)


def short(key):
    if key in SHORT:
        return SHORT[key]
    parts = key.split(".")
    return ".".join(parts[-2:]) if len(parts) > 1 else key


def short_labels(keys):
    n = {k: 2 for k in keys}
    while True:
        lab = {k: ".".join(k.split(".")[-n[k]:]) for k in keys}
        clash = [k for k in keys if list(lab.values()).count(lab[k]) > 1 and n[k] < len(k.split("."))]
        if not clash:
            return lab
        for k in clash:
            n[k] += 1


def algorithm_name(row):
    """The run's algorithm: summary's "algorithm", unless a varied key took that column."""
    for c in ("config.algorithm.name", "algorithm.name", "algorithm"):
        v = row.get(c) or ""
        if v.startswith("{"):
            try:
                v = json.loads(v).get("name", "")
            except (ValueError, AttributeError):
                v = ""
        if v:
            return v
    return "?"


def resolve_baseline(base, series):
    """--baseline names a series ("ssgd (comm=allreduce)") or an algorithm ("ssgd"): then the first
    series of that algorithm."""
    if base is None or base in series:
        return base
    for s in series:
        if s.split(" (")[0] == base:
            return s
    return base


def series_of(res, row):
    name = algorithm_name(row)
    extra = [f"{short(k)}={row.get(k, '')}" for k in res.series_keys if k not in ("algorithm.name", "algorithm")]
    if res.algo_extra.get(row.get("algorithm", "")):
        extra.append(res.algo_extra[row["algorithm"]])
    return name + (f" ({', '.join(extra)})" if extra else "")


def display(v):
    """A varied value as a label: a JSON object by its name/kind, a list of objects compactly."""
    if not v or v[0] not in "[{":
        return v
    try:
        o = json.loads(v)
    except ValueError:
        return v
    def one(d):
        if not isinstance(d, dict):
            return json.dumps(d)
        head = d.get("name") or d.get("kind")
        rest = " ".join(f"{k}={json.dumps(x)}" for k, x in d.items() if k not in ("name", "kind"))
        return " ".join(p for p in (head, rest) if p)
    if isinstance(o, list):
        return "; ".join(one(d) for d in o) if o else "none"
    return one(o)


TWINS = {}  # varied key -> the other varied keys with the same value in every run (set by Results)


def facet_of(row, keys):
    keys = [k for i, k in enumerate(keys) if not TWINS.get(k, set()) & set(keys[:i])]
    return ", ".join(f"{short(k)}={display(row.get(k, ''))}" for k in keys)


def ordered_unique(items):
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def mean_std(values):
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = math.fsum(values) / n
    if n == 1:
        return m, 0.0
    return m, math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def fmt(v):
    """Full precision in the data tables (repr round-trips), empty for 'no value'."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return repr(float(v)) if isinstance(v, float) else str(v)


def parse_bandwidth(text):
    """SimGrid-style bandwidth ("10Gbps", "1.25GBps", "1GiBps", or a number of B/s) -> bytes/s."""
    v = to_float(text)
    if v is not None:
        return v
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([kKMGTPE]i?|)(bps|Bps)\s*", text or "")
    if not m:
        return None
    pre = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 1024.0, "Mi": 1024.0 ** 2, "Gi": 1024.0 ** 3, "Ti": 1024.0 ** 4, "Pi": 1024.0 ** 5}
    if m.group(2) not in pre:
        return None
    return float(m.group(1)) * pre[m.group(2)] * (0.125 if m.group(3) == "bps" else 1.0)


# --------------------------------------------------------------------------- output helpers
class Out:
    def __init__(self, directory, quiet, collect_skips=False):
        self.dir = directory
        self.quiet = quiet
        self.collect_skips = collect_skips  # "all": the plots the data cannot make, listed at the end
        os.makedirs(directory, exist_ok=True)
        self.written = []
        self.skipped = []  # "speedup: fewer than two worker counts"

    def table(self, stem, header, rows):
        path = os.path.join(self.dir, stem + ".csv")
        tmp = path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            for r in rows:
                w.writerow([fmt(x) if isinstance(x, float) or x is None else x for x in r])
        os.replace(tmp, path)
        self.written.append(path)

    def figure(self, fig, stem):
        for ext in FORMATS:
            path = os.path.join(self.dir, f"{stem}.{ext}")
            fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
            self.written.append(path)
        plt().close(fig)

    def note(self, msg):
        if self.collect_skips and msg.endswith("; skipped"):
            self.skipped.append(msg[:-len("; skipped")])
        elif not self.quiet:
            print(msg, file=sys.stderr)


_plt = None


def plt():
    global _plt
    if _plt is None:
        try:
            import matplotlib
        except ImportError:
            raise PlotError("error: matplotlib is missing: apt-get install python3-matplotlib "
                            "(and run this script with /usr/bin/python3)", code=1)
        matplotlib.use("Agg")
        matplotlib.rcParams.update({"font.size": 10, "axes.titlesize": 10, "legend.fontsize": 9,
                                    "svg.hashsalt": "dtsim", "svg.fonttype": "none", "axes.grid": True,
                                    "grid.alpha": 0.3})
        import matplotlib.pyplot as p
        _plt = p
    return _plt


def colors_for(series):
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#bcbd22", "#7f7f7f"]
    return {s: palette[i % len(palette)] for i, s in enumerate(series)}


def panels(n, width=5.0, height=3.6):
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt().subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.set_visible(False)
    return fig, flat[:n]


# --------------------------------------------------------------------------- plots
