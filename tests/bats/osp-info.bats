#!/usr/bin/env bats
# osp-info: streams written by libosp, every safetensors fixture, model
# folders (single and sharded), --stats values, JSON, and malformed inputs
# (exit status + exactly one stderr line).

load helpers

INFO=$BIN/osp-info

setup_file() {
    local d=$BATS_FILE_TMPDIR
    "$MKSTREAM" sample "$d/sample.msgpack"
    "$MKSTREAM" known "$d/known.msgpack"
    "$MKSTREAM" sharded "$d/sharded"
    for kind in version missing-key dtype size overflow negative-dim rank not-a-map; do
        "$MKSTREAM" bad "$kind" "$d/bad-$kind.msgpack"
    done
}

# JSON value at PATH of `osp-info --format json --stats known.msgpack`
known() {
    "$INFO" --format json --stats "$BATS_FILE_TMPDIR/known.msgpack" | "$JSONCHECK" "$@"
}

# ---- command line ----

@test "--help: exit 0, usage, every option, an example, fits a screen" {
    run "$INFO" --help
    assert_success
    assert_line --index 0 "Usage: osp-info [OPTIONS] [INPUT]"
    assert_output --partial "--stats"
    assert_output --partial "--format FMT"
    assert_output --partial "Example:"
    [ "${#lines[@]}" -le 24 ]
    for line in "${lines[@]}"; do [ "${#line}" -le 80 ]; done
}

@test "--version" {
    run "$INFO" --version
    assert_success
    assert_output --regexp '^osp-info \(osp\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors: exit 2 and one line" {
    local s=$BATS_FILE_TMPDIR/sample.msgpack
    fails_with 2 "$INFO" --threads x "$s"
    assert_equal "$stderr" "osp-info: --threads: expected an integer in [1, 4096], got 'x'"
    fails_with 2 "$INFO" --threads 0 "$s"
    fails_with 2 "$INFO" --threads 99999999999999999999 "$s"
    fails_with 2 "$INFO" --format xml "$s"
    assert_equal "$stderr" "osp-info: --format: expected one of table|json, got 'xml'"
    fails_with 2 "$INFO" "$s" --format
    assert_equal "$stderr" "osp-info: --format: missing argument"
    fails_with 2 "$INFO" --stats=yes "$s"
    fails_with 2 "$INFO" --no-such-option "$s"
    fails_with 2 "$INFO" -x "$s"
    fails_with 2 "$INFO" "$s" "$s"
    fails_with 2 "$INFO" --device gpu "$s"
}

@test "--device cpu works; --device cuda works or fails cleanly" {
    run "$INFO" --device cpu --threads 1 "$BATS_FILE_TMPDIR/sample.msgpack"
    assert_success
    run --separate-stderr "$INFO" --device cuda "$BATS_FILE_TMPDIR/sample.msgpack"
    if [ "$status" -ne 0 ]; then
        # 2: this build has no CUDA backend; 4: no usable device
        [ "$status" -eq 2 ] || [ "$status" -eq 4 ]
        [ -z "$output" ]
        [[ $stderr == "osp-info: --device cuda: "* ]]
    fi
}

@test "a terminal on stdin prints the usage instead of waiting" {
    command -v script >/dev/null || skip "script(1) not installed"
    run script -qec "$INFO" /dev/null
    assert_equal "$status" 2
    assert_output --partial "Usage: osp-info"
}

@test "-q and -v are accepted" {
    run "$INFO" -q "$BATS_FILE_TMPDIR/sample.msgpack"
    assert_success
    run "$INFO" -v "$BATS_FILE_TMPDIR/sample.msgpack"
    assert_success
}

# ---- streams ----

@test "stream: names, dtypes, shapes and meta" {
    run "$INFO" "$BATS_FILE_TMPDIR/sample.msgpack"
    assert_success
    assert_line --index 0 --regexp '^NAME +DTYPE +SHAPE +META$'
    assert_line --index 1 --regexp '^latent +f32 +\[1, 4, 2, 4, 4\] +scale=0\.18215 prompt="a red fox in snow" seed=42$'
    assert_line --index 2 --regexp '^mask +u8 +\[1, 8\] *$'
    assert_line --index 3 --regexp '^2 tensors, 136 values, 520 bytes \(stream .*sample\.msgpack\)$'
}

@test "examples/info.sh runs" {
    cd "$REPO"
    run examples/info.sh
    assert_success
    assert_output --partial '(stream stdin)'
}

@test "examples/data/sample.msgpack is what the library writes today" {
    run bash -c "'$MKSTREAM' sample - | cmp - '$REPO/examples/data/sample.msgpack'"
    assert_success
}

@test "stream from stdin, from -, and from a pipe" {
    local s=$BATS_FILE_TMPDIR/sample.msgpack
    run "$INFO" "$s"
    local expected=${lines[1]}
    run "$INFO" <"$s"
    assert_success
    assert_line --index 1 "$expected"
    run "$INFO" - <"$s"
    assert_success
    assert_line --index 1 "$expected"
    run bash -c "cat '$s' | '$INFO' --format json | '$JSONCHECK' .source .kind '.tensors#'"
    assert_success
    assert_output $'-\nstream\n2'
}

@test "an empty stream has no tensors" {
    run "$INFO" </dev/null
    assert_success
    assert_line --index 1 --partial "0 tensors, 0 values, 0 bytes"
}

@test "--format json is valid and complete" {
    run bash -c "'$INFO' --format json '$BATS_FILE_TMPDIR/sample.msgpack' | '$JSONCHECK' \
        .kind '.tensors#' '.tensors[0].name' '.tensors[0].dtype' '.tensors[0].shape' \
        '.tensors[0].meta.scale' '.tensors[0].meta.prompt' '.tensors[0].meta.seed' \
        '.tensors[1].meta#'"
    assert_success
    assert_output "$(printf '%s\n' stream 2 latent f32 '[1,4,2,4,4]' 0.18215 \
        'a red fox in snow' 42 0)"
}

@test "--stats: min, max, mean, std on known values" {
    run known '.tensors[0].name' '.tensors[0].stats.min' '.tensors[0].stats.max' \
        '.tensors[0].stats.mean' '.tensors[0].stats.std' '.tensors[0].stats.finite' \
        '.tensors[0].stats.nan' '.tensors[0].stats.inf'
    assert_success
    # std is the population one: sqrt(17.5 / 6)
    assert_output "$(printf '%s\n' x 1 6 3.5 1.707825127659933 6 0 0)"
}

@test "--stats: NaN and Inf are counted, not mixed into the statistics" {
    run known '.tensors[1].name' '.tensors[1].stats'
    assert_success
    assert_line --index 0 special
    assert_line --index 1 '{"min":1,"max":3,"mean":2,"std":1,"finite":2,"nan":1,"inf":2}'
    run "$INFO" --stats "$BATS_FILE_TMPDIR/known.msgpack"
    assert_line --index 0 --regexp '^NAME +DTYPE +SHAPE +MIN +MAX +MEAN +STD +NAN +INF +META$'
    assert_line --index 2 --regexp '^special +f32 +\[5\] +1 +3 +2 +1 +1 +2 *$'
}

@test "--stats: empty and 0-d tensors" {
    run known '.tensors[2].shape' '.tensors[2].stats.finite' '.tensors[2].stats.mean' \
        '.tensors[3].shape' '.tensors[3].stats.mean'
    assert_success
    assert_output "$(printf '%s\n' '[0,3]' 0 null '[]' 2.5)"
    run "$INFO" --stats "$BATS_FILE_TMPDIR/known.msgpack"
    assert_line --index 3 --regexp '^empty +f32 +\[0, 3\] +- +- +- +- +0 +0 *$'
}

@test "--stats: every dtype is widened exactly" {
    for i in 4 5 6 7 8 9 10; do
        run known ".tensors[$i].stats.min" ".tensors[$i].stats.max" ".tensors[$i].stats.mean" \
            ".tensors[$i].stats.std" ".tensors[$i].stats.finite"
        assert_success
        assert_output "$(printf '%s\n' 1 4 2.5 1.118033988749895 4)"
    done
    run known '.tensors[4].dtype' '.tensors[5].dtype' '.tensors[6].dtype' '.tensors[7].dtype' \
        '.tensors[8].dtype' '.tensors[9].dtype' '.tensors[10].dtype'
    assert_output "$(printf '%s\n' f32 f16 bf16 f64 i32 i64 u8)"
}

@test "--stats: a tensor longer than one chunk (0..9999)" {
    run known '.tensors[11].name' '.tensors[11].stats.mean' '.tensors[11].stats.std' \
        '.tensors[11].stats.max'
    assert_success
    assert_line --index 0 ramp
    near "${lines[1]}" 4999.5 1e-9
    near "${lines[2]}" 2886.751331514372 1e-9
    assert_line --index 3 9999
}

# ---- output file ----

@test "-o FILE writes the listing; a failed run leaves no file" {
    local d=$BATS_FILE_TMPDIR/out
    mkdir -p "$d"
    run "$INFO" -o "$d/list.txt" "$BATS_FILE_TMPDIR/sample.msgpack"
    assert_success
    assert_output ""
    assert_equal "$(cat "$d/list.txt")" "$("$INFO" "$BATS_FILE_TMPDIR/sample.msgpack")"
    fails_with 3 "$INFO" -o "$d/bad.txt" "$BATS_FILE_TMPDIR/bad-version.msgpack"
    [ ! -e "$d/bad.txt" ]
    assert_equal "$(ls "$d")" "list.txt"
}

@test "-o to a FIFO writes in place and keeps the FIFO" {
    local d=$BATS_FILE_TMPDIR/fifo
    mkdir -p "$d"
    mkfifo "$d/pipe"
    cat "$d/pipe" >"$d/got" &
    run "$INFO" -o "$d/pipe" "$BATS_FILE_TMPDIR/sample.msgpack"
    wait
    assert_success
    [ -p "$d/pipe" ]
    assert_equal "$(cat "$d/got")" "$("$INFO" "$BATS_FILE_TMPDIR/sample.msgpack")"
    assert_equal "$(ls "$d")" "$(printf '%s\n' got pipe)"
}

@test "a write error is an I/O error (exit 5)" {
    [ -w /dev/full ] || skip "no /dev/full"
    fails_with 5 "$INFO" -o /dev/full "$BATS_FILE_TMPDIR/sample.msgpack"
    run --separate-stderr bash -c "'$INFO' '$BATS_FILE_TMPDIR/sample.msgpack' >/dev/full"
    assert_equal "$status" 5
    fails_with 5 "$INFO" -o "$BATS_FILE_TMPDIR/no/such/dir/x.txt" "$BATS_FILE_TMPDIR/sample.msgpack"
}

# ---- malformed input: exit status and exactly one stderr line ----

@test "malformed streams are bad data (exit 3), naming the file" {
    local d=$BATS_FILE_TMPDIR
    for kind in version missing-key dtype size overflow negative-dim rank not-a-map; do
        fails_with 3 "$INFO" "$d/bad-$kind.msgpack"
        [[ $stderr == *"bad-$kind.msgpack"* ]] || { echo "$stderr"; false; }
        # the first tensor is valid: the error names the second
        [[ $stderr == *"#1"* || $stderr == *"#2"* ]] || { echo "$stderr"; false; }
    done
}

@test "truncated streams are bad data (exit 3)" {
    local s=$BATS_FILE_TMPDIR/sample.msgpack t=$BATS_FILE_TMPDIR/truncated.msgpack
    local size
    size=$(stat -c %s "$s")
    for cut in 1 5 50 $((size / 2)) $((size - 1)); do
        head -c "$cut" "$s" >"$t"
        fails_with 3 "$INFO" "$t"
        fails_with 3 "$INFO" --stats --format json - <"$t"
    done
}

@test "garbage is bad data (exit 3)" {
    local g=$BATS_FILE_TMPDIR/garbage
    printf 'this is not a tensor stream\n' >"$g"
    fails_with 3 "$INFO" "$g"
    # 2 KiB of fixed pseudo-random bytes
    : >"$g"
    for i in $(seq 64); do
        printf "$(printf '%s' "$i" | sha256sum | cut -c1-64 | sed 's/../\\x&/g')" >>"$g"
    done
    fails_with 3 "$INFO" "$g"
    fails_with 3 "$INFO" "$REPO/README.md"
}

@test "a missing file is an I/O error (exit 5)" {
    fails_with 5 "$INFO" "$BATS_FILE_TMPDIR/no-such-file.msgpack"
    [[ $stderr == *"no-such-file.msgpack"* ]]
    fails_with 5 "$INFO" "$BATS_FILE_TMPDIR/no-such-dir/"
}

@test "an unreadable file is an I/O error (exit 5)" {
    [ "$(id -u)" -ne 0 ] || skip "root reads any file"
    local f=$BATS_FILE_TMPDIR/unreadable.msgpack
    cp "$BATS_FILE_TMPDIR/sample.msgpack" "$f"
    chmod 000 "$f"
    fails_with 5 "$INFO" "$f"
}

@test "a folder without weights is bad data (exit 3)" {
    local d=$BATS_FILE_TMPDIR/empty-model
    mkdir -p "$d"
    echo '{"d_model": 8}' >"$d/config.json"
    fails_with 3 "$INFO" "$d"
    [[ $stderr == *"empty-model"* ]]
}

# ---- safetensors and model folders ----

@test "safetensors: malformed headers are bad data (exit 3)" {
    local f=$BATS_FILE_TMPDIR/bad.safetensors
    # header length 60 > file size: not taken for safetensors; still bad data
    { printf '\x3c\x00\x00\x00\x00\x00\x00\x00{}'; } >"$f"
    fails_with 3 "$INFO" "$f"
    # data_offsets beyond the data region
    local h='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}'
    { printf "\\x$(printf %02x ${#h})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$h";
      printf '12345678'; } >"$f"
    fails_with 3 "$INFO" "$f"
    [[ $stderr == *"bad.safetensors"* ]]
    # shape disagreeing with the offsets
    h='{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'
    { printf "\\x$(printf %02x ${#h})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$h";
      printf '12345678'; } >"$f"
    fails_with 3 "$INFO" "$f"
    # unknown dtype
    h='{"a":{"dtype":"F8","shape":[2],"data_offsets":[0,8]}}'
    { printf "\\x$(printf %02x ${#h})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$h";
      printf '12345678'; } >"$f"
    fails_with 3 "$INFO" "$f"
}

@test "every safetensors fixture lists at least one tensor, with --stats" {
    need_fixtures
    local n=0 f
    while IFS= read -r f; do
        run bash -c "'$INFO' --stats --format json '$f' | '$JSONCHECK' .kind '.tensors#'"
        [ "$status" -eq 0 ] || { echo "$f: $output"; false; }
        [ "${lines[0]}" = safetensors ] || { echo "$f: kind ${lines[0]}"; false; }
        [ "${lines[1]}" -ge 1 ] || { echo "$f: no tensors"; false; }
        run "$INFO" "$f"
        [ "$status" -eq 0 ] || { echo "$f: $output"; false; }
        n=$((n + 1))
    done < <(find "$FIXTURES" -name '*.safetensors' | sort)
    [ "$n" -ge 1 ]
    echo "# $n files" >&3
}

@test "model folders under the fixtures: config and weights" {
    need_fixtures
    local n=0 d
    while IFS= read -r d; do
        [ -e "$d/diffusion_pytorch_model.safetensors" ] || [ -e "$d/model.safetensors" ] ||
            compgen -G "$d/*.safetensors.index.json" >/dev/null || continue
        run bash -c "'$INFO' --format json '$d' | '$JSONCHECK' .kind .config '.tensors#'"
        [ "$status" -eq 0 ] || { echo "$d: $output"; false; }
        assert_line --index 0 model
        assert_line --index 1 "$d/config.json"
        [ "${lines[2]}" -ge 1 ]
        n=$((n + 1))
    done < <(find "$FIXTURES" -name config.json -exec dirname {} \; | sort)
    [ "$n" -ge 3 ]
    echo "# $n folders" >&3
}

@test "--stats agrees with the statistics stored with the VAE fixtures" {
    need_fixtures
    local s=$FIXTURES/vae/stats.json
    [ -f "$s" ] || skip "no vae/stats.json"
    # n_params: the value count of the fixture model
    run "$INFO" "$FIXTURES/vae/model"
    assert_success
    [[ ${lines[-1]} == *" $("$JSONCHECK" .n_params <"$s") values,"* ]]
    # std (there: torch's, with Bessel's correction) and absmax of outputs
    local case t n std absmax
    for case in image video tiled; do
        for t in decoded moments; do
            n=$("$JSONCHECK" "[\"$case.$t\"].shape" <"$s" | tr -d '[]' | tr , '\n' |
                awk '{ p = (NR == 1 ? $1 : p * $1) } END { print p }')
            std=$("$JSONCHECK" "[\"$case.$t\"].std" <"$s")
            absmax=$("$JSONCHECK" "[\"$case.$t\"].absmax" <"$s")
            run bash -c "'$INFO' --stats --format json '$FIXTURES/vae/$case/expected.safetensors' |
                '$JSONCHECK' '.tensors[name=$t].stats.std' '.tensors[name=$t].stats.min' \
                '.tensors[name=$t].stats.max' '.tensors[name=$t].stats.finite'"
            assert_success
            assert_line --index 3 "$n"
            near "$(awk -v s="${lines[0]}" -v n="$n" 'BEGIN { printf "%.9g", s * sqrt(n / (n - 1)) }')" \
                "$std" 1e-5
            near "$(awk -v a="${lines[1]}" -v b="${lines[2]}" \
                'BEGIN { a = a < 0 ? -a : a; b = b < 0 ? -b : b; print (a > b ? a : b) }')" \
                "$absmax" 1e-5
        done
    done
}

@test "a model folder lists the same tensors as its weights file" {
    need_fixtures
    local d=$FIXTURES/vae/model
    [ -d "$d" ] || skip "no vae/model fixture"
    diff <("$INFO" "$d" | sed '$d') \
        <("$INFO" "$d/diffusion_pytorch_model.safetensors" | sed '$d')
}

@test "a sharded model folder: tensors of every shard, in shard order" {
    local d=$BATS_FILE_TMPDIR/sharded
    run bash -c "'$INFO' --stats --format json '$d' | '$JSONCHECK' .kind .config '.tensors#' \
        '.tensors[0].name' '.tensors[1].name' '.tensors[1].dtype' '.tensors[1].stats.mean' \
        '.tensors[2].name' '.tensors[2].dtype' '.tensors[2].shape' '.tensors[2].stats.min'"
    assert_success
    assert_output "$(printf '%s\n' model "$d/config.json" 3 a b bf16 0.5 c i64 '[2]' -7)"
    run "$INFO" "$d"
    assert_success
    assert_line --index 4 --regexp "^3 tensors, 9 values, 38 bytes \(model .*sharded\), config .*sharded/config.json$"
}

@test "a safetensors file on stdin is rejected as a stream (exit 3)" {
    "$MKSTREAM" sharded "$BATS_FILE_TMPDIR/stdin-model"
    fails_with 3 "$INFO" <"$BATS_FILE_TMPDIR/stdin-model/model-00002-of-00002.safetensors"
}
