#!/usr/bin/env bash
# gpu_stage.sh — pack a CUDA build made on this machine for a GPU machine
# that lacks the project's libraries (a bare CUDA image: no msgpack-c,
# cJSON, OpenBLAS, FFmpeg, libpng or bats, and no way to install them).
#
#   bench/gpu_stage.sh            (after `make CUDA=1 all tests
#                                  build-cuda/tests/cuda/parity build-cuda/bench/gpu_bench`)
#
# Writes gpu-stage/stage.tar.xz (git-ignored): the CUDA tools and test
# programs, the shared libraries they load (bench/gpu_stubs.py: stubs for
# those they never call; the C runtime and the CUDA libraries come from the
# GPU machine), bats with its assert
# and support libraries, and ../shared/fixtures. On the GPU machine,
# bench/gpu.sh unpacks it when it finds it (name gpu-stage in the device
# call's carry), links only the libraries that machine cannot resolve
# itself, and skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-cuda bin=bin-cuda
stage=gpu-stage
root=$stage/root
rm -rf "$stage"
mkdir -p "$root/$bin" "$root/$build/tests/cuda" "$root/$build/tests/tools" \
    "$root/$build/bench" "$root/libs" "$root/sys"

programs=("$bin"/osp-* "$build"/tests/cuda/parity "$build"/bench/gpu_bench)
for f in "$build"/tests/tools/*; do
    [ -x "$f" ] && [ -f "$f" ] && programs+=("$f")
done
for f in "${programs[@]}"; do
    [ -x "$f" ] || { echo "gpu_stage.sh: $f missing: build it first (see the header)" >&2; exit 1; }
    strip -o "$root/$f" "$f"
done

# The libraries they load; stand-ins for those never called (see gpu_stubs.py)
python3 bench/gpu_stubs.py "$root/libs" "${programs[@]}"

# bats at the absolute paths the suites load it from (copied there on the GPU machine)
for d in /usr/lib/bats-core /usr/libexec/bats-core /usr/lib/bats; do
    mkdir -p "$root/sys$(dirname "$d")"
    cp -a "$d" "$root/sys$d"
done
mkdir -p "$root/sys/usr/bin"
cp -a /usr/bin/bats "$root/sys/usr/bin/bats"

cp -a ../shared/fixtures "$root/fixtures"
XZ_OPT="-9 -T2" tar -C "$root" -cJf "$stage/stage.tar.xz" .
rm -rf "$root"
echo "gpu_stage.sh: $(du -h "$stage/stage.tar.xz" | cut -f1) in $stage/stage.tar.xz"
