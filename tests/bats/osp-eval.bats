#!/usr/bin/env bats
# osp-eval end to end on inputs made from the eval fixture videos (PNG
# folders, lossless FFV1 files, u8 and f32 streams): the values of
# fixtures/eval/expected_metrics.safetensors through the JSON output, the
# pairs mode and the reference's batch_size quirk, the output formats,
# frame selection and preprocessing, and bad input (exit status and exactly
# one stderr line).

load helpers

EVAL=$BIN/osp-eval
MKEVAL=$TEST_BUILD/tests/tools/mkevalinput
FIX=$FIXTURES/eval
LPIPS=$FIX/lpips_alex_tiny.safetensors
PWC=$FIX/pwcnet_tiny.safetensors

setup_file() {
    [ -d "$FIXTURES/eval" ] || return 0
    local d=$BATS_FILE_TMPDIR v=$FIXTURES/eval/videos.safetensors b
    for b in 0 1 2; do
        "$MKEVAL" png "$v" real $b "$d/real$b"
        "$MKEVAL" png "$v" generated $b "$d/gen$b"
    done
    for b in 0 1; do
        "$MKEVAL" video "$v" real $b "$d/real$b.mkv"
        "$MKEVAL" video "$v" generated $b "$d/gen$b.mkv"
    done
    "$MKEVAL" stream "$v" real "$d/real.msgpack" u8
    "$MKEVAL" stream "$v" generated "$d/gen.msgpack" u8
    "$MKEVAL" stream "$v" generated "$d/gen-f32.msgpack" f32
    "$MKEVAL" png "$v" generated 0 "$d/gen0-corner" 40x50
    mkdir "$d/gen0-short"
    cp "$d/gen0/000.png" "$d/gen0/001.png" "$d/gen0-short/"
    "$MKEVAL" drop "$FIXTURES/eval/lpips_alex_tiny.safetensors" lin2.model.1.weight \
        "$d/lpips-no-lin2.safetensors"
    "$MKEVAL" reshape "$FIXTURES/eval/lpips_alex_tiny.safetensors" features.3.weight \
        "$d/lpips-flat.safetensors"
    "$MKEVAL" drop "$FIXTURES/eval/pwcnet_tiny.safetensors" netRefiner.netMain.12.bias \
        "$d/pwc-no-refiner.safetensors"
    printf '%s\t%s\n' "$d/real0" "$d/gen0" "$d/real1.mkv" "$d/gen1.mkv" "$d/real2" "$d/gen2" \
        >"$d/pairs.tsv"
    printf '# comment\n\n' >"$d/empty.tsv"
    printf '%s\t%s\n%s\n' "$d/real0" "$d/gen0" "$d/real1" >"$d/one-column.tsv"
    printf 'not a video\n' >"$d/garbage.mp4"
    "$MKSTREAM" sample "$d/no-video.msgpack"
    "$MKEVAL" flat "$d/zeros-256.png" 256x256 0 0
    "$MKEVAL" flat "$d/one-lsb-256.png" 256x256 0 1
    "$MKEVAL" flat "$d/two-lsb-256.png" 256x256 0 2
    "$MKEVAL" flat "$d/c51-16.png" 16x16 51 0
    "$MKEVAL" flat "$d/c153-16.png" 16x16 153 0
    "$MKEVAL" flat "$d/c51-10.png" 10x10 51 0
    "$MKEVAL" flat "$d/c153-10.png" 10x10 153 0
}

setup() {
    need_fixtures
    D=$BATS_FILE_TMPDIR
}

# The value at PATH of osp-eval's JSON output for the given arguments.
json() {
    local path=$1
    shift
    "$EVAL" --format json "$@" | "$JSONCHECK" "$path"
}

# ---- values (expected_metrics.safetensors) ----

EXPECTED=$FIXTURES/eval/expected_metrics.safetensors

# paths PREFIX N: PREFIX[0] .. PREFIX[N-1], one a line.
paths() {
    local i
    for ((i = 0; i < $2; i++)); do echo "$1[$i]"; done
}

# matches KEY FIRST PATH...: the numbers at the JSON paths of $output equal
# the fixture values KEY[FIRST], KEY[FIRST+1], ... (flat index) within the
# README's tolerance for KEY's metric: PSNR abs 1e-4 (the 100 sentinel
# exactly), SSIM abs 1e-7, LPIPS and FloLPIPS rel 1e-4 or abs 1e-6 below
# 1e-2. NaN (JSON null) must be NaN.
matches() {
    local key=$1 first=$2 got
    shift 2
    got=$(echo "$output" | "$JSONCHECK" "$@") || { echo "no $* in $output"; return 1; }
    paste <(echo "$got") <("$MKEVAL" values "$EXPECTED" "$key" | tail -n +$((first + 1)) |
        head -n $#) | awk -v key="$key" -v n=$# '
        function abs(v) { return v < 0 ? -v : v }
        {
            rows++
            if ($1 == "null" || $2 == "null") { if ($1 != $2) bad = bad " [" NR "] " $1 " vs " $2; next }
            d = abs($1 - $2)
            if (key ~ /^psnr/ || key ~ /^edge_psnr/) ok = d <= 1e-4 && ($2 != 100 || $1 == 100)
            else if (key ~ /ssim/) ok = d <= 1e-7
            else ok = abs($2) < 1e-2 ? d <= 1e-6 : d <= 1e-4 * abs($2)
            if (!ok) bad = bad " [" NR "] " $1 " vs " $2
        }
        END {
            if (rows != n) { print key ": " rows " values, expected " n; exit 1 }
            if (bad != "") { print key ":" bad; exit 1 }
        }'
}

# bats test_tags=cuda-quick
@test "--pairs: every per-video value equals expected_metrics (PNG folders, FFV1 files)" {
    run "$EVAL" --pairs "$D/pairs.tsv" --per-frame --format json --lpips-model "$LPIPS" \
        --flow-model "$PWC"
    assert_success
    local b key
    for b in 0 1 2; do
        matches psnr $((4 * b)) $(paths ".pairs[$b].metrics.psnr.per_frame" 4)
        for key in ssim ssim_skimage_gaussian; do
            matches $key $((4 * b)) $(paths ".pairs[$b].metrics.ssim.per_frame" 4)
        done
        for key in lpips lpips_f64; do
            matches $key $((4 * b)) $(paths ".pairs[$b].metrics.lpips.per_frame" 4)
        done
        for key in flolpips flolpips_f64; do
            matches $key $((3 * b)) $(paths ".pairs[$b].metrics.flolpips.per_frame" 3)
        done
    done
    # skimage agrees but for identical frames (inf there, the 100 sentinel here)
    for b in 0 1; do
        matches psnr_skimage $((4 * b)) $(paths ".pairs[$b].metrics.psnr.per_frame" 4)
    done
    assert_equal "$(echo "$output" | "$JSONCHECK" '.pairs[2].metrics.psnr.per_frame[0]')" 100
    assert_equal "$(echo "$output" | "$JSONCHECK" '.pairs[2].metrics.ssim.per_frame[0]')" 1
    assert_equal "$(echo "$output" | "$JSONCHECK" '.pairs[2].metrics.lpips.per_frame[0]')" 0
}

# bats test_tags=cuda-quick
@test "per-frame means and finals equal expected_metrics (pairs and a batch stream)" {
    local key input
    for input in pairs stream; do
        if [ $input = pairs ]; then
            run "$EVAL" --pairs "$D/pairs.tsv" --format json --lpips-model "$LPIPS" \
                --flow-model "$PWC"
        else
            run "$EVAL" --format json --lpips-model "$LPIPS" --flow-model "$PWC" \
                "$D/real.msgpack" "$D/gen.msgpack"
        fi
        assert_success
        assert_equal "$(echo "$output" | "$JSONCHECK" .videos)" 3
        for key in psnr ssim lpips; do
            matches ${key}_frame_mean 0 $(paths ".metrics.$key.per_frame" 4)
            matches ${key}_final 0 ".metrics.$key.mean"
        done
        matches flolpips_frame_mean 0 $(paths .metrics.flolpips.per_frame 3)
        # the identical video's flows coincide: 0/0, as in the reference
        matches flolpips_final 0 .metrics.flolpips.mean
    done
}

@test "--reference-batch 2 reproduces the reference's batch_size=2 finals" {
    local key
    run "$EVAL" --pairs "$D/pairs.tsv" --format json --reference-batch 2 --lpips-model "$LPIPS"
    assert_success
    assert_equal "$(echo "$output" | "$JSONCHECK" .reference_batch)" 2
    for key in psnr ssim lpips; do
        matches ${key}_final_bs2 0 ".metrics.$key.mean"
    done
    run "$EVAL" --format json --reference-batch 2 --lpips-model "$LPIPS" \
        "$D/real.msgpack" "$D/gen.msgpack"
    assert_success
    for key in psnr ssim lpips; do
        matches ${key}_final_bs2 0 ".metrics.$key.mean"
    done
}

# bats test_tags=cuda-quick
@test "FloLPIPS over the two non-identical videos equals flolpips_final_nonidentical" {
    head -n 2 "$D/pairs.tsv" >"$D/two.tsv"
    run "$EVAL" --pairs "$D/two.tsv" --format json --metrics flolpips --lpips-model "$LPIPS" \
        --flow-model "$PWC"
    assert_success
    matches flolpips_final_nonidentical 0 .metrics.flolpips.mean
}

@test "the edge cases: PSNR's 100 sentinel, SSIM of constants and of 10x10 frames" {
    run "$EVAL" --format json --metrics psnr "$D/zeros-256.png" "$D/one-lsb-256.png"
    assert_success
    matches edge_psnr_one_lsb_256 0 '.metrics.psnr.per_frame[0]'
    run "$EVAL" --format json --metrics psnr "$D/zeros-256.png" "$D/two-lsb-256.png"
    matches edge_psnr_two_lsb_256 0 '.metrics.psnr.per_frame[0]'
    run "$EVAL" --format json --metrics ssim "$D/c51-16.png" "$D/c153-16.png"
    matches edge_ssim_const_51_153 0 '.metrics.ssim.per_frame[0]'
    run "$EVAL" --format json --metrics ssim "$D/c51-10.png" "$D/c153-10.png"
    assert_success
    matches edge_ssim_10x10 0 '.metrics.ssim.per_frame[0]'
    matches edge_ssim_10x10 0 .metrics.ssim.mean
}

@test "video files, PNG folders and u8 streams give the same values" {
    local png mkv stream
    png=$(json .metrics.psnr.mean "$D/real1" "$D/gen1")
    mkv=$(json .metrics.psnr.mean "$D/real1.mkv" "$D/gen1.mkv")
    assert_equal "$mkv" "$png"
    stream=$(json '.metrics.psnr.per_frame[1]' "$D/real.msgpack" "$D/gen.msgpack")
    near "$stream" 53.14223945750217 1e-4
    # f32 [-1, 1] streams: (v + 1) / 2, not re-quantised
    stream=$(json '.metrics.ssim.per_frame[1]' "$D/real.msgpack" "$D/gen-f32.msgpack")
    near "$stream" 0.9628914945543535 1e-6
    # a stream from stdin
    run bash -c "cat '$D/gen.msgpack' | '$EVAL' --format json '$D/real.msgpack' - | '$JSONCHECK' .videos"
    assert_success
    assert_output 3
}

# ---- pairs ----

@test "--pairs: one record per pair, the overall mean over all videos" {
    run "$EVAL" --pairs "$D/pairs.tsv" --format json --lpips-model "$LPIPS"
    assert_success
    assert_equal "$(echo "$output" | "$JSONCHECK" '.pairs#')" 3
    assert_equal "$(echo "$output" | "$JSONCHECK" '.pairs[1].b')" "$D/gen1.mkv"
    near "$(echo "$output" | "$JSONCHECK" '.pairs[0].metrics.psnr.mean')" 36.10647586 1e-4
    near "$(echo "$output" | "$JSONCHECK" .metrics.psnr.mean)" 53.13072670433202 1e-4
    near "$(echo "$output" | "$JSONCHECK" .metrics.lpips.mean)" 0.03101182181853801 3e-6
    assert_equal "$(echo "$output" | "$JSONCHECK" .reference_batch)" null
    run json .metrics.ssim.mean --pairs "$D/pairs.tsv" --reference-batch 2
    near "$output" 0.9721459402280563 1e-7
}

@test "--pairs from stdin, CSV and table output" {
    run bash -c "'$EVAL' --pairs - --format csv < '$D/pairs.tsv'"
    assert_success
    assert_equal "${#lines[@]}" 5
    assert_line --index 0 "pair,frames,psnr,ssim,a,b"
    assert_line --index 3 --regexp '^2,4,(100|1e\+02),1,'  # the PSNR sentinel
    assert_line --index 4 --regexp '^all,4,53\.13[0-9]*,0\.96[0-9]*,,$'
    run "$EVAL" --pairs "$D/pairs.tsv"
    assert_success
    assert_line --index 0 --regexp '^pair +frames +psnr +ssim +a  b$'
    assert_line --index 4 --regexp '^all +4 +53\.1307 +0\.962861$'
}

@test "--pairs: 2000 pairs run in the memory of 10 (results stream out as they finish)" {
    local peakrss=$TEST_BUILD/tests/tools/peakrss n
    # under check-asan, freed blocks would sit in ASan's quarantine
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0
    "$MKEVAL" flat "$D/flat-a.png" 32x32 10 0
    "$MKEVAL" flat "$D/flat-b.png" 32x32 10 5
    for n in 10 2000; do
        yes "$D/flat-a.png	$D/flat-b.png" | head -n $n >"$D/many.tsv"
        run "$peakrss" "$D/rss-$n" "$EVAL" --pairs "$D/many.tsv" --format csv
        assert_success
        assert_equal "${#lines[@]}" $((n + 2))
    done
    # the list itself takes ~100 bytes a line; a frame kept per pair, 12 KiB
    echo "peak RSS: $(cat "$D/rss-10") KiB for 10 pairs, $(cat "$D/rss-2000") KiB for 2000"
    [ $(($(cat "$D/rss-2000") - $(cat "$D/rss-10"))) -lt 2048 ]
}

@test "--pairs: a progress bar on a terminal only, none with -q or into a pipe" {
    command -v script >/dev/null || skip "script(1) not installed"
    run script -qec "'$EVAL' --pairs '$D/pairs.tsv' -o '$D/tty.out'" /dev/null
    assert_success
    assert_output --partial "osp-eval ["
    assert_output --partial "3/3"
    run script -qec "'$EVAL' -q --pairs '$D/pairs.tsv' -o '$D/tty.out'" /dev/null
    assert_success
    assert_output ""
    run --separate-stderr "$EVAL" --pairs "$D/pairs.tsv"
    assert_success
    assert_equal "$stderr" ""
}

# ---- formats, per-frame, frame selection, preprocessing ----

@test "--per-frame: CSV rows per frame (none for FloLPIPS's last), table with a mean row" {
    run "$EVAL" --per-frame --format csv --lpips-model "$LPIPS" --flow-model "$PWC" \
        "$D/real1" "$D/gen1"
    assert_success
    assert_equal "${#lines[@]}" 5
    assert_line --index 0 "frame,psnr,ssim,lpips,flolpips"
    assert_line --index 4 --regexp '^3,23\.29[0-9]*,0\.895[0-9]*,0\.069[0-9]*,$'
    run "$EVAL" --per-frame "$D/real0" "$D/gen0"
    assert_success
    assert_line --index 0 --regexp '^frame +psnr +ssim$'
    assert_line --index 5 --regexp '^mean +36\.1065 +0\.993476$'
    assert_line --index 6 "(4 frames, 1 video)"
    run "$EVAL" --format csv "$D/real0" "$D/gen0"
    assert_output --regexp $'^frames,psnr,ssim\n4,36\.1064[0-9]*,0\.99347[0-9]*$'
}

@test "--frames trims both sides; a frame-count mismatch is an error otherwise" {
    fails_with 3 "$EVAL" "$D/real0" "$D/gen0-short"
    assert_equal "$stderr" "osp-eval: error: $D/real0 has 4 frames, $D/gen0-short has 2 (--frames N compares the first N)"
    run json .frames --frames 2 "$D/real0" "$D/gen0-short"
    assert_success
    assert_output 2
    # the reference's rule: 3 of 4 frames at rate 1 are frames 0, 1, 2
    run json '.metrics.psnr.per_frame[2]' --frames 3 "$D/real0" "$D/gen0"
    near "$output" 36.06323550828607 1e-4
    fails_with 3 "$EVAL" --frames 3 --sample-rate 4 "$D/real0" "$D/gen0-short"
}

@test "a frame-size mismatch is an error unless --resolution and --crop align both" {
    fails_with 3 "$EVAL" "$D/real0" "$D/gen0-corner"
    assert_equal "$stderr" "osp-eval: error: $D/real0 is 64x48, $D/gen0-corner is 50x40 (--resolution N --crop HxW brings both to one size)"
    run json .frames --resolution 32 --crop 32 "$D/real0" "$D/gen0-corner"
    assert_success
    run json .metrics.ssim.mean --crop 40x50 "$D/real0" "$D/real0"
    assert_output 1
    fails_with 3 "$EVAL" --crop 60x60 "$D/real0" "$D/gen0"
    fails_with 3 "$EVAL" --lpips-model "$LPIPS" --resolution 24 "$D/real0" "$D/gen0"
}

@test "-o writes the file atomically; a failed run leaves none" {
    run "$EVAL" -o "$D/out.json" --format json "$D/real0" "$D/gen0"
    assert_success
    assert_output ""
    "$JSONCHECK" .frames <"$D/out.json"
    fails_with 3 "$EVAL" -o "$D/failed.json" "$D/real0" "$D/gen0-short"
    [ ! -e "$D/failed.json" ]
    [ -z "$(ls "$D" | grep '\.tmp\.')" ] || { ls "$D"; false; }
}

@test "the examples: eval-vae.sh (encode | decode | eval) and plot-metrics.sh" {
    [ -d "$FIXTURES/vae/model" ] || skip "no VAE fixture model"
    cd "$REPO"
    run env OSP_BIN="$BIN" VAE="$FIXTURES/vae/model" sh examples/eval-vae.sh
    assert_success
    assert_line --regexp '^mean +[0-9.]+ +[0-9.]+$'
    assert_line --partial '{"frames": 5, "videos": 1, "metrics": {"psnr": {"mean": '
    run env OSP_BIN="$BIN" sh examples/plot-metrics.sh "$D/real1" "$D/gen1" "$D/plot.png"
    assert_success
    if command -v gnuplot >/dev/null; then
        assert_output "wrote $D/plot.png"
        [ -s "$D/plot.png" ]
    else
        assert_line --index 1 "frame,psnr,ssim"
        assert_line --regexp '^3,23\.29[0-9]*,0\.895[0-9]*$'
    fi
}

# ---- bad input ----

@test "unreadable and malformed inputs: exit 5 / 3 with one line" {
    fails_with 5 "$EVAL" "$D/real0" "$D/no-such.mp4"
    fails_with 3 "$EVAL" "$D/real0" "$D/garbage.mp4"
    fails_with 3 "$EVAL" "$D/real0" "$D/no-video.msgpack"
    assert_equal "$stderr" "osp-eval: error: $D/no-video.msgpack: the stream holds no \`video\` tensor"
    fails_with 3 "$EVAL" "$D/real.msgpack" "$D/gen0"
}

@test "weights: missing file, missing tensor, mis-shaped tensor" {
    fails_with 5 "$EVAL" --lpips-model "$D/none.safetensors" "$D/real0" "$D/gen0"
    fails_with 3 "$EVAL" --lpips-model "$D/lpips-no-lin2.safetensors" "$D/real0" "$D/gen0"
    assert_output ""
    [[ $stderr == *"no tensor 'lin2.model.1.weight'"* ]]
    fails_with 3 "$EVAL" --lpips-model "$D/lpips-flat.safetensors" "$D/real0" "$D/gen0"
    [[ $stderr == *"features.3.weight"* ]]
    fails_with 3 "$EVAL" --lpips-model "$LPIPS" --flow-model "$D/pwc-no-refiner.safetensors" \
        "$D/real0" "$D/gen0"
    [[ $stderr == *"netRefiner.netMain.12.bias"* ]]
    fails_with 3 "$EVAL" --lpips-model "$PWC" "$D/real0" "$D/gen0"
}

@test "pairs lists: missing, empty, a one-column line, a bad pair" {
    fails_with 5 "$EVAL" --pairs "$D/none.tsv"
    fails_with 3 "$EVAL" --pairs "$D/empty.tsv"
    assert_equal "$stderr" "osp-eval: error: $D/empty.tsv: no pairs"
    fails_with 3 "$EVAL" --pairs "$D/one-column.tsv"
    assert_equal "$stderr" "osp-eval: error: $D/one-column.tsv:2: expected two columns 'A<TAB>B'"
    printf '%s\t%s\n' "$D/real0" "$D/gen0-short" >"$D/bad-pair.tsv"
    run --separate-stderr "$EVAL" --pairs "$D/bad-pair.tsv" -o "$D/bad-pair.out"
    assert_equal "$status" 3
    [[ $stderr == "osp-eval: error: pair 0: "* ]]
    [ ! -e "$D/bad-pair.out" ]
}

@test "--keep-going: bad pairs are reported and left out, the rest is scored, exit 3" {
    printf '%s\t%s\n' "$D/real0" "$D/gen0" "$D/real0" "$D/gen0-short" "$D/real0" "$D/none" \
        "$D/real1" "$D/gen1" >"$D/some-bad.tsv"
    run --separate-stderr "$EVAL" --keep-going --pairs "$D/some-bad.tsv" --format json \
        -o "$D/some-bad.json"
    assert_equal "$status" 3
    assert_equal "$(printf '%s\n' "$stderr" | wc -l)" 3
    [[ $stderr == *"warning: pair 1: $D/real0 has 4 frames, $D/gen0-short has 2"* ]]
    [[ $stderr == *"warning: pair 2: $D/none: cannot open"* ]]
    [[ $stderr == *"error: 2 of 4 pairs left out (see the warnings above)" ]]
    output=$(cat "$D/some-bad.json")
    assert_equal "$(echo "$output" | "$JSONCHECK" '.pairs#' .videos .failed)" $'4\n2\n2'
    [[ $(echo "$output" | "$JSONCHECK" '.pairs[2].error') == "$D/none: cannot open"* ]]
    # the totals are those of pairs 0 and 3 alone
    run "$EVAL" --format json --pairs <(head -n 1 "$D/some-bad.tsv"; tail -n 1 "$D/some-bad.tsv")
    assert_equal "$(echo "$output" | "$JSONCHECK" .metrics.ssim.mean)" \
        "$(cat "$D/some-bad.json" | "$JSONCHECK" .metrics.ssim.mean)"
    run --separate-stderr "$EVAL" --keep-going --pairs "$D/some-bad.tsv" --format csv
    assert_equal "$status" 3
    assert_line --index 2 "1,,,,$D/real0,$D/gen0-short"
    # without it the first bad pair stops the run
    fails_with 3 "$EVAL" --pairs "$D/some-bad.tsv" -o "$D/stopped.json"
    [ ! -e "$D/stopped.json" ]
}

@test "usage errors: exit 2 and one line" {
    fails_with 2 "$EVAL" "$D/real0"
    fails_with 2 "$EVAL" --metrics psnr,vmaf "$D/real0" "$D/gen0"
    assert_equal "$stderr" "osp-eval: --metrics: unknown metric 'vmaf' (psnr, ssim, lpips, flolpips)"
    fails_with 2 "$EVAL" --metrics lpips "$D/real0" "$D/gen0"
    fails_with 2 "$EVAL" --metrics flolpips --lpips-model "$LPIPS" "$D/real0" "$D/gen0"
    fails_with 2 "$EVAL" --crop 0x4 "$D/real0" "$D/gen0"
    fails_with 2 "$EVAL" --format xml "$D/real0" "$D/gen0"
    fails_with 2 "$EVAL" --pairs "$D/pairs.tsv" "$D/real0"
    fails_with 2 "$EVAL" - -
    fails_with 2 "$EVAL" --frames 0 "$D/real0" "$D/gen0"
}
