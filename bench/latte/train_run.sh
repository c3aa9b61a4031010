#!/bin/sh
# train_run.sh — LatteT2V training steps (forward, hybrid loss, backward,
# AdamW), osp against the PyTorch reference (train_torch.py) on the CPU,
# same model, same inputs, same thread count, in one invocation (what
# `make -C bench latte-train` runs).
# Usage: train_run.sh TRAIN_BENCH
#
# Makes the model and inputs once (under $BENCH_LATTE_DIR, shared with
# run.sh), then runs train_bench and train_torch.py alternately
# BENCH_ROUNDS times (each: one warm-up step, median of BENCH_REPS steps),
# checks that the losses of steps 1 and 2 agree (relative 1e-4; step 2
# follows one AdamW update, so this checks every gradient), and prints a
# markdown row: median osp ms, median torch ms, the median of the per-round
# ratios. Environment as run.sh (BENCH_THREADS, BENCH_ROUNDS, BENCH_REPS,
# BENCH_LATTE_DIR, BENCH_LATTE_ARGS, BENCH_PYTHON).
set -eu

bench=${1:?usage: train_run.sh TRAIN_BENCH}
here=$(cd "$(dirname "$0")" && pwd)
python=${BENCH_PYTHON:-$here/../.venv/bin/python}
threads=${BENCH_THREADS:-$(nproc)}
rounds=${BENCH_ROUNDS:-5}
reps=${BENCH_REPS:-3}
dir=${BENCH_LATTE_DIR:-/tmp/osp-bench-latte}
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"

if [ ! -f "$dir/input.safetensors" ]; then
    # shellcheck disable=SC2086 # a list of options
    "$python" "$here/latte_torch.py" make "$dir" ${BENCH_LATTE_ARGS:-}
fi
[ -f "$dir/train_input.safetensors" ] || "$python" "$here/train_torch.py" make "$dir"

echo "# LatteT2V training step, osp vs PyTorch, CPU"
echo
echo "- CPU: $(LC_ALL=C lscpu | sed -n 's/^Model name: *//p'), $(nproc) logical CPUs;" \
     "$threads threads for both"
echo "- torch $("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)," \
     "rounds: $rounds x $reps steps; no gradient checkpointing on either side"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
r=0
while [ "$r" -lt "$rounds" ]; do
    "$bench" -t "$threads" -r "$reps" "$dir" >>"$tmp/osp"
    "$python" "$here/train_torch.py" time "$dir" -t "$threads" -r "$reps" >>"$tmp/torch"
    r=$((r + 1))
done

# the losses of steps 1 and 2 must agree: same objective, inputs, updates
paste "$tmp/osp" "$tmp/torch" | awk -F'\t' '
    function off(a, b,   d) { d = a - b; if (d < 0) d = -d; return d > 1e-4 * (b < 0 ? -b : b) }
    { split($4, o, " "); split($9, t, " "); if (off(o[1], t[1]) || off(o[2], t[2])) bad = 1 }
    END { if (bad) { print "the losses of steps 1 and 2 disagree"; exit 1 } }'
echo "| model | shape | osp ms | torch ms | osp/torch | losses 1, 2: osp / torch | osp RSS MiB | torch RSS MiB |"
echo "|---|---|---:|---:|---:|---|---:|---:|"
paste "$tmp/osp" "$tmp/torch" | awk -F'\t' '
    { o[NR] = $3; t[NR] = $8; q[NR] = $3 / $8; shape = $2; lo = $4; lt = $9; ro = $5; rt = $10 }
    function median(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END { n = NR; printf "| latte-train | %s | %.1f | %.1f | %.2f | %s / %s | %.0f | %.0f |\n",
          shape, median(o, n), median(t, n), median(q, n), lo, lt, ro, rt }'
