#!/usr/bin/env bash
# The single list of Debian packages dtsim needs. Idempotent: installs only what is missing.
# Works as root or through sudo. Usage: tools/install-deps.sh [--dry-run] [--with-torch]
set -euo pipefail

DRY_RUN=0
WITH_TORCH=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --with-torch) WITH_TORCH=1 ;;
    *) echo "usage: tools/install-deps.sh [--dry-run] [--with-torch]" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  # toolchain
  g++ cmake make pkg-config
  # simulation core
  libsimgrid-dev
  # config, logging, the command line, tests
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev doctest-dev
  # sweeps over MPI (built when found: DTSIM_MPI) and a private single-node Slurm for their tests
  openmpi-bin libopenmpi-dev slurmctld slurmd slurm-client munge
  # compute: oneDNN (CPU fast path; its CMake config wants OpenCL headers) and zlib for IDX files
  libdnnl-dev ocl-icd-opencl-dev zlib1g-dev
  # ONNX models (engine/onnx*.cpp): ONNX's protobuf schema and checker, and protobuf's headers
  libonnx-dev libprotobuf-dev
  # data
  dataset-fashion-mnist
  # the built-in language-model corpus (dataset.kind "text"): the King James Bible, printed by `bible`
  bible-kjv
  # plots and .npy checks in tests
  python3 python3-numpy python3-matplotlib
)
# Optional: tools/torch_profile.py and bench/reality/ (PyTorch with OpenBLAS as its BLAS, as in the
# compute anchor; iproute2 for the emulated cluster's namespaces and tc).
if [ "$WITH_TORCH" = 1 ]; then
  PACKAGES+=(python3-torch libopenblas0-pthread iproute2)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
[ "$DRY_RUN" = 1 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
