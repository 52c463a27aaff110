#!/usr/bin/env bash
# Packs the build dependencies the GPU machine's image lacks (it has nvcc, cuDNN via PyTorch's
# nvidia-cudnn-cu13 wheel, CMake, ninja — but no apt, no doctest, no nlohmann_json, maybe no zlib
# headers) from this Debian machine into .gpu-deps/deps.tar.gz (~300 KB), for bench/run_gpu.sh to
# unpack there. Run once, here, from the repository root. See docs/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-deps
# Never committed: listed in the repository's info/exclude (in a git worktree .git is a file, so
# the path comes from git).
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.gpu-deps/' "$exclude" 2>/dev/null || { mkdir -p "$(dirname "$exclude")" && echo '/.gpu-deps/' >> "$exclude"; }
paths=(
  usr/include/doctest usr/lib/cmake/doctest               # doctest-dev (its CMake config assumes /usr)
  usr/include/nlohmann usr/share/cmake/nlohmann_json      # nlohmann-json3-dev
  usr/include/zlib.h usr/include/zconf.h                  # zlib1g-dev
  usr/lib/x86_64-linux-gnu/libz.a usr/lib/x86_64-linux-gnu/pkgconfig/zlib.pc
)
for p in "${paths[@]}"; do
  [ -e "/$p" ] || { echo "gpu_deps: /$p missing (apt-get install doctest-dev nlohmann-json3-dev zlib1g-dev)" >&2; exit 1; }
done
tar -C / -czf .gpu-deps/deps.tar.gz "${paths[@]}"
ls -l .gpu-deps/deps.tar.gz
