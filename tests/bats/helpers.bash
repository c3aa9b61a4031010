# Shared by the bats suites: paths and assertions.
# OSP_BIN (tools) and OSP_TEST_BUILD (build dir) come from tests/run-all.sh;
# the defaults let `bats tests/bats` run straight after `make tests`.

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BIN=${OSP_BIN:-$REPO/bin}
TEST_BUILD=${OSP_TEST_BUILD:-$REPO/build}
MKSTREAM=$TEST_BUILD/tests/tools/mkstream
JSONCHECK=$TEST_BUILD/tests/tools/jsoncheck
FIXTURES=$REPO/../shared/fixtures

# fails_with CODE CMD...: CMD exits with CODE, prints nothing on stdout and
# exactly one line on stderr, prefixed with the tool's name.
fails_with() {
    local code=$1 prefix
    shift
    prefix="$(basename "$1"): "
    run --separate-stderr "$@"
    if [ "$status" -ne "$code" ] || [ -n "$output" ] ||
        [ "$(printf '%s\n' "$stderr" | wc -l)" -ne 1 ] || [ -z "$stderr" ] ||
        [[ $stderr != "$prefix"* ]]; then
        echo "command: $*"
        echo "status: $status (expected $code)"
        echo "stdout: $output"
        echo "stderr: $stderr"
        return 1
    fi
}

# near A B TOL: |A - B| <= TOL
near() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }' ||
        { echo "$1 is not within $3 of $2"; return 1; }
}

need_fixtures() {
    [ -d "$FIXTURES" ] || skip "no conformance fixtures at $FIXTURES"
}

# tiny_latte_suite: for a suite of osp-train dit cases, a random tiny Latte
# ($SHARED/model) and 16 synthetic feature clips ($SHARED/feats) made once
# per file (call it in setup_file), and a fresh $TMP per case (setup).
tiny_latte_suite() {
    export SHARED=$BATS_FILE_TMPDIR
    "$TEST_BUILD/tests/tools/mklatte" "$SHARED/model" 32
    "$TEST_BUILD/tests/tools/mkfeatures" "$SHARED/feats" 16 32 2
}
tiny_latte_case() {
    TMP=$(mktemp -d)
    MODEL=$SHARED/model
    FEATS=$SHARED/feats
}
