/* t5_tokenizer.c — the HF T5Tokenizer layer (see t5_tokenizer.h). */
#include "t5_tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "utext.h"

struct osp_t5_tokenizer {
    osp_spiece *sp;
    int64_t pad_id, eos_id, unk_id;
};

/* Id of the piece spelled `s` (any type), or -1. */
static int32_t find_piece(const osp_spiece *sp, const char *s)
{
    size_t want = strlen(s), len;
    for (int32_t i = 0; i < osp_spiece_size(sp); i++) {
        const char *p = osp_spiece_piece(sp, i, &len);
        if (len == want && memcmp(p, s, len) == 0)
            return i;
    }
    return -1;
}

osp_t5_tokenizer *osp_t5_tokenizer_load(const char *path)
{
    struct stat st;
    char *file = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t len = strlen(path) + sizeof "/spiece.model";
        file = malloc(len);
        if (!file) {
            osp_error_nomem("path", len);
            return NULL;
        }
        snprintf(file, len, "%s/spiece.model", path);
    }
    osp_spiece *sp = osp_spiece_load(file ? file : path);
    osp_t5_tokenizer *tok = sp ? calloc(1, sizeof *tok) : NULL;
    if (sp && !tok)
        osp_error_nomem("tokenizer", sizeof *tok);
    if (tok) {
        tok->sp = sp;
        int32_t pad = find_piece(sp, "<pad>"), eos = find_piece(sp, "</s>");
        tok->unk_id = osp_spiece_unk_id(sp);
        tok->pad_id = pad;
        tok->eos_id = eos;
        if (pad < 0 || eos < 0) {
            osp_error(OSP_ERR_DATA, "%s: no %s piece: not a T5 vocabulary", file ? file : path,
                      pad < 0 ? "<pad>" : "</s>");
            osp_t5_tokenizer_free(tok);
            tok = NULL;
            sp = NULL;
        }
    }
    if (!tok)
        osp_spiece_free(sp);
    free(file);
    return tok;
}

void osp_t5_tokenizer_free(osp_t5_tokenizer *tok)
{
    if (!tok)
        return;
    osp_spiece_free(tok->sp);
    free(tok);
}

const osp_spiece *osp_t5_tokenizer_spiece(const osp_t5_tokenizer *tok)
{
    return tok->sp;
}

int64_t osp_t5_vocab_size(const osp_t5_tokenizer *tok)
{
    return (int64_t)osp_spiece_size(tok->sp) + OSP_T5_EXTRA_IDS;
}

int64_t osp_t5_pad_id(const osp_t5_tokenizer *tok)
{
    return tok->pad_id;
}

int64_t osp_t5_eos_id(const osp_t5_tokenizer *tok)
{
    return tok->eos_id;
}

/* ------------------------------------------------------ added tokens */

typedef struct added_match {
    size_t len;      /* bytes of the literal */
    int64_t id;
    bool strips;     /* <extra_id_N>: eats whitespace on both sides */
} added_match;

/* Which added-token literal starts at s[0..n), if any. The literals all
 * start with '<', end with '>' and hold neither inside, so no two overlap
 * and the first one found scanning left to right is HF's split. */
static bool match_added(const osp_t5_tokenizer *tok, const char *s, size_t n, added_match *m)
{
    static const struct { const char *text; int which; } fixed[] = {
        {"<pad>", 0}, {"</s>", 1}, {"<unk>", 2}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        size_t len = strlen(fixed[i].text);
        if (n >= len && memcmp(s, fixed[i].text, len) == 0) {
            int64_t ids[] = {tok->pad_id, tok->eos_id, tok->unk_id};
            *m = (added_match){.len = len, .id = ids[fixed[i].which], .strips = false};
            return true;
        }
    }
    static const char prefix[] = "<extra_id_";
    size_t pl = sizeof prefix - 1;
    if (n < pl + 2 || memcmp(s, prefix, pl) != 0)
        return false;
    /* 0..99 written without leading zeros */
    size_t k = pl;
    int value = 0;
    while (k < n && k < pl + 2 && s[k] >= '0' && s[k] <= '9')
        value = value * 10 + (s[k++] - '0');
    if (k == pl || k >= n || s[k] != '>' || (k - pl == 2 && s[pl] == '0'))
        return false;
    *m = (added_match){.len = k + 1,
                       .id = osp_spiece_size(tok->sp) + OSP_T5_EXTRA_IDS - 1 - value,
                       .strips = true};
    return true;
}

/* Python's str.lstrip() / rstrip() on UTF-8 bytes. */
static size_t skip_space_forward(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = osp_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (!osp_py_isspace(cp))
            break;
        i += len;
    }
    return i;
}

static size_t trim_space_backward(const char *s, size_t n)
{
    while (n > 0) {
        size_t start = n - 1; /* back up to the start of the last character */
        while (start > 0 && n - start < 4 && ((uint8_t)s[start] & 0xc0) == 0x80)
            start--;
        uint32_t cp;
        size_t len = osp_utf8_decode((const uint8_t *)s + start, n - start, &cp);
        if (start + len != n) /* not a whole character: the last byte alone */
            start = n - 1, cp = OSP_REPLACEMENT_CHAR;
        if (!osp_py_isspace(cp))
            break;
        n = start;
    }
    return n;
}

typedef struct id_list {
    int64_t *ids;
    size_t n, cap;
} id_list;

static osp_status push_id(id_list *l, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        int64_t *p = realloc(l->ids, cap * sizeof *p);
        if (!p)
            return osp_error_nomem("token ids", cap * sizeof *p);
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return OSP_OK;
}

static osp_status encode_segment(const osp_t5_tokenizer *tok, const char *s, size_t n,
                                 id_list *out)
{
    if (n == 0)
        return OSP_OK;
    osp_spiece_encoding enc;
    osp_status st = osp_spiece_encode(tok->sp, s, n, &enc);
    for (size_t i = 0; !st && i < enc.n; i++)
        st = push_id(out, enc.ids[i]);
    osp_spiece_encoding_free(&enc);
    return st;
}

osp_status osp_t5_tokenize(const osp_t5_tokenizer *tok, const char *text, size_t len,
                           int64_t **ids, size_t *n)
{
    id_list out = {0};
    osp_status st = OSP_OK;
    size_t seg = 0;            /* start of the pending text segment */
    bool strip_left = false;   /* the previous added token eats leading space */
    for (size_t i = 0; i <= len && !st;) {
        added_match m = {0};
        bool at_end = i == len;
        if (!at_end && (text[i] != '<' || !match_added(tok, text + i, len - i, &m))) {
            i++;
            continue;
        }
        size_t a = seg, b = i;
        if (strip_left)
            a += skip_space_forward(text + a, b - a);
        if (!at_end && m.strips)
            b = a + trim_space_backward(text + a, b - a);
        st = encode_segment(tok, text + a, b - a, &out);
        if (at_end || st)
            break;
        st = push_id(&out, m.id);
        strip_left = m.strips;
        i += m.len;
        seg = i;
    }
    if (st) {
        free(out.ids);
        return st;
    }
    *ids = out.ids;
    *n = out.n;
    return OSP_OK;
}

osp_status osp_t5_encode(const osp_t5_tokenizer *tok, const char *text, size_t len,
                         int64_t max_length, int64_t *ids, int64_t *mask)
{
    if (max_length < 1)
        return osp_error(OSP_ERR_USAGE, "max length must be at least 1 (got %lld)",
                         (long long)max_length);
    int64_t *all;
    size_t n;
    osp_status st = osp_t5_tokenize(tok, text, len, &all, &n);
    if (st)
        return st;
    size_t keep = n < (size_t)max_length - 1 ? n : (size_t)max_length - 1;
    if (keep)
        memcpy(ids, all, keep * sizeof *ids);
    free(all);
    if (keep == 0 || ids[keep - 1] != tok->eos_id) /* HF adds no second </s> */
        ids[keep++] = tok->eos_id;
    for (size_t i = 0; i < (size_t)max_length; i++) {
        if (i >= keep)
            ids[i] = tok->pad_id;
        mask[i] = i < keep;
    }
    return OSP_OK;
}
