#!/usr/bin/env bats
# `make install` into a temporary prefix, then a program built against the
# installed libosp with pkg-config.

load helpers

setup_file() {
    # Only for the plain build: the sanitizer build's objects need the
    # sanitizer runtime in every program that links them.
    [ "$(basename "$TEST_BUILD")" = build ] || return 0
    export PREFIX_DIR=$BATS_FILE_TMPDIR/prefix
    make -C "$REPO" --no-print-directory install PREFIX="$PREFIX_DIR" >"$BATS_FILE_TMPDIR/install.log" 2>&1
}

setup() {
    [ "$(basename "$TEST_BUILD")" = build ] || skip "install is tested with the plain build only"
    command -v pkg-config >/dev/null || skip "pkg-config not installed"
}

@test "make install puts tools, library, headers, pkg-config file, man pages, completions" {
    local p=$PREFIX_DIR
    for t in "$BIN"/osp-*; do [ -x "$p/bin/$(basename "$t")" ]; done
    [ -f "$p/lib/libosp.a" ] && [ -f "$p/lib/libosp.so" ]
    [ -f "$p/include/osp/core/tensor.h" ] && [ -f "$p/include/osp/io/stream.h" ]
    [ -f "$p/lib/pkgconfig/libosp.pc" ]
    [ -f "$p/share/man/man1/osp-info.1" ] && [ -f "$p/share/man/man5/osp-tensor.5" ]
    [ -f "$p/share/bash-completion/completions/osp-info" ]
    [ -f "$p/share/zsh/site-functions/_osp-info" ]
    run "$p/bin/osp-info" --version
    assert_success
}

@test "pkg-config finds libosp and a program builds and runs against it" {
    export PKG_CONFIG_PATH=$PREFIX_DIR/lib/pkgconfig
    run pkg-config --modversion libosp
    assert_success
    assert_output "$(sed -n 's/^VERSION := //p' "$REPO/Makefile")"
    cat >"$BATS_FILE_TMPDIR/prog.c" <<'C'
#include "core/tensor.h"
#include "io/stream.h"
#include <stdio.h>
int main(void) { osp_tensor *t = osp_tensor_zeros(OSP_F32, 2, (int64_t[]){2, 3}, OSP_DEVICE_CPU);
    printf("%lld %s\n", (long long)osp_numel(t), osp_dtype_name(t->dtype)); osp_release(t); return 0; }
C
    run bash -c "cc -std=c11 '$BATS_FILE_TMPDIR/prog.c' -o '$BATS_FILE_TMPDIR/prog' \
        \$(pkg-config --cflags --libs libosp) -Wl,-rpath,'$PREFIX_DIR/lib' && '$BATS_FILE_TMPDIR/prog'"
    assert_success
    assert_output "6 f32"
    # static: Libs.private must name everything libosp.a needs
    run bash -c "cc -std=c11 '$BATS_FILE_TMPDIR/prog.c' -o '$BATS_FILE_TMPDIR/prog-static' \
        \$(pkg-config --cflags libosp) \
        \$(pkg-config --static --libs libosp | sed 's|-losp|$PREFIX_DIR/lib/libosp.a|') \
        && '$BATS_FILE_TMPDIR/prog-static'"
    assert_success
    assert_output "6 f32"
}
