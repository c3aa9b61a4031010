/* osp-textenc — prompts to T5 v1.1 text embeddings (spec/t5.md), as the
 * reference's sampling pipeline computes them: caption cleaning, the T5
 * tokenizer (max length 300, padded), the T5 encoder on every position.
 *
 * Emits, per batch of --batch prompts, `embedding` f32 [B, L, D] and `mask`
 * u8 [B, L] (meta `prompt`: the B prompts), after one `null_embedding`
 * [1, L, D] and `null_mask` [1, L] for the negative prompt. The two halves
 * run alone too: --tokens emits `tokens` i64 [B, L] + `mask` (and
 * `null_tokens` + `null_mask`) and needs only spiece.model; --from-tokens
 * encodes such a stream, passing every other tensor through, so
 * `osp-textenc --tokens ... | osp-textenc --from-tokens` equals a direct run.
 * Nothing is written before the first batch has been read and checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "common/cli.h"
#include "core/log.h"
#include "core/progress.h"
#include "io/stream.h"
#include "models/caption.h"
#include "models/t5.h"
#include "models/t5_tokenizer.h"

static const char *opt_model, *opt_clean = "inference", *opt_negative, *opt_input;
static int64_t opt_max_length = 300, opt_batch = 1;
static bool opt_no_negative, opt_tokens, opt_from_tokens;

static const cli_option options[] = {
    {.name = "model", .short_name = 'm', .kind = CLI_STRING, .metavar = "DIR", .s = &opt_model,
     .help = "T5 folder (config.json, weights, spiece.model)"},
    {.name = "max-length", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 8192,
     .i = &opt_max_length, .help = "tokens per prompt, EOS and padding included (300)"},
    /* a string checked below: the choice list would not fit the help line */
    {.name = "clean", .kind = CLI_STRING, .metavar = "MODE", .s = &opt_clean,
     .help = "inference (default), training, lower or none"},
    {.name = "negative-prompt", .kind = CLI_STRING, .metavar = "TEXT", .s = &opt_negative,
     .help = "text of `null_embedding` (default \"\")"},
    {.name = "no-negative", .kind = CLI_FLAG, .flag = &opt_no_negative,
     .help = "emit no negative prompt (no `null_*` tensors)"},
    {.name = "batch", .kind = CLI_INT, .metavar = "N", .min = 1, .max = 4096, .i = &opt_batch,
     .help = "prompts encoded together, one message each (1)"},
    {.name = "tokens", .kind = CLI_FLAG, .flag = &opt_tokens,
     .help = "tokenize only: emit `tokens` and `mask`"},
    {.name = "from-tokens", .kind = CLI_FLAG, .flag = &opt_from_tokens,
     .help = "encode a `tokens` stream (stdin or -i)"},
    {.name = "input", .short_name = 'i', .kind = CLI_STRING, .metavar = "FILE", .s = &opt_input,
     .help = "--from-tokens: read the token stream from FILE"},
    {0},
};

static const cli_tool tool = {
    .name = "osp-textenc",
    .summary = "Encode prompts into T5 text embeddings (Open-Sora-Plan's text encoder).",
    .args = "[PROMPT...]",
    .details = "PROMPT: one prompt per argument, else one per line of stdin.",
    .example = "osp-textenc -m t5-v1_1-xxl \"a red fox in snow\" | osp-info\n"
               "osp-textenc -m t5 --tokens <prompts.txt | osp-textenc -m t5 --from-tokens",
    .options = options,
    .min_args = 0,
    .max_args = -1,
};

/* ---- prompts: arguments or stdin lines ---- */

typedef struct prompt_source {
    char **argv;
    int argc, next;
    bool from_stdin;
    int64_t count; /* prompts read so far (for messages) */
    char *line;
    size_t line_cap;
} prompt_source;

/* Rejects what cannot travel as msgpack text: invalid UTF-8 (overlongs,
 * surrogates and code points beyond U+10FFFF included) and NUL bytes. */
static osp_status check_text(const char *s, size_t len, int64_t index)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4 : 0;
        uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
        bool ok = n && i + n <= len && c != 0;
        for (size_t k = 1; ok && k < n; k++) {
            ok = (p[i + k] & 0xc0) == 0x80;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (!ok || cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return osp_error(OSP_ERR_DATA, "prompt %lld: %s at byte %zu", (long long)index,
                             c == 0 ? "a NUL byte" : "invalid UTF-8", i);
        i += n;
    }
    return OSP_OK;
}

/* The next prompt (owned by src until the next call), or NULL at the end
 * (*st says whether that is an error). */
static const char *next_prompt(prompt_source *src, osp_status *st)
{
    *st = OSP_OK;
    const char *text;
    size_t len;
    if (!src->from_stdin) {
        if (src->next >= src->argc)
            return NULL;
        text = src->argv[src->next++];
        len = strlen(text);
    } else {
        ssize_t got = getline(&src->line, &src->line_cap, stdin);
        if (got < 0) {
            if (ferror(stdin))
                *st = osp_error(OSP_ERR_IO, "stdin: read failed");
            return NULL;
        }
        len = (size_t)got;
        if (len && src->line[len - 1] == '\n') /* a line ends at "\n" or "\r\n" */
            src->line[--len] = 0;
        if (len && src->line[len - 1] == '\r')
            src->line[--len] = 0;
        text = src->line;
    }
    if ((*st = check_text(text, len, src->count + 1)))
        return NULL;
    src->count++;
    return text;
}

/* ---- one batch ---- */

typedef struct batch {
    int64_t n;
    char **prompts;  /* n copies */
    osp_tensor *ids; /* i64 [n, L], pool-owned */
    osp_tensor *mask; /* u8 [n, L], pool-owned */
} batch;

static void batch_clear(batch *b)
{
    for (int64_t i = 0; i < b->n; i++)
        free(b->prompts[i]);
    b->n = 0;
    b->ids = b->mask = NULL;
}

/* Cleans and tokenizes prompts[0..n) into ids and mask. */
static osp_status tokenize(const osp_t5_tokenizer *tok, osp_clean_mode mode, batch *b)
{
    const int64_t L = opt_max_length, shape[2] = {b->n, L};
    b->ids = osp_tensor_new(OSP_I64, 2, shape, OSP_DEVICE_CPU);
    b->mask = osp_tensor_new(OSP_U8, 2, shape, OSP_DEVICE_CPU);
    int64_t *mask64 = malloc((size_t)L * sizeof *mask64);
    osp_status st = b->ids && b->mask && mask64 ? OSP_OK : osp_error_code();
    if (!st && !mask64)
        st = osp_error_nomem("mask", (size_t)L * sizeof *mask64);
    for (int64_t i = 0; i < b->n && !st; i++) {
        size_t len;
        char *clean = osp_caption_clean(b->prompts[i], strlen(b->prompts[i]), mode, &len);
        if (!clean) {
            osp_error_context("prompt '%.40s'", b->prompts[i]);
            st = osp_error_code();
            break;
        }
        st = osp_t5_encode(tok, clean, len, L, (int64_t *)osp_data(b->ids) + i * L, mask64);
        for (int64_t j = 0; j < L && !st; j++)
            ((uint8_t *)osp_data(b->mask))[i * L + j] = (uint8_t)mask64[j];
        free(clean);
    }
    free(mask64);
    return st;
}

/* meta {prompt: [the batch's prompts]} */
static osp_status prompt_meta(const batch *b, osp_meta *meta)
{
    osp_meta_init(meta);
    osp_meta_value *items = calloc((size_t)b->n, sizeof *items);
    if (!items)
        return osp_error_nomem("meta", (size_t)b->n * sizeof *items);
    for (int64_t i = 0; i < b->n; i++)
        items[i] = (osp_meta_value){.kind = OSP_META_STR, .s = b->prompts[i]};
    osp_meta_value v = {.kind = OSP_META_ARRAY, .array = {items, (size_t)b->n}};
    osp_status st = osp_meta_set(meta, "prompt", &v);
    free(items);
    return st;
}

/* What one batch emits: `tokens` (--tokens) or `embedding`, and `mask`. */
typedef struct encoded {
    osp_tensor *main, *mask; /* pool-owned */
    const osp_meta *meta;
} encoded;

/* The ids as they are (no t5: --tokens), or encoded by t5. */
static osp_status encode(osp_t5 *t5, osp_tensor *ids, osp_tensor *mask, const osp_meta *meta,
                         encoded *out)
{
    out->main = t5 ? osp_to_device(osp_t5_run(t5, ids, mask), OSP_DEVICE_CPU) : ids;
    out->mask = osp_cast(mask, OSP_U8);
    out->meta = meta;
    return out->main && out->mask ? OSP_OK : osp_error_code();
}

static osp_status emit(osp_stream_writer *w, const char *prefix, const encoded *e, bool tokens)
{
    char name[32], mask_name[32];
    snprintf(name, sizeof name, "%s%s", prefix, tokens ? "tokens" : "embedding");
    snprintf(mask_name, sizeof mask_name, "%smask", prefix);
    osp_status st = osp_stream_write(w, name, e->main, e->meta);
    return st ? st : osp_stream_write(w, mask_name, e->mask, e->meta);
}

/* Cleans, tokenizes and encodes b (tensors in the current pool; meta owned
 * by the caller). */
static osp_status encode_batch(const osp_t5_tokenizer *tok, osp_t5 *t5, osp_clean_mode mode,
                               batch *b, osp_meta *meta, encoded *out)
{
    osp_status st = tokenize(tok, mode, b);
    if (!st)
        st = prompt_meta(b, meta);
    return st ? st : encode(t5, b->ids, b->mask, meta, out);
}

/* Reads up to --batch prompts into b (b->n = 0 at the end). */
static osp_status read_batch(prompt_source *src, batch *b)
{
    osp_status st = OSP_OK;
    const char *p;
    while (b->n < opt_batch && (p = next_prompt(src, &st)) != NULL) {
        if (!(b->prompts[b->n] = strdup(p)))
            return osp_error_nomem("prompt", strlen(p) + 1);
        b->n++;
    }
    return st;
}

/* The first batch and the negative prompt are both encoded before anything
 * is written, so that bad input (the common failure) leaves no output. */
static osp_status run_prompts(const osp_t5_tokenizer *tok, osp_t5 *t5, osp_clean_mode mode,
                              prompt_source *src, osp_stream_writer *w)
{
    batch b = {0};
    if (!(b.prompts = calloc((size_t)opt_batch, sizeof *b.prompts)))
        return osp_error_nomem("prompts", (size_t)opt_batch * sizeof *b.prompts);
    osp_progress bar;
    osp_progress_start(&bar, "prompts", src->from_stdin ? 0 : src->argc);
    osp_status st = read_batch(src, &b);
    if (!st && !b.n)
        st = osp_error(OSP_ERR_DATA, "no prompts: stdin was empty");
    bool first = true;
    while (!st && b.n) {
        osp_meta meta = {0}, null_meta = {0};
        encoded e, null_e;
        osp_pool_push();
        st = encode_batch(tok, t5, mode, &b, &meta, &e);
        if (!st && first && !opt_no_negative) {
            batch null = {.n = 1, .prompts = (char *[]){(char *)(opt_negative ? opt_negative : "")}};
            if (!(st = encode_batch(tok, t5, mode, &null, &null_meta, &null_e)))
                st = emit(w, "null_", &null_e, !t5);
        }
        if (!st)
            st = emit(w, "", &e, !t5);
        osp_pool_pop();
        osp_meta_free(&meta);
        osp_meta_free(&null_meta);
        first = false;
        osp_progress_step(&bar, b.n);
        batch_clear(&b);
        if (!st)
            st = read_batch(src, &b);
    }
    osp_progress_end(&bar);
    batch_clear(&b);
    free(b.prompts);
    return st;
}

/* ---- --from-tokens ---- */

/* A `tokens` (or `null_tokens`) tensor waiting for its mask, or the
 * reverse. */
typedef struct pending {
    osp_named_tensor tokens, mask;
} pending;

static osp_status take_pair(osp_t5 *t5, osp_stream_writer *w, pending *p, const char *prefix)
{
    if (!p->tokens.tensor || !p->mask.tensor)
        return OSP_OK;
    encoded e;
    osp_pool_push();
    osp_status st = encode(t5, p->tokens.tensor, p->mask.tensor, &p->tokens.meta, &e);
    if (!st)
        st = emit(w, prefix, &e, false);
    osp_pool_pop();
    osp_named_tensor_free(&p->tokens);
    osp_named_tensor_free(&p->mask);
    return st;
}

static osp_status run_from_tokens(osp_t5 *t5, osp_stream_writer *w)
{
    const char *path = opt_input ? opt_input : "-";
    osp_stream_reader *r = osp_stream_open_read(path);
    if (!r)
        return osp_error_code();
    pending pairs[2] = {0}; /* [0] prompts, [1] the negative prompt */
    static const char *const prefix[2] = {"", "null_"};
    osp_status st = OSP_OK;
    int64_t encoded = 0;
    for (;;) {
        osp_named_tensor nt = {0};
        bool got = false;
        if ((st = osp_stream_read(r, &nt, &got)) || !got)
            break;
        int k = strncmp(nt.name, "null_", 5) == 0;
        const char *role = nt.name + 5 * k;
        osp_named_tensor *slot = strcmp(role, "tokens") == 0 ? &pairs[k].tokens
                               : strcmp(role, "mask") == 0 ? &pairs[k].mask : NULL;
        if (!slot) {
            st = osp_stream_write(w, nt.name, nt.tensor, &nt.meta); /* passed through */
        } else if (slot->tensor) {
            st = osp_error(OSP_ERR_DATA, "%s: a second `%s` before its pair was complete",
                           path, nt.name);
        } else {
            *slot = nt;
            nt = (osp_named_tensor){0};
            encoded += pairs[k].tokens.tensor && pairs[k].mask.tensor;
            st = take_pair(t5, w, &pairs[k], prefix[k]);
        }
        osp_named_tensor_free(&nt);
        if (st)
            break;
    }
    for (int k = 0; k < 2 && !st; k++)
        if (pairs[k].tokens.tensor || pairs[k].mask.tensor)
            st = osp_error(OSP_ERR_DATA, "%s: `%s%s` without its `%s%s`", path, prefix[k],
                           pairs[k].tokens.tensor ? "tokens" : "mask", prefix[k],
                           pairs[k].tokens.tensor ? "mask" : "tokens");
    if (!st && !encoded)
        st = osp_error(OSP_ERR_DATA, "%s: no `tokens` to encode (osp-textenc --tokens makes "
                       "them)", path);
    for (int k = 0; k < 2; k++) {
        osp_named_tensor_free(&pairs[k].tokens);
        osp_named_tensor_free(&pairs[k].mask);
    }
    osp_stream_close_read(r);
    return st;
}

/* ---- main ---- */

static void check_usage(const cli_common *c, osp_clean_mode *mode)
{
    if (!opt_model)
        cli_usage_error("-m/--model DIR is required (a T5 folder; see --help)");
    if (opt_tokens && opt_from_tokens)
        cli_usage_error("--tokens and --from-tokens exclude each other");
    if (opt_negative && opt_no_negative)
        cli_usage_error("--negative-prompt and --no-negative exclude each other");
    if (opt_input && !opt_from_tokens)
        cli_usage_error("-i/--input is the token stream of --from-tokens");
    if (opt_from_tokens && c->argc)
        cli_usage_error("--from-tokens reads a token stream, not prompts");
    bool uses_stdin = opt_from_tokens ? !opt_input || strcmp(opt_input, "-") == 0
                                      : c->argc == 0 || (c->argc == 1 && !strcmp(c->argv[0], "-"));
    if (uses_stdin && isatty(STDIN_FILENO))
        cli_usage_error(opt_from_tokens ? "stdin is a terminal: pipe a token stream in or use -i"
                                        : "no prompts: give them as arguments or pipe them in, "
                                          "one per line");
    if (!osp_clean_mode_parse(opt_clean, mode))
        cli_usage_error("--clean: expected one of inference|training|lower|none, got '%s'",
                        opt_clean);
}

int main(int argc, char **argv)
{
    cli_common common;
    cli_parse(&tool, argc, argv, &common);
    osp_clean_mode mode = OSP_CLEAN_INFERENCE;
    check_usage(&common, &mode);

    osp_t5_tokenizer *tok = NULL;
    osp_t5 *t5 = NULL;
    osp_status st = OSP_OK;
    if (!opt_from_tokens && !(tok = osp_t5_tokenizer_load(opt_model)))
        st = osp_error_code();
    if (!st && !opt_tokens && !(t5 = osp_t5_load(opt_model, common.device)))
        st = osp_error_code();
    osp_stream_writer *w = st ? NULL : osp_stream_open_write(common.output);
    if (!st && !w)
        st = osp_error_code();
    if (!st && opt_from_tokens) {
        st = run_from_tokens(t5, w);
    } else if (!st) {
        bool args = common.argc && !(common.argc == 1 && strcmp(common.argv[0], "-") == 0);
        prompt_source src = {.argv = common.argv, .argc = args ? common.argc : 0,
                             .from_stdin = !args};
        st = run_prompts(tok, t5, mode, &src, w);
        free(src.line);
    }
    if (!st)
        st = osp_stream_commit(w);
    osp_stream_close_write(w);
    osp_t5_free(t5);
    osp_t5_tokenizer_free(tok);
    return st ? osp_log_failure() : 0;
}
