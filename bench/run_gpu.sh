#!/usr/bin/env bash
# On the GPU machine, from the repository root (docs/gpu.md): unpack the carried build
# dependencies, locate cuDNN, build the engine with the cuda backend (no SimGrid, no oneDNN), run
# the engine tests (the CUDA ones must pass, not skip), then the GPU benchmark and its PyTorch
# anchor. Logs and JSON go to $OUT (the device tool's output folder) or out/gpu.
#   usage: bash bench/run_gpu.sh [tests|bench|all]   (default all)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
what=${1:-all}
out=${OUT:-out/gpu}
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/run_gpu.log"; }

# 1. build dependencies carried from the Debian machine (bench/gpu_deps.sh), kept if present
if [ -f .gpu-deps/deps.tar.gz ]; then tar -C / --skip-old-files -xzf .gpu-deps/deps.tar.gz; fi

# 2. cuDNN: CUDNN_ROOT if set, else the toolkit's, else PyTorch's nvidia-cudnn wheel
if [ -z "${CUDNN_ROOT:-}" ]; then
  if ls /usr/local/cuda/include/cudnn.h >/dev/null 2>&1; then CUDNN_ROOT=/usr/local/cuda
  else CUDNN_ROOT=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
  fi
fi
log "cuDNN root: ${CUDNN_ROOT:-not found}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$out/run_gpu.log"

# 3. build
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
# No ONNX import: the image has no libonnx/libprotobuf for C++ (only Python's onnx), and it is not
# what the GPU run checks.
cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DDTSIM_WITH_SIM=OFF -DDTSIM_ONEDNN=OFF -DDTSIM_ONNX=OFF \
  -DDTSIM_CUDA=ON -DCUDNN_ROOT="${CUDNN_ROOT:-}" > "$out/configure.log" 2>&1 || { cat "$out/configure.log"; exit 1; }
grep "dtsim:" "$out/configure.log" | tee -a "$out/run_gpu.log"
cmake --build build-gpu -j "$(nproc)" --target test_engine bench_gpu > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH="${CUDNN_ROOT:-}/lib:${LD_LIBRARY_PATH:-}"
rc=0

# 4. tests: every engine test; the CUDA ones must run (a skip here means no device was found)
if [ "$what" = all ] || [ "$what" = tests ]; then
  log "ctest (test_engine)"
  # only the engine's doctest cases: the Python-driven checks (reality:, plot:) need tools this build
  # does not make (dtsim_param_list) or the image may not have (/usr/bin/python3, matplotlib)
  (cd build-gpu && ctest -j 8 --timeout 600 --output-on-failure -E '^(reality|plot):') > "$out/ctest.log" 2>&1 || rc=1
  tail -30 "$out/ctest.log" | tee -a "$out/run_gpu.log"
  if grep -q "cuda.*Skipped" "$out/ctest.log"; then log "ERROR: CUDA tests skipped on the GPU machine"; rc=1; fi
fi

# 5. benchmarks: dtsim's cuda backend, then PyTorch on the same GPU
if [ "$what" = all ] || [ "$what" = bench ]; then
  log "bench_gpu"
  ./build-gpu/bench_gpu --json "$out/bench_gpu.json" 2>&1 | tee -a "$out/run_gpu.log" || rc=1
  log "pytorch_gpu.py"
  python3 bench/pytorch_gpu.py --json "$out/pytorch_gpu.json" 2>&1 | tee -a "$out/run_gpu.log" || rc=1
fi
exit $rc
