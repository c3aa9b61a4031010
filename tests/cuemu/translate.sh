#!/bin/sh
# translate.sh IN OUT — a kernel file (.cu or .cuh) as host C++ for
# tests/cuemu: each launch `k<<<grid, block, smem, stream>>>(args)` becomes
# `cuemu::launch([](auto &&...a) { k(a...); }, grid, block, smem,
# stream)(args)`, so that k may still be a template deduced from the
# arguments; a #line keeps compiler messages on the original file.
set -eu
{
    printf '#line 1 "%s"\n' "$1"
    perl -0777 -pe 's/([A-Za-z_][\w:]*(?:<[^;<>]*>)?)\s*<<<(.*?)>>>/cuemu::launch([](auto &&...cuemu_a) { $1(cuemu_a...); }, $2)/gs' "$1"
} >"$2.tmp"
mv "$2.tmp" "$2"
