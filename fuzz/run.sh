#!/usr/bin/env bash
# make fuzz FUZZ_SECONDS=N — builds the libFuzzer targets with clang-14 in build-fuzz/ and runs each
# for N seconds on its corpus (seeds from examples/, platforms/ and small IDX sets, regenerated each
# time; the working corpus in build-fuzz/corpus/ grows across runs). Crash / leak / timeout / OOM
# inputs land in build-fuzz/artifacts/<target>/ and make this script fail. docs/robustness.md.
#   FUZZ_TARGETS="fuzz_config fuzz_idx fuzz_cifar fuzz_onnx"  which targets (default: every one built)
#   FUZZ_JOBS=1                           parallel libFuzzer jobs per target (-fork)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
B="${FUZZ_BUILD:-build-fuzz}"
CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
CC_FUZZ="${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}"
if [ -z "$CXX_FUZZ" ]; then
  echo "fuzz: clang++ not found: run tools/install-fuzz-deps.sh (clang-14, libclang-rt-14-dev)" >&2
  exit 1
fi
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DCMAKE_C_COMPILER="$CC_FUZZ" \
  -DCMAKE_CXX_FLAGS=-Wno-unknown-warning-option -DDTSIM_FUZZ=ON -DDTSIM_TESTS=OFF -DDTSIM_ONEDNN=OFF -DDTSIM_CUDA=OFF >/dev/null
TARGETS="${FUZZ_TARGETS:-fuzz_config fuzz_idx fuzz_cifar fuzz_onnx}"
cmake --build "$B" -j "${JOBS:-2}" --target $TARGETS
rm -rf "$B/seeds"
/usr/bin/python3 fuzz/make_seeds.py "$B/seeds"
/usr/bin/python3 fuzz/make_onnx_seeds.py "$B/seeds"
status=0
for t in $TARGETS; do
  kind="${t#fuzz_}"
  mkdir -p "$B/corpus/$kind" "$B/artifacts/$t"
  dict=()
  [ -f "fuzz/$kind.dict" ] && dict=(-dict="fuzz/$kind.dict")
  echo "fuzz: $t for ${SECONDS_EACH}s"
  log="$B/$t.log"
  set +e
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$B/$t" "$B/corpus/$kind" "$B/seeds/$kind" "${dict[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$B/artifacts/$t/" ${FUZZ_JOBS:+-fork=$FUZZ_JOBS} >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}')
  echo "fuzz: $t exit $rc, $execs executions, corpus $(ls "$B/corpus/$kind" | wc -l) inputs (log: $log)"
  if [ "$rc" -ne 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20
  fi
done
exit $status
