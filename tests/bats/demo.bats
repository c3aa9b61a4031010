#!/usr/bin/env bats
# make demo's script: every tool in one text-to-video run on generated tiny
# models (no fixtures needed).

load helpers

setup() {
    TMP=$(mktemp -d)
}

teardown() {
    rm -rf "$TMP"
}

@test "examples/demo.sh: prompt to a 17-frame 64x64 mp4, round trip scored" {
    run "$REPO/examples/demo.sh" "$TMP/demo.mp4"
    assert_success
    assert_line --partial "latent  f32    [1, 4, 5, 8, 8]"
    assert_line --regexp '^psnr +[0-9.]+$'
    assert_line --regexp '^ssim +-?[0-9.]+$'
    assert_line "(17 frames, 1 video)"
    # the mp4 decodes back to 17 frames of 64x64
    "$BIN/osp-eval" --metrics psnr "$TMP/demo.mp4" "$TMP/demo.mp4" --format json >"$TMP/self.json"
    grep -q '"frames": *17' "$TMP/self.json" || { cat "$TMP/self.json"; false; }
}
