#!/bin/sh
# run.sh — one LatteT2V forward, osp against the PyTorch reference
# (latte_torch.py) on the CPU, same model, same inputs, same thread count,
# in one invocation (what `make -C bench latte` runs).
# Usage: run.sh LATTE_BENCH
#
# Makes the model once (random weights under $BENCH_LATTE_DIR), then runs
# latte_bench and latte_torch.py alternately BENCH_ROUNDS times (each: one
# warm-up, median of BENCH_REPS forwards), checks that the two outputs agree
# (max |osp - torch| <= 1e-4 x max(1, max |torch|)), and prints a markdown
# row: median osp ms, median torch ms, the median of the per-round ratios,
# osp GFLOP/s; then the FLOPs of one guided sampling step of XL/122 at
# 65x512x512, and the formula checked against torch's operator count.
#
# Environment:
#   BENCH_THREADS    threads for both (default: all cores)
#   BENCH_ROUNDS     alternating rounds (default 5)
#   BENCH_REPS       timed forwards per round (default 3)
#   BENCH_LATTE_DIR  model + inputs (default /tmp/osp-bench-latte)
#   BENCH_LATTE_ARGS latte_torch.py make options (default: 4+4 blocks,
#                    hidden 384 = 6 x 64, 5 x 16 x 16 latent, batch 2, L 120)
#   BENCH_PYTHON     python with torch (default: bench/.venv/bin/python)
set -eu

bench=${1:?usage: run.sh LATTE_BENCH}
here=$(cd "$(dirname "$0")" && pwd)
python=${BENCH_PYTHON:-$here/../.venv/bin/python}
threads=${BENCH_THREADS:-$(nproc)}
rounds=${BENCH_ROUNDS:-5}
reps=${BENCH_REPS:-3}
dir=${BENCH_LATTE_DIR:-/tmp/osp-bench-latte}
ref="$here/latte_torch.py"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"

if [ ! -f "$dir/input.safetensors" ]; then
    # shellcheck disable=SC2086 # a list of options
    "$python" "$ref" make "$dir" ${BENCH_LATTE_ARGS:-}
fi

echo "# LatteT2V forward, osp vs PyTorch, CPU"
echo
echo "- CPU: $(LC_ALL=C lscpu | sed -n 's/^Model name: *//p'), $(nproc) logical CPUs;" \
     "$threads threads for both; OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(unset)}"
echo "- torch $("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)," \
     "rounds: $rounds x $reps forwards"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
r=0
while [ "$r" -lt "$rounds" ]; do
    "$bench" -t "$threads" -r "$reps" "$dir" >>"$tmp/osp"
    "$python" "$ref" time "$dir" -t "$threads" -r "$reps" >>"$tmp/torch"
    r=$((r + 1))
done
agree=$("$python" "$ref" compare "$dir") || { echo "outputs disagree: $agree"; exit 1; }

echo "| model | shape | osp ms | torch ms | osp/torch | osp GFLOP/s |"
echo "|---|---|---:|---:|---:|---:|"
paste "$tmp/osp" "$tmp/torch" | awk -F'\t' '
    function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { n++; shape = $2; o[n] = $3; g[n] = $4; t[n] = $8; q[n] = $3 / $8 }
    END {
        printf "| LatteT2V | %s | %.1f | %.1f | %.2f | %.1f |\n",
               shape, median(o, n), median(t, n), median(q, n), median(g, n)
    }'
echo
echo "- per round osp/torch: $(paste "$tmp/osp" "$tmp/torch" |
    awk -F'\t' '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $3 / $8 }')"
echo "- outputs: $agree"
echo "- FLOPs, XL/122: $("$python" "$ref" flops) = one sampling step (guidance batch 2)"
echo "- $("$python" "$ref" flops --config "$dir/model/config.json" --check "$dir" | tail -n 1)"
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
