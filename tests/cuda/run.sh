#!/usr/bin/env bash
# make test-cuda: the CUDA parity suite (every op on the GPU against the
# CPU reference, tests/cuda/parity.c; in f32, TF32, bf16 and 64-bit index
# modes), then bench/gpu.sh's gpu_bench at small shapes (a check of the
# harness), then the model fixtures through the tools: the bats suites of
# the model tools run the CUDA build's binaries, whose default device is
# cuda when a GPU is usable, so every fixture comparison (VAE, T5, Latte,
# schedulers end to end, LPIPS, PWC-Net) runs on the GPU within the
# fixture tolerances, and so do the trainers. Ends with "N passed, N
# failed"; without a usable GPU it prints one skip line and exits 0.
# --ops-only: the emulator's self-tests, the parity suite and the device
# check, not the bats suites (make test-cuda-ops).
# --quick: those, gpu_bench, and only the bats cases tagged cuda-quick (a
# fixture of each model and metric, and the trainers against the CPU;
# make test-cuda-quick, what CI runs emulated).
# Env: OSP_TEST_BUILD (the CUDA build folder), OSP_BIN (its tools).
set -u
ops_only=false
tags=()
case "${1:-}" in
--ops-only) ops_only=true ;;
--quick) tags=(--filter-tags cuda-quick) ;;
"") ;;
*) echo "usage: tests/cuda/run.sh [--ops-only | --quick]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
build=${OSP_TEST_BUILD:-build-cuda}
export OSP_BIN=${OSP_BIN:-$PWD/bin-cuda}
export OSP_TEST_BUILD=$build

passed=0 failed=0
# The emulated build (make EMU=1, tests/cuemu) first tests the emulator:
# its threads, cuBLASLt and cuDNN against plain definitions.
for t in "$build"/tests/cuemu/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1)
    rc=$?
    # failures only (the rejections the tests provoke are named on stderr)
    printf '%s\n' "$out" | grep -Ev '^ok |^cuemu: |^[0-9]+ passed, [0-9]+ failed$'
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p))
    failed=$((failed + f))
done
# Full f32, then products in TF32, then matmul and linear in bf16, then f32
# with the elementwise kernels, copies and concat indexing in 64 bits (the
# path of tensors of 2^31 or more elements).
# Emulated, a fifth pass whose cuBLASLt has no GELU epilogue (the linear +
# GELU fallback, which a real library takes only for some shapes), and
# two in other orders (tests/cuemu/threads.cc): blocks and threads last
# first, then one warp running ahead of the others with at most two
# blocks a grid (so grid-stride loops take several turns), where a
# missing barrier or a block reading another's results gives another
# result.
modes=("" OSP_CUDA_TF32=1 OSP_CUDA_BF16=1 OSP_CUDA_WIDE_INDEX=1)
[ -x "$build/tests/cuemu/test_threads" ] &&
    modes+=(OSP_CUEMU_LT_NO_GELU=1 OSP_CUEMU_ORDER=reverse
        "OSP_CUEMU_ORDER=warps OSP_CUEMU_MAX_BLOCKS=2")
for mode in "${modes[@]}"; do
    start=$SECONDS
    out=$(env $mode "$build/tests/cuda/parity" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if printf '%s\n' "$out" | grep -q '^1\.\.0 # SKIP'; then
        echo "test-cuda: skipped (no usable CUDA device)"
        exit 0
    fi
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed without a failing line
    fi
    echo "parity ${mode:-f32}: $p passed, $f failed ($((SECONDS - start)) s)"
    passed=$((passed + p))
    failed=$((failed + f))
done

# The tools' own check that --device cuda is taken.
if "$OSP_BIN/osp-info" --device cuda examples/data/sample.msgpack >/dev/null; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
if $ops_only; then
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# Without bats or the fixtures the models were not checked: say so, as a failure.
if ! command -v bats >/dev/null || [ ! -d ../shared/fixtures ]; then
    echo "model fixtures on cuda: not run ($(command -v bats >/dev/null || echo 'bats missing; ')$([ -d ../shared/fixtures ] || echo 'no ../shared/fixtures'))"
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
fi
# bench/gpu.sh's benchmark program: each fixed-shape benchmark at its
# smoke shapes (GPU_BENCH_SMOKE=1) and one training step of the fixtures'
# tiny Latte must exit 0, print rows and nothing on stderr, so that a GPU
# session does not find the harness broken.
errors=$(mktemp)
for args in gemm attention memory conv3d conv-layout "train ../shared/fixtures/latte/tiny_a 989 2"; do
    # shellcheck disable=SC2086 # the arguments of one benchmark
    if out=$(GPU_BENCH_SMOKE=1 "$build/bench/gpu_bench" $args 2>"$errors") &&
        printf '%s\n' "$out" | grep -q '^| ' && [ ! -s "$errors" ]; then
        echo "ok gpu_bench $args (smoke)"
        passed=$((passed + 1))
    else
        printf '%s\n' "$out"
        cat "$errors"
        echo "not ok gpu_bench $args (smoke)"
        failed=$((failed + 1))
    fi
done
rm -f "$errors"

# the model tools' and the trainers' suites, and the cuda-against-cpu cases;
# convolution algorithms by cuDNN's heuristics, the same in every process,
# since the suites compare resumed runs bit for bit (the parity suite above
# ran the measured choice)
mapfile -t suites < <(grep -v '^#' tests/cuda/suites)
export OSP_CUDA_REPRODUCIBLE=1
# Streamed as it runs (so a run cut short still shows how far it got), each
# case timed, none allowed to hang the suite.
log=$(mktemp)
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120} bats --tap --timing "${tags[@]}" "${suites[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
out=$(cat "$log")
rm -f "$log"
skipped=$(printf '%s\n' "$out" | grep -c '^ok .* # skip')
p=$(($(printf '%s\n' "$out" | grep -c '^ok ') - skipped))
f=$(printf '%s\n' "$out" | grep -c '^not ok ')
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
# Every case the suites hold (or tag) must have run: a bats that dropped
# the tag filter's cases, or a plan cut short, is a failure.
planned=$(bats --count "${tags[@]}" "${suites[@]}")
if [ $((p + f + skipped)) -ne "$planned" ] || [ "$planned" -eq 0 ]; then
    echo "model fixtures on cuda: $((p + f + skipped)) of $planned cases ran"
    f=$((f + 1))
fi
[ "$skipped" -gt 0 ] && printf '%s\n' "$out" | grep '^ok .* # skip'
echo "model fixtures on cuda (bats): $p passed, $f failed, $skipped skipped"
passed=$((passed + p))
failed=$((failed + f))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
