#!/usr/bin/env bash
# Runs every C unit test binary and every bats suite; prints each suite's
# result and ends with the single line "N passed, N failed".
# Env: OSP_TEST_BUILD (build dir holding tests/), OSP_BIN (tool binaries).
set -u
cd "$(dirname "$0")/.."
build=${OSP_TEST_BUILD:-build}
export OSP_BIN=${OSP_BIN:-$PWD/bin}
passed=0
failed=0

for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1)
    rc=$?
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed or exited non-zero without a failing line
        echo "$out" | tail -n 20
    fi
    [ "$f" -gt 0 ] && printf '%s\n' "$out" | grep -E '^(not ok|#  )'
    echo "unit $(basename "$t"): $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
done

# bats_suites LABEL ARGS...: runs bats on ARGS, adds its counts (a skipped
# case is not a pass: counted and named apart)
bats_suites() {
    local label=$1 out rc s p f
    shift
    out=$(bats --tap "$@" 2>&1)
    rc=$?
    s=$(printf '%s\n' "$out" | grep -c '^ok .* # skip')
    p=$(($(printf '%s\n' "$out" | grep -c '^ok ') - s))
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "$out" | tail -n 20
    fi
    [ "$f" -gt 0 ] && printf '%s\n' "$out" | grep -A4 '^not ok'
    [ "$s" -gt 0 ] && printf '%s\n' "$out" | grep '^ok .* # skip'
    echo "$label: $p passed, $f failed ($s skipped)"
    passed=$((passed + p))
    failed=$((failed + f))
}

if ls tests/bats/*.bats >/dev/null 2>&1; then
    bats_suites bats tests/bats
    # The device paths, on the stand-in GPU of tests/fakedev: the suites
    # make test-cuda runs on a real one, with tools whose default device is
    # its `cuda` (memory no host code may touch, the CPU's kernels).
    fakedev=$build/tests/fakedev/bin
    [[ $fakedev = /* ]] || fakedev=$PWD/$fakedev
    if [ -x "$fakedev/osp-train" ]; then
        mapfile -t suites < <(grep -v '^#' tests/cuda/suites)
        OSP_BIN=$fakedev bats_suites "bats on the stand-in GPU" "${suites[@]}"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
