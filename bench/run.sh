#!/bin/sh
# run.sh — osp against PyTorch on the CPU, same shapes, same thread count,
# in one invocation (what `make bench` runs). Usage: run.sh OSP_BENCH
#
# For every case it runs osp_bench and then torch_bench.py (each: one
# warm-up, median of REPS runs), ROUNDS times alternately, and prints a
# markdown table of the medians over rounds: osp ms, torch ms, the ratio
# osp/torch (goal: <= 1.0), osp GFLOP/s, the fraction of the CPU's peak,
# and each process's peak RSS.
#
# Environment:
#   BENCH_THREADS  threads for both (default: all cores); sets OMP_NUM_THREADS,
#                  OPENBLAS_NUM_THREADS and MKL_NUM_THREADS, and -t for both
#   BENCH_ROUNDS   repetitions of each case, median taken (default 1)
#   BENCH_PYTHON   python with torch (default: bench/.venv/bin/python)
#   BENCH_ONLY     run only cases whose line contains this text (e.g. conv3d)
#   BENCH_LONG=0   skip the 17,408-token attention (minutes on 2 cores)
set -eu

osp_bench=${1:?usage: run.sh OSP_BENCH}
here=$(cd "$(dirname "$0")" && pwd)
python=${BENCH_PYTHON:-$here/.venv/bin/python}
threads=${BENCH_THREADS:-$(nproc)}
rounds=${BENCH_ROUNDS:-1}

if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "run.sh: no torch in $python; create the bench virtualenv:" >&2
    echo "  python3 -m venv bench/.venv && bench/.venv/bin/pip install torch" >&2
    exit 1
fi
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"

# Peak FP32 GFLOP/s of the cores used = cores x GHz x FLOP/cycle/core.
# FLOP/cycle/core = FMA pipes x lanes x 2, read off the lscpu flags and CPU
# family: AVX-512 with two 512-bit FMA pipes (Intel Xeon SP; AMD Zen 5 =
# family 26) 64; AVX-512 on Zen 4 (family 25: 512-bit ops split over two
# 256-bit pipes) 32; AVX2+FMA (two 256-bit pipes) 32; AVX without FMA 16;
# SSE 8. GHz: the clock osp_bench measures with a dependent add chain
# (`osp_bench clock`), since under a hypervisor lscpu and /proc/cpuinfo
# report the nominal clock while the cores boost above it; lscpu's figure
# only where that measurement is unavailable (not x86-64).
peak_estimate() {
    info=$(LC_ALL=C lscpu)
    flags=$(echo "$info" | sed -n 's/^Flags: *//p')
    vendor=$(echo "$info" | sed -n 's/^Vendor ID: *//p')
    family=$(echo "$info" | sed -n 's/^CPU family: *//p')
    has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
    if has avx512f; then
        if [ "$vendor" = AuthenticAMD ] && [ "$family" -lt 26 ]; then fpc=32; else fpc=64; fi
    elif has fma && has avx2; then fpc=32
    elif has avx; then fpc=16
    else fpc=8
    fi
    mhz=$("$osp_bench" -r 5 clock) source=measured
    if [ "${mhz:-0}" = 0 ]; then
        mhz=$(echo "$info" | sed -n 's/^CPU max MHz: *//p') source=lscpu
        [ -n "$mhz" ] || mhz=$(sed -n 's/^cpu MHz[^:]*: *//p' /proc/cpuinfo | head -n 1)
    fi
    nominal=$(sed -n 's/^cpu MHz[^:]*: *//p' /proc/cpuinfo | head -n 1)
    echo "$threads $mhz $fpc $source $nominal" |
        awk '{ printf "%.0f %d %.2f %s %.2f", $1 * $2 / 1000 * $3, $3, $2 / 1000, $4, $5 / 1000 }'
}
read -r peak fpc ghz clock_source nominal_ghz <<EOF
$(peak_estimate)
EOF

long=${BENCH_LONG:-1}
# op dims... : timed runs per round
cases="matmul 1024 1024 1024 : 10
linear 4352 1152 4608 : 5
conv3d 1 128 128 9 32 32 3 : 5
conv3d 1 128 128 17 64 64 3 : 3
attention 1 16 1024 72 : 5
attention 1 16 4096 72 : 3"
[ "$long" = 0 ] || cases="$cases
attention 1 16 17408 72 : 1"

echo "# osp vs PyTorch, CPU"
echo
echo "- CPU: $(LC_ALL=C lscpu | sed -n 's/^Model name: *//p'), $(nproc) logical CPUs; $threads threads for both"
echo "- peak estimate: $threads cores x $ghz GHz ($clock_source; nominal $nominal_ghz GHz)" \
     "x $fpc FP32 FLOP/cycle = $peak GFLOP/s"
echo "- torch $("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)," \
     "rounds: $rounds"
echo "- $("$osp_bench" blas); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| op | shape | osp ms | torch ms | osp/torch | osp GFLOP/s | % peak | osp RSS MiB | torch RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
echo "$cases" | {
failed=0
while IFS=: read -r args reps; do
    case "$args" in *"${BENCH_ONLY:-}"*) ;; *) continue ;; esac
    : >"$tmp/osp"; : >"$tmp/torch"
    r=0
    # shellcheck disable=SC2086 # args is a list of words, reps a number
    while [ "$r" -lt "$rounds" ]; do
        "$osp_bench" -t "$threads" -r $reps $args >>"$tmp/osp" || echo "FAIL" >>"$tmp/osp"
        "$python" "$here/torch_bench.py" -t "$threads" -r $reps $args >>"$tmp/torch" ||
            echo "FAIL" >>"$tmp/torch"
        r=$((r + 1))
    done
    # Medians over rounds of each column; the shape comes from osp's line.
    awk -F'\t' -v peak="$peak" -v args="$args" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        FNR == 1 { file++ }
        $1 == "FAIL" { bad[file] = 1; next }
        file == 1 { n1++; op = $1; shape = $2; oms[n1] = $3; ogf[n1] = $4; orss[n1] = $5 }
        file == 2 { n2++; tms[n2] = $3; trss[n2] = $5 }
        END {
            if (bad[1] || bad[2] || !n1 || !n2) { printf "| %s | failed (see stderr) | | | | | | | |\n", args; exit 1 }
            o = median(oms, n1); t = median(tms, n2); g = median(ogf, n1)
            printf "| %s | %s | %.1f | %.1f | %.2f | %.0f | %.0f%% | %.0f | %.0f |\n",
                   op, shape, o, t, o / t, g, 100 * g / peak, median(orss, n1), median(trss, n2)
        }' "$tmp/osp" "$tmp/torch" || failed=1
done
exit "$failed"
} || status=1
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
