#!/usr/bin/env bash
# Installs the Debian 12 packages osp builds and tests with (what `make deps`
# runs; it needs nothing but bash and dpkg, so it also works before make is
# installed). As root it runs apt-get, and only when something is missing;
# otherwise it prints the exact command to run and exits 1.
#
# The list is ../shared/DESIGN.md's, plus pkg-config (for libosp.pc) and
# clang with its runtime libraries (for `make fuzz`), and ffmpeg for ffprobe
# (the tests count the frames of written videos with it, independently of
# osp), and zsh and groff-base (the completion and man page checks, which
# would otherwise skip), and OpenBLAS's OpenMP build beside the default
# pthreads one (the Makefile links it when present: the GEMMs share the
# kernels' OpenMP threads). The CUDA toolkit, cuDNN and NCCL come from NVIDIA,
# not from Debian: `make CUDA=1` expects them under /usr/local/cuda.
set -euo pipefail

packages=(
    build-essential make pkg-config
    libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
    libpng-dev libmsgpack-dev libcjson-dev libopenblas-dev libopenblas0-openmp libopenmpi-dev
    bats bats-assert bats-support
    clang libclang-rt-14-dev ffmpeg zsh groff-base
)

if ! command -v dpkg-query >/dev/null; then
    echo "deps: dpkg-query not found: install these Debian 12 packages by hand:" >&2
    echo "  ${packages[*]}" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#packages[@]} packages are installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing ${missing[*]}; run as root:" >&2
    echo "sudo apt-get install -y ${packages[*]}"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${packages[@]}"
