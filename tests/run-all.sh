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

if ls tests/bats/*.bats >/dev/null 2>&1; then
    out=$(bats --tap tests/bats 2>&1)
    rc=$?
    # a skipped case is not a pass: counted and named apart
    s=$(printf '%s\n' "$out" | grep -c '^ok .* # skip')
    p=$(($(printf '%s\n' "$out" | grep -c '^ok ') - s))
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "$out" | tail -n 20
    fi
    [ "$f" -gt 0 ] && printf '%s\n' "$out" | grep -A4 '^not ok'
    [ "$s" -gt 0 ] && printf '%s\n' "$out" | grep '^ok .* # skip'
    echo "bats: $p passed, $f failed ($s skipped)"
    passed=$((passed + p))
    failed=$((failed + f))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
