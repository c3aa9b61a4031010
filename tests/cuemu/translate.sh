#!/bin/sh
# translate.sh IN OUT — a kernel file (.cu or .cuh) as host C++ for
# tests/cuemu: each launch `k<<<grid, block, smem, stream>>>(args)` becomes
# `cuemu::launch([](auto &&...a) { k(a...); }, grid, block, smem,
# stream)(args)`, so that k may still be a template deduced from the
# arguments; each `__shared__ T name[...];` is followed by
# `cuemu::shared_fresh(name, sizeof name);`, which poisons the array once
# per block as a GPU leaves it undefined; a #line keeps compiler messages
# on the original file.
set -eu
{
    printf '#line 1 "%s"\n' "$1"
    perl -0777 -pe '
        s/([A-Za-z_][\w:]*(?:<[^;<>]*>)?)\s*<<<(.*?)>>>/cuemu::launch([](auto &&...cuemu_a) { $1(cuemu_a...); }, $2)/gs;
        s/(\b__shared__\b[^;{}]*?\b(\w+)\s*(?:\[[^\]]*\]\s*)+;)/$1 cuemu::shared_fresh($2, sizeof $2);/g;
    ' "$1"
} >"$2.tmp"
mv "$2.tmp" "$2"
