#!/usr/bin/env bash
# Runs dtsim's benchmarks and prints their figures (copy them into bench/README.md with the date and
# machine). Usage: bench/run.sh [BUILD_DIR]   (default build/; `make bench` builds first)
# Long: its last run (timing-only SSGD, 10,000 ungrouped workers x 100 steps) alone takes about half
# an hour on a 2-core machine (`dtsim validate` estimates ~31 min); the 1,000-worker run ~30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== engine: ms per training step (1 thread)"
"$B/bench_engine" 1
echo "== simulator overhead: quickstart run vs bare gradient loop"
"$B/bench_sim_overhead"
echo "== timing-only SSGD, 100 steps (wall time of dtsim run)"
for n in 1000 10000; do
  s=$((n * 32 * 100))
  /usr/bin/time -f "workers=$n steps=100: wall %e s, max RSS %M kB" \
    "$B/dtsim" run bench/configs/timing-only-scale.json --quiet --out "/tmp/dtsim-bench-$n" \
    --set platform.workers.count=$n --set training.samples=$s
done
