#!/bin/sh
# Plots the per-frame metrics of one comparison with gnuplot, one panel per
# metric, from osp-eval's CSV output.
#   examples/plot-metrics.sh A B [OUT.png [osp-eval options...]]
# e.g. examples/plot-metrics.sh real.mp4 rec.mp4 rec.png --lpips-model alex.safetensors
# Without gnuplot the CSV is printed instead.
set -eu
PATH=${OSP_BIN:-$PWD/bin}:$PATH
[ $# -ge 2 ] || { echo "usage: $0 A B [OUT.png [osp-eval options...]]" >&2; exit 2; }
a=$1 b=$2 out=${3:-metrics.png}
shift 2
[ $# -eq 0 ] || shift
csv=$(mktemp)
trap 'rm -f "$csv"' EXIT

# frame,psnr,ssim[,lpips,flolpips]: one row per frame (FloLPIPS, which
# scores frame pairs, leaves the last row's cell empty).
osp-eval --per-frame --format csv "$@" "$a" "$b" >"$csv"

if ! command -v gnuplot >/dev/null; then
    echo "gnuplot is not installed; the per-frame values:" >&2
    cat "$csv"
    exit 0
fi
columns=$(head -n 1 "$csv" | tr ',' '\n' | wc -l)
gnuplot <<GNUPLOT
set datafile separator ','
set terminal png size 800, $((200 * (columns - 1)))
set output '$out'
set multiplot layout $((columns - 1)), 1
set xlabel 'frame'
set grid
do for [i = 2:$columns] {
    plot '$csv' using 1:i with linespoints title columnhead(i)
}
unset multiplot
GNUPLOT
echo "wrote $out"
