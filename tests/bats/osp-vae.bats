#!/usr/bin/env bats
# osp-encode and osp-decode end to end, against fixtures/vae: the numbers
# (through streams), the file outputs, the pipes, and the failure modes.

load helpers

TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp

setup() {
    need_fixtures
    VAE=$FIXTURES/vae/model
    TMP=$(mktemp -d)
    "$MKSTREAM" convert "$FIXTURES/vae/video/input.safetensors" "$TMP/video.msgpack" video
}

teardown() {
    rm -rf "$TMP"
}

# bats test_tags=cuda-quick
@test "encode --mode mean and --moments match the fixture" {
    run "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/video.msgpack" -o "$TMP/mean.msgpack"
    assert_success
    run "$TENSORCMP" "$TMP/mean.msgpack" latent "$FIXTURES/vae/video/expected.safetensors" mean 1e-4 0.18215
    assert_success
    "$BIN/osp-encode" -m "$VAE" --moments < "$TMP/video.msgpack" > "$TMP/moments.msgpack"
    run "$TENSORCMP" "$TMP/moments.msgpack" moments "$FIXTURES/vae/video/expected.safetensors" moments 1e-4
    assert_success
}

# bats test_tags=cuda-quick
@test "decode of the mean latent matches the fixture's decoded frames" {
    "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/video.msgpack" |
        "$BIN/osp-decode" -m "$VAE" > "$TMP/decoded.msgpack"
    run "$TENSORCMP" "$TMP/decoded.msgpack" video "$FIXTURES/vae/video/expected.safetensors" decoded 2e-4
    assert_success
}

# bats test_tags=cuda-quick
@test "tiled encode matches the tiled fixture" {
    "$MKSTREAM" convert "$FIXTURES/vae/tiled/input.safetensors" "$TMP/tiled.msgpack" video
    "$BIN/osp-encode" -m "$VAE" --moments --tile-size 32 --tile-overlap 0.25 "$TMP/tiled.msgpack" > "$TMP/m.msgpack"
    run "$TENSORCMP" "$TMP/m.msgpack" moments "$FIXTURES/vae/tiled/expected.safetensors" moments 1e-4
    assert_success
    "$BIN/osp-encode" -m "$VAE" --moments --no-tile "$TMP/tiled.msgpack" > "$TMP/u.msgpack"
    run "$TENSORCMP" "$TMP/u.msgpack" moments "$FIXTURES/vae/tiled/expected.safetensors" moments_untiled 1e-4
    assert_success
}

@test "tiled decode, the image batch and the float16 wide model match through the tools" {
    "$MKSTREAM" convert "$FIXTURES/vae/tiled/input.safetensors" "$TMP/tiled.msgpack" video
    "$BIN/osp-encode" -m "$VAE" --mode mean --tile-size 32 "$TMP/tiled.msgpack" |
        "$BIN/osp-decode" -m "$VAE" --tile-size 32 > "$TMP/td.msgpack"
    run "$TENSORCMP" "$TMP/td.msgpack" video "$FIXTURES/vae/tiled/expected.safetensors" decoded 2e-4
    assert_success
    for case in image wide/video wide/image; do
        model=$VAE
        [[ $case != wide/* ]] || model=$FIXTURES/vae/wide/model
        "$MKSTREAM" convert "$FIXTURES/vae/$case/input.safetensors" "$TMP/in.msgpack" video
        "$BIN/osp-encode" -m "$model" --moments "$TMP/in.msgpack" > "$TMP/m.msgpack"
        run "$TENSORCMP" "$TMP/m.msgpack" moments "$FIXTURES/vae/$case/expected.safetensors" moments 1e-4
        assert_success
        "$BIN/osp-encode" -m "$model" --mode mean "$TMP/in.msgpack" |
            "$BIN/osp-decode" -m "$model" > "$TMP/d.msgpack"
        run "$TENSORCMP" "$TMP/d.msgpack" video "$FIXTURES/vae/$case/expected.safetensors" decoded 2e-4
        assert_success
    done
}

@test "sampling is deterministic per seed and recorded in meta" {
    "$BIN/osp-encode" -m "$VAE" --seed 7 "$TMP/video.msgpack" > "$TMP/a.msgpack"
    "$BIN/osp-encode" -m "$VAE" --seed 7 "$TMP/video.msgpack" > "$TMP/b.msgpack"
    "$BIN/osp-encode" -m "$VAE" --seed 8 "$TMP/video.msgpack" > "$TMP/c.msgpack"
    cmp "$TMP/a.msgpack" "$TMP/b.msgpack"
    ! cmp -s "$TMP/a.msgpack" "$TMP/c.msgpack"
    run "$BIN/osp-info" --format json "$TMP/a.msgpack"
    assert_success
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.seed')" = 7 ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.scale')" = 0.18215 ]
}

@test "video files, PNG frames and PNG folders round-trip through the tools" {
    "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/video.msgpack" > "$TMP/lat.msgpack"
    run "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/clip.mp4"
    assert_success
    [ -s "$TMP/clip.mp4" ]
    run "$BIN/osp-encode" -m "$VAE" "$TMP/clip.mp4" -o "$TMP/from-mp4.msgpack"
    assert_success
    run "$BIN/osp-info" --format json "$TMP/from-mp4.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].shape')" = "[1,4,3,4,4]" ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.source_frames')" = 9 ]

    mkdir "$TMP/frames"
    run "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/frames/f-%d.png"
    assert_success
    [ "$(ls "$TMP/frames" | wc -l)" = 9 ]
    run "$BIN/osp-encode" -m "$VAE" "$TMP/frames" --frames 5 -o "$TMP/from-png.msgpack"
    assert_success
    run "$BIN/osp-info" --format json "$TMP/from-png.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].shape')" = "[1,4,2,4,4]" ]
    run "$BIN/osp-encode" -m "$VAE" "$TMP/frames/f-0.png" --size 16x16 -o "$TMP/img.msgpack"
    assert_success
    run "$BIN/osp-info" --format json "$TMP/img.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].shape')" = "[1,4,1,2,2]" ]
}

@test "other stream tensors pass through encode and decode" {
    "$MKSTREAM" sample "$TMP/extra.msgpack"
    cat "$TMP/video.msgpack" "$TMP/extra.msgpack" |
        "$BIN/osp-encode" -m "$VAE" --mode mean | "$BIN/osp-decode" -m "$VAE" > "$TMP/out.msgpack"
    run "$BIN/osp-info" --format json "$TMP/out.msgpack"
    assert_success
    [ "$(echo "$output" | "$JSONCHECK" '.tensors#')" = 3 ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].name')" = video ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[2].name')" = mask ]
}

@test "bad invocations fail with one line and the documented code, leaving no file" {
    fails_with 2 "$BIN/osp-encode" "$TMP/video.msgpack"
    fails_with 2 "$BIN/osp-encode" -m "$VAE" --frames 4 "$TMP/video.msgpack"
    fails_with 2 "$BIN/osp-encode" -m "$VAE" --size 12 "$TMP/video.msgpack"
    fails_with 2 "$BIN/osp-decode" -m "$VAE" --tile --no-tile "$TMP/video.msgpack"
    fails_with 5 "$BIN/osp-encode" -m "$VAE" "$TMP/missing.mp4"
    fails_with 5 "$BIN/osp-encode" -m "$TMP/no-model" "$TMP/video.msgpack"
    fails_with 3 "$BIN/osp-decode" -m "$VAE" "$TMP/video.msgpack" -o "$TMP/never.mp4"
    [ ! -e "$TMP/never.mp4" ]
    "$BIN/osp-encode" -m "$VAE" "$TMP/video.msgpack" > "$TMP/lat.msgpack"
    fails_with 2 "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/one.png"
    [ -z "$(ls "$TMP" | grep -v msgpack)" ]
    printf 'garbage' > "$TMP/bad.mp4"
    fails_with 3 "$BIN/osp-encode" -m "$VAE" "$TMP/bad.mp4" -o "$TMP/never.msgpack"
    [ ! -e "$TMP/never.msgpack" ]
}

MKVIDEO=$TEST_BUILD/tests/tools/mkvideo

# shape_of STREAM: the first tensor's shape as osp-info's JSON writes it
shape_of() {
    "$BIN/osp-info" --format json "$1" | "$JSONCHECK" '.tensors[0].shape'
}

@test "real media in several codecs and containers encode and decode" {
    # name codec: what osp-decode would pick, and other common encoders
    for spec in "a.mp4 default" "b.mkv ffv1" "c.avi mpeg4" "d.webm libvpx-vp9" \
        "e.mov prores_ks" "f.ogv libtheora"; do
        set -- $spec
        "$MKVIDEO" "$TMP/$1" 17 48 32 "$2"
        run "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/$1" -o "$TMP/$1.msgpack"
        assert_success
        [ "$(shape_of "$TMP/$1.msgpack")" = "[1,4,5,4,6]" ]
        run "$BIN/osp-info" --format json "$TMP/$1.msgpack"
        [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.source_frames')" = 17 ]
        [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.fps')" = 24 ]
    done
    # the decoded clip has the source's frames, size and rate
    run "$BIN/osp-decode" -m "$VAE" "$TMP/a.mp4.msgpack" -o "$TMP/rec.mp4"
    assert_success
    run "$BIN/osp-encode" -m "$VAE" "$TMP/rec.mp4" -o "$TMP/rec.msgpack"
    assert_success
    [ "$(shape_of "$TMP/rec.msgpack")" = "[1,4,5,4,6]" ]
    run "$BIN/osp-info" --format json "$TMP/rec.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.source_frames')" = 17 ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.fps')" = 24 ]
}

@test "HEVC at the tiny sizes where libx265's CU-tree used to abort" {
    command -v ffprobe >/dev/null || skip "ffprobe not installed"
    # libx265 leaks a block of its own at exit; keep check-asan's leak
    # checker to osp
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    for size in "40 24" "48 16" "48 24" "40 16"; do
        set -- $size
        run "$MKVIDEO" "$TMP/hevc.mp4" 9 "$1" "$2" libx265
        assert_success
        run ffprobe -v error -count_frames -select_streams v:0 \
            -show_entries stream=nb_read_frames,width,height -of csv=p=0 "$TMP/hevc.mp4"
        assert_output "$1,$2,9"
    done
}

@test "odd sizes, one frame, frame selection and too-short clips" {
    "$MKVIDEO" "$TMP/odd.mkv" 9 45 30 ffv1
    fails_with 3 "$BIN/osp-encode" -m "$VAE" "$TMP/odd.mkv" -o "$TMP/never.msgpack"
    run "$BIN/osp-encode" -m "$VAE" --size 16x24 "$TMP/odd.mkv" -o "$TMP/odd.msgpack"
    assert_success
    [ "$(shape_of "$TMP/odd.msgpack")" = "[1,4,3,2,3]" ]

    # one frame: a 1-frame latent, decoded to a single PNG
    "$MKVIDEO" "$TMP/one.mp4" 1 32 32
    run "$BIN/osp-encode" -m "$VAE" "$TMP/one.mp4" -o "$TMP/one.msgpack"
    assert_success
    [ "$(shape_of "$TMP/one.msgpack")" = "[1,4,1,4,4]" ]
    run "$BIN/osp-decode" -m "$VAE" "$TMP/one.msgpack" -o "$TMP/one.png"
    assert_success
    [ -s "$TMP/one.png" ]

    # 7 frames: the largest 1+4k is 5; --frames 9 is too many, --frames 6 invalid
    "$MKVIDEO" "$TMP/short.mp4" 7 32 32
    run "$BIN/osp-encode" -m "$VAE" "$TMP/short.mp4" -o "$TMP/short.msgpack"
    assert_success
    [ "$(shape_of "$TMP/short.msgpack")" = "[1,4,2,4,4]" ]
    fails_with 3 "$BIN/osp-encode" -m "$VAE" --frames 9 "$TMP/short.mp4" -o "$TMP/never.msgpack"
    [[ $stderr == *"only 7 frames"*"valid here: 1..5"* ]]
    fails_with 2 "$BIN/osp-encode" -m "$VAE" --frames 6 "$TMP/short.mp4" -o "$TMP/never.msgpack"

    # --start 4 --stride 2 of 17 frames: 4, 6, ..., 16 = 7 frames -> 5 kept, half the rate
    "$MKVIDEO" "$TMP/s.mkv" 17 32 32 ffv1
    run "$BIN/osp-encode" -m "$VAE" --start 4 --stride 2 "$TMP/s.mkv" -o "$TMP/s.msgpack"
    assert_success
    [ "$(shape_of "$TMP/s.msgpack")" = "[1,4,2,4,4]" ]
    run "$BIN/osp-info" --format json "$TMP/s.msgpack"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.fps')" = 12 ]
    fails_with 3 "$BIN/osp-encode" -m "$VAE" --start 17 "$TMP/s.mkv" -o "$TMP/never.msgpack"
    [ ! -e "$TMP/never.msgpack" ]
}

@test "chunked decode hands frames to the writers as chunks finish" {
    "$MKVIDEO" "$TMP/long.mkv" 33 48 32 ffv1
    "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/long.mkv" -o "$TMP/lat.msgpack"
    [ "$(shape_of "$TMP/lat.msgpack")" = "[1,4,9,4,6]" ]
    mkdir "$TMP/f"
    run "$BIN/osp-decode" -m "$VAE" --chunk-frames 3 "$TMP/lat.msgpack" -o "$TMP/f/%03d.png"
    assert_success
    [ "$(ls "$TMP/f" | wc -l)" = 33 ]
    [ -e "$TMP/f/000.png" ] && [ -e "$TMP/f/032.png" ]
    "$BIN/osp-decode" -m "$VAE" --chunk-frames 3 --codec ffv1 "$TMP/lat.msgpack" -o "$TMP/c.mkv"
    "$BIN/osp-decode" -m "$VAE" --chunk-frames 3 "$TMP/lat.msgpack" -o "$TMP/c.msgpack"
    "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/whole.msgpack"
    # the video file holds exactly the PNG frames (lossless, PSNR capped at 100)
    run "$BIN/osp-eval" --metrics psnr --format json "$TMP/f" "$TMP/c.mkv"
    assert_success
    [ "$(echo "$output" | "$JSONCHECK" '.metrics.psnr.mean')" = 100 ]
    # ... which are the chunked stream's frames up to 8-bit rounding, not
    # the unchunked decode's
    run "$BIN/osp-eval" --metrics psnr --format json "$TMP/f" "$TMP/c.msgpack"
    near "$(echo "$output" | "$JSONCHECK" '.metrics.psnr.mean')" 70 25
    run "$BIN/osp-eval" --metrics psnr --format json "$TMP/f" "$TMP/whole.msgpack"
    near "$(echo "$output" | "$JSONCHECK" '.metrics.psnr.mean')" 20 20

    # PNG frames back in through a glob: 20 names, the first 17 kept
    run "$BIN/osp-encode" -m "$VAE" "$TMP/f/0[01]?.png" -o "$TMP/glob.msgpack"
    assert_success
    [ "$(shape_of "$TMP/glob.msgpack")" = "[1,4,5,4,6]" ]

    # over --max-memory the decode is chunked, with a one-line notice
    run --separate-stderr "$BIN/osp-decode" -m "$VAE" --max-memory 10M "$TMP/lat.msgpack" \
        -o "$TMP/mm.msgpack"
    assert_success
    [[ $stderr == "osp-decode: decoding 9 latent frames in chunks of 3 to stay within 10.0 MiB"* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" = 1 ]
    cmp "$TMP/mm.msgpack" "$TMP/c.msgpack"
    run --separate-stderr "$BIN/osp-decode" -q -m "$VAE" --max-memory 10M "$TMP/lat.msgpack" \
        -o "$TMP/mm.msgpack"
    assert_success
    [ -z "$stderr" ]
    fails_with 2 "$BIN/osp-decode" -m "$VAE" --max-memory 10X "$TMP/lat.msgpack"

    # a frame that cannot be written stops the run, and the frames written
    # before it are removed again
    mkdir -p "$TMP/g/005.png"
    fails_with 5 "$BIN/osp-decode" -m "$VAE" --chunk-frames 3 "$TMP/lat.msgpack" -o "$TMP/g/%03d.png"
    [ "$(ls "$TMP/g")" = 005.png ]
}

@test "--max-memory defaults to 3/4 of the memory the model runs in" {
    "$MKVIDEO" "$TMP/long.mkv" 33 48 32 ffv1
    "$BIN/osp-encode" -m "$VAE" --mode mean "$TMP/long.mkv" -o "$TMP/lat.msgpack"
    "$BIN/osp-decode" -m "$VAE" --max-memory 9M "$TMP/lat.msgpack" -o "$TMP/c.msgpack" 2>/dev/null
    # on the CPU, of the host's RAM: far more than this clip needs
    OSP_FAKE_DEVICE_MB=12 run --separate-stderr "$BIN/osp-decode" --device cpu -m "$VAE" \
        "$TMP/lat.msgpack" -o "$TMP/cpu.msgpack"
    assert_success
    [ -z "$stderr" ]
    # on the stand-in GPU (make check runs this suite on it too), of the
    # capacity it reports, OSP_FAKE_DEVICE_MB; a real GPU's is far larger
    [[ $BIN == */fakedev/* ]] || return 0
    OSP_FAKE_DEVICE_MB=12 run --separate-stderr "$BIN/osp-decode" --device cuda -m "$VAE" \
        "$TMP/lat.msgpack" -o "$TMP/gpu.msgpack"
    assert_success
    [ "$stderr" = "osp-decode: decoding 9 latent frames in chunks of 3 to stay within 9.0 MiB (3/4 of the memory, see --max-memory); the result is approximate" ]
    cmp "$TMP/gpu.msgpack" "$TMP/c.msgpack"
    # -v's memory line names the capacity the budget came from
    OSP_FAKE_DEVICE_MB=12 run --separate-stderr "$BIN/osp-decode" -v --device cuda -m "$VAE" \
        "$TMP/lat.msgpack" -o "$TMP/gpu.msgpack"
    assert_success
    [[ $stderr == *"osp-decode: debug: device memory: peak "*" MiB cached; capacity 12.0 MiB"* ]]
}

@test "bad models, latents, media and output paths: one line, exit code, no file" {
    "$BIN/osp-encode" -m "$VAE" "$TMP/video.msgpack" > "$TMP/lat.msgpack"
    weights=diffusion_pytorch_model.safetensors
    for m in trunc json shape config none; do cp -r "$VAE" "$TMP/m-$m"; done
    head -c 1000 "$VAE/$weights" > "$TMP/m-trunc/$weights"
    echo '{"hidden_size": ' > "$TMP/m-json/config.json"
    "$TEST_BUILD/tests/tools/mkevalinput" reshape "$VAE/$weights" \
        decoder.conv_out.conv.weight "$TMP/m-shape/$weights"
    sed -i 's/"hidden_size": 32/"hidden_size": 64/' "$TMP/m-config/config.json"
    rm "$TMP/m-none/$weights"
    for m in trunc json shape config none; do
        fails_with 3 "$BIN/osp-encode" -m "$TMP/m-$m" "$TMP/video.msgpack" -o "$TMP/o.msgpack"
        fails_with 3 "$BIN/osp-decode" -m "$TMP/m-$m" "$TMP/lat.msgpack" -o "$TMP/o.mp4"
    done
    fails_with 3 "$BIN/osp-encode" -m "$TMP/m-shape" "$TMP/video.msgpack"
    [[ $stderr == *"decoder.conv_out.conv.weight' has shape [2592], expected [3, 32, 3, 3, 3]"* ]]

    # latents: 8 channels, rank 4, a truncated stream
    "$MKSTREAM" convert "$FIXTURES/vae/video/expected.safetensors" "$TMP/c8.msgpack" moments=latent
    "$MKSTREAM" convert "$FIXTURES/vae/inflate/vae2d_subset.safetensors" "$TMP/r4.msgpack" \
        decoder.conv_in.weight=latent
    head -c 100 "$TMP/lat.msgpack" > "$TMP/trunc.msgpack"
    for bad in c8 r4 trunc; do
        fails_with 3 "$BIN/osp-decode" -m "$VAE" "$TMP/$bad.msgpack" -o "$TMP/o.mp4"
        fails_with 3 "$BIN/osp-decode" -m "$VAE" "$TMP/$bad.msgpack" -o "$TMP/o-%d.png"
    done

    # media: zero-length and garbage video, a PNG that is not one
    : > "$TMP/empty.mp4"
    printf 'garbage' > "$TMP/bad.png"
    for bad in empty.mp4 bad.png; do
        fails_with 3 "$BIN/osp-encode" -m "$VAE" "$TMP/$bad" -o "$TMP/o.msgpack"
    done

    # an output in a missing folder
    fails_with 5 "$BIN/osp-encode" -m "$VAE" "$TMP/video.msgpack" -o "$TMP/nodir/o.msgpack"
    for out in o.mp4 o.msgpack o-%d.png; do
        fails_with 5 "$BIN/osp-decode" -m "$VAE" "$TMP/lat.msgpack" -o "$TMP/nodir/$out"
    done
    "$BIN/osp-encode" -m "$VAE" --frames 1 "$TMP/video.msgpack" > "$TMP/lat1.msgpack"
    fails_with 5 "$BIN/osp-decode" -m "$VAE" "$TMP/lat1.msgpack" -o "$TMP/nodir/o.png"
    [ -z "$(ls "$TMP" | grep '^o')" ]
    [ ! -e "$TMP/nodir" ]
}

@test "examples/eval-vae.sh round-trips a clip and scores it" {
    cd "$REPO"
    run env OSP_BIN="$BIN" VAE="$VAE" examples/eval-vae.sh
    assert_success
    [[ $output == *'"psnr": {"mean": '* ]]
    [[ $output == *'"ssim": {"mean": '* ]]
}
