#!/bin/sh
# vae_bench.sh — osp-encode / osp-decode against the PyTorch CausalVideoVAE of
# torch_vae.py on the CPU: same weights, same input, same thread count, runs
# interleaved (osp, torch, torch, osp, ...), each osp/torch pair under one
# hold of the bench lock.
#
#   bench/vae_bench.sh [T H W]        (default 17 256 256)
#
# Environment:
#   VAE_DIR       model folder; created with random weights of the release
#                 config (229,169,895 parameters) when missing
#                 (default /tmp/osp-vae-release)
#   BENCH_THREADS threads for both (default: all cores)
#   BENCH_ROUNDS  rounds (default 2); medians over rounds are reported
#   OSP_BIN       tools (default bin/), OSP_TEST_BUILD for tensorcmp/mkstream
#   BENCH_PYTHON  python with torch and safetensors (default bench/.venv)
#   BENCH_LOCK    lock file (default /tmp/osp-bench.lock)
#
# osp times are the tools' whole runs (model load, stream I/O included);
# torch times are the forward calls alone, so the ratio favours torch.
# CPU = user + system seconds of all threads (osp: /usr/bin/time; torch:
# process_time around the forward), the fairer figure on a busy machine.
# Both decode the latent torch's encoder produced; the outputs are compared
# (max abs difference) so the timing compares the same computation.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
T=${1:-17} H=${2:-256} W=${3:-256}
vae=${VAE_DIR:-/tmp/osp-vae-release}
threads=${BENCH_THREADS:-$(nproc)}
rounds=${BENCH_ROUNDS:-2}
bin=${OSP_BIN:-$root/bin}
build=${OSP_TEST_BUILD:-$root/build}
python=${BENCH_PYTHON:-$here/.venv/bin/python}
lock=${BENCH_LOCK:-/tmp/osp-bench.lock}
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$vae/config.json" ] || "$python" "$here/torch_vae.py" init "$vae" >&2
"$python" "$here/torch_vae.py" video "$work/video.st" "$T" "$H" "$W"
"$build/tests/tools/mkstream" convert "$work/video.st" "$work/video.msgpack" video

# seconds of a whole osp run (wall and user+sys) and its peak RSS in MiB
osp_run() {
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
        "$bin/$1" --threads "$threads" -m "$vae" "$2" -o "$3" ${4:-} 2>/dev/null
    awk '{ printf "%.1f %.1f %.0f\n", $1, $2 + $3, $4 / 1024 }' "$work/time"
}
# seconds of torch's forward call (wall and process CPU)
torch_run() {
    "$python" "$here/torch_vae.py" "$1" -t "$threads" "$vae" "$2" "$3" |
        awk '{ printf "%.1f %.1f\n", $2 / 1000, $3 / 1000 }'
}

: > "$work/encode" ; : > "$work/decode"
# pair STEP OSP_TOOL OSP_IN OSP_OUT OSP_FLAG TORCH_IN TORCH_OUT FIRST: one osp
# and one torch run back to back under one hold of the lock, FIRST first;
# appends "osp_wall osp_cpu osp_mib torch_wall torch_cpu" to $work/STEP
pair() {
    exec 9>> "$lock"
    flock 9
    if [ "$8" = osp ]; then
        o=$(osp_run "$2" "$3" "$4" "$5")
        t=$(torch_run "$1" "$6" "$7")
    else
        t=$(torch_run "$1" "$6" "$7")
        o=$(osp_run "$2" "$3" "$4" "$5")
    fi
    flock -u 9
    exec 9>&-
    echo "$o $t" >> "$work/$1"
    echo "$1: osp wall/cpu/MiB $o, torch wall/cpu $t s" >&2
}
for r in $(seq "$rounds"); do
    first=osp
    [ $((r % 2)) -eq 1 ] || first=torch # alternate which side goes first
    pair encode osp-encode "$work/video.msgpack" "$work/moments.msgpack" --moments \
        "$work/video.st" "$work/torch_enc.st" "$first"
    "$build/tests/tools/mkstream" convert "$work/torch_enc.st" "$work/latent.msgpack" latent
    pair decode osp-decode "$work/latent.msgpack" "$work/video_out.msgpack" "" \
        "$work/torch_enc.st" "$work/torch_dec.st" "$first"
done

# osp's output against torch's (the bound printed is the fixture rule)
diff_enc=$("$build/tests/tools/tensorcmp" "$work/moments.msgpack" moments \
    "$work/torch_enc.st" moments 1e-4 || true)
diff_dec=$("$build/tests/tools/tensorcmp" "$work/video_out.msgpack" video \
    "$work/torch_dec.st" video 2e-4 || true)

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| step | shape | threads | osp s (wall) | torch s (wall) | ratio | osp CPU s | torch CPU s | CPU ratio | osp peak MiB | osp vs torch |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for step in encode decode; do
    osp=$(cut -d' ' -f1 "$work/$step" | median)
    torch=$(cut -d' ' -f4 "$work/$step" | median)
    ratio=$(awk '{ print $1 / $4 }' "$work/$step" | median)
    ocpu=$(cut -d' ' -f2 "$work/$step" | median)
    tcpu=$(cut -d' ' -f5 "$work/$step" | median)
    cratio=$(awk '{ print $2 / $5 }' "$work/$step" | median)
    rss=$(cut -d' ' -f3 "$work/$step" | median)
    d=$diff_enc
    [ "$step" = encode ] || d=$diff_dec
    printf '| %s | 1x3x%sx%sx%s | %s | %s | %s | %.2f | %s | %s | %.2f | %s | %s |\n' \
        "$step" "$T" "$H" "$W" "$threads" \
        "$osp" "$torch" "$ratio" "$ocpu" "$tcpu" "$cratio" "$rss" "$d"
done
