#!/usr/bin/env bats
# osp-textenc: the encoder fixture through the tool (--from-tokens on the
# fixture's ids), full runs on generated models that fit the fixture
# tokenizer (safetensors, PyTorch .bin shards, bf16), --tokens piped into
# --from-tokens equal to the direct run, stdin prompts, batches, negative
# prompts, cleaning modes, and the failure modes (exit status + one line).

load helpers

TEXTENC=$BIN/osp-textenc
MKT5=$TEST_BUILD/tests/tools/mkt5
TENSORCMP=$TEST_BUILD/tests/tools/tensorcmp

setup_file() {
    [ -d "$FIXTURES/t5" ] || return 0
    local d=$BATS_FILE_TMPDIR spiece=$FIXTURES/t5/tokenizer/spiece.model
    # Random encoders whose vocabulary (1100) covers the fixture tokenizer's
    # 1000 pieces + 100 sentinels; the same seed gives the same weights.
    "$MKT5" "$d/t5" spiece="$spiece"
    "$MKT5" "$d/t5bin" spiece="$spiece" format=bin shards=2
    "$MKT5" "$d/t5bf16" spiece="$spiece" dtype=bf16
    mkdir "$d/fixture" "$d/tok"
    ln -s "$FIXTURES"/t5/encoder/{config.json,model.safetensors} "$d/fixture/"
    ln -s "$spiece" "$d/fixture/"
    ln -s "$spiece" "$d/tok/"
    "$MKSTREAM" convert "$FIXTURES/t5/encoder/inputs.safetensors" "$d/fixture_tokens.msgpack" \
        input_ids=tokens attention_mask=mask
}

setup() {
    need_fixtures
    D=$BATS_FILE_TMPDIR
}

# json PATH... on `osp-info --format json --stats FILE`
info() {
    local file=$1
    shift
    "$BIN/osp-info" --format json --stats "$file" | "$JSONCHECK" "$@"
}

# bats test_tags=cuda-quick
@test "the encoder fixture through the tool: last_hidden_state within 1e-4" {
    "$TEXTENC" -m "$D/fixture" --from-tokens -i "$D/fixture_tokens.msgpack" -o "$D/fx.msgpack"
    run "$TENSORCMP" "$D/fx.msgpack" embedding "$FIXTURES/t5/encoder/expected.safetensors" \
        last_hidden_state 1e-4
    assert_success
    [ "$(info "$D/fx.msgpack" '.tensors[name=embedding].shape')" = "[3,150,48]" ]
    [ "$(info "$D/fx.msgpack" '.tensors[name=mask].dtype')" = u8 ]
    # the same from stdin
    "$TEXTENC" -m "$D/fixture" --from-tokens <"$D/fixture_tokens.msgpack" | cmp - "$D/fx.msgpack"
}

@test "a prompt: embedding, mask and the empty negative prompt, as cli.md names them" {
    "$TEXTENC" -m "$D/t5" "a red fox in snow" -o "$D/fox.msgpack"
    [ "$(info "$D/fox.msgpack" '.tensors#')" = 4 ]
    [ "$(info "$D/fox.msgpack" '.tensors[0].name')" = null_embedding ]
    [ "$(info "$D/fox.msgpack" '.tensors[name=embedding].shape')" = "[1,300,32]" ]
    [ "$(info "$D/fox.msgpack" '.tensors[name=embedding].dtype')" = f32 ]
    [ "$(info "$D/fox.msgpack" '.tensors[name=mask].shape')" = "[1,300]" ]
    [ "$(info "$D/fox.msgpack" '.tensors[name=null_embedding].shape')" = "[1,300,32]" ]
    [ "$(info "$D/fox.msgpack" '.tensors[name=embedding].meta.prompt[0]')" = "a red fox in snow" ]
    [ "$(info "$D/fox.msgpack" '.tensors[name=null_mask].meta.prompt[0]')" = "" ]
    # "" tokenizes to [1, 0, ...]: one real token; padded positions are computed (non-zero)
    near "$(info "$D/fox.msgpack" '.tensors[name=null_mask].stats.mean')" 0.0033333333 1e-9
    [ "$(info "$D/fox.msgpack" '.tensors[name=null_embedding].stats.nan')" = 0 ]
    [ "$(info "$D/fox.msgpack" '.tensors[name=null_embedding].stats.std')" != 0 ]
}

@test "--tokens needs only spiece.model; piped into --from-tokens it equals the direct run" {
    "$TEXTENC" -m "$D/tok" --tokens "a red fox in snow" "two dogs" -o "$D/tok.msgpack"
    [ "$(info "$D/tok.msgpack" '.tensors[name=tokens].dtype')" = i64 ]
    [ "$(info "$D/tok.msgpack" '.tensors[name=tokens].shape')" = "[1,300]" ]
    [ "$(info "$D/tok.msgpack" '.tensors[name=null_tokens].stats.max')" = 1 ]
    "$TEXTENC" -m "$D/t5" --batch 2 "a red fox in snow" "two dogs" "x" >"$D/direct.msgpack"
    "$TEXTENC" -m "$D/t5" --batch 2 --tokens "a red fox in snow" "two dogs" "x" |
        "$TEXTENC" -m "$D/t5" --from-tokens | cmp - "$D/direct.msgpack"
    # with --no-negative too
    "$TEXTENC" -m "$D/t5" --no-negative --tokens "a" | "$TEXTENC" -m "$D/t5" --from-tokens |
        cmp - <("$TEXTENC" -m "$D/t5" --no-negative "a")
}

@test "--from-tokens passes other tensors through" {
    "$MKSTREAM" convert "$FIXTURES/t5/encoder/debug.safetensors" "$D/extra.msgpack" \
        position_bias=extra
    cat "$D/extra.msgpack" <("$TEXTENC" -m "$D/tok" --tokens "a") |
        "$TEXTENC" -m "$D/t5" --from-tokens -o "$D/through.msgpack"
    [ "$(info "$D/through.msgpack" '.tensors[0].name')" = extra ]
    [ "$(info "$D/through.msgpack" '.tensors#')" = 5 ]
}

@test "prompts from stdin lines equal prompts from arguments; batches" {
    "$TEXTENC" -m "$D/t5" --batch 2 "a red fox" "two dogs" "a cat" >"$D/args.msgpack"
    printf 'a red fox\ntwo dogs\r\na cat' | "$TEXTENC" -m "$D/t5" --batch 2 | cmp - "$D/args.msgpack"
    printf 'a red fox\ntwo dogs\na cat\n' | "$TEXTENC" -m "$D/t5" --batch 2 - | cmp - "$D/args.msgpack"
    [ "$(info "$D/args.msgpack" '.tensors#')" = 6 ]
    [ "$(info "$D/args.msgpack" '.tensors[2].shape')" = "[2,300,32]" ]
    [ "$(info "$D/args.msgpack" '.tensors[4].shape')" = "[1,300,32]" ]
    [ "$(info "$D/args.msgpack" '.tensors[2].meta.prompt[1]')" = "two dogs" ]
    # batch rows are independent: a row alone equals the row in a batch
    "$TEXTENC" -m "$D/t5" --no-negative --batch 2 "a cat" "a red fox" -o "$D/cat.msgpack"
    near "$(info "$D/cat.msgpack" '.tensors[0].stats.min')" \
        "$(info "$D/args.msgpack" '.tensors[4].stats.min')" 1e-5
}

# bats test_tags=cuda-quick
@test "the same weights as PyTorch .bin shards and as bf16" {
    "$TEXTENC" -m "$D/t5" "a red fox" >"$D/st.msgpack"
    "$TEXTENC" -m "$D/t5bin" "a red fox" | cmp - "$D/st.msgpack"
    "$TEXTENC" -m "$D/t5bf16" "a red fox" -o "$D/bf16.msgpack"
    [ "$(info "$D/bf16.msgpack" '.tensors[name=embedding].dtype')" = f32 ]
    [ "$(info "$D/bf16.msgpack" '.tensors[name=embedding].stats.nan')" = 0 ]
}

@test "--max-length, --negative-prompt, --no-negative, --clean" {
    "$TEXTENC" -m "$D/t5" --max-length 77 "a fox" -o "$D/77.msgpack"
    [ "$(info "$D/77.msgpack" '.tensors[name=embedding].shape')" = "[1,77,32]" ]
    [ "$(info "$D/77.msgpack" '.tensors[name=null_mask].shape')" = "[1,77]" ]
    "$TEXTENC" -m "$D/tok" --tokens --negative-prompt "blurry, low quality" "a fox" -o "$D/neg.msgpack"
    [ "$(info "$D/neg.msgpack" '.tensors[name=null_tokens].meta.prompt[0]')" = "blurry, low quality" ]
    ! near "$(info "$D/neg.msgpack" '.tensors[name=null_mask].stats.mean')" 0.0033333333 1e-9
    "$TEXTENC" -m "$D/t5" --no-negative "a fox" -o "$D/noneg.msgpack"
    [ "$(info "$D/noneg.msgpack" '.tensors#')" = 2 ]
    # the default (inference) cleaner lower-cases and drops HTML; none keeps
    # the text (the token ids are compared through their sum)
    [ "$(token_sum '<b>A Red</b> FOX')" = "$(token_sum "a red fox" --clean none)" ]
    [ "$(token_sum "A FOX" --clean lower)" = "$(token_sum "a fox" --clean none)" ]
    [ "$(token_sum "A FOX" --clean none)" != "$(token_sum "a fox" --clean none)" ]
}

# token_sum PROMPT [OPTION...]: 300 x the mean token id of PROMPT
token_sum() {
    local prompt=$1
    shift
    "$TEXTENC" -m "$D/tok" --tokens --no-negative "$@" "$prompt" |
        "$BIN/osp-info" --stats --format json | "$JSONCHECK" '.tensors[0].stats.mean'
}

@test "usage errors: exit 2 and one line" {
    fails_with 2 "$TEXTENC" "a fox"
    fails_with 2 "$TEXTENC" -m "$D/t5" --tokens --from-tokens
    fails_with 2 "$TEXTENC" -m "$D/t5" --negative-prompt x --no-negative "a"
    fails_with 2 "$TEXTENC" -m "$D/t5" -i x.msgpack "a"
    fails_with 2 "$TEXTENC" -m "$D/t5" --from-tokens "a"
    fails_with 2 "$TEXTENC" -m "$D/t5" --max-length 0 "a"
    fails_with 2 "$TEXTENC" -m "$D/t5" --batch 0 "a"
    fails_with 2 "$TEXTENC" -m "$D/t5" --clean maybe "a"
}

@test "bad input: exit status, one line, no output file left behind" {
    fails_with 5 "$TEXTENC" -m "$D/missing" "a"
    : >"$D/empty.txt"
    fails_with 3 "$TEXTENC" -m "$D/t5" -o "$D/never.msgpack" <"$D/empty.txt"
    assert_equal "$stderr" "osp-textenc: error: no prompts: stdin was empty"
    [ ! -e "$D/never.msgpack" ]
    printf 'fine\nbad \xff byte\n' >"$D/bad.txt"
    fails_with 3 "$TEXTENC" -m "$D/t5" -o "$D/never.msgpack" <"$D/bad.txt"
    [[ $stderr == *"prompt 2: invalid UTF-8"* ]]
    [ ! -e "$D/never.msgpack" ]
    # the fixture tokenizer makes ids beyond the fixture encoder's 384 rows
    fails_with 3 "$TEXTENC" -m "$D/fixture" "zebra xylophone quantum"
    [[ $stderr == *"outside the vocabulary of 384"* ]]
    # a corrupt spiece.model
    mkdir "$D/badsp" && cp "$D/t5"/{config.json,model.safetensors} "$D/badsp/"
    head -c 1000 "$D/t5/spiece.model" >"$D/badsp/spiece.model"
    fails_with 3 "$TEXTENC" -m "$D/badsp" "a"
    # config and weights that disagree
    mkdir "$D/mismatch" && cp "$D/t5"/{model.safetensors,spiece.model} "$D/mismatch/"
    sed 's/"num_layers": 2/"num_layers": 3/' "$D/t5/config.json" >"$D/mismatch/config.json"
    fails_with 3 "$TEXTENC" -m "$D/mismatch" "a"
    [[ $stderr == *"encoder.block.2"* ]]
    # a pickle with a forbidden global in place of the weights
    mkdir "$D/evil" && cp "$D/t5"/{config.json,spiece.model} "$D/evil/"
    cp "$REPO/tests/data/torch/forbidden_global.bin" "$D/evil/pytorch_model.bin"
    fails_with 3 "$TEXTENC" -m "$D/evil" "a"
    [[ $stderr == *"forbidden global 'os.system'"* ]]
    # token streams without tokens, or tokens without their mask (what passes
    # through is written as it comes, so -o shows that nothing is left)
    "$MKSTREAM" convert "$FIXTURES/t5/encoder/debug.safetensors" "$D/no_tokens.msgpack" \
        position_bias=extra
    fails_with 3 "$TEXTENC" -m "$D/t5" --from-tokens -i "$D/no_tokens.msgpack" -o "$D/never.msgpack"
    [[ $stderr == *"no \`tokens\` to encode"* ]]
    "$MKSTREAM" convert "$FIXTURES/t5/encoder/inputs.safetensors" "$D/ids_only.msgpack" input_ids=tokens
    fails_with 3 "$TEXTENC" -m "$D/fixture" --from-tokens -i "$D/ids_only.msgpack" -o "$D/never.msgpack"
    [[ $stderr == *"without its"* ]]
    [ ! -e "$D/never.msgpack" ]
}
