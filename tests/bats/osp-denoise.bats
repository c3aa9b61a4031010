#!/usr/bin/env bats
# osp-denoise end to end: --predict against fixtures/latte through streams,
# the real pipeline's sampling runs of fixtures/sched/tiny_e2e, sizes,
# seeds and batches, the failure modes, and the text-to-video pipeline
# through osp-decode (and osp-textenc when it is built).

load helpers

TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp
MKLATTE=$TEST_BUILD/tests/tools/mklatte

setup() {
    need_fixtures
    TMP=$(mktemp -d)
    E2E=$FIXTURES/sched/tiny_e2e
    TINY_A=$FIXTURES/latte/tiny_a
}

teardown() {
    rm -rf "$TMP"
}

# shape NAME FILE: the shape of tensor NAME in stream FILE, as [a,b,...]
shape() {
    "$BIN/osp-info" --format json "$2" | "$JSONCHECK" ".tensors[name=$1].shape"
}

# A fixture case's inputs as a stream with the tool's tensor names.
predict_input() {
    local st=$1 out=$2
    local keys=(hidden_states=latent timestep encoder_hidden_states=embedding)
    grep -q encoder_attention_mask "$st" && keys+=(encoder_attention_mask=mask)
    "$MKSTREAM" convert "$st" "$out" "${keys[@]}"
}

# e2e_input NAME: the tiny_e2e run NAME as a stream (noise + both embeddings).
e2e_input() {
    "$MKSTREAM" convert "$E2E/e2e_$1_10_in.safetensors" "$TMP/$1.msgpack" \
        prompt_embeds=embedding negative_prompt_embeds=null_embedding latents_init=noise
}

# Outputs reach max |y| ~ 5; 2e-5 x max(1, max|y|) is the README's 1e-4.
# bats test_tags=cuda-quick
@test "--predict matches every sampling-mode forward of fixtures/latte" {
    for c in tiny_a/video_masked tiny_a/video_nomask_float_t tiny_a/image_nonsquare \
        tiny_b/video_masked; do
        predict_input "$FIXTURES/latte/${c}_in.safetensors" "$TMP/in.msgpack"
        run "$BIN/osp-denoise" -m "$FIXTURES/latte/${c%/*}" --predict "$TMP/in.msgpack" \
            -o "$TMP/pred.msgpack"
        assert_success
        run "$TENSORCMP" "$TMP/pred.msgpack" prediction "$FIXTURES/latte/${c}_out.safetensors" \
            sample 2e-5
        echo "$c: $output"
        assert_success
    done
}

@test "--predict takes --timestep and --latent FILE" {
    local st=$FIXTURES/latte/tiny_b/video_masked_in.safetensors
    "$MKSTREAM" convert "$st" "$TMP/text.msgpack" encoder_hidden_states=embedding \
        encoder_attention_mask=mask
    "$MKSTREAM" convert "$st" "$TMP/latent.msgpack" hidden_states=latent
    run "$BIN/osp-denoise" -m "$FIXTURES/latte/tiny_b" --predict --timestep 737 \
        --latent "$TMP/latent.msgpack" -o "$TMP/pred.msgpack" < "$TMP/text.msgpack"
    assert_success
    run "$TENSORCMP" "$TMP/pred.msgpack" prediction \
        "$FIXTURES/latte/tiny_b/video_masked_out.safetensors" sample 2e-5
    assert_success
    fails_with 3 "$BIN/osp-denoise" -m "$FIXTURES/latte/tiny_b" --predict \
        --latent "$TMP/latent.msgpack" "$TMP/text.msgpack"
    [[ $stderr == *timestep* ]]
}

# bats test_tags=cuda-quick
@test "sampling reproduces the real pipeline's final latents (guidance 7.5, 10 steps)" {
    for s in pndm ddim euler dpmpp; do
        e2e_input $s
        run "$BIN/osp-denoise" -m "$E2E" --scheduler $s --steps 10 "$TMP/$s.msgpack" \
            -o "$TMP/$s.latent"
        assert_success
        run "$TENSORCMP" "$TMP/$s.latent" latent "$E2E/e2e_${s}_10_out.safetensors" \
            latents_final 1e-3
        echo "$s: $output"
        assert_success
    done
    run "$BIN/osp-info" --format json "$TMP/ddim.latent"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.scale')" = 0.18215 ]
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[0].meta.scheduler')" = ddim ]
}

@test "sizes: the model's by default, --frames 1 is an image, --height/--width in pixels" {
    e2e_input ddim
    "$MKSTREAM" convert "$E2E/e2e_ddim_10_in.safetensors" "$TMP/text.msgpack" \
        prompt_embeds=embedding negative_prompt_embeds=null_embedding
    run "$BIN/osp-denoise" -m "$E2E" --steps 4 "$TMP/text.msgpack" -o "$TMP/a.latent"
    assert_success
    [ "$(shape latent "$TMP/a.latent")" = "[1,4,5,8,8]" ]
    "$BIN/osp-denoise" -m "$E2E" --steps 4 --frames 1 "$TMP/text.msgpack" -o "$TMP/img.latent"
    [ "$(shape latent "$TMP/img.latent")" = "[1,4,1,8,8]" ]
    "$BIN/osp-denoise" -m "$E2E" --steps 4 --frames 1 --height 32 --width 48 \
        "$TMP/text.msgpack" -o "$TMP/small.latent"
    [ "$(shape latent "$TMP/small.latent")" = "[1,4,1,4,6]" ]
    "$BIN/osp-denoise" -m "$E2E" --steps 4 --frames 17 --height 64 --width 64 \
        "$TMP/text.msgpack" -o "$TMP/b.latent"
    cmp "$TMP/a.latent" "$TMP/b.latent"
}

@test "--seed: same seed, same latent; another seed, another latent" {
    "$MKSTREAM" convert "$E2E/e2e_ddpm_10_in.safetensors" "$TMP/text.msgpack" \
        prompt_embeds=embedding negative_prompt_embeds=null_embedding
    for seed in 7 7 8; do
        run "$BIN/osp-denoise" -m "$E2E" --scheduler ddpm --steps 5 --seed $seed \
            "$TMP/text.msgpack" -o "$TMP/s$seed-$((n++)).latent"
        assert_success
    done
    cmp "$TMP/s7-0.latent" "$TMP/s7-1.latent"
    ! cmp -s "$TMP/s7-0.latent" "$TMP/s8-2.latent"
}

@test "a batch of prompts with a mask, guidance off; other tensors pass through" {
    "$MKSTREAM" convert "$TINY_A/video_masked_in.safetensors" "$TMP/batch.msgpack" \
        encoder_hidden_states=embedding encoder_attention_mask=mask timestep=extra
    run --separate-stderr "$BIN/osp-denoise" -m "$TINY_A" --guidance 1 --steps 4 \
        --scheduler euler "$TMP/batch.msgpack" -o "$TMP/batch.latent"
    assert_success
    [ -z "$stderr" ] # no progress bar off a terminal
    [ "$(shape latent "$TMP/batch.latent")" = "[2,4,5,8,8]" ]
    [ "$(shape extra "$TMP/batch.latent")" = "[2]" ]
    run "$BIN/osp-info" --stats --format json "$TMP/batch.latent"
    [ "$(echo "$output" | "$JSONCHECK" '.tensors[name=latent].stats.nan')" = 0 ]
}

@test "bad input: caption width, missing null embedding, NaN, no embedding" {
    "$MKSTREAM" convert "$TINY_A/video_masked_in.safetensors" "$TMP/wide.msgpack" \
        encoder_hidden_states=embedding encoder_attention_mask=mask
    fails_with 3 "$BIN/osp-denoise" -m "$E2E" --guidance 1 "$TMP/wide.msgpack" \
        -o "$TMP/never.latent"
    [[ $stderr == *caption_channels* ]]
    [ ! -e "$TMP/never.latent" ]
    "$MKSTREAM" convert "$E2E/e2e_ddim_10_in.safetensors" "$TMP/cond.msgpack" \
        prompt_embeds=embedding
    fails_with 3 "$BIN/osp-denoise" -m "$E2E" "$TMP/cond.msgpack"
    [[ $stderr == *--no-negative* && $stderr == *"--guidance 1"* ]]
    # mkstream's `special` tensor (1, NaN, Inf, -Inf, 3) renamed to `embedding`
    "$MKSTREAM" known "$TMP/known.msgpack"
    perl -pe 's/\xa7special/\xa9embedding/' "$TMP/known.msgpack" > "$TMP/nan.msgpack"
    fails_with 3 "$BIN/osp-denoise" -m "$E2E" "$TMP/nan.msgpack"
    [[ $stderr == *non-finite* ]]
    "$MKSTREAM" sample "$TMP/sample.msgpack"
    fails_with 3 "$BIN/osp-denoise" -m "$E2E" "$TMP/sample.msgpack"
    fails_with 3 "$BIN/osp-denoise" -m "$E2E" --predict "$TMP/cond.msgpack"
}

@test "usage errors: steps, sizes, options" {
    e2e_input ddim
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --scheduler pndm --steps 3 "$TMP/ddim.msgpack"
    [[ $stderr == *"pndm"* ]]
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --steps 0 "$TMP/ddim.msgpack"
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --height 100 "$TMP/ddim.msgpack"
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --width 72 "$TMP/ddim.msgpack"
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --frames 6 "$TMP/ddim.msgpack"
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --frames 9 "$TMP/ddim.msgpack"
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --scheduler lms "$TMP/ddim.msgpack"
    fails_with 2 "$BIN/osp-denoise" "$TMP/ddim.msgpack"
    fails_with 2 "$BIN/osp-denoise" -m "$E2E" --timestep 5 "$TMP/ddim.msgpack"
    fails_with 3 "$BIN/osp-denoise" -m "$FIXTURES/vae/model" "$TMP/ddim.msgpack"
    [[ $stderr == *LatteT2V* ]]
    fails_with 5 "$BIN/osp-denoise" -m "$TMP/missing" "$TMP/ddim.msgpack"
    "$MKSTREAM" convert "$E2E/e2e_ddim_10_in.safetensors" "$TMP/noise.msgpack" \
        latents_init=noise
    "$MKSTREAM" convert "$E2E/e2e_ddim_10_in.safetensors" "$TMP/text.msgpack" \
        prompt_embeds=embedding negative_prompt_embeds=null_embedding
    fails_with 3 "$BIN/osp-denoise" -m "$E2E" --noise "$TMP/noise.msgpack" --frames 1 \
        "$TMP/text.msgpack"
    [[ $stderr == *"does not match"* ]]
    fails_with 3 "$BIN/osp-denoise" -m "$E2E" --noise "$TMP/text.msgpack" "$TMP/text.msgpack"
}

# ffprobe when installed, else osp-encode's count of the frames it read.
frame_count() {
    if command -v ffprobe >/dev/null; then
        ffprobe -v error -count_frames -select_streams v:0 -show_entries \
            stream=nb_read_frames -of csv=p=0 "$1"
    else
        "$BIN/osp-encode" -m "$FIXTURES/vae/model" --moments "$1" |
            "$BIN/osp-info" --format json | "$JSONCHECK" '.tensors[0].meta.source_frames'
    fi
}

@test "pipeline: embeddings | osp-denoise | osp-decode -> a 17-frame mp4" {
    e2e_input dpmpp
    "$BIN/osp-denoise" -m "$E2E" --scheduler dpmpp --steps 10 < "$TMP/dpmpp.msgpack" |
        tee "$TMP/latent.msgpack" |
        "$BIN/osp-decode" -m "$FIXTURES/vae/model" -o "$TMP/out.mp4"
    [ "$(shape latent "$TMP/latent.msgpack")" = "[1,4,5,8,8]" ]
    [ -s "$TMP/out.mp4" ]
    [ "$(frame_count "$TMP/out.mp4")" = 17 ]
}

# A tiny T5 folder from the fixtures and a random Latte of the T5's width
# (48: no fixture Latte shares it). The fixture tokenizer has 1000 pieces
# but the encoder 384 embedding rows: prompts use pieces below 384 only.
tiny_text_models() {
    "$MKLATTE" "$TMP/latte" 48
    mkdir "$TMP/t5"
    ln -s "$FIXTURES"/t5/encoder/{config.json,model.safetensors} "$TMP/t5/"
    ln -s "$FIXTURES/t5/tokenizer/spiece.model" "$TMP/t5/"
}

@test "pipeline: osp-textenc | osp-denoise | osp-decode with the tiny T5" {
    tiny_text_models
    "$BIN/osp-textenc" -m "$TMP/t5" "a cat in the park" |
        tee "$TMP/text.msgpack" |
        "$BIN/osp-denoise" -m "$TMP/latte" --steps 10 | tee "$TMP/latent.msgpack" |
        "$BIN/osp-decode" -m "$FIXTURES/vae/model" -o "$TMP/cat.mp4"
    # what crossed each pipe
    [[ $(shape embedding "$TMP/text.msgpack") == "[1,"*",48]" ]]
    [[ $(shape mask "$TMP/text.msgpack") == "[1,"*"]" ]]
    [[ $(shape null_embedding "$TMP/text.msgpack") == "[1,"*",48]" ]]
    [ "$(shape latent "$TMP/latent.msgpack")" = "[1,4,5,8,8]" ]
    [ "$(frame_count "$TMP/cat.mp4")" = 17 ]
    "$BIN/osp-decode" -m "$FIXTURES/vae/model" "$TMP/latent.msgpack" -o "$TMP/video.msgpack"
    [ "$(shape video "$TMP/video.msgpack")" = "[1,3,17,64,64]" ]
}

@test "examples/t2v.sh runs the pipeline (video, and an image with --frames 1)" {
    tiny_text_models
    export T5=$TMP/t5 LATTE=$TMP/latte VAE=$FIXTURES/vae/model OSP_BIN=$BIN STEPS=5 SCHED=ddim
    run "$REPO/examples/t2v.sh" "a cat in the park" "$TMP/t2v.mp4"
    assert_success
    [ "$(frame_count "$TMP/t2v.mp4")" = 17 ]
    DENOISE_ARGS="--frames 1" run "$REPO/examples/t2v.sh" "a cat" "$TMP/cat.png"
    assert_success
    [ "$(head -c 8 "$TMP/cat.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
    T5=$TMP/none run "$REPO/examples/t2v.sh" "a cat" "$TMP/never.mp4"
    assert_failure
    [[ $output == *"no model folder"* ]]
}

@test "OSP_PROFILE=1 and =shapes report the run's ops on stderr at exit" {
    local c=tiny_a/video_masked
    predict_input "$FIXTURES/latte/${c}_in.safetensors" "$TMP/in.msgpack"
    OSP_PROFILE=1 "$BIN/osp-denoise" -m "$TINY_A" --predict "$TMP/in.msgpack" \
        -o "$TMP/p1.msgpack" 2>"$TMP/by-op"
    grep -Eq '^osp profile: [0-9.]+ ms in ops of [0-9.]+ ms' "$TMP/by-op"
    grep -Eq '^linear +[0-9.]+ +[0-9]+ +[0-9.]+$' "$TMP/by-op"
    grep -Eq '^attention +[0-9.]+ +[0-9]+ ' "$TMP/by-op"
    OSP_PROFILE=shapes "$BIN/osp-denoise" -m "$TINY_A" --predict "$TMP/in.msgpack" \
        -o "$TMP/p2.msgpack" 2>"$TMP/by-shape"
    # the per-op table, then the one by shapes: a linear's key names x and
    # the weight, "linear [..]x[O,I]x[O]"
    grep -Eq '^linear +[0-9.]+ +[0-9]+ +[0-9.]+$' "$TMP/by-shape"
    sed -n '/^osp profile by input shapes (the 40 slowest):$/,$p' "$TMP/by-shape" >"$TMP/shapes"
    grep -Eq '^linear \[[0-9,]+\]x\[[0-9]+,[0-9]+\]' "$TMP/shapes"
    grep -Eq '^attention \[[0-9,]+\]x\[[0-9,]+\]x\[[0-9,]+\]x' "$TMP/shapes"
    [ "$(grep -c . "$TMP/shapes")" -le 42 ] # title and header lines + at most 40 rows
    # an op without inputs is keyed by its output: sampling's initial noise
    # (on the CPU, where it is the first op and starts the thread team, so
    # it is among the 40 slowest rows)
    e2e_input ddim
    "$MKSTREAM" convert "$E2E/e2e_ddim_10_in.safetensors" "$TMP/text.msgpack" \
        prompt_embeds=embedding negative_prompt_embeds=null_embedding
    OSP_PROFILE=shapes "$BIN/osp-denoise" --device cpu -m "$E2E" --steps 4 "$TMP/text.msgpack" \
        -o "$TMP/a.latent" 2>"$TMP/sampling"
    grep -Eq '^randn -> \[1,4,5,8,8\] +[0-9.]+ +1 ' "$TMP/sampling"
    # profiling changes no result
    cmp "$TMP/p1.msgpack" "$TMP/p2.msgpack"
    run "$BIN/osp-denoise" -m "$TINY_A" --predict "$TMP/in.msgpack" -o "$TMP/p0.msgpack"
    assert_success
    [ -z "$output" ]
    cmp "$TMP/p0.msgpack" "$TMP/p1.msgpack"
}
