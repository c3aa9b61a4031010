#!/bin/sh
# run.sh — the T5 text encoder's benchmarks (issue 5), osp against the
# references in one invocation, same thread count, interleaved runs:
#
#   encode    the encoder, a mid-sized T5 v1.1 config (6 layers, d_model
#             1024, 16 heads of 64, d_ff 2816; 8 prompts of 300 tokens)
#             with random weights in safetensors, loaded by both t5_bench
#             and transformers' T5EncoderModel (t5_torch.py); outputs
#             checked to agree (fixture rule, 1e-4 + 1e-4 |torch|); median
#             of the per-round ratios osp/torch (goal <= 0.8)
#   tokenize  100,000 prompts through the T5 tokenizer against the
#             sentencepiece package on the same spiece.model (the ids of
#             both compared through one hash), prompts/s
#   xxl-make  writes an XXL-shaped checkpoint (DeepFloyd/t5-v1_1-xxl sizes,
#             bf16, random weights, 8 safetensors shards + index, 9.5 GB)
#             with mkt5 under $BENCH_T5_XXL (not timed: run it outside the
#             bench lock)
#   xxl       one 300-token prompt through that checkpoint (t5_bench: a
#             warm-up forward and BENCH_XXL_REPS timed ones; then the tool:
#             osp-textenc with its negative prompt, 2 forwards): peak RSS
#             (goal <= 11 GB) and time per prompt; then deletes the
#             checkpoint unless BENCH_T5_KEEP=1
#
# Usage: run.sh T5_BENCH MKT5 [PART...]   (default: encode tokenize)
# Environment:
#   BENCH_THREADS   threads for both (default: all cores)
#   BENCH_ROUNDS    alternating rounds (default 3)
#   BENCH_REPS      timed forwards (or tokenizer passes) per round (default 2)
#   BENCH_T5_DIR    mid-sized model + inputs (default /tmp/osp-bench-t5)
#   BENCH_T5_XXL    XXL checkpoint folder (default /tmp/osp-bench-t5-xxl)
#   BENCH_XXL_REPS  timed XXL forwards (default 1)
#   BENCH_SPIECE    spiece.model for `tokenize` (default: the fixture's)
#   OSP_BIN         osp-textenc's folder for `xxl` (default: ../../bin)
#   BENCH_PYTHON    python with torch + transformers (default bench/.venv)
set -eu

bench=${1:?usage: run.sh T5_BENCH MKT5 [PART...]}
mkt5=${2:?usage: run.sh T5_BENCH MKT5 [PART...]}
shift 2
[ $# -gt 0 ] || set -- encode tokenize
here=$(cd "$(dirname "$0")" && pwd)
python=${BENCH_PYTHON:-$here/../.venv/bin/python}
threads=${BENCH_THREADS:-$(nproc)}
rounds=${BENCH_ROUNDS:-3}
reps=${BENCH_REPS:-2}
dir=${BENCH_T5_DIR:-/tmp/osp-bench-t5}
xxl=${BENCH_T5_XXL:-/tmp/osp-bench-t5-xxl}
spiece=${BENCH_SPIECE:-$here/../../../shared/fixtures/t5/tokenizer/spiece.model}
bin=${OSP_BIN:-$here/../../bin}
ref="$here/t5_torch.py"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median of the numbers on stdin
median() {
    sort -g | awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

header() {
    echo "# $1"
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); CPU: $(LC_ALL=C lscpu | sed -n 's/^Model name: *//p')," \
         "$(nproc) logical CPUs; $threads threads for both"
    echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
}

encode() {
    [ -f "$dir/input.safetensors" ] || "$python" "$ref" make "$dir"
    header "T5 encoder, osp vs transformers $("$python" -c 'import transformers; print(transformers.__version__)') (torch $("$python" -c 'import torch; print(torch.__version__)')), CPU"
    r=0
    while [ "$r" -lt "$rounds" ]; do
        "$bench" -t "$threads" -r "$reps" encode "$dir" >>"$tmp/osp"
        "$python" "$ref" time "$dir" -t "$threads" -r "$reps" >>"$tmp/torch"
        r=$((r + 1))
    done
    agree=$("$python" "$ref" compare "$dir") || { echo "outputs disagree: $agree"; exit 1; }
    shape=$(head -n 1 "$tmp/osp" | cut -f2)
    o=$(cut -f3 "$tmp/osp" | median)
    t=$(cut -f3 "$tmp/torch" | median)
    ratio=$(paste "$tmp/osp" "$tmp/torch" | awk -F'\t' '{ print $3 / $8 }' | median)
    echo "| model | shape | osp ms | torch ms | osp/torch | osp GFLOP/s | osp RSS MiB | torch RSS MiB |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    echo "| T5EncoderModel | $shape | $o | $t | $(printf '%.2f' "$ratio") | $(cut -f4 "$tmp/osp" | median) | $(cut -f5 "$tmp/osp" | median) | $(cut -f5 "$tmp/torch" | median) |"
    echo
    echo "per round (osp ms, torch ms): $(paste "$tmp/osp" "$tmp/torch" | awk -F'\t' '{ printf "%s%.0f/%.0f", (NR > 1 ? ", " : ""), $3, $8 }')"
    echo "outputs: $agree"
    rm -f "$tmp/osp" "$tmp/torch"
}

# 100,000 prompts: captions of 1-40 words from a fixed list, some with
# punctuation, digits, accents, full-width letters and emoji.
make_prompts() {
    "$python" - "$1" <<'PY'
import random, sys
random.seed(5)
words = ("a the red fox cat dog running jumping in on of snow beach sunset city night rain "
         "slow motion close-up aerial view 4k cinematic lighting golden hour portrait "
         "old man young woman playing guitar piano street market crowded busy quiet forest "
         "river mountain lake boat car train bicycle café naïve résumé Ｆｕｌｌ ２０２４ 😀 "
         "(wide-angle) [HDR] 1920x1080 30fps time-lapse, drone, shot. ocean waves crashing").split()
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for _ in range(100000):
        f.write(" ".join(random.choice(words) for _ in range(random.randint(1, 40))) + "\n")
PY
}

tokenize() {
    prompts=$tmp/prompts.txt
    make_prompts "$prompts"
    header "T5 tokenizer, osp vs the sentencepiece package $("$python" -c 'import sentencepiece; print(sentencepiece.__version__)')"
    r=0
    while [ "$r" -lt "$rounds" ]; do
        "$bench" -r "$reps" tokenize "$spiece" "$prompts" >>"$tmp/osp"
        "$python" "$ref" spm "$spiece" "$prompts" -r "$reps" >>"$tmp/spm"
        r=$((r + 1))
    done
    if [ "$(cut -f6 "$tmp/osp" | sort -u)" != "$(cut -f6 "$tmp/spm" | sort -u)" ]; then
        echo "token ids disagree: osp $(cut -f6 "$tmp/osp" | sort -u), sentencepiece $(cut -f6 "$tmp/spm" | sort -u)"
        exit 1
    fi
    echo "| tokenizer | input | osp ms | sentencepiece ms | osp prompts/s | sentencepiece prompts/s | osp/sentencepiece time |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    echo "| $(basename "$spiece") ($(wc -c <"$spiece") bytes) | $(head -n 1 "$tmp/osp" | cut -f2) | $(cut -f3 "$tmp/osp" | median) | $(cut -f3 "$tmp/spm" | median) | $(cut -f4 "$tmp/osp" | median) | $(cut -f4 "$tmp/spm" | median) | $(paste "$tmp/osp" "$tmp/spm" | awk -F'\t' '{ print $3 / $9 }' | median | xargs printf '%.2f') |"
    echo
    echo "ids: identical (hash $(cut -f6 "$tmp/osp" | sort -u))"
    rm -f "$tmp/osp" "$tmp/spm"
}

xxl_make() {
    rm -rf "$xxl"
    "$mkt5" "$xxl" xxl=1 dtype=bf16 shards=8 spiece="$spiece"
    "$python" "$ref" inputs "$xxl" --batch 1 --length 300
    mkdir -p "$xxl/model"
    for f in "$xxl"/config.json "$xxl"/model*.safetensors* "$xxl"/spiece.model; do
        ln -sf "$f" "$xxl/model/"
    done
    du -sh "$xxl"
}

xxl() {
    [ -f "$xxl/input.safetensors" ] || { echo "no $xxl: run the xxl-make part first"; exit 1; }
    header "T5 v1.1 XXL shape (24 layers, d_model 4096, 64 heads, d_ff 10240), bf16 weights, random"
    echo "- checkpoint: $(du -sb "$xxl" | cut -f1) bytes in $(ls "$xxl"/model-*.safetensors | wc -l) safetensors shards + index"
    "$bench" -t "$threads" -r "${BENCH_XXL_REPS:-1}" encode "$xxl" >"$tmp/osp"
    prompt=$(yes "a red fox running through deep snow in a quiet forest at dawn," | head -n 30 | tr '\n' ' ')
    /usr/bin/time -f "%e %M" -o "$tmp/time" "$bin/osp-textenc" --threads "$threads" -q -m "$xxl" \
        "$prompt" -o "$tmp/out.msgpack"
    echo "| run | shape | median ms per forward | GFLOP/s | peak RSS MiB |"
    echo "|---|---|---:|---:|---:|"
    echo "| t5_bench forward | $(cut -f2 "$tmp/osp") | $(cut -f3 "$tmp/osp") | $(cut -f4 "$tmp/osp") | $(cut -f5 "$tmp/osp") |"
    echo
    echo "osp-textenc (load + prompt + negative prompt = 2 forwards of 300 positions):" \
         "$(cut -d' ' -f1 "$tmp/time") s wall, peak RSS $(cut -d' ' -f2 "$tmp/time" | awk '{ printf "%.0f MiB (%.2f GB)", $1 / 1024, $1 * 1024 / 1e9 }')"
    rm -f "$tmp/osp"
    [ "${BENCH_T5_KEEP:-0}" = 1 ] || rm -rf "$xxl"
}

for part in "$@"; do
    case "$part" in
    encode) encode ;;
    tokenize) tokenize ;;
    xxl-make) xxl_make ;;
    xxl) xxl ;;
    *) echo "run.sh: unknown part '$part' (encode, tokenize, xxl-make, xxl)" >&2; exit 2 ;;
    esac
    echo
done
