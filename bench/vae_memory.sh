#!/bin/sh
# vae_memory.sh — peak RSS of chunked osp-decode runs that write a video
# file, for a short and a ten times longer latent, and the chunking error
# (PSNR of the chunked against the unchunked decode) on a test clip.
#
#   bench/vae_memory.sh [H W [SHORT LONG]]   (default 256 256 17 163 latents:
#                                             65 and 649 frames)
#
# 1. A SHORT-latent clip (4*SHORT-3 frames, testsrc-like pattern, FFV1) is
#    encoded (posterior mean); its latent is decoded unchunked (a stream)
#    and chunked (an FFV1 file: frames go out as chunks finish); PSNR of the
#    chunked decode against the unchunked one, and of both against the clip.
# 2. A random LONG-latent stream is decoded chunked into an FFV1 file.
# Peak RSS (/usr/bin/time) of 1's and 2's chunked decodes, and their ratio.
#
# Environment: VAE_DIR (default /tmp/osp-vae-release), CHUNK latents per
# chunk (default 9), OVERLAP (default 1), UNCHUNKED=0 to skip the unchunked
# decode and the PSNR figures (it needs ~4x the chunked memory: about 20 GiB
# at release widths and 256x256), BENCH_THREADS, OSP_BIN,
# OSP_TEST_BUILD, BENCH_PYTHON, BENCH_LOCK as in vae_bench.sh. Each decode
# runs under the bench lock.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
H=${1:-256} W=${2:-256} short=${3:-17} long=${4:-163}
vae=${VAE_DIR:-/tmp/osp-vae-release}
chunk=${CHUNK:-9} overlap=${OVERLAP:-1} unchunked=${UNCHUNKED:-1}
threads=${BENCH_THREADS:-$(nproc)}
bin=${OSP_BIN:-$root/bin}
build=${OSP_TEST_BUILD:-$root/build}
python=${BENCH_PYTHON:-$here/.venv/bin/python}
lock=${BENCH_LOCK:-/tmp/osp-bench.lock}
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$vae/config.json" ] || "$python" "$here/torch_vae.py" init "$vae" >&2

# run NAME CMD...: CMD under the lock; prints "NAME: wall s, peak MiB"
run() {
    name=$1
    shift
    flock "$lock" /usr/bin/time -f '%e %M' -o "$work/time" "$@" --threads "$threads" 2>/dev/null
    awk -v n="$name" '{ printf "%s: %.1f s, peak %.0f MiB\n", n, $1, $2 / 1024 }' "$work/time" >&2
    awk '{ printf "%.0f\n", $2 / 1024 }' "$work/time"
}
psnr() {
    "$bin/osp-eval" --metrics psnr --format json "$1" "$2" | "$build/tests/tools/jsoncheck" \
        '.metrics.psnr.mean'
}

frames=$((4 * short - 3))
"$build/tests/tools/mkvideo" "$work/clip.mkv" "$frames" "$W" "$H" ffv1
run encode "$bin/osp-encode" -m "$vae" --mode mean "$work/clip.mkv" -o "$work/short.msgpack" \
    > /dev/null
[ "$unchunked" = 0 ] || run "decode $short latents unchunked" "$bin/osp-decode" -m "$vae" \
    "$work/short.msgpack" -o "$work/whole.msgpack" > "$work/rss_whole"
rss_short=$(run "decode $short latents, chunks of $chunk" "$bin/osp-decode" -m "$vae" \
    --chunk-frames "$chunk" --chunk-overlap "$overlap" --codec ffv1 "$work/short.msgpack" \
    -o "$work/chunked.mkv")
if [ "$unchunked" != 0 ]; then
    err=$(psnr "$work/chunked.mkv" "$work/whole.msgpack")
    src_whole=$(psnr "$work/clip.mkv" "$work/whole.msgpack")
    src_chunked=$(psnr "$work/clip.mkv" "$work/chunked.mkv")
fi

"$python" - "$work/long.st" "$long" "$H" "$W" <<'EOF'
import sys, torch
from safetensors.torch import save_file
n, h, w = (int(v) for v in sys.argv[2:5])
g = torch.Generator().manual_seed(3)
save_file({"latent": torch.randn((1, 4, n, h // 8, w // 8), generator=g) * 0.18215}, sys.argv[1])
EOF
"$build/tests/tools/mkstream" convert "$work/long.st" "$work/long.msgpack" latent
rss_long=$(run "decode $long latents, chunks of $chunk" "$bin/osp-decode" -m "$vae" \
    --chunk-frames "$chunk" --chunk-overlap "$overlap" --codec ffv1 "$work/long.msgpack" \
    -o "$work/long.mkv")

echo "| case | frames | peak RSS MiB |"
echo "|---|---|---|"
[ "$unchunked" = 0 ] ||
    echo "| unchunked decode, $short latents, ${H}x${W}, stream out | $frames | $(cat "$work/rss_whole") |"
echo "| chunked ($chunk/$overlap), $short latents, FFV1 out | $frames | $rss_short |"
echo "| chunked ($chunk/$overlap), $long latents, FFV1 out | $((4 * long - 3)) | $rss_long |"
echo
awk -v a="$rss_long" -v b="$rss_short" 'BEGIN { printf "peak RSS ratio long/short: %.3f\n", a / b }'
[ "$unchunked" = 0 ] && exit 0
echo "PSNR chunked vs unchunked decode: $err dB"
echo "PSNR vs the source clip: unchunked $src_whole dB, chunked $src_chunked dB"
