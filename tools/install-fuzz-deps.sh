#!/usr/bin/env bash
# Debian packages for `make fuzz` only (docs/robustness.md): clang-14 and its compiler-rt, which
# ships libFuzzer (libclang_rt.fuzzer-x86_64.a) and the ASan/UBSan runtimes. `make test` and CI do
# not need them. Idempotent; works as root or through sudo.
set -euo pipefail
PACKAGES=(clang-14 libclang-rt-14-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-fuzz-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=()
[ "$(id -u)" -ne 0 ] && SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
