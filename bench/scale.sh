#!/usr/bin/env bash
# Speed at scale (issue 14): wall time, CPU time and max RSS of timing-only runs of the issue's
# scaling study (bench/configs/ps-scale.json: SSGD on a 10-shard PS, MLP 784-512-10 payload, fixed
# 50 ms compute, lv08, 10 Gb/s workers, 100 Gb/s servers), next to dtsim validate's estimate
# (sim/preflight.hpp: estimate_cost). Figures and profiles: bench/README.md, "Speed at scale".
#   bench/scale.sh [BUILD_DIR] [FORM:WORKERS:STEPS:OVERLAP ...] > scale.csv
# FORM is ps, ps-group (the PS with platform.workers.grouping "identical": one worker simulated for
# all), asgd, dc-asgd, ssp (the PS with that algorithm.name: asynchronous, STEPS gradients per
# worker), ring (the same run with algorithm.comm allreduce), ring-agg (the ring with
# platform.collective.transfers "aggregated", its workers V100s so that DDP's reductions do not
# load a CPU and the aggregated form applies) or hier (hierarchical all-reduce in groups of 32); the
# default list is the small end of the study (minutes on the 2-core VM); the issue's targets are
# e.g. ps-group:10000:100:none, ps-group:100000:10:per-tensor, ring-agg:1000:100:none and
# ring-agg:10000:10:none.
set -euo pipefail
B=${1:-build}/dtsim
shift || true
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(ps:250:20:none ps:500:20:none ps:1000:20:none ps:500:20:per-tensor
                               ring:100:4:none ring:200:4:none ring:400:4:none ring:200:4:ddp)
cfg=$(dirname "$0")/configs/ps-scale.json
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "form,workers,steps,overlap,wall_s,cpu_s,max_rss_mb,estimated_s,simulated_s"
for r in "${runs[@]}"; do
  IFS=: read -r form n steps overlap <<<"$r"
  sets=(--set platform.workers.count="$n" --set training.samples=$((n * 32 * steps)) --set algorithm.overlap.kind="$overlap")
  case "$form" in
    ps-group) sets+=(--set platform.workers.grouping=identical) ;;
    ring) sets+=(--set algorithm.comm=allreduce) ;;
    ring-agg) sets+=(--set algorithm.comm=allreduce --set platform.workers.speed=v100
                     --set 'platform.collective={"algorithm": "ring", "transfers": "aggregated"}') ;;
    hier) sets+=(--set algorithm.comm=allreduce --set 'platform.collective={"algorithm": "hierarchical", "group_size": 32}') ;;
    asgd|dc-asgd|ssp) sets+=(--set algorithm.name="$form") ;;
    ps) ;;
    *) echo "error: $r: unknown form '$form' (ps, ps-group, ring, ring-agg, hier, asgd, dc-asgd, ssp)" >&2; exit 2 ;;
  esac
  est=$("$B" validate "$cfg" "${sets[@]}" | sed -n 's/.*transfers, [~]*\([0-9.e+]*\) \(s\|min\|h\|days\|years\) of.*/\1 \2/p')
  est=$(python3 -c "import sys;v,u=sys.argv[1],sys.argv[2];print(float(v)*{'s':1,'min':60,'h':3600,'days':86400,'years':31557600}[u])" $est 2>/dev/null || echo "<1")
  /usr/bin/time -f "%e %U %S %M" -o "$out/time" "$B" run "$cfg" --out "$out/run" --quiet "${sets[@]}" >/dev/null
  read -r wall user sys rss <"$out/time"
  sim=$(python3 -c "import json,sys;print('%.4f'%json.load(open(sys.argv[1]))['simulated_time_s'])" "$out/run/summary.json")
  python3 -c "import sys;print('$form,$n,$steps,$overlap,%s,%.2f,%d,%s,%s'%(sys.argv[1],float(sys.argv[2])+float(sys.argv[3]),int(sys.argv[4])//1024,sys.argv[5],sys.argv[6]))" \
    "$wall" "$user" "$sys" "$rss" "$est" "$sim"
done
