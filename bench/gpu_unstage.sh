#!/usr/bin/env bash
# gpu_unstage.sh — on the GPU machine: put the build that bench/gpu_stage.sh
# packed in place (bench/gpu.sh calls it when gpu-stage/stage.tar.xz is
# there). Tools into bin-cuda/ and build-cuda/, fixtures to ../shared/fixtures
# when that is missing, bats to /usr when the machine has none. Of the
# packed libraries only those the machine cannot resolve itself are linked
# into gpu-stage/ld; that folder and the folders holding the machine's CUDA
# libraries go to gpu-stage/ld_path, for LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=$PWD/gpu-stage
root=$stage/root
rm -rf "$root" "$stage/ld"
mkdir -p "$root" "$stage/ld"
if command -v xz >/dev/null; then
    tar -C "$root" -xJf "$stage/stage.tar.xz"
else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$stage/stage.tar.xz" "$root"
fi
for d in bin-cuda build-cuda; do
    mkdir -p "$d"
    cp -a "$root/$d/." "$d/"
done
if [ ! -e ../shared/fixtures ]; then
    mkdir -p ../shared
    ln -s "$root/fixtures" ../shared/fixtures
fi
if ! command -v bats >/dev/null || [ ! -d /usr/lib/bats/bats-assert ]; then
    cp -an "$root/sys/usr/." /usr/ && echo "gpu_unstage.sh: bats installed to /usr"
fi

known=$(ldconfig -p | awk '{ print $1 }')
own=0 theirs=0
for lib in "$root"/libs/*; do
    name=$(basename "$lib")
    if grep -qxF "$name" <<<"$known"; then
        theirs=$((theirs + 1))
    else
        ln -s "$lib" "$stage/ld/$name"
        own=$((own + 1))
    fi
done
echo "gpu_unstage.sh: $own packed libraries linked, $theirs taken from the machine"

# The CUDA libraries the build links, wherever this machine keeps them
path=$stage/ld
for soname in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
    grep -qxF "$soname" <<<"$known" && continue
    found=$(find /usr/local /usr/lib /opt -name "$soname" 2>/dev/null | head -n 1)
    if [ -z "$found" ]; then
        echo "gpu_unstage.sh: $soname not found on this machine" >&2
        continue
    fi
    dir=$(dirname "$found")
    [[ ":$path:" == *":$dir:"* ]] || path=$path:$dir
    echo "gpu_unstage.sh: $soname from $dir"
done
echo "$path" >"$stage/ld_path"
missing=$(LD_LIBRARY_PATH=$path ldd bin-cuda/osp-info build-cuda/tests/cuda/parity | grep 'not found' | sort -u || true)
[ -z "$missing" ] || { echo "gpu_unstage.sh: still missing:" "$missing" >&2; exit 1; }
echo "gpu_unstage.sh: ready; LD_LIBRARY_PATH=$path"
