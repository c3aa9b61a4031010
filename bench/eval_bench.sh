#!/bin/sh
# eval_bench.sh — osp-eval against Open-Sora-Plan v1.0.0's own metric
# functions (re-stated in eval_reference.py), same inputs, same run.
# Usage: eval_bench.sh BIN   (the folder holding osp-eval)
#
# Two cases, each run ROUNDS times alternately (osp, reference, osp, ...),
# medians over rounds printed as a markdown table:
#   psnr+ssim  100 pairs of 17x256x256 clips: `osp-eval --pairs` against
#              cal_psnr + cal_ssim called on batches of 2 (numpy; goal: osp
#              at least 10x faster);
#   lpips      2 clips of 17x256x256 with an AlexNet of the real widths
#              (random trunk, real v0.1 lin layers): osp-eval against the
#              reference's per-frame lpips calls in torch on the CPU (goal:
#              osp at most 0.8x the time).
# osp's time is the whole osp-eval process (start-up, reading the streams,
# writing JSON); the reference's is its metric calls alone. Wall clock and
# CPU time (all threads) are both reported: on a shared machine the CPU
# time is the steadier figure. Each round's
# values are compared (README tolerances: the mean and every per-frame
# mean); a mismatch fails the run.
#
# Environment:
#   BENCH_THREADS  threads for osp and torch (default: all cores); numpy's
#                  PSNR/SSIM use one
#   BENCH_ROUNDS   rounds per case (default 2)
#   BENCH_PYTHON   python with torch, numpy, scipy, safetensors
#                  (default: bench/.venv/bin/python)
#   BENCH_DATA     folder for the generated inputs (default /tmp/osp-eval-bench;
#                  made once, about 90 MB)
#   BENCH_CASES    which cases to run: psnr-ssim, lpips or both (default
#                  "psnr-ssim lpips")
set -eu

bin=${1:?usage: eval_bench.sh BIN}
here=$(cd "$(dirname "$0")" && pwd)
python=${BENCH_PYTHON:-$here/.venv/bin/python}
threads=${BENCH_THREADS:-$(nproc)}
rounds=${BENCH_ROUNDS:-2}
data=${BENCH_DATA:-/tmp/osp-eval-bench}
cases=${BENCH_CASES:-psnr-ssim lpips}
lin=$here/../../shared/fixtures/eval/real_lpips_alex_lin_v0.1.safetensors
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" BENCH_THREADS="$threads"

if [ ! -f "$data/pairs.tsv" ]; then
    mkdir -p "$data"
    "$python" "$here/eval_reference.py" data "$data" "$lin"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_case NAME METRICS OSP_ARGS... : appends osp's and the reference's
# wall and CPU ms to $tmp/NAME.{osp,ref}[-cpu], checking the values.
run_case() {
    name=$1 metrics=$2
    shift 2
    /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$bin/osp-eval" --threads "$threads" \
        --metrics "$metrics" --format json -o "$tmp/osp.json" "$@"
    awk '{ print $1 * 1000 }' "$tmp/time" >>"$tmp/$name.osp"
    awk '{ print ($2 + $3) * 1000 }' "$tmp/time" >>"$tmp/$name.osp-cpu"
    "$python" "$here/eval_reference.py" "$name" "$data" >"$tmp/ref.json"
    sed 's/^{"ms": \([0-9.]*\), "cpu_ms": \([0-9.]*\),.*/\1/' "$tmp/ref.json" >>"$tmp/$name.ref"
    sed 's/^{"ms": \([0-9.]*\), "cpu_ms": \([0-9.]*\),.*/\2/' "$tmp/ref.json" >>"$tmp/$name.ref-cpu"
    "$python" "$here/eval_reference.py" compare "$tmp/osp.json" "$tmp/ref.json" \
        $(echo "$metrics" | tr , ' ') | sed 's/^/  /' >&2
}

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

r=0
while [ "$r" -lt "$rounds" ]; do
    echo "round $((r + 1)) of $rounds" >&2
    case " $cases " in *" psnr-ssim "*)
        run_case psnr-ssim psnr,ssim --pairs "$data/pairs.tsv" ;;
    esac
    case " $cases " in *" lpips "*)
        run_case lpips lpips --lpips-model "$data/alex.safetensors" \
            "$data/lpips.msgpack" "$data/lpips-rec.msgpack" ;;
    esac
    r=$((r + 1))
done

echo "# osp-eval vs Open-Sora-Plan's metric functions, CPU"
echo
echo "- CPU: $(LC_ALL=C lscpu | sed -n 's/^Model name: *//p'), $(nproc) logical CPUs;" \
     "$threads threads for osp and torch, 1 for numpy"
echo "- torch $("$python" -c 'import torch; print(torch.__version__)'), rounds: $rounds;" \
     "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | work | osp ms | reference ms | osp/reference | speed-up | osp CPU ms | reference CPU ms | CPU ratio | osp GFLOP/s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
# row NAME LABEL WORK FLOPS: one table line from the medians of NAME's times.
row() {
    awk -v label="$2" -v work="$3" -v f="$4" -v o="$(median "$tmp/$1.osp")" \
        -v t="$(median "$tmp/$1.ref")" -v oc="$(median "$tmp/$1.osp-cpu")" \
        -v tc="$(median "$tmp/$1.ref-cpu")" 'BEGIN {
        printf "| %s | %s | %.0f | %.0f | %.3f | %.1fx | %.0f | %.0f | %.3f | %s |\n", label, work,
               o, t, o / t, t / o, oc, tc, oc / tc, f ? sprintf("%.1f", f / (o * 1e6)) : ""
    }'
}
has_case() { [ -s "$tmp/$1.osp" ]; }
if has_case psnr-ssim; then
    row psnr-ssim PSNR+SSIM "100 pairs of 17x256x256" 0
fi
# AlexNet convs per 256x256 frame: 2 * C_out * C_in * k^2 * h * w summed
# over the five (63, 31, 15, 15, 15 pixels a side), both frames of a pair.
alex='64*3*121*63*63 + 192*64*25*31*31 + 384*192*9*225 + 256*384*9*225 + 256*256*9*225'
if has_case lpips; then
    row lpips "LPIPS (AlexNet)" "2 clips of 17x256x256" \
        "$(awk "BEGIN { print 2 * 34 * 2 * ($alex) }")"
fi
