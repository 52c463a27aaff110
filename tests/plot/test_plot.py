#!/usr/bin/python3
"""tools/plot.py on a small generated results.csv: every plot is produced (PNG + SVG, labelled
axes), and every exported data table holds exactly the values of results.csv (means over seeds,
speedups, winners) as recomputed here independently. Run by ctest (tests/CMakeLists.txt)."""
import csv
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.environ.get("DTSIM_PLOT_SCRIPT", os.path.join(HERE, "..", "..", "tools", "plot.py"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

ALGS = ["ssgd", "asgd", "od-sgd"]
WORKERS = [1, 2, 4]
BWS = {"1Gbps": 1e9 / 8, "10Gbps": 10e9 / 8}
SEEDS = [1, 2]


def generate(root, rng):
    """A results.csv like `dtsim sweep` writes (varied keys left of status), with run dirs."""
    cols = ["algorithm.name", "platform.workers.count", "platform.workers.link.bandwidth", "seed", "status", "run_dir",
            "error", "config.platform.workers.link.bandwidth", "algorithm", "workers", "simulated_time_s",
            "samples_per_s_simulated", "final_test_accuracy", "time_to_accuracy_s.0.8", "time_to_accuracy_s.0.9"]
    rows = []
    for a in ALGS:
        for n in WORKERS:
            for bw in BWS:
                for seed in SEEDS:
                    t = rng.uniform(5, 10) / n ** rng.uniform(0.5, 1.0) * (2.0 if bw == "1Gbps" else 1.0)
                    reached = not (a == "asgd" and n == 4 and bw == "1Gbps" and seed == 2)
                    run_dir = f"runs/{a}-{n}-{bw}-{seed}"
                    rows.append({"algorithm.name": a, "platform.workers.count": str(n),
                                 "platform.workers.link.bandwidth": bw, "seed": str(seed), "status": "completed",
                                 "run_dir": run_dir, "error": "", "config.platform.workers.link.bandwidth": repr(BWS[bw]),
                                 "algorithm": a, "workers": str(n), "simulated_time_s": repr(t),
                                 "samples_per_s_simulated": repr(60000 / t), "final_test_accuracy": repr(rng.uniform(0.8, 0.9)),
                                 "time_to_accuracy_s.0.8": repr(t * rng.uniform(0.5, 0.9)) if reached else "",
                                 "time_to_accuracy_s.0.9": ""})
                    os.makedirs(os.path.join(root, run_dir))
                    with open(os.path.join(root, run_dir, "metrics.csv"), "w") as f:
                        f.write("sim_time_s,wall_time_s,samples,epoch,train_loss,test_loss,test_accuracy\n")
                        acc = 0.1
                        for k in range(5):
                            acc += rng.uniform(0, 0.2)
                            f.write(f"{t * k / 4!r},0.1,{k * 1000},{k / 4},1.0,1.0,{acc!r}\n")
    # failed and never-run rows must be ignored by every plot
    rows.append({"algorithm.name": "ssgd", "platform.workers.count": "8", "platform.workers.link.bandwidth": "1Gbps",
                 "seed": "1", "status": "failed", "run_dir": "runs/failed", "error": "exit code 1: boom",
                 "algorithm": "ssgd", "workers": "8", "simulated_time_s": "0.001"})
    rows.append({"algorithm.name": "asgd", "platform.workers.count": "8", "platform.workers.link.bandwidth": "1Gbps",
                 "seed": "1", "status": "not_run", "run_dir": "runs/notrun"})
    path = os.path.join(root, "results.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path, [r for r in rows if r["status"] == "completed"]


def read_table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def mean(vs):
    return math.fsum(vs) / len(vs)


def fnum(s):
    return float(s) if s not in ("", None) else None


class PlotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="dtsim-plot-")
        cls.root = cls.tmp.name
        cls.csv, cls.ok = generate(cls.root, random.Random(20240607))
        cls.out = os.path.join(cls.root, "plots")
        cls.proc = subprocess.run([PYTHON, PLOT, "all", cls.csv, "--out", cls.out, "--target", "0.8"],
                                  capture_output=True, text=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def table(self, stem):
        return read_table(os.path.join(self.out, stem + ".csv"))

    def approx(self, a, b):
        self.assertIsNotNone(a)
        self.assertTrue(math.isclose(float(a), b, rel_tol=1e-12, abs_tol=0.0), f"{a} != {b}")

    def test_every_plot_is_written_as_png_and_svg_with_labelled_axes(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        labels = {"speedup_time": ["workers", "speedup (×)"], "speedup_tta": ["workers", "speedup (×)"],
                  "efficiency": ["workers", "scaling efficiency"],
                  "accuracy_vs_time": ["simulated time (s)", "test accuracy"],
                  "tta_bars": ["simulated time to 0.8 accuracy (s)"],
                  "throughput_vs_bandwidth": ["worker link bandwidth (Gb/s)", "throughput (samples/s, simulated)"],
                  "regime_map": ["platform.workers.count", "platform.workers.link.bandwidth"]}
        for stem, texts in labels.items():
            with open(os.path.join(self.out, stem + ".png"), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", stem)
            with open(os.path.join(self.out, stem + ".svg")) as f:
                svg = f.read()
            self.assertIn("<svg", svg)
            for t in texts:
                self.assertIn(t.replace("&", "&amp;"), svg, f"{stem}: axis label '{t}' missing")
            self.assertTrue(os.path.getsize(os.path.join(self.out, stem + ".csv")) > 0)

    def test_speedup_tables_equal_the_results(self):
        for stem, col in (("speedup_time", "simulated_time_s"), ("speedup_tta", "time_to_accuracy_s.0.8")):
            t = self.table(stem)
            self.assertEqual(len(t), len(ALGS) * len(WORKERS) * len(BWS), stem)
            for row in t:
                bw = row["facet"].split("=", 1)[1]
                vals = [fnum(r[col]) for r in self.ok if r["algorithm"] == row["series"] and
                        r["workers"] == row["workers"] and r["platform.workers.link.bandwidth"] == bw]
                self.assertEqual(len(vals), len(SEEDS))
                ref_vals = [fnum(r[col]) for r in self.ok if r["algorithm"] == "ssgd" and r["workers"] == "1" and
                            r["platform.workers.link.bandwidth"] == bw]
                self.approx(row["reference_s"], mean(ref_vals))
                self.assertEqual(row["reference"], "ssgd@1")
                self.assertEqual(float(row["ideal"]), float(row["workers"]))
                if None in vals:  # a seed never reached the target: no value, no speedup
                    self.assertEqual(row["metric_mean_s"], "")
                    self.assertEqual(row["speedup"], "")
                else:
                    self.approx(row["metric_mean_s"], mean(vals))
                    self.approx(row["speedup"], mean(ref_vals) / mean(vals))
            if stem == "speedup_tta":
                self.assertTrue(any(r["speedup"] == "" for r in t), "the unreached point must be missing")

    def test_efficiency_table_is_throughput_over_n_single_workers(self):
        """A fixed budget (strong scaling): eff = thr(s, N) / (N thr(ssgd, 1)) = speedup / N."""
        t = self.table("efficiency")
        self.assertEqual(len(t), len(ALGS) * len(WORKERS) * len(BWS))
        for row in t:
            bw = row["facet"].split("=", 1)[1]

            def thr(a, n):
                return [fnum(r["samples_per_s_simulated"]) for r in self.ok if r["algorithm"] == a and
                        r["workers"] == str(n) and r["platform.workers.link.bandwidth"] == bw]
            vals, ref = thr(row["series"], row["workers"]), thr("ssgd", 1)
            self.assertEqual(len(vals), len(SEEDS))
            self.assertEqual(row["reference"], "ssgd@1")
            self.approx(row["reference_samples_per_s"], mean(ref))
            self.approx(row["samples_per_s_mean"], mean(vals))
            self.approx(row["efficiency"], mean(vals) / (int(row["workers"]) * mean(ref)))

    def test_weak_scaling_efficiency_and_no_speedup_by_time(self):
        """Weak scaling (training.samples zipped with the worker count, the same steps per worker):
        the budget key goes with the workers axis (one panel per bandwidth, not per budget), the
        efficiency is T(baseline, 1) / T(s, N) with the baseline's single-worker run as reference,
        speedup by time is skipped (the budgets differ), and without a 1-worker run so is efficiency."""
        root = os.path.join(self.root, "weak")
        os.makedirs(root)
        kinds, counts, per_worker = ["none", "ddp", "horovod"], [1, 8, 64], 640
        cols = ["platform.workers.link.bandwidth", "algorithm.overlap.kind", "platform.workers.count",
                "training.samples", "status", "run_dir", "error", "algorithm", "workers", "sample_budget", "samples",
                "simulated_time_s", "samples_per_s_simulated"]
        rng = random.Random(11)
        rows = []
        for bw in ("10Gbps", "25Gbps"):
            for k in kinds:
                for n in counts:
                    t = 1.75 * (1 + rng.uniform(0, 1) * (n > 1)) + rng.uniform(0, 0.05) * (k == "horovod")
                    rows.append({"platform.workers.link.bandwidth": bw, "algorithm.overlap.kind": k,
                                 "platform.workers.count": str(n), "training.samples": str(n * per_worker),
                                 "status": "completed", "run_dir": "r", "algorithm": "ssgd", "workers": str(n),
                                 "sample_budget": str(n * per_worker), "samples": str(n * per_worker),
                                 "simulated_time_s": repr(t), "samples_per_s_simulated": repr(n * per_worker / t)})

        def write(name, rs):
            path = os.path.join(root, name)
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, cols, lineterminator="\n")
                w.writeheader()
                w.writerows(rs)
            return path
        path = write("results.csv", rows)
        out = os.path.join(root, "plots")
        p = subprocess.run([PYTHON, PLOT, "all", path, "--out", out, "--baseline", "ssgd (overlap.kind=none)"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("weak scaling", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "speedup_time.csv")))
        t = read_table(os.path.join(out, "efficiency.csv"))
        self.assertEqual(len(t), 2 * len(kinds) * len(counts))
        self.assertEqual({r["facet"] for r in t}, {"link.bandwidth=10Gbps", "link.bandwidth=25Gbps"})
        self.assertEqual({r["reference"] for r in t}, {"ssgd (overlap.kind=none)@1"})
        for r in t:
            bw = r["facet"].split("=", 1)[1]
            k = r["series"].split("=", 1)[1].rstrip(")")

            def time(kind, n):
                (x,) = [x for x in rows if x["platform.workers.link.bandwidth"] == bw and
                        x["algorithm.overlap.kind"] == kind and x["workers"] == str(n)]
                return float(x["simulated_time_s"])
            self.assertTrue(math.isclose(float(r["efficiency"]), time("none", 1) / time(k, r["workers"]), rel_tol=1e-12))
            self.approx(r["simulated_time_s_mean"], time(k, r["workers"]))
        path = write("no-single.csv", [x for x in rows if x["workers"] != "1"])
        p = subprocess.run([PYTHON, PLOT, "efficiency", path, "--out", os.path.join(root, "plots2")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("no single-worker run", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "plots2", "efficiency.csv")))

    def test_accuracy_table_is_every_metrics_row_of_every_run(self):
        t = self.table("accuracy_vs_time")
        expected = []
        for r in self.ok:
            with open(os.path.join(self.root, r["run_dir"], "metrics.csv")) as f:
                for m in csv.DictReader(f):
                    expected.append((r["run_dir"], float(m["sim_time_s"]), float(m["test_accuracy"])))
        got = [(row["run_dir"], float(row["sim_time_s"]), float(row["test_accuracy"])) for row in t]
        self.assertEqual(sorted(got), sorted(expected))
        self.assertNotIn("runs/failed", {row["run_dir"] for row in t})

    def test_tta_bars_are_means_over_seeds(self):
        t = self.table("tta_bars")
        self.assertEqual(len(t), len(ALGS) * len(WORKERS) * len(BWS))
        for row in t:
            facet = dict(p.split("=", 1) for p in row["facet"].split(", "))
            vals = [fnum(r["time_to_accuracy_s.0.8"]) for r in self.ok if r["algorithm"] == row["series"] and
                    r["workers"] == facet["workers.count"] and r["platform.workers.link.bandwidth"] == facet["link.bandwidth"]]
            self.assertEqual(int(row["runs"]), len(vals))
            self.assertEqual(int(row["reached"]), len([v for v in vals if v is not None]))
            if None in vals:
                self.assertEqual(row["tta_mean_s"], "")
            else:
                self.approx(row["tta_mean_s"], mean(vals))
                sd = math.sqrt(math.fsum((v - mean(vals)) ** 2 for v in vals) / (len(vals) - 1))
                self.assertTrue(math.isclose(float(row["tta_std_s"]), sd, rel_tol=1e-9, abs_tol=1e-15))

    def test_throughput_table_uses_the_bandwidth_in_gbps(self):
        t = self.table("throughput_vs_bandwidth")
        self.assertEqual(len(t), len(ALGS) * len(WORKERS) * len(BWS))
        for row in t:
            bw = [k for k, v in BWS.items() if math.isclose(v * 8 / 1e9, float(row["bandwidth_gbps"]))]
            self.assertEqual(len(bw), 1)
            n = row["facet"].split("=", 1)[1]
            vals = [fnum(r["samples_per_s_simulated"]) for r in self.ok if r["algorithm"] == row["series"] and
                    r["workers"] == n and r["platform.workers.link.bandwidth"] == bw[0]]
            self.approx(row["samples_per_s_mean"], mean(vals))

    def test_regime_map_names_the_fastest_algorithm_and_its_lead(self):
        t = self.table("regime_map")
        self.assertEqual(len(t), len(WORKERS) * len(BWS))
        for row in t:
            n, bw = row["platform.workers.count"], row["platform.workers.link.bandwidth"]
            per = {}
            for a in ALGS:
                vals = [fnum(r["time_to_accuracy_s.0.8"]) for r in self.ok if r["algorithm"] == a and r["workers"] == n
                        and r["platform.workers.link.bandwidth"] == bw]
                per[a] = math.inf if None in vals else mean(vals)
            order = sorted(per, key=per.get)
            self.assertEqual(row["best"], order[0])
            self.approx(row["best_value_s"], per[order[0]])
            self.assertEqual(row["runner_up"], order[1])
            if math.isfinite(per[order[1]]):
                self.approx(row["margin"], per[order[1]] / per[order[0]])
            else:
                self.assertEqual(row["margin"], "")

    def test_summary_table_speedup_is_versus_ssgd(self):
        self.assertIn("speedup vs ssgd", self.proc.stdout)
        t = self.table("table")
        for row in t:
            facet = dict(p.split("=", 1) for p in row["facet"].split(", "))

            def tta(a):
                vals = [fnum(r["time_to_accuracy_s.0.8"]) for r in self.ok if r["algorithm"] == a and
                        r["workers"] == facet["workers.count"] and r["platform.workers.link.bandwidth"] == facet["link.bandwidth"]]
                return None if None in vals else mean(vals)
            self.assertIsNotNone(tta("ssgd"))  # the generated baseline always reaches 0.8
            self.assertEqual(row["speedup_basis"], "tta")
            if tta(row["series"]) is not None:
                self.approx(row["speedup"], tta("ssgd") / tta(row["series"]))
            else:  # never reached: no speedup, not one by another measure
                self.assertEqual(row["speedup"], "")

    def test_explicit_regime_keys_and_bad_key(self):
        out = os.path.join(self.root, "plots-regime")
        p = subprocess.run([PYTHON, PLOT, "regime", self.csv, "--out", out, "--regime", "platform.workers.link.bandwidth",
                            "platform.workers.count", "--quiet"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "regime_map.svg")))
        p = subprocess.run([PYTHON, PLOT, "regime", self.csv, "--out", out, "--regime", "platform.workers.cnt", "seed"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2, p.stderr)  # a usage error (it was exit 1)
        self.assertIn("not a varied key", p.stderr)
        self.assertOneErrorLine(p)

    def test_not_a_results_csv(self):
        bad = os.path.join(self.root, "bad.csv")
        with open(bad, "w") as f:
            f.write("a,b\n1,2\n")
        p = subprocess.run([PYTHON, PLOT, "all", bad], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2, p.stderr)  # bad input (it was exit 1)
        self.assertIn("not a dtsim results.csv", p.stderr)
        self.assertOneErrorLine(p)

    def test_missing_or_wrong_input_files_are_one_line_errors(self):
        """A missing results.csv or trace.json, or a JSON file that is not a trace: one `error:` line
        naming the file, no Python traceback (they were tracebacks)."""
        not_trace = os.path.join(self.root, "summary.json")
        with open(not_trace, "w") as f:
            f.write('{"status": "completed"}')
        for args, says in ((["table", os.path.join(self.root, "nowhere.csv")], "nowhere.csv"),
                           (["timeline", os.path.join(self.root, "nowhere.json")], "nowhere.json"),
                           (["timeline", not_trace, "--out", os.path.join(self.root, "x.png")], "not a Chrome trace")):
            p = subprocess.run([PYTHON, PLOT] + args, capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, p.stderr)  # bad input (they were exit 1)
            self.assertOneErrorLine(p)
            self.assertIn(says, p.stderr)

    def assertOneErrorLine(self, p):
        self.assertTrue(p.stderr.startswith("error: "), p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)

    def test_bad_input_and_usage_errors_exit_2_before_anything_is_drawn(self):
        """docs/plots.md, "Exit codes": bad input and usage errors are one `error:` line and exit 2,
        and nothing is drawn. Before: a --regime key that is not varied and a missing results.csv
        exited 1 (the regime error after `all` had drawn the other plots), and a --target without a
        time_to_accuracy_s column exited 0, silently without any time to accuracy."""
        out = os.path.join(self.root, "plots-refused")
        missing = os.path.join(self.root, "nonexist.csv")
        ragged = os.path.join(self.root, "ragged.csv")
        with open(self.csv) as f, open(ragged, "w") as g:
            lines = f.read().splitlines()
            g.write("\n".join(lines[:3] + [lines[3] + ",extra"] + lines[4:]) + "\n")
        binary = os.path.join(self.root, "binary.csv")
        with open(binary, "wb") as f:
            f.write(b"status,\xff\xfe\x00\x80\n")
        cases = [
            (["regime", self.csv, "--regime", "foo", "platform.workers.count"], ["'foo' is not a varied key",
                                                                                 "platform.workers.link.bandwidth"]),
            (["all", self.csv, "--regime", "platform.workers.count", "foo"], ["'foo' is not a varied key"]),
            (["all", missing], [f"error: {missing}: ", "No such file or directory"]),
            (["table", self.root], [f"error: {self.root}: "]),  # a directory
            (["all", self.csv, "--target", "0.85"], ["--target 0.85", "no time_to_accuracy_s.0.85 column",
                                                     "(targets: 0.8, 0.9)"]),
            (["tta", self.csv, "--target", "0.7"], ["no time_to_accuracy_s.0.7 column"]),
            (["all", ragged], [f"error: {ragged}: line 4: "]),
            (["all", binary], [f"error: {binary}: "]),
            (["bogus", self.csv], ["invalid choice: 'bogus'"]),
            (["all", self.csv, "--target", "high"], ["--target"]),
            (["all", self.csv, "--target", "nan"], ["--target"]),
            (["timelines", self.csv, "--hosts", "-1"], ["--hosts"]),
            (["timelines", self.csv, "--from", "2", "--to", "1"], ["--from"]),
            (["all", self.csv, self.csv], ["give one results.csv"]),
            # an option the plot does not read, or one key twice, was silently ignored (exit 0)
            (["regime", self.csv, "--regime", "platform.workers.count", "platform.workers.count"],
             ["--regime needs two different keys"]),
            (["throughput", self.csv, "--target", "0.8"], ["--target does not apply to 'throughput'"]),
            (["tta", self.csv, "--regime", "platform.workers.count", "seed"], ["--regime does not apply to 'tta'"]),
            (["efficiency", self.csv, "--labels", "a"], ["--labels does not apply to 'efficiency'"]),
            (["table", self.csv, "--hosts", "3"], ["--hosts does not apply to 'table'"]),
            (["accuracy", self.csv, "--baseline", "ssgd"], ["--baseline does not apply to 'accuracy'"]),
        ]
        for args, says in cases:
            with self.subTest(args=args):
                p = subprocess.run([PYTHON, PLOT] + args + ["--out", out], capture_output=True, text=True)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertOneErrorLine(p)
                for text in says:
                    self.assertIn(text, p.stderr)
                self.assertFalse(os.path.exists(out), "drawn before the error")
        # a --target is the column's also when written with another spelling of the same number
        # (`dtsim sweep --plot` passes the study's plot.target_accuracy with %g, as dtsim names the column)
        p = subprocess.run([PYTHON, PLOT, "tta", self.csv, "--target", "0.80", "--out", out, "--quiet"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual({r["target"] for r in read_table(os.path.join(out, "tta_bars.csv"))}, {"0.8"})
        # a target that no run reached is not an error: its column is there (every run "not reached")
        p = subprocess.run([PYTHON, PLOT, "tta", self.csv, "--target", "0.9", "--out", out, "--quiet"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual({r["reached"] for r in read_table(os.path.join(out, "tta_bars.csv"))}, {"0"})

    def test_nothing_to_plot_exits_1_with_one_error_line(self):
        """No completed run is not bad input (e.g. every run of the sweep failed): exit 1, and the
        reason is said also with --quiet (it was silent then)."""
        path = os.path.join(self.root, "none-completed.csv")
        with open(path, "w") as f:
            f.write("algorithm.name,status,run_dir\nssgd,failed,r\n")
        # also with a --target (as `dtsim sweep --plot` passes it): without a completed run there is
        # no time_to_accuracy_s column, and "no such column" would be the wrong reason
        p = subprocess.run([PYTHON, PLOT, "all", path, "--quiet", "--target", "0.8", "--out", os.path.join(self.root, "p-none")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertOneErrorLine(p)
        self.assertIn("no completed runs", p.stderr)

    def test_malformed_trace_events_are_one_line_errors(self):
        for i, events in enumerate(('[{"ph":"X","pid":0,"tid":0,"ts":"soon","dur":1}]',
                                    '[{"ph":"M","name":"process_name","pid":0}]', '[3]')):
            trace = os.path.join(self.root, f"bad-trace-{i}.json")
            with open(trace, "w") as f:
                f.write('{"traceEvents":' + events + '}')
            p = subprocess.run([PYTHON, PLOT, "timeline", trace, "--out", os.path.join(self.root, "bt", "t.png")],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertOneErrorLine(p)
            self.assertIn(f"error: {trace}: traceEvents[0]: malformed event", p.stderr)

    def test_timeline_renders_a_trace(self):
        trace = os.path.join(self.root, "trace.json")
        with open(trace, "w") as f:
            f.write('{"traceEvents":['
                    '{"ph":"M","name":"process_name","pid":0,"args":{"name":"worker-0"}},'
                    '{"ph":"M","name":"process_name","pid":1,"args":{"name":"server-0"}},'
                    '{"ph":"X","name":"compute","pid":0,"tid":0,"ts":0,"dur":1000},'
                    '{"ph":"X","name":"send","pid":0,"tid":1,"ts":1000,"dur":500},'
                    '{"ph":"X","name":"recv","pid":1,"tid":2,"ts":1000,"dur":500}]}')
        out = os.path.join(self.root, "tl", "timeline.png")
        p = subprocess.run([PYTHON, PLOT, "timeline", trace, trace, "--labels", "A", "B", "--out", out],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(4), b"\x89PNG")
        with open(out[:-4] + ".svg") as f:
            svg = f.read()
        for t in ("worker-0", "server-0", "compute", "recv", "simulated time (s)"):
            self.assertIn(t, svg)

    def test_zipped_keys_make_one_panel_and_baseline_by_algorithm_name(self):
        """A zip group (workers' and servers' bandwidth always equal) titles a panel once; --baseline
        ssgd picks the first ssgd series when two differ by an option (comm)."""
        root = os.path.join(self.root, "zipped")
        os.makedirs(root)
        algs = ['{"name":"ssgd"}', '{"name":"ssgd","comm":"allreduce"}', '{"name":"asgd"}']
        cols = ["algorithm", "platform.workers.count", "platform.workers.link.bandwidth",
                "platform.servers.link.bandwidth", "platform.stragglers", "status", "run_dir", "error",
                "workers", "simulated_time_s", "time_to_accuracy_s.0.8"]
        rng = random.Random(3)
        rows = []
        for a in algs:
            for n in (1, 2, 4):
                for bw in ("1Gbps", "10Gbps"):
                    for slow in ("1", "3"):
                        rows.append({"algorithm": a, "platform.workers.count": str(n),
                                     "platform.workers.link.bandwidth": bw, "platform.servers.link.bandwidth": bw,
                                     "platform.stragglers": slow, "status": "completed", "run_dir": "r",
                                     "workers": str(n), "simulated_time_s": repr(rng.uniform(1, 10)),
                                     "time_to_accuracy_s.0.8": repr(rng.uniform(0.5, 1))})
        path = os.path.join(root, "results.csv")
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, cols, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        out = os.path.join(root, "plots")
        p = subprocess.run([PYTHON, PLOT, "all", path, "--out", out, "--baseline", "ssgd", "--regime",
                            "platform.workers.link.bandwidth", "platform.stragglers"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        sp = read_table(os.path.join(out, "speedup_time.csv"))
        self.assertEqual({r["facet"] for r in sp}, {"workers.link.bandwidth=1Gbps, platform.stragglers=1",
                                                   "workers.link.bandwidth=1Gbps, platform.stragglers=3",
                                                   "workers.link.bandwidth=10Gbps, platform.stragglers=1",
                                                   "workers.link.bandwidth=10Gbps, platform.stragglers=3"})
        self.assertEqual({r["reference"] for r in sp}, {"ssgd (comm=default)@1"})
        for r in sp:
            ref = [x for x in rows if x["algorithm"] == algs[0] and x["workers"] == "1"
                   and r["facet"] == f"workers.link.bandwidth={x['platform.workers.link.bandwidth']}, "
                                     f"platform.stragglers={x['platform.stragglers']}"]
            self.assertEqual(len(ref), 1)
            self.approx(r["reference_s"], float(ref[0]["simulated_time_s"]))
        # the regime map over the zipped bandwidth: one panel per worker count (not per servers'
        # bandwidth, the x key's twin), 2 bandwidths x 2 slowdowns cells each
        rm = read_table(os.path.join(out, "regime_map.csv"))
        self.assertEqual(len(rm), 12)
        self.assertEqual({r["facet"] for r in rm}, {"workers.count=1", "workers.count=2", "workers.count=4"})
        # a misspelt --baseline is one error line and exit 2 (it dropped every speedup, exit 0); a
        # full series name is a baseline too
        p = subprocess.run([PYTHON, PLOT, "speedup", path, "--out", out, "--baseline", "sgd"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertTrue(p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr)
        self.assertIn("--baseline 'sgd'", p.stderr)
        self.assertIn("asgd", p.stderr)
        p = subprocess.run([PYTHON, PLOT, "speedup", path, "--out", out, "--baseline", "ssgd (comm=allreduce)", "--quiet"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual({r["reference"] for r in read_table(os.path.join(out, "speedup_time.csv"))}, {"ssgd (comm=allreduce)@1"})

    def test_timeline_of_a_layer_wise_trace_keeps_its_compute(self):
        """dtsim's layer-wise traces (the default overlap) name compute spans "forward <layer>" and
        "backward <layer>" on the compute track, and put concurrent transfers on tracks "send 2", ...:
        every span is drawn in its track's band (the compute ones were all dropped before)."""
        events = [{"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "worker-0"}},
                  {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "server-0"}}]
        tids = {"compute": 0, "send": 1, "send 2": 2, "recv": 3, "wait": 4, "update": 5}
        for pid in (0, 1):
            for name, tid in tids.items():
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
        spans = [("forward fc1", "compute", 0, 0, 100), ("forward fc2", "compute", 0, 100, 50),
                 ("backward fc2", "compute", 0, 150, 100), ("backward fc1", "compute", 0, 250, 200),
                 ("send", "send", 0, 250, 80), ("send", "send 2", 0, 450, 80), ("wait", "wait", 0, 530, 70),
                 ("recv", "recv", 1, 330, 10), ("update", "update", 1, 540, 20)]
        for name, track, pid, ts, dur in spans:
            events.append({"ph": "X", "name": name, "pid": pid, "tid": tids[track], "ts": ts, "dur": dur})
        trace = os.path.join(self.root, "layerwise-trace.json")
        with open(trace, "w") as f:
            json.dump({"traceEvents": events}, f)
        out = os.path.join(self.root, "tl3", "timeline.png")
        p = subprocess.run([PYTHON, PLOT, "timeline", trace, "--labels", "L", "--out", out], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = read_table(out[:-4] + ".csv")
        self.assertEqual(sorted((r["host"], r["track"], float(r["start_s"])) for r in rows),
                         sorted((["worker-0", "server-0"][pid], track.split(" ")[0], ts / 1e6) for _, track, pid, ts, _ in spans))

    def test_timeline_draws_every_span_of_the_trace(self):
        """A generated trace (spans of every track on several hosts, plus counters and flow events that
        are not spans): the data table beside the picture has one row per span, per host and track as
        in the trace, with the trace's times; a --from/--to window keeps exactly the spans touching it."""
        rng = random.Random(7)
        hosts = ["worker-0", "worker-1", "worker-2", "server-0"]
        events = [{"ph": "M", "name": "process_name", "pid": i, "args": {"name": h}} for i, h in enumerate(hosts)]
        spans = []
        for pid, h in enumerate(hosts):
            t = 0.0
            for _ in range(rng.randint(5, 30)):
                kind = rng.choice(["compute", "update", "send", "recv", "wait"])
                dur = rng.uniform(100, 3000)
                spans.append({"ph": "X", "name": kind, "pid": pid, "tid": 0, "ts": t, "dur": dur})
                t += dur + rng.uniform(0, 500)
                events.append({"ph": "C", "name": "bytes in flight", "pid": pid, "ts": t, "args": {"out": 1}})
                events.append({"ph": "s", "name": "gradient", "pid": pid, "tid": 1, "ts": t, "id": len(events)})
        events += spans
        trace = os.path.join(self.root, "span-trace.json")
        with open(trace, "w") as f:
            json.dump({"traceEvents": events}, f)

        def run(extra, stem):
            out = os.path.join(self.root, "tl2", stem + ".png")
            p = subprocess.run([PYTHON, PLOT, "timeline", trace, "--labels", "R", "--out", out] + extra,
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out, "rb") as f:
                self.assertEqual(f.read(4), b"\x89PNG")
            return read_table(out[:-4] + ".csv")

        rows = run([], "all")
        self.assertEqual(len(rows), len(spans))
        self.assertEqual(sorted((r["host"], r["track"], float(r["start_s"]), float(r["end_s"])) for r in rows),
                         sorted((hosts[e["pid"]], e["name"], e["ts"] / 1e6, e["ts"] / 1e6 + e["dur"] / 1e6) for e in spans))
        lo, hi = 0.004, 0.012
        inside = [e for e in spans if e["ts"] / 1e6 + e["dur"] / 1e6 >= lo and e["ts"] / 1e6 <= hi]
        self.assertGreater(len(inside), 0)
        self.assertLess(len(inside), len(spans))
        self.assertEqual(len(run(["--from", str(lo), "--to", str(hi)], "window")), len(inside))


if __name__ == "__main__":
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("SKIP: matplotlib missing (apt-get install python3-matplotlib)")
        sys.exit(77)
    unittest.main()
