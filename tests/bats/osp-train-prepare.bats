#!/usr/bin/env bats
# osp-train prepare: videos made here (tests/tools/mkvideo) and a caption
# file in the reference's format -> features that equal what osp-encode
# --moments and osp-textenc --clean training give for the same frames and
# caption, skip bad records, resume, and feed osp-train dit.

load helpers

MKVIDEO=$TEST_BUILD/tests/tools/mkvideo
MKT5=$TEST_BUILD/tests/tools/mkt5
MKLATTE=$TEST_BUILD/tests/tools/mklatte
TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp

setup_file() {
    export SHARED=$BATS_FILE_TMPDIR
    "$MKVIDEO" "$SHARED/a.mp4" 24 48 40
    "$MKVIDEO" "$SHARED/b.mkv" 17 32 32 ffv1
    "$MKVIDEO" "$SHARED/c.mkv" 20 64 48 ffv1
    "$MKT5" "$SHARED/t5" spiece="$REPO/examples/data/spiece.model" >/dev/null
}

setup() {
    TMP=$(mktemp -d)
    VAE=$FIXTURES/vae/model
    T5=$SHARED/t5
}

teardown() {
    rm -rf "$TMP"
}

# captions FILE RECORD...: a caption file, each RECORD "path|caption"
captions() {
    local file=$1 sep='' rec
    shift
    {
        echo '['
        for rec in "$@"; do
            printf '%s{"path": "%s", "cap": ["%s", "unused"], "other": 1}\n' "$sep" "${rec%%|*}" \
                "${rec#*|}"
            sep=','
        done
        echo ']'
    } >"$file"
}

prepare() {
    "$BIN/osp-train" prepare -q --vae "$VAE" --t5 "$T5" --max-length 16 "$@"
}

meta() { # meta FILE KEY: the moments tensor's meta value
    "$BIN/osp-info" --format json "$1" | "$TEST_BUILD/tests/tools/jsoncheck" \
        ".tensors[name=moments].meta.$2"
}

@test "prepare: moments and embedding equal osp-encode and osp-textenc on the same frames" {
    need_fixtures
    captions "$TMP/caps.json" "$SHARED/b.mkv|Moving shapes on a grey background."
    run prepare --captions "$TMP/caps.json" --data "$TMP/feats" --frames 9 --size 32 \
        --image-num 2 --no-flip --seed 3
    assert_success
    local f=$TMP/feats/clip-000000.msgpack w
    run "$BIN/osp-info" "$f"
    assert_output --partial "moments    f32    [1, 8, 5, 4, 4]"
    assert_output --partial "embedding  f32    [1, 16, 32]"
    assert_output --partial "mask       u8     [1, 16]"
    [ "$(meta "$f" image_frames)" = 2 ]
    [ "$(meta "$f" flipped)" = false ]
    w=$(meta "$f" window_start)
    # 17 frames, F = 9: the window starts in [0, 17 - 9 - 1]
    [ "$w" -ge 0 ] && [ "$w" -le 7 ]
    # 32x32 frames at --size 32: the transform is x/255*2-1, as osp-encode's
    "$BIN/osp-encode" -m "$VAE" --moments --start "$w" --frames 9 "$SHARED/b.mkv" -o "$TMP/v.msgpack"
    "$TENSORCMP" "$f" moments@2:0:3 "$TMP/v.msgpack" moments 1e-6
    # image frames linspace(0, 8, 2) = 0 and 8 of the window, each encoded alone
    # (1e-5: prepare encodes the two as one batch, whose GEMM shapes sum in
    # another order than a single frame's, by how much depends on the BLAS)
    "$BIN/osp-encode" -m "$VAE" --moments --start "$w" --frames 1 "$SHARED/b.mkv" -o "$TMP/i0.msgpack"
    "$TENSORCMP" "$f" moments@2:3:4 "$TMP/i0.msgpack" moments 1e-5
    "$BIN/osp-encode" -m "$VAE" --moments --start $((w + 8)) --frames 1 "$SHARED/b.mkv" \
        -o "$TMP/i1.msgpack"
    "$TENSORCMP" "$f" moments@2:4:5 "$TMP/i1.msgpack" moments 1e-5
    # cap[0] through the training caption cleaning
    "$BIN/osp-textenc" -m "$T5" --clean training --max-length 16 \
        "Moving shapes on a grey background." -o "$TMP/e.msgpack"
    "$TENSORCMP" "$f" embedding "$TMP/e.msgpack" embedding 1e-6
    "$TENSORCMP" "$f" mask "$TMP/e.msgpack" mask 0
}

@test "prepare: bad records are reported and skipped; a rerun keeps what is there; seeds repeat" {
    need_fixtures
    captions "$TMP/caps.json" "$SHARED/a.mp4|A red ball." "$TMP/missing.mp4|Nothing." \
        "$SHARED/b.mkv|Shapes."
    run --separate-stderr "$BIN/osp-train" prepare --vae "$VAE" --t5 "$T5" --max-length 16 \
        --captions "$TMP/caps.json" --data "$TMP/f1" --frames 9 --size 32 --seed 7
    assert_success
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 2 ] # the skip and the summary
    [[ $stderr == *"record 1 ("*"missing.mp4): "*"; skipped"* ]]
    [[ $stderr == *"3 records: 2 prepared, 0 already there, 1 skipped"* ]]
    [ -f "$TMP/f1/clip-000000.msgpack" ] && [ ! -e "$TMP/f1/clip-000001.msgpack" ] &&
        [ -f "$TMP/f1/clip-000002.msgpack" ]
    [ "$(ls "$TMP/f1" | wc -l)" -eq 2 ] # no temporary files left
    # the same seed gives the same bytes; a rerun leaves finished records alone
    prepare --captions "$TMP/caps.json" --data "$TMP/f2" --frames 9 --size 32 --seed 7 2>/dev/null
    cmp "$TMP/f1/clip-000000.msgpack" "$TMP/f2/clip-000000.msgpack"
    cmp "$TMP/f1/clip-000002.msgpack" "$TMP/f2/clip-000002.msgpack"
    touch -d '2001-01-01' "$TMP/f1/clip-000000.msgpack"
    run "$BIN/osp-train" prepare --vae "$VAE" --t5 "$T5" --max-length 16 \
        --captions "$TMP/caps.json" --data "$TMP/f1" --frames 9 --size 32 --seed 7
    assert_success
    assert_output --partial "3 records: 0 prepared, 2 already there, 1 skipped"
    [ "$(stat -c %Y "$TMP/f1/clip-000000.msgpack")" = "$(date -d '2001-01-01' +%s)" ]
}

@test "prepare feeds osp-train dit (17 frames + 2 images at 64x64)" {
    need_fixtures
    "$MKLATTE" "$TMP/latte" 32
    captions "$TMP/caps.json" "$SHARED/c.mkv|A square moves right." "$SHARED/a.mp4|A ball."
    prepare --captions "$TMP/caps.json" --data "$TMP/feats" --frames 17 --size 64 --image-num 2
    run "$BIN/osp-info" "$TMP/feats/clip-000000.msgpack"
    assert_output --partial "[1, 8, 7, 8, 8]"
    run "$BIN/osp-train" dit -q --threads 1 -m "$TMP/latte" --data "$TMP/feats" --run "$TMP/run" \
        --max-steps 2 --batch 2
    assert_success
    [ "$(printf '%s\n' "$output" | grep -c '"step"')" -eq 2 ]
    [ -d "$TMP/run/checkpoint-2" ]
}

@test "prepare: bad caption files and options fail with one line and the documented code" {
    need_fixtures
    printf '[{"path": "%s", "cap": "not an array"}]\n' "$SHARED/b.mkv" >"$TMP/wrong.json"
    fails_with 3 "$BIN/osp-train" prepare --captions "$TMP/wrong.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f"
    [[ $stderr == *"record 0: \`cap\` must be an array of strings"* ]]
    printf '[{"cap": ["x"]}]\n' >"$TMP/nopath.json"
    fails_with 3 "$BIN/osp-train" prepare --captions "$TMP/nopath.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f"
    printf '{"path": "x"}\n' >"$TMP/object.json"
    fails_with 3 "$BIN/osp-train" prepare --captions "$TMP/object.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f"
    printf '[{"path": ' >"$TMP/broken.json"
    fails_with 3 "$BIN/osp-train" prepare --captions "$TMP/broken.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f"
    fails_with 5 "$BIN/osp-train" prepare --captions "$TMP/none.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f"
    captions "$TMP/caps.json" "$TMP/missing.mp4|x"
    fails_with 3 "$BIN/osp-train" prepare -q --captions "$TMP/caps.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f"
    captions "$TMP/caps.json" "$SHARED/b.mkv|x"
    fails_with 2 "$BIN/osp-train" prepare --captions "$TMP/caps.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f" --frames 10
    fails_with 2 "$BIN/osp-train" prepare --captions "$TMP/caps.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f" --size 36
    fails_with 2 "$BIN/osp-train" prepare --captions "$TMP/caps.json" --vae "$VAE" --t5 "$T5" \
        --data "$TMP/f" --frames 5 --image-num 6
    fails_with 2 "$BIN/osp-train" prepare --captions "$TMP/caps.json" --vae "$VAE" --data "$TMP/f"
    [ ! -e "$TMP/f" ] || [ -z "$(ls -A "$TMP/f")" ]
}

@test "examples/cron from raw videos: each stage prepares its features, then trains" {
    need_fixtures
    local d=$TMP/cascade i
    mkdir -p "$d"
    "$MKLATTE" "$d/latte" 32
    # 17x64 -> 33x64 (temporal table interpolated) -> 33x128 (2-D table extended)
    sed 's/"video_length": 5/"video_length": 9/' "$d/latte/config.json" >"$d/s2.json"
    sed 's/"sample_size": \[8, 8\]/"sample_size": [16, 16]/' "$d/s2.json" >"$d/s3.json"
    "$MKVIDEO" "$d/v1.mkv" 36 128 128 ffv1
    "$MKVIDEO" "$d/v2.mkv" 40 160 128 ffv1
    captions "$d/caps.json" "$d/v1.mkv|A square moves." "$d/v2.mkv|Two squares."
    cat >"$d/conf" <<CONF
RUNS=$d/runs
INIT=$d/latte
TIME_BUDGET=0
BATCH=2
EXTRA="-q --threads 1 --lr 1e-3"
CAPTIONS=$d/caps.json
VAE=$VAE
T5=$T5
STAGE1_CONFIG=$d/latte/config.json STAGE1_DATA=$d/f1 STAGE1_STEPS=1
STAGE1_FRAMES=17 STAGE1_SIZE=64 STAGE1_IMAGES=2
STAGE2_CONFIG=$d/s2.json STAGE2_DATA=$d/f2 STAGE2_STEPS=1 STAGE2_FRAMES=33 STAGE2_SIZE=64
STAGE3_CONFIG=$d/s3.json STAGE3_DATA=$d/f3 STAGE3_STEPS=1 STAGE3_FRAMES=33 STAGE3_SIZE=128
STAGE3_PREPARE="--max-length 16"
CONF
    # --max-length is 300 in stages 1-2: the Latte takes any text length
    for i in 1 2 3 4; do
        run env OSP_BIN="$BIN" "$REPO/examples/cron/stages.sh" "$d/conf"
        assert_success
    done
    assert_output --partial "all stages are done: $d/runs/stage3/checkpoint-1/model"
    for n in 1 2 3; do
        [ -f "$d/f$n/.prepared" ] && [ "$(ls "$d/f$n" | wc -l)" -eq 2 ]
        [ "$(wc -l <"$d/runs/stage$n.jsonl")" -eq 1 ]
    done
    run "$BIN/osp-info" "$d/f1/clip-000000.msgpack"
    assert_output --partial "[1, 8, 7, 8, 8]"
    run "$BIN/osp-info" "$d/f3/clip-000001.msgpack"
    assert_output --partial "[1, 8, 9, 16, 16]"
    # a preparation holding the lock ends the slice at once, successfully
    rm "$d/f3/.prepared" && rm -r "$d/runs/stage3"
    flock "$d/f3.lock" sleep 30 >/dev/null 2>&1 3>&- &
    local holder=$!
    sleep 0.3
    run env OSP_BIN="$BIN" "$REPO/examples/cron/stages.sh" "$d/conf"
    kill "$holder"
    assert_success
    [ ! -d "$d/runs/stage3" ]
}
