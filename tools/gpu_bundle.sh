#!/usr/bin/env bash
# Runs the CUDA checks on a GPU machine that lacks this build's packages (oneDNN, oneTBB, ICU,
# ...): `pack` puts stripped copies of strata and strata_gpu_tests, the shared libraries they
# load (not the C library itself, which the machine has) and the CUDA test script into one
# compressed file; `check` unpacks it there and runs the CUDA op tests, the end-to-end test and
# `bench gpu`, writing their output to a log.
#   bash tools/gpu_bundle.sh pack [DIR]          # -> DIR/strata-gpu.tar.xz (DIR default .gpu-bundle)
#   bash tools/gpu_bundle.sh check DIR [LOGDIR]  # on the GPU machine, from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
dir=${2:-.gpu-bundle}
case "$mode" in
  pack)
    [ -x build/bin/strata_gpu_tests ] || { echo "gpu_bundle: build/bin/strata_gpu_tests is missing: build with CUDA first" >&2; exit 1; }
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/lib" "$dir"
    for b in strata strata_gpu_tests; do strip -o "$stage/$b" "build/bin/$b"; done
    # Every library the programs load except the C library's own (its loader must match it).
    for b in strata strata_gpu_tests; do ldd "build/bin/$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
      grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' | while read -r lib; do cp -L "$lib" "$stage/lib/"; done
    cp tests/cli/gpu_cuda.sh "$stage/"
    tar -C "$stage" -cJf "$dir/strata-gpu.tar.xz" .
    echo "gpu_bundle: $dir/strata-gpu.tar.xz ($(du -h "$dir/strata-gpu.tar.xz" | cut -f1))"
    ;;
  check)
    logs=${3:-/tmp}
    root=$(mktemp -d)
    tar -C "$root" -xJf "$dir/strata-gpu.tar.xz"
    export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    status=0
    "$root/strata_gpu_tests" 2>&1 | tee "$logs/gpu_tests.log" || status=1
    bash "$root/gpu_cuda.sh" "$root/strata" "$root/work" 2>&1 | tee "$logs/gpu_cuda.log" || status=1
    "$root/strata" bench gpu 2>&1 | tee "$logs/bench_gpu.log" || status=1
    exit $status
    ;;
  *)
    echo "usage: bash tools/gpu_bundle.sh pack [DIR] | check DIR [LOGDIR]" >&2
    exit 2
    ;;
esac
