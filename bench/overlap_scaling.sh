#!/usr/bin/env bash
# Weak scaling of SSGD (ring all-reduce) for ResNet-50, batch 64 per V100, timing-only, under
# algorithm.overlap none / ddp / horovod on 10 and 25 GbE (docs/timing.md, "What it changes").
# Efficiency = one V100's time for 10 steps / N workers' time for 10 steps each.
#   bench/overlap_scaling.sh [BUILD_DIR] > scaling.csv
set -euo pipefail
B=${1:-build}/dtsim
cfg=$(dirname "$0")/overlap_scaling.json
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
t() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['simulated_time_s'])" "$out/summary.json"; }
"$B" run "$cfg" --out "$out" --quiet --set platform.workers.count=1 --set training.samples=640 --set algorithm.overlap.kind=none >/dev/null
T1=$(t)
echo "workers,bandwidth,overlap,sim_time_s,efficiency"
for bw in 10Gbps 25Gbps; do for n in 8 16 32 64; do for k in none ddp horovod; do
  "$B" run "$cfg" --out "$out" --quiet --set platform.workers.count=$n --set training.samples=$((n * 640)) \
    --set platform.workers.link.bandwidth=$bw --set algorithm.overlap.kind=$k >/dev/null
  python3 -c "import sys;t=float(sys.argv[1]);print('$n,$bw,$k,%.4f,%.3f'%(t,$T1/t))" "$(t)"
done; done; done
