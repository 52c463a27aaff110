#!/usr/bin/env bash
# What layer-wise timing costs dtsim itself: wall time, CPU time and max RSS of one `dtsim run` of
# examples/studies/overlap-scaling.json (SSGD ring all-reduce, V100s, 10 GbE, 10 steps per worker)
# under algorithm.overlap none / ddp / horovod, at 8 and 64 workers, for its three models.
# Prints one CSV row per run, then a markdown table of the medians over the repeats with the cost
# per simulated step (10 steps) and the ratio to none (bench/README.md, "Layer-wise timing: what it costs dtsim").
#   nice -n 10 bench/overlap_cost.sh [DTSIM] [REPEATS]     (defaults: build/dtsim, 3)
set -euo pipefail
D=$(realpath "${1:-build/dtsim}")
R=${2:-3}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["base"], open(sys.argv[2], "w"))' \
  examples/studies/overlap-scaling.json "$tmp/base.json"
echo "model,workers,overlap,repeat,elapsed_s,cpu_s,max_rss_kb,summary_wall_s" | tee "$tmp/rows.csv"
for r in $(seq "$R"); do for m in resnet50 resnet101 vgg16-imagenet; do for n in 8 64; do
  for k in none ddp horovod; do
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$D" run "$tmp/base.json" --out "$tmp/run" --quiet \
      --set model.kind=$m --set platform.workers.count=$n --set training.samples=$((n * 640)) \
      --set platform.workers.link.bandwidth=10Gbps --set algorithm.overlap.kind=$k >/dev/null
    read -r e u s rss < "$tmp/time"
    w=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_time_s"])' "$tmp/run/summary.json")
    echo "$m,$n,$k,$r,$e,$(awk "BEGIN{print $u + $s}"),$rss,$w" | tee -a "$tmp/rows.csv"
  done
done; done; done
/usr/bin/python3 - "$tmp/rows.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cell = {}
for r in rows:
    cell.setdefault((r["model"], int(r["workers"]), r["overlap"]), []).append(r)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
print("\n| model | workers | overlap | wall s (run) | wall s per step | × none | CPU s | × none | max RSS MB | × none |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for (m, n, k), rs in cell.items():
    b = cell[(m, n, "none")]
    e, c, rss = med(rs, "elapsed_s"), med(rs, "cpu_s"), med(rs, "max_rss_kb")
    print(f"| {m} | {n} | {k} | {e:.2f} | {e / 10:.3f} | {e / med(b, 'elapsed_s'):.2f} | {c:.2f} | "
          f"{c / med(b, 'cpu_s'):.2f} | {rss / 1024:.0f} | {rss / med(b, 'max_rss_kb'):.2f} |")
PY
